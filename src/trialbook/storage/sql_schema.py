"""The tables of :class:`~trialbook.storage.sql.SqlStore` and the SQL text of its hot writes.

The table layout is documented in :mod:`trialbook.storage.sql`. :class:`HotStatements` compiles,
once per store, the statements a trial costs (``allocate_run_ids`` and ``write_runs``) to the
driver's own SQL text, so that they run on the DB-API connection without SQLAlchemy's
per-statement work (on PostgreSQL the single ``UPDATE ... RETURNING`` of ``allocate_run_ids``
also runs without ``BEGIN``/``COMMIT``). Every other operation goes through SQLAlchemy Core.

Examples
--------
>>> import sqlalchemy as sa
>>> hot = HotStatements(sa.create_engine("sqlite+pysqlite://").dialect, schema=None)
>>> print(hot.allocate.sql)  # doctest: +NORMALIZE_WHITESPACE
UPDATE trialbook_experiments SET next_run_id=(trialbook_experiments.next_run_id + ?)
WHERE trialbook_experiments.id = ? RETURNING next_run_id
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from trialbook.errors import ConfigError
from trialbook.storage.base import new_stamp

__all__ = [
    "BINARY_COLLATION",
    "DOC_JSONB",
    "HotStatements",
    "add_doc_jsonb",
    "artifacts_t",
    "blobs_t",
    "check_lengths",
    "experiments_t",
    "make_case_sensitive",
    "metadata",
    "metrics_t",
    "runs_t",
    "schema_t",
    "snapshots_t",
    "step_hashes_t",
]

metadata = sa.MetaData()
_Id = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_Name = sa.String(255)
_Hash = sa.String(128)
_Blob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
_Text = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
BINARY_COLLATION = "utf8mb4_bin"
"""The collation of every table on MySQL/MariaDB: case-sensitive, so ``loss`` and ``Loss`` stay
two names (the servers' default collations fold case). :func:`binary_collation` picks the
no-pad variant where the server has one (trailing spaces count too)."""
_OPTIONS: dict[str, Any] = {
    f"{dialect}_{option}": value
    for dialect in ("mysql", "mariadb")
    for option, value in (("charset", "utf8mb4"), ("collate", BINARY_COLLATION))
}

experiments_t = sa.Table(
    "trialbook_experiments",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("name", _Name, nullable=False, unique=True),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
    sa.Column("next_run_id", sa.BigInteger, nullable=False, server_default="1"),
    sa.Column("meta", _Text),
    # writes and deletes of its runs, and that count at the last delete (layout version 5)
    sa.Column("seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("deleted_seq", sa.BigInteger, nullable=False, server_default="0"),
    # a random number each of those writes and deletes sets (layout version 6)
    sa.Column("stamp", sa.BigInteger, nullable=False, server_default="0"),
    # SQLite: AUTOINCREMENT, or a deleted experiment's id would be given again (PostgreSQL
    # sequences and MySQL 8 / MariaDB 10.2.4 AUTO_INCREMENT counters never go back).
    sqlite_autoincrement=True,
    **_OPTIONS,
)
runs_t = sa.Table(
    "trialbook_runs",
    metadata,
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
    sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("writer", sa.String(32)),
    sa.Column("seq", sa.BigInteger),  # the experiment's seq of the write that wrote it last
    sa.Index("trialbook_runs_by_key", "experiment_id", "key"),
    sa.Index("trialbook_runs_by_status", "experiment_id", "status"),
    # what a value segment is checked against, and the runs written since a write (version 8)
    sa.Index("trialbook_runs_by_seq", "experiment_id", "run_id", "seq"),
    **_OPTIONS,
)
metrics_t = sa.Table(
    "trialbook_metrics",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("experiment_id", sa.BigInteger, nullable=False),
    sa.Column("run_id", sa.BigInteger, nullable=False),
    sa.Column("name", _Name, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("steps", _Blob, nullable=False),
    sa.Column("vals", _Blob, nullable=False),
    sa.Column("times", _Blob, nullable=False),
    sa.Column("start", sa.BigInteger, nullable=False),
    sa.Index(
        "trialbook_metrics_by_position", "experiment_id", "name", "run_id", "start", unique=True
    ),
    sa.Index("trialbook_metrics_by_run", "experiment_id", "run_id"),
    **_OPTIONS,
)
METRIC_KEY = ("experiment_id", "run_id", "name", "start")
"""The key of a metric chunk: a chunk written again (a retry) replaces the stored one."""
# Metric chunks are not compressed: PostgreSQL's TOAST compression of a 4 KB array of steps
# costs more than the rest of the insert (0.6 ms of 0.8 ms), and arrays of floats barely shrink.
sa.event.listen(
    metrics_t,
    "after_create",
    sa.DDL(
        "ALTER TABLE %(fullname)s ALTER COLUMN steps SET STORAGE EXTERNAL, "
        "ALTER COLUMN vals SET STORAGE EXTERNAL, ALTER COLUMN times SET STORAGE EXTERNAL"
    ).execute_if(dialect="postgresql"),
)
DOC_JSONB = (
    "CASE WHEN coalesce(strpos(doc, 'NaN') > 0 OR strpos(doc, 'Infinity') > 0 OR "
    "strpos(doc, '\\u0000') > 0, false) THEN NULL ELSE CAST(doc AS jsonb) END"
)
"""PostgreSQL: the run document as ``jsonb``, kept in the generated column ``docb`` of
``trialbook_runs`` (since layout version 4), which filters, sorts and groups read instead of
parsing every document again (a million runs: 0.3 s rather than 2 s). ``NULL`` for a document
``jsonb`` refuses (NaN, infinities, ``\\u0000``; a text holding them too): those are read by the
Python evaluator. ``doc`` stays the record: ``jsonb`` would give ``1e20`` back as an integer."""


def add_doc_jsonb(conn: Any, table: str) -> None:
    """Add the generated ``docb`` column to the runs table ``table`` (quoted, schema included)
    of a PostgreSQL store, if it has none (computed for every stored run, once)."""
    conn.execute(sa.text(
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS docb jsonb GENERATED ALWAYS AS "
        f"({DOC_JSONB}) STORED"
    ))  # fmt: skip


sa.event.listen(
    runs_t,
    "after_create",
    sa.DDL(
        f"ALTER TABLE %(fullname)s ADD COLUMN docb jsonb GENERATED ALWAYS AS ({DOC_JSONB}) STORED"
    ).execute_if(dialect="postgresql"),
)
artifacts_t = sa.Table(
    "trialbook_artifacts",
    metadata,
    sa.Column("experiment_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("run_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("name", _Name, primary_key=True),
    sa.Column("codec", sa.String(32), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("data", _Blob),
    sa.Column("blob", sa.String(64)),
    **_OPTIONS,
)
snapshots_t = sa.Table(
    "trialbook_snapshots",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("text", _Text, nullable=False),
    **_OPTIONS,
)
step_hashes_t = sa.Table(
    "trialbook_step_hashes",
    metadata,
    sa.Column("experiment_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("step", _Name, primary_key=True),
    sa.Column("input_hash", _Hash, primary_key=True),
    sa.Column("output_hash", _Hash, nullable=False),
    sa.Column("run_id", sa.BigInteger, nullable=False),
    sa.Index("trialbook_step_hashes_by_run", "experiment_id", "run_id"),
    **_OPTIONS,
)
blobs_t = sa.Table(
    "trialbook_blobs",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("data", _Blob, nullable=False),
    **_OPTIONS,
)
value_segments_t = sa.Table(
    "trialbook_value_segments",
    metadata,
    sa.Column("experiment_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("segment", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("ids", _Blob, nullable=False),
    sa.Column("unknown", _Text, nullable=False),
    **_OPTIONS,
)
"""The manifests of value segments (:mod:`trialbook.storage.value_segments`, layout version
8)."""
value_segment_columns_t = sa.Table(
    "trialbook_value_segment_columns",
    metadata,
    sa.Column("experiment_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("path", _Name, primary_key=True),
    sa.Column("segment", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("data", _Blob, nullable=False),
    **_OPTIONS,
)
"""The columns of value segments, one row per path and segment (layout version 8)."""
schema_t = sa.Table(
    "trialbook_schema",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer, nullable=False),
    **_OPTIONS,
)
"""One row (``id`` 1): the version of the store's layout (see
:mod:`trialbook.storage.sql_migrations`)."""

_UPSERT_DIALECTS = {"postgresql": postgresql, "sqlite": sqlite}


class Compiled:
    """One statement as the driver's SQL text, with the order of its parameters."""

    __slots__ = ("keys", "sql")

    def __init__(self, statement: Any, dialect: Any, column_keys: list[str] | None = None):
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        self.sql = str(compiled)
        self.keys = list(compiled.positiontup or []) if dialect.positional else None

    def params(self, row: dict[str, Any]) -> Any:
        """A row's parameters in the driver's paramstyle."""
        return row if self.keys is None else tuple(row[k] for k in self.keys)


