"""How the comparison page tells stored values apart: by their content, never by their label.

Arrays and frames show in a table cell as a short label (their kind, dtype and shape), and two
different arrays have the same label: :func:`compare_values` decodes them and compares what
they hold (issue 15). For each run after the first it gives a note against the first run:
``same``, ``max |Δ| 0.5`` for numbers that differ, or what differs in their form (shape,
dtype, columns, type). A pickled value is compared by its stored bytes unless the store
allows unpickling.

Examples
--------
>>> import numpy as np
>>> from trialbook.codecs import encode
>>> row = compare_values([encode(np.zeros(3)), encode(np.array([0.0, 0.5, 0.0]))])
>>> row["labels"], row["differs"], row["notes"], row["max_abs_diff"]
(['array float64 [3]', 'array float64 [3]'], True, [None, 'max |Δ| 0.5'], [None, 0.5])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from trialbook.codecs import Encoded, decode, json_view, plain_scalar

__all__ = ["compare_values", "value_label"]

_SCALARS = (str, int, float, bool, type(None))
_CELL_BYTES = 2048


MAX_LOAD = 256 * 2**20
"""Stored values larger than this many bytes are compared by their bytes, not loaded (ten
runs' arrays are decoded at once)."""


class _Opaque:
    """A value that is not loaded (a pickle not allowed, or too large): known by its bytes."""

    def __init__(self, data: bytes, why: str, label: str) -> None:
        self.data, self.why, self.label = data, why, label


def _content(value: Any, allow_pickle: bool, max_load: int = MAX_LOAD) -> Any:
    """The value a stored value holds: arrays as NumPy arrays, frames as pandas DataFrames
    (a Series as a one-column frame), a pickle not allowed or a value larger than
    :data:`MAX_LOAD` as :class:`_Opaque`."""
    if type(value) is not Encoded:
        return value
    if value.codec == "pickle" and not allow_pickle:
        return _Opaque(value.data, "pickled, not loaded", "<pickle>")
    if value.size > max_load:
        size = f"{value.size / 2**20:.0f} MiB"
        return _Opaque(value.data, f"{size}, compared by bytes", f"<{value.codec}, {size}>")
    decoded = decode(value, allow_pickle=allow_pickle)
    if value.codec == "arrow":
        return _frame(decoded)
    return decoded


def _frame(value: Any) -> Any:
    import pandas as pd

    if hasattr(value, "to_pandas"):  # pyarrow Table / RecordBatch
        value = value.to_pandas()
    return value.to_frame() if isinstance(value, pd.Series) else value


def _is_array(value: Any) -> bool:
    return type(value).__name__ == "ndarray" and hasattr(value, "dtype")


def _is_frame(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "columns")


def value_label(value: Any, *, allow_pickle: bool = False) -> Any:
    """What a comparison cell shows of a stored value: a plain value as itself, a small
    tagged value as JSON, an array or frame as its kind and size, a pickle as ``<pickle>``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from trialbook.codecs import encode
    >>> value_label(encode(np.ones(3))), value_label(encode(pd.DataFrame({"a": [1, 2]})))[:12]
    ('array float64 [3]', 'table 2 rows')
    >>> value_label(encode((1, 2))), value_label(0.5)
    ([1, 2], 0.5)
    """
    return _label_of(_content(value, allow_pickle), value)


def _label_of(content: Any, stored: Any) -> Any:
    if isinstance(content, _Opaque):
        return content.label
    if _is_array(content):
        return f"array {content.dtype} [{' × '.join(str(n) for n in content.shape)}]"
    if _is_frame(content):
        rows, cols = content.shape
        return f"table {_count(rows, 'row')} × {_count(cols, 'column')}"
    plain = plain_scalar(content)
    if type(plain) in _SCALARS:
        return plain
    if type(stored) is Encoded and stored.size > _CELL_BYTES:
        return f"<{stored.codec}, {stored.size} bytes>"
    return json_view(content)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def compare_values(
    values: Sequence[Any], *, allow_pickle: bool = False, max_load: int = MAX_LOAD
) -> dict[str, Any]:
    """Compare one name's stored values across runs, by content.

    Returns ``labels`` (the cells), ``differs`` (any value differs from the first run's),
    ``notes`` (``None`` for the first run, then how each run's value differs from the first
    run's, written ``this run's ≠ the first run's``, or ``same``; ``None`` too where neither
    value is an array or a frame) and
    ``max_abs_diff`` (the largest absolute difference from the first run's numbers, when both
    are numeric arrays or frames of the same shape; else ``None``). Pickles (unless
    ``allow_pickle``) and values of more than ``max_load`` bytes are compared by their bytes.

    Examples
    --------
    >>> import pandas as pd
    >>> from trialbook.codecs import encode
    >>> a = encode(pd.DataFrame({"x": [1.0, 2.0], "s": ["u", "v"]}))
    >>> b = encode(pd.DataFrame({"x": [1.0, 2.25], "s": ["u", "v"]}))
    >>> c = encode(pd.DataFrame({"y": [1.0, 2.0]}))
    >>> row = compare_values([a, a, b, c])
    >>> row["differs"], row["notes"]
    (True, [None, 'same', 'max |Δ| 0.25', "columns ['y'] ≠ ['x', 's']"])
    >>> compare_values([1, 1.0])["differs"], compare_values([[1, 2], [1, 2]])["differs"]
    (True, False)
    """
    contents = [_content(v, allow_pickle, max_load) for v in values]
    labels = [_label_of(c, v) for c, v in zip(contents, values, strict=True)]
    notes: list[str | None] = [None]
    deltas: list[float | None] = [None]
    differs = False
    structured = any(_is_array(c) or _is_frame(c) or isinstance(c, _Opaque) for c in contents)
    for content in contents[1:]:
        same, note, delta = _against(contents[0], content)
        differs = differs or not same
        notes.append(note if structured else None)
        deltas.append(delta)
    return {"labels": labels, "differs": differs, "notes": notes, "max_abs_diff": deltas}


def _against(first: Any, other: Any) -> tuple[bool, str, float | None]:
    """``(same, note, max abs diff)`` of ``other`` against ``first``."""
    if _is_array(first) and _is_array(other):
        return _arrays(first, other)
    if _is_frame(first) and _is_frame(other):
        return _frames(first, other)
    if isinstance(first, _Opaque) and isinstance(other, _Opaque):
        same = first.data == other.data
        return same, "same" if same else f"bytes differ ({other.why})", None
    kinds = (_kind(first), _kind(other))
    if kinds[0] != kinds[1]:
        return False, f"{kinds[1]} ≠ {kinds[0]}", None
    same = _plain_equal(first, other)
    return same, "same" if same else "differs", None


def _kind(value: Any) -> str:
    if value is None:
        return "missing"
    if _is_array(value):
        return "array"
    if _is_frame(value):
        return "table"
    if isinstance(value, _Opaque):
        return "unloaded value"
    return "value"


def _plain_equal(a: Any, b: Any) -> bool:
    """Equal values of the same type (``1``, ``1.0`` and ``True`` differ); NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if type(a) is float and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list | tuple) and len(a) == len(b):
        return all(_plain_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and list(a) == list(b):
        return all(_plain_equal(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # objects whose == is not a truth value
        return a is b


def _numeric(dtype: Any) -> bool:
    import numpy as np

    return bool(np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_))


def _arrays(a: Any, b: Any) -> tuple[bool, str, float | None]:
    import numpy as np

    if a.shape != b.shape:
        return False, f"shape {list(b.shape)} ≠ {list(a.shape)}", None
    numeric = _numeric(a.dtype) and _numeric(b.dtype)
    dtype_note = f"dtype {b.dtype} ≠ {a.dtype}" if a.dtype != b.dtype else None
    if not numeric:
        same = dtype_note is None and bool(np.array_equal(a, b))
        return same, dtype_note or ("same" if same else "differs"), None
    delta = _max_abs_diff(a, b)
    same = dtype_note is None and bool(np.array_equal(a, b, equal_nan=_inexact(a.dtype)))
    if same:
        return True, "same", 0.0
    parts = [p for p in (dtype_note, _delta_note(delta)) if p]
    return False, ", ".join(parts) or "missing values (NaN) differ", delta


def _inexact(dtype: Any) -> bool:
    import numpy as np

    return bool(np.issubdtype(dtype, np.inexact))


def _max_abs_diff(a: Any, b: Any) -> float | None:
    """The largest ``|a - b|`` ignoring positions where either is NaN (``None``: none left)."""
    import numpy as np

    x = a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)
    y = b.astype(np.complex128 if np.iscomplexobj(b) else np.float64)
    with np.errstate(all="ignore"):
        diff = np.abs(x - y).reshape(-1)
    diff = diff[~np.isnan(diff)]
    if not diff.size:
        return None
    value = float(diff.max())
    return value if math.isfinite(value) else None


def _delta_note(delta: float | None) -> str | None:
    return f"max |Δ| {float(f'{delta:.4g}')}" if delta else None


def _frames(a: Any, b: Any) -> tuple[bool, str, float | None]:
    cols_a, cols_b = [str(c) for c in a.columns], [str(c) for c in b.columns]
    if cols_a != cols_b:
        return False, f"columns {cols_b} ≠ {cols_a}", None
    if a.shape != b.shape:
        return False, f"shape {list(b.shape)} ≠ {list(a.shape)}", None
    dtypes = [f"{c}: {y} ≠ {x}" for c, x, y in zip(cols_a, a.dtypes, b.dtypes, strict=True)
              if x != y]  # fmt: skip
    from pandas.api.types import is_numeric_dtype

    numeric = [i for i, (x, y) in enumerate(zip(a.dtypes, b.dtypes, strict=True))
               if is_numeric_dtype(x) and is_numeric_dtype(y)]  # fmt: skip
    delta = None
    if numeric:
        delta = _max_abs_diff(
            a.iloc[:, numeric].to_numpy(dtype=float, na_value=float("nan")),
            b.iloc[:, numeric].to_numpy(dtype=float, na_value=float("nan")),
        )
    same = not dtypes and bool(a.equals(b)) and list(a.index) == list(b.index)
    if same:
        return True, "same", 0.0 if numeric else None
    parts = [f"dtypes {', '.join(dtypes)}" if dtypes else None, _delta_note(delta)]
    note = ", ".join(p for p in parts if p)
    if not note:
        note = "index differs" if a.equals(b.set_axis(a.index)) else "values differ"
    return False, note, delta
