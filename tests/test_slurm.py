"""The Slurm launcher against a real single-node Slurm (slurmctld + slurmd started by
scripts/slurm.sh from Debian's slurm-wlm and munge packages)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import time

import pytest

import trialbook
from conftest import Closing, need
from trialbook import Meta, Param, Task, experiment
from trialbook.errors import ExecutionError, JobFailedError, RunFailedError
from trialbook.execution.slurm import SlurmLauncher
from trialbook.storage import open_store


@pytest.fixture(autouse=True)
def slurm(monkeypatch: pytest.MonkeyPatch) -> str:
    conf = os.environ.get("TRIALBOOK_TEST_SLURM_CONF", "")
    need(
        bool(conf) and pathlib.Path(conf).exists(),
        "no Slurm cluster: run `bash scripts/slurm.sh up` (scripts/test.sh does) and set "
        "TRIALBOOK_TEST_SLURM_CONF to the slurm.conf it prints",
    )
    monkeypatch.setenv("SLURM_CONF", conf)
    return conf


def add(a: int, b: int) -> int:
    return a + b


def fail() -> None:
    raise KeyError("missing")


def sleep_then(seconds: float, value: int) -> int:
    time.sleep(seconds)
    return value


def test_calls_run_as_slurm_jobs_and_keep_their_results_and_errors(tmp_path) -> None:
    launcher = SlurmLauncher(cpus=1, mem="200M", time="5", folder=tmp_path, poll=0.2)
    futures = [launcher.submit(add, i, 10) for i in range(3)]
    assert [f.result(timeout=120) for f in futures] == [10, 11, 12]
    failing = launcher.submit(fail)
    with pytest.raises(KeyError, match="missing"):
        failing.result(timeout=120)
    states = [job.state for job in launcher.jobs]
    assert states == ["COMPLETED"] * 3 + ["FAILED"]
    assert "KeyError: 'missing'" in launcher.jobs[-1].log("err")
    script = (launcher.jobs[0].folder / "job.sh").read_text()
    assert "#SBATCH --cpus-per-task=1" in script and "#SBATCH --mem=200M" in script


def test_a_cancelled_job_is_an_error_naming_its_state(tmp_path) -> None:
    launcher = SlurmLauncher(folder=tmp_path, poll=0.2)
    future = launcher.submit(sleep_then, 300, 1)
    deadline = time.monotonic() + 60
    while launcher.jobs[0].state != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert launcher.cancel(future)
    with pytest.raises(ExecutionError, match=r"Slurm job \d+ ended CANCELLED"):
        future.result(timeout=120)


def test_refused_submission_is_a_clear_error(tmp_path) -> None:
    launcher = SlurmLauncher(partition="no-such-partition", folder=tmp_path)
    with pytest.raises(ExecutionError, match=r"sbatch --parsable .* failed .*partition"):
        launcher.submit(add, 1, 2)


class Count(Task):
    """Records a metric and a field from a Slurm node."""

    __trialbook_id__ = "test.slurm.count"
    x: Param[int]

    def execute(self) -> None:
        run = trialbook.current_run()
        run.log_metric("value", self.x)
        run.fields.host = os.uname().nodename
        print("counted", self.x)


class Stuck(Task):
    __trialbook_id__ = "test.slurm.stuck"
    x: Param[int]

    def execute(self) -> None:
        time.sleep(300)


def test_task_jobs_through_slurm_are_tracked_in_the_store(tmp_path) -> None:
    launcher = SlurmLauncher(time="5", poll=0.2)
    with experiment(tmp_path / "wd", "slurm-jobs", launcher=launcher):
        tasks = [Count.C(x=x).submit() for x in range(3)]
    store = open_store(tmp_path / ".trialbook")  # the default store (the test's cwd)
    records = store.read_runs(store.find_experiment("slurm-jobs").id)
    store.close()
    assert sorted(r.params["x"] for r in records) == [0, 1, 2]
    assert all(r.kind == "job" and r.status == "done" for r in records)
    assert all(r.metrics["value"][0] == 1 and r.fields["host"] for r in records)
    assert (tasks[1].jobpath / "stdout.log").read_text() == "counted 1\n"
    assert list((tasks[1].jobpath / "slurm").glob("slurm-*.out"))


def square_on_a_node(run: trialbook.Run) -> None:
    run.log_metric("loss", 1 / run.params.x)
    run.fields.y = run.params.x**2


def test_a_grid_of_runs_through_slurm(tmp_path, closing: Closing) -> None:
    """Runs go to Slurm through the same executor protocol as task jobs (a job per batch)."""
    session = closing(trialbook.create_session(tmp_path / "store"))
    grid = session.create_experiment("slurm-runs")
    grid.add_runs(x=[1, 2, 0])
    launcher = SlurmLauncher(time="5", folder=tmp_path / "calls", poll=0.2)
    with pytest.raises(RunFailedError, match="run 3 of experiment") as info:
        grid.execute(square_on_a_node, executor=launcher)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert all(job.state == "COMPLETED" for job in launcher.jobs)
    grid.persist()
    loaded = session.load_experiment("slurm-runs").runs
    assert [loaded[i].status for i in (1, 2, 3)] == ["done", "done", "failed"]
    assert loaded[2].fields.y == 4 and loaded[2].metrics("loss")["value"].tolist() == [0.5]


def test_a_cancelled_future_cancels_its_slurm_job(tmp_path) -> None:
    launcher = SlurmLauncher(folder=tmp_path, poll=0.2)
    future = launcher.submit(sleep_then, 300, 1)
    assert future.cancel()
    deadline = time.monotonic() + 60
    while launcher.jobs[0].state != "CANCELLED" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert launcher.jobs[0].state == "CANCELLED"


def test_a_job_cancelled_on_slurm_is_failed_never_left_running(tmp_path) -> None:
    launcher = SlurmLauncher(poll=0.2)

    def plan() -> None:
        with experiment(tmp_path / "wd", "cancel", launcher=launcher):
            Stuck.C(x=1).submit()
            Count.C(x=2).submit()
            deadline = time.monotonic() + 60
            while not any(j.state == "RUNNING" for j in launcher.jobs if "stuck" in str(j.folder)):
                assert time.monotonic() < deadline, "the job never started"
                time.sleep(0.2)
            stuck = next(j for j in launcher.jobs if "stuck" in str(j.folder))
            subprocess.run(["scancel", stuck.job_id], check=True)

    with pytest.raises(JobFailedError):
        plan()
    (status_file,) = (tmp_path / "wd" / "jobs" / "test.slurm.stuck").glob("*/status.json")
    status = status_file.read_text()
    assert '"failed"' in status and "ended CANCELLED" in status


class Resume(Task):
    """Its first attempt outlives the 1-minute time limit; the resubmitted one finishes."""

    __trialbook_id__ = "test.slurm.resume"
    resumable = True
    marker: Meta[str]

    def execute(self) -> None:
        marker = pathlib.Path(self.marker)
        attempts = int(marker.read_text()) + 1 if marker.exists() else 1
        marker.write_text(str(attempts))
        if attempts == 1:
            time.sleep(600)


def test_a_resumable_task_that_timed_out_is_submitted_again(tmp_path) -> None:
    launcher = SlurmLauncher(time="1", poll=0.5)
    with experiment(tmp_path / "wd", "resume", launcher=launcher):
        Resume.C(marker=str(tmp_path / "marker")).submit()
    assert (tmp_path / "marker").read_text() == "2"
    (job,) = launcher.jobs
    assert len(job.job_ids) == 2 and job.state == "COMPLETED"
    store = open_store(tmp_path / ".trialbook")  # the default store (the test's cwd)
    (record,) = store.read_runs(store.find_experiment("resume").id)
    store.close()
    assert record.status == "done"


class Overrun(Task):
    """Not resumable: an attempt that outlives its time limit fails the job."""

    __trialbook_id__ = "test.slurm.overrun"
    x: Param[int]

    def execute(self) -> None:
        time.sleep(600)


def test_a_task_that_is_not_resumable_and_timed_out_fails_naming_the_time_limit(
    tmp_path,
) -> None:
    """A job that hits its Slurm time limit is not submitted again unless its task is
    resumable: the job fails, its status says it ended TIMEOUT, and only one attempt ran."""
    launcher = SlurmLauncher(time="0:10", poll=0.5)  # ten seconds
    with (
        pytest.raises(JobFailedError, match="TIMEOUT"),
        experiment(tmp_path / "wd", "overrun", launcher=launcher),
    ):
        Overrun.C(x=1).submit()
    (job,) = launcher.jobs
    assert len(job.job_ids) == 1 and job.state == "TIMEOUT"
    (status_file,) = (tmp_path / "wd" / "jobs" / "test.slurm.overrun").glob("*/status.json")
    assert '"failed"' in status_file.read_text()
