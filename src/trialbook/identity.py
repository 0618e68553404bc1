"""Content hashing of values: the same value always gives the same fingerprint.

A fingerprint is the SHA-256 of a canonical, type-tagged byte encoding of the value:

* every item starts with a one-byte type tag and, for variable-length items, its length, so
  concatenations are unambiguous (``["ab", "c"]`` and ``["a", "bc"]`` differ);
* dict items and set members are sorted by their own encodings, so insertion order does not
  matter; list and tuple order does, and a tuple differs from a list;
* ``int`` ``1``, ``float`` ``1.0`` and ``bool`` ``True`` are three different values;
* NumPy arrays hash their dtype, shape and C-ordered bytes; pandas objects hash their
  columns, dtypes, index and values;
* an object may define ``__trialbook_fingerprint__(self) -> bytes | str`` to say what identifies it.

Anything else (functions, open files, arbitrary objects) raises :class:`FingerprintError`:
trialbook never falls back to ``repr`` or ``id``, which would give a different hash in the
next process.

Examples
--------
>>> from trialbook.identity import fingerprint
>>> fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
True
>>> fingerprint(1) == fingerprint(1.0)
False
>>> len(fingerprint([1, 2, 3]))
64
"""

from __future__ import annotations

import datetime as _dt
import enum
import hashlib
import pathlib
import struct
from collections.abc import Callable
from typing import Any

from trialbook.errors import FingerprintError

__all__ = ["canonical_bytes", "content_address", "display_key", "fingerprint"]


def fingerprint(value: Any) -> str:
    """Return the hex SHA-256 fingerprint of ``value`` (64 characters).

    Raises
    ------
    FingerprintError
        If the value (or anything inside it) cannot be hashed deterministically.

    Examples
    --------
    >>> fingerprint("hello")[:12]
    '...'
    >>> fingerprint(lambda x: x)
    Traceback (most recent call last):
    ...
    trialbook.errors.FingerprintError: cannot fingerprint a value of type <class 'function'>...
    """
    return hashlib.sha256(canonical_bytes(value)).hexdigest()


def content_address(data: bytes | str) -> str:
    """The hex SHA-256 of raw bytes (a text: of its UTF-8 bytes, lone surrogates kept): the
    name under which a store keeps a blob or a snapshot.

    Unlike :func:`fingerprint`, which hashes a value's canonical encoding, this hashes the bytes
    as they are, so a blob is found again by the digest of its content. Changing it would lose
    every blob and snapshot already stored.

    Examples
    --------
    >>> content_address(b"abc")
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    >>> content_address("abc") == content_address(b"abc")
    True
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def display_key(name: str, digest: str) -> str:
    """Short display form of an identifier: ``"<name>-<first 12 hex digits>"``.

    Examples
    --------
    >>> display_key("train", "0123456789abcdef" * 4)
    'train-0123456789ab'
    """
    return f"{name}-{digest[:12]}"


def canonical_bytes(value: Any) -> bytes:
    """The canonical byte encoding that :func:`fingerprint` hashes.

    Examples
    --------
    >>> canonical_bytes([1, "a"])
    b'l\\x00\\x00\\x00\\x02i\\x00\\x00\\x00\\x011s\\x00\\x00\\x00\\x01a'
    """
    out: list[bytes] = []
    _write(value, out.append)
    return b"".join(out)


def _chunk(tag: bytes, data: bytes) -> bytes:
    return tag + struct.pack(">I", len(data)) + data


def _write(value: Any, emit: Callable[[bytes], object]) -> None:  # noqa: PLR0912
    t = type(value)
    if value is None:
        emit(b"N")
    elif t is bool:
        emit(b"T" if value else b"F")
    elif t is int:
        emit(_chunk(b"i", str(value).encode()))
    elif t is float:
        emit(_chunk(b"f", repr(value).encode()))
    elif t is str:
        emit(_chunk(b"s", value.encode("utf-8", "surrogatepass")))
    elif t is bytes:
        emit(_chunk(b"b", value))
    elif t is list or t is tuple:
        emit((b"l" if t is list else b"t") + struct.pack(">I", len(value)))
        for item in value:
            _write(item, emit)
    elif t is dict:
        items = sorted(canonical_bytes(k) + canonical_bytes(v) for k, v in value.items())
        emit(b"d" + struct.pack(">I", len(items)) + b"".join(items))
    elif t is set or t is frozenset:
        members = sorted(canonical_bytes(v) for v in value)
        emit(b"S" + struct.pack(">I", len(members)) + b"".join(members))
    elif t is complex:
        emit(_chunk(b"c", repr(value).encode()))
    elif t in (_dt.datetime, _dt.date, _dt.time, _dt.timedelta):
        emit(_chunk(b"D", f"{t.__name__}:{value!r}".encode()))
    elif isinstance(value, pathlib.PurePath):
        emit(_chunk(b"p", value.as_posix().encode()))
    elif isinstance(value, enum.Enum):
        emit(_chunk(b"e", f"{t.__module__}.{t.__qualname__}.{value.name}".encode()))
    elif hasattr(t, "__trialbook_fingerprint__"):
        data = value.__trialbook_fingerprint__()
        emit(_chunk(b"o", data.encode() if isinstance(data, str) else data))
    else:
        _write_foreign(value, emit)


def _write_foreign(value: Any, emit: Callable[[bytes], object]) -> None:
    module = type(value).__module__.partition(".")[0]
    if module == "numpy":
        import numpy as np

        array = np.asarray(value)
        if array.dtype.hasobject:
            _refuse(value, "a NumPy array of Python objects")
        kind = b"a" if isinstance(value, np.ndarray) else b"g"
        head = f"{array.dtype.str}:{array.shape}".encode()
        emit(_chunk(kind, head) + _chunk(b"", np.ascontiguousarray(array).tobytes()))
    elif module == "pandas":
        import pandas as pd

        if not isinstance(value, pd.DataFrame | pd.Series | pd.Index):
            _refuse(value, "a pandas object other than DataFrame, Series or Index")
        try:
            hashed = pd.util.hash_pandas_object(value, index=not isinstance(value, pd.Index))
        except TypeError:
            _refuse(value, "a pandas object holding unhashable values")
        columns = list(value.columns) if isinstance(value, pd.DataFrame) else [value.name]
        dtypes = [
            str(d) for d in (value.dtypes if isinstance(value, pd.DataFrame) else [value.dtype])
        ]
        emit(_chunk(b"P", type(value).__name__.encode()))
        _write([columns, dtypes], emit)
        emit(_chunk(b"", hashed.to_numpy().tobytes()))
    elif module == "pyarrow" and type(value).__name__ in {"Table", "RecordBatch"}:
        from trialbook.codecs import encode

        emit(_chunk(b"A", encode(value).data))
    else:
        _refuse(value, "")


def _refuse(value: Any, why: str) -> None:
    detail = f" ({why})" if why else ""
    msg = (
        f"cannot fingerprint a value of type {type(value)}{detail}: its hash would not be "
        "stable across processes; use plain values (numbers, strings, lists, dicts, arrays, "
        "frames) or define __trialbook_fingerprint__ on the class"
    )
    raise FingerprintError(msg)
