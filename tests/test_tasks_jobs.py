"""Jobs in real worker processes: directories, store records, caching, dependencies,
callbacks, run modes, tokens and cross-process coordination."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import trialbook
from races import Occupancy, count
from trialbook import Param, Task, experiment, tag
from trialbook.cli import cli
from trialbook.errors import JobFailedError
from trialbook.storage import open_store
from trialbook.tasks import LocalLauncher, Meta, RunMode, WebService


class Append(Task):
    """Appends a line to ``out`` (counts executions), prints, tracks a metric and a field."""

    __trialbook_id__ = "test.append"
    x: Param[int] = 1
    out: Meta[str] = ""

    def execute(self) -> None:
        with open(self.out, "a") as f:
            f.write(f"{self.x}\n")
        print("x is", self.x)
        run = trialbook.current_run()
        run.log_metric("loss", 1.0 / self.x)
        run.fields.double = 2 * self.x


class Fail(Task):
    __trialbook_id__ = "test.fail"
    out: Meta[str] = ""

    def execute(self) -> None:
        with open(self.out, "a") as f:
            f.write("ran\n")
        raise ValueError("boom")


class Use(Task):
    __trialbook_id__ = "test.use"
    upstream: Param[Task]
    out: Meta[str] = ""

    def execute(self) -> None:
        Path(self.out).write_text(str(self.upstream.jobpath))


class Env(Task):
    __trialbook_id__ = "test.env"
    out: Meta[str] = ""

    def execute(self) -> None:
        import os

        Path(self.out).write_text(os.environ["MY_VAR"])


def launcher() -> LocalLauncher:
    return LocalLauncher(n_workers=2)


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_job_directory_logs_status_and_store_record(tmp_path: Path) -> None:
    out = tmp_path / "count"
    with experiment(tmp_path / "wd", "jobs", launcher=launcher()) as xp:
        job = Append.C(x=tag(4), out=str(out)).submit()
    assert job.jobpath == tmp_path / "wd" / "jobs" / "test.append" / job.__identifier__()
    assert (job.jobpath / "stdout.log").read_text() == "x is 4\n"
    assert json.loads((job.jobpath / "status.json").read_text())["status"] == "done"
    params = json.loads((job.jobpath / "params.json").read_text())
    assert params["params"]["x"] == 4
    assert params["tags"] == {"x": 4}
    assert (xp.jobspath / "test.append" / job.__identifier__()).resolve() == job.jobpath
    store = open_store(tmp_path / ".trialbook")  # the default store (the test's cwd)
    info = store.find_experiment("jobs")
    [record] = store.read_runs(info.id)
    assert (record.kind, record.status, record.key) == ("job", "done", job.__identifier__())
    assert record.tags == {"x": 4}
    assert record.fields["double"] == 8
    assert record.metrics == {"loss": [1, 0.25, 0.25, 0.25]}  # count, last, min, max
    assert record.started <= record.finished
    store.close()


def test_finished_job_is_not_run_again_and_failed_job_is(tmp_path: Path) -> None:
    out, failed = tmp_path / "count", tmp_path / "failed"
    with experiment(tmp_path, "cache", launcher=launcher()):
        Append.C(x=2, out=str(out)).submit()
    with experiment(tmp_path, "cache", launcher=launcher()):
        task = Append.C(x=2, out=str(out)).submit()
    assert task.__dict__["_tb_job"].cached
    assert lines(out) == ["2"]
    expected = r"(?s)1 job of experiment 'cache' failed.*test.fail .*ValueError: boom"
    for _ in range(2):
        with pytest.raises(JobFailedError, match=expected), experiment(tmp_path, "cache"):
            Fail.C(out=str(failed)).submit()
    assert lines(failed) == ["ran", "ran"]
    assert (
        "ValueError: boom"
        in (task.jobpath.parent.parent / "test.fail")
        .joinpath(Fail.C().__identifier__(), "stderr.log")
        .read_text()
    )


def test_dependency_waits_and_failed_dependency_fails_dependents(tmp_path: Path) -> None:
    out = tmp_path / "used"
    with experiment(tmp_path, "deps", launcher=launcher()):
        first = Append.C(x=3, out=str(tmp_path / "count")).submit()
        Use.C(upstream=first, out=str(out)).submit()
    assert out.read_text() == str(first.jobpath)

    def plan() -> None:
        with experiment(tmp_path, "deps", launcher=launcher()):
            bad = Fail.C(out=str(tmp_path / "f")).submit()
            Use.C(upstream=bad, out=str(tmp_path / "never")).submit()

    expected = r"(?s)test.use .*: never ran: dependency test.fail .* failed: ValueError: boom"
    with pytest.raises(JobFailedError, match=expected) as failed:
        plan()
    assert not (tmp_path / "never").exists()
    # issue 18: the job that never ran is named as such, not sent to a missing stderr.log
    assert str(failed.value).startswith(
        "2 jobs of experiment 'deps' failed (see stderr.log in the directory of each job that "
        "ran):\n"
    )
    [never] = failed.value.never_ran
    assert never.startswith("test.use ")
    listed = CliRunner().invoke(cli, ["jobs", "ls", "--workdir", str(tmp_path)]).output
    [line] = [line for line in listed.splitlines() if line.startswith("failed      test.use ")]
    assert "(never ran: dependency test.fail " in line and "ValueError: boom" in line


def test_on_completed_fires_once_per_job(tmp_path: Path) -> None:
    calls: list[str] = []
    with experiment(tmp_path, "callbacks", launcher=launcher()) as xp:
        a = Append.C(x=5, out=str(tmp_path / "c"))
        a.on_completed(lambda: calls.append("a"))
        a.submit()
        b = Append.C(x=5, out=str(tmp_path / "c"))  # same job
        b.on_completed(lambda: calls.append("b"))
        b.submit()
        xp.wait()
        a.on_completed(lambda: calls.append("late"))
    assert sorted(calls) == ["a", "b", "late"]
    assert lines(tmp_path / "c") == ["5"]


def test_dry_run_executes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "count"
    with experiment(tmp_path, "dry", launcher=launcher()):
        Append.C(x=1, out=str(out)).submit()
    with experiment(tmp_path, "dry", run_mode=RunMode.DRY_RUN) as xp:
        done = Append.C(x=1, out=str(out)).submit()
        new = Append.C(x=9, out=str(out)).submit()
        Use.C(upstream=new, out=str(tmp_path / "u")).submit()
    assert lines(out) == ["1"]
    assert [e["status"] for e in xp.plan] == ["done", "would run", "would run"]
    assert xp.plan[2]["depends"] == [f"test.append/{new.__identifier__()}"]
    assert done.jobpath.exists() and not new.jobpath.exists()


def test_generate_writes_a_run_script_that_runs_the_job(tmp_path: Path) -> None:
    out = tmp_path / "count"
    with experiment(tmp_path, "gen", run_mode="generate") as xp:
        job = Append.C(x=6, out=str(out)).submit()
    assert not out.exists()
    assert xp.plan[0]["status"] == "generated"
    assert xp.prepare(job) == job.jobpath / "run.py"
    subprocess.run([sys.executable, str(job.jobpath / "run.py")], check=True)
    assert lines(out) == ["6"]
    assert json.loads((job.jobpath / "status.json").read_text())["status"] == "done"


def test_experiment_paths_env_services_save_and_load(tmp_path: Path) -> None:
    with experiment(tmp_path, "misc", launcher=launcher()) as xp:
        assert experiment.current() is xp
        assert xp.resultspath == tmp_path / "xp" / "misc" / "results"
        assert xp.jobsbakpath == tmp_path / "xp" / "misc" / "jobs.bak"
        assert xp.alt_jobspaths == [tmp_path / "jobs"]
        xp.setenv("MY_VAR", "hello")
        xp.add_service(WebService("board", "http://127.0.0.1:6006"))
        task = Env.C(out=str(tmp_path / "env")).submit()
        xp.wait()
        xp.save({"task": task, "n": 3})
        loaded = xp.load("misc")
    assert (tmp_path / "env").read_text() == "hello"
    assert (
        json.loads((xp.xppath / "services.json").read_text())[0]["url"] == "http://127.0.0.1:6006"
    )
    assert loaded["n"] == 3
    assert loaded["task"].jobpath == task.jobpath


SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from races import Occupancy, hold_until_contended, recording, wait_until
from trialbook.tasks import Task, Param, Meta, LocalLauncher, experiment, scheduler
from trialbook.tasks.tokens import CounterToken

workdir, me, log = sys.argv[1], sys.argv[2], sys.argv[3]
here = Path(log).parent
# what this process's scheduler finds taken: token units, job locks (a line per refusal)
CounterToken.try_acquire = recording(
    CounterToken.try_acquire, here / f"refused-{{me}}", lambda holder: holder is None
)
scheduler._lock = recording(scheduler._lock, here / f"busy-{{me}}", lambda fd: fd is None)

class Slow(Task):
    # Counts itself in and out of `log`; in between it waits for the other process: holding
    # the token, until the other's scheduler was refused units (or started all its jobs);
    # holding the job lock, until the other found that lock held.
    __trialbook_id__ = "test.slow"
    i: Param[int]
    log: Meta[str]
    me: Meta[str]
    token: Meta[bool]
    def execute(self):
        place = Occupancy(self.log)
        place.enter(self.me)
        note = ""
        other = {{"a": "b", "b": "a"}}[self.me]
        if self.token:
            refusals = here / f"refused-{{other}}"
            note = hold_until_contended(place, "slot", refusals=refusals, label=other, group=3)
        else:
            busy = here / f"busy-{{other}}"
            wait_until(busy.exists, "the other process finds the job's lock held")
        place.leave(note)

with experiment(workdir, me, launcher=LocalLauncher(2)) as xp:
    token = xp.token("slot", 1)
    tasks = []
    for i in {indices}:
        task = Slow.C(i=i, log=log, me=me, token={use_token})
        if {use_token}:
            token(1, task)
        tasks.append(task.submit())
print("cached", *[t.__dict__["_tb_job"].cached for t in tasks])
"""


