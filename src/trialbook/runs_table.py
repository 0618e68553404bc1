"""The table of a loaded experiment's runs, built from columns (issue 16, "Scale").

``session.load_experiment(name).df()`` of a million runs must not build a million
:class:`~trialbook.tracking.Run` objects: the store returns the columns a table needs
(:class:`~trialbook.storage.records.RunColumns`), and :func:`columns_frame` builds the same frame
:func:`trialbook.runs.runs_frame` builds from runs. Two ways, one result:

* the documents of every run parsed at once by Arrow's JSON reader, each column of plain
  values kept as one array; taken when the runs have no encoded values (NumPy arrays, frames...),
  no tags and no result, and Arrow can type every column as the Python values would make it (no
  column mixes strings and numbers, no param that is a list or a dict, no integer past 64 bits);
* otherwise, the documents parsed in one ``json.loads`` per batch into a light view per run
  (no ``Run``), the encoded values decoded through the codecs, then the same table code as
  ``runs_frame``.

Examples
--------
>>> from trialbook.storage.records import RunColumns
>>> docs = '{"p":{"x":1},"f":{"y":2.0}}\\n{"p":{"x":2}}'
>>> columns = RunColumns([1, 2], ["done", "pending"], [docs], [10.0, None], [12.5, None])
>>> columns_frame(columns, {}, allow_pickle=False)[["x", "status", "duration", "y"]]
        x   status  duration    y
run_id
1       1     done       2.5  2.0
2       2  pending       NaN  NaN
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from trialbook.bulk import paused_gc
from trialbook.codecs import Encoded, decode_or_placeholder
from trialbook.storage.heartbeats import mark_lost
from trialbook.storage.records import ErrorInfo, RunColumns, RunRecord, Status

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "RunView",
    "arrow_frame",
    "columns_frame",
    "decode_bundles",
    "lost_statuses",
    "run_views",
]


class RunView:
    """What the table of runs reads of one run, without a :class:`~trialbook.tracking.Run`:
    its id, status, timings, error, decoded params, fields, result, tags and metrics summary.

    Examples
    --------
    >>> doc = {"p": {"a": 1}, "m": {"loss": [2, 0.5]}}
    >>> view = RunView(3, doc, status="done", started=1.0, finished=4.0)
    >>> view.params, view.duration, view.metric_summary()
    ({'a': 1}, 3.0, {'loss': [2, 0.5]})
    """

    __slots__ = ("error", "fields", "finished", "id", "metrics", "params", "result", "started",
                 "status", "tags")  # fmt: skip

    def __init__(
        self,
        run_id: int,
        doc: Mapping[str, Any],
        *,
        status: str,
        started: float | None,
        finished: float | None,
        bins: Mapping[tuple[str, str], Any] | None = None,
        allow_pickle: bool = False,
    ) -> None:
        self.id = run_id
        self.status = status
        self.started = started
        self.finished = finished
        error = doc.get("e")
        self.error = None if error is None else ErrorInfo(*error)
        self.tags = doc.get("t") or {}
        self.metrics = doc.get("m") or {}
        params, fields, result = doc.get("p") or {}, doc.get("f") or {}, doc.get("r")
        if bins:  # as trialbook.storage.bundle.fill_record: encoded values after the plain ones
            params, fields = dict(params), dict(fields)
            for (slot, name), enc in bins.items():
                if slot == "param":
                    params[name] = enc
                elif slot == "field":
                    fields[name] = enc
                else:
                    result = enc
            params = _decoded(params, allow_pickle)
            fields = _decoded(fields, allow_pickle)
            if type(result) is Encoded:
                result = decode_or_placeholder(result, allow_pickle=allow_pickle)
        self.params, self.fields, self.result = params, fields, result

    @property
    def duration(self) -> float | None:
        """Seconds between start and end (``None`` unless both are known)."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    def metric_summary(self) -> dict[str, list[Any]]:
        """``{name: [point count, last value]}``, as ``Run.metric_summary()``."""
        return {name: list(summary[:2]) for name, summary in self.metrics.items()}


