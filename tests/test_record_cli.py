"""Issue 12, what the CLI and the UI show: search from Python and the CLI (item 9), `show` and
runs tables of trials and jobs (10), errors instead of silence (12), missing extras as one line
(13), experiment names with `/` in the UI and `dir(trialbook)` (15). Real stores throughout."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import trialbook
from conftest import BACKENDS, Closing, backend_location, require_module
from trialbook import Param, Task, experiment, tag
from trialbook.cli import cli
from trialbook.errors import ConfigError

AUTH = {"Authorization": "Bearer t"}


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def sweep(location: str, name: str = "sweep") -> None:
    """Six runs: lr x loss, with an `acc` field and a `val` metric."""
    with trialbook.create_session(location) as session:
        exp = session.create_experiment(name)
        exp.add_runs(lr=[0.001, 0.01, 0.1], loss=["hinge", "log"])

        def step(run: trialbook.Run) -> None:
            run.fields.acc = round(run.params.lr * 5 + (run.params.loss == "log") / 100, 4)
            run.log_metric("val", 1 - run.fields.acc)

        exp.execute(step).persist()


# -- item 9: search_runs and `trialbook runs --where --sort --limit` --------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_search_runs_filters_sorts_and_pages_on_every_backend(backend: str, tmp_path) -> None:
    with backend_location(backend, tmp_path) as location:
        sweep(location)
        with trialbook.create_session(location) as session:
            frame = session.search_runs("sweep", 'loss == "hinge" and status == "done"',
                                        order_by="acc", descending=True)  # fmt: skip
            assert list(frame.index) == [5, 3, 1]
            assert list(frame["lr"]) == [0.1, 0.01, 0.001]
            assert frame.attrs["total"] == 3
            page = session.search_runs("sweep", "metric.val < 0.99", order_by="lr", limit=2,
                                       offset=1)  # fmt: skip
            assert list(page.index) == [3, 4] and page.attrs["total"] == 5
            assert list(session.search_runs("sweep", "status == 'failed'").index) == []
            assert list(session.search_runs("sweep").index) == [1, 2, 3, 4, 5, 6]
            with pytest.raises(ConfigError, match=r"`hinge` at column 9 .* loss == \"hinge\""):
                session.search_runs("sweep", "loss == hinge")
            with pytest.raises(ConfigError, match="syntax error at column"):
                session.search_runs("sweep", "lr >")
            with pytest.raises(ConfigError, match="cannot sort by 'acc_'"):
                session.search_runs("sweep", order_by="acc_")
            with pytest.raises(trialbook.errors.ExperimentNotFoundError):
                session.search_runs("nope")


def test_search_runs_frame_is_the_df_of_the_matching_runs(tmp_path) -> None:
    sweep(str(tmp_path / "s"))
    with trialbook.create_session(tmp_path / "s") as session:
        whole = session.load_experiment("sweep").df()
        found = session.search_runs("sweep", "lr >= 0.01")
    assert list(found.columns) == list(whole.columns)
    assert found.drop(columns=["error"]).equals(whole.loc[[3, 4, 5, 6]].drop(columns=["error"]))


def test_runs_where_sort_and_limit(tmp_path) -> None:
    store = str(tmp_path / "s")
    sweep(store)
    out = invoke("runs", "sweep", "--store", store, "--where", 'loss == "log"', "--sort", "-lr")
    assert out.exit_code == 0
    lines = out.output.splitlines()
    assert [line.split()[0] for line in lines[2:-1]] == ["6", "4", "2"]
    assert lines[-1] == "(3 of 3 matching runs)"
    top = invoke("runs", "sweep", "--store", store, "--sort=-acc", "--limit", "2")
    assert [line.split()[0] for line in top.output.splitlines()[2:4]] == ["6", "5"]
    # --limit without --sort keeps its meaning: the last N runs, in run order
    last = invoke("runs", "sweep", "--store", store, "--limit", "2")
    assert [line.split()[0] for line in last.output.splitlines()[2:4]] == ["5", "6"]
    assert last.output.splitlines()[-1] == "(2 of 6 runs)"
    none = invoke("runs", "sweep", "--store", store, "--where", "lr > 5")
    assert none.output == "no run of 'sweep' matches 'lr > 5'\n"


def test_runs_with_a_bad_filter_is_one_line_with_the_column(tmp_path) -> None:
    store = str(tmp_path / "s")
    sweep(store)
    out = invoke("runs", "sweep", "--store", store, "--where", "loss == hinge")
    assert out.exit_code == 1
    assert out.output == (
        "Error: bad query 'loss == hinge': `hinge` at column 9 is not a parameter, field or tag"
        ' of any run of this experiment; to compare with a text, quote it: loss == "hinge"\n'
    )
    bad_sort = invoke("runs", "sweep", "--store", store, "--sort", "-")
    assert bad_sort.exit_code == 2 and "--sort needs a name" in bad_sort.output


# -- item 10: show of trials and jobs; ints stay ints; tags as columns -------------------------


class Fit(Task):
    __trialbook_id__ = "test.record.fit"
    alpha: Param[float] = 0.1
    max_iter: Param[int] = 100
    seed: Param[int] = 0

    def execute(self) -> None:
        pass


class Prepare(Task):
    __trialbook_id__ = "test.record.prepare"
    source: Param[str] = "csv"

    def execute(self) -> None:
        pass


def test_show_of_a_trial_gives_its_result_and_seed(tmp_path, closing: Closing) -> None:
    store = str(tmp_path / "s")
    ex = closing(trialbook.Experiment(id="graph", backend=store))
    a = ex.parameter("a", default=1)

    @ex.result
    def double(a: int) -> int:
        return a * 2

    ex.set_parameters(a=21)
    double(a).compute(seed=7)
    out = invoke("show", "graph", "1", "--store", store)
    assert out.exit_code == 0
    lines = out.output.splitlines()
    assert lines[0] == "trial 1 of 'graph': done"
    assert "seed: 7" in lines and "result: 42" in lines
    table = invoke("runs", "graph", "--store", store).output.splitlines()
    assert table[0].split()[-1] == "result" and table[2].split()[-1] == "42"


def test_jobs_show_tags_and_their_integer_params_stay_integers(tmp_path, monkeypatch) -> None:
    store = str(tmp_path / "s")
    monkeypatch.setenv("TRIALBOOK_STORE", store)
    with experiment(tmp_path / "wd", "tasks"):
        for seed in (1, 2):
            Fit.C(alpha=tag(0.1), max_iter=tag(2000), seed=tag(seed)).submit()
        prepare = Prepare.C(source="db")
        prepare.tag("variant", "b")
        prepare.submit()
    with trialbook.create_session(store) as session:
        frame = session.search_runs("tasks")
        first = int(session.search_runs("tasks", "params.seed == 1").index[0])
    assert list(frame["max_iter"].dropna()) == [2000, 2000]  # not 2000.0 next to Prepare's gap
    assert str(frame["max_iter"].dtype) == "Int64" and frame["max_iter"].isna().sum() == 1
    table = invoke("runs", "tasks", "--store", store).output
    assert "2000.0" not in table and " 2000 " in table
    header = table.splitlines()[0].split()
    assert "tag.variant" in header  # a tag that is not a param is a column
    assert "tag.max_iter" not in header  # a tagged param is already a column
    show = invoke("show", "tasks", str(first), "--store", store).output.splitlines()
    assert show[0] == f"job {first} of 'tasks': done" and show[1].startswith("key: ")
    tags = show.index("tags:")
    assert show[tags + 1 : tags + 4] == ["  alpha: 0.1", "  max_iter: 2000", "  seed: 1"]


def test_tags_of_runs_are_columns_of_the_table(tmp_path) -> None:
    store = str(tmp_path / "s")
    with trialbook.create_session(store) as session:
        exp = session.create_experiment("tagged")
        for model in ("mlp", "cnn"):
            with exp.run(lr=0.1) as run:
                run.tags["model"] = model
        exp.persist()
    lines = invoke("runs", "tagged", "--store", store).output.splitlines()
    assert lines[0].split()[-1] == "tag.model"
    assert [line.split()[-1] for line in lines[2:]] == ["mlp", "cnn"]


# -- item 12: errors instead of silence ----------------------------------------------------------


@pytest.mark.parametrize("command", [["ls"], ["runs", "x"], ["show", "x", "1"], ["ui"]])
@pytest.mark.parametrize("form", ["sqlite:///{}/new.db", "{}/new-store", "file://{}/new-store"])
def test_read_only_commands_never_create_a_store(tmp_path, command: list[str], form: str) -> None:
    if command == ["ui"]:
        require_module("starlette", "ui")  # without it, `ui` says that first
    location = form.format(tmp_path)
    out = invoke(*command, "--store", location)
    assert out.exit_code == 1
    assert out.output.startswith(f"Error: no store at {location!r}")
    assert "pass --store URL or set TRIALBOOK_STORE" in out.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["jobs", "ls"], ["jobs", "kill"]])
def test_jobs_commands_on_a_missing_workdir_are_errors(tmp_path, command: list[str]) -> None:
    out = invoke(*command, "--workdir", str(tmp_path / "nowhere"))
    assert out.exit_code == 1
    assert out.output.startswith(f"Error: no workdir at {str(tmp_path / 'nowhere')!r}")
    assert not (tmp_path / "nowhere").exists()


def test_jobs_commands_say_when_there_is_nothing(tmp_path) -> None:
    (tmp_path / "wd").mkdir()
    assert invoke("jobs", "ls", "--workdir", str(tmp_path / "wd")).output == (
        f"no jobs in {tmp_path / 'wd'}\n"
    )
    assert invoke("jobs", "kill", "--workdir", str(tmp_path / "wd")).output == (
        f"no running jobs in {tmp_path / 'wd'}: nothing killed\n"
    )


# -- item 13: a missing extra is one line naming it ----------------------------------------------

BLOCK = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # `import name` now raises ModuleNotFoundError, as if not installed
"""


