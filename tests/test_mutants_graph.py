"""The graph's trial recording, history and diffs: behaviour pinned by `make mutate` (target
``graph``: graph/recorder.py, graph/history.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import pathlib
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

import trialbook
from conftest import Closing
from trialbook import capture
from trialbook.errors import ConfigError, NotFoundError, RunNotFoundError
from trialbook.graph import Experiment
from trialbook.graph.history import TrialDiff
from trialbook.storage import open_store
from trialbook.storage.records import ErrorInfo, RunRecord, Status


@pytest.fixture
def ex(store_dir: pathlib.Path) -> Iterator[Experiment]:
    with trialbook.Experiment("mutants_graph", backend=store_dir) as ex:
        yield ex


def write_record(ex: Experiment, **fields: object) -> int:
    """Write a run into the experiment's store as another tool (or an older trialbook) could:
    only the given fields set. Returns its id."""
    (run_id,) = ex.store.allocate_run_ids(ex.experiment_id, 1)
    ex.store.write_runs(ex.experiment_id, [RunRecord(run_id, **fields)])  # type: ignore[arg-type]
    return run_id


def environment_snapshot(ex: Experiment, env: dict[str, str]) -> str:
    """Digest of an environment snapshot stored as trialbook stores one."""
    return ex.store.put_snapshot("environment", capture.environment_text(env))


@dataclasses.dataclass
class Point:
    """A value no safe codec stores and no fingerprint hashes (pickled when allowed)."""

    x: int


@dataclasses.dataclass
class Labelled:
    """A value no safe codec stores (pickled when allowed) that says what identifies it."""

    label: str

    def __trialbook_fingerprint__(self) -> str:
        return self.label


class Vector:
    """A pickled value whose ``==`` is elementwise, so its truth is ambiguous (like arrays)."""

    def __init__(self, *items: float) -> None:
        self.items = list(items)

    def __eq__(self, other: object) -> np.ndarray:  # type: ignore[override]
        return np.asarray(self.items) == np.asarray(getattr(other, "items", other))

    __hash__ = None  # type: ignore[assignment]


# -- TrialDiff -----------------------------------------------------------------------------------


def test_trial_diff_text_when_nothing_changed() -> None:
    """Every part of an empty diff reads "unchanged", and the diff is false."""
    diff = TrialDiff((1, 2))
    assert not diff
    assert str(diff) == (
        "trial 1 -> trial 2\n"
        "parameters: unchanged\n"
        "result: unchanged\n"
        "code: unchanged\n"
        "environment: unchanged"
    )


def test_trial_diff_is_true_when_any_one_part_changed() -> None:
    """Any one changed part (parameters, result, code or environment) makes a diff true."""
    assert TrialDiff((1, 2), parameters={"a": (1, 2)})
    assert TrialDiff((1, 2), result=(1, 2))
    assert TrialDiff((1, 2), code=["-x", "+y"])
    assert TrialDiff((1, 2), environment={"python": ["-3.11", "+3.12"]})


def test_trial_diff_text_of_code_and_environment() -> None:
    """Code lines are indented by two spaces, each changed environment section is shown with its
    title (or its name when it has none) and its lines indented by four; trailing spaces are
    dropped, leading ones kept."""
    diff = TrialDiff(
        (3, 4),
        code=["@@ -1 +1 @@", "-    return 1", "+    return 2", " "],
        environment={
            "python": ["@@ -1 +1 @@", "-3.11", "+3.12"],
            "custom": ["-a", "+b"],
        },
    )
    assert str(diff) == (
        "trial 3 -> trial 4\n"
        "parameters: unchanged\n"
        "result: unchanged\n"
        "code:\n"
        "  @@ -1 +1 @@\n"
        "  -    return 1\n"
        "  +    return 2\n"
        "\n"
        "environment:\n"
        "  Python information has been changed\n"
        "    @@ -1 +1 @@\n"
        "    -3.11\n"
        "    +3.12\n"
        "  custom\n"
        "    -a\n"
        "    +b"
    )


# -- diff ----------------------------------------------------------------------------------------


def test_diff_of_parameters_set_in_one_trial_only(ex: Experiment) -> None:
    """A parameter only one trial has is shown as <unset> in the other, even when its value is
    None; parameters of both trials come first, in the first trial's order."""
    first = write_record(ex, kind="trial", params={"a": 1, "gone": None})
    second = write_record(ex, kind="trial", params={"a": 1, "new": None, "b": 2})
    diff = ex.diff(first, second)
    assert list(diff.parameters) == ["gone", "new", "b"]
    assert str(diff).splitlines()[1:5] == [
        "parameters:",
        "  gone: None -> <unset>",
        "  new: <unset> -> None",
        "  b: <unset> -> 2",
    ]


