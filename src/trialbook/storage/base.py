"""The :class:`Store` protocol every backend implements.

A store holds experiments; an experiment holds runs; a run holds params, fields, a result,
an error, metrics (chunks keyed by position) and artifacts (named binary values). Content-addressed
snapshots (code, environment) are shared by all experiments of a store.

Rules every backend follows (checked by :class:`trialbook.testing.StoreContract`):

* run ids are sequential per experiment and allocated atomically on the server side, so
  concurrent processes never get the same id;
* experiment ids are never given again: not after the experiment that had one was deleted or
  replaced, not after the store was reopened, so a process still holding an old id can never
  reach a newer experiment through it;
* a write for an experiment that no longer exists (:meth:`Store.write_runs`,
  :meth:`Store.allocate_run_ids`, :meth:`Store.write_artifact`, :meth:`Store.put_step_hash`,
  :meth:`Store.update_meta`) raises :class:`~trialbook.errors.ExperimentNotFoundError` and
  leaves nothing behind: the check is part of the write's own transaction (or atomic step),
  never a separate read before it that a concurrent delete could overtake; a deleted
  experiment is never revived by a late write;
* :meth:`Store.create_experiment` with ``runs`` creates (or replaces) the experiment and
  writes its first runs in one transaction: if the write fails, the experiment it replaces is
  still there, complete;
* :meth:`Store.write_runs` writes its runs and metric chunks in one transaction, replacing
  earlier versions of those runs only (never rewriting the experiment);
* every stored run has a version: a record that carries one (it was read from the store)
  replaces the stored run only if that is still its version (compared inside the write's
  transaction), and the write stores it as the next version; otherwise the whole write is
  refused with :class:`~trialbook.errors.RunConflictError` (two sessions that loaded the same
  run cannot silently overwrite each other). A record without one (a new run) is written as
  version 1. The retry of a write that was applied but whose answer was lost is recognised by
  the record's ``writer`` and accepted (:func:`version_conflicts`);
* metric chunks are keyed by ``(experiment, run, metric, start)`` (``start``: the position of
  their first point in the series) and written by upsert, so a retried write leaves its points
  once; a metric's points are its chunks in order of ``start``, never of time. The points of a
  metric of a run are replaced only when a write names it in ``replace_metrics`` (a run
  executed again), in that same write;
* a failed write leaves nothing a reader can see; what it may leave behind (blobs written
  before the commit of a killed process) is removed by :meth:`Store.collect_garbage`, which
  never removes a blob an uncommitted write may still use;
* reads used for tables are indexed queries.

Who closes a store: the one who opened it. An object that opens a store from a location (a
URL, a path) owns it and closes it (:class:`~trialbook.session.Session` from
:func:`~trialbook.create_session`, a graph :class:`~trialbook.Experiment`, the web UI's server,
the commands of the CLI); an object given an open store leaves it open for its caller. Every
store of trialbook is a context manager that closes it.

Examples
--------
>>> from trialbook.storage import open_store
>>> with open_store("sqlite:///:memory:") as store:
...     isinstance(store, Store)
True
"""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, Self, TypeVar, runtime_checkable

from trialbook.codecs import Encoded
from trialbook.errors import RunConflictError
from trialbook.storage.records import (
    ExperimentInfo,
    GcReport,
    MetricChunk,
    MetricSeries,
    RunRecord,
)

__all__ = [
    "BATCH",
    "ClosingStore",
    "Store",
    "batches",
    "check_versions",
    "find_step_hashes",
    "new_stamp",
    "next_version",
    "version_conflicts",
]

T = TypeVar("T")

BATCH = 500
"""Items per statement or command when a backend splits a long list (ids in an ``IN`` list:
under SQLite's limit of bound parameters)."""


