"""Metric chunks keyed by position and versioned runs (issue 20, items 4 and 6) on every
backend: stores written before them (in their old format, written with raw SQL or commands)
are read and upgraded, and two processes that loaded the same run cannot overwrite each other.

The promises themselves (a retried write leaves its points once, chunks are ordered by
position, a stale version is refused) are in the store contract
(``trialbook.testing.StoreContract``), run on every backend by ``tests/test_backends.py``."""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from tests.conftest import BACKENDS, backend_location

import trialbook
from trialbook.codecs import encode
from trialbook.errors import RunConflictError
from trialbook.storage import open_store
from trialbook.storage.records import RunRecord
from trialbook.testing import metric_chunk

# -- stores written before chunk positions and run versions --------------------------------------

OLD_POINTS = [(0, 1.0), (1, 0.5), (2, 0.25)]
"""The points of metric "loss" of run 1 in the old store: chunks of 2 and 1 points, in the
order they were appended (the second written first in step order would not matter: the old
format kept the order of appending)."""


def _arrays(points: list[tuple[int, float]]) -> tuple[bytes, bytes, bytes]:
    steps = np.array([s for s, _ in points], "<i8").tobytes()
    values = np.array([v for _, v in points], "<f8").tobytes()
    return steps, values, np.full(len(points), 1.0, "<f8").tobytes()


def _old_sqlite(location: str) -> None:
    """A directory store as schema version 2 wrote it, with raw SQL."""
    from trialbook.storage import sqlite_schema

    path = pathlib.Path(location)
    path.mkdir()
    conn = sqlite3.connect(path / sqlite_schema.DB_NAME, isolation_level=None)
    conn.executescript(sqlite_schema._SCHEMA_V1)
    conn.execute("CREATE INDEX step_hashes_by_run ON step_hashes (experiment_id, run_id)")
    conn.execute(f"PRAGMA application_id={sqlite_schema.APPLICATION_ID}")
    conn.execute("PRAGMA user_version=2")
    conn.execute("INSERT INTO experiments (id, name, created, updated, next_run_id) "
                 "VALUES (1, 'old', 1.0, 1.0, 2)")  # fmt: skip
    conn.execute(
        "INSERT INTO runs (experiment_id, run_id, kind, status, doc) VALUES (1, 1, 'run', 'done',"
        ' \'{"f": {"x": 1}, "m": {"loss": [3, 0.25]}}\')'
    )
    for points in (OLD_POINTS[:2], OLD_POINTS[2:]):
        conn.execute(
            "INSERT INTO metrics (experiment_id, run_id, name, count, steps, vals, times) "
            "VALUES (1, 1, 'loss', ?, ?, ?, ?)",
            (len(points), *_arrays(points)),
        )
    conn.close()


def _old_sql(location: str) -> None:
    """A SQL store (PostgreSQL, or SQLite through SQLAlchemy) as trialbook wrote it before its
    layout had a version: the tables of today without what version 2 added, and rows written
    with raw SQL."""
    import sqlalchemy as sa

    from trialbook.storage.sql import SqlStore

    store = SqlStore(location)  # the schema and tables
    schema = f'"{store._db.schema}".' if store._db.schema else ""
    with store._db.engine.begin() as conn:
        for statement in (
            "DROP TABLE {s}trialbook_schema",
            "DROP INDEX {s}trialbook_metrics_by_position",
            "ALTER TABLE {s}trialbook_metrics DROP COLUMN start",
            "ALTER TABLE {s}trialbook_runs DROP COLUMN version",
            "ALTER TABLE {s}trialbook_runs DROP COLUMN writer",
            "CREATE INDEX trialbook_metrics_by_name ON {s}trialbook_metrics"
            " (experiment_id, name, run_id, id)",
            "INSERT INTO {s}trialbook_experiments (id, name, created, updated, next_run_id)"
            " VALUES (1, 'old', 1.0, 1.0, 2)",
            "INSERT INTO {s}trialbook_runs (experiment_id, run_id, kind, status, doc) VALUES"
            ' (1, 1, \'run\', \'done\', \'{{"f": {{"x": 1}}, "m": {{"loss": [3, 0.25]}}}}\')',
        ):
            conn.execute(sa.text(statement.format(s=schema)))
        for points in (OLD_POINTS[:2], OLD_POINTS[2:]):
            steps, values, times = _arrays(points)
            conn.execute(
                sa.text(
                    f"INSERT INTO {schema}trialbook_metrics (experiment_id, run_id, name, "
                    "count, steps, vals, times) VALUES (1, 1, 'loss', :n, :s, :v, :t)"
                ),
                {"n": len(points), "s": steps, "v": values, "t": times},
            )
    store.close()


