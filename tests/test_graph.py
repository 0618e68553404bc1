"""The lazy step graph: the quickstart of seed 001 with `import trialbook as daskperiment`."""

from __future__ import annotations

import logging
import pathlib
import shutil
from collections.abc import Iterator

import dask
import numpy as np
import pandas as pd
import pytest
from dask.delayed import Delayed

import trialbook as daskperiment
from conftest import Closing, need
from trialbook.errors import ConfigError, NotFoundError, RunNotFoundError, StorageError
from trialbook.graph import Experiment, Node, Parameter
from trialbook.storage.sqlite import SqliteStore

GRAPH_LOG = "trialbook.graph"


@pytest.fixture
def ex(store_dir: pathlib.Path) -> Iterator[Experiment]:
    with daskperiment.Experiment(id="quickstart_pj", backend=store_dir) as ex:
        yield ex


def quickstart(ex: Experiment) -> tuple[Parameter, Parameter, Node]:
    a = ex.parameter("a")
    b = ex.parameter("b")

    @ex
    def prepare_data(a, b):
        return a + b

    @ex.result
    def calculate_score(s):
        return 10 / s

    return a, b, calculate_score(prepare_data(a, b))


def messages(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_repr_and_default_backend(closing: Closing) -> None:
    ex = closing(daskperiment.Experiment(id="quickstart_pj"))
    assert repr(ex) == (
        "Experiment(id: quickstart_pj, trial_id: 0, backend: LocalBackend('.trialbook'))"
    )
    assert pathlib.Path(".trialbook/trialbook.db").exists()


def test_backend_from_environment_variable(
    monkeypatch: pytest.MonkeyPatch, closing: Closing
) -> None:
    monkeypatch.setenv("TRIALBOOK_STORE", "elsewhere")
    ex = closing(daskperiment.Experiment("env_store"))
    assert "LocalBackend('elsewhere')" in repr(ex)


def test_parameter_repr_and_lazy_graph(ex: Experiment) -> None:
    a, _, s = quickstart(ex)
    assert repr(a) == "Parameter(a: Undefined)"
    assert isinstance(s, Delayed)
    assert ex.trial_id == 0  # nothing ran on decoration nor on building the graph
    assert ex.get_history().empty
    keys = {str(k).split("-")[0] for k in dict(s.__dask_graph__())}
    assert keys == {"a", "b", "prepare_data", "calculate_score"}


def test_trials_history_and_logs(ex: Experiment, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=GRAPH_LOG)
    _, _, s = quickstart(ex)
    ex.set_parameters(a=1, b=2)
    assert s.compute() == pytest.approx(10 / 3)
    ex.set_parameters(b=3)
    assert s.compute() == 2.5
    info = messages(caplog)
    assert "Started Experiment (trial id=1)" in info
    assert "Finished Experiment (trial id=2)" in info
    generated = "Random seed is not provided, initialized with generated seed: "
    assert any(m.startswith(generated) for m in info)
    assert ex.get_parameters(trial_id=1) == {"a": 1, "b": 2}
    assert ex.get_parameters(trial_id=2) == {"a": 1, "b": 3}
    history = ex.get_history()
    assert list(history.columns) == [
        "a", "b", "Result", "Result Type", "Success", "Finished", "Process Time",
        "Description", "Seed",
    ]  # fmt: skip
    assert list(history.index) == [1, 2]
    assert history["Result Type"].tolist() == ["<class 'float'>"] * 2
    assert history["Success"].tolist() == [True, True]
    assert history["Description"].isna().all()
    assert pd.api.types.is_datetime64_any_dtype(history["Finished"])
    assert pd.api.types.is_timedelta64_dtype(history["Process Time"])
    assert repr(ex).startswith("Experiment(id: quickstart_pj, trial_id: 2,")


def test_failing_trial_is_recorded_and_reraised(ex: Experiment) -> None:
    _, _, s = quickstart(ex)
    ex.set_parameters(a=1, b=2)
    s.compute()
    ex.set_parameters(a=1, b=-1)
    with pytest.raises(ZeroDivisionError, match="division by zero") as info:
        s.compute()
    assert info.traceback[-1].name == "calculate_score"  # the user's own frame
    history = ex.get_history()
    assert history["Success"].tolist() == [True, False]
    assert history.loc[2, "Description"] == "ZeroDivisionError(division by zero)"
    assert pd.isna(history.loc[2, "Result Type"])
    assert np.isnan(history.loc[2, "Result"])


def test_unset_parameter_raises_before_a_trial_id(ex: Experiment) -> None:
    _, _, s = quickstart(ex)
    ex.set_parameters(a=1)
    with pytest.raises(ConfigError, match=r"parameter 'b' .* has no value"):
        s.compute()
    ex.set_parameters(b=1)
    s.compute()
    assert ex.trial_id == 1  # the failed attempt took no id


def test_set_undeclared_parameter_names_it(ex: Experiment) -> None:
    quickstart(ex)
    with pytest.raises(ConfigError, match=r"unknown parameter 'aa' \(did you mean 'a'\?\)"):
        ex.set_parameters(aa=1)


def test_parameter_default(ex: Experiment) -> None:
    lr = ex.parameter("lr", default=0.1)

    @ex.result
    def half(x):
        return x / 2

    assert half(lr).compute(seed=0) == 0.05
    assert ex.get_parameters(trial_id=1) == {"lr": 0.1}


def test_persist_bare_and_with_parentheses(ex: Experiment) -> None:
    a, b, _ = quickstart(ex)

    @ex.persist
    def prepare_data(a, b):
        return a + b

    @ex.persist()
    def scale(d):
        return [d, d * 2]

    @ex.result
    def total(xs):
        return sum(xs)

    s = total(scale(prepare_data(a, b)))
    ex.set_parameters(a=1, b=2)
    assert s.compute() == 9
    ex.set_parameters(a=3, b=2)
    s.compute()
    assert ex.get_persisted("prepare_data", trial_id=1) == 3
    assert ex.get_persisted("prepare_data", trial_id=2) == 5
    assert ex.get_persisted("scale", trial_id=2) == [5, 10]
    with pytest.raises(NotFoundError, match=r"no persisted step 'prepare' .*did you mean"):
        ex.get_persisted("prepare", trial_id=1)
    with pytest.raises(RunNotFoundError, match="no run with id 9"):
        ex.get_persisted("prepare_data", trial_id=9)


def test_persist_numpy_value(ex: Experiment) -> None:
    @ex.persist
    def arr():
        return np.arange(4.0)

    @ex.result
    def mean(x):
        return float(x.mean())

    assert mean(arr()).compute(seed=0) == 1.5
    np.testing.assert_array_equal(ex.get_persisted("arr", trial_id=1), np.arange(4.0))


def test_persist_cache_reuses_output(ex: Experiment, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=GRAPH_LOG)
    calls = []
    n = ex.parameter("n")

    @ex.persist(cache=True)
    def expensive(n):
        calls.append(n)
        return list(range(n))

    @ex.result
    def size(xs):
        return len(xs)

    s = size(expensive(n))
    ex.set_parameters(n=3)
    assert s.compute() == 3
    assert s.compute() == 3
    assert calls == [3]  # second trial reused trial 1's output
    assert "Reusing expensive from trial 1 (same code and inputs)" in messages(caplog)
    assert ex.get_persisted("expensive", trial_id=2) == [0, 1, 2]
    ex.set_parameters(n=4)
    assert s.compute() == 4
    assert calls == [3, 4]

    @ex.persist(cache=True)
    def expensive(n):  # changed code: the cache does not apply
        calls.append(-n)
        return list(range(n))

    assert size(expensive(n)).compute() == 4
    assert calls == [3, 4, -4]


def test_deleted_trial_leaves_no_purity_record(
    ex: Experiment, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 20, item 9: a trial whose run is deleted is forgotten by the purity check and by
    the cache; a trial that stays is still checked against."""
    n = ex.parameter("n")
    calls = []

    @ex.persist
    def noisy(n):
        return n + np.random.random()

    @ex.persist(cache=True)
    def expensive(n):
        calls.append(n)
        return list(range(n))

    @ex.result
    def total(x, xs):
        return x + len(xs)

    node = total(noisy(n), expensive(n))
    ex.set_parameters(n=3)
    node.compute(seed=1)
    assert calls == [3]
    ex.store.delete_runs(ex.experiment_id, [1])  # no public API deletes graph trials
    assert ex.store.read_runs(ex.experiment_id, [1]) == []
    caplog.set_level(logging.INFO, logger=GRAPH_LOG)
    caplog.clear()
    node.compute(seed=2)  # same inputs, another output than the deleted trial's
    assert messages(caplog, logging.WARNING) == []
    assert calls == [3, 3]  # the deleted trial's output is not reused
    assert not any("Reusing" in m for m in messages(caplog))
    caplog.clear()
    node.compute(seed=3)  # trial 2 is kept: checked against, and its output reused
    assert messages(caplog, logging.WARNING) == [
        "Experiment step result is changed with the same input: "
        "(step: noisy, args: (3,), kwargs: {})"
    ]
    assert calls == [3, 3]


def test_metrics(ex: Experiment) -> None:
    a, b, _ = quickstart(ex)

    @ex.result
    def calculate_score(s):
        for i in range(100):
            ex.save_metric("dummy_score", epoch=i, value=100 - np.random.random() * i)
        return 10 / s

    s = calculate_score(a + b)
    ex.set_parameters(a=1, b=2)
    s.compute()
    one = ex.load_metric("dummy_score", trial_id=1)
    assert one.columns.name == "Trial ID"
    assert list(one.columns) == [1]
    assert list(one.index) == list(range(100))
    assert one.loc[0, 1] == 100.0
    ex.set_parameters(a=3, b=4)
    s.compute()
    both = ex.load_metric("dummy_score", trial_id=[1, 2])
    assert both.shape == (100, 2)
    assert list(both.columns) == [1, 2]
    with pytest.raises(NotFoundError, match=r"no metric 'dumy_score'.*did you mean 'dummy_score'"):
        ex.load_metric("dumy_score", trial_id=1)
    with pytest.raises(RunNotFoundError, match="no run with id 7"):
        ex.load_metric("dummy_score", trial_id=[1, 7])
    with pytest.raises(ConfigError, match="outside a trial"):
        ex.save_metric("x", epoch=0, value=1.0)


def test_metric_missing_in_one_trial_is_nan(ex: Experiment) -> None:
    flag = ex.parameter("flag")

    @ex.result
    def step(flag):
        if flag:
            ex.save_metric("m", epoch=0, value=1.0)
        return flag

    node = step(flag)
    for value in (True, False):
        ex.set_parameters(flag=value)
        node.compute(seed=0)
    frame = ex.load_metric("m", trial_id=[1, 2])
    assert frame.loc[0, 1] == 1.0
    assert np.isnan(frame.loc[0, 2])


def test_current_run_inside_a_step(ex: Experiment) -> None:
    @ex.result
    def step():
        run = daskperiment.current_run()
        run.log_metric("loss", 0.5, step=3)
        return run.id

    assert step().compute(seed=0) == 1
    assert ex.load_metric("loss", trial_id=1).loc[3, 1] == 0.5


def test_code_context_and_change_warning(ex: Experiment, caplog: pytest.LogCaptureFixture) -> None:
    a, b, s = quickstart(ex)
    ex.set_parameters(a=1, b=2)
    s.compute()
    caplog.set_level(logging.WARNING, logger=GRAPH_LOG)

    @ex.persist
    def prepare_data(a, b):
        return a + b

    assert messages(caplog, logging.WARNING) == [
        "Code context has been changed: prepare_data",
        "@@ -1,3 +1,3 @@",
        "-@ex",
        "+@ex.persist",
        " def prepare_data(a, b):",
        "     return a + b",
    ]
    s = ex._steps["calculate_score"](prepare_data(a, b))
    s.compute()
    assert "@ex.persist\ndef prepare_data(a, b):" in ex.get_code()
    assert "@ex\ndef prepare_data(a, b):" in ex.get_code(trial_id=1)
    assert ex.get_code(trial_id=2) == ex.get_code()
    code_file = ex.store.directory / "code" / "quickstart_pj_1.py"
    assert code_file.read_text() == ex.get_code(trial_id=1) + "\n"


def test_purity_warning_and_seeds(ex: Experiment, caplog: pytest.LogCaptureFixture) -> None:
    a, b, _ = quickstart(ex)

    @ex.result
    def calculate_score(s):
        return 10 / s + np.random.random()

    s = calculate_score(a + b)
    ex.set_parameters(a=3, b=4)
    caplog.set_level(logging.INFO, logger=GRAPH_LOG)
    caplog.clear()
    first = s.compute()
    second = s.compute(seed=1)
    warning = (
        "Experiment step result is changed with the same input: "
        "(step: calculate_score, args: (7,), kwargs: {})"
    )
    assert messages(caplog, logging.WARNING) == [warning]
    assert first != second
    caplog.clear()
    assert s.compute(seed=1) == second  # same seed, same result, no warning
    assert messages(caplog, logging.WARNING) == []
    assert "Random seed is initialized with given seed: 1" in messages(caplog)
    assert ex.get_history()["Seed"].tolist()[1:] == [1, 1]


def test_purity_warning_names_the_impure_step_among_several(
    ex: Experiment, caplog: pytest.LogCaptureFixture
) -> None:
    """Four chained steps, the impure one second: every step of a trial is checked, and only
    a step that gave another output for the same inputs is named. Other inputs (another
    parameter value, or the output of an impure step upstream) never warn, nor does the same
    output for the same inputs."""
    n = ex.parameter("n")

    @ex
    def double(n):
        return n * 2

    @ex
    def noisy(x):
        return x + np.random.random()

    @ex
    def shifted(y):
        return y + 1

    @ex.result
    def total(z):
        return z * 10

    node = total(shifted(noisy(double(n))))
    caplog.set_level(logging.INFO, logger=GRAPH_LOG)
    ex.set_parameters(n=1)
    node.compute(seed=1)
    ex.set_parameters(n=2)  # every step has other inputs than in trial 1
    node.compute(seed=2)
    node.compute(seed=2)  # the same inputs and the same outputs as trial 2
    assert messages(caplog, logging.WARNING) == []
    assert "Finished Experiment (trial id=3)" in messages(caplog)
    node.compute(seed=3)  # the same inputs as trials 2 and 3: noisy's output changes
    assert messages(caplog, logging.WARNING) == [
        "Experiment step result is changed with the same input: (step: noisy, args: (4,), "
        "kwargs: {})"
    ]


def test_purity_is_checked_with_the_inputs_in_short(
    ex: Experiment, caplog: pytest.LogCaptureFixture
) -> None:
    """The warning comes as the trial ends and names a large input by type and shape."""
    data = ex.parameter("data")

    @ex.result
    def noisy(x):
        return float(x.sum() + np.random.random())

    node = noisy(data)
    ex.set_parameters(data=np.ones((500, 4)))
    node.compute(seed=1)
    caplog.set_level(logging.INFO, logger=GRAPH_LOG)
    caplog.clear()
    node.compute(seed=2)
    assert [r.getMessage() for r in caplog.records][-2:] == [
        "Experiment step result is changed with the same input: (step: noisy, args: "
        "(<ndarray shape=(500, 4) dtype=float64>,), kwargs: {})",
        "Finished Experiment (trial id=2)",
    ]


class _PurityReadFails(SqliteStore):
    """A real SQLite store whose purity lookup fails, as a server could between two calls."""

    def get_step_hashes(self, experiment_id, keys):
        raise StorageError("the purity lookup failed (injected)")


def test_a_failing_purity_read_still_records_the_trial(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture, closing: Closing
) -> None:
    store = closing(_PurityReadFails(tmp_path / "store.db"))
    ex = Experiment("purity_read_fails", backend=store)  # leaves the store given to it open
    a = ex.parameter("a")

    @ex
    def prepare(a):
        return a

    @ex.result
    def half(x):
        if x == 0:
            raise ZeroDivisionError("a is 0")
        return 1 / x

    node = half(prepare(a))
    ex.set_parameters(a=2)
    caplog.set_level(logging.WARNING, logger=GRAPH_LOG)
    assert node.compute(seed=0) == 0.5
    ex.set_parameters(a=0)
    with pytest.raises(ZeroDivisionError, match="a is 0"):  # the user's error, not the store's
        node.compute(seed=0)
    history = ex.get_history()
    assert history["Success"].tolist() == [True, False]
    assert history["Result"].tolist()[0] == 0.5
    assert messages(caplog, logging.WARNING) == [
        "Purity of trial 1's steps is not checked: the purity lookup failed (injected)",
        "Purity of trial 2's steps is not checked: the purity lookup failed (injected)",
    ]


def test_experiment_level_seed(store_dir: pathlib.Path, closing: Closing) -> None:
    ex = closing(daskperiment.Experiment("seeded", backend=store_dir, seed=7))

    @ex.result
    def draw():
        import random

        return random.random() + np.random.random()

    assert draw().compute() == draw().compute()
    assert draw().compute(seed=8) != draw().compute()
    assert ex.get_history()["Seed"].tolist() == [7, 7, 8, 7]


def test_pure_steps_give_no_warning(ex: Experiment, caplog: pytest.LogCaptureFixture) -> None:
    _, _, s = quickstart(ex)
    ex.set_parameters(a=1, b=2)
    caplog.set_level(logging.WARNING, logger=GRAPH_LOG)
    s.compute()
    s.compute()
    assert messages(caplog, logging.WARNING) == []


def test_dask_schedulers_and_plain_compute(ex: Experiment) -> None:
    _, _, s = quickstart(ex)
    ex.set_parameters(a=1, b=4)
    assert s.compute(scheduler="threads") == 2.0
    assert dask.compute(s, scheduler="sync")[0] == 2.0  # plain Dask: computed, not a trial
    assert ex.trial_id == 1
    d = s.dask  # a HighLevelGraph
    assert len(dict(d)) == 4


def test_visualize(ex: Experiment) -> None:
    need(shutil.which("dot") is not None, "graphviz `dot` is not installed")
    need(_has_module("graphviz"), "the graphviz Python package is not installed")
    _, _, s = quickstart(ex)
    s.visualize(filename="graph.png")
    assert pathlib.Path("graph.png").exists()


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_environment_is_recorded(ex: Experiment) -> None:
    _, _, s = quickstart(ex)
    ex.set_parameters(a=1, b=2)
    s.compute()
    env = ex.get_environment(trial_id=1)
    assert {"device", "cpu", "python", "requirements", "numpy", "pandas"} <= set(env)
    assert "numpy " in env["requirements"]
    assert env == ex.get_environment()
    folder = ex.store.directory / "environment"
    (sub,) = folder.iterdir()
    assert (sub / "requirements.txt").read_text() == env["requirements"]


def test_diff_between_trials(ex: Experiment) -> None:
    a, b, s = quickstart(ex)
    ex.set_parameters(a=1, b=2)
    s.compute()

    @ex.result
    def calculate_score(s):
        return 20 / s

    ex.set_parameters(b=3)
    calculate_score(a + b).compute()
    diff = ex.diff(1, 2)
    assert diff.parameters == {"b": (2, 3)}
    assert diff.result == (pytest.approx(10 / 3), 5.0)
    assert "-    return 10 / s" in diff.code
    assert "+    return 20 / s" in diff.code
    assert diff.environment == {}
    text = str(diff)
    assert "b: 2 -> 3" in text
    assert "environment: unchanged" in text
    assert not ex.diff(1, 1)


def test_history_shows_other_kinds(store_dir: pathlib.Path, closing: Closing) -> None:
    """Runs of another kind in the same experiment appear in the same table."""
    from trialbook.storage.records import RunRecord

    ex = closing(daskperiment.Experiment("mixed", backend=store_dir))
    x = ex.parameter("x")

    @ex.result
    def ident(x):
        return x

    ex.set_parameters(x=1)
    ident(x).compute(seed=0)
    (run_id,) = ex.store.allocate_run_ids(ex.experiment_id, 1)
    ex.store.write_runs(ex.experiment_id, [RunRecord(run_id, kind="job", params={"y": 2})])
    history = ex.get_history()
    assert list(history.index) == [1, 2]
    assert history["Kind"].tolist() == ["trial", "job"]
    assert history.loc[2, "y"] == 2
    assert np.isnan(history.loc[1, "y"])


def test_bad_arguments(closing: Closing) -> None:
    with pytest.raises(ConfigError, match="non-empty str"):
        daskperiment.Experiment("")
    ex = closing(daskperiment.Experiment("bad"))
    with pytest.raises(ConfigError, match="Python identifier"):
        ex.parameter("not a name")
    with pytest.raises(ConfigError, match="must be a function"):
        ex(3)

    @ex.result
    def one():
        return 1

    with pytest.raises(ConfigError, match="seed must be an int"):
        one().compute(seed="1")


def test_save_metric_in_a_plain_delayed_task_of_a_trial(ex: Experiment) -> None:
    def plain(x):
        ex.save_metric("plain", epoch=0, value=float(x))
        return x

    @ex.result
    def ident(x):
        return x

    assert ident(dask.delayed(plain)(5)).compute(seed=0) == 5
    assert ex.load_metric("plain", trial_id=1).loc[0, 1] == 5.0


# -- issue 18: steps defined in a loop, steps redefined in a notebook ----------------------------


def test_step_defined_in_a_loop_is_refused_naming_the_step(ex: Experiment) -> None:
    """Without names, the loop's four definitions would be one step (one node, one metric):
    the second definition by the same def is refused, saying how to name them apart."""
    n = ex.parameter("n", default=10)
    defined = []

    def define_in_a_loop() -> None:
        for k in range(4):

            @ex
            def branch(n, k=k):
                return n * k

            defined.append(branch)

    with pytest.raises(ConfigError) as caught:
        define_in_a_loop()
    message = str(caught.value)
    assert "step 'branch' of experiment 'quickstart_pj' is defined again by the same def" in message
    assert '@ex(name=f"branch_{k}")' in message
    assert len(defined) == 1 and defined[0](n).compute() == 0  # the first one, unchanged

    def make(scale: int):
        @ex.result
        def scaled(n):
            return n * scale

        return scaled

    make(1)
    with pytest.raises(ConfigError, match=r"step 'scaled' .* defined again by the same def"):
        make(2)  # a function called again: the same def


def test_steps_named_apart_in_a_loop_are_distinct(ex: Experiment) -> None:
    """With `name=`, each definition is its own step: four nodes, four persisted outputs,
    four metrics in one trial."""
    n = ex.parameter("n", default=10)
    outputs = []
    for k in range(4):

        @ex.persist(name=f"branch_{k}")
        def branch(n, k=k):
            ex.save_metric(f"score_{k}", epoch=0, value=float(n * k))
            return n * k

        outputs.append(branch(n))

    @ex.result(name="total")
    def add_up(*parts):
        return sum(parts)

    assert len({node.key for node in outputs}) == 4
    assert add_up(*outputs).compute(seed=0) == 60
    assert [ex.get_persisted(f"branch_{k}", trial_id=1) for k in range(4)] == [0, 10, 20, 30]
    assert [ex.load_metric(f"score_{k}", trial_id=1).iat[0, 0] for k in range(4)] == [
        0.0,
        10.0,
        20.0,
        30.0,
    ]
    with pytest.raises(ConfigError, match="a step name must be a Python identifier"):
        ex(name="branch-1")(lambda n: n)


_CELL = """
@ex.result
def report(n):
    return n * {factor}
"""


def test_a_notebook_cell_run_again_replaces_its_step(
    ex: Experiment, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A cell run again is compiled again: its step replaces the earlier one, silently when
    the source is the same, with the code-change warning when it was edited."""
    caplog.set_level(logging.WARNING, logger=GRAPH_LOG)
    n = ex.parameter("n", default=3)
    cell = tmp_path / "cell.py"  # a file, so that the step's source can be read, as in Jupyter
    namespace: dict = {"ex": ex}

    def run_cell(factor: int) -> None:
        cell.write_text(_CELL.format(factor=factor))
        exec(compile(cell.read_text(), str(cell), "exec"), namespace)

    run_cell(2)
    run_cell(2)  # the same cell again
    assert messages(caplog, logging.WARNING) == []
    assert namespace["report"](n).compute(seed=0) == 6
    run_cell(5)  # edited and run again
    assert "Code context has been changed: report" in messages(caplog, logging.WARNING)
    assert namespace["report"](n).compute(seed=0) == 15
    assert ex.get_history()["Result"].tolist() == [6, 15]
