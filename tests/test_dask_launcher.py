"""Task jobs and runs on a real Dask LocalCluster (worker processes): the DaskLauncher,
tokens on the cluster, a killed worker, and ``execute(backend="dask")``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import trialbook
from conftest import require_module
from races import Occupancy, count, hold_until_contended, recording
from trialbook import Meta, Param, Task, experiment
from trialbook.errors import ConfigError, JobFailedError
from trialbook.execution.dask import DaskLauncher
from trialbook.storage import open_store
from trialbook.tasks.tokens import CounterToken

distributed = require_module("distributed", "distributed")


@pytest.fixture
def client(dask_client):
    return dask_client


class Square(Task):
    """Squares ``x`` on a worker, logging a metric and a field through the current run; with
    ``log`` it counts itself in and out of that occupancy file and, in between, holds its units
    of ``token`` until the scheduler was refused some (:func:`races.hold_until_contended`)."""

    __trialbook_id__ = "test.dask.square"
    x: Param[int]
    log: Meta[str] = ""
    token: Meta[str] = ""
    refusals: Meta[str] = ""
    group: Meta[int] = 0

    def execute(self) -> None:
        place = Occupancy(self.log) if self.log else None
        if place is not None:
            place.enter()
        run = trialbook.current_run()
        for epoch in range(3):
            run.log_metric("loss", self.x / (epoch + 1))
        run.fields.square = self.x * self.x
        run.fields.pid = os.getpid()
        print("squared", self.x)
        if place is not None:
            note = ""
            if self.token:
                note = hold_until_contended(
                    place, self.token, refusals=self.refusals, label="", group=self.group
                )
            place.leave(note)


class Crash(Task):
    __trialbook_id__ = "test.dask.crash"
    x: Param[int]
    marker: Meta[str] = ""

    def execute(self) -> None:
        if not self.marker or not os.path.exists(self.marker):
            if self.marker:
                open(self.marker, "w").close()
            os._exit(3)  # the worker process dies mid-job (every time, or only the first)


def jobs_in_store(workdir: Path, name: str) -> dict[int, trialbook.RunRecord]:
    store = open_store(workdir.parent / ".trialbook")  # the default store: the test's cwd
    try:
        exp = store.find_experiment(name)
        return {r.params["x"]: r for r in store.read_runs(exp.id)}
    finally:
        store.close()


def test_jobs_run_on_the_cluster_and_their_tracking_reaches_the_store(tmp_path, client) -> None:
    with experiment(tmp_path / "wd", "squares", launcher=DaskLauncher(client)) as xp:
        tasks = [Square.C(x=x).submit() for x in range(4)]
    assert xp is not None
    pids = set()
    records = jobs_in_store(tmp_path / "wd", "squares")
    worker_pids = set(client.run(os.getpid).values())
    for x, record in records.items():
        assert record.kind == "job" and record.status == "done"
        assert record.fields["square"] == x * x
        pids.add(record.fields["pid"])
        assert record.metrics["loss"] == [3, pytest.approx(x / 3), pytest.approx(x / 3), x]
    assert pids <= worker_pids and os.getpid() not in pids
    assert (tasks[2].jobpath / "stdout.log").read_text() == "squared 2\n"


def test_tokens_hold_on_the_cluster(tmp_path, client, monkeypatch) -> None:
    """Four jobs need the one unit of a token, on two workers: each holds it until the
    scheduler was refused it, and no two ever hold it at once."""
    log, refusals = tmp_path / "inside", tmp_path / "refusals"
    wrapped = recording(CounterToken.try_acquire, refusals, lambda holder: holder is None)
    monkeypatch.setattr(CounterToken, "try_acquire", wrapped)
    with experiment(tmp_path / "wd", "tokens", launcher=DaskLauncher(client)) as xp:
        token = xp.token("slot", 1)
        for x in range(4):
            task = Square.C(x=x, log=str(log), token="slot", refusals=str(refusals), group=4)
            token(1, task)
            task.submit()
    seen = Occupancy(log).read()
    assert seen["left"] == 4
    assert seen["most"] == 1, f"two jobs held the token's only unit at once: {seen}"
    assert seen["notes"].get("contended", 0) >= 1 and count(refusals, "slot") >= 1


def test_a_killed_worker_fails_its_job_and_the_others_finish(tmp_path, own_dask_client) -> None:
    def plan() -> None:
        with experiment(tmp_path / "wd", "crash", launcher=DaskLauncher(own_dask_client)) as xp:
            one_at_a_time = xp.token("one", 1)  # no job shares a worker with the crashing one
            for task in (Crash.C(x=0), Square.C(x=1), Square.C(x=2)):
                one_at_a_time(1, task)
                task.submit()

    with pytest.raises(JobFailedError):
        plan()
    records = jobs_in_store(tmp_path / "wd", "crash")
    assert records[0].status == "failed"
    assert "worker process died" in str(records[0].error)
    assert [records[x].status for x in (1, 2)] == ["done", "done"]


def test_a_job_whose_worker_died_once_is_rerun_by_dask(tmp_path, own_dask_client) -> None:
    marker = tmp_path / "died-once"
    with experiment(tmp_path / "wd", "once", launcher=DaskLauncher(own_dask_client)):
        Crash.C(x=5, marker=str(marker)).submit()
    assert marker.exists()
    assert jobs_in_store(tmp_path / "wd", "once")[5].status == "done"


def test_launcher_with_an_address_connects_and_closes(client) -> None:
    launcher = DaskLauncher(client.scheduler.address)
    assert launcher.submit(pow, 2, 10).result(timeout=30) == 1024
    launcher.shutdown()
    assert launcher._client is None


def grow(run: trialbook.Run) -> None:
    run.fields.y = run.params.x + 1
    run.log_metric("m", run.params.x)


def test_execute_backend_dask_uses_the_given_or_default_client(session, client) -> None:
    experiment_ = session.create_experiment("backend-dask")
    experiment_.add_runs(x=[1, 2, 3])
    experiment_.execute(grow, backend="dask", client=client)
    assert [r.fields.y for r in experiment_.runs.values()] == [2, 3, 4]
    experiment_.add_run(x=9)
    with distributed.Client(client.scheduler.address):  # now the current default client
        experiment_.execute(grow, backend="dask", run_ids=[4])
    assert experiment_.runs[4].fields.y == 10
    experiment_.persist()
    loaded = session.load_experiment("backend-dask")
    assert loaded.runs[4].metrics("m")["value"].tolist() == [9]


def test_execute_backend_errors(session) -> None:
    experiment_ = session.create_experiment("backend-errors")
    experiment_.add_run(x=1)
    with pytest.raises(ConfigError, match="backend must be 'local' or 'dask'"):
        experiment_.execute(grow, backend="spark")
    with pytest.raises(ConfigError, match="drop client="):
        experiment_.execute(grow, backend="local", client="tcp://127.0.0.1:1")
