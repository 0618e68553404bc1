"""The embedded SQLite store under stress from outside: another process holding the write lock,
a full disk, a network filesystem (issue 20, item 12)."""

from __future__ import annotations

import os
import pathlib
import shutil
import sqlite3
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator

import pytest
from tests.conftest import need

from trialbook.errors import StorageError, TrialbookWarning
from trialbook.storage import open_store, sqlite_engine
from trialbook.storage.records import RunRecord
from trialbook.storage.sqlite import SqliteStore
from trialbook.storage.sqlite_engine import SqliteConnection, network_filesystem

# -- reads while a write waits for another process's lock --------------------------------------

_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""
"""Another process: holds the write lock of the database until a line arrives on stdin."""


def test_reads_do_not_wait_for_a_write_that_waits_for_another_process(
    tmp_path: pathlib.Path,
) -> None:
    """A second process holds ``BEGIN IMMEDIATE``; this process's write (in a thread) waits for
    it, and a read in another thread returns while that write is still waiting."""
    waiting = threading.Event()
    writer_ident: list[int] = []

    def tracer(sql: str, params: object) -> None:
        if sql == "BEGIN IMMEDIATE" and threading.get_ident() in writer_ident:
            waiting.set()

    path = tmp_path / "s.db"
    store = SqliteStore(path, tracer=tracer, timeout=300)
    info = store.create_experiment("e")
    store.write_runs(info.id, [RunRecord(run_id=1)])
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "locked"

        def write() -> None:
            writer_ident.append(threading.get_ident())
            store.write_runs(info.id, [RunRecord(run_id=2)])

        writer = threading.Thread(target=write)
        writer.start()
        assert waiting.wait(120), "the write never started its transaction"
        got: list[list[int]] = []
        reader = threading.Thread(
            target=lambda: got.append([r.run_id for r in store.read_runs(info.id)])
        )
        reader.start()
        reader.join(120)  # a bound for a broken build, not a timing: the read must not wait
        read_while_writing = list(got)
        writer_was_waiting = writer.is_alive()
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.wait(120) == 0
        writer.join(120)
        reader.join(120)
        assert read_while_writing == [[1]], "the read waited for the blocked write"
        assert writer_was_waiting
        assert not writer.is_alive()
        assert [r.run_id for r in store.read_runs(info.id)] == [1, 2]
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.communicate()  # waits, and closes the pipes
        store.close()


def test_a_read_inside_a_transaction_sees_its_changes(tmp_path: pathlib.Path) -> None:
    """Reads of the thread that writes go through the write connection (the read connection
    would not see the open transaction)."""
    db = SqliteConnection(str(tmp_path / "s.db"), "s")
    with db.tx():
        db.exec("INSERT INTO snapshots VALUES ('d', 'code', 'x')")
        assert db.read("SELECT kind FROM snapshots") == [("code",)]
        seen: list[object] = []
        other = threading.Thread(target=lambda: seen.append(db.read("SELECT * FROM snapshots")))
        other.start()
        other.join(60)
        assert seen == [[]]  # another thread reads the committed state, without waiting
    assert db.read("SELECT kind FROM snapshots") == [("code",)]
    db.close()


# -- errors during a transaction: the original one is raised ----------------------------------


def test_the_error_stays_when_sqlite_already_rolled_back(tmp_path: pathlib.Path) -> None:
    """SQLite rolls a transaction back by itself on some errors (a full disk, an I/O error);
    the ``ROLLBACK`` that follows must not replace the error with "no transaction is active"."""
    db = SqliteConnection(str(tmp_path / "s.db"), "s")

    def fail_after_sqlite_rolled_back() -> None:
        with db.tx():
            db.exec("INSERT INTO snapshots VALUES ('d', 'code', 'x')")
            db.exec("ROLLBACK")  # as SQLite does after a full disk
            raise ValueError("the original error")

    with pytest.raises(ValueError, match=r"^the original error$"):
        fail_after_sqlite_rolled_back()
    assert db.read("SELECT count(*) FROM snapshots") == [(0,)]
    with db.tx():
        db.exec("INSERT INTO snapshots VALUES ('d', 'code', 'x')")
    assert db.read("SELECT count(*) FROM snapshots") == [(1,)]
    db.close()


