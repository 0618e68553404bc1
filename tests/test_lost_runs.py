"""Issue 18: a run whose process stopped sending heartbeats reads as failed ("lost") through
every reader — store queries on every backend, the UI's API, ``trialbook runs`` — and the Live
list shows what runs while it counts what waits."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import trialbook
from conftest import require_module
from trialbook.cli import cli
from trialbook.storage import open_store
from trialbook.storage.query import query_runs
from trialbook.storage.records import RunRecord

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOST = "its process (n1, pid 7) stopped sending heartbeats"


def beats(store: Any, experiment_id: int) -> None:
    """Runs 2 and 5 listed by a process whose last beat is long past (its process died), run 3
    by one that beats (its beat is ahead of any reader's clock); run 5 ended meanwhile."""
    store.update_meta(experiment_id, {
        "live:dead": {"host": "n1", "pid": 7, "beat": 1.0, "runs": [2, 5]},
        "live:alive": {"host": "n2", "pid": 8, "beat": time.time() + 3600, "runs": [3]},
    })  # fmt: skip


def fill(store: Any, name: str = "lost") -> int:
    """Run 1 done, 2 running and lost, 3 running, 4 pending, 5 done (listed in a dead entry)."""
    exp = store.create_experiment(name)
    statuses = {1: "done", 2: "running", 3: "running", 4: "pending", 5: "done"}
    store.write_runs(exp.id, [
        RunRecord(i, status=s, params={"lr": i / 10}, started=100.0 if s != "pending" else None)
        for i, s in statuses.items()
    ])  # fmt: skip
    beats(store, exp.id)
    return exp.id


def ids(store: Any, experiment_id: int, where: str | None) -> list[int]:
    return [run.run_id for run in query_runs(store, experiment_id, where=where, limit=None)[1]]


class PlainStore:
    """A store without a native ``query_runs`` (the generic Python path of query_runs): only
    the reads query_runs needs, passed on to a real store."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def read_runs(self, experiment_id: int) -> list[RunRecord]:
        return self.store.read_runs(experiment_id)

    def list_experiments(self) -> list[Any]:
        return self.store.list_experiments()


@pytest.mark.parametrize("native", [True, False], ids=["native", "generic"])
def test_a_lost_run_is_failed_in_counts_and_filters_on_every_backend(
    backend_store: Any, native: bool
) -> None:
    exp_id = fill(backend_store)
    store = backend_store if native else PlainStore(backend_store)
    assert ids(store, exp_id, 'status == "running"') == [3]
    assert ids(store, exp_id, 'status == "failed"') == [2]
    assert ids(store, exp_id, 'status != "running"') == [1, 2, 4, 5]
    assert ids(store, exp_id, 'status in ["running", "pending"]') == [3, 4]
    assert ids(store, exp_id, 'not (status == "failed") and lr > 0.15') == [3, 4, 5]
    assert ids(store, exp_id, 'status == "failed" or lr < 0.15') == [1, 2]
    counts = {s: query_runs(store, exp_id, where=f"status == {s!r}", limit=0)[0]
              for s in ("pending", "running", "done", "failed")}  # fmt: skip
    assert counts == {"pending": 1, "running": 1, "done": 2, "failed": 1}
    _, page = query_runs(store, exp_id, limit=None)
    assert [r.status for r in page] == ["done", "failed", "running", "pending", "done"]
    assert page[1].error is not None and page[1].error.type == "LostRun"
    assert str(page[1].error).startswith(f"LostRun: {LOST} ")
    assert page[2].error is None and page[4].error is None
    # derived on read: the store still holds what the process wrote
    assert [r.status for r in backend_store.read_runs(exp_id, [2])] == ["running"]


def test_without_heartbeat_entries_nothing_is_rewritten(tmp_path: Path) -> None:
    with open_store(tmp_path / "store") as store:
        exp = store.create_experiment("plain")
        store.write_runs(exp.id, [RunRecord(1, status="running")])
        assert ids(store, exp.id, 'status == "running"') == [1]
        store.update_meta(exp.id, {"live:dead": {"host": "h", "pid": 1, "beat": 1.0, "runs": []}})
        assert ids(store, exp.id, 'status == "running"') == [1]


def test_the_heartbeat_timeout_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A beat a day old is lost with the default timeout, not with a timeout of two days."""
    with open_store(tmp_path / "store") as store:
        exp = store.create_experiment("slow")
        store.write_runs(exp.id, [RunRecord(1, status="running")])
        entry = {"host": "h", "pid": 1, "beat": time.time() - 86_400, "runs": [1]}
        store.update_meta(exp.id, {"live:slow": entry})
        assert ids(store, exp.id, 'status == "failed"') == [1]
        monkeypatch.setenv("TRIALBOOK_HEARTBEAT_TIMEOUT", str(2 * 86_400))
        assert ids(store, exp.id, 'status == "failed"') == []
        monkeypatch.setenv("TRIALBOOK_HEARTBEAT_TIMEOUT", "soon")
        with pytest.raises(ValueError, match="TRIALBOOK_HEARTBEAT_TIMEOUT must be a number of"):
            query_runs(store, exp.id)


# -- the UI's API ----------------------------------------------------------------------------------


def client_of(store: Any) -> Any:
    require_module("starlette", "ui")
    from starlette.testclient import TestClient

    from trialbook.web import create_app

    return TestClient(create_app(store, token=TOKEN), headers=AUTH)


def test_the_api_shows_a_lost_run_failed_everywhere(tmp_path: Path) -> None:
    with open_store(tmp_path / "store") as store:
        fill(store)
        with client_of(store) as client:
            rows = client.get("/api/experiments/lost/runs").json()["runs"]
            assert [(r["run_id"], r["status"]) for r in rows] == [
                (1, "done"), (2, "failed"), (3, "running"), (4, "pending"), (5, "done"),
            ]  # fmt: skip
            assert rows[1]["error"].startswith(f"LostRun: {LOST} ")
            failed = client.get(
                "/api/experiments/lost/runs", params={"where": 'status == "failed"'}
            )
            assert [r["run_id"] for r in failed.json()["runs"]] == [2]
            detail = client.get("/api/experiments/lost/runs/2").json()
            assert detail["status"] == "failed" and detail["error"]["type"] == "LostRun"
            compare = client.get("/api/experiments/lost/compare", params={"runs": "2,3"}).json()
            assert compare["status"] == ["failed", "running"]
            status = client.get("/api/experiments/lost/status").json()
            assert status["counts"] == {"pending": 1, "running": 1, "done": 2, "failed": 1}
            assert [r["run_id"] for r in status["live"]] == [3]
            assert status["waiting"] == {"runs": 1, "jobs": 0}


def test_the_live_list_lists_what_runs_and_counts_what_waits(backend_store: Any) -> None:
    """300 pending runs and 2 running: the Live list lists 2 and counts 300 waiting."""
    exp = backend_store.create_experiment("queue")
    backend_store.write_runs(exp.id, [
        RunRecord(i, status="running" if i > 300 else "pending", started=100.0 if i > 300 else None)
        for i in range(1, 303)
    ])  # fmt: skip
    with client_of(backend_store) as client:
        status = client.get("/api/experiments/queue/status").json()
    assert [r["run_id"] for r in status["live"]] == [301, 302]
    assert status["waiting"] == {"runs": 300, "jobs": 0}
    assert status["counts"] == {"pending": 300, "running": 2, "done": 0, "failed": 0}
    assert status["jobs"] == []


# -- the command line ------------------------------------------------------------------------------


def test_trialbook_runs_shows_a_lost_run_failed(tmp_path: Path) -> None:
    location = str(tmp_path / "store")
    with open_store(location) as store:
        fill(store)

    def invoke(*args: str) -> Any:
        result = CliRunner().invoke(cli, [*args, "--store", location], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    lines = invoke("runs", "lost").splitlines()
    assert [line.split()[:3] for line in lines[2:7]] == [
        ["1", "0.1", "done"], ["2", "0.2", "failed"], ["3", "0.3", "running"],
        ["4", "0.4", "pending"], ["5", "0.5", "done"],
    ]  # fmt: skip
    assert lines[7].startswith(f"run 2 lost: {LOST} ") and len(lines) == 8
    running = invoke("runs", "lost", "--where", 'status == "running"').splitlines()
    assert [line.split()[0] for line in running[2:-1]] == ["3"]
    assert running[-1] == "(1 of 1 matching runs)"
    failed = invoke("runs", "lost", "--where", 'status == "failed"').splitlines()
    assert [line.split()[0] for line in failed[2:-2]] == ["2"]
    shown = invoke("show", "lost", "2").splitlines()
    assert shown[0] == "run 2 of 'lost': failed"
    assert shown[-2] == "error:" and shown[-1].startswith(f"  LostRun: {LOST} ")


def test_a_session_search_finds_a_lost_run_failed(tmp_path: Path) -> None:
    with trialbook.create_session(tmp_path / "store") as session:
        fill(session.store)
        frame = session.search_runs("lost", 'status == "failed"')
    assert list(frame.index) == [2] and frame["error"].iloc[0].startswith("LostRun: ")
