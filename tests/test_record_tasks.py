"""Issue 12, typed tasks and plans: progress as jobs run (11), one store for the three ways (14),
broken plan files in one clear line (13), jobs named by their tags in every list (10).

Every test runs in its own project folder (the root conftest makes ``tmp_path`` the working
directory and unsets ``$TRIALBOOK_STORE``), with real job directories and a real store."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import trialbook
from conftest import Closing
from trialbook import Param, Task, experiment, tag
from trialbook.cli import cli
from trialbook.errors import ConfigError, JobFailedError, StorageError
from trialbook.storage import open_store
from trialbook.tasks import LocalLauncher

PLAN = """\
from trialbook import ConfigurationBase, Param, Task, configuration, tag


class Train(Task):
    __trialbook_id__ = "train"
    alpha: Param[float]
    seed: Param[int]

    def execute(self):
        if self.alpha > 1:
            raise ValueError(f"alpha {self.alpha} is too large")
        print("trained", self.alpha, self.seed)


@configuration
class Configuration(ConfigurationBase):
    alphas: list[float]
    seeds: int = 2


def run(helper, cfg: Configuration):
    for alpha in cfg.alphas:
        for seed in range(cfg.seeds):
            Train.C(alpha=tag(alpha), seed=tag(seed)).submit()