def _old_redis(location: str) -> None:
    """A Redis store as trialbook wrote it before positions and versions, with raw commands."""
    store = open_store(location)
    r, k = store._r, store._k
    r.hset(k("experiments"), "old", 1)
    r.hset(k("exp", 1), mapping={"name": "old", "created": "1.0", "updated": "1.0",
                                 "meta": "", "next_run_id": 1, "hashes_by_run": 1})  # fmt: skip
    r.zadd(k("exp", 1, "runs"), {"1": 1})
    r.hset(k("exp", 1, "run", 1), mapping={
        "kind": "run", "status": "done", "doc": '{"f": {"x": 1}, "m": {"loss": [3, 0.25]}}'
    })  # fmt: skip
    for points in (OLD_POINTS[:2], OLD_POINTS[2:]):
        r.rpush(k("exp", 1, "metric", 1, "loss"), struct.pack("<I", len(points)) +
                b"".join(_arrays(points)))  # fmt: skip
    r.hset(k("exp", 1, "counts"), "loss", 3)
    r.hset(k("exp", 1, "counts", 1), "loss", 3)
    r.sadd(k("exp", 1, "keys"), k("exp", 1, "run", 1), k("exp", 1, "metric", 1, "loss"),
           k("exp", 1, "counts"), k("exp", 1, "counts", 1))  # fmt: skip
    store.close()


def _old_mongo(location: str) -> None:
    """A MongoDB store as trialbook wrote it before positions and versions: documents written
    with raw commands, chunks ordered by the time of their write (``at``)."""
    import pymongo

    client = pymongo.MongoClient(location, serverSelectionTimeoutMS=5000)
    db = client.get_default_database()
    db.experiments.insert_one({"_id": 1, "name": "old", "created": 1.0, "updated": 1.0,
                               "meta": None, "next_run_id": 1})  # fmt: skip
    db.counters.insert_one({"_id": "experiments", "seq": 1})
    db.runs.insert_one({
        "_id": f"1/{1:012d}", "experiment_id": 1, "run_id": 1, "kind": "run", "status": "done",
        "doc": '{"f": {"x": 1}, "m": {"loss": [3, 0.25]}}', "bundle": None, "bundle_blob": None,
    })  # fmt: skip
    asc = pymongo.ASCENDING
    db.metrics.create_index([("experiment_id", asc), ("name", asc), ("run_id", asc), ("at", asc)])
    # written in the order 2, 1 of their time: the time orders them
    for at, points in ((2000, OLD_POINTS[2:]), (1000, OLD_POINTS[:2])):
        steps, values, times = _arrays(points)
        db.metrics.insert_one({"experiment_id": 1, "run_id": 1, "name": "loss", "at": at,
                               "count": len(points), "steps": steps, "vals": values,
                               "times": times})  # fmt: skip
    client.close()


OLD_STORES = {
    "sqlite": _old_sqlite,
    "postgres": _old_sql,
    "sql-sqlite": _old_sql,
    "redis": _old_redis,
    "mongo": _old_mongo,
}


@contextlib.contextmanager
def _location(backend: str, tmp_path: pathlib.Path) -> Iterator[str]:
    if backend == "sql-sqlite":  # the SQL store's migration on another dialect
        yield f"sqlite+pysqlite:///{tmp_path / 'sql.db'}"
    else:
        with backend_location(backend, tmp_path) as location:
            yield location