class HotStatements:
    """The statements of a trial, compiled for one dialect and schema.

    Only dialects with ``INSERT ... ON CONFLICT`` and ``UPDATE ... RETURNING`` (PostgreSQL,
    SQLite) have them; :attr:`supported` is false for the others, which use SQLAlchemy Core.
    """

    def __init__(self, dialect: Any, schema: str | None) -> None:
        self.supported = dialect.name in _UPSERT_DIALECTS and bool(dialect.update_returning)
        if not self.supported:
            return
        module = _UPSERT_DIALECTS[dialect.name]
        md = sa.MetaData()
        t = {name: table.to_metadata(md, schema=_schema(schema)) for name, table in _TABLES.items()}
        e = t["experiments"]
        self.allocate = Compiled(
            e.update()
            .where(e.c.id == sa.bindparam("eid"))
            .values(next_run_id=e.c.next_run_id + sa.bindparam("n"))
            .returning(e.c.next_run_id),
            dialect,
        )
        self.require = Compiled(
            sa.select(e.c.id)
            .where(e.c.id == sa.bindparam("eid"))
            .with_for_update(read=True, key_share=True),
            dialect,
        )
        """Select the experiment's row, locked against a delete until the commit (``FOR KEY
        SHARE`` on PostgreSQL: the lock of a foreign key check, which a delete waits for but
        an ``UPDATE`` of the row, such as ``allocate_run_ids``, does not; SQLite has no row
        locks: its write transaction holds the database's)."""
        self.touch = Compiled(
            e.update().where(e.c.id == sa.bindparam("eid")).values(updated=sa.bindparam("now")),
            dialect,
        )
        one: Any = sa.literal_column("1")  # a literal: the parameters are eid and stamp
        self.bump = Compiled(
            e.update().where(e.c.id == sa.bindparam("eid"))
            .values(seq=e.c.seq + one, stamp=sa.bindparam("stamp")).returning(e.c.seq),
            dialect,
        )  # fmt: skip
        """Count one more write of the experiment's runs and set its ``stamp``, returning the
        count (their ``seq``)."""
        self.metrics = self._upsert(module, t["metrics"], list(METRIC_KEY), dialect)
        self.runs = self._upsert(module, t["runs"], ["experiment_id", "run_id"], dialect)
        self.artifacts = self._upsert(
            module, t["artifacts"], ["experiment_id", "run_id", "name"], dialect
        )
        self.step_hashes = self._upsert(
            module, t["step_hashes"], ["experiment_id", "step", "input_hash"], dialect
        )
        insert = module.insert(t["blobs"]).on_conflict_do_nothing()
        self.blobs = Compiled(insert, dialect, ["digest", "data"])

    @staticmethod
    def _upsert(module: Any, table: sa.Table, key: list[str], dialect: Any) -> Compiled:
        written = [c.name for c in table.c if c.name != "id"]  # metric chunks: a serial id
        statement = module.insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=key,
            set_={c: statement.excluded[c] for c in written if c not in key},
        )
        return Compiled(statement, dialect, written)


