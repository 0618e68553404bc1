"""Reading many runs of :class:`~trialbook.storage.redis.RedisStore` in few commands, and its
queries.

Redis has no query engine: a query reads, for every run of the experiment, only the fields of
its hash that the query needs (``status`` alone for a count by status, the JSON ``doc`` only
when the filter or the sort names a value; never the ``bundle`` of arrays and blobs), filters,
sorts and pages them with the Python evaluator (:mod:`trialbook.storage.query_light`), and
then reads the page's runs in full. Fields of many hashes are read by one server-side script
call (:data:`HMGET_MANY`) per :data:`KEYS_PER_CALL` runs rather than one command per run, and
the blobs of a page with one ``MGET`` per :data:`~trialbook.storage.base.BATCH`.

Examples
--------
>>> KEYS_PER_CALL
1000
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from trialbook.storage.base import batches
from trialbook.storage.bundle import load_doc
from trialbook.storage.query_light import light_record, needs, page, paths_present, select
from trialbook.storage.records import RunRecord

__all__ = ["HMGET_MANY", "KEYS_PER_CALL", "decode_column", "names_present", "query_runs"]

HMGET_MANY = """
local out = {}
for i = 1, #KEYS do out[i] = redis.call('HMGET', KEYS[i], unpack(ARGV)) end
return out
"""
"""``HMGET`` of the fields ``ARGV`` of each hash of ``KEYS``, in one command."""
KEYS_PER_CALL = 1000
"""Hashes read per call of :data:`HMGET_MANY` (a script holds the server while it runs)."""


def decode_column(column: str, raw: bytes | None) -> Any:
    """The value of a run column as :meth:`RedisStore.write_runs` stored it (text).

    Examples
    --------
    >>> decode_column("seed", b"7"), decode_column("created", b"1.5"), decode_column("key", None)
    (7, 1.5, None)
    """
    if raw is None:
        return None
    if column == "seed":
        return int(raw.decode()) if raw else None
    if column in ("created", "started", "finished"):
        return float(raw.decode()) if raw else None
    return raw.decode()


def read_fields(store: Any, e: int, ids: Sequence[int], fields: Sequence[str]) -> list[list[Any]]:
    """``fields`` of the hashes of runs ``ids`` of experiment ``e`` (``None`` for a missing
    one), one script call per :data:`KEYS_PER_CALL` runs."""
    out: list[list[Any]] = []
    for part in batches(list(ids), KEYS_PER_CALL):
        keys = [store._k("exp", e, "run", run_id) for run_id in part]
        out += store._call(store._hmget_many, keys, list(fields))
    return out


def run_ids(store: Any, e: int) -> list[int]:
    """The ids of the runs of experiment ``e``, in order (one ``ZRANGE``)."""
    return [int(i) for i in store._call(store._r.zrange, store._k("exp", e, "runs"), 0, -1)]


def query_runs(
    store: Any,
    read_runs: Callable[[list[int]], list[RunRecord]],
    experiment_id: int,
    *,
    where: str | None,
    order_by: str | None,
    descending: bool,
    limit: int | None,
    offset: int,
) -> tuple[int, list[RunRecord]]:
    """``(total matching, page)``: the fields the query needs of every run, the Python
    evaluator over them, then the page read in full with ``read_runs(ids)``."""
    columns, doc = needs(where, order_by)
    fields = ["kind", *(c for c in columns if c != "kind")] + (["doc"] if doc else [])
    ids = run_ids(store, experiment_id)
    runs = []
    for run_id, row in zip(ids, read_fields(store, experiment_id, ids, fields), strict=True):
        if row[0] is None:
            continue  # deleted after the ZRANGE
        values = {f: decode_column(f, v) for f, v in zip(fields, row, strict=True) if f != "doc"}
        text = row[-1].decode() if doc and row[-1] is not None else None
        runs.append(light_record({"run_id": run_id, **values}, load_doc(text) if doc else None))
    total, chosen = select(
        runs, where, order_by=order_by, descending=descending, limit=limit, offset=offset
    )
    return total, page(read_runs, chosen)


def names_present(store: Any, experiment_id: int, paths: Sequence[Sequence[str]]) -> list[bool]:
    """For each list of JSON paths, whether a run of the experiment has one of them in its
    document (see :func:`~trialbook.storage.query.check_names`): the documents alone are read."""
    ids = run_ids(store, experiment_id)
    rows = read_fields(store, experiment_id, ids, ["kind", "doc"])
    docs = (load_doc(None if doc is None else doc.decode()) for kind, doc in rows if kind)
    return paths_present(docs, [list(group) for group in paths])
