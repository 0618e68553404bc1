"""The layout version of a SQL store (:class:`~trialbook.storage.sql.SqlStore`) and its
migrations.

The table ``trialbook_schema`` holds one row, the version of the store's layout
(:data:`SCHEMA_VERSION`). A store made before that table existed is version 1. Opening a store
(:func:`prepare_schema`, inside one transaction that holds a lock only openers take) creates
the tables of a new store at the current version, or runs ``MIGRATIONS[v]`` (version ``v`` to
``v + 1``) in order on an older one, and refuses a store of a newer trialbook. On PostgreSQL
the whole upgrade is one transaction (DDL included) behind an advisory lock, so two processes
opening an old store at once upgrade it once; MySQL commits each DDL statement on its own, so
there the lock is a named lock and each migration step checks what is already done.

Versions:

1. the tables as trialbook wrote them before this table existed;
2. metric chunks keyed by ``(experiment_id, run_id, name, start)`` (``start``: the position of
   their first point; the chunks of an older store are numbered in the order they were
   appended), runs versioned (``version``, ``writer``; older runs are version 0), and the index
   of step hashes by run (which earlier versions added when opening a store);
3. experiment ids never given again on SQLite through SQLAlchemy (``AUTOINCREMENT``; PostgreSQL
   sequences and MySQL's ``AUTO_INCREMENT`` never reuse one), and every table of MySQL/MariaDB
   in a case-sensitive collation (earlier versions did both when opening a store);
4. runs indexed by ``(experiment_id, status)``: counting an experiment's runs, all of them or by
   status, reads that index instead of the runs' documents; on PostgreSQL, each run's document
   also kept as ``jsonb`` in the generated column ``docb``
   (:data:`~trialbook.storage.sql_schema.DOC_JSONB`), which queries read instead of parsing
   every document again;
5. each experiment counts the writes and deletes of its runs (``seq``, and ``deleted_seq``: that
   count at the last delete), and each run keeps the count of the write that wrote it last
   (``seq``; ``NULL`` for the runs of an older store): a reader keeping an experiment's values
   (:mod:`trialbook.storage.value_cache`) tells whether it changed and reads only the runs
   written since;
6. each of those writes and deletes sets ``stamp``, a random number, in the experiment's row:
   two histories that reach the same count (an older copy of the store restored, then
   written) differ by it;
7. a run's document holds the plain values of its NumPy numbers (a field ``np.float64(0.9)``
   as ``0.9``; the exact value stays in the bundle), so queries find them: the runs of an
   older store get them from their bundles;
8. typed columns of the runs' values kept beside their documents by segments of 4,096 run ids
   (``trialbook_value_segments`` and ``trialbook_value_segment_columns``, see
   :mod:`trialbook.storage.value_segments`), written by bulk writes on PostgreSQL, and runs
   indexed by ``(experiment_id, run_id, seq)``.

Examples
--------
>>> import sqlalchemy as sa
>>> from trialbook.storage.sql_schema import schema_t
>>> engine = sa.create_engine("sqlite+pysqlite://")
>>> with engine.begin() as conn:
...     prepare_schema(conn, None, "sqlite://")
...     conn.execute(sa.select(schema_t.c.version)).scalar_one() == SCHEMA_VERSION
True
>>> engine.dispose()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from trialbook.errors import SchemaVersionError
from trialbook.storage.sql_schema import (
    add_doc_jsonb,
    artifacts_t,
    experiments_t,
    make_case_sensitive,
    metadata,
    metrics_t,
    runs_t,
    schema_t,
    step_hashes_t,
)

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "prepare_schema"]

SCHEMA_VERSION = 8
_LOCK_ID = 7262697
"""The PostgreSQL advisory lock (and MySQL named lock) of openers."""


def prepare_schema(conn: sa.Connection, schema: str | None, url: str) -> None:
    """In the transaction ``conn``: create the tables of a new store, or upgrade an older one
    to :data:`SCHEMA_VERSION` (``schema``: the store's schema, ``url`` for messages).

    Raises
    ------
    SchemaVersionError
        For a store of a newer trialbook.
    """
    dialect = conn.dialect.name
    if dialect == "postgresql":
        # One opener at a time: concurrent CREATEs collide in the catalog, and an upgrade
        # runs once.
        conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_LOCK_ID})"))
        if schema:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    elif dialect in ("mysql", "mariadb"):
        conn.execute(sa.text(f"SELECT GET_LOCK('trialbook_schema_{_LOCK_ID}', 60)"))
    try:
        existed = sa.inspect(conn).has_table("trialbook_experiments", schema=schema)
        metadata.create_all(conn, checkfirst=True)
        version = conn.execute(sa.select(schema_t.c.version)).scalar()
        if version is None:
            version = 1 if existed else SCHEMA_VERSION
            conn.execute(schema_t.insert().values(id=1, version=version))
        if version > SCHEMA_VERSION:
            msg = (
                f"{url!r} has schema version {version}, newer than this trialbook "
                f"understands ({SCHEMA_VERSION}); upgrade trialbook to read it"
            )
            raise SchemaVersionError(msg)
        if version < SCHEMA_VERSION and dialect == "sqlite":
            # The write lock before migrating (the driver would begin only at the first
            # insert, after the DDL), then the version again: another opener may have done it.
            if not getattr(conn.connection.dbapi_connection, "in_transaction", True):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            version = conn.execute(sa.select(schema_t.c.version)).scalar_one()
        while version < SCHEMA_VERSION:
            MIGRATIONS[version](conn, schema)
            version += 1
            conn.execute(schema_t.update().values(version=version))
    finally:
        if dialect in ("mysql", "mariadb"):
            conn.execute(sa.text(f"SELECT RELEASE_LOCK('trialbook_schema_{_LOCK_ID}')"))


def _columns(conn: sa.Connection, table: str, schema: str | None) -> set[str]:
    return {c["name"] for c in sa.inspect(conn).get_columns(table, schema=schema)}


def _indexes(conn: sa.Connection, table: str, schema: str | None) -> set[str]:
    return {i["name"] or "" for i in sa.inspect(conn).get_indexes(table, schema=schema)}


def _qualified(conn: sa.Connection, table: sa.Table, schema: str | None) -> str:
    """The table's name for SQL text (which the schema translation of the engine skips)."""
    copy = table.to_metadata(sa.MetaData(), schema=schema)  # type: ignore[arg-type]
    return conn.dialect.identifier_preparer.format_table(copy)


def _to_version_2(conn: sa.Connection, schema: str | None) -> None:
    """Key metric chunks by position, version runs, index step hashes by run."""
    dialect = conn.dialect.name
    mysql = dialect in ("mysql", "mariadb")
    metrics = _qualified(conn, metrics_t, schema)
    runs = _qualified(conn, runs_t, schema)
    if "start" not in _columns(conn, "trialbook_metrics", schema):
        conn.execute(sa.text(f"ALTER TABLE {metrics} ADD COLUMN start BIGINT"))
        conn.execute(sa.text(f"DELETE FROM {metrics} WHERE count = 0"))  # no points
        positions = (
            "SELECT id, sum(count) OVER (PARTITION BY experiment_id, run_id, name ORDER BY id)"
            f" - count AS s FROM {metrics}"
        )
        if mysql:
            fill = f"UPDATE {metrics} m JOIN ({positions}) p ON m.id = p.id SET m.start = p.s"
        else:  # PostgreSQL, SQLite (3.33 and later)
            fill = (
                f"UPDATE {metrics} SET start = p.s FROM ({positions}) AS p"
                f" WHERE {metrics}.id = p.id"
            )
        conn.execute(sa.text(fill))
        if dialect == "postgresql":
            conn.execute(sa.text(f"ALTER TABLE {metrics} ALTER COLUMN start SET NOT NULL"))
        elif mysql:
            conn.execute(sa.text(f"ALTER TABLE {metrics} MODIFY start BIGINT NOT NULL"))
    indexes = _indexes(conn, "trialbook_metrics", schema)
    if "trialbook_metrics_by_name" in indexes:
        old = sa.Table("trialbook_metrics", sa.MetaData(), sa.Column("id", sa.Integer))
        sa.Index("trialbook_metrics_by_name", old.c.id).drop(conn)
    for index in (*metrics_t.indexes, *step_hashes_t.indexes):
        index.create(conn, checkfirst=True)
    columns = _columns(conn, "trialbook_runs", schema)
    if "version" not in columns:
        conn.execute(sa.text(f"ALTER TABLE {runs} ADD COLUMN version BIGINT NOT NULL DEFAULT 0"))
    if "writer" not in columns:
        conn.execute(sa.text(f"ALTER TABLE {runs} ADD COLUMN writer VARCHAR(32)"))


def _to_version_3(conn: sa.Connection, schema: str | None) -> None:
    """Never give an experiment id again (SQLite), fold no case (MySQL/MariaDB)."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        _autoincrement_experiments(conn, schema)
    elif dialect in ("mysql", "mariadb"):
        # Stores created with the server's default collation fold case.
        make_case_sensitive(conn, schema)


def _autoincrement_experiments(conn: sa.Connection, schema: str | None) -> None:
    """SQLite: rebuild an experiments table created without ``AUTOINCREMENT`` (by trialbook
    before it never reused ids, which gave the largest id again after a delete), keeping every
    id, with the counter above every experiment id the tables mention."""
    prefix = f'"{schema}".' if schema else ""
    sql = conn.exec_driver_sql(
        f"SELECT sql FROM {prefix}sqlite_master WHERE type = 'table' "
        "AND name = 'trialbook_experiments'"
    ).scalar()
    if sql is None or "AUTOINCREMENT" in sql.upper():
        return
    old = f"{prefix}trialbook_experiments_old"
    conn.exec_driver_sql(
        f"ALTER TABLE {prefix}trialbook_experiments RENAME TO trialbook_experiments_old"
    )
    experiments_t.create(conn)
    had = _columns(conn, "trialbook_experiments_old", schema)  # (later versions add columns)
    columns = ", ".join(c.name for c in experiments_t.c if c.name in had)
    conn.exec_driver_sql(
        f"INSERT INTO {prefix}trialbook_experiments ({columns}) SELECT {columns} FROM {old}"
    )
    conn.exec_driver_sql(f"DROP TABLE {old}")
    used = [f"SELECT max(id) AS m FROM {prefix}trialbook_experiments"] + [
        f"SELECT max(experiment_id) FROM {prefix}{table.name}"
        for table in (runs_t, metrics_t, artifacts_t, step_hashes_t)
    ]
    top = conn.exec_driver_sql(
        f"SELECT max(coalesce(m, 0)) FROM ({' UNION ALL '.join(used)})"
    ).scalar()
    sequence = f"{prefix}sqlite_sequence"
    conn.exec_driver_sql(f"DELETE FROM {sequence} WHERE name = 'trialbook_experiments'")
    conn.exec_driver_sql(
        f"INSERT INTO {sequence} (name, seq) VALUES ('trialbook_experiments', ?)", (top or 0,)
    )


def _to_version_4(conn: sa.Connection, schema: str | None) -> None:
    """Index runs by status; on PostgreSQL, keep each run document as ``jsonb`` too."""
    for index in runs_t.indexes:
        index.create(conn, checkfirst=True)
    if conn.dialect.name == "postgresql":
        add_doc_jsonb(conn, _qualified(conn, runs_t, schema))


def _to_version_5(conn: sa.Connection, schema: str | None) -> None:
    """Count the writes and deletes of each experiment's runs (``seq``, ``deleted_seq``) and
    keep in each run the count of the write that wrote it last (``NULL`` for older runs)."""
    experiments = _qualified(conn, experiments_t, schema)
    runs = _qualified(conn, runs_t, schema)
    have = _columns(conn, "trialbook_experiments", schema)
    for column in ("seq", "deleted_seq"):
        if column not in have:
            add = f"ALTER TABLE {experiments} ADD COLUMN {column} BIGINT NOT NULL DEFAULT 0"
            conn.execute(sa.text(add))
    if "seq" not in _columns(conn, "trialbook_runs", schema):
        conn.execute(sa.text(f"ALTER TABLE {runs} ADD COLUMN seq BIGINT"))


def _to_version_6(conn: sa.Connection, schema: str | None) -> None:
    """Stamp each write and delete of an experiment's runs with a random number (``stamp``, 0
    until the first one after the upgrade)."""
    if "stamp" not in _columns(conn, "trialbook_experiments", schema):
        experiments = _qualified(conn, experiments_t, schema)
        conn.execute(
            sa.text(f"ALTER TABLE {experiments} ADD COLUMN stamp BIGINT NOT NULL DEFAULT 0")
        )


def _to_version_7(conn: sa.Connection, schema: str | None) -> None:
    """Add to the documents of runs the plain values of the NumPy numbers their bundles hold
    (a field ``np.float64(0.9)`` as ``0.9``), so queries find them; each experiment changed
    counts one write and is stamped, as a write of its runs is."""
    from trialbook.storage.base import new_stamp
    from trialbook.storage.bundle import numpy_doc

    r, x = runs_t.c, experiments_t.c
    found: dict[int, list[dict[str, Any]]] = {}
    scan = sa.select(r.experiment_id, r.run_id, r.doc, r.bundle).where(r.bundle.is_not(None))
    for experiment_id, run_id, doc, bundle in conn.execute(scan.execution_options(yield_per=1000)):
        text = numpy_doc(doc, bytes(bundle))
        if text is not None:
            found.setdefault(experiment_id, []).append({"e": experiment_id, "r": run_id,
                                                        "d": text})  # fmt: skip
    update = (
        runs_t.update()
        .where(r.experiment_id == sa.bindparam("e"), r.run_id == sa.bindparam("r"))
        .values(doc=sa.bindparam("d"), seq=sa.bindparam("s"))
    )
    for experiment_id, docs in found.items():
        bump = experiments_t.update().where(x.id == experiment_id)
        conn.execute(bump.values(seq=x.seq + 1, stamp=new_stamp()))
        seq = conn.execute(sa.select(x.seq).where(x.id == experiment_id)).scalar()
        conn.execute(update, [{**doc, "s": seq} for doc in docs])


def _to_version_8(conn: sa.Connection, schema: str | None) -> None:
    """Index runs by ``(experiment_id, run_id, seq)`` (what a value segment is checked
    against); the tables of value segments are new ones, made when the store is opened. The
    runs of an older store have no segments: they are read from their documents, as before,
    until a bulk write stores some."""
    for index in runs_t.indexes:
        index.create(conn, checkfirst=True)


MIGRATIONS: dict[int, Callable[[sa.Connection, str | None], None]] = {
    1: _to_version_2,
    2: _to_version_3,
    3: _to_version_4,
    4: _to_version_5,
    5: _to_version_6,
    6: _to_version_7,
    7: _to_version_8,
}
"""``MIGRATIONS[v]`` upgrades a store of version ``v`` to ``v + 1``."""