@pytest.mark.parametrize("backend", [*BACKENDS, "sql-sqlite"])
def test_store_written_before_positions_and_versions(backend: str, tmp_path) -> None:
    """A store of the format before chunk positions and run versions: its metric points read
    back in the order they were appended, its runs are version 0, and new writes append after
    the old points, are idempotent, and are compared with the old runs' version."""
    from trialbook.storage.sql import SqlStore

    opener = SqlStore if backend == "sql-sqlite" else open_store
    with _location(backend, tmp_path) as location:
        OLD_STORES[backend](location)
        store = opener(location)
        try:
            info = store.find_experiment("old")
            assert info is not None and info.runs == 1
            series = store.read_metrics(info.id, "loss", [1])[1]
            assert (
                list(zip(series.steps.tolist(), series.values.tolist(), strict=True)) == OLD_POINTS
            )
            assert store.metric_names(info.id) == {"loss": 3}
            (run,) = store.read_runs(info.id)
            assert (run.fields, run.version) == ({"x": 1}, 0)
            # appended after the old points, by the run read (version 0); twice: a retry
            run.fields, run.writer = {"x": 2}, "w"
            for _ in range(2):
                store.write_runs(info.id, [run], [metric_chunk(1, "loss", [0.125], 3)])
            series = store.read_metrics(info.id, "loss", [1])[1]
            assert series.values.tolist() == [1.0, 0.5, 0.25, 0.125]
            assert store.metric_names(info.id, 1) == {"loss": 4}
            assert store.read_runs(info.id)[0].version == 1
            with pytest.raises(RunConflictError, match="stored version 1"):
                store.write_runs(info.id, [RunRecord(1, version=0, writer="other")])
            # a run executed again replaces the old points too
            store.write_runs(
                info.id,
                [RunRecord(1)],
                [metric_chunk(1, "loss", [7.0])],
                replace_metrics=[(1, "loss")],
            )
            assert store.read_metrics(info.id, "loss", [1])[1].values.tolist() == [7.0]
            assert store.metric_names(info.id) == {"loss": 1}
        finally:
            store.close()
        if backend in ("sqlite", "postgres", "sql-sqlite"):  # opened again: upgraded once
            opener(location).close()


# -- two processes that loaded the same run -----------------------------------------------------

WRITER = textwrap.dedent(
    """
    import pathlib, sys, time, trialbook
    from trialbook.errors import RunConflictError
    location, tag, sync = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    session = trialbook.create_session(location)
    experiment = session.load_experiment("shared")
    (sync / f"loaded-{tag}").touch()
    deadline = time.monotonic() + 120
    while not (sync / f"go-{tag}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    run = experiment.runs[1]
    run.fields.owner = tag
    run.log_metric("m", {"a": 1.0, "b": 2.0}[tag])
    try:
        experiment.persist()
    except RunConflictError as exc:
        print("conflict", exc.conflicts, exc)
    else:
        print("ok")
    session.close()
    """
)


