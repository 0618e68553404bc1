"""The embedded store: one SQLite database (WAL mode) and a content-addressed blob area.

Layout
------
A *directory store* (the default, ``.trialbook/``) holds ``trialbook.db`` and ``blobs/``, where a
large value lives in ``blobs/<2 hex>/<64 hex>``, named by the SHA-256 of its bytes. A *file store*
(``sqlite:///file.db``) keeps blobs in a ``blobs`` table of the same file.

Tables (schema version :data:`SCHEMA_VERSION`, kept in ``PRAGMA user_version``; the file is
marked as trialbook's with ``PRAGMA application_id``):

* ``experiments(id, name UNIQUE, created, updated, next_run_id, meta)``;
* ``runs(experiment_id, run_id, kind, status, key, seed, created, started, finished, code,
  environment, doc, bundle)``, primary key ``(experiment_id, run_id)``. ``doc`` is one JSON
  object holding the run's plain values under short keys, each left out when empty: ``p``
  params, ``f`` fields, ``t`` tags, ``m`` metrics summary (``{name: [count, last value]}``),
  ``r`` result, ``e`` error (``[type, message, traceback]``); query it with ``json_extract(doc,
  '$.p.lr')``. ``bundle`` packs the values that are not plain JSON (see
  :mod:`trialbook.storage.bundle`);
* ``metrics(id, experiment_id, run_id, name, count, steps, vals, times, blob)``: append-only
  chunks; a chunk larger than the inline limit is one blob file (steps, values and times
  concatenated) in a directory store, ``blob`` naming it, because writing megabytes through the
  WAL costs several times more than a file;
* ``artifacts(experiment_id, run_id, name, codec, size, data, blob)``;
* ``snapshots(digest, kind, text)``: content-addressed code and environment snapshots;
* ``step_hashes(experiment_id, step, input_hash, output_hash, run_id)``: purity records.

Concurrency: every write is one ``BEGIN IMMEDIATE`` transaction; run ids come from
``UPDATE experiments SET next_run_id = next_run_id + n ... RETURNING``, so processes sharing the
file never collide. ``synchronous=NORMAL`` in WAL mode: a committed transaction survives a crash
of the process; a power loss may lose the last transactions but never corrupts the file.

Examples
--------
>>> from trialbook.storage.sqlite import SqliteStore
>>> store = SqliteStore(":memory:")
>>> info = store.create_experiment("demo")
>>> store.allocate_run_ids(info.id, 3)
range(1, 4)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from trialbook.bulk import paused_gc
from trialbook.codecs import Encoded
from trialbook.errors import (
    ExperimentExistsError,
    ExperimentNotFoundError,
    NotFoundError,
    SchemaVersionError,
    StorageError,
    StoreFormatError,
)
from trialbook.storage.base import find_step_hashes
from trialbook.storage.bundle import (
    INLINE_LIMIT,
    blob_digests,
    dump_doc,
    fill_record,
    load_doc,
    pack,
    run_document,
    unpack,
)
from trialbook.storage.records import (
    ErrorInfo,
    ExperimentInfo,
    GcReport,
    MetricChunk,
    MetricSeries,
    RunRecord,
)

__all__ = ["SCHEMA_VERSION", "SqliteStore", "open_sqlite_url"]

APPLICATION_ID = 0x54424B31  # "TBK1"
SCHEMA_VERSION = 1
DB_NAME = "trialbook.db"

Tracer = Callable[[str, Any], object]

_SCHEMA_V1 = """
CREATE TABLE experiments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    next_run_id INTEGER NOT NULL DEFAULT 1,
    meta TEXT
);
CREATE TABLE runs (
    experiment_id INTEGER NOT NULL,
    run_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    key TEXT,
    seed INTEGER,
    created REAL,
    started REAL,
    finished REAL,
    code TEXT,
    environment TEXT,
    doc TEXT,
    bundle BLOB,
    PRIMARY KEY (experiment_id, run_id)
) WITHOUT ROWID;
CREATE INDEX runs_by_key ON runs (experiment_id, key) WHERE key IS NOT NULL;
CREATE TABLE metrics (
    id INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL,
    run_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    count INTEGER NOT NULL,
    steps BLOB NOT NULL,
    vals BLOB NOT NULL,
    times BLOB NOT NULL,
    blob TEXT
);
CREATE INDEX metrics_by_run ON metrics (experiment_id, run_id, name, id);
CREATE TABLE artifacts (
    experiment_id INTEGER NOT NULL,
    run_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    codec TEXT NOT NULL,
    size INTEGER NOT NULL,
    data BLOB,
    blob TEXT,
    PRIMARY KEY (experiment_id, run_id, name)
) WITHOUT ROWID;
CREATE TABLE snapshots (
    digest TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    text TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE step_hashes (
    experiment_id INTEGER NOT NULL,
    step TEXT NOT NULL,
    input_hash TEXT NOT NULL,
    output_hash TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    PRIMARY KEY (experiment_id, step, input_hash)
) WITHOUT ROWID;
CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    data BLOB NOT NULL
) WITHOUT ROWID;
"""

# Migrations: MIGRATIONS[v] upgrades a database of version v to v + 1 (inside one transaction).
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}

_RUN_COLUMNS = (
    "run_id, kind, status, key, seed, created, started, finished, code, environment, doc, bundle"
)


def open_sqlite_url(url: str, **options: Any) -> SqliteStore:
    """Open ``sqlite:///path.db``, ``sqlite:///:memory:`` or ``file:///directory``.

    Examples
    --------
    >>> open_sqlite_url("sqlite:///:memory:")
    SqliteStore('sqlite:///:memory:')
    """
    scheme, _, rest = url.partition("://")
    if scheme.lower() == "file":
        return SqliteStore.from_directory(pathlib.Path(rest), **options)
    path = rest[1:] if rest.startswith("/") else rest
    return SqliteStore(path or ":memory:", **options)


class SqliteStore:
    """A store in one SQLite database (see the module documentation for its layout).

    Its ``backend_label`` is ``LocalBackend`` (the name the lazy-graph seed shows).

    Parameters
    ----------
    path
        The database file, or ``":memory:"``.
    blob_dir
        Folder for large values; ``None`` keeps them in the database.
    allow_pickle
        Allow pickled values (see :func:`trialbook.storage.open_store`).
    tracer
        Called as ``tracer(sql, parameters)`` before each statement; a seam for tests and
        debugging.
    timeout
        Seconds to wait for another process's write lock before failing.

    Examples
    --------
    >>> store = SqliteStore(":memory:")
    >>> store.list_experiments()
    []
    """

    backend_label = "LocalBackend"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        blob_dir: str | os.PathLike[str] | None = None,
        allow_pickle: bool = False,
        tracer: Tracer | None = None,
        timeout: float = 30.0,
        url: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.url = url or f"sqlite:///{self.path}"
        self.allow_pickle = allow_pickle
        self.blob_dir = pathlib.Path(blob_dir) if blob_dir is not None else None
        self.directory: pathlib.Path | None = None
        """The store directory of a directory store (for human-readable exports), else None."""
        self._tracer = tracer
        self._lock = threading.RLock()
        self._depth = 0
        self._unlink_after_commit: list[str] = []
        self._touched: dict[int, float] = {}
        self._conn = self._connect(timeout)

    @classmethod
    def from_directory(cls, directory: pathlib.Path, **options: Any) -> SqliteStore:
        """Open (or create) a directory store.

        Raises
        ------
        StoreFormatError
            If ``directory`` is a file, or a non-empty directory that is not a trialbook store.
        """
        db = directory / DB_NAME
        if directory.is_file():
            msg = (
                f"{str(directory)!r} is a file, not a store directory; for a single SQLite "
                f"file use the URL 'sqlite:///{directory}'"
            )
            raise StoreFormatError(msg)
        if directory.is_dir() and not db.exists() and any(directory.iterdir()):
            msg = (
                f"{str(directory)!r} is not a trialbook store: it holds other files and no "
                f"{DB_NAME}; nothing was written. Choose an empty or new directory"
            )
            raise StoreFormatError(msg)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"cannot create the store directory {str(directory)!r}: {exc}"
            raise StorageError(msg) from exc
        store = cls(db, blob_dir=directory / "blobs", url=str(directory), **options)
        store.directory = directory
        return store

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- connection and schema -------------------------------------------------------------

    def _connect(self, timeout: float) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            msg = f"cannot open the SQLite store {self.url!r}: {exc}"
            raise StorageError(msg) from exc
        try:
            self._prepare_retrying(conn, timeout)
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

    def _prepare_retrying(self, conn: sqlite3.Connection, timeout: float) -> None:
        """:meth:`_prepare`, again while another process holds the lock that creating a store
        (or switching it to WAL) needs: ``PRAGMA journal_mode`` does not wait on its own."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._prepare(conn)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN")  # one snapshot: another process may be creating the schema
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            conn.execute("COMMIT")
        if app_id != APPLICATION_ID:
            if tables:
                msg = (
                    f"{self.url!r} is an SQLite database of another program (it has {tables} "
                    "tables and no trialbook mark); nothing was written. Use a new file"
                )
                raise StoreFormatError(msg)
        elif version > SCHEMA_VERSION:
            msg = (
                f"{self.url!r} has schema version {version}, newer than this trialbook "
                f"understands ({SCHEMA_VERSION}); upgrade trialbook to read it"
            )
            raise SchemaVersionError(msg)
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")
            # Checkpoint every 8,192 WAL pages (32 MiB) rather than 1,000: a checkpoint costs an
            # fsync, and a hot loop of small commits rewrites the same few pages, which one
            # larger checkpoint copies once. The WAL file is cut back to 64 MiB after one.
            conn.execute("PRAGMA wal_autocheckpoint=8192")
            conn.execute("PRAGMA journal_size_limit=67108864")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-16384")
        if app_id != APPLICATION_ID:
            self._create_schema(conn)
        elif version < SCHEMA_VERSION:
            self._migrate(conn, version)

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
                for statement in _SCHEMA_V1.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute("PRAGMA user_version=1")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if SCHEMA_VERSION > 1:
            self._migrate(conn, 1)

    def _migrate(self, conn: sqlite3.Connection, version: int) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            while current < SCHEMA_VERSION:
                MIGRATIONS[current](conn)
                current += 1
                conn.execute(f"PRAGMA user_version={current}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (re-entrant); driver errors become ``StorageError``."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            self._unlink_after_commit = []
            try:
                self._exec("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    self._exec("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._storage_error(exc) from exc
            finally:
                self._depth = 0
            self._remove_chunk_files(self._unlink_after_commit)

    def _storage_error(self, exc: sqlite3.Error) -> StorageError:
        hint = ""
        if "locked" in str(exc) or "busy" in str(exc):
            hint = "; another process held the write lock for too long"
        return StorageError(f"SQLite store {self.url!r}: {exc}{hint}")

    def _exec(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        if self._tracer is not None:
            self._tracer(sql, params)
        return self._conn.execute(sql, params)

    def _execmany(self, sql: str, rows: Sequence[Any]) -> None:
        if self._tracer is not None:
            self._tracer(sql, rows)
        self._conn.executemany(sql, rows)

    def _read(self, sql: str, params: Any = ()) -> list[Any]:
        with self._lock:
            try:
                return self._exec(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._storage_error(exc) from exc

    # -- experiments ---------------------------------------------------------------------------

    def _info(self, row: Any) -> ExperimentInfo:
        return ExperimentInfo(
            id=row[0],
            name=row[1],
            created=row[2],
            updated=row[3],
            runs=row[4],
            meta=load_doc(row[5]),
        )

    _EXPERIMENT_SELECT = (
        "SELECT e.id, e.name, e.created, e.updated, "
        "(SELECT count(*) FROM runs r WHERE r.experiment_id = e.id), e.meta FROM experiments e"
    )

    def list_experiments(self) -> list[ExperimentInfo]:
        """All experiments ordered by name."""
        return [self._info(r) for r in self._read(self._EXPERIMENT_SELECT + " ORDER BY e.name")]

    def find_experiment(self, name: str) -> ExperimentInfo | None:
        """The experiment named exactly ``name``, or ``None``."""
        rows = self._read(self._EXPERIMENT_SELECT + " WHERE e.name = ?", (name,))
        return self._info(rows[0]) if rows else None

    def create_experiment(
        self,
        name: str,
        *,
        meta: dict[str, Any] | None = None,
        replace: bool = False,
        replace_id: int | None = None,
    ) -> ExperimentInfo:
        """Create an experiment (or replace one of the same name when ``replace``, only the
        experiment ``replace_id`` if given)."""
        now = time.time()
        with self._tx():
            row = self._exec("SELECT id FROM experiments WHERE name = ?", (name,)).fetchone()
            if row is not None:
                if not replace or replace_id not in (None, row[0]):
                    raise ExperimentExistsError(name)
                self._delete_contents(row[0])
                self._exec("DELETE FROM experiments WHERE id = ?", (row[0],))
            # A replacement never gets the id of the experiment it replaces (SQLite would reuse
            # the largest id): ``replace_id`` must not match the new one.
            cur = self._exec(
                "INSERT INTO experiments (id, name, created, updated, meta) VALUES ("
                "max(?, (SELECT coalesce(max(id), 0) FROM experiments)) + 1, ?, ?, ?, ?)",
                (row[0] if row is not None else 0, name, now, now, dump_doc(meta)),
            )
            return ExperimentInfo(cur.lastrowid or 0, name, now, now, 0, dict(meta or {}))

    def delete_experiment(self, name: str) -> None:
        """Delete an experiment with all its runs, metrics and artifacts."""
        with self._tx():
            row = self._exec("SELECT id FROM experiments WHERE name = ?", (name,)).fetchone()
            if row is None:
                names = [r[0] for r in self._exec("SELECT name FROM experiments").fetchall()]
                raise ExperimentNotFoundError(name, available=names)
            self._delete_contents(row[0])
            self._exec("DELETE FROM experiments WHERE id = ?", (row[0],))

    def _delete_contents(self, experiment_id: int) -> None:
        chunk_files = self._exec(
            "SELECT blob FROM metrics WHERE experiment_id = ? AND blob IS NOT NULL",
            (experiment_id,),
        ).fetchall()
        for table in ("runs", "metrics", "artifacts", "step_hashes"):
            self._exec(f"DELETE FROM {table} WHERE experiment_id = ?", (experiment_id,))
        self._unlink_after_commit += [name for (name,) in chunk_files]

    def update_meta(self, experiment_id: int, meta: dict[str, Any]) -> None:
        """Merge ``meta`` into the experiment's metadata."""
        with self._tx():
            row = self._exec("SELECT meta FROM experiments WHERE id = ?", (experiment_id,))
            current = row.fetchone()
            if current is None:
                raise ExperimentNotFoundError(experiment_id=experiment_id, store=self.url)
            merged = {**load_doc(current[0]), **meta}
            self._exec(
                "UPDATE experiments SET meta = ?, updated = ? WHERE id = ?",
                (dump_doc(merged), time.time(), experiment_id),
            )

    # -- runs ----------------------------------------------------------------------------------

    def allocate_run_ids(self, experiment_id: int, count: int) -> range:
        """Reserve ``count`` consecutive run ids atomically."""
        sql = (
            "UPDATE experiments SET next_run_id = next_run_id + ? WHERE id = ? "
            "RETURNING next_run_id"
        )
        # One statement is atomic on its own (no BEGIN/COMMIT round trips); inside a
        # transaction of this thread (the lock is re-entrant) it joins that transaction.
        with self._lock:
            try:
                cursor = self._exec(sql, (count, experiment_id))
                row = cursor.fetchone()
                cursor.close()  # an implicit transaction ends with the statement
            except sqlite3.Error as exc:
                raise self._storage_error(exc) from exc
        if row is None:
            raise ExperimentNotFoundError(experiment_id=experiment_id, store=self.url)
        return range(row[0] - count, row[0])

    def write_runs(
        self,
        experiment_id: int,
        runs: Sequence[RunRecord],
        metrics: Sequence[MetricChunk] = (),
        *,
        artifacts: Sequence[tuple[int, str, Encoded]] = (),
        step_hashes: Sequence[tuple[str, str, str, int]] = (),
        replace_metrics: Sequence[tuple[int, str]] = (),
    ) -> None:
        """Write runs, metric chunks, artifacts and step hashes in one transaction (first
        deleting the stored points of the ``replace_metrics``).

        Large values are written to the blob area before the transaction; if it fails, the
        files this write created and nothing refers to are removed again (a killed process
        leaves them to :meth:`collect_garbage`)."""
        blobs: dict[str, tuple[bytes, bool]] = {}
        chunk_files: list[str] = []
        try:
            put = self._blob_sink(blobs)
            rows = [self._run_row(experiment_id, run, put) for run in runs]
            chunks = [self._chunk_row(experiment_id, c, chunk_files) for c in metrics]
            artifact_rows = [self._artifact_row(experiment_id, *a, put=put) for a in artifacts]
            with self._tx():
                self._commit_blobs(blobs)
                self._delete_metrics(experiment_id, replace_metrics)
                self._write_rows(experiment_id, rows, chunks, artifact_rows, step_hashes)
        except BaseException:
            self._discard_blobs(blobs, chunk_files)
            raise

    def _write_rows(
        self,
        experiment_id: int,
        rows: list[tuple[Any, ...]],
        chunks: list[tuple[Any, ...]],
        artifact_rows: list[tuple[Any, ...]],
        step_hashes: Sequence[tuple[str, str, str, int]],
    ) -> None:
        if artifact_rows:
            self._execmany(
                "INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?, ?, ?)", artifact_rows
            )
        if step_hashes:
            self._execmany(
                "INSERT OR REPLACE INTO step_hashes VALUES (?, ?, ?, ?, ?)",
                [(experiment_id, *h) for h in step_hashes],
            )
        if rows:
            self._execmany(
                "INSERT OR REPLACE INTO runs (experiment_id, "
                + _RUN_COLUMNS
                + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        if chunks:
            self._execmany(
                "INSERT INTO metrics (experiment_id, run_id, name, count, steps, vals, times,"
                " blob) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                chunks,
            )
        now = time.time()
        # "last activity" to the second: not one more page write per commit in a hot loop
        if now - self._touched.get(experiment_id, 0.0) > 1.0:
            self._exec("UPDATE experiments SET updated = ? WHERE id = ?", (now, experiment_id))
            self._touched[experiment_id] = now

    def _delete_metrics(self, experiment_id: int, which: Sequence[tuple[int, str]]) -> None:
        """Inside a transaction: delete the stored points of ``(run_id, name)`` metrics."""
        for run_id, name in which:
            key = (experiment_id, run_id, name)
            files = self._exec(
                "SELECT blob FROM metrics WHERE experiment_id = ? AND run_id = ? AND name = ?"
                " AND blob IS NOT NULL",
                key,
            ).fetchall()
            self._unlink_after_commit += [f for (f,) in files]
            self._exec(
                "DELETE FROM metrics WHERE experiment_id = ? AND run_id = ? AND name = ?", key
            )

    def _commit_blobs(self, blobs: dict[str, tuple[bytes, bool]]) -> None:
        """Inside the write's transaction: put the blobs it refers to. A blob file that a
        concurrent clean-up removed since it was written is written again (clean-ups delete
        files only while holding the write lock, so none can vanish before the commit)."""
        if self.blob_dir is None:
            rows = [(digest, data) for digest, (data, _) in blobs.items()]
            if rows:
                self._execmany("INSERT OR IGNORE INTO blobs VALUES (?, ?)", rows)
            return
        for digest, (data, _) in blobs.items():
            if not (self.blob_dir / digest[:2] / digest).exists():
                self._put_blob(data)

    def _discard_blobs(self, blobs: dict[str, tuple[bytes, bool]], chunk_files: list[str]) -> None:
        """After a failed write: remove the metric chunk files it wrote, and the blob files it
        created that no committed row refers to (checked under the write lock). Best effort:
        what cannot be removed now is left to :meth:`collect_garbage`."""
        if self.blob_dir is None:
            return
        self._remove_chunk_files(chunk_files)
        created = [digest for digest, (_, new) in blobs.items() if new]
        if not created:
            return
        try:
            with self._tx():
                for digest in created:
                    if not self._blob_referenced(digest):
                        (self.blob_dir / digest[:2] / digest).unlink(missing_ok=True)
        except (StorageError, OSError):
            pass

    def _blob_referenced(self, digest: str) -> bool:
        return bool(
            self._exec("SELECT 1 FROM artifacts WHERE blob = ? LIMIT 1", (digest,)).fetchone()
            or self._exec(
                "SELECT 1 FROM runs WHERE bundle IS NOT NULL AND instr(bundle, ?) > 0 LIMIT 1",
                (digest.encode(),),
            ).fetchone()
        )

    def _chunk_row(
        self, experiment_id: int, c: MetricChunk, files: list[str] | None = None
    ) -> tuple[Any, ...]:
        if self.blob_dir is not None and 3 * len(c.values) > INLINE_LIMIT:
            name = self._put_chunk_file((c.steps, c.values, c.times))
            if files is not None:
                files.append(name)
            return (experiment_id, c.run_id, c.name, c.count, b"", b"", b"", name)
        return (experiment_id, c.run_id, c.name, c.count, c.steps, c.values, c.times, None)

    def _blob_sink(self, blobs: dict[str, tuple[bytes, bool]]) -> Callable[[bytes], str]:
        """A ``put_blob`` for :func:`pack` that remembers what it put: a file written now (in a
        directory store), or a row to insert in the write's transaction (in a file store)."""

        def put(data: bytes) -> str:
            if self.blob_dir is None:
                digest = hashlib.sha256(data).hexdigest()
                blobs[digest] = (data, False)
                return digest
            digest, created = self._put_blob_file(data)
            blobs[digest] = (data, created or blobs.get(digest, (b"", False))[1])
            return digest

        return put

    def _run_row(
        self, experiment_id: int, run: RunRecord, put: Callable[[bytes], str]
    ) -> tuple[Any, ...]:
        doc, bins = run_document(run)
        return (
            experiment_id,
            run.run_id,
            run.kind,
            str(run.status),
            run.key,
            run.seed,
            run.created,
            run.started,
            run.finished,
            run.code,
            run.environment,
            dump_doc(doc),
            pack(bins, put),
        )

    def read_runs(
        self, experiment_id: int, run_ids: Iterable[int] | None = None
    ) -> list[RunRecord]:
        """Runs ordered by id: all of them, or those of ``run_ids`` that exist."""
        sql = "SELECT " + _RUN_COLUMNS + " FROM runs WHERE experiment_id = ?"
        if run_ids is None:
            rows = self._read(sql + " ORDER BY run_id", (experiment_id,))
            with paused_gc(len(rows)):
                return [self._record(row) for row in rows]
        else:
            rows = []
            for part in _batches(sorted(set(run_ids))):
                marks = ",".join("?" * len(part))
                rows += self._read(sql + f" AND run_id IN ({marks})", (experiment_id, *part))
            rows.sort(key=lambda r: r[0])
        return [self._record(row) for row in rows]

    def _record(self, row: Any) -> RunRecord:
        # Positional and inlined: this runs once per run on every load.
        doc = load_doc(row[10])
        error = doc.get("e")
        record = RunRecord(
            row[0], row[1], row[2], doc.get("p") or {}, doc.get("f") or {}, doc.get("t") or {},
            row[3], row[4], row[5], row[6], row[7], doc.get("r"),
            None if error is None else ErrorInfo(*error), row[8], row[9], doc.get("m") or {},
        )  # fmt: skip
        if row[11] is not None:
            fill_record(record, {}, unpack(row[11], self._get_blob))
        return record

    # -- run queries (issue 7: web UI) ---------------------------------------------------------
    # The native back end of trialbook.storage.query.query_runs: the filter becomes an SQL
    # WHERE clause over `doc`, the sort an ORDER BY, the page LIMIT/OFFSET; only the page's rows
    # are decoded. No extra index: filters on JSON paths scan the experiment's rows either way.

    def query_runs(
        self,
        experiment_id: int,
        *,
        where: str | None = None,
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = 100,
        offset: int = 0,
    ) -> tuple[int, list[RunRecord]]:
        """Filter, sort and page runs in SQL; see :func:`trialbook.storage.query.query_runs`."""
        from trialbook.storage.query import _check_page

        _check_page(limit, offset)
        page = {"where": where, "order_by": order_by, "descending": descending,
                "limit": -1 if limit is None else limit, "offset": offset}  # fmt: skip
        return self._with_json_doc(lambda doc: self._query_page(experiment_id, doc=doc, **page))

    def names_present(self, experiment_id: int, paths: Sequence[Sequence[str]]) -> list[bool]:
        """For each list of JSON paths of the run document, whether some run of the experiment
        has one of them (an empty list: whether the experiment has a run at all). One query;
        used by :func:`trialbook.storage.query.check_names`."""

        def ask(doc: str) -> list[bool]:
            tests, params = [], []
            for group in paths:
                where = " OR ".join(f"json_type({doc}, ?) IS NOT NULL" for _ in group) or "1"
                tests.append(f"EXISTS (SELECT 1 FROM runs WHERE experiment_id = ? AND ({where}))")
                params += [experiment_id, *group]
            return [bool(v) for v in self._read(f"SELECT {', '.join(tests)}", params)[0]]

        return self._with_json_doc(ask)

    def _with_json_doc(self, read: Callable[[str], Any]) -> Any:
        """``read(doc)`` with ``doc`` the SQL of the run document: plain ``doc`` first, then,
        when some documents hold NaN or Infinity (which SQLite's JSON functions refuse), the
        document made valid by ``tb_finite_json``."""
        from trialbook.storage.query import DOC_SQL, finite_json

        try:
            return read("doc")
        except StorageError as exc:
            if "malformed JSON" not in str(exc):
                raise
        if not getattr(self, "_query_functions", False):
            with self._lock:
                self._conn.create_function("tb_finite_json", 1, finite_json, deterministic=True)
            self._query_functions = True
        return read(DOC_SQL)

    def _query_page(
        self,
        experiment_id: int,
        *,
        where: str | None,
        order_by: str | None,
        descending: bool,
        limit: int,
        offset: int,
        doc: str,
    ) -> tuple[int, list[RunRecord]]:
        from trialbook.storage.query import order_sql, parse_name, parse_query

        clause, params = "experiment_id = ?", [experiment_id]
        if where and where.strip():
            sql, extra = parse_query(where).sql(doc)
            clause, params = f"{clause} AND {sql}", params + extra
        if order_by and sqlite3.sqlite_version_info >= (3, 35):
            # One pass: each row's JSON is parsed once for both the filter and the sort key.
            key, key_params = parse_name(order_by).sql(doc)
            direction = " DESC" if descending else ""
            columns = ", ".join(f"r.{c.strip()}" for c in _RUN_COLUMNS.split(","))
            rows = self._read(
                f"WITH m AS MATERIALIZED (SELECT run_id, {key} AS k FROM runs WHERE {clause}) "
                f"SELECT {columns}, (SELECT count(*) FROM m) FROM m JOIN runs r "
                "ON r.experiment_id = ? AND r.run_id = m.run_id "
                f"ORDER BY m.k IS NULL, m.k{direction}, m.run_id LIMIT ? OFFSET ?",
                [*key_params, *params, experiment_id, limit, offset],
            )
            if rows or not offset:
                total = rows[0][-1] if rows else 0
                return total, [self._record(row[:-1]) for row in rows]
        order, order_params = order_sql(order_by, descending, doc)
        total = self._read(f"SELECT count(*) FROM runs WHERE {clause}", params)[0][0]
        rows = self._read(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE {clause} ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, *order_params, limit, offset],
        )
        return total, [self._record(row) for row in rows]

    def delete_runs(self, experiment_id: int, run_ids: Iterable[int]) -> None:
        """Delete runs with their metrics and artifacts."""
        ids = sorted(set(run_ids))
        with self._tx():
            for part in _batches(ids):
                marks = ",".join("?" * len(part))
                chunk_files = self._exec(
                    f"SELECT blob FROM metrics WHERE experiment_id = ? AND run_id IN ({marks})"
                    " AND blob IS NOT NULL",
                    (experiment_id, *part),
                ).fetchall()
                self._unlink_after_commit += [name for (name,) in chunk_files]
                for table in ("runs", "metrics", "artifacts"):
                    self._exec(
                        f"DELETE FROM {table} WHERE experiment_id = ? AND run_id IN ({marks})",
                        (experiment_id, *part),
                    )

    def find_runs_by_key(self, experiment_id: int, key: str) -> list[RunRecord]:
        """Runs whose ``key`` is ``key``, ordered by id."""
        rows = self._read(
            "SELECT " + _RUN_COLUMNS + " FROM runs WHERE experiment_id = ? AND key = ? "
            "ORDER BY run_id",
            (experiment_id, key),
        )
        return [self._record(row) for row in rows]

    def put_step_hash(
        self, experiment_id: int, step: str, input_hash: str, output_hash: str, run_id: int
    ) -> None:
        """Record the output hash of ``step`` for ``input_hash`` (the latest one wins)."""
        with self._tx():
            self._exec(
                "INSERT OR REPLACE INTO step_hashes VALUES (?, ?, ?, ?, ?)",
                (experiment_id, step, input_hash, output_hash, run_id),
            )

    def get_step_hashes(
        self, experiment_id: int, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, int]]:
        """The latest ``(output_hash, run_id)`` of each ``(step, input_hash)`` that has one
        (500 input hashes a statement: under SQLite's limit of bound parameters)."""
        return find_step_hashes(
            keys,
            lambda steps, hashes: self._read(
                "SELECT step, input_hash, output_hash, run_id FROM step_hashes "
                f"WHERE experiment_id = ? AND step IN ({', '.join('?' * len(steps))}) "
                f"AND input_hash IN ({', '.join('?' * len(hashes))})",
                (experiment_id, *steps, *hashes),
            ),
        )

    # -- metrics -------------------------------------------------------------------------------

    def read_metrics(
        self, experiment_id: int, name: str, run_ids: Iterable[int]
    ) -> dict[int, MetricSeries]:
        """All points of metric ``name`` for each of ``run_ids`` that has it."""
        import numpy as np

        parts: dict[int, list[tuple[bytes, bytes, bytes]]] = {}
        for part in _batches(sorted(set(run_ids))):
            marks = ",".join("?" * len(part))
            rows = self._read(
                "SELECT run_id, count, steps, vals, times, blob FROM metrics"
                f" WHERE experiment_id = ? AND name = ? AND run_id IN ({marks})"
                " ORDER BY run_id, id",
                (experiment_id, name, *part),
            )
            for run_id, count, steps, vals, times, blob in rows:
                if blob is None:
                    parts.setdefault(run_id, []).append((steps, vals, times))
                else:  # one file: steps, values and times of `count` items each
                    data, size = self._get_blob(blob), 8 * count
                    chunk = tuple(data[i * size : (i + 1) * size] for i in range(3))
                    parts.setdefault(run_id, []).append(chunk)  # type: ignore[arg-type]
        out: dict[int, MetricSeries] = {}
        for run_id, chunks in parts.items():
            out[run_id] = MetricSeries(
                steps=np.frombuffer(b"".join(c[0] for c in chunks), dtype="<i8"),
                values=np.frombuffer(b"".join(c[1] for c in chunks), dtype="<f8"),
                times=np.frombuffer(b"".join(c[2] for c in chunks), dtype="<f8"),
            )
        return out

    def metric_names(self, experiment_id: int, run_id: int | None = None) -> dict[str, int]:
        """Metric names with their point counts (of one run, or of the experiment)."""
        if run_id is None:
            rows = self._read(
                "SELECT name, sum(count) FROM metrics WHERE experiment_id = ? GROUP BY name",
                (experiment_id,),
            )
        else:
            rows = self._read(
                "SELECT name, sum(count) FROM metrics WHERE experiment_id = ? AND run_id = ? "
                "GROUP BY name",
                (experiment_id, run_id),
            )
        return dict(sorted(rows))

    # -- artifacts, snapshots, blobs -----------------------------------------------------------

    def write_artifact(self, experiment_id: int, run_id: int, name: str, value: Encoded) -> None:
        """Store a named binary value of a run (replacing one of the same name)."""
        self.write_runs(experiment_id, [], artifacts=[(run_id, name, value)])

    def _artifact_row(
        self,
        experiment_id: int,
        run_id: int,
        name: str,
        value: Encoded,
        *,
        put: Callable[[bytes], str],
    ) -> tuple[Any, ...]:
        data: bytes | None = value.data
        blob = None
        if len(value.data) > INLINE_LIMIT:
            blob, data = put(value.data), None
        return (experiment_id, run_id, name, value.codec, len(value.data), data, blob)

    def read_artifact(self, experiment_id: int, run_id: int, name: str) -> Encoded | None:
        """The named binary value of a run, or ``None``."""
        rows = self._read(
            "SELECT codec, data, blob FROM artifacts WHERE experiment_id = ? AND run_id = ? "
            "AND name = ?",
            (experiment_id, run_id, name),
        )
        if not rows:
            return None
        codec, data, blob = rows[0]
        return Encoded(codec, self._get_blob(blob) if blob else data)

    def list_artifacts(self, experiment_id: int, run_id: int) -> dict[str, int]:
        """Artifact names of a run with their sizes in bytes."""
        rows = self._read(
            "SELECT name, size FROM artifacts WHERE experiment_id = ? AND run_id = ? ORDER BY name",
            (experiment_id, run_id),
        )
        return dict(rows)

    def put_snapshot(self, kind: str, text: str) -> str:
        """Store a text snapshot content-addressed; return its digest."""
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        with self._tx():
            self._exec("INSERT OR IGNORE INTO snapshots VALUES (?, ?, ?)", (digest, kind, text))
        return digest

    def get_snapshot(self, digest: str) -> str:
        """The text of a snapshot."""
        rows = self._read("SELECT text FROM snapshots WHERE digest = ?", (digest,))
        if not rows:
            msg = f"no snapshot {digest!r} in store {self.url!r}"
            raise NotFoundError(msg)
        return str(rows[0][0])

    # -- garbage -------------------------------------------------------------------------------

    def collect_garbage(self, *, min_age: float = 3600.0, dry_run: bool = False) -> GcReport:
        """Remove unreferenced blobs and rows of no experiment, under the write lock.

        In a directory store a blob file (or a metric chunk file, or a temporary file of an
        interrupted write) is removed when no row refers to it and it is older than
        ``min_age`` seconds: a write in progress in another process may have written it and not
        yet committed. In a file store blobs are rows written with their run, so any
        unreferenced one goes.
        """
        cutoff = time.time() - min_age
        report = GcReport()
        with self._tx():
            report.rows = self._orphan_rows(dry_run)
            if self.blob_dir is None:
                self._collect_blob_rows(report, dry_run)
            else:
                self._collect_blob_files(report, cutoff, dry_run)
            if dry_run:
                self._unlink_after_commit = []
        return report

    def _orphan_rows(self, dry_run: bool) -> int:
        """Rows whose experiment is gone (their chunk files go after the commit)."""
        orphan = "experiment_id NOT IN (SELECT id FROM experiments)"
        count = 0
        for table in ("runs", "metrics", "artifacts", "step_hashes"):
            count += self._exec(f"SELECT count(*) FROM {table} WHERE {orphan}").fetchone()[0]
            if not dry_run:
                if table == "metrics":
                    files = self._exec(
                        f"SELECT blob FROM metrics WHERE {orphan} AND blob IS NOT NULL"
                    ).fetchall()
                    self._unlink_after_commit += [f for (f,) in files]
                self._exec(f"DELETE FROM {table} WHERE {orphan}")
        return count

    def _referenced(self) -> set[str]:
        """Every blob digest and chunk file name some row refers to."""
        names = {b for (b,) in self._exec("SELECT blob FROM artifacts WHERE blob IS NOT NULL")}
        names.update(b for (b,) in self._exec("SELECT blob FROM metrics WHERE blob IS NOT NULL"))
        for (bundle,) in self._exec("SELECT bundle FROM runs WHERE bundle IS NOT NULL"):
            names.update(blob_digests(bundle))
        return names

    def _collect_blob_rows(self, report: GcReport, dry_run: bool) -> None:
        used = self._referenced()
        rows = self._exec("SELECT digest, length(data) FROM blobs").fetchall()
        gone = [(digest, size) for digest, size in rows if digest not in used]
        report.blobs, report.bytes = len(gone), sum(size for _, size in gone)
        if not dry_run:
            self._execmany("DELETE FROM blobs WHERE digest = ?", [(d,) for d, _ in gone])

    def _collect_blob_files(self, report: GcReport, cutoff: float, dry_run: bool) -> None:
        assert self.blob_dir is not None
        if not self.blob_dir.is_dir():
            return
        used = self._referenced()
        for folder in self.blob_dir.iterdir():
            for path in folder.iterdir() if folder.is_dir() else ():
                if path.name in used and not path.name.endswith(".tmp"):
                    continue
                try:
                    stat = path.stat()
                    if stat.st_mtime > cutoff:
                        continue
                    if not dry_run:
                        path.unlink()
                except FileNotFoundError:
                    continue
                report.blobs += 1
                report.bytes += stat.st_size

    def _put_blob(self, data: bytes) -> str:
        return self._put_blob_file(data)[0]

    def _put_blob_file(self, data: bytes) -> tuple[str, bool]:
        """Write a content-addressed blob file unless it exists; return its digest and whether
        it was created now. An existing file is touched: its age tells :meth:`collect_garbage`
        that a write may be about to refer to it."""
        assert self.blob_dir is not None
        digest = hashlib.sha256(data).hexdigest()
        path = self.blob_dir / digest[:2] / digest
        if path.exists():
            with contextlib.suppress(OSError):
                os.utime(path)
            if path.exists():
                return digest, False
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{digest}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return digest, True

    def _put_chunk_file(self, parts: Sequence[bytes]) -> str:
        """Write a metric chunk as one file under a fresh unique name (chunks are never shared,
        so hashing megabytes for a content address would be wasted work)."""
        assert self.blob_dir is not None
        name = "m" + uuid.uuid4().hex
        path = self.blob_dir / name[:2] / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            for part in parts:
                out.write(part)
        os.replace(tmp, path)
        return name

    def _remove_chunk_files(self, names: list[str]) -> None:
        """Metric chunk files belong to one row each: remove them once their rows are gone.
        (Content-addressed blobs may be shared, so they are left in place.)"""
        if self.blob_dir is None:
            return
        for name in names:
            (self.blob_dir / name[:2] / name).unlink(missing_ok=True)

    def _get_blob(self, digest: str) -> bytes:
        if self.blob_dir is not None:
            path = self.blob_dir / digest[:2] / digest
            try:
                return path.read_bytes()
            except FileNotFoundError:
                pass
        rows = self._read("SELECT data FROM blobs WHERE digest = ?", (digest,))
        if not rows:
            msg = f"blob {digest} is missing from store {self.url!r}; the store is incomplete"
            raise StoreFormatError(msg)
        return bytes(rows[0][0])


def _batches(ids: list[int], size: int = 500) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
