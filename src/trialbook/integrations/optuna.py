"""Optuna: a study callback recording each finished trial as a run of a runs experiment.

Pass :class:`TrialbookCallback` to ``study.optimize(..., callbacks=[...])``: every trial that
ends (complete, pruned, or failed where ``catch=`` lets the study go on) becomes a run, and
the experiment is persisted after each one, so ``trialbook runs``, the UI's parallel coordinates
and other processes see the study while it runs. A complete example is in
``docs/integrations.md``::

    with trialbook.create_session() as session:
        callback = TrialbookCallback(session.create_experiment("study"))
        study.optimize(objective, n_trials=20, callbacks=[callback])
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import optuna

from trialbook.errors import ConfigError
from trialbook.integrations.recorder import param_name, plain_params
from trialbook.runs import RunsExperiment
from trialbook.storage.records import ErrorInfo, Status

if TYPE_CHECKING:
    from trialbook.tracking import Run

__all__ = ["TrialbookCallback"]


class TrialbookCallback:
    """Record each finished trial of a study as a new run of ``experiment`` (a runs
    experiment, ``session.create_experiment(...)``), persisted at once.

    A run holds the trial's parameters as its params; the field ``value`` (a pruned trial's is
    its last reported value, as Optuna keeps it; several objectives:
    one field per objective, named by ``study.set_metric_names`` or ``value_0``, ``value_1``...),
    the fields ``number``, ``study`` and, if any, ``user_attrs``; the tag ``state``
    (``COMPLETE``, ``PRUNED`` or ``FAIL``); the values reported with ``trial.report`` as the
    metric ``intermediate`` (step = the reported step); and the trial's start and end as the
    run's. A pruned trial's run is done; a failed trial's run is failed (Optuna keeps no
    exception: its message is in Optuna's log). Optuna calls callbacks only for trials that let
    the study go on: a trial whose exception is not in ``study.optimize(catch=...)`` ends the
    study with that exception, before any callback.

    Raises
    ------
    ConfigError
        If ``experiment`` is not a runs experiment.

    Examples
    --------
    >>> import optuna, trialbook
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    >>> with trialbook.create_session("sqlite:///:memory:") as session:
    ...     callback = TrialbookCallback(session.create_experiment("doc_optuna"))
    ...     study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=3,
    ...                    callbacks=[callback])
    ...     runs = session.load_experiment("doc_optuna").runs.values()
    ...     [(r.fields.number, r.tags["state"], r.fields.value == r.params.x ** 2) for r in runs]
    [(0, 'COMPLETE', True), (1, 'COMPLETE', True), (2, 'COMPLETE', True)]
    """

    def __init__(self, experiment: RunsExperiment) -> None:
        if not isinstance(experiment, RunsExperiment):
            msg = (
                f"TrialbookCallback needs a runs experiment to add one run per trial to (got "
                f"{experiment!r} that is a {type(experiment)}); pass "
                f"session.create_experiment('<name>')"
            )
            raise ConfigError(msg)
        self.experiment = experiment
        self._lock = threading.Lock()  # study.optimize(n_jobs=...) calls from its threads

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Add the run of ``trial`` and persist the experiment (Optuna calls this)."""
        with self._lock:
            run = self.experiment.add_run(**plain_params(trial.params))
            run.start()
            _record(run, study, trial)
            run.finish()
            if trial.state == optuna.trial.TrialState.FAIL:
                run.status = Status.FAILED.value
                run.error = ErrorInfo(
                    "TrialState.FAIL",
                    f"trial {trial.number} of study {study.study_name!r} failed; Optuna keeps "
                    "no exception: its message is in Optuna's log",
                )
            if trial.datetime_start is not None:
                run.started = trial.datetime_start.timestamp()
            if trial.datetime_complete is not None:
                run.finished = trial.datetime_complete.timestamp()
            self.experiment.persist()


def _record(run: Run, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    run.tags["state"] = trial.state.name
    run.fields.update(number=trial.number, study=study.study_name)
    values = trial.values or []
    if len(study.directions) == 1:
        if values:
            run.fields.value = float(values[0])
    else:
        names = _objective_names(study)
        run.fields.update({name: float(v) for name, v in zip(names, values, strict=False)})
    if trial.user_attrs:
        run.fields.user_attrs = plain_params(trial.user_attrs)
    if trial.intermediate_values:
        steps = sorted(trial.intermediate_values)
        run.log_metrics("intermediate", [trial.intermediate_values[s] for s in steps], steps=steps)


def _objective_names(study: optuna.Study) -> list[str]:
    names: Any = getattr(study, "metric_names", None)
    if names:
        return [param_name(name) for name in names]
    return [f"value_{i}" for i in range(len(study.directions))]
