"""The columns of run values the UI keeps in memory (storage/value_cache.py, value_columns.py):
an answer from them is the store's answer (any filter, sort and grouping over any values), a
commit by any process makes them read again, and what they cannot answer exactly goes to the
store."""

from __future__ import annotations

import itertools
import pathlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import backend_location
from tests.test_query import names, queries, records
from tests.test_query_backends import _finite_names, finite_queries, finite_records

from trialbook.errors import ConfigError
from trialbook.storage import open_store
from trialbook.storage.query import parse_name, query_runs
from trialbook.storage.records import RunRecord
from trialbook.storage.value_cache import ValueCache, cached_groups, cached_page, value_cache

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Any]:
    with backend_location(request.param, tmp_path) as location, open_store(location) as store:
        value_cache(store).min_runs = 0  # type: ignore[union-attr]
        yield store


def cached(store: Any, experiment_id: int, **kwargs: Any) -> Any:
    """The cache's answer once its columns are read (``None`` if it leaves this to the
    store), or the error of a name no run has."""
    args = {"where": None, "order_by": None, "descending": False, "limit": 100, "offset": 0,
            "meta": {}, **kwargs}  # fmt: skip
    try:
        cached_page(store, experiment_id, **args)
        value_cache(store).wait()  # type: ignore[union-attr]
        answer = cached_page(store, experiment_id, **args)
    except ConfigError as exc:
        return str(exc)
    if answer is None:
        return None
    total, page = answer
    return total, [r.run_id for r in page]


def stored(store: Any, experiment_id: int, **kwargs: Any) -> Any:
    try:
        total, page = query_runs(store, experiment_id, **kwargs)
    except ConfigError as exc:
        return str(exc)
    return total, [r.run_id for r in page]


def test_answers_are_the_stores_on_any_query(store: Any) -> None:
    """Any runs (NaN, infinities, ints beyond 64 bits, lists, texts against numbers) and any
    filter and sort: the cache gives the store's count and page, or leaves the query to it."""
    counter = itertools.count()
    answered = []

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(rows=st.one_of(records, finite_records), where=st.one_of(queries, finite_queries),
           order_by=st.one_of(names, _finite_names), descending=st.booleans(),
           offset=st.integers(0, 3))  # fmt: skip
    def check(rows: list[dict[str, Any]], where: str, order_by: str, descending: bool,
              offset: int) -> None:  # fmt: skip
        exp = store.create_experiment(f"e{next(counter)}")
        store.write_runs(exp.id, [RunRecord(i + 1, **row) for i, row in enumerate(rows)])
        for kwargs in [
            {"where": where, "order_by": order_by, "descending": descending},
            {"where": where, "limit": 3, "offset": offset},
            {"order_by": order_by, "descending": descending, "limit": 4, "offset": offset},
        ]:
            answer = cached(store, exp.id, **kwargs)
            if answer is not None:
                assert answer == stored(store, exp.id, **kwargs), kwargs
            answered.append(answer is not None)

    check()
    # PostgreSQL leaves experiments with NaN (not in jsonb) to the store: fewer answered
    assert sum(answered) > len(answered) / 4, "the cache answered too few queries to test it"


def test_groups_are_the_stores(store: Any) -> None:
    """Grouped by one or two names with measures, filtered or not: the store's groups."""
    counter = itertools.count()
    answered = []
    group_names = ["params.a", "fields.b", "tags.a", "metric.a", "status", "params.a.b", "seed"]

    # PostgreSQL leaves experiments with NaN (not in jsonb) to the store: finite runs there
    runs = (
        finite_records if type(store).__name__ == "SqlStore" else st.one_of(records, finite_records)
    )

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(rows=runs, where=st.one_of(st.none(), finite_queries),
           keys=st.lists(st.sampled_from(group_names), min_size=1, max_size=2, unique=True),
           measures=st.lists(st.sampled_from(group_names), max_size=3, unique=True))  # fmt: skip
    def check(rows: list[dict[str, Any]], where: str | None, keys: list[str],
              measures: list[str]) -> None:  # fmt: skip
        exp = store.create_experiment(f"g{next(counter)}")
        store.write_runs(exp.id, [RunRecord(i + 1, **row) for i, row in enumerate(rows)])
        args = {"where": where, "keys": [parse_name(k) for k in keys],
                "measures": [parse_name(m) for m in measures]}  # fmt: skip
        try:
            expected = store.group_runs(exp.id, **args)
        except ConfigError:
            return
        cached_groups(store, exp.id, meta={}, **args)  # not kept yet: starts reading them
        value_cache(store).wait()  # type: ignore[union-attr]
        answer = cached_groups(store, exp.id, meta={}, **args)
        answered.append(answer is not None)
        if answer is None:
            return
        assert sorted(map(repr, (g[:2] for g in answer))) == sorted(
            map(repr, (g[:2] for g in expected)))  # fmt: skip
        sums = {repr(g[0]): g[2] for g in expected}
        for ident, _, totals in answer:
            for (n, s, q), (n2, s2, q2) in zip(totals, sums[repr(ident)], strict=True):
                assert n == n2
                assert s == pytest.approx(s2, rel=1e-9, abs=1e-9)
                assert q == pytest.approx(q2, rel=1e-9, abs=1e-9)

    check()
    assert sum(answered) > len(answered) / 4, "the cache answered too few groupings to test it"


