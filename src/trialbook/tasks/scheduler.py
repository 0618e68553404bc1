"""The scheduler: jobs, their dependencies, caching, tokens and the dispatch loop.

Design
------
``submit`` (caller's thread) turns a sealed task into a :class:`Job` keyed by its directory
and hands it to one background thread; the caller's thread does no file I/O, so a plan of
thousands of submissions is not slowed down by the threads that run jobs (every system call
releases the GIL, and getting it back behind a busy thread costs up to a switch interval).
The background thread works through the new jobs and the waiting list:

0. a new job whose ``status.json`` says ``done`` completes at once (cache hit: one file read);
   otherwise its directory, ``params.json`` and link in the experiment folder are written
   (``prepare``);
1. a job whose dependency failed fails with the reason; a job whose dependencies are not all
   done keeps waiting;
2. its tokens are taken (all or none), then the job directory's ``flock``; if another process
   holds the lock, that process runs the job: we poll until the lock is free, then read the
   status (``done`` -> cache hit, otherwise we run it);
3. the job goes to the launcher; when its future completes, the thread releases lock and
   tokens at once (dependents may start), and records finished jobs in the store in batches
   (one ``write_runs`` transaction per batch: when nothing else runs, or every 50 ms, or
   every 256 jobs); then it fires the ``on_completed`` callbacks once, and :meth:`wait`
   returns only when every job is recorded.

Examples
--------
>>> from trialbook.tasks.scheduler import Job
>>> Job.__name__
'Job'
"""

from __future__ import annotations

import logging
import os
import pathlib
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trialbook.tasks.jobdir import is_done, mark_never_ran, try_lock, write_status
from trialbook.tasks.jobs import (
    JobOutcome,
    JobSpec,
    JobState,
    execute_job,
    failure_reason,
    job_label,
)
from trialbook.tasks.tokens import TokenDependency

if TYPE_CHECKING:
    from trialbook.tasks.config import Task
    from trialbook.tasks.launchers import Launcher
    from trialbook.tasks.progress import Progress

__all__ = ["Job", "Scheduler"]

logger = logging.getLogger(__name__)
_POLL = 0.02
_BATCH_SIZE = 256  # finished jobs recorded in one store transaction at most...
_BATCH_AGE = 0.05  # ...and after this many seconds at most