@pytest.fixture
def tiny_disk(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A 2 MiB tmpfs of the test's own (needs root: skipped with the reason otherwise, and a
    failure under CI, which runs as root)."""
    point = tmp_path / "tiny"
    point.mkdir()
    reason = "mounting a 2 MiB tmpfs needs root and the mount command"
    if os.geteuid() == 0 and shutil.which("mount"):
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(point)],
            capture_output=True,
            text=True,
            check=False,
        )
        reason = f"mount -t tmpfs was refused: {done.stderr.strip()}"
        mounted = done.returncode == 0
    else:
        mounted = False
    if not mounted and os.environ.get("CI") == "true":
        pytest.fail(f"required under CI: {reason}")
    need(mounted, reason)
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def _write_until_full(store: SqliteStore, experiment_id: int) -> tuple[int, StorageError]:
    """Runs of 100 KB until a write fails: its run id and error."""
    for run_id in range(1, 100):
        try:
            store.write_runs(experiment_id, [RunRecord(run_id, fields={"t": "x" * 100_000})])
        except StorageError as exc:
            return run_id, exc
    raise AssertionError("the 2 MiB disk never filled")


def test_a_full_disk_is_reported_as_a_full_disk(tiny_disk: pathlib.Path) -> None:
    """Writes until the disk is full: the error says so (not "cannot rollback"), the runs
    written before are intact, and once there is room again the store writes again."""
    ballast = tiny_disk / "ballast"
    ballast.write_bytes(b"\0" * 600_000)
    store = open_store(f"sqlite:///{tiny_disk / 's.db'}")  # large values inside the file
    info = store.create_experiment("e")
    run_id, error = _write_until_full(store, info.id)
    assert "database or disk is full" in str(error), str(error)
    assert "free some space" in str(error)
    cause = error.__cause__
    assert isinstance(cause, sqlite3.OperationalError) and "full" in str(cause)
    assert run_id > 1
    assert [r.run_id for r in store.read_runs(info.id)] == list(range(1, run_id))
    ballast.unlink()
    store.write_runs(info.id, [RunRecord(run_id, fields={"t": "y"})])
    runs = store.read_runs(info.id)
    assert [r.run_id for r in runs] == list(range(1, run_id + 1))
    assert runs[0].fields["t"] == "x" * 100_000 and runs[-1].fields["t"] == "y"
    store.close()


# -- network filesystems ----------------------------------------------------------------------


def test_network_filesystem_reads_the_mount_table() -> None:
    table = "\n".join([
        "/dev/sda1 / ext4 rw 0 0",
        "nas:/home /home nfs4 rw 0 0",
        "/dev/sdb1 /home/local ext4 rw 0 0",
        "lfs@o2ib:/scratch /scratch\\040space lustre rw 0 0",
        "gpfs0 /gpfs gpfs rw 0 0",
    ])  # fmt: skip
    assert network_filesystem("/home/ann/store/trialbook.db", table) == ("nfs4", "/home")
    assert network_filesystem("/home/local/store/trialbook.db", table) is None
    assert network_filesystem("/homework/trialbook.db", table) is None
    assert network_filesystem("/scratch space/s.db", table) == ("lustre", "/scratch space")
    assert network_filesystem("/gpfs/proj/s.db", table) == ("gpfs", "/gpfs")
    assert network_filesystem("/tmp/s.db", table) is None


def test_a_store_on_a_network_filesystem_is_warned_about_once(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mount table says the test's folder is NFS: opening a store there warns once (with
    what to do instead); an in-memory store never does."""
    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/sda1 / ext4 rw 0 0\nnas:/x {os.path.realpath(tmp_path)} nfs 0 0\n")
    monkeypatch.setattr(sqlite_engine, "MOUNTS", str(mounts))
    with pytest.warns(TrialbookWarning, match="network filesystem") as caught:
        store = open_store(str(tmp_path / "store"))
    message = str(caught[0].message)
    assert "nfs" in message and "PostgreSQL" in message and "local disk" in message
    store.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        open_store(str(tmp_path / "store")).close()  # once per store file
        open_store("sqlite:///:memory:").close()
