"""Exceptions and warnings raised by trialbook.

Every error trialbook raises derives from :class:`TrialbookError`. Errors fall in families
(configuration, storage, not-found, execution, fingerprinting); leaf classes also derive from
the matching builtin so that ``except KeyError`` or ``except ValueError`` keeps working.

This module imports nothing from trialbook.

Examples
--------
>>> from trialbook.errors import ExperimentNotFoundError, NotFoundError
>>> err = ExperimentNotFoundError("exp", available=["a", "b"])
>>> isinstance(err, NotFoundError) and isinstance(err, KeyError)
True
>>> print(err)  # doctest: +ELLIPSIS
no experiment named 'exp' in this store (it has: 'a', 'b'); list them with `trialbook ls`...
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

__all__ = [
    "CodecError",
    "ConfigError",
    "CorruptStoreError",
    "ExecutionError",
    "ExperimentExistsError",
    "ExperimentNotFoundError",
    "FingerprintError",
    "JobFailedError",
    "JournalWarning",
    "LockedTrialError",
    "MissingExtraError",
    "NotFoundError",
    "QueryError",
    "RunConflictError",
    "RunFailedError",
    "RunNotFoundError",
    "SchemaVersionError",
    "SealedError",
    "StorageError",
    "StoreFormatError",
    "StoreUnavailableError",
    "TrialbookError",
    "TrialbookWarning",
    "did_you_mean",
]


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest option, or ``""``.

    Examples
    --------
    >>> did_you_mean("epoch", ["lr", "learning_rate", "epochs"])
    " (did you mean 'epochs'?)"
    >>> did_you_mean("zzz", ["lr"])
    ''
    """
    import difflib  # only on the error path: keeps `import trialbook` fast

    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _listing(names: Iterable[object], limit: int = 10) -> str:
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return shown + more if names else "none"


