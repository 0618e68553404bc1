"""Runs and chained steps: a grid of runs whose state progresses through step functions.

An experiment holds runs; :meth:`RunsExperiment.execute` calls each step ``f(run)`` in order on
every run. Three containers carry state, from least to most durable:

* ``run.vars``: anything, alive only during one ``execute`` (always empty afterwards);
* ``run.state``: anything, kept in memory afterwards (also into the next ``execute``), never
  persisted;
* ``run.fields``: persisted by :meth:`RunsExperiment.persist` and reloaded by
  :meth:`~trialbook.Session.load_experiment`: scalars, strings, lists, dicts, NumPy arrays,
  pandas and Arrow objects.

Examples
--------
>>> import trialbook
>>> session = trialbook.create_session("sqlite:///:memory:")
>>> experiment = session.create_experiment("squares")
>>> experiment.add_runs(x=[1, 2, 3])
[Run(id=1, status='pending', params={'x': 1}), Run(id=2, ...), Run(id=3, ...)]
>>> def square(run):
...     run.vars.x = run.params.x
...     run.fields.y = run.vars.x ** 2
>>> experiment.execute(square).persist()
Experiment(name='squares', runs.count=3)
>>> session.load_experiment("squares").df()[["x", "status", "y"]]
        x status  y
run_id
1       1   done  1
2       2   done  4
3       3   done  9
>>> session.close()
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from trialbook import journal
from trialbook.codecs import from_tree
from trialbook.errors import (
    ConfigError,
    CorruptStoreError,
    ExperimentExistsError,
    RunFailedError,
)
from trialbook.live import LiveWriter, mark_lost
from trialbook.names import check_parameter_name
from trialbook.notes import note_text
from trialbook.runs_collection import Runs
from trialbook.runs_meta import experiment_fields_tree, experiment_id, new_experiment_id
from trialbook.runs_pool import choose_executor, execute_remote, execute_run
from trialbook.storage.records import (
    ExperimentInfo,
    MetricChunk,
    MetricSeries,
    RunColumns,
    RunRecord,
)
from trialbook.tracking import Bunch, Run, paused_gc, using_run

if TYPE_CHECKING:
    import pandas as pd

    from trialbook.execution.base import Executor
    from trialbook.runs_table import RunView
    from trialbook.storage.base import Store

__all__ = [
    "Runs",
    "RunsExperiment",
    "Step",
    "experiment_fields_tree",
    "experiment_id",
    "new_experiment_id",
    "runs_frame",
    "table_of",
]

Step = Callable[[Run], object]
_PLAIN_SCALARS = frozenset({int, float, str, bool, type(None)})


class RunsExperiment:
    """An experiment of runs progressing through chained steps.

    Create one with :meth:`trialbook.Session.create_experiment`, reload one with
    :meth:`trialbook.Session.load_experiment`.
    """

    def __init__(
        self,
        name: str,
        store: Store,
        *,
        info: ExperimentInfo | None = None,
        claimed: bool = False,
        replaces: int | None = None,
    ) -> None:
        self.name = name
        self.store = store
        self._runs = Runs(name, self)
        self._unread: RunColumns | None = None  # loaded, runs not built yet (see load)
        self.id_experiment = experiment_id(info) if info is not None else new_experiment_id()
        """A unique, stable id: a UUID given at creation (an experiment stored before ids
        existed gets one derived from its name and creation time)."""
        stored = (info.meta.get("fields") if info is not None else None) or {}
        self.fields = Bunch(from_tree(stored, store.allow_pickle))
        """Values of the whole experiment, persisted with it (the same types as run fields)."""
        self._stored_fields: Any = stored
        self._description: str | None = info.meta.get("description") if info is not None else None
        self._stored_description = self._description
        self._info = info
        self._claimed = claimed  # the name is ours in the store, not yet persisted
        self._replaces = replaces  # the id of the experiment the first persist replaces
        self._superseded = False
        self._changed: dict[int, Run] = {}
        self._next_local_id = 1

    def __repr__(self) -> str:
        count = len(self._runs) if self._unread is None else len(self._unread)
        return f"Experiment(name={self.name!r}, runs.count={count})"

    def _repr_html_(self) -> str:
        """The experiment in a notebook: description, runs by status, and the first 20 runs
        of :meth:`df` (``… N more``). Quick on a million runs: a loaded experiment's runs are
        not built for it (see :mod:`trialbook.runs_notebook`).

        Examples
        --------
        >>> import trialbook
        >>> with trialbook.create_session("sqlite:///:memory:") as session:
        ...     exp = session.create_experiment("e")
        ...     _ = exp.add_runs(lr=[0.1, 0.01])
        ...     "<table" in exp._repr_html_()
        True
        """
        from trialbook.runs_notebook import experiment_html

        return experiment_html(self)

    def plot(
        self,
        metric: str,
        group_by: str | Sequence[str] | None = None,
        *,
        band: str = "minmax",
        x: str = "step",
        ax: Any = None,
    ) -> Any:
        """Draw the curves of ``metric`` with matplotlib and return the axes (the
        ``notebook`` extra installs matplotlib).

        Without ``group_by``: one line per run that logged the metric. With ``group_by`` (a
        parameter or scalar field name, or a list of them): one line per group of runs with
        the same values, the mean of their values at each step, in a shaded band: the
        runs' minimum to maximum (``band="minmax"``) or one standard deviation around the
        mean (``band="std"``). ``x`` is ``"step"`` (the metric's steps) or ``"time"`` (seconds
        since each run's first point; without ``group_by`` only). ``ax`` draws on given axes
        (default: a new figure). Off screen (no display), matplotlib draws with its Agg
        backend: save the figure with ``ax.figure.savefig(path)``.

        Raises
        ------
        NotFoundError
            If no run logged ``metric`` (the message names the metrics they logged).
        ConfigError
            If a ``group_by`` name is no parameter or field of the runs, or ``band`` or ``x``
            is unknown.
        MissingExtraError
            If matplotlib is not installed.

        Examples
        --------
        >>> import trialbook
        >>> session = trialbook.create_session("sqlite:///:memory:")
        >>> exp = session.create_experiment("curves")
        >>> _ = exp.add_runs(lr=[0.1, 0.2], seed=[1, 2])
        >>> def fit(run):
        ...     for step in range(5):
        ...         run.log_metric("loss", run.params.lr * run.params.seed / (step + 1))
        >>> ax = exp.execute(fit).plot("loss", group_by="lr", band="std")
        >>> [line.get_label() for line in ax.get_lines()]
        ['lr=0.1 (2 runs)', 'lr=0.2 (2 runs)']
        >>> exp.plot("acc")
        Traceback (most recent call last):
        ...
        trialbook.errors.NotFoundError: no run of experiment 'curves' logged the metric 'acc' (the
        metrics its runs logged: 'loss')
        >>> import matplotlib.pyplot as plt; plt.close("all"); session.close()
        """
        from trialbook.runs_notebook import plot_metric

        return plot_metric(self, metric, group_by, band=band, x=x, ax=ax)

    @property
    def runs(self) -> Runs:
        """The runs, by id (of a loaded experiment: built at the first use, see :meth:`load`)."""
        if self._unread is not None:
            self._build_runs()
        return self._runs

    @runs.setter
    def runs(self, runs: Runs) -> None:  # ``experiment.runs |= other`` assigns it back
        self._unread = None
        self._runs = runs

    @classmethod
    def load(cls, store: Store, info: ExperimentInfo) -> RunsExperiment:
        """The stored experiment ``info`` of ``store`` with its runs (what
        :meth:`trialbook.Session.load_experiment` returns).

        From a store that reads runs column-wise (SQLite, PostgreSQL), loading reads only what
        the table of runs needs, and :meth:`df` builds it from those columns; the
        :class:`~trialbook.tracking.Run` objects are read and built at the first use of
        ``experiment.runs`` (issue 16: a million of them take seconds and gigabytes): the runs
        of the load, with their values as stored then, each at the version it had at the load
        (so that a change another session made in between is a conflict at ``persist()``).
        """
        experiment = cls(info.name, store, info=info)
        read_columns = getattr(store, "read_run_columns", None)
        columns = None if read_columns is None else read_columns(info.id)
        if columns is not None:
            from trialbook.runs_table import decode_bundles

            decode_bundles(columns, allow_pickle=store.allow_pickle)
            experiment._unread = columns
        else:
            experiment._build_runs()
        return experiment

    def _build_runs(self) -> None:
        """Build the runs of a loaded experiment, once: read from the store now, those of the
        load only, each at the version of the load (a write of another session since then
        makes this one's write of that run a ``RunConflictError``, as if built at load)."""
        loaded, self._unread = self._unread, None
        if self._info is None:
            return
        allow_pickle = self.store.allow_pickle
        versions = (
            None if loaded is None else dict(zip(loaded.run_ids, loaded.versions, strict=True))
        )
        try:
            records = self.store.read_runs(self._info.id)
        except CorruptStoreError as exc:  # a store names the run and value; this, the experiment
            if exc.experiment is None:
                exc.experiment = self.name
            raise
        with paused_gc():
            for record in mark_lost(records, self._info.meta):
                if versions is not None:
                    if record.run_id not in versions:
                        continue  # added by another session since the load
                    record.version = versions[record.run_id]
                self._adopt(Run.from_record(record, allow_pickle=allow_pickle))

    @property
    def description(self) -> str | None:
        """The experiment's description (markdown text; ``None``: none), stored by the next
        :meth:`persist` and shown on its UI page; ``None`` or a blank text removes it.

        Examples
        --------
        >>> import trialbook
        >>> session = trialbook.create_session("sqlite:///:memory:")
        >>> exp = session.create_experiment("e")
        >>> exp.description = "Sweep of **lr** for the small model."
        >>> exp.persist().description
        'Sweep of **lr** for the small model.'
        >>> session.load_experiment("e").description
        'Sweep of **lr** for the small model.'
        >>> session.close()
        """
        return self._description

    @description.setter
    def description(self, value: str | None) -> None:
        self._description = note_text(value, f"the description of experiment {self.name!r}")

    @property
    def is_persisted(self) -> bool:
        """Whether the experiment has been persisted (a claimed name does not count)."""
        return self._info is not None and not self._claimed

    # -- adding runs ------------------------------------------------------------------------

    def add_run(self, **params: Any) -> Run:
        """Add one run with these parameters and return it.

        Examples
        --------
        >>> import trialbook
        >>> session = trialbook.create_session("sqlite:///:memory:")
        >>> exp = session.create_experiment("e")
        >>> exp.add_run(lr=0.1, layers=2)
        Run(id=1, status='pending', params={'lr': 0.1, 'layers': 2})
        >>> session.close()
        """
        for name in params:
            check_parameter_name(name)  # the same rule as Experiment.parameter
        return self._add([params])[0]

    def add_runs(self, **grid: Any) -> list[Run]:
        """Add one run per combination of the value lists (their cartesian product).

        A value that is not a list, tuple, range, set or array counts as a one-value list.
        Without any argument it refuses (use :meth:`add_run` for one run without parameters).

        Examples
        --------
        >>> import trialbook
        >>> session = trialbook.create_session("sqlite:///:memory:")
        >>> exp = session.create_experiment("e")
        >>> for run in exp.add_runs(a=[1, 2], b=["x", "y"], c=0):
        ...     print(dict(run.params))
        {'a': 1, 'b': 'x', 'c': 0}
        {'a': 1, 'b': 'y', 'c': 0}
        {'a': 2, 'b': 'x', 'c': 0}
        {'a': 2, 'b': 'y', 'c': 0}
        >>> session.close()
        """
        if not grid:
            msg = (
                "add_runs() needs at least one parameter and its values, e.g. "
                "add_runs(lr=[0.1, 0.01]); to add one run without parameters, use add_run()"
            )
            raise ConfigError(msg)
        names = list(grid)
        for name in names:
            check_parameter_name(name)  # the same rule as Experiment.parameter
        axes = [_axis(name, values) for name, values in grid.items()]
        count = 1
        for axis in axes:
            count *= len(axis)
        with paused_gc(count):  # a million runs: no GC pass over the ones built so far
            return self._add(
                [Bunch(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]
            )

    @contextmanager
    def run(self, **params: Any) -> Iterator[Run]:
        """Add a run and track the ``with`` block as its execution.

        When the block ends the run is done (or failed, if the block raised; the exception
        propagates), ``run.vars`` is emptied and ``run.state`` is kept.

        Examples
        --------
        >>> import trialbook
        >>> session = trialbook.create_session("sqlite:///:memory:")
        >>> exp = session.create_experiment("e")
        >>> with exp.run(lr=0.1) as run:
        ...     run.vars.tmp = 1
        ...     run.state.model = "fitted"
        ...     run.fields.score = 0.9
        >>> run.status, dict(run.vars), dict(run.state), dict(run.fields)
        ('done', {}, {'model': 'fitted'}, {'score': 0.9})
        >>> session.close()
        """
        run = self.add_run(**params)
        run.start()
        try:
            with using_run(run):
                yield run
        except BaseException as exc:
            run.finish(exc)
            raise
        else:
            run.finish()
        finally:
            run.vars = Bunch()

    def _add(self, param_sets: Sequence[Mapping[str, Any]]) -> list[Run]:
        if not param_sets:
            return []
        self._check_current()
        if self._unread is not None:  # the stored runs first: new ones join them
            self._build_runs()
        if self._info is not None:
            ids: Iterable[int] = self.store.allocate_run_ids(self._info.id, len(param_sets))
        else:
            ids = range(self._next_local_id, self._next_local_id + len(param_sets))
            self._next_local_id += len(param_sets)
        with paused_gc(len(param_sets)):
            runs = Run.pending_runs(
                ids, param_sets, changed=self._mark_changed, metric_source=self._read_metric,
                artifacts=self._artifact_target,
            )  # fmt: skip
            pairs = [(run.id, run) for run in runs]
            self.runs.update(pairs)
            self._changed.update(pairs)
        return runs

    def _adopt(self, run: Run) -> None:
        run.bind(self._mark_changed, self._read_metric)
        run.bind_artifacts(self._artifact_target)
        self._runs[run.id] = run

    def _artifact_target(self) -> tuple[Store, int] | None:
        """Where runs write artifacts now: the experiment once it is in the store."""
        return None if self._info is None else (self.store, self._info.id)

    def _mark_changed(self, run: Run) -> None:
        self._changed[run.id] = run

    def _read_metric(self, run_id: int, name: str) -> MetricSeries | None:
        if self._info is None:
            return None
        return self.store.read_metrics(self._info.id, name, [run_id]).get(run_id)

    # -- execution --------------------------------------------------------------------------

    def execute(
        self,
        steps: Step | Sequence[Step],
        *,
        n_jobs: int = 1,
        run_ids: Iterable[int] | None = None,
        only: str | None = None,
        progress: bool | None = None,
        backend: str | None = None,
        client: Any = None,
        executor: Executor | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> RunsExperiment:
        """Call each step ``f(run)`` in order on every run (or on the runs of ``run_ids``).

        Executing a run again (a reloaded experiment, or a second ``execute``) replaces its
        timings, status and error, and each metric it logs again: the earlier points of that
        metric are dropped, in memory and, at the next ``persist()``, in the store. Fields keep
        their values until a step assigns them (so a step may read what an earlier execution
        stored); metrics the new execution does not log are kept.

        Parameters
        ----------
        steps
            A function of one run, or a sequence of them, applied in order.
        n_jobs
            Worker processes; ``1`` (the default) runs in this process, ``-1`` uses every
            core, never more workers than cores. With workers, ``run.state`` and
            ``run.fields`` travel to the worker and back, so they must be picklable.
        run_ids
            Restrict execution to these runs (a list of ids), e.g. the failed ones after a
            :class:`~trialbook.errors.RunFailedError`: ``run_ids=err.failed``.
        only
            Restrict execution by status: ``"pending"`` (runs never executed, such as those
            just added to a reloaded experiment), ``"failed"``, or ``"unfinished"`` (every run
            that is not done: pending, failed, or running when its process died). ``None``
            (the default) executes every run.
        progress
            Show a progress bar; by default only on a terminal and for more than 50 runs.
        backend
            ``"local"`` (this process, or ``n_jobs`` local worker processes) or ``"dask"`` (a
            Dask distributed cluster: ``client``, else the current default client). By default
            ``"dask"`` when a client is given, else ``"local"``.
        client
            A Dask ``distributed.Client`` or a scheduler address (``"tcp://host:8786"``): run on
            that cluster instead (``n_jobs`` is then ignored). Metrics and fields logged on the
            workers travel back with the results; workers need no store connection. A
            ``dask-jobqueue`` cluster (``Client(SLURMCluster(...))``) works the same way.
        executor
            Any executor of :mod:`trialbook.execution` (or your own class with its
            ``submit(fn, *args)``), such as ``SlurmLauncher(...)``: runs travel to it in
            batches, one call each, and their results come back as with ``client=``. The
            executor stays open (call its ``shutdown()``); ``n_jobs``, ``backend`` and
            ``client`` must then be left out.
        config
            Values every run of this execution sees as ``run.config`` while its steps run
            (``run.config`` is empty outside an execution). Unlike params, the config is not
            persisted: store what you need to keep in ``run.fields``.

        Returns
        -------
        RunsExperiment
            ``self``, so that ``experiment.execute(steps).persist()`` chains.

        Raises
        ------
        RunFailedError
            After every run was executed, if any step raised: it names the failed runs
            (``err.failed``) and the finished ones (``err.succeeded``), and its ``__cause__``
            is the first original exception. Each failed run keeps its error and traceback in
            ``run.error``; the other runs keep their results. Before raising, ``execute``
            persists the experiment (the finished runs and the failed ones, as failed) when it
            is in the store (``err.stored``), so that a chain such as
            ``execute(step).persist()`` loses no finished run; not an experiment whose first
            persist would replace a stored one (``if_exists="replace"``): the message then
            says to call ``persist()``. Re-run the failed ones with
            ``execute(steps, run_ids=err.failed)`` (or ``only="failed"``).

        Examples
        --------
        >>> import trialbook
        >>> from trialbook.errors import RunFailedError
        >>> session = trialbook.create_session("sqlite:///:memory:")
        >>> experiment = session.create_experiment("inverse")
        >>> _ = experiment.add_runs(x=[1, 0, 4])
        >>> def invert(run):
        ...     run.fields.y = 1 / run.params.x
        >>> try:
        ...     experiment.execute(invert).persist()
        ... except RunFailedError as err:
        ...     failed = err.failed
        >>> failed, session.load_experiment("inverse").df()["status"].tolist()
        ([2], ['done', 'failed', 'done'])
        >>> def invert(run):  # fixed
        ...     run.fields.y = 1 / run.params.x if run.params.x else float("inf")
        >>> _ = experiment.execute(invert, run_ids=failed).persist()
        >>> session.load_experiment("inverse").df()[["x", "status", "y"]]
                x status     y
        run_id
        1       1   done  1.00
        2       0   done   inf
        3       4   done  0.25
        >>> session.close()
        """
        step_list = _check_steps(steps)
        if config is not None and not isinstance(config, Mapping):
            msg = f"config must be a dict of values (got {config!r} that is a {type(config)})"
            raise ConfigError(msg)
        runs = list(self.runs.values()) if run_ids is None else self._chosen(run_ids)
        runs = _select(runs, only)
        chosen_executor = choose_executor(
            executor=executor, n_jobs=n_jobs, backend=backend, client=client, count=len(runs)
        )
        with (
            chosen_executor as (chosen, workers),
            _progress_bar(progress, len(runs), self.name) as advance,
        ):
            if chosen is not None:
                with self._live() as live:
                    failures = execute_remote(
                        runs, step_list, chosen, workers, advance, config=config, live=live
                    )
            else:
                failures = {}
                with self._live() as live:
                    for run in runs:
                        exc = execute_run(run, step_list, config, live=live)
                        if exc is not None:
                            failures[run.id] = exc
                        advance(1)
        if failures:
            summaries = {rid: str(self.runs[rid].error) for rid in sorted(failures)}
            succeeded = [run.id for run in runs if run.id not in failures]
            not_stored = self._persist_after_failure()
            first = failures[min(failures)]
            raise RunFailedError(
                self.name, summaries, succeeded=succeeded, stored=not not_stored,
                not_stored=not_stored,
            ) from first  # fmt: skip
        return self

    @contextmanager
    def _live(self) -> Iterator[LiveWriter | None]:
        """A writer of the runs while they run, for a persisted experiment (else None: a
        claimed name holds nothing until the first persist, which writes all or nothing)."""
        if self._info is None or not self.is_persisted:
            yield None
            return
        with LiveWriter(self.store, self._info.id) as live:
            yield live

    def _chosen(self, run_ids: Iterable[int]) -> list[Run]:
        """The runs of ``run_ids``, each once, in the order given."""
        if isinstance(run_ids, int | str) or not isinstance(run_ids, Iterable):
            msg = (
                f"run_ids must be a list of run ids, such as run_ids=[2, 5] or the failed ids "
                f"of a RunFailedError (err.failed) (got {run_ids!r} that is a {type(run_ids)})"
            )
            raise ConfigError(msg)
        return [self.runs[run_id] for run_id in dict.fromkeys(run_ids)]

    def _persist_after_failure(self) -> str:
        """Persist after an execution in which runs failed, so that the runs that finished
        outlive this process (issue 18); return why nothing was stored, or ``""``.

        An experiment that exists in the store (claimed by ``create_experiment``, loaded or
        persisted) is persisted as ``persist()`` would. One that would replace a stored
        experiment is not: its first persist deletes that one's runs, which only an explicit
        ``persist()`` may do."""
        if self._info is None and self._replaces is not None:
            return (
                f"execute did not store them: persisting replaces the stored experiment "
                f"{self.name!r} and deletes its runs"
            )
        try:
            self.persist()
        except Exception as exc:  # the runs stay in memory; the steps' error is what is raised
            return f"storing them failed: {type(exc).__name__}: {exc}"
        return ""

    # -- persistence ------------------------------------------------------------------------

    def persist(self, *, if_exists: str | None = None) -> RunsExperiment:
        """Write new and changed runs (and new metric points) to the store, in one transaction.

        A run executed again replaces its stored version, and the points of each metric it
        logged again, in that same transaction. If the write fails (a value no codec stores,
        a lost connection, an interrupted process) the store is left as it was. If the store's
        server stays unreachable past its retry budget, the write of an experiment already in
        the store is kept in the local journal (:mod:`trialbook.journal`) with a
        :class:`~trialbook.errors.JournalWarning`, and written before the next write there
        (or by ``trialbook flush``); the first persist of a new experiment raises
        :class:`~trialbook.errors.StoreUnavailableError` instead, the runs still in memory.

        Parameters
        ----------
        if_exists
            Only for an experiment that :meth:`~trialbook.Session.create_experiment` did not
            write to the store (``if_exists="replace"`` there), at its first persist:
            ``"replace"`` (what that mode does by default) deletes the stored experiment of the
            same name in the same transaction that creates this one, ``"fail"`` raises
            :class:`~trialbook.errors.ExperimentExistsError` instead.

        Raises
        ------
        CodecError
            If a field cannot be stored; nothing is written then.
        ExperimentExistsError
            If the experiment to replace was replaced by another process since
            ``create_experiment`` (nothing is written; the runs stay in memory).
        """
        if if_exists not in (None, "fail", "replace"):
            msg = f"if_exists must be 'fail' or 'replace' (got {if_exists!r})"
            raise ConfigError(msg)
        self._check_current()
        fields = experiment_fields_tree(self.fields)
        fields_changed = fields != self._stored_fields
        described = self._description != self._stored_description
        if self._info is not None and not (
            self._changed or self._claimed or fields_changed or described
        ):
            return self
        changed = list(self._changed.values())
        write = journal.Writes(self.store)  # a server away past its retry budget: journalled
        with paused_gc(len(changed)):  # records, rows and chunks of many runs: no GC pass
            created = self._write_changed(changed, write, if_exists, fields)
        fields_changed = fields_changed and not created
        described = described and not created
        update: dict[str, Any] = {"fields": fields} if fields_changed else {}
        if described:
            update["description"] = self._description
        if self._claimed:  # persisted now: the name is no longer only claimed
            update["claim"] = None
        if update and self._info is not None:  # (it is: written or created above)
            write("update_meta", self._info.id, update, what=f"fields of {self.name!r}")
        self._claimed = False
        self._stored_fields = fields
        self._stored_description = self._description
        for run in changed:  # held back until the experiment was in the store
            try:
                run.write_artifacts()
            except BaseException:
                self._changed[run.id] = run  # the next persist tries again
                raise
        return self

    def _write_changed(
        self,
        changed: list[Run],
        write: journal.Writes,
        if_exists: str | None,
        fields: dict[str, Any],
    ) -> bool:
        """Write the ``changed`` runs with ``write``, or create the experiment with them (and
        its ``fields``) at its first persist: return whether it was created now."""
        allow_pickle = self.store.allow_pickle
        # encoded first: a value that cannot be stored creates nothing
        records, chunks, replaced = [], [], []
        for run in changed:  # one pass: each run read once, a million of them too
            records.append(run.to_record(allow_pickle=allow_pickle))
            chunks += run.pending_metrics()
            replaced += run.replaced_metrics()
        if self._info is None:  # created (replacing) with its runs: one transaction
            meta = {"id": self.id_experiment, **({"fields": fields} if fields else {})}
            if self._description is not None:
                meta["description"] = self._description
            self._info = self._create_in_store(if_exists, records, chunks, meta)
            for run in changed:
                run.metrics_written()
            self._changed.clear()
            return True
        if changed:
            what = f"{len(records)} run(s) of experiment {self.name!r}"
            write("write_runs", self._info.id, records, chunks, what=what,
                  replace_metrics=replaced)  # fmt: skip
            for run in changed:
                run.written()
            self._changed.clear()
        return False

    def _check_current(self) -> None:
        if self._superseded:
            msg = (
                f"this experiment object {self.name!r} was replaced by a later "
                f"create_experiment({self.name!r}) in this process; use that one"
            )
            raise ExperimentExistsError(self.name, msg)

    def _create_in_store(
        self,
        if_exists: str | None,
        records: list[RunRecord],
        chunks: list[MetricChunk],
        meta: dict[str, Any],
    ) -> ExperimentInfo:
        """Create the experiment at its first persist (replacing the stored one of the same
        name) with its runs and metrics, in one transaction of the store: if writing them
        fails, the stored experiment is left as it was."""
        replace = if_exists == "replace" or (if_exists is None and self._replaces is not None)
        replace_id = self._replaces if if_exists is None else None
        try:
            return self.store.create_experiment(
                self.name, meta=meta, replace=replace, replace_id=replace_id, runs=records,
                metrics=chunks,
            )  # fmt: skip
        except ExperimentExistsError as exc:
            if replace_id is None:
                raise
            msg = (
                f"experiment {self.name!r} was replaced by another process since "
                "create_experiment(..., if_exists='replace'); nothing was written and the runs "
                "are still in memory: persist(if_exists='replace') replaces that one too, "
                "deleting the runs the other process stored"
            )
            raise ExperimentExistsError(self.name, msg) from exc

    def df(self) -> pd.DataFrame:
        """Same as ``experiment.runs.df()``; of a loaded experiment whose runs are not built
        yet, the same table made from the columns read at load (see :meth:`load`)."""
        if self._unread is not None and self._info is not None:
            from trialbook.runs_table import columns_frame

            return columns_frame(
                self._unread, self._info.meta, allow_pickle=self.store.allow_pickle
            )
        return self.runs.df()

    # -- copies -----------------------------------------------------------------------------

    def copy_to(
        self, target: Any, *, name: str | None = None, if_exists: str = "fail"
    ) -> RunsExperiment:
        """Copy the experiment, as it is in memory, into another store and return the copy.

        The copy has the runs (ids, params, fields, status, timings, errors, metric points
        and sequences) and the experiment's ``fields``, under ``name`` (default: the same
        name) and a new ``id_experiment``; it is written at once, in one transaction.

        Parameters
        ----------
        target
            A :class:`~trialbook.Session` or an open store. A URL or path is refused: open
            it (``with trialbook.create_session(url) as target:``) so that it is closed.
        if_exists
            ``"fail"`` (default: :class:`~trialbook.errors.ExperimentExistsError` when the
            name is taken there) or ``"replace"`` (the stored one is replaced).

        Examples
        --------
        >>> import trialbook
        >>> source, backup = (trialbook.create_session("sqlite:///:memory:") for _ in "ab")
        >>> experiment = source.create_experiment("sweep")
        >>> experiment.fields.dataset = "iris"
        >>> _ = experiment.add_runs(x=[1, 2])
        >>> _ = experiment.execute(lambda run: run.log_metric("loss", run.params.x / 10))
        >>> copy = experiment.copy_to(backup)
        >>> copy.fields.dataset, copy.runs[2].metrics("loss").value.tolist()
        ('iris', [0.2])
        >>> copy.id_experiment != experiment.id_experiment
        True
        >>> source.close(); backup.close()
        """
        from trialbook.runs_copy import copy_experiment, target_store

        store = target_store(target)
        if if_exists not in ("fail", "replace"):
            msg = f"if_exists must be 'fail' or 'replace' (got {if_exists!r})"
            raise ConfigError(msg)
        info = copy_experiment(self, store, name or self.name, replace=if_exists == "replace")
        return RunsExperiment.load(store, info)

    def merge_runs(self, *collections: Mapping[int, Run]) -> RunsExperiment:
        """Copy the runs of other experiments (or of a union of their runs) into this one.

        Each copy gets a new id of this experiment and keeps the run's params, fields,
        status, timings, error, metric points and sequences; the originals are untouched.
        Runs of this experiment itself are skipped.

        Examples
        --------
        >>> import trialbook
        >>> session = trialbook.create_session("sqlite:///:memory:")
        >>> e1, e2 = session.create_experiment("e1"), session.create_experiment("e2")
        >>> _ = e1.add_run(a=1).fields.update(c=10)
        >>> _ = e2.add_run(b=2).fields.update(c=20)
        >>> merged = session.create_experiment("both").merge_runs(e1.runs, e2.runs)
        >>> merged.df()[["a", "b", "c"]]
                   a     b   c
        run_id
        1          1  <NA>  10
        2       <NA>     2  20
        >>> session.close()
        """
        from trialbook.runs_copy import copy_run

        own = set(map(id, self.runs.values()))
        for collection in collections:
            if not isinstance(collection, Mapping):
                msg = (
                    f"merge_runs takes collections of runs such as other.runs (got "
                    f"{collection!r} that is a {type(collection)})"
                )
                raise ConfigError(msg)
            for run in list(collection.values()):
                if id(run) not in own:
                    copy_run(run, self.add_run(**run.params))
        return self


_ONLY = {
    "pending": frozenset({"pending"}),
    "failed": frozenset({"failed"}),
    "unfinished": frozenset({"pending", "running", "failed"}),
}


def _select(runs: list[Run], only: str | None) -> list[Run]:
    """The runs whose status ``only`` asks for (all of them for ``None``)."""
    if only is None:
        return runs
    statuses = _ONLY.get(only) if isinstance(only, str) else None
    if statuses is None:
        msg = f"only must be 'pending', 'failed', 'unfinished' or None for every run (got {only!r})"
        raise ConfigError(msg)
    return [run for run in runs if str(run.status) in statuses]


def runs_frame(runs: Iterable[Run | RunView]) -> pd.DataFrame:
    """A table of runs: one row each, indexed by ``run_id``.

    Columns: params, then ``status``, ``started``, ``finished``, ``duration`` (seconds),
    ``error``, ``result`` (when some run has one: trials and jobs), then scalar fields, the
    last value of each metric and the tags. A field whose name is taken by a param or one of
    those columns gets a ``field.`` prefix; metric columns are ``metric.<name>``, tag columns
    ``tag.<name>`` (a tag that only repeats the param of the same name, as a task's tagged
    params do, is not repeated).

    Every param is a column: lists, tuples and dicts hold each run's own value (as Python
    objects), and integer params stay integers where some runs lack them (nullable ``Int64``).

    Examples
    --------
    >>> import trialbook
    >>> session = trialbook.create_session("sqlite:///:memory:")
    >>> exp = session.create_experiment("e")
    >>> _ = exp.add_runs(layers=[[64, 64], [128]], opt=[None, {"name": "adam"}])
    >>> exp.df()[["layers", "opt"]]
              layers               opt
    run_id
    1       [64, 64]              None
    2       [64, 64]  {'name': 'adam'}
    3          [128]              None
    4          [128]  {'name': 'adam'}
    >>> session.close()
    """

    from trialbook.tracking import iter_scalars

    runs = list(runs)
    if not runs:
        return _empty_frame()
    n = len(runs)
    params: dict[str, list[Any]] = {}
    extra: dict[str, list[Any]] = {}
    status, started, finished, duration, error = [], [], [], [], []
    reserved = {"status", "started", "finished", "duration", "error"}
    results = [run.result for run in runs]
    if any(result is not None for result in results):
        reserved.add("result")  # trials and jobs: their result is a column
    for i, run in enumerate(runs):
        for name, value in run.params.items():
            column = params.get(name)
            if column is None:
                column = params[name] = [None] * n
            column[i] = value
        status.append(run.status)
        started.append(run.started)
        finished.append(run.finished)
        duration.append(run.duration)
        error.append(None if run.error is None else str(run.error))
        for name, value in iter_scalars(run.fields):
            key = f"field.{name}" if name in run.params or name in reserved else name
            column = extra.get(key)
            if column is None:
                column = extra[key] = [None] * n
            column[i] = value
        for name, (_, last) in run.metric_summary().items():
            column = extra.get(f"metric.{name}")
            if column is None:
                column = extra[f"metric.{name}"] = [None] * n
            column[i] = last
    fixed: dict[str, list[Any]] = {
        "status": status, "started": started, "finished": finished, "duration": duration,
        "error": error,
    }  # fmt: skip
    extra.update(_tag_columns(runs))
    ids = [run.id for run in runs]
    return table_of(ids, params, fixed, results if "result" in reserved else None, extra)


def table_of(
    ids: Any,
    params: Mapping[str, Any],
    fixed: Mapping[str, Any],
    results: list[Any] | None,
    extra: Mapping[str, Any],
) -> pd.DataFrame:
    """The frame of :func:`runs_frame` from its columns as lists, one item per run: ``params``
    and ``extra`` (fields, metrics, tags) by column name, ``fixed`` the lists of ``status``,
    ``started``, ``finished``, ``duration`` and ``error`` (text), ``results`` or ``None`` for
    no result column. A column (and ``ids``) may also be an array of what the list would
    become (NumPy numbers, a nullable ``Int64`` array, floats with NaN for ``None``).

    Examples
    --------
    >>> fixed = {"status": ["done"], "started": [1.0], "finished": [2.0], "duration": [1.0],
    ...          "error": [None]}
    >>> table_of([7], {"x": [3]}, fixed, None, {"metric.loss": [0.5]}).loc[7, "metric.loss"]
    np.float64(0.5)
    """
    import pandas as pd

    columns = {name: _param_column(values) for name, values in params.items()}
    frame_fixed: dict[str, Any] = {
        "status": fixed["status"],
        "started": pd.to_datetime(pd.Series(fixed["started"], dtype="float64"), unit="s").array,
        "finished": pd.to_datetime(pd.Series(fixed["finished"], dtype="float64"), unit="s").array,
        "duration": pd.array(fixed["duration"], dtype="float64"),
        "error": fixed["error"],
    }
    if results is not None:
        frame_fixed["result"] = _param_column(results)
    index = pd.Index(ids, name="run_id")
    extra = {name: _param_column(values) for name, values in extra.items()}
    return pd.DataFrame({**columns, **frame_fixed, **extra}, index=index)


def _param_column(values: Any) -> Any:
    """A param column for pandas: nullable ``Int64`` for integers with gaps, one object per
    cell for anything but plain scalars (pandas would read a list of lists as 2-D); a column
    that is already an array (of the values a list would give) as it is."""
    if not isinstance(values, list):
        return values
    return _list_column(values)


def _tag_columns(runs: list[Run | RunView]) -> dict[str, list[Any]]:
    """``tag.<name>`` columns of the runs' scalar tags, except a tag that only repeats the
    param of the same name in every run (a task's tagged params are already columns)."""
    from trialbook.tracking import iter_scalars

    tags: dict[str, list[Any]] = {}
    for i, run in enumerate(runs):
        for name, value in iter_scalars(run.tags):
            column = tags.get(name)
            if column is None:
                column = tags[name] = [None] * len(runs)
            column[i] = value
    return {
        f"tag.{name}": values
        for name, values in tags.items()
        if any(name not in run.params or run.params[name] != value
               for run, value in zip(runs, values, strict=True) if value is not None)
    }  # fmt: skip


def _list_column(values: list[Any]) -> Any:
    kinds = {type(v) for v in values}
    if kinds == {int, type(None)}:
        import pandas as pd

        return pd.array(values, dtype="Int64")
    if kinds <= _PLAIN_SCALARS:
        return values
    import numpy as np

    cells = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        cells[i] = value
    return cells


def _empty_frame() -> pd.DataFrame:
    import pandas as pd

    columns = ["status", "started", "finished", "duration", "error"]
    return pd.DataFrame(columns=columns, index=pd.Index([], name="run_id", dtype="int64"))


def _axis(name: str, values: Any) -> list[Any]:
    if isinstance(values, list | tuple | range | set | frozenset):
        return list(values)
    if type(values).__module__.partition(".")[0] in {"numpy", "pandas"} and getattr(
        values, "ndim", None
    ):
        return list(values.tolist())
    if isinstance(values, Mapping):
        msg = f"grid values of {name!r} must be a list of values (got a {type(values)})"
        raise ConfigError(msg)
    return [values]


def _check_steps(steps: Step | Sequence[Step]) -> list[Step]:
    step_list = [steps] if callable(steps) else list(steps)
    for i, step in enumerate(step_list):
        if not callable(step):
            msg = (
                f"step {i} is not callable (got {step!r} that is a {type(step)}); steps are "
                "functions taking one run: def step(run): ..."
            )
            raise ConfigError(msg)
    return step_list


@contextmanager
def _progress_bar(progress: bool | None, total: int, name: str) -> Iterator[Callable[[int], None]]:
    if progress is None:
        progress = total > 50 and sys.stderr.isatty()
    if not progress:
        yield lambda n: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(f"executing {name}", total=total)
        yield lambda n: bar.advance(task, n)
