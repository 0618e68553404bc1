"""The scheduler with real worker processes: tokens inside one experiment, stop, failed jobs in
the store, the job's working directory, waiting for a job another process runs, `jobs kill`.

No test here compares clocks: jobs count themselves in and out of an occupancy file
(:class:`races.Occupancy`), and the contended paths are forced (a job holds its units until a
scheduler was refused some; a job runs until another process found its lock held) and then
checked through what the wrapped functions recorded (:func:`races.recording`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from races import Occupancy, count, hold_until_contended, recording, wait_until
from trialbook import Param, Task, experiment
from trialbook.cli import cli
from trialbook.errors import ConfigError, JobFailedError
from trialbook.storage import open_store
from trialbook.tasks import LocalConnector, LocalLauncher, Meta, scheduler
from trialbook.tasks.jobdir import read_status, try_lock, write_status
from trialbook.tasks.tokens import CounterToken


class Span(Task):
    """Counts itself in and out of the occupancy file ``log``; in between it waits, when told
    to: for the file ``gate`` to exist, and, holding units of ``token``, until a scheduler is
    refused some (:func:`races.hold_until_contended`, with the ``group`` jobs of ``label``
    and at most ``limit`` of them at once)."""

    __trialbook_id__ = "test.span"
    i: Param[int]
    log: Meta[str]
    label: Meta[str] = ""
    gate: Meta[str] = ""
    token: Meta[str] = ""
    refusals: Meta[str] = ""
    group: Meta[int] = 0
    limit: Meta[int] = 1

    def execute(self) -> None:
        place = Occupancy(self.log)
        place.enter(self.label)
        note = ""
        if self.gate:
            wait_until(lambda: Path(self.gate).exists(), f"{self.gate} exists")
        if self.token:
            note = hold_until_contended(
                place,
                self.token,
                refusals=self.refusals,
                label=self.label,
                group=self.group,
                limit=self.limit,
            )
        place.leave(note)


class Where(Task):
    __trialbook_id__ = "test.where"

    def execute(self) -> None:
        Path("here.txt").write_text(f"{os.getcwd()}\n{self.jobpath}")


class Broken(Task):
    __trialbook_id__ = "test.broken"

    def execute(self) -> None:
        raise KeyError("missing column")


def ran(log: Path) -> int:
    """How many Span jobs ran to their end with this occupancy file."""
    return Occupancy(log).read()["left"] if log.exists() else 0


def record_token_refusals(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Every token of this process that refuses units appends its name to ``path``."""
    wrapped = recording(CounterToken.try_acquire, path, lambda holder: holder is None)
    monkeypatch.setattr(CounterToken, "try_acquire", wrapped)