def test_a_commit_by_another_process_is_seen(store: Any, tmp_path: pathlib.Path) -> None:
    """Columns kept, then another Python process changes a run: the next answer reads again
    and is the new one (never the kept one)."""
    exp = store.create_experiment("live")
    store.write_runs(exp.id, [RunRecord(i, params={"x": i}) for i in range(1, 11)])
    cache = value_cache(store)
    assert cached(store, exp.id, where="x > 5") == (5, [6, 7, 8, 9, 10])
    reads = cache.reads
    assert cached(store, exp.id, where="x > 7") == (3, [8, 9, 10])
    assert cache.reads == reads  # answered from memory
    script = textwrap.dedent(f"""
        from trialbook.storage import open_store
        from trialbook.storage.records import RunRecord
        with open_store({store.url!r}) as store:
            store.write_runs({exp.id}, [RunRecord(2, params={{"x": 100}})])
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    assert cached(store, exp.id, where="x > 7") == (4, [2, 8, 9, 10])
    assert (cache.reads, cache.updates) == (reads, 1)  # only the run written since is read


def test_a_live_experiment_reads_only_what_changed(store: Any) -> None:
    """A commit to another experiment keeps the columns as they are; a write to this one reads
    only the runs it wrote (new ids in any order, values replaced, texts new to a column); a
    delete makes them read whole again. Every answer is the store's."""
    cache = value_cache(store)
    exp, other = store.create_experiment("live"), store.create_experiment("other")
    store.write_runs(exp.id, [RunRecord(i, params={"x": i, "o": "b"}) for i in range(1, 9)])
    queries = [
        {"where": "x > 2", "order_by": "o", "descending": True},
        {"where": 'o == "a" or x < 3'},
        {"order_by": "x", "limit": 3, "offset": 1},
    ]

    def same() -> None:
        for kwargs in queries:
            assert cached(store, exp.id, **kwargs) == stored(store, exp.id, **kwargs), kwargs

    same()
    reads = cache.reads  # type: ignore[union-attr]
    store.write_runs(other.id, [RunRecord(1, params={"x": 100})])
    store.update_meta(exp.id, {"live:w": {"beat": 1.0, "runs": []}})  # a heartbeat
    same()
    assert (cache.reads, cache.updates) == (reads, 0)  # type: ignore[union-attr]
    store.write_runs(exp.id, [RunRecord(12, params={"x": -1, "o": "a"}),
                              RunRecord(3, params={"x": 30, "o": "c"}),
                              RunRecord(10, params={"x": 1.5})])  # fmt: skip
    same()
    assert (cache.reads, cache.updates) == (reads, 1)  # type: ignore[union-attr]
    store.write_runs(exp.id, [RunRecord(9, status="done", params={"x": 9, "o": "a"})])
    same()
    assert (cache.reads, cache.updates) == (reads, 2)  # type: ignore[union-attr]
    store.delete_runs(exp.id, [2])
    same()
    assert cache.reads > reads and cache.updates == 2  # type: ignore[union-attr]


def test_live_writes_keep_answers_the_stores(store: Any) -> None:
    """Any runs written, rewritten or deleted between any queries: the kept columns, updated
    with the runs written since, answer as the store does."""
    ops = st.lists(st.one_of(
        st.tuples(st.just("write"), st.lists(st.integers(1, 12), min_size=1, max_size=4,
                                             unique=True), finite_records),
        st.tuples(st.just("delete"), st.lists(st.integers(1, 12), max_size=2), st.none()),
    ), min_size=1, max_size=4)  # fmt: skip
    counter = itertools.count()
    updated: list[bool] = []
    answered: list[bool] = []
    cache = value_cache(store)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(rows=finite_records, steps=ops, where=finite_queries, order_by=_finite_names)
    def check(rows: list[dict[str, Any]], steps: list[Any], where: str,
              order_by: str) -> None:  # fmt: skip
        exp = store.create_experiment(f"e{next(counter)}")
        store.write_runs(exp.id, [RunRecord(i + 1, **row) for i, row in enumerate(rows)])
        kwargs = {"where": where, "order_by": order_by}
        before = cache.updates  # type: ignore[union-attr]
        for op, ids, values in [("read", [], None), *steps]:
            if op == "write":
                pairs = zip(ids, itertools.cycle(values or [{}]))
                store.write_runs(exp.id, [RunRecord(i, **v) for i, v in pairs])
            elif op == "delete":
                store.delete_runs(exp.id, ids)
            answer = cached(store, exp.id, **kwargs)
            if answer is not None:
                assert answer == stored(store, exp.id, **kwargs), (op, ids)
                answered.append(op != "read")
        updated.append(cache.updates > before)  # type: ignore[union-attr]

    check()
    # the examples are random: updates were 8 to 43 of 60 in 20 runs (a quarter, asked for
    # before, failed 2 runs in 6); a few are enough to tell that the path was tested
    assert sum(updated) >= 3, "too few columns were updated to test it"
    assert sum(answered) >= 10, "too few answers after a change to test it"


def test_what_the_columns_cannot_answer_goes_to_the_store(store: Any) -> None:
    """Two names compared, an int constant beyond 2**53, a column holding an int beyond 2**53,
    lost runs: the cache answers ``None`` and the table asks the store."""
    exp = store.create_experiment("edges")
    store.write_runs(exp.id, [RunRecord(1, params={"x": 1, "y": 2, "big": 2**60}),
                              RunRecord(2, params={"x": 3, "y": 2, "big": 1})])  # fmt: skip
    assert cached(store, exp.id, where="x < y") is None
    assert cached(store, exp.id, where="x < 9007199254740993") is None
    assert cached(store, exp.id, where="big > 0") is None
    assert cached(store, exp.id, order_by="big") is None
    assert cached(store, exp.id, where="x > 2") == (1, [2])
    lost = {"live:w": {"beat": 0.0, "runs": [1]}}
    assert cached_page(store, exp.id, where="x > 0", order_by=None, descending=False,
                       limit=10, offset=0, meta=lost) is None  # fmt: skip


def test_the_budget_keeps_answers_right(tmp_path: pathlib.Path) -> None:
    """A budget smaller than one column: columns are dropped and read again, answers stay."""
    with open_store(tmp_path / "s") as store:
        cache = value_cache(store)
        cache.min_runs, cache.budget = 0, 1  # type: ignore[union-attr]
        exp = store.create_experiment("b")
        store.write_runs(exp.id, [RunRecord(i, params={"x": i, "y": -i}) for i in range(1, 21)])
        assert cached(store, exp.id, where="x > 15") == (5, [16, 17, 18, 19, 20])
        assert cached(store, exp.id, where="y > -3", order_by="x", descending=True) == (
            2, [2, 1])  # fmt: skip
        assert cached(store, exp.id, where="x > 18") == (2, [19, 20])


def test_small_experiments_are_left_to_the_store(tmp_path: pathlib.Path) -> None:
    with open_store(tmp_path / "s") as store:
        exp = store.create_experiment("small")
        store.write_runs(exp.id, [RunRecord(i, params={"x": i}) for i in range(1, 4)])
        assert cached(store, exp.id, where="x > 1") is None
        assert value_cache(store).reads == 0  # type: ignore[union-attr]


def test_the_smallest_64_bit_integer_is_a_measure(tmp_path: pathlib.Path) -> None:
    """SQLite's grouping read ``abs(-2**63)``, an integer overflow (found by the test above):
    the value is now a measure as any other, in SQL and from the columns."""
    with open_store(tmp_path / "s") as store:
        value_cache(store).min_runs = 0  # type: ignore[union-attr]
        exp = store.create_experiment("m")
        store.write_runs(exp.id, [RunRecord(1, params={"a": -(2**63)}), RunRecord(2)])
        args = {"where": None, "keys": [parse_name("status")], "measures": [parse_name("params.a")]}
        expected = [(("pending",), 2, [(1, -(2.0**63), 2.0**126)])]
        assert store.group_runs(exp.id, **args) == expected
        assert cached_groups(store, exp.id, meta={}, **args) is None  # read in the background
        value_cache(store).wait()  # type: ignore[union-attr]
        assert cached_groups(store, exp.id, meta={}, **args) == expected


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, list):
        return [rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_table_api_serves_the_same_views_from_kept_columns(
    backend: str, tmp_path: pathlib.Path
) -> None:
    """Over HTTP: the first page starts reading the table's columns; once kept, filtered and
    sorted pages and groups are answered from them, the same as the store's SQL answered."""
    from starlette.testclient import TestClient

    from trialbook.web.app import create_app

    auth = {"Authorization": "Bearer t"}
    runs = [RunRecord(i, status="done" if i % 3 else "failed",
                      params={"lr": [1e-3, 1e-2, 0.1][i % 3], "model": {"depth": i % 4},
                              "opt": "adam" if i % 2 else "sgd"},
                      fields={"acc": i / 50}, metrics={"loss": [3, 1 / i, 1 / i, 1.0]})
            for i in range(1, 61)]  # fmt: skip
    views = [
        ("table", {"where": 'lr >= 0.01 and status == "done"', "order_by": "params.model.depth",
                   "desc": "1", "limit": 7, "offset": 2}),
        ("table", {"where": "fields.acc < 0.5", "order_by": "metric.loss", "limit": 50}),
        ("table", {"order_by": "params.opt", "limit": 5, "offset": 20}),
        ("groups", {"group": "params.opt,params.model.depth", "cols": "fields.acc,metric.loss"}),
        ("groups", {"group": "params.lr", "where": "params.opt == 'adam'"}),
    ]  # fmt: skip
    with backend_location(backend, tmp_path) as location, open_store(location) as store:
        exp = store.create_experiment("t")
        store.write_runs(exp.id, runs)
        cache = value_cache(store)
        assert cache is not None
        with TestClient(create_app(store, token="t"), headers=auth) as client:

            def answers() -> list[Any]:  # floats to 9 digits: sums in another order
                return [rounded(client.get(f"/api/experiments/t/{what}", params=params).json())
                        for what, params in views]  # fmt: skip

            before = answers()  # small: the store's SQL answers
            assert cache.reads == 0
            cache.min_runs = 0
            client.get("/api/experiments/t/table", params={"limit": 50})  # starts the read
            assert cache.wait(60)
            reads = cache.reads
            assert reads >= 1
            assert answers() == before
            assert cache.reads == reads + 1  # `lr` (a bare name, not a column) read once more
            assert answers() == before
            assert cache.reads == reads + 1  # the rest from memory


def test_closing_the_store_while_columns_are_read(store: Any) -> None:
    """The store closed while its columns are read in the background: the read ends (with
    an error kept, or done), nothing is raised in the thread, and the cache waits no longer."""
    exp = store.create_experiment("closing")
    store.write_runs(exp.id, [RunRecord(i, params={"x": i, "s": str(i)}) for i in range(1, 5001)])
    cache = value_cache(store)
    assert cache is not None
    assert cache.columns(exp.id, [parse_name("x")], [parse_name("s")], wait=False) is None
    store.close()
    assert cache.wait(60)


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False),
                    st.integers(2**53, 2**60), st.text(max_size=2))  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(old=st.dictionaries(st.integers(1, 30), _VALUES),
       new=st.dictionaries(st.integers(1, 30), _VALUES))  # fmt: skip