def _wait_for(path: pathlib.Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_processes_persisting_one_loaded_run(backend: str, tmp_path) -> None:
    """Two processes load the same experiment, both change run 1 and persist: the second is
    refused with ``RunConflictError``, and the store keeps the first's value and only its
    metric points."""
    with backend_location(backend, tmp_path) as location:
        session = trialbook.create_session(location)
        experiment = session.create_experiment("shared")
        with experiment.run() as run:
            run.fields.owner = "nobody"
            run.log_metric("m", 0.5)
        experiment.persist()
        sync = tmp_path / "sync"
        sync.mkdir()
        procs = {
            tag: subprocess.Popen(
                [sys.executable, "-c", WRITER, location, tag, str(sync)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for tag in ("a", "b")
        }
        for tag, proc in procs.items():
            _wait_for(sync / f"loaded-{tag}", proc)
        out = {}
        for tag, proc in procs.items():  # a first, then b
            (sync / f"go-{tag}").touch()
            stdout, stderr = proc.communicate(timeout=120)
            assert proc.returncode == 0, stderr
            out[tag] = stdout
        assert out["a"].strip() == "ok"
        assert out["b"].startswith("conflict [(1, 1, 2)]"), out["b"]
        assert "run 1 of experiment 'shared'" in out["b"]
        stored = trialbook.create_session(location)
        run = stored.load_experiment("shared").runs[1]
        assert run.fields.owner == "a"
        assert run.metrics("m")["value"].tolist() == [0.5, 1.0]
        stored.close()
        session.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_session_rewrites_its_runs(backend: str, tmp_path) -> None:
    """The runs API persists the same run again and again (it holds the version it wrote);
    a session that loaded it before those writes is refused, one loaded after is not."""
    with backend_location(backend, tmp_path) as location, contextlib.ExitStack() as stack:

        def load() -> Any:
            session = trialbook.create_session(location)
            stack.callback(session.close)
            return session.load_experiment("again")

        session = trialbook.create_session(location)
        stack.callback(session.close)
        experiment = session.create_experiment("again")
        experiment.add_runs(x=[1, 2])
        experiment.persist()
        early = load()
        for i in range(3):
            experiment.runs[1].fields.i = i
            experiment.runs[1].log_metric("m", float(i))
            experiment.persist()
        late = load()
        assert (late.runs[1].fields.i, late.runs[1].version) == (2, 4)
        assert late.runs[1].metrics("m")["value"].tolist() == [0.0, 1.0, 2.0]
        late.runs[1].fields.i = 3
        late.persist()
        early.runs[2].fields.other = 1  # another run: no conflict
        early.persist()
        early.runs[1].fields.i = -1
        with pytest.raises(RunConflictError, match="run 1 of experiment 'again'"):
            early.persist()
        final = load()
        assert (final.runs[1].fields.i, final.runs[2].fields.other) == (3, 1)


# -- MongoDB: the order of a write's parts -------------------------------------------------------


def test_mongo_writes_the_run_before_its_artifacts_and_step_hashes(tmp_path) -> None:
    """Without transactions, the order is the guarantee: the metric chunks before the run
    document (no run whose points are missing), the artifacts and step hashes after it (no
    cached output of a trial that was never recorded). Watched from the client's commands."""
    pymongo = pytest.importorskip("pymongo")
    from pymongo import monitoring

    from trialbook.codecs import Encoded
    from trialbook.storage.mongo import MongoStore

    seen: list[str] = []

    class Writes(monitoring.CommandListener):
        def started(self, event) -> None:
            if event.command_name in ("insert", "update", "delete"):
                seen.append(event.command[event.command_name])

        def succeeded(self, event) -> None:
            pass

        failed = succeeded

    with backend_location("mongo", tmp_path) as url:
        client = pymongo.MongoClient(url, event_listeners=[Writes()], serverSelectionTimeoutMS=5000)
        store = MongoStore(client.get_default_database())
        try:
            info = store.create_experiment("order")
            store.write_runs(info.id, [RunRecord(1)])
            # a new run, then a run read back (its version compared first)
            for read in (lambda: RunRecord(1), lambda: store.read_runs(info.id)[0]):
                run = read()
                assert run.version in (None, 1)
                seen.clear()
                store.write_runs(
                    info.id,
                    [run],
                    [metric_chunk(1, "m", [1.0])],
                    artifacts=[(1, "a", Encoded("json", b"1"))],
                    step_hashes=[("s", "in", "out", 1)],
                    replace_metrics=[(1, "m")],
                )
                parts = [c for c in seen if c in ("metrics", "runs", "artifacts", "step_hashes")]
                assert parts == ["metrics", "runs", "artifacts", "step_hashes", "metrics"]
        finally:
            store.close()
            client.close()


# -- stores written before the index of runs by status ------------------------------------------


def _before_value_segments(conn: sqlite3.Connection) -> None:
    """Undo SQLite schema version 9 on a store made now: no value segments, no index of runs by
    ``seq`` (before a test takes the store further back)."""
    for statement in ("DROP INDEX runs_by_seq", "DROP TABLE value_segments",
                      "DROP TABLE value_segment_columns", "PRAGMA user_version=8"):  # fmt: skip
        conn.execute(statement)


def _drop_status_index(backend: str, location: str) -> None:
    """Put a store made now back to the layout before the index of runs by status (SQLite
    schema version 4, SQL layout version 3): the index dropped (and PostgreSQL's ``jsonb``
    column of the documents), the version set back."""
    if backend == "sqlite":
        from trialbook.storage import sqlite_schema

        conn = sqlite3.connect(pathlib.Path(location) / sqlite_schema.DB_NAME, isolation_level=None)
        _before_value_segments(conn)
        conn.execute("DROP INDEX runs_by_status")
        conn.execute("PRAGMA user_version=4")
        conn.close()
        return
    import sqlalchemy as sa

    from trialbook.storage.sql import SqlStore

    store = SqlStore(location)
    schema = f'"{store._db.schema}".' if store._db.schema else ""
    with store._db.engine.begin() as conn:
        conn.execute(sa.text(f"DROP INDEX {schema}trialbook_runs_by_status"))
        if backend == "postgres":
            conn.execute(sa.text(f"ALTER TABLE {schema}trialbook_runs DROP COLUMN docb"))
        conn.execute(sa.text(f"UPDATE {schema}trialbook_schema SET version = 3"))
    store.close()


def _status_index_used(backend: str, store: Any, experiment_id: int) -> bool:
    """Whether the database counts an experiment's runs by status through the new index."""
    if backend == "sqlite":
        plan = store._db.read(
            "EXPLAIN QUERY PLAN SELECT status, count(*) FROM runs WHERE experiment_id = ? "
            "GROUP BY status", (experiment_id,)
        )  # fmt: skip
        return any("runs_by_status" in str(row[-1]) for row in plan)
    import sqlalchemy as sa

    inspector = sa.inspect(store._db.engine)
    indexes = inspector.get_indexes("trialbook_runs", schema=store.schema)
    columns = {c["name"] for c in inspector.get_columns("trialbook_runs", schema=store.schema)}
    return any(i["name"] == "trialbook_runs_by_status" for i in indexes) and (
        backend != "postgres" or "docb" in columns
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "sql-sqlite"])
def test_store_written_before_the_status_index(backend: str, tmp_path) -> None:
    """A store of the layout before ``runs (experiment_id, status)`` was indexed opens, gains
    the index once (a second opener finds it done; PostgreSQL also the ``jsonb`` column of the
    documents), and keeps every run, its counts and its answers to queries."""
    from trialbook.storage.query import query_runs
    from trialbook.storage.sql import SqlStore

    opener = SqlStore if backend == "sql-sqlite" else open_store
    with _location(backend, tmp_path) as location:
        store = opener(location)
        info = store.create_experiment("before")
        store.write_runs(info.id, [RunRecord(i, status="done" if i % 3 else "failed",
                                             params={"i": i}) for i in range(1, 31)])  # fmt: skip
        store.close()
        _drop_status_index(backend, location)
        for _ in range(2):  # upgraded by the first opener, found done by the second
            store = opener(location)
            try:
                info = store.find_experiment("before")
                assert info is not None and info.runs == 30
                assert _status_index_used(backend, store, info.id)
                runs = store.read_runs(info.id)
                assert [r.params["i"] for r in runs] == list(range(1, 31))
                assert sum(r.status == "failed" for r in runs) == 10
                total, page = query_runs(store, info.id, where='i > 20 and status == "done"',
                                         order_by="i", descending=True, limit=3)  # fmt: skip
                assert (total, [r.run_id for r in page]) == (6, [29, 28, 26])
            finally:
                store.close()


def test_sqlite_store_written_before_run_sequences(tmp_path) -> None:
    """A SQLite store of schema version 5 (before experiments counted the writes of their runs)
    opens as version 6: its runs are kept (``seq`` NULL: written before), its experiments start
    counting at 0, and the columns a reader keeps are read whole once, then follow each write
    by reading only the runs it wrote."""
    from trialbook.storage import sqlite_schema
    from trialbook.storage.query import query_runs
    from trialbook.storage.value_cache import cached_page, value_cache

    location = tmp_path / "store"
    with open_store(location) as store:
        info = store.create_experiment("before")
        store.write_runs(info.id, [RunRecord(i, params={"i": i}) for i in range(1, 21)])
    conn = sqlite3.connect(location / sqlite_schema.DB_NAME, isolation_level=None)
    _before_value_segments(conn)
    for table, column in [("runs", "seq"), ("experiments", "seq"), ("experiments", "deleted_seq"),
                          ("experiments", "stamp")]:  # fmt: skip
        conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.execute("PRAGMA user_version=5")
    conn.close()
    for _ in range(2):  # upgraded by the first opener, found done by the second
        with open_store(location) as store:
            info = store.find_experiment("before")
            assert info is not None and info.runs == 20
            assert store.experiment_token(info.id)[1:] == (0, 0, 0)
            assert [r.params["i"] for r in store.read_runs(info.id)] == list(range(1, 21))
    conn = sqlite3.connect(location / sqlite_schema.DB_NAME)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_schema.SCHEMA_VERSION == 9
    assert conn.execute("SELECT count(*) FROM runs WHERE seq IS NULL").fetchone()[0] == 20
    conn.close()
    with open_store(location) as store:
        cache = value_cache(store)
        cache.min_runs = 0

        def page() -> list[int]:
            args = {"where": "i > 15", "order_by": "i", "descending": True, "limit": 10,
                    "offset": 0, "meta": {}}  # fmt: skip
            cached_page(store, info.id, **args)  # starts reading the columns
            cache.wait()
            total, runs = cached_page(store, info.id, **args)
            assert (total, runs) == query_runs(store, info.id, **args)
            return [r.run_id for r in runs]

        assert page() == [20, 19, 18, 17, 16]
        store.write_runs(
            info.id, [RunRecord(3, params={"i": 99}), RunRecord(21, params={"i": 16.5})]
        )
        assert store.experiment_token(info.id)[1:3] == (1, 0)
        assert page() == [3, 20, 19, 18, 17, 21, 16]
        assert (cache.reads, cache.updates) == (1, 1)


@pytest.mark.parametrize("backend", ["postgres", "sql-sqlite"])
def test_sql_store_written_before_run_sequences(backend: str, tmp_path) -> None:
    """A SQL store of layout version 4 (before experiments counted the writes of their runs)
    opens as version 5: its runs are kept (``seq`` NULL), its experiments count from 0, and
    (on PostgreSQL) the columns a reader keeps follow each write by reading only its runs."""
    import sqlalchemy as sa

    from trialbook.storage.query import query_runs
    from trialbook.storage.sql import SqlStore
    from trialbook.storage.sql_migrations import SCHEMA_VERSION
    from trialbook.storage.value_cache import cached_page, value_cache

    with _location(backend, tmp_path) as location:
        store = SqlStore(location)
        info = store.create_experiment("before")
        store.write_runs(info.id, [RunRecord(i, params={"i": i}) for i in range(1, 21)])
        schema = f'"{store._db.schema}".' if store._db.schema else ""
        with store._db.engine.begin() as conn:
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {schema}trialbook_runs_by_seq"))
            for table, column in [("runs", "seq"), ("experiments", "seq"),
                                  ("experiments", "deleted_seq"),
                                  ("experiments", "stamp")]:  # fmt: skip
                conn.execute(sa.text(f"ALTER TABLE {schema}trialbook_{table} DROP COLUMN {column}"))
            conn.execute(sa.text(f"UPDATE {schema}trialbook_schema SET version = 4"))
        store.close()
        for _ in range(2):  # upgraded by the first opener, found done by the second
            store = SqlStore(location)
            try:
                assert store.experiment_token(info.id)[1:] == (0, 0, 0)
                assert [r.params["i"] for r in store.read_runs(info.id)] == list(range(1, 21))
                version = store._db.read(sa.text(f"SELECT version FROM {schema}trialbook_schema"))
                assert version[0][0] == SCHEMA_VERSION == 8
            finally:
                store.close()
        with SqlStore(location) as store:
            store.write_runs(info.id, [RunRecord(3, params={"i": 99})])
            assert store.experiment_token(info.id)[1:3] == (1, 0)
            if backend != "postgres":
                return
            cache = value_cache(store)
            cache.min_runs = 0
            args = {"where": "i > 15", "order_by": "i", "descending": True, "limit": 10,
                    "offset": 0, "meta": {}}  # fmt: skip
            cached_page(store, info.id, **args)  # starts reading the columns
            cache.wait()
            assert cached_page(store, info.id, **args) == query_runs(store, info.id, **args)
            store.write_runs(info.id, [RunRecord(21, params={"i": 16.5})])
            _, runs = cached_page(store, info.id, **args)
            assert [r.run_id for r in runs] == [3, 20, 19, 18, 17, 21, 16]
            assert (cache.reads, cache.updates) == (1, 1)


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "sql-sqlite"])
def test_store_written_before_write_stamps(backend: str, tmp_path) -> None:
    """A store of SQLite schema version 6 / SQL layout version 5 (before each write stamped its
    experiment with a random number) opens at the current version: its runs and counts are
    kept, the stamp is 0 until the next write, which sets a random one."""
    import sqlalchemy as sa

    from trialbook.storage import sqlite_schema
    from trialbook.storage.sql import SqlStore
    from trialbook.storage.sql_migrations import SCHEMA_VERSION

    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            location: Any = tmp_path / "store"
            opened: Any = lambda: open_store(location)  # noqa: E731
        else:
            location = stack.enter_context(_location(backend, tmp_path))
            opened = lambda: SqlStore(location)  # noqa: E731
        with opened() as store:
            info = store.create_experiment("before")
            store.write_runs(info.id, [RunRecord(i) for i in range(1, 6)])
            store.delete_runs(info.id, [5])
            if backend == "sqlite":
                version = "PRAGMA user_version"
                undo = ["ALTER TABLE experiments DROP COLUMN stamp", "PRAGMA user_version=6"]
            else:
                schema = f'"{store._db.schema}".' if store._db.schema else ""
                version = f"SELECT version FROM {schema}trialbook_schema"
                with store._db.engine.begin() as conn:
                    conn.execute(sa.text(f"ALTER TABLE {schema}trialbook_experiments "
                                         "DROP COLUMN stamp"))  # fmt: skip
                    conn.execute(sa.text(f"UPDATE {schema}trialbook_schema SET version = 5"))
        if backend == "sqlite":
            conn = sqlite3.connect(location / sqlite_schema.DB_NAME, isolation_level=None)
            _before_value_segments(conn)
            for statement in undo:
                conn.execute(statement)
            conn.close()
        for _ in range(2):  # upgraded by the first opener, found done by the second
            with opened() as store:
                assert store.experiment_token(info.id)[1:] == (2, 2, 0)
                assert [r.run_id for r in store.read_runs(info.id)] == [1, 2, 3, 4]
        with opened() as store:
            store.write_runs(info.id, [RunRecord(6)])
            token = store.experiment_token(info.id)
            assert token[1:3] == (3, 2) and token[3] != 0
            assert [r.run_id for r in store.read_runs(info.id)] == [1, 2, 3, 4, 6]
            read = store._db.read(version if backend == "sqlite" else sa.text(version))
            assert read[0][0] == (sqlite_schema.SCHEMA_VERSION if backend == "sqlite"
                                  else SCHEMA_VERSION)  # fmt: skip


