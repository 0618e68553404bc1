"""YAML plans and the task commands: parent merge, overrides, --show, run modes, exit status,
`trialbook jobs ls|clean`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from trialbook.cli import cli
from trialbook.errors import ConfigError
from trialbook.storage import open_store
from trialbook.tasks.plans import apply_overrides, load, load_plan

PLAN = """
from pathlib import Path
from trialbook import ConfigurationBase, ExperimentHelper, Meta, Param, Task, configuration, tag


class Learn(Task):
    __trialbook_id__ = "plan.learn"
    lr: Param[float]
    log: Meta[str]

    def execute(self):
        with open(self.log, "a") as f:
            f.write(f"{self.lr}\\n")
        if self.lr > 1:
            raise ValueError(f"lr {self.lr} is too large")


@configuration
class Configuration(ConfigurationBase):
    #: Default learning rate
    learning_rate: float = 1e-3
    n: int = 1
    log: str = "log.txt"


@ExperimentHelper.decorator
def run(helper: ExperimentHelper, cfg: Configuration):
    assert helper.xp.name == cfg.id
    for i in range(cfg.n):
        Learn.C(lr=tag(cfg.learning_rate * (i + 1)), log=cfg.log).submit()
"""


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    (tmp_path / "experiment.py").write_text(PLAN)
    (tmp_path / "base.yaml").write_text("id: plan-xp\nn: 3\ntitle: base\n")
    (tmp_path / "full.yaml").write_text(
        textwrap.dedent(f"""\
        parent: base.yaml
        file: experiment
        learning_rate: 1e-4
        title: full
        log: {tmp_path / "log.txt"}
        """)
    )
    return tmp_path / "full.yaml"


def invoke(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def test_parent_files_are_merged_and_overrides_applied(plan: Path) -> None:
    data = load(plan)
    assert (data["id"], data["n"], data["title"]) == ("plan-xp", 3, "full")
    cfg, _, _ = load_plan(plan, ["n=2", "description=from -c"])
    assert (cfg.n, cfg.learning_rate, cfg.description) == (2, 1e-4, "from -c")
    assert apply_overrides({"a": {"b": 1}}, ["a.c=[1]"]) == {"a": {"b": 1, "c": [1]}}


def test_bad_plans_are_clear_errors(plan: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'learnin_rate'.*did you mean"):
        load_plan(plan, ["learnin_rate=1"])
    with pytest.raises(ConfigError, match="'n' of Configuration must be <class 'int'>"):
        load_plan(plan, ["n=many"])
    (tmp_path / "loop.yaml").write_text("parent: loop.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load(tmp_path / "loop.yaml")
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["novalue"])


def test_show_prints_the_merged_configuration(plan: Path) -> None:
    code, output = invoke("run-experiment", "--show", "-c", "n=5", str(plan))
    assert code == 0
    assert "id: plan-xp\ntitle: full\n" in output
    assert "learning_rate: 0.0001\nn: 5\n" in output


def test_run_dry_run_and_rerun(plan: Path, tmp_path: Path) -> None:
    workdir = str(tmp_path / "wd")
    code, output = invoke("run-experiment", "--workdir", workdir, "--run-mode", "dry-run", plan)
    assert code == 0
    assert output.count("would run  plan.learn lr=") == 3
    assert not (tmp_path / "log.txt").exists()
    code, output = invoke("run-experiment", "--workdir", workdir, "--workers", "2", str(plan))
    assert (code, output.splitlines()[-1]) == (0, "3 job(s) done in experiment 'plan-xp'")
    assert len((tmp_path / "log.txt").read_text().split()) == 3
    code, output = invoke("run-experiment", "--workdir", workdir, "--run-mode", "dry-run", plan)
    assert output.count("done       plan.learn lr=") == 3
    code, output = invoke("jobs", "ls", "--workdir", workdir, "--tag", "lr=0.0002")
    assert code == 0
    assert output.startswith("done        plan.learn lr=0.0002  [")


def test_failed_plan_exits_non_zero_and_jobs_clean(plan: Path, tmp_path: Path) -> None:
    workdir = str(tmp_path / "wd")
    code, output = invoke("run-experiment", "--workdir", workdir, "-c", "learning_rate=1", plan)
    assert code == 1
    assert "2 jobs of experiment 'plan-xp' failed" in output
    assert "ValueError: lr 2.0 is too large" in output
    code, output = invoke("jobs", "ls", "--workdir", workdir, "--status", "failed")
    assert output.count("failed") == 2
    store = open_store(tmp_path / ".trialbook")  # the default store of the project folder
    exp_id = store.find_experiment("plan-xp").id
    assert sorted(r.status for r in store.read_runs(exp_id)) == ["done", "failed", "failed"]
    code, output = invoke("jobs", "clean", "--workdir", workdir, "--forget-runs")
    assert output.splitlines()[-2:] == ["2 job(s) removed", "2 run(s) deleted from the store"]
    assert [r.status for r in store.read_runs(exp_id)] == ["done"]
    store.close()
    code, output = invoke("jobs", "ls", "--workdir", workdir)
    assert output.count("done") == 1 and "failed" not in output


def test_generate_mode_writes_scripts(plan: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "wd"
    code, output = invoke("run-experiment", "--workdir", workdir, "--run-mode", "generate", plan)
    assert code == 0
    assert output.count("generated") == 3
    assert len(list(workdir.glob("jobs/plan.learn/*/run.py"))) == 3
    assert not (tmp_path / "log.txt").exists()
