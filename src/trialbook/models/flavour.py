"""The flavours a model is saved in, and how the flavour of a model is found.

A flavour is a module with ``NAME``, ``PACKAGES`` (the distributions whose versions are
recorded with the model), ``handles(model)``, ``save(model, folder, options)`` (writes the
model's files into ``folder``; returns what ``model.json`` keeps about them) and
``load(folder, meta, options)``. Flavour modules are imported only when a model of theirs is
seen: :func:`detect` looks at the modules of the model's classes (``sklearn``, ``xgboost``,
``lightgbm``, ``torch``), so a library is never imported for a model that does not come from
it. Anything else goes to the ``pickle`` flavour, which needs the store's ``allow_pickle``.

Examples
--------
>>> detect({"a": 1}).NAME
'pickle'
>>> sorted(FLAVOURS)
['lightgbm', 'pickle', 'pytorch', 'sklearn', 'xgboost']
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType
from typing import Any

from trialbook.errors import ConfigError

__all__ = ["FLAVOURS", "LoadOptions", "SaveOptions", "detect", "flavour", "library_class"]

FLAVOURS: dict[str, str] = {
    "sklearn": "trialbook.models.sklearn",
    "xgboost": "trialbook.models.xgboost",
    "lightgbm": "trialbook.models.lightgbm",
    "pytorch": "trialbook.models.pytorch",
    "pickle": "trialbook.models.pickle",
}
"""Flavour name -> module implementing it."""

_ROOTS = {"sklearn": "sklearn", "xgboost": "xgboost", "lightgbm": "lightgbm", "torch": "pytorch"}
"""Top-level module of a model's class -> the flavour that may handle it."""


@dataclasses.dataclass(frozen=True)
class SaveOptions:
    """What the caller of ``log_model`` allows.

    Examples
    --------
    >>> SaveOptions().allow_pickle
    False
    """

    trusted: tuple[str, ...] = ()
    """Type names trusted beyond the safe defaults (skops)."""
    allow_pickle: bool = False
    """The store's opt-in: the ``pickle`` flavour may be used."""


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    """What the caller of ``load_model`` gives or allows.

    Examples
    --------
    >>> LoadOptions(trusted=("mymodule.Scaler",)).trusted
    ('mymodule.Scaler',)
    """

    trusted: tuple[str, ...] = ()
    allow_pickle: bool = False
    model: Any = None
    """A module to fill with saved weights (pytorch)."""


def flavour(name: str) -> ModuleType:
    """The module of the flavour ``name``.

    Examples
    --------
    >>> flavour("sklearn").NAME
    'sklearn'
    >>> flavour("onnx")
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: unknown model flavour 'onnx' (known: 'lightgbm', ...): ...
    """
    module = FLAVOURS.get(name)
    if module is None:
        known = ", ".join(map(repr, sorted(FLAVOURS)))
        msg = (
            f"unknown model flavour {name!r} (known: {known}): it was saved by a newer "
            "trialbook, or model.json was edited"
        )
        raise ConfigError(msg)
    return importlib.import_module(module)


def detect(model: Any) -> ModuleType:
    """The flavour module that saves ``model``: the first class of its MRO coming from a
    library a flavour knows, else ``pickle``.

    Examples
    --------
    >>> detect(3.5).NAME
    'pickle'
    """
    for cls in type(model).__mro__:
        name = _ROOTS.get(cls.__module__.partition(".")[0])
        if name is not None:
            module = flavour(name)
            if module.handles(model):
                return module
    return flavour("pickle")


def library_class(model: Any, library: str) -> str:
    """The dotted name of the first class of ``model``'s hierarchy that ``library`` defines
    (a subclass of yours is stored as the library's class it derives from).

    Examples
    --------
    >>> import collections
    >>> library_class(collections.OrderedDict(), "collections")
    'collections.OrderedDict'
    """
    for cls in type(model).__mro__:
        if cls.__module__.partition(".")[0] == library:
            return f"{cls.__module__}.{cls.__qualname__}"
    msg = f"{type(model)} derives from no class of {library}"
    raise TypeError(msg)