NUMPY_RUNS = [
    RunRecord(1, params={"lr": encode(np.float32(0.1))},
              fields={"acc": encode(np.float64(0.25)), "w": encode(np.ones(3))},
              result=encode(np.int64(3))),
    RunRecord(2, fields={"acc": encode(np.float64(0.75)), "n": 2}),
    RunRecord(3, fields={"acc": 0.9}),
]  # fmt: skip
"""Runs with NumPy numbers (and one without), for the upgrade below."""
BUNDLES_ONLY = {1: '{"f":{}}', 2: '{"f":{"n":2}}'}
"""The documents of :data:`NUMPY_RUNS` 1 and 2 as trialbook wrote them before documents held
the plain values of NumPy numbers (those were in the bundles only)."""


def _keep_numpy_in_bundles_only(backend: str, store: Any, location: Any, e: int) -> None:
    """Make ``store`` (closed after) what an earlier trialbook wrote: the documents of
    :data:`BUNDLES_ONLY`, and the version or mark of the store from before the upgrade."""
    import sqlalchemy as sa

    from trialbook.storage import sqlite_schema

    if backend == "sqlite":
        store.close()
        conn = sqlite3.connect(location / sqlite_schema.DB_NAME, isolation_level=None)
        _before_value_segments(conn)
        for run_id, doc in BUNDLES_ONLY.items():
            conn.execute("UPDATE runs SET doc = ? WHERE experiment_id = ? AND run_id = ?",
                         (doc, e, run_id))  # fmt: skip
        conn.execute("PRAGMA user_version=7")
        conn.close()
    elif backend == "redis":
        for run_id, doc in BUNDLES_ONLY.items():
            store._r.hset(store._k("exp", e, "run", run_id), "doc", doc)
        store._r.delete(store._k("numpy_docs"))
    elif backend == "mongo":
        for run_id, doc in BUNDLES_ONLY.items():
            store._db.runs.update_one({"_id": f"{e}/{run_id:012d}"}, {"$set": {"doc": doc}})
        store._db.counters.delete_one({"_id": "numpy_docs"})
    else:
        with store._db.engine.begin() as conn:
            schema = f'"{store._db.schema}".' if store._db.schema else ""
            for run_id, doc in BUNDLES_ONLY.items():
                conn.execute(sa.text(f"UPDATE {schema}trialbook_runs SET doc = :d "
                                     "WHERE experiment_id = :e AND run_id = :r"),
                             {"d": doc, "e": e, "r": run_id})  # fmt: skip
            conn.execute(sa.text(f"UPDATE {schema}trialbook_schema SET version = 6"))
    store.close()


