"""The long read of a store's columns gives way to the reads a user waits for (issue 15): on
SQLite, whose JSON functions contend for one allocator lock in a process, and on PostgreSQL,
which computes a streamed statement's rows only as they are fetched. Each test holds a real
read under way (a statement blocked in a function of the test) and sees the long read wait
for its end; a read that lasts lets the long read go on after a second."""

from __future__ import annotations

import pathlib
import threading
import time

import sqlalchemy as sa

from trialbook.storage.sql_engine import SqlConnection
from trialbook.storage.sqlite_engine import SqliteConnection


def test_sqlite_long_read_waits_for_a_read_under_way(tmp_path: pathlib.Path) -> None:
    db = SqliteConnection(str(tmp_path / "t.db"), "sqlite:///t.db")
    released = threading.Event()
    db.create_function("tb_test_block", 0, lambda: released.wait(10) and 1)
    db.exec("CREATE TABLE t (x)")
    db.exec("INSERT INTO t VALUES (1), (2)")
    blocked = threading.Thread(target=db.read, args=("SELECT tb_test_block()", ()))
    blocked.start()
    while not db._read_lock.locked():  # the read is under way
        time.sleep(0.01)
    chunks: list[list[tuple[int]]] = []
    long = threading.Thread(target=lambda: chunks.extend(db.read_apart("SELECT x FROM t")))
    long.start()
    long.join(0.3)
    assert chunks == []  # it waits
    released.set()
    long.join(5)
    blocked.join(5)
    assert chunks == [[(1,), (2,)]]
    db.close()


def test_sqlite_long_read_goes_on_after_a_second(tmp_path: pathlib.Path) -> None:
    """A read that lasts (or reads that follow each other) holds the long read up a second
    per chunk at most, not for as long as it lasts."""
    db = SqliteConnection(str(tmp_path / "t.db"), "sqlite:///t.db")
    db.exec("CREATE TABLE t (x)")
    db.exec("INSERT INTO t VALUES (1), (2)")
    rows = db.read_apart("SELECT x FROM t", size=1)
    assert next(rows) == [(1,)]
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db._read_lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    assert next(rows) == [(2,)] and not release.is_set()  # went on while the read lasts
    release.set()
    holder.join(5)
    assert list(rows) == []
    db.close()


def test_sql_give_way_waits_for_a_read_under_way(tmp_path: pathlib.Path) -> None:
    db = SqlConnection(f"sqlite:///{tmp_path / 'core.db'}")
    released = threading.Event()

    @sa.event.listens_for(db.engine, "connect")
    def functions(conn: object, record: object) -> None:
        conn.create_function("tb_test_block", 0, lambda: released.wait(10) and 1)  # type: ignore[attr-defined]

    db.engine.dispose()  # the connections opened before have no such function
    blocked = threading.Thread(target=db.read, args=(sa.text("SELECT tb_test_block()"),))
    blocked.start()
    while not db._reads:
        time.sleep(0.01)
    waited = threading.Thread(target=db.give_way)
    waited.start()
    waited.join(0.3)
    assert waited.is_alive()  # it waits
    released.set()
    waited.join(5)
    blocked.join(5)
    assert not waited.is_alive() and db._reads == 0
    db.close()
