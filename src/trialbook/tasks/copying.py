"""``copyconfig``: a new, unsealed configuration with the values of another one, some changed.

experimaestro's ``copyconfig``: the way to vary a configuration that was already submitted
(sealed configurations cannot be changed). The copy has the same class and the same parameter
values (nested configurations are shared, not copied), then the given keywords are set, each
checked like any assignment. It is neither sealed nor submitted nor marked meta, has no
dependencies or callbacks; it keeps the tags of the values it keeps.

Examples
--------
>>> from trialbook import Config, Param, copyconfig
>>> class Model(Config):
...     layers: Param[int] = 3
...     width: Param[int] = 64
>>> base = Model.C(layers=4)
>>> copyconfig(base, width=128)
Model(layers=4, width=128)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from trialbook.errors import ConfigError

if TYPE_CHECKING:
    from trialbook.tasks.config import Config

__all__ = ["copyconfig"]

_C = TypeVar("_C", bound="Config")


def copyconfig(config: _C, **changes: Any) -> _C:
    """A new unsealed configuration of the same class and values as ``config``, with ``changes``.

    Raises
    ------
    ConfigError
        ``config`` is not a configuration, or a change names no parameter or has a wrong type.

    Examples
    --------
    >>> from trialbook import Config, Param, copyconfig, tag
    >>> class Opt(Config):
    ...     lr: Param[float] = 0.1
    ...     momentum: Param[float] = 0.9
    >>> first = Opt.C(lr=tag(0.01))
    >>> first.__tb_seal__()  # as submit() does
    >>> second = copyconfig(first, momentum=0.5)
    >>> second, second.tags()
    (Opt(lr=0.01, momentum=0.5), {'lr': 0.01})
    >>> second.momentum = 0.4  # the copy is not sealed
    >>> copyconfig(first, moment=0.5)
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: Opt has no parameter 'moment' ... (did you mean 'momentum'?)
    """
    from trialbook.tasks.config import Config
    from trialbook.tasks.params import _Kind

    if not isinstance(config, Config):
        msg = (
            f"copyconfig() needs a configuration (got {config!r} that is a {type(config)}); "
            "pass a Config built with Cls.C(...)"
        )
        raise ConfigError(msg)
    cls = type(config)
    copy = cls.__new__(cls)
    Config.__init__(copy)
    source, target = config.__dict__, copy.__dict__
    for name, spec in cls.__tb_specs__().items():
        if name in source and spec.kind is not _Kind.CONSTANT:
            value = source[name]
            target[name] = type(value)(value) if type(value) in (list, dict, set) else value
    target["_tb_tags"] = dict(source["_tb_tags"])
    for name, value in changes.items():
        setattr(copy, name, value)
    return copy
