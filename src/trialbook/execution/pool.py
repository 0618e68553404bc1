"""A process pool whose workers outlive one call (joblib's loky executor)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from trialbook.errors import ConfigError, ExecutionError

__all__ = ["Outcome", "map_outcomes", "map_unordered", "resolve_n_jobs"]

Outcome = tuple[int, Any, BaseException | None]
"""``(index of the item, result, error)``: ``error`` is set when the worker itself failed."""

T = TypeVar("T")


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


def map_unordered(
    func: Callable[..., T], items: Iterable[Any], *, n_jobs: int, args: tuple[Any, ...] = ()
) -> Iterator[T]:
    """Yield ``func(*args, item)`` for each item, computed in ``n_jobs`` worker processes.

    Results come in completion order. A worker that dies (killed, out of memory) raises
    :class:`ExecutionError`; exceptions raised by ``func`` itself propagate unchanged.

    Examples
    --------
    >>> sorted(map_unordered(pow, [1, 2, 3], n_jobs=2, args=(2,)))
    [2, 4, 8]
    """
    from concurrent.futures import as_completed

    from joblib.externals.loky import get_reusable_executor
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    executor = get_reusable_executor(max_workers=n_jobs, reuse=True)
    futures = [executor.submit(func, *args, item) for item in items]
    try:
        for future in as_completed(futures):
            yield future.result()
    except TerminatedWorkerError as exc:
        msg = f"a worker process died while executing: {exc}"
        raise ExecutionError(msg) from exc
    finally:
        for future in futures:
            future.cancel()


def map_outcomes(
    func: Callable[..., Any], items: Sequence[Any], *, n_jobs: int, args: tuple[Any, ...] = ()
) -> Iterator[Outcome]:
    """Yield ``(index, func(*args, item), None)`` per item in completion order, in ``n_jobs``
    worker processes; an item whose worker died (or whose call raised) yields
    ``(index, None, error)`` instead, and the others go on.

    Examples
    --------
    >>> sorted(map_outcomes(pow, [1, 2, 3], n_jobs=2, args=(2,)))
    [(0, 2, None), (1, 4, None), (2, 8, None)]
    """
    from concurrent.futures import as_completed

    from joblib.externals.loky import get_reusable_executor

    executor = get_reusable_executor(max_workers=n_jobs, reuse=True)
    futures = {executor.submit(func, *args, item): i for i, item in enumerate(items)}
    try:
        for future in as_completed(futures):
            error = future.exception()
            if error is None:
                yield futures[future], future.result(), None
            else:
                yield futures[future], None, _describe(error)
    finally:
        for future in futures:
            future.cancel()


def _describe(error: BaseException) -> BaseException:
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    if isinstance(error, TerminatedWorkerError):
        msg = f"the worker process died while executing (killed or out of memory): {error}"
        wrapped = ExecutionError(msg)
        wrapped.__cause__ = error
        return wrapped
    return error
