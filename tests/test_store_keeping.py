"""Keeping an embedded store (issue 16, "Tools"): corruption detected on read, ``trialbook gc``
while another process writes, ``trialbook check``, ``backup`` and ``restore``.

Real directory and file stores in ``tmp_path``; damage is done to the files on disk as a disk
or a careless user would (bytes flipped, files deleted).
"""

from __future__ import annotations

import pathlib
import sqlite3
import subprocess
import sys
import threading
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import trialbook
from conftest import Closing, backend_location
from trialbook.cli import cli
from trialbook.codecs import Encoded
from trialbook.errors import CorruptStoreError
from trialbook.storage.records import RunRecord
from trialbook.storage.sqlite import SqliteStore
from trialbook.testing import metric_chunk

BIG = 40_000
"""Points of a metric (and items of an array) large enough to live in a file of their own."""


def _write_big_run(store: SqliteStore, name: str = "e", value: float = 1.0) -> int:
    """An experiment with one run whose field ``w`` and metric ``loss`` each live in a file."""
    info = store.create_experiment(name)
    field = Encoded("npy-raw", np.full(BIG, value).tobytes())
    store.write_runs(
        info.id,
        [RunRecord(1, fields={"w": field}, status="done")],
        [metric_chunk(1, "loss", [value] * BIG)],
    )
    return info.id


def _files(directory: pathlib.Path) -> dict[str, pathlib.Path]:
    """Blob files by kind: ``blob`` (content-addressed) and ``chunk`` (metric chunk)."""
    found = {}
    for path in (directory / "blobs").glob("*/*"):
        found["chunk" if path.name.startswith("m") else "blob"] = path
    return found