def test_diff_with_a_trial_recorded_without_code(ex: Experiment) -> None:
    """A trial without a code snapshot diffs as empty code: every line of the other is added."""
    one = ex.parameter("one")

    @ex.result
    def ident(one):
        return one

    ex.set_parameters(one=1)
    ident(one).compute(seed=0)
    bare = write_record(ex, kind="trial", params={"one": 1}, status=Status.DONE.value, result=1)
    code = ex.diff(bare, 1).code
    assert code[0].startswith("@@ -0,0 +1")
    assert code[1:] and all(line.startswith("+") for line in code[1:])
    assert "+    return one" in code
    assert [line.replace("+", "-", 1) for line in code[1:]] == ex.diff(1, bare).code[1:]


def test_diff_of_environments(ex: Experiment) -> None:
    """Two trials recorded with other environments: the changed sections, their diff lines from
    the first trial's to the second's."""
    old = {"device": "box", "requirements": "numpy 1.0 /site\npandas 2.1 /site"}
    new = {"device": "box", "requirements": "numpy 1.0 /site\npandas 2.2 /site"}
    first = write_record(ex, kind="trial", environment=environment_snapshot(ex, old))
    second = write_record(ex, kind="trial", environment=environment_snapshot(ex, new))
    diff = ex.diff(first, second)
    assert diff.environment == {
        "requirements": ["@@ -2 +2 @@", "-pandas 2.1 /site", "+pandas 2.2 /site"]
    }
    assert ex.diff(second, first).environment == {
        "requirements": ["@@ -2 +2 @@", "-pandas 2.2 /site", "+pandas 2.1 /site"]
    }
    assert "  Installed Python packages have been changed" in str(diff).splitlines()
    assert ex.diff(first, first).environment == {}


def test_diff_of_results_of_failed_unfinished_and_unstored_trials(ex: Experiment) -> None:
    """A failed trial's result shows as its error, an unfinished run's as its status, a result
    that could not be stored as that fact."""
    x = ex.parameter("x")

    @ex.result
    def inverse(x):
        if x == "point":
            return Point(1)  # no safe codec: the trial is recorded, its result is not
        return 1 / x

    ex.set_parameters(x=2)
    inverse(x).compute(seed=0)
    ex.set_parameters(x=0)
    with pytest.raises(ZeroDivisionError):
        inverse(x).compute(seed=0)
    ex.set_parameters(x="point")
    assert inverse(x).compute(seed=0) == Point(1)
    pending = write_record(ex, kind="job")
    assert ex.diff(1, 2).result == (0.5, "ZeroDivisionError(division by zero)")
    assert ex.diff(2, pending).result == ("ZeroDivisionError(division by zero)", "pending")
    assert ex.diff(1, 3).result == (0.5, f"<not stored: {Point!s}>")


def test_diff_compares_unhashable_results_with_equality(
    tmp_path: pathlib.Path, closing: Closing
) -> None:
    """Results no fingerprint hashes (pickled objects) are compared with ``==``, also with a
    result that has a fingerprint (a Fraction equal to an int is no change); results whose
    ``==`` has no single truth are reported as changed."""
    from fractions import Fraction

    store = closing(open_store(tmp_path / "store", allow_pickle=True))
    ex = Experiment("unhashable", backend=store)
    n = ex.parameter("n")

    @ex.result
    def make(n):
        if n == "vector":
            return Vector(1.0, 2.0)
        if n == "fraction":
            return Fraction(4, 2)
        if n == "int":
            return 2
        return Point(n)

    for value in (1, 1, 2, "vector", "vector", "fraction", "int"):
        ex.set_parameters(n=value)
        make(n).compute(seed=0)
    assert ex.diff(1, 2).result is None
    assert ex.diff(1, 3).result == (Point(1), Point(2))
    assert ex.diff(4, 5).result is not None
    assert ex.diff(6, 7).result is None
    assert ex.diff(7, 6).result is None
    assert ex.diff(6, 7).parameters == {"n": ("fraction", "int")}


# -- history -------------------------------------------------------------------------------------


