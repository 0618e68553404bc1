"""Experiment identity on every backend (issue 20, items 1-3): a replacement and its first write
are one step, an experiment id is never given again, and a process still holding the id of a
deleted experiment can neither write into it nor into its successor.

The contract tests (:class:`trialbook.testing.StoreContract`) check the same promises through
the store API in one process; these tests add real failures of a backend in the middle of a
replace, a second process, and the stores written by an older trialbook."""

from __future__ import annotations

import multiprocessing
import pathlib
import sqlite3
from typing import Any

import pytest
from tests.conftest import BACKENDS, OPTIONAL_BACKENDS, backend_location

import trialbook
from trialbook.errors import ExperimentNotFoundError, StorageError
from trialbook.storage import open_store
from trialbook.storage.records import RunRecord
from trialbook.testing import metric_chunk

# -- replace + first write: one step ----------------------------------------------------------


def _refuse_runs_after(backend: str, location: str, store: Any, old_id: int) -> None:
    """Make the backend itself refuse run rows of any experiment newer than ``old_id`` (a
    trigger, a CHECK constraint, a key of the wrong type, a unique index): a real failure of
    the write that comes after the replace step."""
    if backend == "sqlite":
        conn = sqlite3.connect(pathlib.Path(location) / "trialbook.db")
        conn.execute(
            f"CREATE TRIGGER refuse BEFORE INSERT ON runs WHEN NEW.experiment_id > {old_id} "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
        conn.commit()
        conn.close()
    elif backend in ("postgres", "mysql"):
        import sqlalchemy as sa

        table = f"{store.schema}.trialbook_runs" if store.schema else "trialbook_runs"
        with store._db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    f"ALTER TABLE {table} ADD CONSTRAINT refuse CHECK (experiment_id <= {old_id})"
                )
            )
    elif backend == "redis":
        next_id = int(store._r.get(store.prefix + "experiment_ids")) + 1
        store._r.set(f"{store.prefix}exp:{next_id}:runs", "not a sorted set")
    elif backend == "mongo":
        store._db.runs.create_index(
            [("experiment_id", 1)],
            unique=True,
            partialFilterExpression={"experiment_id": {"$gt": old_id}},
            name="refuse",
        )


def _allow_runs_again(backend: str, location: str, store: Any) -> None:
    if backend == "sqlite":
        conn = sqlite3.connect(pathlib.Path(location) / "trialbook.db")
        conn.execute("DROP TRIGGER refuse")
        conn.commit()
        conn.close()
    elif backend in ("postgres", "mysql"):
        import sqlalchemy as sa

        table = f"{store.schema}.trialbook_runs" if store.schema else "trialbook_runs"
        drop = "CHECK" if backend == "mysql" else "CONSTRAINT"
        with store._db.engine.begin() as conn:
            conn.execute(sa.text(f"ALTER TABLE {table} DROP {drop} refuse"))
    elif backend == "redis":
        for key in store._r.scan_iter(match=f"{store.prefix}exp:*:runs"):
            if store._r.type(key) == b"string":
                store._r.delete(key)
    elif backend == "mongo":
        store._db.runs.drop_index("refuse")


@pytest.mark.parametrize("backend", BACKENDS + OPTIONAL_BACKENDS)
def test_a_replacement_whose_first_write_fails_keeps_the_old_experiment(
    backend: str, tmp_path: pathlib.Path
) -> None:
    """``persist()`` of an experiment created with ``if_exists="replace"``: the backend
    refuses the new runs, after the old experiment would have been deleted. The old one is
    still there with its 3 runs and its id; the new runs stay in memory and a later persist
    (the backend accepting them again) replaces it."""
    with backend_location(backend, tmp_path) as location:
        session = trialbook.create_session(location)
        store = session.store
        first = session.create_experiment("x")
        first.add_runs(v=[1, 2, 3])
        first.execute(lambda run: run.log_metric("m", run.params.v))
        first.persist()
        old = store.find_experiment("x")
        _refuse_runs_after(backend, location, store, old.id)
        second = session.create_experiment("x", if_exists="replace")
        second.add_runs(v=[10, 20])
        second.execute(lambda run: run.log_metric("m", run.params.v))
        with pytest.raises(StorageError):
            second.persist()
        found = store.find_experiment("x")
        assert (found.id, found.runs) == (old.id, 3)
        assert [e.name for e in store.list_experiments()] == ["x"]
        assert [r.params["v"] for r in store.read_runs(old.id)] == [1, 2, 3]
        assert store.read_metrics(old.id, "m", [3])[3].values.tolist() == [3.0]
        assert store.collect_garbage(min_age=0, dry_run=True).rows == 0
        _allow_runs_again(backend, location, store)
        second.persist()
        found = store.find_experiment("x")
        assert found.id != old.id and found.runs == 2
        loaded = session.load_experiment("x")
        assert [run.params.v for run in loaded.runs.values()] == [10, 20]
        assert store.read_metrics(found.id, "m", [2])[2].values.tolist() == [20.0]
        assert store.read_runs(old.id) == []
        session.close()


