"""Root conftest: doctests in src/ and docs/ run in a private directory, like the tests."""

from __future__ import annotations

import pathlib

import pytest


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test and doctest runs in its own directory, so the default store is private."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRIALBOOK_STORE", raising=False)
