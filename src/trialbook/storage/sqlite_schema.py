"""The schema of :class:`~trialbook.storage.sqlite.SqliteStore`: tables, version, migrations.

Tables (schema version :data:`SCHEMA_VERSION`, kept in ``PRAGMA user_version``; the file is
marked as trialbook's with ``PRAGMA application_id``):

* ``experiments(id, name UNIQUE, created, updated, next_run_id, meta, seq, deleted_seq,
  stamp)``,
  ``id INTEGER PRIMARY KEY AUTOINCREMENT`` (since schema version 3): an id is never given
  again, not after the experiment that had it was deleted or replaced, so a process still
  holding it cannot write into a newer experiment; ``seq`` counts the writes and deletes of its
  runs and ``deleted_seq`` is that count at the last delete (since schema version 6);
  ``stamp`` is a random number each of those writes and deletes sets (since schema version 7:
  two histories of the experiment that reach the same count, such as an older copy of the
  store restored and then written, differ by it);
* ``runs(experiment_id, run_id, kind, status, key, seed, created, started, finished, code,
  environment, doc, bundle, version, writer, seq)``, primary key ``(experiment_id, run_id)``;
  ``seq`` is the experiment's ``seq`` of the write that wrote the run last (since schema
  version 6; ``NULL`` for runs written before);
  ``version`` counts the writes of the run and ``writer`` names the last one (a write replaces
  a run only at the version it read, see :meth:`~trialbook.storage.base.Store.write_runs`;
  since schema version 4, older runs are version 0), indexed on ``(experiment_id, status)``
  (since schema version 5: counting an experiment's runs, all or by status, reads that small
  index rather than every run's document). ``doc`` is one JSON
  object holding the run's plain values under short keys, each left out when empty: ``p``
  params, ``f`` fields, ``t`` tags, ``m`` metrics summary (``{name: [count, last value, min,
  max]}``), ``r`` result, ``e`` error (``[type, message, traceback]``); query it with
  ``json_extract(doc, '$.p.lr')``. ``bundle`` packs the values that are not plain JSON (see
  :mod:`trialbook.storage.bundle`); a NumPy number is in both, its plain value in ``doc``
  (since schema version 8);
* ``metrics(id, experiment_id, run_id, name, count, steps, vals, times, blob, start)``: the
  chunks of the metrics, unique on ``(experiment_id, run_id, name, start)`` (``start``: the
  position of the chunk's first point; since schema version 4, which numbered the chunks of
  older stores in the order they were appended) and written by upsert; a chunk larger than the
  inline limit is one blob file (steps, values and times concatenated) in a directory store,
  ``blob`` naming it, because writing megabytes through the WAL costs several times more than a
  file;
* ``artifacts(experiment_id, run_id, name, codec, size, data, blob)``;
* ``snapshots(digest, kind, text)``: content-addressed code and environment snapshots;
* ``step_hashes(experiment_id, step, input_hash, output_hash, run_id)``: purity records (the
  latest run of each step and input hash), indexed on ``(experiment_id, run_id)`` for
  :meth:`~trialbook.storage.sqlite.SqliteStore.delete_runs` (since schema version 2);
* ``blobs(digest, data)``: the large values of a file store (a directory store keeps them as
  files, see :mod:`trialbook.storage.sqlite_blobs`);
* ``value_segments(experiment_id, segment, seq, created, ids, unknown)`` and
  ``value_segment_columns(experiment_id, path, segment, seq, data)``: typed columns of the
  runs' document values by segments of 4,096 run ids, written by bulk writes and used only
  while exact (see :mod:`trialbook.storage.value_segments`; since schema version 9, which
  also indexes ``runs`` on ``(experiment_id, seq)``).

:func:`prepare` checks that a database is trialbook's, sets the connection's pragmas, and
creates the schema of a new database or upgrades an older one: ``MIGRATIONS[v]`` upgrades a
database of version ``v`` to ``v + 1``, all in one transaction.

Examples
--------
>>> import sqlite3
>>> conn = sqlite3.connect(":memory:", isolation_level=None)
>>> prepare(conn, "sqlite:///:memory:", ":memory:")
>>> conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
True
>>> conn.close()
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable

from trialbook.errors import SchemaVersionError, StoreFormatError
from trialbook.storage.bundle import RUN_COLUMNS

__all__ = [
    "APPLICATION_ID",
    "DB_NAME",
    "MIGRATIONS",
    "RUN_SELECT",
    "SCHEMA_VERSION",
    "prepare",
    "prepare_retrying",
    "rollback",
]

APPLICATION_ID = 0x54424B31  # "TBK1"
SCHEMA_VERSION = 9
DB_NAME = "trialbook.db"
RUN_SELECT = ", ".join((*RUN_COLUMNS, "doc", "bundle", "version"))
"""The columns of ``runs`` read into a :class:`~trialbook.storage.records.RunRecord`."""

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


def _index_step_hashes_by_run(conn: sqlite3.Connection) -> None:
    """Version 2: deleting runs removes their step hashes through this index."""
    conn.execute(
        "CREATE INDEX IF NOT EXISTS step_hashes_by_run ON step_hashes (experiment_id, run_id)"
    )


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, after an error, without ever raising: SQLite may have
    rolled it back already (on a full disk or an I/O error), and a failing ``ROLLBACK`` must not
    replace the error that caused it.

    Examples
    --------
    >>> conn = sqlite3.connect(":memory:", isolation_level=None)
    >>> rollback(conn)  # no transaction: nothing to do
    >>> _ = conn.execute("BEGIN")
    >>> rollback(conn)
    >>> conn.in_transaction
    False
    >>> conn.close()
    """
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _never_reuse_experiment_ids(conn: sqlite3.Connection) -> None:
    """Version 3: ``experiments.id`` becomes ``AUTOINCREMENT`` (a plain ``INTEGER PRIMARY KEY``
    gives the largest id again once its experiment is deleted). The table is rebuilt keeping
    every id; the counter starts above every experiment id the tables still mention (rows a
    late write left behind), so those ids are not given again either."""
    conn.execute(
        "CREATE TABLE experiments_v3 ("
        "id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, "
        "created REAL NOT NULL, updated REAL NOT NULL, "
        "next_run_id INTEGER NOT NULL DEFAULT 1, meta TEXT)"
    )
    conn.execute(
        "INSERT INTO experiments_v3 (id, name, created, updated, next_run_id, meta) "
        "SELECT id, name, created, updated, next_run_id, meta FROM experiments"
    )
    conn.execute("DROP TABLE experiments")
    conn.execute("ALTER TABLE experiments_v3 RENAME TO experiments")
    used = " UNION ALL ".join(
        f"SELECT max(experiment_id) FROM {table}"
        for table in ("runs", "metrics", "artifacts", "step_hashes")
    )
    top = conn.execute(
        f"SELECT max(coalesce(m, 0)) FROM (SELECT max(id) AS m FROM experiments UNION ALL "
        f"SELECT * FROM ({used}))"
    ).fetchone()[0]
    conn.execute("DELETE FROM sqlite_sequence WHERE name = 'experiments'")
    conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('experiments', ?)", (top or 0,))


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _key_chunks_and_version_runs(conn: sqlite3.Connection) -> None:
    """Version 4: metric chunks keyed by the position of their first point (the chunks of a
    store written before are numbered in the order they were appended), runs versioned (the
    runs written before are version 0). Safe to run on a database that has some of it."""
    if "start" not in _columns(conn, "metrics"):
        conn.execute("ALTER TABLE metrics ADD COLUMN start INTEGER NOT NULL DEFAULT 0")
        conn.execute("DELETE FROM metrics WHERE count = 0")  # no points, and no position
        conn.execute(
            "UPDATE metrics SET start = p.start FROM (SELECT id, sum(count) OVER (PARTITION BY"
            " experiment_id, run_id, name ORDER BY id) - count AS start FROM metrics) AS p"
            " WHERE metrics.id = p.id"
        )
    conn.execute("DROP INDEX IF EXISTS metrics_by_run")
    conn.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS metrics_by_position"
        " ON metrics (experiment_id, run_id, name, start)"
    )
    runs = _columns(conn, "runs")
    if "version" not in runs:
        conn.execute("ALTER TABLE runs ADD COLUMN version INTEGER NOT NULL DEFAULT 0")
    if "writer" not in runs:
        conn.execute("ALTER TABLE runs ADD COLUMN writer TEXT")


