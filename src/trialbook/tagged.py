"""Tagged JSON: containers and values plain JSON cannot represent exactly.

A tagged value is ``{"__tb__": <tag>, "v": <payload>}``; tags: ``dict`` (non-``str`` keys, as
pairs), ``tuple``, ``set``, ``frozenset``, ``bytes`` (base64), ``complex``, ``decimal`` and
``uuid`` (as text), ``datetime``, ``date``, ``time`` (ISO format), ``timedelta`` (days, seconds,
microseconds), pandas' ``timestamp`` (nanoseconds since the epoch, time zone, unit),
``pdtimedelta`` (nanoseconds, unit), ``period`` (text, frequency), ``nat``, ``path``, ``npy`` and
``npscalar`` (base64 of the ``.npy`` bytes), ``arrow`` (base64 of an Arrow IPC stream). A dict
that uses the key ``"__tb__"`` itself is stored as pairs, so no user dict is mistaken for a tag.
A container that holds itself cannot be stored: :class:`~trialbook.errors.CodecError`.

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

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import pathlib
import uuid
from typing import Any

from trialbook.codecs import Encoded, Unsupported, decode, encode_arrow, encode_npy
from trialbook.errors import CodecError

__all__ = ["from_tree", "to_tree"]

_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})
_CONTAINERS = frozenset({list, dict, tuple, set, frozenset})
_TAG = "__tb__"


def to_tree(value: Any) -> Any:
    """Turn ``value`` into a JSON-able tree, tagging what plain JSON cannot express.

    Raises
    ------
    CodecError
        If a container holds itself (directly or deeper down).
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
    msg = f"unknown tag {tag!r} in a tagged-JSON value; was it written by a newer trialbook?"
    raise CodecError(msg)