"""
RAISE = '            raise ValueError(f"alpha {self.alpha} is too large")'
RAISE_LINE = PLAN.splitlines().index(RAISE) + 1


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    (tmp_path / "experiment.py").write_text(PLAN)
    (tmp_path / "full.yaml").write_text("id: sweep\nalphas: [0.1, 0.5]\n")
    return tmp_path / "full.yaml"


def invoke(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


class Fit(Task):
    __trialbook_id__ = "test.record.fit"
    alpha: Param[float]
    seed: Param[int]

    def execute(self) -> None:
        if self.alpha > 1:
            raise ValueError(f"alpha {self.alpha} is too large")


def sweep(tmp_path: Path, name: str, alphas: list[float], **options: object) -> experiment:
    xp = experiment(tmp_path / "wd", name, launcher=LocalLauncher(n_workers=2), **options)
    with xp:
        for alpha in alphas:
            for seed in range(2):
                Fit.C(alpha=tag(alpha), seed=tag(seed)).submit()
    return xp


def progress_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "trialbook.progress"]


# -- 10. jobs are named by their tags ------------------------------------------------------------


def test_dry_run_lists_each_job_by_its_tags(plan: Path) -> None:
    code, output = invoke("run-experiment", "--workdir", "wd", "--run-mode", "dry-run", plan)
    assert code == 0
    assert output.splitlines() == [
        "would run  train alpha=0.1 seed=0",
        "would run  train alpha=0.1 seed=1",
        "would run  train alpha=0.5 seed=0",
        "would run  train alpha=0.5 seed=1",
    ]


def test_failure_list_and_jobs_ls_name_jobs_by_their_tags(plan: Path) -> None:
    code, output = invoke("run-experiment", "--workdir", "wd", "-c", "alphas=[0.5, 2.0]", plan)
    assert code == 1
    failures = output[output.index("Error: 2 jobs of experiment 'sweep' failed") :].splitlines()
    assert failures[1:] == [
        f"  train alpha=2.0 seed={seed}: ValueError: alpha 2.0 is too large "
        f"(at experiment.py, line {RAISE_LINE})"
        for seed in (0, 1)
    ]
    code, output = invoke("jobs", "ls", "--workdir", "wd")
    listed = [line.split("  [")[0] for line in output.splitlines()]
    assert code == 0
    assert sorted(listed) == sorted([
        "done        train alpha=0.5 seed=0", "done        train alpha=0.5 seed=1",
        "failed      train alpha=2.0 seed=0", "failed      train alpha=2.0 seed=1",
    ])  # fmt: skip
    code, output = invoke("jobs", "clean", "--workdir", "wd")
    assert sorted(output.splitlines()[:2]) == [
        "removed train alpha=2.0 seed=0",
        "removed train alpha=2.0 seed=1",
    ]


def test_failures_of_jobs_with_the_same_name_are_all_listed(tmp_path: Path) -> None:
    class Untagged(Task):
        __trialbook_id__ = "test.record.untagged"
        x: Param[int]

        def execute(self) -> None:
            raise RuntimeError(f"x={self.x}")

    with pytest.raises(JobFailedError) as info, experiment(tmp_path / "wd", "same"):
        jobs = [Untagged.C(x=x).submit() for x in range(3)]
    names = [f"test.record.untagged {job.__identifier__()[:12]}" for job in jobs]
    assert sorted(info.value.failures) == sorted(names)
    assert {why.split(" (at ")[0] for why in info.value.failures.values()} == {
        "RuntimeError: x=0", "RuntimeError: x=1", "RuntimeError: x=2"
    }  # fmt: skip


def test_job_graph_names_jobs_by_their_tags(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from trialbook.web import create_app

    sweep(tmp_path, "graph", [0.1])
    store = open_store(".trialbook")
    with TestClient(create_app(store, token="t"), headers={"Authorization": "Bearer t"}) as client:
        graph = client.get("/api/experiments/graph/graph").json()
    store.close()
    assert sorted(n["name"] for n in graph["nodes"]) == [
        "test.record.fit alpha=0.1 seed=0",
        "test.record.fit alpha=0.1 seed=1",
    ]


# -- 11. progress on long work --------------------------------------------------------------------


def test_experiment_tells_jobs_started_done_and_failed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trialbook.progress")
    with pytest.raises(JobFailedError):
        sweep(tmp_path, "told", [0.1, 2.0], progress="lines")
    lines = progress_lines(caplog)
    for seed in (0, 1):
        job = f"test.record.fit alpha=0.1 seed={seed} ("
        assert sum(f"told: started {job}" in s for s in lines) == 1
        assert sum(f"told: done {job}" in s for s in lines) == 1
        failed = f"told: failed test.record.fit alpha=2.0 seed={seed}: ValueError: alpha 2.0 is"
        assert sum(s.startswith(failed) for s in lines) == 1
    assert lines[-1] == "told: 4 jobs: 2 done, 2 failed"
    finished = [s for s in lines if s.startswith(("told: done", "told: failed"))]
    assert [s.rsplit("(", 1)[1].split(" of ")[0].split(", ")[1] for s in finished] == [
        "1", "2", "3", "4"
    ]  # fmt: skip
    assert finished[-1].endswith("(0 running, 4 of 4 finished, 2 failed)")


def test_cache_hits_are_counted_not_listed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sweep(tmp_path, "cached", [0.1], progress=False)
    caplog.set_level(logging.INFO, logger="trialbook.progress")
    sweep(tmp_path, "cached", [0.1, 0.2], progress="lines")
    lines = progress_lines(caplog)
    assert sum(" started " in s for s in lines) == 2  # only the two new jobs ran
    assert lines[-1] == "cached: 4 jobs: 4 done (2 cached)"


def test_progress_is_quiet_on_request(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trialbook.progress")
    sweep(tmp_path, "silent", [0.1], progress=False)
    assert progress_lines(caplog) == []
    logging.getLogger("trialbook.progress").setLevel(logging.WARNING)
    try:
        with pytest.raises(JobFailedError):
            sweep(tmp_path, "failures-only", [0.1, 2.0])
    finally:
        logging.getLogger("trialbook.progress").setLevel(logging.INFO)
    lines = progress_lines(caplog)
    assert sorted(s.split(":")[1] for s in lines[:-1]) == [
        " failed test.record.fit alpha=2.0 seed=0",
        " failed test.record.fit alpha=2.0 seed=1",
    ]
    assert lines[-1] == "failures-only: 4 jobs: 2 done (2 cached), 2 failed"
    with pytest.raises(ConfigError, match="progress must be True, False, None or one of auto"):
        experiment(tmp_path / "wd", "bad", progress="loud")


def test_run_experiment_prints_plain_lines_when_output_is_not_a_terminal(plan: Path) -> None:
    command = [sys.executable, "-m", "trialbook", "run-experiment", "--workdir", "wd", str(plan)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    lines = [line.split(" ", 1)[1] for line in done.stderr.splitlines()]  # after the time
    assert sum(line.startswith("sweep: started train alpha=") for line in lines) == 4
    assert sum(line.startswith("sweep: done train alpha=") for line in lines) == 4
    assert lines[-1] == "sweep: 4 jobs: 4 done"
    assert done.stdout.splitlines()[-1] == "4 job(s) done in experiment 'sweep'"
    quiet = subprocess.run([*command[:4], "--quiet", *command[4:]], capture_output=True,
                           text=True, timeout=300, check=False)  # fmt: skip
    assert (quiet.returncode, quiet.stderr) == (0, "")


def test_live_display_ends_with_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep(tmp_path, "bar", [0.1], progress="bar")
    assert capsys.readouterr().err.splitlines()[-1] == "bar: 2 jobs: 2 done"


def test_bootstrap_says_what_it_installs_before_installing() -> None:
    root = Path(__file__).resolve().parent.parent
    script = (root / "scripts" / "bootstrap.sh").read_text()
    said = script.index("creating $VENV and installing trialbook")
    assert said < script.index('pip install --quiet -e ".[test]"')


# -- 13. broken plan files are one clear line ----------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = 1\ny = undefined_name\n", "line 2: NameError: name 'undefined_name' is not defined"),
        ("x = 1\ndef f(:\n    pass\n", "line 2: SyntaxError: invalid syntax"),
        ("import helper\n", "helper.py, line 2: ZeroDivisionError: division by zero"),
    ],
)
def test_plan_file_that_fails_to_import_is_one_line(
    tmp_path: Path, source: str, expected: str
) -> None:
    (tmp_path / "broken.py").write_text(source)
    (tmp_path / "helper.py").write_text("def f():\n    return 1 / 0\nf()\n")
    (tmp_path / "broken.yaml").write_text("id: broken\nfile: broken\n")
    result = CliRunner().invoke(cli, ["run-experiment", "--workdir", "wd", "broken.yaml"])
    assert result.exit_code == 1
    path = tmp_path / "broken.py"
    assert result.output == f"Error: cannot import the plan file {path}: {expected}\n"
    assert "broken" not in sys.modules


def test_task_of_a_plan_file_that_raises_names_the_file_and_line(plan: Path) -> None:
    code, output = invoke("run-experiment", "--workdir", "wd", "-c", "alphas=[3.0]", "-c",
                          "seeds=1", plan)  # fmt: skip
    assert code == 1
    assert output.endswith(
        "train alpha=3.0 seed=0: ValueError: alpha 3.0 is too large "
        f"(at experiment.py, line {RAISE_LINE})\n"
    )
    [stderr_log] = Path("wd/jobs/train").glob("*/stderr.log")
    assert f'File "{plan.parent / "experiment.py"}", line {RAISE_LINE}, in execute' in (
        stderr_log.read_text()
    )
    assert "<dynamic-code>" not in stderr_log.read_text()
    store = open_store(".trialbook")
    [record] = store.read_runs(store.find_experiment("sweep").id)
    store.close()
    assert f'experiment.py", line {RAISE_LINE}' in record.error.traceback


def test_generated_run_script_names_the_plan_file(plan: Path) -> None:
    invoke("run-experiment", "--workdir", "wd", "--run-mode", "generate", "-c", "alphas=[3.0]",
           "-c", "seeds=1", plan)  # fmt: skip
    [script] = Path("wd/jobs/train").glob("*/run.py")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=300,
                          check=False)  # fmt: skip
    assert done.returncode == 1
    assert f'experiment.py", line {RAISE_LINE}' in (script.parent / "stderr.log").read_text()


# -- 14. one store for the three ways of working -------------------------------------------------


def test_plan_graph_and_runs_share_the_default_store_the_cli_reads(
    plan: Path, closing: Closing
) -> None:
    code, _ = invoke("run-experiment", "--workdir", "wd", plan)
    assert code == 0
    assert not Path("wd/.trialbook").exists()
    code, output = invoke("ls")
    assert code == 0 and "sweep" in output
    code, output = invoke("runs", "sweep")
    assert code == 0
    assert output.count("job") >= 4 and output.count("done") >= 4
    # the lazy graph and the runs write to that same store
    ex = closing(trialbook.Experiment(id="graph"))
    a = ex.parameter("a")

    @ex.result
    def double(x: int) -> int:
        return 2 * x

    ex.set_parameters(a=2)
    assert double(a).compute() == 4
    session = trialbook.create_session()
    runs = session.create_experiment("grid")
    runs.add_runs(alpha=[1, 2])
    runs.execute(lambda run: None).persist()
    session.close()
    code, output = invoke("ls")
    assert all(name in output for name in ("sweep", "graph", "grid"))
    store = open_store(".trialbook")
    assert {i.name for i in store.list_experiments()} == {"sweep", "graph", "grid"}
    store.close()


def test_task_experiments_of_an_earlier_store_in_the_workdir_are_moved(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = tmp_path / "wd" / ".trialbook"
    sweep(tmp_path, "before", [0.1], store=str(old))  # what earlier versions wrote
    with pytest.raises(JobFailedError):
        sweep(tmp_path, "older", [2.0], store=str(old))
    old_store = open_store(old)
    before = {i.name: old_store.read_runs(i.id) for i in old_store.list_experiments()}
    code_text = old_store.get_snapshot(before["before"][0].code)
    old_store.close()
    sweep(tmp_path, "after", [0.5])
    assert not old.exists() and (tmp_path / "wd" / ".trialbook.moved" / "trialbook.db").exists()
    assert any("moved 2 task experiment(s)" in r.getMessage() for r in caplog.records)
    store = open_store(".trialbook")
    moved = {i.name: store.read_runs(i.id) for i in store.list_experiments()}
    assert set(moved) == {"before", "older", "after"}
    for name in ("before", "older"):
        old_runs, new_runs = before[name], moved[name]
        assert [(r.key, r.status, r.tags, r.params) for r in new_runs] == [
            (r.key, r.status, r.tags, r.params) for r in old_runs
        ]
    assert store.get_snapshot(moved["before"][0].code) == code_text
    assert moved["older"][0].error.type == "ValueError"
    store.close()
    _, output = invoke("ls")
    assert all(name in output for name in ("before", "older", "after"))


def test_an_earlier_store_with_other_experiments_keeps_them(tmp_path: Path) -> None:
    old = tmp_path / "wd" / ".trialbook"
    sweep(tmp_path, "jobs", [0.1], store=str(old))
    session = trialbook.create_session(old)
    grid = session.create_experiment("grid")
    grid.add_runs(alpha=[1])
    grid.persist()
    session.close()
    sweep(tmp_path, "new", [0.1])
    old_store = open_store(old)
    assert [i.name for i in old_store.list_experiments()] == ["grid"]
    old_store.close()
    store = open_store(".trialbook")
    assert sorted(i.name for i in store.list_experiments()) == ["jobs", "new"]
    store.close()


def test_moving_into_a_store_with_a_clashing_experiment_is_a_clear_error(tmp_path: Path) -> None:
    old = tmp_path / "wd" / ".trialbook"
    sweep(tmp_path, "clash", [0.1], store=str(old))
    session = trialbook.create_session()
    clash = session.create_experiment("clash")
    clash.add_runs(alpha=[1])
    clash.persist()
    session.close()
    with pytest.raises(ConfigError, match=r"cannot move task experiment 'clash'.*Rename one"):
        sweep(tmp_path, "other", [0.1])
    assert (old / "trialbook.db").exists()  # nothing was moved


def test_jobs_clean_forgets_runs_in_the_default_store(plan: Path) -> None:
    invoke("run-experiment", "--workdir", "wd", "-c", "alphas=[0.1, 2.0]", plan)
    _, output = invoke("jobs", "clean", "--workdir", "wd", "--forget-runs")
    assert output.splitlines()[-2:] == ["2 job(s) removed", "2 run(s) deleted from the store"]
    store = open_store(".trialbook")
    assert [r.status for r in store.read_runs(store.find_experiment("sweep").id)] == [
        "done", "done"
    ]  # fmt: skip
    store.close()


# -- the same class of problem: a failure that exits 0 -------------------------------------------


def test_jobs_that_cannot_be_recorded_fail_the_experiment(tmp_path: Path) -> None:
    def plan() -> Task:
        with experiment(tmp_path / "wd", "gone", progress=False):
            store = open_store(".trialbook")
            store.delete_experiment("gone")  # e.g. deleted from the UI while the jobs run
            store.close()
            return Fit.C(alpha=tag(0.1), seed=tag(0)).submit()

    with pytest.raises(StorageError, match=r"1 finished job\(s\) of experiment 'gone' could not"):
        plan()
    [status] = Path("wd/jobs/test.record.fit").glob("*/status.json")
    assert '"done"' in status.read_text()  # the job itself ran and kept its files
