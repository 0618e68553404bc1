"""The runs table of the UI (issue 15): chosen columns, nested parameters as dotted columns,
server-side sorting by any column, grouped rows, and export as CSV or Parquet.

A column is named by its key in the query language (:mod:`trialbook.storage.query`), so the
same key sorts it (``order_by``) and filters on it: ``run_id``, ``status``, ``duration``...,
``params.model.layers`` (a parameter holding a dict becomes one column per leaf),
``fields.acc``, ``tags.user``, ``metric.loss`` (the last value), ``metric.loss.min`` and
``metric.loss.max``.

Endpoints (registered in :mod:`trialbook.web.api`):

* ``GET /api/experiments/{name}/table``: one page of rows, with ``where``, ``order_by``,
  ``desc``, ``cols`` (keys separated by commas, in order; default: every column found),
  ``limit`` and ``offset``;
* ``GET /api/experiments/{name}/export?format=csv|parquet``: the whole filtered, sorted table
  (chosen columns); CSV is streamed in chunks of runs, never whole in memory;
* ``GET /api/experiments/{name}/groups``: one row per distinct value of the ``group`` keys
  with the count and the mean and standard deviation of each numeric column.

Filtered, sorted and grouped views of an experiment of many runs are answered from columns of
values kept in memory while the store is unchanged (:mod:`trialbook.storage.value_cache`; the
first page starts reading them), else by the store's query.

Examples
--------
>>> from trialbook.storage.records import RunRecord
>>> run = RunRecord(1, params={"model": {"layers": 3, "act": "relu"}, "lr": 0.1},
...                 metrics={"loss": [4, 0.25, 0.2, 0.9]})
>>> [key for key in run_cells(run) if "." in key]  # doctest: +NORMALIZE_WHITESPACE
['params.model.layers', 'params.model.act', 'params.lr', 'metric.loss', 'metric.loss.min',
 'metric.loss.max']
>>> run_cells(run)["params.model.layers"], run_cells(run)["metric.loss.min"]
(3, 0.2)
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from trialbook.codecs import Encoded
from trialbook.errors import ConfigError
from trialbook.storage.heartbeats import lost_runs
from trialbook.storage.query import (
    check_names,
    group_key,
    parse_name,
    parse_query,
    query_runs,
    sort_key,
)
from trialbook.storage.records import RunRecord
from trialbook.storage.value_cache import cached_groups, cached_page, prefetch
from trialbook.web import views

__all__ = [
    "BUILTIN",
    "TableQuery",
    "cell_getter",
    "column_label",
    "csv_chunks",
    "group_rows",
    "iter_runs",
    "parquet_bytes",
    "run_cells",
    "table_page",
]

BUILTIN = ("run_id", "kind", "status", "duration", "result", "error", "key", "seed", "created",
           "started", "finished")  # fmt: skip
"""The run's own columns, in the order the Columns menu lists them."""
DEFAULT_BUILTIN = ("run_id", "kind", "status", "duration", "result")
"""The run's own columns shown when no ``cols`` are chosen."""
MAX_GROUPS = 1000
EXPORT_CHUNK = 10_000
"""Runs read per query while exporting or grouping: memory stays bounded by a chunk."""
SORTED_CHUNK = 50_000
"""Runs read per query of an export sorted by another column than ``run_id``: each query sorts
every matching run again, so fewer, larger chunks."""
_SLOTS = (("params", "params"), ("fields", "fields"), ("tags", "tags"))
_METRIC_PARTS = (("", 1), (".min", 2), (".max", 3))
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


def _cell(value: Any) -> Any:
    """A table cell: plain scalars as themselves, lists as compact JSON text, NaN as ``None``.

    Examples
    --------
    >>> _cell([1, 2]), _cell(float("nan")), _cell("a")
    ('[1,2]', None, 'a')
    """
    if type(value) is float and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, list | tuple | dict):
        return json.dumps(views.clean_json(value), separators=(",", ":"), ensure_ascii=False)
    return value


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if type(value) is dict and value:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}", v, out)
    else:
        out[prefix] = _cell(value)


