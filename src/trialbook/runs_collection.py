"""The collection of an experiment's runs: a dict keyed by run id, with MLtraq's ``first()``,
``next()`` and union (``|``, ``|=``)."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from trialbook.errors import ConfigError, NotFoundError, RunNotFoundError
from trialbook.tracking import Run

if TYPE_CHECKING:
    import pandas as pd

    from trialbook.runs import RunsExperiment

__all__ = ["Runs"]


class Runs(dict[int, Run]):
    """The runs of an experiment, keyed by run id.

    ``runs1 | runs2`` is a new collection with the runs of both (detached: it belongs to no
    experiment); a run id present in both must be the same run, since the runs of two
    experiments have their own ids (``experiment.merge_runs(...)`` copies runs of other
    experiments into one, with new ids). ``runs |= other`` adds to a detached collection, or
    merges ``other`` into the experiment the runs belong to (as ``merge_runs``).

    Examples
    --------
    >>> runs = Runs("demo")
    >>> runs[5]
    Traceback (most recent call last):
    ...
    trialbook.errors.RunNotFoundError: experiment 'demo' has no run with id 5 (it has 0 runs, ...)
    >>> a, b = Runs("a"), Runs("b")
    >>> dict.update(a, {1: Run(1)}); dict.update(b, {2: Run(2)})
    >>> a | b
    {1: Run(id=1, status='pending', params={}), 2: Run(id=2, status='pending', params={})}
    """

    __slots__ = ("_experiment", "_owner")

    def __init__(self, experiment: str, owner: RunsExperiment | None = None) -> None:
        super().__init__()
        self._experiment = experiment
        self._owner = None if owner is None else weakref.ref(owner)

    def __missing__(self, run_id: int) -> Run:
        raise RunNotFoundError(self._experiment, run_id, available=self.keys())

    def first(self) -> Run:
        """The run with the smallest id.

        Raises
        ------
        NotFoundError
            If there is no run.
        """
        if not self:
            msg = f"experiment {self._experiment!r} has no runs yet; add some with add_runs(...)"
            raise NotFoundError(msg)
        return self[min(self)]

    def next(self) -> Run:
        """Add a new run without parameters to the experiment and return it (as
        ``experiment.add_run()``).

        Raises
        ------
        ConfigError
            If the collection belongs to no experiment (the result of ``runs1 | runs2``).
        """
        return self._experiment_object("next()").add_run()

    def _experiment_object(self, what: str) -> RunsExperiment:
        owner = None if self._owner is None else self._owner()
        if owner is None:
            msg = (
                f"runs.{what} adds runs to an experiment, and this collection of runs belongs "
                "to none (it is the union of other collections); call it on experiment.runs"
            )
            raise ConfigError(msg)
        return owner

    def __or__(self, other: object) -> Runs:  # type: ignore[override]
        if not isinstance(other, Mapping):
            return NotImplemented
        names = dict.fromkeys([self._experiment, getattr(other, "_experiment", "runs")])
        union = Runs(" | ".join(names))
        union._merge(self)
        union._merge(other)
        return union

    def __ior__(self, other: object) -> Runs:  # type: ignore[override]
        if not isinstance(other, Mapping):
            return NotImplemented
        if self._owner is None:
            self._merge(other)
        else:
            self._experiment_object("__ior__").merge_runs(other)
        return self

    def _merge(self, other: Mapping[Any, Any]) -> None:
        for run_id, run in other.items():
            if not isinstance(run, Run):
                msg = f"a collection of runs holds runs (got {run!r} that is a {type(run)})"
                raise ConfigError(msg)
            present = dict.get(self, run_id)
            if present is not None and present is not run:
                msg = (
                    f"run id {run_id} is in both collections for two different runs (the runs "
                    "of each experiment have their own ids); to combine runs of several "
                    "experiments, copy them into one: experiment.merge_runs(e1.runs, e2.runs)"
                )
                raise ConfigError(msg)
            dict.__setitem__(self, run_id, run)

    def df(self) -> pd.DataFrame:
        """One row per run: params, status, timings, scalar fields and last metric values."""
        from trialbook.runs import runs_frame

        return runs_frame(self.values())
