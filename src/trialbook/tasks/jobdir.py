"""The job directory: its layout, and every read and write of it.

A workdir holds the job directories under ``jobs/`` and a folder per experiment under
``xp/<name>/`` (:func:`xp_path`: links to its jobs, results, saved data, services). A job
lives in ``<workdir>/jobs/<task id>/<identifier>/`` (:func:`job_path`), shared by every
experiment of the workdir (which is what makes caching work across experiments). The
experiment block and its scheduler write it, the worker runs the job in it
(:func:`trialbook.tasks.jobs.execute_job`), and ``trialbook jobs`` and the web UI read it, all
through this module:

==================  ===================================================================
``params.json``     task type id, identifier, experiment, parameters (JSON view) and tags
``status.json``     ``{"status": "running" | "done" | "failed", "pid", "started", ...}``
``stdout.log``      everything the job wrote to its standard output (file descriptor 1)
``stderr.log``      standard error, with the traceback when the job failed
``progress.json``   what the running job reported with ``progress()``: ``{"levels": [...]}``
``.lock``           held (``flock``) by the process that runs the job, while it runs
``task.pkl``        the pickled task and ``run.py`` its run script (generate mode only)
==================  ===================================================================

A job's status is read from its ``status.json``; a job that says ``running`` but whose lock is
free was interrupted (its process died) and is listed as ``interrupted``. A directory without
``status.json`` was scheduled but not started yet: ``waiting`` (queued). A job that will never
start in its experiment (its dependency failed, the experiment was stopped) says ``failed``
with ``"never_ran": true`` and the reason as ``error`` (:func:`mark_never_ran`), so that no one
looks for its logs.

Examples
--------
>>> import pathlib, tempfile
>>> workdir = pathlib.Path(tempfile.mkdtemp())
>>> path = job_path(workdir, "doc.square", "0123456789abcdef")
>>> path.relative_to(workdir)
PosixPath('jobs/doc.square/0123456789abcdef')
>>> path.mkdir(parents=True)
>>> read_status(path) is None
True
>>> write_status(path, "done", started=1.0, finished=2.0)
>>> [(job.name, job.status) for job in list_jobs(workdir)]
[('doc.square/0123456789abcdef', 'done')]
"""

from __future__ import annotations

import fcntl
import json
import os
import pathlib
import shutil
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "STREAMS",
    "JobInfo",
    "clean_jobs",
    "dependencies",
    "is_done",
    "is_locked",
    "job_path",
    "jobs_root",
    "kill_jobs",
    "list_jobs",
    "log_path",
    "read_log",
    "read_params",
    "read_progress",
    "read_status",
    "try_lock",
    "write_params",
    "write_progress",
    "write_script",
    "write_status",
    "xp_path",
]

STATUS = "status.json"
PARAMS = "params.json"
PROGRESS = "progress.json"
LOCK = ".lock"
TASK = "task.pkl"
SCRIPT = "run.py"
STREAMS = ("stdout", "stderr")
"""The job's log streams: ``<stream>.log`` in its directory."""
LOG_CHUNK = 64 * 1024


# -- paths --


def jobs_root(workdir: str | os.PathLike[str]) -> pathlib.Path:
    """``<workdir>/jobs``: the job directories of every experiment of the workdir."""
    return pathlib.Path(workdir) / "jobs"


def job_path(workdir: str | os.PathLike[str], task_id: str, identifier: str) -> pathlib.Path:
    """``<workdir>/jobs/<task id>/<identifier>``: the directory of one job (see the example)."""
    return jobs_root(workdir) / task_id / identifier


def xp_path(workdir: str | os.PathLike[str], name: str) -> pathlib.Path:
    """``<workdir>/xp/<name>``: the folder of experiment ``name``.

    Examples
    --------
    >>> xp_path("/w", "demo")
    PosixPath('/w/xp/demo')
    """
    return pathlib.Path(workdir) / "xp" / name


# -- params --


def write_params(
    path: pathlib.Path,
    *,
    task: str,
    identifier: str,
    experiment: str,
    params: Mapping[str, Any],
    tags: Mapping[str, Any],
) -> None:
    """Write ``params.json``: what the job is, for the listings and the UI (never read back to
    run it). ``params`` is the JSON view of the task's parameters
    (:func:`trialbook.tasks.jobs.json_view`)."""
    info = {
        "task": task,
        "identifier": identifier,
        "experiment": experiment,
        "params": dict(params),
        "tags": dict(tags),
    }
    with open(path / PARAMS, "w") as f:
        json.dump(info, f)