def run_cells(run: RunRecord) -> dict[str, Any]:
    """Every cell of ``run`` by column key (nested dicts of params, fields and tags flattened
    into dotted keys; metrics as last value, min and max).

    Examples
    --------
    >>> cells = run_cells(RunRecord(2, tags={"who": "ann"}, fields={"w": [1, 2], "m": {"a": 1}}))
    >>> cells["tags.who"], cells["fields.m.a"], "fields.w" in cells
    ('ann', 1, False)
    """
    row = views.run_row(run)
    out: dict[str, Any] = {name: _cell(row[name]) for name in BUILTIN}
    for slot, prefix in _SLOTS:
        values = row[slot]
        if slot == "fields":  # scalars, and plain dicts as dotted columns (arrays, frames and
            # lists are previewed on the run page, not in the table)
            values = {**values, **{k: v for k, v in run.fields.items() if type(v) is dict}}
        for name, value in values.items():
            _flatten(f"{prefix}.{name}", value, out)
    for name, summary in run.metrics.items():
        for suffix, index in _METRIC_PARTS:
            if len(summary) > index:
                out[f"metric.{name}{suffix}"] = _cell(summary[index])
    return out


_RUN_ATTRS = ("run_id", "kind", "key", "seed", "created", "started", "finished")


def cell_getter(key: str) -> Callable[[RunRecord], Any]:
    """A function giving the cell of column ``key`` of a run, as :func:`run_cells` does but
    without building the whole row (for exports of many runs).

    Examples
    --------
    >>> get = cell_getter("params.model.layers")
    >>> get(RunRecord(1, params={"model": {"layers": 3}})), cell_getter("status")(RunRecord(1))
    (3, 'pending')
    """
    if key in _RUN_ATTRS:
        return lambda run: getattr(run, key)
    if key == "status":
        return lambda run: str(run.status)
    if not _sortable(key) or key in ("result", "error"):
        return lambda run: run_cells(run).get(key)
    name = parse_name(key)
    slot = name.where if name.where in ("params", "fields", "tags") else None

    def get(run: RunRecord) -> Any:
        if slot is not None and type(getattr(run, slot).get(name.path[0])) is Encoded:
            return run_cells(run).get(key)  # a tagged value: shown decoded, as in the table
        return name.value(run)  # a dict or list as its compact JSON text

    return get


def column_label(key: str) -> tuple[str, str]:
    """``(group, label)`` of a column key, as the table's header shows it.

    Examples
    --------
    >>> column_label("params.model.layers"), column_label("status")
    (('params', 'model.layers'), ('', 'status'))
    """
    head, _, rest = key.partition(".")
    if rest and head in ("params", "fields", "tags", "metric"):
        return ("metrics" if head == "metric" else head), rest
    return "", key


def _order(key: str) -> tuple[int, str]:
    group, label = column_label(key)
    rank = {"": 0, "params": 1, "fields": 2, "tags": 3, "metrics": 4}[group]
    if not group:
        return rank, f"{BUILTIN.index(key):03d}" if key in BUILTIN else key
    return rank, label


def _sortable(key: str) -> bool:
    if not _KEY.match(key):
        return False
    try:
        parse_name(key)
    except ConfigError:
        return False
    return True


class TableQuery:
    """What a table request asks for: filter, sort, chosen columns, page.

    Examples
    --------
    >>> q = TableQuery.parse({"where": "lr > 0", "order_by": "params.lr", "desc": "1",
    ...                       "cols": "run_id,params.lr"})
    >>> q.descending, q.cols
    (True, ['run_id', 'params.lr'])
    """

    def __init__(
        self,
        where: str | None = None,
        order_by: str | None = None,
        descending: bool = False,
        cols: list[str] | None = None,
        group: list[str] | None = None,
    ) -> None:
        self.where, self.order_by, self.descending = where, order_by, descending
        self.cols, self.group = cols, group or []

    @classmethod
    def parse(cls, q: Mapping[str, str]) -> TableQuery:
        """Read the query parameters of a request (``desc`` or ``descending`` for the
        direction; ``cols`` and ``group`` as keys separated by commas)."""
        flag = q.get("desc", q.get("descending", "false")).lower() in ("1", "true", "yes")
        cols = [c.strip() for c in q.get("cols", "").split(",") if c.strip()] or None
        group = [c.strip() for c in q.get("group", "").split(",") if c.strip()]
        order_by = q.get("order_by") or None
        if order_by is not None and not _sortable(order_by):
            msg = (f"cannot sort by {order_by!r}: a sort key is a column's dotted name made of "
                   "identifiers, e.g. params.model.layers or metric.loss.min")  # fmt: skip
            raise ConfigError(msg)
        for key in group:
            if not _sortable(key):
                msg = (f"cannot group by {key!r}: a group key is a column's dotted name made of "
                       "identifiers, e.g. params.model or params.data.seed")  # fmt: skip
                raise ConfigError(msg)
        return cls(q.get("where") or None, order_by, flag, cols, group)


