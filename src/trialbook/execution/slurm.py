"""Running calls on a Slurm cluster through ``sbatch`` scripts written by trialbook.

:class:`SlurmLauncher` turns ``submit(fn, *args)`` into one Slurm job and returns a
:class:`concurrent.futures.Future` of ``fn(*args)``. It is the executor protocol of
:mod:`trialbook.execution.base` and the launcher protocol of :mod:`trialbook.tasks.launchers`,
so task jobs run on Slurm with ``launcher=SlurmLauncher(...)`` and grids of runs with
``execute(steps, executor=SlurmLauncher(...))`` (one job per batch of runs).

Each call gets a folder (``<job directory>/slurm/<n>`` for a task job, else under ``folder``):

================  =====================================================================
``call.pkl``      ``fn`` and its arguments (cloudpickle), with the caller's ``sys.path``
``job.sh``        the ``sbatch`` script: resources as ``#SBATCH`` lines, then the worker
``slurm-<id>.*``  Slurm's standard output and error of each attempt
``result.pkl``    written by the worker: the return value, or the exception it raised
================  =====================================================================

One monitor thread per launcher asks ``squeue`` for the state of every job it submitted
(one call per poll, however many jobs) and completes the futures: a value or the user's
exception when ``result.pkl`` appears; :class:`~trialbook.errors.ExecutionError` naming the
Slurm state, the reason and the log when a job ended without one (failed, cancelled, out of
memory, node failure, vanished). A job that hit its time limit is submitted again, up to
``max_resubmits`` times, when the work supports resuming (a first argument whose
``resumable`` attribute is true: a task job of a ``resumable = True`` task).

Examples
--------
>>> from trialbook.execution.slurm import SlurmLauncher
>>> SlurmLauncher(partition="debug", time="0:10:00", cpus=2, mem="1G")
SlurmLauncher(partition='debug', time='0:10:00', cpus=2, mem='1G')
>>> print(SlurmLauncher(cpus=4, gpus=1).directives())
#SBATCH --cpus-per-task=4
#SBATCH --gres=gpu:1
"""

from __future__ import annotations

import itertools
import os
import pathlib
import shlex
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from trialbook.errors import ConfigError, ExecutionError

__all__ = ["SlurmJob", "SlurmLauncher", "run_call"]

# Slurm job states (squeue %T) after which no result will come.
_ENDED = {
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
    "OUT_OF_MEMORY", "PREEMPTED", "REVOKED", "SPECIAL_EXIT", "TIMEOUT",
}  # fmt: skip
# States whose result.pkl is the call's own outcome (it returned, or raised).
_RESULT_STATES = {"COMPLETED", "FAILED"}
# Seconds a submitted job may be missing from squeue before it counts as lost.
_VANISHED_AFTER = 30.0