def test_history_of_a_trial_whose_result_was_not_stored(ex: Experiment) -> None:
    """The trial succeeded, its result has no safe codec: Result is NaN, Result Type names the
    type that could not be stored."""

    @ex.result
    def point():
        return Point(3)

    point().compute(seed=0)
    row = ex.get_history().loc[1]
    assert row["Success"]
    assert math.isnan(row["Result"])
    assert row["Result Type"] == str(Point)


def test_history_of_a_failed_trial_among_text_results(ex: Experiment) -> None:
    """A failed trial's Result and Result Type are missing (NaN) even in a column of texts, and
    its Description is its error; a parameter a run does not have is missing too."""
    word = ex.parameter("word")

    @ex.result
    def shout(word):
        return word.upper()

    ex.set_parameters(word="hi")
    shout(word).compute(seed=0)
    ex.set_parameters(word=None)
    with pytest.raises(AttributeError):
        shout(word).compute(seed=0)
    write_record(ex, kind="job", params={"other": "x"})
    history = ex.get_history()
    assert history["Result"].tolist()[0] == "HI"
    failed = history["Result"].tolist()[1]
    assert isinstance(failed, float) and math.isnan(failed)
    assert history["Result Type"].tolist()[0] == "<class 'str'>"
    assert pd.isna(history["Result Type"].tolist()[1])
    assert history["Description"].tolist()[1].startswith("AttributeError(")
    missing = history["other"].tolist()[0]
    assert isinstance(missing, float) and math.isnan(missing)
    assert history["other"].tolist()[2] == "x"


def test_history_times(ex: Experiment) -> None:
    """Process Time is finished - started (NaT unless both are known); Finished is the finish
    time in local time (NaT when unknown)."""
    done = write_record(ex, kind="job", started=1000.0, finished=1002.5)
    running = write_record(ex, kind="job", started=1000.0)
    finished_only = write_record(ex, kind="job", finished=1003.0)
    history = ex.get_history()
    assert history.loc[done, "Process Time"] == pd.Timedelta(seconds=2.5)
    assert pd.isna(history.loc[running, "Process Time"])
    assert pd.isna(history.loc[finished_only, "Process Time"])
    assert history.loc[done, "Finished"] == pd.Timestamp(dt.datetime.fromtimestamp(1002.5))
    assert history.loc[finished_only, "Finished"] == pd.Timestamp(dt.datetime.fromtimestamp(1003.0))
    assert pd.isna(history.loc[running, "Finished"])


# -- persisted values ----------------------------------------------------------------------------


def test_persisted_steps_named_when_one_is_missing(ex: Experiment) -> None:
    """Asking a trial for a step it did not persist lists the steps it persisted, or "none"."""

    @ex.persist
    def first():
        return 1

    @ex.persist
    def second(x):
        return x + 1

    @ex.result
    def third(x):
        return x

    third(second(first())).compute(seed=0)
    with pytest.raises(NotFoundError) as caught:
        ex.get_persisted("third", trial_id=1)
    assert "(it persisted: 'first', 'second');" in str(caught.value)
    bare = write_record(ex, kind="trial")
    with pytest.raises(NotFoundError) as caught:
        ex.get_persisted("first", trial_id=bare)
    assert str(caught.value) == (
        f"trial {bare} of experiment 'mutants_graph' has no persisted step 'first' "
        "(it persisted: none); decorate the step with @ex.persist"
    )


def test_persisted_float_nan(ex: Experiment) -> None:
    """A persisted output holding NaN is stored and read back (NaN is a valid float)."""

    @ex.persist
    def values():
        return [1.0, float("nan")]

    @ex.result
    def count(xs):
        return len(xs)

    assert count(values()).compute(seed=0) == 2
    first, second = ex.get_persisted("values", trial_id=1)
    assert first == 1.0 and math.isnan(second)


# -- cache ---------------------------------------------------------------------------------------


def test_cache_does_not_apply_to_inputs_without_a_fingerprint(ex: Experiment) -> None:
    """A cached step whose inputs cannot be fingerprinted runs in every trial: nothing says
    its inputs are the same."""
    n = ex.parameter("n")
    calls = []

    @ex
    def box(n):
        return Point(n)

    @ex.persist(cache=True)
    def unbox(p):
        calls.append(p.x)
        return p.x

    @ex.result
    def ident(x):
        return x

    node = ident(unbox(box(n)))
    for value in (1, 2):
        ex.set_parameters(n=value)
        assert node.compute(seed=0) == value
    assert calls == [1, 2]


