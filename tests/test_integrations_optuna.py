"""Optuna integration (issue 17): each finished trial is a run of the given experiment
(params, value(s), state, number, times, intermediate values), persisted after each trial;
pruned and failed trials keep their state. Every check reads the store back."""

from __future__ import annotations

import math
import pathlib

import pytest

import trialbook
from conftest import require_module
from trialbook.errors import ConfigError

optuna = require_module("optuna", "optuna")

from trialbook.integrations.optuna import TrialbookCallback  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _objective(trial) -> float:
    """Pruned whenever x is far from 0 once two trials completed; reports 3 steps."""
    x = trial.suggest_float("x", -2, 2)
    depth = trial.suggest_int("max-depth", 1, 3)
    value = 0.0
    for step in range(3):
        value = x**2 + depth / (step + 1)
        trial.report(value, step * 10)
        if trial.should_prune():
            raise optuna.TrialPruned()
    trial.set_user_attr("note", f"depth {depth}")
    return value


def _study(**kw):
    return optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=3),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
        **kw,
    )


def test_each_trial_is_a_run_with_its_values(store_dir: pathlib.Path) -> None:
    study = _study(study_name="tiny")
    with trialbook.create_session(store_dir) as session:
        callback = TrialbookCallback(session.create_experiment("study"))
        study.optimize(_objective, n_trials=8, callbacks=[callback])
    with trialbook.create_session(store_dir) as session:
        runs = list(session.load_experiment("study").runs.values())
    assert len(runs) == 8
    states = {run.tags["state"] for run in runs}
    assert states == {"COMPLETE", "PRUNED"}
    for run, trial in zip(runs, study.trials, strict=True):
        assert run.status == "done"
        assert dict(run.params) == {"x": trial.params["x"], "max_depth": trial.params["max-depth"]}
        assert (run.fields.number, run.fields.study) == (trial.number, "tiny")
        assert run.tags["state"] == trial.state.name
        points = run.metrics("intermediate")
        assert points["step"].tolist() == sorted(trial.intermediate_values)
        assert points["value"].tolist() == [trial.intermediate_values[s] for s in points["step"]]
        assert run.started == trial.datetime_start.timestamp()
        assert run.finished == trial.datetime_complete.timestamp()
        assert run.fields.value == trial.value  # a pruned trial's: its last report
        if trial.state.name == "COMPLETE":
            assert run.fields.user_attrs == {"note": f"depth {trial.params['max-depth']}"}
            assert points["step"].tolist() == [0, 10, 20]
        else:
            assert run.fields.value == points["value"].iloc[-1]
            assert "user_attrs" not in run.fields


def test_the_experiment_is_readable_while_the_study_runs(store_dir: pathlib.Path) -> None:
    seen = []

    def objective(trial) -> float:
        with trialbook.create_session(store_dir) as reader:
            seen.append(len(reader.load_experiment("live").runs))
        return trial.suggest_float("x", 0, 1)

    with trialbook.create_session(store_dir) as session:
        callback = TrialbookCallback(session.create_experiment("live"))
        callback.experiment.persist()
        _study().optimize(objective, n_trials=3, callbacks=[callback])
    assert seen == [0, 1, 2]


def test_failed_trials_are_failed_runs(store_dir: pathlib.Path) -> None:
    """A caught exception and a NaN value fail the trial and its run; an uncaught exception
    ends the study with its own type, the runs before it stored."""

    def objective(trial) -> float:
        if trial.number == 1:
            raise ValueError("diverged")
        if trial.number == 2:
            return math.nan
        if trial.number == 3:
            raise KeyError("missing column")
        return 1.0

    study = _study()
    with trialbook.create_session(store_dir) as session:
        callback = TrialbookCallback(session.create_experiment("failing"))
        with pytest.raises(KeyError, match="missing column"):
            study.optimize(objective, n_trials=5, callbacks=[callback], catch=(ValueError,))
    with trialbook.create_session(store_dir) as session:
        runs = list(session.load_experiment("failing").runs.values())
    assert [(r.fields.number, r.status, r.tags["state"]) for r in runs] == [
        (0, "done", "COMPLETE"),
        (1, "failed", "FAIL"),
        (2, "failed", "FAIL"),
    ]
    for run in runs[1:]:
        assert run.error.type == "TrialState.FAIL"
        assert f"trial {run.fields.number} of study" in run.error.message
        assert "Optuna's log" in run.error.message
    assert runs[0].error is None and runs[0].fields.value == 1.0


def test_several_objectives_are_one_field_each(session: trialbook.Session) -> None:
    def objective(trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0, 1)
        return x, 1 - x

    named = optuna.create_study(directions=["minimize", "maximize"])
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        named.set_metric_names(["error rate", "recall"])
    named.optimize(
        objective, n_trials=2, callbacks=[TrialbookCallback(session.create_experiment("named"))]
    )
    plain = optuna.create_study(directions=["minimize", "maximize"])
    plain.optimize(
        objective, n_trials=1, callbacks=[TrialbookCallback(session.create_experiment("plain"))]
    )
    for run in session.load_experiment("named").runs.values():
        assert run.fields.error_rate == run.params.x
        assert run.fields.recall == 1 - run.params.x
        assert "value" not in run.fields
    (run,) = session.load_experiment("plain").runs.values()
    assert (run.fields.value_0, run.fields.value_1) == (run.params.x, 1 - run.params.x)


def test_a_study_in_a_step_writes_to_its_experiment(store_dir: pathlib.Path) -> None:
    """The callback always adds runs to the experiment it was given, never to the step's run."""

    def tune(run: trialbook.Run) -> None:
        study = _study()
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2, callbacks=[callback])
        run.fields.best = study.best_value

    with trialbook.create_session(store_dir) as session:
        callback = TrialbookCallback(session.create_experiment("trials"))
        outer = session.create_experiment("tuning")
        outer.add_runs(seed=[0])
        outer.execute([tune])
        outer.persist()
    with trialbook.create_session(store_dir) as session:
        (step_run,) = session.load_experiment("tuning").runs.values()
        trials = session.load_experiment("trials").runs
        assert step_run.metric_names() == [] and set(step_run.fields) == {"best"}
        assert len(trials) == 2
        assert step_run.fields.best == min(r.fields.value for r in trials.values())


def test_threads_of_one_study_add_distinct_runs(session: trialbook.Session) -> None:
    callback = TrialbookCallback(session.create_experiment("threads"))
    _study().optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=6, n_jobs=2, callbacks=[callback]
    )
    runs = session.load_experiment("threads").runs
    assert sorted(r.fields.number for r in runs.values()) == list(range(6))
    assert sorted(runs) == list(range(1, 7))


def test_something_else_than_an_experiment_is_refused(session: trialbook.Session) -> None:
    with pytest.raises(ConfigError, match=r"needs a runs experiment.*got 'study' that is a"):
        TrialbookCallback("study")
