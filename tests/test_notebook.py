"""Notebooks (issue 17): HTML representations, metric plots and the executed tutorial."""

from __future__ import annotations

import contextlib
import html.parser
import json
import os
import pathlib
import sys
from typing import Any

import pytest

import trialbook
from conftest import Closing, require_module
from trialbook.errors import ConfigError, NotFoundError

HOSTILE = '<script>alert("x")</script>'


class _Tags(html.parser.HTMLParser):
    """The tags of a text of HTML, and its texts, as a browser reads them."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.texts: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def _rows(text: str) -> int:
    """Rows of the tables' bodies (header rows excluded)."""
    return text.count("<tr") - text.count("<thead>")


def _hostile_experiment(session: trialbook.Session) -> trialbook.RunsExperiment:
    experiment = session.create_experiment(f"e {HOSTILE}")
    experiment.description = f"about {HOSTILE}"
    experiment.add_runs(name=[HOSTILE, "plain"])

    def step(run: trialbook.Run) -> None:
        run.fields.note = HOSTILE
        run.tags[HOSTILE] = HOSTILE
        run.log_metric(HOSTILE, 1.0)
        if run.params.name == "plain":
            raise ValueError(HOSTILE)

    with pytest.raises(trialbook.errors.RunFailedError):
        experiment.execute(step)
    return experiment.persist()


def test_reprs_escape_every_text(session: trialbook.Session) -> None:
    """A value holding HTML shows as text everywhere: no tag but trialbook's own."""
    experiment = _hostile_experiment(session)
    loaded = session.load_experiment(experiment.name)
    for text in (
        session._repr_html_(),
        experiment._repr_html_(),
        loaded._repr_html_(),
        experiment.runs[1]._repr_html_(),
        experiment.runs[2]._repr_html_(),
    ):
        parsed = _Tags(text)
        assert set(parsed.tags) <= {"div", "b", "span", "table", "thead", "tbody", "tr", "th",
                                    "td", "svg", "polyline"}  # fmt: skip
        assert "script" not in parsed.tags
        assert any(HOSTILE in t for t in parsed.texts)  # shown, as text


def test_reprs_set_no_colour_of_their_own(session: trialbook.Session) -> None:
    """Dark themes: text and lines take the notebook's colour, no background is painted."""
    experiment = _hostile_experiment(session)
    for text in (session._repr_html_(), experiment._repr_html_(), experiment.runs[1]._repr_html_()):
        assert "background" not in text
        assert "color: inherit" in text
        assert "color:" not in text.replace("color: inherit", "")
    assert 'stroke="currentColor"' in experiment.runs[1]._repr_html_()


def test_experiment_repr_counts_runs_by_status_and_shows_twenty(
    session: trialbook.Session,
) -> None:
    experiment = session.create_experiment("counts")
    experiment.add_runs(x=range(30))
    done = [run for run in experiment.runs.values() if run.params.x % 7]
    failed = [run for run in experiment.runs.values() if run.params.x % 7 == 0][:3]
    for run in done:
        run.start()
        run.finish()
    for run in failed:
        run.start()
        run.finish(ValueError("no"))
    pending = 30 - len(done) - len(failed)
    for shown in (experiment, experiment.persist(), session.load_experiment("counts")):
        text = shown._repr_html_()
        assert f"done {len(done)}" in text
        assert f"failed {len(failed)}" in text
        assert f"pending {pending}" in text
        assert "30 runs" in text
        assert _rows(text) == 20
        assert "… 10 more" in text


def test_small_experiment_repr_has_no_more_line(session: trialbook.Session) -> None:
    experiment = session.create_experiment("small")
    experiment.add_runs(x=[1, 2])
    text = experiment._repr_html_()
    assert _rows(text) == 2 and "more" not in text
    empty = session.create_experiment("empty")._repr_html_()
    assert "0 runs" in empty and "<table" not in empty


def test_repr_of_a_loaded_experiment_reads_nothing_more(store_dir, closing: Closing) -> None:
    """The repr of a loaded 100k-run experiment sends no statement to the store and builds no
    run: the runs are read only when ``experiment.runs`` is used afterwards."""
    statements: list[str] = []
    store = closing(trialbook.open_store(store_dir, tracer=lambda sql, p: statements.append(sql)))
    session = trialbook.Session(store)
    experiment = session.create_experiment("big")
    experiment.add_runs(x=range(100_000))
    experiment.persist()
    del experiment
    loaded = session.load_experiment("big")
    statements.clear()
    text = loaded._repr_html_()
    assert statements == []
    assert "pending 100000" in text and "… 99980 more" in text and _rows(text) == 20
    assert len(loaded.runs) == 100_000  # built now, read from the store now
    assert any("FROM runs" in sql for sql in statements)