def test_cache_reuses_a_pickled_output(tmp_path: pathlib.Path, closing: Closing) -> None:
    """With a store that allows pickle, a cached output that needs pickle (and has a
    fingerprint) is reused."""
    store = closing(open_store(tmp_path / "store", allow_pickle=True))
    ex = Experiment("pickled_cache", backend=store)
    calls = []

    @ex.persist(cache=True)
    def make():
        calls.append(1)
        return Labelled("five")

    @ex.result
    def ident(p):
        return p

    assert ident(make()).compute(seed=0) == Labelled("five")
    assert ident(make()).compute(seed=0) == Labelled("five")
    assert calls == [1]
    assert ex.get_persisted("make", trial_id=2) == Labelled("five")


# -- environment ---------------------------------------------------------------------------------


def test_missing_environment_section_of_a_trial(ex: Experiment) -> None:
    """The error names the trial, the section, when that section is captured (optional
    sections only) and the sections the trial has."""
    env = {"device": "box", "requirements": "numpy 1.0 /site"}
    trial = write_record(ex, kind="trial", environment=environment_snapshot(ex, env))
    with pytest.raises(NotFoundError) as caught:
        ex.get_environment(trial, category="gpu")
    assert str(caught.value) == (
        f"the environment of trial {trial} of experiment 'mutants_graph' has no 'gpu' section "
        "(it is captured only when nvidia-smi finds NVIDIA GPUs); "
        "its sections: 'device', 'requirements'"
    )
    with pytest.raises(NotFoundError) as caught:
        ex.get_environment(trial, category="cpu")
    assert str(caught.value) == (
        f"the environment of trial {trial} of experiment 'mutants_graph' has no 'cpu' "
        "section; its sections: 'device', 'requirements'"
    )


def test_missing_environment_section_of_this_process(ex: Experiment) -> None:
    """Without a trial id the error is about this process's environment."""
    env = capture.environment()
    absent = [s for s in ("gpu", "conda", "git", "scipy") if s not in env]
    for section in absent[:1]:  # every optional section may be there on some machine
        with pytest.raises(NotFoundError) as caught:
            ex.get_environment(category=section)
        assert str(caught.value).startswith(f"this process's environment has no {section!r}")


def test_unknown_environment_category_lists_the_known_ones(ex: Experiment) -> None:
    """The error lists every category get_environment knows."""
    with pytest.raises(ConfigError) as caught:
        ex.get_environment(category="weather")
    known = ", ".join(repr(c) for c in [*capture.SECTION_TITLES, "platform"])
    assert str(caught.value) == (
        f"unknown environment category 'weather'; expected one of: {known}"
    )


def test_python_packages_of_a_recorded_trial(ex: Experiment) -> None:
    """The packages of the trial asked for (not of this process), ``name==version`` each; an
    unknown trial is an error."""
    env = {"requirements": "numpy 1.0 (/site)\nold-thing 0.1 (/site)\n"}
    trial = write_record(ex, kind="trial", environment=environment_snapshot(ex, env))
    assert ex.get_python_packages(trial) == "numpy==1.0\nold-thing==0.1"
    with pytest.raises(RunNotFoundError):
        ex.get_python_packages(trial + 1)


def test_error_info_in_history_description(ex: Experiment) -> None:
    """A run written with an error shows it as ``Type(message)`` in Description."""
    failed = write_record(
        ex,
        kind="job",
        status=Status.FAILED.value,
        error=ErrorInfo("KeyError", "'x'", ""),
    )
    assert ex.get_history().loc[failed, "Description"] == "KeyError('x')"


# -- steps run outside the trial's thread (a scheduler that is not Dask's local one) -------------


def test_steps_run_by_an_executor_are_recorded(
    ex: Experiment, caplog: pytest.LogCaptureFixture
) -> None:
    """With ``compute(scheduler=<executor>)`` the steps run as for a remote scheduler; the
    trial still gets their metrics, persisted outputs and purity check (an impure step is
    named; a step whose output has no fingerprint is not checked)."""
    import concurrent.futures
    import logging

    a = ex.parameter("a")
    draws = iter([0.25, 0.5, 0.75])

    @ex.persist
    def noisy(a):
        ex.save_metric("seen", epoch=a, value=a * 1.5)
        return a + next(draws)

    @ex
    def boxed(x):
        return Point(int(x))  # no fingerprint: never reported as impure

    @ex.result
    def total(x, p):
        return x + p.x

    node = total(noisy(a), boxed(a))
    ex.set_parameters(a=1)
    caplog.set_level(logging.WARNING, logger="trialbook.graph")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert node.compute(seed=0, scheduler=pool) == 2.25
        assert caplog.messages == []
        assert node.compute(seed=0, scheduler=pool) == 2.5
    assert caplog.messages == [
        "Experiment step result is changed with the same input: "
        "(step: noisy, args: (1,), kwargs: {})"
    ]
    assert [ex.get_persisted("noisy", trial_id=t) for t in (1, 2)] == [1.25, 1.5]
    assert ex.load_metric("seen", trial_id=[1, 2]).loc[1].tolist() == [1.5, 1.5]
    with pytest.raises(NotFoundError, match="it persisted: 'noisy'"):
        ex.get_persisted("boxed", trial_id=1)


