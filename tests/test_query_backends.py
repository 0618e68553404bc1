"""Native queries of the team backends (PostgreSQL in SQL, MongoDB with a column filter, Redis
from the fields a query needs; issue 20 item 10): they agree with the Python evaluator on any
query, and a UI poll costs a bounded number of statements or commands, however many runs the
experiment has and however large their values."""

from __future__ import annotations

import contextlib
import itertools
import math
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import backend_location, require_module
from tests.test_query import GenericStore, queries, records

from trialbook.codecs import Encoded
from trialbook.errors import ConfigError
from trialbook.storage import open_store
from trialbook.storage.base import batches
from trialbook.storage.query import query_runs
from trialbook.storage.records import ErrorInfo, RunRecord

TEAM = ["postgres", "redis", "mongo"]
names = st.sampled_from(
    ["a", "b", "params.a", "fields.b", "tags.a", "metric.a", "status", "kind", "duration",
     "run_id", "seed", "key", "started", "result", "error", "params.a.b", "metric.a.min",
     "metric.b.max"]
)  # fmt: skip


# Documents PostgreSQL reads as jsonb (no NaN, infinity or NUL): the SQL itself answers.
_texts = st.sampled_from(["x", "Z", "é", "ä", "a b", "", "1", "[1,2]", '{"b":1,"a":[true]}'])
_numbers = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([2**53, 2**53 + 1, 2**60, 2**60 + 1, 10**20, -(2**63), 2**70]),
    st.sampled_from([0.1, 0.5, 2.0, -0.0, 1e-7, 2.0**53, 2.0**60, 1e20, -1e300, 2.0**70]),
)
_plain = st.one_of(st.none(), st.booleans(), _numbers, _texts)
_values = st.one_of(
    _plain,
    st.lists(_plain, max_size=2),
    st.dictionaries(st.sampled_from(["b", "a"]), _plain, max_size=2),
)
_slots = st.dictionaries(st.sampled_from(["a", "b"]), _values, max_size=2)
finite_records = st.lists(
    st.builds(
        dict,
        status=st.sampled_from(["done", "failed", "running", "Done", "é"]),
        params=_slots,
        fields=_slots,
        tags=_slots,
        metrics=st.dictionaries(
            st.sampled_from(["a", "b"]),
            st.one_of(
                st.tuples(st.just(1), _plain), st.tuples(st.just(2), _plain, _plain, _plain)
            ).map(list),
            max_size=2,
        ),
        key=st.one_of(st.none(), st.sampled_from(["1", "k", "é"])),
        seed=st.one_of(st.none(), st.integers(0, 2), st.just(2**60 + 1)),
        created=st.one_of(st.none(), st.sampled_from([0.1, 1.5, 2.0**60, 1e300])),
        started=st.one_of(st.none(), st.sampled_from([0.0, 0.1, 2.5])),
        finished=st.one_of(st.none(), st.sampled_from([0.3, 1.0, 2.0**60])),
    ),
    max_size=10,
)
_finite_names = st.sampled_from(
    ["a", "b", "params.a", "fields.b", "tags.a", "params.a.b", "metric.a", "metric.b", "status",
     "key", "seed", "created", "duration", "run_id", "metric.a.min", "metric.b.max"]
)  # fmt: skip
_literals = st.one_of(_plain, _numbers).map(repr)
_comparisons = st.one_of(
    st.builds("{} {} {}".format, _finite_names,
              st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
              st.one_of(_literals, _finite_names)),
    st.builds("{} {} [{}]".format, _finite_names, st.sampled_from(["in", "not in"]),
              st.lists(_literals, max_size=3).map(", ".join)),
)  # fmt: skip
finite_queries = st.recursive(
    _comparisons,
    lambda inner: st.one_of(
        st.builds("({} and {})".format, inner, inner),
        st.builds("({} or {})".format, inner, inner),
        st.builds("not ({})".format, inner),
    ),
    max_leaves=4,
)


