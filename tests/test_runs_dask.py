"""Runs executed on a real Dask cluster (LocalCluster with worker processes)."""

from __future__ import annotations

import os

import pytest

import trialbook
from conftest import require_module
from trialbook.errors import ConfigError, RunFailedError

distributed = require_module("distributed", "distributed")


@pytest.fixture
def client(dask_client):
    return dask_client


def fit(run: trialbook.Run) -> None:
    run.vars.scale = 10
    run.state.seen = run.state.get("seen", 0) + 1
    run.fields.y = run.params.x * run.vars.scale
    run.fields.worker = os.getpid()
    for step in range(5):
        run.log_metric("loss", run.params.x / (step + 1))


def test_grid_runs_on_the_cluster_and_tracking_comes_back(session, client) -> None:
    experiment = session.create_experiment("dask-grid")
    experiment.add_runs(x=list(range(30)))
    experiment.execute(fit, client=client)
    assert len({run.fields.worker for run in experiment.runs.values()}) == 2
    assert all(dict(run.vars) == {} and run.state.seen == 1 for run in experiment.runs.values())
    experiment.persist()
    loaded = session.load_experiment("dask-grid")
    for run in loaded.runs.values():
        assert run.status == "done"
        assert run.fields.y == run.params.x * 10
        assert run.metrics("loss")["value"].tolist() == [run.params.x / (s + 1) for s in range(5)]


def test_scheduler_address_is_accepted(session, client) -> None:
    experiment = session.create_experiment("by-address")
    experiment.add_runs(x=[1, 2])
    experiment.execute(fit, client=client.scheduler.address)
    assert [run.fields.y for run in experiment.runs.values()] == [10, 20]


def test_failures_on_workers_keep_their_type(session, client) -> None:
    experiment = session.create_experiment("dask-fail")
    experiment.add_runs(x=[1, 0, 2])

    def invert(run: trialbook.Run) -> None:
        run.fields.inv = 1 / run.params.x

    with pytest.raises(RunFailedError, match="run 2 of experiment 'dask-fail'") as info:
        experiment.execute(invert, client=client)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert [r.status for r in experiment.runs.values()] == ["done", "failed", "done"]


def test_killed_worker_marks_its_runs_failed_and_the_rest_goes_on(session, own_dask_client) -> None:
    experiment = session.create_experiment("dask-killed")
    experiment.add_runs(x=[1, 2, 3, 4])

    def die_on_three(run: trialbook.Run) -> None:
        if run.params.x == 3:
            os._exit(1)  # the worker process dies mid-run
        run.fields.ok = True

    with pytest.raises(RunFailedError, match="worker process died"):
        experiment.execute(die_on_three, client=own_dask_client)
    statuses = {run.params.x: run.status for run in experiment.runs.values()}
    assert statuses[3] == "failed"
    assert "running" not in statuses.values()
    assert all(run.fields.ok for run in experiment.runs.values() if run.status == "done")


def test_bad_client_is_a_clear_error(session) -> None:
    experiment = session.create_experiment("bad-client")
    experiment.add_run(x=1)
    with pytest.raises(ConfigError, match=r"distributed\.Client or a scheduler address"):
        experiment.execute(fit, client=42)
