"""Connections of :class:`~trialbook.storage.sql.SqlStore`: the engine, transactions, errors.

:class:`SqlConnection` opens a SQLAlchemy engine for a URL (choosing an installed driver,
setting connect timeouts and, on PostgreSQL, TCP keepalives), creates the tables, and runs
transactions: through SQLAlchemy Core (:meth:`SqlConnection.tx`, :meth:`SqlConnection.read`) or,
for the statements of a trial, on the DB-API connection itself (:meth:`SqlConnection.raw_tx`).
Every driver error leaves it as one :class:`~trialbook.errors.StorageError` that names the
backend and the URL with its password masked.

Examples
--------
>>> db = SqlConnection("sqlite+pysqlite:///:memory:")
>>> db.url, db.hot.supported
('sqlite+pysqlite:///:memory:', True)
>>> db.close()
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql, postgresql, sqlite

from trialbook.errors import ConfigError, ExperimentNotFoundError, StorageError
from trialbook.storage.base import new_stamp
from trialbook.storage.sql_migrations import prepare_schema
from trialbook.storage.sql_schema import (
    METRIC_KEY,
    HotStatements,
    OneStatementWrite,
    artifacts_t,
    blobs_t,
    check_lengths,
    experiments_t,
    metrics_t,
    runs_t,
    step_hashes_t,
)
from trialbook.storage.urls import public_url, with_param

__all__ = [
    "CONNECT_TIMEOUT",
    "SqlConnection",
    "begin_immediate",
    "driver_url",
    "insert_missing",
    "upsert",
    "write_rows",
]

CONNECT_TIMEOUT = 5.0
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")
_FALLBACK_DRIVERS = {"postgresql": ("psycopg2", "psycopg"), "mysql": ("MySQLdb", "pymysql")}
_KEYS = {
    "artifacts": (artifacts_t, ("experiment_id", "run_id", "name")),
    "step_hashes": (step_hashes_t, ("experiment_id", "step", "input_hash")),
    "runs": (runs_t, ("experiment_id", "run_id")),
    "runs_checked": (runs_t, ("experiment_id", "run_id")),  # after the check, as any run
    "metrics": (metrics_t, METRIC_KEY),
}
"""Tables written by upsert, with their keys."""


def driver_url(url: sa.URL) -> sa.URL:
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
        # TCP keepalives: a server that vanishes without closing the connection (a crashed
        # machine, a cut network) is noticed within about a minute instead of never.
        return {
            "connect_timeout": max(1, round(timeout)),
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        }
    if backend in ("mysql", "mariadb"):
        # utf8mb4: every character a name may have (the tables are utf8mb4 too)
        return {"connect_timeout": max(1, round(timeout)), "charset": "utf8mb4"}
    if backend == "sqlite":
        return {"timeout": timeout}
    return {}


def for_scan(conn: sa.Connection) -> None:
    """Prepare ``conn``'s transaction for a statement that reads all runs of an experiment:
    on PostgreSQL, without JIT compilation. The planner's estimate of such a statement over
    a million runs passes ``jit_above_cost``, and compiling its expressions took half a
    second, a third of the whole statement, which then ran no faster (measured on
    PostgreSQL 15: ``benchmarks/bench_scale.py --backend postgres``). And with 32 MiB of
    ``work_mem`` (the default is 4): a grouping of a million runs, estimated at a hundred
    thousand groups, then aggregates in a hash table rather than by a sort spilled to disk
    (1.9 s against 2.2 s at 1M runs, ``benchmarks/bench_ui.py table``). ``SET LOCAL``: for
    this transaction only, so it holds behind a pooler (PgBouncer) too."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL work_mem = '32MB'")


