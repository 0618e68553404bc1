"""The query language's names, paths, constants, pages and error messages, exactly (found by
mutation testing, `make mutate`): what both back ends share, so their agreement cannot show it."""

from __future__ import annotations

from typing import Any

import pytest

from trialbook.errors import ConfigError
from trialbook.storage import open_store
from trialbook.storage.query import check_names, parse_name, parse_query, query_runs
from trialbook.storage.records import RunRecord

COLUMNS = "run_id, status, kind, key, seed, created, started, finished, duration, result, error"
SYNTAX = (
    'expected comparisons such as `lr > 0.01`, `status == "done"` or `kind in ["job", '
    '"trial"]` joined by and / or / not'
)


class GenericStore:
    """A store seen without its native ``query_runs``: forces the generic back end."""

    def __init__(self, store: Any) -> None:
        self.read_runs = store.read_runs


@pytest.mark.parametrize(
    ("name", "paths"),
    [
        ("params.a.b", ['$.p."a"."b"']),
        ("fields.x", ['$.f."x"']),
        ("tags.t", ['$.t."t"']),
        ("metric.loss", ['$.m."loss"']),
        ("metric.acc.top.k", ['$.m."acc"[1]."top"."k"']),
        ("lr", ['$.p."lr"', '$.f."lr"', '$.t."lr"']),
        ("status", []),
        ("duration", []),
    ],
)
def test_json_paths_of_names(name: str, paths: list[str]) -> None:
    assert parse_name(name).json_paths() == paths


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a..b",
            f"'a..b' is not a name of the query language; expected a column ({COLUMNS}), "
            "params.x, fields.x, tags.x, metric.x or a bare parameter / field / tag name",
        ),
        ("params", "'params' names a namespace; write params.<name>, e.g. params.lr"),
        ("metric", "'metric' names a namespace; write metric.<name>, e.g. metric.lr"),
        ("status.x", "'status' is a column of the run and has no attribute 'x'"),
        ("duration.x", "'duration' is a column of the run and has no attribute 'x'"),
    ],
)
def test_bad_names_say_what_a_name_is(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_name(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x == -'a'", "a value that is not a number, string, True, False or None (`-'a'`) at "
         "column 6"),
        ("x == -True", "a value that is not a number, string, True, False or None (`-True`) at "
         "column 6"),
        ("not x", "a value where a condition is expected (`x`) at column 5"),
        ("x == {1}", "a set (`{1}`) at column 6"),
        ("x == y.z()", "a call (`y.z()`) at column 6"),
        ("x == f'{y}'", "an f-string (`f'{y}'`) at column 6"),
        ("x is 1", "the operator Is (`x is 1`) at column 1"),
        ("x == (y := 1)", "an assignment (`y := 1`) at column 7"),
        ("await x", "Await (`await x`) at column 1"),
    ],
)  # fmt: skip
def test_refused_expressions_name_the_token_and_column(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_query(text)
    assert str(caught.value) == f"bad query {text!r}: {message} is not allowed; {SYNTAX}"


def test_a_query_must_be_text() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_query(3)  # type: ignore[arg-type]
    assert str(caught.value) == "a query must be a str (got 3 that is a <class 'int'>)"


def test_signed_constants() -> None:
    run = RunRecord(1, params={"x": 1, "y": -1.5, "z": 2})
    for text in ("x == +1", "y == -1.5", "y < -1", "z in [+2, -2]", "-2 < y"):
        assert parse_query(text).predicate()(run), text
    assert not parse_query("x == -1").predicate()(run)


def test_names_are_listed_with_their_columns() -> None:
    names = parse_query("x == y == 1 and not (params.a.b < metric.m)").names()
    assert [(n.where, n.path, col, text) for n, col, text in names] == [
        ("bare", ("x",), 1, "x"),
        ("bare", ("y",), 6, "y"),
        ("params", ("a", "b"), 22, "params.a.b"),
        ("metric", ("m",), 35, "metric.m"),
    ]


@pytest.fixture
def stores(tmp_path: Any) -> Any:
    store = open_store(tmp_path / "s")
    exp = store.create_experiment("e")
    store.write_runs(
        exp.id,
        [
            RunRecord(1, params={"loss": "hinge", "m": {"a": 1}}, tags={"t": None},
                      metrics={"acc": [1, {"top1": 0.5}]}),
            RunRecord(2, params={"loss": "log", "m": {"a": 2}}, fields={"f": 3},
                      metrics={"acc": [1, {"top1": 0.25}]}),
            RunRecord(3, params={"loss": "log"}),
        ],
    )  # fmt: skip
    yield exp.id, [store, GenericStore(store)]
    store.close()


@pytest.mark.parametrize(
    ("where", "order_by", "message"),
    [
        ("loss == hinge", None, "bad query 'loss == hinge': `hinge` at column 9 is not a "
         "parameter, field or tag of any run of this experiment; to compare with a text, quote "
         'it: loss == "hinge"'),
        ("params.zz == 1", None, "bad query 'params.zz == 1': `params.zz` at column 1 is not a "
         "parameter of any run of this experiment"),
        ("fields.zz == 1", None, "bad query 'fields.zz == 1': `fields.zz` at column 1 is not a "
         "field of any run of this experiment"),
        ("tags.zz == 1", None, "bad query 'tags.zz == 1': `tags.zz` at column 1 is not a tag of "
         "any run of this experiment"),
        ("m.a.b == 1", None, "bad query 'm.a.b == 1': `m.a.b` at column 1 is not a parameter, "
         "field or tag of any run of this experiment"),
        (None, "nope", f"cannot sort by 'nope': it is not a parameter, field or tag of any run "
         f"of this experiment; sort by a column ({COLUMNS}), params.x, fields.x, tags.x or "
         "metric.x"),
        (None, "metric.zz", "cannot sort by 'metric.zz': it is not a metric of any run of this "
         f"experiment; sort by a column ({COLUMNS}), params.x, fields.x, tags.x or metric.x"),
        (None, "metric.acc.zz", "cannot sort by 'metric.acc.zz': it is not a metric of any run "
         f"of this experiment; sort by a column ({COLUMNS}), params.x, fields.x, tags.x or "
         "metric.x"),
    ],
)  # fmt: skip
def test_unknown_names_are_refused_the_same_by_both_back_ends(
    stores: Any, where: str | None, order_by: str | None, message: str
) -> None:
    exp_id, targets = stores
    for target in targets:
        with pytest.raises(ConfigError) as caught:
            query_runs(target, exp_id, where=where, order_by=order_by)
        assert str(caught.value) == message


@pytest.mark.parametrize(
    ("where", "order_by", "descending", "expected"),
    [
        ("metric.acc.top1 > 0.3", None, False, [1]),
        ("m.a >= 1", "m.a", True, [2, 1]),
        ("t == None", None, False, [1, 2, 3]),  # presence of a value: t is None in run 1
        ("t != None", None, False, []),
        ("f == 3 or loss == 'hinge'", "f", False, [2, 1]),
        (None, "metric.acc.top1", False, [2, 1, 3]),
        (None, "metric.acc.top1", True, [1, 2, 3]),
        (None, "status", True, [1, 2, 3]),  # ties: by run id, whatever the direction
        (None, "run_id", True, [3, 2, 1]),
        (None, None, True, [3, 2, 1]),
    ],
)
def test_names_reach_into_dicts_and_metric_values_in_both_back_ends(
    stores: Any, where: str | None, order_by: str | None, descending: bool, expected: list[int]
) -> None:
    exp_id, targets = stores
    for target in targets:
        total, page = query_runs(
            target, exp_id, where=where, order_by=order_by, descending=descending
        )
        assert (total, [r.run_id for r in page]) == (len(expected), expected), target


def test_names_present_in_some_run_only_are_accepted(stores: Any) -> None:
    exp_id, targets = stores
    for target in targets:
        for name in ("metric.acc.top1", "t", "f", "params.m.a", "tags.t"):
            query_runs(target, exp_id, where=f"{name} == 1", order_by=name)


def test_an_experiment_without_runs_accepts_every_name(tmp_path: Any) -> None:
    store = open_store(tmp_path / "s")
    try:
        exp = store.create_experiment("empty")
        for target in (store, GenericStore(store)):
            assert query_runs(target, exp.id, where="nope == 1", order_by="zz") == (0, [])
        check_names([], exp.id, parse_query("nope == 1"), "zz")
    finally:
        store.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": True}, "limit must be an int >= 0 (got True); pass the page size, e.g. "
         "limit=100"),
        ({"limit": 2.0}, "limit must be an int >= 0 (got 2.0); pass the page size, e.g. "
         "limit=100"),
        ({"limit": -1}, "limit must be an int >= 0 (got -1); pass the page size, e.g. limit=100"),
        ({"offset": -1}, "offset must be an int >= 0 (got -1); pass how many runs to skip"),
        ({"offset": None}, "offset must be an int >= 0 (got None); pass how many runs to skip"),
    ],
)  # fmt: skip
def test_bad_pages_are_refused(stores: Any, kwargs: dict[str, Any], message: str) -> None:
    exp_id, targets = stores
    for target in targets:
        with pytest.raises(ConfigError) as caught:
            query_runs(target, exp_id, **kwargs)
        assert str(caught.value) == message


