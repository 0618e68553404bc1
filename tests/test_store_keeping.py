"""Keeping an embedded store (issue 16, "Tools"): corruption detected on read, ``trialbook gc``
while another process writes, ``trialbook check``, ``backup`` and ``restore``.

Real directory and file stores in ``tmp_path``; damage is done to the files on disk as a disk
or a careless user would (bytes flipped, files deleted).
"""

from __future__ import annotations

import pathlib
import sqlite3
import threading
from typing import Any

import numpy as np
import pytest

import trialbook
from conftest import Closing
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
