"""Runs in progress, visible to other processes: live writes, heartbeats and lost runs.

While :meth:`~trialbook.runs.RunsExperiment.execute` runs the steps of a persisted experiment
in this process, a :class:`LiveWriter` writes the runs that are executing as ``running`` (with their
``started`` time) together with the metric points they logged so far, at most once every
:func:`live_interval` seconds (``TRIALBOOK_LIVE_INTERVAL``, default 5 s): one write for all the
runs that started or logged since the last one, whatever their number. The write happens in
the process's own thread, when a run starts or logs a point and the interval has elapsed; the
points are written as keyed chunks (the same keys ``persist()`` would use), so writing them
again is harmless. Each live write holds the run's version as ``persist()`` does, so a later
``persist()`` of the same session replaces the version just written, without a conflict.

A heartbeat lets readers tell a run whose process died: a background thread of the writing
process refreshes an entry of the experiment's metadata, ``meta["live:<token>"]``, with its
host, pid, the ids of its running runs and the time (``beat``), every interval (at least every
second). A reader (``load_experiment``, ``trialbook runs``, the web UI) shows a ``running`` run
listed only in entries whose beat is older than :func:`heartbeat_timeout`
(``TRIALBOOK_HEARTBEAT_TIMEOUT``, default 60 s) as ``failed``, its error a ``LostRun`` naming
the host and pid. This is derived on read, never written back by the reader (a reader may
only read, and a process that was slow rather than dead carries on); persisting a loaded
experiment stores it. A process that ends normally removes its entry. The rule readers
apply lives in :mod:`trialbook.storage.heartbeats` (``lost_runs``, ``mark_lost`` and
``heartbeat_timeout`` are that module's, named here too), so that the store queries of
:func:`trialbook.storage.query.query_runs` apply it as well.

Examples
--------
>>> from trialbook.storage import heartbeats
>>> mark_lost is heartbeats.mark_lost  # the one rule; its module shows it at work
True
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any

from trialbook.errors import StoreUnavailableError, TrialbookWarning
from trialbook.storage.heartbeats import (
    PREFIX,
    env_seconds,
    heartbeat_timeout,
    lost_runs,
    mark_lost,
)

if TYPE_CHECKING:
    from trialbook.storage.base import Store
    from trialbook.tracking import Run

__all__ = [
    "LiveWriter",
    "heartbeat_timeout",
    "live_interval",
    "lost_runs",
    "mark_lost",
]


def live_interval() -> float:
    """Seconds between two live writes of a process (``TRIALBOOK_LIVE_INTERVAL``, default 5).

    Examples
    --------
    >>> live_interval()
    5.0
    """
    return env_seconds("TRIALBOOK_LIVE_INTERVAL", 5.0)


class LiveWriter:
    """Writes the runs an ``execute`` is running to the store while they run, and beats.

    Use it as a context manager around the execution; call :meth:`started` when a run starts
    and :meth:`finished` when it ends. Runs log their points as usual; the writer is called
    back on each point and writes when :func:`live_interval` has elapsed.

    Examples
    --------
    >>> import trialbook
    >>> session = trialbook.create_session("sqlite:///:memory:")
    >>> exp = session.create_experiment("e")
    >>> run = exp.add_run(x=1)
    >>> with LiveWriter(exp.store, exp._info.id, interval=0.0) as live:
    ...     run.start(); live.started(run)
    ...     exp.store.read_runs(exp._info.id)[0].status
    'running'
    >>> session.close()
    """

    def __init__(self, store: Store, experiment_id: int, *, interval: float | None = None):
        self.store = store
        self.experiment_id = experiment_id
        self.interval = live_interval() if interval is None else interval
        self.key = f"{PREFIX}{secrets.token_hex(8)}"
        self._running: dict[int, Run] = {}
        self._finished: dict[int, Run] = {}
        self._written: set[int] = set()
        self._listed: list[int] = []  # what the heartbeat lists: running runs written so
        self._due = 0.0
        self._lock = threading.Lock()
        self._thread_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = False
        self._away = False
        self._entry_written = False

    def __enter__(self) -> LiveWriter:
        return self

    def _ensure_beating(self) -> None:
        """Start the heartbeat thread if it is not running (it stops once it lists no run)."""
        with self._thread_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat_loop, name="trialbook-heartbeat")
                self._thread.daemon = True
                self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def started(self, run: Run, *, now: bool = False) -> None:
        """``run`` started: it is written as running at the next write (now, if due, or if
        ``now``)."""
        self._running[run.id] = run
        run.on_point(self.tick)
        self._ensure_beating()
        if now:
            self.flush()
        else:
            self.tick()

    def forget(self, run: Run) -> None:
        """``run`` ended and its owner writes its final state (a graph trial's one
        transaction): no live write for it; the heartbeat stops listing it at its next beat.

        Examples
        --------
        >>> import trialbook
        >>> from trialbook.tracking import Run
        >>> session = trialbook.create_session("sqlite:///:memory:")
        >>> info = session.store.create_experiment("e")
        >>> run = Run(1)
        >>> with LiveWriter(session.store, info.id, interval=0.0) as live:
        ...     run.start(); live.started(run, now=True)
        ...     live.forget(run)
        ...     session.store.read_runs(info.id)[0].status
        'running'
        >>> session.close()
        """
        run.on_point(None)
        self._running.pop(run.id, None)
        self._listed = [run_id for run_id in self._listed if run_id != run.id]

    def finished(self, run: Run) -> None:
        """``run`` ended: if it was written as running, its final state is written next."""
        run.on_point(None)
        self._running.pop(run.id, None)
        if run.id in self._written:
            self._finished[run.id] = run
        self.tick()

    def tick(self) -> None:
        """Write if the interval has elapsed since the last write."""
        if time.monotonic() >= self._due:
            self.flush()

    def flush(self) -> None:
        """Write the running runs (and those that ended since they were written) now."""
        self._due = time.monotonic() + self.interval
        runs = [*self._running.values(), *self._finished.values()]
        if not runs or self._away:
            return
        allow_pickle = self.store.allow_pickle
        try:
            records = [run.to_record(allow_pickle=allow_pickle) for run in runs]
            chunks = [chunk for run in runs for chunk in run.pending_metrics()]
            replaced = [pair for run in runs for pair in run.replaced_metrics()]
            self.store.write_runs(self.experiment_id, records, chunks, replace_metrics=replaced)
        except Exception as exc:  # the runs go on; persist() writes them at the end
            # a server away past its retry budget: no more live writes in this execution,
            # rather than a wait of the whole budget at every interval
            self._away = isinstance(exc, StoreUnavailableError)
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"could not write the running runs of experiment {self.experiment_id} "
                    f"while they run ({type(exc).__name__}: {exc}); they are written at "
                    "persist()",
                    TrialbookWarning,
                    stacklevel=2,
                )
            return
        for run in runs:
            run.written()
        self._written.update(self._running)
        self._finished.clear()
        self._listed = sorted(self._running)
        self._beat()

    def close(self) -> None:
        """Write what ended since the last write, stop beating and remove the entry."""
        self._running.clear()
        if self._finished:
            self.flush()
        self._stop.set()
        with self._thread_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        if self._written and not self._away:
            # a stale entry left by a failure here lists only runs no longer running
            with contextlib.suppress(Exception):
                self.store.update_meta(self.experiment_id, {self.key: None})

    def _entry(self) -> dict[str, Any]:
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "beat": time.time(),
            "runs": self._listed,
        }

    def _beat(self) -> None:
        """Refresh this process's entry, or remove it when it lists no run."""
        with self._lock, contextlib.suppress(Exception):  # the next beat tries again
            listed = bool(self._listed)
            if listed or self._entry_written:
                entry = self._entry() if listed else None
                self.store.update_meta(self.experiment_id, {self.key: entry})
                self._entry_written = listed

    def _beat_loop(self) -> None:
        """Beat while runs are listed; once none is, remove the entry (one try) and stop: an
        idle experiment leaves no thread writing, and a store that went away no retrying."""
        while not self._stop.wait(max(self.interval, 1.0)):
            if self._listed and not self._away:
                self._beat()
                continue
            if self._entry_written and not self._away:
                self._beat()
            with self._thread_lock:  # started() after this starts a new thread
                if not self._running or self._away:
                    self._thread = None
                    return