def test_repr_of_a_loaded_experiment_shows_lost_runs_failed(session: trialbook.Session) -> None:
    """A run left running by a process whose heartbeat stopped reads as failed, as in df()."""
    experiment = session.create_experiment("lost")
    experiment.add_runs(x=[1, 2])
    experiment.runs[1].start()  # running, never finished
    experiment.persist()
    info = session.store.find_experiment("lost")
    entry = {"host": "elsewhere", "pid": 7, "beat": 1.0, "runs": [1]}
    session.store.update_meta(info.id, {"live:gone": entry})
    loaded = session.load_experiment("lost")
    text = loaded._repr_html_()
    assert "failed 1" in text and "pending 1" in text and "running" not in text
    assert "LostRun" in text
    assert loaded.df().loc[1, "status"] == "failed"


def test_run_repr_has_params_fields_status_and_sparklines(session: trialbook.Session) -> None:
    experiment = session.create_experiment("run")
    with experiment.run(lr=0.25) as run:
        run.fields.accuracy = 0.75
        for step in range(500):
            run.log_metric("loss", 1 / (step + 1))
        run.log_metric("acc", 0.5)
    text = run._repr_html_()
    assert "Run 1" in text and "done" in text and " s</span>" in text
    assert ">lr</td>" in text and ">0.25</td>" in text
    assert ">accuracy</td>" in text and ">0.75</td>" in text
    assert text.count("<svg") == 2 and text.count("<polyline") == 2
    acc, loss = (part.split('"')[0].split() for part in text.split('points="')[1:])
    assert len(loss) == 200  # 500 points, thinned
    assert len(acc) == 2  # one point: a short flat line
    assert ">500</td>" in text  # its count of points


def test_session_repr_lists_experiments_with_kind_and_runs(
    session: trialbook.Session, tmp_path: pathlib.Path
) -> None:
    experiment = session.create_experiment("runs-one")
    experiment.add_runs(x=[1, 2, 3])
    experiment.persist()
    with trialbook.Experiment("graph-one", backend=session.store) as graph:

        @graph.result
        def one() -> int:
            return 1

        one().compute(seed=0)
    text = session._repr_html_()
    assert "2 experiments" in text
    assert ">runs-one</td><td" in text and ">graph-one</td><td" in text
    assert ">graph</td>" in text and ">runs</td>" in text and ">3</td>" in text


def test_graph_history_repr_pages_the_trials(session: trialbook.Session) -> None:
    with trialbook.Experiment("hist", backend=session.store) as ex:
        a = ex.parameter("a")

        @ex.result
        def inverse(a: int) -> float:
            return 1 / a

        for value in range(25):
            ex.set_parameters(a=value)
            with contextlib.suppress(ZeroDivisionError):
                inverse(a).compute(seed=0)
        text = ex._repr_html_()
    assert "done 24" in text and "failed 1" in text
    assert _rows(text) == 20 and "… 5 more" in text
    assert "ZeroDivisionError" in text and ">Result</th>" in text
    assert "parameters: a" in text


def test_task_experiment_repr_lists_the_jobs_of_the_block(tmp_path: pathlib.Path) -> None:
    from trialbook import Param, Task, experiment, tag

    class Fit(Task):
        __trialbook_id__ = "test.notebook.fit"
        name: Param[str]

        def execute(self) -> None:
            pass

    with experiment(tmp_path, "plan", run_mode="dry-run", progress=False) as xp:
        for i in range(22):
            Fit.C(name=tag(f"{HOSTILE}{i}")).submit()
    text = xp._repr_html_()
    assert "would run 22" in text and "… 2 more" in text and _rows(text) == 20
    assert "<script>" not in text and ">test.notebook.fit</td>" in text


# -- plots -------------------------------------------------------------------------------------


@pytest.fixture
def curves(session: trialbook.Session) -> trialbook.RunsExperiment:
    """Six runs: lr 0.1 or 0.01, seeds 1-3; a loss over 10 steps; the last run logs none."""
    experiment = session.create_experiment("curves")
    experiment.add_runs(lr=[0.1, 0.01], seed=[1, 2, 3], opt="sgd")

    def fit(run: trialbook.Run) -> None:
        if run.id == 6:
            return
        for step in range(10):
            run.log_metric("loss", run.params.lr * run.params.seed / (step + 1))

    return experiment.execute(fit)


@pytest.fixture
def pyplot() -> Any:
    matplotlib = require_module("matplotlib", "notebook")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_plot_draws_one_line_per_run(curves: trialbook.RunsExperiment, pyplot: Any) -> None:
    ax = curves.plot("loss")
    assert [line.get_label() for line in ax.get_lines()] == [f"run {i}" for i in range(1, 6)]
    assert list(ax.get_lines()[0].get_ydata()) == pytest.approx([0.1 / (s + 1) for s in range(10)])
    assert ax.get_ylabel() == "loss" and ax.get_xlabel() == "step"


def test_plot_by_group_draws_a_mean_line_and_a_band(
    curves: trialbook.RunsExperiment, pyplot: Any
) -> None:
    ax = curves.plot("loss", group_by="lr")
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["lr=0.1 (3 runs)", "lr=0.01 (2 runs)"]
    assert ax.get_lines()[0].get_ydata()[0] == pytest.approx(0.2)  # mean of .1 .2 .3
    assert len(ax.collections) == 2  # one band per group
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert min(band) == pytest.approx(0.01) and max(band) == pytest.approx(0.3)
    std = curves.plot("loss", group_by=["lr", "opt"], band="std")
    assert [line.get_label() for line in std.get_lines()] == [
        "lr=0.1, opt=sgd (3 runs)", "lr=0.01, opt=sgd (2 runs)",
    ]  # fmt: skip


