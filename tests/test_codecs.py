"""Every codec round-trips what it accepts; what it cannot store safely is refused."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import arrays, frames, numpy_scalars, plain_json, tagged_values
from trialbook.codecs import Encoded, decode, encode, is_plain
from trialbook.errors import CodecError


def same(a: object, b: object) -> bool:  # noqa: PLR0911 - one case per kind of value
    """Equality where NaN equals NaN and types must match."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            any(same(k, k2) and same(v, v2) for k2, v2 in b.items()) for k, v in a.items()
        )
    if isinstance(a, set | frozenset):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    return a == b


def through(value: object) -> object:
    """Encode, force the bytes through a copy as a store would, decode."""
    enc = encode(value)
    if isinstance(enc, Encoded):
        enc = Encoded(enc.codec, bytes(enc.data))
    return decode(enc)


@given(plain_json)
def test_plain_json_is_kept_as_is(value: object) -> None:
    assert is_plain(value)
    assert encode(value) is value


@given(tagged_values)
@settings(max_examples=200)
def test_tagged_values_round_trip(value: object) -> None:
    assert same(through(value), value)


@given(arrays)
@settings(max_examples=100)
def test_arrays_round_trip(array: np.ndarray) -> None:
    back = through(array)
    assert back.dtype == array.dtype
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)


@given(numpy_scalars)
def test_numpy_scalars_round_trip(value: np.generic) -> None:
    back = through(value)
    assert type(back) is type(value)
    assert same(float(back), float(value))


@given(frames())
@settings(max_examples=50, deadline=None)
def test_frames_round_trip(frame: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(through(frame), frame)


@given(frames(), st.one_of(st.none(), st.text(max_size=5), st.integers()))
@settings(max_examples=30, deadline=None)
def test_series_round_trip_with_name(frame: pd.DataFrame, name: object) -> None:
    series = frame.iloc[:, 0].rename(name)
    pd.testing.assert_series_equal(through(series), series)


def test_frame_with_index_and_arrow_objects() -> None:
    frame = pd.DataFrame({"v": [1.5, 2.5]}, index=pd.Index(["a", "b"], name="key"))
    pd.testing.assert_frame_equal(through(frame), frame)
    table = pa.table({"x": [1, 2], "y": ["a", None]})
    assert through(table).equals(table)
    batch = table.to_batches()[0]
    assert through(batch).equals(batch)


def test_containers_holding_arrays_and_frames() -> None:
    value = {"w": np.arange(3), "f": pd.DataFrame({"a": [1]}), "t": (1, np.float32(2))}
    back = through(value)
    assert back["w"].tolist() == [0, 1, 2]
    pd.testing.assert_frame_equal(back["f"], value["f"])
    assert back["t"] == (1, np.float32(2)) and type(back["t"][1]) is np.float32


def test_unsafe_values_are_refused_with_advice() -> None:
    with pytest.raises(
        CodecError, match=r"cannot store a value of type <class 'function'>.*allow_pickle=True"
    ):
        encode(lambda: 1)
    with pytest.raises(CodecError, match="object"):
        encode(np.array([object()], dtype=object))
    with pytest.raises(CodecError, match="object"):
        encode(pd.DataFrame({"o": [object()]}))


def test_pickle_is_opt_in_both_ways() -> None:
    enc = encode({1, (2, lambda: 3)}, allow_pickle=True)
    assert enc.codec == "pickle"
    with pytest.raises(CodecError, match="unpickling runs code"):
        decode(enc)
    back = decode(enc, allow_pickle=True)
    assert len(back) == 2


def test_unknown_codec_and_tag() -> None:
    with pytest.raises(CodecError, match="unknown codec 'zip'"):
        decode(Encoded("zip", b""))
    with pytest.raises(CodecError, match="newer trialbook"):
        decode(Encoded("tjson", b'{"__tb__": "future", "v": 1}'))
