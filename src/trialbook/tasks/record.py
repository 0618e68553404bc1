"""Finished jobs as store records: runs of ``kind="job"`` keyed by their identifier.

Store: jobs are recorded as runs (``kind="job"``, ``key`` = identifier) of the experiment of
the same name in the default store of every way of working: ``$TRIALBOOK_STORE`` if set, else
``.trialbook`` in the current directory (as for runs and trials). Task experiments that earlier
versions recorded in ``<workdir>/.trialbook`` are moved into it once
(:mod:`trialbook.tasks.legacy`). :class:`JobRecorder` writes them for an experiment block;
:func:`forget_runs` deletes them again (``trialbook jobs clean --forget-runs``).

Examples
--------
>>> from trialbook.tasks.record import job_runs
>>> job_runs([], range(0), lambda cls: None)
([], [])
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from trialbook.errors import StorageError
from trialbook.storage.artifacts import log_artifact
from trialbook.storage.records import ErrorInfo, MetricChunk, RunRecord
from trialbook.tasks.jobs import JobState, json_view
from trialbook.tracking import Run

if TYPE_CHECKING:
    from trialbook.storage import Store
    from trialbook.tasks.scheduler import Job

__all__ = ["JobRecorder", "default_store", "forget_runs", "job_runs"]


class JobRecorder:
    """Records the finished jobs of one task experiment in its store.

    The store is opened on first use (:meth:`open`; the experiment block opens it on entry, so
    that the experiment is in the store, and the UI, from the start) and closed by
    :meth:`close` unless it was given open.

    Parameters
    ----------
    name
        The experiment's name in the store (created with ``{"kind": "tasks", "workdir": ...}``).
    workdir
        The experiment's working directory (absolute).
    location
        ``store=`` of the experiment: a URL, directory or open store; ``None`` for the default
        store (:func:`default_store`, into which stores of earlier versions are moved).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> recorder = JobRecorder("doc", pathlib.Path(tempfile.mkdtemp()), "sqlite:///:memory:")
    >>> store, exp_id = recorder.open()
    >>> store.find_experiment("doc").meta["kind"], exp_id
    ('tasks', 1)
    >>> recorder.close()
    """

    def __init__(self, name: str, workdir: pathlib.Path, location: Any = None) -> None:
        self.name = name
        self.workdir = workdir
        self.location = location
        self.default = default_store()  # now: jobs may change the working directory later
        self.store: Store | None = None
        self.exp_id: int | None = None
        self._code: dict[type, str | None] = {}

    @property
    def target(self) -> Any:
        """Where jobs are recorded: ``store=``, else the default store of every way of working
        (``$TRIALBOOK_STORE``, else ``.trialbook`` in the directory where the experiment was
        created)."""
        return self.location or self.default

    def open(self) -> tuple[Store, int]:
        """The open store and the experiment's id in it (created when missing)."""
        if self.store is None or self.exp_id is None:
            from trialbook.storage import open_store

            store = self.store = open_store(self.target)
            try:
                self.exp_id = self._experiment_id(store)
            except BaseException:
                self.close()  # the store opened here (not one given open)
                raise
        return self.store, self.exp_id

    def _experiment_id(self, store: Store) -> int:
        """The experiment's id in ``store`` (created when missing), after moving the task
        experiments of an earlier version's store into the default one."""
        if self.location is None:  # stores of earlier versions join the default
            from trialbook.tasks.legacy import move_legacy_store

            move_legacy_store(self.workdir, store)
        info = store.find_experiment(self.name)
        if info is None:
            meta = {"kind": "tasks", "workdir": str(self.workdir)}
            try:
                info = store.create_experiment(self.name, meta=meta)
            except FileExistsError:
                info = store.find_experiment(self.name)
        if info is None:  # created by another process, then deleted at once
            msg = f"experiment {self.name!r} vanished from {self.target} while opening it"
            raise StorageError(msg)
        return info.id

    def record(self, jobs: list[Job]) -> None:
        """Write finished ``jobs`` as runs in one transaction (the scheduler's recorder)."""
        if not jobs:
            return
        store, exp_id = self.open()
        ids = store.allocate_run_ids(exp_id, len(jobs))
        records, chunks = job_runs(jobs, ids, lambda cls: self._code_digest(store, cls))
        store.write_runs(exp_id, records, chunks)
        for job, run_id in zip(jobs, ids, strict=True):
            held = job.outcome.artifacts if job.outcome is not None else {}
            for name, source in held.items():  # streamed, after the run is in the store
                log_artifact(store, exp_id, run_id, source, name=name)

    def close(self) -> None:
        """Close the store, unless it was given open (``store=`` an open store)."""
        if self.store is not None and self.store is not self.location:
            self.store.close()
            self.store = None

    def _code_digest(self, store: Store, cls: type) -> str | None:
        if cls not in self._code:
            import inspect

            try:
                text = inspect.getsource(cls)
            except (OSError, TypeError):
                self._code[cls] = None
            else:
                self._code[cls] = store.put_snapshot("code", text)
        return self._code[cls]


