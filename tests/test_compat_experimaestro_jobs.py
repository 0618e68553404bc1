"""experimaestro 1.x jobs, outputs and experiments with trialbook's names (issue 13).

Each test follows an example of experimaestro's documentation, written anew: ``task_outputs``
and ``dep``, generated paths (``PathGenerator``), init tasks (``LightweightTask``), ``progress``
reported by a running job, ``get_experiment`` and ``submit(run_mode=...)``. Jobs run in real
worker processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import require_module
from trialbook import (
    Config,
    LightweightTask,
    Meta,
    Param,
    PathGenerator,
    RunMode,
    Task,
    experiment,
    field,
    get_experiment,
    progress,
)
from trialbook.cli import cli
from trialbook.errors import ConfigError, JobFailedError, SealedError
from trialbook.storage.records import ExperimentInfo
from trialbook.tasks import LocalLauncher
from trialbook.tasks.jobdir import read_progress
from trialbook.tasks.reporting import reporting
from trialbook.web.jobs import job_dirs, job_graph

# -- task_outputs and dep ------------------------------------------------------------------


class RunFolder(Config):
    """Where a learning job left its results (a path: it never counts in the identifier)."""

    __trialbook_id__ = "test.xpm.runfolder"
    path: Meta[Path]


class Learn(Task):
    __trialbook_id__ = "test.xpm.learn"
    epochs: Param[int] = 2

    def task_outputs(self, dep):
        return dep(RunFolder.C(path=self.jobpath))

    def execute(self) -> None:
        Path("result.txt").write_text(f"learned {self.epochs} epochs")


class LearnUnmarked(Learn):
    """The same output without ``dep``: dependents cannot tell two learners apart."""

    __trialbook_id__ = "test.xpm.learn-unmarked"

    def task_outputs(self, dep):
        return RunFolder.C(path=self.jobpath)


class Report(Task):
    __trialbook_id__ = "test.xpm.report"
    run: Param[RunFolder]

    def execute(self) -> None:
        print((self.run.path / "result.txt").read_text())


def test_submit_returns_the_task_outputs_and_dependents_wait_for_the_job(tmp_path: Path) -> None:
    with experiment(tmp_path / "wd", "outputs", launcher=LocalLauncher(2)) as xp:
        runs = {epochs: Learn.C(epochs=epochs).submit() for epochs in (2, 3)}
        reports = {epochs: Report.C(run=run).submit() for epochs, run in runs.items()}
        unmarked = [Report.C(run=LearnUnmarked.C(epochs=e).submit()) for e in (2, 3)]
    assert all(isinstance(run, RunFolder) for run in runs.values())
    for epochs, report in reports.items():
        assert (report.jobpath / "stdout.log").read_text() == f"learned {epochs} epochs\n"
        job = report.__dict__["_tb_job"]
        assert [dep.task.epochs for dep in job.deps] == [epochs]
    # dep() puts the learner's identifier in the output's: one report per learner...
    assert reports[2].jobpath != reports[3].jobpath
    # ...while an unmarked output (a path only) is the same configuration for both learners.
    assert unmarked[0].__identifier__() == unmarked[1].__identifier__()
    assert xp.failed_jobs() == []


class Plain(Task):
    __trialbook_id__ = "test.xpm.plain"

    def execute(self) -> None:
        pass


class OutputsAnotherTask(Plain):
    __trialbook_id__ = "test.xpm.outputs-task"

    def task_outputs(self, dep):
        return dep(Plain.C())


class OutputsUsedConfig(Plain):
    __trialbook_id__ = "test.xpm.outputs-sealed"
    folder: Param[RunFolder]

    def task_outputs(self, dep):
        return dep(self.folder)


def test_submit_returns_the_task_itself_and_dep_refuses_what_cannot_be_an_output(
    tmp_path: Path,
) -> None:
    with experiment(tmp_path / "wd", "defaults") as xp:
        task = Plain.C()
        assert task.submit() is task
        with pytest.raises(ConfigError, match=r"dep\(\) in OutputsAnotherTask.task_outputs"):
            OutputsAnotherTask.C().submit()
        with pytest.raises(SealedError, match=r"sealed .* build a new one"):
            OutputsUsedConfig.C(folder=RunFolder.C(path=tmp_path)).submit()
    assert [job.task for job in xp.scheduler.jobs.values()] == [task]  # refused: not scheduled


# -- PathGenerator ----------------------------------------------------------------------------


class Optimizer(Config):
    __trialbook_id__ = "test.xpm.optimizer"
    lr: Param[float] = 0.1
    state: Meta[Path] = field(default_factory=PathGenerator("optimizer.state"))


class Train(Task):
    __trialbook_id__ = "test.xpm.train"
    epochs: Param[int] = 1
    optimizer: Param[Optimizer]
    model: Meta[Path] = field(default_factory=PathGenerator("model.pt"))
    logs: Param[Path] = field(default_factory=PathGenerator("logs"))

    def execute(self) -> None:
        self.logs.mkdir()
        self.model.write_text(f"{self.epochs} epochs")
        self.optimizer.state.write_text(f"lr={self.optimizer.lr}")


def test_generated_paths_are_in_the_job_directory_and_do_not_change_the_identifier(
    tmp_path: Path,
) -> None:
    before = Train.C(optimizer=Optimizer.C())
    expected = before.__identifier__()
    with experiment(tmp_path / "wd", "paths") as xp:
        task = Train.C(optimizer=Optimizer.C()).submit()
    assert xp.failed_jobs() == []
    assert task.__identifier__() == expected
    assert task.jobpath.name == expected
    assert task.model == task.jobpath / "model.pt"
    assert task.model.read_text() == "1 epochs"
    assert task.logs.is_dir()
    # a configuration inside the task gets its path in the task's job directory
    assert task.optimizer.state.read_text() == "lr=0.1"
    assert task.optimizer.state.parent == task.jobpath
    params = json.loads((task.jobpath / "params.json").read_text())["params"]
    assert params["model"] == str(task.jobpath / "model.pt")


class NamedOutput(Task):
    __trialbook_id__ = "test.xpm.named-output"
    name: Param[str] = field(default_factory=PathGenerator("out.txt"))


def test_a_generated_path_that_would_count_in_the_identifier_is_refused(tmp_path: Path) -> None:
    xp = experiment(tmp_path / "wd", "bad-paths")
    with xp, pytest.raises(ConfigError, match="'name' of NamedOutput has a generated path"):
        NamedOutput.C().submit()
    assert xp.scheduler.jobs == {}
    with pytest.raises(ConfigError, match="relative path inside the job directory"):
        PathGenerator("../elsewhere")


# -- LightweightTask and init_tasks -------------------------------------------------------------


class Model(Config):
    __trialbook_id__ = "test.xpm.model"
    hidden: Param[int] = 8


class LoadWeights(LightweightTask):
    """Restores the model's weights from the file the learner wrote."""

    __trialbook_id__ = "test.xpm.load-weights"
    model: Param[Model]
    path: Meta[Path]

    def execute(self) -> None:
        print("init: loading", self.path.name)
        self.model._weights = self.path.read_text()  # state, not a parameter


