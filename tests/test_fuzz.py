"""Fuzzing user input on every backend (issue 16): the query language of ``--where`` and the
UI, and the codecs. Whatever the text or the bytes, the answer is a result or a
``ConfigError`` (the query errors) / ``CodecError``, never a crash, a recursion error or an
SQL / driver error."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategies import arrays, numpy_scalars, plain_json, tagged_values
from test_codecs import same
from trialbook.codecs import Encoded, decode, encode
from trialbook.errors import CodecError, ConfigError
from trialbook.storage.query import parse_query, query_runs
from trialbook.storage.records import RunRecord

EXAMPLES = 200
SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=SLOW_OK)

# -- query strings: garbage, unicode, quotes, long names, deep nesting, huge numbers ----------

_any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=60)  # surrogates too
_names = st.one_of(
    st.sampled_from(["lr", "params.lr", "fields.acc", "tags.g", "metric.loss", "status",
                     "run_id", "duration", "result", "error", "é", "params.é.ß", "params",
                     "run_id.x", "metric", "__class__", "lr.__dict__", "λ"]),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}(\.[A-Za-z_][A-Za-z0-9_]{0,8}){0,3}",
                  fullmatch=True),
    st.integers(100, 3000).map(lambda n: "x" * n),  # very long names
)  # fmt: skip
_numbers = st.one_of(
    st.integers(),
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**30, -(10**300), 2**1000]),
    st.floats(allow_nan=True, allow_infinity=True),
).map(str)
_literals = st.one_of(
    _numbers,
    st.text(max_size=20).map(repr),  # quoted strings with quotes and escapes inside
    st.sampled_from(["True", "False", "None", "''", '""', "'\\''", "'''x'''", "b'x'", "1e999",
                     "-1e999", "nan", "0x" + "f" * 40, "1_000", "1j", "...", "[]", "[1, [2]]"]),
)  # fmt: skip
_garbage = st.sampled_from(
    ["(", ")", "[", "]", ",", "'", '"', "\\", ";", "--", "/*", "*/", "$", "{", "}", ":", "=",
     "==", "!=", "<", "<=", ">", ">=", "<>", "in", "not in", "is", "is not", "and", "or", "not",
     "lambda", "__import__('os')", "drop table runs", "$where", "\x00", "\n", "\t", "→", "🙂",
     "' OR '1'='1", "\"; DROP TABLE runs; --", "lr > 0.1", "..", "@", "%", "**", "if", "else"]
)  # fmt: skip
_comparisons = st.builds(
    "{} {} {}".format, _names, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
    st.one_of(_literals, _names),
) | st.builds("{} {} [{}]".format, _names, st.sampled_from(["in", "not in"]),
              st.lists(_literals, max_size=4).map(", ".join))  # fmt: skip
_expressions = st.recursive(
    _comparisons,
    lambda inner: st.one_of(
        st.builds("({} and {})".format, inner, inner),
        st.builds("({} or {})".format, inner, inner),
        st.builds("not {}".format, inner),
    ),
    max_leaves=6,
)
_nested = st.builds(
    lambda n, head, tail, body: head * n + body + tail * n,
    st.integers(1, 400),
    st.sampled_from(["not (", "(", "not ", "[", "-"]),
    st.sampled_from([")", "]", ""]),
    st.sampled_from(["lr == 1", "1", "lr"]),
)
fuzzed_queries = st.one_of(
    _any_text,
    _expressions,
    _nested,
    st.lists(st.one_of(_garbage, _names, _literals), max_size=12).map(" ".join),
    st.builds("{}{}{}".format, _expressions, _garbage, _expressions),
)
fuzzed_names = st.one_of(_names, _any_text, st.sampled_from(["-lr", "lr desc", "lr;drop", ""]))


def test_the_parser_answers_a_query_or_a_config_error() -> None:
    """Any text: a parsed query or ConfigError (deep nesting and lone surrogates included)."""

    @FUZZ
    @given(text=fuzzed_queries)
    def check(text: str) -> None:
        try:
            query = parse_query(text)
        except ConfigError:
            return
        query.predicate()(RunRecord(1, params={"lr": 0.5}))  # evaluates without error

    check()


@pytest.mark.parametrize(
    "text", ["not " * 5000 + "lr == 1", "(" * 300 + "lr == 1" + ")" * 300,
             "x in " + "[" * 200 + "]" * 200, 'lr == "\ud800"', "lr == " + "-" * 500 + "1"],
)  # fmt: skip
def test_crashes_found_by_fuzzing_are_config_errors(text: str) -> None:
    """What fuzzing found: RecursionError, MemoryError, UnicodeEncodeError out of ``ast``."""
    with pytest.raises(ConfigError, match="bad query"):
        parse_query(text)


def test_a_filter_nested_past_the_limit_is_refused_before_any_store_sees_it(
    backend_store: Any,
) -> None:
    """Fuzzing found SQLite's parser stack overflowing on the SQL of about 40 nested
    ``not (...)`` (a StorageError out of user input): such a filter is a QueryError on every
    backend, and one nested just under the limit is answered."""
    exp_id = _seed(backend_store)
    deep = "not (" * 40 + "lr > 0" + ")" * 40
    with pytest.raises(ConfigError, match="nested more than"):
        query_runs(backend_store, exp_id, where=deep)
    allowed = "not (" * 28 + "lr > 0" + ")" * 28
    two = query_runs(backend_store, exp_id, where="not (not (lr > 0))")[0]
    assert query_runs(backend_store, exp_id, where=allowed)[0] == two


def _seed(store: Any) -> int:
    """An experiment whose runs have the names the fuzzer tries, with awkward values."""
    exp = store.create_experiment("fuzz")
    runs = [
        RunRecord(1, status="done", params={"lr": 0.1, "é": {"ß": 1}}, fields={"acc": 2**70},
                  tags={"g": "it's \"quoted\""}, metrics={"loss": [3, 0.5]}, seed=2**63 - 1),
        RunRecord(2, status="failed", params={"lr": "0.1", "x" * 120: True},
                  fields={"acc": float("inf")}, tags={"g": None}, result=[1, "two"]),
        RunRecord(3, status="running", params={"lr": -(2**63)}, fields={"acc": "🙂\\"},
                  metrics={"loss": [1, float("nan")]}),
    ]  # fmt: skip
    store.write_runs(exp.id, runs)
    return exp.id


def test_fuzzed_queries_on_every_backend(backend_store: Any) -> None:
    """Any ``where`` and ``order_by`` through the store's own query (SQL on SQLite and
    PostgreSQL, the light-runs evaluator on Redis and MongoDB): a page or a ConfigError, never
    a StorageError or a driver's exception."""
    store = backend_store
    exp_id = _seed(store)

    @FUZZ
    @given(where=fuzzed_queries, order_by=st.none() | fuzzed_names, descending=st.booleans())
    def check(where: str, order_by: str | None, descending: bool) -> None:
        try:
            total, page = query_runs(store, exp_id, where=where, order_by=order_by,
                                     descending=descending, limit=2)  # fmt: skip
        except ConfigError:
            return
        assert 0 <= len(page) <= min(total, 2) <= 3

    check()