def script(tmp_path: Path, name: str, *, indices: str, use_token: bool) -> Path:
    text = SCRIPT.format(tests=str(Path(__file__).parent), indices=indices, use_token=use_token)
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    return path


def run_both(tmp_path: Path, scripts: list[Path], log: Path) -> dict[str, str]:
    """Run the scripts at once; return what each printed, by name."""
    procs = {
        s.stem: subprocess.Popen(
            [sys.executable, str(s), str(tmp_path / "wd"), s.stem, str(log)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for s in scripts
    }
    outputs = {name: p.communicate(timeout=300)[0] for name, p in procs.items()}
    assert [p.returncode for p in procs.values()] == [0] * len(procs), outputs
    return outputs


def test_token_limit_is_never_exceeded_across_processes(tmp_path: Path) -> None:
    """Each job holds the 1-unit token until the other process was refused it (or has started
    all its jobs): the processes contend for the token, and never hold it together."""
    log = tmp_path / "inside"
    a = script(tmp_path, "a", indices="range(3)", use_token=True)
    b = script(tmp_path, "b", indices="range(3, 6)", use_token=True)
    run_both(tmp_path, [a, b], log)
    seen = Occupancy(log).read()
    assert seen["entered"] == {"a": 3, "b": 3} and seen["left"] == 6
    assert seen["most"] == 1, f"two jobs held the token's only unit at once: {seen}"
    assert seen["notes"].get("contended", 0) >= 1  # a job held it while the other was refused
    assert count(tmp_path / "refused-a") + count(tmp_path / "refused-b") >= 1


def test_concurrent_submission_from_two_processes_runs_once(tmp_path: Path) -> None:
    """Both processes submit one job; the one running it waits until the other found the
    job's lock held: the other then takes it from the cache."""
    log = tmp_path / "inside"
    a = script(tmp_path, "a", indices="[0]", use_token=False)
    b = script(tmp_path, "b", indices="[0]", use_token=False)
    outputs = run_both(tmp_path, [a, b], log)
    seen = Occupancy(log).read()
    assert seen["left"] == 1
    (runner,) = seen["entered"]
    waiter = {"a": "b", "b": "a"}[runner]
    assert count(tmp_path / f"busy-{waiter}") >= 1
    assert outputs == {runner: "cached False\n", waiter: "cached True\n"}


def test_cache_hit_in_a_second_process(tmp_path: Path) -> None:
    log = tmp_path / "inside"
    (tmp_path / "busy-a").touch()  # nobody else runs these jobs: nothing to wait for
    (tmp_path / "busy-b").touch()
    a = script(tmp_path, "a", indices="range(2)", use_token=False)
    assert run_both(tmp_path, [a], log) == {"a": "cached False False\n"}
    b = script(tmp_path, "b", indices="range(2)", use_token=False)
    assert run_both(tmp_path, [b], log) == {"b": "cached True True\n"}
    assert Occupancy(log).read()["left"] == 2  # no job ran in the second process


def test_bad_experiment_arguments_are_clear_errors(tmp_path: Path) -> None:
    from trialbook.errors import ConfigError

    expected = "unknown run mode 'fast'; expected one of normal, dry-run, generate"
    with pytest.raises(ConfigError, match=expected):
        experiment(tmp_path, "x", run_mode="fast")
    with pytest.raises(ConfigError, match="launcher must follow the Launcher protocol"):
        experiment(tmp_path, "x", launcher="local")
    with pytest.raises(ConfigError, match="experiment name"):
        experiment(tmp_path, "a/b")


def test_one_launcher_serves_two_workdirs_with_their_own_tokens(tmp_path: Path) -> None:
    shared = launcher()
    for name in ("one", "two"):
        with experiment(tmp_path / name, name, launcher=shared) as xp:
            token = xp.token("cpu", 1)
            token(1, Append.C(x=7, out=str(tmp_path / name / "count"))).submit()
        assert token.path == tmp_path / name / ".tokens" / "cpu"
        assert lines(tmp_path / name / "count") == ["7"]