@runtime_checkable
class Store(Protocol):
    """What trialbook needs from a storage backend."""

    url: str
    """Where the store lives, its password masked (``postgresql://ann:***@host/db``)."""

    backend_label: str
    """Short name of the backend shown in reprs: ``LocalBackend``, ``RedisBackend``, ..."""

    allow_pickle: bool
    """Whether pickled values may be written and read (an explicit opt-in)."""

    def close(self) -> None:
        """Release connections (those the store opened itself: a connection pool or client
        given to it stays open for its owner); the store must not be used afterwards. Closing
        twice is harmless."""

    # -- experiments --

    def list_experiments(self) -> list[ExperimentInfo]:
        """All experiments, ordered by name, with their run counts."""

    def find_experiment(self, name: str) -> ExperimentInfo | None:
        """The experiment of that exact name, or ``None``."""

    def create_experiment(
        self,
        name: str,
        *,
        meta: dict[str, Any] | None = None,
        replace: bool = False,
        replace_id: int | None = None,
        runs: Sequence[RunRecord] = (),
        metrics: Sequence[MetricChunk] = (),
    ) -> ExperimentInfo:
        """Create an experiment, atomically; raise ``ExperimentExistsError`` if the name is
        taken, unless ``replace`` (then the old one is deleted in the same step). With
        ``replace_id`` the old one is replaced only if it is still the experiment of that id
        (compare-and-swap: two processes replacing one experiment never both succeed).

        ``runs`` and their ``metrics`` are the experiment's first runs, written in the same
        transaction (if that write fails, nothing changed: the experiment to replace is still
        there); its next allocated run id follows the largest of theirs. The new experiment's
        id is one the store never gave before."""

    def delete_experiment(self, name: str) -> None:
        """Delete an experiment and everything in it; raise ``ExperimentNotFoundError``. A
        write to it that runs at the same time either completes before the delete (and is
        deleted with it) or raises ``ExperimentNotFoundError``: it leaves nothing behind."""

    def update_meta(self, experiment_id: int, meta: dict[str, Any]) -> None:
        """Merge ``meta`` into the experiment's metadata; raise ``ExperimentNotFoundError``
        if it no longer exists."""

    # -- runs --

    def allocate_run_ids(self, experiment_id: int, count: int) -> range:
        """Reserve ``count`` consecutive new run ids, atomically; raise
        ``ExperimentNotFoundError`` if the experiment no longer exists."""

    def write_runs(
        self,
        experiment_id: int,
        runs: Sequence[RunRecord],
        metrics: Sequence[MetricChunk] = (),
        *,
        artifacts: Sequence[tuple[int, str, Encoded]] = (),
        step_hashes: Sequence[tuple[str, str, str, int]] = (),
        replace_metrics: Sequence[tuple[int, str]] = (),
    ) -> None:
        """In one transaction: insert or replace ``runs``, delete the stored points of the
        ``replace_metrics`` (``(run_id, metric name)``), write ``metrics`` (by upsert on their
        key), write ``artifacts`` (``(run_id, name, value)``) and ``step_hashes``
        (``(step, input_hash, output_hash, run_id)``).

        Raise ``ExperimentNotFoundError``, writing nothing, if the experiment no longer exists
        (checked in that transaction). A run whose record has a ``version`` is replaced only if
        the stored run is still at that version (see the module docs); else
        ``RunConflictError`` and nothing is written. The stored version becomes
        :func:`next_version` of the record."""

    def read_runs(
        self, experiment_id: int, run_ids: Iterable[int] | None = None
    ) -> list[RunRecord]:
        """Runs ordered by id (all of them, or those of ``run_ids`` that exist)."""

    def delete_runs(self, experiment_id: int, run_ids: Iterable[int]) -> None:
        """Delete runs with their values, metrics and artifacts, and the step hashes that point
        at them (one a later run replaced stays), through an index of step hashes by run."""

    def find_runs_by_key(self, experiment_id: int, key: str) -> list[RunRecord]:
        """Runs whose ``key`` (content hash of a job configuration) is ``key``, by id."""

    # -- purity: hashes of a step's inputs and output --

    def put_step_hash(
        self, experiment_id: int, step: str, input_hash: str, output_hash: str, run_id: int
    ) -> None:
        """Record that ``step`` given inputs ``input_hash`` produced ``output_hash`` in a run
        (``ExperimentNotFoundError`` if the experiment no longer exists)."""

    def get_step_hashes(
        self, experiment_id: int, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, int]]:
        """The latest ``(output_hash, run_id)`` recorded for each ``(step, input_hash)`` of
        ``keys`` that has one, in one round trip (a trial checks all its steps at once)."""

    # -- metrics --

    def read_metrics(
        self, experiment_id: int, name: str, run_ids: Iterable[int]
    ) -> dict[int, MetricSeries]:
        """Every point of metric ``name`` for each run that has it."""

    def metric_names(self, experiment_id: int, run_id: int | None = None) -> dict[str, int]:
        """Metric names (of one run, or of the whole experiment) with their point counts."""

    # -- artifacts and snapshots --

    def write_artifact(self, experiment_id: int, run_id: int, name: str, value: Encoded) -> None:
        """Store a named binary value of a run (replacing one of the same name);
        ``ExperimentNotFoundError`` if the experiment no longer exists."""

    def read_artifact(self, experiment_id: int, run_id: int, name: str) -> Encoded | None:
        """The named binary value of a run, or ``None``."""

    def list_artifacts(self, experiment_id: int, run_id: int) -> dict[str, int]:
        """Artifact names of a run with their sizes in bytes."""

    def put_snapshot(self, kind: str, text: str) -> str:
        """Store a text snapshot content-addressed; return its digest."""

    def get_snapshot(self, digest: str) -> str:
        """The text of a snapshot; raise ``NotFoundError`` if unknown."""

    # -- garbage --

    def collect_garbage(self, *, min_age: float = 3600.0, dry_run: bool = False) -> GcReport:
        """Remove blobs no run or artifact refers to and rows of no experiment; return what was
        (with ``dry_run``: would be) freed. A blob that a write not yet committed may be using
        is kept: one written (or reused) less than ``min_age`` seconds ago, where a backend
        cannot tell otherwise."""