# -- codecs: generated values round-trip through every store; garbage bytes are CodecError -----

values = st.one_of(plain_json, tagged_values, arrays, numpy_scalars)


def _equal(a: Any, b: Any) -> bool:
    """Same type, and for NumPy values the same dtype, shape and bytes (NaN and NaT too)."""
    if isinstance(a, np.ndarray | np.generic):
        return (
            type(a) is type(b)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and np.asarray(a).tobytes() == np.asarray(b).tobytes()
        )
    return same(a, b)


def test_codecs_round_trip_through_every_backend(backend_store: Any) -> None:
    """A generated value stored as a run's field and as its param reads back the same."""
    store = backend_store
    ids = itertools.count(1)
    exp = store.create_experiment("codecs")

    @settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=SLOW_OK)
    @given(value=values)
    def check(value: Any) -> None:
        run_id = next(ids)
        store.write_runs(exp.id, [RunRecord(run_id, params={"v": encode(value)},
                                            fields={"v": encode(value)})])  # fmt: skip
        [back] = store.read_runs(exp.id, [run_id])
        for got in (back.params["v"], back.fields["v"]):
            assert _equal(value, decode(got)), (value, got)

    check()


def test_decoding_garbage_bytes_is_a_codec_error() -> None:
    """Bytes no codec wrote (a corrupted or foreign store) decode to a CodecError naming the
    codec, never a JSON, NumPy or Arrow exception."""

    @FUZZ
    @given(codec=st.sampled_from(["json", "tjson", "npy", "arrow", "zip", ""]),
           data=st.binary(max_size=64) | st.sampled_from(
               [b'{"__tb__": "complex", "v": 1}', b'{"__tb__": "npy", "v": "!!"}',
                b'{"__tb__": "dict", "v": [1]}', b'{"__tb__": "timestamp", "v": []}',
                b"\x93NUMPY\x01\x00", b"[1, 2", b"\xff\xfe"]))  # fmt: skip
    def check(codec: str, data: bytes) -> None:
        with contextlib.suppress(CodecError):
            decode(Encoded(codec, data))

    check()


def test_unicode_names_quotes_and_huge_ints_round_trip(backend_store: Any) -> None:
    """Ints beyond 64 bits and names with emoji and quotes, as params: read back the same."""
    store = backend_store
    exp = store.create_experiment("big")
    record = RunRecord(1, params={"n": 2**100, "🙂": -(2**80), "q'\"": 1})
    store.write_runs(exp.id, [record])
    [back] = store.read_runs(exp.id)
    assert {k: decode(v) for k, v in back.params.items()} == record.params
