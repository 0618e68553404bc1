"""Run-id allocation of the embedded store: its errors (found by `make mutate`)."""

from __future__ import annotations

import pathlib
import sqlite3

import pytest

from trialbook.errors import ExperimentNotFoundError, StorageError
from trialbook.storage import open_store


def test_allocating_for_a_missing_experiment_names_it_and_the_store(
    tmp_path: pathlib.Path,
) -> None:
    store = open_store(tmp_path / "s")
    try:
        info = store.create_experiment("e")
        with pytest.raises(ExperimentNotFoundError) as caught:
            store.allocate_run_ids(info.id + 1, 2)
        assert caught.value.experiment_id == info.id + 1
        assert f"experiment id {info.id + 1} no longer exists in {store.url!r}" in str(caught.value)
        assert store.allocate_run_ids(info.id, 2) == range(1, 3)  # nothing was reserved
    finally:
        store.close()


def test_a_driver_error_while_allocating_is_a_storage_error(tmp_path: pathlib.Path) -> None:
    store = open_store(tmp_path / "s")
    try:
        info = store.create_experiment("e")
        # another program broke the database: the column the counter lives in is gone
        with sqlite3.connect(tmp_path / "s" / "trialbook.db") as raw:
            raw.execute("ALTER TABLE experiments DROP COLUMN next_run_id")
        with pytest.raises(StorageError) as caught:
            store.allocate_run_ids(info.id, 1)
        assert str(caught.value).startswith(f"SQLite store {store.url!r}: ")
        assert "next_run_id" in str(caught.value)
        assert isinstance(caught.value.__cause__, sqlite3.Error)
    finally:
        store.close()