def read_params(path: pathlib.Path) -> dict[str, Any] | None:
    """The content of ``params.json``, or ``None`` when it is missing or unreadable.

    Examples
    --------
    >>> import tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_params(d, task="t", identifier="i", experiment="e", params={"x": 1}, tags={})
    >>> read_params(d)["params"], read_params(d / "nothing")
    ({'x': 1}, None)
    """
    try:
        info = json.loads((path / PARAMS).read_bytes())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def dependencies(params: Any) -> list[str]:
    """Identifiers of the submitted tasks found (recursively) among parameters in their JSON
    view (a task parameter is a dict with ``__config__`` and ``identifier``), in order.

    Examples
    --------
    >>> dependencies({"model": {"__config__": "M", "identifier": "m1", "data": [
    ...     {"__config__": "D", "identifier": "d1"}]}})
    ['m1', 'd1']
    """
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "__config__" in value:
                ident = value.get("identifier")
                if isinstance(ident, str) and ident not in found:
                    found.append(ident)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for value in (params or {}).values():
        walk(value)
    return found


# -- status and lock --


def read_status(path: pathlib.Path) -> dict[str, Any] | None:
    """The content of ``status.json`` in a job directory, or ``None`` if there is none."""
    try:
        with open(path / STATUS, "rb") as f:
            return json.loads(f.read())
    except (FileNotFoundError, ValueError):
        return None


def write_status(path: pathlib.Path, status: str, **info: Any) -> None:
    """Write ``status.json`` atomically (write a temporary file, then rename)."""
    tmp = path / f".{STATUS}.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump({"status": status, **info}, f)
    os.replace(tmp, path / STATUS)


def mark_never_ran(path: pathlib.Path, reason: str) -> bool:
    """Record in ``status.json`` that the job failed without running, and why (issue 18); only
    when no process has started it (no ``status.json``, lock free). Whether it was written.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp())
    >>> mark_never_ran(path, "dependency a failed: ValueError: boom")
    True
    >>> job_info(path).never_ran
    'dependency a failed: ValueError: boom'
    >>> mark_never_ran(path, "again")
    False
    """
    try:
        fd = try_lock(path)
    except FileNotFoundError:  # the directory is gone (`trialbook jobs clean`): nothing to mark
        return False
    if fd is None:  # a process runs it
        return False
    try:
        if read_status(path) is not None:
            return False
        write_status(path, "failed", finished=time.time(), error=reason, never_ran=True)
        return True
    finally:
        os.close(fd)


def write_progress(path: pathlib.Path, levels: list[dict[str, Any]] | None) -> None:
    """Write ``progress.json`` atomically (``levels``: ``{"level", "progress", "desc"}`` dicts,
    outermost first), or remove it (``None``: a new attempt of the job starts)."""
    if levels is None:
        (path / PROGRESS).unlink(missing_ok=True)
        return
    tmp = path / f".{PROGRESS}.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump({"levels": levels}, f)
    os.replace(tmp, path / PROGRESS)


def read_progress(path: pathlib.Path) -> list[dict[str, Any]]:
    """The progress levels a job reported (outermost first), ``[]`` if it reported none.

    Examples
    --------
    >>> import tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> read_progress(d)
    []
    >>> write_progress(d, [{"level": 0, "progress": 0.5, "desc": "epochs"}])
    >>> read_progress(d)
    [{'level': 0, 'progress': 0.5, 'desc': 'epochs'}]
    """
    try:
        with open(path / PROGRESS, "rb") as f:
            levels = json.loads(f.read()).get("levels")
    except (OSError, ValueError, AttributeError):
        return []
    return levels if isinstance(levels, list) else []


def is_done(path: pathlib.Path) -> bool:
    """Whether the job finished successfully (a cache hit: one file read)."""
    status = read_status(path)
    return status is not None and status.get("status") == "done"


def try_lock(path: pathlib.Path) -> int | None:
    """Take the job directory's lock without waiting; return its file descriptor or ``None``."""
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def is_locked(path: pathlib.Path) -> bool:
    """Whether a process holds the job directory's lock (the job really runs)."""
    fd = try_lock(path)
    if fd is None:
        return True
    os.close(fd)
    return False


# -- generate mode --


def write_script(
    path: pathlib.Path, task: bytes, *, title: str, sys_path: list[str]
) -> pathlib.Path:
    """Write the pickled ``task`` and the executable ``run.py`` that runs it; return the script.

    ``python run.py`` (or a batch system) then runs the job in that process
    (:mod:`trialbook.tasks.runner`), with its logs and status in the job directory.
    """
    (path / TASK).write_bytes(task)
    script = (
        f"#!{sys.executable}\n# {title}\n"
        f"import sys\nsys.path[:0] = {sys_path!r}\n"
        "from trialbook.tasks.runner import main\n"
        f"sys.exit(main({str(path)!r}))\n"
    )
    target = path / SCRIPT
    target.write_text(script)
    target.chmod(0o755)
    return target


