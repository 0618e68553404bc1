"""Running work on a Dask distributed cluster (a ``distributed.Client`` or a scheduler address).

:class:`DaskLauncher` is the executor of :mod:`trialbook.execution.base` on a cluster: each
``submit`` is one Dask task (callers batch tiny items, so that thousands of them do not cost one
scheduler round trip each). ``distributed`` is imported only when a cluster is used.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from typing import Any

from trialbook.errors import ConfigError, ExecutionError

__all__ = ["DaskLauncher", "connect", "worker_count"]


@contextmanager
def connect(client: Any) -> Iterator[Any]:
    """A ``distributed.Client`` for ``client``, in a ``with`` block: a client is used as is; an
    address (``"tcp://host:8786"``) is connected to, and that connection closed at the end.

    Raises
    ------
    ConfigError
        If ``client`` is neither.
    ExecutionError
        If the scheduler cannot be reached.
    """
    from trialbook.extras import require

    require("distributed", "running on a Dask cluster")
    from distributed import Client

    if isinstance(client, Client):
        yield client
        return
    if isinstance(client, str):
        try:
            owned = Client(client, timeout="10s")
        except OSError as exc:
            msg = f"cannot reach the Dask scheduler at {client!r}: {exc}"
            raise ExecutionError(msg) from exc
        try:
            yield owned
        finally:
            owned.close()
        return
    raise _not_a_client(client)


def _not_a_client(client: Any) -> ConfigError:
    return ConfigError(
        f"client must be a distributed.Client or a scheduler address such as "
        f"'tcp://127.0.0.1:8786' (got {client!r} that is a {type(client)})"
    )


def _is_client(value: Any) -> bool:
    """Whether ``value`` is a ``distributed.Client`` (without importing ``distributed``)."""
    return any(t.__name__ == "Client" for t in type(value).__mro__)


def worker_count(client: Any) -> int:
    """Threads available on the cluster (at least 1)."""
    return max(1, sum(client.nthreads().values()))


def _failure(future: Any) -> BaseException:
    """Why a Dask future did not finish: its error, or an ExecutionError when it has none (a
    task cancelled, or lost with its worker)."""
    error = future.exception() if future.status == "error" else None
    if error is None:
        return ExecutionError(
            f"the Dask task ended {future.status!r} without a result: its worker process died "
            "or the task was cancelled"
        )
    return _describe(error)


def _describe(error: BaseException) -> BaseException:
    if type(error).__name__ == "KilledWorker":
        msg = f"the Dask worker process died while executing (killed or out of memory): {error}"
        wrapped = ExecutionError(msg)
        wrapped.__cause__ = error
        return wrapped
    return error


class DaskLauncher:
    """Run calls on a Dask distributed cluster: task jobs (the launcher protocol of
    :mod:`trialbook.tasks.launchers`) and batches of runs (the executor protocol of
    :mod:`trialbook.execution.base`).

    Tokens and dependencies are handled by the experiment's scheduler before a job is sent,
    so they hold on the cluster too. A job's output is captured at the file-descriptor level
    of the worker process: give the cluster one thread per worker
    (``LocalCluster(threads_per_worker=1)``, or ``--nthreads 1`` for ``dask worker``) so that
    two jobs never share a process. A worker that dies fails its job with an
    :class:`~trialbook.errors.ExecutionError`; the experiment goes on.

    Parameters
    ----------
    client
        A ``distributed.Client`` (used as is, never closed here) or a scheduler address such
        as ``"tcp://127.0.0.1:8786"`` (connected on first use, closed by :meth:`shutdown`).
        ``dask-jobqueue`` clusters work the same way: ``Client(SLURMCluster(...))``.
    connector
        Token connector; the task experiment sets one on its workdir when none is given.

    Examples
    --------
    >>> DaskLauncher("tcp://127.0.0.1:8786")
    DaskLauncher('tcp://127.0.0.1:8786')
    >>> DaskLauncher(42)
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: client must be a distributed.Client or a scheduler address ...
    """

    def __init__(self, client: Any, *, connector: Any = None) -> None:
        if not isinstance(client, str) and not _is_client(client):
            raise _not_a_client(client)
        self._target = client
        self._client: Any = None
        self._stack = ExitStack()
        self.connector = connector

    def __repr__(self) -> str:
        target = self._target if isinstance(self._target, str) else self._target.scheduler.address
        return f"DaskLauncher({target!r})"

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` jobs are sent to (connected on first use)."""
        if self._client is None:
            self._client = self._stack.enter_context(connect(self._target))
        return self._client

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Send ``fn(*args)`` to the cluster; a :class:`concurrent.futures.Future` of its value.

        Cancelling that future before it completes cancels the Dask task.
        """
        remote = self.client.submit(fn, *args, pure=False, key=f"trialbook-job-{uuid.uuid4().hex}")
        local: Future[Any] = Future()

        def settle(done: Any) -> None:
            try:
                if not local.set_running_or_notify_cancel():
                    return
                if done.status == "finished":
                    local.set_result(done.result())
                else:
                    local.set_exception(_failure(done))
            except BaseException as exc:  # the result could not be fetched
                local.set_exception(exc)
            finally:
                done.release()

        def forward_cancel(future: Future[Any]) -> None:
            if future.cancelled():
                remote.cancel()

        local.add_done_callback(forward_cancel)
        remote.add_done_callback(settle)
        return local

    def shutdown(self) -> None:
        """Close the connection this launcher opened (a client passed in stays open)."""
        self._stack.close()
        self._client = None
