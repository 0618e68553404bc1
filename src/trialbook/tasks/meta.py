"""Configurations marked *meta*: left out of the identifier of the configurations holding them.

``setmeta(config, True)`` says that a configuration given as a parameter value does not
identify its holder (a model used only to report progress, say); ``setmeta(config, False)``
makes a configuration count even as the value of a ``Meta`` parameter. This is experimaestro's
``setmeta``. A meta configuration inside a list, tuple, set or dict value is dropped from that
value before it is encoded, so ``[a, meta_b]`` identifies like ``[a]``.

Examples
--------
>>> from trialbook import Config, Param, setmeta
>>> class Model(Config):
...     layers: Param[int] = 3
>>> class Ensemble(Config):
...     models: Param[list[Model]]
>>> small, big = Model.C(layers=1), Model.C(layers=9)
>>> with_big = Ensemble.C(models=[small, setmeta(big, True)])
>>> with_big.__identifier__() == Ensemble.C(models=[small]).__identifier__()
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from trialbook.errors import ConfigError, SealedError

if TYPE_CHECKING:
    from trialbook.tasks.config import Config

__all__ = ["meta_flag", "setmeta", "without_meta"]

_C = TypeVar("_C", bound="Config")


def setmeta(config: _C, flag: bool) -> _C:
    """Mark ``config`` as meta (``True``: ignored in its holder's identifier) or not; return it.

    ``False`` makes the configuration count even when it is the value of a ``Meta`` (or
    otherwise ignored) parameter. Change it before the holder is submitted: a submitted
    configuration's identifier is fixed.

    Raises
    ------
    ConfigError
        ``config`` is not a configuration or ``flag`` is not a bool.
    SealedError
        ``config`` was already submitted (sealed).

    Examples
    --------
    >>> from trialbook import Config, Meta, Param, setmeta
    >>> class Model(Config):
    ...     layers: Param[int] = 3
    >>> class Report(Config):
    ...     model: Meta[Model]
    >>> a = Report.C(model=Model.C(layers=1))
    >>> b = Report.C(model=Model.C(layers=2))
    >>> a.__identifier__() == b.__identifier__()
    True
    >>> _ = setmeta(a.model, False), setmeta(b.model, False)
    >>> a.__identifier__() == b.__identifier__()
    False
    >>> setmeta(3, True)
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: setmeta() needs a configuration (got 3 that is a <class 'int'>)...
    """
    from trialbook.tasks.config import Config

    if not isinstance(config, Config):
        msg = (
            f"setmeta() needs a configuration (got {config!r} that is a {type(config)}); "
            "pass a Config built with Cls.C(...)"
        )
        raise ConfigError(msg)
    if type(flag) is not bool:
        msg = f"setmeta() needs True or False as flag (got {flag!r} that is a {type(flag)})"
        raise ConfigError(msg)
    if config.__dict__["_tb_sealed"]:
        msg = (
            f"{type(config).__qualname__} is sealed (it was submitted): setmeta() would change "
            "identifiers already used; mark a new configuration instead"
        )
        raise SealedError(msg)
    config.__dict__["_tb_meta"] = flag
    return config


def meta_flag(value: Any) -> bool | None:
    """The flag :func:`setmeta` gave ``value`` (``None``: not set, or not a configuration).

    Examples
    --------
    >>> meta_flag(3) is None
    True
    """
    state = getattr(value, "__dict__", None)
    if state is None or not hasattr(type(value), "__tb_specs__"):
        return None
    flag: bool | None = state.get("_tb_meta")
    return flag


def without_meta(value: Any) -> Any:
    """``value`` without the meta configurations inside its lists, tuples, sets and dicts.

    A value holding none is returned as it is (the same object), so its encoding is unchanged.

    Examples
    --------
    >>> without_meta([1, {"a": 2}])
    [1, {'a': 2}]
    """
    if not _holds_meta(value):
        return value
    t = type(value)
    if t is dict:
        return {k: without_meta(v) for k, v in value.items() if meta_flag(v) is not True}
    return t(without_meta(v) for v in value if meta_flag(v) is not True)


def _holds_meta(value: Any) -> bool:
    t = type(value)
    if t is dict:
        return any(meta_flag(v) is True or _holds_meta(v) for v in value.values())
    if t in (list, tuple, set, frozenset):
        return any(meta_flag(v) is True or _holds_meta(v) for v in value)
    return False