# -- a second process holding the id of a deleted experiment ----------------------------------


def _late_writer(location: str, name: str, ready: Any, go: Any, results: Any) -> None:
    """Hold the id of experiment ``name``; once told, try every kind of write with it."""
    store = open_store(location)
    try:
        held = store.find_experiment(name).id
        ready.set()
        go.wait(120)
        writes = {
            "write_runs": lambda: store.write_runs(
                held, [RunRecord(2, params={"late": True})], [metric_chunk(2, "m", [9.0])]
            ),
            "allocate_run_ids": lambda: store.allocate_run_ids(held, 1),
            "write_artifact": lambda: store.write_artifact(held, 1, "a", _json(b"1")),
            "put_step_hash": lambda: store.put_step_hash(held, "s", "in", "out", 1),
            "update_meta": lambda: store.update_meta(held, {"late": True}),
        }
        outcome = {}
        for what, write in writes.items():
            try:
                write()
                outcome[what] = "written"
            except ExperimentNotFoundError as exc:
                outcome[what] = f"refused {exc.experiment_id}"
        results.put((held, outcome))
    finally:
        store.close()


def _json(data: bytes) -> Any:
    from trialbook.codecs import Encoded

    return Encoded("json", data)


@pytest.mark.parametrize("backend", BACKENDS + OPTIONAL_BACKENDS)
def test_a_process_holding_a_deleted_id_cannot_write_into_its_successor(
    backend: str, tmp_path: pathlib.Path
) -> None:
    """Process A holds experiment X's id; X is deleted and a new X created (on SQLite before
    schema version 3, with the same id). Each write of A raises ``ExperimentNotFoundError``
    and the new X is untouched."""
    with backend_location(backend, tmp_path) as location:
        store = open_store(location)
        old = store.create_experiment("x")
        store.write_runs(old.id, [RunRecord(1)])
        ctx = multiprocessing.get_context("spawn")
        ready, go, results = ctx.Event(), ctx.Event(), ctx.Queue()
        writer = ctx.Process(target=_late_writer, args=(location, "x", ready, go, results))
        writer.start()
        try:
            assert ready.wait(120)
            store.delete_experiment("x")
            new = store.create_experiment("x", meta={"fresh": True})
            go.set()
            held, outcome = results.get(timeout=120)
        finally:
            writer.join(120)
        assert held == old.id != new.id
        assert outcome == dict.fromkeys(outcome, f"refused {old.id}")
        assert len(outcome) == 5
        found = store.find_experiment("x")
        assert (found.id, found.runs, found.meta) == (new.id, 0, {"fresh": True})
        assert store.read_runs(new.id) == []
        assert store.metric_names(new.id) == {}
        assert store.list_artifacts(new.id, 1) == {}
        assert store.get_step_hashes(new.id, [("s", "in")]) == {}
        assert store.allocate_run_ids(new.id, 1) == range(1, 2)
        assert store.collect_garbage(min_age=0, dry_run=True).rows == 0
        store.close()


# -- Redis: delete is mark-then-sweep ---------------------------------------------------------


def _keys_of(store: Any, exp_id: int) -> list[bytes]:
    own = f"{store.prefix}exp:{exp_id}"
    return [k for k in store._r.scan_iter(match=f"{own}*") if k == own.encode() or
            k.startswith(f"{own}:".encode())]  # fmt: skip


def test_redis_interrupted_delete_refuses_writes_and_is_swept(tmp_path: pathlib.Path) -> None:
    """A process killed after marking an experiment deleted (its name and hash removed by the
    script) and before removing its keys: late writes are refused and add no key, run ids are
    refused (they never start again at 1 on a revived hash), and ``collect_garbage`` removes
    every key that was left."""
    from trialbook.storage.redis_scripts import MARK_DELETED

    with backend_location("redis", tmp_path) as location:
        store = open_store(location)
        info = store.create_experiment("x")
        store.write_runs(
            info.id,
            [RunRecord(1, key="k")],
            [metric_chunk(1, "m", [1.0])],
            artifacts=[(1, "a", _json(b"1"))],
            step_hashes=[("s", "in", "out", 1)],
        )
        keys = [store.prefix + "experiments", store.prefix + "deleting"]
        assert int(store._r.eval(MARK_DELETED, 2, *keys, "x", store.prefix)) == info.id
        left = sorted(_keys_of(store, info.id))
        assert left and store.prefix.encode() + f"exp:{info.id}".encode() not in left
        for late in (
            lambda: store.write_runs(info.id, [RunRecord(2)], [metric_chunk(2, "m", [1.0])]),
            lambda: store.allocate_run_ids(info.id, 1),
            lambda: store.delete_runs(info.id, [1]) or store.write_runs(info.id, []),
        ):
            with pytest.raises(ExperimentNotFoundError):
                late()
        assert sorted(_keys_of(store, info.id)) == left  # nothing added, nothing revived
        again = store.create_experiment("x")
        assert again.id > info.id
        assert store.allocate_run_ids(again.id, 1) == range(1, 2)
        report = store.collect_garbage(min_age=0)
        assert report.rows == len(left) - 2  # the keys it lists: not the list, nor "runs"
        assert _keys_of(store, info.id) == []
        assert store._r.smembers(store.prefix + "deleting") == set()
        assert store.find_experiment("x").id == again.id
        store.close()


