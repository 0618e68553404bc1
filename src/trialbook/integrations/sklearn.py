"""scikit-learn: a fitted hyperparameter search as runs, and a single fitted model.

:func:`log_search` turns a fitted ``GridSearchCV`` or ``RandomizedSearchCV`` (any search with
``cv_results_``) into one run per candidate of a runs experiment; :func:`log_estimator` records
one fitted model (its parameters, the model itself through :meth:`trialbook.tracking.Run.log_model`,
and the metrics you computed) in the run chosen by the rule of
:mod:`trialbook.integrations.recorder`. A complete example is in ``docs/integrations.md``::

    search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=3).fit(X, y)
    with trialbook.create_session() as session:
        runs = log_search(search, session.create_experiment("search"))
        log_estimator(search.best_estimator_, metrics={"accuracy": 0.97})
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from trialbook.errors import ConfigError
from trialbook.integrations.recorder import Recorder, plain_params

if TYPE_CHECKING:
    from trialbook.runs import RunsExperiment
    from trialbook.tracking import Run

__all__ = ["log_estimator", "log_search"]

_PARAM_COLUMN = re.compile(r"param_")


def log_search(search: Any, experiment: RunsExperiment) -> list[Run]:
    """Add one run per candidate of the fitted ``search`` to ``experiment`` and persist it.

    Each run's parameters are the candidate's (``clf__C``, ``max_depth``...; values that are
    not plain, such as estimators, are kept as their ``repr``). Its fields are every number
    ``cv_results_`` has for the candidate: each split's test score per scorer
    (``split0_test_score``, and ``split0_train_score`` with ``return_train_score=True``), their
    ``mean_*`` / ``std_*`` and ``rank_test_*``, and the mean and standard deviation of fit and
    score times; plus ``candidate`` (its index in ``cv_results_``) and ``search`` (the class of
    the search). When the search chose a best candidate (``best_index_``), every run gets the
    tag ``best``, true for that one.

    Returns
    -------
    list of Run
        The new runs, in the order of ``cv_results_``.

    Raises
    ------
    ConfigError
        If ``search`` has no ``cv_results_`` (it is not a fitted search).

    Examples
    --------
    >>> import trialbook
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import GridSearchCV
    >>> X, y = load_iris(return_X_y=True)
    >>> search = GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.01, 1.0]}, cv=2)
    >>> search = search.fit(X, y)
    >>> with trialbook.create_session("sqlite:///:memory:") as session:
    ...     runs = log_search(search, session.create_experiment("doc_search"))
    ...     [(dict(r.params), r.tags["best"], r.fields.rank_test_score) for r in runs]
    [({'C': 0.01}, False, 2), ({'C': 1.0}, True, 1)]
    """
    results = getattr(search, "cv_results_", None)
    if not isinstance(results, Mapping) or "params" not in results:
        msg = (
            f"log_search needs a fitted search with cv_results_, such as GridSearchCV or "
            f"RandomizedSearchCV (got {type(search).__name__} without cv_results_); call "
            f"search.fit(X, y) first"
        )
        raise ConfigError(msg)
    columns = {
        name: values
        for name, values in results.items()
        if name != "params" and not _PARAM_COLUMN.match(name)
    }
    best = getattr(search, "best_index_", None)  # none: several scorers and no refit
    kind = type(search).__name__
    runs = []
    for index, candidate in enumerate(results["params"]):
        run = experiment.add_run(**plain_params(candidate))
        run.start()
        run.fields.update({name: _number(values[index]) for name, values in columns.items()})
        run.fields.update(candidate=index, search=kind)
        if best is not None:
            run.tags["best"] = index == int(best)
        run.finish()
        runs.append(run)
    experiment.persist()
    return runs


def _number(value: Any) -> Any:
    item = getattr(value, "item", None)  # NumPy scalars become Python numbers
    return item() if callable(item) else value


def log_estimator(
    estimator: Any,
    experiment: RunsExperiment | None = None,
    *,
    metrics: Mapping[str, float] | None = None,
    name: str = "model",
    trusted: Iterable[str] = (),
) -> Run:
    """Record the fitted ``estimator``: its parameters, the model as the artifact ``name``, and
    ``metrics`` (name -> number, each one point of a metric).

    The parameters are ``estimator.get_params(deep=False)`` made storable (a pipeline's steps
    become their ``repr``). The model is logged with :meth:`~trialbook.tracking.Run.log_model`:
    through skops, which refuses types it does not trust unless they are named in ``trusted``.
    The run is chosen by the rule of :mod:`trialbook.integrations.recorder`: a new run of
    ``experiment`` if given, else the current run of a step, graph trial or task (the parameters
    then go to its field ``sklearn_params``), else a run of its own in the default store's
    experiment ``sklearn``. A failure while logging marks a run of its own failed with the error,
    which propagates.

    Returns
    -------
    Run
        The run written into.

    Raises
    ------
    ConfigError
        If ``estimator`` is not a fitted scikit-learn estimator.

    Examples
    --------
    >>> import numpy as np, trialbook
    >>> from sklearn.linear_model import Ridge
    >>> X, y = np.array([[0.0], [1.0], [2.0]]), np.array([1.0, 3.0, 5.0])
    >>> model = Ridge(alpha=0.5).fit(X, y)
    >>> with trialbook.create_session("sqlite:///:memory:") as session:
    ...     run = log_estimator(model, session.create_experiment("doc_estimator"),
    ...                         metrics={"r2": model.score(X, y)})
    ...     run.params.alpha, run.metrics("r2")["value"].round(2).tolist(), list(run.models)
    (0.5, [0.96], ['model'])
    """
    _check_fitted(estimator)
    recorder = Recorder("sklearn", experiment)
    run = recorder.start(estimator.get_params(deep=False))
    try:
        for metric, value in (metrics or {}).items():
            run.log_metric(metric, _number(value))
        run.log_model(estimator, name, trusted=trusted)
    except BaseException as exc:
        recorder.finish(exc)
        raise
    recorder.finish()
    return run


def _check_fitted(estimator: Any) -> None:
    if not isinstance(estimator, BaseEstimator):
        msg = (
            f"log_estimator needs a fitted scikit-learn estimator (got {estimator!r} that is a "
            f"{type(estimator)}); for other models use run.log_model"
        )
        raise ConfigError(msg)
    try:
        check_is_fitted(estimator)
    except NotFittedError as exc:
        msg = (
            f"log_estimator needs a fitted estimator, and this {type(estimator).__name__} is not "
            f"fitted: call .fit(X, y) first"
        )
        raise ConfigError(msg) from exc
