"""Tokens: counted resources shared by every job of a workspace, across processes.

A token ``cpu`` with 3 units lives in ``<workdir>/.tokens/cpu/``. A job that needs 2 units
starts only when the units held by running jobs plus 2 do not exceed 3. Counting is done under
an exclusive ``flock`` on ``<token dir>/.lock``: each holder is a file ``<pid>-<n>.holder``
holding its unit count; holders whose process died are removed when counting, so a killed
experiment never keeps units forever.

Examples
--------
>>> import tempfile, pathlib
>>> from trialbook.tasks.tokens import CounterToken
>>> token = CounterToken("cpu", pathlib.Path(tempfile.mkdtemp()), 3)
>>> a = token.try_acquire(2)
>>> token.try_acquire(2) is None
True
>>> token.release(a)
>>> token.try_acquire(2) is not None
True
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from trialbook.errors import ConfigError

__all__ = ["CounterToken", "TokenDependency"]

_COUNTER = itertools.count()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CounterToken:
    """A counted resource shared by all jobs of a workspace (see the module documentation).

    Parameters
    ----------
    name
        The token's name (one directory per name in the workspace).
    directory
        The workspace's token folder (``<workdir>/.tokens``).
    total
        How many units exist; the last process to create the token sets it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> token = CounterToken("gpu", pathlib.Path(tempfile.mkdtemp()), 1)
    >>> token.dependency(1)
    TokenDependency(token='gpu', count=1)
    """

    def __init__(self, name: str, directory: pathlib.Path, total: int) -> None:
        if type(total) is not int or total < 1:
            msg = f"token {name!r} needs a positive int count (got {total!r})"
            raise ConfigError(msg)
        self.name = name
        self.total = total
        self.path = pathlib.Path(directory) / name
        self.path.mkdir(parents=True, exist_ok=True)
        with self._locked():
            (self.path / "total").write_text(str(total))

    def __repr__(self) -> str:
        return f"CounterToken({self.name!r}, total={self.total})"

    def dependency(self, count: int) -> TokenDependency:
        """A dependency that holds ``count`` units of this token while the job runs.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> token = CounterToken("cpu", pathlib.Path(tempfile.mkdtemp()), 3)
        >>> token.dependency(2)
        TokenDependency(token='cpu', count=2)
        >>> token.dependency(4)
        Traceback (most recent call last):
        ...
        trialbook.errors.ConfigError: token 'cpu' has 3 units; cannot depend on 4 of them
        """
        if type(count) is not int or not 1 <= count <= self.total:
            msg = f"token {self.name!r} has {self.total} units; cannot depend on {count!r} of them"
            raise ConfigError(msg)
        return TokenDependency(self, count)

    def __call__(self, count: int, task: Any) -> Any:
        """Make ``task`` need ``count`` units (``token(2, task)``); return the task.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from trialbook.tasks import Task
        >>> class Train(Task):
        ...     pass
        >>> token = CounterToken("cpu", pathlib.Path(tempfile.mkdtemp()), 3)
        >>> task = token(2, Train.C())
        >>> task.__dict__["_tb_deps"]
        [TokenDependency(token='cpu', count=2)]
        """
        task.add_dependencies(self.dependency(count))
        return task

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def in_use(self) -> int:
        """Units held by live processes now (dead holders are removed).

        Examples
        --------
        >>> import tempfile, pathlib
        >>> token = CounterToken("cpu", pathlib.Path(tempfile.mkdtemp()), 3)
        >>> holder = token.try_acquire(2)
        >>> token.in_use()
        2
        """
        used = 0
        for holder in self.path.glob("*.holder"):
            try:
                pid, count = holder.read_text().split()
            except (FileNotFoundError, ValueError):
                continue
            if _alive(int(pid)):
                used += int(count)
            else:
                holder.unlink(missing_ok=True)
        return used

    def try_acquire(self, count: int) -> pathlib.Path | None:
        """Take ``count`` units if they are free; return the holder file (or ``None``).

        See the module example.
        """
        with self._locked():
            total = int((self.path / "total").read_text())
            if self.in_use() + count > total:
                return None
            holder = self.path / f"{os.getpid()}-{next(_COUNTER)}.holder"
            holder.write_text(f"{os.getpid()} {count}")
            return holder

    def release(self, holder: pathlib.Path) -> None:
        """Give back the units taken by :meth:`try_acquire` (see the module example)."""
        with self._locked():
            holder.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class TokenDependency:
    """``count`` units of ``token`` that a job holds while it runs.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> TokenDependency(CounterToken("gpu", pathlib.Path(tempfile.mkdtemp()), 2), 1)
    TokenDependency(token='gpu', count=1)
    """

    token: CounterToken
    count: int

    def __repr__(self) -> str:
        return f"TokenDependency(token={self.token.name!r}, count={self.count})"
