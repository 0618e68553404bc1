"""Save and load configurations as JSON (``xp.save`` / ``xp.load``).

A configuration becomes ``{"__config__": "module:qualname", "params": {...}, "jobpath": ...}``;
lists, dicts, paths and plain values keep their shape. Loading imports the classes.

Examples
--------
>>> from trialbook.tasks.serial import dump, load
>>> load(dump({"a": [1, 2]}))
{'a': [1, 2]}
"""

from __future__ import annotations

import importlib
import pathlib
from typing import Any

from trialbook.errors import ConfigError

__all__ = ["dump", "load"]


def dump(value: Any) -> Any:
    """A JSON-compatible tree for ``value``."""
    from trialbook.tasks.config import Config, Task

    if isinstance(value, Config):
        cls = type(value)
        out: dict[str, Any] = {"__config__": f"{cls.__module__}:{cls.__qualname__}"}
        values = value.__tb_values__()
        out["params"] = {s.name: dump(v) for s, v in values if s.kind.value != "constant"}
        has_job = "_tb_job" in value.__dict__ or "_tb_jobpath" in value.__dict__
        if isinstance(value, Task) and has_job:
            out["jobpath"] = str(value.jobpath)
        return out
    if isinstance(value, pathlib.PurePath):
        return {"__path__": str(value)}
    if type(value) in (list, tuple):
        return [dump(v) for v in value]
    if type(value) is dict:
        return {str(k): dump(v) for k, v in value.items()}
    if value is None or type(value) in (str, int, float, bool):
        return value
    msg = f"cannot save a value of type {type(value)}: save configurations and plain values"
    raise ConfigError(msg)


def load(tree: Any) -> Any:
    """Rebuild what :func:`dump` produced (configurations come back sealed)."""
    if isinstance(tree, list):
        return [load(v) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "__path__" in tree:
        return pathlib.Path(tree["__path__"])
    if "__config__" not in tree:
        return {k: load(v) for k, v in tree.items()}
    cls = _find_class(tree["__config__"])
    config = cls.C(**{k: load(v) for k, v in tree["params"].items()})
    config.__tb_seal__()
    if "jobpath" in tree:
        config.__dict__["_tb_jobpath"] = pathlib.Path(tree["jobpath"])
    return config


def _find_class(name: str) -> Any:
    """The configuration class ``module:qualname``: a class defined in this process (a script's
    ``__main__``, a notebook), else imported."""
    from trialbook.tasks.config import _SOURCES

    for cls in list(_SOURCES):
        if f"{cls.__module__}:{cls.__qualname__}" == name:
            return cls
    module, _, qualname = name.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        msg = f"cannot load a {name}: {exc}; define saved classes at module level"
        raise ConfigError(msg) from exc
    return found
