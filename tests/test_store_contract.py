"""The store contract against each flavour of the embedded SQLite store."""

from __future__ import annotations

import pathlib

import pytest

from trialbook.storage import open_store
from trialbook.testing import StoreContract


class TestSqliteContract(StoreContract):
    @pytest.fixture(params=["directory", "file", "memory"])
    def store(self, request: pytest.FixtureRequest, tmp_path: pathlib.Path):
        location = {
            "directory": str(tmp_path / "dir-store"),
            "file": f"sqlite:///{tmp_path / 'file.db'}",
            "memory": "sqlite:///:memory:",
        }[request.param]
        store = open_store(location)
        yield store
        store.close()

    @pytest.fixture
    def store_password(self) -> None:
        return None  # SQLite has no passwords