class Learner(Task):
    __trialbook_id__ = "test.xpm.learner"
    model: Param[Model]
    seed: Param[int] = 0
    weights: Meta[Path] = field(default_factory=PathGenerator("weights.txt"))

    def task_outputs(self, dep):
        return dep(LoadWeights.C(model=self.model, path=self.weights))

    def execute(self) -> None:
        self.weights.write_text(f"weights of seed {self.seed}")


class Evaluate(Task):
    __trialbook_id__ = "test.xpm.evaluate"
    model: Param[Model]

    def execute(self) -> None:
        print("evaluating", self.model._weights)


def test_init_tasks_run_in_the_job_before_the_task_and_count_in_its_identifier(
    tmp_path: Path,
) -> None:
    model = Model.C()
    with experiment(tmp_path / "wd", "init", launcher=LocalLauncher(2)) as xp:
        loaders = [Learner.C(model=model, seed=seed).submit() for seed in (1, 2)]
        evaluations = [Evaluate.C(model=model).submit(init_tasks=[ld]) for ld in loaders]
        bare = Evaluate.C(model=Model.C(hidden=4))
        with pytest.raises(ConfigError, match="must be LightweightTask configurations"):
            bare.submit(init_tasks=[Plain.C()])
    assert xp.failed_jobs() == []
    for seed, evaluation in zip((1, 2), evaluations, strict=True):
        assert (evaluation.jobpath / "stdout.log").read_text() == (
            f"init: loading weights.txt\nevaluating weights of seed {seed}\n"
        )
        assert [dep.task.seed for dep in evaluation.__dict__["_tb_job"].deps] == [seed]
    # the same task with other init tasks is another job
    assert evaluations[0].jobpath != evaluations[1].jobpath
    assert Evaluate.C(model=Model.C()).__identifier__() not in {
        e.__identifier__() for e in evaluations
    }


