"""Launchers: where jobs run. The protocol, and the token connector of local workspaces.

A launcher is an executor (:mod:`trialbook.execution.base`: a ``submit(fn, *args)`` that returns
a :class:`concurrent.futures.Future`) with a ``connector`` (which makes tokens). The local
launcher (:class:`~trialbook.execution.pool.LocalLauncher`) uses joblib's *loky* reusable
executor, whose workers stay alive between jobs, so a job costs no interpreter start-up; the
Dask and Slurm launchers of :mod:`trialbook.execution` implement the same protocol.

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

from trialbook.errors import ConfigError
from trialbook.execution.base import Executor
from trialbook.execution.pool import LocalLauncher
from trialbook.tasks.tokens import CounterToken

__all__ = ["Connector", "Launcher", "LocalConnector", "LocalLauncher"]


@runtime_checkable
class Connector(Protocol):
    """Creates tokens shared by the jobs of a workspace.

    Examples
    --------
    >>> isinstance(LocalConnector(), Connector)
    True
    """

    def createtoken(self, name: str, total: int) -> CounterToken:
        """The token ``name`` with ``total`` units (see :class:`LocalConnector`)."""


@runtime_checkable
class Launcher(Executor, Protocol):
    """Runs jobs: ``submit(fn, *args)`` returns a future of ``fn(*args)``.

    An executor (:class:`trialbook.execution.base.Executor`) with a token connector. The
    protocol, stable for launchers written elsewhere:

    - ``submit(fn, /, *args) -> concurrent.futures.Future``: run ``fn(*args)`` somewhere and
      return a future of its result (or of its exception). The scheduler calls
      ``submit(trialbook.tasks.jobs.execute_job, spec)``: a picklable function of a picklable
      :class:`~trialbook.tasks.jobs.JobSpec`, which writes the job's status and logs in the
      job directory (so that directory must be reachable where it runs), changes the working
      directory and file descriptors 1 and 2 while the job runs (so a process runs one job
      at a time) and returns a :class:`~trialbook.tasks.jobs.JobOutcome`;
    - ``connector``: a :class:`Connector` making tokens, or ``None`` (the experiment then sets
      a :class:`LocalConnector`, whose tokens live in the experiment's workdir);
    - ``shutdown()``: release what the launcher holds;
    - optionally ``n_workers``: how many jobs run at once (the scheduler keeps at most four
      times as many submitted, so that tokens and dependencies are decided late).

    Examples
    --------
    >>> from trialbook.execution.base import InProcessExecutor
    >>> class InProcess(InProcessExecutor):  # an executor, plus where tokens live
    ...     connector = None
    >>> isinstance(InProcess(), Launcher)
    True
    >>> InProcess().submit(pow, 2, 3).result()
    8
    """

    connector: Connector | None

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` somewhere; the result comes back through the future."""

    def shutdown(self) -> None:
        """Release what the launcher holds (idle workers may stay for reuse)."""


class LocalConnector:
    """Tokens counted with file locks in ``<workdir>/.tokens`` (shared by local processes).

    Parameters
    ----------
    workdir
        The workspace whose tokens this connector makes; ``None`` (as with
        :meth:`instance`) means the workdir of the current experiment when a token is created.

    Examples
    --------
    >>> import tempfile
    >>> LocalConnector(tempfile.mkdtemp()).createtoken("cpu", 3)
    CounterToken('cpu', total=3)
    >>> from trialbook.tasks import experiment
    >>> with experiment(tempfile.mkdtemp(), "tokens") as xp:
    ...     token = LocalConnector.instance().createtoken("cpu", 3)
    >>> token.path == xp.workdir / ".tokens" / "cpu"
    True
    """

    _instance: LocalConnector | None = None

    def __init__(self, workdir: str | pathlib.Path | None = None) -> None:
        self.workdir = None if workdir is None else pathlib.Path(workdir)

    def __repr__(self) -> str:
        return f"LocalConnector({None if self.workdir is None else str(self.workdir)!r})"

    @classmethod
    def instance(cls) -> LocalConnector:
        """The shared connector of this process (its tokens live in the current workdir).

        Examples
        --------
        >>> LocalConnector.instance() is LocalConnector.instance()
        True
        """
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def createtoken(self, name: str, total: int) -> CounterToken:
        """The token ``name`` with ``total`` units, shared by every experiment of the workdir."""
        workdir = self.workdir
        if workdir is None:
            from trialbook.tasks.current import current_or_none

            xp = current_or_none()
            if xp is None:
                msg = (
                    f"cannot create token {name!r}: this connector has no workdir and there is no "
                    "current experiment; call it inside `with experiment(workdir, name):` or use "
                    "LocalConnector(workdir)"
                )
                raise ConfigError(msg)
            workdir = xp.workdir
        return CounterToken(name, workdir / ".tokens", total)
