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
  code, environment, doc, bundle)``, primary key ``(experiment_id, run_id)``, indexed on
  ``(experiment_id, key)``; ``doc`` is the run's JSON document stored as **text** (so NaN and
  infinities survive; see :mod:`trialbook.storage.bundle`), ``bundle`` its binary values;
* ``trialbook_metrics(id, experiment_id, run_id, name, count, steps, vals, times)``: append-only
  chunks, indexed on ``(experiment_id, name, run_id, id)`` and ``(experiment_id, run_id)``;
* ``trialbook_artifacts(experiment_id, run_id, name, codec, size, data, blob)``;
* ``trialbook_snapshots(digest, kind, text)``: content-addressed code and environment texts;
* ``trialbook_step_hashes(experiment_id, step, input_hash, output_hash, run_id)``;
* ``trialbook_blobs(digest, data)``: values larger than 256 KiB, content-addressed.

Concurrency: run ids come from ``UPDATE trialbook_experiments SET next_run_id = next_run_id + n``
followed by a read of the row in the same transaction (the row lock serialises writers), so
processes sharing the database never collide. :meth:`SqlStore.write_runs` is one transaction;
batches use ``executemany``.

Examples
--------
>>> from trialbook.storage.sql import SqlStore
>>> store = SqlStore("sqlite+pysqlite:///:memory:")
>>> store
SqlStore('sqlite+pysqlite:///:memory:')
>>> info = store.create_experiment("demo")
>>> store.allocate_run_ids(info.id, 2)
range(1, 3)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql, postgresql, sqlite

from trialbook.codecs import Encoded
from trialbook.errors import (
    ExperimentExistsError,
    ExperimentNotFoundError,
    NotFoundError,
    StorageError,
    StoreFormatError,
)
from trialbook.storage.bundle import (
    INLINE_LIMIT,
    dump_doc,
    fill_record,
    load_doc,
    pack,
    run_document,
    unpack,
)
from trialbook.storage.records import ExperimentInfo, MetricChunk, MetricSeries, RunRecord

__all__ = ["SqlStore", "open_sql_url"]

CONNECT_TIMEOUT = 5.0
_BATCH = 500

_md = sa.MetaData()
_Id = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_Name = sa.String(255)
_Hash = sa.String(128)
_Blob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
_Text = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")

