"""``@cache(name)``: a configuration method whose result is kept in a file of its cache folder.

experimaestro's ``@cache``: some results of a configuration are worth keeping but do not need
a job of their own (term statistics of a collection, say). The decorated method receives, after
``self``, the path ``<workdir>/config/<type id>/<identifier>/<name>``; the method decides
what it reads and writes there. Every configuration with the same identifier shares the path,
in every experiment of the workdir and in every job. While the method runs, the process holds
an exclusive lock (``flock``) on ``<name>.lock`` beside it, so two jobs never compute the same
file at once: the second one waits, then finds the file.

The workdir is that of the open ``with experiment(...)`` block, or, inside a running job, the
one the job directory belongs to.

Examples
--------
>>> import tempfile
>>> from trialbook import Config, Param, cache, experiment
>>> class Squares(Config):
...     n: Param[int] = 3
...     @cache("squares.txt")
...     def values(self, path):
...         if not path.exists():
...             path.write_text(" ".join(str(i * i) for i in range(self.n)))
...         return path.read_text()
>>> with experiment(tempfile.mkdtemp(), "doc") as xp:
...     print(Squares.C().values())
0 1 4
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import pathlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, overload

from trialbook.errors import ConfigError

if TYPE_CHECKING:
    from trialbook.tasks.config import Config

__all__ = ["cache", "cache_dir"]

_F = TypeVar("_F", bound=Callable[..., Any])


@overload
def cache(name: str) -> Callable[[_F], _F]: ...
@overload
def cache(name: _F) -> _F: ...
def cache(name: Any) -> Any:
    """Give the decorated method a file path of the configuration's cache folder, under a lock.

    ``@cache("terms.npy")`` passes ``<cache folder>/terms.npy``; bare ``@cache`` names the file
    after the method. The name is a relative path that stays inside the folder.

    Raises
    ------
    ConfigError
        The name is not a relative path inside the folder; or (when called) there is no
        experiment block open and no job running, so no workdir to put the file in.

    Examples
    --------
    >>> from trialbook import Config, cache
    >>> class Terms(Config):
    ...     @cache
    ...     def stats(self, path):
    ...         return path.name
    >>> Terms.C().stats()
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: Terms.stats() uses a cache folder, which needs a workdir: ...
    >>> cache("../outside")
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: @cache needs a relative file name inside the cache folder ...
    """
    if callable(name):
        return _decorate(name, name.__name__)
    parts = pathlib.PurePosixPath(str(name)).parts if isinstance(name, str) else ()
    if not parts or parts[0] == "/" or ".." in parts:
        msg = (
            f"@cache needs a relative file name inside the cache folder (got {name!r}); "
            'write e.g. @cache("terms.npy")'
        )
        raise ConfigError(msg)
    return lambda method: _decorate(method, name)


def _decorate(method: _F, name: str) -> _F:
    @functools.wraps(method)
    def cached(self: Config, *args: Any, **kwargs: Any) -> Any:
        folder = cache_dir(self, f"{type(self).__qualname__}.{method.__name__}()")
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path.with_name(path.name + ".lock")):
            return method(self, path, *args, **kwargs)

    return cached  # type: ignore[return-value]


def cache_dir(config: Config, user: str = "the cache folder") -> pathlib.Path:
    """``<workdir>/config/<type id>/<identifier>``: the cache folder of ``config``.

    Examples
    --------
    >>> import tempfile
    >>> from trialbook import Config, experiment
    >>> class Data(Config):
    ...     __trialbook_id__ = "doc.data"
    >>> with experiment(tempfile.mkdtemp(), "doc") as xp:
    ...     cache_dir(Data.C()).relative_to(xp.workdir).parts[:2]
    ('config', 'doc.data')
    """
    workdir = _workdir()
    if workdir is None:
        msg = (
            f"{user} uses a cache folder, which needs a workdir: call it inside "
            "`with experiment(workdir, name):` or inside a running job"
        )
        raise ConfigError(msg)
    return workdir / "config" / type(config).__trialbook_type_id__() / config.__identifier__()


def _workdir() -> pathlib.Path | None:
    from trialbook.tasks.current import current_or_none

    xp = current_or_none()
    if xp is not None:
        return pathlib.Path(xp.workdir)
    return _job_workdir(pathlib.Path.cwd())


def _job_workdir(cwd: pathlib.Path) -> pathlib.Path | None:
    """The workdir of the job whose directory is ``cwd`` (a job runs in its directory)."""
    from trialbook.tasks import jobdir

    params = jobdir.read_params(cwd)
    if not params or not isinstance(params.get("task"), str):
        return None
    depth = len(pathlib.PurePosixPath(params["task"]).parts) + 2  # jobs/<task id>/<identifier>
    if depth > len(cwd.parents):
        return None
    workdir = cwd.parents[depth - 1]
    ident = str(params.get("identifier"))
    return workdir if jobdir.job_path(workdir, params["task"], ident) == cwd else None


@contextlib.contextmanager
def _locked(path: pathlib.Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
