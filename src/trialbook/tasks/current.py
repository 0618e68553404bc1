"""The current experiment: the stack of open ``with experiment(...)`` blocks of this process.

``Task.submit()`` (:mod:`trialbook.tasks.config`) and a connector without a workdir
(:mod:`trialbook.tasks.launchers`) ask it which experiment they act for; the experiment block
(:mod:`trialbook.tasks.workspace`) pushes itself on entry and removes itself on exit. It lives
on its own so that those modules need not import the experiment block they are used by.

Examples
--------
>>> from trialbook.tasks.current import current_or_none
>>> current_or_none() is None
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trialbook.errors import ConfigError

if TYPE_CHECKING:
    from trialbook.tasks.workspace import experiment

__all__ = ["current_or_none", "enter", "get_experiment", "leave"]

_STACK: list[experiment] = []


def current_or_none() -> experiment | None:
    """The experiment of the innermost open block, or ``None`` outside every block."""
    return _STACK[-1] if _STACK else None


def get_experiment(name: str | None = None, **where: object) -> experiment:
    """The experiment of the innermost open ``with experiment(...)`` block.

    For code that submits tasks without being handed the experiment (a helper module, a
    task's ``task_outputs``). Reading the jobs of a past experiment by ``name`` (which
    experimaestro's ``get_experiment(name, workdir=...)`` does) is not offered: its jobs are
    runs in the store (``trialbook runs NAME``) and ``xp.load`` reads what it saved.

    Raises
    ------
    ConfigError
        Outside every experiment block, or given a name.

    Examples
    --------
    >>> import tempfile
    >>> from trialbook.tasks import experiment
    >>> with experiment(tempfile.mkdtemp(), "doc") as xp:
    ...     get_experiment() is xp
    True
    >>> get_experiment()
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: get_experiment() is called outside an experiment block: ...
    """
    if name is not None or where:
        msg = (
            f"get_experiment({name!r}, ...) would read a past experiment: trialbook records its "
            "jobs as runs in the store; read them with `trialbook runs NAME` or "
            "open_store(...).find_experiment(NAME), and saved objects with xp.load(NAME)"
        )
        raise ConfigError(msg)
    xp = current_or_none()
    if xp is None:
        msg = (
            "get_experiment() is called outside an experiment block: call it inside "
            "`with experiment(workdir, name) as xp:` (or use xp directly)"
        )
        raise ConfigError(msg)
    return xp


def enter(xp: experiment) -> None:
    """Make ``xp`` the current experiment (its block opens).

    Examples
    --------
    >>> marker = object()
    >>> enter(marker)
    >>> current_or_none() is marker
    True
    >>> leave(marker)
    >>> current_or_none() is None
    True
    """
    _STACK.append(xp)


def leave(xp: experiment) -> None:
    """Remove ``xp`` from the open blocks (its block closes; blocks may close out of order)."""
    _STACK.remove(xp)