def _index_runs_by_status(conn: sqlite3.Connection) -> None:
    """Version 5: runs indexed by ``(experiment_id, status)``. The primary key holds each run's
    whole row (``WITHOUT ROWID``), so counting a million runs read every document; the index
    holds two short values per run, and serves the counts by status of the live views too."""
    conn.execute("CREATE INDEX IF NOT EXISTS runs_by_status ON runs (experiment_id, status)")


def _sequence_run_changes(conn: sqlite3.Connection) -> None:
    """Version 6: each experiment counts the writes and deletes of its runs (``seq``, and
    ``deleted_seq``, the count at the last delete), and each run keeps the count of the write
    that wrote it last (``runs.seq``; ``NULL`` for the runs written before). A reader keeping
    an experiment's values (:mod:`trialbook.storage.value_cache`) then tells whether that
    experiment changed, and reads only the runs written since, without reading them all
    again after every commit to the store. Safe to run on a database that has some of it."""
    experiments = _columns(conn, "experiments")
    if "seq" not in experiments:
        conn.execute("ALTER TABLE experiments ADD COLUMN seq INTEGER NOT NULL DEFAULT 0")
    if "deleted_seq" not in experiments:
        conn.execute("ALTER TABLE experiments ADD COLUMN deleted_seq INTEGER NOT NULL DEFAULT 0")
    if "seq" not in _columns(conn, "runs"):
        conn.execute("ALTER TABLE runs ADD COLUMN seq INTEGER")


