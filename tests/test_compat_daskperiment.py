"""daskperiment's documented API, run with `import trialbook as daskperiment`.

Each test follows an example of daskperiment's README, quickstart, tips or API docs (in our own
code): the names and forms a daskperiment user writes work with only the import changed.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

import trialbook as daskperiment
from conftest import Closing
from trialbook import capture
from trialbook.errors import ConfigError, LockedTrialError, NotFoundError, TrialbookError
from trialbook.graph import Experiment
from trialbook.tracking import Run


@pytest.fixture
def ex(store_dir: pathlib.Path) -> Iterator[Experiment]:
    with daskperiment.Experiment(id="compat_pj", backend=store_dir) as ex:
        yield ex


# -- metrics -------------------------------------------------------------------------------------


def test_save_metric_accepts_metric_key_and_key(ex: Experiment) -> None:
    """The quickstart's `save_metric('dummy_score', epoch=i, value=...)`, its keyword spelling
    `metric_key=` (daskperiment's parameter name) and trialbook's `key=`."""

    @ex.result
    def calculate_score(s):
        for i in range(4):
            ex.save_metric("positional", epoch=i, value=100 - i)
            ex.save_metric(metric_key="keyword", epoch=i, value=200 - i)
            ex.save_metric(key="alias", epoch=i, value=300 - i)
        return 10 / s

    s = calculate_score(ex.parameter("s"))
    for value in (2, 5):
        ex.set_parameters(s=value)
        s.compute(seed=0)
    for name, base in [("positional", 100), ("keyword", 200), ("alias", 300)]:
        frame = ex.load_metric(name, trial_id=[1, 2])
        assert frame.columns.name == "Trial ID"
        assert frame.index.name == "Epoch"
        assert frame.columns.tolist() == [1, 2]
        assert frame[1].tolist() == frame[2].tolist() == [base - i for i in range(4)]


def test_save_metric_refuses_two_names_or_none(ex: Experiment) -> None:
    @ex.result
    def both():
        ex.save_metric(metric_key="a", key="b", epoch=0, value=1.0)

    @ex.result
    def neither():
        ex.save_metric(epoch=0, value=1.0)

    with pytest.raises(ConfigError, match="two names for one metric: metric_key='a' and key='b'"):
        both().compute(seed=0)
    with pytest.raises(ConfigError, match="needs the metric's name"):
        neither().compute(seed=0)
    assert ex.get_history()["Success"].tolist() == [False, False]


def test_load_metric_accepts_metric_key_and_key(ex: Experiment) -> None:
    """daskperiment's `load_metric(metric_key, trial_id)`, by position or by keyword."""

    @ex.result
    def fit():
        for i in range(3):
            ex.save_metric("loss", epoch=i, value=1 / (i + 1))

    fit().compute(seed=0)
    by_position = ex.load_metric("loss", 1)
    pd.testing.assert_frame_equal(ex.load_metric(metric_key="loss", trial_id=1), by_position)
    pd.testing.assert_frame_equal(ex.load_metric(key="loss", trial_id=[1]), by_position)
    with pytest.raises(ConfigError, match=r"load_metric\('loss'\) needs trial_id="):
        ex.load_metric("loss")
    with pytest.raises(ConfigError, match=r"load_metric\(\) got two names"):
        ex.load_metric("loss", 1, key="loss")


def test_save_metric_outside_a_trial_names_the_metric(ex: Experiment) -> None:
    with pytest.raises(ConfigError, match=r"save_metric\('loss'\) was called outside a trial"):
        ex.save_metric(metric_key="loss", epoch=0, value=1.0)


def test_metric_key_and_current_trial_id_in_worker_processes(
    store_dir: pathlib.Path, closing: Closing
) -> None:
    """A step computed by another process (`scheduler="processes"`) uses the same names: its
    `ex` is a stand-in that records into the step's run."""
    ex = closing(daskperiment.Experiment("compat_remote", backend=store_dir))
    a = ex.parameter("a", 3)

    @ex.result
    def step(a):
        ex.save_metric(metric_key="m", epoch=0, value=a)
        ex.save_metric(key="k", epoch=1, value=a + 1)
        try:
            ex.trial_id  # noqa: B018
        except LockedTrialError:
            locked = True
        else:
            locked = False
        return ex.current_trial_id, locked

    assert step(a).compute(seed=0, scheduler="processes") == (1, True)
    assert ex.load_metric("m", trial_id=1)[1].tolist() == [3]
    assert ex.load_metric("k", trial_id=1).loc[1, 1] == 4


# -- parameters and decorators -------------------------------------------------------------------


def test_parameter_default_given_positionally(ex: Experiment) -> None:
    """`ex.parameter('b', 2)`, as daskperiment's `parameter(name, default=None)` allows."""
    a = ex.parameter("a")
    b = ex.parameter("b", 2)

    @ex.result
    def add(a, b):
        return a + b

    ex.set_parameters(a=1)
    assert add(a, b).compute(seed=0) == 3
    assert ex.get_parameters(trial_id=1) == {"a": 1, "b": 2}
    assert ex.parameter("b", default=4).compute() == 4  # keyword still works; the new default


def test_parameter_repr_shows_the_value_and_its_type(ex: Experiment) -> None:
    """daskperiment writes `Parameter(a: 1<class 'int'>)` (the value's str, then its type)."""
    a = ex.parameter("a")
    assert repr(a) == "Parameter(a: Undefined)"
    for value, shown in [
        (1, "1<class 'int'>"),
        (0.5, "0.5<class 'float'>"),
        ("x", "x<class 'str'>"),
        (None, "None<class 'NoneType'>"),
    ]:
        ex.set_parameters(a=value)
        assert repr(a) == f"Parameter(a: {shown})"


def test_decorators_with_and_without_parentheses(ex: Experiment) -> None:
    """daskperiment's `@ex`, `@ex()`, `@ex.persist`, `@ex.persist()`, `@ex.result` and
    `@ex.result()` all declare steps."""
    a = ex.parameter("a")

    @ex
    def inc(a):
        return a + 1

    @ex()
    def dec(a):
        return a - 1

    @ex.persist
    def double(a):
        return 2 * a

    @ex.persist()
    def triple(a):
        return 3 * a

    @ex.result
    def add(x, y):
        return x + y

    @ex.result()
    def total(*values):
        return sum(values)

    assert [s.name for s in (inc, dec, double, triple, add, total)] == [
        "inc",
        "dec",
        "double",
        "triple",
        "add",
        "total",
    ]
    ex.set_parameters(a=1)
    assert add(inc(a), dec(a)).compute(seed=0) == 2
    ex.set_parameters(a=3)
    assert total(double(a), triple(a), a).compute(seed=0) == 18
    assert ex.get_persisted("double", trial_id=2) == 6
    assert ex.get_persisted("triple", trial_id=2) == 9
    assert "@ex()\ndef dec(a):" in ex.get_code()


def test_ex_call_refuses_what_is_not_a_function(ex: Experiment) -> None:
    with pytest.raises(ConfigError, match="a step must be a function"):
        ex(3)  # type: ignore[arg-type]


# -- history -------------------------------------------------------------------------------------


def test_history_index_is_named_trial_id(ex: Experiment) -> None:
    """The quickstart's history table: one row per trial, the index named `Trial ID`, the
    columns unnamed; the failed trial's error in `Description`."""
    a = ex.parameter("a")

    @ex.result
    def div(a):
        return 3 / a

    res = div(a)
    for value in (1, 2):
        ex.set_parameters(a=value)
        res.compute(seed=0)
    ex.set_parameters(a=0)
    with pytest.raises(ZeroDivisionError):
        res.compute(seed=0)
    history = ex.get_history()
    assert history.index.name == "Trial ID"
    assert history.index.tolist() == [1, 2, 3]
    assert history.columns.name is None
    assert history.columns.tolist() == [
        "a",
        "Result",
        "Result Type",
        "Success",
        "Finished",
        "Process Time",
        "Description",
        "Seed",
    ]
    assert history["a"].tolist() == [1, 2, 0]
    assert history["Result"].tolist()[:2] == [3.0, 1.5]
    assert np.isnan(history.loc[3, "Result"])
    assert history["Success"].tolist() == [True, True, False]
    assert history.loc[3, "Description"] == "ZeroDivisionError(division by zero)"
    assert str(history).splitlines()[1].startswith("Trial ID")


def test_verbose_history_has_daskperiment_verbose_columns(ex: Experiment) -> None:
    """`get_history(verbose=True)`: the parameters, then `Seed`, `Result`, `Result Type`,
    `Success`, `Finished`, `Process Time`, `Description`; `verbose=False` is the default."""
    a = ex.parameter("a")

    @ex.result
    def inc(a):
        return a + 1

    for value in (1, 3):
        ex.set_parameters(a=value)
        inc(a).compute(seed=7)
    verbose = ex.get_history(verbose=True)
    assert verbose.columns.tolist() == [
        "a",
        "Seed",
        "Result",
        "Result Type",
        "Success",
        "Finished",
        "Process Time",
        "Description",
    ]
    assert verbose.index.name == "Trial ID"
    assert verbose["Seed"].tolist() == [7, 7]
    assert verbose["Result Type"].tolist() == ["<class 'int'>"] * 2
    default = ex.get_history()
    pd.testing.assert_frame_equal(ex.get_history(verbose=False), default)
    pd.testing.assert_frame_equal(verbose, default[verbose.columns])


# -- trial ids -----------------------------------------------------------------------------------


def test_current_trial_id_in_a_trial_and_trial_id_locked(ex: Experiment) -> None:
    """daskperiment's tip: inside a step, `ex.current_trial_id` is the running trial's id and
    reading `ex.trial_id` raises `LockedTrialError`; outside, it is the other way round."""
    seen = []

    @ex.result
    def comp():
        with pytest.raises(LockedTrialError, match="while its trial") as info:
            ex.trial_id  # noqa: B018
        seen.append(info.value.running)
        return ex.current_trial_id + 1

    res = comp()
    assert res.compute(seed=0) == 2
    assert res.compute(seed=0) == 3
    assert seen == [1, 2]
    assert ex.trial_id == 2
    assert ex.get_history()["Result"].tolist() == [2, 3]
    with pytest.raises(ConfigError, match=r"current_trial_id .* was read outside a trial"):
        ex.current_trial_id  # noqa: B018


def test_trial_id_is_readable_again_after_a_failed_trial(ex: Experiment) -> None:
    @ex.result
    def fail():
        raise KeyError(ex.current_trial_id)

    with pytest.raises(KeyError, match="1"):
        fail().compute(seed=0)
    assert ex.trial_id == 1
    assert repr(ex).startswith("Experiment(id: compat_pj, trial_id: 1,")


def test_locked_trial_error_is_a_value_error_of_trialbook() -> None:
    """Code catching daskperiment's `LockedTrialError` (a ValueError) keeps working."""
    err = LockedTrialError("exp", running=4)
    assert isinstance(err, ValueError)
    assert isinstance(err, ConfigError)
    assert isinstance(err, TrialbookError)
    assert err.experiment == "exp"
    assert "ex.current_trial_id" in str(err)
    import trialbook.errors

    assert "LockedTrialError" in trialbook.errors.__all__


# -- environment ---------------------------------------------------------------------------------


def compute_one(ex: Experiment) -> None:
    @ex.result
    def one():
        return 1

    one().compute(seed=0)


def test_get_environment_by_category(ex: Experiment) -> None:
    """daskperiment's categories name one section; `platform` is trialbook's `device`."""
    compute_one(ex)
    env = ex.get_environment(trial_id=1)
    assert ex.get_environment(category="platform") == env["device"]
    assert ex.get_environment(trial_id=1, category="device") == env["device"]
    python = json.loads(ex.get_environment(trial_id=1, category="python"))
    assert python["implementation"] in {"CPython", "PyPy"}
    assert ex.get_environment(category="PYTHON") == ex.get_environment(category="python")
    for category in ("cpu", "requirements", "numpy", "pandas"):
        assert ex.get_environment(trial_id=1, category=category) == env[category]
    with pytest.raises(ConfigError, match=r"unknown environment category 'pyton' \(did you mean"):
        ex.get_environment(category="pyton")


def test_get_environment_of_a_section_not_captured(ex: Experiment) -> None:
    """A trial recorded without an environment snapshot (by another tool, or before one was
    taken) has no section to give: the error says which sections there are."""
    (trial_id,) = ex.store.allocate_run_ids(ex.experiment_id, 1)
    run = Run(trial_id, kind="trial")
    run.start()
    run.finish()
    ex.store.write_runs(ex.experiment_id, [run.to_record()])
    assert ex.get_environment(trial_id=trial_id) == {}
    with pytest.raises(NotFoundError, match=r"has no 'git' section .*; its sections: none"):
        ex.get_environment(trial_id=trial_id, category="git")


def test_get_python_packages_as_pip_freeze(ex: Experiment) -> None:
    compute_one(ex)
    packages = ex.get_python_packages()
    lines = packages.splitlines()
    assert lines
    assert all(line.count("==") == 1 and " " not in line for line in lines)
    import dask

    assert f"dask=={dask.__version__}" in lines
    assert ex.get_python_packages(trial_id=1) == packages
    names = [line.split(" ")[0] for line in capture.environment()["requirements"].splitlines()]
    assert [line.split("==")[0] for line in lines] == names


def test_daskperiment_quickstart_with_the_new_forms(
    closing: Closing, tmp_path: pathlib.Path
) -> None:
    """The quickstart written the way daskperiment's docs write it, end to end."""
    ex = closing(daskperiment.Experiment(id="quickstart_pj", backend=tmp_path / "cache"))
    a = ex.parameter("a")
    b = ex.parameter("b", 2)

    @ex()
    def prepare_data(a, b):
        return a + b

    @ex.result
    def calculate_score(s):
        for i in range(3):
            ex.save_metric(metric_key="dummy_score", epoch=i, value=100 - i)
        return ex.current_trial_id, 10 / s

    s = calculate_score(prepare_data(a, b))
    ex.set_parameters(a=1)
    assert s.compute(seed=0) == (1, pytest.approx(10 / 3))
    ex.set_parameters(b=3)
    assert s.compute(seed=0) == (2, 2.5)
    assert repr(b) == "Parameter(b: 3<class 'int'>)"
    history = ex.get_history(verbose=True)
    assert history.index.name == "Trial ID"
    assert history[["a", "b", "Seed"]].values.tolist() == [[1, 2, 0], [1, 3, 0]]
    metric = ex.load_metric("dummy_score", trial_id=[1, 2])
    assert metric.to_dict() == {1: {0: 100, 1: 99, 2: 98}, 2: {0: 100, 1: 99, 2: 98}}