class ClosingStore:
    """What the stores of trialbook share: ``with store:`` closes the store at the end, and a
    store that holds connections it opened itself and is garbage-collected without being closed
    says so with a ``ResourceWarning`` (as an unclosed file does; hidden unless warnings are
    shown, e.g. ``python -X dev`` or pytest).

    A backend sets :attr:`holds_connections` once it opened its connections and clears it in
    ``close()``.

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> with open_store("sqlite:///:memory:") as store:
    ...     store.list_experiments()
    []
    """

    holds_connections = False
    """Whether the store holds connections that it opened itself and that ``close()`` closes."""

    def close(self) -> None:
        """Release connections (each backend says which)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not self.holds_connections:
            return
        try:
            warnings.warn(
                f"unclosed store {self!r}: close what you open (store.close(), or "
                "with open_store(...) as store:)",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )
        except ResourceWarning:  # warnings made errors (as in the tests): reported as such
            raise
        except Exception:  # at interpreter exit, the warnings machinery may be gone
            return


def batches(items: Sequence[T], size: int = BATCH) -> Iterator[list[T]]:
    """``items`` in consecutive slices of at most ``size``: one statement or command each.

    Examples
    --------
    >>> [list(part) for part in batches([1, 2, 3, 4, 5], 2)]
    [[1, 2], [3, 4], [5]]
    """
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def find_step_hashes(
    keys: Iterable[tuple[str, str]],
    fetch: Callable[[list[str], list[str]], Iterable[Sequence[Any]]],
    batch: int = BATCH,
) -> dict[tuple[str, str], tuple[str, int]]:
    """:meth:`Store.get_step_hashes` for a backend that selects rows by steps and input
    hashes (both ``IN`` lists: a lookup on the whole key): ``fetch(steps, input_hashes)``
    returns ``(step, input_hash, output_hash, run_id)`` rows, asked for ``batch`` hashes at a
    time; rows of other ``(step, input_hash)`` pairs are dropped.

    Examples
    --------
    >>> rows = [("prepare", "h1", "o1", 1), ("score", "h2", "o2", 1)]
    >>> find_step_hashes([("prepare", "h1"), ("score", "h1")], lambda steps, hashes: rows)
    {('prepare', 'h1'): ('o1', 1)}
    """
    wanted = set(keys)
    steps = sorted({step for step, _ in wanted})
    hashes = sorted({input_hash for _, input_hash in wanted})
    found: dict[tuple[str, str], tuple[str, int]] = {}
    for part in batches(hashes, batch):
        for step, input_hash, output_hash, run_id in fetch(steps, part):
            if (step, input_hash) in wanted:
                found[step, input_hash] = (output_hash, int(run_id))
    return found


def new_stamp() -> int:
    """A random number for an experiment's ``stamp``, set by each write and delete of its runs
    (see ``SqliteStore.experiment_token``): 62 bits from the operating system, which neither a
    seeded :mod:`random` nor a forked process repeats.

    Examples
    --------
    >>> 0 <= new_stamp() < 2**62, new_stamp() != new_stamp()
    (True, True)
    """
    return secrets.randbits(62)


def next_version(run: RunRecord) -> int:
    """The version a write stores ``run`` as: the one after the version it was read at, or 1
    for a new run (a record without a version; written again, it stays at 1).

    Examples
    --------
    >>> next_version(RunRecord(1)), next_version(RunRecord(1, version=4))
    (1, 5)
    """
    return 1 if run.version is None else run.version + 1


def version_conflicts(
    runs: Iterable[RunRecord], stored: Mapping[int, tuple[int, str | None]]
) -> list[tuple[int, int, int | None]]:
    """``(run id, expected version, stored version)`` of each record of ``runs`` that a write
    must not apply: it has a ``version`` and its stored run (``stored``: run id ->
    ``(version, writer)``; a run missing from it was deleted, stored version ``None``) is
    neither at that version nor at the next one written by the record's own ``writer`` (the
    same write, applied once already: its retry is accepted).

    Examples
    --------
    >>> runs = [RunRecord(1, version=2), RunRecord(2, version=2, writer="w"), RunRecord(3)]
    >>> version_conflicts(runs, {1: (2, None), 2: (3, "w")})
    []
    >>> version_conflicts(runs, {1: (3, "other"), 2: (4, "w")})
    [(1, 2, 3), (2, 2, 4)]
    >>> version_conflicts([RunRecord(5, version=0)], {})
    [(5, 0, None)]
    """
    found: list[tuple[int, int, int | None]] = []
    for run in runs:
        if run.version is None:
            continue
        stored_run = stored.get(run.run_id)
        if stored_run is None:
            found.append((run.run_id, run.version, None))
            continue
        version, writer = stored_run
        retry = version == run.version + 1 and run.writer is not None and writer == run.writer
        if version != run.version and not retry:
            found.append((run.run_id, run.version, version))
    return found


def check_versions(
    experiment: str | int,
    runs: Iterable[RunRecord],
    stored: Mapping[int, tuple[int, str | None]],
) -> None:
    """Raise :class:`~trialbook.errors.RunConflictError` (naming ``experiment``) when
    :func:`version_conflicts` finds any.

    Examples
    --------
    >>> check_versions("e", [RunRecord(1, version=1)], {1: (1, None)})
    >>> check_versions("e", [RunRecord(1, version=1)], {1: (2, None)})
    Traceback (most recent call last):
    ...
    trialbook.errors.RunConflictError: run 1 of experiment 'e' was changed by another ...
    """
    conflicts = version_conflicts(runs, stored)
    if conflicts:
        raise RunConflictError(experiment, conflicts)