class SqlConnection:
    """The engine of a SQL store and its transactions (see the module documentation).

    Parameters
    ----------
    url
        A SQLAlchemy URL; a ``schema`` query parameter puts the tables in that schema.
    schema
        The schema, instead of the URL's parameter.
    connect_timeout
        Seconds to wait for the server before failing with :class:`StorageError`.
    tracer
        Called as ``tracer(statement, parameters)`` before each statement.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        tracer: Any = None,
    ) -> None:
        self.tracer = tracer
        self._reads = 0  # reads of read() under way
        self._reads_done = threading.Condition()
        self.url = public_url(url)
        try:
            parsed = sa.make_url(url)
        except (sa_exc.ArgumentError, ValueError) as exc:  # ValueError: a port not a number
            msg = (
                f"SQLBackend: cannot parse the URL {self.url!r} ({exc}); expected a SQLAlchemy "
                "URL such as 'postgresql://user:password@host:5432/dbname'"
            )
            raise StorageError(msg) from exc
        in_url = parsed.query.get("schema")
        schema = schema or (in_url[0] if isinstance(in_url, tuple) else in_url)
        if in_url is not None:
            parsed = parsed.difference_update_query(["schema"])
        elif schema:  # the URL says where the store is, schema included
            self.url = with_param(self.url, "schema", schema)
        if schema is not None and not _IDENTIFIER.fullmatch(schema):
            msg = (
                f"SQLBackend {self.url!r}: schema {schema!r} is not a plain identifier; use "
                "letters, digits and underscores (it is created when missing)"
            )
            raise ConfigError(msg)
        self.schema = schema
        self.engine = self._create_engine(driver_url(parsed), connect_timeout)
        dialect = self.engine.dialect
        self.hot = HotStatements(dialect, schema)
        self.psycopg = dialect.name == "postgresql" and dialect.driver == "psycopg"
        self.one_statement = OneStatementWrite(dialect, schema) if self.psycopg else None
        try:
            self.prepare()
        except BaseException:
            self.engine.dispose()
            raise

    # -- connection and schema -------------------------------------------------------------

    def _create_engine(self, url: sa.URL, timeout: float) -> sa.Engine:
        options: dict[str, Any] = {"connect_args": _connect_args(url, timeout)}
        if url.get_backend_name() in ("mysql", "mariadb"):
            # No gap locks: concurrent writers of new runs would otherwise deadlock in InnoDB.
            options["isolation_level"] = "READ COMMITTED"
        if self.schema:
            options["execution_options"] = {"schema_translate_map": {None: self.schema}}
        try:
            engine = sa.create_engine(url, **options)
        except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError) as exc:
            _raise_missing_driver(exc, url.get_backend_name())
            msg = (
                f"SQLBackend: cannot use the URL {self.url!r}: {exc}; check the scheme and "
                "install its driver (e.g. pip install 'trialbook[postgres]')"
            )
            raise StorageError(msg) from exc
        if self.tracer is not None:
            tracer = self.tracer
            sa.event.listen(
                engine,
                "before_cursor_execute",
                lambda _c, _cur, stmt, params, _ctx, _many: tracer(stmt, params),
            )
        return engine

    def prepare(self) -> None:
        """Create the schema and tables of a new store, or upgrade an older one (processes
        may race to do it: see :mod:`trialbook.storage.sql_migrations`)."""
        for attempt in range(3):
            try:
                with self.tx() as conn:
                    prepare_schema(conn, self.schema, self.url)
                return
            except (StorageError, sa_exc.IntegrityError) as exc:
                # Another process created the tables at the same moment: check they are there.
                if attempt == 2:
                    raise exc if isinstance(exc, StorageError) else self.error(exc) from exc

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def error(self, exc: Exception) -> StorageError:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        text = detail[0] if detail else type(exc).__name__
        return StorageError(
            f"SQLBackend {self.url!r}: {text} ({type(exc).__name__}); check that the server "
            "runs and the URL, user and password are right"
        )

    @contextlib.contextmanager
    def tx(self) -> Iterator[sa.Connection]:
        """One transaction; driver errors become :class:`StorageError`."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa_exc.IntegrityError:
            raise
        except (sa_exc.SQLAlchemyError, OSError) as exc:
            if isinstance(exc, StorageError):
                raise
            raise self.error(exc) from exc

    @contextlib.contextmanager
    def raw_tx(self) -> Iterator[tuple[Any, Any]]:
        """A transaction on the DB-API connection itself, for the hot statements.

        Yields ``(connection, cursor)``; the caller commits. Driver errors become
        :class:`StorageError`; a broken connection is dropped from the pool.
        """
        try:
            raw = self.engine.raw_connection()
        except sa_exc.SQLAlchemyError as exc:
            raise self.error(exc) from exc
        cursor = None
        try:
            cursor = raw.cursor()
            yield raw.driver_connection, cursor
        except self.engine.dialect.loaded_dbapi.Error as exc:
            self._discard(raw, cursor, exc)
            raise self.error(exc) from exc
        except BaseException:
            self._discard(raw, cursor, None)
            raise
        finally:
            raw.close()

    def _discard(self, raw: Any, cursor: Any, exc: Exception | None) -> None:
        """Roll back a failed transaction; invalidate the connection if it is broken."""
        error: Any = exc  # a DB-API error in practice (typed as one by SQLAlchemy)
        if error is not None and self.engine.dialect.is_disconnect(
            error, raw.dbapi_connection, cursor
        ):
            raw.invalidate(exc)
            return
        try:
            raw.rollback()
        except Exception as again:
            raw.invalidate(again)

    @contextlib.contextmanager
    def autocommit(self, connection: Any) -> Iterator[None]:
        """psycopg: no BEGIN/COMMIT round trips around a single statement."""
        if not self.psycopg:
            yield
            return
        connection.autocommit = True
        try:
            yield
        finally:
            connection.autocommit = False

    def run_hot(self, cursor: Any, statement: Any, rows: list[dict[str, Any]]) -> None:
        params = [statement.params(row) for row in rows]
        if self.tracer is not None:
            self.tracer(statement.sql, params)
        cursor.executemany(statement.sql, params)

    def read(self, statement: Any, params: Any = None, *, scan: bool = False) -> list[Any]:
        """The rows of ``statement``; ``scan``: a statement that reads every run of an
        experiment (a filter, a grouping), run without PostgreSQL's JIT (see
        :func:`for_scan`)."""
        with self._reads_done:
            self._reads += 1
        try:
            with self.engine.connect() as conn:
                if scan:
                    for_scan(conn)
                return list(conn.execute(statement, params))
        except sa_exc.SQLAlchemyError as exc:
            raise self.error(exc) from exc
        finally:
            with self._reads_done:
                self._reads -= 1
                if not self._reads:
                    self._reads_done.notify_all()

    def give_way(self, longest: float = 1.0) -> None:
        """Wait while a read of :meth:`read` is under way (``longest`` seconds at most). A long
        streamed read (the columns of :mod:`trialbook.storage.value_cache`) calls it before
        each chunk, so that the view a user waits for has the machine's cores meanwhile: the
        server computes a streamed statement's rows only as they are fetched.

        Examples
        --------
        >>> db = SqlConnection("sqlite://")
        >>> db.give_way()  # nothing under way: at once
        >>> db.close()
        """
        with self._reads_done:
            self._reads_done.wait_for(lambda: not self._reads, timeout=longest)

    def write(
        self,
        experiment_id: int,
        batches: dict[str, list[dict[str, Any]]],
        touch: float | None,
        clear: Sequence[Any] = (),
        check: Callable[[sa.Connection], None] | None = None,
    ) -> None:
        """Write rows by table (``blobs``, ``artifacts``, ``step_hashes``, ``runs``,
        ``runs_checked``, ``metrics``: all by upsert) of experiment ``experiment_id`` and set
        ``touch`` (a time) as its last activity, in one transaction: one statement on
        PostgreSQL, the compiled statements on SQLite, SQLAlchemy Core elsewhere and whenever
        ``clear`` (statements to run first, such as deleting the metric points a re-executed
        run replaces) is not empty.

        Raises :class:`~trialbook.errors.ConfigError`, before anything is written, for a text
        longer than its column holds (:func:`~trialbook.storage.sql_schema.check_lengths`).
        The transaction first finds the experiment's row, locked against a delete until the
        commit, and raises :class:`~trialbook.errors.ExperimentNotFoundError` (writing
        nothing) when there is none.

        ``check`` compares the versions of the ``runs_checked`` (runs read from the store)
        and raises to refuse the write: called in the transaction of SQLAlchemy Core, after
        the experiment was found; in the one statement of PostgreSQL the versions are
        compared by the statement itself, and ``check`` is called (in a transaction of its
        own) only to explain a refusal."""
        check_lengths(self.url, batches)
        if not clear and self.one_statement is not None:
            sql, params = self.one_statement.render(experiment_id, list(batches.items()), touch)
            if len(params) <= self.one_statement.MAX_PARAMS:
                try:
                    found = self.write_one_statement(sql, params)
                except StorageError as exc:
                    moved = getattr(exc.__cause__, "sqlstate", None)
                    if check is not None and moved == self.one_statement.VERSION_MOVED:
                        with self.tx() as conn:
                            check(conn)  # raises the conflict, with the stored versions
                    raise
                if not found:
                    raise ExperimentNotFoundError(experiment_id=experiment_id, store=self.url)
                return
        if clear or check is not None:
            self._write_core(experiment_id, batches, touch, clear, check)
            return
        if self.hot.supported:
            touch_rows = [] if touch is None else [{"now": touch, "eid": experiment_id}]
            hot = [(getattr(self.hot, name), rows) for name, rows in batches.items() if rows]
            self.write_hot(experiment_id, [*hot, (self.hot.touch, touch_rows)])
            return
        self._write_core(experiment_id, batches, touch, clear)

    def _write_core(
        self,
        experiment_id: int,
        batches: dict[str, list[dict[str, Any]]],
        touch: float | None,
        clear: Sequence[Any],
        check: Callable[[sa.Connection], None] | None = None,
    ) -> None:
        e = experiments_t.c
        with self.tx() as conn:
            begin_immediate(conn)
            found = conn.execute(
                sa.select(e.id)
                .where(e.id == experiment_id)
                .with_for_update(read=True, key_share=True)
            ).first()
            if found is None:
                raise ExperimentNotFoundError(experiment_id=experiment_id, store=self.url)
            if check is not None:
                check(conn)
            for statement in clear:
                conn.execute(statement)
            if batches.get("runs") or batches.get("runs_checked"):
                number_runs(batches, next_seq(conn, experiment_id))
            write_rows(conn, batches)
            if touch is not None:
                conn.execute(
                    experiments_t.update().where(e.id == experiment_id).values(updated=touch)
                )

    def qualified(self, table: sa.Table) -> str:
        """``table``'s name for SQL text (which the engine's schema translation skips): quoted,
        in the store's schema."""
        quote = self.engine.dialect.identifier_preparer.quote
        name = quote(table.name)
        return f"{quote(self.schema)}.{name}" if self.schema else name

    def analyze(self, table: sa.Table) -> None:
        """PostgreSQL: refresh the planner's statistics of ``table`` now, after a bulk write
        (autovacuum does it a minute or so later; until then the planner believes the runs
        of a new experiment are a few hundred, and a filter over a million of them took 1.4 s
        rather than 1.07 s, measured with ``benchmarks/bench_scale.py``). Statistics only: a
        role that may not analyze the table (not its owner) is left to autovacuum."""
        if self.engine.dialect.name != "postgresql":
            return
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql(f"ANALYZE {self.qualified(table)}")
                conn.commit()
        except sa_exc.SQLAlchemyError:
            return

    def write_one_statement(self, sql: str, params: list[Any]) -> int:
        """Run a statement of :class:`~trialbook.storage.sql_schema.OneStatementWrite`;
        return the number of experiments it found (0: it wrote nothing)."""
        if self.tracer is not None:
            self.tracer(sql, params)
        with self.raw_tx() as (connection, cursor), self.autocommit(connection):
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return int(row[0])

    def write_hot(
        self, experiment_id: int, batches: list[tuple[Any, list[dict[str, Any]]]]
    ) -> None:
        """Run the batches in one transaction on the DB-API connection, after selecting the
        experiment's row (locked against a delete); none: roll back and raise
        :class:`~trialbook.errors.ExperimentNotFoundError`."""
        require = self.hot.require
        params = require.params({"eid": experiment_id})
        with self.raw_tx() as (connection, cursor):
            if self.engine.dialect.name == "sqlite" and not connection.in_transaction:
                cursor.execute("BEGIN IMMEDIATE")  # the driver would begin at the first insert
            if self.tracer is not None:
                self.tracer(require.sql, params)
            cursor.execute(require.sql, params)
            if cursor.fetchone() is None:
                raise ExperimentNotFoundError(experiment_id=experiment_id, store=self.url)
            for statement, rows in batches:
                if rows and statement is self.hot.runs:
                    cursor.execute(
                        self.hot.bump.sql,
                        self.hot.bump.params({"eid": experiment_id, "stamp": new_stamp()}),
                    )
                    number_runs({"runs": rows}, int(cursor.fetchone()[0]))
                if rows:
                    self.run_hot(cursor, statement, rows)
            connection.commit()


