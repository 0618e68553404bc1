"""The embedded SQLite store: opening, refusing what is not ours, schema versions, blobs."""

from __future__ import annotations

import pathlib
import sqlite3

import numpy as np
import pytest

import trialbook
from conftest import Closing
from trialbook.codecs import encode
from trialbook.errors import ConfigError, SchemaVersionError, StoreFormatError
from trialbook.storage import open_store
from trialbook.storage import sqlite_schema as sqlite_store
from trialbook.storage.records import RunRecord
from trialbook.storage.sqlite import SqliteStore


def test_directory_store_layout(tmp_path: pathlib.Path, closing: Closing) -> None:
    store = closing(open_store(tmp_path / "s"))
    info = store.create_experiment("e")
    big = np.zeros(100_000)
    store.write_runs(info.id, [RunRecord(run_id=1, fields={"big": encode(big)})])
    assert (tmp_path / "s" / "trialbook.db").exists()
    blobs = list((tmp_path / "s" / "blobs").rglob("*"))
    assert any(p.is_file() and len(p.name) == 64 for p in blobs)
    conn = closing(sqlite3.connect(tmp_path / "s" / "trialbook.db"))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_file_store_keeps_blobs_inside(tmp_path: pathlib.Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'one.db'}")
    info = store.create_experiment("e")
    store.write_runs(info.id, [RunRecord(run_id=1, fields={"big": encode(np.ones(100_000))})])
    store.close()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("one.db-")) == [
        "one.db"
    ]
    with open_store(f"sqlite:///{tmp_path / 'one.db'}") as reopened:
        (run,) = reopened.read_runs(info.id)
    assert trialbook.codecs.decode(run.fields["big"]).sum() == 100_000


