"""The runs table API (issue 15): chosen columns, nested parameters as dotted columns, sorting
by any column (nested, metric min / max) on every backend, export as CSV and Parquet parsed
back, grouped counts and means."""

from __future__ import annotations

import csv
import io
import math
import pathlib
import statistics
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from conftest import backend_location
from trialbook.storage import open_store
from trialbook.storage.records import RunRecord
from trialbook.tracking import Run
from trialbook.web.app import create_app

TOKEN = "table-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BACKENDS = ["sqlite", "postgres", "redis", "mongo"]


def nested_runs() -> list[RunRecord]:
    """Ten runs with a nested config, a seed, an optimiser and a metric logged point by point
    (so that its summary holds count, last, min and max)."""
    records = []
    for i in range(1, 11):
        run = Run(i, params={"data": {"seed": (7 * i) % 10, "path": f"/d/{i}"},
                             "model": {"layers": i % 3, "act": "relu"},
                             "opt": "adam" if i % 2 else "sgd"})  # fmt: skip
        for step, x in enumerate([5.0 - i / 10, 1.0 + i, float(i)]):
            run.log_metric("loss", x, step=step)
        run.fields.update(acc=i / 10)
        run.status = "done"
        records.append(run.to_record())
    return records


@pytest.fixture(params=BACKENDS)
def client(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[TestClient]:
    with backend_location(request.param, tmp_path) as location:
        store = open_store(location)
        try:
            exp = store.create_experiment("nested")
            store.write_runs(exp.id, nested_runs())
            with TestClient(create_app(store, token=TOKEN), headers=AUTH) as client:
                yield client
        finally:
            store.close()


def ids(answer: dict[str, Any]) -> list[int]:
    return [row["run_id"] for row in answer["rows"]]


def test_nested_params_become_dotted_columns_and_metrics_last_min_max(client: TestClient) -> None:
    answer = client.get("/api/experiments/nested/table", params={"limit": 3}).json()
    keys = [c["key"] for c in answer["columns"]]
    assert keys[:5] == ["run_id", "kind", "status", "duration", "result"]
    assert {"params.data.seed", "params.data.path", "params.model.layers", "params.opt",
            "fields.acc", "metric.loss"} <= set(keys)  # fmt: skip
    hidden = {c["key"] for c in answer["available"]}
    assert {"metric.loss.min", "metric.loss.max"} <= hidden  # in the Columns menu, not shown
    chosen = "run_id,metric.loss.max,params.model.layers,metric.loss.min"
    answer = client.get("/api/experiments/nested/table", params={"cols": chosen}).json()
    assert [c["key"] for c in answer["columns"]] == chosen.split(",")
    first = answer["rows"][0]["cells"]
    assert first == [1, 4.9, 1, 1.0]  # points 4.9, 2.0, 1.0


@pytest.mark.parametrize(
    ("order_by", "desc", "expected"),
    [
        ("params.data.seed", False, [10, 3, 6, 9, 2, 5, 8, 1, 4, 7]),
        ("params.model.layers", True, [2, 5, 8, 1, 4, 7, 10, 3, 6, 9]),
        ("metric.loss.min", False, [1, 2, 3, 4, 10, 9, 8, 7, 6, 5]),  # 4 and 10: 4.0 each
        ("metric.loss.max", True, [10, 9, 8, 7, 6, 5, 4, 1, 2, 3]),
        ("metric.loss", True, [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]),
    ],
)
def test_sort_by_nested_and_metric_columns_on_every_backend(
    client: TestClient, order_by: str, desc: bool, expected: list[int]
) -> None:
    params = {"order_by": order_by, "desc": "1" if desc else "0", "limit": 20}
    answer = client.get("/api/experiments/nested/table", params=params).json()
    assert ids(answer) == expected
    page = client.get("/api/experiments/nested/table", params={**params, "limit": 3,
                                                               "offset": 3}).json()  # fmt: skip
    assert ids(page) == expected[3:6] and page["total"] == 10


def test_export_csv_and_parquet_parse_back(client: TestClient) -> None:
    import pyarrow.parquet as pq

    params = {"where": 'opt == "adam"', "order_by": "params.data.seed", "desc": "1",
              "cols": "run_id,params.data.seed,params.opt,metric.loss.min,fields.acc"}  # fmt: skip
    answer = client.get("/api/experiments/nested/export", params=params)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert "nested-runs.csv" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [int(r["run_id"]) for r in rows] == [7, 1, 5, 9, 3]
    assert list(rows[0]) == params["cols"].split(",")
    assert (rows[0]["params.data.seed"], rows[0]["params.opt"]) == ("9", "adam")
    assert float(rows[0]["metric.loss.min"]) == 4.3 and float(rows[0]["fields.acc"]) == 0.7
    parquet = client.get("/api/experiments/nested/export", params={**params, "format": "parquet"})
    assert parquet.status_code == 200
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column_names == params["cols"].split(",")
    assert str(table.schema.field("params.data.seed").type) == "int64"
    assert table.column("run_id").to_pylist() == [7, 1, 5, 9, 3]
    assert table.column("metric.loss.min").to_pylist() == pytest.approx([4.3, 1.0, 4.5, 4.1, 3.0])


def test_export_default_columns_and_errors(client: TestClient) -> None:
    answer = client.get("/api/experiments/nested/export")
    header = next(csv.reader(io.StringIO(answer.text)))
    assert header[:3] == ["run_id", "kind", "status"] and "params.data.seed" in header
    assert len(answer.text.strip().splitlines()) == 11
    bad = client.get("/api/experiments/nested/export", params={"format": "xlsx"})
    assert bad.status_code == 400 and "'csv'" in bad.json()["error"]
    bad = client.get("/api/experiments/nested/export", params={"where": "lr >> 1"})
    assert bad.status_code == 400 and "bad query" in bad.json()["error"]
    bad = client.get("/api/experiments/nested/table", params={"order_by": "params.a-b"})
    assert bad.status_code == 400 and "cannot sort by 'params.a-b'" in bad.json()["error"]


def test_grouped_counts_and_means(client: TestClient) -> None:
    params = {"group": "params.opt,params.model.layers",
              "cols": "params.data.seed,fields.acc,metric.loss.max,params.opt"}  # fmt: skip
    answer = client.get("/api/experiments/nested/groups", params=params).json()
    assert answer["total"] == 10 and answer["columns"] == [
        "params.data.seed", "fields.acc", "metric.loss.max"]  # fmt: skip
    runs = nested_runs()
    expected: dict[tuple[Any, ...], list[RunRecord]] = {}
    for run in runs:
        expected.setdefault((run.params["opt"], run.params["model"]["layers"]), []).append(run)
    got = {tuple(g["values"]): g for g in answer["groups"]}
    assert sorted(got) == sorted(expected)
    for ident, members in expected.items():
        group = got[ident]
        assert group["count"] == len(members)
        acc = [r.fields["acc"] for r in members]
        mean, std, n = group["stats"]["fields.acc"]
        assert n == len(acc) and math.isclose(mean, statistics.fmean(acc))
        assert (std is None) if n < 2 else math.isclose(std, statistics.stdev(acc))
        top = [r.metrics["loss"][3] for r in members]
        assert math.isclose(group["stats"]["metric.loss.max"][0], statistics.fmean(top))
        # the group's filter selects exactly its runs
        table = client.get("/api/experiments/nested/table",
                           params={"where": group["where"], "limit": 50}).json()  # fmt: skip
        assert sorted(ids(table)) == sorted(r.run_id for r in members)
    filtered = client.get("/api/experiments/nested/groups",
                          params={**params, "where": "fields.acc > 0.5"}).json()  # fmt: skip
    assert sum(g["count"] for g in filtered["groups"]) == 5
    assert all(g["where"].startswith("(fields.acc > 0.5) and ") for g in filtered["groups"])
    bad = client.get("/api/experiments/nested/groups")
    assert bad.status_code == 400 and "group=params.lr" in bad.json()["error"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_numpy_numbers_filter_sort_and_group(backend: str, tmp_path: pathlib.Path) -> None:
    """Fields and params that are NumPy numbers (what ``np.mean`` returns) are columns the
    table filters, sorts and groups by, as Python numbers are; their cells show the value."""
    import numpy as np

    runs = []
    for i in range(1, 9):
        run = Run(i, params={"opt": np.str_("adam" if i % 2 else "sgd"), "lr": np.float32(i / 10)})
        run.fields.update(acc=np.mean([i / 8, i / 8]), steps=np.int64(10 * i))
        runs.append(run.to_record())
    with backend_location(backend, tmp_path) as location, open_store(location) as store:
        store.create_experiment("np")
        store.write_runs(store.find_experiment("np").id, runs)
        with TestClient(create_app(store, token=TOKEN), headers=AUTH) as client:
            table = client.get("/api/experiments/np/table", params={
                "where": "fields.acc > 0.5 and lr < 0.75", "order_by": "fields.steps",
                "desc": "1", "cols": "run_id,fields.acc,params.lr,params.opt"}).json()  # fmt: skip
            assert ids(table) == [7, 6, 5]
            assert table["rows"][0]["cells"] == [7, 0.875, 0.7, "adam"]
            params = {"group": "params.opt", "cols": "fields.acc,fields.steps"}
            groups = client.get("/api/experiments/np/groups", params=params).json()
            got = {g["values"][0]: (g["count"], g["stats"]["fields.steps"][0])
                   for g in groups["groups"]}  # fmt: skip
            assert got == {"adam": (4, 40.0), "sgd": (4, 50.0)}


def test_groups_in_sql_agree_with_groups_read_run_by_run(tmp_path: pathlib.Path) -> None:
    """SQLite groups in one GROUP BY; any other store reads the runs a chunk at a time: both
    read values as the query language does (a dict as its JSON text, booleans the numbers 1
    and 0, texts not numbers, NaN and infinity left out)."""
    from trialbook.web.table import TableQuery, group_rows

    class Plain:  # the store without its native group_runs and query_runs
        def __init__(self, store: Any) -> None:
            self.read_runs = store.read_runs

    with open_store(tmp_path / "store") as store:
        exp = store.create_experiment("odd")
        store.write_runs(exp.id, [
            RunRecord(1, params={"k": True, "x": 1}), RunRecord(2, params={"k": True, "x": True}),
            RunRecord(3, params={"k": {"a": 1}, "x": float("nan")}),
            RunRecord(4, params={"k": "s", "x": "3"}), RunRecord(5, params={"x": float("inf")}),
            RunRecord(6, params={"k": 1, "x": 2.5}), RunRecord(7, params={"k": 1.0, "x": -4}),
        ])  # fmt: skip
        query = TableQuery(group=["params.k"])
        info = store.find_experiment("odd")
        native = group_rows(store, exp.id, query, ["params.x"], meta=info.meta)
        plain = group_rows(Plain(store), exp.id, query, ["params.x"], meta=info.meta)
        assert [{**g, "stats": None} for g in native["groups"]] == [
            {**g, "stats": None} for g in plain["groups"]]  # fmt: skip
        for a, b in zip(native["groups"], plain["groups"], strict=True):
            for key, stat in a["stats"].items():  # sums in SQL, Welford in Python
                assert stat == pytest.approx(b["stats"][key])
        assert [(g["values"], g["count"]) for g in native["groups"]] == [
            ([None], 1),
            ([1], 4),
            (["s"], 1),
            (['{"a":1}'], 1),
        ]  # true, 1 and 1.0: one value
        mean, std, n = native["groups"][1]["stats"]["params.x"]  # 1, True (1), 2.5 and -4
        assert n == 4 and math.isclose(mean, 0.125)
        assert math.isclose(std, statistics.stdev([1, 1, 2.5, -4]))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_groups_in_one_statement_on_sql_stores(backend: str, tmp_path: pathlib.Path) -> None:
    """SQLite and PostgreSQL group in one statement, with the answer of the chunked Python
    grouping (filters, nested keys, texts against numbers, booleans as 1 and 0, values beyond
    a float left out); a document PostgreSQL's ``jsonb`` refuses (NaN) makes it answer
    ``None``, and the table groups in Python, still right."""
    from trialbook.storage.query import parse_name
    from trialbook.web.table import TableQuery, group_rows

    class Plain:  # the store without its native group_runs and query_runs
        def __init__(self, store: Any) -> None:
            self.read_runs = store.read_runs

    runs = [RunRecord(i, status="done" if i % 5 else "failed",
                      params={"opt": ["adam", "sgd", 1, True][i % 4],
                              "model": {"depth": i % 3, "w": 0.5 * (i % 2)}},
                      fields={"acc": i / 7, "big": 10**400 if i == 3 else i, "flag": i % 2 == 0})
            for i in range(1, 41)]  # fmt: skip
    with backend_location(backend, tmp_path) as location, open_store(location) as store:
        exp = store.create_experiment("g")
        store.write_runs(exp.id, runs)
        info = store.find_experiment("g")
        measures = ["fields.acc", "fields.big", "fields.flag", "params.model.w"]
        for where in (None, 'status == "done" and fields.acc > 0.5'):
            query = TableQuery(where, group=["params.opt", "params.model.depth"])
            raw = store.group_runs(exp.id, where=where, keys=[parse_name(k) for k in query.group],
                                   measures=[parse_name(m) for m in measures])  # fmt: skip
            assert raw is not None  # answered in SQL
            native = group_rows(store, exp.id, query, measures, meta=info.meta)
            plain = group_rows(Plain(store), exp.id, query, measures, meta=info.meta)
            assert [(g["values"], g["count"], g["where"]) for g in native["groups"]] == [
                (g["values"], g["count"], g["where"]) for g in plain["groups"]]  # fmt: skip
            assert native["columns"] == plain["columns"]
            for a, b in zip(native["groups"], plain["groups"], strict=True):
                for key, stat in a["stats"].items():
                    assert stat == pytest.approx(b["stats"][key]), key
        # 1 and True are one group (the language's equality); 10**400 is not a float
        everything = group_rows(store, exp.id, TableQuery(group=["params.opt"]), ["fields.big"],
                                meta=info.meta)  # fmt: skip
        assert sorted(g["count"] for g in everything["groups"]) == [10, 10, 20]
        assert sum(g["stats"]["fields.big"][2] for g in everything["groups"]) == 39
        store.write_runs(exp.id, [RunRecord(41, params={"opt": "adam"},
                                            fields={"acc": float("nan")})])  # fmt: skip
        query = TableQuery(group=["params.opt"])
        answer = store.group_runs(exp.id, where=None, keys=[parse_name("params.opt")],
                                  measures=[parse_name("fields.acc")])  # fmt: skip
        assert (answer is None) == (backend == "postgres")
        native = group_rows(store, exp.id, query, ["fields.acc"], meta=info.meta)
        plain = group_rows(Plain(store), exp.id, query, ["fields.acc"], meta=info.meta)
        assert [(g["values"], g["count"]) for g in native["groups"]] == [
            (g["values"], g["count"]) for g in plain["groups"]]  # fmt: skip
        assert [g["values"] for g in native["groups"]] == [[1], ["adam"], ["sgd"]]


def test_postgres_groups_whose_float_sums_overflow(tmp_path: pathlib.Path) -> None:
    """PostgreSQL sums a group's measures in ``float8``, whose sum raises on an overflow where
    SQLite's ``total()`` gives infinity: the grouping is then summed again in ``numeric`` and
    answers as SQLite does (squares of 1e200 are infinite), not an error."""
    from trialbook.storage.query import parse_name

    runs = [RunRecord(i, params={"o": "ab"[i % 2]},
                      fields={"x": 1e200 * i if i < 3 else float(i), "y": i / 4})
            for i in range(1, 9)]  # fmt: skip
    keys, measures = [parse_name("params.o")], [parse_name("fields.x"), parse_name("fields.y")]
    answers = []
    for backend in ("sqlite", "postgres"):
        with backend_location(backend, tmp_path) as location, open_store(location) as store:
            exp = store.create_experiment("g")
            store.write_runs(exp.id, runs)
            answer = store.group_runs(exp.id, where=None, keys=keys, measures=measures)
            assert answer is not None
            answers.append(sorted(answer))
    sqlite, postgres = answers
    assert [(g[0], g[1]) for g in postgres] == [(g[0], g[1]) for g in sqlite] == [
        (("a",), 4), (("b",), 4)]  # fmt: skip
    for got, want in zip(postgres, sqlite, strict=True):
        for (n, total, squares), (n2, total2, squares2) in zip(got[2], want[2], strict=True):
            assert (n, total, squares) == (n2, pytest.approx(total2), pytest.approx(squares2))
    assert math.isinf(postgres[1][2][0][2])  # group "b" holds 1e200: its squares overflow


def test_exports_read_chunks_in_the_order_of_the_table(tmp_path: pathlib.Path) -> None:
    """Chunks follow each other without a gap or a repeat: by id range (either direction,
    with a filter) and by offset for another sort."""
    from trialbook.web.table import TableQuery, iter_runs

    with open_store(tmp_path / "store") as store:
        exp = store.create_experiment("chunks")
        store.write_runs(exp.id, [RunRecord(i, params={"x": i % 4}) for i in range(1, 12)])
        store.delete_runs(exp.id, [5])

        def read(query: TableQuery) -> list[int]:
            return [r.run_id for chunk in iter_runs(store, exp.id, query, chunk=3) for r in chunk]

        assert read(TableQuery()) == [1, 2, 3, 4, 6, 7, 8, 9, 10, 11]
        assert read(TableQuery(descending=True)) == [11, 10, 9, 8, 7, 6, 4, 3, 2, 1]
        assert read(TableQuery(where="x != 0", descending=True)) == [11, 10, 9, 7, 6, 3, 2, 1]
        assert read(TableQuery(order_by="x", descending=True)) == [3, 7, 11, 2, 6, 10, 1, 9,
                                                                   4, 8]  # fmt: skip