def test_pages(stores: Any) -> None:
    exp_id, targets = stores
    for target in targets:
        assert query_runs(target, exp_id, limit=0) == (3, [])
        total, page = query_runs(target, exp_id, limit=None, offset=1)
        assert (total, [r.run_id for r in page]) == (3, [2, 3])
        total, page = query_runs(target, exp_id, limit=1, offset=0)
        assert (total, [r.run_id for r in page]) == (3, [1])
        total, page = query_runs(target, exp_id, where="  ", limit=5, offset=2)
        assert (total, [r.run_id for r in page]) == (3, [3])


def test_result_and_error_columns_in_both_back_ends(tmp_path: Any) -> None:
    from trialbook.storage.records import ErrorInfo

    store = open_store(tmp_path / "s")
    try:
        exp = store.create_experiment("e")
        store.write_runs(
            exp.id,
            [
                RunRecord(1, result=0.5),
                RunRecord(2, error=ErrorInfo("ValueError", "bad")),
                RunRecord(3, result="done"),
            ],
        )
        for target in (store, GenericStore(store)):
            for where, expected in [
                ("result == 0.5", [1]),
                ("result == 'done'", [3]),
                ("result != None", [1, 3]),
                ("error == 'ValueError'", [2]),
                ("error == None", [1, 3]),
            ]:
                total, page = query_runs(target, exp.id, where=where)
                assert (total, [r.run_id for r in page]) == (len(expected), expected), where
    finally:
        store.close()


