"""Codecs of the values the property tests do not generate (found by mutation testing,
`make mutate`): pandas indexes, categoricals and scalars, time zones of every kind, Decimal and
UUID, and the exact tagged-JSON trees a store keeps."""

from __future__ import annotations

import datetime as dt
import decimal
import threading
import uuid
import zoneinfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from dateutil import tz as dateutil_tz

from trialbook.codecs import Encoded, decode, encode, from_tree, json_view, to_tree
from trialbook.errors import CodecError


def through(value: object) -> object:
    enc = encode(value)
    if isinstance(enc, Encoded):
        enc = Encoded(enc.codec, bytes(enc.data))
    return decode(enc)


@pytest.mark.parametrize(
    ("value", "tree"),
    [
        (decimal.Decimal("1.10"), {"__tb__": "decimal", "v": "1.10"}),
        (uuid.UUID(int=1), {"__tb__": "uuid", "v": "00000000-0000-0000-0000-000000000001"}),
        (pd.NaT, {"__tb__": "nat", "v": None}),
        (pd.Period("2024-05", freq="M"), {"__tb__": "period", "v": ["2024-05", "M"]}),
        (dt.timedelta(days=1, seconds=2, microseconds=3), {"__tb__": "timedelta", "v": [1, 2, 3]}),
        (1 + 2j, {"__tb__": "complex", "v": [1.0, 2.0]}),
        (dt.date(2024, 1, 2), {"__tb__": "date", "v": "2024-01-02"}),
    ],
)
def test_tagged_json_trees_are_pinned(value: object, tree: dict[str, object]) -> None:
    """Stores keep these trees: their tags and layout are a file format."""
    assert to_tree(value) == tree
    back = from_tree(tree, allow_pickle=False)
    assert type(back) is type(value)
    assert back == value or (value is pd.NaT and back is pd.NaT)


@pytest.mark.parametrize(
    "value",
    [
        decimal.Decimal("-0.5"),
        uuid.uuid5(uuid.NAMESPACE_DNS, "trialbook"),
        pd.NaT,
        pd.Timedelta(90, unit="s"),
        pd.Timedelta(1, unit="ns"),
        pd.Period("2024-05-01", freq="D"),
        # periods whose text alone does not give their frequency back
        pd.Period("2024-05-01", freq="W"),
        pd.Period("2024-05-01 10:00", freq="h"),
        pd.Period("2024-05-01", freq="2D"),
    ],
)
def test_scalars_round_trip_alone_and_in_containers(value: object) -> None:
    for wrapped in (value, (value,), {"k": [value]}):
        back = through(wrapped)
        assert back == wrapped or (value is pd.NaT and back is pd.NaT) or back[0] is pd.NaT
    back = through(value)
    assert type(back) is type(value)
    if isinstance(value, pd.Timedelta):
        assert back.value == value.value and back.unit == value.unit
    if isinstance(value, pd.Period):
        assert back.freqstr == value.freqstr


@pytest.mark.parametrize(
    "zone",
    [
        None,
        "UTC",
        zoneinfo.ZoneInfo("UTC"),
        zoneinfo.ZoneInfo("Europe/Paris"),
        dt.timezone(dt.timedelta(hours=-3, minutes=-30)),
        dateutil_tz.gettz("Europe/Paris"),
    ],
    ids=["naive", "utc", "zoneinfo-utc", "zoneinfo", "fixed-offset", "dateutil"],
)
def test_timestamps_keep_their_instant_and_zone(zone: object) -> None:
    stamp = pd.Timestamp("2024-05-01 12:00:00.000001")
    if zone is not None:
        stamp = stamp.tz_localize(zone)
    for value in (stamp, (stamp,)):
        back = through(value)
        back = back[0] if isinstance(back, tuple) else back
        assert type(back) is pd.Timestamp
        assert back == stamp
        assert back.unit == stamp.unit
        if zone is None:
            assert back.tz is None
        else:
            assert back.utcoffset() == stamp.utcoffset()
            # a summer instant and a winter one: a named zone keeps its rules, not one offset
            winter = (stamp - pd.Timedelta(days=180)).tz_convert(back.tz)
            assert winter.utcoffset() == (stamp - pd.Timedelta(days=180)).utcoffset()


