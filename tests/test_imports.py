"""Each module imports on its own, in a fresh interpreter (no hidden import-order dependency)."""

from __future__ import annotations

import importlib.util
import pkgutil
import subprocess
import sys

import pytest

import trialbook
from conftest import need

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(trialbook.__path__, prefix="trialbook.")
    if not m.name.endswith("__main__")
)


# issue 17: these import their library at module top, installed on Python 3.11 only (after torch)
TORCH_INTEGRATIONS = {
    f"trialbook.integrations.{name}" for name in ("lightning", "keras", "transformers")
}


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_alone(module: str) -> None:
    if module in TORCH_INTEGRATIONS:
        library = module.rpartition(".")[2]
        need(
            importlib.util.find_spec(library) is not None,
            f"{library} is not installed: pip install 'trialbook[{library}]'",
        )
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
