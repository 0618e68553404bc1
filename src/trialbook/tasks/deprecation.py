"""``deprecate``: keep old configuration classes and parameters working, and their identifiers.

experimaestro 1.x's ``deprecate``, two ways:

``@deprecate`` on a class ``Old(New)`` that adds nothing (``pass``)
    ``Old`` identifies as ``New``: its type id becomes ``New``'s, so ``Old.C(x=1)`` and
    ``New.C(x=1)`` have one identifier and one job directory. Use it when a class was renamed
    or moved: code that still says ``Old`` shares the jobs of ``New``.
``@deprecate`` on a method ``def old(self, value)``
    ``old`` becomes a write-only pseudo-parameter: setting it (``Cls.C(old=v)`` or
    ``cfg.old = v``) warns (:class:`~trialbook.errors.TrialbookWarning`) and calls the
    method, which sets the parameters that replace it. Only those count in the identifier.

The former type id stays in ``Old.__tb_deprecated_id__``. Jobs that ran before the
deprecation are in ``jobs/<former id>/<former identifier>``: trialbook does not move or link
them (experimaestro has a ``deprecated`` command for that), so they run again once.

Examples
--------
>>> from trialbook import Config, Param, deprecate
>>> class Model(Config):
...     layers: Param[int] = 3
>>> @deprecate
... class OldModel(Model):
...     pass
>>> OldModel.C(layers=2).__identifier__() == Model.C(layers=2).__identifier__()
True
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from trialbook.errors import ConfigError, SealedError, TrialbookWarning

__all__ = ["DeprecatedParameter", "deprecate"]

_T = TypeVar("_T")


def deprecate(target: _T) -> _T:
    """Deprecate a configuration class or a parameter (see the module documentation).

    Raises
    ------
    ConfigError
        A deprecated class does not derive from exactly one configuration class or declares
        parameters of its own; or ``target`` is neither a configuration class nor a function.

    Examples
    --------
    >>> import warnings
    >>> from trialbook import Config, Param, deprecate
    >>> class Learning(Config):
    ...     losses: Param[list[str]] = []
    ...     @deprecate
    ...     def loss(self, value):
    ...         self.losses = [*self.losses, value]
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     learning = Learning.C(loss="mse")
    >>> learning
    Learning(losses=['mse'])
    >>> print(caught[0].message)
    parameter 'loss' of Learning is deprecated: set the parameters that replace it
    >>> @deprecate
    ... class Alone(Config):
    ...     pass
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: @deprecate class Alone: a deprecated class derives from ...
    """
    from trialbook.tasks.config import Config, Task

    if inspect.isclass(target) and issubclass(target, Config):
        _retarget(target, (Config, Task))
        return target
    if inspect.isfunction(target):
        return DeprecatedParameter(target)  # type: ignore[return-value]
    msg = (
        "deprecate() takes a configuration class (@deprecate class Old(New): pass) or a "
        f"method (@deprecate def old(self, value)); got {target!r} that is a {type(target)}"
    )
    raise ConfigError(msg)


def _retarget(cls: Any, bases: tuple[type, ...]) -> None:
    """Make ``cls`` identify as its only parent (checked to be a configuration class)."""
    parents = [b for b in cls.__bases__ if issubclass(b, bases[0]) and b not in bases]
    if len(cls.__bases__) != 1 or len(parents) != 1:
        msg = (
            f"@deprecate class {cls.__qualname__}: a deprecated class derives from exactly one "
            "configuration class, the one that replaces it (class Old(New): pass)"
        )
        raise ConfigError(msg)
    parent = parents[0]
    own = sorted(set(cls.__tb_specs__()) - set(parent.__tb_specs__()))
    if own:
        msg = (
            f"@deprecate class {cls.__qualname__}: it declares parameters of its own "
            f"({', '.join(own)}), so it cannot identify as {parent.__qualname__}; declare them "
            f"in {parent.__qualname__}"
        )
        raise ConfigError(msg)
    cls.__tb_deprecated_id__ = cls.__trialbook_type_id__()
    cls.__trialbook_id__ = parent.__trialbook_type_id__()


class DeprecatedParameter:
    """A write-only pseudo-parameter made by ``@deprecate`` on a method (see :func:`deprecate`).

    Examples
    --------
    >>> from trialbook import Config, Param, deprecate
    >>> class Opt(Config):
    ...     lr: Param[float] = 0.1
    ...     @deprecate
    ...     def rate(self, value):
    ...         self.lr = value
    >>> Opt.C().rate
    Traceback (most recent call last):
    ...
    AttributeError: 'rate' of Opt is a deprecated parameter: it can be set, not read; read ...
    """

    def __init__(self, method: Callable[[Any, Any], Any]) -> None:
        self.method = method
        self.name = method.__name__
        self.__doc__ = method.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        msg = (
            f"{self.name!r} of {type(instance).__qualname__} is a deprecated parameter: it can "
            "be set, not read; read the parameters that replace it"
        )
        raise AttributeError(msg)

    def __set__(self, instance: Any, value: Any) -> None:
        owner = type(instance).__qualname__
        if instance.__dict__.get("_tb_sealed"):
            msg = f"{owner} is sealed (it was submitted): cannot set {self.name!r}"
            raise SealedError(msg)
        warnings.warn(
            f"parameter {self.name!r} of {owner} is deprecated: set the parameters that replace it",
            TrialbookWarning,
            stacklevel=3,
        )
        self.method(instance, value)
