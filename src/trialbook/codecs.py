"""Safe encoding of values to bytes, chosen by the value's type.

=========  ==========================================================================
codec      used for
=========  ==========================================================================
``json``   plain JSON values: ``None``, ``bool``, ``int``, ``float``, ``str``, and lists
           and ``str``-keyed dicts of those (stored inline, readable by any tool)
``tjson``  what JSON cannot represent exactly: tuples, sets, ``bytes``, complex, ``Decimal``,
           ``UUID``, dates and times (also pandas' ``Timestamp``, ``Timedelta``, ``Period``),
           paths, NumPy scalars, dicts with non-``str`` keys, and containers holding
           arrays or frames (nested values are tagged: see *Tagged JSON* below)
``npy``    NumPy arrays (the ``.npy`` format, never with pickled objects)
``arrow``  pandas ``DataFrame`` / ``Series`` / ``Index`` / ``Categorical`` and pyarrow
           ``Table`` / ``RecordBatch`` (Arrow IPC stream)
``pickle`` anything else, **only** when the caller passes ``allow_pickle=True``; reading a
           pickle back needs the same opt-in, because unpickling runs code from the store
=========  ==========================================================================

Plain JSON values are kept as themselves (a store writes them into a JSON document);
everything else becomes an :class:`Encoded` ``(codec, data)`` pair. NumPy, pandas and pyarrow
are imported only when a value of theirs is met.

Tagged JSON
-----------
A tagged value is ``{"__tb__": <tag>, "v": <payload>}``; tags: ``dict`` (non-``str`` keys, as
pairs), ``tuple``, ``set``, ``frozenset``, ``bytes`` (base64), ``complex``, ``decimal`` and
``uuid`` (as text), ``datetime``, ``date``, ``time`` (ISO format), ``timedelta`` (days, seconds,
microseconds), pandas' ``timestamp`` (nanoseconds since the epoch, time zone, unit),
``pdtimedelta`` (nanoseconds, unit), ``period`` (text, frequency), ``nat``, ``path``, ``npy`` and
``npscalar`` (base64 of the ``.npy`` bytes), ``arrow`` (base64 of an Arrow IPC stream),
``sequence`` (the marker of a run's :class:`~trialbook.sequence.Sequence` field: its columns and
point counts; the records themselves are the run's metric points). A dict
that uses the key ``"__tb__"`` itself is stored as pairs, so no user dict is mistaken for a tag.
A container that holds itself cannot be stored: :class:`~trialbook.errors.CodecError`.

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

import io
import json
from dataclasses import dataclass, field
from typing import Any

from trialbook.errors import CodecError

__all__ = [
    "Encoded",
    "Pickled",
    "decode",
    "decode_or_placeholder",
    "encode",
    "from_tree",
    "is_plain",
    "json_view",
    "numpy_plain",
    "pickled_type",
    "plain_scalar",
    "to_tree",
]

_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})
_JSON_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=True).encode
_SAFE_TYPES = (
    "None, bool, int, float, str, bytes, complex, Decimal, UUID, lists, tuples, sets, dicts, "
    "dates and times (also pandas Timestamp/Timedelta/Period), pathlib paths, NumPy arrays and "
    "scalars, pandas DataFrame/Series/Index/Categorical, pyarrow Table/RecordBatch"
)


@dataclass(frozen=True, slots=True)
class Encoded:
    """A value encoded by one of the codecs: ``codec`` names it, ``data`` holds the bytes.

    ``plain`` is the plain JSON value a NumPy number, boolean or text shows (``np.float64(0.9)``
    shows ``0.9``; see :func:`plain_scalar`), or ``None`` for every other value: a store writes
    it into the run's JSON document beside the exact encoded value, so queries, filters and
    groupings see such a value as they see a Python number. It takes no part in equality.

    Examples
    --------
    >>> Encoded("json", b"1").size
    1
    >>> import numpy as np
    >>> encode(np.float64(0.9)).plain, encode(np.arange(3)).plain
    (0.9, None)
    """

    codec: str
    data: bytes
    plain: Any = field(default=None, compare=False, repr=False)

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
    if t is not list and t is not dict:
        return False
    return _plain_container(value, set())


def _plain_container(value: Any, active: set[int]) -> bool:
    """``is_plain`` of a list or dict; ``active`` holds the containers being walked, so a
    container that holds itself is not plain (:func:`encode` then names the cycle)."""
    if id(value) in active:
        return False
    active.add(id(value))
    if type(value) is list:
        items = value
    elif all(type(k) is str for k in value):
        items = value.values()
    else:
        return False
    for v in items:
        t = type(v)
        if t in _PLAIN_SCALARS:
            continue
        if (t is not list and t is not dict) or not _plain_container(v, active):
            return False
    active.discard(id(value))
    return True


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
            return encode_npy(value)
        if module in {"pandas", "pyarrow"} and _arrow_kind(value) is not None:
            return encode_arrow(value)
        data = _JSON_DUMPS(to_tree(value)).encode()
        return Encoded("tjson", data, numpy_plain(value) if module == "numpy" else None)
    except Unsupported as exc:
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
    if value.codec == "pickle":  # errors of unpickled user code keep their type
        return _decode(value.codec, value.data, allow_pickle)
    try:
        return _decode(value.codec, value.data, allow_pickle)
    except CodecError:
        raise
    except Exception as exc:  # bytes this codec did not write (fuzzing, issue 16)
        msg = (
            f"cannot decode a {value.codec!r} value of {value.size} bytes "
            f"({type(exc).__name__}: {_short_repr(str(exc), 200)}); the stored bytes are not "
            "what trialbook writes with this codec: check the store with `trialbook check`"
        )
        raise CodecError(msg) from exc


def _decode(codec: str, data: bytes, allow_pickle: bool) -> Any:
    if codec == "json":
        return json.loads(data)
    if codec == "tjson":
        return from_tree(json.loads(data), allow_pickle)
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
        import pickle

        return pickle.loads(data)
    msg = f"unknown codec {codec!r}; expected one of 'json', 'tjson', 'npy', 'arrow', 'pickle'"
    raise CodecError(msg)


class Pickled:
    """A value stored with pickle, read from a store opened without ``allow_pickle``: it shows
    as ``<pickled: module.Class>`` and is never unpickled (unpickling runs code taken from the
    store). Loading an experiment keeps such values as placeholders so the rest reads as
    usual; reading the field itself raises :class:`~trialbook.errors.CodecError`; persisting
    the run writes the stored bytes back unchanged.

    Examples
    --------
    >>> import fractions
    >>> placeholder = Pickled(encode(fractions.Fraction(1, 3), allow_pickle=True))
    >>> placeholder
    <pickled: fractions.Fraction>
    """

    __slots__ = ("encoded", "type_name")

    def __init__(self, encoded: Encoded) -> None:
        self.encoded = encoded
        self.type_name = pickled_type(encoded.data)

    def __repr__(self) -> str:
        return f"<pickled: {self.type_name}>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return type(other) is Pickled and other.encoded == self.encoded

    def __hash__(self) -> int:
        return hash(self.encoded.data)


def pickled_type(data: bytes) -> str:
    """The class of the object a pickle holds, read from its opcodes (never unpickled); ``"?"``
    when it cannot be told.

    Examples
    --------
    >>> import pickle, fractions
    >>> pickled_type(pickle.dumps(fractions.Fraction(1, 2)))
    'fractions.Fraction'
    >>> pickled_type(b"not a pickle")
    '?'
    """
    import pickletools

    texts: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name == "GLOBAL" and isinstance(arg, str):
                return arg.replace(" ", ".")
            if op.name == "STACK_GLOBAL" and len(texts) >= 2:
                module, name = texts[-2:]
                if module.startswith("cloudpickle") or module == "copyreg":
                    texts.clear()
                    continue
                return f"{module}.{name}"
            if isinstance(arg, str) and "UNICODE" in op.name:
                texts.append(arg)
    except Exception:  # a truncated or foreign pickle: only the label is lost
        return "?"
    return "?"


def decode_or_placeholder(value: Any, *, allow_pickle: bool = False) -> Any:
    """:func:`decode`, but a pickled value without ``allow_pickle`` becomes a :class:`Pickled`
    placeholder instead of an error (for loading runs whose other values are readable).

    Examples
    --------
    >>> import fractions
    >>> decode_or_placeholder(encode(fractions.Fraction(1, 3), allow_pickle=True))
    <pickled: fractions.Fraction>
    >>> decode_or_placeholder(encode((1, 2)))
    (1, 2)
    """
    if type(value) is Encoded and value.codec == "pickle" and not allow_pickle:
        return Pickled(value)
    return decode(value, allow_pickle=allow_pickle)


def json_view(value: Any) -> Any:
    """``value`` as plain JSON for a table cell: dicts with text keys, tuples and lists as
    lists, sets sorted, dates and times in ISO format, anything else as its text. Not a codec:
    it does not round-trip.

    Examples
    --------
    >>> import datetime
    >>> json_view({"shape": (2, 3), 1: {"b", "a"}, "at": datetime.date(2024, 1, 2)})
    {'shape': [2, 3], '1': ['a', 'b'], 'at': '2024-01-02'}
    """
    if type(value) in _PLAIN_SCALARS:
        return value
    if isinstance(value, dict):
        return {str(k): json_view(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_view(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((json_view(v) for v in value), key=repr)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    scalar = plain_scalar(value)
    return scalar if type(scalar) in _PLAIN_SCALARS else str(value)


def plain_scalar(value: Any) -> Any:
    """A NumPy or pandas scalar as the plain Python value it shows (issue 18): numbers and
    booleans as ``int`` / ``float`` / ``bool`` / ``complex`` (``float32`` and ``float16`` by
    their shortest text, so ``np.float32(0.1)`` shows ``0.1``), text as ``str``, NumPy dates and
    durations and pandas' ``Timestamp`` (ISO format) / ``Timedelta`` / ``Period`` as text,
    ``NaT`` and ``pd.NA`` as ``None``; any other value is returned as it is. For display only:
    not a codec.

    Examples
    --------
    >>> import numpy as np
    >>> plain_scalar(np.float64(0.917)), plain_scalar(np.int64(3)), plain_scalar(np.bool_(True))
    (0.917, 3, True)
    >>> plain_scalar(np.float32(0.1)), plain_scalar(np.datetime64("2024-01-02")), plain_scalar([1])
    (0.1, '2024-01-02', [1])
    """
    t = type(value)
    module = t.__module__.partition(".")[0]
    if module == "numpy" and t.__name__ != "ndarray" and getattr(value, "shape", None) == ():
        return _numpy_scalar(value)
    if module == "pandas":
        return _pandas_plain(value)
    return value


_DOUBLE = 8  # bytes of a Python float


def _numpy_scalar(value: Any) -> Any:
    kind = value.dtype.kind
    if kind == "f" and value.dtype.itemsize < _DOUBLE:
        return float(str(value))
    if kind in "biuf":
        item = value.item()
        return item if type(item) in _PLAIN_SCALARS else float(value)  # longdouble -> float
    if kind == "c":
        return complex(value)
    if kind in "UmM":
        return str(value)
    return value


def numpy_plain(value: Any) -> Any:
    """The plain value a NumPy number, boolean or text shows, as :func:`plain_scalar` gives
    it; ``None`` for any other value. :attr:`Encoded.plain` keeps it, for queries.

    Examples
    --------
    >>> import numpy as np
    >>> numpy_plain(np.float32(0.1)), numpy_plain(np.uint8(7)), numpy_plain(np.str_("a"))
    (0.1, 7, 'a')
    >>> numpy_plain(np.datetime64("2024-01-02")), numpy_plain(np.ones(1)), numpy_plain(1.5)
    (None, None, None)
    """
    if type(value).__module__.partition(".")[0] != "numpy":
        return None
    if getattr(value, "shape", None) != () or value.dtype.kind not in "biufU":
        return None
    return _numpy_scalar(value)


def _pandas_plain(value: Any) -> Any:
    import pandas as pd

    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, pd.Timedelta | pd.Period):
        return str(value)
    return value


# -- helpers -------------------------------------------------------------------------------------


class Unsupported(Exception):
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


def encode_npy(array: Any) -> Encoded:
    import numpy as np

    if array.dtype.hasobject:
        raise Unsupported(array)
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return Encoded("npy", buf.getvalue())


def encode_arrow(value: Any) -> Encoded:
    import pyarrow as pa

    found = _arrow_kind(value)
    if found is None:
        raise Unsupported(value)
    kind, name = found
    try:
        if kind == "frame":
            table = pa.Table.from_pandas(value)
        elif kind == "series":
            table = pa.Table.from_pandas(value.to_frame(name="series"))
        elif kind in ("index", "categorical"):
            import pandas as pd

            table = pa.Table.from_pandas(pd.DataFrame({"series": value}), preserve_index=False)
        elif kind == "batch":
            table = pa.Table.from_batches([value])
        else:
            table = value
    except (pa.ArrowException, TypeError, ValueError):
        raise Unsupported(value) from None
    info = {"kind": kind, "name": to_tree(name)}
    meta = dict(table.schema.metadata or {})
    meta[b"trialbook"] = _JSON_DUMPS(info).encode()
    table = table.replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return Encoded("arrow", sink.getvalue().to_pybytes())


_PANDAS_KINDS = {"DataFrame": "frame", "Series": "series", "Categorical": "categorical"}


def _arrow_kind(value: Any) -> tuple[str, object] | None:
    """``(kind, name)`` of a value the Arrow codec stores, ``None`` for any other value."""
    name = type(value).__name__
    module = type(value).__module__
    if module.startswith("pandas"):
        kind = _PANDAS_KINDS.get(name)
        if kind is None and name.endswith("Index") and hasattr(value, "to_frame"):
            kind = "index"  # Index, DatetimeIndex, CategoricalIndex, ... (not MultiIndex)
            if name == "MultiIndex":
                return None
        if kind is not None:
            return kind, getattr(value, "name", None)
    elif module.startswith("pyarrow"):
        if name == "Table":
            return "table", None
        if name == "RecordBatch":
            return "batch", None
    return None


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
    if kind == "categorical":
        return series.array
    series.name = from_tree(info["name"], allow_pickle)
    if kind == "index":
        import pandas as pd

        return pd.Index(series)
    return series


# -- tagged JSON -----------------------------------------------------------------------------------

_CONTAINERS = frozenset({list, dict, tuple, set, frozenset})
_TAG = "__tb__"


def to_tree(value: Any) -> Any:
    """Turn ``value`` into a JSON-able tree, tagging what plain JSON cannot express.

    Raises
    ------
    CodecError
        If a container holds itself (directly or deeper down).

    Examples
    --------
    >>> to_tree((1, b"x"))
    {'__tb__': 'tuple', 'v': [1, {'__tb__': 'bytes', 'v': 'eA=='}]}
    >>> from_tree(to_tree({1: {2, 3}}), allow_pickle=False)
    {1: {2, 3}}
    >>> import pandas as pd
    >>> from_tree(to_tree(pd.Timestamp("2024-05-01 12:00", tz="Europe/Paris")), allow_pickle=False)
    Timestamp('2024-05-01 12:00:00+0200', tz='Europe/Paris')
    >>> loop = []
    >>> loop.append(loop)
    >>> to_tree((loop,))
    Traceback (most recent call last):
    ...
    trialbook.errors.CodecError: a list that contains itself cannot be stored...
    """
    return _tree(value, set())


def _tree(value: Any, active: set[int]) -> Any:
    t = type(value)
    if t in _PLAIN_SCALARS:
        return value
    if t not in _CONTAINERS:
        return _leaf(value)
    if id(value) in active:
        msg = (
            f"a {t.__name__} that contains itself cannot be stored (a reference cycle); "
            "store a copy without the cycle"
        )
        raise CodecError(msg)
    active.add(id(value))
    if t is list:
        tree: Any = [_tree(v, active) for v in value]
    elif t is dict:
        if all(type(k) is str for k in value) and _TAG not in value:
            tree = {k: _tree(v, active) for k, v in value.items()}
        else:
            pairs = [[_tree(k, active), _tree(v, active)] for k, v in value.items()]
            tree = {_TAG: "dict", "v": pairs}
    else:
        tree = {_TAG: t.__name__, "v": [_tree(v, active) for v in value]}
    active.discard(id(value))
    return tree


def _leaf(value: Any) -> Any:  # noqa: PLR0911 - one branch per supported type
    import base64  # these modules cost milliseconds of `import trialbook`: loaded when needed
    import datetime as _dt
    import decimal
    import pathlib
    import uuid

    t = type(value)
    if t is bytes:
        return {_TAG: "bytes", "v": base64.b64encode(value).decode()}
    if t is complex:
        return {_TAG: "complex", "v": [value.real, value.imag]}
    if t in (_dt.datetime, _dt.date, _dt.time):
        return {_TAG: t.__name__, "v": value.isoformat()}
    if t is _dt.timedelta:
        return {_TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if t is decimal.Decimal or t is uuid.UUID:
        return {_TAG: t.__name__.lower(), "v": str(value)}
    if isinstance(value, pathlib.PurePath):
        return {_TAG: "path", "v": str(value)}
    module = t.__module__.partition(".")[0]
    if module == "numpy":
        if t.__name__ == "ndarray":
            return {_TAG: "npy", "v": base64.b64encode(encode_npy(value).data).decode()}
        if hasattr(value, "dtype") and not value.dtype.hasobject:  # a NumPy scalar
            import numpy as np

            data = encode_npy(np.asarray(value)).data
            return {_TAG: "npscalar", "v": base64.b64encode(data).decode()}
    if module == "pandas":
        tree = _pandas_scalar(value)
        if tree is not None:
            return tree
    if module in {"pandas", "pyarrow"}:
        return {_TAG: "arrow", "v": base64.b64encode(encode_arrow(value).data).decode()}
    raise Unsupported(value)


def _pandas_scalar(value: Any) -> dict[str, Any] | None:
    """The tree of a pandas scalar (``Timestamp``, ``Timedelta``, ``Period``, ``NaT``)."""
    import pandas as pd

    if value is pd.NaT:
        return {_TAG: "nat", "v": None}
    if isinstance(value, pd.Timestamp):
        return {_TAG: "timestamp", "v": [value.value, _zone(value.tz), value.unit]}
    if isinstance(value, pd.Timedelta):
        return {_TAG: "pdtimedelta", "v": [value.value, value.unit]}
    if isinstance(value, pd.Period):
        return {_TAG: "period", "v": [str(value), value.freqstr]}
    return None


def _zone(tz: Any) -> str | int | None:
    """A time zone as its name (``Europe/Paris``), or a fixed offset in seconds."""
    if tz is None:
        return None
    name = getattr(tz, "key", None) or getattr(tz, "zone", None)
    if name:
        return str(name)
    offset = tz.utcoffset(None)
    if offset is None:
        return str(tz)
    return int(offset.total_seconds())


def _timestamp(v: list[Any]) -> Any:
    import datetime as _dt

    import pandas as pd

    nanos, zone, unit = v
    stamp = pd.Timestamp(nanos, unit="ns", tz=None if zone is None else "UTC")
    if isinstance(zone, int):
        stamp = stamp.tz_convert(_dt.timezone(_dt.timedelta(seconds=zone)))
    elif zone is not None and zone != "UTC":
        stamp = stamp.tz_convert(zone)
    return stamp.as_unit(unit)


def from_tree(tree: Any, allow_pickle: bool) -> Any:  # noqa: PLR0911, PLR0912 - one branch per tag
    t = type(tree)
    if t is list:
        return [from_tree(v, allow_pickle) for v in tree]
    if t is not dict:
        return tree
    tag = tree.get(_TAG)
    if tag is None:
        return {k: from_tree(v, allow_pickle) for k, v in tree.items()}
    import base64
    import datetime as _dt
    import decimal
    import pathlib
    import uuid

    v = tree["v"]
    if tag == "dict":
        return {from_tree(k, allow_pickle): from_tree(x, allow_pickle) for k, x in v}
    if tag in ("tuple", "set", "frozenset"):
        items = [from_tree(x, allow_pickle) for x in v]
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
    if tag == "decimal":
        return decimal.Decimal(v)
    if tag == "uuid":
        return uuid.UUID(v)
    if tag == "timestamp":
        return _timestamp(v)
    if tag in ("pdtimedelta", "period", "nat"):
        import pandas as pd

        if tag == "nat":
            return pd.NaT
        if tag == "period":
            return pd.Period(v[0], freq=v[1])
        return pd.Timedelta(v[0], unit="ns").as_unit(v[1])
    if tag == "npy":
        return decode(Encoded("npy", base64.b64decode(v)))
    if tag == "npscalar":
        return decode(Encoded("npy", base64.b64decode(v)))[()]
    if tag == "arrow":
        return decode(Encoded("arrow", base64.b64decode(v)), allow_pickle=allow_pickle)
    if tag == "sequence":  # a run's Sequence field: its records are in the run's metrics
        from trialbook.sequence import Sequence

        return Sequence.from_marker(v)
    msg = f"unknown tag {tag!r} in a tagged-JSON value; was it written by a newer trialbook?"
    raise CodecError(msg)