def begin_immediate(conn: sa.Connection) -> None:
    """SQLite: take the write lock now, at the start of a transaction of ``conn`` (its driver
    would begin only at the first change, after the reads that decide what to write)."""
    driver = conn.connection.dbapi_connection
    if conn.dialect.name == "sqlite" and not getattr(driver, "in_transaction", True):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def next_seq(conn: sa.Connection, experiment_id: int) -> int:
    """Inside a write's transaction: count one more write of the experiment's runs (its row
    locked until the commit) and return the count, the ``seq`` of the runs it writes."""
    e = experiments_t.c
    conn.execute(
        experiments_t.update().where(e.id == experiment_id).values(seq=e.seq + 1, stamp=new_stamp())
    )
    return int(conn.execute(sa.select(e.seq).where(e.id == experiment_id)).scalar_one())


def number_runs(batches: dict[str, list[dict[str, Any]]], seq: int) -> None:
    """Give the run rows of a write (``runs``, ``runs_checked``) the write's ``seq``."""
    for name in ("runs", "runs_checked"):
        for row in batches.get(name, ()):
            row["seq"] = seq


def write_rows(conn: sa.Connection, batches: dict[str, list[dict[str, Any]]]) -> None:
    """Inside a transaction: write rows by table (``blobs``, ``artifacts``, ``step_hashes``,
    ``runs``, ``runs_checked``, ``metrics``: all by upsert) through SQLAlchemy Core."""
    for row in batches.get("blobs", ()):
        insert_missing(conn, blobs_t, row)
    for name, rows in batches.items():
        if rows and name in _KEYS:
            upsert(conn, _KEYS[name][0], _KEYS[name][1], rows)