experiments_t = sa.Table(
    "trialbook_experiments",
    _md,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("name", _Name, nullable=False, unique=True),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
    sa.Column("next_run_id", sa.BigInteger, nullable=False, server_default="1"),
    sa.Column("meta", _Text),
)
runs_t = sa.Table(
    "trialbook_runs",
    _md,
    sa.Column("experiment_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("run_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("key", _Hash),
    sa.Column("seed", sa.BigInteger),
    sa.Column("created", sa.Float),
    sa.Column("started", sa.Float),
    sa.Column("finished", sa.Float),
    sa.Column("code", _Hash),
    sa.Column("environment", _Hash),
    sa.Column("doc", _Text),
    sa.Column("bundle", _Blob),
    sa.Index("trialbook_runs_by_key", "experiment_id", "key"),
)
metrics_t = sa.Table(
    "trialbook_metrics",
    _md,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("experiment_id", sa.BigInteger, nullable=False),
    sa.Column("run_id", sa.BigInteger, nullable=False),
    sa.Column("name", _Name, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("steps", _Blob, nullable=False),
    sa.Column("vals", _Blob, nullable=False),
    sa.Column("times", _Blob, nullable=False),
    sa.Index("trialbook_metrics_by_name", "experiment_id", "name", "run_id", "id"),
    sa.Index("trialbook_metrics_by_run", "experiment_id", "run_id"),
)
artifacts_t = sa.Table(
    "trialbook_artifacts",
    _md,
    sa.Column("experiment_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("run_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("name", _Name, primary_key=True),
    sa.Column("codec", sa.String(32), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("data", _Blob),
    sa.Column("blob", sa.String(64)),
)
snapshots_t = sa.Table(
    "trialbook_snapshots",
    _md,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("text", _Text, nullable=False),
)
step_hashes_t = sa.Table(
    "trialbook_step_hashes",
    _md,
    sa.Column("experiment_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("step", _Name, primary_key=True),
    sa.Column("input_hash", _Hash, primary_key=True),
    sa.Column("output_hash", _Hash, nullable=False),
    sa.Column("run_id", sa.BigInteger, nullable=False),
)
blobs_t = sa.Table(
    "trialbook_blobs",
    _md,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("data", _Blob, nullable=False),
)

_RUN_COLS = [c for c in runs_t.c if c.name != "experiment_id"]
_FALLBACK_DRIVERS = {"postgresql": ("psycopg2", "psycopg"), "mysql": ("MySQLdb", "pymysql")}


def open_sql_url(url: str, **options: Any) -> SqlStore:
    """Open a SQL store from a SQLAlchemy URL (the registered opener of SQL schemes).

    Examples
    --------
    >>> open_sql_url("sqlite+pysqlite:///:memory:").backend_label
    'SQLBackend'
    """
    return SqlStore(url, **options)


def _driver_url(url: sa.URL) -> sa.URL:
    """``postgresql://`` means psycopg2 to SQLAlchemy; use psycopg (3) when only it exists."""
    fallback = _FALLBACK_DRIVERS.get(url.drivername)
    if (
        fallback
        and importlib.util.find_spec(fallback[0]) is None
        and importlib.util.find_spec(fallback[1]) is not None
    ):
        return url.set(drivername=f"{url.drivername}+{fallback[1]}")
    return url


def _connect_args(url: sa.URL, timeout: float) -> dict[str, Any]:
    backend = url.get_backend_name()
    if backend == "postgresql":
        return {"connect_timeout": max(1, round(timeout))}
    if backend in ("mysql", "mariadb"):
        return {"connect_timeout": max(1, round(timeout))}
    if backend == "sqlite":
        return {"timeout": timeout}
    return {}


class SqlStore:
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
        names the backend and the URL without its password.

    Examples
    --------
    >>> store = SqlStore("sqlite+pysqlite:///:memory:")
    >>> store.list_experiments()
    []
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
        self._tracer = tracer
        self._lock = threading.RLock()
        self.url = _hide_password(url)
        try:
            parsed = sa.make_url(url)
        except sa_exc.ArgumentError as exc:
            msg = (
                f"SQLBackend: cannot parse the URL {self.url!r} ({exc}); expected a SQLAlchemy "
                "URL such as 'postgresql://user:password@host:5432/dbname'"
            )
            raise StorageError(msg) from exc
        schema = schema or parsed.query.get("schema")  # type: ignore[assignment]
        if isinstance(schema, tuple):
            schema = schema[0]
        if "schema" in parsed.query:
            parsed = parsed.difference_update_query(["schema"])
            url = parsed.render_as_string(hide_password=False)
        self.url = _hide_password(url)
        self.schema = schema
        self._engine = self._create_engine(_driver_url(parsed), connect_timeout)
        self._prepare()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- connection and schema -------------------------------------------------------------

    def _create_engine(self, url: sa.URL, timeout: float) -> sa.Engine:
        options: dict[str, Any] = {"connect_args": _connect_args(url, timeout)}
        if self.schema:
            options["execution_options"] = {"schema_translate_map": {None: self.schema}}
        try:
            engine = sa.create_engine(url, **options)
        except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError) as exc:
            msg = (
                f"SQLBackend: cannot use the URL {self.url!r}: {exc}; check the scheme and "
                "install its driver (e.g. pip install 'trialbook[postgres]')"
            )
            raise StorageError(msg) from exc
        if self._tracer is not None:
            tracer = self._tracer
            sa.event.listen(
                engine,
                "before_cursor_execute",
                lambda _c, _cur, stmt, params, _ctx, _many: tracer(stmt, params),
            )
        return engine

    def _prepare(self) -> None:
        with self._tx() as conn:
            if self.schema and conn.dialect.name == "postgresql":
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
        try:
            with self._tx() as conn:
                _md.create_all(conn, checkfirst=True)
        except StorageError:
            # Another process created the tables at the same moment: check they are there.
            with self._tx() as conn:
                _md.create_all(conn, checkfirst=True)

    def close(self) -> None:
        """Release the connection pool."""
        self._engine.dispose()

    def _error(self, exc: Exception) -> StorageError:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        text = detail[0] if detail else type(exc).__name__
        return StorageError(
            f"SQLBackend {self.url!r}: {text} ({type(exc).__name__}); check that the server "
            "runs and the URL, user and password are right"
        )

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        """One transaction; driver errors become :class:`StorageError`."""
        try:
            with self._engine.begin() as conn:
                yield conn
        except sa_exc.IntegrityError:
            raise
        except (sa_exc.SQLAlchemyError, OSError) as exc:
            if isinstance(exc, StorageError):
                raise
            raise self._error(exc) from exc

    def _read(self, statement: Any, params: Any = None) -> list[Any]:
        try:
            with self._engine.connect() as conn:
                return list(conn.execute(statement, params))
        except sa_exc.SQLAlchemyError as exc:
            raise self._error(exc) from exc

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
        rows = self._read(self._experiment_select().order_by(experiments_t.c.name))
        infos = [self._info(r) for r in rows]
        return sorted(infos, key=lambda i: i.name)  # the database collation may differ

    def find_experiment(self, name: str) -> ExperimentInfo | None:
        """The experiment named exactly ``name``, or ``None``."""
        rows = self._read(self._experiment_select().where(experiments_t.c.name == name))
        rows = [r for r in rows if r[1] == name]  # case-insensitive collations (MySQL)
        return self._info(rows[0]) if rows else None

    def create_experiment(
        self, name: str, *, meta: dict[str, Any] | None = None, replace: bool = False
    ) -> ExperimentInfo:
        """Create an experiment (or replace one of the same name when ``replace``)."""
        now = time.time()
        try:
            with self._tx() as conn:
                row = conn.execute(
                    sa.select(experiments_t.c.id).where(experiments_t.c.name == name)
                ).first()
                if row is not None:
                    if not replace:
                        raise ExperimentExistsError(name)
                    self._delete_contents(conn, row[0])
                    conn.execute(experiments_t.delete().where(experiments_t.c.id == row[0]))
                result = conn.execute(
                    experiments_t.insert().values(
                        name=name, created=now, updated=now, next_run_id=1, meta=dump_doc(meta)
                    )
                )
                new_id = result.inserted_primary_key[0]
        except sa_exc.IntegrityError as exc:
            raise ExperimentExistsError(name) from exc
        return ExperimentInfo(int(new_id), name, now, now, 0, dict(meta or {}))

    def delete_experiment(self, name: str) -> None:
        """Delete an experiment with all its runs, metrics and artifacts."""
        with self._tx() as conn:
            row = conn.execute(
                sa.select(experiments_t.c.id).where(experiments_t.c.name == name)
            ).first()
            if row is None:
                names = [r[0] for r in conn.execute(sa.select(experiments_t.c.name))]
                raise ExperimentNotFoundError(name, available=names)
            self._delete_contents(conn, row[0])
            conn.execute(experiments_t.delete().where(experiments_t.c.id == row[0]))

    @staticmethod
    def _delete_contents(conn: sa.Connection, experiment_id: int) -> None:
        for table in (runs_t, metrics_t, artifacts_t, step_hashes_t):
            conn.execute(table.delete().where(table.c.experiment_id == experiment_id))

    def update_meta(self, experiment_id: int, meta: dict[str, Any]) -> None:
        """Merge ``meta`` into the experiment's metadata."""
        e = experiments_t.c
        with self._tx() as conn:
            row = conn.execute(
                sa.select(e.meta).where(e.id == experiment_id).with_for_update()
            ).first()
            if row is None:
                raise ExperimentNotFoundError(str(experiment_id))
            merged = {**load_doc(row[0]), **meta}
            conn.execute(
                experiments_t.update()
                .where(e.id == experiment_id)
                .values(meta=dump_doc(merged), updated=time.time())
            )

    # -- runs ----------------------------------------------------------------------------------

    def allocate_run_ids(self, experiment_id: int, count: int) -> range:
        """Reserve ``count`` consecutive run ids atomically (the row lock serialises callers)."""
        e = experiments_t.c
        bump = (
            experiments_t.update()
            .where(e.id == experiment_id)
            .values(next_run_id=e.next_run_id + count)
        )
        with self._tx() as conn:
            if conn.dialect.update_returning:  # one round trip: UPDATE ... RETURNING
                row = conn.execute(bump.returning(e.next_run_id)).first()
            else:
                done = conn.execute(bump)
                row = None
                if done.rowcount:
                    row = conn.execute(
                        sa.select(e.next_run_id).where(e.id == experiment_id)
                    ).first()
        if row is None:
            msg = f"experiment id {experiment_id} was deleted from {self.url!r}"
            raise ExperimentNotFoundError(msg)
        return range(row[0] - count, row[0])

    def write_runs(
        self,
        experiment_id: int,
        runs: Sequence[RunRecord],
        metrics: Sequence[MetricChunk] = (),
        *,
        artifacts: Sequence[tuple[int, str, Encoded]] = (),
        step_hashes: Sequence[tuple[str, str, str, int]] = (),
    ) -> None:
        """Write runs, metric chunks, artifacts and step hashes in one transaction."""
        new_blobs: dict[str, bytes] = {}
        rows = [self._run_row(experiment_id, run, new_blobs) for run in runs]
        artifact_rows = [self._artifact_row(experiment_id, *a, new_blobs) for a in artifacts]
        with self._tx() as conn:
            self._insert_blobs(conn, new_blobs)
            self._replace_artifacts(conn, artifact_rows)
            if step_hashes:
                self._replace_step_hashes(conn, experiment_id, step_hashes)
            if rows:
                self._replace_runs(conn, experiment_id, rows)
            if metrics:
                conn.execute(
                    metrics_t.insert(),
                    [
                        {
                            "experiment_id": experiment_id,
                            "run_id": c.run_id,
                            "name": c.name,
                            "count": c.count,
                            "steps": c.steps,
                            "vals": c.values,
                            "times": c.times,
                        }
                        for c in metrics
                    ],
                )
            conn.execute(
                experiments_t.update()
                .where(experiments_t.c.id == experiment_id)
                .values(updated=time.time())
            )

    @staticmethod
    def _replace_runs(conn: sa.Connection, experiment_id: int, rows: list[dict[str, Any]]) -> None:
        name = conn.dialect.name
        if name in ("postgresql", "sqlite"):  # one upsert statement, no DELETE round trip
            module = postgresql if name == "postgresql" else sqlite
            stmt = module.insert(runs_t)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["experiment_id", "run_id"],
                    set_={c.name: stmt.excluded[c.name] for c in _RUN_COLS[1:]},
                ),
                rows,
            )
            return
        for part in _batches([r["run_id"] for r in rows]):
            conn.execute(
                runs_t.delete().where(
                    runs_t.c.experiment_id == experiment_id, runs_t.c.run_id.in_(part)
                )
            )
        conn.execute(runs_t.insert(), rows)

    def _run_row(
        self, experiment_id: int, run: RunRecord, new_blobs: dict[str, bytes]
    ) -> dict[str, Any]:
        doc, bins = run_document(run)
        return {
            "experiment_id": experiment_id,
            "run_id": run.run_id,
            "kind": run.kind,
            "status": str(run.status),
            "key": run.key,
            "seed": run.seed,
            "created": run.created,
            "started": run.started,
            "finished": run.finished,
            "code": run.code,
            "environment": run.environment,
            "doc": dump_doc(doc),
            "bundle": pack(bins, lambda data: _stash(data, new_blobs)),
        }

    def read_runs(
        self, experiment_id: int, run_ids: Iterable[int] | None = None
    ) -> list[RunRecord]:
        """Runs ordered by id: all of them, or those of ``run_ids`` that exist."""
        query = sa.select(*_RUN_COLS).where(runs_t.c.experiment_id == experiment_id)
        if run_ids is None:
            rows = self._read(query.order_by(runs_t.c.run_id))
        else:
            rows = []
            for part in _batches(sorted(set(run_ids))):
                rows += self._read(query.where(runs_t.c.run_id.in_(part)))
            rows.sort(key=lambda r: r[0])
        return self._records(rows)

    def _records(self, rows: list[Any]) -> list[RunRecord]:
        out = []
        for row in rows:
            record = RunRecord(
                run_id=row[0],
                kind=row[1],
                status=row[2],
                key=row[3],
                seed=row[4],
                created=row[5],
                started=row[6],
                finished=row[7],
                code=row[8],
                environment=row[9],
            )
            bundle = None if row[11] is None else bytes(row[11])
            fill_record(record, load_doc(row[10]), unpack(bundle, self._get_blob))
            out.append(record)
        return out

    def delete_runs(self, experiment_id: int, run_ids: Iterable[int]) -> None:
        """Delete runs with their metrics and artifacts."""
        ids = sorted(set(run_ids))
        with self._tx() as conn:
            for part in _batches(ids):
                for table in (runs_t, metrics_t, artifacts_t):
                    conn.execute(
                        table.delete().where(
                            table.c.experiment_id == experiment_id, table.c.run_id.in_(part)
                        )
                    )

    def find_runs_by_key(self, experiment_id: int, key: str) -> list[RunRecord]:
        """Runs whose ``key`` is ``key``, ordered by id."""
        rows = self._read(
            sa.select(*_RUN_COLS)
            .where(runs_t.c.experiment_id == experiment_id, runs_t.c.key == key)
            .order_by(runs_t.c.run_id)
        )
        return self._records(rows)

    def put_step_hash(
        self, experiment_id: int, step: str, input_hash: str, output_hash: str, run_id: int
    ) -> None:
        """Record the output hash of ``step`` for ``input_hash`` (the latest one wins)."""
        with self._tx() as conn:
            self._replace_step_hashes(
                conn, experiment_id, [(step, input_hash, output_hash, run_id)]
            )

    @staticmethod
    def _replace_step_hashes(
        conn: sa.Connection, experiment_id: int, hashes: Sequence[tuple[str, str, str, int]]
    ) -> None:
        s = step_hashes_t.c
        for step, input_hash, _, _ in hashes:
            conn.execute(
                step_hashes_t.delete().where(
                    s.experiment_id == experiment_id, s.step == step, s.input_hash == input_hash
                )
            )
        latest = {(h[0], h[1]): h for h in hashes}  # the last of duplicates wins
        conn.execute(
            step_hashes_t.insert(),
            [
                {
                    "experiment_id": experiment_id,
                    "step": step,
                    "input_hash": ih,
                    "output_hash": oh,
                    "run_id": rid,
                }
                for step, ih, oh, rid in latest.values()
            ],
        )

    def get_step_hash(
        self, experiment_id: int, step: str, input_hash: str
    ) -> tuple[str, int] | None:
        """The latest ``(output_hash, run_id)`` for ``step`` and ``input_hash``, if any."""
        s = step_hashes_t.c
        rows = self._read(
            sa.select(s.output_hash, s.run_id).where(
                s.experiment_id == experiment_id, s.step == step, s.input_hash == input_hash
            )
        )
        return (rows[0][0], int(rows[0][1])) if rows else None

    # -- metrics -------------------------------------------------------------------------------

    def read_metrics(
        self, experiment_id: int, name: str, run_ids: Iterable[int]
    ) -> dict[int, MetricSeries]:
        """All points of metric ``name`` for each of ``run_ids`` that has it."""
        m = metrics_t.c
        parts: dict[int, list[Any]] = {}
        for part in _batches(sorted(set(run_ids))):
            rows = self._read(
                sa.select(m.run_id, m.steps, m.vals, m.times)
                .where(m.experiment_id == experiment_id, m.name == name, m.run_id.in_(part))
                .order_by(m.run_id, m.id)
            )
            for run_id, steps, vals, times in rows:
                parts.setdefault(int(run_id), []).append((steps, vals, times))
        return {run_id: _series(chunks) for run_id, chunks in parts.items()}

    def metric_names(self, experiment_id: int, run_id: int | None = None) -> dict[str, int]:
        """Metric names with their point counts (of one run, or of the experiment)."""
        m = metrics_t.c
        query = sa.select(m.name, sa.func.sum(m.count)).where(m.experiment_id == experiment_id)
        if run_id is not None:
            query = query.where(m.run_id == run_id)
        rows = self._read(query.group_by(m.name))
        return {name: int(total) for name, total in sorted(rows)}

    # -- artifacts, snapshots, blobs -----------------------------------------------------------

    def write_artifact(self, experiment_id: int, run_id: int, name: str, value: Encoded) -> None:
        """Store a named binary value of a run (replacing one of the same name)."""
        new_blobs: dict[str, bytes] = {}
        row = self._artifact_row(experiment_id, run_id, name, value, new_blobs)
        with self._tx() as conn:
            self._insert_blobs(conn, new_blobs)
            self._replace_artifacts(conn, [row])

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

    @staticmethod
    def _replace_artifacts(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        a = artifacts_t.c
        for row in rows:
            conn.execute(
                artifacts_t.delete().where(
                    a.experiment_id == row["experiment_id"],
                    a.run_id == row["run_id"],
                    a.name == row["name"],
                )
            )
        conn.execute(artifacts_t.insert(), rows)

    def read_artifact(self, experiment_id: int, run_id: int, name: str) -> Encoded | None:
        """The named binary value of a run, or ``None``."""
        a = artifacts_t.c
        rows = self._read(
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
        rows = self._read(
            sa.select(a.name, a.size)
            .where(a.experiment_id == experiment_id, a.run_id == run_id)
            .order_by(a.name)
        )
        return {name: int(size) for name, size in rows}

    def put_snapshot(self, kind: str, text: str) -> str:
        """Store a text snapshot content-addressed; return its digest."""
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        with self._tx() as conn:
            self._insert_missing(conn, snapshots_t, {"digest": digest, "kind": kind, "text": text})
        return digest

    def get_snapshot(self, digest: str) -> str:
        """The text of a snapshot."""
        rows = self._read(sa.select(snapshots_t.c.text).where(snapshots_t.c.digest == digest))
        if not rows:
            msg = f"no snapshot {digest!r} in store {self.url!r}"
            raise NotFoundError(msg)
        return str(rows[0][0])

    def _insert_blobs(self, conn: sa.Connection, new_blobs: dict[str, bytes]) -> None:
        for digest, data in new_blobs.items():
            self._insert_missing(conn, blobs_t, {"digest": digest, "data": data})

    @staticmethod
    def _insert_missing(conn: sa.Connection, table: sa.Table, row: dict[str, Any]) -> None:
        """Insert a content-addressed row unless its digest is there (races are harmless)."""
        name = conn.dialect.name
        if name in ("postgresql", "sqlite"):
            module = postgresql if name == "postgresql" else sqlite
            conn.execute(module.insert(table).values(**row).on_conflict_do_nothing())
        elif name in ("mysql", "mariadb"):
            conn.execute(table.insert().prefix_with("IGNORE").values(**row))
        elif conn.execute(
            sa.select(table.c.digest).where(table.c.digest == row["digest"])
        ).first() is None:
            conn.execute(table.insert().values(**row))

    def _get_blob(self, digest: str) -> bytes:
        rows = self._read(sa.select(blobs_t.c.data).where(blobs_t.c.digest == digest))
        if not rows:
            msg = f"blob {digest} is missing from store {self.url!r}; the store is incomplete"
            raise StoreFormatError(msg)
        return bytes(rows[0][0])


def _stash(data: bytes, new_blobs: dict[str, bytes]) -> str:
    digest = hashlib.sha256(data).hexdigest()
    new_blobs[digest] = data
    return digest


def _series(chunks: list[Any]) -> MetricSeries:
    import numpy as np  # noqa: PLC0415 - only readers of metrics pay for NumPy

    return MetricSeries(
        steps=np.frombuffer(b"".join(bytes(c[0]) for c in chunks), dtype="<i8"),
        values=np.frombuffer(b"".join(bytes(c[1]) for c in chunks), dtype="<f8"),
        times=np.frombuffer(b"".join(bytes(c[2]) for c in chunks), dtype="<f8"),
    )


def _batches(ids: list[int], size: int = _BATCH) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _hide_password(url: str) -> str:
    """The URL without its password, for messages (works on URLs SQLAlchemy cannot parse)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    auth, at, host = rest.rpartition("@")
    if not at:
        return url
    return f"{scheme}://{auth.partition(':')[0]}@{host}"

