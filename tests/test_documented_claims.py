"""Promises of the documentation, each checked against the real thing (issue 19): where it is
written is in each test's docstring. A test that fails here means the code or the sentence is
wrong; fix whichever is, not the test alone."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Optional

import pytest
from click.testing import CliRunner

import trialbook
from conftest import Closing, require_module
from trialbook import Param, Task
from trialbook.cli import cli
from trialbook.identity import canonical_bytes
from trialbook.tasks.jobdir import read_status

# -- runs: n_jobs (docs/runs.md, RunsExperiment.execute, execution/pool.py) ----------------------


def _where(run) -> None:
    run.fields.pid = os.getpid()


def test_n_jobs_is_capped_at_the_cores_and_workers_stay_alive_between_calls(
    session: trialbook.Session,
) -> None:
    """docs/runs.md: "`execute(steps, n_jobs=2)` runs the same steps in a pool of worker
    processes (never more than there are cores; the workers stay alive between calls)"."""
    from trialbook.runs_pool import choose_executor

    cores = os.cpu_count() or 1
    with choose_executor(executor=None, n_jobs=cores + 6, backend=None, client=None, count=50) as (
        launcher,
        workers,
    ):
        assert workers == cores and launcher is not None and launcher.n_workers == cores
    grid = session.create_experiment("pool")
    grid.add_runs(i=list(range(4 * cores)))
    pids = []
    for _ in range(2):
        grid.execute(_where, n_jobs=cores + 6)
        pids.append({run.fields.pid for run in grid.runs.values()})
    first, second = pids
    assert os.getpid() not in first | second
    assert len(first) <= cores and len(second) <= cores
    assert first & second  # the same processes served both calls


# -- graph: cache=True and failures in other processes (docs/graph.md, "Limits") -------------------


def test_cache_is_reused_in_process_and_the_step_runs_again_in_other_processes(
    tmp_path: pathlib.Path, closing: Closing
) -> None:
    """docs/graph.md, Limits: "`@ex.persist(cache=True)` reuses stored outputs only with
    in-process schedulers (`sync`, `threads`); in other processes the step runs again"."""
    ex = closing(trialbook.Experiment("cached", backend=tmp_path / "store"))
    ran = tmp_path / "ran.txt"
    n = ex.parameter("n")

    @ex.persist(cache=True)
    def load(n):
        with open(ran, "a") as f:
            f.write(f"{os.getpid()}\n")
        return list(range(n))

    @ex.result
    def size(xs):
        return len(xs)

    node = size(load(n))
    ex.set_parameters(n=3)
    for scheduler in ("sync", "threads", "sync"):
        assert node.compute(seed=0, scheduler=scheduler) == 3
    assert ran.read_text().split() == [str(os.getpid())]  # ran once, then reused
    assert node.compute(seed=0, scheduler="processes") == 3
    runs = ran.read_text().split()
    assert len(runs) == 2 and runs[1] != str(os.getpid())  # ran again, in a worker process
    assert ex.get_history()["Success"].tolist() == [True] * 4


def test_a_trial_failed_in_another_process_keeps_its_error_but_not_the_tracking(
    tmp_path: pathlib.Path, closing: Closing
) -> None:
    """docs/graph.md, Limits: "When a trial fails in another process, its error is recorded but
    not the metrics or persisted values of the steps that finished there"."""
    ex = closing(trialbook.Experiment("remote_failure", backend=tmp_path / "store"))
    b = ex.parameter("b")

    @ex.persist
    def prepare(b):
        ex.save_metric("seen", epoch=0, value=float(b))
        return {"b": b}

    @ex.result
    def inverse(d):
        return 1 / d["b"]

    node = inverse(prepare(b))
    ex.set_parameters(b=2)
    assert node.compute(seed=0, scheduler="processes") == 0.5  # done: tracked
    assert ex.get_persisted("prepare", trial_id=1) == {"b": 2}
    assert ex.load_metric("seen", trial_id=1).loc[0, 1] == 2.0
    ex.set_parameters(b=0)
    with pytest.raises(ZeroDivisionError):
        node.compute(seed=0, scheduler="processes")
    history = ex.get_history()
    assert history["Success"].tolist() == [True, False]
    assert history.loc[2, "Description"] == "ZeroDivisionError(division by zero)"
    assert ex.store.metric_names(ex.experiment_id, 2) == {}
    assert ex.store.list_artifacts(ex.experiment_id, 2) == {}
    ex.set_parameters(b=0)
    with pytest.raises(ZeroDivisionError):  # in this process, the finished step is kept
        node.compute(seed=0, scheduler="sync")
    assert ex.store.metric_names(ex.experiment_id, 3) == {"seen": 1}
    assert ex.get_persisted("prepare", trial_id=3) == {"b": 0}


