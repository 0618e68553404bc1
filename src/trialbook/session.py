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
>>> session.close()
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from trialbook.errors import (
    ConfigError,
    ExperimentExistsError,
    ExperimentNotFoundError,
    StorageError,
)
from trialbook.notes import note_text
from trialbook.runs import RunsExperiment, experiment_id, new_experiment_id
from trialbook.storage import open_store
from trialbook.tracking import Run, paused_gc

if TYPE_CHECKING:
    import pandas as pd

    from trialbook.storage.base import Store
    from trialbook.storage.records import CheckReport, ExperimentInfo, GcReport

__all__ = ["Session", "create_experiment", "create_session"]

_IF_EXISTS = ("fail", "append", "replace")
_CLAIMS: weakref.WeakValueDictionary[tuple[int, int], RunsExperiment] = (
    weakref.WeakValueDictionary()
)
"""The experiments this process claimed, by (id of the store object, experiment id)."""


def create_session(
    url: str | os.PathLike[str] | Store | None = None,
    *,
    allow_pickle: bool = False,
    retry_seconds: float | None = None,
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
    retry_seconds
        On a server store (PostgreSQL, Redis, MongoDB): how long each operation is retried
        while the server cannot be reached before it raises
        :class:`~trialbook.errors.StoreUnavailableError` (default 30; the URL may say it too,
        ``?retry_seconds=N``).

    The session owns a store it opened from ``url`` and closes it in :meth:`Session.close`
    (or at the end of ``with create_session(...) as session:``); an open store given as
    ``url`` is left open for its owner.

    Examples
    --------
    >>> with create_session("sqlite:///:memory:") as session:
    ...     session.store
    SqliteStore('sqlite:///:memory:')
    """
    store = open_store(url, allow_pickle=allow_pickle, retry_seconds=retry_seconds)
    return Session(store, owns_store=store is not url)


_SCRATCH: list[Session] = []
_SCRATCH_LOCK = threading.Lock()


def create_experiment(name: str | None = None, *, if_exists: str = "fail") -> RunsExperiment:
    """A new experiment in this process's scratch session: an in-memory store, gone when the
    process exits (MLtraq's module-level ``create_experiment()``).

    The first call opens the scratch session (``sqlite:///:memory:``) and closes it at
    exit; every call creates its experiment there (``name`` and ``if_exists`` as in
    :meth:`Session.create_experiment`). To keep what you compute, create a session on a store
    instead: ``create_session().create_experiment(name)``, or copy the experiment there with
    :meth:`~trialbook.runs.RunsExperiment.copy_to`.

    Examples
    --------
    >>> import trialbook
    >>> experiment = trialbook.create_experiment()
    >>> with experiment.run() as run:
    ...     run.fields.accuracy = 0.9
    >>> experiment.runs.first().fields.accuracy
    0.9
    >>> _ = experiment.persist()  # into the in-memory store
    """
    with _SCRATCH_LOCK:
        if not _SCRATCH:
            _SCRATCH.append(create_session("sqlite:///:memory:"))
            atexit.register(_SCRATCH[0].close)
        session = _SCRATCH[0]
    return session.create_experiment(name, if_exists=if_exists)


class Session:
    """A connection to one store, to create, load, list and delete experiments.

    Parameters
    ----------
    store
        An open store.
    owns_store
        Whether :meth:`close` closes ``store`` (:func:`create_session` says so for a store it
        opened); by default the store stays open for the caller who opened it.

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> with open_store("sqlite:///:memory:") as store:
    ...     with Session(store) as session:
    ...         _ = session.create_experiment("kept")
    ...     [e.name for e in store.list_experiments()]  # the session left the store open
    ['kept']
    """

    def __init__(self, store: Store, *, owns_store: bool = False) -> None:
        self.store = store
        self.owns_store = owns_store

    def __repr__(self) -> str:
        count = sum(1 for e in self.store.list_experiments() if e.runs or not e.meta.get("claim"))
        return f"Session(url={self.store.url!r}, experiments={count})"

    def _repr_html_(self) -> str:
        """The session in a notebook: a table of its experiments (name, kind, runs, created),
        from the store's list (run counts kept by the store: no run is read).

        Examples
        --------
        >>> with create_session("sqlite:///:memory:") as session:
        ...     _ = session.create_experiment("a<b>").persist()
        ...     text = session._repr_html_()
        >>> "<table" in text and "a&lt;b&gt;" in text
        True
        """
        import datetime as dt

        from trialbook import notebook

        infos = [e for e in self.store.list_experiments() if e.runs or not e.meta.get("claim")]
        rows = [
            [e.name, e.meta.get("kind") or "runs", e.runs, dt.datetime.fromtimestamp(e.created)]
            for e in infos[: notebook.ROWS * 5]
        ]
        table = notebook.rows_table(
            ["name", "kind", "runs", "created"], rows, more=len(infos) - len(rows)
        )
        subtitle = f"{self.store.url} · {notebook.count(len(infos), 'experiment')}"
        return notebook.card("Session", subtitle, [("Experiments", table if infos else "")])

    def ls(self) -> pd.DataFrame:
        """The persisted experiments: ``name``, ``runs``, ``created``, ``updated``.

        Examples
        --------
        >>> with create_session("sqlite:///:memory:") as session:
        ...     session.ls()
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

    def create_experiment(
        self, name: str | None = None, *, if_exists: str = "fail"
    ) -> RunsExperiment:
        """A new, empty experiment whose name is claimed in the store at once.

        Without a name, the experiment gets a generated one, unique in the store: the first
        eight characters of its ``id_experiment`` (a new UUID).

        The claim makes a second script with the same name fail here, before it computes
        anything (two launches at once: one proceeds, the other fails). A claimed experiment is
        listed with 0 runs by ``ls()``; the session's count of experiments includes it only
        once it is persisted. A claim left by a process that died before persisting anything
        (an exception, ``kill -9``) does not block: a claim with no runs made on this host by
        a process that no longer runs (or by this process) is taken over.

        ``if_exists="append"`` is an atomic "open, else create": processes that call it with
        the same name at the same moment all get the same experiment (the store creates it
        once; the others open it, even while it is only claimed), and the runs each one adds
        get distinct ids.

        Names are exact: ``"my-exp"`` and ``"My Exp"`` are two experiments.

        Parameters
        ----------
        if_exists
            What to do when the store has an experiment of that name: ``"fail"`` (default)
            raises :class:`~trialbook.errors.ExperimentExistsError`; ``"append"`` returns it
            loaded (as :meth:`load_experiment`), to add runs to it (also one that another
            process has claimed and not persisted yet); ``"replace"`` returns a new experiment
            that replaces the stored one at its first ``persist()``, in the same transaction,
            **deleting the stored runs**: until then the old one stays complete in the store.

        Raises
        ------
        ConfigError
            If ``name`` is not ``None`` or a non-empty string, or ``if_exists`` is unknown.
        ExperimentExistsError
            If the name is taken (``if_exists="fail"``), or claimed by a process that still
            runs or runs on another host (``if_exists="fail"``).

        Examples
        --------
        >>> session = create_session("sqlite:///:memory:")
        >>> first = session.create_experiment("sweep")
        >>> _ = first.add_runs(x=[1, 2])
        >>> _ = first.persist()
        >>> session.create_experiment("sweep")
        Traceback (most recent call last):
        ...
        trialbook.errors.ExperimentExistsError: an experiment named 'sweep' already exists ...
        >>> session.create_experiment("sweep", if_exists="append")
        Experiment(name='sweep', runs.count=2)
        >>> session.create_experiment("sweep", if_exists="replace")
        Experiment(name='sweep', runs.count=0)
        >>> unnamed = session.create_experiment()
        >>> unnamed.name == unnamed.id_experiment[:8]
        True
        >>> session.close()
        """
        if name is None:
            return self._create_unnamed()
        name = _check_name(name)
        if if_exists not in _IF_EXISTS:
            msg = f"if_exists must be 'fail', 'append' or 'replace' (got {if_exists!r})"
            raise ConfigError(msg)
        for _ in range(3):  # the stored experiment may vanish or appear while we look
            info = self.store.find_experiment(name)
            if info is None:
                try:
                    return self._claim(name, None)
                except ExperimentExistsError:  # another process created it meanwhile (#18)
                    continue  # look again: "append" opens it, "fail" names it
            if if_exists == "replace":
                return RunsExperiment(name, self.store, replaces=info.id)
            if if_exists == "append":  # opened as it is, claimed or not: never taken over
                return RunsExperiment.load(self.store, info)
            claim = info.meta.get("claim")
            if claim and _abandoned(info):
                return self._claim(name, info)
            if claim and not info.runs:  # with runs, a claim is left over: the data counts
                raise ExperimentExistsError(name, _claimed_message(name, claim))
            raise ExperimentExistsError(name, _exists_message(name, info))
        msg = (
            f"experiment {name!r} kept appearing and vanishing while this process looked for "
            "it (other processes create and delete it): try again"
        )
        raise ExperimentExistsError(name, msg)

    def _create_unnamed(self) -> RunsExperiment:
        """A new experiment named after its new id (another id if that name is taken)."""
        for _ in range(100):
            new_id = new_experiment_id()
            try:
                return self._claim(new_id[:8], None, new_id)
            except ExperimentExistsError:
                continue
        msg = "could not find a free generated experiment name; give the experiment a name"
        raise ExperimentExistsError("", msg)

    def _claim(
        self, name: str, abandoned: ExperimentInfo | None, new_id: str | None = None
    ) -> RunsExperiment:
        """Create the experiment in the store now, claimed by this process (taking over the
        abandoned claim ``abandoned``: only if it is still that experiment), with the id
        ``new_id`` (default: a new UUID)."""
        meta = {
            "claim": {"host": _host(), "pid": os.getpid(), "at": time.time()},
            "id": new_id or new_experiment_id(),
        }
        if abandoned is None:
            info = self.store.create_experiment(name, meta=meta)
        else:
            try:
                info = self.store.create_experiment(
                    name, meta=meta, replace=True, replace_id=abandoned.id
                )
            except ExperimentExistsError:
                msg = (
                    f"experiment {name!r} was just taken by another process; load it with "
                    f"session.load_experiment({name!r}) once it is persisted, or choose "
                    "another name"
                )
                raise ExperimentExistsError(name, msg) from None
            previous = _CLAIMS.pop((id(self.store), abandoned.id), None)
            if previous is not None:
                previous._superseded = True
        experiment = RunsExperiment(name, self.store, info=info, claimed=True)
        _CLAIMS[id(self.store), info.id] = experiment
        return experiment

    def load_experiment(
        self, name: str | None = None, *, id_experiment: str | None = None
    ) -> RunsExperiment:
        """Load a persisted experiment with its runs (params, fields, status, metrics summary)
        and its ``fields``, by its exact name or by its ``id_experiment``.

        Raises
        ------
        ConfigError
            Unless exactly one of ``name`` and ``id_experiment`` is given.
        ExperimentNotFoundError
            If the store has no experiment of that exact name or id.

        Examples
        --------
        >>> session = create_session("sqlite:///:memory:")
        >>> experiment = session.create_experiment("sweep")
        >>> experiment.fields.dataset = "iris"
        >>> _ = experiment.persist()
        >>> loaded = session.load_experiment(id_experiment=experiment.id_experiment)
        >>> loaded.name, loaded.fields.dataset
        ('sweep', 'iris')
        >>> session.close()
        """
        if (name is None) == (id_experiment is None):
            msg = (
                "load_experiment takes a name or an id_experiment (got "
                f"name={name!r}, id_experiment={id_experiment!r})"
            )
            raise ConfigError(msg)
        if id_experiment is not None:
            return RunsExperiment.load(self.store, self._find_by_id(id_experiment))
        info = self.store.find_experiment(_check_name(name))
        if info is None:
            names = [e.name for e in self.store.list_experiments()]
            raise ExperimentNotFoundError(str(name), available=names)
        return RunsExperiment.load(self.store, info)

    def _find_by_id(self, id_experiment: str) -> ExperimentInfo:
        infos = self.store.list_experiments()
        for info in infos:
            if experiment_id(info) == str(id_experiment):
                return info
        msg = (
            f"no experiment with id_experiment {id_experiment!r} in this store (it has "
            f"{len(infos)} experiments); list them with session.ls()"
        )
        raise ExperimentNotFoundError(str(id_experiment), detail=msg)

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
        trialbook.errors.QueryError: bad query 'loss == hinge': `hinge` at column 9 is not a
        parameter, field or tag of any run of this experiment; to compare with a text, quote
        it: loss == "hinge"
        >>> session.close()
        """
        from trialbook.runs import runs_frame
        from trialbook.storage.query import query_runs

        info = self.store.find_experiment(_check_name(experiment))
        if info is None:
            names = [e.name for e in self.store.list_experiments()]
            raise ExperimentNotFoundError(experiment, available=names)
        total, page = query_runs(
            self.store, info.id, where=where, order_by=order_by, descending=descending,
            limit=limit, offset=offset, meta=info.meta,
        )  # fmt: skip
        allow_pickle = self.store.allow_pickle
        with paused_gc():
            frame = runs_frame(Run.from_record(r, allow_pickle=allow_pickle) for r in page)
        frame.attrs["total"] = total
        return frame

    def gc(self, *, min_age: float = 3600.0, dry_run: bool = False) -> GcReport:
        """Remove what nothing refers to: blobs of deleted experiments and runs, blob files of
        interrupted persists, rows of no experiment. Returns what was freed (with
        ``dry_run``, what would be).

        ``min_age`` (seconds) protects a persist in progress in another process: a blob
        written (or reused) more recently than that is kept.

        Examples
        --------
        >>> session = create_session("sqlite:///:memory:")
        >>> print(session.gc(dry_run=True))
        0 unreferenced blobs (0.0 MB) and 0 orphaned rows
        >>> session.close()
        """
        if not isinstance(min_age, int | float) or min_age < 0:
            msg = f"min_age must be a number of seconds >= 0 (got {min_age!r})"
            raise ConfigError(msg)
        return self.store.collect_garbage(min_age=float(min_age), dry_run=dry_run)

    def check(self, *, min_age: float = 3600.0) -> CheckReport:
        """Look for damage and for leftovers of crashes; change nothing.

        Every store: experiments created by a process of this host that died before it
        persisted any run (a claim left by a crash or kill). The embedded (SQLite) store also:
        the database's ``PRAGMA integrity_check``, and each blob and metric chunk file its rows
        refer to (present, bytes matching their hash), named by experiment, run and field. Each
        :class:`~trialbook.storage.records.Problem` says how to fix it; ``garbage`` is what
        :meth:`gc` would free (with the same ``min_age``).

        Examples
        --------
        >>> session = create_session("sqlite:///:memory:")
        >>> report = session.check()
        >>> report.ok, report.problems
        (True, [])
        >>> session.close()
        """
        from trialbook.storage.records import CheckReport, Problem

        check = getattr(self.store, "check", None)
        if callable(check):
            report: CheckReport = check(min_age=min_age)
        else:
            garbage = self.store.collect_garbage(min_age=min_age, dry_run=True)
            report = CheckReport(garbage=garbage)
        try:
            infos = self.store.list_experiments()
        except StorageError:
            if report.problems:  # a damaged database, reported: its rows cannot be trusted
                return report
            raise
        for info in infos:
            claim = info.meta.get("claim")
            if claim and claim.get("pid") != os.getpid() and _abandoned(info):
                report.problems.append(
                    Problem(
                        f"experiment {info.name!r} holds no runs: process {claim.get('pid')} "
                        f"created it on this host and ended before persisting any (a crash)",
                        f"delete it (session.delete_experiment({info.name!r})), or create it "
                        "again: create_experiment takes it over",
                    )
                )
        return report

    def delete_experiment(self, name: str) -> None:
        """Delete a persisted experiment and everything in it.

        Raises
        ------
        ExperimentNotFoundError
            If the store has no experiment of that exact name.
        """
        self.store.delete_experiment(_check_name(name))

    def describe(self, name: str, text: str | None) -> None:
        """Write the description (markdown text) of the stored experiment ``name`` at once,
        whichever way of working made it (runs, graph, tasks); ``None`` or a blank text
        removes it. The UI shows it on the experiment's page.

        Raises
        ------
        ExperimentNotFoundError
            If the store has no experiment of that exact name.
        ConfigError
            If ``text`` is not a str or None, or is longer than 64 KiB.

        Examples
        --------
        >>> import trialbook
        >>> with trialbook.create_session("sqlite:///:memory:") as session:
        ...     session.create_experiment("e").persist()
        ...     session.describe("e", "Baseline of the *small* model.")
        ...     session.load_experiment("e").description
        Experiment(name='e', runs.count=0)
        'Baseline of the *small* model.'
        """
        checked = note_text(text, f"the description of experiment {name!r}")
        info = self.store.find_experiment(_check_name(name))
        if info is None:
            available = [e.name for e in self.store.list_experiments()]
            raise ExperimentNotFoundError(name, available=available)
        self.store.update_meta(info.id, {"description": checked})

    def close(self) -> None:
        """Close the store if the session opened it (see :func:`create_session`); closing
        twice is harmless."""
        if self.owns_store:
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


def _host() -> str:
    import socket  # not at import: socket costs milliseconds of `import trialbook`

    return socket.gethostname()


def _abandoned(info: ExperimentInfo) -> bool:
    """Whether a claimed experiment may be taken over: nothing persisted in it, claimed on this
    host by this process or by one that no longer runs."""
    claim = info.meta.get("claim") or {}
    if info.runs or claim.get("host") != _host():
        return False
    pid = claim.get("pid")
    if pid == os.getpid():
        return True
    return isinstance(pid, int) and not _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _claimed_message(name: str, claim: dict[str, Any]) -> str:
    who = (
        "this process"
        if claim.get("pid") == os.getpid() and claim.get("host") == _host()
        else f"process {claim.get('pid')} on host {claim.get('host')!r}"
    )
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(claim.get("at") or 0))
    return (
        f"experiment {name!r} is being created by {who} (claimed at {since}, not persisted "
        f"yet); load it once it is persisted with session.load_experiment({name!r}), or add "
        f"runs to it now, also while that process runs, with "
        f"create_experiment({name!r}, if_exists='append'); or, only if that process is gone "
        f"and nobody else adds runs, create_experiment({name!r}, if_exists='replace') starts "
        "over: its first persist() deletes the stored experiment with every run persisted in "
        "it by then"
    )


def _exists_message(name: str, info: ExperimentInfo) -> str:
    return (
        f"an experiment named {name!r} already exists in this store ({info.runs} runs); "
        f"add runs to it with session.load_experiment({name!r}) or "
        f"create_experiment({name!r}, if_exists='append'), or start over with "
        f"create_experiment({name!r}, if_exists='replace'), whose first persist() deletes "
        f"the stored experiment and its {info.runs} runs"
    )
