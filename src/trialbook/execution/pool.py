"""A process pool whose workers outlive one call (joblib's *loky* executor).

:class:`LocalLauncher` is the executor of :mod:`trialbook.execution.base` on this machine: its
workers stay alive between calls (no interpreter start-up per call) and functions travel with
cloudpickle, so functions defined in a script or a notebook work too.

Examples
--------
>>> from trialbook.execution.pool import LocalLauncher
>>> LocalLauncher(n_workers=1).submit(pow, 2, 5).result()
32
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from trialbook.errors import ConfigError, ExecutionError

__all__ = ["LocalLauncher", "resolve_n_jobs", "thread_limits"]


def resolve_n_jobs(n_jobs: int | None) -> int:
    """Number of worker processes for ``n_jobs``: ``-1`` means every core, never more than cores.

    Examples
    --------
    >>> resolve_n_jobs(-1) == (os.cpu_count() or 1)
    True
    >>> resolve_n_jobs(0)
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: n_jobs must be a positive int or -1 (got 0)
    """
    cores = os.cpu_count() or 1
    if n_jobs is None:
        return 1
    if type(n_jobs) is not int or (n_jobs < 1 and n_jobs != -1):
        msg = f"n_jobs must be a positive int or -1 (got {n_jobs!r})"
        raise ConfigError(msg)
    return cores if n_jobs == -1 else min(n_jobs, cores)


class LocalLauncher:
    """Run calls (task jobs, batches of runs) in ``n_workers`` local worker processes that stay
    alive between calls.

    A worker process that dies (killed, out of memory) fails the calls it was running with an
    :class:`~trialbook.errors.ExecutionError` saying so. Each worker's numerical libraries
    (BLAS, OpenMP) get ``cores // n_workers`` threads unless ``OMP_NUM_THREADS`` and the like
    are set (:func:`thread_limits`).

    Parameters
    ----------
    n_workers
        Number of worker processes (default: every core).
    connector
        The token connector of task jobs; the task experiment sets a
        :class:`~trialbook.tasks.launchers.LocalConnector` on its workdir when none is given.

    Examples
    --------
    >>> LocalLauncher(n_workers=2).n_workers
    2
    """

    def __init__(self, n_workers: int = -1, *, connector: Any = None) -> None:
        self.n_workers = resolve_n_jobs(n_workers)
        self.connector = connector

    def __repr__(self) -> str:
        return f"LocalLauncher(n_workers={self.n_workers})"

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` in a worker process (``fn`` and ``args`` must be picklable).

        Examples
        --------
        >>> LocalLauncher(n_workers=1).submit(divmod, 7, 2).result()
        (3, 1)
        """
        from joblib.externals.loky import get_reusable_executor

        executor = get_reusable_executor(
            max_workers=self.n_workers, reuse=True, env=thread_limits(self.n_workers)
        )
        return _relay(executor.submit(fn, *args))

    def shutdown(self) -> None:
        """Nothing to do: idle workers stay for the next use in this process.

        Examples
        --------
        >>> LocalLauncher(n_workers=1).shutdown()
        """


THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
"""Variables that bound the threads of numerical libraries (BLAS, OpenMP) in a process."""


def thread_limits(n_workers: int) -> dict[str, str]:
    """The environment of pool workers: each numerical library gets ``cores // n_workers``
    threads (at least 1), so that ``n_workers`` processes do not oversubscribe the cores with
    ``n_workers x cores`` BLAS threads; a variable the user set is passed on as it is.

    Examples
    --------
    >>> limits = thread_limits(os.cpu_count() or 1)
    >>> limits["OMP_NUM_THREADS"] == os.environ.get("OMP_NUM_THREADS", "1")
    True
    """
    per_worker = str(max(1, (os.cpu_count() or 1) // max(1, n_workers)))
    return {name: os.environ.get(name, per_worker) for name in THREAD_VARIABLES}


def _relay(inner: Future[Any]) -> Future[Any]:
    """A future completed as ``inner`` is, with a dead worker as an ExecutionError; cancelling
    it cancels ``inner`` when that has not started."""
    outer: Future[Any] = Future()

    def settle(done: Future[Any]) -> None:
        if done.cancelled():
            outer.cancel()
            return
        error = done.exception()
        if not outer.set_running_or_notify_cancel():
            return
        if error is None:
            outer.set_result(done.result())
        else:
            outer.set_exception(_describe(error))

    def forward_cancel(done: Future[Any]) -> None:
        if done.cancelled():
            inner.cancel()

    outer.add_done_callback(forward_cancel)
    inner.add_done_callback(settle)
    return outer


def _describe(error: BaseException) -> BaseException:
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    if isinstance(error, TerminatedWorkerError):
        msg = f"the worker process died while executing (killed or out of memory): {error}"
        wrapped = ExecutionError(msg)
        wrapped.__cause__ = error
        return wrapped
    return error
