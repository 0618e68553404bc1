"""The embedded store: one SQLite database (WAL mode) and a content-addressed blob area.

Layout
------
A *directory store* (the default, ``.trialbook/``) holds ``trialbook.db`` and ``blobs/``, where a
large value lives in ``blobs/<2 hex>/<64 hex>``, named by the SHA-256 of its bytes. A *file store*
(``sqlite:///file.db``) keeps blobs in a ``blobs`` table of the same file.

The store is split by job: this module is the :class:`SqliteStore` API; the tables, schema
version and migrations are in :mod:`trialbook.storage.sqlite_schema`, the connection and its
transactions in :mod:`trialbook.storage.sqlite_engine`, blob files and garbage collection in
:mod:`trialbook.storage.sqlite_blobs`, and the query language in SQL in
:mod:`trialbook.storage.sqlite_query`.

Concurrency: every write is one ``BEGIN IMMEDIATE`` transaction (the versions of the runs it
replaces are compared inside it); run ids come from
``UPDATE experiments SET next_run_id = next_run_id + n ... RETURNING``, so processes sharing the
file never collide; reads use a connection of their own and never wait for a write.
``synchronous=NORMAL`` in WAL mode: a committed transaction survives a crash of the process; a
power loss may lose the last transactions but never corrupts the file.

Keep the store on a local disk: WAL needs memory shared by every process that opens the file,
which processes on different machines do not have, so a store on a network filesystem (NFS,
Lustre, GPFS, CIFS...) used from several nodes can be corrupted. Opening one there warns once.
For jobs on several machines use a PostgreSQL store, or a store per job on local disk.

Examples
--------
>>> from trialbook.storage.sqlite import SqliteStore
>>> store = SqliteStore(":memory:")
>>> info = store.create_experiment("demo")
>>> store.allocate_run_ids(info.id, 3)
range(1, 4)
>>> store.close()
"""

from __future__ import annotations

import functools
import itertools
import operator
import os
import pathlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from trialbook.bulk import paused_gc
from trialbook.codecs import Encoded
from trialbook.errors import (
    CorruptStoreError,
    ExperimentExistsError,
    ExperimentNotFoundError,
    NotFoundError,
    RunConflictError,
    StorageError,
    StoreFormatError,
)
from trialbook.identity import content_address
from trialbook.storage.base import (
    ClosingStore,
    batches,
    find_step_hashes,
    new_stamp,
    next_version,
    version_conflicts,
)
from trialbook.storage.bundle import (
    INLINE_LIMIT,
    column_values,
    dump_doc,
    fill_record,
    load_doc,
    pack,
    run_document,
    unpack,
)
from trialbook.storage.chunks import metric_series, split_chunk
from trialbook.storage.records import (
    CheckReport,
    ErrorInfo,
    ExperimentInfo,
    GcReport,
    MetricChunk,
    MetricSeries,
    RunColumns,
    RunRecord,
    check_extra_columns,
)
from trialbook.storage.sqlite_blobs import ChunkFiles, Pending, SqliteBlobs
from trialbook.storage.sqlite_engine import SqliteConnection, Tracer

if TYPE_CHECKING:
    from trialbook.storage.sqlite_backup import BackupReport
from trialbook.storage.sqlite_schema import DB_NAME, RUN_SELECT, SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "SqliteStore", "open_sqlite_url"]

_RUN_ROW = f"experiment_id, {RUN_SELECT}, writer"
"""The columns of a run row as :meth:`SqliteStore._run_row` builds it (then ``seq``)."""
_NONES = (None,) * len(_RUN_ROW.split(","))  # one per column of a run row


@functools.lru_cache(maxsize=64)
def _insert_run_sql(present: tuple[bool, ...]) -> str:
    """The statement inserting run rows, with a ``NULL`` literal for each column not
    ``present`` (see :meth:`SqliteStore._insert_runs`), then the write's ``seq`` (a parameter:
    one statement text, prepared once, for every write).

    Examples
    --------
    >>> _insert_run_sql((True,) * 14 + (False,)).endswith("?, ?, NULL, ?)")
    True
    """
    values = ", ".join("?" if keep else "NULL" for keep in present)
    return f"INSERT OR REPLACE INTO runs ({_RUN_ROW}, seq) VALUES ({values}, ?)"


def _column_pattern(columns: Sequence[tuple[Any, ...]]) -> tuple[bool, ...] | None:
    """For columns of rows, whether each holds no ``None`` (``True``) or only ``None``
    (``False``); ``None`` if some column holds both.

    Examples
    --------
    >>> _column_pattern([(1, 2), (None, None), ("a", "b")])
    (True, False, True)
    >>> _column_pattern([(1, 2), (None, 3)]) is None
    True
    """
    pattern = []
    for column in columns:
        if column[0] is None:
            if column.count(None) != len(column):  # identity first: fast on a None column
                return None
            pattern.append(False)
        elif None in column:
            return None
        else:
            pattern.append(True)
    return tuple(pattern)


_UPSERT_CHUNK = (
    "INSERT INTO metrics (experiment_id, run_id, name, count, steps, vals, times, blob, start)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (experiment_id, run_id, name, start) DO"
    " UPDATE SET count = excluded.count, steps = excluded.steps, vals = excluded.vals,"
    " times = excluded.times, blob = excluded.blob"
)
"""A chunk replaces the one of its key (a retried write)."""
_RUNS_RANGE = (
    "FROM (SELECT * FROM runs WHERE experiment_id = ? AND run_id >= ? AND run_id < ?"
    " ORDER BY run_id)"
)
_COLUMNS_SQL = (
    "SELECT group_concat(run_id), group_concat(status), group_concat(ifnull(doc, '{}'), char(10)),"
    " count(started) + count(finished), count(bundle), group_concat(ifnull(version, 'null')) "
    + _RUNS_RANGE
)
"""A batch of runs column-wise (issue 16): ids, statuses and documents (one a line) concatenated
by SQLite rather than a Python row per run, and whether some have timings or a bundle."""
_BUNDLES_SQL = "SELECT run_id, bundle " + _RUNS_RANGE + " WHERE bundle IS NOT NULL"
_COLUMNS_BATCH = 262_144