def _token(store: Any, e: int) -> Any:
    """The experiment's change token (SQL stores; ``None`` on the others)."""
    return store.experiment_token(e) if hasattr(store, "experiment_token") else None


@pytest.mark.parametrize("backend", [*BACKENDS, "sql-sqlite"])
def test_store_written_before_numpy_values_in_documents(backend: str, tmp_path) -> None:
    """A store whose runs kept NumPy numbers only in their bundles (not queryable; SQLite
    schema version 7, SQL layout version 6, Redis and MongoDB without their mark) opens with
    those numbers in the runs' documents: queries find them, they read back with their exact
    types, and (SQL stores) the experiments changed count one write, so that no reader keeps
    columns read before; the second opening changes nothing."""
    from trialbook.codecs import decode
    from trialbook.storage.query import query_runs
    from trialbook.storage.sql import SqlStore

    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            location: Any = tmp_path / "store"
        else:
            location = stack.enter_context(_location(backend, tmp_path))
        sql = backend in ("postgres", "sql-sqlite")
        opened: Any = (lambda: SqlStore(location)) if sql else (lambda: open_store(location))
        store = opened()
        info = store.create_experiment("np")
        store.write_runs(info.id, NUMPY_RUNS)
        other = store.create_experiment("other")
        store.write_runs(other.id, [RunRecord(1, fields={"acc": 0.5})])
        before = {e: _token(store, e) for e in (info.id, other.id)}
        _keep_numpy_in_bundles_only(backend, store, location, info.id)
        tokens = []
        for _ in range(2):  # upgraded by the first opener, found done by the second
            with opened() as store:
                found = query_runs(store, info.id, where="acc > 0.5")[1]
                assert [r.run_id for r in found] == [2, 3]
                found = query_runs(store, info.id, where="lr > 0.05 and result == 3")[1]
                assert [r.run_id for r in found] == [1]
                first = store.read_runs(info.id, [1])[0]
                assert first.fields["acc"].plain == 0.25  # from the document
                assert type(decode(first.fields["acc"])) is np.float64
                assert type(decode(first.params["lr"])) is np.float32
                assert decode(first.result) == 3 and type(decode(first.result)) is np.int64
                tokens.append(_token(store, info.id))
                assert _token(store, other.id) == before[other.id]
        assert tokens[0] == tokens[1]
        if before[info.id] is not None:
            assert tokens[0][1] == before[info.id][1] + 1 and tokens[0][3] != before[info.id][3]
