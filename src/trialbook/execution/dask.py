"""Running work on a Dask distributed cluster (a ``distributed.Client`` or a scheduler address).

Work travels as batches (one task per batch) so that thousands of tiny items do not cost one
scheduler round trip each. ``distributed`` is imported only when a cluster is used.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from trialbook.errors import ConfigError, ExecutionError
from trialbook.execution.pool import Outcome

__all__ = ["connect", "map_outcomes_dask", "worker_count"]


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
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - distributed is in the test extra
        msg = "running on Dask needs the distributed package: pip install 'trialbook[distributed]'"
        raise ConfigError(msg) from exc
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
    msg = (
        f"client must be a distributed.Client or a scheduler address such as "
        f"'tcp://127.0.0.1:8786' (got {client!r} that is a {type(client)})"
    )
    raise ConfigError(msg)


def worker_count(client: Any) -> int:
    """Threads available on the cluster (at least 1)."""
    return max(1, sum(client.nthreads().values()))


def map_outcomes_dask(
    func: Callable[..., Any], items: Sequence[Any], *, client: Any, args: tuple[Any, ...] = ()
) -> Iterator[Outcome]:
    """Like :func:`trialbook.execution.pool.map_outcomes`, on a Dask cluster.

    A task whose workers kept dying (``KilledWorker``) or that raised yields its error; the
    others go on.
    """
    from distributed import as_completed

    run_key = uuid.uuid4().hex
    futures = {
        client.submit(func, *args, item, pure=False, key=f"trialbook-batch-{run_key}-{i}"): i
        for i, item in enumerate(items)
    }
    try:
        for future in as_completed(list(futures)):
            index = futures[future]
            if future.status == "finished":
                yield index, future.result(), None
            else:
                error = future.exception()
                yield index, None, _describe(error)
    finally:
        for future in futures:
            future.release()


def _describe(error: BaseException) -> BaseException:
    if type(error).__name__ == "KilledWorker":
        msg = f"the Dask worker process died while executing (killed or out of memory): {error}"
        wrapped = ExecutionError(msg)
        wrapped.__cause__ = error
        return wrapped
    return error