class Job:
    """One job: a sealed task, its directory, dependencies and state."""

    def __init__(self, task: Task, path: pathlib.Path, identifier: str, task_id: str) -> None:
        self.task = task
        self.path = path
        self.identifier = identifier
        self.task_id = task_id
        self.state = JobState.WAITING
        self.deps: list[Job] = []
        self.tokens: list[TokenDependency] = []
        self.callbacks: list[Callable[[], Any]] = []
        self.reason: str | None = None
        self.outcome: JobOutcome | None = None
        self.launcher: Launcher | None = None
        self.cached = False
        self._lock_fd: int | None = None
        self._holders: list[tuple[Any, pathlib.Path]] = []
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"Job({self.name!r}, state={str(self.state)!r})"

    @property
    def name(self) -> str:
        """``<task id>/<identifier>``."""
        return f"{self.task_id}/{self.identifier}"

    @property
    def label(self) -> str:
        """The display name: task id and tags (see :func:`~trialbook.tasks.jobs.job_label`)."""
        return job_label(self.task_id, self.task.tags(), self.identifier)

    def add_callback(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` once when the job is done (now, if it already is)."""
        with self._guard:
            if self.state is not JobState.DONE:
                self.callbacks.append(callback)
                return
        callback()

    def _fire(self) -> None:
        with self._guard:
            callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                logger.exception("on_completed callback of job %s failed", self.name)


class Scheduler:
    """Runs the jobs of one experiment (see the module documentation)."""

    def __init__(
        self,
        launcher: Launcher,
        recorder: Callable[[list[Job]], None],
        prepare: Callable[[Job], bool] | None = None,
    ) -> None:
        self.launcher = launcher
        self.recorder = recorder
        self.prepare = prepare or _is_done
        self.jobs: dict[pathlib.Path, Job] = {}
        self.env: dict[str, str] = {}
        self.sys_path: list[str] = []
        self.max_inflight = 4 * max(1, getattr(launcher, "n_workers", 4))
        self._waiting: list[Job] = []
        self._running = 0
        self._events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._unfinished = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._blocked: dict[pathlib.Path, int] = {}
        self._classes: dict[type, tuple[str, bytes]] = {}  # each task class pickled once
        self.progress: Progress | None = None  # told when jobs are added, start and finish
        self.unrecorded: list[tuple[int, str]] = []  # (job count, why) of failed store writes

    # -- caller side --

    def add(self, job: Job) -> Job:
        """Schedule ``job`` (or return the job already scheduled for that directory)."""
        known = self.jobs.get(job.path)
        if known is not None:  # the same job submitted again: one run, every callback
            for callback in job.callbacks:
                known.add_callback(callback)
            return known
        self.jobs[job.path] = job
        if self.progress is not None:
            self.progress.add()
        with self._cond:
            self._unfinished += 1
        self._events.put(job)
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="trialbook-jobs", daemon=True)
            self._thread.start()
        return job

    def wait(self) -> None:
        """Block until every job is finished."""
        with self._cond:
            while self._unfinished:
                self._cond.wait(0.5)

    def stop(self) -> None:
        """Cancel jobs not started yet; running jobs finish."""
        self._stopping = True
        self._events.put(None)

    def close(self) -> None:
        """Stop the background thread (after :meth:`wait`)."""
        if self._thread is not None:
            self._events.put(False)
            self._thread.join()
            self._thread = None

    # -- background thread --

    def _loop(self) -> None:
        try:
            self._work()
        except BaseException:  # never leave wait() hanging: fail what is left
            logger.exception("the job scheduler stopped on an internal error")
            with self._cond:
                for job in self._waiting:
                    job.state, job.reason = JobState.FAILED, "internal scheduler error"
                self._unfinished = 0
                self._cond.notify_all()
            raise

    def _work(self) -> None:
        finished: list[Job] = []  # finished, not yet recorded: one store transaction per batch
        since = 0.0
        while True:
            timeout = _POLL if self._waiting or finished else None
            try:
                event = self._events.get(timeout=timeout)
                while True:
                    if event is False:
                        return
                    self._handle(event, finished)
                    event = self._events.get_nowait()
            except queue.Empty:
                pass
            self._dispatch(finished)
            if not finished:
                continue
            now = time.monotonic()
            since = since or now
            # Flush when nothing runs (no more events coming), when the batch is big or old.
            if not self._running or len(finished) >= _BATCH_SIZE or now - since >= _BATCH_AGE:
                self._complete(finished)
                finished, since = [], 0.0

    def _handle(self, event: Any, finished: list[Job]) -> None:
        if isinstance(event, Job):
            self._admit(event, finished)
        elif isinstance(event, tuple):
            job, future = event
            self._running -= 1
            try:
                job.outcome = future.result()
            except BaseException as exc:  # a worker died or the job could not be sent
                job.outcome = _crash(job, exc)
            job.state = JobState.DONE if job.outcome.status == "done" else JobState.FAILED
            if job.outcome.error is not None:
                job.reason = failure_reason(job.outcome.error)
            self._release(job)
            finished.append(job)

    def _admit(self, job: Job, finished: list[Job]) -> None:
        """A new job: finished already (cache hit), or prepared and put in the waiting list."""
        try:
            done = self.prepare(job)
        except Exception as exc:  # e.g. the job directory cannot be written
            job.state, job.reason = JobState.FAILED, f"cannot prepare the job directory: {exc}"
            finished.append(job)
            return
        if done:
            job.state, job.cached = JobState.DONE, True
            finished.append(job)
        else:
            self._waiting.append(job)

    def _dispatch(self, finished: list[Job]) -> None:
        if self._stopping:
            for job in self._waiting:
                job.state, job.reason = JobState.CANCELLED, "the experiment was stopped"
                mark_never_ran(job.path, f"cancelled: {job.reason} before the job started")
                finished.append(job)
            self._waiting = []
            return
        still: list[Job] = []
        self._blocked.clear()
        for i, job in enumerate(self._waiting):
            if self._running >= self.max_inflight:  # the rest waits for a free slot
                still.extend(self._waiting[i:])
                break
            if not self._try_start(job, finished):
                still.append(job)
        self._waiting = still

    def _try_start(self, job: Job, finished: list[Job]) -> bool:
        """Start, finish (cache hit or failed dependency) or leave waiting; True unless waiting."""
        for dep in job.deps:
            if dep.state in (JobState.FAILED, JobState.CANCELLED):
                job.state = JobState.FAILED
                job.reason = f"dependency {dep.label} failed: {dep.reason}"
                mark_never_ran(job.path, job.reason)
                finished.append(job)
                return True
            if dep.state is not JobState.DONE:
                return False
        if self._running >= self.max_inflight or not self._take_tokens(job):
            return False
        fd = _lock(job.path)
        if fd is None:  # another process runs it: wait for it
            self._give_tokens(job)
            return False
        if is_done(job.path):
            os.close(fd)
            self._give_tokens(job)
            job.state, job.cached = JobState.DONE, True
            finished.append(job)
            return True
        job._lock_fd = fd
        self._launch(job)
        return True

    def _take_tokens(self, job: Job) -> bool:
        for dep in job.tokens:
            # A token that could not give n units in this round will not give n or more to
            # the next job either: skip the file lock and the count (many jobs may wait).
            blocked = self._blocked.get(dep.token.path)
            holder = (
                None
                if blocked is not None and dep.count >= blocked
                else (dep.token.try_acquire(dep.count))
            )
            if holder is None:
                self._blocked[dep.token.path] = min(blocked or dep.count, dep.count)
                self._give_tokens(job)
                return False
            job._holders.append((dep.token, holder))
        return True

    def _give_tokens(self, job: Job) -> None:
        for token, holder in job._holders:
            token.release(holder)
        job._holders = []

    def _launch(self, job: Job) -> None:
        from trialbook.tasks.payload import dump_task

        job.state = JobState.RUNNING
        launcher = job.launcher or self.launcher
        self._running += 1
        if self.progress is not None:
            self.progress.started(job)
        try:
            payload, classes = dump_task(job.task, self._classes)
            resumable = bool(getattr(type(job.task), "resumable", False))
            spec = JobSpec(payload, str(job.path), self.env, self.sys_path, classes, resumable)
            future = launcher.submit(execute_job, spec)
        except Exception as exc:
            self._events.put((job, _failed_future(exc)))
            return

        def done(finished: Any, job: Job = job) -> None:
            self._events.put((job, finished))

        future.add_done_callback(done)

    def _release(self, job: Job) -> None:
        self._give_tokens(job)
        if job._lock_fd is not None:
            os.close(job._lock_fd)
            job._lock_fd = None

    def _complete(self, finished: list[Job]) -> None:
        ran = [j for j in finished if not j.cached]
        try:
            self.recorder(ran)
        except Exception as exc:
            logger.exception("could not record %d finished jobs in the store", len(ran))
            self.unrecorded.append((len(ran), f"{type(exc).__name__}: {exc}"))
        for job in finished:
            if self.progress is not None:
                self.progress.finished(job)
            if job.state is JobState.DONE:
                job._fire()
        with self._cond:
            self._unfinished -= len(finished)
            self._cond.notify_all()


def _is_done(job: Job) -> bool:
    return is_done(job.path)


def _lock(path: pathlib.Path) -> int | None:
    try:
        return try_lock(path)
    except FileNotFoundError:  # the directory was removed (`trialbook jobs clean`): recreate
        path.mkdir(parents=True, exist_ok=True)
        return try_lock(path)


def _crash(job: Job, exc: BaseException) -> JobOutcome:
    from trialbook.tracking import error_info

    now = time.time()
    info = error_info(exc)
    write_status(job.path, "failed", started=now, finished=now, error=str(info))
    return JobOutcome("failed", now, now, info)


def _failed_future(exc: BaseException) -> Any:
    from concurrent.futures import Future

    future: Future[Any] = Future()
    future.set_exception(exc)
    return future