@pytest.mark.parametrize(
    ("where", "kept"),
    [
        # a = 2 and b = 2 in run 1; b is missing in run 2
        ("not (a == 1 or b == 1)", [1]),  # false or false = false; false or unknown = unknown
        ("a == 1 or b == 1", []),
        ("a == 2 or b == 1", [1, 2]),  # true or unknown = true
        ("not (a == 1 and b == 1)", [1, 2]),  # false and unknown = false
        ("not (a == 2 and b == 2)", []),  # true and unknown = unknown
        ("a == 2 and b == 2", [1]),
        ("not (b == 2)", []),
    ],
)
def test_three_valued_logic_of_the_python_back_end(where: str, kept: list[int]) -> None:
    runs = [RunRecord(1, params={"a": 2, "b": 2}), RunRecord(2, params={"a": 2})]
    keep = parse_query(where).predicate()
    assert [r.run_id for r in runs if keep(r)] == kept


def test_columns_are_present_in_every_run() -> None:
    for name in ("status", "duration", "error"):
        assert parse_name(name).present(RunRecord(1))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("f(x)", "a call (`f(x)`) at column 1"),
        ("x if y else z", "a conditional expression (`x if y else z`) at column 1"),
    ],
)
def test_refused_conditions_name_the_kind_of_expression(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_query(text)
    assert str(caught.value) == f"bad query {text!r}: {message} is not allowed; {SYNTAX}"


def test_chained_comparisons_check_every_link() -> None:
    run = RunRecord(1, params={"a": 2, "b": 3})
    for text, expected in [("0 < a < 1", False), ("0 < a < b", True), ("a < b < 1", False)]:
        assert parse_query(text).predicate()(run) is expected, text


def test_the_quoting_advice_keeps_the_rest_of_the_query(stores: Any) -> None:
    exp_id, targets = stores
    for target in targets:
        with pytest.raises(ConfigError) as caught:
            query_runs(target, exp_id, where="hinge == loss")
        assert str(caught.value).endswith('to compare with a text, quote it: "hinge" == loss')


def test_infinities_and_nan_inside_values_read_like_sqlite(tmp_path: Any) -> None:
    store = open_store(tmp_path / "s")
    try:
        exp = store.create_experiment("e")
        inf, nan = float("inf"), float("nan")
        store.write_runs(exp.id, [RunRecord(1, params={"v": [nan, -inf, inf], "d": {"a": -inf}})])
        for target in (store, GenericStore(store)):
            for where in ('v == "[null,-9e999,9e999]"', 'd == "{\\"a\\":-9e999}"'):
                assert query_runs(target, exp.id, where=where)[0] == 1, (target, where)
    finally:
        store.close()


def test_the_default_page_is_100_runs(tmp_path: Any) -> None:
    store = open_store(tmp_path / "s")
    try:
        exp = store.create_experiment("e")
        store.write_runs(exp.id, [RunRecord(i) for i in range(1, 102)])
        for target in (store, GenericStore(store)):
            total, page = query_runs(target, exp.id)
            assert (total, len(page), page[-1].run_id) == (101, 100, 100)
    finally:
        store.close()


def test_a_store_with_its_own_query_runs_answers_itself() -> None:
    class Native:
        def query_runs(self, experiment_id: int, **kwargs: Any) -> Any:
            return ("native", experiment_id, kwargs)

        def read_runs(self, experiment_id: int) -> list[RunRecord]:
            raise AssertionError("the generic back end was used")

    assert query_runs(Native(), 7, limit=5) == (
        "native",
        7,
        {"where": None, "order_by": None, "descending": False, "limit": 5, "offset": 0},
    )