class TrialbookError(Exception):
    """Base class of every error raised by trialbook.

    Every one pickles with its message and structured fields, so that it travels back from a
    worker process (a ``multiprocessing`` pool cannot even report an exception it fails to
    unpickle: it waits forever).

    Examples
    --------
    >>> import pickle
    >>> err = pickle.loads(pickle.dumps(RunConflictError("exp", [(1, 2, 3)])))
    >>> err.run_ids, str(err).startswith("run 1 of experiment 'exp'")
    ([1], True)
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # the subclasses' __init__ take other arguments than their message: rebuild without it
        return (_rebuild_error, (type(self), self.args, self.__dict__))


def _rebuild_error(
    cls: type[TrialbookError], args: tuple[Any, ...], state: dict[str, Any]
) -> TrialbookError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class MissingExtraError(TrialbookError, ImportError):
    """A feature needs an optional package: the message names the extra to install
    (``pip install 'trialbook[ui]'``); see :mod:`trialbook.extras`."""


class TrialbookWarning(UserWarning):
    """Recoverable degradation (a value that could not be captured, a slow path taken)."""


class JournalWarning(TrialbookWarning):
    """A write the store's server did not take in time is kept in the local journal (see
    :mod:`trialbook.journal`); it is written later, or with ``trialbook flush``.

    Examples
    --------
    >>> issubclass(JournalWarning, TrialbookWarning)
    True
    """


# -- configuration -------------------------------------------------------------------------------


class ConfigError(TrialbookError, ValueError):
    """A value given by the user is not acceptable (wrong type, unknown name, bad format)."""


class QueryError(ConfigError):
    """A filter of the query language (:mod:`trialbook.storage.query`) that cannot be used:
    ``.query`` is the filter (without its leading and trailing blanks), ``.column`` the
    1-based column in it where the problem is (``None`` when it is the whole filter, e.g.
    nested too deeply) and ``.length`` how many characters the problem spans, so that a UI
    can mark the spot.

    Examples
    --------
    >>> from trialbook.storage.query import parse_query
    >>> try:
    ...     parse_query("lr > 0.1 and f(x) == 1")
    ... except QueryError as exc:
    ...     print(exc.query)
    ...     print(" " * (exc.column - 1) + "^" * exc.length)
    lr > 0.1 and f(x) == 1
                 ^^^^
    """

    def __init__(self, message: str, *, query: str = "", column: int | None = None,
                 length: int = 1) -> None:  # fmt: skip
        super().__init__(message)
        self.query, self.column, self.length = query, column, max(1, length)


class CodecError(ConfigError, TypeError):
    """A value cannot be encoded (or decoded) safely."""


class SealedError(ConfigError, AttributeError):
    """A submitted (sealed) task configuration was changed."""


class LockedTrialError(ConfigError):
    """An experiment's ``trial_id`` (its last trial) was read while one of its trials runs.

    Inside a step, the id of the trial being computed is ``ex.current_trial_id``; ``trial_id``
    would be ambiguous there (another process may have started a later trial meanwhile).
    ``running`` is the id of the trial in progress.

    Examples
    --------
    >>> err = LockedTrialError("quickstart_pj", running=3)
    >>> isinstance(err, ValueError), err.running
    (True, 3)
    >>> print(err)  # doctest: +ELLIPSIS
    trial_id of experiment 'quickstart_pj' was read while its trial 3 is running; ...
    """

    def __init__(self, experiment: str, *, running: int) -> None:
        self.experiment = experiment
        self.running = running
        msg = (
            f"trial_id of experiment {experiment!r} was read while its trial {running} is "
            "running; inside a step use ex.current_trial_id (the id of the running trial), "
            "and read ex.trial_id after compute() returns"
        )
        super().__init__(msg)


class FingerprintError(TrialbookError, TypeError):
    """A value cannot be hashed deterministically."""


# -- storage -------------------------------------------------------------------------------------


class StorageError(TrialbookError, OSError):
    """The store could not be opened, read or written."""


class StoreFormatError(StorageError):
    """The location exists but does not hold a trialbook store, or it is corrupt."""


class CorruptStoreError(StoreFormatError):
    """Stored bytes changed on disk: a blob or metric chunk no longer has the content hash it
    was written with (or its size), or is gone. Raised on read instead of returning wrong data;
    ``run_id`` and ``field`` (e.g. ``"field 'w'"``, ``"metric 'loss'"``) say which value when
    known, ``blob`` names the damaged file or row.

    Examples
    --------
    >>> err = CorruptStoreError("its bytes changed", blob="ab12", run_id=3, field="field 'w'")
    >>> err.experiment = "sweep"
    >>> print(err)  # doctest: +ELLIPSIS
    field 'w' of run 3 of experiment 'sweep' is corrupt: blob ab12: its bytes changed; ...
    """

    def __init__(
        self,
        problem: str,
        *,
        blob: str,
        run_id: int | None = None,
        field: str | None = None,
        experiment: str | int | None = None,
    ) -> None:
        super().__init__(problem)
        self.problem, self.blob = problem, blob
        self.run_id, self.field, self.experiment = run_id, field, experiment

    def __str__(self) -> str:
        where = [self.field or "a stored value"]
        if self.run_id is not None:
            where.append(f"of run {self.run_id}")
        if self.experiment is not None:
            where.append(f"of experiment {self.experiment!r}")
        return (
            f"{' '.join(where)} is corrupt: blob {self.blob}: {self.problem}; restore the store "
            "from a backup (trialbook restore) or delete that run; `trialbook check` lists "
            "every damaged value"
        )


class SchemaVersionError(StorageError):
    """The store was written by a newer trialbook whose schema this version cannot read."""


class StoreUnavailableError(StorageError):
    """The store's server could not be reached, or kept losing the connection, for longer
    than the retry budget of the operation (``retry_seconds``, 30 s by default). Nothing of
    that operation is known to be stored; the store reconnects by itself once the server is
    back, so the same process may try again.

    ``store`` (the backend and its URL, without password), ``operation``, ``seconds`` (the
    budget) and ``attempts`` say what failed; the driver's last exception is the ``__cause__``.

    Examples
    --------
    >>> store = "RedisBackend 'redis://db:6379/0'"
    >>> print(StoreUnavailableError(store, "write_runs", 30.0, 9, "refused"))  # doctest: +ELLIPSIS
    store unreachable: RedisBackend 'redis://db:6379/0' did not answer write_runs for 30 s (9 ...
    """

    def __init__(
        self, store: str, operation: str, seconds: float, attempts: int, reason: str
    ) -> None:
        self.store, self.operation = store, operation
        self.seconds, self.attempts = seconds, attempts
        msg = (
            f"store unreachable: {store} did not answer {operation} for {seconds:g} s "
            f"({attempts} attempt{'s' * (attempts != 1)}; last error: {reason}); check that "
            "the server runs, then try again (the store reconnects by itself), or allow a "
            "longer outage with ?retry_seconds=N in the store URL"
        )
        super().__init__(msg)


class ExperimentExistsError(StorageError, FileExistsError):
    """An experiment of that name already exists where a new one was to be created."""

    def __init__(self, name: str, detail: str | None = None) -> None:
        self.name = name
        msg = (
            f"an experiment named {name!r} already exists in this store; load it with "
            f"session.load_experiment({name!r}), or pass if_exists='replace' to delete it, "
            "with all its runs, and store the new one in its place"
        )
        super().__init__(detail or msg)


class RunConflictError(StorageError):
    """Runs were changed in the store by another session (or process) since this one read
    them: the write that carried them was refused as a whole, nothing of it was applied.

    ``conflicts`` lists ``(run id, version this write expected, version stored)``; a stored
    version of ``None`` means the run was deleted meanwhile. ``applied`` replaces "nothing of
    this write was applied" where a backend without transactions could not keep that promise.

    Examples
    --------
    >>> err = RunConflictError("exp", [(1, 2, 3)])
    >>> err.run_ids
    [1]
    >>> print(err)  # doctest: +ELLIPSIS
    run 1 of experiment 'exp' was changed by another session since it was read (stored ...
    """

    def __init__(
        self,
        experiment: str | int,
        conflicts: Iterable[tuple[int, int | None, int | None]],
        *,
        applied: str | None = None,
    ) -> None:
        self.experiment = experiment
        self.conflicts = sorted(conflicts)
        self.run_ids = [run_id for run_id, _, _ in self.conflicts]
        name = repr(experiment) if isinstance(experiment, str) else f"id {experiment}"
        run_id, expected, found = self.conflicts[0]
        state = "deleted" if found is None else f"version {found}"
        more = len(self.conflicts) - 1
        others = f" (and {more} other run{'s' * (more != 1)}: {_listing(self.run_ids[1:])})"
        msg = (
            f"run {run_id} of experiment {name} was changed by another session since it was "
            f"read (stored {state}, this write expected version {expected})"
            f"{others if more else ''}; {applied or 'nothing of this write was applied'}. "
            "Reload the experiment (session.load_experiment) and apply your changes again"
        )
        super().__init__(msg)


# -- not found -----------------------------------------------------------------------------------


class NotFoundError(TrialbookError, LookupError):
    """Something asked for by name or id does not exist."""


class ExperimentNotFoundError(NotFoundError, KeyError):
    """No experiment of that name (``.name``), or of that id (``.experiment_id``: an experiment
    deleted or replaced after it was opened), exists in the store.

    Examples
    --------
    >>> err = ExperimentNotFoundError(experiment_id=3, store="sqlite:///t.db")
    >>> err.name, err.experiment_id
    (None, 3)
    >>> print(err)  # doctest: +ELLIPSIS
    experiment id 3 no longer exists in 'sqlite:///t.db': it was deleted or replaced ...
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        available: Iterable[str] = (),
        experiment_id: int | None = None,
        store: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.name = name
        self.experiment_id = experiment_id
        if detail is not None:
            msg = detail
        elif name is None:
            where = f" in {store!r}" if store else ""
            msg = (
                f"experiment id {experiment_id} no longer exists{where}: it was deleted or "
                "replaced after it was opened; open it again by name"
            )
        else:
            available = list(available)
            msg = (
                f"no experiment named {name!r} in this store (it has: {_listing(available)})"
                f"{did_you_mean(name, available)}; list them with `trialbook ls` or session.ls()"
            )
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class RunNotFoundError(NotFoundError, KeyError):
    """No run with that id exists in the experiment."""

    def __init__(self, experiment: str, run_id: object, *, available: Iterable[int] = ()) -> None:
        self.experiment = experiment
        self.run_id = run_id
        ids = sorted(available)
        span = f"{ids[0]}..{ids[-1]}" if len(ids) > 1 else _listing(ids)
        msg = (
            f"experiment {experiment!r} has no run with id {run_id!r} "
            f"(it has {len(ids)} runs, ids {span})"
        )
        super().__init__(msg)

    def __str__(self) -> str:
        return str(self.args[0])


# -- execution -----------------------------------------------------------------------------------


class ExecutionError(TrialbookError, RuntimeError):
    """Work could not be executed (bad steps, a worker died)."""


class RunFailedError(ExecutionError):
    """One or more runs failed; the first failure's exception is the ``__cause__``.

    Fields: ``experiment`` (its name), ``failures`` (each failed run id and its error
    summary, ``"ValueError: ..."``), ``failed`` (those ids, sorted), ``succeeded`` (the ids of
    the runs of that execution that finished) and ``stored`` (whether ``execute`` persisted
    them). The message says where the finished runs are and how to re-run only the failed
    ones; ``not_stored`` says why they were not stored, when they were not.

    Examples
    --------
    >>> err = RunFailedError("sweep", {2: "ValueError: bad"}, succeeded=[1, 3], stored=True)
    >>> err.failed, err.succeeded
    ([2], [1, 3])
    >>> print(err)
    run 2 of experiment 'sweep' failed: ValueError: bad; see run.error for each failed run's
    traceback. The 2 runs that finished are stored, and the failed one as failed (execute
    persisted them); re-run the failed one with experiment.execute(steps, run_ids=[2]), then
    persist()
    """

    def __init__(
        self,
        experiment: str,
        failures: dict[int, str],
        *,
        succeeded: Iterable[int] | None = None,
        stored: bool = False,
        not_stored: str = "",
    ) -> None:
        self.experiment = experiment
        self.failures = dict(failures)
        self.failed = sorted(self.failures)
        self.succeeded = sorted(succeeded or ())
        self.stored = stored
        first_id, first = next(iter(self.failures.items()))
        others = len(self.failures) - 1
        more = f" and {others} other run{'s' if others != 1 else ''} failed too" if others else ""
        msg = (
            f"run {first_id} of experiment {experiment!r} failed: {first}{more}; "
            "see run.error for each failed run's traceback"
        )
        if succeeded is not None:
            msg += _after_failure(self.failed, len(self.succeeded), stored, not_stored)
        super().__init__(msg)


def _after_failure(failed: list[int], finished: int, stored: bool, not_stored: str) -> str:
    """Where the runs of a failed execution are, and how to re-run the failed ones."""
    ones = "one" if len(failed) == 1 else "ones"
    rerun = f"re-run the failed {ones} with experiment.execute(steps, run_ids={failed})"
    runs, are = ("run", "is") if finished == 1 else ("runs", "are")
    if stored:
        return (
            f". The {finished} {runs} that finished {are} stored, and the failed {ones} as "
            f"failed (execute persisted them); {rerun}, then persist()"
        )
    why = f" ({not_stored})" if not_stored else ""
    return (
        f". {finished} {runs} finished and {are} kept in memory only{why}: call "
        f"experiment.persist() to store them (the failed {ones} as failed), then {rerun}"
    )


class JobFailedError(ExecutionError):
    """Jobs of a task experiment failed; ``failures`` maps each job (``task/id``) to its reason,
    ``never_ran`` holds the jobs (keys of ``failures``) that never started, e.g. because a
    dependency failed or the experiment was stopped: they have no ``stderr.log`` to look at.

    Examples
    --------
    >>> print(JobFailedError("fit", {"a": "ValueError: boom", "b": "dependency a failed"},
    ...                      never_ran={"b"}))
    2 jobs of experiment 'fit' failed (see stderr.log in the directory of each job that ran):
      a: ValueError: boom
      b: never ran: dependency a failed
    """

    def __init__(
        self, experiment: str, failures: dict[str, str], *, never_ran: Collection[str] = ()
    ) -> None:
        self.experiment = experiment
        self.failures = dict(failures)
        self.never_ran = frozenset(never_ran)
        lines = "".join(
            f"\n  {job}: {'never ran: ' if job in self.never_ran else ''}{why}"
            for job, why in self.failures.items()
        )
        count = len(self.failures)
        if not self.never_ran:
            where = " (see stderr.log in each job directory)"
        elif self.never_ran.issuperset(self.failures):
            where = ", none of them started"
        else:
            where = " (see stderr.log in the directory of each job that ran)"
        jobs = f"{count} job{'s' if count != 1 else ''}"
        msg = f"{jobs} of experiment {experiment!r} failed{where}:{lines}"
        super().__init__(msg)
