"""Running a script as one trial: ``key=value`` arguments, ``--seed``, ``trialbook run``.

:func:`run_script` executes a script with the command line's parameters in effect: every
trial the script computes (``ex.run_trial(result, ...)`` or ``node.compute()``) uses them, or,
when the script computes none, the single ``@ex.result`` node the script defines is computed
as one trial. Nothing here reads ``sys.argv`` unless told to.

Examples
--------
>>> parse_arguments(["a=1", "--seed=2"])
({'a': 1}, 2)
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import os
import re
import runpy
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trialbook.errors import ConfigError
from trialbook.names import is_parameter_name

__all__ = ["ScriptTrial", "current_request", "parse_arguments", "run_script", "script_request"]

_SCRIPT: contextvars.ContextVar[ScriptRequest | None] = contextvars.ContextVar(
    "trialbook_script", default=None
)


@dataclass
class ScriptTrial:
    """One trial a script ran: its experiment (closed once the script ended), trial id and
    result."""

    experiment: Any
    trial_id: int
    result: Any


@dataclass
class ScriptRequest:
    """Parameters and seed given on the ``trialbook run`` command line."""

    params: dict[str, Any]
    seed: int | None
    trials: list[ScriptTrial] = field(default_factory=list)
    experiments: list[Any] = field(default_factory=list)
    """The experiments the script created: closed when it ends, as at the end of a process."""


@contextlib.contextmanager
def script_request(params: Mapping[str, Any], seed: int | None) -> Iterator[ScriptRequest]:
    """Within the block, every trial computed uses ``params`` and ``seed`` (given on a command
    line) over the values the script sets.

    Examples
    --------
    >>> with script_request({"a": 1}, 5) as request:
    ...     current_request() is request
    True
    >>> current_request() is None
    True
    """
    request = ScriptRequest(dict(params), seed)
    token = _SCRIPT.set(request)
    try:
        yield request
    finally:
        _SCRIPT.reset(token)


def current_request() -> ScriptRequest | None:
    """The command-line request in effect, if a script runs under ``trialbook run``."""
    return _SCRIPT.get()


def run_script(path: str | os.PathLike[str], argv: Sequence[str] = ()) -> list[ScriptTrial]:
    r"""Run the script at ``path`` with ``key=value`` / ``--seed N`` arguments as one trial.

    The arguments are parsed first: malformed ones raise :class:`ConfigError` before the script
    runs. The script runs as ``__main__`` with ``sys.argv`` set to ``[path, *argv]``. Every
    trial it computes (``ex.run_trial(...)`` or ``node.compute()``) uses the given parameters
    and seed over the script's own, and those trials are returned; a script that computes none
    has the one ``@ex.result`` node it defines at top level computed as one trial. When the
    script ends, the experiments it created are closed, as the end of its process would
    (reopen one, by its name and store, to read it).

    Raises
    ------
    ConfigError
        For malformed arguments, or a script that runs no trial and defines no (or several)
        result nodes.

    Examples
    --------
    >>> import pathlib
    >>> _ = pathlib.Path("doc_script.py").write_text(
    ...     "import trialbook\n"
    ...     "ex = trialbook.Experiment('doc_run_script', backend='sqlite:///:memory:')\n"
    ...     "a = ex.parameter('a')\n"
    ...     "@ex.result\n"
    ...     "def twice(a):\n"
    ...     "    return 2 * a\n"
    ...     "s = twice(a)\n"
    ... )
    >>> [(t.trial_id, t.result) for t in run_script("doc_script.py", ["a=21", "--seed", "1"])]
    [(1, 42)]
    """
    params, seed = parse_arguments(argv)
    path = os.fspath(path)
    saved = sys.argv
    sys.argv = [path, *argv]
    try:
        with script_request(params, seed) as request:
            try:
                namespace = runpy.run_path(path, run_name="__main__")
                if not request.trials:
                    node = _result_node(namespace, path)
                    node._step.experiment.run_trial(node)
            finally:
                for experiment in request.experiments:
                    experiment.close()
    finally:
        sys.argv = saved
    return request.trials


def _result_node(namespace: Mapping[str, Any], path: str) -> Any:
    from trialbook.graph.nodes import Node

    nodes = {
        id(v): (k, v) for k, v in namespace.items() if isinstance(v, Node) and v._step.is_result
    }
    if len(nodes) != 1:
        found = ", ".join(k for k, _ in nodes.values()) or "none"
        msg = (
            f"{path} ran no trial and defines {len(nodes)} result nodes at top level "
            f"({found}); expected one, or call ex.run_trial(node) in the script"
        )
        raise ConfigError(msg)
    return next(iter(nodes.values()))[1]


def parse_arguments(argv: Sequence[str]) -> tuple[dict[str, Any], int | None]:
    """Parse ``key=value`` arguments and ``--seed N``; values are Python literals or text.

    Examples
    --------
    >>> parse_arguments(["a=1", "b=0.5", "name=adam", "flags=[1, 2]", "--seed", "3"])
    ({'a': 1, 'b': 0.5, 'name': 'adam', 'flags': [1, 2]}, 3)
    """
    params: dict[str, Any] = {}
    seed = None
    items = list(argv)
    while items:
        item = items.pop(0)
        if item == "--seed" or item.startswith("--seed="):
            text = item.partition("=")[2] if "=" in item else (items.pop(0) if items else "")
            if not re.fullmatch(r"-?\d+", text):
                msg = f"--seed takes an integer (got {text!r})"
                raise ConfigError(msg)
            seed = int(text)
            continue
        key, sep, text = item.partition("=")
        if not sep or not is_parameter_name(key):
            msg = (
                f"malformed argument {item!r}: expected key=value with a parameter name as key, "
                "e.g. a=1 or name=adam"
            )
            raise ConfigError(msg)
        try:
            params[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            params[key] = text
    return params, seed
