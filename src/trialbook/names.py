"""The one rule for parameter names, shared by every way of declaring parameters.

A parameter name must be a Python identifier that is not a keyword: that is what
``run.params.lr`` attribute access, ``ex.set_parameters(lr=...)`` keyword arguments, the query
language (``params.lr > 0.1``), ``trialbook run script.py lr=0.1`` and the fields of a task's
``Param`` all need. :meth:`trialbook.graph.Experiment.parameter` and
``add_run`` / ``add_runs`` of an experiment of runs check it with :func:`check_parameter_name`,
so both accept the same names and refuse the others with the same message.

Examples
--------
>>> check_parameter_name("learning_rate")
>>> check_parameter_name("learning rate")
Traceback (most recent call last):
...
trialbook.errors.ConfigError: invalid parameter name 'learning rate': ...
"""

from __future__ import annotations

import keyword
from typing import Any

from trialbook.errors import ConfigError

__all__ = ["check_parameter_name", "is_parameter_name", "run_id"]


def check_parameter_name(name: Any) -> None:
    """Raise :class:`~trialbook.errors.ConfigError` unless ``name`` is a valid parameter name.

    Valid: a ``str`` that is a Python identifier and not a keyword (``lr``, ``n_layers``,
    ``_x2``); refused: ``"learning rate"``, ``"lr-max"``, ``"2nd"``, ``"class"``, ``""``.

    Examples
    --------
    >>> check_parameter_name("n_layers")
    >>> check_parameter_name("class")
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: invalid parameter name 'class': ... rename it, e.g. 'class_'
    """
    if is_parameter_name(name):
        return
    msg = (
        f"invalid parameter name {name!r}: a parameter name must be a Python identifier that "
        "is not a keyword (letters, digits and _, not starting with a digit), so that "
        f"run.params.<name> and <name>=value work; rename it, e.g. {_suggestion(name)!r}"
    )
    raise ConfigError(msg)


def is_parameter_name(name: Any) -> bool:
    """Whether ``name`` is a valid parameter name (see :func:`check_parameter_name`).

    Examples
    --------
    >>> is_parameter_name("lr"), is_parameter_name("lr max"), is_parameter_name("lambda")
    (True, False, False)
    """
    return isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)


def _suggestion(name: Any) -> str:
    """A valid name close to ``name``.

    Examples
    --------
    >>> _suggestion("learning rate"), _suggestion("2nd"), _suggestion("if"), _suggestion("")
    ('learning_rate', '_2nd', 'if_', 'param')
    """
    text = "".join(c if (c + "x").isidentifier() or c.isdigit() else "_" for c in str(name))
    if not text:
        return "param"
    if text[0].isdigit():
        text = "_" + text
    return text + "_" if keyword.iskeyword(text) else text


def run_id(value: Any, what: str = "run id") -> int:
    """``value`` as a run (or trial) id: an ``int``, or an integer of another kind as they come
    out of ``df()`` and ``idxmax()`` (``np.int64``); anything else is a
    :class:`~trialbook.errors.ConfigError` naming ``what``.

    Examples
    --------
    >>> import numpy as np
    >>> run_id(np.int64(8)), run_id(3)
    (8, 3)
    >>> run_id(2.5, "trial_id")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: trial_id must be an int, such as 3 (got 2.5 that is a <class ...
    """
    if type(value) is int:
        return value
    if not isinstance(value, bool) and hasattr(value, "__index__"):
        try:
            return int(value.__index__())
        except TypeError:
            pass
    msg = f"{what} must be an int, such as 3 (got {value!r} that is a {type(value)})"
    raise ConfigError(msg)
