"""Runs read column-wise from PostgreSQL (issue 16): ids, statuses and documents of a batch of
runs concatenated by the server (``string_agg``), not a row per run through the driver, inside
one ``REPEATABLE READ`` transaction so that every batch sees the same snapshot. What
:meth:`trialbook.storage.sqlite.SqliteStore.read_run_columns` does with ``group_concat``.

Other SQL databases (MySQL caps ``GROUP_CONCAT`` at a session setting) read run by run: the
store returns ``None`` and its callers fall back to ``read_runs``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by

from trialbook.errors import CorruptStoreError
from trialbook.storage.bundle import blob_digests, unpack_checked
from trialbook.storage.records import RunColumns
from trialbook.storage.sql_schema import experiments_t, runs_t

BATCH = 262_144
"""Runs per statement: each returns a few tens of megabytes of text at most."""

_r = runs_t.c


def _joined(expr: Any, separator: str) -> Any:
    """``string_agg(expr, separator ORDER BY run_id)``."""
    return sa.func.string_agg(expr, aggregate_order_by(sa.literal(separator), _r.run_id))


_TEXT = sa.Text()
_BATCH_COLUMNS = [
    _joined(sa.cast(_r.run_id, _TEXT), ","),
    _joined(_r.status, ","),
    _joined(sa.func.coalesce(_r.doc, "{}"), "\n"),
    sa.func.count(_r.started) + sa.func.count(_r.finished),
    sa.func.count(_r.bundle),
    _joined(sa.cast(_r.version, _TEXT), ","),
]


def read_columns(
    conn: sa.Connection,
    experiment_id: int,
    extra: list[str],
    get_blobs: Callable[[list[str]], dict[str, bytes]],
) -> RunColumns:
    """The runs of ``experiment_id`` column-wise, on ``conn`` (in a snapshot transaction);
    ``extra``: more plain columns by name (checked by the caller); ``get_blobs`` reads the
    blobs that value bundles refer to."""
    out = RunColumns()
    in_experiment = _r.experiment_id == experiment_id
    first, last = conn.execute(
        sa.select(sa.func.min(_r.run_id), sa.func.max(_r.run_id)).where(in_experiment)
    ).one()
    if first is None:
        return out
    for low in range(first, last + 1, BATCH):
        in_batch = sa.and_(in_experiment, _r.run_id >= low, _r.run_id < low + BATCH)
        ids, statuses, docs, timed, bundled, versions = conn.execute(
            sa.select(*_BATCH_COLUMNS).where(in_batch)
        ).one()
        if ids is None:
            continue
        names = ["run_id", *(["started", "finished"] if timed else []), *extra]
        more = None
        if len(names) > 1:
            rows = conn.execute(sa.select(*(_r[n] for n in names)).where(in_batch)).all()
            more = dict(zip(names, zip(*rows, strict=True), strict=True)) if rows else None
        out.add_batch(ids, statuses, docs, more, versions)
        if bundled:
            bundles = conn.execute(
                sa.select(_r.run_id, _r.bundle).where(in_batch, _r.bundle.is_not(None))
            ).all()
            _unpack_bundles(conn, out, experiment_id, bundles, get_blobs)
    return out


def _unpack_bundles(
    conn: sa.Connection,
    out: RunColumns,
    experiment_id: int,
    bundles: Sequence[Any],
    get_blobs: Callable[[list[str]], dict[str, bytes]],
) -> None:
    raw = [(run_id, bytes(bundle)) for run_id, bundle in bundles]
    blobs = get_blobs([d for _, bundle in raw for d in blob_digests(bundle)])
    for run_id, bundle in raw:
        try:
            out.bundles[run_id] = unpack_checked(run_id, bundle, blobs)
        except CorruptStoreError as exc:
            name = conn.execute(
                sa.select(experiments_t.c.name).where(experiments_t.c.id == experiment_id)
            ).scalar()
            exc.experiment = experiment_id if name is None else str(name)
            raise
