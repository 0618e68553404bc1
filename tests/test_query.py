"""The run-query language: parsing, errors, and the Python and SQLite back ends agreeing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Closing
from trialbook.codecs import Encoded
from trialbook.errors import ConfigError, QueryError
from trialbook.storage import open_store
from trialbook.storage.query import check_names, parse_name, parse_query, query_runs
from trialbook.storage.records import ErrorInfo, RunRecord


class GenericStore:
    """A store seen without its native ``query_runs``: forces the generic back end."""

    def __init__(self, store: Any) -> None:
        self.read_runs = store.read_runs


def run(run_id: int = 1, **kw: Any) -> RunRecord:
    return RunRecord(run_id, **kw)


def matches(text: str, record: RunRecord) -> bool:
    return parse_query(text).predicate()(record)


def test_names_resolve_to_columns_namespaces_and_bare_names() -> None:
    r = run(
        7, status="done", params={"lr": 0.1, "model": {"depth": 3}}, fields={"acc": 0.9},
        tags={"model": "mlp", "lr": 5}, metrics={"loss": [10, 0.25]}, started=1.0, finished=3.5,
    )  # fmt: skip
    assert matches("run_id == 7 and status == 'done'", r)
    assert matches("duration == 2.5", r)
    assert matches("lr == 0.1", r)  # bare name: the param wins over the tag of the same name
    assert matches("tags.lr == 5", r)
    assert matches("acc > 0.5", r)  # bare name falls back to a field
    assert matches("params.model.depth >= 3", r)
    assert matches("metric.loss < 0.3", r)
    assert matches('kind in ["run", "trial"]', r)
    assert matches('kind not in ("job",)', r)
    assert matches("0.01 < lr < 0.2", r)
    assert not matches("lr > 0.01 and status == 'failed'", r)
    assert matches("lr > 1 or -1 < fields.acc", r)


def test_missing_values_are_unknown_as_in_sql() -> None:
    r = run(1, params={"lr": 0.1})
    assert not matches("not (metric.loss >= 0.5)", r)
    assert not matches("metric.loss < 0.5", r)
    assert matches("metric.loss == None and lr != None", r)
    assert matches("metric.loss < 0.5 or lr == 0.1", r)


def test_values_that_are_not_plain_json_count_as_missing() -> None:
    r = run(1, params={"w": Encoded("npy", b"...")}, error=ErrorInfo("ValueError", "bad"))
    assert matches("params.w == None", r)
    assert matches("error == 'ValueError'", r)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lr >", r"syntax error at column"),
        ("lr + 1 > 2", r"arithmetic \(`lr \+ 1`\) at column 1"),
        ("lr > __import__('os')", r"a call \(`__import__\('os'\)`\) at column 6"),
        ("lr", r"a value where a condition is expected \(`lr`\)"),
        ("lr is None", r"the operator Is"),
        ("x[0] == 1", r"a subscript"),
        ("kind in kinds", r"`in` needs a list of constants"),
        ("kind in ['a', b]", r"not a number, string"),
        ("params == 1", r"names a namespace; write params.<name>"),
        ("status.x == 1", r"'status' is a column of the run"),
        ("(lambda: 1)() == 1", r"a call"),
        ("a in [1] in [2]", r"chained comparison with `in`"),
    ],
)
def test_bad_queries_name_the_token_and_column(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_query(text)


def test_bad_sort_names_and_pages_are_refused(tmp_path: Any, closing: Closing) -> None:
    store = closing(open_store(tmp_path / "s"))
    exp = store.create_experiment("e")
    with pytest.raises(ConfigError, match="not a name of the query language"):
        query_runs(store, exp.id, order_by="lr desc")
    with pytest.raises(ConfigError, match="limit must be an int >= 0"):
        query_runs(store, exp.id, limit=-1)
    with pytest.raises(ConfigError, match="offset must be an int >= 0"):
        query_runs(GenericStore(store), exp.id, offset="3")  # type: ignore[arg-type]
    assert parse_name("metric.loss").where == "metric"


def test_documents_with_nan_and_infinity_are_queried_like_sql(
    tmp_path: Any, closing: Closing
) -> None:
    """NaN is missing (SQL has no NaN), infinities compare as numbers, in both back ends."""
    store = closing(open_store(tmp_path / "s"))
    exp = store.create_experiment("e")
    store.write_runs(exp.id, [
        run(1, params={"lr": 0.1, "s": "NaN"}, metrics={"loss": [3, float("nan")]}),
        run(2, params={"lr": 0.2, "v": [float("inf")]}, metrics={"loss": [3, float("inf")]}),
        run(3, params={"lr": 0.3}, metrics={"loss": [3, 1.0]}),
    ])  # fmt: skip
    for target in (store, GenericStore(store)):
        assert query_runs(target, exp.id, where="lr > 0")[0] == 3
        total, page = query_runs(target, exp.id, where="metric.loss > 0", order_by="metric.loss")
        assert (total, [r.run_id for r in page]) == (2, [3, 2])
        assert query_runs(target, exp.id, where="metric.loss == None")[0] == 1
        assert query_runs(target, exp.id, where='params.s == "NaN"')[0] == 1
        assert query_runs(target, exp.id, where='params.v == "[9e999]"')[0] == 1


def test_native_and_generic_page_and_count_the_same(tmp_path: Any, closing: Closing) -> None:
    store = closing(open_store(tmp_path / "s"))
    exp = store.create_experiment("e")
    runs = [
        run(i, status="done" if i % 3 else "failed", kind="job" if i % 2 else "trial",
            params={"lr": i / 100, "opt": "adam" if i % 4 else "sgd"},
            metrics={"loss": [5, 1 / i]} if i % 5 else {}, tags={"model": "mlp"})
        for i in range(1, 61)
    ]  # fmt: skip
    store.write_runs(exp.id, runs)
    for kwargs in [
        {},
        {"where": "lr > 0.1 and status == 'done'", "limit": 7, "offset": 3},
        {"where": "not (metric.loss >= 0.05)", "order_by": "metric.loss"},
        {"where": "kind == 'job' and tags.model == 'mlp'", "order_by": "opt", "descending": True},
        {"order_by": "metric.loss", "descending": True, "limit": 10, "offset": 45},
        {"descending": True, "limit": 5},
    ]:
        n_native, native = query_runs(store, exp.id, **kwargs)
        n_generic, generic = query_runs(GenericStore(store), exp.id, **kwargs)
        assert n_native == n_generic
        assert [r.run_id for r in native] == [r.run_id for r in generic], kwargs
        assert native == generic
    total, page = query_runs(store, exp.id, where="metric.loss < 0.05")
    assert total == len(page) == len([i for i in range(21, 61) if i % 5])


# -- property: both back ends agree on any query over any runs ----------------------------

KEYS = ["a", "b"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-3, 3, allow_nan=False).map(lambda x: round(x, 2)),
    st.sampled_from(["x", "y", "A", "", "NaN", "1", "2.0", "done"]),
)
huge = st.sampled_from([2**63, -(2**63) - 1, 2**70, 2**70 + 1, -(10**30), 10**400])
special = st.sampled_from([float("nan"), float("inf"), float("-inf")])
values = st.one_of(
    scalars, special, huge, st.lists(st.one_of(st.integers(0, 2), special), max_size=2)
)
slots = st.dictionaries(st.sampled_from(KEYS), values, max_size=2)
records = st.lists(
    st.builds(
        dict,
        status=st.sampled_from(["done", "failed", "running"]),
        kind=st.sampled_from(["run", "trial", "job"]),
        params=slots,
        fields=slots,
        tags=slots,
        metrics=st.dictionaries(
            st.sampled_from(KEYS),
            st.one_of(  # [count, last] as older versions wrote, or [count, last, min, max]
                st.tuples(st.just(1), st.one_of(scalars, special)),
                st.tuples(st.just(2), *[st.one_of(scalars, special)] * 3),
            ).map(list),
            max_size=2,
        ),
        key=st.one_of(st.none(), st.sampled_from(["1", "k"])),
        seed=st.one_of(st.none(), st.integers(0, 2)),
        started=st.one_of(st.none(), st.integers(0, 3).map(float)),
        finished=st.one_of(st.none(), st.integers(0, 6).map(float)),
    ),
    max_size=12,
)
names = st.sampled_from(
    ["a", "b", "params.a", "fields.b", "tags.a", "metric.a", "metric.b", "status", "kind",
     "duration", "run_id", "params.a.b", "seed", "key", "started", "metric.a.min",
     "metric.b.max", "metric.a.count"]
)  # fmt: skip
literals = st.one_of(scalars, huge, st.just(float(2**70))).map(repr)
comparisons = st.one_of(
    st.builds(
        "{} {} {}".format, names, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
        st.one_of(literals, names),
    ),
    st.builds(
        "{} {} [{}]".format, names, st.sampled_from(["in", "not in"]),
        st.lists(literals, max_size=3).map(", ".join),
    ),
)  # fmt: skip
queries = st.recursive(
    comparisons,
    lambda inner: st.one_of(
        st.builds("({} and {})".format, inner, inner),
        st.builds("({} or {})".format, inner, inner),
        st.builds("not ({})".format, inner),
    ),
    max_leaves=5,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=records, where=queries, order_by=names, descending=st.booleans())
def test_sql_and_python_back_ends_agree(
    rows: list[dict[str, Any]], where: str, order_by: str, descending: bool
) -> None:
    store = open_store("sqlite:///:memory:")
    exp = store.create_experiment("e")
    store.write_runs(exp.id, [RunRecord(i + 1, **row) for i, row in enumerate(rows)])
    kwargs = {"where": where, "order_by": order_by, "descending": descending}

    def outcome(source: Any) -> Any:  # the page, or the error of a name no run has
        try:
            total, page = query_runs(source, exp.id, **kwargs)
        except ConfigError as exc:
            return str(exc)
        return total, [r.run_id for r in page]

    assert outcome(store) == outcome(GenericStore(store))
    store.close()


def test_sqlite_counts_a_filter_with_any_page(tmp_path: Any) -> None:
    """SQLite answers a filtered query in one pass, its count read from the page's rows: an
    empty page (limit 0, an offset past the end) still carries the right count, sorted or not."""
    with open_store(tmp_path / "store") as store:
        exp = store.create_experiment("pages")
        store.write_runs(exp.id, [RunRecord(i, status="done" if i % 3 else "failed",
                                            params={"x": i}) for i in range(1, 31)])  # fmt: skip
        for order_by in (None, "x"):
            for limit, offset, ids in ((0, 0, []), (3, 0, [1, 2, 4]), (5, 18, [28, 29]),
                                       (5, 40, []), (None, 19, [29]), (None, 0, None)):  # fmt: skip
                total, page = query_runs(store, exp.id, where='x > 0 and status == "done"',
                                         order_by=order_by, limit=limit, offset=offset)  # fmt: skip
                assert total == 20, (order_by, limit, offset)
                if ids is not None:
                    assert [r.run_id for r in page] == ids, (order_by, limit, offset)


def test_a_name_holding_arrays_is_refused_with_what_to_do() -> None:
    """An array (kept in the run's bundle only) is not a value filters read: in runs as in the
    stores, a filter or sort on it is refused, saying what it holds and what to record
    instead, rather than taking its name for a text written without quotes."""
    import numpy as np

    from trialbook.codecs import encode

    runs = [RunRecord(1, fields={"w": encode(np.ones(2)), "acc": 0.5})]
    with pytest.raises(QueryError, match="`w` at column 1 holds arrays") as info:
        check_names(runs, 1, parse_query("w > 1"))
    assert "quote" not in str(info.value) and "as a field" in str(info.value)
    with pytest.raises(ConfigError, match=r"cannot sort by 'fields\.w': it holds arrays"):
        check_names(runs, 1, None, "fields.w")
    assert not parse_name("w").present(runs[0]) and parse_name("acc").present(runs[0])
    check_names(runs, 1, parse_query("acc > 0.1"))  # a plain field beside it is found


def test_a_misspelt_name_is_answered_with_the_name_beside_it() -> None:
    """A name no run has, close to one the runs have, is taken for a typo (did you mean), not
    for a text written without quotes; a bare word that is no near name still gets the quote."""
    runs = [RunRecord(1, params={"alpha": 1.0, "model": {"depth": 2}, "loss": "hinge"})]
    with pytest.raises(QueryError, match=r"`alpah` at column 1 .*\(did you mean 'alpha'\?\)$"):
        check_names(runs, 1, parse_query("alpah > 1"))
    with pytest.raises(QueryError, match=r"\(did you mean 'depth'\?\)$"):
        check_names(runs, 1, parse_query("params.model.dpeth == 2"))
    with pytest.raises(ConfigError, match=r"cannot sort by 'alpah': .*did you mean 'alpha'"):
        check_names(runs, 1, None, "alpah")
    with pytest.raises(QueryError, match='quote it: loss == "hinge"'):
        check_names(runs, 1, parse_query("loss == hinge"))