def decode_bundles(columns: RunColumns, *, allow_pickle: bool) -> None:
    """Decode the encoded values of ``columns`` in place, as loading runs does: a damaged value
    fails the load, not a later table; a pickled one without ``allow_pickle`` becomes a
    :class:`~trialbook.codecs.Pickled` placeholder (see :func:`~trialbook.codecs.
    decode_or_placeholder`).

    Examples
    --------
    >>> from trialbook.codecs import encode
    >>> bundles = {1: {("field", "s"): encode({2})}}
    >>> columns = RunColumns([1], ["done"], ["{}"], [None], [None], bundles=bundles)
    >>> decode_bundles(columns, allow_pickle=False)
    >>> columns.bundles
    {1: {('field', 's'): {2}}}
    """
    for bins in columns.bundles.values():
        for key, value in bins.items():
            bins[key] = decode_or_placeholder(value, allow_pickle=allow_pickle)


def _decoded(values: dict[str, Any], allow_pickle: bool) -> dict[str, Any]:
    return {
        k: decode_or_placeholder(v, allow_pickle=allow_pickle) if type(v) is Encoded else v
        for k, v in values.items()
    }


def lost_statuses(
    columns: RunColumns, meta: Mapping[str, Any]
) -> tuple[list[str], dict[int, ErrorInfo]]:
    """The statuses of ``columns`` with each lost run (see :mod:`trialbook.live`) failed, and
    the ``LostRun`` errors of those runs by position.

    Examples
    --------
    >>> columns = RunColumns([1, 2], ["running", "done"], ["{}\\n{}"], [1.0, 1.0], [None, 2.0])
    >>> meta = {"live:a": {"host": "n1", "pid": 7, "beat": 0.0, "runs": [1]}}
    >>> statuses, errors = lost_statuses(columns, meta)
    >>> statuses, errors[0].type
    (['failed', 'done'], 'LostRun')
    """
    statuses = columns.statuses
    running_value = Status.RUNNING.value
    if running_value not in statuses:
        return statuses, {}
    running = [i for i, status in enumerate(statuses) if status == running_value]
    records = [RunRecord(columns.run_ids[i], status=statuses[i]) for i in running]
    mark_lost(records, meta)
    statuses = list(statuses)
    errors = {}
    for i, record in zip(running, records, strict=True):
        statuses[i] = record.status
        if record.error is not None:
            errors[i] = record.error
    return statuses, errors


def run_views(
    columns: RunColumns, meta: Mapping[str, Any], *, allow_pickle: bool
) -> Iterator[RunView]:
    """One :class:`RunView` per run of ``columns`` (lost runs failed), documents parsed in
    one ``json.loads`` per batch.

    Examples
    --------
    >>> columns = RunColumns([4], ["pending"], ['{"p":{"a":"x"}}'], [None], [None])
    >>> [view.params for view in run_views(columns, {}, allow_pickle=False)]
    [{'a': 'x'}]
    """
    statuses, lost = lost_statuses(columns, meta)
    started, finished = columns.started, columns.finished
    ids, bundles = columns.run_ids, columns.bundles
    i = 0
    for text in columns.docs:
        for doc in json.loads("[" + text.replace("\n", ",") + "]"):
            run_id = ids[i]
            view = RunView(run_id, doc, status=statuses[i], started=started[i],
                           finished=finished[i], bins=bundles.get(run_id),
                           allow_pickle=allow_pickle)  # fmt: skip
            if i in lost:
                view.error = lost[i]
            yield view
            i += 1


def columns_frame(
    columns: RunColumns, meta: Mapping[str, Any], *, allow_pickle: bool
) -> pd.DataFrame:
    """The table of the runs of ``columns`` (the experiment's metadata ``meta`` tells lost
    runs): the frame :func:`trialbook.runs.runs_frame` makes of the same runs loaded.

    See the module's example.
    """
    from trialbook.runs import runs_frame

    frame = arrow_frame(columns, meta)
    if frame is not None:
        return frame
    with paused_gc(len(columns)):
        return runs_frame(run_views(columns, meta, allow_pickle=allow_pickle))