def open_sqlite_url(url: str, **options: Any) -> SqliteStore:
    """Open ``sqlite:///path.db``, ``sqlite:///:memory:`` or ``file:///directory``.

    Examples
    --------
    >>> with open_sqlite_url("sqlite:///:memory:") as store:
    ...     store
    SqliteStore('sqlite:///:memory:')
    """
    scheme, _, rest = url.partition("://")
    if scheme.lower() == "file":
        return SqliteStore.from_directory(pathlib.Path(rest), **options)
    path = rest[1:] if rest.startswith("/") else rest
    return SqliteStore(path or ":memory:", **options)


def _planned_segments(runs: Sequence[RunRecord]) -> dict[int, dict[int, Any]]:
    """The documents of a bulk write's runs by the segments they take part in enough to
    store them (:func:`~trialbook.storage.value_segments.plan_segments`); none for a small
    write."""
    from trialbook.storage.value_segments import SEGMENT_RUNS, TABLE_COLUMNS, plan_segments

    if len(runs) < SEGMENT_RUNS // 8:
        return {}
    return plan_segments(
        (run.run_id, (run_document(run)[0], dict(zip(TABLE_COLUMNS, column_values(run)[1:8],
                                                     strict=True))))
        for run in runs
    )  # fmt: skip


class SqliteStore(ClosingStore):
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
        Seconds to wait for another process's write lock before failing (reads do not wait).

    Warns
    -----
    TrialbookWarning
        Once, when the file is on a network filesystem (NFS, Lustre, GPFS, CIFS...): SQLite's
        WAL mode is not safe there for processes on several machines (Slurm jobs on several
        nodes). Use a PostgreSQL store for them, or give each job a store on a local disk.

    Examples
    --------
    >>> store = SqliteStore(":memory:")
    >>> store.list_experiments()
    []
    >>> store.close()
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
        self._touched: dict[int, float] = {}
        from trialbook.storage.value_segments import Marks

        self._marks = Marks()  # see _segment_marks
        self._db = SqliteConnection(self.path, self.url, tracer=tracer, timeout=timeout)
        self._blobs = SqliteBlobs(self._db, self.blob_dir)
        self.holds_connections = True

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

    def close(self) -> None:
        """Close the connection."""
        self.holds_connections = False
        self._db.close()

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
        return [self._info(r) for r in self._db.read(self._EXPERIMENT_SELECT + " ORDER BY e.name")]

    def find_experiment(self, name: str) -> ExperimentInfo | None:
        """The experiment named exactly ``name``, or ``None``."""
        rows = self._db.read(self._EXPERIMENT_SELECT + " WHERE e.name = ?", (name,))
        return self._info(rows[0]) if rows else None

    def create_experiment(
        self,
        name: str,
        *,
        meta: dict[str, Any] | None = None,
        replace: bool = False,
        replace_id: int | None = None,
        runs: Sequence[RunRecord] = (),
        metrics: Sequence[MetricChunk] = (),
    ) -> ExperimentInfo:
        """Create an experiment (or replace one of the same name when ``replace``, only the
        experiment ``replace_id`` if given) with its first ``runs`` and ``metrics``, in one
        transaction. Its id comes from ``AUTOINCREMENT``: never one an experiment had before."""
        now = time.time()

        def create(
            rows: list[tuple[Any, ...]], chunks: list[tuple[Any, ...]], _: list[tuple[Any, ...]]
        ) -> int:
            row = self._db.exec("SELECT id FROM experiments WHERE name = ?", (name,)).fetchone()
            if row is not None:
                if not replace or replace_id not in (None, row[0]):
                    raise ExperimentExistsError(name)
                self._delete_contents(row[0])
                self._db.exec("DELETE FROM experiments WHERE id = ?", (row[0],))
            cur = self._db.exec(
                "INSERT INTO experiments (name, created, updated, next_run_id, meta) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, now, now, 1 + max((r.run_id for r in runs), default=0), dump_doc(meta)),
            )
            new_id = int(cur.lastrowid or 0)
            if rows or chunks:  # prepared for experiment 0: now we know its id
                rows = [(new_id, *r[1:]) for r in rows]
                chunks = [(new_id, *c[1:]) for c in chunks]
                self._write_rows(new_id, rows, chunks, [], ())
                self._write_segments(new_id, planned)
            return new_id

        planned = _planned_segments(runs)

        new_id = self._write(0, runs, metrics, (), create)
        return ExperimentInfo(new_id, name, now, now, len(runs), dict(meta or {}))

    def delete_experiment(self, name: str) -> None:
        """Delete an experiment with all its runs, metrics and artifacts."""
        with self._db.tx():
            row = self._db.exec("SELECT id FROM experiments WHERE name = ?", (name,)).fetchone()
            if row is None:
                names = [r[0] for r in self._db.exec("SELECT name FROM experiments").fetchall()]
                raise ExperimentNotFoundError(name, available=names)
            self._delete_contents(row[0])
            self._db.exec("DELETE FROM experiments WHERE id = ?", (row[0],))

    def _delete_contents(self, experiment_id: int) -> None:
        chunk_files = self._db.exec(
            "SELECT blob FROM metrics WHERE experiment_id = ? AND blob IS NOT NULL",
            (experiment_id,),
        ).fetchall()
        for table in ("runs", "metrics", "artifacts", "step_hashes", "value_segments",
                      "value_segment_columns"):  # fmt: skip
            self._db.exec(f"DELETE FROM {table} WHERE experiment_id = ?", (experiment_id,))
        self._blobs.unlink_after_commit([name for (name,) in chunk_files])

    def update_meta(self, experiment_id: int, meta: dict[str, Any]) -> None:
        """Merge ``meta`` into the experiment's metadata."""
        with self._db.tx():
            row = self._db.exec("SELECT meta FROM experiments WHERE id = ?", (experiment_id,))
            current = row.fetchone()
            if current is None:
                raise ExperimentNotFoundError(experiment_id=experiment_id, store=self.url)
            merged = {**load_doc(current[0]), **meta}
            self._db.exec(
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
        with self._db.lock:
            try:
                cursor = self._db.exec(sql, (count, experiment_id))
                row = cursor.fetchone()
                cursor.close()  # an implicit transaction ends with the statement
            except sqlite3.Error as exc:
                raise self._db.error(exc) from exc
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
        deleting the stored points of the ``replace_metrics``); raise
        ``ExperimentNotFoundError`` in it if the experiment no longer exists, and
        ``RunConflictError`` unless each run read from the store is still at the version it was
        read at (both checked in that transaction, nothing written otherwise).

        Large values are written to the blob area before the transaction; if it fails, the
        files this write created and nothing refers to are removed again (a killed process
        leaves them to :meth:`collect_garbage`)."""

        planned = _planned_segments(runs)

        def write(
            rows: list[tuple[Any, ...]],
            chunks: list[tuple[Any, ...]],
            artifact_rows: list[tuple[Any, ...]],
        ) -> int:
            self._require(experiment_id)
            self._check_versions(experiment_id, [run for run in runs if run.version is not None])
            self._delete_metrics(experiment_id, replace_metrics)
            self._replaced_chunk_files(experiment_id, metrics)
            self._write_rows(experiment_id, rows, chunks, artifact_rows, step_hashes)
            self._write_segments(experiment_id, planned)
            return experiment_id

        self._write(experiment_id, runs, metrics, artifacts, write)

    def _write(
        self,
        experiment_id: int,
        runs: Sequence[RunRecord],
        metrics: Sequence[MetricChunk],
        artifacts: Sequence[tuple[int, str, Encoded]],
        body: Callable[[list[Any], list[Any], list[Any]], int],
    ) -> int:
        """Prepare the rows of a write (blob files first), then call ``body(rows, chunks,
        artifact rows)`` in one transaction; after a failure, discard the files it created."""
        blobs: Pending = {}
        chunk_files: ChunkFiles = {}
        try:
            put = self._blobs.sink(blobs)
            rows = [self._run_row(experiment_id, run, put) for run in runs]
            chunks = [self._chunk_row(experiment_id, c, chunk_files) for c in metrics]
            artifact_rows = [self._artifact_row(experiment_id, *a, put=put) for a in artifacts]
            with self._db.tx():
                self._blobs.commit(blobs, chunk_files)
                return body(rows, chunks, artifact_rows)
        except BaseException:
            self._blobs.discard(blobs, chunk_files)
            raise

    def _require(self, experiment_id: int) -> None:
        """Inside a write transaction (which holds the write lock, so no delete can come in
        between): raise ``ExperimentNotFoundError`` unless the experiment exists."""
        row = self._db.exec("SELECT 1 FROM experiments WHERE id = ?", (experiment_id,))
        if row.fetchone() is None:
            raise ExperimentNotFoundError(experiment_id=experiment_id, store=self.url)

    def _check_versions(self, experiment_id: int, runs: list[RunRecord]) -> None:
        """Inside the write's transaction: raise ``RunConflictError`` unless each of ``runs``
        is stored at the version it was read at (or is this write, applied once already)."""
        if not runs:
            return
        stored: dict[int, tuple[int, str | None]] = {}
        for part in batches(sorted({run.run_id for run in runs})):
            rows = self._db.exec(
                "SELECT run_id, version, writer FROM runs WHERE experiment_id = ?"
                f" AND run_id IN ({','.join('?' * len(part))})",
                (experiment_id, *part),
            ).fetchall()
            stored.update((run_id, (version, writer)) for run_id, version, writer in rows)
        conflicts = version_conflicts(runs, stored)
        if conflicts:
            row = self._db.exec(
                "SELECT name FROM experiments WHERE id = ?", (experiment_id,)
            ).fetchone()
            raise RunConflictError(experiment_id if row is None else row[0], conflicts)

    def _write_rows(
        self,
        experiment_id: int,
        rows: list[tuple[Any, ...]],
        chunks: list[tuple[Any, ...]],
        artifact_rows: list[tuple[Any, ...]],
        step_hashes: Sequence[tuple[str, str, str, int]],
    ) -> None:
        if artifact_rows:
            self._db.execmany(
                "INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?, ?, ?)", artifact_rows
            )
        if step_hashes:
            self._db.execmany(
                "INSERT OR REPLACE INTO step_hashes VALUES (?, ?, ?, ?, ?)",
                [(experiment_id, *h) for h in step_hashes],
            )
        if rows:
            (seq,) = self._db.exec(
                "UPDATE experiments SET seq = seq + 1, stamp = ? WHERE id = ? RETURNING seq",
                (new_stamp(), experiment_id),
            ).fetchone()
            self._insert_runs(rows, int(seq))
        if chunks:
            self._db.execmany(_UPSERT_CHUNK, chunks)
        now = time.time()
        # "last activity" to the second: not one more page write per commit in a hot loop
        if now - self._touched.get(experiment_id, 0.0) > 1.0:
            self._db.exec("UPDATE experiments SET updated = ? WHERE id = ?", (now, experiment_id))
            self._touched[experiment_id] = now

    def _write_segments(self, experiment_id: int, planned: dict[int, dict[int, Any]]) -> None:
        """Inside a write's transaction, after its runs: store the segments it took part in
        enough (:func:`~trialbook.storage.value_segments.plan_segments`), with the documents
        of their other runs read back, as of the write's ``seq``."""
        if not planned:
            return
        seq, created = self._db.exec(
            "SELECT seq, created FROM experiments WHERE id = ?", (experiment_id,)
        ).fetchone()
        for segment, docs in planned.items():
            self._store_segment(experiment_id, segment, float(created), docs, int(seq))

    def _store_segment(
        self, experiment_id: int, segment: int, created: float, docs: dict[int, Any], seq: int
    ) -> int:
        """Inside a transaction: store a segment made of ``docs`` (``{run_id: (document,
        {table column: value})}``, the runs a write just wrote as its write ``seq``) and of
        its other runs as stored; with no ``docs``, of its runs as stored, its ``seq`` theirs.
        Return 1, or 0 when it stored none (no run to check it against, or a failure to make
        it)."""
        from trialbook.storage.value_segments import (
            TABLE_COLUMNS,
            build_segment,
            encode_column,
            segment_ranges,
        )

        ((first, last),) = segment_ranges([segment])
        rows = self._db.exec(
            f"SELECT run_id, seq, doc, {', '.join(TABLE_COLUMNS)} FROM runs WHERE experiment_id "
            "= ? AND run_id BETWEEN ? AND ? AND (seq IS NULL OR seq <> ?)",
            (experiment_id, first, last, seq if docs else -1),
        ).fetchall()
        if not docs:
            seq = max((row[1] for row in rows if row[1] is not None), default=-1)
            if seq < 0:
                return 0  # no run, or only runs written before runs had seq: not checkable
        everyone = {int(row[0]): (load_doc(row[2]), dict(zip(TABLE_COLUMNS, row[3:],
                                                               strict=True)))
                    for row in rows}  # fmt: skip
        everyone.update(docs)
        try:  # all made before anything is written: a failure here writes nothing of it
            manifest, columns = build_segment(segment, everyone, seq, created)
            encoded = [(experiment_id, path, segment, seq, encode_column(column))
                       for path, column in columns.items()]  # fmt: skip
        except Exception:  # never the write's error: its runs are read as before
            return 0
        self._db.exec("INSERT OR REPLACE INTO value_segments VALUES (?, ?, ?, ?, ?, ?)",
                      (experiment_id, *manifest.row()))  # fmt: skip
        self._db.exec(
            "DELETE FROM value_segment_columns WHERE experiment_id = ? AND segment = ?",
            (experiment_id, segment),
        )
        self._db.execmany("INSERT INTO value_segment_columns VALUES (?, ?, ?, ?, ?)", encoded)
        return 1

    def refresh_segments(self, experiment_id: int, limit: int = 256) -> int:
        """Store anew (from the runs as stored) up to ``limit`` segments of the experiment that
        are not exact (written since, or never stored: a store written before segments, runs
        written a few at a time), one transaction each; return how many. The UI's column cache
        calls it after reading an experiment's columns from its documents, so that the next
        process reads arrays.

        Examples
        --------
        >>> from trialbook.storage.records import RunRecord
        >>> store = SqliteStore(":memory:")
        >>> exp = store.create_experiment("e")
        >>> for i in range(1, 4):
        ...     store.write_runs(exp.id, [RunRecord(i, params={"x": i})])  # a few at a time
        >>> before = store.segments_cover(exp.id)
        >>> before, store.refresh_segments(exp.id), store.segments_cover(exp.id)
        (0.0, 1, 1.0)
        >>> store.close()
        """
        stored = 0
        for segment in self._standing(experiment_id, retired=True)[1][:limit]:
            with self._db.tx():
                row = self._db.exec(
                    "SELECT created FROM experiments WHERE id = ?", (experiment_id,)
                ).fetchone()
                if row is None:
                    return stored
                stored += self._store_segment(experiment_id, segment, float(row[0]), {}, -1)
        return stored

    def _standing(self, experiment_id: int, *, retired: bool) -> tuple[float, list[int]]:
        """:func:`~trialbook.storage.value_segments.standing` of the experiment's segments, in
        one snapshot; without ``retired``, an experiment without segments costs no read of
        its runs (``(0.0, [])``)."""
        from trialbook.storage.value_segments import Manifest, standing

        def reading(read: Callable[[str, Any], list[Any]]) -> tuple[float, list[int]]:
            manifests = [Manifest(s, q, c, None, frozenset(), runs=int(n)) for s, q, c, n in read(
                "SELECT segment, seq, created, length(ids) / 8 FROM value_segments "
                "WHERE experiment_id = ?", (experiment_id,))]  # fmt: skip
            if not manifests and not retired:
                return 0.0, []
            token, marks = self._segment_marks(read, experiment_id)
            return standing(manifests, marks, token)

        got: tuple[float, list[int]] = self._db.read_snapshot(reading)
        return got

    def _insert_runs(self, rows: list[tuple[Any, ...]], seq: int) -> None:
        """Insert (or replace) run rows, inside a transaction, as the write ``seq`` of their
        experiment.

        The sqlite3 module binds ``None`` slowly (it looks for an adapter each time, through
        two failed attribute lookups): with the NULL columns of a new run, binding cost twice
        the insert itself. So rows are grouped by which of their values are ``None``, and each
        group goes through one statement that writes those as ``NULL`` literals. Rows of the
        same run twice in one write (the last one wins) keep one statement, in order.

        A bulk write (new runs of a grid) is one group: each column is ``None`` in every row
        or in none. That is checked a column at a time, at C speed, rather than row by row
        (which cost a quarter of inserting a million runs)."""
        if not rows:
            return
        columns = list(zip(*rows, strict=True))
        present = _column_pattern(columns)
        if present is not None:
            kept = [column for column, keep in zip(columns, present, strict=True) if keep]
            del columns  # (a million runs: columns and rows are a hundred MB each)
            bound = list(zip(*kept, itertools.repeat(seq, len(rows)), strict=True))
            del kept
            self._db.execmany(_insert_run_sql(present), bound)
            return
        del columns
        groups: dict[tuple[bool, ...], list[tuple[Any, ...]]] = {}
        for row in rows:
            present = tuple(map(operator.is_not, row, _NONES))
            group = groups.get(present)
            if group is None:
                group = groups[present] = []
            group.append((*itertools.compress(row, present), seq))
        if len(groups) > 1 and len({row[1] for row in rows}) != len(rows):
            self._db.execmany(_insert_run_sql((True,) * len(_NONES)), [(*r, seq) for r in rows])
            return
        for present, group in groups.items():
            self._db.execmany(_insert_run_sql(present), group)

    def _replaced_chunk_files(self, experiment_id: int, metrics: Sequence[MetricChunk]) -> None:
        """Inside a write of large chunks (files): the files of the stored chunks they replace
        (a retried write) go once it commits. A retry carries as many points or more, so only
        a chunk written to a file can replace one that was."""
        for c in metrics:
            if self.blob_dir is not None and 3 * len(c.values) > INLINE_LIMIT:
                found = self._db.exec(
                    "SELECT blob FROM metrics WHERE experiment_id = ? AND run_id = ? AND name = ?"
                    " AND start = ? AND blob IS NOT NULL",
                    (experiment_id, c.run_id, c.name, c.start),
                ).fetchall()
                self._blobs.unlink_after_commit([name for (name,) in found])

    def _delete_metrics(self, experiment_id: int, which: Sequence[tuple[int, str]]) -> None:
        """Inside a transaction: delete the stored points of ``(run_id, name)`` metrics."""
        for run_id, name in which:
            key = (experiment_id, run_id, name)
            files = self._db.exec(
                "SELECT blob FROM metrics WHERE experiment_id = ? AND run_id = ? AND name = ?"
                " AND blob IS NOT NULL",
                key,
            ).fetchall()
            self._blobs.unlink_after_commit([f for (f,) in files])
            self._db.exec(
                "DELETE FROM metrics WHERE experiment_id = ? AND run_id = ? AND name = ?", key
            )

    def _chunk_row(
        self, experiment_id: int, c: MetricChunk, files: ChunkFiles | None = None
    ) -> tuple[Any, ...]:
        if self.blob_dir is not None and 3 * len(c.values) > INLINE_LIMIT:
            parts = (c.steps, c.values, c.times)
            name = self._blobs.put_chunk_file(parts)
            if files is not None:
                files[name] = parts
            return (experiment_id, c.run_id, c.name, c.count, b"", b"", b"", name, c.start)
        return (experiment_id, c.run_id, c.name, c.count, c.steps, c.values, c.times, None, c.start)

    def _run_row(
        self, experiment_id: int, run: RunRecord, put: Callable[[bytes], str]
    ) -> tuple[Any, ...]:
        doc, bins = run_document(run)
        return (
            experiment_id,
            *column_values(run),
            dump_doc(doc),
            pack(bins, put),
            next_version(run),
            run.writer,
        )

    def read_runs(
        self, experiment_id: int, run_ids: Iterable[int] | None = None
    ) -> list[RunRecord]:
        """Runs ordered by id: all of them, or those of ``run_ids`` that exist.

        Raises
        ------
        CorruptStoreError
            Naming the experiment, run and field, if a value's blob changed on disk.
        """
        try:
            return self._read_runs(experiment_id, run_ids)
        except CorruptStoreError as exc:
            exc.experiment = self._experiment_name(experiment_id)
            raise

    def _experiment_name(self, experiment_id: int) -> str | int:
        rows = self._db.read("SELECT name FROM experiments WHERE id = ?", (experiment_id,))
        return str(rows[0][0]) if rows else experiment_id

    def _read_runs(
        self, experiment_id: int, run_ids: Iterable[int] | None = None
    ) -> list[RunRecord]:
        sql = "SELECT " + RUN_SELECT + " FROM runs WHERE experiment_id = ?"
        if run_ids is None:
            rows = self._db.read(sql + " ORDER BY run_id", (experiment_id,))
            with paused_gc(len(rows)):
                return [self._record(row) for row in rows]
        else:
            rows = []
            for part in batches(sorted(set(run_ids))):
                marks = ",".join("?" * len(part))
                rows += self._db.read(sql + f" AND run_id IN ({marks})", (experiment_id, *part))
            rows.sort(key=lambda r: r[0])
        return [self._record(row) for row in rows]

    def read_run_columns(self, experiment_id: int, *, extra: Sequence[str] = ()) -> RunColumns:
        """The runs of an experiment column-wise, for a table of them (see
        :class:`~trialbook.storage.records.RunColumns`): read in batches, without a record
        per run; ``extra`` names other columns of
        :data:`~trialbook.storage.bundle.RUN_COLUMNS` to read too (into ``extra``).

        Examples
        --------
        >>> store = SqliteStore(":memory:")
        >>> info = store.create_experiment("demo", runs=[RunRecord(1, params={"x": 1})])
        >>> columns = store.read_run_columns(info.id)
        >>> columns.run_ids, columns.docs
        ([1], ['{"p":{"x":1}}'])
        >>> store.close()
        """
        names = check_extra_columns(extra)
        with paused_gc():  # rows of many runs at once: no collection midway
            return self._db.read_snapshot(
                lambda read: self._read_columns(read, experiment_id, names)
            )

    def _read_columns(
        self, read: Callable[[str, Any], list[Any]], e: int, extra: list[str]
    ) -> RunColumns:
        out = RunColumns()
        ((first, last),) = read(
            "SELECT min(run_id), max(run_id) FROM runs WHERE experiment_id = ?", (e,)
        )
        for low in range(first or 0, (last or -1) + 1, _COLUMNS_BATCH):
            batch = (e, low, low + _COLUMNS_BATCH)
            ((ids, statuses, docs, timed, bundled, versions),) = read(_COLUMNS_SQL, batch)
            if ids is None:
                continue
            names = ["run_id", *(["started", "finished"] if timed else []), *extra]
            more = None
            if len(names) > 1:  # numbers and short texts: as rows, no cheaper as one text
                rows = read(f"SELECT {', '.join(names)} {_RUNS_RANGE}", batch)
                more = dict(zip(names, zip(*rows, strict=True), strict=True))
            out.add_batch(ids, statuses, docs, more, versions)
            for run_id, bundle in read(_BUNDLES_SQL, batch) if bundled else ():
                try:
                    out.bundles[run_id] = unpack(bundle, self._blobs.get)
                except CorruptStoreError as exc:
                    exc.run_id = run_id
                    # this snapshot's own reader: the store's read lock is held here
                    rows = read("SELECT name FROM experiments WHERE id = ?", (e,))
                    exc.experiment = str(rows[0][0]) if rows else e
                    raise
        return out

    def _record(self, row: Any) -> RunRecord:
        # Positional and inlined: this runs once per run on every load.
        doc = load_doc(row[10])
        error = doc.get("e")
        record = RunRecord(
            row[0], row[1], row[2], doc.get("p") or {}, doc.get("f") or {}, doc.get("t") or {},
            row[3], row[4], row[5], row[6], row[7], doc.get("r"),
            None if error is None else ErrorInfo(*error), row[8], row[9], doc.get("m") or {},
            row[12],
        )  # fmt: skip
        if row[11] is not None:
            try:
                fill_record(record, {}, unpack(row[11], self._blobs.get))
            except CorruptStoreError as exc:
                exc.run_id = row[0]
                raise
        return record

    # -- run queries (issue 7: web UI) ---------------------------------------------------------
    # The native back end of trialbook.storage.query.query_runs, in SQL: see
    # trialbook.storage.sqlite_query.

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
        from trialbook.storage.sqlite_query import query_page

        _check_page(limit, offset)
        page = -1 if limit is None else limit

        def read(doc: str) -> tuple[int, list[RunRecord]]:
            return query_page(
                self._db.read, self._record, experiment_id, where=where, order_by=order_by,
                descending=descending, limit=page, offset=offset, doc=doc,
            )  # fmt: skip

        return self._with_json_doc(read)

    def group_runs(
        self, experiment_id: int, *, where: str | None, keys: Sequence[Any], measures: Sequence[Any]
    ) -> list[Any]:
        """Runs grouped by the values of ``keys`` (:class:`~trialbook.storage.query.Name`), in
        one ``GROUP BY``: see :func:`trialbook.storage.sqlite_query.group_sql`."""
        from trialbook.storage.sqlite_query import group_sql

        return self._with_json_doc(
            lambda doc: group_sql(
                self._db.read, experiment_id, where=where, keys=keys, measures=measures, doc=doc
            )
        )

    def change_token(self) -> Any:
        """A value equal to an earlier one only if nothing was committed to the store in
        between (by any process); ``None`` for an in-memory store. Read it before reading what
        a cache keeps (:mod:`trialbook.storage.value_cache`)."""
        return self._db.data_version()

    def value_columns(
        self, experiment_id: int, names: Sequence[Any], *, since: int | None = None
    ) -> tuple[Any, list[Any]]:
        """The run ids of the experiment in order and, for each of ``names``
        (:class:`~trialbook.storage.query.Name`), the column of its runs' values as its filters
        read them (:class:`~trialbook.storage.value_columns.Column`), in one pass over the
        documents, on a connection of its own (a long read: other reads go on meanwhile).
        ``since``: only the runs written after the experiment's write ``since`` (the ``seq``
        of an earlier :meth:`experiment_token`)."""
        from trialbook.storage.sqlite_query import value_columns
        from trialbook.storage.value_segments import segment_ranges

        def documents(doc: str) -> Any:
            def rest(chosen: list[Any], segments: list[int] | None) -> Any:
                ranges = None if segments is None else segment_ranges(segments)
                return value_columns(self._db.read_apart, experiment_id, chosen, doc,
                                     ranges=ranges)  # fmt: skip

            if since is None:  # the stored segments first, the documents for the rest
                finish = self._segments_read(experiment_id, names)
                got = None if finish is None else finish(rest)
                if got is not None:
                    return got
            return value_columns(self._db.read_apart, experiment_id, names, doc, since=since)

        return self._with_json_doc(documents)

    def segments_cover(self, experiment_id: int) -> float:
        """The share of the experiment's runs whose values its stored segments hold exactly
        (:mod:`~trialbook.storage.value_segments`): near 1.0, :meth:`value_columns` reads
        arrays rather than documents, in a fraction of the time.

        Examples
        --------
        >>> from trialbook.storage.records import RunRecord
        >>> store = SqliteStore(":memory:")
        >>> exp = store.create_experiment("e")
        >>> store.write_runs(exp.id, [RunRecord(i, params={"x": i}) for i in range(1, 1001)])
        >>> store.segments_cover(exp.id)
        1.0
        >>> store.write_runs(exp.id, [RunRecord(1, params={"x": 0})])  # not exact any more
        >>> store.segments_cover(exp.id)
        0.0
        >>> store.close()
        """
        return self._standing(experiment_id, retired=False)[0]

    def _segment_marks(self, read: Callable[[str, Any], list[Any]], experiment_id: int) -> Any:
        """The experiment's token and, per segment, its runs and their largest ``seq`` (kept
        with the token they were read at: the same token, the same runs)."""
        from trialbook.storage.value_segments import SEGMENT_BITS

        rows = read("SELECT created, seq, deleted_seq, stamp FROM experiments WHERE id = ?",
                    (experiment_id,))  # fmt: skip
        token = (float(rows[0][0]), *map(int, rows[0][1:])) if rows else None
        marks = self._marks.get(experiment_id, token, lambda: {
            int(s): (int(n), top) for s, n, top in read(
                f"SELECT run_id >> {SEGMENT_BITS}, count(*), max(seq) FROM runs "
                "WHERE experiment_id = ? GROUP BY 1", (experiment_id,))})  # fmt: skip
        return token, marks

    def _segments_read(self, experiment_id: int, names: Sequence[Any]) -> Any:
        """The first step of :func:`~trialbook.storage.value_segments.read_columns`, in one
        snapshot; ``None`` for an experiment without segments."""
        from trialbook.storage.value_segments import Manifest, read_columns

        def reading(read: Callable[[str, Any], list[Any]]) -> Any:
            manifests = [Manifest.from_row(row) for row in read(
                "SELECT segment, seq, created, ids, unknown FROM value_segments "
                "WHERE experiment_id = ?", (experiment_id,))]  # fmt: skip
            if not manifests:
                return None
            token, marks = self._segment_marks(read, experiment_id)

            def rows(paths: list[str], segments: list[int]) -> list[Any]:
                marks = ",".join("?" * len(paths))
                return read("SELECT path, segment, seq, data FROM value_segment_columns "
                            f"WHERE experiment_id = ? AND path IN ({marks})",
                            (experiment_id, *paths))  # fmt: skip

            return read_columns(names, token, manifests, marks, rows)

        return self._db.read_snapshot(reading)

    def experiment_token(self, experiment_id: int) -> tuple[float, int, int, int] | None:
        """``(created, seq, deleted_seq, stamp)`` of the experiment: ``seq`` counts the writes
        and deletes of its runs (each run keeps the ``seq`` of the write that wrote it last),
        ``deleted_seq`` is that count at the last delete, and ``stamp`` the random number the
        last of them set; ``None`` if there is no such experiment. Equal to an earlier token
        only if none of its runs was written or deleted in between (an older copy of the store
        restored and written as many times has another stamp); read it before reading what a
        cache keeps (:mod:`trialbook.storage.value_cache`).

        Examples
        --------
        >>> from trialbook.storage.records import RunRecord
        >>> store = SqliteStore(":memory:")
        >>> exp = store.create_experiment("e")
        >>> store.experiment_token(exp.id)[1:]
        (0, 0, 0)
        >>> store.write_runs(exp.id, [RunRecord(1)])
        >>> store.delete_runs(exp.id, [1])
        >>> store.experiment_token(exp.id)[1:3], store.experiment_token(exp.id + 1)
        ((2, 2), None)
        >>> store.close()
        """
        rows = self._db.read(
            "SELECT created, seq, deleted_seq, stamp FROM experiments WHERE id = ?",
            (experiment_id,),
        )
        if not rows:
            return None
        created, seq, deleted_seq, stamp = rows[0]
        return float(created), int(seq), int(deleted_seq), int(stamp)

    def names_present(self, experiment_id: int, paths: Sequence[Sequence[str]]) -> list[bool]:
        """For each list of JSON paths of the run document, whether some run of the experiment
        has one of them (an empty list: whether the experiment has a run at all). One query;
        used by :func:`trialbook.storage.query.check_names`."""
        from trialbook.storage.sqlite_query import names_present

        return self._with_json_doc(
            lambda doc: names_present(self._db.read, experiment_id, paths, doc)
        )

    def _with_json_doc(self, read: Callable[[str], Any]) -> Any:
        """``read(doc)`` with ``doc`` the SQL of the run document: plain ``doc`` first, then,
        when some documents hold NaN or Infinity (which SQLite's JSON functions refuse), the
        document made valid by ``tb_finite_json``."""
        from trialbook.storage.sqlite_query import DOC_SQL, finite_json

        try:
            return read("doc")
        except StorageError as exc:
            if "malformed JSON" not in str(exc):
                raise
        if not getattr(self, "_query_functions", False):
            self._db.create_function("tb_finite_json", 1, finite_json)
            self._query_functions = True
        return read(DOC_SQL)

    def delete_runs(self, experiment_id: int, run_ids: Iterable[int]) -> None:
        """Delete runs with their metrics, artifacts and the step hashes that point at them
        (a step hash a later run has replaced stays)."""
        ids = sorted(set(run_ids))
        with self._db.tx():
            for part in batches(ids):
                marks = ",".join("?" * len(part))
                chunk_files = self._db.exec(
                    f"SELECT blob FROM metrics WHERE experiment_id = ? AND run_id IN ({marks})"
                    " AND blob IS NOT NULL",
                    (experiment_id, *part),
                ).fetchall()
                self._blobs.unlink_after_commit([name for (name,) in chunk_files])
                for table in ("runs", "metrics", "artifacts", "step_hashes"):
                    self._db.exec(
                        f"DELETE FROM {table} WHERE experiment_id = ? AND run_id IN ({marks})",
                        (experiment_id, *part),
                    )
            if ids:
                self._db.exec(
                    "UPDATE experiments SET seq = seq + 1, deleted_seq = seq + 1, stamp = ? "
                    "WHERE id = ?",
                    (new_stamp(), experiment_id),
                )

    def find_runs_by_key(self, experiment_id: int, key: str) -> list[RunRecord]:
        """Runs whose ``key`` is ``key``, ordered by id."""
        rows = self._db.read(
            "SELECT " + RUN_SELECT + " FROM runs WHERE experiment_id = ? AND key = ? "
            "ORDER BY run_id",
            (experiment_id, key),
        )
        return [self._record(row) for row in rows]

    def put_step_hash(
        self, experiment_id: int, step: str, input_hash: str, output_hash: str, run_id: int
    ) -> None:
        """Record the output hash of ``step`` for ``input_hash`` (the latest one wins)."""
        with self._db.tx():
            self._require(experiment_id)
            self._db.exec(
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
            lambda steps, hashes: self._db.read(
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
        parts: dict[int, list[tuple[bytes, ...]]] = {}
        for part in batches(sorted(set(run_ids))):
            marks = ",".join("?" * len(part))
            rows = self._db.read(
                "SELECT run_id, count, steps, vals, times, blob FROM metrics"
                f" WHERE experiment_id = ? AND name = ? AND run_id IN ({marks})"
                " ORDER BY run_id, start",
                (experiment_id, name, *part),
            )
            for run_id, count, steps, vals, times, blob in rows:
                if blob is None:
                    parts.setdefault(run_id, []).append((steps, vals, times))
                else:  # one file: steps, values and times of `count` items each
                    data = self._chunk_file(experiment_id, run_id, name, blob, count)
                    parts.setdefault(run_id, []).append(split_chunk(data, count))
        return {run_id: metric_series(chunks) for run_id, chunks in parts.items()}

    def _chunk_file(
        self, experiment_id: int, run_id: int, metric: str, blob: str, count: int
    ) -> bytes:
        """The bytes of a metric chunk file, checked (hash and size)."""
        try:
            data = self._blobs.get(blob)
            if len(data) != 24 * count:
                problem = f"it holds {len(data)} bytes, not the {24 * count} of {count} points"
                raise CorruptStoreError(problem, blob=blob)
        except CorruptStoreError as exc:
            exc.run_id, exc.field = run_id, f"metric {metric!r}"
            exc.experiment = self._experiment_name(experiment_id)
            raise
        return data

    def metric_names(self, experiment_id: int, run_id: int | None = None) -> dict[str, int]:
        """Metric names with their point counts (of one run, or of the experiment)."""
        if run_id is None:
            rows = self._db.read(
                "SELECT name, sum(count) FROM metrics WHERE experiment_id = ? GROUP BY name",
                (experiment_id,),
            )
        else:
            rows = self._db.read(
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
        rows = self._db.read(
            "SELECT codec, data, blob FROM artifacts WHERE experiment_id = ? AND run_id = ? "
            "AND name = ?",
            (experiment_id, run_id, name),
        )
        if not rows:
            return None
        codec, data, blob = rows[0]
        if not blob:
            return Encoded(codec, data)
        try:
            return Encoded(codec, self._blobs.get(blob))
        except CorruptStoreError as exc:
            exc.run_id, exc.field = run_id, f"artifact {name!r}"
            exc.experiment = self._experiment_name(experiment_id)
            raise

    def list_artifacts(self, experiment_id: int, run_id: int) -> dict[str, int]:
        """Artifact names of a run with their sizes in bytes."""
        rows = self._db.read(
            "SELECT name, size FROM artifacts WHERE experiment_id = ? AND run_id = ? ORDER BY name",
            (experiment_id, run_id),
        )
        return dict(rows)

    def put_snapshot(self, kind: str, text: str) -> str:
        """Store a text snapshot content-addressed; return its digest."""
        digest = content_address(text)
        with self._db.tx():
            self._db.exec("INSERT OR IGNORE INTO snapshots VALUES (?, ?, ?)", (digest, kind, text))
        return digest

    def get_snapshot(self, digest: str) -> str:
        """The text of a snapshot."""
        rows = self._db.read("SELECT text FROM snapshots WHERE digest = ?", (digest,))
        if not rows:
            msg = f"no snapshot {digest!r} in store {self.url!r}"
            raise NotFoundError(msg)
        return str(rows[0][0])

    # -- garbage -------------------------------------------------------------------------------

    def collect_garbage(self, *, min_age: float = 3600.0, dry_run: bool = False) -> GcReport:
        """Remove unreferenced blobs and rows of no experiment, under the write lock (see
        :meth:`trialbook.storage.sqlite_blobs.SqliteBlobs.collect`)."""
        return self._blobs.collect(min_age=min_age, dry_run=dry_run)

    def check(self, *, min_age: float = 3600.0) -> CheckReport:
        """Check the database (``PRAGMA integrity_check``) and every blob and metric chunk
        file its rows refer to (present, bytes matching their hash); see
        :mod:`trialbook.storage.sqlite_check`."""
        from trialbook.storage.sqlite_check import check_sqlite

        return check_sqlite(self._db, self._blobs, min_age=min_age)

    def backup(
        self, dest: str | os.PathLike[str], *, on_snapshot: Callable[[], object] | None = None
    ) -> BackupReport:
        """Copy the store, consistently while others write, into the new directory ``dest``
        (a directory store); see :func:`trialbook.storage.sqlite_backup.backup_sqlite`."""
        from trialbook.storage.sqlite_backup import backup_sqlite

        return backup_sqlite(self, dest, on_snapshot=on_snapshot)

    def restore(self, source: str | os.PathLike[str], *, force: bool = False) -> BackupReport:
        """Replace the contents of the store with the backup in ``source`` (refused when the
        store has experiments, unless ``force``); see
        :func:`trialbook.storage.sqlite_backup.restore_sqlite`."""
        from trialbook.storage.sqlite_backup import restore_sqlite

        return restore_sqlite(self, source, force=force)
