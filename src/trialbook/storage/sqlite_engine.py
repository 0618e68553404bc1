"""The connection of :class:`~trialbook.storage.sqlite.SqliteStore`: opening, transactions,
errors.

:class:`SqliteConnection` opens the database (checking and preparing its schema with
:func:`~trialbook.storage.sqlite_schema.prepare`) and runs statements on it: every write is one
``BEGIN IMMEDIATE`` transaction (:meth:`SqliteConnection.tx`, re-entrant), so processes sharing
the file take turns, and every driver error leaves as one
:class:`~trialbook.errors.StorageError` naming the store. Work that must wait for the commit
(removing files the transaction stopped referring to) is registered with
:meth:`SqliteConnection.after_commit`.

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
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from trialbook.errors import StorageError, StoreFormatError
from trialbook.storage.sqlite_schema import prepare_retrying

__all__ = ["SqliteConnection", "Tracer"]

Tracer = Callable[[str, Any], object]


class SqliteConnection:
    """One connection to the database of a store, shared by its threads under a lock.

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
        self.lock = threading.RLock()
        self._depth = 0
        self._after_commit: list[Callable[[], object]] = []
        self.conn = self._connect(timeout)

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
        """Close the connection."""
        with self.lock:
            self.conn.close()

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (re-entrant); driver errors become ``StorageError``."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            self._after_commit = []
            try:
                self.exec("BEGIN IMMEDIATE")
                try:
                    yield self.conn
                    self.exec("COMMIT")
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self.error(exc) from exc
            finally:
                self._depth = 0
            for work in self._after_commit:
                work()

    def after_commit(self, work: Callable[[], object]) -> None:
        """Inside :meth:`tx`: call ``work()`` once the transaction committed (never if it
        rolled back)."""
        self._after_commit.append(work)

    def error(self, exc: sqlite3.Error) -> StorageError:
        """A driver error as the :class:`StorageError` to raise."""
        hint = ""
        if "locked" in str(exc) or "busy" in str(exc):
            hint = "; another process held the write lock for too long"
        return StorageError(f"SQLite store {self.url!r}: {exc}{hint}")

    def exec(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        """Run a statement (inside :meth:`tx`, or holding :attr:`lock`)."""
        if self.tracer is not None:
            self.tracer(sql, params)
        return self.conn.execute(sql, params)

    def execmany(self, sql: str, rows: Sequence[Any]) -> None:
        """Run a statement once per row of parameters (inside :meth:`tx`)."""
        if self.tracer is not None:
            self.tracer(sql, rows)
        self.conn.executemany(sql, rows)

    def read(self, sql: str, params: Any = ()) -> list[Any]:
        """The rows of a query, run under the lock; driver errors become ``StorageError``."""
        with self.lock:
            try:
                return self.exec(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self.error(exc) from exc