def test_timestamp_trees_name_the_zone_or_its_offset() -> None:
    stamp = pd.Timestamp("2024-05-01 12:00", tz="Europe/Paris")
    assert to_tree(stamp)["v"][1:] == ["Europe/Paris", stamp.unit]
    assert to_tree(stamp.tz_localize(None))["v"][1] is None
    fixed = pd.Timestamp("2024-05-01 12:00", tz=dt.timezone(dt.timedelta(hours=2)))
    assert to_tree(fixed)["v"][1] == 7200
    assert to_tree(stamp.tz_convert(dateutil_tz.gettz("Europe/Paris")))["v"][1] == "Europe/Paris"


@pytest.mark.parametrize(
    "value",
    [
        pd.Index([1, 2], name="k"),
        pd.Index(["a", None]),
        pd.DatetimeIndex(["2024-01-01", "2024-01-02"], name="day"),
        pd.CategoricalIndex(["a", "b", "a"], name="c"),
    ],
)
def test_indexes_round_trip_as_one_arrow_column(value: pd.Index) -> None:
    enc = encode(value)
    assert enc.codec == "arrow"
    table = pa.ipc.open_stream(pa.BufferReader(enc.data)).read_all()
    assert table.column_names == ["series"]  # no stored row index next to the values
    back = through(value)
    pd.testing.assert_index_equal(back, value, exact=True)
    pd.testing.assert_index_equal(through([value])[0], value, exact=True)


def test_categoricals_round_trip() -> None:
    value = pd.Categorical(["b", "a", "b"], categories=["b", "a"], ordered=True)
    back = through(value)
    assert isinstance(back, pd.Categorical)
    pd.testing.assert_extension_array_equal(back, value)
    assert back.ordered and list(back.categories) == ["b", "a"]
    assert encode(value).codec == "arrow"


def test_arrow_tables_in_containers_round_trip() -> None:
    table = pa.table({"x": [1, 2]})
    back = through({"t": [table], "b": (table.to_batches()[0],)})
    assert back["t"][0].equals(table)
    assert back["b"][0].equals(table.to_batches()[0])


def test_multi_indexes_are_refused_or_pickled() -> None:
    value = pd.MultiIndex.from_tuples([(1, "a"), (2, "b")])
    with pytest.raises(CodecError, match=r"<class 'pandas.MultiIndex'> with a safe codec"):
        encode(value)
    assert encode(value, allow_pickle=True).codec == "pickle"


def test_arrays_in_containers_keep_their_shape_and_type() -> None:
    tree = to_tree((np.arange(2), np.float32(1.5)))
    assert [item["__tb__"] for item in tree["v"]] == ["npy", "npscalar"]
    back = through((np.array(1.5), np.arange(3)))
    assert type(back[0]) is np.ndarray and back[0].shape == ()
    assert back[1].tolist() == [0, 1, 2]


def test_refusals_name_the_value_in_short() -> None:
    class Long:
        def __init__(self, size: int) -> None:
            self.size = size

        def __repr__(self) -> str:
            return "x" * self.size

    with pytest.raises(CodecError) as info:
        encode(Long(60))
    assert f"(got {'x' * 60}); safe types are" in str(info.value)
    with pytest.raises(CodecError) as info:
        encode(Long(61))
    assert f"(got {'x' * 57}...); safe types are" in str(info.value)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ([pa.array([1])], "pyarrow.lib.Int64Array"),
        ((pd.MultiIndex.from_tuples([(1, 2)]),), "pandas.MultiIndex"),
        (np.random.default_rng(0), "numpy.random._generator.Generator"),
        ({"a": [decimal.Context()]}, "decimal.Context"),
    ],
)
def test_unsupported_values_deep_inside_are_named(value: object, kind: str) -> None:
    with pytest.raises(CodecError, match=rf"cannot store a value of type <class '{kind}'>"):
        encode(value)


def test_what_even_pickle_cannot_store_is_named() -> None:
    with pytest.raises(CodecError) as info:
        encode({"lock": threading.Lock()}, allow_pickle=True)
    assert str(info.value).startswith(
        "cannot store a value of type <class 'dict'> even with pickle: "
    )
    assert "_thread.lock" in str(info.value)