# -- one trial at a time -------------------------------------------------------------------------


def test_a_trial_computed_inside_a_running_trial_is_refused(ex: Experiment) -> None:
    """A step that computes another trial of its own experiment gets a ConfigError naming the
    running trial; the outer trial fails with it and is recorded, and the experiment computes
    trials again afterwards."""

    @ex.result
    def inner():
        return 1

    @ex.result
    def outer():
        return inner().compute(seed=0)

    with pytest.raises(ConfigError) as caught:
        outer().compute(seed=0)
    assert str(caught.value) == "experiment 'mutants_graph' is already computing trial 1"
    assert inner().compute(seed=0) == 1
    history = ex.get_history()
    assert history["Success"].tolist() == [False, True]
    assert history.loc[1, "Description"].startswith("ConfigError(experiment 'mutants_graph' is")


def test_an_unstored_result_is_logged(ex: Experiment, caplog: pytest.LogCaptureFixture) -> None:
    """A result without a safe codec is not stored, with a warning that names the trial."""
    import logging

    @ex.result
    def point():
        return Point(3)

    caplog.set_level(logging.WARNING, logger="trialbook.graph")
    assert point().compute(seed=0) == Point(3)
    (message,) = caplog.messages
    assert message.startswith("Result of trial 1 is not stored: cannot store a value of type ")


# -- seeds, code, keyword arguments --------------------------------------------------------------


