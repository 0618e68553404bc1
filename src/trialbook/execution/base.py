"""The executor protocol: ``submit(fn, *args)`` runs a call somewhere and returns a future.

Every way of running work elsewhere is one class with this protocol: a process pool
(:class:`~trialbook.execution.pool.LocalLauncher`), a Dask cluster
(:class:`~trialbook.execution.dask.DaskLauncher`), Slurm
(:class:`~trialbook.execution.slurm.SlurmLauncher`) or this process
(:class:`InProcessExecutor`). Grids of runs (``execute(..., executor=...)``) and task jobs (the
launcher of a task experiment, which is an executor with a token ``connector``) go through it,
so a new executor serves both.

The contract:

- ``submit(fn, /, *args)`` returns a :class:`concurrent.futures.Future` of ``fn(*args)``.
  ``fn`` and ``args`` must be picklable (cloudpickle) unless the executor runs in this
  process. The future holds the call's own exception when it raised, and an
  :class:`~trialbook.errors.ExecutionError` when the call could not finish for a reason of its
  own (its worker process died, the job was cancelled by the cluster). Cancelling a future
  that has not started drops its call.
- ``shutdown()`` releases what the executor holds (idle workers may stay for reuse).
- Optionally ``n_workers``: how many calls run at once; callers size their batches with it.

Examples
--------
>>> from trialbook.execution.base import Executor, InProcessExecutor
>>> executor = InProcessExecutor()
>>> isinstance(executor, Executor)
True
>>> executor.submit(divmod, 7, 2).result()
(3, 1)
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, runtime_checkable

__all__ = ["Executor", "InProcessExecutor"]


@runtime_checkable
class Executor(Protocol):
    """Runs calls somewhere: ``submit(fn, *args)`` returns a future of ``fn(*args)``.

    See the module documentation for the contract.

    Examples
    --------
    >>> class Immediate:
    ...     def submit(self, fn, /, *args):
    ...         from concurrent.futures import Future
    ...         future = Future()
    ...         future.set_result(fn(*args))
    ...         return future
    ...     def shutdown(self):
    ...         pass
    >>> isinstance(Immediate(), Executor)
    True
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` somewhere; the result comes back through the future."""

    def shutdown(self) -> None:
        """Release what the executor holds."""


class InProcessExecutor:
    """Run each call at once, in the calling thread (nothing is pickled).

    Useful to debug work meant for another executor, and as the smallest example of the
    protocol. It has no ``connector``, so it does not run task jobs (a job changes the working
    directory and file descriptors of the process that runs it).

    Examples
    --------
    >>> future = InProcessExecutor().submit(int, "x")
    >>> type(future.exception()).__name__
    'ValueError'
    """

    n_workers = 1

    def __repr__(self) -> str:
        return "InProcessExecutor()"

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Call ``fn(*args)`` now; a completed future of its value or exception."""
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def shutdown(self) -> None:
        """Nothing to release."""