def default_store() -> str:
    """The default store (``$TRIALBOOK_STORE`` or ``./.trialbook``), a directory made absolute
    (jobs may change the working directory while the experiment runs).

    Examples
    --------
    >>> default_store()
    '...'
    """
    from trialbook.storage import default_location

    location = default_location()
    return location if "://" in location else os.path.abspath(location)


def forget_runs(
    store: Any, identifiers: list[str], *, workdir: str | os.PathLike[str] | None = None
) -> int:
    """Delete the runs of jobs ``identifiers`` from every experiment of ``store``; count them.

    ``store=None`` is the default store; the task experiments that an earlier version recorded
    in ``<workdir>/.trialbook`` are first moved into it (see :mod:`trialbook.tasks.legacy`).
    """
    from trialbook.storage import default_location, open_store
    from trialbook.tasks.legacy import legacy_location, move_legacy_store

    if store is None and "://" not in default_location():  # no store yet: create none
        old = workdir is not None and legacy_location(workdir).is_dir()
        if not old and not os.path.exists(default_location()):
            return 0
    opened = open_store(store)
    try:
        if store is None and workdir is not None:
            move_legacy_store(workdir, opened)
        count = 0
        for info in opened.list_experiments():
            ids = [r.run_id for key in identifiers for r in opened.find_runs_by_key(info.id, key)]
            if ids:
                opened.delete_runs(info.id, ids)
                count += len(ids)
        return count
    finally:
        if opened is not store:
            opened.close()


def job_runs(
    jobs: Sequence[Job], run_ids: range, code: Callable[[type], str | None]
) -> tuple[list[RunRecord], list[MetricChunk]]:
    """Records and metric chunks of finished ``jobs`` under the run ids ``run_ids``."""
    records: list[RunRecord] = []
    chunks: list[MetricChunk] = []
    for job, run_id in zip(jobs, run_ids, strict=True):
        run = _run(job, run_id)
        run.code = code(type(job.task))
        records.append(run.to_record())
        chunks.extend(run.pending_metrics())
    return records, chunks


def _run(job: Job, run_id: int) -> Run:
    params: dict[str, Any] = {s.name: json_view(v) for s, v in job.task.__tb_values__()}
    run = Run(run_id, params=params, kind="job", tags=job.task.tags())
    run.key = job.identifier
    outcome = job.outcome
    if outcome is not None:
        dict.update(run.fields, outcome.fields)
        for chunk in outcome.metrics:
            chunk.run_id = run_id
        run.absorb_metrics(outcome.metrics)
        run.started, run.finished, run.error = outcome.started, outcome.finished, outcome.error
    else:
        run.error = ErrorInfo("JobNotRunError", job.reason or str(job.state))
    dict.update(run.fields, {"task": job.task_id, "jobpath": str(job.path)})
    run.status = "done" if job.state is JobState.DONE else "failed"
    return run