def _columns(keys: Sequence[str], found: Mapping[str, None]) -> list[dict[str, Any]]:
    out = []
    for key in keys:
        group, label = column_label(key)
        out.append({"key": key, "group": group, "label": label, "sortable": _sortable(key),
                    "known": key in found or key in BUILTIN})  # fmt: skip
    return out


def table_page(
    store: Any,
    experiment_id: int,
    query: TableQuery,
    *,
    limit: int,
    offset: int,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One page of the table: ``total``, ``columns`` shown, ``available`` columns (found in
    this page and the first runs of the experiment), and ``rows`` (``run_id``, ``status`` and
    ``cells`` in the order of ``columns``).

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> store = open_store("sqlite:///:memory:")
    >>> exp = store.create_experiment("t")
    >>> store.write_runs(exp.id, [RunRecord(i, params={"m": {"d": i}}) for i in (1, 2)])
    >>> page = table_page(store, exp.id, TableQuery(order_by="params.m.d", descending=True,
    ...                   cols=["run_id", "params.m.d"]), limit=10, offset=0)
    >>> page["total"], [r["cells"] for r in page["rows"]]
    (2, [[2, 2], [1, 1]])
    >>> store.close()
    """
    answer = cached_page(
        store, experiment_id, where=query.where, order_by=query.order_by,
        descending=query.descending, limit=limit, offset=offset, meta=meta,
        extra=query.cols or (),
    )  # fmt: skip
    total, runs = answer if answer is not None else query_runs(
        store, experiment_id, where=query.where, order_by=query.order_by,
        descending=query.descending, limit=limit, offset=offset, meta=meta,
    )  # fmt: skip
    cells = [run_cells(run) for run in runs]
    found: dict[str, None] = {}
    for row in cells:
        found.update(dict.fromkeys(row))
    if offset or len(runs) < 50:  # a sample of the experiment's columns beyond this page
        _, first = query_runs(store, experiment_id, limit=50, meta=meta)
        for run in first:
            found.update(dict.fromkeys(run_cells(run)))
    available = sorted(found, key=_order)
    keys = query.cols or [
        *DEFAULT_BUILTIN,
        *(k for k in available if k not in BUILTIN and not _hidden_by_default(k)),
    ]
    return {
        "total": total, "limit": limit, "offset": offset,
        "columns": _columns(keys, found),
        "available": _columns([k for k in available if k not in keys], found),
        "rows": [{"run_id": run.run_id, "status": str(run.status),
                  "cells": [row.get(k) for k in keys]} for run, row in zip(runs, cells,
                                                                          strict=True)],
    }  # fmt: skip


def _hidden_by_default(key: str) -> bool:
    return key.startswith("metric.") and key.endswith((".min", ".max"))


# -- whole tables: export and groups ----------------------------------------------------------


def iter_runs(
    store: Any,
    experiment_id: int,
    query: TableQuery,
    *,
    chunk: int | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Iterator[list[RunRecord]]:
    """The runs matching ``query`` in its order, a chunk of at most ``chunk`` runs at a time
    (never all in memory). In ``run_id`` order the chunks are windows of ``chunk`` ids, from
    the smallest id to the largest one stored when the export starts (default
    :data:`EXPORT_CHUNK`): each query reads the runs of its window only, through the index of
    ids, so an export is linear in the runs (a chunk that started after the last id read and
    counted every later run made a million-run export quadratic: 48 s). In another order,
    pages follow each other by offset, each sorting the matching runs again (default
    :data:`SORTED_CHUNK` runs).

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> store = open_store("sqlite:///:memory:")
    >>> exp = store.create_experiment("t")
    >>> store.write_runs(exp.id, [RunRecord(i) for i in range(1, 6)])
    >>> [[r.run_id for r in c] for c in iter_runs(store, exp.id, TableQuery(), chunk=2)]
    [[1, 2], [3, 4], [5]]
    >>> store.close()
    """
    base = f"({query.where})" if query.where and query.where.strip() else None
    if query.order_by in (None, "run_id"):
        yield from _id_windows(store, experiment_id, base, descending=query.descending,
                               span=chunk or EXPORT_CHUNK, meta=meta)  # fmt: skip
        return
    chunk = chunk or SORTED_CHUNK
    offset = 0
    while True:
        _, page = query_runs(
            store, experiment_id, where=base, order_by=query.order_by,
            descending=query.descending, limit=chunk, offset=offset, meta=meta,
        )  # fmt: skip
        if page:
            yield page
        if len(page) < chunk:
            return
        offset += len(page)


def _id_windows(
    store: Any,
    experiment_id: int,
    base: str | None,
    *,
    descending: bool,
    span: int,
    meta: Mapping[str, Any] | None,
) -> Iterator[list[RunRecord]]:
    """The runs matching ``base`` by id, a window of ``span`` ids per query (empty windows
    left out), between the smallest and the largest id stored now."""
    ends = [query_runs(store, experiment_id, descending=last, limit=1, meta=meta)[1]
            for last in (False, True)]  # fmt: skip
    if not ends[0] or not ends[1]:
        return
    low, high = ends[0][0].run_id, ends[1][0].run_id
    starts = range(low, high + 1, span)
    for start in reversed(starts) if descending else starts:
        window = f"run_id >= {start} and run_id < {start + span}"
        _, page = query_runs(store, experiment_id, where=f"{base} and {window}" if base else window,
                             descending=descending, limit=None, meta=meta)  # fmt: skip
        if page:
            yield page


def export_keys(store: Any, experiment_id: int, query: TableQuery, meta: Any) -> list[str]:
    """The columns of an export: the chosen ones, else the table's default columns."""
    if query.cols:
        return list(query.cols)
    page = table_page(store, experiment_id, query, limit=50, offset=0, meta=meta)
    return [c["key"] for c in page["columns"]]


def csv_chunks(
    store: Any, experiment_id: int, query: TableQuery, keys: list[str], meta: Any = None
) -> Iterator[str]:
    """The table as CSV text, a chunk of runs at a time (the header first).

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> store = open_store("sqlite:///:memory:")
    >>> exp = store.create_experiment("t")
    >>> store.write_runs(exp.id, [RunRecord(1, params={"m": {"d": 3}})])
    >>> print("".join(csv_chunks(store, exp.id, TableQuery(), ["run_id", "params.m.d"])))
    run_id,params.m.d
    1,3
    <BLANKLINE>
    >>> store.close()
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(keys)
    yield buffer.getvalue()
    getters = [cell_getter(k) for k in keys]
    for page in iter_runs(store, experiment_id, query, meta=meta):
        buffer.seek(0)
        buffer.truncate()
        for run in page:
            writer.writerow([_csv(get(run)) for get in getters])
        yield buffer.getvalue()


def parquet_bytes(
    store: Any, experiment_id: int, query: TableQuery, keys: list[str], meta: Any = None
) -> bytes:
    """The table as a Parquet file: each column typed from its values (bool, int64, float64,
    else text; a column mixing numbers and texts is text).

    Examples
    --------
    >>> import io, pyarrow.parquet as pq
    >>> from trialbook.storage import open_store
    >>> store = open_store("sqlite:///:memory:")
    >>> exp = store.create_experiment("t")
    >>> store.write_runs(exp.id, [RunRecord(1, params={"lr": 0.1, "o": "adam"})])
    >>> data = parquet_bytes(store, exp.id, TableQuery(), ["run_id", "params.lr", "params.o"])
    >>> pq.read_table(io.BytesIO(data)).to_pylist()
    [{'run_id': 1, 'params.lr': 0.1, 'params.o': 'adam'}]
    >>> store.close()
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list[Any]] = {k: [] for k in keys}
    getters = [(columns[k], cell_getter(k)) for k in keys]
    for page in iter_runs(store, experiment_id, query, meta=meta):
        for run in page:
            for column, get in getters:
                column.append(_finite(get(run)))
    arrays = [pa.array(_typed(values), type=_arrow_type(values)) for values in columns.values()]
    table = pa.Table.from_arrays(arrays, names=keys)
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def _csv(value: Any) -> Any:
    if value is None or (type(value) is float and math.isnan(value)):
        return ""
    return value