def test_merged_columns_hold_the_latest_values(old: dict[int, Any], new: dict[int, Any]) -> None:
    """Kept columns with the runs written since merged in (rewritten, appended, or new among
    the others; texts new to the column) are the columns of the latest values."""
    import numpy as np

    from trialbook.storage.value_columns import Column, merged

    def column(values: dict[int, Any]) -> tuple[Any, Column]:
        ids = sorted(values)
        return np.array(ids, dtype=np.int64), Column.of([values[i] for i in ids])

    ids, kept = column(old)
    changed_ids, changed = column(new)
    got_ids, (got,) = merged(ids, [kept], changed_ids, [changed])
    want_ids, want = column({**old, **new})
    assert got_ids.tolist() == want_ids.tolist()
    assert got.kind.tolist() == want.kind.tolist()
    assert np.array_equal(got.num, want.num, equal_nan=True)
    assert got.words == sorted(got.words) and got.exact == want.exact
    texts = [[c.words[i] if i >= 0 else None for i in c.code.tolist()] for c in (got, want)]
    assert texts[0] == texts[1]


def test_an_older_copy_restored_is_read_whole(tmp_path: pathlib.Path) -> None:
    """The store restored from a backup taken before the kept columns' last update: its
    experiment counts fewer writes, so the columns are read whole again, not merged (with no
    value files; with them, see the next test)."""
    with open_store(tmp_path / "s") as store:
        cache = store._trialbook_value_cache = ValueCache(store, min_runs=0, directory=False)
        exp = store.create_experiment("r")
        store.write_runs(exp.id, [RunRecord(i, params={"x": i}) for i in range(1, 11)])
        store.backup(tmp_path / "copy")
        assert cached(store, exp.id, where="x > 8") == (2, [9, 10])
        store.write_runs(exp.id, [RunRecord(3, params={"x": 100})])
        assert cached(store, exp.id, where="x > 8") == (3, [3, 9, 10])
        reads = cache.reads  # type: ignore[union-attr]
        store.restore(tmp_path / "copy", force=True)
        assert stored(store, exp.id, where="x > 8") == (2, [9, 10])
        # just read: the store answers first (a quarter of the time at most reading again)
        assert cached(store, exp.id, where="x > 8") in (None, (2, [9, 10]))
        cache._rested.clear()  # type: ignore[union-attr]
        assert cached(store, exp.id, where="x > 8") == (2, [9, 10])
        assert cache.reads == reads + 1  # type: ignore[union-attr]


