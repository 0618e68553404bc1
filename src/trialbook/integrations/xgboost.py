"""XGBoost: a training callback recording evaluation metrics, booster parameters and the best
iteration.

:class:`TrialbookCallback` works with ``xgb.train(..., callbacks=[...])``, the scikit-learn
estimators (``XGBClassifier(callbacks=[...])``) and ``xgb.cv``. It writes by the rule of
:mod:`trialbook.integrations.recorder`. A complete example is in ``docs/integrations.md``::

    with TrialbookCallback() as callback:
        booster = xgb.train(params, dtrain, 50, evals=[(dvalid, "valid")],
                            early_stopping_rounds=5, callbacks=[callback])
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import xgboost

from trialbook.integrations.recorder import plain_params
from trialbook.integrations.scope import CallbackScope

if TYPE_CHECKING:
    from trialbook.runs import RunsExperiment

__all__ = ["TrialbookCallback", "booster_params"]

_SKIPPED_SECTIONS = ("_model_param", "updater")  # learned from the data, or internal


class TrialbookCallback(CallbackScope, xgboost.callback.TrainingCallback):
    """Record an XGBoost training: each evaluation metric per iteration as the metric
    ``<data>-<metric>`` (``valid-logloss``, ``validation_0-error``; step = iteration; ``xgb.cv``
    adds ``<data>-<metric>-std``), the booster's parameters, and at the end the fields
    ``best_iteration`` and ``best_score`` (set by early stopping) and ``iterations``.

    The parameters are ``params`` if given, else those of the booster's configuration
    (:func:`booster_params`). Where they go, and where the metrics go, follows the rule of
    :mod:`trialbook.integrations.recorder`: a new run of ``experiment`` if given; else the
    current run of a step, graph trial or task (parameters in its field ``xgboost_params``);
    else a run of its own in the default store's experiment ``xgboost``. A run of its own is
    persisted when training ends. XGBoost tells a callback nothing when training raises: use the
    callback as a context manager (``with TrialbookCallback() as callback: ...``) and a failure
    leaves the run failed with the error.

    Examples
    --------
    >>> import numpy as np, trialbook, xgboost as xgb
    >>> X = np.arange(40.0).reshape(20, 2); y = X[:, 0] % 3
    >>> data = xgb.DMatrix(X, label=y)
    >>> with trialbook.create_session("sqlite:///:memory:") as session:
    ...     callback = TrialbookCallback(session.create_experiment("doc_xgb"))
    ...     booster = xgb.train({"max_depth": 2}, data, 3, evals=[(data, "train")],
    ...                         callbacks=[callback], verbose_eval=False)
    ...     run = session.load_experiment("doc_xgb").runs[1]
    ...     run.params.max_depth, run.metrics("train-rmse")["step"].tolist(), run.fields.iterations
    (2, [0, 1, 2], 3)
    """

    integration = "xgboost"

    def __init__(
        self,
        experiment: RunsExperiment | None = None,
        *,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self._params = dict(params) if params is not None else None
        super().__init__(experiment)

    def before_training(self, model: Any) -> Any:
        """Start recording: choose the run and record the parameters."""
        params = self._params if self._params is not None else booster_params(model)
        self._begin(params)
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        """Record the last value of each evaluation metric at step ``epoch``."""
        run = self._recorder.run
        if run is None:  # after_training already ran, or training never began here
            return False
        for data, metrics in evals_log.items():
            for metric, values in metrics.items():
                last = values[-1]
                if isinstance(last, tuple):  # xgb.cv: (mean, standard deviation)
                    run.log_metric(f"{data}-{metric}", float(last[0]), step=epoch)
                    run.log_metric(f"{data}-{metric}-std", float(last[1]), step=epoch)
                else:
                    run.log_metric(f"{data}-{metric}", float(last), step=epoch)
        return False

    def after_training(self, model: Any) -> Any:
        """Record the best iteration and score, finish a run of its own and persist it."""
        run = self._recorder.run
        if run is not None:
            best_iteration = model.attr("best_iteration")
            if best_iteration is not None:
                run.fields.best_iteration = int(best_iteration)
                run.fields.best_score = float(model.attr("best_score"))
            rounds = getattr(model, "num_boosted_rounds", None)
            if callable(rounds):  # not on xgb.cv's packed boosters
                run.fields.iterations = int(rounds())
            self._end(None)
        return model

    def _abandoned(self) -> None:
        # XGBoost always calls after_training when training ends well: it raised
        error = RuntimeError(
            "the XGBoost training recorded in this run raised before its end; use the "
            "callback as a context manager to keep the error"
        )
        self._end(error)


def booster_params(model: Any) -> dict[str, Any]:
    """The training parameters of a booster's configuration, one flat dict: each setting by
    its own name (both spellings where XGBoost keeps aliases: ``eta`` and ``learning_rate``),
    numbers as numbers, and ``eval_metric`` (the names of the metrics); what the booster learned
    from the data (``num_feature``, ``base_score``) is left out. Empty for ``xgb.cv``'s boosters.

    Examples
    --------
    >>> import numpy as np, xgboost as xgb
    >>> data = xgb.DMatrix(np.arange(8.0).reshape(4, 2), label=[0, 1, 0, 1])
    >>> params = booster_params(xgb.train({"max_depth": 2, "eta": 0.1}, data, 1))
    >>> params["max_depth"], params["eta"], params["objective"], params["eval_metric"]
    (2, 0.1, 'reg:squarederror', ['rmse'])
    """
    save_config = getattr(model, "save_config", None)
    if not callable(save_config):
        return {}
    learner = json.loads(save_config()).get("learner", {})
    params: dict[str, Any] = {}
    _flatten(learner, params)
    metrics = [m.get("name") for m in learner.get("metrics", ()) if isinstance(m, dict)]
    if metrics:
        params["eval_metric"] = metrics
    return plain_params(params)


def _flatten(section: Mapping[str, Any], into: dict[str, Any]) -> None:
    for key, value in section.items():
        if isinstance(value, Mapping):
            if not key.endswith(_SKIPPED_SECTIONS):
                _flatten(value, into)
        elif isinstance(value, str) and key != "name":
            into.setdefault(key, _number(value))


def _number(text: str) -> Any:
    """``"2"`` -> 2, ``"0.300000012"`` (XGBoost keeps float32) -> 0.3; other text as is."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value):
        return text
    short = float(f"{value:.7g}")  # float32's precision: the value the user gave
    return short if np.float32(short) == np.float32(value) else value