# -- tasks: identifiers, tokens, jobs (docs/tasks.md, tasks/config.py) ----------------------------


class Report(Task):
    __trialbook_id__ = "claims.report"
    epochs: Param[int] = 1
    out: Param[Optional[pathlib.Path]] = None  # noqa: UP045 - the spelling the docs name
    cache: Param[pathlib.Path | None] = None
    log: Param[pathlib.Path] = pathlib.Path("log.txt")

    def execute(self) -> None:
        pass


def test_optional_path_parameters_are_not_in_the_identifier() -> None:
    """docs/tasks.md and tasks/config.py: parameters "whose type is `Path` (or
    `Optional[Path]`)" do not count in the identifier."""
    base = Report.C().__identifier__()
    for changes in ({"out": pathlib.Path("a")}, {"cache": "b"}, {"log": pathlib.Path("c")}):
        assert Report.C(**changes).__identifier__() == base, changes
    assert Report.C(epochs=2).__identifier__() != base
    import hashlib

    expected = canonical_bytes(["trialbook.task/1", "claims.report", {"epochs": 1}])
    assert base == hashlib.sha256(expected).hexdigest()


HOLDER = """
import pathlib, sys
from trialbook.tasks.tokens import CounterToken
token = CounterToken("gpu", pathlib.Path(sys.argv[1]), 2)
assert token.try_acquire(2) is not None
print("held", flush=True)
sys.stdin.read()  # holds the units until killed
"""


def test_token_units_of_a_dead_process_are_given_back(tmp_path: pathlib.Path) -> None:
    """docs/tasks.md, Tokens: counted "with file locks in `<workdir>/.tokens/`; units held by a
    process that died are given back"."""
    from trialbook.tasks.tokens import CounterToken

    directory = tmp_path / ".tokens"
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            token = CounterToken("gpu", directory, 2)
            assert token.in_use() == 2
            assert token.try_acquire(1) is None  # the other process holds both units
        finally:
            holder.kill()
    assert token.in_use() == 0
    mine = token.try_acquire(2)
    assert mine is not None
    assert [p.name for p in (directory / "gpu").glob("*.holder")] == [mine.name]


class Blocked(Task):
    """Runs until the test writes to its FIFO ``gate``."""

    __trialbook_id__ = "claims.blocked"
    gate: Param[str]

    def execute(self) -> None:
        print("waiting at the gate", flush=True)
        with open(self.gate) as f:
            f.read()


def _start_generated_job(tmp_path: pathlib.Path) -> tuple[subprocess.Popen[bytes], pathlib.Path]:
    """A job of ``Blocked`` run by its generated ``run.py`` in a process of its own (status
    ``running``, lock held), and its job directory."""
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    with trialbook.experiment(tmp_path / "wd", "claims", run_mode="generate"):
        job = Blocked.C(gate=str(gate)).submit()
    proc = subprocess.Popen([sys.executable, str(job.jobpath / "run.py")])
    deadline = time.monotonic() + 60  # a bound on waiting, not a timing under test
    while (read_status(job.jobpath) or {}).get("status") != "running":
        assert proc.poll() is None, (job.jobpath / "stderr.log").read_text()
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.02)
    return proc, job.jobpath


