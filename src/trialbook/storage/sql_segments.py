"""Value segments (:mod:`trialbook.storage.value_segments`) of a SQL store on PostgreSQL: the
typed columns of the runs' values kept beside their documents, written after a bulk write of
runs and read by :meth:`~trialbook.storage.sql.SqlStore.value_columns`. Other databases keep
none (their stores read no columns).

A bulk write stores its segments right after its commit, each in a transaction of its own: the
experiment's row locked (no write or delete of its runs meanwhile), a segment is made from all
its runs as stored then, its ``seq`` the largest of theirs. A segment holding a document
``jsonb`` refuses is not stored (such a run is read by the Python evaluator, never by SQL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from trialbook.storage.bundle import load_doc
from trialbook.storage.sql_schema import (
    experiments_t,
    runs_t,
    value_segment_columns_t,
    value_segments_t,
)

if TYPE_CHECKING:
    from trialbook.storage.value_segments import Marks

__all__ = ["refresh_segments", "segments_cover", "segments_read", "write_segments"]

MAX_PATH = 255
"""The longest path a row of ``trialbook_value_segment_columns`` holds (a longer one is read
from the documents)."""


def _postgres(db: Any) -> bool:
    return bool(db.engine.dialect.name == "postgresql")


def write_segments(db: Any, experiment_id: int, segments: Iterable[int]) -> int:
    """Store the ``segments`` of the experiment's runs (a bulk write's, or those no exact
    segment holds) from its runs as stored, one transaction each (see the module); return how
    many were stored. Nothing on a database other than PostgreSQL."""
    chosen = sorted(set(segments))
    if not chosen or not _postgres(db):
        return 0
    stored = 0
    for segment in chosen:
        with db.tx() as conn:
            stored += _store_segment(conn, db, experiment_id, segment)
    return stored


def _store_segment(conn: Any, db: Any, experiment_id: int, segment: int) -> int:
    """In a transaction: store one segment from its runs as stored (1), or nothing (0: no
    experiment, no run, a run written before runs had ``seq``, or a document jsonb refuses)."""
    from trialbook.storage.sql_query import STORED_BAD
    from trialbook.storage.value_segments import (
        TABLE_COLUMNS,
        build_segment,
        encode_column,
        segment_ranges,
        wide_numbers,
    )

    e = experiments_t.c
    row = conn.execute(
        sa.select(e.created).where(e.id == experiment_id).with_for_update()
    ).first()  # no write or delete of its runs until the commit
    if row is None:
        return 0
    created = float(row[0])
    ((first, last),) = segment_ranges([segment])
    fields = ", ".join(["run_id", "seq", STORED_BAD, "doc", *TABLE_COLUMNS])
    rows = conn.execute(
        sa.text(f"SELECT {fields} FROM {db.qualified(runs_t)} WHERE experiment_id = :e "
                "AND run_id BETWEEN :a AND :b"),
        {"e": experiment_id, "a": first, "b": last},
    ).all()  # fmt: skip
    if not rows or any(x[1] is None or x[2] for x in rows):
        return 0
    runs = {int(x[0]): (load_doc(x[3]), dict(zip(TABLE_COLUMNS, x[4:], strict=True)))
            for x in rows}  # fmt: skip
    manifest, columns = build_segment(segment, runs, max(int(x[1]) for x in rows), created)
    long = {path for path in columns if len(path) > MAX_PATH}
    manifest.unknown = manifest.unknown | long
    s, c = value_segments_t.c, value_segment_columns_t.c
    conn.execute(value_segments_t.delete().where(
        (s.experiment_id == experiment_id) & (s.segment == segment)))  # fmt: skip
    conn.execute(value_segments_t.insert().values(
        experiment_id=experiment_id, segment=segment, seq=manifest.seq, created=created,
        ids=manifest.row()[3], unknown=manifest.row()[4]))  # fmt: skip
    conn.execute(value_segment_columns_t.delete().where(
        (c.experiment_id == experiment_id) & (c.segment == segment)))  # fmt: skip
    stored = [{"experiment_id": experiment_id, "path": path, "segment": segment,
               "seq": manifest.seq,  # a document's number as jsonb reads it
               "data": encode_column(wide_numbers(column) if path[0] == "$" else column)}
              for path, column in columns.items() if path not in long]  # fmt: skip
    if stored:
        conn.execute(value_segment_columns_t.insert(), stored)
    return 1


def refresh_segments(db: Any, experiment_id: int, kept: Marks, limit: int = 256) -> int:
    """Store anew up to ``limit`` segments of the experiment no exact segment holds (see
    :meth:`~trialbook.storage.sqlite.SqliteStore.refresh_segments`); return how many."""
    retired = _standing(db, experiment_id, kept, retired=True)[1]
    return write_segments(db, experiment_id, retired[:limit])


def _standing(db: Any, experiment_id: int, kept: Marks, *, retired: bool) -> Any:
    """:func:`~trialbook.storage.value_segments.standing` of the experiment's segments in one
    snapshot (``(0.0, [])`` off PostgreSQL; without ``retired``, for an experiment without
    segments too, at no read of its runs)."""
    from trialbook.storage.value_segments import Manifest, standing

    if not _postgres(db):
        return 0.0, []
    s = value_segments_t.c

    def reading(conn: Any) -> tuple[float, list[int]]:
        manifests = [Manifest(int(a), int(b), float(c), None, frozenset(), runs=int(n) // 8)
                     for a, b, c, n in conn.execute(
                         sa.select(s.segment, s.seq, s.created, sa.func.length(s.ids))
                         .where(s.experiment_id == experiment_id))]  # fmt: skip
        if not manifests and not retired:
            return 0.0, []
        token, marks = _marks(conn, db, experiment_id, kept)
        return standing(manifests, marks, token)

    return _snapshot(db, reading)


def _marks(conn: Any, db: Any, experiment_id: int, kept: Marks) -> Any:
    """The experiment's token and, per segment, its runs and largest ``seq`` (kept with the
    token, see :class:`~trialbook.storage.value_segments.Marks`)."""
    from trialbook.storage.value_segments import SEGMENT_BITS

    e = experiments_t.c
    row = conn.execute(
        sa.select(e.created, e.seq, e.deleted_seq, e.stamp).where(e.id == experiment_id)
    ).first()
    token = None if row is None else (float(row[0]), *map(int, row[1:]))
    marks = kept.get(experiment_id, token, lambda: {
        int(s): (int(n), None if top is None else int(top)) for s, n, top in conn.execute(
            sa.text(f"SELECT run_id >> {SEGMENT_BITS}, count(*), max(seq) FROM "
                    f"{db.qualified(runs_t)} WHERE experiment_id = :e GROUP BY 1"),
            {"e": experiment_id})})  # fmt: skip
    return token, marks


def _snapshot(db: Any, reading: Callable[[Any], Any]) -> Any:
    """``reading(conn)`` in one repeatable-read transaction (one snapshot)."""
    try:
        with db.engine.connect() as opened:
            conn = opened.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                return reading(conn)
    except sa.exc.SQLAlchemyError as exc:
        raise db.error(exc) from exc


def segments_cover(db: Any, experiment_id: int, kept: Marks) -> float:
    """The share of the experiment's runs its exact segments hold (0.0 off PostgreSQL)."""
    return float(_standing(db, experiment_id, kept, retired=False)[0])


def segments_read(db: Any, experiment_id: int, names: Sequence[Any], kept: Marks) -> Any:
    """The first step of :func:`~trialbook.storage.value_segments.read_columns` in one
    snapshot; ``None`` off PostgreSQL or for an experiment without segments."""
    from trialbook.storage.value_segments import Manifest, read_columns

    if not _postgres(db):
        return None
    s, c = value_segments_t.c, value_segment_columns_t.c

    def reading(conn: Any) -> Any:
        manifests = [Manifest.from_row(row) for row in conn.execute(
            sa.select(s.segment, s.seq, s.created, s.ids, s.unknown)
            .where(s.experiment_id == experiment_id))]  # fmt: skip
        if not manifests:
            return None
        token, marks = _marks(conn, db, experiment_id, kept)

        def rows(paths: list[str], segments: list[int]) -> list[Any]:
            return list(conn.execute(
                sa.select(c.path, c.segment, c.seq, c.data)
                .where(c.experiment_id == experiment_id, c.path.in_(paths))))  # fmt: skip

        return read_columns(names, token, manifests, marks, rows)

    return _snapshot(db, reading)
