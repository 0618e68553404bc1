"""A small library of ready-made steps for :meth:`~trialbook.RunsExperiment.execute`.

Each function returns a step (a function of one run), so it can stand in a list of steps
beside your own. The steps are module-level functions bound with :func:`functools.partial`,
so they travel to worker processes (``n_jobs=``, Dask, Slurm) like any other step.

Examples
--------
>>> import trialbook
>>> from trialbook.steps import drop_fields, init_fields, init_sequences
>>> session = trialbook.create_session("sqlite:///:memory:")
>>> experiment = session.create_experiment("demo")
>>> _ = experiment.add_runs(x=[1, 2])
>>> def train(run):
...     for epoch in range(2):
...         run.fields.history.append(epoch=epoch, loss=run.params.x / (epoch + 1))
...     run.fields.scratch = "tmp"
>>> _ = experiment.execute(
...     [init_fields(model="ridge"), init_sequences("history"), train, drop_fields("scratch")]
... )
>>> run = experiment.runs.first()
>>> sorted(run.fields), run.fields.history.df()["loss"].tolist()
(['history', 'model'], [1.0, 0.5])
>>> session.close()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from trialbook.errors import ConfigError
from trialbook.sequence import Sequence
from trialbook.tracking import Run

__all__ = ["drop_fields", "init_fields", "init_sequences", "nothing"]

Step = Callable[[Run], object]


def init_fields(**fields: Any) -> Step:
    """A step that sets these fields on the run (replacing values of the same names).

    Examples
    --------
    >>> run = Run(1)
    >>> init_fields(a=1, b="x")(run)
    >>> dict(run.fields)
    {'a': 1, 'b': 'x'}
    """
    return partial(_set_fields, fields=fields)


def init_sequences(*names: str | Iterable[str]) -> Step:
    """A step that gives the run a new, empty :class:`~trialbook.sequence.Sequence` in each
    field of ``names`` (names, or one list of names).

    Examples
    --------
    >>> run = Run(1)
    >>> init_sequences("train", "valid")(run)
    >>> run.fields.train, run.fields.valid
    (Sequence(rows=0, columns=[]), Sequence(rows=0, columns=[]))
    """
    flat: list[str] = []
    for name in names:
        flat.extend([name] if isinstance(name, str) else name)
    for name in flat:
        if not isinstance(name, str) or not name:
            msg = f"init_sequences takes field names (got {name!r} that is a {type(name)})"
            raise ConfigError(msg)
    return partial(_new_sequences, names=tuple(flat))


def drop_fields(*names: str) -> Step:
    """A step that removes these fields from the run (a name the run lacks is ignored).

    Examples
    --------
    >>> run = Run(1)
    >>> run.fields.update(a=1, b=2)
    >>> drop_fields("a", "zzz")(run)
    >>> dict(run.fields)
    {'b': 2}
    """
    return partial(_drop_fields, names=names)


def nothing(run: Run) -> None:
    """A step that does nothing (a placeholder in a list of steps).

    Examples
    --------
    >>> nothing(Run(1)) is None
    True
    """


def _set_fields(run: Run, *, fields: dict[str, Any]) -> None:
    run.fields.update(fields)


def _new_sequences(run: Run, *, names: tuple[str, ...]) -> None:
    for name in names:
        run.fields[name] = Sequence()


def _drop_fields(run: Run, *, names: tuple[str, ...]) -> None:
    for name in names:
        if name in run.fields:
            del run.fields[name]