class BrokenLoader(LightweightTask):
    __trialbook_id__ = "test.xpm.broken-loader"

    def execute(self) -> None:
        raise FileNotFoundError("no weights here")


def test_an_init_task_that_raises_fails_the_job_with_its_traceback(tmp_path: Path) -> None:
    xp = experiment(tmp_path / "wd", "broken-init")
    with pytest.raises(JobFailedError, match="FileNotFoundError: no weights here"), xp:
        task = Evaluate.C(model=Model.C()).submit(init_tasks=[BrokenLoader.C()])
    assert "in execute" in (task.jobpath / "stderr.log").read_text()
    assert not (task.jobpath / "stdout.log").read_text()
    assert len(xp.failed_jobs()) == 1


# -- progress ----------------------------------------------------------------------------------


class Epochs(Task):
    """Reports its progress per epoch and per batch; fails at ``fail_at`` (a fraction)."""

    __trialbook_id__ = "test.xpm.epochs"
    fail_at: Param[float] = 2.0

    def execute(self) -> None:
        for epoch in range(4):
            progress(epoch / 4, desc="epochs")
            for batch in range(2):
                progress((batch + 1) / 2, level=1, desc="batches")
            if epoch / 4 >= self.fail_at:
                msg = f"diverged at epoch {epoch}"
                raise ValueError(msg)
        progress(1.0)


def test_progress_is_written_in_the_job_directory_and_listed_by_jobs_ls(tmp_path: Path) -> None:
    workdir = tmp_path / "wd"
    xp = experiment(workdir, "progress", store=str(tmp_path / "store"))
    with pytest.raises(JobFailedError, match="ValueError: diverged at epoch 2"), xp:
        done, failed = Epochs.C().submit(), Epochs.C(fail_at=0.5).submit()
    assert read_progress(done.jobpath) == [{"level": 0, "progress": 1.0, "desc": "epochs"}]
    assert read_progress(failed.jobpath) == [
        {"level": 0, "progress": 0.5, "desc": "epochs"},
        {"level": 1, "progress": 1.0, "desc": "batches"},
    ]
    result = CliRunner().invoke(cli, ["jobs", "ls", "--workdir", str(workdir)])
    assert result.exit_code == 0, result.output
    lines = {line.split()[2]: line for line in result.output.splitlines()}
    short = failed.__identifier__()[:12]
    assert lines[short] == f"failed      test.xpm.epochs {short}  50% epochs, 100% batches"
    assert lines[done.__identifier__()[:12]].endswith(done.__identifier__()[:12])  # done: no %
    # the UI's job views (experiment status and job graph) carry the same levels
    info = ExperimentInfo(1, "progress", 0.0, 0.0, meta={"kind": "tasks", "workdir": str(workdir)})
    rows = {row["identifier"]: row for row in job_dirs(info)}
    assert rows[failed.__identifier__()]["progress"] == read_progress(failed.jobpath)
    nodes = {n["id"]: n for n in job_graph([], job_dirs(info))["nodes"]}
    assert nodes[failed.__identifier__()]["progress"][0]["progress"] == 0.5
    assert xp.name == "progress"


def test_progress_levels_and_writes(tmp_path: Path) -> None:
    """A deeper level is forgotten when a higher one is reported; small moves wait for the
    next real change (or the end of the job), and an earlier attempt's file is removed."""
    (tmp_path / "progress.json").write_text('{"levels": [{"level": 0, "progress": 0.9}]}')
    with reporting(tmp_path):
        assert read_progress(tmp_path) == []
        progress(0.5, desc="epochs")
        progress(0.2, level=1)
        progress(0.6)
        assert read_progress(tmp_path) == [{"level": 0, "progress": 0.6, "desc": "epochs"}]
        progress(0.605)
        assert read_progress(tmp_path)[0]["progress"] == 0.6
    assert read_progress(tmp_path)[0]["progress"] == 0.605
    for bad, message in ((1.5, "from 0 to 1"), ("half", "number"), (float("nan"), "0 to 1")):
        with pytest.raises(ConfigError, match=message):
            progress(bad)
    with pytest.raises(ConfigError, match="level >= 0"):
        progress(0.5, level=-1)


