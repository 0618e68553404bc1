"""Command-line glue: turn a parameter's type, default and help text into a click option.

Help text comes from the parameter's ``field(help=...)``, else from the string literal that
follows its annotation in the class body, else from ``#:`` comments just above it.

Examples
--------
>>> import click
>>> from trialbook import Config, Param, forwardoption, arguments
>>> class MyModel(Config):
...     epochs: Param[int] = 100
...     "Number of learning epochs"
>>> @forwardoption(arguments(MyModel).epochs)
... @click.command()
... def cli(epochs):
...     print(MyModel.C(epochs=epochs))
>>> from click.testing import CliRunner
>>> print(CliRunner().invoke(cli, ["--epochs", "3"]).output.strip())
MyModel(epochs=3)
>>> cli.params[0].help, cli.params[0].default
('Number of learning epochs', 100)
"""

from __future__ import annotations

import ast
import inspect
import linecache
import textwrap
from dataclasses import dataclass
from typing import Any

from trialbook.errors import ConfigError, did_you_mean

__all__ = ["ArgumentRef", "arguments", "forwardoption", "param_help"]


def param_help(cls: type, name: str) -> str | None:
    """The help text of parameter ``name`` of a configuration class (``None`` if it has none).

    Examples
    --------
    >>> from trialbook import Config, Param
    >>> class M(Config):
    ...     #: Number of layers
    ...     layers: Param[int] = 3
    >>> param_help(M, "layers")
    'Number of layers'
    """
    spec = cls.__tb_specs__()[name]  # type: ignore[attr-defined]
    if spec.help:
        return spec.help
    for klass in cls.__mro__:
        if name in inspect.get_annotations(klass):
            return _source_help(klass, name)
    return None


def _source_help(cls: type, name: str) -> str | None:
    try:
        source = textwrap.dedent(_class_source(cls))
        lines = source.splitlines()
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndexError):
        return None
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for i, node in enumerate(body):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == name:
            after = body[i + 1] if i + 1 < len(body) else None
            value = after.value if isinstance(after, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return inspect.cleandoc(value.value)
            comments: list[str] = []
            for line in reversed(lines[: node.lineno - 1]):
                if not line.strip().startswith("#:"):
                    break
                comments.insert(0, line.strip()[2:].strip())
            return " ".join(comments) or None
    return None


def _class_source(cls: type) -> str:
    """The class statement's source, found from where the class was created (works in
    scripts, modules and doctests), else through :func:`inspect.getsource`."""
    from trialbook.tasks.config import _SOURCES

    where = _SOURCES.get(cls)
    if where is not None:
        filename, lineno, module_globals = where
        lines = linecache.getlines(filename, module_globals)
        if lines:
            start = lineno - 1
            while start < len(lines) and not lines[start].lstrip().startswith("class "):
                start += 1
            return "".join(inspect.getblock(lines[start:]))
    return inspect.getsource(cls)


@dataclass(frozen=True, slots=True)
class ArgumentRef:
    """A parameter of a configuration class, as given to :func:`forwardoption`."""

    cls: type
    name: str


class _Arguments:
    def __init__(self, cls: type) -> None:
        self._cls = cls

    def __getattr__(self, name: str) -> ArgumentRef:
        specs = self._cls.__tb_specs__()  # type: ignore[attr-defined]
        if name not in specs:
            msg = f"{self._cls.__qualname__} has no parameter {name!r}{did_you_mean(name, specs)}"
            raise ConfigError(msg)
        return ArgumentRef(self._cls, name)


def arguments(cls: type) -> Any:
    """``arguments(MyModel).epochs`` names the parameter ``epochs`` of ``MyModel``.

    Examples
    --------
    >>> from trialbook import Config, Param
    >>> class M(Config):
    ...     x: Param[int] = 1
    >>> arguments(M).x.name
    'x'
    """
    return _Arguments(cls)


def forwardoption(argument: ArgumentRef, option_name: str | None = None, **kwargs: Any) -> Any:
    """A ``click.option`` taking the parameter's type, default and help text.

    ``option_name`` defaults to ``--<name>`` (underscores become dashes); ``kwargs`` go to
    ``click.option`` and win over what is derived.

    Examples
    --------
    >>> from trialbook import Config, Param
    >>> class M(Config):
    ...     batch_size: Param[int] = 8
    >>> import click
    >>> option = forwardoption(arguments(M).batch_size)
    >>> option(click.command()(lambda batch_size: None)).params[0].opts
    ['--batch-size']
    """
    import click

    from trialbook.tasks.params import _NOTSET

    spec = argument.cls.__tb_specs__()[argument.name]  # type: ignore[attr-defined]
    name = option_name or "--" + argument.name.replace("_", "-")
    options: dict[str, Any] = {"help": param_help(argument.cls, argument.name)}
    tp = spec.type
    if tp is bool:
        name = f"{name}/--no-{name.removeprefix('--')}"
    elif tp in (int, float, str):
        options["type"] = tp
    default = spec.default if spec.default is not _NOTSET else spec.ignore_default
    if default is not _NOTSET:
        options["default"] = default
        options["show_default"] = True
    else:
        options["required"] = True
    options.update(kwargs)
    return click.option(name, argument.name, **options)