def _finite(value: Any) -> Any:
    return None if type(value) is float and math.isnan(value) else value


def _arrow_type(values: list[Any]) -> Any:
    import pyarrow as pa

    kinds = {type(v) for v in values if v is not None}
    if kinds == {bool}:
        return pa.bool_()
    if kinds == {int}:
        return pa.int64()
    if kinds and kinds <= {int, float}:
        return pa.float64()
    return pa.string()


def _typed(values: list[Any]) -> list[Any]:
    kinds = {type(v) for v in values if v is not None}
    if kinds and kinds <= {int, float, bool} and not (bool in kinds and len(kinds) > 1):
        if kinds == {int} and any(not -(2**63) <= v < 2**63 for v in values if v is not None):
            return [None if v is None else str(v) for v in values]
        return values
    return [None if v is None else v if type(v) is str else json.dumps(v) for v in values]


def _number(value: Any) -> float | None:
    """A finite number (a boolean is 1 or 0, as in the query language), else ``None``."""
    if type(value) in (int, float, bool) and math.isfinite(value):
        return float(value)
    return None


def _literal(value: Any) -> str:
    return "None" if value is None else json.dumps(value) if type(value) is str else repr(value)


def group_rows(
    store: Any,
    experiment_id: int,
    query: TableQuery,
    keys: list[str],
    meta: Any = None,
) -> dict[str, Any]:
    """The matching runs grouped by the values of ``query.group``: one row per group with its
    ``count``, its ``where`` (the filter of its runs) and, for each numeric column of ``keys``,
    ``[mean, std, n]`` (sample standard deviation; ``None`` below two values).

    The columns kept in memory (:func:`~trialbook.storage.value_cache.cached_groups`) answer
    when they can; else a store with a native ``group_runs`` (SQLite, PostgreSQL) groups in one
    SQL statement;
    any other (or that one, when it answers ``None``) reads the matching runs a chunk at a time
    (:func:`iter_runs`). Both read values as the
    query language does: a dict or list is its JSON text, booleans are the numbers 1 and
    0, texts are not numbers.

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> store = open_store("sqlite:///:memory:")
    >>> exp = store.create_experiment("t")
    >>> store.write_runs(exp.id, [RunRecord(i, params={"o": "ab"[i % 2], "seed": i},
    ...                  fields={"acc": float(i)}) for i in range(1, 5)])
    >>> out = group_rows(store, exp.id, TableQuery(group=["params.o"]), ["fields.acc"])
    >>> [(g["values"], g["count"], g["stats"]["fields.acc"][:2]) for g in out["groups"]]
    [(['a'], 2, [3.0, 1.4142135623730951]), (['b'], 2, [2.0, 1.4142135623730951])]
    >>> out["groups"][0]["where"]
    'params.o == "a"'
    >>> store.close()
    """
    if not query.group:
        msg = "group needs one or more column keys separated by commas, e.g. group=params.lr"
        raise ConfigError(msg)
    names = [parse_name(k) for k in query.group]
    measured = [k for k in keys if k not in query.group and k != "run_id" and _sortable(k)]
    measures = [parse_name(k) for k in measured]
    native = getattr(store, "group_runs", None)
    answer = None
    if (native is not None and meta is not None and not lost_runs(meta, now=time.time())
            and all(n.where != "bare" for n in [*names, *measures])):  # fmt: skip
        if query.where and query.where.strip():
            check_names(store, experiment_id, parse_query(query.where))
        answer = cached_groups(store, experiment_id, where=query.where, keys=names,
                               measures=measures, meta=meta)  # fmt: skip
        if answer is None:
            answer = native(experiment_id, where=query.where, keys=names, measures=measures)
    if answer is not None:
        sums = {
            values: [count, {k: _from_sums(*t) for k, t in zip(measured, totals, strict=True)}]
            for values, count, totals in answer
        }
    else:
        chosen = dict(zip(measured, measures, strict=True))
        sums = _group_chunks(store, experiment_id, query, names, chosen, meta=meta)
    numeric = [k for k in measured if any(acc[1][k][0] for acc in sums.values())]
    total = sum(acc[0] for acc in sums.values())
    groups = []
    for ident in sorted(sums, key=lambda t: [sort_key(v) for v in t]):
        count, stats = sums[ident]
        where = " and ".join(
            f"{k} == {_literal(v)}" for k, v in zip(query.group, ident, strict=True)
        )
        if query.where and query.where.strip():
            where = f"({query.where.strip()}) and {where}"
        groups.append({"values": list(ident), "count": count, "where": where,
                       "stats": {k: _moments(*stats[k]) for k in numeric}})  # fmt: skip
    return {"group": query.group, "columns": numeric, "total": total,
            "truncated": len(groups) > MAX_GROUPS, "groups": groups[:MAX_GROUPS]}  # fmt: skip


