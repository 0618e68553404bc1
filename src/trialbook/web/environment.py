"""An environment snapshot as the run page shows it: tables, not JSON text inside JSON.

:func:`trialbook.capture.environment` records each section as a text (JSON for the structured
ones, one ``name version (location)`` line per package for ``requirements``) and the snapshot
is the JSON of those texts (:func:`trialbook.capture.environment_text`). Shown as it is, the
page would print escaped JSON nested in JSON; :func:`environment_tables` decodes both levels:
the packages as rows sorted by name, every other section as ``key, value`` rows (nested
values by dotted keys, long texts such as ``git``'s diff marked ``long``).

Examples
--------
>>> from trialbook.capture import environment_text
>>> text = environment_text({"python": '{"version": "3.12.1"}',
...                          "requirements": "numpy 2.0.1 (/venv)\\nAttrs 23.1 (/venv)\\n"})
>>> tables = environment_tables(text)
>>> [(p["name"], p["version"]) for p in tables["packages"]]
[('Attrs', '23.1'), ('numpy', '2.0.1')]
>>> tables["sections"][0]["title"], tables["sections"][0]["rows"]
('Python', [{'key': 'version', 'value': '3.12.1', 'long': False}])
"""

from __future__ import annotations

import json
import re
from typing import Any

from trialbook.capture import SECTION_TITLES, parse_environment
from trialbook.errors import ConfigError

__all__ = ["environment_tables"]

TITLES = {
    "device": "Platform",
    "cpu": "CPU",
    "python": "Python",
    "numpy": "NumPy",
    "scipy": "SciPy",
    "pandas": "pandas",
    "conda": "conda",
    "git": "Git",
    "gpu": "GPU",
}
"""Section name -> the heading of its table (``requirements`` is the packages table)."""
LONG = 160
"""A value longer than this many characters, or of several lines, is marked ``long``."""
_PACKAGE = re.compile(r"^(?P<name>\S+) (?P<version>\S+)(?: \((?P<location>.*)\))?$")


def environment_tables(text: str) -> dict[str, Any]:
    """The tables of an environment snapshot's text: ``packages`` (``name``, ``version``,
    ``location``, sorted by name without case) and ``sections`` (``name``, ``title``,
    ``rows`` of ``key``, ``value``, ``long``), in the order of
    :data:`trialbook.capture.SECTION_TITLES`, unknown sections last.

    Raises
    ------
    ConfigError
        If ``text`` is not an environment snapshot (a code snapshot, say).

    Examples
    --------
    >>> environment_tables('{"cpu": "{\\\\"count\\\\": 2}"}')["sections"][0]["rows"][0]["value"]
    '2'
    >>> environment_tables("def f(): pass")
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: this snapshot is not an environment (a JSON object of section texts, as trialbook.capture.environment_text writes): it cannot be shown as tables
    """  # noqa: E501 - a doctest's expected output is one line
    try:
        env = parse_environment(text)
    except (ValueError, TypeError):
        env = None
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        msg = (
            "this snapshot is not an environment (a JSON object of section texts, as "
            "trialbook.capture.environment_text writes): it cannot be shown as tables"
        )
        raise ConfigError(msg)
    order = [*SECTION_TITLES, *sorted(set(env) - set(SECTION_TITLES))]
    sections = [
        {"name": name, "title": TITLES.get(name, name), "rows": _rows(env[name])}
        for name in order
        if name in env and name != "requirements"
    ]
    return {"packages": _packages(env.get("requirements", "")), "sections": sections}


def _packages(text: str) -> list[dict[str, Any]]:
    rows = []
    for line in text.splitlines():
        match = _PACKAGE.match(line.strip())
        if match is not None:
            rows.append(match.groupdict())
        elif line.strip():
            rows.append({"name": line.strip(), "version": None, "location": None})
    return sorted(rows, key=lambda p: (p["name"].lower(), p["name"]))


def _rows(text: str) -> list[dict[str, Any]]:
    try:
        value = json.loads(text)
    except ValueError:
        return [_row("text", text)]
    if not isinstance(value, dict):
        return [_row("value", value)]
    rows = [_row(key, item) for key, item in _flat(value, "")]
    return sorted(rows, key=lambda r: FIRST.index(r["key"]) if r["key"] in FIRST else len(FIRST))


FIRST = ("implementation", "system", "platform", "version", "machine", "count", "model name")
"""Keys shown first in their section (the others keep the snapshot's order)."""


def _flat(value: dict[str, Any], prefix: str) -> list[tuple[str, Any]]:
    """Nested dicts by dotted keys (NumPy's build configuration nests three levels)."""
    out: list[tuple[str, Any]] = []
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict) and item:
            out += _flat(item, name + ".")
        else:
            out.append((name, item))
    return out


def _row(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        text = value
    elif isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        text = ", ".join(str(v) for v in value)
    elif value is None:
        text = ""
    elif isinstance(value, bool | int | float):
        text = json.dumps(value)
    else:
        text = json.dumps(value, ensure_ascii=False)
    return {"key": key, "value": text, "long": "\n" in text or len(text) > LONG}
