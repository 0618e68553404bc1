"""Job directories and the code that runs one job inside a worker process.

Layout of a job directory ``<workdir>/jobs/<task id>/<identifier>/``:

==================  ===================================================================
``params.json``     task type id, identifier, parameters (JSON view) and tags
``status.json``     ``{"status": "running" | "done" | "failed", "pid", "started", ...}``
``stdout.log``      everything the job wrote to its standard output (file descriptor 1)
``stderr.log``      standard error, with the traceback when the job failed
``.lock``           held (``flock``) by the process that runs the job, while it runs
``task.pkl``        the pickled task and ``run.py`` its run script (generate mode only)
==================  ===================================================================

Examples
--------
>>> import pathlib, tempfile
>>> from trialbook.tasks.jobs import read_status, write_status
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> read_status(d) is None
True
>>> write_status(d, "done", started=1.0, finished=2.0)
>>> read_status(d)["status"]
'done'
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import json
import os
import pathlib
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from trialbook.storage.records import ErrorInfo

__all__ = [
    "JobOutcome",
    "JobSpec",
    "JobState",
    "execute_job",
    "json_view",
    "read_status",
    "try_lock",
    "write_status",
]

STATUS = "status.json"
PARAMS = "params.json"


class JobState(enum.StrEnum):
    """Where a job is in its life: waiting -> running -> done | failed (or cancelled)."""

    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DRY = "would run"
    GENERATED = "generated"

    @property
    def finished(self) -> bool:
        """Whether the job will not change any more."""
        return self not in (JobState.WAITING, JobState.RUNNING)


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


def try_lock(path: pathlib.Path) -> int | None:
    """Take the job directory's lock without waiting; return its file descriptor or ``None``."""
    fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def json_view(value: Any) -> Any:
    """A JSON-friendly view of a parameter value (configurations become small dicts)."""
    from trialbook.tasks.config import Config, Task

    if isinstance(value, Config):
        view: dict[str, Any] = {"__config__": type(value).__trialbook_type_id__()}
        view["identifier"] = value.__identifier__()
        if isinstance(value, Task) and value.__dict__.get("_tb_job") is not None:
            view["jobpath"] = str(value.jobpath)
        view.update({s.name: json_view(v) for s, v in value.__tb_values__()})
        return view
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if type(value) in (list, tuple, set, frozenset):
        return [json_view(v) for v in value]
    if type(value) is dict:
        return {str(k): json_view(v) for k, v in value.items()}
    if value is None or type(value) in (str, int, float, bool):
        return value
    return repr(value)


@dataclass(slots=True)
class JobSpec:
    """What a worker needs to run a job (the task travels pickled, unpickled in the worker)."""

    task: bytes
    path: str
    env: dict[str, str] = field(default_factory=dict)
    sys_path: list[str] = field(default_factory=list)


@dataclass(slots=True)
class JobOutcome:
    """What comes back from a worker: status, times, error, and what the job tracked."""

    status: str
    started: float
    finished: float
    error: ErrorInfo | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    metrics: list[Any] = field(default_factory=list)


@contextlib.contextmanager
def _capture(path: pathlib.Path) -> Iterator[None]:
    """Send file descriptors 1 and 2 (and sys.stdout/stderr) to the job's log files."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    out = os.open(path / "stdout.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    err = os.open(path / "stderr.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, out, err):
            os.close(fd)


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def execute_job(spec: JobSpec) -> JobOutcome:
    """Run one job: unpickle the task, capture its output, call ``execute()``, write status.

    Runs in a worker process (or in a generated run script). Exceptions raised by the task are
    caught, written to ``stderr.log`` with their traceback and returned as the outcome's error.
    """
    import cloudpickle

    from trialbook.tracking import Run, error_info, using_run

    for entry in spec.sys_path:
        if entry not in sys.path:
            sys.path.append(entry)
    path = pathlib.Path(spec.path)
    run = Run(0, kind="job")
    started = time.time()
    write_status(path, "running", pid=os.getpid(), started=started)
    error = None
    with _capture(path), _environment(spec.env), using_run(run):
        try:
            task = cloudpickle.loads(spec.task)
            task.execute()
        except Exception as exc:
            traceback.print_exc()
            error = error_info(exc)
    finished = time.time()
    status = "failed" if error else "done"
    extra = {"error": str(error)} if error else {}
    write_status(path, status, pid=os.getpid(), started=started, finished=finished, **extra)
    return JobOutcome(status, started, finished, error, dict(run.fields), run.pending_metrics())
