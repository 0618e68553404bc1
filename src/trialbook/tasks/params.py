"""Parameter declarations and value checks of typed configurations.

``Param[...]``, ``Meta[...]`` and ``Constant[...]`` mark the annotations of a
:class:`~trialbook.tasks.config.Config`; :func:`field` gives a default and says how the value
counts in the identifier; :func:`check_value` checks a value against a declared type when it
is set.

Examples
--------
>>> from trialbook.tasks.params import check_value
>>> check_value(3, float, "lr", "Opt")
3.0
"""

from __future__ import annotations

import enum
import pathlib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, Union

from trialbook.errors import ConfigError

__all__ = ["Constant", "Meta", "Option", "Param", "ParamSpec", "check_value", "field"]

T = TypeVar("T")


class _Kind(enum.Enum):
    PARAM = "param"
    META = "meta"
    CONSTANT = "constant"


Param = Annotated[T, _Kind.PARAM]
"""A parameter that is part of the configuration's identity: ``epochs: Param[int] = 100``."""
Meta = Annotated[T, _Kind.META]
"""A parameter that does not count in the identifier (paths, verbosity, device)."""
Constant = Annotated[T, _Kind.CONSTANT]
"""A value fixed by the class (e.g. a version); it counts in the identifier, cannot be set."""

for _alias, _doc in (
    (Param, "A parameter that counts in the identifier: ``epochs: Param[int] = 100``."),
    (Meta, "A parameter that does not count in the identifier: ``device: Meta[str] = 'cpu'``."),
    (Constant, "A value fixed by the class (a version): ``version: Constant[int] = 2``."),
):
    _alias.__doc__ = (
        _doc
        + """

    Examples
    --------
    >>> from trialbook import Config, Param, Meta, Constant
    >>> class Learn(Config):
    ...     epochs: Param[int] = 100
    ...     device: Meta[str] = "cpu"
    ...     version: Constant[int] = 2
    >>> Learn.C(device="gpu").__identifier__() == Learn.C().__identifier__()
    True
    """
    )
    _alias.__module__ = __name__

Option = Annotated[T, _Kind.META, "option"]
Option.__doc__ = """experimaestro's former name of :data:`Meta`; it behaves exactly like ``Meta``.

    experimaestro 1.x keeps ``Option`` as a deprecated spelling of ``Meta``; trialbook accepts
    it so that configuration code runs unchanged. Write ``Meta`` in new code.

    Examples
    --------
    >>> from trialbook import Config, Option, Param
    >>> class Model(Config):
    ...     layers: Param[int] = 3
    ...     name: Option[str] = "small"
    >>> Model.C(name="tiny").__identifier__() == Model.C().__identifier__()
    True
    """
Option.__module__ = __name__

_NOTSET: Any = type("NotSet", (), {"__repr__": lambda self: "NOTSET"})()


@dataclass(frozen=True, slots=True)
class _Field:
    default: Any = _NOTSET
    default_factory: Callable[[], Any] | None = None
    ignore_default: Any = _NOTSET
    ignored: bool = False
    help: str | None = None


def field(
    *,
    default: Any = _NOTSET,
    default_factory: Callable[[], Any] | None = None,
    ignore_default: Any = _NOTSET,
    ignored: bool = False,
    help: str | None = None,
) -> Any:
    """Declare a parameter's default and how it counts in the identifier.

    Parameters
    ----------
    default
        The default value (it counts in the identifier like any value).
    default_factory
        A callable giving a fresh default for each configuration.
    ignore_default
        A default that is left out of the identifier when the value equals it: add a new
        parameter this way and the identifiers of existing jobs do not change.
    ignored
        Never count this parameter in the identifier.
    help
        Help text (otherwise the string literal after the annotation is used).

    Examples
    --------
    >>> from trialbook.tasks import Config, Param
    >>> class Opt(Config):
    ...     lr: Param[float] = field(ignore_default=0.1)
    ...     workers: Param[int] = field(default=2, ignored=True)
    >>> Opt.C().__identifier__() == Opt.C(workers=8).__identifier__()
    True
    >>> Opt.C().__identifier__() == Opt.C(lr=0.2).__identifier__()
    False
    """
    if default is not _NOTSET and ignore_default is not _NOTSET:
        msg = "give either default= or ignore_default= (ignore_default is also the default)"
        raise ConfigError(msg)
    return _Field(default, default_factory, ignore_default, ignored, help)