# -- logs --


def log_path(path: str | os.PathLike[str], stream: str) -> pathlib.Path | None:
    """The log file of ``stream`` (``stdout`` or ``stderr``) in a job directory, if it exists.

    Examples
    --------
    >>> log_path("/nonexistent", "stdout") is None, log_path("/tmp", "other") is None
    (True, True)
    """
    if stream not in STREAMS:
        return None
    log = pathlib.Path(path) / f"{stream}.log"
    return log if log.is_file() else None


def read_log(path: pathlib.Path, offset: int | None) -> dict[str, Any]:
    """Text of a log from byte ``offset`` (``None``: its last 64 KiB), and where to go on.

    Examples
    --------
    >>> import tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "stdout.log"
    >>> _ = p.write_text("one\\ntwo\\n")
    >>> read_log(p, None)["text"], read_log(p, 4)["text"], read_log(p, 4)["offset"]
    ('one\\ntwo\\n', 'two\\n', 8)
    """
    size = path.stat().st_size
    start = max(0, size - LOG_CHUNK) if offset is None else min(max(0, offset), size)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(LOG_CHUNK)
    return {"text": data.decode("utf-8", "replace"), "offset": start + len(data), "size": size}


# -- listing, kill, clean --


@dataclass(slots=True)
class JobInfo:
    """One job directory as found on disk (what its ``params.json`` and ``status.json`` say)."""

    path: pathlib.Path
    task: str
    identifier: str
    status: str
    tags: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None
    experiment: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    started: float | None = None
    finished: float | None = None
    progress: list[dict[str, Any]] = field(default_factory=list)
    """What the job reported with ``progress()`` (:func:`read_progress`; not read for jobs
    that are done)."""
    never_ran: str | None = None
    """Why a failed job never started (:func:`mark_never_ran`); ``None`` for the others."""

    @property
    def name(self) -> str:
        """``<task id>/<identifier>``."""
        return f"{self.task}/{self.identifier}"

    @property
    def label(self) -> str:
        """The display name: task id and tags (see :func:`~trialbook.tasks.jobs.job_label`)."""
        # In the function: trialbook.tasks.jobs (the worker) imports this module.
        from trialbook.tasks.jobs import job_label

        return job_label(self.task, self.tags, self.identifier)


def job_info(path: pathlib.Path, params: dict[str, Any] | None = None) -> JobInfo:
    """What the job directory ``path`` says, with its status as described in the module
    documentation (``params``: its ``params.json`` when already read)."""
    status = read_status(path) or {}
    state = status.get("status", "waiting")
    if state == "running" and not is_locked(path):
        state = "interrupted"  # its process died
    if params is None:
        params = read_params(path) or {}
    return JobInfo(
        path, path.parent.name, path.name, state,
        tags=params.get("tags") or {}, pid=status.get("pid"),
        experiment=params.get("experiment"), params=params.get("params") or {},
        started=status.get("started"), finished=status.get("finished"),
        progress=read_progress(path) if state in ("running", "interrupted", "failed") else [],
        never_ran=str(status.get("error")) if status.get("never_ran") else None,
    )  # fmt: skip


def list_jobs(
    workdir: str | os.PathLike[str],
    *,
    status: str | None = None,
    tags: Mapping[str, str] | None = None,
    experiment: str | None = None,
    limit: int | None = None,
) -> list[JobInfo]:
    """Jobs of ``workdir``, optionally only those with ``status`` and matching ``tags``.

    Tag values are compared as text (``{"epochs": "100"}`` matches the tag ``epochs=100``).
    With ``experiment``, only the jobs whose ``params.json`` names that experiment (the one
    that first submitted them). ``limit`` bounds the number of directories read (in order of
    their paths), so that a huge workdir cannot stall a caller such as the UI.
    """
    root = jobs_root(workdir)
    if not root.is_dir():
        return []
    if experiment is None:
        paths = sorted(p for p in root.glob("*/*") if p.is_dir())
    else:
        paths = sorted(p.parent for p in root.glob(f"*/*/{PARAMS}"))
    out = []
    for path in paths[:limit]:
        params = read_params(path)
        if experiment is not None and (params is None or params.get("experiment") != experiment):
            continue
        info = job_info(path, params or {})
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
