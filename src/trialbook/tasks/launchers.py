"""Launchers: where jobs run. The protocol, and the local launcher (long-lived worker processes).

A launcher has a ``connector`` (which makes tokens) and a ``submit(fn, *args)`` that returns a
:class:`concurrent.futures.Future`. The local launcher uses joblib's *loky* reusable executor,
whose workers stay alive between jobs, so a job costs no interpreter start-up. Dask and Slurm
launchers (distributed-execution issue) implement the same protocol.

Examples
--------
>>> from trialbook.tasks.launchers import Launcher, LocalLauncher
>>> launcher = LocalLauncher(n_workers=1)
>>> isinstance(launcher, Launcher)
True
>>> launcher.submit(pow, 2, 5).result()
32
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, runtime_checkable

from trialbook.tasks.tokens import CounterToken

__all__ = ["Connector", "Launcher", "LocalConnector", "LocalLauncher"]


@runtime_checkable
class Connector(Protocol):
    """Creates tokens shared by the jobs of a workspace."""

    def createtoken(self, name: str, total: int) -> CounterToken:
        """The token ``name`` with ``total`` units."""


@runtime_checkable
class Launcher(Protocol):
    """Runs jobs: ``submit(fn, *args)`` returns a future of ``fn(*args)``."""

    connector: Connector | None

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` somewhere; the result comes back through the future."""

    def shutdown(self) -> None:
        """Release what the launcher holds (idle workers may stay for reuse)."""


class LocalConnector:
    """Tokens counted with file locks in ``<workdir>/.tokens`` (shared by local processes).

    Examples
    --------
    >>> import tempfile
    >>> LocalConnector(tempfile.mkdtemp()).createtoken("cpu", 3)
    CounterToken('cpu', total=3)
    """

    def __init__(self, workdir: str | pathlib.Path) -> None:
        self.workdir = pathlib.Path(workdir)

    def createtoken(self, name: str, total: int) -> CounterToken:
        """The token ``name`` with ``total`` units, shared by every experiment of the workdir."""
        return CounterToken(name, self.workdir / ".tokens", total)


class LocalLauncher:
    """Run jobs in ``n_workers`` local worker processes that stay alive between jobs.

    Parameters
    ----------
    n_workers
        Number of worker processes (default: every core).
    connector
        The token connector; the experiment sets a :class:`LocalConnector` on its workdir
        when none is given.

    Examples
    --------
    >>> LocalLauncher(n_workers=2).n_workers
    2
    """

    def __init__(self, n_workers: int = -1, *, connector: Connector | None = None) -> None:
        from trialbook.execution.pool import resolve_n_jobs

        self.n_workers = resolve_n_jobs(n_workers)
        self.connector = connector

    def __repr__(self) -> str:
        return f"LocalLauncher(n_workers={self.n_workers})"

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` in a worker process."""
        from joblib.externals.loky import get_reusable_executor

        executor = get_reusable_executor(max_workers=self.n_workers, reuse=True)
        return executor.submit(fn, *args)

    def shutdown(self) -> None:
        """Nothing to do: idle workers stay for the next experiment of this process."""