@pytest.fixture(params=[*TEAM, "sqlcore"])
def team_store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Any]:
    """A store of each team backend, and the SQL store on SQLite (no JSON operators: the
    light-runs path every other database takes)."""
    if request.param == "sqlcore":
        from trialbook.storage.sql import SqlStore

        store = SqlStore(f"sqlite+pysqlite:///{tmp_path / 'core.db'}")
        yield store
        store.close()
        return
    with backend_location(request.param, tmp_path) as location:
        store = open_store(location)
        yield store
        store.close()


def outcome(source: Any, experiment_id: int, **kwargs: Any) -> Any:
    """The total and page ids of a query, or the error of a name no run has."""
    try:
        total, page = query_runs(source, experiment_id, **kwargs)
    except ConfigError as exc:
        return str(exc)
    return total, [r.run_id for r in page]


def test_native_queries_agree_with_the_python_evaluator(team_store: Any) -> None:
    """Any query over any runs (NaN, infinities, lists, missing values, columns of every type):
    the store's own query and the Python evaluator over its runs give the same count and page,
    and the same count alone (the MongoDB column filter's ``count``)."""
    store = team_store
    counter = itertools.count()
    slow = "Mongo" in store.backend_label

    @settings(max_examples=40 if slow else 120, deadline=None,
              suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
    @given(rows=records, where=queries, order_by=names, descending=st.booleans(),
           offset=st.integers(0, 3), result=st.sampled_from([None, 1, "x", [1.5]]))  # fmt: skip
    def check(rows: list[dict[str, Any]], where: str, *, order_by: str, descending: bool,
              offset: int, result: Any) -> None:  # fmt: skip
        exp = store.create_experiment(f"e{next(counter)}")
        runs = [RunRecord(i + 1, **row) for i, row in enumerate(rows)]
        for run in runs[::2]:
            run.result = result
        if runs:
            runs[0].error = ErrorInfo("ValueError", "bad", "")
        store.write_runs(exp.id, runs)
        for kwargs in [
            {"where": where, "order_by": order_by, "descending": descending},
            {"where": where, "limit": 0},
            {"where": where, "order_by": order_by, "limit": 3, "offset": offset},
        ]:
            native = outcome(store, exp.id, **kwargs)
            assert native == outcome(GenericStore(store), exp.id, **kwargs), kwargs

    check()


def test_native_queries_agree_on_documents_sql_reads(team_store: Any) -> None:
    """Documents without NaN, infinities or NUL (on PostgreSQL the SQL answers, not the
    fallback): texts by code point, lists and objects as their JSON text, integers and floats
    beyond 2**53, columns of every type; the same answers as the Python evaluator."""
    store = team_store
    counter = itertools.count()
    slow = "Mongo" in store.backend_label

    @settings(max_examples=40 if slow else 150, deadline=None,
              suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
    @given(rows=finite_records, where=finite_queries, order_by=_finite_names,
           descending=st.booleans())  # fmt: skip
    def check(rows: list[dict[str, Any]], where: str, order_by: str, descending: bool) -> None:
        exp = store.create_experiment(f"f{next(counter)}")
        store.write_runs(exp.id, [RunRecord(i + 1, **row) for i, row in enumerate(rows)])
        for kwargs in [
            {"where": where, "order_by": order_by, "descending": descending},
            {"where": where, "limit": 0},
        ]:
            native = outcome(store, exp.id, **kwargs)
            assert native == outcome(GenericStore(store), exp.id, **kwargs), kwargs

    check()


def test_floats_beyond_64_bits_compare_exactly_with_integers(team_store: Any) -> None:
    """A float of 2**63 or more is an integer, and equals that integer as in Python
    (``2.0**70 == 2**70``), on every backend: PostgreSQL compared the decimal of its shortest
    text (found by the fuzzing above)."""
    store = team_store
    big = [2.0**63, 2.0**70, 2.0**70 + 2**18, -(2.0**100), 1.7976931348623157e308, 9.3e18]
    exp = store.create_experiment("floats")
    store.write_runs(exp.id, [RunRecord(i + 1, tags={"a": x}) for i, x in enumerate(big)])
    for i, x in enumerate(big):
        for where in (f"a == {int(x)}", f"a >= {int(x)} and a <= {int(x)}"):
            assert outcome(store, exp.id, where=where) == (1, [i + 1]), where
        assert outcome(store, exp.id, where=f"a == {int(x) + 1}") == (0, [])
        assert outcome(store, exp.id, where=f"a > {int(x) - 1} and a < {int(x) + 1}") == (
            1, [i + 1])  # fmt: skip
    assert outcome(store, exp.id, where="a == 1180591620717411303424") == (1, [2])
    assert outcome(store, exp.id, order_by="a") == (6, [4, 1, 6, 2, 3, 5])


def test_documents_jsonb_refuses_are_queried_in_python(team_store: Any) -> None:
    """NaN, infinities and NUL characters (which PostgreSQL's ``jsonb`` refuses) in some
    documents: the answer is the Python evaluator's, on every backend."""
    store = team_store
    exp = store.create_experiment("nan")
    store.write_runs(exp.id, [
        RunRecord(1, params={"lr": 0.1, "s": "NaN"}, metrics={"loss": [3, math.nan]}),
        RunRecord(2, params={"lr": 0.2, "v": [math.inf]}, metrics={"loss": [3, math.inf]}),
        RunRecord(3, params={"lr": 0.3, "s": "a\x00b"}, metrics={"loss": [3, 1.0]}),
        RunRecord(4, params={"lr": 0.4}, fields={"note": "Infinity and beyond"}),
    ])  # fmt: skip
    for where, order_by, expected in [
        ("lr > 0", "lr", (4, [1, 2, 3, 4])),
        ("metric.loss > 0", "metric.loss", (2, [3, 2])),
        ("metric.loss == None", None, (2, [1, 4])),
        ('params.s == "NaN"', None, (1, [1])),
        ('params.s == "a\\x00b"', None, (1, [3])),
        ('params.v == "[9e999]"', None, (1, [2])),
        ('note != "x"', None, (1, [4])),
    ]:
        assert outcome(store, exp.id, where=where, order_by=order_by) == expected, where


def test_a_name_only_an_array_has_is_unknown_on_every_backend(team_store: Any) -> None:
    """Names are those of the run documents, on every store (SQLite's SQL included): a value
    kept in the bundle (an array) is missing for filters, and a name no document has is
    refused, naming it, and saying what it holds when runs keep it in their bundles."""
    store = team_store
    exp = store.create_experiment("arrays")
    store.write_runs(exp.id, [
        RunRecord(1, fields={"w": Encoded("npy", b"123"), "n": 1}),
        RunRecord(2, fields={"n": 2}),
    ])  # fmt: skip
    assert outcome(store, exp.id, where="n >= 1") == (2, [1, 2])
    assert "`w` at column 1 holds arrays" in outcome(store, exp.id, where="w == None")
    assert "`nothing` at column 1 is not a parameter, field or tag" in outcome(
        store, exp.id, where="nothing == 1"
    )
    local = open_store("sqlite:///:memory:")
    same = local.create_experiment("arrays")
    copies = store.read_runs(exp.id)
    for run in copies:
        run.version = None  # new runs of the other store (no stored version to compare)
    local.write_runs(same.id, copies)
    assert outcome(local, same.id, where="w == None") == outcome(store, exp.id, where="w == None")
    local.close()


# -- the cost of a UI poll: statements and commands ---------------------------------------------


class Counter:
    """Statements (PostgreSQL), commands (Redis) or commands (MongoDB) a store sent."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *args: Any) -> None:
        self.count += 1


@contextlib.contextmanager
def counted_store(backend: str, location: str, counter: Counter) -> Iterator[Any]:
    """The store at ``location`` with every statement or command it sends counted."""
    if backend == "postgres":
        from trialbook.storage.sql import SqlStore

        store: Any = SqlStore(location, tracer=counter)
        yield store
        store.close()
        return
    if backend == "redis":
        import redis

        from trialbook.storage.redis import RedisStore
        from trialbook.storage.urls import take_param

        class Counting(redis.Connection):
            def send_command(self, *args: Any, **kwargs: Any) -> None:
                counter()
                super().send_command(*args, **kwargs)

            def pack_commands(self, commands: Any) -> Any:
                counter.count += len(commands)
                return super().pack_commands(commands)

        url, prefix = take_param(location, "prefix")
        pool = redis.ConnectionPool.from_url(url, connection_class=Counting)
        store = RedisStore(None, pool=pool, prefix=prefix)
        yield store
        store.close()
        pool.disconnect()
        return
    import pymongo
    from pymongo import monitoring

    from trialbook.storage.mongo import MongoStore

    class Listener(monitoring.CommandListener):
        def started(self, event: Any) -> None:
            counter()

        def succeeded(self, event: Any) -> None:
            pass

        def failed(self, event: Any) -> None:
            pass

    client: Any = pymongo.MongoClient(location, event_listeners=[Listener()])
    yield MongoStore(client.get_default_database())
    client.close()


BIG = 256 * 1024 + 1
"""A field just over the inline limit: each run's goes to the blob area."""


def add_runs(store: Any, experiment_id: int, first: int, count: int, running: int) -> None:
    """``count`` runs from id ``first``, each with a large field of its own; ``running`` of
    them running, the others done."""
    for ids in batches(range(first, first + count), 25):
        store.write_runs(experiment_id, [
            RunRecord(i, status="running" if i - first < running else "done",
                      params={"lr": (i % 100) / 100, "model": "mlp" if i % 2 else "cnn"},
                      fields={"weights": Encoded("npy", i.to_bytes(4, "little") * (BIG // 4 + 1)),
                              "size": i})
            for i in ids
        ])  # fmt: skip


@pytest.mark.parametrize("backend", TEAM)
def test_a_ui_poll_costs_the_same_on_100_and_200_runs(backend: str, tmp_path: Any) -> None:
    """The UI's status poll (run counts by status and the running runs) and a filtered, sorted
    page of runs with large fields, and a read of every run: a small number of statements
    (PostgreSQL) or commands (Redis, MongoDB), the same for 100 runs and for 200. (Before: one
    statement or command per run and per large value, e.g. 1,007 statements for the status
    poll on 200 runs on PostgreSQL, 2,011 commands on Redis.)"""
    require_module("starlette", "ui")
    from starlette.testclient import TestClient

    from trialbook.web import create_app

    counter = Counter()
    with (
        backend_location(backend, tmp_path) as location,
        counted_store(backend, location, counter) as store,
    ):
        exp = store.create_experiment("big")
        with TestClient(create_app(store, token="t"), headers={"Authorization": "Bearer t"}) as ui:

            def cost(path: str) -> int:
                before = counter.count
                reply = ui.get(path)
                assert reply.status_code == 200, reply.text
                return counter.count - before

            page = "/api/experiments/big/runs?where=lr%20%3E%3D%200.2%20and%20model%20%3D%3D%20%22mlp%22&order_by=lr&descending=1&limit=30"  # noqa: E501

            def read_all() -> int:  # every run with its large field: blobs in batches
                before = counter.count
                assert all(r.fields["weights"].size > BIG for r in store.read_runs(exp.id))
                return counter.count - before

            add_runs(store, exp.id, 1, 100, running=5)
            cost("/api/experiments/big/status")  # a first call may load the Redis script
            costs = [(cost("/api/experiments/big/status"), cost(page), read_all())]
            add_runs(store, exp.id, 101, 100, running=0)
            costs.append((cost("/api/experiments/big/status"), cost(page), read_all()))
            body = ui.get("/api/experiments/big/status").json()
            assert body["counts"]["running"] == 5 and body["counts"]["done"] == 195
            assert len(body["live"]) == 5
            rows = ui.get(page).json()
            assert rows["total"] == 80 and len(rows["runs"]) == 30
    # the poll and the page cost the same on 200 runs as on 100; reading every run costs one
    # statement or command per batch (on mongoeco also one per reply of more than 48 MB)
    assert [c[:2] for c in costs] == [costs[0][:2]] * 2, costs
    assert all(poll <= 20 and listing <= 12 and read <= 4 for poll, listing, read in costs), costs


def test_postgres_narrows_by_run_id_through_the_index(tmp_path: pathlib.Path) -> None:
    """Conjuncts comparing ``run_id`` with integers are also written as plain conditions on the
    indexed column (an export's chunks, a page read by ids), with the same answers."""
    from trialbook.storage.sql_query import pg_query

    sql, params = pg_query('"t"', 1, "run_id > 3 and 8 >= run_id and params.x != 2",
                           order_by=None, descending=False, limit=10, offset=0)  # fmt: skip
    assert "run_id > :r0 AND run_id <= :r1" in sql and (params["r0"], params["r1"]) == (3, 8)
    with backend_location("postgres", tmp_path) as location, open_store(location) as store:
        exp = store.create_experiment("narrow")
        store.write_runs(exp.id, [RunRecord(i, params={"x": i % 3}) for i in range(1, 13)])
        wheres = ["run_id > 3 and 8 >= run_id and params.x != 2", "run_id in [2, 5, 99]",
                  "run_id == True", "run_id < 1180591620717411303424 and run_id >= 11",
                  "run_id > 3.5", "(run_id > 10 or params.x == 0) and run_id <= 11"]  # fmt: skip
        for where in wheres:
            assert outcome(store, exp.id, where=where) == outcome(
                GenericStore(store), exp.id, where=where), where  # fmt: skip


def test_postgres_scans_without_jit_in_their_transaction_only(tmp_path: pathlib.Path) -> None:
    """A statement reading every run (a filter, a grouping, the kept columns' read) runs
    without JIT compilation (half a second at a million runs, for nothing), set for its
    transaction only: the pooled connection goes back to the server's setting. Its answer is
    the same."""
    from trialbook.storage.sql_engine import for_scan

    with backend_location("postgres", tmp_path) as location, open_store(location) as store:
        engine = store._db.engine
        with engine.connect() as conn:
            default = conn.exec_driver_sql("SHOW jit").scalar()
        with engine.connect() as conn:
            work_mem = conn.exec_driver_sql("SHOW work_mem").scalar()
            for_scan(conn)
            assert conn.exec_driver_sql("SHOW jit").scalar() == "off"
            assert conn.exec_driver_sql("SHOW work_mem").scalar() == "32MB"
            conn.rollback()
            assert conn.exec_driver_sql("SHOW jit").scalar() == default
            assert conn.exec_driver_sql("SHOW work_mem").scalar() == work_mem
        exp = store.create_experiment("scan")
        store.write_runs(exp.id, [RunRecord(i, params={"x": i % 3}) for i in range(1, 30)])
        for where in ["params.x == 1", "params.x > 0 and run_id < 20", None]:
            assert outcome(store, exp.id, where=where) == outcome(
                GenericStore(store), exp.id, where=where), where  # fmt: skip
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW jit").scalar() == default


def test_postgres_bulk_writes_refresh_the_planners_statistics(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write of many runs (``ANALYZE_AFTER``, made small here) analyzes the runs table at
    once, in create_experiment and write_runs: the planner then knows the new runs' number."""
    import sqlalchemy as sa

    from trialbook.storage import sql

    monkeypatch.setattr(sql, "ANALYZE_AFTER", 20)

    def analyzed(store: Any) -> Any:
        return store._db.read(
            sa.text("SELECT last_analyze FROM pg_stat_user_tables WHERE schemaname = :s AND "
                    "relname = 'trialbook_runs'"), {"s": store._db.schema or "public"},
        )[0][0]  # fmt: skip

    with backend_location("postgres", tmp_path) as location, open_store(location) as store:
        exp = store.create_experiment("few")
        store.write_runs(exp.id, [RunRecord(i) for i in range(1, 10)])
        assert analyzed(store) is None
        store.create_experiment("many", runs=[RunRecord(i) for i in range(1, 30)])
        first = analyzed(store)
        assert first is not None
        store.write_runs(exp.id, [RunRecord(i) for i in range(10, 40)])
        assert analyzed(store) > first