def test_token_units_limit_jobs_within_one_experiment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`token(2, task)` with 3 units: two such jobs never overlap; the `dependency(1)` jobs of a
    2-unit token run at most two at a time (while a 3-worker pool could run three). Each job
    holds its units until the scheduler was refused units of its token (or its whole group
    started), so the limits are tested while they are reached."""
    pairs, singles, refusals = tmp_path / "pairs", tmp_path / "singles", tmp_path / "refusals"
    record_token_refusals(monkeypatch, refusals)
    hold = {"refusals": str(refusals)}
    with experiment(tmp_path, "tokens", launcher=LocalLauncher(n_workers=3)) as xp:
        cpu = LocalConnector.instance().createtoken("cpu", 3)
        for i in range(3):
            cpu(2, Span.C(i=i, log=str(pairs), token="cpu", group=3, **hold)).submit()
        gpu = xp.token("gpu", 2)
        for i in range(3, 9):
            task = Span.C(i=i, log=str(singles), token="gpu", group=6, limit=2, **hold)
            task.add_dependencies(gpu.dependency(1))
            task.submit()
    pairs_seen, singles_seen = Occupancy(pairs).read(), Occupancy(singles).read()
    assert (pairs_seen["left"], singles_seen["left"]) == (3, 6)
    assert pairs_seen["most"] == 1
    assert singles_seen["most"] <= 2
    # the limits were reached: jobs were refused units while others held them
    assert pairs_seen["notes"].get("contended", 0) >= 1
    assert singles_seen["notes"].get("contended", 0) >= 1
    assert count(refusals, "cpu") >= 1 and count(refusals, "gpu") >= 1
    assert not list((tmp_path / ".tokens" / "cpu").glob("*.holder"))


def test_token_misuse_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no current experiment"):
        LocalConnector.instance().createtoken("cpu", 1)
    with experiment(tmp_path, "bad-tokens", run_mode="dry-run") as xp:
        with pytest.raises(ConfigError, match="positive int count"):
            xp.token("cpu", 0)
        with pytest.raises(ConfigError, match="has 2 units; cannot depend on 3"):
            xp.token("cpu", 2).dependency(3)


def test_an_error_in_the_block_stops_waiting_jobs_and_propagates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job already running when the block fails finishes (it runs until the scheduler was
    told to stop); the others never start."""
    log, stopped = tmp_path / "log", tmp_path / "stopped"
    stop = scheduler.Scheduler.stop

    def stop_and_say_so(self: scheduler.Scheduler) -> None:
        stop(self)
        stopped.touch()

    monkeypatch.setattr(scheduler.Scheduler, "stop", stop_and_say_so)
    xp = experiment(tmp_path, "stop", launcher=LocalLauncher(n_workers=1))

    def plan() -> None:
        with xp:
            token = xp.token("one", 1)
            for i in range(4):
                token(1, Span.C(i=i, log=str(log), gate=str(stopped))).submit()
            raise RuntimeError("plan bug")

    with pytest.raises(RuntimeError, match="plan bug"):
        plan()
    assert stopped.exists()
    assert ran(log) <= 1  # a job already running finishes; the others never start
    cancelled = [j for j in xp.failed_jobs() if j.state == "cancelled"]
    assert len(cancelled) == 4 - ran(log)
    assert all(j.reason == "the experiment was stopped" for j in cancelled)


def test_failed_job_is_a_failed_run_with_its_error(tmp_path: Path) -> None:
    xp = experiment(tmp_path, "broken", launcher=LocalLauncher(n_workers=1))
    with pytest.raises(JobFailedError, match="KeyError: 'missing column'") as info, xp:
        job = Broken.C().submit()
    assert list(info.value.failures) == [f"test.broken {job.__identifier__()[:12]}"]
    assert "KeyError: 'missing column'" in (job.jobpath / "stderr.log").read_text()
    store = open_store(tmp_path / ".trialbook")
    [record] = store.read_runs(store.find_experiment("broken").id)
    assert (record.kind, record.status, record.key) == ("job", "failed", job.__identifier__())
    assert record.error.type == "KeyError"
    assert "raise KeyError" in record.error.traceback
    assert record.started <= record.finished
    store.close()


def test_a_job_runs_in_its_directory_and_knows_its_jobpath(tmp_path: Path) -> None:
    with experiment(tmp_path, "where", launcher=LocalLauncher(n_workers=1)):
        job = Where.C().submit()
    cwd, jobpath = (job.jobpath / "here.txt").read_text().splitlines()
    assert Path(cwd) == Path(jobpath) == job.jobpath


def test_on_completed_fires_once_for_a_cached_job(tmp_path: Path) -> None:
    calls: list[int] = []
    for _ in range(2):
        with experiment(tmp_path, "cached", launcher=LocalLauncher(n_workers=1)):
            task = Span.C(i=0, log=str(tmp_path / "log"))
            task.on_completed(lambda: calls.append(1))
            task.submit()
    assert calls == [1, 1]  # once per submission, the second time from the cache
    assert ran(tmp_path / "log") == 1


HOLDER = """
import sys
from trialbook.tasks import LocalLauncher, experiment
sys.path.insert(0, {tests!r})
from test_tasks_scheduler import Span

with experiment(sys.argv[1], sys.argv[2], launcher=LocalLauncher(1)):
    Span.C(i=0, log=sys.argv[3], gate=sys.argv[4]).submit()
"""