def run_without(blocked: list[str], code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = BLOCK.format(blocked=blocked) + textwrap.dedent(code)
    env = {**os.environ, "TRIALBOOK_STORE": str(cwd / "store")}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120, check=False)  # fmt: skip


def run_cli_without(blocked: list[str], args: list[str], cwd: Path) -> Any:
    return run_without(blocked, f"from trialbook.cli import cli\ncli({args!r}, "
                       "prog_name='trialbook')", cwd)  # fmt: skip


@pytest.mark.parametrize(
    ("blocked", "args", "extra"),
    [
        (["starlette"], ["ui", "--port", "0"], "ui"),
        (["uvicorn"], ["ui", "--port", "0"], "ui"),
        (["sqlalchemy"], ["ls", "--store", "postgresql://u@127.0.0.1:1/db"], "postgres"),
        (["psycopg"], ["ls", "--store", "postgresql+psycopg://u@127.0.0.1:1/db"], "postgres"),
        (["pymysql"], ["ls", "--store", "mysql+pymysql://u@127.0.0.1:1/db"], "mysql"),
        (["sqlalchemy"], ["ls", "--store", "mysql+pymysql://u@127.0.0.1:1/db"], "mysql"),
        (["redis"], ["ls", "--store", "redis://127.0.0.1:1/0"], "redis"),
        (["pymongo"], ["ls", "--store", "mongodb://127.0.0.1:1/db"], "mongo"),
    ],
)
def test_a_missing_extra_is_one_line_naming_it(
    tmp_path, blocked: list[str], args: list[str], extra: str
) -> None:
    trialbook.create_session(tmp_path / "store").close()
    out = run_cli_without(blocked, args, tmp_path)
    assert out.returncode == 1, out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith("Error: ")
    assert f"needs the {extra!r} extra" in out.stderr
    assert out.stderr.rstrip().endswith(f"pip install 'trialbook[{extra}]'")