# -- MongoDB: a replace interrupted between its steps ----------------------------------------


@pytest.mark.parametrize("old_still_named", [True, False])
def test_mongo_interrupted_replace_is_finished_by_gc(
    old_still_named: bool, tmp_path: pathlib.Path
) -> None:
    """A replacement written under its hidden name by a process that died before naming it:
    not listed; ``collect_garbage`` names it when the old experiment was already deleted, and
    removes it (its documents counted as orphans) when the old one still has the name."""
    with backend_location("mongo", tmp_path) as location:
        store = open_store(location)
        old = store.create_experiment("x")
        store.write_runs(old.id, [RunRecord(1, params={"v": 1})])
        db = store._db  # what the dead process had written, in the layout of the module docs
        db.experiments.insert_one(
            {"_id": 99, "name": "\0" + "99", "pending": "x", "created": 0.0, "updated": 0.0,
             "meta": None, "next_run_id": 1}
        )  # fmt: skip
        store.write_runs(99, [RunRecord(1, params={"v": 2})])
        if not old_still_named:
            db.experiments.delete_one({"_id": old.id})
        assert [e.name for e in store.list_experiments()] == ([] if not old_still_named else ["x"])
        report = store.collect_garbage(min_age=0)
        found = store.find_experiment("x")
        if old_still_named:
            assert found.id == old.id
            assert report.rows == 1  # the hidden experiment's run
            assert store.read_runs(99) == []
        else:
            assert found.id == 99
            assert store.read_runs(99)[0].params == {"v": 2}
            assert report.rows == 1  # the deleted old experiment's run
        assert [e.name for e in store.list_experiments()] == ["x"]
        store.close()


# -- SqlStore on SQLite: a store created before AUTOINCREMENT ---------------------------------


def test_sql_store_on_sqlite_created_without_autoincrement_never_reuses_ids(
    tmp_path: pathlib.Path,
) -> None:
    """The experiments table as an older trialbook created it through SQLAlchemy (no
    ``AUTOINCREMENT``: the largest id came back after a delete) is rebuilt when opened, keeping
    every id; the counter starts above the ids that only rows left by a late write mention."""
    from trialbook.storage.sql import SqlStore

    path = tmp_path / "old.db"
    store = SqlStore(f"sqlite+pysqlite:///{path}")
    for name in ("a", "b", "c"):
        info = store.create_experiment(name)
        store.write_runs(info.id, [RunRecord(1)])
    store.allocate_run_ids(2, 4)
    store.close()
    conn = sqlite3.connect(path)  # back to what the older trialbook wrote
    conn.executescript(
        """
        CREATE TABLE old (id INTEGER NOT NULL, name VARCHAR(255) NOT NULL,
            created FLOAT NOT NULL, updated FLOAT NOT NULL,
            next_run_id BIGINT DEFAULT '1' NOT NULL, meta TEXT, PRIMARY KEY (id), UNIQUE (name));
        INSERT INTO old SELECT id, name, created, updated, next_run_id, meta
            FROM trialbook_experiments WHERE name != 'c';
        DROP TABLE trialbook_experiments;
        ALTER TABLE old RENAME TO trialbook_experiments;
        DELETE FROM sqlite_sequence;
        DROP TABLE trialbook_schema;
        """
    )  # experiment 3 ('c') deleted, its run left behind by a late write; no layout version
    conn.close()
    store = SqlStore(f"sqlite+pysqlite:///{path}")
    assert [(e.id, e.name, e.runs) for e in store.list_experiments()] == [(1, "a", 1), (2, "b", 1)]
    assert store.allocate_run_ids(2, 1) == range(5, 6)
    assert store.create_experiment("d").id == 4  # not 3, which the left-behind run names
    store.delete_experiment("d")
    assert store.create_experiment("e").id == 5  # not 4 again
    store.close()