_TABLES = {
    "experiments": experiments_t,
    "runs": runs_t,
    "metrics": metrics_t,
    "artifacts": artifacts_t,
    "step_hashes": step_hashes_t,
    "blobs": blobs_t,
}


def _placeholder(column: sa.Column, dialect: Any) -> str:
    """``%s::TYPE``; bytes go in binary (``%b``): no escaping of large values. A bounded text
    is cast to ``VARCHAR`` without its length: an explicit cast to ``VARCHAR(255)`` would cut a
    longer value silently, where storing it into the column fails."""
    if isinstance(column.type, sa.LargeBinary):
        return f"%b::{column.type.compile(dialect)}"
    if isinstance(column.type, sa.String) and column.type.length:
        return f"%s::{sa.String().compile(dialect)}"
    return f"%s::{column.type.compile(dialect)}"


# -- limits and collations ---------------------------------------------------------------------

_LIMITS = {
    table.name.removeprefix("trialbook_"): [
        (c.name, c.type.length)
        for c in table.c
        if isinstance(c.type, sa.String) and c.type.length is not None
    ]
    for table in metadata.tables.values()
}
"""The bounded text columns of each table (``VARCHAR(n)``): ``(column, n)``."""
_WHAT = {("experiments", "name"): "experiment name", ("metrics", "name"): "metric name",
         ("artifacts", "name"): "artifact name", ("step_hashes", "step"): "step name",
         ("runs", "status"): "run status", ("runs", "kind"): "run kind"}  # fmt: skip


