"""The connection of :class:`~trialbook.storage.sqlite.SqliteStore`: opening, transactions,
errors.

:class:`SqliteConnection` opens the database (checking and preparing its schema with
:func:`~trialbook.storage.sqlite_schema.prepare`) and runs statements on it: every write is one
``BEGIN IMMEDIATE`` transaction (:meth:`SqliteConnection.tx`, re-entrant), so processes sharing
the file take turns, and every driver error leaves as one
:class:`~trialbook.errors.StorageError` naming the store. Work that must wait for the commit
(removing files the transaction stopped referring to) is registered with
:meth:`SqliteConnection.after_commit`.

Reads (:meth:`SqliteConnection.read`) go through a second connection of their own: in WAL mode
they never wait for a writer, so a write of this process waiting (up to ``timeout``) for the
write lock of another process does not hold up the reads of its other threads.

A store on a network filesystem (NFS, Lustre, GPFS, CIFS, ...) is warned about once
(:func:`network_filesystem`): WAL needs memory shared by every process that opens the file,
which such filesystems do not give processes of different machines.

Examples
--------
>>> db = SqliteConnection(":memory:", "sqlite:///:memory:")
>>> with db.tx():
...     _ = db.exec("INSERT INTO snapshots VALUES ('d', 'code', 'x')")
>>> db.read("SELECT kind FROM snapshots")
[('code',)]
>>> db.close()
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from trialbook.errors import StorageError, StoreFormatError, TrialbookWarning
from trialbook.storage.sqlite_schema import prepare_retrying, rollback

T = TypeVar("T")

__all__ = ["NETWORK_FILESYSTEMS", "SqliteConnection", "Tracer", "network_filesystem"]

Tracer = Callable[[str, Any], object]

NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "ceph", "fuse.ceph-fuse",
    "glusterfs", "fuse.glusterfs", "beegfs", "fuse.beegfs", "panfs", "wekafs", "9p", "afs",
    "fuse.sshfs", "gfs2", "ocfs2",
})  # fmt: skip
"""Filesystem types (as ``/proc/mounts`` names them) shared between machines."""
MOUNTS = "/proc/mounts"
"""The mount table read by :func:`network_filesystem` (Linux)."""
_warned: set[str] = set()


def network_filesystem(path: str, mounts: str | None = None) -> tuple[str, str] | None:
    r"""``(filesystem type, mount point)`` of ``path`` when it is on a network filesystem (one
    of :data:`NETWORK_FILESYSTEMS`), else ``None``; ``None`` too where there is no mount table
    to read (not Linux). ``mounts`` is the text of the mount table (default: :data:`MOUNTS`).

    Examples
    --------
    >>> table = "/dev/sda1 / ext4 rw 0 0\nnas:/home /home nfs4 rw 0 0\n"
    >>> network_filesystem("/home/ann/.trialbook/trialbook.db", table)
    ('nfs4', '/home')
    >>> network_filesystem("/tmp/store/trialbook.db", table) is None
    True
    """
    if mounts is None:
        try:
            with open(MOUNTS, encoding="utf-8", errors="replace") as file:
                mounts = file.read()
        except OSError:
            return None
    target = os.path.realpath(path)
    best: tuple[str, str] | None = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape(fields[1])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[1])):
            best = (fields[2], point)
    return best if best is not None and best[0] in NETWORK_FILESYSTEMS else None


def _unescape(field: str) -> str:
    """A field of the mount table, where a space is written ``\\040`` (octal escapes)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _warn_if_network_filesystem(path: str, url: str) -> None:
    """Warn once per file when a store is on a network filesystem."""
    found = network_filesystem(path)
    if found is None or path in _warned:
        return
    _warned.add(path)
    fstype, point = found
    warnings.warn(
        f"the SQLite store {url!r} is on a network filesystem ({fstype} mounted at {point!r}): "
        "SQLite's WAL mode is not safe there (it needs memory shared by every process that "
        "opens the store, which processes on different machines, such as Slurm jobs on "
        "several nodes, do not have), and the store may be corrupted or lose runs. Use a "
        "PostgreSQL store for jobs on several machines (postgresql://user@host/db), or give "
        "each job a store of its own on a local disk (e.g. under $TMPDIR), copied to the "
        "shared filesystem once the job has finished",
        TrialbookWarning,
        stacklevel=4,
    )