_RESERVED = frozenset({"status", "started", "finished", "duration", "error"})
_BIG_INT = re.compile(rb"[0-9]{19}")  # Arrow reads integers past int64 as floats: not here


def arrow_frame(columns: RunColumns, meta: Mapping[str, Any]) -> pd.DataFrame | None:
    """The table of :func:`columns_frame` with every document parsed by Arrow's JSON reader
    (one call, columns kept whole), or ``None`` when the runs need the other way: encoded
    values, tags or results, a column Arrow cannot type, a param or field that is a list or
    a dict, a field named as a param that some run lacks.

    Examples
    --------
    >>> docs = ['{"p":{"a":1}}\\n{"p":{"a":"x"}}']
    >>> columns = RunColumns([1, 2], ["done"] * 2, docs, [None] * 2, [None] * 2)
    >>> arrow_frame(columns, {}) is None  # a column of numbers and strings
    True
    >>> arrow_frame(RunColumns([1], ["done"], ['{"p":{"a":1}}'], [None], [None]), {})["a"].tolist()
    [1]
    """
    import pyarrow as pa

    parsed = _parsed(columns)
    if parsed is None:
        return None
    table, text = parsed
    params = _children(table, "p")
    fields = _children(table, "f")
    metrics = _children(table, "m")
    if params is None or fields is None or metrics is None:
        return None
    extra = _extra_columns(columns, text, params, fields, metrics)
    if extra is None or not all(_is_plain(child.type) for child in params.values()):
        return None
    floats = [c for c in (*params.values(), *fields.values()) if pa.types.is_floating(c.type)]
    if floats and _BIG_INT.search(text):  # maybe an integer past int64 Arrow made a float
        return None
    param_values = {name: _column(child) for name, child in params.items()}
    statuses, lost = lost_statuses(columns, meta)
    started, finished = _time_arrays(columns)
    duration = finished - started  # NaN where either is unknown, as None - x is
    errors = _errors(table, lost)
    status = _strings(pa.array(statuses, pa.string()))
    fixed = {"status": status, "started": started, "finished": finished, "duration": duration,
             "error": errors}  # fmt: skip
    import numpy as np

    from trialbook.runs import table_of

    ids = np.array(columns.run_ids, dtype=np.int64)  # what pandas makes of the list, sooner
    return table_of(ids, param_values, fixed, None, extra)


def _parsed(columns: RunColumns) -> tuple[Any, bytes] | None:
    """Every document of ``columns`` parsed by Arrow (with their text), or ``None`` for runs
    that Arrow cannot read as they are read one by one (see :func:`arrow_frame`)."""
    import pyarrow as pa
    import pyarrow.json as pj

    if columns.bundles or not len(columns):
        return None
    text = "\n".join(columns.docs).encode()
    try:
        table = pj.read_json(io.BytesIO(text))
    except pa.ArrowInvalid:
        return None
    if table.num_rows != len(columns) or not set(table.column_names) <= {"p", "f", "m", "e"}:
        return None
    return table, text


def _time_arrays(columns: RunColumns) -> tuple[Any, Any]:
    """The ``started`` and ``finished`` columns as float arrays, NaN where unknown."""
    import numpy as np

    def floats(values: list[float | None]) -> Any:
        if values.count(None) == len(values):  # runs never started: no list to convert
            return np.full(len(values), np.nan)
        return np.array(values, dtype=float)

    return floats(columns.started), floats(columns.finished)


