"""Each module imports on its own, in a fresh interpreter (no hidden import-order dependency)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import trialbook

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(trialbook.__path__, prefix="trialbook.")
    if not m.name.endswith("__main__")
)


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_alone(module: str) -> None:
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