class SqliteConnection:
    """The connections to the database of a store, shared by its threads: one for writes
    (under :attr:`lock`), one for reads (of a file database; WAL lets it read while a write is
    under way or waiting).

    Parameters
    ----------
    path
        The database file, or ``":memory:"``.
    url
        The store's URL, for messages.
    tracer
        Called as ``tracer(sql, parameters)`` before each statement.
    timeout
        Seconds to wait for another process's write lock before failing.
    """

    def __init__(
        self, path: str, url: str, *, tracer: Tracer | None = None, timeout: float = 30.0
    ) -> None:
        self.path = path
        self.url = url
        self.tracer = tracer
        self.timeout = timeout
        self.lock = threading.RLock()
        """Held by the thread that uses the write connection (:meth:`tx`, :meth:`exec`)."""
        self._depth = 0
        self._writer: int | None = None  # the thread inside tx()
        self._after_commit: list[Callable[[], object]] = []
        self._functions: list[tuple[str, int, Callable[..., Any]]] = []
        self.conn = self._connect(timeout)
        self._read_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        self._readers = 0  # read connections opened: a data version belongs to one
        if path != ":memory:":
            _warn_if_network_filesystem(path, url)

    def _connect(self, timeout: float) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            msg = f"cannot open the SQLite store {self.url!r}: {exc}"
            raise StorageError(msg) from exc
        try:
            prepare_retrying(conn, self.url, self.path, timeout)
        except sqlite3.DatabaseError as exc:
            conn.close()
            msg = (
                f"{self.url!r} is not a readable trialbook store ({exc}); the file may be "
                "corrupt or of another program. Nothing was written"
            )
            raise StoreFormatError(msg) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        """Close the connections."""
        with self.lock:
            self.conn.close()
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (re-entrant); driver errors become ``StorageError``.

        On an error the transaction is rolled back and the error raised is the one that
        caused it (a full disk stays a full disk), never one of the ``ROLLBACK``."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            self._writer = threading.get_ident()
            self._after_commit = []
            try:
                rollback(self.conn)  # a transaction left open by a failed ROLLBACK
                self.exec("BEGIN IMMEDIATE")
                try:
                    yield self.conn
                    self.exec("COMMIT")
                except BaseException:
                    rollback(self.conn)
                    raise
            except sqlite3.Error as exc:
                raise self.error(exc) from exc
            finally:
                self._depth = 0
                self._writer = None
            for work in self._after_commit:
                work()

    def after_commit(self, work: Callable[[], object]) -> None:
        """Inside :meth:`tx`: call ``work()`` once the transaction committed (never if it
        rolled back)."""
        self._after_commit.append(work)

    def error(self, exc: sqlite3.Error) -> StorageError:
        """A driver error as the :class:`StorageError` to raise."""
        hint = ""
        text = str(exc)
        if "locked" in text or "busy" in text:
            hint = "; another process held the write lock for too long"
        elif "disk is full" in text:
            hint = "; free some space on its disk (or raise its quota) and write again"
        return StorageError(f"SQLite store {self.url!r}: {exc}{hint}")

    def exec(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        """Run a statement on the write connection (inside :meth:`tx`, or holding
        :attr:`lock`)."""
        if self.tracer is not None:
            self.tracer(sql, params)
        return self.conn.execute(sql, params)

    def execmany(self, sql: str, rows: Sequence[Any]) -> None:
        """Run a statement once per row of parameters (inside :meth:`tx`)."""
        if self.tracer is not None:
            self.tracer(sql, rows)
        self.conn.executemany(sql, rows)

    def read(self, sql: str, params: Any = ()) -> list[Any]:
        """The rows of a query; driver errors become ``StorageError``.

        Runs on the read connection, so it waits neither for a write of another thread nor for
        one waiting for another process's lock; inside :meth:`tx` (the same thread), or on an
        in-memory database, on the write connection, which sees the transaction's changes."""
        if self.path == ":memory:" or self._writer == threading.get_ident():
            with self.lock:
                try:
                    return self.exec(sql, params).fetchall()
                except sqlite3.Error as exc:
                    raise self.error(exc) from exc
        with self._read_lock:
            try:
                reader = self._reader or self._open_reader()
                if self.tracer is not None:
                    self.tracer(sql, params)
                return reader.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self.error(exc) from exc

    def read_snapshot(self, reading: Callable[[Callable[[str, Any], list[Any]]], T]) -> T:
        """``reading(read)``, where ``read(sql, params)`` returns the rows of a query, all
        queries in one snapshot (one read transaction); as :meth:`read` otherwise."""
        if self.path == ":memory:" or self._writer == threading.get_ident():
            with self.lock:
                try:
                    return reading(lambda sql, params: self.exec(sql, params).fetchall())
                except sqlite3.Error as exc:
                    raise self.error(exc) from exc
        with self._read_lock:
            try:
                reader = self._reader or self._open_reader()

                def read(sql: str, params: Any) -> list[Any]:
                    if self.tracer is not None:
                        self.tracer(sql, params)
                    return reader.execute(sql, params).fetchall()

                reader.execute("BEGIN")
                try:
                    return reading(read)
                finally:
                    reader.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self.error(exc) from exc

    def read_apart(self, sql: str, params: Any = (), size: int = 20_000) -> Iterator[list[Any]]:
        """The rows of a long query, ``size`` rows at a time, read on a connection of its own
        (opened for it, with the functions registered; one statement: one snapshot), so that
        it holds up no other read; on the connections of :meth:`read` for an in-memory
        database. Before each chunk it gives way to a read of :meth:`read` or
        :meth:`read_snapshot` under way (waits for its end, a second at most): SQLite's JSON
        functions allocate memory under one lock for all the connections of a process, so
        two of them at once each run at half speed or less, and the view a user waits for
        goes first."""
        if self.path == ":memory:":
            yield self.read(sql, params)
            return
        try:
            with self._read_lock:
                conn = self._read_connection()
        except sqlite3.Error as exc:
            raise self.error(exc) from exc
        try:
            if self.tracer is not None:
                self.tracer(sql, params)
            cursor = conn.execute(sql, params)
            while True:
                if self._read_lock.acquire(timeout=1.0):  # no other read under way, or done
                    self._read_lock.release()
                if not (rows := cursor.fetchmany(size)):
                    break
                yield rows
        except sqlite3.Error as exc:
            raise self.error(exc) from exc
        finally:
            conn.close()

    def data_version(self) -> tuple[int, int] | None:
        """A value that changes whenever another connection (of this process or another)
        commits to the database: SQLite's ``PRAGMA data_version`` of the read connection, with
        that connection's number. ``None`` for an in-memory database (one connection)."""
        if self.path == ":memory:":
            return None
        with self._read_lock:
            try:
                reader = self._reader or self._open_reader()
                return self._readers, reader.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error as exc:
                raise self.error(exc) from exc

    def _read_connection(self) -> sqlite3.Connection:
        """A new connection that only reads, with the registered functions (under the read
        lock)."""
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA query_only=ON")
            for name, arity, function in self._functions:
                conn.create_function(name, arity, function, deterministic=True)
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_reader(self) -> sqlite3.Connection:
        """The read connection, opened at the first read (under the read lock)."""
        reader = self._read_connection()
        try:
            reader.execute("PRAGMA cache_size=-16384")
        except BaseException:
            reader.close()
            raise
        self._reader = reader
        self._readers += 1
        return reader

    def create_function(self, name: str, arity: int, function: Callable[..., Any]) -> None:
        """Register a deterministic SQL function on both connections."""
        with self.lock:
            self.conn.create_function(name, arity, function, deterministic=True)
        with self._read_lock:
            self._functions.append((name, arity, function))
            if self._reader is not None:
                self._reader.create_function(name, arity, function, deterministic=True)