def test_distributed_and_viz_name_their_extras(tmp_path) -> None:
    dask = run_without(["distributed"], """
        import trialbook
        exp = trialbook.create_session("sqlite:///:memory:").create_experiment("d")
        exp.add_runs(x=[1])
        try:
            exp.execute(lambda run: None, backend="dask")
        except trialbook.TrialbookError as exc:
            print(exc)
    """, tmp_path)  # fmt: skip
    assert dask.stdout.strip().endswith("pip install 'trialbook[distributed]'"), dask.stderr
    viz = run_without(["graphviz"], """
        import trialbook
        ex = trialbook.Experiment("v", backend="sqlite:///:memory:")
        @ex.result
        def one():
            return 1
        try:
            one().visualize()
        except trialbook.TrialbookError as exc:
            print(exc)
    """, tmp_path)  # fmt: skip
    assert viz.stdout.strip() == (
        "drawing a step graph (.visualize()) needs the 'viz' extra (the package 'graphviz' is "
        "not installed): pip install 'trialbook[viz]'"
    ), viz.stderr


# -- items 10, 12, 15 in the UI's API: names with "/", unknown names, result rows, counts -------


@pytest.fixture
def slashed(tmp_path) -> Any:
    """A store with the experiment `team/sweep%1` (a `/` and a `%` in its name) of 6 runs,
    a metric named `train/loss`, and a graph experiment `graph` of two trials."""
    location = str(tmp_path / "s")
    sweep(location, "team/sweep%1")
    with trialbook.create_session(location) as session:
        exp = session.load_experiment("team/sweep%1")
        with exp.run(lr=1.0, loss="log") as run:
            run.log_metric("train/loss", 0.5)
        exp.persist()
    two_trials(location)
    store = trialbook.open_store(location)
    yield store
    store.close()


