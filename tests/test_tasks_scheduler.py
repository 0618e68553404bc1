"""The scheduler with real worker processes: tokens inside one experiment, stop, failed jobs in
the store, the job's working directory, waiting for a job another process runs, `jobs kill`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from trialbook import Param, Task, experiment
from trialbook.cli import cli
from trialbook.errors import ConfigError, JobFailedError
from trialbook.storage import open_store
from trialbook.tasks import LocalConnector, LocalLauncher, Meta
from trialbook.tasks.jobdir import read_status


class Span(Task):
    """Sleeps a little and appends ``start end`` to ``log`` (to check overlaps)."""

    __trialbook_id__ = "test.span"
    i: Param[int]
    log: Meta[str]
    sleep: Meta[float] = 0.2

    def execute(self) -> None:
        start = time.time()
        time.sleep(self.sleep)
        with open(self.log, "a") as f:
            f.write(f"{start} {time.time()}\n")


class Where(Task):
    __trialbook_id__ = "test.where"

    def execute(self) -> None:
        Path("here.txt").write_text(f"{os.getcwd()}\n{self.jobpath}")


class Broken(Task):
    __trialbook_id__ = "test.broken"

    def execute(self) -> None:
        raise KeyError("missing column")


def spans(log: Path) -> list[tuple[float, float]]:
    return sorted(tuple(map(float, line.split())) for line in log.read_text().splitlines())


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals open at one instant."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    now = best = 0
    for _, delta in events:
        now += delta
        best = max(best, now)
    return best


def test_token_units_limit_jobs_within_one_experiment(tmp_path: Path) -> None:
    """`token(2, task)` with 3 units: two such jobs never overlap; the `dependency(1)` jobs of a
    2-unit token run at most two at a time (while a 3-worker pool could run three)."""
    pairs, singles = tmp_path / "pairs", tmp_path / "singles"
    with experiment(tmp_path, "tokens", launcher=LocalLauncher(n_workers=3)) as xp:
        cpu = LocalConnector.instance().createtoken("cpu", 3)
        for i in range(3):
            cpu(2, Span.C(i=i, log=str(pairs))).submit()
        gpu = xp.token("gpu", 2)
        for i in range(3, 9):
            task = Span.C(i=i, log=str(singles))
            task.add_dependencies(gpu.dependency(1))
            task.submit()
    assert len(spans(pairs)) == 3 and len(spans(singles)) == 6
    assert max_overlap(spans(pairs)) == 1
    assert max_overlap(spans(singles)) <= 2
    assert not list((tmp_path / ".tokens" / "cpu").glob("*.holder"))


def test_token_misuse_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no current experiment"):
        LocalConnector.instance().createtoken("cpu", 1)
    with experiment(tmp_path, "bad-tokens", run_mode="dry-run") as xp:
        with pytest.raises(ConfigError, match="positive int count"):
            xp.token("cpu", 0)
        with pytest.raises(ConfigError, match="has 2 units; cannot depend on 3"):
            xp.token("cpu", 2).dependency(3)


def test_an_error_in_the_block_stops_waiting_jobs_and_propagates(tmp_path: Path) -> None:
    log = tmp_path / "log"
    xp = experiment(tmp_path, "stop", launcher=LocalLauncher(n_workers=1))

    def plan() -> None:
        with xp:
            token = xp.token("one", 1)
            for i in range(4):
                token(1, Span.C(i=i, log=str(log), sleep=0.3)).submit()
            raise RuntimeError("plan bug")

    with pytest.raises(RuntimeError, match="plan bug"):
        plan()
    started = len(spans(log)) if log.exists() else 0
    assert started <= 1  # a job already running finishes; the others never start
    cancelled = [j for j in xp.failed_jobs() if j.state == "cancelled"]
    assert len(cancelled) >= 3
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
            task = Span.C(i=0, log=str(tmp_path / "log"), sleep=0.0)
            task.on_completed(lambda: calls.append(1))
            task.submit()
    assert calls == [1, 1]  # once per submission, the second time from the cache
    assert len(spans(tmp_path / "log")) == 1


HOLDER = """
import sys
from trialbook.tasks import LocalLauncher, experiment
sys.path.insert(0, {tests!r})
from test_tasks_scheduler import Span

with experiment(sys.argv[1], sys.argv[2], launcher=LocalLauncher(1)):
    Span.C(i=0, log=sys.argv[3], sleep=float(sys.argv[4])).submit()
"""


def start_holder(tmp_path: Path, name: str, sleep: float) -> subprocess.Popen[bytes]:
    script = tmp_path / "holder.py"
    script.write_text(textwrap.dedent(HOLDER.format(tests=str(Path(__file__).parent))))
    argv = [sys.executable, str(script), str(tmp_path / "wd"), name, str(tmp_path / "log")]
    return subprocess.Popen([*argv, str(sleep)], stderr=subprocess.PIPE)


def wait_running(jobpath: Path, proc: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = read_status(jobpath)
        if status is not None and status["status"] == "running":
            return status["pid"]
        assert proc.poll() is None, proc.communicate()[1].decode()
        time.sleep(0.02)
    raise AssertionError("the job never started")


def test_a_job_running_in_another_process_is_waited_for(tmp_path: Path) -> None:
    other = start_holder(tmp_path, "first", sleep=1.5)
    jobpath = tmp_path / "wd" / "jobs" / "test.span" / Span.C(i=0, log="").__identifier__()
    wait_running(jobpath, other)
    with experiment(tmp_path / "wd", "second", launcher=LocalLauncher(n_workers=1)):
        task = Span.C(i=0, log=str(tmp_path / "log"), sleep=1.5).submit()
    other.communicate(timeout=60)
    assert other.returncode == 0
    assert task.__dict__["_tb_job"].cached
    assert len(spans(tmp_path / "log")) == 1
    assert read_status(jobpath)["status"] == "done"


def test_jobs_kill_stops_a_running_job(tmp_path: Path) -> None:
    other = start_holder(tmp_path, "killed", sleep=60)
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
