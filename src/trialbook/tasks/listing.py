"""Job directories of a workdir: list them, kill running jobs, clean finished ones.

A job's status is read from its ``status.json``; a job that says ``running`` but whose lock is
free was interrupted (its process died) and is listed as ``interrupted``. A directory without
``status.json`` was scheduled but never started: ``waiting``.

Examples
--------
>>> import tempfile
>>> from trialbook.tasks.listing import list_jobs
>>> list_jobs(tempfile.mkdtemp())
[]
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trialbook.tasks.jobs import PARAMS, job_label, read_status, try_lock

__all__ = ["JobInfo", "clean_jobs", "forget_runs", "kill_jobs", "list_jobs"]


@dataclass(slots=True)
class JobInfo:
    """One job directory as found on disk."""

    path: pathlib.Path
    task: str
    identifier: str
    status: str
    tags: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None

    @property
    def name(self) -> str:
        """``<task id>/<identifier>``."""
        return f"{self.task}/{self.identifier}"

    @property
    def label(self) -> str:
        """The display name: task id and tags (see :func:`~trialbook.tasks.jobs.job_label`)."""
        return job_label(self.task, self.tags, self.identifier)


def _info(path: pathlib.Path) -> JobInfo:
    status = read_status(path) or {}
    state = status.get("status", "waiting")
    if state == "running":
        fd = try_lock(path)
        if fd is not None:
            os.close(fd)
            state = "interrupted"
    try:
        tags = json.loads((path / PARAMS).read_text()).get("tags", {})
    except (FileNotFoundError, ValueError):
        tags = {}
    return JobInfo(path, path.parent.name, path.name, state, tags, status.get("pid"))


def list_jobs(
    workdir: str | os.PathLike[str],
    *,
    status: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> list[JobInfo]:
    """Jobs of ``workdir``, optionally only those with ``status`` and matching ``tags``.

    Tag values are compared as text (``{"epochs": "100"}`` matches the tag ``epochs=100``).
    """
    root = pathlib.Path(workdir) / "jobs"
    if not root.is_dir():
        return []
    out = []
    for path in sorted(p for p in root.glob("*/*") if p.is_dir()):
        info = _info(path)
        if status is not None and info.status != status:
            continue
        if tags and any(str(info.tags.get(k)) != str(v) for k, v in tags.items()):
            continue
        out.append(info)
    return out


def kill_jobs(jobs: list[JobInfo]) -> list[JobInfo]:
    """Send SIGTERM to the process running each running job; return the jobs signalled.

    The job receives the signal while it runs its ``execute()`` and fails with an
    :class:`~trialbook.errors.ExecutionError` saying it was stopped; the worker process itself
    survives and takes the next job. The experiment that submitted the job reports it failed.
    """
    killed = []
    for job in jobs:
        if job.status == "running" and job.pid:
            try:
                os.kill(job.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            killed.append(job)
    return killed


def clean_jobs(jobs: list[JobInfo]) -> list[JobInfo]:
    """Delete the directories of ``jobs`` that are not running; return those deleted."""
    removed = []
    for job in jobs:
        fd = try_lock(job.path)
        if fd is None:
            continue
        try:
            shutil.rmtree(job.path)
        finally:
            os.close(fd)
        removed.append(job)
    return removed


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
