"""The code that runs one job inside a worker process, and what travels to and from it.

The job runs in its directory (layout, status and lock: :mod:`trialbook.tasks.jobdir`), with
its output sent to the directory's log files; :func:`execute_job` writes its status there.

Examples
--------
>>> from trialbook.tasks.jobs import JobState
>>> JobState.DONE.finished, JobState.RUNNING.finished
(True, False)
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import pathlib
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from trialbook.storage.records import ErrorInfo
from trialbook.tasks.jobdir import write_status

__all__ = [
    "JobOutcome",
    "JobSpec",
    "JobState",
    "execute_job",
    "failure_reason",
    "job_label",
    "json_view",
]


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


def job_label(task: str, tags: Mapping[str, Any] | None, identifier: str = "") -> str:
    """A job's display name: its task id and its tags, ``key=value`` sorted by key.

    Every list of jobs uses it (dry run, failures, progress lines, ``trialbook jobs``, the
    UI's job graph). A job without tags is named by its task id and the first 12 characters
    of its identifier.

    Examples
    --------
    >>> job_label("train", {"seed": 2, "alpha": 0.1}, "3f2a9c1e77d0a1b2")
    'train alpha=0.1 seed=2'
    >>> job_label("train", {}, "3f2a9c1e77d0a1b2")
    'train 3f2a9c1e77d0'
    >>> job_label("train", {"model": "big one"})
    'train model="big one"'
    """
    if not tags:
        return f"{task} {identifier[:12]}".rstrip()
    return " ".join([task, *(f"{k}={_tag_text(v)}" for k, v in sorted(tags.items()))])


def _tag_text(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c.isspace() for c in text) else text


def failure_reason(error: ErrorInfo) -> str:
    """``Type: message``, with the file and line of the user's code that raised when the
    traceback shows one (frames of trialbook and of installed packages are skipped).

    Examples
    --------
    >>> tb = 'Traceback (most recent call last):\\n  File "/x/plan.py", line 10, in execute\\n'
    >>> failure_reason(ErrorInfo("ValueError", "bad x", tb))
    'ValueError: bad x (at /x/plan.py, line 10)'
    >>> failure_reason(ErrorInfo("ValueError", "bad x"))
    'ValueError: bad x'
    """
    where = user_frame(error.traceback)
    return f"{error} (at {where[0]}, line {where[1]})" if where else str(error)


def user_frame(traceback_text: str) -> tuple[str, int] | None:
    """The last frame of a formatted traceback that is the user's code: ``(file, line)``."""
    import re
    import sysconfig

    paths = sysconfig.get_paths()
    roots = {str(pathlib.Path(__file__).parents[1]), *(paths[k] for k in ("stdlib", "purelib"))}
    skipped = tuple(os.path.join(root, "") for root in roots)
    frames = re.findall(r'^  File "(.+)", line (\d+)', traceback_text, flags=re.M)
    for filename, line in reversed(frames):
        if not filename.startswith(("<", *skipped)):
            return _shorter(filename), int(line)
    return None


def _shorter(filename: str) -> str:
    """``filename`` relative to the working directory when it is inside it."""
    try:
        return str(pathlib.Path(filename).relative_to(os.getcwd()))
    except ValueError:
        return filename


def json_view(value: Any) -> Any:
    """A JSON-friendly view of a parameter value (configurations become small dicts)."""
    from trialbook.tasks.config import Config, Task

    if isinstance(value, Config):
        view: dict[str, Any] = {"__config__": type(value).__trialbook_type_id__()}
        view["identifier"] = value.__identifier__()
        if isinstance(value, Task) and value.__dict__.get("_tb_job") is not None:
            view["jobpath"] = str(value.jobpath)
        source = value.__dict__.get("_tb_output_of")
        if source is not None:  # an output of that task's job: the UI draws the dependency
            view["output_of"] = {
                "__config__": type(source).__trialbook_type_id__(),
                "identifier": source.__identifier__(),
            }
        view.update({s.name: json_view(v) for s, v in value.__tb_values__()})
        return view
    if isinstance(value, (pathlib.PurePath, enum.Enum)):
        return str(value) if isinstance(value, pathlib.PurePath) else value.value
    if type(value) in (set, frozenset):  # sorted: the same set always looks the same
        return sorted((json_view(v) for v in value), key=repr)
    if type(value) in (list, tuple):
        return [json_view(v) for v in value]
    if type(value) is dict:
        return {str(k): json_view(v) for k, v in value.items()}
    return value if value is None or type(value) in (str, int, float, bool) else repr(value)


@dataclass(slots=True)
class JobSpec:
    """What a worker needs to run a job (the task travels pickled, unpickled in the worker).

    ``task`` is a pickle (made by :func:`trialbook.tasks.payload.dump_task`, or a plain
    cloudpickle) whose configuration classes may be keys into ``classes``.
    """

    task: bytes
    path: str
    env: dict[str, str] = field(default_factory=dict)
    sys_path: list[str] = field(default_factory=list)
    classes: dict[str, bytes] = field(default_factory=dict)
    resumable: bool = False
    """The task can resume after an interrupted attempt (``Task.resumable``)."""


@dataclass(slots=True)
class JobOutcome:
    """What comes back from a worker: status, times, error, and what the job tracked."""

    status: str
    started: float
    finished: float
    error: ErrorInfo | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    metrics: list[Any] = field(default_factory=list)
    artifacts: dict[str, Any] = field(default_factory=dict)
    """What ``execute()`` logged with ``current_run().log_artifact``: name -> bytes or
    absolute path, written with the job's run."""


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
def _workdir(path: pathlib.Path) -> Iterator[None]:
    """Run in the job directory (relative paths written by the job land there)."""
    saved = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(saved)


class _Kill:
    """SIGTERM while a job runs: ``armed`` while ``execute()`` runs (the signal raises there);
    outside it, the signal is only noted and raised as soon as ``execute()`` would start."""

    armed = False
    requested = False


def _stop_job(signum: int, frame: Any) -> None:
    _Kill.requested = True
    if _Kill.armed:
        _raise_stopped()


def _raise_stopped() -> None:
    from trialbook.errors import ExecutionError

    _Kill.armed = False
    msg = "the job was stopped by SIGTERM (`trialbook jobs kill`); submit it again to re-run it"
    raise ExecutionError(msg)


@contextlib.contextmanager
def _killable() -> Iterator[None]:
    """SIGTERM during the job fails the job, not the worker process (which stays in the pool)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; a signal then ends the process
        return
    _Kill.requested = False
    previous = signal.signal(signal.SIGTERM, _stop_job)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _Kill.armed = _Kill.requested = False


@contextlib.contextmanager
def _armed() -> Iterator[None]:
    if _Kill.requested:
        _raise_stopped()
    _Kill.armed = True
    try:
        yield
    finally:
        _Kill.armed = False


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    if not env:
        yield
        return
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

    Runs in a worker process (or in a generated run script), in the job directory as working
    directory, with file descriptors 1 and 2 sent to the job's log files: both are
    process-wide, so a process runs one job at a time. The task's init tasks
    (``submit(init_tasks=...)``) run first, in order. What the job reports with
    :func:`~trialbook.tasks.reporting.progress` goes to its ``progress.json``. Exceptions raised
    by the task are caught, written to ``stderr.log`` with their traceback and returned as the
    outcome's error.
    """
    from trialbook.tasks.payload import load_task
    from trialbook.tasks.reporting import reporting
    from trialbook.tracking import Run, error_info, using_run

    for entry in spec.sys_path:
        if entry not in sys.path:
            sys.path.append(entry)
    path = pathlib.Path(spec.path)
    run = Run(0, kind="job")
    started = time.time()
    error = None
    with _killable():
        write_status(path, "running", pid=os.getpid(), started=started)
        with (
            _capture(path),
            _workdir(path),
            _environment(spec.env),
            using_run(run),
            reporting(path),
        ):
            try:
                task = load_task(spec.task, spec.classes)
                task.__dict__["_tb_jobpath"] = path
                with _armed():
                    for init in task.__dict__.get("_tb_init_tasks", ()):
                        init.execute()
                    task.execute()
            except Exception as exc:
                traceback.print_exc()
                error = error_info(exc)
    finished = time.time()
    status = "failed" if error else "done"
    extra = {"error": str(error)} if error else {}
    write_status(path, status, pid=os.getpid(), started=started, finished=finished, **extra)
    return JobOutcome(
        status, started, finished, error, dict(run.fields), run.pending_metrics(),
        run.held_artifacts(),
    )  # fmt: skip
