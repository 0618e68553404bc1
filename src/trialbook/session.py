"""Sessions: the entry point for runs and chained steps.

Examples
--------
>>> import trialbook
>>> session = trialbook.create_session("sqlite:///:memory:")
>>> session
Session(url='sqlite:///:memory:', experiments=0)
>>> experiment = session.create_experiment("example")
>>> with experiment.run() as run:
...     run.fields.c = 3
>>> _ = experiment.persist()
>>> session
Session(url='sqlite:///:memory:', experiments=1)
>>> session.ls()[["name", "runs"]]
      name  runs
0  example     1
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from trialbook.errors import ConfigError, ExperimentNotFoundError
from trialbook.runs import RunsExperiment
from trialbook.storage import open_store
from trialbook.tracking import Run, paused_gc

if TYPE_CHECKING:
    import pandas as pd

    from trialbook.storage.base import Store

__all__ = ["Session", "create_session"]


def create_session(
    url: str | os.PathLike[str] | Store | None = None, *, allow_pickle: bool = False
) -> Session:
    """Open a session on the store at ``url`` (default: the embedded store in ``.trialbook/``).

    Parameters
    ----------
    url
        A directory path, ``sqlite:///file.db``, any URL a registered backend accepts, or an
        open store. ``None`` uses ``$TRIALBOOK_STORE`` or ``.trialbook``.
    allow_pickle
        Let values that no safe codec handles be stored and loaded with pickle. Loading a
        pickle runs code from the store: enable it only for stores you trust.

    Examples
    --------
    >>> create_session("sqlite:///:memory:").store
    SqliteStore('sqlite:///:memory:')
    """
    return Session(open_store(url, allow_pickle=allow_pickle))


class Session:
    """A connection to one store, to create, load, list and delete experiments."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __repr__(self) -> str:
        count = len(self.store.list_experiments())
        return f"Session(url={self.store.url!r}, experiments={count})"

    def ls(self) -> pd.DataFrame:
        """The persisted experiments: ``name``, ``runs``, ``created``, ``updated``.

        Examples
        --------
        >>> create_session("sqlite:///:memory:").ls()
        Empty DataFrame
        Columns: [name, runs, created, updated]
        Index: []
        """
        import pandas as pd

        rows = [
            {"name": e.name, "runs": e.runs, "created": e.created, "updated": e.updated}
            for e in self.store.list_experiments()
        ]
        frame = pd.DataFrame(rows, columns=["name", "runs", "created", "updated"])
        for column in ("created", "updated"):
            frame[column] = pd.to_datetime(frame[column], unit="s")
        return frame

    def create_experiment(self, name: str) -> RunsExperiment:
        """A new, empty experiment; it is written to the store by its first ``persist()``.

        Names are exact: ``"my-exp"`` and ``"My Exp"`` are two experiments.

        Raises
        ------
        ConfigError
            If ``name`` is not a non-empty string.
        """
        return RunsExperiment(_check_name(name), self.store)

    def load_experiment(self, name: str) -> RunsExperiment:
        """Load a persisted experiment with its runs (params, fields, status, metrics summary).

        Raises
        ------
        ExperimentNotFoundError
            If the store has no experiment of that exact name.
        """
        info = self.store.find_experiment(_check_name(name))
        if info is None:
            names = [e.name for e in self.store.list_experiments()]
            raise ExperimentNotFoundError(name, available=names)
        experiment = RunsExperiment(name, self.store, info=info)
        allow_pickle = self.store.allow_pickle
        with paused_gc():
            for record in self.store.read_runs(info.id):
                experiment._adopt(Run.from_record(record, allow_pickle=allow_pickle))
        return experiment

    def search_runs(
        self,
        experiment: str,
        where: str | None = None,
        *,
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> pd.DataFrame:
        """The runs of ``experiment`` that match a filter, sorted and paged, as a table.

        The filter and sort names are the query language of the web UI
        (:mod:`trialbook.storage.query`): ``lr > 0.01 and status == "done"``, ``params.x``,
        ``fields.x``, ``tags.x``, ``metric.x`` (its last value), ``in [...]``, ``and`` / ``or`` /
        ``not``. The store runs the query itself where it can (in SQL on SQLite), so only the
        matching page is read.

        Parameters
        ----------
        experiment
            The experiment's exact name.
        where
            A filter; ``None`` keeps every run.
        order_by, descending
            The name to sort by (default: the run id) and the direction; runs missing the
            value come last.
        limit, offset
            At most ``limit`` runs (``None``: all) after skipping ``offset``.

        Returns
        -------
        pandas.DataFrame
            The columns of ``RunsExperiment.df()``, one row per run in the sort order,
            indexed by ``run_id``; ``frame.attrs["total"]`` is the number of matching runs
            before paging.

        Raises
        ------
        ExperimentNotFoundError
            If the store has no experiment of that name.
        ConfigError
            On a bad filter (with the column of the mistake), a name that no run has (a text
            written without quotes), or a bad sort name, limit or offset.

        Examples
        --------
        >>> session = create_session("sqlite:///:memory:")
        >>> experiment = session.create_experiment("sweep")
        >>> _ = experiment.add_runs(lr=[0.001, 0.01, 0.1], loss=["hinge", "log"])
        >>> _ = experiment.execute(lambda run: run.fields.update(acc=run.params.lr * 5)).persist()
        >>> frame = session.search_runs("sweep", 'loss == "hinge" and acc > 0.01',
        ...                             order_by="acc", descending=True, limit=1)
        >>> frame[["lr", "loss", "acc"]]
                 lr   loss  acc
        run_id
        5       0.1  hinge  0.5
        >>> frame.attrs["total"]
        2
        >>> session.search_runs("sweep", "loss == hinge")
        Traceback (most recent call last):
        ...
        trialbook.errors.ConfigError: bad query 'loss == hinge': `hinge` at column 9 is not a
        parameter, field or tag of any run of this experiment; to compare with a text, quote
        it: loss == "hinge"
        """
        from trialbook.runs import runs_frame
        from trialbook.storage.query import query_runs

        info = self.store.find_experiment(_check_name(experiment))
        if info is None:
            names = [e.name for e in self.store.list_experiments()]
            raise ExperimentNotFoundError(experiment, available=names)
        total, page = query_runs(
            self.store, info.id, where=where, order_by=order_by, descending=descending,
            limit=limit, offset=offset,
        )  # fmt: skip
        allow_pickle = self.store.allow_pickle
        with paused_gc():
            frame = runs_frame(Run.from_record(r, allow_pickle=allow_pickle) for r in page)
        frame.attrs["total"] = total
        return frame

    def delete_experiment(self, name: str) -> None:
        """Delete a persisted experiment and everything in it.

        Raises
        ------
        ExperimentNotFoundError
            If the store has no experiment of that exact name.
        """
        self.store.delete_experiment(_check_name(name))

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        msg = f"an experiment name must be a non-empty str (got {name!r})"
        raise ConfigError(msg)
    return name
