"""Progress of a task experiment: jobs started, done and failed, told as they happen.

On a terminal, a live display (rich) shows the counts and prints each failure above it;
otherwise (output to a file, under CI) each change is one log line of the logger
``trialbook.progress`` at INFO (failures at WARNING)::

    xp: started train alpha=0.1 seed=2 (1 running, 0 of 6 finished)
    xp: done train alpha=0.1 seed=2 (0 running, 1 of 6 finished)
    xp: failed train alpha=1 seed=2: ValueError: ... (at plan.py, line 9) (...)
    xp: 6 jobs: 4 done (2 cached), 2 failed

The lines go to the handlers of your logging configuration; with none, to standard error.
Quiet them with ``experiment(..., progress=False)``, ``run-experiment --quiet``, or
``logging.getLogger("trialbook.progress").setLevel(logging.WARNING)`` (failures and the summary
only). Cache hits are counted, not listed one by one.

Examples
--------
>>> import logging
>>> from trialbook.tasks.progress import Progress
>>> progress = Progress("xp", "lines")
>>> progress.mode
'lines'
>>> Progress("xp", False).mode
'off'
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

from trialbook.errors import ConfigError

if TYPE_CHECKING:
    from trialbook.tasks.scheduler import Job

__all__ = ["MODES", "Progress", "logger"]

logger = logging.getLogger("trialbook.progress")
if logger.level == logging.NOTSET:  # shown by default; set a higher level to quiet it
    logger.setLevel(logging.INFO)

MODES = ("auto", "bar", "lines", "off")
"""``progress=`` values: ``auto`` (``None`` or ``True``): a live display on a terminal, log
lines otherwise; ``bar``: the live display; ``lines``: log lines; ``off`` (``False``): nothing."""


class _StderrHandler(logging.StreamHandler):
    """Writes to the ``sys.stderr`` of the moment (tests and tools replace it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _mode(progress: bool | str | None) -> str:
    if progress is None or progress is True:
        progress = "auto"
    elif progress is False:
        progress = "off"
    if progress not in MODES:
        msg = f"progress must be True, False, None or one of {', '.join(MODES)} (got {progress!r})"
        raise ConfigError(msg)
    if progress == "auto":
        progress = "bar" if sys.stderr.isatty() else "lines"
    if progress != "off" and not logger.isEnabledFor(logging.INFO):
        progress = "quiet"  # failures and the summary only, as log lines
    return str(progress)


class Progress:
    """Counts the jobs of one experiment and tells each change (see the module documentation).

    Thread-safe: jobs are submitted in the caller's thread and finish in the scheduler's.
    """

    def __init__(self, name: str, progress: bool | str | None = None) -> None:
        self.name = name
        self.mode = _mode(progress)
        self.submitted = self.running = self.done = self.cached = 0
        self.failed = self.cancelled = 0
        self._lock = threading.Lock()
        self._handler: logging.Handler | None = None
        self._bar: Any = None
        self._task: Any = None

    @property
    def n_finished(self) -> int:
        """Number of jobs that will not change any more."""
        return self.done + self.failed + self.cancelled

    def start(self) -> None:
        """Start telling (the live display, or a standard-error handler when none is set)."""
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self._task = self._bar.add_task(f"{self.name} jobs", total=0, detail="")
            self._bar.start()
        elif self.mode != "off" and not logger.hasHandlers():
            self._handler = _StderrHandler()
            logger.addHandler(self._handler)

    def add(self) -> None:
        """A new job was submitted."""
        with self._lock:
            self.submitted += 1
            self._update()

    def started(self, job: Job) -> None:
        """``job`` started running."""
        with self._lock:
            self.running += 1
            self._tell(logging.INFO, f"started {job.label}")

    def finished(self, job: Job) -> None:
        """``job`` finished: done (maybe a cache hit), failed or cancelled."""
        state = str(job.state)
        with self._lock:
            if job.cached:
                self.done += 1
                self.cached += 1
                self._update()
                return
            if job.outcome is not None:  # it ran (a job failed by its dependency did not)
                self.running -= 1
            if state == "done":
                self.done += 1
                self._tell(logging.INFO, f"done {job.label}")
            elif state == "cancelled":
                self.cancelled += 1
                self._update()
            else:
                self.failed += 1
                self._tell(logging.WARNING, f"failed {job.label}: {job.reason or 'failed'}")

    def close(self) -> None:
        """Stop the display and tell the summary (when any job was submitted)."""
        if self._bar is not None:
            self._update()
            self._bar.stop()
            if self.submitted:
                self._bar.console.print(self.summary(), markup=False, highlight=False)
            self._bar = None
        elif self.submitted and self.mode in ("lines", "quiet"):
            level = logging.WARNING if self.failed or self.cancelled else logging.INFO
            if self.mode == "lines" or level >= logging.WARNING:
                logger.log(level, self.summary())
        if self._handler is not None:
            logger.removeHandler(self._handler)
            self._handler = None

    def summary(self) -> str:
        """``<name>: 6 jobs: 4 done (2 cached), 2 failed``.

        Examples
        --------
        >>> progress = Progress("xp", "off")
        >>> progress.submitted, progress.done, progress.cached, progress.failed = 3, 2, 1, 1
        >>> progress.summary()
        'xp: 3 jobs: 2 done (1 cached), 1 failed'
        """
        parts = [f"{self.done} done" + (f" ({self.cached} cached)" if self.cached else "")]
        parts += [f"{n} {what}" for n, what in ((self.failed, "failed"),
                                                (self.cancelled, "cancelled")) if n]  # fmt: skip
        unfinished = self.submitted - self.n_finished
        if unfinished:
            parts.append(f"{unfinished} not finished")
        noun = "job" if self.submitted == 1 else "jobs"
        return f"{self.name}: {self.submitted} {noun}: {', '.join(parts)}"

    # -- telling --

    def _counts(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return f"({self.running} running, {self.n_finished} of {self.submitted} finished{failed})"

    def _tell(self, level: int, text: str) -> None:
        if self.mode == "bar":
            if level >= logging.WARNING:
                self._bar.console.print(f"{self.name}: {text}", markup=False, highlight=False)
            self._update()
        elif self.mode == "lines" or (self.mode == "quiet" and level >= logging.WARNING):
            logger.log(level, f"{self.name}: {text} {self._counts()}")

    def _update(self) -> None:
        if self._bar is not None:
            detail = ", ".join(
                f"{n} {what}" for n, what in ((self.running, "running"), (self.failed, "failed"),
                                              (self.cached, "cached")) if n
            )  # fmt: skip
            self._bar.update(self._task, total=self.submitted, completed=self.n_finished,
                             detail=detail)  # fmt: skip