@dataclass(slots=True)
class ParamSpec:
    """What a configuration class says about one parameter."""

    name: str
    kind: _Kind
    type: Any
    default: Any = _NOTSET
    default_factory: Callable[[], Any] | None = None
    ignore_default: Any = _NOTSET
    ignored: bool = False
    help: str | None = None
    is_path: bool = False

    @property
    def required(self) -> bool:
        """Whether a value must be given (no default of any sort)."""
        return (
            self.default is _NOTSET
            and self.default_factory is None
            and self.ignore_default is _NOTSET
        )

    def initial(self) -> Any:
        """The default value for a new configuration (``_NOTSET`` when required)."""
        if self.default_factory is not None:
            return self.default_factory()
        value = self.default if self.default is not _NOTSET else self.ignore_default
        if type(value) in (list, dict, set):
            return type(value)(value)
        return value

    @property
    def counts(self) -> bool:
        """Whether this parameter can count in the identifier."""
        return self.kind is not _Kind.META and not self.ignored and not self.is_path


def _is_path_type(tp: Any) -> bool:
    if isinstance(tp, type) and issubclass(tp, pathlib.PurePath):
        return True
    args = typing.get_args(tp)
    return _is_union(tp) and any(_is_path_type(a) for a in args if a is not type(None))


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _type_error(value: Any, tp: Any, name: str, owner: str) -> ConfigError:
    msg = (
        f"parameter {name!r} of {owner} must be {tp} (got {value!r} that is a {type(value)}); "
        "pass a value of the declared type"
    )
    return ConfigError(msg)


def check_value(value: Any, tp: Any, name: str, owner: str) -> Any:
    """Check ``value`` against the type ``tp``; return it (converted: int to float, str to Path).

    Examples
    --------
    >>> check_value(1, float, "lr", "Opt")
    1.0
    >>> check_value([1, 2], list[int], "sizes", "Opt")
    [1, 2]
    >>> check_value(["a"], list[int], "sizes", "Opt")
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: parameter 'sizes[0]' of Opt must be <class 'int'> (got 'a' ...)...
    """
    if tp is Any or tp is object or isinstance(tp, TypeVar):
        return value
    origin = typing.get_origin(tp)
    if origin is None:
        return _check_plain(value, tp, name, owner)
    if origin in (Union, types.UnionType, typing.Literal):
        return _check_choice(value, tp, origin, name, owner)
    if origin is Annotated:
        return check_value(value, tp.__origin__, name, owner)
    if origin in (list, set, frozenset, tuple, dict):
        return _check_container(value, tp, origin, name, owner)
    if isinstance(origin, type) and not isinstance(value, origin):
        raise _type_error(value, tp, name, owner)
    return value


def _check_choice(value: Any, tp: Any, origin: Any, name: str, owner: str) -> Any:
    """``A | B`` (the first type that accepts the value) and ``Literal[...]``."""
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise _type_error(value, tp, name, owner)
        return value
    for option in typing.get_args(tp):
        try:
            return check_value(value, option, name, owner)
        except ConfigError:
            continue
    raise _type_error(value, tp, name, owner)


def _check_plain(value: Any, tp: Any, name: str, owner: str) -> Any:
    """A class (not a generic alias): ``int`` to ``float``, ``str`` to paths and enums."""
    if tp is float and type(value) is int:
        return float(value)
    if (tp is float and type(value) is not float) or (tp is int and type(value) is bool):
        raise _type_error(value, tp, name, owner)
    if isinstance(tp, type) and issubclass(tp, pathlib.PurePath) and isinstance(value, str):
        return tp(value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum) and not isinstance(value, tp):
        try:
            return tp(value)
        except ValueError:
            raise _type_error(value, tp, name, owner) from None
    if isinstance(tp, type) and not isinstance(value, tp):
        raise _type_error(value, tp, name, owner)
    return value


def _check_container(value: Any, tp: Any, origin: type, name: str, owner: str) -> Any:
    """``list[T]``, ``set[T]``, ``frozenset[T]``, ``tuple[...]``, ``dict[K, V]``: each item."""
    if not isinstance(value, origin):
        raise _type_error(value, tp, name, owner)
    items: Any = value  # a container of type `origin` (checked above)
    args = typing.get_args(tp)
    if origin is dict:
        kt, vt = args if args else (Any, Any)
        return {
            check_value(k, kt, f"{name} key", owner): check_value(v, vt, f"{name}[{k!r}]", owner)
            for k, v in items.items()
        }
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        if not args:
            return value
        if len(args) != len(items):
            raise _type_error(value, tp, name, owner)
        pairs = enumerate(zip(items, args, strict=True))
        return tuple(check_value(v, a, f"{name}[{i}]", owner) for i, (v, a) in pairs)
    item = args[0] if args else Any
    return origin(check_value(v, item, f"{name}[{i}]", owner) for i, v in enumerate(items))