def _jobs(*args: str) -> str:
    result = CliRunner().invoke(cli, ["jobs", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_jobs_clean_never_removes_a_running_job_and_ls_shows_interrupted(
    tmp_path: pathlib.Path,
) -> None:
    """docs/tasks.md, Managing jobs: `trialbook jobs ls` lists "`interrupted` when the process
    running it died"; `trialbook jobs clean` deletes job directories ("running jobs never").

    The job runs from its generated run script, as a batch system would run it: that process
    holds the job's lock (it did not before issue 19, so such a job was listed as
    `interrupted` while it ran, and `jobs clean --status interrupted` deleted it)."""
    from trialbook.tasks.jobdir import clean_jobs, list_jobs

    proc, jobpath = _start_generated_job(tmp_path)
    workdir = str(tmp_path / "wd")
    label = f"claims.blocked {jobpath.name[:12]}"
    try:
        assert _jobs("ls", "--workdir", workdir) == f"running     {label}\n"
        for status in ("waiting", "done", "failed", "interrupted"):
            output = _jobs("clean", "--workdir", workdir, "--status", status)
            assert output == "0 job(s) removed\n", status
        assert clean_jobs(list_jobs(workdir)) == []  # every job, the running one included
        assert jobpath.is_dir()
        again = subprocess.run(
            [sys.executable, str(jobpath / "run.py")], capture_output=True, text=True, check=False
        )
        assert again.returncode == 1
        assert f"the job in {jobpath} is running in another process" in again.stderr
        proc.send_signal(signal.SIGKILL)  # the process dies without a word
        proc.wait()
        assert read_status(jobpath)["status"] == "running"  # what the job last wrote
        assert _jobs("ls", "--workdir", workdir) == f"interrupted {label}\n"
        assert _jobs("ls", "--workdir", workdir, "--status", "interrupted").startswith("inter")
        assert _jobs("ls", "--workdir", workdir, "--status", "running").startswith("no jobs")
        assert _jobs("clean", "--workdir", workdir, "--status", "interrupted") == (
            f"removed {label}\n1 job(s) removed\n"
        )
        assert not jobpath.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- web: the log endpoint (docs/ui.md, web/openapi.py) -------------------------------------------


class Chatty(Task):
    """Prints numbered lines, more than 64 KiB of them."""

    __trialbook_id__ = "claims.chatty"
    lines: Param[int]

    def execute(self) -> None:
        for i in range(self.lines):
            print(f"line {i:06d} " + "x" * 40)


def test_the_log_endpoint_gives_the_last_64_kib_by_default(tmp_path: pathlib.Path) -> None:
    """docs/ui.md: `GET /api/experiments/{name}/runs/{id}/log?stream=stdout&offset=` gives "log
    text from `offset` (default: the last 64 KiB) and the next `offset`"."""
    require_module("starlette", "ui")
    from starlette.testclient import TestClient

    from trialbook.storage import open_store
    from trialbook.tasks import LocalLauncher
    from trialbook.web import create_app

    location = str(tmp_path / "store")
    with trialbook.experiment(
        tmp_path / "wd", "talk", launcher=LocalLauncher(n_workers=1), store=location
    ):
        job = Chatty.C(lines=3000).submit()
    log = (job.jobpath / "stdout.log").read_bytes()
    assert len(log) > 2 * 64 * 1024
    store = open_store(location)
    headers = {"Authorization": "Bearer t"}
    try:
        with TestClient(create_app(store, token="t"), headers=headers) as client:
            assert client.get("/api/experiments/talk/runs").json()["total"] == 1
            url = "/api/experiments/talk/runs/1/log"
            tail = client.get(url).json()
            assert tail["text"].encode() == log[-64 * 1024 :]
            assert tail["offset"] == len(log)
            start = client.get(url, params={"offset": 0}).json()
            assert start["text"].encode() == log[: 64 * 1024]
            assert start["offset"] == 64 * 1024
            rest = client.get(url, params={"offset": start["offset"]}).json()
            assert rest["text"].encode() == log[64 * 1024 : 128 * 1024]
    finally:
        store.close()