@dataclass(slots=True, eq=False)
class SlurmJob:
    """One call submitted to Slurm: its folder, Slurm job ids (one per attempt) and state.

    ``state`` is Slurm's (``PENDING``, ``RUNNING``, ``COMPLETED``, ``FAILED``, ``TIMEOUT``,
    ``CANCELLED``...) as last seen by the launcher's monitor.
    """

    folder: pathlib.Path
    future: Future[Any]
    resumable: bool
    job_ids: list[str] = field(default_factory=list)
    state: str = "SUBMITTING"
    reason: str = ""
    missing_since: float | None = None

    @property
    def job_id(self) -> str:
        """The Slurm id of the current attempt."""
        return self.job_ids[-1]

    def log(self, stream: str = "err") -> str:
        """The text of the current attempt's ``out`` or ``err`` log ("" if none yet)."""
        path = self.folder / f"slurm-{self.job_id}.{stream}"
        try:
            return path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class SlurmLauncher:
    """Run each submitted call as one Slurm job (``sbatch``), tracking it until it ends.

    Parameters
    ----------
    partition, time, cpus, gpus, mem
        Resources of every job: ``--partition``, ``--time`` (Slurm's formats, e.g.
        ``"0:30:00"`` or minutes), ``--cpus-per-task``, ``--gres=gpu:N`` and ``--mem``
        (e.g. ``"4G"``). ``None`` leaves Slurm's default.
    folder
        Where calls that are not task jobs keep their files (default ``./.trialbook-slurm``).
    extra
        More ``sbatch`` options, e.g. ``["--account=ml", "--qos=short"]``.
    max_resubmits
        How many times a job that hit its time limit is submitted again when it is resumable.
    python
        The interpreter that runs the work on the nodes (default: this one; the nodes must
        see the same file system and environment).
    poll
        Seconds between two ``squeue`` calls.
    connector
        Token connector (see :mod:`trialbook.tasks.launchers`); the task experiment sets one.

    Examples
    --------
    >>> launcher = SlurmLauncher(time=30, extra=["--qos=short"])
    >>> print(launcher.directives())
    #SBATCH --time=30
    #SBATCH --qos=short
    >>> SlurmLauncher(cpus=0)
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: cpus must be a positive integer (got 0)
    """

    def __init__(
        self,
        partition: str | None = None,
        time: str | int | None = None,
        cpus: int | None = None,
        gpus: int | None = None,
        mem: str | None = None,
        *,
        folder: str | os.PathLike[str] | None = None,
        extra: Sequence[str] = (),
        max_resubmits: int = 3,
        python: str | None = None,
        poll: float = 0.5,
        connector: Any = None,
    ) -> None:
        for name, value in (("cpus", cpus), ("gpus", gpus)):
            if value is not None and (not isinstance(value, int) or value < 1):
                msg = f"{name} must be a positive integer (got {value!r})"
                raise ConfigError(msg)
        self.partition, self.time, self.cpus, self.gpus, self.mem = partition, time, cpus, gpus, mem
        self.folder = pathlib.Path(folder or ".trialbook-slurm").absolute()
        self.extra = list(extra)
        self.max_resubmits = max_resubmits
        self.python = python or sys.executable
        self.poll = poll
        self.connector = connector
        self.jobs: list[SlurmJob] = []
        self._active: dict[str, SlurmJob] = {}
        self._lock = threading.Lock()
        self._monitor: threading.Thread | None = None
        self._counter = itertools.count()

    def __repr__(self) -> str:
        names = ("partition", "time", "cpus", "gpus", "mem")
        shown = ", ".join(
            f"{n}={getattr(self, n)!r}" for n in names if getattr(self, n) is not None
        )
        return f"SlurmLauncher({shown})"

    def directives(self) -> str:
        """The ``#SBATCH`` resource lines of every job."""
        options = [
            f"--partition={self.partition}" if self.partition else None,
            f"--time={self.time}" if self.time is not None else None,
            f"--cpus-per-task={self.cpus}" if self.cpus else None,
            f"--gres=gpu:{self.gpus}" if self.gpus else None,
            f"--mem={self.mem}" if self.mem else None,
            *self.extra,
        ]
        return "\n".join(f"#SBATCH {o}" for o in options if o)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Submit ``fn(*args)`` as a Slurm job; the future completes when the job ends.

        Cancelling the future before then cancels the job (``scancel``).

        Raises
        ------
        ExecutionError
            If ``sbatch`` is missing or refuses the job (its message is included).
        """
        import cloudpickle

        folder = self._folder_for(args)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "result.pkl").unlink(missing_ok=True)
        inner = cloudpickle.dumps((fn, args))
        (folder / "call.pkl").write_bytes(cloudpickle.dumps((list(sys.path), inner)))
        script = folder / "job.sh"
        script.write_text(self._script(folder))
        job = SlurmJob(
            folder, Future(), bool(getattr(args[0], "resumable", False)) if args else False
        )
        self._sbatch(job)
        job.future.add_done_callback(lambda f: self._dropped(job) if f.cancelled() else None)
        with self._lock:
            self.jobs.append(job)
            self._active[job.job_id] = job
            if self._monitor is None or not self._monitor.is_alive():
                self._monitor = threading.Thread(
                    target=self._watch, name="trialbook-slurm", daemon=True
                )
                self._monitor.start()
        return job.future

    def cancel(self, future: Future[Any]) -> bool:
        """Cancel the Slurm job behind ``future`` (``scancel``); False if it already ended."""
        with self._lock:
            job = next((j for j in self._active.values() if j.future is future), None)
        if job is None:
            return False
        _slurm(["scancel", job.job_id])
        return True

    def _dropped(self, job: SlurmJob) -> None:
        """The future of ``job`` was cancelled: cancel the Slurm job too, if it still runs."""
        with self._lock:
            active = self._active.get(job.job_id) is job
        if active:
            _slurm(["scancel", job.job_id])

    def shutdown(self, cancel: bool = False) -> None:
        """Stop watching; with ``cancel=True`` the jobs still queued or running are cancelled."""
        with self._lock:
            active = list(self._active.values())
        if cancel and active:
            _slurm(["scancel", *(j.job_id for j in active)])

    # -- internals -------------------------------------------------------------------------------

    def _folder_for(self, args: tuple[Any, ...]) -> pathlib.Path:
        job_path = getattr(args[0], "path", None) if args else None
        if isinstance(job_path, str | os.PathLike):
            return pathlib.Path(job_path) / "slurm"
        return self.folder / f"{os.getpid()}-{next(self._counter)}-{uuid.uuid4().hex[:8]}"

    def _script(self, folder: pathlib.Path) -> str:
        q = shlex.quote
        return (
            "#!/bin/bash\n"
            f"#SBATCH --job-name=trialbook-{folder.parent.name[:12]}\n"
            f"#SBATCH --output={folder}/slurm-%j.out\n"
            f"#SBATCH --error={folder}/slurm-%j.err\n"
            f"#SBATCH --chdir={os.getcwd()}\n"
            f"{self.directives()}\n"
            f"exec {q(self.python)} -m trialbook.execution.slurm_worker {q(str(folder))}\n"
        )

    def _sbatch(self, job: SlurmJob) -> None:
        out = _slurm(["sbatch", "--parsable", str(job.folder / "job.sh")])
        job.job_ids.append(out.strip().split(";")[0])
        job.state, job.missing_since = "PENDING", None

    def _watch(self) -> None:
        while True:
            with self._lock:
                if not self._active:
                    self._monitor = None
                    return
                ids = list(self._active)
            try:
                states = _squeue(ids)
            except ExecutionError:
                states = {}
            for job_id in ids:
                self._update(self._active[job_id], states.get(job_id))
            time.sleep(self.poll)

    def _update(self, job: SlurmJob, seen: tuple[str, str] | None) -> None:
        if seen is not None:
            job.state, job.reason = seen
            job.missing_since = None
        elif job.missing_since is None:
            job.missing_since = time.monotonic()
        result = job.folder / "result.pkl"
        if job.state == "TIMEOUT" and job.resumable and len(job.job_ids) <= self.max_resubmits:
            self._resubmit(job, result)
        elif (job.state in _RESULT_STATES or _lost(job)) and result.exists():
            # (a lost job with a result ended and was already forgotten by squeue)
            self._finish(job, lambda: _set_result(job.future, result))
        elif job.state in _ENDED or _lost(job):
            # a timed-out or cancelled attempt may have left a result saying it was stopped:
            # the Slurm state is the better explanation
            error = _ended_error(job, lost=job.state not in _ENDED)
            self._finish(job, lambda: job.future.set_exception(error))

    def _resubmit(self, job: SlurmJob, result: pathlib.Path) -> None:
        with self._lock:
            del self._active[job.job_id]
        result.unlink(missing_ok=True)  # what the interrupted attempt reported
        try:
            self._sbatch(job)
        except ExecutionError as exc:
            failure = exc
            self._finish(job, lambda: job.future.set_exception(failure))
            return
        with self._lock:
            self._active[job.job_id] = job

    def _finish(self, job: SlurmJob, complete: Callable[[], None]) -> None:
        with self._lock:
            self._active.pop(job.job_id, None)
        if job.future.set_running_or_notify_cancel():
            complete()


def _lost(job: SlurmJob) -> bool:
    return job.missing_since is not None and time.monotonic() - job.missing_since > _VANISHED_AFTER


def _ended_error(job: SlurmJob, *, lost: bool) -> ExecutionError:
    what = "vanished from the Slurm queue" if lost else f"ended {job.state}"
    reason = f" ({job.reason})" if job.reason and job.reason != "None" else ""
    tail = "\n".join(job.log("err").splitlines()[-20:])
    msg = (
        f"Slurm job {job.job_id} {what}{reason} without a result; "
        f"its logs are in {job.folder}" + (f":\n{tail}" if tail else "")
    )
    return ExecutionError(msg)


def _set_result(future: Future[Any], path: pathlib.Path) -> None:
    import cloudpickle

    ok, value = cloudpickle.loads(path.read_bytes())
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _slurm(argv: list[str]) -> str:
    """Run a Slurm command; its output, or an ExecutionError with its message."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError as exc:
        msg = f"{argv[0]} is not on PATH: the Slurm launcher needs the Slurm client commands"
        raise ExecutionError(msg) from exc
    except subprocess.TimeoutExpired as exc:
        msg = f"{argv[0]} did not answer within 60 s: is slurmctld running?"
        raise ExecutionError(msg) from exc
    if done.returncode != 0:
        msg = f"{shlex.join(argv)} failed (exit {done.returncode}): {done.stderr.strip()}"
        raise ExecutionError(msg)
    return done.stdout