def test_a_generated_seed_is_logged_and_recorded(
    ex: Experiment, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a seed the trial's generated seed is logged, as a number, and recorded."""
    import logging
    import re

    @ex.result
    def one():
        return 1

    caplog.set_level(logging.INFO, logger="trialbook.graph")
    one().compute()
    (logged,) = [m for m in caplog.messages if m.startswith("Random seed is not provided")]
    found = re.fullmatch(
        r"Random seed is not provided, initialized with generated seed: (\d+)", logged
    )
    assert found is not None
    assert ex.get_history().loc[1, "Seed"] == int(found[1])


def test_each_trial_code_file_holds_its_own_code(ex: Experiment) -> None:
    """A directory store gets code/<experiment>_<trial>.py per trial, with the code of that
    trial, across a code change; a new Experiment object on the store knows the changed step."""

    @ex.result
    def value():
        return 1

    value().compute(seed=0)

    @ex.result
    def value():  # the step's code changes between trials
        return 2

    value().compute(seed=0)
    code = ex.store.directory / "code"
    first = (code / "mutants_graph_1.py").read_text()
    second = (code / "mutants_graph_2.py").read_text()
    assert "return 1" in first and "return 2" not in first
    assert "return 2" in second and "return 1" not in second
    assert first == ex.get_code(trial_id=1) + "\n"


def test_steps_get_their_keyword_arguments(ex: Experiment) -> None:
    """A step called with keyword arguments gets them, in a trial and in plain Dask."""
    import dask

    a = ex.parameter("a")

    @ex
    def scale(x, *, by):
        return x * by

    @ex.result
    def shift(x, *, plus=0):
        return x + plus

    node = shift(scale(a, by=10), plus=1)
    ex.set_parameters(a=2)
    assert node.compute(seed=0) == 21
    assert dask.compute(node, scheduler="sync")[0] == 21  # not a trial: the steps run as is


def test_steps_with_inputs_without_a_fingerprint_are_not_checked_for_purity(
    ex: Experiment, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing says two inputs without a fingerprint are the same: another output is no
    purity warning."""
    import logging

    draws = iter([0.25, 0.5])

    @ex
    def box():
        return Point(1)

    @ex.result
    def draw(p):
        return p.x + next(draws)

    caplog.set_level(logging.WARNING, logger="trialbook.graph")
    assert draw(box()).compute(seed=0) == 1.25
    assert draw(box()).compute(seed=0) == 1.5
    assert caplog.messages == []


def test_a_cache_hit_is_the_latest_trial_to_hold_the_output(
    ex: Experiment, caplog: pytest.LogCaptureFixture
) -> None:
    """A trial that reuses a cached output stores it too, and becomes the trial the next one
    reuses it from."""
    import logging

    calls = []

    @ex.persist(cache=True)
    def expensive():
        calls.append(1)
        return [1, 2]

    @ex.result
    def size(xs):
        return len(xs)

    caplog.set_level(logging.INFO, logger="trialbook.graph")
    for _ in range(3):
        assert size(expensive()).compute(seed=0) == 2
    assert calls == [1]
    reused = [m for m in caplog.messages if m.startswith("Reusing")]
    assert reused == [
        "Reusing expensive from trial 1 (same code and inputs)",
        "Reusing expensive from trial 2 (same code and inputs)",
    ]


def test_a_pickle_store_records_pickled_parameters_and_results(
    tmp_path: pathlib.Path, closing: Closing
) -> None:
    """With a store that allows pickle, values without a safe codec are stored with it; a
    result that cannot be pickled either is not stored, and the trial (with its pickled
    parameter) still is."""
    store = closing(open_store(tmp_path / "store", allow_pickle=True))
    ex = Experiment("pickled", backend=store)
    p = ex.parameter("p")

    @ex.result
    def shifted(p):
        return Point(p.x + 1)

    @ex.result
    def adder(p):
        return lambda y: y + p.x

    ex.set_parameters(p=Point(1))
    assert shifted(p).compute(seed=0) == Point(2)
    assert adder(p).compute(seed=0)(1) == 2
    history = ex.get_history()
    assert history["Result"].tolist()[0] == Point(2)
    assert history["Result Type"].tolist() == [str(Point), "<class 'function'>"]
    assert history["p"].tolist() == [Point(1), Point(1)]


# -- metrics and the empty history ---------------------------------------------------------------


def test_load_metric_across_trials_with_and_without_it(ex: Experiment) -> None:
    """A trial without the metric gets a float column of NaN, the trials after it still get
    theirs, and an epoch saved twice keeps its last value."""
    n = ex.parameter("n")

    @ex.result
    def fit(n):
        if n:
            ex.save_metric("loss", epoch=0, value=1.0)
            ex.save_metric("loss", epoch=0, value=0.5)  # the same epoch again: the last wins
            ex.save_metric("loss", epoch=1, value=0.25)
        return n

    for value in (0, 1):
        ex.set_parameters(n=value)
        fit(n).compute(seed=0)
    frame = ex.load_metric("loss", trial_id=[1, 2])
    assert frame.columns.tolist() == [1, 2]
    assert str(frame[1].dtype) == "float64" and frame[1].isna().all()
    assert frame[2].tolist() == [0.5, 0.25]


def test_load_metric_error_lists_the_trials_and_the_metrics(ex: Experiment) -> None:
    """No trial has the metric: the error names the trials asked for and the metrics there
    are (or "none")."""

    @ex.result
    def fit():
        return 1

    fit().compute(seed=0)
    fit().compute(seed=0)
    with pytest.raises(NotFoundError) as caught:
        ex.load_metric("loss", trial_id=[1, 2])
    assert str(caught.value) == (
        "no metric 'loss' in trial(s) 1, 2 of experiment 'mutants_graph' (its metrics: none)"
    )

    @ex.result
    def fit2():
        ex.save_metric("acc", epoch=0, value=1.0)
        ex.save_metric("auc", epoch=0, value=1.0)

    fit2().compute(seed=0)
    with pytest.raises(NotFoundError) as caught:
        ex.load_metric("loss", trial_id=1)
    assert "(its metrics: 'acc', 'auc')" in str(caught.value)


def test_empty_history_has_an_integer_trial_id_index(ex: Experiment) -> None:
    """Before any trial the history is empty, with the same integer Trial ID index."""
    assert str(ex.get_history().index.dtype) == "int64"
    assert str(ex.get_history(verbose=True).index.dtype) == "int64"


def test_unknown_trial_error_names_the_experiment_and_its_trials(ex: Experiment) -> None:
    """Asking for a trial the experiment does not have names the experiment and the ids it
    has."""

    @ex.result
    def one():
        return 1

    one().compute(seed=0)
    one().compute(seed=0)
    with pytest.raises(RunNotFoundError) as caught:
        ex.diff(1, 7)
    assert str(caught.value).startswith(
        "experiment 'mutants_graph' has no run with id 7 (it has 2 runs, ids 1..2)"
    )