def backed_up(store: Any, copy: pathlib.Path) -> tuple[Any, Any]:
    """The store's cache and an experiment of ten runs, backed up to ``copy``."""
    cache = value_cache(store)
    cache.min_runs = 0  # type: ignore[union-attr]
    exp = store.create_experiment("r")
    store.write_runs(exp.id, [RunRecord(i, params={"x": i}) for i in range(1, 11)])
    store.backup(copy)
    return cache, exp


def test_an_older_copy_restored_takes_the_columns_saved_at_its_token(
    tmp_path: pathlib.Path,
) -> None:
    """The columns read at the backup's state were saved to a value file: once the backup is
    restored, the experiment's token is that state's again (its count and stamp), and the file
    answers without a read of the store."""
    with open_store(tmp_path / "s") as store:
        cache, exp = backed_up(store, tmp_path / "copy")
        assert cached(store, exp.id, where="x > 8") == (2, [9, 10])  # read, and saved
        store.write_runs(exp.id, [RunRecord(3, params={"x": 100})])
        assert cached(store, exp.id, where="x > 8") == (3, [3, 9, 10])  # updated in memory
        store.restore(tmp_path / "copy", force=True)
        assert cached(store, exp.id, where="x > 8") == (2, [9, 10])
        assert (cache.reads, cache.updates, cache.loads) == (1, 1, 1)  # type: ignore[union-attr]


def test_an_older_copy_restored_and_written_as_many_times_is_read_whole(
    tmp_path: pathlib.Path,
) -> None:
    """The store restored from a backup, then written as many times as the kept columns had
    seen since it: the experiment counts the same writes, but each write stamped it with a new
    random number, so the columns are read whole again, not trusted."""
    with open_store(tmp_path / "s") as store:
        cache, exp = backed_up(store, tmp_path / "copy")
        store.write_runs(exp.id, [RunRecord(3, params={"x": 100})])
        assert cached(store, exp.id, where="x > 8") == (3, [3, 9, 10])
        counted, reads = store.experiment_token(exp.id), cache.reads  # type: ignore[union-attr]
        store.restore(tmp_path / "copy", force=True)
        store.write_runs(exp.id, [RunRecord(4, params={"x": 200})])  # another second write
        token = store.experiment_token(exp.id)
        assert token[:3] == counted[:3] and token[3] != counted[3]
        assert stored(store, exp.id, where="x > 8") == (3, [4, 9, 10])
        cache._rested.clear()  # type: ignore[union-attr]
        assert cached(store, exp.id, where="x > 8") == (3, [4, 9, 10])
        assert cache.reads == reads + 1  # type: ignore[union-attr]