def _stamp_run_changes(conn: sqlite3.Connection) -> None:
    """Version 7: each write and delete of an experiment's runs sets ``experiments.stamp`` to
    a random number (0 until the first one after the upgrade), so that a reader keeping the
    experiment's values tells the history it read from another that reached the same count
    (an older copy of the store restored, then written). Safe to run on a database that has
    it."""
    if "stamp" not in _columns(conn, "experiments"):
        conn.execute("ALTER TABLE experiments ADD COLUMN stamp INTEGER NOT NULL DEFAULT 0")


def _plain_numpy_values(conn: sqlite3.Connection) -> None:
    """Version 8: the documents of runs hold the plain values of their NumPy numbers too (a
    field ``np.float64(0.9)`` as ``0.9``; the exact value stays in the bundle), so queries
    find them. Runs written before get them from their bundles; each experiment changed counts
    one write and is stamped, as a write of its runs is, so that no reader keeps columns read
    before (see :mod:`trialbook.storage.value_cache`). Safe to run again."""
    from trialbook.storage.base import new_stamp
    from trialbook.storage.bundle import numpy_doc

    found: dict[int, list[tuple[str, int]]] = {}
    rows = conn.execute("SELECT experiment_id, run_id, doc, bundle FROM runs "
                        "WHERE bundle IS NOT NULL")  # fmt: skip
    for experiment_id, run_id, doc, bundle in rows:
        text = numpy_doc(doc, bundle)
        if text is not None:
            found.setdefault(experiment_id, []).append((text, run_id))
    for experiment_id, docs in found.items():
        row = conn.execute(
            "UPDATE experiments SET seq = seq + 1, stamp = ? WHERE id = ? RETURNING seq",
            (new_stamp(), experiment_id),
        ).fetchone()
        seq = row[0] if row else None
        conn.executemany(
            "UPDATE runs SET doc = ?, seq = ? WHERE experiment_id = ? AND run_id = ?",
            [(text, seq, experiment_id, run_id) for text, run_id in docs],
        )


