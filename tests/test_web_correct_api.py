"""Issue 15, "correctness of what is shown", through the JSON API over real SQLite stores:
comparisons by content and "not recorded", environment tables, one rule for live counts,
jobs named by their tags with progress, filter errors with their position."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conftest import require_module

require_module("starlette", "ui")

from starlette.testclient import TestClient  # noqa: E402 - after the check of the ui extra

import trialbook  # noqa: E402
from trialbook import Param, Task, experiment, tag  # noqa: E402
from trialbook.codecs import encode  # noqa: E402
from trialbook.storage import open_store  # noqa: E402
from trialbook.storage.records import RunRecord  # noqa: E402
from trialbook.tasks import LocalLauncher  # noqa: E402
from trialbook.web import create_app  # noqa: E402

TOKEN = "correct-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def fill_values(store: Any) -> None:
    """`values`: three grid runs with no code or environment recorded, whose arrays and frames
    have the same shapes (so the same labels) but not the same content."""
    exp = store.create_experiment("values")
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"]})
    records = []
    for i, (w, df) in enumerate([
        (np.zeros((2, 3)), frame),
        (np.zeros((2, 3)), frame.copy()),
        (np.array([[0.0, 0.5, 0.0], [0.0, 0.0, -2.0]]), frame.assign(a=[1.0, 2.0, 3.25])),
    ], start=1):  # fmt: skip
        fields = {"w": encode(w), "df": encode(df), "v": encode(np.arange(i)),
                  "cols": encode(frame if i < 3 else frame[["a"]])}  # fmt: skip
        records.append(RunRecord(i, status="done", params={"lr": 0.1}, fields=fields))
    long_path = "/data/" + "very-long-folder-name/" * 20 + "file.csv"
    config = {"model": {"layers": [64] * 40, "name": "x" * 300}}
    params = {"lr": 0.2, "path": long_path, "config": config}
    fields, tags = {"summary": "words " * 200}, {"t": "y" * 400}
    records.append(RunRecord(4, status="done", params=params, fields=fields, tags=tags))
    store.write_runs(exp.id, records)
    store.create_experiment("an-experiment-with-a-long-name-" * 8)


def two_trials(location: str) -> None:
    """`graph`: two graph trials, one returning None (its Result row must still show)."""
    with trialbook.Experiment(id="graph", backend=location) as ex:
        a = ex.parameter("a", default=1)

        @ex.result
        def half(a: int) -> Any:
            return None if a == 1 else np.array([a / 2, a])

        for value in (1, 2):
            ex.set_parameters(a=value)
            half(a).compute(seed=value)


@pytest.fixture
def location(tmp_path: Path) -> str:
    location = str(tmp_path / "store")
    two_trials(location)
    with open_store(location) as store:
        fill_values(store)
    return location


@pytest.fixture
def client(location: str) -> Iterator[TestClient]:
    with open_store(location) as store, TestClient(create_app(store, token=TOKEN),
                                                    headers=AUTH) as client:  # fmt: skip
        yield client


def test_runs_without_code_or_environment_compare_as_not_recorded(client: TestClient) -> None:
    body = client.get("/api/experiments/values/compare", params={"runs": "1,2,3"}).json()
    for key in ("code_diff", "environment_diff"):
        assert [(d["run_id"], d["state"], d["missing"]) for d in body[key]] == [
            (2, "not recorded", [1, 2]), (3, "not recorded", [1, 3])]  # fmt: skip


def test_arrays_and_frames_are_compared_by_content(client: TestClient) -> None:
    body = client.get("/api/experiments/values/compare", params={"runs": "1,2,3"}).json()
    fields = {row["name"]: row for row in body["fields"]}
    w = fields["w"]
    assert w["values"] == ["array float64 [2 × 3]"] * 3
    assert w["differs"] and w["notes"] == [None, "same", "max |Δ| 2.0"]
    assert w["max_abs_diff"] == [None, 0.0, 2.0]
    df = fields["df"]
    assert df["values"] == ["table 3 rows × 2 columns"] * 3
    assert df["differs"] and df["notes"] == [None, "same", "max |Δ| 0.25"]
    assert fields["v"]["notes"] == [None, "shape [2] ≠ [1]", "shape [3] ≠ [1]"]
    assert fields["cols"]["notes"] == [None, "same", "columns ['a'] ≠ ['a', 'b']"]
    same = client.get("/api/experiments/values/compare", params={"runs": "1,2"}).json()
    assert not {row["name"]: row for row in same["fields"]}["w"]["differs"]


def test_graph_trials_show_result_and_seed_rows(client: TestClient) -> None:
    body = client.get("/api/experiments/graph/compare", params={"runs": "1,2"}).json()
    rows = {row["name"]: row for row in body["summary"]}
    assert rows["seed"]["values"] == [1, 2] and rows["seed"]["differs"]
    assert rows["result"]["values"] == [None, "array float64 [2]"]
    assert rows["result"]["differs"] and rows["result"]["notes"] == [None, "array ≠ missing"]
    assert [d["state"] for d in body["code_diff"]] == ["identical"]
    assert [d["state"] for d in body["environment_diff"]] == ["identical"]


@pytest.mark.parametrize(
    ("where", "column", "length", "marked"),
    [
        ("lr > 0.1 and f(x) == 1", 14, 4, "f(x)"),
        ('opt == "é" and lr >', 19, 1, ">"),
        ("lr > 0.1 and nope == 2", 14, 4, "nope"),
        ("lr > 0.1 and params == 2", 14, 6, "params"),
        ("  lr >> 1", 1, 7, "lr >> 1"),
    ],
)
def test_a_bad_filter_answers_its_position(
    client: TestClient, where: str, column: int, length: int, marked: str
) -> None:
    answer = client.get("/api/experiments/values/runs", params={"where": where})
    assert answer.status_code == 400
    body = answer.json()
    assert (body["query"], body["column"], body["length"]) == (where.strip(), column, length)
    assert body["query"][column - 1 : column - 1 + length] == marked
    assert f"at column {column}" in body["error"]
    scatter = client.get("/api/experiments/values/scatter", params={"axes": "lr", "where": where})
    assert scatter.json()["column"] == column


def test_a_filter_error_without_a_position_and_a_bad_sort_say_so(client: TestClient) -> None:
    deep = client.get("/api/experiments/values/runs", params={"where": "not " * 120 + "x == 1"})
    assert deep.status_code == 400
    assert deep.json()["column"] is None and "nested" in deep.json()["error"]
    sort = client.get("/api/experiments/values/runs", params={"order_by": "nope"})
    assert sort.status_code == 400 and "column" not in sort.json()


def test_the_environment_of_a_trial_is_tables_not_json_text(client: TestClient) -> None:
    import platform

    run = client.get("/api/experiments/graph/runs/1").json()
    env = client.get(f"/api/environments/{run['environment']}").json()
    names = [p["name"] for p in env["packages"]]
    assert names == sorted(names, key=str.lower) and "numpy" in names
    numpy = next(p for p in env["packages"] if p["name"] == "numpy")
    assert numpy["version"] == np.__version__
    sections = {s["name"]: s for s in env["sections"]}
    python = {r["key"]: r["value"] for r in sections["python"]["rows"]}
    assert python["version"] == platform.python_version()
    assert sections["device"]["title"] == "Platform"
    assert {r["key"]: r["value"] for r in sections["device"]["rows"]}["system"] == platform.system()
    assert not any('{"' in r["value"] for s in env["sections"] for r in s["rows"])


def test_environment_of_a_code_snapshot_or_unknown_digest(client: TestClient) -> None:
    run = client.get("/api/experiments/graph/runs/1").json()
    code = client.get(f"/api/environments/{run['code']}")
    assert code.status_code == 400 and "not an environment" in code.json()["error"]
    assert client.get("/api/environments/abc").status_code == 404


def test_environment_diff_is_by_section(tmp_path: Path) -> None:
    from trialbook.capture import environment_text

    with open_store(tmp_path / "s") as store:
        exp = store.create_experiment("env")
        digests = [store.put_snapshot("environment", environment_text(
            {"python": '{"version": "3.12"}', "requirements": f"numpy {v} (/v)\nzlib 1 (/v)\n"}))
            for v in ("2.0", "2.1")]  # fmt: skip
        store.write_runs(exp.id, [RunRecord(i, environment=d) for i, d in enumerate(digests, 1)])
        with TestClient(create_app(store, token=TOKEN), headers=AUTH) as client:
            body = client.get("/api/experiments/env/compare", params={"runs": "1,2"}).json()
    [diff] = body["environment_diff"]
    assert diff["state"] == "differs"
    assert diff["diff"] == (
        "--- run 1\n+++ run 2\n@@ requirements @@\n-numpy 2.0 (/v)\n+numpy 2.1 (/v)\n"
    )


class Train(Task):
    """Reports 40% of its epochs, then waits for a file to appear (so a test sees it run)."""

    __trialbook_id__ = "Train"
    lr: Param[float]
    seed: Param[int]
    signal: Param[str]

    def execute(self) -> None:
        trialbook.progress(0.4, desc="epochs")
        deadline = time.time() + 60
        while not Path(self.signal).exists() and time.time() < deadline:
            time.sleep(0.05)


def wait_for(condition: Any, timeout: float = 60.0) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def start_sweep(tmp_path: Path, location: str) -> tuple[threading.Thread, Path]:
    """A task experiment `sweep` of three Train jobs on two workers: two run (and report
    progress) until the file `go` appears, the third waits for a worker."""
    signal = tmp_path / "go"

    def plan() -> None:
        with experiment(tmp_path / "wd", "sweep", launcher=LocalLauncher(n_workers=2),
                        store=location):  # fmt: skip
            for seed in (1, 2, 3):
                Train.C(lr=tag(0.1), seed=tag(seed), signal=str(signal)).submit()

    thread = threading.Thread(target=plan)
    thread.start()
    return thread, signal


def test_live_counts_follow_one_rule_while_task_jobs_run(tmp_path: Path) -> None:
    location = str(tmp_path / "jobs-store")
    thread, signal = start_sweep(tmp_path, location)
    try:
        with open_store(location) as store, TestClient(create_app(store, token=TOKEN),
                                                        headers=AUTH) as client:  # fmt: skip

            def running() -> Any:
                if store.find_experiment("sweep") is None:
                    return None
                body = client.get("/api/experiments/sweep/status").json()
                return body if len(body["jobs"]) == 2 and all(
                    j["progress"] for j in body["jobs"]) else None  # fmt: skip

            status = wait_for(running)
            assert status["counts"] == {"pending": 1, "running": 2, "done": 0, "failed": 0}
            assert status["unrecorded"] == {"pending": 1, "running": 2, "done": 0, "failed": 0}
            assert status["waiting"] == {"runs": 0, "jobs": 1}
            names = sorted(j["name"] for j in status["jobs"])
            assert len(names) == 2 and set(names) <= {f"Train lr=0.1 seed={s}" for s in (1, 2, 3)}
            assert status["jobs"][0]["progress"] == [
                {"level": 0, "progress": 0.4, "desc": "epochs"}]  # fmt: skip
            [listed] = client.get("/api/experiments").json()["experiments"]
            assert listed["live"] == {"running": 2, "pending": 1}
            signal.touch()
            thread.join(60)
            done = client.get("/api/experiments/sweep/status").json()
            assert done["counts"] == {"pending": 0, "running": 0, "done": 3, "failed": 0}
            assert done["unrecorded"]["done"] == 0 and done["jobs"] == []
            [listed] = client.get("/api/experiments").json()["experiments"]
            assert listed["live"] == {"running": 0, "pending": 0} and listed["runs"] == 3
    finally:
        signal.touch()
        thread.join(60)


def test_a_finished_job_not_recorded_yet_counts_as_done(tmp_path: Path) -> None:
    """Between a job's end and its record (or when recording failed), its job directory says
    done: the counts show it done, not nowhere."""
    from trialbook.web.live import live_counts

    location = str(tmp_path / "jobs-store")
    thread, signal = start_sweep(tmp_path, location)
    signal.touch()
    thread.join(60)
    with open_store(location) as store:
        info = store.find_experiment("sweep")
        [first, *_] = store.read_runs(info.id)
        store.delete_runs(info.id, [first.run_id])
        found = live_counts(store, store.find_experiment("sweep"))
    assert found.counts["done"] == 3 and found.unrecorded["done"] == 1


def test_pickles_and_values_too_large_to_load_are_compared_by_their_bytes() -> None:
    import fractions

    from trialbook.web import differences

    pickled = [encode(fractions.Fraction(1, k), allow_pickle=True) for k in (3, 3, 4)]
    row = differences.compare_values(pickled)
    assert row["labels"] == ["<pickle>"] * 3
    assert row["notes"] == [None, "same", "bytes differ (pickled, not loaded)"]
    big = [encode(np.zeros(100)), encode(np.zeros(100)), encode(np.ones(100))]
    row = differences.compare_values(big, max_load=100)
    assert row["labels"][0].startswith("<npy, ") and row["differs"]
    assert row["notes"][1:] == ["same", "bytes differ (0 MiB, compared by bytes)"]