def _from_sums(n: int, total: float, squares: float) -> list[Any]:
    """Welford's ``[n, mean, m2]`` from a count, a sum and a sum of squares."""
    if not n:
        return [0, 0.0, 0.0]
    mean = total / n
    return [n, mean, squares - total * mean]


def _group_chunks(
    store: Any, experiment_id: int, query: TableQuery, names: list[Any],
    measures: dict[str, Any], *, meta: Any,
) -> dict[tuple[Any, ...], list[Any]]:  # fmt: skip
    """Groups and Welford's ``[n, mean, m2]`` per measure, over the runs a chunk at a time."""
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for page in iter_runs(store, experiment_id, TableQuery(query.where), meta=meta):
        for run in page:
            ident = tuple(group_key(_hashable(n.value(run))) for n in names)
            acc = sums.get(ident)
            if acc is None:
                acc = sums[ident] = [0, {k: [0, 0.0, 0.0] for k in measures}]
            acc[0] += 1
            for k, name in measures.items():
                x = _number(name.value(run))
                if x is not None:
                    s = acc[1][k]
                    s[0] += 1
                    delta = x - s[1]
                    s[1] += delta / s[0]
                    s[2] += delta * (x - s[1])
    return sums


def _hashable(value: Any) -> Any:
    return value if type(value) in (str, int, float, bool, type(None)) else json.dumps(value)


