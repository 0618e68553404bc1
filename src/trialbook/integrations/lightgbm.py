"""LightGBM: a training callback recording evaluation metrics, parameters and the best
iteration.

:class:`TrialbookCallback` works with ``lgb.train(..., callbacks=[...])``, ``lgb.cv`` and the
scikit-learn estimators (``LGBMClassifier().fit(..., callbacks=[...])``). It writes by the rule
of :mod:`trialbook.integrations.recorder`. A complete example is in ``docs/integrations.md``::

    with TrialbookCallback() as callback:
        booster = lgb.train(params, train, 100, valid_sets=[valid],
                            callbacks=[callback, lgb.early_stopping(5)])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from trialbook.integrations.scope import CallbackScope

if TYPE_CHECKING:
    from trialbook.runs import RunsExperiment

__all__ = ["TrialbookCallback"]


class TrialbookCallback(CallbackScope):
    """Record a LightGBM training: each evaluation metric per iteration as the metric
    ``<data>-<metric>`` (``valid_0-binary_logloss``, ``training-l2``; step = iteration;
    ``lgb.cv`` adds ``<data>-<metric>-std``), the parameters of the training (``params`` if
    given, else those LightGBM hands its callbacks), and at the end the fields ``iterations``
    and, after early stopping, ``best_iteration`` (LightGBM's count, from 1: the metrics' step
    is one less) and ``best_score`` (``<data>-<metric>`` -> value).

    Where it writes follows the rule of :mod:`trialbook.integrations.recorder`: a new run of
    ``experiment`` if given; else the current run of a step, graph trial or task (parameters in
    its field ``lightgbm_params``); else a run of its own in the default store's experiment
    ``lightgbm``, persisted when training ends.

    LightGBM tells a callback neither that early stopping ended training nor that training
    raised. Used as a context manager (``with TrialbookCallback() as callback: ...``), the
    callback closes the run when the block ends: best iteration and score recorded, failed with
    the error if training raised. Outside a ``with`` block it closes a run of its own at the last
    round; a training that stopped earlier is closed when the callback's next training starts.
    The callback runs before early stopping's (``order`` 25), so it sees every round.

    Examples
    --------
    >>> import lightgbm as lgb, numpy as np, trialbook
    >>> X = np.arange(40.0).reshape(20, 2); y = X[:, 0] % 3
    >>> data = lgb.Dataset(X, label=y, params={"verbose": -1})
    >>> with trialbook.create_session("sqlite:///:memory:") as session:
    ...     callback = TrialbookCallback(session.create_experiment("doc_lgb"))
    ...     booster = lgb.train({"num_leaves": 3, "verbose": -1, "min_data_in_leaf": 2}, data, 3,
    ...                         valid_sets=[data], callbacks=[callback])
    ...     run = session.load_experiment("doc_lgb").runs[1]
    ...     steps = run.metrics("training-l2")["step"].tolist()
    ...     run.params.num_leaves, steps, run.fields.iterations
    (3, [0, 1, 2], 3)
    """

    integration = "lightgbm"
    order = 25
    """Where LightGBM calls it among the callbacks: after logging (10) and recording
    evaluations (20), before early stopping (30), which ends training from inside the loop."""
    before_iteration = False

    def __init__(
        self,
        experiment: RunsExperiment | None = None,
        *,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self._params = dict(params) if params is not None else None
        super().__init__(experiment)

    def _reset(self) -> None:
        super()._reset()
        self._model: Any = None
        self._rounds = 0

    def __call__(self, env: Any) -> None:
        """Record the evaluation results of one iteration (LightGBM calls this)."""
        if env.iteration == env.begin_iteration or self._recorder.run is None:
            self._begin(self._params if self._params is not None else env.params)
            self._model = env.model
        run = self._recorder.run
        assert run is not None
        for result in env.evaluation_result_list or ():
            name = f"{result[0]}-{result[1]}"
            run.log_metric(name, float(result[2]), step=env.iteration)
            if len(result) > 4 and result[4] is not None:  # lgb.cv: the standard deviation
                run.log_metric(f"{name}-std", float(result[4]), step=env.iteration)
        self._rounds = env.iteration + 1
        if env.iteration == env.end_iteration - 1 and not self._in_block:
            self._end(None)

    def _end(self, exc: BaseException | None) -> None:
        run = self._recorder.run
        if run is not None:
            run.fields.iterations = self._rounds
            best = getattr(self._model, "best_iteration", 0) or 0
            if best > 0:  # set by early stopping, once training returned
                run.fields.best_iteration = int(best)
                scores = getattr(self._model, "best_score", None) or {}  # none for lgb.cv
                if scores:
                    run.fields.best_score = {
                        f"{data}-{metric}": float(value)
                        for data, metrics in scores.items()
                        for metric, value in metrics.items()
                    }
        self._model = None
        super()._end(exc)