def test_json_view_of_sets_dates_and_other_values() -> None:
    assert json_view({3, "a", 1.5}) == ["a", 1.5, 3]  # mixed types: in the order of their repr
    assert json_view(frozenset({2, 1})) == [1, 2]
    assert json_view([dt.datetime(2024, 1, 2, 3, 4), dt.time(5, 6)]) == [
        "2024-01-02T03:04:00",
        "05:06:00",
    ]
    assert json_view(decimal.Decimal("1.10")) == "1.10"
    assert json_view(pd.Timestamp("2024-01-02")) == "2024-01-02T00:00:00"
    assert json_view({1: None, "t": (True,)}) == {"1": None, "t": [True]}


def test_object_arrays_in_npy_bytes_are_never_unpickled() -> None:
    """A store could hold an .npy with pickled objects (written by another tool): reading it
    must not run the pickle."""
    import io

    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle=False"):
        decode(Encoded("npy", buf.getvalue()))


def test_json_codec_values_decode() -> None:
    """Persisted plain values of the graph are stored as Encoded("json", ...)."""
    assert decode(Encoded("json", b'{"a": [1, 2.5, null]}')) == {"a": [1, 2.5, None]}


def test_which_codec_each_kind_of_value_gets() -> None:
    assert encode(pd.DataFrame({"a": [1]})).codec == "arrow"
    assert encode(pd.Series([1])).codec == "arrow"
    assert encode(pa.table({"a": [1]})).codec == "arrow"
    assert encode(np.arange(2)).codec == "npy"
    assert encode(pd.Timestamp("2024-01-01")).codec == "tjson"
    assert encode(np.float64(1.5)).codec == "tjson"


def test_shared_containers_are_not_cycles() -> None:
    shared = [1]
    value = [shared, {"a": shared}, shared]
    assert encode(value) is value  # plain JSON, kept as is
    assert through((shared, shared, [shared])) == ([1], [1], [[1]])
    assert to_tree((shared, shared)) == {"__tb__": "tuple", "v": [[1], [1]]}


@pytest.mark.parametrize(
    "value",
    [[(1, 2)], {"a": b"x"}, [1, (2,)], [1, {1: 2}], [1, [2, {3}]], {"a": 1, "b": [np.int64(1)]}],
)
def test_containers_of_non_json_values_are_not_plain(value: object) -> None:
    enc = encode(value)
    assert isinstance(enc, Encoded) and enc.codec == "tjson"
    assert through(value) == value


def test_containers_that_hold_themselves_are_refused() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    message = (
        "a list that contains itself cannot be stored (a reference cycle); store a copy "
        "without the cycle"
    )
    for value in (loop, (loop,), {"k": loop}):
        with pytest.raises(CodecError) as caught:
            encode(value)
        assert str(caught.value) == message


def test_dict_trees_keep_text_keys_and_pair_the_others() -> None:
    assert to_tree(({"a": 1},)) == {"__tb__": "tuple", "v": [{"a": 1}]}
    tagged = {"__tb__": "x", "v": 1}
    assert to_tree((tagged,)) == {
        "__tb__": "tuple",
        "v": [{"__tb__": "dict", "v": [["__tb__", "x"], ["v", 1]]}],
    }
    assert through((tagged,)) == (tagged,)
    assert through({(1, 2): "a", (3, (4,)): "b"}) == {(1, 2): "a", (3, (4,)): "b"}


def test_refusals_give_the_advice_in_full() -> None:
    with pytest.raises(CodecError) as caught:
        encode(threading.Lock())
    assert str(caught.value).endswith(
        "pyarrow Table/RecordBatch. Convert it to one of those, or open the store with "
        "allow_pickle=True if pickle is acceptable"
    )
    with pytest.raises(CodecError) as caught:
        decode(Encoded("pickle", b"x"))
    assert str(caught.value) == (
        "this value was stored with pickle, and unpickling runs code taken from the store; if "
        "you trust this store, open it with allow_pickle=True"
    )