def _moments(n: int, mean: float, m2: float) -> list[Any]:
    """``[mean, sample std, n]`` from Welford's count, mean and sum of squared deviations.

    Examples
    --------
    >>> _moments(3, 2.0, 2.0), _moments(1, 2.0, 0.0), _moments(0, 0.0, 0.0)
    ([2.0, 1.0, 3], [2.0, None, 1], [None, None, 0])
    """
    if n == 0:
        return [None, None, 0]
    if n < 2:
        return [mean, None, n]
    return [mean, math.sqrt(max(0.0, m2) / (n - 1)), n]


# -- endpoints: called by trialbook.web.api with the request and the experiment ----------------


def table_answer(request: Any, store: Any, info: Any, limit: int, offset: int) -> dict[str, Any]:
    """The answer of ``GET /api/experiments/{name}/table``: one page of the table."""
    query = TableQuery.parse(request.query_params)
    page = table_page(store, info.id, query, limit=limit, offset=offset, meta=info.meta)
    if not offset and not query.where and not query.order_by:  # the table as first shown: its
        # columns are read in the background for the filters, sorts and groups that may follow
        prefetch(store, info.id, [c["key"] for c in page["columns"]], info.meta)
    return {"experiment": info.name, **page}


EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


def export_answer(request: Any, store: Any, info: Any) -> Any:
    """The answer of ``GET /api/experiments/{name}/export?format=csv|parquet``: the whole
    table, CSV streamed a chunk of runs at a time.

    Raises
    ------
    ConfigError
        On a format other than ``csv`` or ``parquet``, or a bad filter or sort key (checked
        before the answer starts).
    """
    from starlette.responses import Response, StreamingResponse

    from trialbook.web import files

    kind = request.query_params.get("format", "csv")
    if kind not in EXPORT_TYPES:
        msg = f"query parameter 'format' must be one of {sorted(EXPORT_TYPES)} (got {kind!r})"
        raise ConfigError(msg)
    query = TableQuery.parse(request.query_params)
    keys = export_keys(store, info.id, query, info.meta)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", info.name) or "runs"
    headers = {"Content-Disposition": files.disposition(f"{safe}-runs.{kind}")}
    if kind == "parquet":
        data = parquet_bytes(store, info.id, query, keys, info.meta)
        return Response(data, media_type=EXPORT_TYPES[kind], headers=headers)
    query_runs(store, info.id, where=query.where, order_by=query.order_by, limit=0,
               meta=info.meta)  # a bad filter or sort is a 400 now, not a cut-off file  # fmt: skip
    chunks = csv_chunks(store, info.id, query, keys, info.meta)
    return StreamingResponse(chunks, media_type=EXPORT_TYPES[kind], headers=headers)


def groups_answer(request: Any, store: Any, info: Any) -> dict[str, Any]:
    """The answer of ``GET /api/experiments/{name}/groups``: the grouped table."""
    query = TableQuery.parse(request.query_params)
    keys = export_keys(store, info.id, query, info.meta)
    return {"experiment": info.name, **group_rows(store, info.id, query, keys, info.meta)}