def _value_segments(conn: sqlite3.Connection) -> None:
    """Version 9: typed columns of the runs' values kept beside their documents
    (:mod:`trialbook.storage.value_segments`), written by bulk writes from now on (a store
    written before has none, and is read from its documents as before), and runs indexed on
    ``(experiment_id, seq)`` (what a segment is checked against). Safe to run again."""
    for statement in _VALUE_SEGMENTS.split(";"):  # not executescript: it would commit
        if statement.strip():
            conn.execute(statement)


_VALUE_SEGMENTS = """
CREATE TABLE IF NOT EXISTS value_segments (
    experiment_id INTEGER NOT NULL,
    segment INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    created REAL NOT NULL,
    ids BLOB NOT NULL,
    unknown TEXT NOT NULL,
    PRIMARY KEY (experiment_id, segment)
);
CREATE TABLE IF NOT EXISTS value_segment_columns (
    experiment_id INTEGER NOT NULL,
    path TEXT NOT NULL,
    segment INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (experiment_id, path, segment)
);
CREATE INDEX IF NOT EXISTS runs_by_seq ON runs (experiment_id, seq);
"""


# Migrations: MIGRATIONS[v] upgrades a database of version v to v + 1 (inside one transaction).
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _index_step_hashes_by_run,
    2: _never_reuse_experiment_ids,
    3: _key_chunks_and_version_runs,
    4: _index_runs_by_status,
    5: _sequence_run_changes,
    6: _stamp_run_changes,
    7: _plain_numpy_values,
    8: _value_segments,
}


def prepare_retrying(conn: sqlite3.Connection, url: str, path: str, timeout: float) -> None:
    """:func:`prepare`, again while another process holds the lock that creating a store (or
    switching it to WAL) needs: ``PRAGMA journal_mode`` does not wait on its own."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            prepare(conn, url, path)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            rollback(conn)
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def prepare(conn: sqlite3.Connection, url: str, path: str) -> None:
    """Check that ``conn`` (of the store at ``url``, file ``path``) is a trialbook database of
    a version this code reads, set its pragmas, and create or upgrade its schema.

    Raises
    ------
    StoreFormatError
        For a database of another program.
    SchemaVersionError
        For a database of a newer trialbook.
    """
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
                f"{url!r} is an SQLite database of another program (it has {tables} "
                "tables and no trialbook mark); nothing was written. Use a new file"
            )
            raise StoreFormatError(msg)
    elif version > SCHEMA_VERSION:
        msg = (
            f"{url!r} has schema version {version}, newer than this trialbook "
            f"understands ({SCHEMA_VERSION}); upgrade trialbook to read it"
        )
        raise SchemaVersionError(msg)
    if path != ":memory:":
        conn.execute("PRAGMA journal_mode=WAL")
        # Checkpoint every 8,192 WAL pages (32 MiB) rather than 1,000: a checkpoint costs an
        # fsync, and a hot loop of small commits rewrites the same few pages, which one
        # larger checkpoint copies once. The WAL file is cut back to 64 MiB after one.
        conn.execute("PRAGMA wal_autocheckpoint=8192")
        conn.execute("PRAGMA journal_size_limit=67108864")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-16384")
    if app_id != APPLICATION_ID:
        _create_schema(conn)
    elif version < SCHEMA_VERSION:
        _migrate(conn)


def _create_schema(conn: sqlite3.Connection) -> None:
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
        rollback(conn)
        raise
    if SCHEMA_VERSION > 1:
        _migrate(conn)


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        while current < SCHEMA_VERSION:
            MIGRATIONS[current](conn)
            current += 1
            conn.execute(f"PRAGMA user_version={current}")
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
