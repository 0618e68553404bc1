"""Progress reported by a running job: ``progress(0.5)`` inside ``execute()``.

The job's process (:func:`trialbook.tasks.jobs.execute_job`) opens :func:`reporting` around the
job; :func:`progress` then writes the job's ``progress.json`` (:mod:`trialbook.tasks.jobdir`),
which ``trialbook jobs ls`` and the web UI show while the job runs (and, for a job that failed
or was interrupted, how far it got). Progress has levels: level 0 is the whole job, level 1 a
part of it (an epoch's batches, say); reporting a level forgets the levels below it. A value is
written when it moved by 1% or more, or its description changed, so that a tight loop can call
:func:`progress` at every step; the last value is always written when the job ends.

Examples
--------
>>> import pathlib, tempfile
>>> from trialbook.tasks.jobdir import read_progress
>>> job = pathlib.Path(tempfile.mkdtemp())
>>> with reporting(job):
...     progress(0.5, desc="epochs")
...     progress(0.25, level=1, desc="batches")
>>> read_progress(job)
[{'level': 0, 'progress': 0.5, 'desc': 'epochs'}, {'level': 1, 'progress': 0.25, 'desc': 'batches'}]
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import pathlib
from collections.abc import Iterator
from typing import Any

from trialbook.errors import ConfigError
from trialbook.tasks.jobdir import write_progress

__all__ = ["progress", "reporting"]

logger = logging.getLogger(__name__)

_STEP = 0.01  # a level is written again when its value moved by this much


class _Reporter:
    """The progress of the job running in this process, and what was last written."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.levels: list[dict[str, Any]] = []
        self.written: list[dict[str, Any]] = []

    def set(self, value: float, level: int, desc: str | None) -> None:
        levels = self.levels[: level + 1]
        while len(levels) <= level:
            levels.append({"level": len(levels), "progress": 0.0, "desc": None})
        previous = levels[level]
        levels[level] = {
            "level": level,
            "progress": value,
            "desc": desc if desc is not None else previous["desc"],
        }
        self.levels = levels
        if self._moved():
            self.flush()

    def _moved(self) -> bool:
        if len(self.levels) != len(self.written):
            return True
        for new, old in zip(self.levels, self.written, strict=True):
            if new["desc"] != old["desc"] or abs(new["progress"] - old["progress"]) >= _STEP:
                return True
            if new["progress"] != old["progress"] and new["progress"] in (0.0, 1.0):
                return True
        return False

    def flush(self) -> None:
        if self.levels != self.written:
            write_progress(self.path, self.levels)
            self.written = [dict(level) for level in self.levels]


_CURRENT: list[_Reporter] = []


@contextlib.contextmanager
def reporting(path: pathlib.Path) -> Iterator[None]:
    """Send :func:`progress` to the job directory ``path`` while the block runs (a job runs in
    it); a progress file of an earlier attempt is removed first, the last value kept after."""
    write_progress(path, None)
    reporter = _Reporter(path)
    _CURRENT.append(reporter)
    try:
        yield
    finally:
        _CURRENT.remove(reporter)
        reporter.flush()


def progress(value: float, level: int = 0, desc: str | None = None, console: bool = False) -> None:
    """Report how far the running job is: ``value`` from 0 to 1 at ``level`` (0: the job).

    Parameters
    ----------
    value
        The fraction done, from 0 to 1.
    level
        0 for the whole job, 1 for a part of the current step of level 0, and so on;
        reporting a level forgets the deeper ones.
    desc
        What this level counts (kept until another one is given for the level).
    console
        Also log the value (logger ``trialbook.tasks.reporting``, INFO).

    Outside a job (``execute()`` called directly, in a notebook or a test) nothing is
    recorded and nothing fails.

    Examples
    --------
    >>> import tempfile
    >>> from trialbook.tasks import Task, experiment
    >>> from trialbook.tasks.jobdir import read_progress
    >>> class Count(Task):
    ...     def execute(self):
    ...         for i in range(4):
    ...             progress((i + 1) / 4, desc="steps")
    >>> with experiment(tempfile.mkdtemp(), "doc") as xp:
    ...     task = Count.C().submit()
    >>> (task.jobpath / "progress.json").read_text()
    '{"levels": [{"level": 0, "progress": 1.0, "desc": "steps"}]}'
    >>> progress(1.5)
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: progress() takes a value from 0 to 1 (got 1.5); ...
    """
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        msg = f"progress() takes a number from 0 to 1 (got {value!r} that is a {type(value)})"
        raise ConfigError(msg)
    if math.isnan(value) or not 0 <= value <= 1:
        msg = f"progress() takes a value from 0 to 1 (got {value!r}); report done / total"
        raise ConfigError(msg)
    if not isinstance(level, int) or isinstance(level, bool) or level < 0:
        msg = f"progress() takes a level >= 0 (got {level!r}); 0 is the whole job"
        raise ConfigError(msg)
    if desc is not None and not isinstance(desc, str):
        msg = f"progress() takes a str desc (got {desc!r} that is a {type(desc)})"
        raise ConfigError(msg)
    if console:
        logger.info("progress [%d] %s %.1f%%", level, desc or "", 100 * value)
    if _CURRENT:
        _CURRENT[-1].set(float(value), level, desc)
