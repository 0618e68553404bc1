"""The canonical encoding of every kind of value, byte for byte (found by mutation testing,
`make mutate`): a changed tag, length or text encoding changes every stored fingerprint, even
when values still hash apart from each other."""

from __future__ import annotations

import datetime as dt
import enum
import pathlib
import struct

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from trialbook.codecs import encode
from trialbook.errors import FingerprintError
from trialbook.identity import canonical_bytes, content_address, fingerprint


def chunk(tag: bytes, data: bytes) -> bytes:
    return tag + struct.pack(">I", len(data)) + data


class Colour(enum.Enum):
    RED = 1


class Hooked:
    def __init__(self, data: bytes | str) -> None:
        self.data = data

    def __trialbook_fingerprint__(self) -> bytes | str:
        return self.data


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, b"N"),
        (True, b"T"),
        (False, b"F"),
        (12, b"i\x00\x00\x00\x0212"),
        (-1, b"i\x00\x00\x00\x02-1"),
        (0.5, b"f\x00\x00\x00\x030.5"),
        ("é", b"s\x00\x00\x00\x02\xc3\xa9"),
        (b"\x00\xff", b"b\x00\x00\x00\x02\x00\xff"),
        (1 + 2j, b"c\x00\x00\x00\x06(1+2j)"),
        ([], b"l\x00\x00\x00\x00"),
        ((), b"t\x00\x00\x00\x00"),
        ([None, True], b"l\x00\x00\x00\x02NT"),
        ({"a": None}, b"d\x00\x00\x00\x01s\x00\x00\x00\x01aN"),
        ({None}, b"S\x00\x00\x00\x01N"),
        (frozenset({None}), b"S\x00\x00\x00\x01N"),
        (dt.date(2024, 1, 2), chunk(b"D", b"date:datetime.date(2024, 1, 2)")),
        (
            dt.datetime(2024, 1, 2, 3, 4, 5),
            chunk(b"D", b"datetime:datetime.datetime(2024, 1, 2, 3, 4, 5)"),
        ),
        (dt.time(3, 4), chunk(b"D", b"time:datetime.time(3, 4)")),
        (dt.timedelta(seconds=90), chunk(b"D", b"timedelta:datetime.timedelta(seconds=90)")),
        (pathlib.PurePosixPath("a/b"), b"p\x00\x00\x00\x03a/b"),
        (pathlib.PureWindowsPath("a\\b"), b"p\x00\x00\x00\x03a/b"),
        (Colour.RED, chunk(b"e", b"test_mutants_identity.Colour.RED")),
        (Hooked("ab"), b"o\x00\x00\x00\x02ab"),
        (Hooked(b"\xff"), b"o\x00\x00\x00\x01\xff"),
    ],
)
def test_canonical_bytes_of_each_plain_type(value: object, expected: bytes) -> None:
    assert canonical_bytes(value) == expected


def test_dict_items_and_set_members_are_sorted_by_their_encoding() -> None:
    assert canonical_bytes({"b": 1, "a": 2}) == (
        b"d\x00\x00\x00\x02" + b"s\x00\x00\x00\x01ai\x00\x00\x00\x012"
        b"s\x00\x00\x00\x01bi\x00\x00\x00\x011"
    )
    assert canonical_bytes({2, 1}) == b"S\x00\x00\x00\x02i\x00\x00\x00\x011i\x00\x00\x00\x012"


def test_lone_surrogates_are_kept_not_refused() -> None:
    """Text that came from undecodable file names (surrogateescape) has lone surrogates."""
    text = "a\udcff"
    assert canonical_bytes(text) == b"s\x00\x00\x00\x04a\xed\xb3\xbf"
    assert fingerprint(text) != fingerprint("a")
    assert content_address(text) == content_address(b"a\xed\xb3\xbf")


