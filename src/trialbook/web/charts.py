"""Chart data of the runs page (issue 15): parallel coordinates, overlays, grouped curves.

Three endpoints, each answering columns rather than one object per run, so that the page can
draw thousands of runs from one small answer:

* ``parallel``: the values of chosen names (axes) for every run matching a filter, each axis
  described as numbers (range, whether a log scale suits it) or categories (strings, booleans);
* ``overlay``: one metric of up to :data:`MAX_OVERLAY` runs, with steps, values and wall times,
  and each run labelled by the parameters that differ among them;
* ``groups``: one metric of the runs matching a filter, grouped by one or more names: per group
  and step the mean, min, max and standard deviation over the group's runs.

Examples
--------
>>> describe_axis("params.lr", [1e-5, 1e-4, 1e-3])["log"]
True
>>> describe_axis("params.opt", ["sgd", "adam", None])["categories"]
['adam', 'sgd']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from trialbook.storage.query import parse_name, query_runs, sort_key
from trialbook.storage.records import RunRecord
from trialbook.web.api import HTTPError, UIState, _experiment, _int, _run_ids
from trialbook.web.series import downsample

__all__ = [
    "DOCS",
    "MAX_GROUP_RUNS",
    "MAX_OVERLAY",
    "axis_names",
    "column_values",
    "describe_axis",
    "distinguishing",
    "group_stats",
    "is_log_scale",
]

MAX_PARALLEL = 50_000
"""At most this many runs in one parallel-coordinates answer (default 10,000)."""
MAX_OVERLAY = 50
"""At most this many runs overlaid in one chart."""
MAX_GROUP_RUNS = 5_000
"""Grouped curves read the metric of at most this many runs (the answer says when cut)."""
DEFAULT_AXES = 10
LOG_DECADES = 2.0
"""A positive numeric axis whose values span at least this many decades suits a log scale."""


def is_log_scale(values: Iterable[Any]) -> bool:
    """Whether numbers are all positive and span at least :data:`LOG_DECADES` decades.

    Examples
    --------
    >>> is_log_scale([1e-5, 3e-4, 1e-3]), is_log_scale([0.1, 0.5, 1.0]), is_log_scale([0, 1, 1e4])
    (True, False, False)
    """
    numbers = [v for v in values if type(v) in (int, float) and math.isfinite(v)]
    if not numbers:
        return False
    low, high = min(numbers), max(numbers)
    return low > 0 and math.log10(high / low) >= LOG_DECADES


def describe_axis(name: str, values: Sequence[Any]) -> dict[str, Any]:
    """One axis of the parallel coordinates: ``kind`` ``"number"`` (with ``min``, ``max``,
    ``log`` the suggested scale, and ``values``) when every present value is a number, else
    ``"category"`` (``categories`` sorted as the query language sorts, and ``values`` the
    index of each run's category); ``None`` stands for a missing value.

    Examples
    --------
    >>> axis = describe_axis("flag", [True, False, None])
    >>> axis["kind"], axis["categories"], axis["values"]
    ('category', [False, True], [1, 0, None])
    >>> describe_axis("x", [3, 1.5, None])
    {'name': 'x', 'kind': 'number', 'values': [3, 1.5, None], 'min': 1.5, 'max': 3, 'log': False}
    """
    kinds = set(map(type, values)) - {type(None)}
    if kinds <= {int, float}:
        numbers = [v for v in values if v is not None]
        finite = [v for v in numbers if math.isfinite(v)] if float in kinds else numbers
        if len(finite) < len(numbers):  # infinities: off the axis, as missing values
            values = [v if v is None or math.isfinite(v) else None for v in values]
        return {"name": name, "kind": "number", "values": list(values),
                "min": min(finite) if finite else None, "max": max(finite) if finite else None,
                "log": is_log_scale(finite)}  # fmt: skip
    categories = sorted({v for v in values if v is not None}, key=sort_key)
    index = {c: i for i, c in enumerate(categories)}  # 1, 1.0 and True are one key, as in sort_key
    return {"name": name, "kind": "category", "categories": categories,
            "values": [None if v is None else index[v] for v in values]}  # fmt: skip


def axis_names(runs: Iterable[RunRecord]) -> list[str]:
    """The names a chart can use for ``runs``: parameters (nested dicts as dotted names), then
    metrics (their last value), fields with plain values, and ``duration``; only names the
    query language can write (identifiers joined by dots).

    Examples
    --------
    >>> runs = [RunRecord(1, params={"lr": 0.1, "model": {"depth": 3}}, metrics={"loss": [9, 1]}),
    ...         RunRecord(2, params={"lr": 0.2}, fields={"acc": 0.5, "bad name": 1})]
    >>> axis_names(runs)
    ['params.lr', 'params.model.depth', 'metric.loss', 'fields.acc', 'duration']
    """
    params: dict[str, None] = {}
    metrics: dict[str, None] = {}
    fields: dict[str, None] = {}
    seen: set[Any] = set()  # runs of the same keys and value types give the same names
    for run in runs:
        p, f = run.params, run.fields
        kinds = (tuple(p), tuple(map(type, p.values())), tuple(f), tuple(map(type, f.values())),
                 tuple(run.metrics))  # fmt: skip
        if kinds in seen:
            continue
        if dict not in kinds[1] and dict not in kinds[3]:  # nested dicts may differ inside
            seen.add(kinds)
        _leaves(p, "params", params)
        metrics.update((f"metric.{m}", None) for m in run.metrics if m.isidentifier())
        _leaves(f, "fields", fields)
    return [*params, *metrics, *fields, "duration"]


def _leaves(values: Mapping[str, Any], prefix: str, out: dict[str, None]) -> None:
    for key, value in values.items():
        if not key.isidentifier():
            continue
        if type(value) is dict:
            _leaves(value, f"{prefix}.{key}", out)
        elif value is None or type(value) in (bool, int, float, str):
            out[f"{prefix}.{key}"] = None


def _names(request: Any, key: str) -> list[str]:
    raw = request.query_params.get(key, "")
    return [part.strip() for part in raw.split(",") if part.strip()]


def _check_known(names: Sequence[str], runs: Sequence[RunRecord], what: str) -> None:
    """Refuse a name no run has (a typo would draw an empty axis or one group)."""
    if not runs:
        return
    for text in names:
        name = parse_name(text)
        if not any(name.present(run) for run in runs):
            known = axis_names(runs)
            msg = (f"{what} {text!r} is not a name of any run matching the filter; expected "
                   f"one of {known[:30]}{' ...' if len(known) > 30 else ''}")  # fmt: skip
            raise HTTPError(400, msg)


# -- parallel coordinates ---------------------------------------------------------------------


def parallel(request: Any, ui: UIState) -> Any:
    """Columns for parallel coordinates: ``run_ids``, one described axis per name
    (:func:`describe_axis`), the ``color`` column when asked, and the ``available`` names."""
    info = _experiment(ui, request)
    q = request.query_params
    limit = _int(request, "limit", 10_000, 1, MAX_PARALLEL)
    total, page = query_runs(
        ui.store, info.id, where=q.get("where") or None, limit=limit, meta=info.meta
    )
    available = axis_names(page)
    names = _names(request, "names")
    if not names:
        names = [n for n in available if n.startswith(("params.", "metric."))][:DEFAULT_AXES]
    color = q.get("color", "").strip()
    _check_known([*names, *([color] if color else [])], page, "name")
    ids = [run.run_id for run in page]

    def column(text: str) -> dict[str, Any]:
        return describe_axis(text, column_values(text, page))

    return _answer({
        "total": total, "count": len(page), "run_ids": ids,
        "axes": [column(n) for n in names], "color": column(color) if color else None,
        "available": available,
    })  # fmt: skip


def column_values(text: str, runs: Sequence[RunRecord]) -> list[Any]:
    """The values of the name ``text`` in ``runs``, as
    :meth:`trialbook.storage.query.Name.value` gives them; a parameter, field, tag or metric
    whose values are all plain (texts, booleans, floats but NaN, ints of 64 bits, missing) is
    read in one pass over the runs (this runs for each of thousands of runs).

    Examples
    --------
    >>> runs = [RunRecord(1, params={"lr": 0.1, "m": {"d": 2}}, metrics={"loss": [3, 0.5]}),
    ...         RunRecord(2, params={"lr": float("nan")})]
    >>> column_values("params.lr", runs), column_values("params.m.d", runs)
    ([0.1, None], [2, None])
    >>> column_values("metric.loss", runs), column_values("run_id", runs)
    ([0.5, None], [1, 2])
    """
    name = parse_name(text)
    if len(name.path) != 1 or name.where not in ("params", "fields", "tags", "metric"):
        return [name.value(run) for run in runs]
    key = name.path[0]
    if name.where == "metric":
        summaries = [run.metrics.get(key) for run in runs]
        values = [summary[1] if summary else None for summary in summaries]
    else:
        slot = name.where
        values = [getattr(run, slot).get(key) for run in runs]
    kinds = set(map(type, values))
    if kinds <= _PLAIN:
        floats = [v for v in values if type(v) is float] if float in kinds else []
        ints = [v for v in values if type(v) is int] if int in kinds else []
        if not any(map(math.isnan, floats)) and (
            not ints or (min(ints) >= -(2**63) and max(ints) < 2**63)
        ):
            return values
    return [name.value(run) for run in runs]  # NaN, big ints, containers: as the language reads


_PLAIN = frozenset({type(None), bool, int, float, str})


def _answer(content: dict[str, Any]) -> Any:
    """A JSON response of ``content``, written without a walk over it to clean it: numeric
    axes hold finite floats only; an infinity elsewhere (a category) makes the slow, cleaning
    way (``null``, as every answer of the API writes it).

    Examples
    --------
    >>> _answer({"categories": [1.5, float("inf")]}).body
    b'{"categories":[1.5,null]}'
    """
    import json

    from starlette.responses import Response

    from trialbook.web.views import clean_json

    options: dict[str, Any] = {"ensure_ascii": False, "separators": (",", ":")}
    try:
        body = json.dumps(content, allow_nan=False, **options)
    except ValueError:
        body = json.dumps(clean_json(content), **options)
    return Response(body, media_type="application/json")


# -- overlay ----------------------------------------------------------------------------------


def distinguishing(runs: Sequence[RunRecord]) -> list[str]:
    """The parameters (dotted for nested dicts) whose values differ among ``runs`` (a run
    without one differs from a run with one).

    Examples
    --------
    >>> runs = [RunRecord(1, params={"lr": 0.1, "opt": "adam", "seed": 1}),
    ...         RunRecord(2, params={"lr": 0.1, "opt": "sgd", "seed": 2})]
    >>> distinguishing(runs)
    ['params.opt', 'params.seed']
    """
    names = [n for n in axis_names(runs) if n.startswith("params.")]
    out = []
    for text in names:
        name = parse_name(text)
        seen = {sort_key(name.value(run)) for run in runs}
        if len(seen) > 1:
            out.append(text)
    return out


def _label(run: RunRecord, names: Sequence[str]) -> str:
    from trialbook.web.views import clean_json

    parts = []
    for text in names:
        value = clean_json(parse_name(text).value(run))
        parts.append(f"{text.removeprefix('params.')}={'—' if value is None else value}")
    return f"run {run.run_id}" + (" · " + ", ".join(parts) if parts else "")


def overlay(request: Any, ui: UIState) -> Any:
    """One metric of up to :data:`MAX_OVERLAY` runs, down-sampled, with wall times, each run
    labelled by the parameters that differ among them; ``missing``: runs without the metric."""
    info = _experiment(ui, request)
    ids = _run_ids(request, MAX_OVERLAY)
    metric = _metric(request)
    points = _int(request, "points", 1000, 4, 20_000)
    records = {r.run_id: r for r in ui.store.read_runs(info.id, ids)}
    unknown = [i for i in ids if i not in records]
    if unknown:
        raise HTTPError(404, f"experiment {info.name!r} has no runs {unknown}")
    runs = [records[i] for i in ids]
    differ = distinguishing(runs)
    series = ui.store.read_metrics(info.id, metric, ids)
    out = []
    for run in runs:
        s = series.get(run.run_id)
        if s is None or not len(s):
            continue
        kept, values = downsample(range(len(s)), s.values, points)
        out.append({
            "run_id": run.run_id, "label": _label(run, differ),
            "params": {n: parse_name(n).value(run) for n in differ}, "total": len(s),
            "steps": s.steps[kept].tolist(), "values": values, "times": s.times[kept].tolist(),
        })  # fmt: skip
    missing = [r.run_id for r in runs if r.run_id not in {o["run_id"] for o in out}]
    return {"metric": metric, "distinguishing": differ, "runs": out, "missing": missing}


def _metric(request: Any) -> str:
    metric = request.query_params.get("metric", "").strip()
    if not metric:
        raise HTTPError(400, "query parameter 'metric' must name a metric, e.g. metric=loss "
                             "(GET /api/experiments/<name>/metrics lists them)")  # fmt: skip
    return metric


# -- grouped curves ---------------------------------------------------------------------------


def group_stats(steps: Any, values: Any) -> dict[str, list[Any]]:
    """Per distinct step of the points of a group's runs (``steps``, ``values``: sequences or
    arrays of all their points, concatenated):
    ``count``, ``mean``, ``min``, ``max`` and ``std`` (population standard deviation, 0 for one
    run) of the finite values.

    Examples
    --------
    >>> stats = group_stats([0, 1, 0, 1], [1.0, 2.0, 3.0, 6.0])
    >>> stats["steps"], stats["mean"], stats["min"], stats["max"], stats["std"]
    ([0, 1], [2.0, 4.0], [1.0, 2.0], [3.0, 6.0], [1.0, 2.0])
    """
    import numpy as np

    s, v = np.asarray(steps), np.asarray(values, dtype="f8")
    finite = np.isfinite(v)
    s, v = s[finite], v[finite]
    xs, where = np.unique(s, return_inverse=True)
    count = np.bincount(where, minlength=len(xs))
    mean = np.bincount(where, weights=v, minlength=len(xs)) / count
    spread = np.bincount(where, weights=(v - mean[where]) ** 2, minlength=len(xs)) / count
    low = np.full(len(xs), np.inf)
    high = np.full(len(xs), -np.inf)
    np.minimum.at(low, where, v)
    np.maximum.at(high, where, v)
    return {"steps": xs.tolist(), "count": count.tolist(), "mean": mean.tolist(),
            "min": low.tolist(), "max": high.tolist(), "std": np.sqrt(spread).tolist()}  # fmt: skip


def _thin(stats: dict[str, list[Any]], points: int) -> dict[str, list[Any]]:
    if len(stats["steps"]) <= points:
        return stats
    kept, _ = downsample(range(len(stats["steps"])), stats["mean"], points)
    return {key: [column[i] for i in kept] for key, column in stats.items()}


def curves(request: Any, ui: UIState) -> Any:
    """One metric of the runs matching ``where`` grouped by the names of ``by``: per group its
    key, label, run count and :func:`group_stats` (down-sampled to ``points`` steps)."""
    import numpy as np

    info = _experiment(ui, request)
    metric = _metric(request)
    by = _names(request, "by")
    if not by:
        raise HTTPError(400, "query parameter 'by' must list the names to group by, separated "
                             "by commas, e.g. by=params.opt,params.lr")  # fmt: skip
    names = [parse_name(n) for n in by]
    points = _int(request, "points", 500, 4, 20_000)
    total, page = query_runs(ui.store, info.id, where=request.query_params.get("where") or None,
                             limit=MAX_GROUP_RUNS, meta=info.meta)  # fmt: skip
    _check_known(by, page, "group-by name")
    members: dict[tuple[Any, ...], list[RunRecord]] = {}
    for run in page:
        key = tuple(name.value(run) for name in names)
        members.setdefault(key, []).append(run)
    series = ui.store.read_metrics(info.id, metric, [run.run_id for run in page])
    out, without = [], 0
    for key in sorted(members, key=lambda k: [sort_key(v) for v in k]):
        runs = [r for r in members[key] if r.run_id in series and len(series[r.run_id])]
        without += len(members[key]) - len(runs)
        if not runs:
            continue
        steps = np.concatenate([series[r.run_id].steps for r in runs])
        values = np.concatenate([series[r.run_id].values for r in runs])
        label = ", ".join(f"{t.removeprefix('params.')}={v}" for t, v in zip(by, key, strict=True))
        out.append({"key": dict(zip(by, key, strict=True)), "label": label, "runs": len(runs),
                    **_thin(group_stats(steps, values), points)})  # fmt: skip
    return {"metric": metric, "by": by, "total": total, "used": len(page),
            "truncated": total > len(page), "without_metric": without, "groups": out}  # fmt: skip


DOCS: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {
    "parallel": ("Columns for parallel coordinates: the run ids matching `where` and, per axis "
                 "name, its values described as numbers (`min`, `max`, `log`: the values are "
                 "positive and span >= 2 decades) or categories (`categories`, each run's index)"
                 "; the `color` column; the `available` names.", {
        "names": ("string", "Axis names separated by commas, e.g. `params.lr,metric.loss` "
                            "(default: the first parameters and metrics)."),
        "where": ("string", "A filter of the query language."),
        "color": ("string", "A name to colour the lines by."),
        "limit": ("integer", "At most this many runs (1 to 50,000, default 10,000)."),
    }),
    "overlay": ("One metric of up to 50 runs (steps, values, wall times, down-sampled), each "
                "labelled by the parameters that differ among them (`distinguishing`); "
                "`missing`: the runs that did not log it.", {
        "runs": ("string", "Run ids separated by commas (1 to 50)."),
        "metric": ("string", "The metric's name."),
        "points": ("integer", "Points per run at most (default 1000)."),
    }),
    "curves": ("One metric of the runs matching `where` (at most 5,000) grouped by the names "
               "of `by`: per group and step the run count, mean, min, max and population "
               "standard deviation.", {
        "metric": ("string", "The metric's name."),
        "by": ("string", "Names to group by, separated by commas, e.g. `params.opt`."),
        "where": ("string", "A filter of the query language."),
        "points": ("integer", "Steps per group at most (default 500)."),
    }),
}  # fmt: skip
"""OpenAPI summaries and query parameters of the chart endpoints (listed in
:data:`trialbook.web.api.ROUTES`; see :mod:`trialbook.web.openapi`)."""