def test_plot_of_a_loaded_experiment_reads_the_points_from_the_store(
    curves: trialbook.RunsExperiment, session: trialbook.Session, pyplot: Any
) -> None:
    curves.persist()
    loaded = session.load_experiment("curves")
    ax = loaded.plot("loss", group_by="seed")
    assert [line.get_label() for line in ax.get_lines()] == [
        "seed=1 (2 runs)", "seed=2 (2 runs)", "seed=3 (1 run)",
    ]  # fmt: skip
    assert loaded.plot("loss", x="time").get_xlabel() == "seconds"


def test_plot_saves_a_figure_headless(
    curves: trialbook.RunsExperiment, pyplot: Any, tmp_path: pathlib.Path
) -> None:
    ax = curves.plot("loss", group_by="lr")
    ax.figure.savefig(tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    _, given = pyplot.subplots()
    assert curves.plot("loss", ax=given) is given


def test_plot_errors_name_what_exists(curves: trialbook.RunsExperiment, pyplot: Any) -> None:
    with pytest.raises(NotFoundError, match=r"logged the metric 'los' .*'loss'.*did you mean"):
        curves.plot("los")
    with pytest.raises(ConfigError, match=r"group_by names 'lrr'.*'lr'.*did you mean 'lr'"):
        curves.plot("loss", group_by="lrr")
    with pytest.raises(ConfigError, match="band must be 'minmax' or 'std'"):
        curves.plot("loss", band="range")
    with pytest.raises(ConfigError, match="with group_by, use x='step'"):
        curves.plot("loss", group_by="lr", x="time")


def test_graph_plot_groups_trials_by_parameter(session: trialbook.Session, pyplot: Any) -> None:
    with trialbook.Experiment("graph-curves", backend=session.store) as ex:
        a = ex.parameter("a")

        @ex.result
        def fit(a: int) -> None:
            for epoch in range(4):
                ex.save_metric("loss", epoch=epoch, value=a / (epoch + 1))

        for value in (1, 1, 2):
            ex.set_parameters(a=value)
            fit(a).compute(seed=value)
        ax = ex.plot("loss", group_by="a")
        assert [line.get_label() for line in ax.get_lines()] == ["a=1 (2 runs)", "a=2 (1 run)"]
        with pytest.raises(NotFoundError, match="'loss'"):
            ex.plot("acc")


# -- the tutorial ------------------------------------------------------------------------------

TUTORIAL = pathlib.Path(__file__).resolve().parent.parent / "docs" / "tutorial.ipynb"


def _outputs(cell: Any, kind: str) -> list[str]:
    """The texts of ``kind`` (``stdout``, ``text/html``, ``image/png``...) a cell showed."""
    found = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream" and output.name == kind:
            found.append(output.text)
        elif kind in output.get("data", {}):
            found.append(output.data[kind])
    return found


def test_tutorial_notebook_runs_from_top_to_bottom(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/tutorial.ipynb, executed by a kernel of this environment's interpreter: no cell
    fails, the reprs are tables, the plots are images, the store holds the three ways."""
    nbclient = require_module("nbclient", "notebook")
    nbformat = require_module("nbformat", "notebook")
    require_module("ipykernel", "notebook")
    # "python3" is this interpreter, whatever kernels the machine has registered: a spec in a
    # folder of the test, first on JUPYTER_PATH (nothing is registered outside it)
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "Python 3", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    # the kernel imports the trialbook under test, whatever the environment installed
    source = str(pathlib.Path(trialbook.__file__).resolve().parent.parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([source, os.environ.get("PYTHONPATH", "")]))
    work = tmp_path / "work"
    work.mkdir()
    notebook = nbformat.read(TUTORIAL, as_version=4)
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(work)}}
    )
    client.execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    # the kernel is this interpreter
    assert _outputs(code[0], "stdout") == [sys.executable + "\n"]
    html_texts = [text for cell in code for text in _outputs(cell, "text/html")]
    assert sum("<table" in text for text in html_texts) >= 6
    assert any("Experiment sweep" in t and "done 6" in t for t in html_texts)
    assert any("Run 1" in t and "<svg" in t for t in html_texts)
    assert any("lazy graph · 3 trials" in t for t in html_texts)
    assert any("tasks · normal" in t and ">tutorial.fit</td>" in t for t in html_texts)
    assert any("Experiment tasks" in t and "done 2" in t for t in html_texts)
    session_html = html_texts[-1]
    assert ">graph</td>" in session_html and ">tasks</td>" in session_html
    assert sum(len(_outputs(cell, "image/png")) for cell in code) == 3
    assert list(work.iterdir()) == []  # the store lived in a temporary folder, removed