def upsert(
    conn: sa.Connection, table: sa.Table, key: tuple[str, ...], rows: list[dict[str, Any]]
) -> None:
    """Insert rows, replacing those with the same key: one statement where the database has an
    upsert (PostgreSQL, SQLite, MySQL/MariaDB), else a DELETE and an INSERT. Columns the rows
    do not name (a serial id) are left as they are."""
    name = conn.dialect.name
    others = [c.name for c in table.c if c.name not in key and c.name in rows[0]]
    if name in ("postgresql", "sqlite"):
        stmt = (postgresql if name == "postgresql" else sqlite).insert(table)
        set_ = {c: stmt.excluded[c] for c in others}
        conn.execute(stmt.on_conflict_do_update(index_elements=list(key), set_=set_), rows)
    elif name in ("mysql", "mariadb"):
        stmt = mysql.insert(table)
        conn.execute(stmt.on_duplicate_key_update({c: stmt.inserted[c] for c in others}), rows)
    else:
        for row in rows:
            conn.execute(table.delete().where(*(table.c[k] == row[k] for k in key)))
        conn.execute(table.insert(), rows)


def insert_missing(conn: sa.Connection, table: sa.Table, row: dict[str, Any]) -> None:
    """Insert a content-addressed row unless its digest is there (races are harmless)."""
    name = conn.dialect.name
    if name in ("postgresql", "sqlite"):
        module = postgresql if name == "postgresql" else sqlite
        conn.execute(module.insert(table).values(**row).on_conflict_do_nothing())
    elif name in ("mysql", "mariadb"):
        conn.execute(table.insert().prefix_with("IGNORE").values(**row))
    elif (
        conn.execute(sa.select(table.c.digest).where(table.c.digest == row["digest"])).first()
        is None
    ):
        conn.execute(table.insert().values(**row))


def _raise_missing_driver(exc: Exception, backend: str) -> None:
    """A database driver that is not installed is an extra: say which one installs it."""
    from trialbook.extras import missing_extra

    if isinstance(exc, ModuleNotFoundError):
        extra = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}.get(backend)
        error = missing_extra(exc, f"a {backend!r} store", extra)
        if error is not None:
            raise error from exc