def test_refuses_foreign_sqlite_database(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE important (x)")
    conn.execute("INSERT INTO important VALUES (42)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreFormatError, match="another program"):
        open_store(f"sqlite:///{path}")
    assert path.read_bytes() == before


def test_refuses_corrupt_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not a database at all" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreFormatError, match="not a readable trialbook store"):
        open_store(f"sqlite:///{path}")
    assert path.read_bytes() == before


def test_refuses_non_empty_foreign_directory(tmp_path: pathlib.Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("keep me")
    with pytest.raises(StoreFormatError, match="not a trialbook store"):
        trialbook.create_session(tmp_path / "docs")
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == ["notes.txt"]


def test_refuses_a_file_given_as_directory(tmp_path: pathlib.Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreFormatError, match="sqlite:///"):
        open_store(tmp_path / "f")


def test_refuses_newer_schema(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "new.db"
    open_store(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={sqlite_store.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaVersionError, match="upgrade trialbook"):
        open_store(f"sqlite:///{path}")


def test_migrations_run_in_order_on_open(
    tmp_path: pathlib.Path, monkeypatch, closing: Closing
) -> None:
    path = tmp_path / "old.db"
    store = open_store(f"sqlite:///{path}")
    info = store.create_experiment("kept")
    store.write_runs(info.id, [RunRecord(run_id=1, params={"a": 1})])
    store.close()

    def add_notes_column(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE experiments ADD COLUMN notes TEXT")

    current = sqlite_store.SCHEMA_VERSION
    monkeypatch.setattr(sqlite_store, "SCHEMA_VERSION", current + 1)
    monkeypatch.setitem(sqlite_store.MIGRATIONS, current, add_notes_column)
    reopened = closing(open_store(f"sqlite:///{path}"))
    assert reopened.read_runs(info.id)[0].params == {"a": 1}
    conn = closing(sqlite3.connect(path))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == current + 1
    assert "notes" in [r[1] for r in conn.execute("PRAGMA table_info(experiments)")]


def test_failed_migration_leaves_store_untouched(
    tmp_path: pathlib.Path, monkeypatch, closing: Closing
) -> None:
    path = tmp_path / "old.db"
    open_store(f"sqlite:///{path}").close()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE experiments ADD COLUMN half TEXT")
        raise RuntimeError("migration bug")

    current = sqlite_store.SCHEMA_VERSION
    monkeypatch.setattr(sqlite_store, "SCHEMA_VERSION", current + 1)
    monkeypatch.setitem(sqlite_store.MIGRATIONS, current, broken)
    with pytest.raises(RuntimeError, match="migration bug"):
        open_store(f"sqlite:///{path}")
    conn = closing(sqlite3.connect(path))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == current
    assert "half" not in [r[1] for r in conn.execute("PRAGMA table_info(experiments)")]


def test_version_1_store_gets_the_step_hash_index(tmp_path: pathlib.Path) -> None:
    """A store written before schema version 2 (no index of step hashes by run) is upgraded
    when opened, and deleting a run then removes its step hashes through the index."""
    path = tmp_path / "v1.db"
    store = open_store(f"sqlite:///{path}")
    info = store.create_experiment("e")
    store.write_runs(
        info.id,
        [RunRecord(run_id=1), RunRecord(run_id=2)],
        step_hashes=[("s", "in1", "out1", 1), ("s", "in2", "out2", 2)],
    )
    store.close()
    conn = sqlite3.connect(path)  # back to what version 1 wrote
    conn.execute("DROP INDEX step_hashes_by_run")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    reopened = open_store(f"sqlite:///{path}")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_store.SCHEMA_VERSION
    plan = conn.execute(
        "EXPLAIN QUERY PLAN DELETE FROM step_hashes WHERE experiment_id = 1 AND run_id IN (1)"
    ).fetchall()
    conn.close()
    assert "step_hashes_by_run" in " ".join(str(row) for row in plan)
    reopened.delete_runs(info.id, [1])
    keys = [("s", "in1"), ("s", "in2")]
    assert reopened.get_step_hashes(info.id, keys) == {("s", "in2"): ("out2", 2)}
    reopened.close()


def test_version_2_store_never_reuses_experiment_ids(tmp_path: pathlib.Path) -> None:
    """A store written in schema version 2 (``experiments.id`` without ``AUTOINCREMENT``, so
    the largest id came back after a delete) keeps every experiment, id and run when opened;
    after that no id is given again, nor one that only rows left by a late write still name."""
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path)  # what version 2 wrote: the version 1 tables and one index
    conn.executescript(sqlite_store._SCHEMA_V1)
    conn.executescript(
        """
        CREATE INDEX step_hashes_by_run ON step_hashes (experiment_id, run_id);
        INSERT INTO experiments VALUES (1, 'a', 1.0, 2.0, 3, '{"k": 1}');
        INSERT INTO experiments VALUES (2, 'b', 1.0, 2.0, 1, NULL);
        INSERT INTO experiments VALUES (4, 'top', 1.0, 2.0, 2, NULL);
        INSERT INTO runs (experiment_id, run_id, kind, status, doc)
            VALUES (1, 1, 'run', 'done', '{"p": {"x": 1}}'), (4, 1, 'run', 'done', NULL),
                   (6, 1, 'run', 'done', NULL);
        """
    )  # experiment 6 was deleted; a late write left a run of it
    conn.execute(f"PRAGMA application_id={sqlite_store.APPLICATION_ID}")
    conn.execute("PRAGMA user_version=2")
    conn.commit()
    conn.close()
    store = open_store(f"sqlite:///{path}")
    infos = [(e.id, e.name, e.runs, e.meta) for e in store.list_experiments()]
    assert infos == [(1, "a", 1, {"k": 1}), (2, "b", 0, {}), (4, "top", 1, {})]
    assert store.read_runs(1)[0].params == {"x": 1}
    assert store.allocate_run_ids(1, 1) == range(3, 4)  # next_run_id kept
    store.delete_experiment("top")
    assert store.create_experiment("new").id == 7  # not 4 (the largest), not 6 (a run names it)
    store.delete_experiment("new")
    assert store.create_experiment("newer").id == 8
    store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_store.SCHEMA_VERSION
    conn.close()


def test_unknown_scheme_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"known schemes: .*sqlite"):
        open_store("ftp://example/x")


def test_tracer_sees_statements(tmp_path: pathlib.Path, closing: Closing) -> None:
    seen: list[str] = []
    store = closing(SqliteStore(tmp_path / "t.db", tracer=lambda sql, params: seen.append(sql)))
    store.create_experiment("x")
    assert any(s.startswith("INSERT INTO experiments") for s in seen)


def test_persisting_cost_does_not_depend_on_other_experiments(tmp_path: pathlib.Path) -> None:
    """Statements issued to persist one experiment are the same in an empty and a full store."""

    def statements_for_one_experiment(store_path: pathlib.Path, others: int) -> list[str]:
        with trialbook.create_session(store_path) as session:
            for i in range(others):
                e = session.create_experiment(f"other-{i}")
                e.add_run(i=i)
                e.persist()
        seen: list[str] = []
        with open_store(store_path, tracer=lambda s, p: seen.append(s)) as store:
            e = trialbook.Session(store).create_experiment("mine")
            e.add_runs(x=[1, 2, 3])
            e.execute(lambda run: run.fields.update(y=1)).persist()
        return seen

    assert statements_for_one_experiment(tmp_path / "a", 0) == statements_for_one_experiment(
        tmp_path / "b", 50
    )


def test_large_metric_chunks_are_files_removed_with_their_experiment(
    tmp_path: pathlib.Path,
    closing: Closing,
) -> None:
    session = closing(trialbook.create_session(tmp_path / "s"))
    for name in ("keep", "drop"):
        experiment = session.create_experiment(name)
        with experiment.run() as run:
            for i in range(50_000):
                run.log_metric("loss", i)
        experiment.persist()

    def chunk_files() -> list[str]:
        return sorted(p.name for p in (tmp_path / "s" / "blobs").rglob("m*") if p.is_file())

    assert len(chunk_files()) == 2
    session.delete_experiment("drop")
    assert len(chunk_files()) == 1
    values = session.load_experiment("keep").runs[1].metrics("loss")["value"]
    assert values.tolist() == list(range(50_000))


def test_retried_write_of_a_large_chunk_leaves_one_file(tmp_path: pathlib.Path) -> None:
    """A metric chunk stored as a file, written again by a retry: the replaced chunk's file is
    removed with the commit (nothing is left for the garbage collection)."""
    from trialbook.testing import metric_chunk

    store = open_store(tmp_path / "store")
    info = store.create_experiment("big")
    points = [float(i) for i in range(20_000)]  # over the inline limit: a file
    for _ in range(2):
        store.write_runs(info.id, [RunRecord(1)], [metric_chunk(1, "m", points)])
    assert store.read_metrics(info.id, "m", [1])[1].values.tolist() == points
    files = [p for p in (tmp_path / "store" / "blobs").rglob("*") if p.is_file()]
    assert len(files) == 1
    assert store.collect_garbage(min_age=0).blobs == 0
    store.close()