def check_lengths(url: str, batches: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
    """Refuse, before anything is written, a text longer than its column holds (a name of
    more than 255 characters, a status of more than 32...): the store never cuts a value.

    ``batches`` maps a table name without its ``trialbook_`` prefix to the rows to write.

    Raises
    ------
    ConfigError
        Naming the value, its length, the limit and the column.

    Examples
    --------
    >>> check_lengths("db", {"metrics": [{"name": "loss"}]})
    >>> check_lengths("db", {"metrics": [{"name": "x" * 300}]})
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: SQLBackend 'db': the metric name 'xxx...'
    is 300 characters long, more than the 255 that the column trialbook_metrics.name holds;
    nothing was written. Use a metric name of at most 255 characters (the embedded SQLite,
    Redis and MongoDB stores have no such limit)
    """
    for name, rows in batches.items():
        table = name.removesuffix("_checked")  # runs_checked: runs (OneStatementWrite)
        for column, limit in _LIMITS[table]:
            for row in rows:
                value = row.get(column)
                if value is not None and len(value) > limit:
                    what = _WHAT.get((table, column), f"{table} {column}")
                    shown = value if len(value) <= 32 else value[:32] + "..."
                    msg = (
                        f"SQLBackend {url!r}: the {what} {shown!r} is {len(value)} characters "
                        f"long, more than the {limit} that the column trialbook_{table}.{column} "
                        f"holds; nothing was written. Use a {what} of at most {limit} "
                        "characters (the embedded SQLite, Redis and MongoDB stores have no such "
                        "limit)"
                    )
                    raise ConfigError(msg)


_NO_PAD = ("utf8mb4_nopad_bin", "utf8mb4_0900_bin")
"""Case-sensitive collations where trailing spaces count too (``'a'`` is not ``'a '``):
MariaDB's (10.2 and later), MySQL's (8.0.17 and later)."""


def make_case_sensitive(conn: sa.Connection, schema: str | None) -> list[str]:
    """MySQL/MariaDB: give every ``trialbook_`` table a case-sensitive collation (the best the
    server has: no-pad binary, else :data:`BINARY_COLLATION`), converting the tables of a store
    created with the server's default one (which folds case: ``Loss`` would find ``loss``).
    Returns the tables converted; one query when there is nothing to do."""
    found = {
        name
        for (name,) in conn.execute(
            sa.text(
                "SELECT COLLATION_NAME FROM information_schema.COLLATIONS "
                "WHERE COLLATION_NAME IN :names"
            ).bindparams(sa.bindparam("names", list(_NO_PAD), expanding=True))
        )
    }
    collation = next((name for name in _NO_PAD if name in found), BINARY_COLLATION)
    tables = sorted(
        name
        for (name,) in conn.execute(
            sa.text(
                "SELECT DISTINCT TABLE_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = coalesce(:schema, DATABASE()) AND TABLE_NAME IN :names "
                "AND COLLATION_NAME IS NOT NULL AND COLLATION_NAME != :collation"
            ).bindparams(sa.bindparam("names", sorted(metadata.tables), expanding=True)),
            {"schema": schema, "collation": collation},
        )
    )
    quote = conn.dialect.identifier_preparer.quote
    for table in tables:
        name = f"{quote(schema)}.{quote(table)}" if schema else quote(table)
        conn.execute(
            sa.text(f"ALTER TABLE {name} CONVERT TO CHARACTER SET utf8mb4 COLLATE {collation}")
        )
    return tables


class OneStatementWrite:
    """PostgreSQL with psycopg 3: a whole ``write_runs`` as one statement of data-modifying
    ``WITH`` parts.

    A single statement is atomic on its own, so it runs in autocommit mode: one round trip
    per trial instead of ``BEGIN``, one per statement, and ``COMMIT``. Rows that would touch
    the same key twice must be deduplicated by the caller (PostgreSQL refuses that in one
    statement).

    Its first part, ``g``, selects the experiment's row ``FOR KEY SHARE`` (a delete, which locks
    that row first, waits for the write, or the write for the delete); every insert takes its
    rows only ``WHERE EXISTS (SELECT FROM g)``, and the statement returns ``0`` when ``g`` found
    no row: the experiment no longer exists and nothing was written.

    Runs read from the store (``runs_checked``) are replaced only where the stored row is at
    the version before theirs (or is theirs, written by the same ``writer``: a retry); the
    conflict rule of ``ON CONFLICT ... DO UPDATE ... WHERE`` is evaluated on the latest row,
    after waiting for a concurrent writer of it. When the experiment exists and one of them was
    not replaced (or did not exist: it was inserted), the statement divides by zero, which
    aborts all of it: the error of SQLSTATE :data:`VERSION_MOVED` tells the caller to look for
    the conflict. Otherwise it returns ``1``.

    Examples
    --------
    >>> import sqlalchemy as sa
    >>> pg = sa.create_engine("postgresql+psycopg://u@h/db").dialect
    >>> sql, params = OneStatementWrite(pg, None).render(
    ...     1, [("metrics", [{"experiment_id": 1, "run_id": 2, "name": "m", "count": 1,
    ...                       "steps": b"", "vals": b"", "times": b"", "start": 0}])])
    >>> print(sql)  # doctest: +NORMALIZE_WHITESPACE
    WITH g AS (SELECT id FROM trialbook_experiments WHERE id = %s::BIGINT FOR KEY SHARE),
    w0 AS (INSERT INTO trialbook_metrics
    (experiment_id, run_id, name, count, steps, vals, times, start)
    SELECT * FROM (VALUES (%s::BIGINT, %s::BIGINT, %s::VARCHAR, %s::INTEGER,
    %b::BYTEA, %b::BYTEA, %b::BYTEA, %s::BIGINT)) AS v WHERE EXISTS (SELECT FROM g)
    ON CONFLICT (experiment_id, run_id, name, start) DO UPDATE SET count = EXCLUDED.count,
    steps = EXCLUDED.steps, vals = EXCLUDED.vals, times = EXCLUDED.times)
    SELECT (SELECT count(*) FROM g)
    >>> params
    [1, 1, 2, 'm', 1, b'', b'', b'', 0]
    """

    VERSION_MOVED = "22012"
    """SQLSTATE of the error that refuses a write of runs whose stored version moved."""

    MAX_PARAMS = 30_000
    """Above this many parameters a write uses one statement per table (the protocol's limit
    is 65,535)."""

    _KEYS: ClassVar[dict[str, tuple[str, ...] | None]] = {
        "blobs": ("digest",),
        "artifacts": ("experiment_id", "run_id", "name"),
        "step_hashes": ("experiment_id", "step", "input_hash"),
        "runs": ("experiment_id", "run_id"),
        "metrics": METRIC_KEY,
    }

    def __init__(self, dialect: Any, schema: str | None) -> None:
        md = sa.MetaData()
        quote = dialect.identifier_preparer.quote
        self._parts: dict[str, tuple[str, list[str], str, str]] = {}
        names: dict[str, str] = {}
        for name, key in self._KEYS.items():
            table = _TABLES[name].to_metadata(md, schema=_schema(schema))
            # a run's seq is not a parameter: the write's, from the update of w0 (see render)
            columns = [c for c in table.c if (name, c.name) not in (("metrics", "id"),
                                                                     ("runs", "seq"))]  # fmt: skip
            added = ", seq" if name == "runs" else ""
            head = (
                f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
                f"({', '.join(quote(c.name) for c in columns)}{added}) SELECT *"
                f"{', (SELECT seq FROM w0)' if added else ''} FROM (VALUES "
            )
            group = "(" + ", ".join(_placeholder(c, dialect) for c in columns) + ")"
            tail = ") AS v WHERE EXISTS (SELECT FROM g)"
            if key == ("digest",):
                tail += " ON CONFLICT (digest) DO NOTHING"
            elif key is not None:
                sets = ", ".join(
                    f"{quote(c.name)} = EXCLUDED.{quote(c.name)}"
                    for c in columns
                    if c.name not in key
                )
                sets += ", seq = EXCLUDED.seq" if added else ""
                tail += f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}"
            self._parts[name] = (head, [c.name for c in columns], group, tail)
            names[name] = dialect.identifier_preparer.format_table(table)
        head, columns_, group, tail = self._parts["runs"]
        self._parts["runs_checked"] = (
            head.replace(" (", " AS r (", 1),
            columns_,
            group,
            tail + " WHERE r.version = EXCLUDED.version - 1 OR (r.version = EXCLUDED.version"
            " AND r.writer = EXCLUDED.writer) RETURNING (xmax = 0) AS inserted",
        )
        self.read_metrics = (
            f"SELECT run_id, steps, vals, times FROM {names['metrics']} "
            "WHERE experiment_id = %s AND name = %s AND run_id = ANY(%s) ORDER BY run_id, start"
        )
        """Chunks of one metric of some runs (parameters: experiment id, name, list of run ids),
        to run with binary results."""
        self.read_step_hashes = (
            f"SELECT step, input_hash, output_hash, run_id FROM {names['step_hashes']} "
            "WHERE experiment_id = %s AND step = ANY(%s) AND input_hash = ANY(%s)"
        )
        """Step hashes of some steps and inputs (parameters: experiment id, list of steps, list
        of input hashes): a lookup on the table's whole key."""
        experiments = dialect.identifier_preparer.format_table(
            experiments_t.to_metadata(md, schema=_schema(schema))
        )
        self._guard = f"SELECT id FROM {experiments} WHERE id = %s::BIGINT FOR KEY SHARE"
        self._touch = (
            f"UPDATE {experiments} SET updated = %s::DOUBLE PRECISION WHERE id = %s::BIGINT"
        )
        self._bump = (
            f"UPDATE {experiments} SET seq = seq + 1, stamp = %s::BIGINT{{touch}} WHERE id = "
            "%s::BIGINT AND EXISTS (SELECT FROM g) RETURNING seq"
        )
        """The write's count of the experiment's run writes (its row locked until the commit:
        writers of one experiment's runs commit in the order of their counts), with the touch
        of its last activity: a statement updates a row once (a second update of it in the same
        statement would be lost)."""

    def render(
        self,
        experiment_id: int,
        batches: list[tuple[str, list[dict[str, Any]]]],
        touch: float | None = None,
    ) -> tuple[str, list[Any]]:
        """The statement and its parameters for ``(table name, rows)`` batches of a write to
        experiment ``experiment_id`` (and ``touch``, the time of its last activity;
        ``runs_checked``: runs replaced only at the version before theirs, see the class docs).
        It returns 0 if the experiment no longer exists, else 1."""
        parts: list[str] = [self._guard]
        params: list[Any] = [experiment_id]
        result = "(SELECT count(*) FROM g)"
        if any(rows for name, rows in batches if name in ("runs", "runs_checked")):
            # w0: the seq of the runs written
            parts.append(self._bump.format(touch="" if touch is None else ", updated = %s"))
            params.extend([new_stamp(), *([] if touch is None else [touch]), experiment_id])
            touch = None
        for name, rows in batches:
            if not rows:
                continue
            head, columns, group, tail = self._parts[name]
            if name == "runs_checked":
                result = (
                    "CASE WHEN EXISTS (SELECT FROM g) THEN 1 / (CASE WHEN (SELECT count(*)"
                    f" FROM w{len(parts) - 1} WHERE NOT inserted) = {len(rows)} THEN 1 ELSE 0"
                    " END) ELSE 0 END"
                )
            parts.append(head + ", ".join([group] * len(rows)) + tail)
            for row in rows:
                params.extend(row[c] for c in columns)
        if touch is not None:
            parts.append(self._touch)
            params.extend((touch, experiment_id))
        names = ["g", *(f"w{i}" for i in range(len(parts) - 1))]
        body = ", ".join(f"{name} AS ({part})" for name, part in zip(names, parts, strict=True))
        return f"WITH {body} SELECT {result}", params


def _schema(schema: str | None) -> Any:
    """``schema`` for ``Table.to_metadata``: a name, or ``None`` for the metadata's own (none),
    which SQLAlchemy accepts though its annotation does not say so."""
    return schema
