"""The UI's JSON API through Starlette's test client over real SQLite stores (and one real
uvicorn server, one real `trialbook ui` process, real task jobs for the job graph)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conftest import require_module

require_module("starlette", "ui")
require_module("uvicorn", "ui")

from starlette.testclient import TestClient  # noqa: E402 - after the check of the ui extra

import trialbook  # noqa: E402
from trialbook import Param, Task, experiment, tag  # noqa: E402
from trialbook.codecs import encode  # noqa: E402
from trialbook.storage import open_store  # noqa: E402
from trialbook.storage.records import RunRecord  # noqa: E402
from trialbook.tasks import LocalLauncher, WebService  # noqa: E402
from trialbook.tracking import Run  # noqa: E402
from trialbook.web import create_app, serve  # noqa: E402
from trialbook.web.api import ROUTES  # noqa: E402

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def fill(store: Any, name: str = "demo", n: int = 12) -> int:
    """An experiment of ``n`` runs with params, fields, a metric, code snapshots, an artifact."""
    exp = store.create_experiment(name)
    code = [store.put_snapshot("code", f"def f(x):\n    return x + {k}\n") for k in (1, 2)]
    records, chunks = [], []
    for i in range(1, n + 1):
        run = Run(i, params={"lr": i / 100, "opt": "adam" if i % 2 else "sgd"}, tags={"g": i % 3})
        for step in range(50):
            run.log_metric("loss", 1 / (step + i), step=step)
        run.fields.update(acc=i / n, w=np.arange(6.0).reshape(2, 3),
                          df=pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))  # fmt: skip
        run.status = "failed" if i % 4 == 0 else "done"
        run.started, run.finished = 100.0 + i, 110.0 + 2 * i
        record = run.to_record()
        record.code = code[i > n // 2]
        records.append(record)
        chunks += run.pending_metrics()
    store.write_runs(exp.id, records, chunks, artifacts=[(1, "model", encode(b"weights"))])
    return exp.id


@pytest.fixture
def store(tmp_path: Path) -> Any:
    store = open_store(tmp_path / "store")
    fill(store)
    yield store
    store.close()


@pytest.fixture
def client(store: Any) -> TestClient:
    with TestClient(create_app(store, token=TOKEN), headers=AUTH) as client:
        yield client


def test_requests_without_the_token_are_refused(store: Any) -> None:
    app = create_app(store, token=TOKEN)
    with TestClient(app, follow_redirects=False) as anon:
        for url in ["/", "/e/demo", "/api/experiments", "/api/openapi.json", "/static/app.js"]:
            assert anon.get(url).status_code == 403, url
        refused = anon.get("/api/experiments", headers={"Authorization": "Bearer wrong"})
        assert refused.status_code == 403
        assert "missing or wrong access token" in refused.json()["error"]
        assert anon.get("/e/demo?token=wrong").status_code == 403
        assert anon.get(f"/api/experiments?token={TOKEN}").status_code == 200
        # the printed URL: token in the query -> cookie + redirect to the URL without it
        opened = anon.get(f"/e/demo?token={TOKEN}&x=1")
        assert opened.status_code == 303
        assert opened.headers["location"] == "/e/demo?x=1"
        assert "HttpOnly" in opened.headers["set-cookie"]
        assert anon.get("/api/experiments").status_code == 200  # the cookie now
        assert anon.get("/static/uPlot.iife.min.js").status_code == 200


def test_experiments_list_run_counts_and_activity(client: TestClient) -> None:
    [exp] = client.get("/api/experiments").json()["experiments"]
    assert (exp["name"], exp["runs"]) == ("demo", 12)
    assert exp["updated"] >= exp["created"] > 0


def test_runs_filter_sort_page_and_columns(client: TestClient) -> None:
    body = client.get("/api/experiments/demo/runs", params={
        "where": 'lr > 0.03 and status == "done"', "order_by": "metric.loss",
        "descending": "true", "limit": 3, "offset": 1}).json()  # fmt: skip
    assert body["total"] == 6  # runs 4..12 minus the failed 4, 8, 12
    assert [r["run_id"] for r in body["runs"]] == [6, 7, 9]
    assert body["columns"] == {"params": ["lr", "opt"], "fields": ["acc"], "tags": ["g"],
                               "metrics": ["loss"]}  # fmt: skip
    row = body["runs"][0]
    assert row["params"] == {"lr": 0.06, "opt": "sgd"}
    assert row["metrics"] == {"loss": pytest.approx(1 / 55)}
    assert row["duration"] == 16.0
    everything = client.get("/api/experiments/demo/runs").json()
    assert everything["total"] == 12 and len(everything["runs"]) == 12


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"where": "lr >"}, 400, "bad query 'lr >': syntax error"),
        ({"where": "open('x') == 1"}, 400, "a call"),
        ({"order_by": "lr;drop"}, 400, "not a name of the query language"),
        ({"limit": "many"}, 400, "'limit' must be an int >= 0 and <= 1000"),
        ({"limit": "5000"}, 400, "'limit' must be an int"),
    ],
)
def test_bad_runs_queries_answer_400_with_the_reason(
    client: TestClient, params: dict[str, str], status: int, message: str
) -> None:
    answer = client.get("/api/experiments/demo/runs", params=params)
    assert answer.status_code == status
    assert message in answer.json()["error"]


def test_unknown_experiment_run_and_artifact_are_404(client: TestClient) -> None:
    missing = client.get("/api/experiments/nope/runs")
    assert missing.status_code == 404
    assert missing.json()["error"] == "no experiment 'nope' in the store (experiments: ['demo'])"
    assert client.get("/api/experiments/demo/runs/99").json() == {
        "error": "experiment 'demo' has no run 99"
    }
    assert client.get("/api/experiments/demo/runs/1/artifacts/nope").status_code == 404
    assert client.get("/api/snapshots/abc").status_code == 404


def test_run_detail_previews_values_lists_artifacts_and_snapshots(client: TestClient) -> None:
    run = client.get("/api/experiments/demo/runs/1").json()
    assert run["fields"]["w"] == {"type": "array", "shape": [2, 3], "dtype": "float64",
                                  "head": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "min": 0.0,
                                  "max": 5.0, "mean": 2.5}  # fmt: skip
    assert run["fields"]["df"]["columns"] == ["a", "b"]
    assert run["fields"]["df"]["rows"] == [[1, "x"], [2, "y"]]
    assert run["artifacts"] == {"model": len(encode(b"weights").data)}
    assert run["metric_counts"] == {"loss": 50}
    assert run["logs"] == []
    download = client.get("/api/experiments/demo/runs/1/artifacts/model")
    assert download.content == encode(b"weights").data
    assert download.headers["x-trialbook-codec"] == "tjson"
    assert "attachment" in download.headers["content-disposition"]
    code = client.get(f"/api/snapshots/{run['code']}").json()["text"]
    assert code == "def f(x):\n    return x + 1\n"


def test_numpy_and_pandas_scalars_show_as_plain_values(store: Any, client: TestClient) -> None:
    """Issue 18: the runs table, the run page and the comparison show `0.917`, never
    `np.float64(0.917)` (nor a text `"0.917"`, nor a field left out of the table)."""
    exp = store.create_experiment("np")
    records = []
    for i in (1, 2):
        run = Run(i, params={"lr": np.float64(i / 10), "k": np.int64(i)})
        run.fields.update(score=np.float64(0.917), n=np.int64(3), ok=np.bool_(i == 1),
                          half=np.float32(0.1), at=pd.Timestamp("2024-05-01 12:00"),
                          w=np.arange(3))  # fmt: skip
        run.log_metric("loss", np.float64(0.25))
        run.status, run.result = "done", np.float64(1.5)
        records.append(run.to_record())
    store.write_runs(exp.id, records)
    body = client.get("/api/experiments/np/runs").json()
    row = body["runs"][0]
    assert row["params"] == {"lr": 0.1, "k": 1}
    assert row["fields"] == {"score": 0.917, "n": 3, "ok": True, "half": 0.1,
                             "at": "2024-05-01T12:00:00"}  # fmt: skip
    assert (row["result"], row["metrics"]) == (1.5, {"loss": 0.25})
    assert body["columns"]["fields"] == ["score", "n", "ok", "half", "at"]
    detail = client.get("/api/experiments/np/runs/2").json()
    assert {k: v["value"] for k, v in detail["params"].items()} == {"lr": 0.2, "k": 2}
    assert detail["fields"]["score"] == {"type": "value", "value": 0.917}
    assert detail["fields"]["ok"] == {"type": "value", "value": False}
    assert detail["fields"]["w"]["head"] == [0, 1, 2]
    assert detail["result"] == {"type": "value", "value": 1.5}
    compared = client.get("/api/experiments/np/compare", params={"runs": "1,2"}).json()
    fields = {r["name"]: r for r in compared["fields"]}
    assert fields["score"] == {"name": "score", "values": [0.917, 0.917], "differs": False}
    assert fields["ok"]["values"] == [True, False] and fields["ok"]["differs"]
    assert "np." not in json.dumps([body, detail, compared])


def test_metric_series_is_downsampled_on_the_server(store: Any, client: TestClient) -> None:
    exp = store.create_experiment("big")
    run = Run(1)
    values = np.sin(np.arange(100_000) / 1000.0)
    values[54_321] = 50.0  # a spike must survive down-sampling
    for i, v in enumerate(values.tolist()):
        run.log_metric("signal", v, step=i)
    store.write_runs(exp.id, [run.to_record()], run.pending_metrics())
    body = client.get(
        "/api/experiments/big/metrics/signal", params={"runs": "1", "points": 500}
    ).json()
    series = body["runs"]["1"]
    assert series["total"] == 100_000
    assert len(series["steps"]) <= 500
    assert series["steps"][0] == 0 and series["steps"][-1] == 99_999
    assert max(series["values"]) == 50.0
    both = client.get("/api/experiments/demo/metrics/loss", params={"runs": "1,2"}).json()
    assert sorted(both["runs"]) == ["1", "2"] and len(both["runs"]["2"]["values"]) == 50
    assert client.get("/api/experiments/demo/metrics/loss", params={"runs": "x"}).status_code == 400
    assert client.get("/api/experiments/demo/metrics").json() == {"metrics": {"loss": 600}}


def test_compare_highlights_differences_and_diffs_code(client: TestClient) -> None:
    body = client.get("/api/experiments/demo/compare", params={"runs": "2,4,10"}).json()
    assert body["run_ids"] == [2, 4, 10]
    params = {row["name"]: row for row in body["params"]}
    assert params["lr"]["differs"] and params["lr"]["values"] == [0.02, 0.04, 0.1]
    assert not params["opt"]["differs"]
    assert body["metrics"] == ["loss"]
    assert [(d["state"], d["diff"]) for d in body["code_diff"][:1]] == [("identical", "")]
    assert body["code_diff"][1]["state"] == "differs"
    assert "-    return x + 1\n+    return x + 2\n" in body["code_diff"][1]["diff"]
    eleven = ",".join(map(str, range(1, 12)))
    assert client.get("/api/experiments/demo/compare", params={"runs": eleven}).status_code == 400
    assert client.get("/api/experiments/demo/compare", params={"runs": "1,77"}).status_code == 404


def test_scatter_gives_axis_values_per_run(client: TestClient) -> None:
    body = client.get("/api/experiments/demo/scatter",
                      params={"axes": "lr,metric.loss", "where": "run_id <= 2"}).json()  # fmt: skip
    assert body["points"] == [[1, 0.01, pytest.approx(1 / 50)], [2, 0.02, pytest.approx(1 / 51)]]


def test_live_status_follows_the_store(store: Any, client: TestClient) -> None:
    before = client.get("/api/experiments/demo/status").json()
    assert before["counts"] == {"pending": 0, "running": 0, "done": 9, "failed": 3}
    assert before["live"] == []
    exp_id = store.find_experiment("demo").id
    store.write_runs(exp_id, [RunRecord(13, status="running", started=time.time())])
    during = client.get("/api/experiments/demo/status").json()
    assert [r["run_id"] for r in during["live"]] == [13] and during["counts"]["running"] == 1
    store.write_runs(exp_id, [RunRecord(13, status="done")])
    assert client.get("/api/experiments/demo/status").json()["counts"]["done"] == 10


def test_actions_are_refused_unless_allowed(store: Any) -> None:
    with TestClient(create_app(store, token=TOKEN), headers=AUTH) as read_only:
        refused = read_only.delete("/api/experiments/demo/runs/3")
        assert refused.status_code == 403 and "--allow-actions" in refused.json()["error"]
        assert read_only.post("/api/experiments/demo/jobs/abc/kill").status_code == 403
    with TestClient(create_app(store, token=TOKEN, allow_actions=True), headers=AUTH) as admin:
        assert admin.delete("/api/experiments/demo/runs/3").json() == {"deleted": 3}
        assert admin.get("/api/experiments/demo/runs/3").status_code == 404
        assert admin.post("/api/experiments/demo/jobs/abc/kill").status_code == 404


def test_openapi_documents_exactly_the_routes(client: TestClient) -> None:
    doc = client.get("/api/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    served = {(m, re.sub(r"{(\w+):\w+}", r"{\1}", p)) for m, p, _ in ROUTES}
    app_routes = {
        (m, route.path) for route in client.app.routes
        if getattr(route, "path", "").startswith("/api/") for m in route.methods - {"HEAD"}
    }  # fmt: skip
    assert documented == served == {(m, re.sub(r"{(\w+):\w+}", r"{\1}", p)) for m, p in
                                    app_routes}  # fmt: skip
    for path, ops in doc["paths"].items():
        for op in ops.values():
            assert op["summary"] and op["responses"]["200"]
            in_path = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert in_path == set(re.findall(r"{(\w+)}", path))
    runs = doc["paths"]["/api/experiments/{name}/runs"]["get"]
    assert {p["name"] for p in runs["parameters"]} >= {"where", "order_by", "descending",
                                                         "limit", "offset"}  # fmt: skip


class Produce(Task):
    __trialbook_id__ = "test.web.produce"
    x: Param[int] = 1

    def execute(self) -> None:
        print("producing", self.x)
        trialbook.current_run().log_metric("loss", 1.0 / self.x)


class Consume(Task):
    __trialbook_id__ = "test.web.consume"
    upstream: Param[Task]

    def execute(self) -> None:
        print("consuming", self.upstream.x)


def test_job_graph_services_and_logs_of_a_task_experiment(tmp_path: Path) -> None:
    location = str(tmp_path / "store")
    with experiment(tmp_path / "wd", "plan", launcher=LocalLauncher(n_workers=2),
                    store=location) as xp:  # fmt: skip
        xp.add_service(WebService("board", "http://127.0.0.1:6006", "TensorBoard"))
        first = Produce.C(x=tag(2)).submit()
        Consume.C(upstream=first).submit()
    store = open_store(location)
    with TestClient(create_app(store, token=TOKEN), headers=AUTH) as client:
        graph = client.get("/api/experiments/plan/graph").json()
        nodes = {n["task"]: n for n in graph["nodes"]}
        assert set(nodes) == {"test.web.produce", "test.web.consume"}
        assert all(n["status"] == "done" and n["run_id"] for n in nodes.values())
        produce, consume = nodes["test.web.produce"]["id"], nodes["test.web.consume"]["id"]
        assert graph["edges"] == [[produce, consume]]
        assert graph["services"] == [{"id": "board", "description": "TensorBoard",
                                      "url": "http://127.0.0.1:6006"}]  # fmt: skip
        run_id = nodes["test.web.produce"]["run_id"]
        assert client.get(f"/api/experiments/plan/runs/{run_id}").json()["logs"] == [
            "stdout",
            "stderr",
        ]
        log = client.get(f"/api/experiments/plan/runs/{run_id}/log").json()
        assert log["text"] == "producing 2\n" and log["offset"] == len("producing 2\n")
        follow = client.get(f"/api/experiments/plan/runs/{run_id}/log",
                            params={"offset": log["offset"]}).json()  # fmt: skip
        assert follow["text"] == ""
        ident = nodes["test.web.consume"]["id"]
        by_job = client.get(f"/api/experiments/plan/jobs/{ident}/log").json()
        assert by_job["text"] == "consuming 2\n"
        assert client.get("/api/experiments/plan/status").json()["jobs"] == []
    store.close()


def test_serve_in_a_thread_answers_real_http(store: Any) -> None:
    with serve(store, port=0, token=TOKEN) as server:
        assert server.url == f"http://127.0.0.1:{server.port}/?token={TOKEN}"
        url = f"http://127.0.0.1:{server.port}/api/experiments"
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(url, timeout=10)
        request = urllib.request.Request(url, headers=AUTH)
        body = json.loads(urllib.request.urlopen(request, timeout=10).read())
        assert body["experiments"][0]["runs"] == 12


def test_trialbook_ui_command_prints_a_tokenized_url(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store")
    fill(store)
    store.close()
    command = [sys.executable, "-m", "trialbook", "ui", "--store", str(tmp_path / "store"),
               "--port", "0"]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True) as proc:  # fmt: skip
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(2)]
            url = lines[1].strip()
            assert lines[0].startswith("trialbook UI (read-only) for ")
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[\w-]{20,}", url)
            token, base = url.split("token=")[1], url.split("/?")[0]
            request = urllib.request.Request(
                f"{base}/api/experiments", headers={"Authorization": f"Bearer {token}"}
            )
            assert json.loads(urllib.request.urlopen(request, timeout=10).read())["experiments"]
        finally:
            proc.terminate()
    missing = subprocess.run(
        [sys.executable, "-m", "trialbook", "ui", "--store", str(tmp_path / "nowhere")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert missing.returncode == 1 and "no store at" in missing.stderr


class Waiting(Task):
    """Prints, then waits for a file to appear (so a test can watch it run), prints again."""

    __trialbook_id__ = "test.web.waiting"
    signal: Param[str]

    def execute(self) -> None:
        print("started", flush=True)
        deadline = time.time() + 60
        while not Path(self.signal).exists() and time.time() < deadline:
            time.sleep(0.05)
        print("finished", flush=True)


def wait_for(condition: Any, timeout: float = 60.0) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_running_job_status_and_log_follow(tmp_path: Path) -> None:
    import threading

    location, signal = str(tmp_path / "store"), tmp_path / "go"

    def plan() -> None:
        # the experiment is in the store from the start of its block: its first job shows
        with experiment(tmp_path / "wd", "live", launcher=LocalLauncher(n_workers=1),
                        store=location):  # fmt: skip
            Waiting.C(signal=str(signal)).submit()

    store = open_store(location)
    thread = threading.Thread(target=plan)
    thread.start()
    try:
        wait_for(lambda: store.find_experiment("live"))
        with TestClient(create_app(store, token=TOKEN), headers=AUTH) as client:
            jobs = wait_for(lambda: [
                j for j in client.get("/api/experiments/live/status").json()["jobs"]
                if j["status"] == "running"
            ])  # fmt: skip
            ident = jobs[0]["identifier"]
            url = f"/api/experiments/live/jobs/{ident}/log"
            first = wait_for(lambda: client.get(url).json()["text"] and client.get(url).json())
            assert first["text"] == "started\n"
            graph = client.get("/api/experiments/live/graph").json()
            assert (ident, "running") in [(n["id"], n["status"]) for n in graph["nodes"]]
            signal.touch()
            thread.join(60)
            follow = client.get(url, params={"offset": first["offset"]}).json()
            assert follow["text"] == "finished\n"
            status = client.get("/api/experiments/live/status").json()
            assert status["jobs"] == [] and status["counts"]["done"] == 1
    finally:
        signal.touch()
        thread.join(60)
        store.close()


class After(Task):
    """Prints once its upstream job is done (a job that stays queued behind it)."""

    __trialbook_id__ = "test.web.after"
    upstream: Param[Task]

    def execute(self) -> None:
        print("after", flush=True)


class Broken(Task):
    __trialbook_id__ = "test.web.broken"

    def execute(self) -> None:
        raise ValueError("broken on purpose")


def test_queued_and_never_run_jobs_say_so_instead_of_no_log(tmp_path: Path) -> None:
    """Issue 18: a queued job's log answers "queued" (200, empty text, the viewer keeps
    polling), a job whose dependency failed says it never ran and why (404)."""
    import threading

    location, signal = str(tmp_path / "store"), tmp_path / "go"

    def plan() -> None:
        with experiment(tmp_path / "wd", "queue", launcher=LocalLauncher(n_workers=1),
                        store=location):  # fmt: skip
            After.C(upstream=Waiting.C(signal=str(signal)).submit()).submit()

    store = open_store(location)
    thread = threading.Thread(target=plan)
    thread.start()
    try:
        wait_for(lambda: store.find_experiment("queue"))
        with TestClient(create_app(store, token=TOKEN), headers=AUTH) as client:
            # a queued job is counted in the Live list, not listed: the job graph names it
            jobs = wait_for(lambda: [
                n for n in client.get("/api/experiments/queue/graph").json()["nodes"]
                if n["task"] == "test.web.after" and n["status"] == "waiting"
            ])  # fmt: skip
            assert client.get("/api/experiments/queue/status").json()["waiting"]["jobs"] == 1
            jobs = [{"identifier": jobs[0]["id"]}]
            url = f"/api/experiments/queue/jobs/{jobs[0]['identifier']}/log"
            queued = client.get(url)
            assert queued.status_code == 200
            assert queued.json() == {
                "stream": "stdout", "text": "", "offset": None, "status": "waiting",
                "note": f"job {jobs[0]['identifier']!r} of 'queue': the job is queued (waiting "
                        "for its dependencies or a free worker): no 'stdout' log yet",
            }  # fmt: skip
            signal.touch()
            thread.join(60)
            assert client.get(url).json()["text"] == "after\n"
    finally:
        signal.touch()
        thread.join(60)
    with (
        pytest.raises(trialbook.errors.JobFailedError) as failed,
        experiment(tmp_path / "wd", "queue", store=location),
    ):
        After.C(upstream=Broken.C().submit()).submit()
    assert len(failed.value.never_ran) == 1
    assert "never ran: dependency test.web.broken" in str(failed.value)
    with TestClient(create_app(store, token=TOKEN), headers=AUTH) as client:
        nodes = client.get("/api/experiments/queue/graph").json()["nodes"]
        ident = next(
            n["id"] for n in nodes if n["status"] == "failed" and n["task"] == "test.web.after"
        )
        answer = client.get(f"/api/experiments/queue/jobs/{ident}/log", params={"stream": "stderr"})
        assert answer.status_code == 404
        assert answer.json()["error"].startswith(
            f"job {ident!r} of 'queue': the job never ran (dependency test.web.broken "
        )
        assert "ValueError: broken on purpose" in answer.json()["error"]
        assert answer.json()["error"].endswith("it has no 'stderr' log")
        [run] = [n["run_id"] for n in nodes if n["id"] == ident]
        by_run = client.get(f"/api/experiments/queue/runs/{run}/log")
        assert by_run.status_code == 404 and "the job never ran" in by_run.json()["error"]
    store.close()


def test_kill_a_running_job_when_actions_are_allowed(tmp_path: Path) -> None:
    import threading

    location, signal = str(tmp_path / "store"), tmp_path / "go"
    failures: list[BaseException] = []

    def plan() -> None:
        try:
            for task in (Produce.C(x=5), Waiting.C(signal=str(signal))):
                with experiment(tmp_path / "wd", "live", launcher=LocalLauncher(n_workers=1),
                                store=location):  # fmt: skip
                    task.submit()
        except Exception as exc:
            failures.append(exc)

    store = open_store(location)
    thread = threading.Thread(target=plan)
    thread.start()
    try:
        wait_for(lambda: store.find_experiment("live"))
        app = create_app(store, token=TOKEN, allow_actions=True)
        with TestClient(app, headers=AUTH) as client:
            running = wait_for(lambda: [
                j for j in client.get("/api/experiments/live/status").json()["jobs"]
                if j["status"] == "running"
            ])  # fmt: skip
            url = f"/api/experiments/live/jobs/{running[0]['identifier']}/kill"
            assert client.post(url).json()["killed"] == running[0]["identifier"]
            thread.join(60)
            assert "stopped by SIGTERM" in str(failures[0])
            assert client.get("/api/experiments/live/status").json()["counts"]["failed"] == 1
            again = client.post(url)
            assert again.status_code == 409 and "is not running" in again.json()["error"]
    finally:
        signal.touch()
        thread.join(60)
        store.close()


def test_a_busy_port_is_a_clear_error(store: Any) -> None:
    from trialbook.errors import ConfigError

    with serve(store, port=0, token=TOKEN) as server:
        busy = rf"cannot listen on 127.0.0.1:{server.port} .*choose another port"
        with pytest.raises(ConfigError, match=busy):
            serve(store, port=server.port)
    with pytest.raises(ConfigError, match="port must be an int from 0 to 65535"):
        serve(store, port=70000)


class Wait(Task):
    """Waits until a file exists (so the test sees the job running)."""

    __trialbook_id__ = "test.web.wait"
    gate: Param[str]

    def execute(self) -> None:
        while not Path(self.gate).exists():
            time.sleep(0.05)


def test_experiment_with_a_port_serves_the_ui_while_its_block_runs(tmp_path) -> None:
    import httpx

    gate = tmp_path / "gate"
    with experiment(tmp_path / "wd", "served", port=0, launcher=LocalLauncher(1)) as xp:
        Wait.C(gate=str(gate)).submit()
        base = xp.server.url.split("/?")[0]
        auth = {"Authorization": f"Bearer {xp.server.token}"}
        names = [
            e["name"]
            for e in httpx.get(f"{base}/api/experiments", headers=auth).json()["experiments"]
        ]
        assert "served" in names  # visible while its first job still runs
        assert httpx.get(f"{base}/api/experiments").status_code == 403
        gate.touch()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/api/experiments", headers=auth, timeout=2)


# -- a team's shared UI: stable token, reachable URL, Host check (issue 18) ----------------------


def start_ui(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, list[str]]:
    """`trialbook ui ARGS --port 0` in a process of its own, and the two lines of its banner."""
    import os

    command = [sys.executable, "-m", "trialbook", "ui", *args, "--port", "0"]
    environ = {k: v for k, v in os.environ.items() if k != "TRIALBOOK_UI_TOKEN"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**environ, **(env or {})})  # fmt: skip
    assert proc.stdout is not None
    return proc, [proc.stdout.readline() for _ in range(2)]


def stop_ui(proc: subprocess.Popen) -> str:
    """Stop a process of :func:`start_ui`; what it wrote to stderr."""
    proc.terminate()
    _, errors = proc.communicate(timeout=30)
    return str(errors)


def get_json(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def test_ui_token_from_the_option_or_the_environment(tmp_path: Path) -> None:
    """``--token`` beats ``$TRIALBOOK_UI_TOKEN``, which beats a generated token (the default,
    see test_trialbook_ui_command_prints_a_tokenized_url); the served UI takes that token."""
    location = str(tmp_path / "store")
    open_store(location).close()
    for args, env, token in [
        (["--token", "team-token-1"], {"TRIALBOOK_UI_TOKEN": "from-env"}, "team-token-1"),
        ([], {"TRIALBOOK_UI_TOKEN": "from-env"}, "from-env"),
    ]:
        proc, banner = start_ui("--store", location, *args, env=env)
        try:
            url = banner[1].strip()
            assert re.fullmatch(rf"http://127\.0\.0\.1:\d+/\?token={token}", url), banner
            base = url.partition("/?")[0]
            assert get_json(f"{base}/api/experiments", token) == {"experiments": []}
            with pytest.raises(urllib.error.HTTPError, match="403"):
                get_json(f"{base}/api/experiments", "another")
        finally:
            stop_ui(proc)
    command = [sys.executable, "-m", "trialbook", "ui", "--store", location, "--token", ""]
    empty = subprocess.run(command, capture_output=True, text=True, check=False)
    assert empty.returncode == 1 and "token must be a non-empty str" in empty.stderr


def test_ui_on_every_interface_prints_a_reachable_host(tmp_path: Path) -> None:
    """Bound to 0.0.0.0, the printed URL names this machine (its name, else its address), and
    that URL answers; the warning says anyone reaching it with the token can read the store."""
    from trialbook.web.hosts import reachable_name

    location = str(tmp_path / "store")
    open_store(location).close()
    proc, banner = start_ui("--store", location, "--host", "0.0.0.0",
                            env={"TRIALBOOK_UI_TOKEN": "shared"})  # fmt: skip
    try:
        url = banner[1].strip()
        assert "0.0.0.0" not in url
        host = reachable_name("0.0.0.0")
        assert re.fullmatch(rf"http://{re.escape(host)}:\d+/\?token=shared", url), banner
        assert get_json(url.replace("/?token=shared", "/api/experiments"), "shared")
    finally:
        errors = stop_ui(proc)
    assert "warning: serving on 0.0.0.0: anyone who can reach it and has the token" in errors


def test_serve_on_every_interface_names_this_machine(store: Any) -> None:
    with serve(store, host="0.0.0.0", port=0, token=TOKEN) as server:
        assert server.host == "0.0.0.0" and "0.0.0.0" not in server.url
        base = server.url.partition("/?")[0]
        assert get_json(f"{base}/api/experiments", TOKEN)["experiments"][0]["runs"] == 12


def test_a_loopback_ui_refuses_requests_for_other_host_names(store: Any) -> None:
    """DNS rebinding: a page of evil.example whose name resolves to 127.0.0.1 reaches the
    server with ``Host: evil.example``, refused with 400 before the token is looked at (no
    cookie is set); the loopback names are answered."""
    import httpx

    with serve(store, port=0, token=TOKEN) as server:
        base, port = f"http://127.0.0.1:{server.port}", server.port
        for host in ["evil.example", f"evil.example:{port}", "192.168.1.7", "localhost.evil"]:
            for path in ["/api/experiments", f"/?token={TOKEN}"]:
                answer = httpx.get(base + path, headers={**AUTH, "Host": host})
                assert answer.status_code == 400, (host, path)
                assert "set-cookie" not in answer.headers
                assert "this UI listens on 127.0.0.1 (this machine only)" in answer.text
        assert "error" in httpx.get(f"{base}/api/experiments",
                                    headers={"Host": "evil.example"}).json()  # fmt: skip
        for host in ["localhost", f"localhost:{port}", "127.0.0.1", f"127.0.0.1:{port}",
                     f"[::1]:{port}", "LOCALHOST."]:  # fmt: skip
            answer = httpx.get(f"{base}/api/experiments", headers={**AUTH, "Host": host})
            assert answer.status_code == 200, host
        anonymous = httpx.get(f"{base}/api/experiments", headers={"Host": "localhost"})
        assert anonymous.status_code == 403


def test_a_ui_on_every_interface_answers_any_host_name(store: Any) -> None:
    """Shared on purpose (``--host 0.0.0.0``): names such as a team's DNS alias work, and the
    token still guards every request."""
    import httpx

    with serve(store, host="0.0.0.0", port=0, token=TOKEN) as server:
        base = f"http://127.0.0.1:{server.port}/api/experiments"
        headers = {"Host": f"ui.team.example:{server.port}"}
        assert httpx.get(base, headers={**headers, **AUTH}).status_code == 200
        assert httpx.get(base, headers=headers).status_code == 403
