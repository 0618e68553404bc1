"""Safe encoding of values to bytes, chosen by the value's type.

=========  ==========================================================================
codec      used for
=========  ==========================================================================
``json``   plain JSON values: ``None``, ``bool``, ``int``, ``float``, ``str``, and lists
           and ``str``-keyed dicts of those (stored inline, readable by any tool)
``tjson``  containers JSON cannot represent exactly: tuples, sets, ``bytes``, complex,
           dates and times, paths, NumPy scalars, dicts with non-``str`` keys, and
           containers holding arrays or frames (nested values are tagged)
``npy``    NumPy arrays (the ``.npy`` format, never with pickled objects)
``arrow``  pandas ``DataFrame`` / ``Series`` and pyarrow ``Table`` / ``RecordBatch``
           (Arrow IPC stream)
``pickle`` anything else, **only** when the caller passes ``allow_pickle=True``; reading a
           pickle back needs the same opt-in, because unpickling runs code from the store
=========  ==========================================================================

Plain JSON values are kept as themselves (a store writes them into a JSON document);
everything else becomes an :class:`Encoded` ``(codec, data)`` pair. NumPy, pandas and pyarrow
are imported only when a value of theirs is met.

Examples
--------
>>> from trialbook.codecs import encode, decode
>>> encode({"lr": 0.1, "layers": [64, 64]})
{'lr': 0.1, 'layers': [64, 64]}
>>> enc = encode((1, "a"))
>>> enc.codec
'tjson'
>>> decode(enc)
(1, 'a')
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import json
import pathlib
import pickle
from dataclasses import dataclass
from typing import Any

from trialbook.errors import CodecError

__all__ = ["Encoded", "decode", "encode", "is_plain"]

_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})
_TAG = "__tb__"
_JSON_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=True).encode
_SAFE_TYPES = (
    "None, bool, int, float, str, bytes, complex, lists, tuples, sets, dicts, dates and times, "
    "pathlib paths, NumPy arrays and scalars, pandas DataFrame/Series, pyarrow Table/RecordBatch"
)


@dataclass(frozen=True, slots=True)
class Encoded:
    """A value encoded by one of the codecs: ``codec`` names it, ``data`` holds the bytes.

    Examples
    --------
    >>> Encoded("json", b"1").size
    1
    """

    codec: str
    data: bytes

    @property
    def size(self) -> int:
        """Number of bytes of the encoded value."""
        return len(self.data)


def is_plain(value: object) -> bool:
    """Whether ``value`` round-trips exactly through plain JSON.

    Examples
    --------
    >>> is_plain({"a": [1, 2.5, None, "x"]}), is_plain((1, 2)), is_plain({1: "a"})
    (True, False, False)
    """
    t = type(value)
    if t in _PLAIN_SCALARS:
        return True
    if t is list:
        return all(is_plain(v) for v in value)  # type: ignore[attr-defined]
    if t is dict:
        return all(type(k) is str and is_plain(v) for k, v in value.items())  # type: ignore[attr-defined]
    return False


def encode(value: Any, *, allow_pickle: bool = False) -> Any:
    """Encode ``value``: plain JSON values are returned as they are, others as :class:`Encoded`.

    Raises
    ------
    CodecError
        If no safe codec handles the value and ``allow_pickle`` is false.

    Examples
    --------
    >>> import numpy as np
    >>> encode(np.arange(3)).codec
    'npy'
    >>> encode(object())
    Traceback (most recent call last):
    ...
    trialbook.errors.CodecError: cannot store a value of type <class 'object'> with a safe codec...
    """
    if is_plain(value):
        return value
    module = type(value).__module__.partition(".")[0]
    try:
        if module == "numpy" and type(value).__name__ == "ndarray":
            return _encode_npy(value)
        if module in {"pandas", "pyarrow"}:
            return _encode_arrow(value)
        return Encoded("tjson", _JSON_DUMPS(_to_tree(value)).encode())
    except _Unsupported as exc:
        if allow_pickle:
            return _encode_pickle(value)
        msg = (
            f"cannot store a value of type {type(exc.value)} with a safe codec "
            f"(got {_short_repr(exc.value)}); safe types are: {_SAFE_TYPES}. Convert it to one "
            "of those, or open the store with allow_pickle=True if pickle is acceptable"
        )
        raise CodecError(msg) from None


def decode(value: Any, *, allow_pickle: bool = False) -> Any:
    """Decode what :func:`encode` returned.

    Raises
    ------
    CodecError
        For a pickled value when ``allow_pickle`` is false, or an unknown codec.

    Examples
    --------
    >>> decode(encode({"a", "b"})) == {"a", "b"}
    True
    >>> decode(Encoded("pickle", b"..."))
    Traceback (most recent call last):
    ...
    trialbook.errors.CodecError: this value was stored with pickle...
    """
    if type(value) is not Encoded:
        return value
    codec, data = value.codec, value.data
    if codec == "json":
        return json.loads(data)
    if codec == "tjson":
        return _from_tree(json.loads(data), allow_pickle)
    if codec == "npy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if codec == "arrow":
        return _decode_arrow(data, allow_pickle)
    if codec == "pickle":
        if not allow_pickle:
            msg = (
                "this value was stored with pickle, and unpickling runs code taken from the "
                "store; if you trust this store, open it with allow_pickle=True"
            )
            raise CodecError(msg)
        return pickle.loads(data)  # noqa: S301 - explicit opt-in above
    msg = f"unknown codec {codec!r}; expected one of 'json', 'tjson', 'npy', 'arrow', 'pickle'"
    raise CodecError(msg)


# -- helpers -------------------------------------------------------------------------------------


class _Unsupported(Exception):  # noqa: N818 - internal signal, never escapes
    def __init__(self, value: object) -> None:
        self.value = value


def _short_repr(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _encode_pickle(value: Any) -> Encoded:
    import cloudpickle  # pickles classes and functions defined in scripts, by value

    try:
        return Encoded("pickle", cloudpickle.dumps(value, protocol=5))
    except Exception as exc:
        msg = f"cannot store a value of type {type(value)} even with pickle: {exc}"
        raise CodecError(msg) from exc


def _encode_npy(array: Any) -> Encoded:
    import numpy as np

    if array.dtype.hasobject:
        raise _Unsupported(array)
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return Encoded("npy", buf.getvalue())


def _encode_arrow(value: Any) -> Encoded:
    import pyarrow as pa

    kind, name = _arrow_kind(value)
    try:
        if kind == "frame":
            table = pa.Table.from_pandas(value)
        elif kind == "series":
            table = pa.Table.from_pandas(value.to_frame(name="series"))
        elif kind == "batch":
            table = pa.Table.from_batches([value])
        else:
            table = value
    except (pa.ArrowException, TypeError, ValueError):
        raise _Unsupported(value) from None
    info = {"kind": kind, "name": _to_tree(name)}
    meta = dict(table.schema.metadata or {})
    meta[b"trialbook"] = _JSON_DUMPS(info).encode()
    table = table.replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return Encoded("arrow", sink.getvalue().to_pybytes())


def _arrow_kind(value: Any) -> tuple[str, object]:
    name = type(value).__name__
    module = type(value).__module__
    if module.startswith("pandas"):
        if name == "DataFrame":
            return "frame", None
        if name == "Series":
            return "series", value.name
    elif module.startswith("pyarrow"):
        if name == "Table":
            return "table", None
        if name == "RecordBatch":
            return "batch", None
    raise _Unsupported(value)


def _decode_arrow(data: bytes, allow_pickle: bool) -> Any:
    import pyarrow as pa

    table = pa.ipc.open_stream(pa.BufferReader(data)).read_all()
    meta = dict(table.schema.metadata or {})
    info = json.loads(meta.pop(b"trialbook"))
    table = table.replace_schema_metadata(meta or None)
    kind = info["kind"]
    if kind == "table":
        return table
    if kind == "batch":
        return table.combine_chunks().to_batches()[0]
    frame = table.to_pandas()
    if kind == "frame":
        return frame
    series = frame["series"]
    series.name = _from_tree(info["name"], allow_pickle)
    return series


def _to_tree(value: Any) -> Any:  # noqa: PLR0911, C901 - one branch per supported type
    """Turn ``value`` into a JSON-able tree, tagging what plain JSON cannot express."""
    t = type(value)
    if t in _PLAIN_SCALARS:
        return value
    if t is list:
        return [_to_tree(v) for v in value]
    if t is dict:
        if all(type(k) is str for k in value) and _TAG not in value:
            return {k: _to_tree(v) for k, v in value.items()}
        return {_TAG: "dict", "v": [[_to_tree(k), _to_tree(v)] for k, v in value.items()]}
    if t is tuple:
        return {_TAG: "tuple", "v": [_to_tree(v) for v in value]}
    if t is set or t is frozenset:
        return {_TAG: t.__name__, "v": [_to_tree(v) for v in value]}
    if t is bytes:
        return {_TAG: "bytes", "v": base64.b64encode(value).decode()}
    if t is complex:
        return {_TAG: "complex", "v": [value.real, value.imag]}
    if t in (_dt.datetime, _dt.date, _dt.time):
        return {_TAG: t.__name__, "v": value.isoformat()}
    if t is _dt.timedelta:
        return {_TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, pathlib.PurePath):
        return {_TAG: "path", "v": str(value)}
    module = t.__module__.partition(".")[0]
    if module == "numpy":
        if t.__name__ == "ndarray":
            return {_TAG: "npy", "v": base64.b64encode(_encode_npy(value).data).decode()}
        if hasattr(value, "dtype") and not value.dtype.hasobject:  # a NumPy scalar
            import numpy as np

            data = _encode_npy(np.asarray(value)).data
            return {_TAG: "npscalar", "v": base64.b64encode(data).decode()}
    if module in {"pandas", "pyarrow"}:
        return {_TAG: "arrow", "v": base64.b64encode(_encode_arrow(value).data).decode()}
    raise _Unsupported(value)


def _from_tree(tree: Any, allow_pickle: bool) -> Any:  # noqa: PLR0911 - one branch per tag
    t = type(tree)
    if t is list:
        return [_from_tree(v, allow_pickle) for v in tree]
    if t is not dict:
        return tree
    tag = tree.get(_TAG)
    if tag is None:
        return {k: _from_tree(v, allow_pickle) for k, v in tree.items()}
    v = tree["v"]
    if tag == "dict":
        return {_from_tree(k, allow_pickle): _from_tree(x, allow_pickle) for k, x in v}
    if tag in ("tuple", "set", "frozenset"):
        items = [_from_tree(x, allow_pickle) for x in v]
        return {"tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)
    if tag == "bytes":
        return base64.b64decode(v)
    if tag == "complex":
        return complex(v[0], v[1])
    if tag in ("datetime", "date", "time"):
        return getattr(_dt, tag).fromisoformat(v)
    if tag == "timedelta":
        return _dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2])
    if tag == "path":
        return pathlib.Path(v)
    if tag == "npy":
        return decode(Encoded("npy", base64.b64decode(v)))
    if tag == "npscalar":
        return decode(Encoded("npy", base64.b64decode(v)))[()]
    if tag == "arrow":
        return decode(Encoded("arrow", base64.b64decode(v)), allow_pickle=allow_pickle)
    msg = f"unknown tag {tag!r} in a tagged-JSON value; was it written by a newer trialbook?"
    raise CodecError(msg)
