"""Tagged JSON: containers and values plain JSON cannot represent exactly.

A tagged value is ``{"__tb__": <tag>, "v": <payload>}``; tags: ``dict`` (non-``str`` keys, as
pairs), ``tuple``, ``set``, ``frozenset``, ``bytes`` (base64), ``complex``, ``datetime``, ``date``,
``time`` (ISO format), ``timedelta`` (days, seconds, microseconds), ``path``, ``npy`` and
``npscalar`` (base64 of the ``.npy`` bytes), ``arrow`` (base64 of an Arrow IPC stream). A dict
that uses the key ``"__tb__"`` itself is stored as pairs, so no user dict is mistaken for a tag.

Examples
--------
>>> to_tree((1, b"x"))
{'__tb__': 'tuple', 'v': [1, {'__tb__': 'bytes', 'v': 'eA=='}]}
>>> from_tree(to_tree({1: {2, 3}}), allow_pickle=False)
{1: {2, 3}}
"""

from __future__ import annotations

import base64
import datetime as _dt
import pathlib
from typing import Any

from trialbook.codecs import Encoded, Unsupported, decode, encode_arrow, encode_npy
from trialbook.errors import CodecError

__all__ = ["from_tree", "to_tree"]

_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})
_TAG = "__tb__"


def to_tree(value: Any) -> Any:  # noqa: PLR0911, PLR0912 - one branch per supported type
    """Turn ``value`` into a JSON-able tree, tagging what plain JSON cannot express."""
    t = type(value)
    if t in _PLAIN_SCALARS:
        return value
    if t is list:
        return [to_tree(v) for v in value]
    if t is dict:
        if all(type(k) is str for k in value) and _TAG not in value:
            return {k: to_tree(v) for k, v in value.items()}
        return {_TAG: "dict", "v": [[to_tree(k), to_tree(v)] for k, v in value.items()]}
    if t is tuple:
        return {_TAG: "tuple", "v": [to_tree(v) for v in value]}
    if t is set or t is frozenset:
        return {_TAG: t.__name__, "v": [to_tree(v) for v in value]}
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
            return {_TAG: "npy", "v": base64.b64encode(encode_npy(value).data).decode()}
        if hasattr(value, "dtype") and not value.dtype.hasobject:  # a NumPy scalar
            import numpy as np

            data = encode_npy(np.asarray(value)).data
            return {_TAG: "npscalar", "v": base64.b64encode(data).decode()}
    if module in {"pandas", "pyarrow"}:
        return {_TAG: "arrow", "v": base64.b64encode(encode_arrow(value).data).decode()}
    raise Unsupported(value)


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
    if tag == "npy":
        return decode(Encoded("npy", base64.b64decode(v)))
    if tag == "npscalar":
        return decode(Encoded("npy", base64.b64decode(v)))[()]
    if tag == "arrow":
        return decode(Encoded("arrow", base64.b64decode(v)), allow_pickle=allow_pickle)
    msg = f"unknown tag {tag!r} in a tagged-JSON value; was it written by a newer trialbook?"
    raise CodecError(msg)
