"""A store in any SQL database SQLAlchemy reaches: PostgreSQL, MySQL/MariaDB, SQLite, ...

Open it with a SQLAlchemy URL: ``postgresql://user:password@host:5432/db`` (the ``psycopg``
driver is used when ``psycopg2`` is absent), ``postgresql+psycopg://...``, ``mysql://...``
(``pymysql`` when ``MySQLdb`` is absent), ``mysql+pymysql://...``, ... A ``schema`` query
parameter (``postgresql://host/db?schema=team``) or the ``schema=`` option puts the tables in
that schema (created when missing on PostgreSQL), so several stores can share one database.

Layout
------
Every table name starts with ``trialbook_`` so a store can live in a database with other
tables. Columns mirror the embedded store (:mod:`trialbook.storage.sqlite`):

* ``trialbook_experiments(id, name UNIQUE, created, updated, next_run_id, meta)``;
* ``trialbook_runs(experiment_id, run_id, kind, status, key, seed, created, started, finished,
  code, environment, doc, bundle, version, writer)``, primary key ``(experiment_id, run_id)``,
  indexed on ``(experiment_id, key)``; ``doc`` is the run's JSON document stored as **text**
  (so NaN and infinities survive; see :mod:`trialbook.storage.bundle`), ``bundle`` its binary
  values, ``version`` the number of writes of the run and ``writer`` the token of the last;
* ``trialbook_metrics(id, experiment_id, run_id, name, count, steps, vals, times, start)``: the
  chunks of the metrics, unique on ``(experiment_id, name, run_id, start)`` (``start``: the
  position of the chunk's first point) and written by upsert, also indexed on
  ``(experiment_id, run_id)``;
* ``trialbook_artifacts(experiment_id, run_id, name, codec, size, data, blob)``;
* ``trialbook_snapshots(digest, kind, text)``: content-addressed code and environment texts;
* ``trialbook_step_hashes(experiment_id, step, input_hash, output_hash, run_id)``, indexed on
  ``(experiment_id, run_id)`` (created when a store made before it is opened);
* ``trialbook_blobs(digest, data)``: values larger than 256 KiB, content-addressed;
* ``trialbook_schema(id, version)``: the version of this layout, upgraded when a store of an
  older trialbook is opened (:mod:`trialbook.storage.sql_migrations`).

Names are ``VARCHAR(255)`` (statuses and kinds ``VARCHAR(32)``): a longer one is refused with a
:class:`~trialbook.errors.ConfigError` before anything of the write is stored, on every path
(see :func:`~trialbook.storage.sql_schema.check_lengths`), never cut short. On MySQL/MariaDB the
tables are ``utf8mb4`` with a case-sensitive collation (``loss`` and ``Loss`` are two names);
a store created with the server's default collation is converted when it is opened.

Concurrency: run ids come from ``UPDATE trialbook_experiments SET next_run_id = next_run_id + n
... RETURNING next_run_id`` (where the database lacks ``RETURNING``: the ``UPDATE`` and a read of
the row in one transaction), so processes sharing the database never collide: the row lock
serialises them. :meth:`SqlStore.write_runs` is one transaction; on PostgreSQL it is a single
statement of data-modifying ``WITH`` parts (one round trip per trial), and large batches use
``executemany``. A write that replaces runs read from the store compares their versions in
the same transaction: on PostgreSQL in its one statement (a conditional upsert, see
:class:`~trialbook.storage.sql_schema.OneStatementWrite`), elsewhere after locking their rows
(``SELECT ... FOR UPDATE``). The
statements of a trial are compiled once per store and run on the driver's connection (see
:mod:`trialbook.storage.sql_schema`). A non-default schema is part of the store's ``url``; a
password never is.

Reads and queries: runs are read with their blobs in one statement per 500 blobs, not one per
value. :meth:`SqlStore.query_runs` filters, sorts and pages runs in one statement on PostgreSQL
(the query language over ``doc`` read as ``jsonb``, see :mod:`trialbook.storage.sql_query`) and
reads only the page's runs in full; on other databases it filters the runs' columns and
documents (never their bundles) with the Python evaluator.

Timeouts: 5 s to connect (``connect_timeout=``) and, on PostgreSQL, TCP keepalives, so a server
that disappears is noticed instead of waited for.

Examples
--------
>>> from trialbook.storage.sql import SqlStore
>>> store = SqlStore("sqlite+pysqlite:///:memory:")
>>> store
SqlStore('sqlite+pysqlite:///:memory:')
>>> info = store.create_experiment("demo")
>>> store.allocate_run_ids(info.id, 2)
range(1, 3)
>>> store.close()
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from trialbook.bulk import paused_gc
from trialbook.codecs import Encoded
from trialbook.errors import (
    ExperimentExistsError,
    ExperimentNotFoundError,
    NotFoundError,
    RunConflictError,
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
    RUN_COLUMNS,
    blob_digests,
    checked_blob,
    columns,
    dump_doc,
    fill_record,
    load_doc,
    pack,
    record_from_columns,
    run_document,
    unpack_checked,
)
from trialbook.storage.chunks import metric_series
from trialbook.storage.records import (
    ExperimentInfo,
    GcReport,
    MetricChunk,
    MetricSeries,
    RunColumns,
    RunRecord,
)
from trialbook.storage.retry import retry_operations
from trialbook.storage.sql_engine import (
    CONNECT_TIMEOUT,
    SqlConnection,
    begin_immediate,
    insert_missing,
    number_runs,
    write_rows,
)
from trialbook.storage.sql_schema import (
    artifacts_t,
    blobs_t,
    check_lengths,
    experiments_t,
    metrics_t,
    runs_t,
    snapshots_t,
    step_hashes_t,
    value_segment_columns_t,
    value_segments_t,
)

__all__ = ["ANALYZE_AFTER", "SqlStore", "open_sql_url"]

ANALYZE_AFTER = 50_000
"""A write of this many runs or more refreshes PostgreSQL's statistics of the runs table
(:meth:`~trialbook.storage.sql_engine.SqlConnection.analyze`)."""

_RUN_COLS = [runs_t.c[name] for name in (*RUN_COLUMNS, "doc", "bundle", "version")]


def open_sql_url(url: str, **options: Any) -> SqlStore:
    """Open a SQL store from a SQLAlchemy URL (the registered opener of SQL schemes).

    Examples
    --------
    >>> with open_sql_url("sqlite+pysqlite:///:memory:") as store:
    ...     store.backend_label
    'SQLBackend'
    """
    return SqlStore(url, **options)


@retry_operations
class SqlStore(ClosingStore):
    """A store in a SQL database reached through SQLAlchemy (layout: see the module docs).

    Its ``backend_label`` is ``SQLBackend``; ``url`` never shows the password.

    Parameters
    ----------
    url
        A SQLAlchemy URL (``postgresql://user:pw@host/db``, ``mysql+pymysql://...``).
    schema
        Put the tables in this schema (PostgreSQL creates it when missing). Default: the URL's
        ``schema`` query parameter, else the connection's default schema.
    allow_pickle
        Allow pickled values (see :func:`trialbook.storage.open_store`).
    connect_timeout
        Seconds to wait for the server before failing with :class:`StorageError`.
    tracer
        Called as ``tracer(statement, parameters)`` before each statement.

    Raises
    ------
    StorageError
        When the URL is malformed, the driver missing or the server unreachable; the message
        names the backend and the URL with its password masked.

    Examples
    --------
    >>> store = SqlStore("sqlite+pysqlite:///:memory:")
    >>> store.list_experiments()
    []
    >>> store.close()
    """

    backend_label = "SQLBackend"

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        allow_pickle: bool = False,
        connect_timeout: float = CONNECT_TIMEOUT,
        tracer: Any = None,
    ) -> None:
        self.allow_pickle = allow_pickle
        self._db = SqlConnection(url, schema=schema, connect_timeout=connect_timeout, tracer=tracer)
        self.url = self._db.url
        self.schema = self._db.schema
        self._touched: dict[int, float] = {}
        from trialbook.storage.value_segments import Marks

        self._segments_kept = Marks()  # see sql_segments._marks
        self.holds_connections = True

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def close(self) -> None:
        """Release the connection pool."""
        self.holds_connections = False
        self._db.close()

    # -- experiments ---------------------------------------------------------------------------

    def _experiment_select(self) -> sa.Select:
        count = (
            sa.select(sa.func.count())
            .where(runs_t.c.experiment_id == experiments_t.c.id)
            .scalar_subquery()
        )
        e = experiments_t.c
        return sa.select(e.id, e.name, e.created, e.updated, count, e.meta)

    @staticmethod
    def _info(row: Any) -> ExperimentInfo:
        return ExperimentInfo(row[0], row[1], row[2], row[3], row[4], load_doc(row[5]))

    def list_experiments(self) -> list[ExperimentInfo]:
        """All experiments ordered by name."""
        rows = self._db.read(self._experiment_select().order_by(experiments_t.c.name))
        infos = [self._info(r) for r in rows]
        return sorted(infos, key=lambda i: i.name)  # the database collation may differ

    def find_experiment(self, name: str) -> ExperimentInfo | None:
        """The experiment named exactly ``name``, or ``None``."""
        rows = self._db.read(self._experiment_select().where(experiments_t.c.name == name))
        rows = [r for r in rows if r[1] == name]  # MySQL's PAD SPACE collations: 'a' = 'a '
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
        experiment ``replace_id`` if given: its row is locked, so one replacer wins) with its
        first ``runs`` and ``metrics``, in one transaction.

        A name longer than 255 characters is refused (:class:`~trialbook.errors.ConfigError`)."""
        now = time.time()
        batches = self._batches(0, runs, metrics, (), ())
        check_lengths(self.url, {"experiments": [{"name": name}], **batches})
        try:
            with self._db.tx() as conn:
                begin_immediate(conn)
                row = conn.execute(
                    sa.select(experiments_t.c.id)
                    .where(experiments_t.c.name == name)
                    .with_for_update()
                ).first()
                if row is not None:
                    if not replace or replace_id not in (None, row[0]):
                        raise ExperimentExistsError(name)
                    self._delete_contents(conn, row[0])
                    conn.execute(experiments_t.delete().where(experiments_t.c.id == row[0]))
                next_run_id = 1 + max((r.run_id for r in runs), default=0)
                values = {"name": name, "created": now, "updated": now,
                          "next_run_id": next_run_id, "meta": dump_doc(meta),
                          "seq": 1 if runs else 0,
                          "stamp": new_stamp() if runs else 0}  # fmt: skip
                number_runs(batches, 1)
                try:
                    result = conn.execute(experiments_t.insert().values(**values))
                except sa_exc.IntegrityError as exc:  # created by another process meanwhile
                    raise ExperimentExistsError(name) from exc
                key = result.inserted_primary_key
                assert key is not None  # an INSERT of one row has one
                new_id = int(key[0])
                for table in ("runs", "runs_checked", "metrics"):  # prepared for experiment 0
                    for item in batches[table]:
                        item["experiment_id"] = new_id
                write_rows(conn, batches)
        except sa_exc.IntegrityError as exc:  # a row the database refuses: nothing changed
            raise self._db.error(exc) from exc
        if len(runs) >= ANALYZE_AFTER:
            self._db.analyze(runs_t)
        self._write_segments(new_id, runs)
        return ExperimentInfo(new_id, name, now, now, len(runs), dict(meta or {}))

    def delete_experiment(self, name: str) -> None:
        """Delete an experiment with all its runs, metrics and artifacts (its row is locked
        first: a write in progress finishes before, a later one finds no experiment)."""
        with self._db.tx() as conn:
            begin_immediate(conn)
            row = conn.execute(
                sa.select(experiments_t.c.id).where(experiments_t.c.name == name).with_for_update()
            ).first()
            if row is None:
                names = [r[0] for r in conn.execute(sa.select(experiments_t.c.name))]
                raise ExperimentNotFoundError(name, available=names)
            self._delete_contents(conn, row[0])
            conn.execute(experiments_t.delete().where(experiments_t.c.id == row[0]))

    @staticmethod
    def _delete_contents(conn: sa.Connection, experiment_id: int) -> None:
        for table in (runs_t, metrics_t, artifacts_t, step_hashes_t, value_segments_t,
                      value_segment_columns_t):  # fmt: skip
            conn.execute(table.delete().where(table.c.experiment_id == experiment_id))

    def update_meta(self, experiment_id: int, meta: dict[str, Any]) -> None:
        """Merge ``meta`` into the experiment's metadata."""
        e = experiments_t.c
        with self._db.tx() as conn:
            row = conn.execute(
                sa.select(e.meta).where(e.id == experiment_id).with_for_update()
            ).first()
            if row is None:
                raise ExperimentNotFoundError(experiment_id=experiment_id, store=self.url)
            merged = {**load_doc(row[0]), **meta}
            conn.execute(
                experiments_t.update()
                .where(e.id == experiment_id)
                .values(meta=dump_doc(merged), updated=time.time())
            )

    # -- runs ----------------------------------------------------------------------------------

    def allocate_run_ids(self, experiment_id: int, count: int) -> range:
        """Reserve ``count`` consecutive run ids atomically (the row lock serialises callers).

        One ``UPDATE ... SET next_run_id = next_run_id + count ... RETURNING`` where the
        database has it, else the ``UPDATE`` and a read of the row in one transaction.
        """
        if self._db.hot.supported:
            statement = self._db.hot.allocate
            params = statement.params({"eid": experiment_id, "n": count})
            if self._db.tracer is not None:
                self._db.tracer(statement.sql, params)
            with self._db.raw_tx() as (connection, cursor), self._db.autocommit(connection):
                cursor.execute(statement.sql, params)  # one statement: atomic on its own
                row = cursor.fetchone()
                connection.commit()
        else:
            row = self._allocate_core(experiment_id, count)
        if row is None:
            raise ExperimentNotFoundError(experiment_id=experiment_id, store=self.url)
        return range(row[0] - count, row[0])

    def _allocate_core(self, experiment_id: int, count: int) -> Any:
        e = experiments_t.c
        bump = (
            experiments_t.update()
            .where(e.id == experiment_id)
            .values(next_run_id=e.next_run_id + count)
        )
        with self._db.tx() as conn:
            if conn.dialect.update_returning:  # one round trip: UPDATE ... RETURNING
                row = conn.execute(bump.returning(e.next_run_id)).first()
            else:
                done = conn.execute(bump)
                row = None
                if done.rowcount:
                    row = conn.execute(
                        sa.select(e.next_run_id).where(e.id == experiment_id)
                    ).first()
        return row

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
        read at (both checked in that transaction, nothing written otherwise)."""
        now = time.time()
        # "last activity" to the second: not one more row write per commit in a hot loop
        touch = now - self._touched.get(experiment_id, 0.0) > 1.0
        batches = self._batches(experiment_id, runs, metrics, artifacts, step_hashes)
        clear = [
            metrics_t.delete().where(
                metrics_t.c.experiment_id == experiment_id,
                metrics_t.c.run_id == run_id,
                metrics_t.c.name == name,
            )
            for run_id, name in replace_metrics
        ]
        checked = [run for run in runs if run.version is not None]
        check = None
        if checked:
            check = functools.partial(self._check_versions, experiment_id, checked)
        self._db.write(experiment_id, batches, now if touch else None, clear, check)
        if touch:
            self._touched[experiment_id] = now
        if len(runs) >= ANALYZE_AFTER:
            self._db.analyze(runs_t)
        self._write_segments(experiment_id, runs)

    def _write_segments(self, experiment_id: int, runs: Sequence[RunRecord]) -> None:
        """After a bulk write: store the value segments it took part in (see
        :mod:`trialbook.storage.sql_segments`). They only speed up reads: a failure here
        leaves the write as it is (committed), and its segments to the documents."""
        from trialbook.storage.sql_segments import write_segments
        from trialbook.storage.value_segments import SEGMENT_RUNS, plan_segments

        if len(runs) < SEGMENT_RUNS // 8:
            return
        with contextlib.suppress(Exception):  # never the write's error: it is done
            write_segments(self._db, experiment_id, plan_segments((r.run_id, None) for r in runs))

    @staticmethod
    def _check_versions(experiment_id: int, runs: list[RunRecord], conn: sa.Connection) -> None:
        """In the write's transaction: lock the stored rows of ``runs`` and raise
        ``RunConflictError`` unless each is at the version it was read at."""
        r = runs_t.c
        stored: dict[int, tuple[int, str | None]] = {}
        for part in batches(sorted({run.run_id for run in runs})):
            rows = conn.execute(
                sa.select(r.run_id, r.version, r.writer)
                .where(r.experiment_id == experiment_id, r.run_id.in_(part))
                .with_for_update()
            )
            stored.update((int(i), (int(v), w)) for i, v, w in rows)
        conflicts = version_conflicts(runs, stored)
        if conflicts:
            name = conn.execute(
                sa.select(experiments_t.c.name).where(experiments_t.c.id == experiment_id)
            ).scalar()
            raise RunConflictError(experiment_id if name is None else name, conflicts)

    def _batches(
        self,
        e: int,
        runs: Sequence[RunRecord],
        metrics: Sequence[MetricChunk],
        artifacts: Sequence[tuple[int, str, Encoded]],
        step_hashes: Sequence[tuple[str, str, str, int]],
    ) -> dict[str, list[dict[str, Any]]]:
        """The rows of a write by table; the last of duplicates wins (one statement may not
        touch a row twice)."""
        new_blobs: dict[str, bytes] = {}
        runs_rows = {run.run_id: self._run_row(e, run, new_blobs) for run in runs}
        artifact_rows = {a[:2]: self._artifact_row(e, *a, new_blobs) for a in artifacts}
        hash_rows = {
            (s, i): {"experiment_id": e, "step": s, "input_hash": i, "output_hash": o, "run_id": r}
            for s, i, o, r in step_hashes
        }
        chunk_rows = {
            (c.run_id, c.name, c.start): {
                "experiment_id": e,
                "run_id": c.run_id,
                "name": c.name,
                "count": c.count,
                "steps": c.steps,
                "vals": c.values,
                "times": c.times,
                "start": c.start,
            }
            for c in metrics
        }
        checked = {run.run_id for run in runs if run.version is not None}
        return {
            "blobs": [{"digest": d, "data": data} for d, data in new_blobs.items()],
            "artifacts": list(artifact_rows.values()),
            "step_hashes": list(hash_rows.values()),
            "runs": [row for i, row in runs_rows.items() if i not in checked],
            "runs_checked": [row for i, row in runs_rows.items() if i in checked],
            "metrics": list(chunk_rows.values()),
        }

    def _run_row(
        self, experiment_id: int, run: RunRecord, new_blobs: dict[str, bytes]
    ) -> dict[str, Any]:
        doc, bins = run_document(run)
        return {
            "experiment_id": experiment_id,
            **columns(run),
            "doc": dump_doc(doc),
            "bundle": pack(bins, lambda data: _stash(data, new_blobs)),
            "version": next_version(run),
            "writer": run.writer,
            "seq": None,  # the write's, set in its transaction (SqlConnection.write)
        }

    def read_runs(
        self, experiment_id: int, run_ids: Iterable[int] | None = None
    ) -> list[RunRecord]:
        """Runs ordered by id: all of them, or those of ``run_ids`` that exist."""
        query = sa.select(*_RUN_COLS).where(runs_t.c.experiment_id == experiment_id)
        if run_ids is None:
            rows = self._db.read(query.order_by(runs_t.c.run_id))
        else:
            rows = []
            for part in batches(sorted(set(run_ids))):
                rows += self._db.read(query.where(runs_t.c.run_id.in_(part)))
            rows.sort(key=lambda r: r[0])
        return self._records(rows)

    def read_run_columns(
        self, experiment_id: int, *, extra: Sequence[str] = ()
    ) -> RunColumns | None:
        """The runs of an experiment column-wise (what loading and ``df()`` need, no record
        per run), on PostgreSQL; ``None`` on other databases, whose callers then read the runs
        with :meth:`read_runs`. See :mod:`trialbook.storage.sql_columns`.

        Examples
        --------
        >>> with open_sql_url("sqlite+pysqlite:///:memory:") as store:
        ...     info = store.create_experiment("e", runs=[RunRecord(1)])
        ...     store.read_run_columns(info.id) is None  # SQLAlchemy's SQLite: run by run
        True
        """
        from trialbook.storage.records import check_extra_columns
        from trialbook.storage.sql_columns import read_columns

        names = check_extra_columns(extra)
        if self._db.engine.dialect.name != "postgresql":
            return None
        try:
            with self._db.engine.connect() as conn:
                conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin(), paused_gc():
                    return read_columns(conn, experiment_id, names, self._get_blobs)
        except sa_exc.SQLAlchemyError as exc:
            raise self._db.error(exc) from exc

    def _records(self, rows: list[Any]) -> list[RunRecord]:
        bundles = [None if row[11] is None else bytes(row[11]) for row in rows]
        blobs = self._get_blobs([d for bundle in bundles for d in blob_digests(bundle)])
        out = []
        for row, bundle in zip(rows, bundles, strict=True):
            record = record_from_columns(row)
            record.version = int(row[12] or 0)
            fill_record(record, load_doc(row[10]), unpack_checked(row[0], bundle, blobs))
            out.append(record)
        return out

    # -- run queries (see trialbook.storage.sql_query) -----------------------------------------

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
        """Filter, sort and page runs (in SQL on PostgreSQL); only the page is read in full.
        See :func:`trialbook.storage.query.query_runs`."""
        from trialbook.storage.query import _check_page
        from trialbook.storage.sql_query import query_runs

        _check_page(limit, offset)
        return query_runs(
            self._db, lambda ids: self.read_runs(experiment_id, ids), experiment_id,
            where=where, order_by=order_by, descending=descending, limit=limit, offset=offset,
        )  # fmt: skip

    def group_runs(
        self, experiment_id: int, *, where: str | None, keys: Sequence[Any], measures: Sequence[Any]
    ) -> list[Any] | None:
        """Runs grouped by the values of ``keys`` (:class:`~trialbook.storage.query.Name`) in
        one ``GROUP BY`` on PostgreSQL (see :func:`trialbook.storage.sql_query.group_runs`);
        ``None`` where it cannot, and the caller groups them itself."""
        from trialbook.storage.sql_query import group_runs

        return group_runs(self._db, experiment_id, where=where, keys=keys, measures=measures)

    def change_token(self) -> str | None:
        """A value equal to an earlier one only if nothing was committed in between (on
        PostgreSQL, its snapshot of transactions; ``None`` elsewhere). Read it before reading
        what a cache keeps (:mod:`trialbook.storage.value_cache`)."""
        from trialbook.storage.sql_query import change_token

        return change_token(self._db)

    def value_columns(
        self, experiment_id: int, names: Sequence[Any], *, since: int | None = None
    ) -> tuple[Any, list[Any]] | None:
        """The run ids of the experiment in order and, for each of ``names``
        (:class:`~trialbook.storage.query.Name`), the column of its runs' values as its filters
        read them (:class:`~trialbook.storage.value_columns.Column`), in one statement on
        PostgreSQL (``None`` elsewhere, or when a document is one ``jsonb`` refuses).
        ``since``: only the runs written after the experiment's write ``since`` (the ``seq``
        of an earlier :meth:`experiment_token`)."""
        from trialbook.storage.sql_query import value_columns
        from trialbook.storage.sql_segments import segments_read
        from trialbook.storage.value_segments import segment_ranges

        if since is None:  # the stored segments first, the documents for the rest
            finish = segments_read(self._db, experiment_id, names, self._segments_kept)
            got = None if finish is None else finish(
                lambda chosen, segments: value_columns(
                    self._db, experiment_id, chosen,
                    ranges=None if segments is None else segment_ranges(segments)))  # fmt: skip
            if got is not None:
                return got
        return value_columns(self._db, experiment_id, names, since)

    def refresh_segments(self, experiment_id: int, limit: int = 256) -> int:
        """Store anew up to ``limit`` of the experiment's segments that are not exact (see
        :meth:`~trialbook.storage.sqlite.SqliteStore.refresh_segments`; none off PostgreSQL);
        return how many.

        Examples
        --------
        >>> store = SqlStore("sqlite://")
        >>> store.refresh_segments(store.create_experiment("e").id)
        0
        >>> store.close()
        """
        from trialbook.storage.sql_segments import refresh_segments

        return refresh_segments(self._db, experiment_id, self._segments_kept, limit)

    def segments_cover(self, experiment_id: int) -> float:
        """The share of the experiment's runs whose values its stored value segments hold
        exactly (:mod:`~trialbook.storage.sql_segments`; 0.0 off PostgreSQL): near 1.0,
        :meth:`value_columns` reads arrays rather than documents.

        Examples
        --------
        >>> store = SqlStore("sqlite://")
        >>> store.segments_cover(store.create_experiment("e").id)
        0.0
        >>> store.close()
        """
        from trialbook.storage.sql_segments import segments_cover

        return segments_cover(self._db, experiment_id, self._segments_kept)

    def experiment_token(self, experiment_id: int) -> tuple[float, int, int, int] | None:
        """``(created, seq, deleted_seq, stamp)`` of the experiment: ``seq`` counts the writes
        and deletes of its runs (each run keeps the ``seq`` of the write that wrote it last;
        writers of one experiment's runs commit in the order of their counts, its row being
        locked from the count to the commit), ``deleted_seq`` is that count at the last delete,
        and ``stamp`` the random number the last of them set (an older copy of the store
        restored and written as many times has another); ``None`` if there is no such
        experiment. Read it before reading what a cache keeps
        (:mod:`trialbook.storage.value_cache`).

        Examples
        --------
        >>> from trialbook.storage.records import RunRecord
        >>> store = SqlStore("sqlite://")
        >>> exp = store.create_experiment("e", runs=[RunRecord(1)])
        >>> store.write_runs(exp.id, [RunRecord(2)])
        >>> store.delete_runs(exp.id, [1])
        >>> store.experiment_token(exp.id)[1:3], store.experiment_token(exp.id + 1)
        ((3, 3), None)
        >>> store.close()
        """
        e = experiments_t.c
        rows = self._db.read(
            sa.select(e.created, e.seq, e.deleted_seq, e.stamp).where(e.id == experiment_id)
        )
        if not rows:
            return None
        created, seq, deleted_seq, stamp = rows[0]
        return float(created), int(seq), int(deleted_seq), int(stamp)

    def names_present(self, experiment_id: int, paths: Sequence[Sequence[str]]) -> list[bool]:
        """For each list of JSON paths of the run document, whether some run of the experiment
        has one of them (an empty list: whether it has a run); used by
        :func:`trialbook.storage.query.check_names`."""
        from trialbook.storage.sql_query import names_present

        return names_present(self._db, experiment_id, paths)

    def delete_runs(self, experiment_id: int, run_ids: Iterable[int]) -> None:
        """Delete runs with their metrics, artifacts and the step hashes that point at them
        (a step hash a later run has replaced stays), in one transaction."""
        ids = sorted(set(run_ids))
        with self._db.tx() as conn:
            for part in batches(ids):
                for table in (runs_t, metrics_t, artifacts_t, step_hashes_t):
                    conn.execute(
                        table.delete().where(
                            table.c.experiment_id == experiment_id, table.c.run_id.in_(part)
                        )
                    )
            if ids:
                e = experiments_t.c
                conn.execute(
                    experiments_t.update()
                    .where(e.id == experiment_id)
                    .values(seq=e.seq + 1, deleted_seq=e.seq + 1, stamp=new_stamp())
                )

    def find_runs_by_key(self, experiment_id: int, key: str) -> list[RunRecord]:
        """Runs whose ``key`` is ``key``, ordered by id."""
        rows = self._db.read(
            sa.select(*_RUN_COLS)
            .where(runs_t.c.experiment_id == experiment_id, runs_t.c.key == key)
            .order_by(runs_t.c.run_id)
        )
        return self._records(rows)

    def put_step_hash(
        self, experiment_id: int, step: str, input_hash: str, output_hash: str, run_id: int
    ) -> None:
        """Record the output hash of ``step`` for ``input_hash`` (the latest one wins)."""
        self.write_runs(experiment_id, [], step_hashes=[(step, input_hash, output_hash, run_id)])

    def get_step_hashes(
        self, experiment_id: int, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, int]]:
        """The latest ``(output_hash, run_id)`` of each ``(step, input_hash)`` that has one."""
        if self._db.one_statement is not None:  # one round trip (autocommit, one statement)
            fetch = functools.partial(self._read_step_hashes, experiment_id)
            return find_step_hashes(keys, fetch, batch=1 << 30)
        s = step_hashes_t.c
        return find_step_hashes(
            keys,
            lambda steps, hashes: self._db.read(
                sa.select(s.step, s.input_hash, s.output_hash, s.run_id).where(
                    s.experiment_id == experiment_id, s.step.in_(steps), s.input_hash.in_(hashes)
                )
            ),
        )

    def _read_step_hashes(
        self, experiment_id: int, steps: list[str], hashes: list[str]
    ) -> list[Any]:
        statements = self._db.one_statement
        assert statements is not None  # the psycopg path only
        with self._db.raw_tx() as (connection, cursor), self._db.autocommit(connection):
            cursor.execute(statements.read_step_hashes, (experiment_id, steps, hashes))
            return cursor.fetchall()

    # -- metrics -------------------------------------------------------------------------------

    def read_metrics(
        self, experiment_id: int, name: str, run_ids: Iterable[int]
    ) -> dict[int, MetricSeries]:
        """All points of metric ``name`` for each of ``run_ids`` that has it."""
        if self._db.one_statement is not None:  # binary results: no hex decoding of the chunks
            params = (experiment_id, name, sorted(set(run_ids)))
            with self._db.raw_tx() as (connection, cursor), self._db.autocommit(connection):
                cursor.execute(self._db.one_statement.read_metrics, params, binary=True)
                rows = cursor.fetchall()
            chunks: dict[int, list[Any]] = {}
            for run_id, steps, vals, times in rows:
                chunks.setdefault(int(run_id), []).append((steps, vals, times))
            return {run_id: metric_series(parts) for run_id, parts in chunks.items()}
        m = metrics_t.c
        parts: dict[int, list[Any]] = {}
        for part in batches(sorted(set(run_ids))):
            rows = self._db.read(
                sa.select(m.run_id, m.steps, m.vals, m.times)
                .where(m.experiment_id == experiment_id, m.name == name, m.run_id.in_(part))
                .order_by(m.run_id, m.start)
            )
            for run_id, steps, vals, times in rows:
                parts.setdefault(int(run_id), []).append((steps, vals, times))
        return {run_id: metric_series(chunks) for run_id, chunks in parts.items()}

    def metric_names(self, experiment_id: int, run_id: int | None = None) -> dict[str, int]:
        """Metric names with their point counts (of one run, or of the experiment)."""
        m = metrics_t.c
        query = sa.select(m.name, sa.func.sum(m.count)).where(m.experiment_id == experiment_id)
        if run_id is not None:
            query = query.where(m.run_id == run_id)
        rows = self._db.read(query.group_by(m.name))
        return {name: int(total) for name, total in sorted(rows)}

    # -- artifacts, snapshots, blobs -----------------------------------------------------------

    def write_artifact(self, experiment_id: int, run_id: int, name: str, value: Encoded) -> None:
        """Store a named binary value of a run (replacing one of the same name)."""
        self.write_runs(experiment_id, [], artifacts=[(run_id, name, value)])

    @staticmethod
    def _artifact_row(
        experiment_id: int, run_id: int, name: str, value: Encoded, new_blobs: dict[str, bytes]
    ) -> dict[str, Any]:
        data: bytes | None = value.data
        blob = None
        if len(value.data) > INLINE_LIMIT:
            blob, data = _stash(value.data, new_blobs), None
        return {
            "experiment_id": experiment_id,
            "run_id": run_id,
            "name": name,
            "codec": value.codec,
            "size": len(value.data),
            "data": data,
            "blob": blob,
        }

    def read_artifact(self, experiment_id: int, run_id: int, name: str) -> Encoded | None:
        """The named binary value of a run, or ``None``."""
        a = artifacts_t.c
        rows = self._db.read(
            sa.select(a.codec, a.data, a.blob).where(
                a.experiment_id == experiment_id, a.run_id == run_id, a.name == name
            )
        )
        if not rows:
            return None
        codec, data, blob = rows[0]
        return Encoded(codec, self._get_blob(blob) if blob else bytes(data))

    def list_artifacts(self, experiment_id: int, run_id: int) -> dict[str, int]:
        """Artifact names of a run with their sizes in bytes."""
        a = artifacts_t.c
        rows = self._db.read(
            sa.select(a.name, a.size)
            .where(a.experiment_id == experiment_id, a.run_id == run_id)
            .order_by(a.name)
        )
        return {name: int(size) for name, size in rows}

    def put_snapshot(self, kind: str, text: str) -> str:
        """Store a text snapshot content-addressed; return its digest."""
        digest = content_address(text)
        check_lengths(self.url, {"snapshots": [{"digest": digest, "kind": kind}]})
        with self._db.tx() as conn:
            insert_missing(conn, snapshots_t, {"digest": digest, "kind": kind, "text": text})
        return digest

    def get_snapshot(self, digest: str) -> str:
        """The text of a snapshot."""
        rows = self._db.read(sa.select(snapshots_t.c.text).where(snapshots_t.c.digest == digest))
        if not rows:
            msg = f"no snapshot {digest!r} in store {self.url!r}"
            raise NotFoundError(msg)
        return str(rows[0][0])

    # -- garbage -------------------------------------------------------------------------------

    def collect_garbage(self, *, min_age: float = 3600.0, dry_run: bool = False) -> GcReport:
        """Remove unreferenced blobs and rows of no experiment, in one transaction.

        Blobs are written in the same transaction as the rows that refer to them, so no age
        threshold is needed (``min_age`` is accepted and unused): on PostgreSQL the blobs table
        is locked against writers for the collection, so a write that reuses a blob waits for
        it and then writes the blob again if it was removed.
        """
        report = GcReport()
        with self._db.tx() as conn:
            if conn.dialect.name == "postgresql":
                quote = conn.dialect.identifier_preparer.quote
                locked = quote(blobs_t.name)
                if self._db.schema:
                    locked = f"{quote(self._db.schema)}.{locked}"
                conn.execute(sa.text(f"LOCK TABLE {locked} IN SHARE ROW EXCLUSIVE MODE"))
            known = sa.select(experiments_t.c.id)
            for table in (runs_t, metrics_t, artifacts_t, step_hashes_t):
                orphan = table.c.experiment_id.not_in(known)
                report.rows += conn.execute(
                    sa.select(sa.func.count()).select_from(table).where(orphan)
                ).scalar_one()
                if not dry_run:
                    conn.execute(table.delete().where(orphan))
            used = {d for (d,) in conn.execute(sa.select(artifacts_t.c.blob)) if d}
            bundles = sa.select(runs_t.c.bundle).where(runs_t.c.bundle.is_not(None))
            for (bundle,) in conn.execute(bundles):
                used.update(blob_digests(bytes(bundle)))
            sizes = sa.select(blobs_t.c.digest, sa.func.length(blobs_t.c.data))
            gone = [(d, size) for d, size in conn.execute(sizes) if d not in used]
            report.blobs, report.bytes = len(gone), sum(int(size) for _, size in gone)
            if gone and not dry_run:
                for part in batches([d for d, _ in gone]):
                    conn.execute(blobs_t.delete().where(blobs_t.c.digest.in_(part)))
        return report

    def _get_blob(self, digest: str) -> bytes:
        return checked_blob(digest, self._get_blobs([digest])[digest])

    def _get_blobs(self, digests: Iterable[str]) -> dict[str, bytes]:
        """The blobs of ``digests``, one statement per :data:`~trialbook.storage.base.BATCH`."""
        wanted = sorted(set(digests))
        found: dict[str, bytes] = {}
        for part in batches(wanted):
            query = sa.select(blobs_t.c.digest, blobs_t.c.data).where(blobs_t.c.digest.in_(part))
            found.update((digest, bytes(data)) for digest, data in self._db.read(query))
        missing = [d for d in wanted if d not in found]
        if missing:
            msg = (
                f"blob {missing[0]} is missing from store {self.url!r}; the store is incomplete"
                + (f" ({len(missing)} blobs are missing)" if len(missing) > 1 else "")
            )
            raise StoreFormatError(msg)
        return found


def _stash(data: bytes, new_blobs: dict[str, bytes]) -> str:
    digest = content_address(data)
    new_blobs[digest] = data
    return digest