def test_numpy_arrays_and_scalars() -> None:
    array = np.arange(3, dtype="<i8")
    data = array.tobytes()
    assert canonical_bytes(array) == chunk(b"a", b"<i8:(3,)") + chunk(b"", data)
    assert canonical_bytes(np.float64(1.5)) == chunk(b"g", b"<f8:()") + chunk(
        b"", struct.pack("<d", 1.5)
    )
    # a scalar and a 0-d array of it are different values
    assert fingerprint(np.float64(1.5)) != fingerprint(np.array(1.5))
    # the bytes are read in C order whatever the memory layout
    fortran = np.asfortranarray(np.arange(6, dtype="<i8").reshape(2, 3))
    assert canonical_bytes(fortran).endswith(chunk(b"", np.arange(6, dtype="<i8").tobytes()))


def test_numpy_object_arrays_are_refused_with_the_reason() -> None:
    with pytest.raises(FingerprintError) as info:
        fingerprint(np.array([object()]))
    assert str(info.value) == (
        "cannot fingerprint a value of type <class 'numpy.ndarray'> (a NumPy array of Python "
        "objects): its hash would not be stable across processes; use plain values (numbers, "
        "strings, lists, dicts, arrays, frames) or define __trialbook_fingerprint__ on the class"
    )


def test_refusal_without_a_reason_has_no_parentheses() -> None:
    with pytest.raises(FingerprintError) as info:
        fingerprint(object())
    assert str(info.value).startswith(
        "cannot fingerprint a value of type <class 'object'>: its hash would not be stable"
    )


def test_pandas_objects() -> None:
    series = pd.Series([1, 2], name="x")
    hashed = pd.util.hash_pandas_object(series, index=True).to_numpy().tobytes()
    assert canonical_bytes(series) == (
        chunk(b"P", b"Series") + canonical_bytes([["x"], ["int64"]]) + chunk(b"", hashed)
    )
    frame = pd.DataFrame({"x": [1], "y": [0.5]})
    hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes()
    assert canonical_bytes(frame) == (
        chunk(b"P", b"DataFrame")
        + canonical_bytes([["x", "y"], ["int64", "float64"]])
        + chunk(b"", hashed)
    )
    index = pd.Index([1, 2])
    hashed = pd.util.hash_pandas_object(index, index=False).to_numpy().tobytes()
    assert canonical_bytes(index) == (
        chunk(b"P", b"Index") + canonical_bytes([[None], ["int64"]]) + chunk(b"", hashed)
    )


def test_pandas_index_labels_and_dtypes_count() -> None:
    series = pd.Series([1, 2], name="x")
    assert fingerprint(series) != fingerprint(series.set_axis([5, 6]))
    assert fingerprint(series) != fingerprint(series.rename("y"))
    assert fingerprint(pd.Series([1, 2])) != fingerprint(pd.Series([1, 2], dtype="int32"))
    assert fingerprint(pd.Series([1, 2])) != fingerprint(pd.Index([1, 2]))


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (pd.Timestamp(0), "a pandas object other than DataFrame, Series or Index"),
        (pd.Series([[1], [2]]), "a pandas object holding unhashable values"),
    ],
)
def test_other_pandas_objects_are_refused_with_the_reason(value: object, why: str) -> None:
    with pytest.raises(FingerprintError) as info:
        fingerprint(value)
    assert str(info.value).startswith(
        f"cannot fingerprint a value of type {type(value)} ({why}): its hash would not be"
    )


def test_arrow_tables_and_record_batches_hash_their_ipc_encoding() -> None:
    table = pa.table({"x": [1, 2]})
    batch = pa.record_batch({"x": [1, 2]})
    assert canonical_bytes(table) == chunk(b"A", encode(table).data)
    assert canonical_bytes(batch) == chunk(b"A", encode(batch).data)
    with pytest.raises(FingerprintError, match=r"ChunkedArray"):
        fingerprint(table.column("x"))
    with pytest.raises(FingerprintError, match=r"pyarrow.lib.Int64Array"):
        fingerprint(pa.array([1]))


def test_a_foreign_class_named_like_an_arrow_table_is_refused() -> None:
    class Table:
        pass

    with pytest.raises(FingerprintError, match=r"Table"):
        fingerprint(Table())