def _column(child: Any) -> Any:
    """A column of Arrow as the table holds the same values given as a list (see
    :func:`trialbook.runs.table_of`): numbers as one array, other values as a list."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    kind = child.type
    if pa.types.is_floating(kind) or (
        not child.null_count and (pa.types.is_integer(kind) or pa.types.is_boolean(kind))
    ):
        return child.to_numpy(zero_copy_only=False)
    if pa.types.is_integer(kind):  # with gaps: nullable Int64, as _param_column makes it
        mask = child.is_null().to_numpy(zero_copy_only=False)
        values = child.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        return pd.arrays.IntegerArray(values, mask)
    return _strings(child) if pa.types.is_string(kind) else child.to_pylist()


def _strings(array: Any) -> Any:
    """Arrow strings as pandas makes a list of the same strings (and ``None``): its string
    dtype (pandas 3, kept in Arrow), else a list (pandas 2: objects)."""
    import numpy as np
    import pandas as pd

    dtype = pd.Series(["text"]).dtype
    if dtype == np.dtype(object):
        return array.to_pylist()
    return pd.array(array, dtype=dtype)


def _children(table: Any, column: str) -> dict[str, Any] | None:
    """The children of a struct column of ``table`` by name (nulls where the struct is null),
    ``{}`` without that column, ``None`` if it is not a struct."""
    import pyarrow as pa

    if column not in table.column_names:
        return {}
    array = table.column(column).combine_chunks()
    if not pa.types.is_struct(array.type):
        return None
    return {array.type.field(k).name: child for k, child in enumerate(array.flatten())}


def _is_plain(kind: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
        or pa.types.is_string(kind) or pa.types.is_null(kind)
    )  # fmt: skip


def _extra_columns(
    columns: RunColumns,
    text: bytes,
    params: dict[str, Any],
    fields: dict[str, Any],
    metrics: dict[str, Any],
) -> dict[str, list[Any]] | None:
    """The field and metric columns in the order :func:`trialbook.runs.runs_frame` gives them
    (as first met, run after run), or ``None`` if the Arrow way cannot give them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values: dict[str, list[Any]] = {}
    for name, child in fields.items():
        if name.startswith(("field.", "metric.")):
            return None
        if not _is_plain(child.type):
            # lists and dicts: no column, unless some run's value is None (a null here is
            # that or no value at all; the documents tell, as written by bundle.dump_doc)
            if child.null_count and _json_key(name) + b":null" in text:
                return None
            continue
        if name in params and params[name].null_count:
            return None  # "field.<name>" only in the runs that have that param
        key = f"field.{name}" if name in params or name in _RESERVED else name
        values[key] = _column(child)
    for name, child in metrics.items():
        if not pa.types.is_list(child.type) or not _is_plain(child.type.value_type):
            return None
        try:
            values[f"metric.{name}"] = _column(pc.list_element(child, 1))
        except pa.ArrowInvalid:
            return None
    order = _first_met(columns, set(values), params)
    return {key: values[key] for key in order}


def _json_key(name: str) -> bytes:
    return json.dumps(name, ensure_ascii=False).encode()


def _first_met(columns: RunColumns, keys: set[str], params: dict[str, Any]) -> list[str]:
    """``keys`` (column names of fields and metrics) in the order runs first have them:
    documents are read one by one until every key was met (one, when runs are alike)."""
    order: dict[str, None] = {}
    for line in _lines(columns.docs):
        if len(order) == len(keys):
            break
        doc = json.loads(line)
        for name in doc.get("f") or ():
            key = f"field.{name}" if name in params or name in _RESERVED else name
            if key in keys:
                order[key] = None
        for name in doc.get("m") or ():
            order[f"metric.{name}"] = None
    return list(order)


def _lines(texts: list[str]) -> Iterator[str]:
    for text in texts:
        start = 0
        while start <= len(text):
            end = text.find("\n", start)
            end = len(text) if end < 0 else end
            yield text[start:end]
            start = end + 1


def _errors(table: Any, lost: dict[int, ErrorInfo]) -> Any:
    """The ``error`` column: each error's text (``LostRun`` for a lost run), else ``None``;
    without any error, an array of ``None`` (as pandas makes that list)."""
    if "e" not in table.column_names and not lost:
        import numpy as np

        return np.full(table.num_rows, None, dtype=object)
    errors: list[Any] = [None] * table.num_rows
    if "e" in table.column_names:
        for i, error in enumerate(table.column("e").to_pylist()):
            if error is not None:
                errors[i] = str(ErrorInfo(*error))
    for i, error in lost.items():
        errors[i] = str(error)
    return errors
