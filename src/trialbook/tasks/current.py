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

if TYPE_CHECKING:
    from trialbook.tasks.workspace import experiment

__all__ = ["current_or_none", "enter", "leave"]

_STACK: list[experiment] = []


def current_or_none() -> experiment | None:
    """The experiment of the innermost open block, or ``None`` outside every block."""
    return _STACK[-1] if _STACK else None


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
