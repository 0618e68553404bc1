"""What the UI shows of runs, as JSON-ready dicts: table rows, run details with value previews,
comparisons with differences and unified diffs. Pure functions over store records (no web
framework here), so scripts and tests can use them directly.

Examples
--------
>>> from trialbook.storage.records import RunRecord
>>> run_row(RunRecord(3, status="done", params={"lr": 0.1}, metrics={"loss": [9, 0.5]}))["metrics"]
{'loss': 0.5}
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from typing import Any

from trialbook.codecs import Encoded, decode, json_view, plain_scalar
from trialbook.storage.records import RunRecord
from trialbook.web.differences import compare_values
from trialbook.web.files import stored_values

__all__ = ["clean_json", "compare_runs", "preview", "run_detail", "run_row"]

_SCALARS = (str, int, float, bool, type(None))
PREVIEW_ITEMS = 20
PREVIEW_ROWS = 10


def clean_json(value: Any) -> Any:
    """``value`` with non-finite floats as ``None`` (browsers' JSON has no NaN).

    Examples
    --------
    >>> clean_json({"a": [1.0, float("nan")]})
    {'a': [1.0, None]}
    """
    if type(value) is float:
        return value if math.isfinite(value) else None
    if type(value) is dict:
        return {k: clean_json(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return [clean_json(v) for v in value]
    return value


def _label(value: Any) -> Any:
    """A table cell: plain values as themselves, small tagged-JSON values (tuples, sets, dates,
    ...) as JSON (tuples and sets as lists, others as text), larger encoded ones as ``<codec>``.

    Examples
    --------
    >>> from trialbook.codecs import encode
    >>> _label(encode({"sizes": (64, 64), "opt": {"name": "adam"}}))
    {'sizes': [64, 64], 'opt': {'name': 'adam'}}
    """
    if type(value) is not Encoded:
        return value
    if value.codec == "tjson" and value.size <= _CELL_BYTES:
        return json_view(decode(value))
    return f"<{value.codec}>"


_CELL_BYTES = 2048
_NO_CELL = object()


def _scalar_cell(value: Any) -> Any:
    """A field's cell of the runs table: a plain scalar as itself, a NumPy or pandas scalar
    (stored tagged) as the plain value it shows (issue 18); ``_NO_CELL`` for anything else
    (lists, arrays, frames: the run page previews them).

    Examples
    --------
    >>> import numpy as np
    >>> from trialbook.codecs import encode
    >>> _scalar_cell(encode(np.float64(0.917))), _scalar_cell([1, 2]) is _NO_CELL
    (0.917, True)
    """
    if type(value) in _SCALARS:
        return value
    if type(value) is Encoded and value.codec == "tjson" and value.size <= _CELL_BYTES:
        decoded = decode(value)
        plain = plain_scalar(decoded)
        if plain is not decoded and type(plain) in _SCALARS:
            return plain
    return _NO_CELL


def run_row(run: RunRecord) -> dict[str, Any]:
    """One row of the runs table: params, scalar fields, tags, metric last values.

    Examples
    --------
    >>> run_row(RunRecord(1, fields={"acc": 0.9, "w": [1, 2]}))["fields"]
    {'acc': 0.9}
    """
    duration = None
    if run.started is not None and run.finished is not None:
        duration = run.finished - run.started
    return {
        "run_id": run.run_id,
        "kind": run.kind,
        "status": str(run.status),
        "key": run.key,
        "seed": run.seed,
        "created": run.created,
        "started": run.started,
        "finished": run.finished,
        "duration": duration,
        "result": _label(run.result)
        if type(run.result) in _SCALARS or type(run.result) is Encoded
        else "<json>",
        "error": str(run.error) if run.error is not None else None,
        "params": {k: _label(v) for k, v in run.params.items()},
        "fields": {k: c for k, v in run.fields.items() if (c := _scalar_cell(v)) is not _NO_CELL},
        "tags": dict(run.tags),
        "metrics": {name: summary[1] for name, summary in run.metrics.items()},
    }


def preview(value: Any, *, allow_pickle: bool = False) -> dict[str, Any]:
    """A short, JSON-ready view of a stored value: arrays show shape, dtype, first items and
    statistics; frames their first rows; pickles are never loaded unless allowed.

    Examples
    --------
    >>> import numpy as np
    >>> from trialbook.codecs import encode
    >>> p = preview(encode(np.arange(6.0).reshape(2, 3)))
    >>> p["type"], p["shape"], p["head"][:3], p["max"]
    ('array', [2, 3], [0.0, 1.0, 2.0], 5.0)
    """
    if type(value) is not Encoded:
        return {"type": "value", "value": value}
    if value.codec == "pickle" and not allow_pickle:
        return {"type": "pickle", "size": len(value.data), "note": "pickled value (not loaded)"}
    decoded = decode(value, allow_pickle=allow_pickle)
    if value.codec == "npy":
        return _array_preview(decoded)
    if value.codec == "arrow":
        return _frame_preview(decoded)
    plain = plain_scalar(decoded)  # np.float64(0.917) shows 0.917 (issue 18)
    if plain is not decoded and type(plain) in _SCALARS:
        return {"type": "value", "value": plain}
    return {"type": "repr", "codec": value.codec, "value": repr(decoded)[:2000]}


def _array_preview(array: Any) -> dict[str, Any]:
    import numpy as np

    flat = array.reshape(-1)
    out: dict[str, Any] = {
        "type": "array",
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "head": [_item(v) for v in flat[:PREVIEW_ITEMS]],
    }
    if flat.size and np.issubdtype(array.dtype, np.number):
        with np.errstate(all="ignore"):
            out.update(min=_item(np.nanmin(flat)), max=_item(np.nanmax(flat)),
                       mean=_item(np.nanmean(flat)))  # fmt: skip
    return out


def _frame_preview(value: Any) -> dict[str, Any]:
    import pandas as pd

    if hasattr(value, "to_pandas"):  # pyarrow Table / RecordBatch
        value = value.to_pandas()
    frame = value.to_frame() if isinstance(value, pd.Series) else value
    head = frame.head(PREVIEW_ROWS)
    return {
        "type": "table",
        "shape": list(frame.shape),
        "columns": [str(c) for c in head.columns],
        "index": [str(i) for i in head.index],
        "rows": [[_item(v) for v in row] for row in head.itertuples(index=False)],
    }


def _item(value: Any) -> Any:
    """A NumPy / pandas scalar as a plain Python value (or its string)."""
    value = plain_scalar(value)
    return value if type(value) in _SCALARS else str(value)


def run_detail(store: Any, experiment_id: int, run: RunRecord) -> dict[str, Any]:
    """Everything the run page shows of one run (values previewed, named values listed:
    ``artifacts``, without the internal manifests and pieces of logged artifacts, which
    the files route shows as a tree).

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> store = open_store("sqlite:///:memory:")
    >>> exp = store.create_experiment("d")
    >>> store.write_runs(exp.id, [RunRecord(1, params={"lr": 0.1})])
    >>> run_detail(store, exp.id, store.read_runs(exp.id)[0])["params"]
    {'lr': {'type': 'value', 'value': 0.1}}
    >>> store.close()
    """
    allow = bool(getattr(store, "allow_pickle", False))
    row = run_row(run)
    row.update(
        params={k: preview(v, allow_pickle=allow) for k, v in run.params.items()},
        fields={k: preview(v, allow_pickle=allow) for k, v in run.fields.items()},
        result=preview(run.result, allow_pickle=allow),
        error=None if run.error is None else {
            "type": run.error.type, "message": run.error.message,
            "traceback": run.error.traceback},
        metric_counts={name: summary[0] for name, summary in run.metrics.items()},
        artifacts=stored_values(store, experiment_id, run.run_id),
        code=run.code,
        environment=run.environment,
        version=run.version,
    )  # fmt: skip
    return row


def _snapshot(store: Any, digest: str) -> str | None:
    try:
        return str(store.get_snapshot(digest))
    except LookupError:
        return None


def _snapshot_diffs(
    store: Any, digests: Sequence[str | None], run_ids: Sequence[int], *, environment: bool
) -> list[dict[str, Any]]:
    """Each run's code (or environment) against the first run's: ``state`` is ``identical``,
    ``differs`` (with the unified ``diff``; an environment's by section) or ``not recorded``
    (``missing`` lists the runs without one: nothing to compare, never "identical")."""
    texts = {d: _snapshot(store, d) for d in set(digests) if d}
    out = []
    for digest, run_id in zip(digests[1:], run_ids[1:], strict=True):
        pair = [(digests[0], run_ids[0]), (digest, run_id)]
        missing = [i for d, i in pair if not d or texts.get(d) is None]
        entry: dict[str, Any] = {"run_id": run_id, "against": run_ids[0], "missing": missing}
        if missing:
            entry.update(state="not recorded", diff="")
        elif digest == digests[0]:
            entry.update(state="identical", diff="")
        else:
            base, other = texts.get(digests[0] or "") or "", texts.get(digest or "") or ""
            labels = (f"run {run_ids[0]}", f"run {run_id}")
            diff = _environment_diff(base, other, labels) if environment else "".join(
                difflib.unified_diff(base.splitlines(keepends=True),
                                     other.splitlines(keepends=True), *labels))  # fmt: skip
            entry.update(state="differs" if diff else "identical", diff=diff)
        out.append(entry)
    return out


def _environment_diff(base: str, other: str, labels: tuple[str, str]) -> str:
    """The diff of two environment snapshots, section by section (the sections are texts
    inside the snapshot's JSON: diffing the JSON would show escaped lines)."""
    from trialbook.capture import environment_diff, parse_environment

    try:
        sections = environment_diff(parse_environment(base), parse_environment(other))
    except (ValueError, TypeError):  # not a snapshot of capture.environment_text: as text
        return "".join(difflib.unified_diff(base.splitlines(keepends=True),
                                            other.splitlines(keepends=True), *labels))  # fmt: skip
    if not sections:
        return ""
    lines = [f"--- {labels[0]}", f"+++ {labels[1]}"]
    for name, diff in sections.items():
        lines += [f"@@ {name} @@", *(line for line in diff if not line.startswith("@@"))]
    return "\n".join(lines) + "\n"


def _table(runs: Sequence[RunRecord], slot: str, allow_pickle: bool) -> list[dict[str, Any]]:
    names: dict[str, None] = {}
    for run in runs:
        names.update(dict.fromkeys(getattr(run, slot)))
    rows = []
    for name in names:
        rows.append(_row(name, [getattr(run, slot).get(name) for run in runs], allow_pickle))
    return rows


def _row(name: str, values: list[Any], allow_pickle: bool) -> dict[str, Any]:
    """A comparison row: cells, whether the values differ by content, and for arrays and
    frames a note per run against the first and the max absolute difference."""
    found = compare_values(values, allow_pickle=allow_pickle)
    row = {"name": name, "values": found["labels"], "differs": found["differs"]}
    if any(note is not None for note in found["notes"]):
        row.update(notes=found["notes"], max_abs_diff=found["max_abs_diff"])
    return row


def _summary(runs: Sequence[RunRecord], allow_pickle: bool) -> list[dict[str, Any]]:
    """Rows of what each run is and gave: kind, status, seed, result, duration. A row whose
    values are all missing is left out (e.g. the result of grid runs), except the result and
    seed of graph trials, which every trial has (a step may return ``None``)."""
    rows = [run_row(run) for run in runs]
    trials = any(run.kind == "trial" for run in runs)
    out = []
    for name in ("kind", "status", "seed", "result", "duration"):
        cells = [row[name] for row in rows]
        keep = name == "status" or (trials and name in ("seed", "result"))
        if not keep and all(c is None for c in cells):
            continue
        if name == "result":  # by content: arrays and frames too, plain JSON in full
            out.append(_row(name, [run.result for run in runs], allow_pickle))
            continue
        differs = name != "duration" and any(  # timings always differ: not highlighted
            c != cells[0] or type(c) is not type(cells[0]) for c in cells
        )
        out.append({"name": name, "values": cells, "differs": differs})
    return out


def compare_runs(store: Any, runs: Sequence[RunRecord]) -> dict[str, Any]:
    """A summary table (kind, status, seed, result, duration), parameter, field and tag
    tables (``differs`` marks rows whose values differ, arrays and frames compared by
    content, with ``notes`` and ``max_abs_diff`` against the first run), common metrics, and
    each run's code and environment against the first run's (``code_diff``,
    ``environment_diff``: ``identical``, ``differs`` with a unified diff, or ``not
    recorded``).

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> store = open_store("sqlite:///:memory:")
    >>> runs = [RunRecord(1, params={"lr": 0.1, "n": 2}), RunRecord(2, params={"lr": 0.2, "n": 2})]
    >>> compared = compare_runs(store, runs)
    >>> [(r["name"], r["differs"]) for r in compared["params"]]
    [('lr', True), ('n', False)]
    >>> compared["code_diff"][0]["state"], compared["code_diff"][0]["missing"]
    ('not recorded', [1, 2])
    >>> store.close()
    """
    allow = bool(getattr(store, "allow_pickle", False))
    ids = [run.run_id for run in runs]
    metrics = sorted(set().union(*(run.metrics for run in runs))) if runs else []
    return {
        "run_ids": ids,
        "status": [str(run.status) for run in runs],
        "summary": _summary(runs, allow),
        "params": _table(runs, "params", allow),
        "fields": _table(runs, "fields", allow),
        "tags": _table(runs, "tags", allow),
        "metrics": metrics,
        "code_diff": _snapshot_diffs(store, [run.code for run in runs], ids,
                                     environment=False),
        "environment_diff": _snapshot_diffs(store, [run.environment for run in runs], ids,
                                            environment=True),
    }  # fmt: skip