def _squeue(ids: list[str]) -> dict[str, tuple[str, str]]:
    """``{job id: (state, reason)}`` of the jobs Slurm still knows among ``ids``."""
    out = _slurm(
        ["squeue", "--noheader", "--states=all", "--format=%i|%T|%r", "--jobs", ",".join(ids)]
    )
    states = {}
    for line in out.splitlines():
        job_id, _, rest = line.strip().partition("|")
        state, _, reason = rest.partition("|")
        states[job_id] = (state.split()[0] if state else "UNKNOWN", reason)
    return states


def run_call(folder: str | os.PathLike[str]) -> int:
    """Run the call stored in ``folder`` (on a Slurm node) and write ``result.pkl``.

    Returns 0 when the call returned, 1 when it raised (the exception is in the result, its
    traceback on standard error).
    """
    import traceback

    import cloudpickle

    folder = pathlib.Path(folder)
    _, fn, args = _load_call(folder / "call.pkl")
    try:
        outcome: tuple[bool, Any] = (True, fn(*args))
    except Exception as exc:
        traceback.print_exc()
        outcome = (False, exc)
    try:
        data = cloudpickle.dumps(outcome)
    except Exception as exc:  # an unpicklable value or exception
        data = cloudpickle.dumps(
            (False, ExecutionError(f"the result could not be pickled: {exc!r}"))
        )
    tmp = folder / f".result.{os.getpid()}"
    tmp.write_bytes(data)
    os.replace(tmp, folder / "result.pkl")
    return 0 if outcome[0] else 1


def _load_call(path: pathlib.Path) -> tuple[list[str], Callable[..., Any], tuple[Any, ...]]:
    """Read ``call.pkl``: the caller's ``sys.path`` is set before ``fn`` is unpickled, so that
    the modules it refers to are found."""
    import pickle

    import cloudpickle

    sys_path, inner = pickle.loads(path.read_bytes())
    for entry in sys_path:
        if entry not in sys.path:
            sys.path.append(entry)
    fn, args = cloudpickle.loads(inner)
    return sys_path, fn, args
