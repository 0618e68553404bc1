"""Paths generated in the job directory: ``field(default_factory=PathGenerator("model.pt"))``.

A parameter declared with a :class:`PathGenerator` default holds a :class:`GeneratedPath`
placeholder until the task is submitted; :func:`generate_paths` then replaces it with
``<job directory>/<relative path>`` (in the task and in the configurations inside it, so a
sub-configuration's generated path lands in the directory of the job that uses it). Such a
parameter must not count in the identifier (declare it ``Meta[Path]``, or ``Param[Path]``:
paths never count), so the generated path never changes the job it belongs to.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from trialbook.tasks import Meta, Task, experiment, field
>>> class Train(Task):
...     model: Meta[Path] = field(default_factory=PathGenerator("model.pt"))
...     def execute(self):
...         self.model.write_text("weights")
>>> with experiment(tempfile.mkdtemp(), "doc") as xp:
...     task = Train.C().submit()
>>> task.model == task.jobpath / "model.pt", task.model.read_text()
(True, 'weights')
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trialbook.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from trialbook.tasks.config import Config

__all__ = ["GeneratedPath", "PathGenerator", "find_generated", "generate_paths"]


@dataclass(frozen=True, slots=True)
class GeneratedPath:
    """A path that does not exist yet: ``relative`` inside the job directory, once submitted."""

    relative: pathlib.PurePath

    def __repr__(self) -> str:
        return f"GeneratedPath({str(self.relative)!r})"


class PathGenerator:
    """A default factory for a path inside the job directory (``""``: the directory itself).

    Parameters
    ----------
    path
        A relative path (``str`` or path-like) without ``..``.

    Examples
    --------
    >>> from pathlib import Path
    >>> from trialbook.tasks import Meta, Task, field
    >>> class Train(Task):
    ...     model: Meta[Path] = field(default_factory=PathGenerator("model.pt"))
    >>> Train.C()
    Train(model=GeneratedPath('model.pt'))
    >>> PathGenerator("/tmp/model.pt")
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: PathGenerator needs a relative path inside the job ...
    """

    def __init__(self, path: str | os.PathLike[str] = "") -> None:
        if not isinstance(path, (str, os.PathLike)):
            msg = (
                f"PathGenerator takes a relative path (str or path-like); got {path!r} that is "
                f"a {type(path)} (functions of the job context are not supported)"
            )
            raise ConfigError(msg)
        relative = pathlib.PurePath(path)
        if relative.is_absolute() or ".." in relative.parts:
            msg = (
                f"PathGenerator needs a relative path inside the job directory (got {path!r}); "
                "drop the leading '/' and any '..'"
            )
            raise ConfigError(msg)
        self.path = relative

    def __call__(self) -> GeneratedPath:
        return GeneratedPath(self.path)

    def __repr__(self) -> str:
        return f"PathGenerator({str(self.path)!r})"


def _configs(config: Config) -> Iterator[Config]:
    """``config``, its init tasks and the configurations inside them, except sealed ones: a
    configuration is sealed by the first submit that includes it, which generated its paths
    (in the directory of that job)."""
    yield config
    for child in [*config.__dict__.get("_tb_init_tasks", ()), *config.__tb_children__()]:
        if not child.__dict__["_tb_sealed"]:
            yield from _configs(child)


Pending = list[tuple["Config", str, GeneratedPath]]


def find_generated(config: Config) -> Pending:
    """The paths to generate in ``config`` (before it is sealed): where they are, and what.

    Refuses a generated path on a parameter that counts in the identifier.

    Examples
    --------
    >>> from trialbook.tasks import Param, Task, field
    >>> class Bad(Task):
    ...     name: Param[str] = field(default_factory=PathGenerator("out.txt"))
    >>> find_generated(Bad.C())
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: parameter 'name' of Bad has a generated path but counts in ...
    """
    pending: Pending = []
    for item in _configs(config):
        for spec, value in item.__tb_values__():
            if not isinstance(value, GeneratedPath):
                continue
            if spec.counts:
                msg = (
                    f"parameter {spec.name!r} of {type(item).__qualname__} has a generated path "
                    "but counts in the identifier: declare it Meta[Path] (or Param[Path])"
                )
                raise ConfigError(msg)
            pending.append((item, spec.name, value))
    return pending


def generate_paths(pending: Pending, jobpath: pathlib.Path) -> None:
    """Set each path found by :func:`find_generated` to its place in ``jobpath``. Done once the
    job directory is known, after the identifier (which these paths never change)."""
    for item, name, value in pending:
        item.__dict__[name] = jobpath / value.relative