def ui_client(store: Any, **options: Any) -> Any:
    """A Starlette test client of the UI on ``store`` (token ``t``); skips without the ui extra."""
    test_client = require_module("starlette.testclient", "ui").TestClient
    from trialbook.web import create_app

    return test_client(create_app(store, token="t"), **options)


def two_trials(location: str) -> None:
    """A graph experiment `graph` of two trials (seeds 1 and 2) with dict results."""
    with trialbook.Experiment(id="graph", backend=location) as ex:
        a = ex.parameter("a", default=1)

        @ex.result
        def double(a: int) -> dict[str, int]:
            return {"value": a * 2}

        for value in (1, 2):
            ex.set_parameters(a=value)
            double(a).compute(seed=value)


def test_names_with_a_slash_work_in_api_routes_and_pages(slashed: Any) -> None:
    quoted = "team%2Fsweep%251"
    with ui_client(slashed, headers=AUTH) as client:
        runs = client.get(f"/api/experiments/{quoted}/runs")
        assert runs.status_code == 200, runs.text
        assert runs.json()["experiment"] == "team/sweep%1" and runs.json()["total"] == 7
        assert client.get(f"/api/experiments/{quoted}/runs/7").json()["run_id"] == 7
        metric = client.get(f"/api/experiments/{quoted}/metrics/train%2Floss", params={"runs": "7"})
        assert metric.status_code == 200 and metric.json()["runs"]["7"]["values"] == [0.5]
        assert client.get(f"/api/experiments/{quoted}/compare?runs=1,2").status_code == 200
        page = client.get(f"/e/{quoted}/runs/7")
        assert page.status_code == 200 and '"name": "team/sweep%1"' in page.text
        assert "<title>team/sweep%1 · trialbook</title>" in page.text
        # the token redirect keeps the encoded path
        redirect = ui_client(slashed).get(
            f"/e/{quoted}/compare?token=t&runs=1,2", follow_redirects=False
        )
        assert redirect.headers["location"] == f"/e/{quoted}/compare?runs=1%2C2"


def test_a_filter_with_an_unknown_name_is_a_400_with_its_column(slashed: Any) -> None:
    with ui_client(slashed, headers=AUTH) as client:
        bad = client.get(
            "/api/experiments/team%2Fsweep%251/runs", params={"where": "loss == hinge"}
        )
        assert bad.status_code == 400
        assert "`hinge` at column 9" in bad.json()["error"]
        assert 'quote it: loss == "hinge"' in bad.json()["error"]
        good = client.get("/api/experiments/team%2Fsweep%251/runs",
                          params={"where": 'loss == "hinge"'})  # fmt: skip
        assert good.json()["total"] == 3


def test_comparing_trials_shows_their_results(slashed: Any) -> None:
    with ui_client(slashed, headers=AUTH) as client:
        compare = client.get("/api/experiments/graph/compare?runs=1,2").json()
    rows = {row["name"]: row for row in compare["summary"]}
    assert rows["result"]["values"] == [{"value": 2}, {"value": 4}] and rows["result"]["differs"]
    assert rows["seed"]["values"] == [1, 2]
    assert rows["kind"]["values"] == ["trial", "trial"] and not rows["kind"]["differs"]