def start_holder(tmp_path: Path, name: str, gate: Path) -> subprocess.Popen[bytes]:
    """Another process that runs the job ``Span(i=0)`` until ``gate`` exists."""
    script = tmp_path / "holder.py"
    script.write_text(textwrap.dedent(HOLDER.format(tests=str(Path(__file__).parent))))
    argv = [sys.executable, str(script), str(tmp_path / "wd"), name, str(tmp_path / "log")]
    return subprocess.Popen([*argv, str(gate)], stderr=subprocess.PIPE)


def wait_running(jobpath: Path, proc: subprocess.Popen[bytes]) -> int:
    def running() -> int | None:
        status = read_status(jobpath)
        if status is not None and status["status"] == "running":
            return status["pid"]
        assert proc.poll() is None, proc.communicate()[1].decode()
        return None

    return wait_until(running, "the job runs")


def record_busy_locks(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Each time this process's scheduler finds a job's lock held, a line goes to ``path``."""
    monkeypatch.setattr(scheduler, "_lock", recording(scheduler._lock, path, lambda fd: fd is None))


def test_a_job_running_in_another_process_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other process runs the job until this one found the job's lock held: this one
    waits, then takes the finished job from the cache."""
    busy = tmp_path / "busy"
    record_busy_locks(monkeypatch, busy)
    other = start_holder(tmp_path, "first", gate=busy)
    jobpath = tmp_path / "wd" / "jobs" / "test.span" / Span.C(i=0, log="").__identifier__()
    wait_running(jobpath, other)
    with experiment(tmp_path / "wd", "second", launcher=LocalLauncher(n_workers=1)):
        task = Span.C(i=0, log=str(tmp_path / "log")).submit()
    other.communicate(timeout=60)
    assert other.returncode == 0
    assert count(busy) >= 1  # this process found the lock held...
    assert task.__dict__["_tb_job"].cached  # ...and waited: the job ran once, over there
    assert ran(tmp_path / "log") == 1
    assert read_status(jobpath)["status"] == "done"


def test_a_job_whose_lock_is_freed_unfinished_runs_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's lock is held (by the test, as by a process running it) until the scheduler
    found it held; freed without the job done (that process died), the job runs here."""
    busy, log = tmp_path / "busy", tmp_path / "log"
    record_busy_locks(monkeypatch, busy)
    task = Span.C(i=0, log=str(log))
    jobpath = tmp_path / "wd" / "jobs" / "test.span" / task.__identifier__()
    jobpath.mkdir(parents=True)
    fd = try_lock(jobpath)
    assert fd is not None
    write_status(jobpath, "running", pid=os.getpid(), started=0.0)
    try:
        with experiment(tmp_path / "wd", "here", launcher=LocalLauncher(n_workers=1)):
            task.submit()
            wait_until(lambda: count(busy), "the scheduler finds the job's lock held")
            assert ran(log) == 0
            os.close(fd)
            fd = None
    finally:
        if fd is not None:
            os.close(fd)
    assert not task.__dict__["_tb_job"].cached
    assert ran(log) == 1
    assert read_status(jobpath)["status"] == "done"


def test_jobs_kill_stops_a_running_job(tmp_path: Path) -> None:
    other = start_holder(tmp_path, "killed", gate=tmp_path / "never")  # runs until killed
    jobpath = tmp_path / "wd" / "jobs" / "test.span" / Span.C(i=0, log="").__identifier__()
    pid = wait_running(jobpath, other)
    workdir = str(tmp_path / "wd")
    listing = CliRunner().invoke(cli, ["jobs", "ls", "--workdir", workdir, "--status", "running"])
    assert listing.output == f"running     test.span {jobpath.name[:12]}\n"
    result = CliRunner().invoke(cli, ["jobs", "kill", "--workdir", workdir])
    assert result.output == f"killed test.span {jobpath.name[:12]} (pid {pid})\n"
    _, stderr = other.communicate(timeout=60)
    assert other.returncode == 1
    assert "stopped by SIGTERM" in stderr.decode()
    assert json.loads((jobpath / "status.json").read_text())["status"] == "failed"
    assert "stopped by SIGTERM" in (jobpath / "stderr.log").read_text()
