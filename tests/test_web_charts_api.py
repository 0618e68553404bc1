"""The chart endpoints of the UI (web/charts.py: parallel, overlay, groups) through Starlette's
test client over a real SQLite store: values, log-axis detection, grouped statistics, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import require_module

require_module("starlette", "ui")

from starlette.testclient import TestClient  # noqa: E402 - after the check of the ui extra

from trialbook.storage import open_store  # noqa: E402
from trialbook.tracking import Run  # noqa: E402
from trialbook.web import create_app  # noqa: E402

TOKEN = "charts-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def sweep(store: Any, name: str = "sweep") -> None:
    """24 runs: lr in 1e-5..1e-3 (two decades), opt adam/sgd, seed 0..3; a `loss` metric whose
    level depends on lr and opt (not on the seed), and an `alpha` field spanning decades."""
    exp = store.create_experiment(name)
    records, chunks = [], []
    run_id = 0
    for lr in (1e-5, 1e-4, 1e-3):
        for opt in ("adam", "sgd"):
            for seed in range(4):
                run_id += 1
                run = Run(run_id, params={"lr": lr, "opt": opt, "seed": seed})
                level = (1.0 if opt == "adam" else 2.0) + 300 * lr
                for step in range(20):
                    run.log_metric("loss", level / (step + 1) + seed * 0.05, step=step)
                run.fields.update(alpha=lr * 3, acc=0.5 + seed / 10)
                run.status, run.started, run.finished = "done", 100.0, 110.0 + run_id
                records.append(run.to_record())
                chunks += run.pending_metrics()
    store.write_runs(exp.id, records, chunks)


def mixed(store: Any) -> None:
    """4 runs: a bool param, a nested dict param, a param that is a number in one run and a text
    in another, a missing value; run 4 logs no `loss`, run 3 logs a NaN."""
    exp = store.create_experiment("mixed")
    records, chunks = [], []
    params = [
        {"flag": True, "model": {"depth": 2}, "act": 1},
        {"flag": False, "model": {"depth": 8}, "act": "relu"},
        {"flag": True, "model": {"depth": 4}},
        {"flag": False, "model": {"depth": 4}, "act": "tanh"},
    ]
    for run_id, p in enumerate(params, 1):
        run = Run(run_id, params=p)
        if run_id < 4:
            for step in range(3):
                value = float("nan") if run_id == 3 and step == 1 else run_id * 10.0 + step
                run.log_metric("loss", value, step=step)
        run.status = "done"
        records.append(run.to_record())
        chunks += run.pending_metrics()
    store.write_runs(exp.id, records, chunks)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = open_store(tmp_path / "store")
    sweep(store)
    mixed(store)
    with TestClient(create_app(store, token=TOKEN), headers=AUTH) as client:
        yield client
    store.close()


def get(client: TestClient, path: str, status: int = 200, **params: Any) -> Any:
    answer = client.get(f"/api/experiments/{path}", params=params)
    assert answer.status_code == status, answer.text
    return answer.json()


# -- parallel coordinates -----------------------------------------------------------------------


def test_parallel_default_axes_are_params_then_metrics(client: TestClient) -> None:
    body = get(client, "sweep/parallel")
    assert body["total"] == body["count"] == 24 and body["run_ids"] == list(range(1, 25))
    assert [a["name"] for a in body["axes"]] == ["params.lr", "params.opt", "params.seed",
                                                 "metric.loss"]  # fmt: skip
    assert body["available"] == ["params.lr", "params.opt", "params.seed", "metric.loss",
                                 "fields.alpha", "fields.acc", "duration"]  # fmt: skip
    assert body["color"] is None


def test_parallel_axes_numbers_categories_and_log_detection(client: TestClient) -> None:
    body = get(client, "sweep/parallel", names="params.lr,params.opt,fields.acc,duration",
               where="params.seed == 0", color="params.opt")  # fmt: skip
    lr, opt, acc, duration = body["axes"]
    assert body["run_ids"] == [1, 5, 9, 13, 17, 21]
    assert lr == {"name": "params.lr", "kind": "number", "values": [1e-5] * 2 + [1e-4] * 2
                  + [1e-3] * 2, "min": 1e-5, "max": 1e-3, "log": True}  # fmt: skip
    assert opt == {"name": "params.opt", "kind": "category", "categories": ["adam", "sgd"],
                   "values": [0, 1, 0, 1, 0, 1]}  # fmt: skip
    assert acc["log"] is False and acc["min"] == acc["max"] == 0.5  # one value: no decades
    assert duration["values"] == [11.0, 15.0, 19.0, 23.0, 27.0, 31.0] and not duration["log"]
    assert body["color"] == opt


def test_parallel_bools_nested_names_mixed_types_and_missing_values(client: TestClient) -> None:
    body = get(client, "mixed/parallel", names="params.flag,params.model.depth,params.act,"
               "metric.loss")  # fmt: skip
    assert "params.model.depth" in body["available"]
    flag, depth, act, loss = body["axes"]
    assert flag["categories"] == [False, True] and flag["values"] == [1, 0, 1, 0]
    assert depth["kind"] == "number" and depth["values"] == [2, 8, 4, 4] and not depth["log"]
    assert act == {"name": "params.act", "kind": "category", "categories": [1, "relu", "tanh"],
                   "values": [0, 1, None, 2]}  # fmt: skip
    assert loss["values"] == [12.0, 22.0, 32.0, None]  # run 4 logged no loss


def test_parallel_log_axis_needs_two_decades_of_positive_values(client: TestClient) -> None:
    body = get(client, "sweep/parallel", names="params.lr", where="params.lr <= 0.0001")
    assert body["axes"][0]["log"] is False  # one decade
    body = get(client, "sweep/parallel", names="fields.alpha")
    assert body["axes"][0]["log"] is True


def test_parallel_bad_input_is_a_clear_400(client: TestClient) -> None:
    error = get(client, "sweep/parallel", 400, names="params.lr,params.lrr")["error"]
    assert "'params.lrr' is not a name of any run" in error and "'params.lr'" in error
    assert "is not a name of the query language" in get(
        client, "sweep/parallel", 400, names="params.l-r")["error"]  # fmt: skip
    assert "'limit' must be an int >= 1 and <= 50000" in get(
        client, "sweep/parallel", 400, limit=0)["error"]  # fmt: skip
    assert "bad query" in get(client, "sweep/parallel", 400, where="lr >> 1")["error"]
    assert "'nope' is not a name" in get(client, "sweep/parallel", 400, color="nope")["error"]
    assert get(client, "nothing/parallel", 404)["error"].startswith("no experiment 'nothing'")


def test_parallel_filters_with_the_brushes_query(client: TestClient) -> None:
    """The filter the page builds from brushes (a range, a set of categories) keeps the runs
    the page highlights."""
    where = 'params.lr >= 0.00000939 and params.lr <= 0.000101 and params.opt in ["adam"]'
    body = get(client, "sweep/parallel", names="params.seed", where=where)
    assert body["run_ids"] == [1, 2, 3, 4, 9, 10, 11, 12]
    runs = get(client, "sweep/runs", where=where, limit=50)
    assert [r["run_id"] for r in runs["runs"]] == body["run_ids"]
    flags = get(client, "mixed/parallel", names="params.flag", where="params.flag in [True]")
    assert flags["run_ids"] == [1, 3]


# -- overlay -------------------------------------------------------------------------------------


def test_overlay_values_times_and_distinguishing_labels(client: TestClient) -> None:
    body = get(client, "sweep/overlay", runs="1,5,9", metric="loss")
    assert body["distinguishing"] == ["params.lr", "params.opt"]
    assert [r["label"] for r in body["runs"]] == [
        "run 1 · lr=1e-05, opt=adam",
        "run 5 · lr=1e-05, opt=sgd",
        "run 9 · lr=0.0001, opt=adam",
    ]
    first = body["runs"][0]
    assert first["params"] == {"params.lr": 1e-5, "params.opt": "adam"}
    assert first["steps"] == list(range(20)) and first["total"] == 20
    assert first["values"] == pytest.approx([(1 + 300 * 1e-5) / (s + 1) for s in range(20)])
    assert len(first["times"]) == 20 and first["times"] == sorted(first["times"])
    assert body["missing"] == []


def test_overlay_downsamples_and_names_runs_without_the_metric(client: TestClient) -> None:
    body = get(client, "mixed/overlay", runs="1,3,4", metric="loss", points=4)
    assert [r["run_id"] for r in body["runs"]] == [1, 3] and body["missing"] == [4]
    assert body["runs"][1]["values"] == [30.0, None, 32.0]  # NaN as null
    assert body["runs"][0]["label"] == "run 1 · flag=True, model.depth=2, act=1"
    assert get(client, "sweep/overlay", runs="1,2", metric="nope")["runs"] == []
    many = get(client, "sweep/overlay", runs="1", metric="loss", points=4)["runs"][0]
    assert len(many["steps"]) <= 4 and many["total"] == 20 and len(many["times"]) == len(
        many["steps"])  # fmt: skip


def test_overlay_bad_input(client: TestClient) -> None:
    ids = ",".join(str(i) for i in range(1, 52))
    assert "1 to 50 run ids" in get(client, "sweep/overlay", 400, runs=ids, metric="loss")["error"]
    assert "'metric' must name a metric" in get(client, "sweep/overlay", 400, runs="1")["error"]
    assert "has no runs [99]" in get(client, "sweep/overlay", 404, runs="1,99",
                                     metric="loss")["error"]  # fmt: skip


# -- grouped curves --------------------------------------------------------------------------------


def test_groups_mean_min_max_std_per_step(client: TestClient) -> None:
    body = get(client, "sweep/curves", metric="loss", by="params.opt,params.lr")
    assert body["total"] == body["used"] == 24 and not body["truncated"]
    assert [g["label"] for g in body["groups"]] == [
        f"opt={o}, lr={lr}" for o in ("adam", "sgd") for lr in (1e-5, 1e-4, 1e-3)
    ]
    group = body["groups"][1]  # adam, lr=1e-4: seeds 0..3
    assert group["key"] == {"params.opt": "adam", "params.lr": 1e-4} and group["runs"] == 4
    level = 1 + 300 * 1e-4
    values = np.array([[level / (s + 1) + seed * 0.05 for s in range(20)] for seed in range(4)])
    assert group["steps"] == list(range(20)) and group["count"] == [4] * 20
    assert group["mean"] == pytest.approx(values.mean(axis=0).tolist())
    assert group["min"] == pytest.approx(values.min(axis=0).tolist())
    assert group["max"] == pytest.approx(values.max(axis=0).tolist())
    assert group["std"] == pytest.approx(values.std(axis=0).tolist())


def test_groups_skip_nans_count_runs_without_the_metric_and_filter(client: TestClient) -> None:
    body = get(client, "mixed/curves", metric="loss", by="params.flag")
    assert body["without_metric"] == 1  # run 4
    false, true = body["groups"]
    assert false["key"] == {"params.flag": False} and false["runs"] == 1
    assert true["runs"] == 2 and true["count"] == [2, 1, 2]  # run 3's NaN at step 1
    assert true["mean"] == [20.0, 11.0, 22.0] and true["std"] == [10.0, 0.0, 10.0]
    assert true["min"] == [10.0, 11.0, 12.0] and true["max"] == [30.0, 11.0, 32.0]
    one = get(client, "sweep/curves", metric="loss", by="params.opt", where="params.seed == 3")
    assert [g["runs"] for g in one["groups"]] == [3, 3] and one["total"] == 6
    thin = get(client, "sweep/curves", metric="loss", by="params.opt", points=7)
    assert all(len(g["steps"]) <= 7 and g["steps"][0] == 0 and g["steps"][-1] == 19
               for g in thin["groups"])  # fmt: skip


def test_groups_bad_input(client: TestClient) -> None:
    assert "'by' must list the names" in get(client, "sweep/curves", 400, metric="loss")["error"]
    error = get(client, "sweep/curves", 400, metric="loss", by="params.optt")["error"]
    assert "group-by name 'params.optt' is not a name of any run" in error
    assert "'metric' must name" in get(client, "sweep/curves", 400, by="params.opt")["error"]
    assert "'points' must be an int >= 4" in get(client, "sweep/curves", 400, metric="loss",
                                                 by="params.opt", points=2)["error"]  # fmt: skip


def test_the_fast_getter_reads_what_the_query_language_reads() -> None:
    """charts.column_values skips Name.value for plain values only: NaN, ints past 64 bits,
    lists, dicts and encoded values read as the query language reads them."""
    from trialbook.codecs import encode
    from trialbook.storage.query import parse_name
    from trialbook.storage.records import RunRecord
    from trialbook.web.charts import column_values, describe_axis

    values = [0.5, float("nan"), float("inf"), 2**70, -(2**63), 3, True, "a", None, [1, 2],
              {"k": 1}, encode((1, 2))]  # fmt: skip
    runs = [RunRecord(i, params={"x": v}, fields={"x": v}, tags={"x": v},
                      metrics={"x": [1, v]}) for i, v in enumerate(values)]  # fmt: skip
    for text in ("params.x", "fields.x", "tags.x", "metric.x", "x", "run_id"):
        expected = [parse_name(text).value(run) for run in runs]
        assert repr(column_values(text, runs)) == repr(expected), text
        for run, value in zip(runs, expected, strict=True):  # one run at a time: plain or not
            assert repr(column_values(text, [run])) == repr([value]), (text, run)
    axis = describe_axis("x", [1.0, float("inf"), None, 2])
    assert axis["values"] == [1.0, None, None, 2] and axis["max"] == 2


def test_chart_endpoints_agree_on_every_backend(backend_store: Any) -> None:
    """parallel, overlay and groups read through the Store API (query_runs, read_runs,
    read_metrics): the same answers on SQLite, PostgreSQL, Redis and MongoDB."""
    sweep(backend_store)
    with TestClient(create_app(backend_store, token=TOKEN), headers=AUTH) as client:
        where = 'params.opt in ["adam"] and params.lr <= 0.0001'
        body = get(client, "sweep/parallel", where=where, names="params.lr,params.seed")
        assert body["run_ids"] == [1, 2, 3, 4, 9, 10, 11, 12] and body["axes"][0]["log"] is False
        assert body["axes"][1]["values"] == [0, 1, 2, 3] * 2
        overlay = get(client, "sweep/overlay", runs="1,5", metric="loss")
        assert [r["label"] for r in overlay["runs"]] == ["run 1 · opt=adam", "run 5 · opt=sgd"]
        groups = get(
            client, "sweep/curves", metric="loss", by="params.opt", where="params.seed <= 1"
        )
        assert [(g["label"], g["runs"]) for g in groups["groups"]] == [
            ("opt=adam", 6),
            ("opt=sgd", 6),
        ]
        adam = [(1 + 300 * lr) / 1 + seed * 0.05 for lr in (1e-5, 1e-4, 1e-3) for seed in (0, 1)]
        assert groups["groups"][0]["mean"][0] == pytest.approx(np.mean(adam))
        assert groups["groups"][0]["std"][0] == pytest.approx(np.std(adam))