def test_progress_outside_a_job_records_nothing(tmp_path: Path) -> None:
    Epochs.C().execute()  # called directly, as in a notebook: no job, no file, no error
    assert list(tmp_path.iterdir()) == []


def test_the_web_api_shows_the_progress_of_a_failed_job(tmp_path: Path, closing) -> None:
    require_module("starlette", "ui")
    from starlette.testclient import TestClient

    from trialbook.storage import open_store
    from trialbook.web import create_app

    location = str(tmp_path / "store")
    with pytest.raises(JobFailedError), experiment(tmp_path / "wd", "web", store=location):
        failed = Epochs.C(fail_at=0.25).submit()
    store = closing(open_store(location))
    with TestClient(create_app(store, token="t"), headers={"Authorization": "Bearer t"}) as web:
        graph = web.get("/api/experiments/web/graph").json()
    node = next(n for n in graph["nodes"] if n["id"] == failed.__identifier__())
    assert node["progress"][0] == {"level": 0, "progress": 0.25, "desc": "epochs"}


# -- get_experiment and run modes ------------------------------------------------------------


def test_get_experiment_is_the_experiment_of_the_innermost_block(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="outside an experiment block"):
        get_experiment()
    with pytest.raises(ConfigError, match=r"would read a past experiment: .* `trialbook runs"):
        get_experiment("old", workdir=tmp_path)
    assert RunMode.GENERATE_ONLY is RunMode.GENERATE  # experimaestro's member name
    with experiment(tmp_path / "wd", "outer") as outer:
        assert get_experiment() is outer
        with experiment(tmp_path / "wd", "inner") as inner:
            assert get_experiment() is inner
        assert get_experiment() is outer


def test_dry_run_submit_outside_an_experiment_checks_the_task_without_a_workdir(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match=r"run_mode='dry-run'"):
        Learn.C().submit()
    with pytest.raises(ConfigError, match="Train is missing required parameter"):
        Train.C().submit(run_mode="dry-run")
    task = Plain.C()
    assert task.submit(run_mode="dry-run") is task
    assert task.__dict__["_tb_sealed"] and len(task.__identifier__()) == 64
    with pytest.raises(AttributeError, match="no job directory"):
        task.jobpath  # noqa: B018
    assert list(tmp_path.iterdir()) == []


def test_a_run_mode_given_to_submit_applies_to_that_job_only(tmp_path: Path) -> None:
    with experiment(tmp_path / "wd", "modes") as xp:
        ran = Learn.C(epochs=5).submit()
        checked = Report.C(run=RunFolder.C(path=tmp_path)).submit(run_mode="dry-run")
    assert (ran.path / "result.txt").read_text() == "learned 5 epochs"
    assert [entry["status"] for entry in xp.plan] == ["would run"]
    assert not checked.jobpath.exists()
    with pytest.raises(ConfigError, match="unknown run mode 'soon'"):
        Plain.C().submit(run_mode="soon")


class Shout(Task):
    word: Param[str]

    def execute(self) -> None:
        progress(0.5)
        print(self.word.upper())
        progress(1.0)


class Join(Task):
    parts: Param[list[Shout]]

    def execute(self) -> None:
        said = [part.__xpm_stdout__.read_text().strip() for part in self.parts]
        print(" ".join(said))


def test_the_readme_chain_of_experimaestro_runs(tmp_path: Path) -> None:
    """experimaestro's own README example, in trialbook's words: two independent tasks, a third
    that reads what they printed through ``__xpm_stdout__``, tagged in the submit chain, with
    progress reported by the running jobs."""
    with experiment(tmp_path, "helloworld", port=0):
        hello = Shout.C(word="hello").submit()
        world = Shout.C(word="world").submit()
        joined = Join.C(parts=[hello, world]).tag("y", 1).submit()
    assert joined.__xpm_stdout__.read_text() == "HELLO WORLD\n"
    assert joined.tags() == {"y": 1}
    assert hello.__xpm_stderr__.parent == hello.jobpath