def _flip_byte(path: pathlib.Path, at: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


# -- corruption is detected, not returned ----------------------------------------------------


def test_changed_blob_bytes_raise_naming_the_run_and_field(
    tmp_path: pathlib.Path, closing: Closing
) -> None:
    store = closing(SqliteStore.from_directory(tmp_path / "s"))
    eid = _write_big_run(store)
    _flip_byte(_files(tmp_path / "s")["blob"])
    with pytest.raises(
        CorruptStoreError,
        match=r"^field 'w' of run 1 of experiment 'e' is corrupt: blob [0-9a-f]{64}: its bytes "
        r"\(320000\) hash to .* changed after it was written \(file .*\); restore the store",
    ) as caught:
        store.read_runs(eid)
    assert (caught.value.run_id, caught.value.field, caught.value.experiment) == (
        1,
        "field 'w'",
        "e",
    )
    assert store.read_metrics(eid, "loss", [1])[1].values[-1] == 1.0  # the chunk is intact


def test_changed_or_truncated_metric_chunk_raises_naming_the_metric(
    tmp_path: pathlib.Path, closing: Closing
) -> None:
    store = closing(SqliteStore.from_directory(tmp_path / "s"))
    eid = _write_big_run(store)
    chunk = _files(tmp_path / "s")["chunk"]
    _flip_byte(chunk, at=24 * BIG - 3)  # a byte of the last time stamp: same size, new hash
    with pytest.raises(CorruptStoreError, match=r"^metric 'loss' of run 1 of experiment 'e'"):
        store.read_metrics(eid, "loss", [1])
    chunk.write_bytes(chunk.read_bytes()[:-8])
    with pytest.raises(CorruptStoreError, match=r"its bytes \(959992\) hash to"):
        store.read_metrics(eid, "loss", [1])


def test_old_chunk_files_without_a_hash_are_still_checked_for_size(
    tmp_path: pathlib.Path, closing: Closing
) -> None:
    """Chunk files written before their names carried a hash (``m`` + 32 hex) still read."""
    store = closing(SqliteStore.from_directory(tmp_path / "s"))
    eid = _write_big_run(store)
    chunk = _files(tmp_path / "s")["chunk"]
    old = chunk.with_name(chunk.name[:33])
    chunk.rename(old)
    with sqlite3.connect(tmp_path / "s" / "trialbook.db") as db:
        db.execute("UPDATE metrics SET blob = ?", (old.name,))
    db.close()
    assert store.read_metrics(eid, "loss", [1])[1].values.sum() == BIG
    old.write_bytes(old.read_bytes()[:-8])
    with pytest.raises(CorruptStoreError, match="holds 959992 bytes, not the 960000 of 40000"):
        store.read_metrics(eid, "loss", [1])


def test_loading_a_damaged_run_through_a_session_raises(
    store_dir: pathlib.Path, closing: Closing
) -> None:
    session = closing(trialbook.create_session(store_dir))
    experiment = session.create_experiment("sweep")
    experiment.add_run(x=1).fields.weights = np.arange(100_000.0)
    experiment.persist()
    _flip_byte(_files(store_dir)["blob"], at=5000)
    fresh = closing(trialbook.create_session(store_dir))
    with pytest.raises(CorruptStoreError, match="field 'weights' of run 1 of experiment 'sweep'"):
        fresh.load_experiment("sweep").runs[1].fields.weights  # noqa: B018


def _damage_server_blob(store: Any) -> None:
    """Change one byte of every blob of a server store, through its own connection."""
    name = type(store).__name__
    if name == "SqlStore":
        import sqlalchemy as sa

        from trialbook.storage.sql_schema import blobs_t

        with store._db.engine.begin() as conn:
            byte = 255 - sa.func.get_byte(blobs_t.c.data, 5000)
            conn.execute(
                sa.update(blobs_t).values(data=sa.func.set_byte(blobs_t.c.data, 5000, byte))
            )
    elif name == "RedisStore":
        for key in store._r.scan_iter(match=store._k("blob", "*")):
            data = bytearray(store._r.get(key))
            data[5000] ^= 0xFF
            store._r.set(key, bytes(data))
    else:
        for doc in store._db.blobs.find({}):
            data = bytearray(doc["data"])
            data[5000] ^= 0xFF
            store._db.blobs.update_one({"_id": doc["_id"]}, {"$set": {"data": bytes(data)}})


@pytest.mark.parametrize("backend", ["postgres", "redis", "mongo"])
def test_loading_a_damaged_run_from_a_server_raises(tmp_path: pathlib.Path, backend: str) -> None:
    """A blob changed in the server's database raises on read, naming the run and the field
    (its content hash is checked, as the embedded store checks its files): on load, on
    ``read_runs`` and on PostgreSQL's column-wise read."""
    with backend_location(backend, tmp_path) as url:
        with trialbook.create_session(url) as session:
            experiment = session.create_experiment("sweep")
            experiment.add_run(x=1).fields.weights = np.arange(100_000.0)
            experiment.persist()
            _damage_server_blob(session.store)
        with (
            trialbook.create_session(url) as fresh,
            pytest.raises(CorruptStoreError, match="field 'weights' of run 1 of experiment"),
        ):
            fresh.load_experiment("sweep").runs[1].fields.weights  # noqa: B018


def test_damaged_blob_of_a_file_store_raises(tmp_path: pathlib.Path, closing: Closing) -> None:
    store = closing(SqliteStore(tmp_path / "one.db"))
    eid = _write_big_run(store)
    with sqlite3.connect(tmp_path / "one.db") as db:
        db.execute("UPDATE blobs SET data = zeroblob(length(data))")
    db.close()
    with pytest.raises(CorruptStoreError, match=r"^field 'w' of run 1 of experiment 'e'"):
        store.read_runs(eid)


def test_damaged_artifact_raises_naming_it(tmp_path: pathlib.Path, closing: Closing) -> None:
    store = closing(SqliteStore.from_directory(tmp_path / "s"))
    info = store.create_experiment("e")
    store.write_runs(info.id, [RunRecord(1)])
    store.write_artifact(info.id, 1, "model", Encoded("bytes", bytes(300_000)))
    _flip_byte(_files(tmp_path / "s")["blob"])
    with pytest.raises(CorruptStoreError, match=r"^artifact 'model' of run 1 of experiment 'e'"):
        store.read_artifact(info.id, 1, "model")


# -- gc while another process writes ----------------------------------------------------------


class _Gate:
    """A tracer that holds the write of its store at its ``BEGIN IMMEDIATE`` (its blob and chunk
    files written, its transaction not begun) until :meth:`open` is called."""

    def __init__(self) -> None:
        self.reached, self.opened = threading.Event(), threading.Event()
        self.armed = False

    def __call__(self, sql: str, params: Any) -> None:
        if self.armed and sql == "BEGIN IMMEDIATE":
            self.armed = False
            self.reached.set()
            assert self.opened.wait(60), "the test never opened the gate"

    def open(self) -> None:
        self.opened.set()


def test_gc_never_removes_files_of_a_write_not_yet_committed(
    tmp_path: pathlib.Path, closing: Closing
) -> None:
    """Even with no grace period (``min_age=0``): gc removes the files of a write waiting for its
    transaction (they are unreferenced), and the write, which checks its files under the write
    lock, writes them again before it commits."""
    gate = _Gate()
    writer = closing(SqliteStore.from_directory(tmp_path / "s", tracer=gate))
    info = writer.create_experiment("e")
    gate.armed = True
    failure: list[BaseException] = []

    def write() -> None:
        try:
            _write_runs_of(writer, info.id)
        except BaseException as exc:  # reported by the test thread
            failure.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert gate.reached.wait(60), "the writer never reached its transaction"
        assert set(_files(tmp_path / "s")) == {"blob", "chunk"}
        collector = closing(SqliteStore.from_directory(tmp_path / "s"))
        report = collector.collect_garbage(min_age=0)
        assert report.blobs == 2  # the interleaving happened: both files were removed
        assert _files(tmp_path / "s") == {}
    finally:
        gate.open()
        thread.join(60)
    assert not failure, failure
    reader = closing(SqliteStore.from_directory(tmp_path / "s"))
    (run,) = reader.read_runs(info.id)
    assert np.frombuffer(run.fields["w"].data).sum() == 2.0 * BIG
    assert reader.read_metrics(info.id, "loss", [1])[1].values.sum() == 2.0 * BIG
    assert reader.collect_garbage(min_age=0).blobs == 0


def _write_runs_of(store: SqliteStore, experiment_id: int) -> None:
    field = Encoded("npy-raw", np.full(BIG, 2.0).tobytes())
    store.write_runs(
        experiment_id,
        [RunRecord(1, fields={"w": field})],
        [metric_chunk(1, "loss", [2.0] * BIG)],
    )


# -- trialbook check --------------------------------------------------------------------------


def _check(store: pathlib.Path | str) -> Any:
    return CliRunner().invoke(cli, ["check", "--store", str(store)])


def test_check_of_a_healthy_store_exits_0(tmp_path: pathlib.Path, closing: Closing) -> None:
    store = closing(SqliteStore.from_directory(tmp_path / "s"))
    _write_big_run(store)
    result = _check(tmp_path / "s")
    assert (result.exit_code, result.output) == (0, f"no problems in {tmp_path / 's'}\n")


def test_check_names_each_damaged_value_and_how_to_fix_it(
    tmp_path: pathlib.Path, closing: Closing
) -> None:
    store = closing(SqliteStore.from_directory(tmp_path / "s"))
    _write_big_run(store, "a")
    _write_big_run(store, "b", value=2.0)
    files = sorted((tmp_path / "s" / "blobs").glob("*/*"))
    blobs = [p for p in files if not p.name.startswith("m")]
    chunks = [p for p in files if p.name.startswith("m")]
    _flip_byte(blobs[0])
    chunks[0].unlink()
    result = _check(tmp_path / "s")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 3, result.output
    assert sorted(lines[:2]) == sorted(
        [
            f"problem: field 'w' of run 1 of experiment '{_owner(store, blobs[0].name)}' is "
            f"damaged: blob {blobs[0].name}: its bytes (320000) hash to "
            f"{_sha(blobs[0])[:12]}...; the name says {blobs[0].name[:12]}...: they changed "
            "after it was written; fix: delete that run (or its experiment) and compute it "
            "again, or restore the store from a backup made before the damage (trialbook "
            "restore SRC --force)",
            f"problem: metric 'loss' of run 1 of experiment '{_owner(store, chunks[0].name)}' "
            f"is damaged: blob {chunks[0].name}: it is missing; fix: delete that run (or its "
            "experiment) and compute it again, or restore the store from a backup made before "
            "the damage (trialbook restore SRC --force)",
        ]
    )
    assert lines[2] == f"Error: 2 problems in {tmp_path / 's'}"


def _owner(store: SqliteStore, blob: str) -> str:
    """The experiment whose rows refer to ``blob``."""
    with sqlite3.connect(pathlib.Path(store.path)) as db:
        row = db.execute(
            "SELECT e.name FROM experiments e JOIN runs r ON r.experiment_id = e.id "
            "WHERE instr(r.bundle, ?) > 0 UNION SELECT e.name FROM experiments e JOIN metrics m"
            " ON m.experiment_id = e.id WHERE m.blob = ?",
            (blob.encode(), blob),
        ).fetchone()
    db.close()
    return str(row[0])


def _sha(path: pathlib.Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_check_reports_a_damaged_database_file(tmp_path: pathlib.Path, closing: Closing) -> None:
    path = tmp_path / "one.db"
    store = SqliteStore(path)
    info = store.create_experiment("e")
    store.write_runs(info.id, [RunRecord(i, tags={"t": "x" * 500}) for i in range(1, 400)])
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs'").fetchone()
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    data = bytearray(path.read_bytes())
    at = (root - 1) * page_size  # the root page of the runs table: its b-tree header
    data[at : at + 12] = b"\xff" * 12
    path.write_bytes(bytes(data))
    result = _check(f"sqlite:///{path}")
    assert result.exit_code == 1
    assert result.output.startswith("problem: the database file is damaged: ")
    assert "; or recover what SQLite can read: sqlite3 trialbook.db .recover\n" in result.output


def test_check_reports_an_experiment_left_empty_by_a_crash(
    store_dir: pathlib.Path, closing: Closing
) -> None:
    """A process creates an experiment (claiming its name) and is killed before persisting."""
    code = (
        "import os, sys, trialbook; s = trialbook.create_session(sys.argv[1]); "
        "s.create_experiment('sweep'); os._exit(9)"
    )
    child = subprocess.run([sys.executable, "-c", code, str(store_dir)], check=False)
    assert child.returncode == 9
    result = _check(store_dir)
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        f"problem: experiment 'sweep' holds no runs: process {_claim_pid(store_dir)} created it "
        "on this host and ended before persisting any (a crash); fix: delete it "
        "(session.delete_experiment('sweep')), or create it again: create_experiment takes it "
        "over"
    )
    session = closing(trialbook.create_session(store_dir))
    session.create_experiment("sweep").persist()  # taken over
    assert _check(store_dir).exit_code == 0


def _claim_pid(store_dir: pathlib.Path) -> int:
    with trialbook.create_session(store_dir) as session:
        (info,) = session.store.list_experiments()
    return int(info.meta["claim"]["pid"])


def test_check_notes_garbage_without_failing(store_dir: pathlib.Path, closing: Closing) -> None:
    session = closing(trialbook.create_session(store_dir))
    for name in ("a", "b"):
        experiment = session.create_experiment(name)
        experiment.add_run().fields.w = np.full(100_000, ord(name), dtype="f8")
        experiment.persist()
    session.delete_experiment("b")
    result = CliRunner().invoke(cli, ["check", "--store", str(store_dir), "--min-age", "0"])
    assert (result.exit_code, result.output) == (
        0,
        "note: 1 unreferenced blob (0.8 MB) and 0 orphaned rows can be freed with `trialbook gc`"
        f"\nno problems in {store_dir}\n",
    )


# -- trialbook backup / restore ---------------------------------------------------------------


def _contents(location: pathlib.Path | str) -> dict[str, Any]:
    """Every experiment of a store with its runs' fields and metrics, as plain values."""
    out: dict[str, Any] = {}
    with trialbook.create_session(location) as session:
        store = session.store
        for info in store.list_experiments():
            runs = store.read_runs(info.id)
            out[info.name] = [
                (
                    run.run_id,
                    {k: v.data if isinstance(v, Encoded) else v for k, v in run.fields.items()},
                    {
                        name: store.read_metrics(info.id, name, [run.run_id])[
                            run.run_id
                        ].values.tobytes()
                        for name in store.metric_names(info.id, run.run_id)
                    },
                )
                for run in runs
            ]
    return out


def test_backup_and_restore_a_directory_store(tmp_path: pathlib.Path, closing: Closing) -> None:
    store = closing(SqliteStore.from_directory(tmp_path / "s"))
    _write_big_run(store, "a")
    _write_big_run(store, "b", value=2.0)
    runner = CliRunner()
    done = runner.invoke(cli, ["backup", str(tmp_path / "bk"), "--store", str(tmp_path / "s")])
    assert (done.exit_code, done.output) == (
        0,
        f"backed up 2 experiments, 4 blob files (2.6 MB) of {tmp_path / 's'} into "
        f"{tmp_path / 'bk'}\n",
    )
    assert _check(tmp_path / "bk").exit_code == 0
    assert _contents(tmp_path / "bk") == _contents(tmp_path / "s")
    again = runner.invoke(cli, ["backup", str(tmp_path / "bk"), "--store", str(tmp_path / "s")])
    assert again.exit_code == 1
    assert "exists and is not an empty directory" in again.output

    back = runner.invoke(cli, ["restore", str(tmp_path / "bk"), "--store", str(tmp_path / "new")])
    assert (back.exit_code, back.output) == (
        0,
        f"restored 2 experiments, 4 blob files (2.6 MB) from {tmp_path / 'bk'} into "
        f"{tmp_path / 'new'}\n",
    )
    assert _contents(tmp_path / "new") == _contents(tmp_path / "s")
    assert _check(tmp_path / "new").exit_code == 0


def test_restore_refuses_a_store_with_experiments_unless_forced(
    tmp_path: pathlib.Path, closing: Closing
) -> None:
    with SqliteStore.from_directory(tmp_path / "s") as store:
        _write_big_run(store, "a")
        store.backup(tmp_path / "bk")
        store.delete_experiment("a")
        _write_big_run(store, "later", value=3.0)
    runner = CliRunner()
    refused = runner.invoke(cli, ["restore", str(tmp_path / "bk"), "--store", str(tmp_path / "s")])
    assert refused.exit_code == 1
    assert "is not empty (it has 1 experiments); nothing was restored" in refused.output
    assert list(_contents(tmp_path / "s")) == ["later"]
    forced = runner.invoke(
        cli, ["restore", str(tmp_path / "bk"), "--store", str(tmp_path / "s"), "--force"]
    )
    assert forced.exit_code == 0, forced.output
    assert _contents(tmp_path / "s") == _contents(tmp_path / "bk")
    assert list(_contents(tmp_path / "s")) == ["a"]


def test_backup_while_another_process_deletes_and_collects(
    tmp_path: pathlib.Path, closing: Closing
) -> None:
    """Between the database snapshot and the copy of its files, another store deletes an
    experiment, collects its files and writes a new one: the first snapshot is stale (a file it
    refers to is gone), so the backup takes another; the result is complete and consistent."""
    store = closing(SqliteStore.from_directory(tmp_path / "s"))
    _write_big_run(store, "a")
    _write_big_run(store, "b", value=2.0)
    other = closing(SqliteStore.from_directory(tmp_path / "s"))
    snapshots = []

    def meanwhile() -> None:
        snapshots.append(len(snapshots))
        if len(snapshots) == 1:
            other.delete_experiment("b")
            assert other.collect_garbage(min_age=0).blobs == 1  # b's field; its chunk is gone
            _write_big_run(other, "c", value=3.0)

    report = store.backup(tmp_path / "bk", on_snapshot=meanwhile)
    assert snapshots == [0, 1]
    assert (report.experiments, report.files) == (2, 4)
    assert list(_contents(tmp_path / "bk")) == ["a", "c"]
    assert _contents(tmp_path / "bk") == _contents(tmp_path / "s")
    assert _check(tmp_path / "bk").exit_code == 0
    assert len(list((tmp_path / "bk" / "blobs").glob("*/*"))) == 4  # only what it refers to


def test_backup_of_a_file_store_and_restore_into_one(tmp_path: pathlib.Path) -> None:
    with SqliteStore(tmp_path / "one.db") as store:
        _write_big_run(store, "a")
        assert store.backup(tmp_path / "bk").files == 0  # its blobs are rows of the database
    with SqliteStore.from_directory(tmp_path / "dir") as store:
        _write_big_run(store, "d")
        store.backup(tmp_path / "bk2")
    with SqliteStore(tmp_path / "other.db") as target:
        report = target.restore(tmp_path / "bk2")
    assert report.files == 2
    assert _contents(f"sqlite:///{tmp_path / 'other.db'}") == _contents(tmp_path / "dir")
    assert _check(f"sqlite:///{tmp_path / 'other.db'}").exit_code == 0
    assert _contents(tmp_path / "bk") == _contents(f"sqlite:///{tmp_path / 'one.db'}")


def test_backup_of_a_server_store_names_the_servers_tool(tmp_path: pathlib.Path) -> None:
    with backend_location("postgres", tmp_path) as url:
        trialbook.create_session(url).close()
        result = CliRunner().invoke(cli, ["backup", str(tmp_path / "bk"), "--store", url])
    assert result.exit_code == 1
    assert "back up the server store" in result.output
    assert "with pg_dump: pg_dump --format=custom --schema=SCHEMA" in result.output
    assert not (tmp_path / "bk").exists()
