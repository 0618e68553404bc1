"""Root conftest: doctests in src/ and docs/ run in a private directory, like the tests."""

from __future__ import annotations

import importlib.util
import os
import pathlib

import pytest

# issue 17: the torch-based integrations import their library at module top; where it is not
# installed (it is on Python 3.11 only, after torch) their doctests are not collected
collect_ignore = [
    f"src/trialbook/integrations/{name}.py"
    for name in ("lightning", "keras", "transformers")
    if importlib.util.find_spec(name) is None
]
# Keras chooses its backend when it is first imported: the suite runs it on PyTorch (installed
# anyway, lighter than JAX); and nothing in the suite may reach a model hub
os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test and doctest runs in its own directory, so the default store is private, and
    keeps the value files of its stores (``trialbook.storage.value_files``) there too."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRIALBOOK_STORE", raising=False)
    monkeypatch.setenv("TRIALBOOK_CACHE_DIR", str(tmp_path / ".cache"))
