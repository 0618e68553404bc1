"""YAML experiment plans: ``ConfigurationBase``, ``@configuration``, ``ExperimentHelper``.

A plan is a python file with a ``run(helper, cfg)`` function and a configuration dataclass,
plus YAML files that fill the configuration::

    # experiment.py                              # full.yaml
    @configuration                               id: my-xp
    class Configuration(ConfigurationBase):      file: experiment
        learning_rate: float = 1e-3              learning_rate: 1e-4

    def run(helper: ExperimentHelper, cfg: Configuration):
        ...

``trialbook run-experiment full.yaml`` loads the YAML, merges its ``parent`` files (the child
wins, dicts merge recursively), applies ``-c key=value`` overrides (dotted keys, values read as
YAML), builds the configuration (types checked, ``"1e-4"`` read as a float for a ``float``
field), then calls ``run`` inside ``with experiment(workdir, cfg.id) as helper.xp``.

Examples
--------
>>> from trialbook.tasks.plans import ConfigurationBase, configuration, build
>>> @configuration
... class Configuration(ConfigurationBase):
...     learning_rate: float = 1e-3
>>> build(Configuration, {"id": "xp", "learning_rate": "1e-4"}).learning_rate
0.0001
>>> build(Configuration, {"id": "xp", "learnin_rate": 1})
Traceback (most recent call last):
...
trialbook.errors.ConfigError: unknown key 'learnin_rate' for ... (did you mean 'learning_rate'?)...
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import pathlib
import sys
import typing
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, dataclass_transform

from trialbook.errors import ConfigError, did_you_mean
from trialbook.tasks.params import check_value

__all__ = [
    "MISSING",
    "ConfigurationBase",
    "ExperimentCallable",
    "ExperimentHelper",
    "apply_overrides",
    "build",
    "configuration",
    "load",
    "load_plan",
]

MISSING = "???"
"""Marks a required value that the YAML files must give (as in omegaconf)."""
_T = TypeVar("_T")


@dataclass_transform(kw_only_default=True)
def configuration(cls: type[_T] | None = None, **kwargs: Any) -> Any:
    """Make a plan configuration class (a keyword-only dataclass); bare or with arguments.

    Examples
    --------
    >>> @configuration
    ... class Cfg(ConfigurationBase):
    ...     epochs: int = 10
    >>> Cfg(id="a").epochs
    10
    """

    def wrap(klass: type[_T]) -> type[_T]:
        return dataclasses.dataclass(kw_only=True, **kwargs)(klass)

    return wrap if cls is None else wrap(cls)


@configuration
class ConfigurationBase:
    """Base configuration of any plan (documented fields of the seed).

    Examples
    --------
    >>> ConfigurationBase(id="xp").file
    'experiment'
    """

    id: str = MISSING
    """ID of the experiment (its name in the workdir and in the store)."""
    title: str = ""
    """Short description of the experiment."""
    subtitle: str = ""
    """Some more details about the experiment."""
    paper: str = ""
    """Source paper for this experiment."""
    description: str = ""
    """Description of the experiment."""
    file: str = "experiment"
    """Relative path of the python file holding the ``run`` function (``.py`` optional)."""
    parent: str | None = None
    """Relative path of a YAML file merged under this one."""


class ExperimentCallable(Protocol):
    """The plan's ``run(helper, cfg)`` function."""

    def __call__(self, helper: ExperimentHelper, configuration: Any) -> None:
        """Submit the plan's tasks."""


class ExperimentHelper:
    """What ``run(helper, cfg)`` receives: ``helper.xp`` is the running experiment.

    Subclass it to add helpers; select the subclass with ``@MyHelper.decorator()`` on ``run``.

    Examples
    --------
    >>> @ExperimentHelper.decorator()
    ... def run(helper, cfg):
    ...     pass
    >>> run.__trialbook_helper__
    <class 'trialbook.tasks.plans.ExperimentHelper'>
    """

    def __init__(self, xp: Any) -> None:
        self.xp = xp

    @classmethod
    def decorator(cls, *args: Any, **kwargs: Any) -> Any:
        """Decorator for the ``run(helper, configuration)`` function (bare or called)."""

        def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
            func.__trialbook_helper__ = cls  # type: ignore[attr-defined]
            return func

        if len(args) == 1 and callable(args[0]) and not kwargs:
            return wrap(args[0])
        return wrap


def load(yaml_file: str | pathlib.Path) -> dict[str, Any]:
    """Load a YAML plan file with its ``parent`` files merged under it (the child wins).

    Raises
    ------
    ConfigError
        For a missing file, a YAML document that is not a mapping, or a cycle of parents.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> base = "id: xp\\nepochs: 10\\nmodel: {layers: 2, width: 8}\\n"
    >>> _ = (folder / "base.yaml").write_text(base)
    >>> _ = (folder / "full.yaml").write_text("parent: base.yaml\\nmodel: {layers: 4}\\n")
    >>> data = load(folder / "full.yaml")
    >>> data["epochs"], data["model"]
    (10, {'layers': 4, 'width': 8})
    """
    return _load(pathlib.Path(yaml_file).absolute(), ())


def _load(path: pathlib.Path, seen: tuple[pathlib.Path, ...]) -> dict[str, Any]:
    import yaml

    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        msg = f"the YAML parents form a cycle: {chain}"
        raise ConfigError(msg)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        msg = f"no YAML file {path}" + (f" (parent of {seen[-1]})" if seen else "")
        raise ConfigError(msg) from None
    except yaml.YAMLError as exc:
        msg = f"{path} is not valid YAML: {exc}"
        raise ConfigError(msg) from None
    if not isinstance(data, dict):
        msg = f"{path} must hold a mapping of configuration keys (got a {type(data).__name__})"
        raise ConfigError(msg)
    parent = data.get("parent")
    if parent:
        base = _load((path.parent / parent).absolute(), (*seen, path))
        data = _merge(base, data)
    data.setdefault("__dir__", str(path.parent))
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    if "__dir__" in over:
        out["__dir__"] = over["__dir__"]
    return out


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides (dotted keys reach nested mappings; values are YAML).

    Examples
    --------
    >>> apply_overrides({"a": {"b": 1}}, ["a.b=2", "c=[1, 2]"])
    {'a': {'b': 2}, 'c': [1, 2]}
    """
    import yaml

    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            msg = f"an override must look like key=value (got {item!r})"
            raise ConfigError(msg)
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                msg = f"cannot override {key!r}: {part!r} is not a mapping"
                raise ConfigError(msg)
        node[last] = yaml.safe_load(text)
    return data


def build(cls: type[_T], data: dict[str, Any], where: str = "") -> _T:
    """Build the configuration dataclass ``cls`` from a mapping (types checked).

    Nested dataclasses are built from nested mappings; a ``float`` field accepts the text
    ``"1e-4"`` (YAML reads it as a string); ``MISSING`` values must be given.

    Examples
    --------
    >>> @configuration
    ... class Cfg(ConfigurationBase):
    ...     epochs: int = 10
    >>> build(Cfg, {"id": "xp", "epochs": 3}).epochs
    3
    >>> build(Cfg, {"epochs": 3})
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: Cfg needs a value for 'id': set it in the YAML or with -c
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {}
    for key, value in data.items():
        if key == "__dir__":
            continue
        if key not in fields:
            msg = f"unknown key {where}{key!r} for {cls.__name__}{did_you_mean(key, fields)}"
            raise ConfigError(msg + f"; its keys: {', '.join(fields)}")
        values[key] = _coerce(value, hints[key], f"{where}{key}", cls.__name__)
    for name in fields:
        if values.get(name, getattr(cls, name, None)) == MISSING:
            msg = f"{cls.__name__} needs a value for {where}{name!r}: set it in the YAML or with -c"
            raise ConfigError(msg)
    try:
        return cls(**values)
    except TypeError as exc:
        msg = f"cannot build {cls.__name__}: {exc}"
        raise ConfigError(msg) from None


def _coerce(value: Any, tp: Any, name: str, owner: str) -> Any:
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return build(tp, value, f"{name}.")
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is float and isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    elif origin is list and isinstance(value, list) and args:
        value = [_coerce(v, args[0], f"{name}[{i}]", owner) for i, v in enumerate(value)]
    elif origin is dict and isinstance(value, dict) and len(args) == 2:
        value = {k: _coerce(v, args[1], f"{name}.{k}", owner) for k, v in value.items()}
    elif type(None) in args and value is not None and len(args) == 2:
        return _coerce(value, next(a for a in args if a is not type(None)), name, owner)
    return check_value(value, tp, name, owner)


def load_plan(
    yaml_file: str | pathlib.Path,
    overrides: list[str] = (),  # type: ignore[assignment]
) -> tuple[Any, ExperimentCallable, Any]:
    """Load a plan: ``(configuration, run function, plan module)``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "plan.py").write_text(
    ...     "from trialbook import ConfigurationBase, configuration\\n"
    ...     "@configuration\\n"
    ...     "class Configuration(ConfigurationBase):\\n"
    ...     "    epochs: int = 1\\n"
    ...     "def run(helper, cfg: Configuration):\\n"
    ...     "    pass\\n"
    ... )
    >>> _ = (folder / "full.yaml").write_text("id: xp\\nfile: plan\\n")
    >>> cfg, run, module = load_plan(folder / "full.yaml", ["epochs=5"])
    >>> cfg.id, cfg.epochs, run.__name__
    ('xp', 5, 'run')
    """
    data = apply_overrides(load(yaml_file), list(overrides))
    folder = pathlib.Path(data["__dir__"])
    name = data.get("file") or "experiment"
    path = folder / (name if name.endswith(".py") else f"{name}.py")
    module = _import_file(path)
    run = getattr(module, "run", None)
    if not callable(run):
        msg = f"{path} must define a function run(helper, cfg)"
        raise ConfigError(msg)
    cls = _configuration_class(run, module, path)
    return build(cls, data), run, module


def _import_file(path: pathlib.Path) -> Any:
    import cloudpickle

    if not path.exists():
        msg = f"no plan file {path} (set `file:` in the YAML to the python file with run())"
        raise ConfigError(msg)
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as exc:
        del sys.modules[path.stem]
        raise ConfigError(_import_failure(path, exc)) from None
    # Workers need not import the plan file: its classes travel by value.
    cloudpickle.register_pickle_by_value(module)
    return module


def _import_failure(path: pathlib.Path, exc: Exception) -> str:
    """One line saying where and why the plan file could not be imported.

    Examples
    --------
    >>> try:
    ...     compile("def f(:\\n", "/x/plan.py", "exec")
    ... except SyntaxError as exc:
    ...     print(_import_failure(pathlib.Path("/x/plan.py"), exc))
    cannot import the plan file /x/plan.py: line 1: SyntaxError: invalid syntax
    """
    import traceback

    from trialbook.tasks.jobs import user_frame

    if isinstance(exc, SyntaxError):
        filename, line = exc.filename or str(path), exc.lineno
        why = f"{type(exc).__name__}: {exc.msg}"
    else:
        text = "".join(traceback.format_exception(exc))
        filename, line = user_frame(text) or (str(path), None)
        why = f"{type(exc).__name__}: {exc}"
    where = "" if line is None else f"line {line}: "
    if os.path.abspath(filename) != os.path.abspath(path):
        where = f"{filename}, {where}"
    return f"cannot import the plan file {path}: {where}{why}"


def _configuration_class(run: Callable[..., Any], module: Any, path: pathlib.Path) -> type:
    hints = typing.get_type_hints(run)
    params = list(hints.items())
    candidates = [
        t
        for n, t in params
        if n != "return" and isinstance(t, type) and dataclasses.is_dataclass(t)
    ]
    if candidates:
        return candidates[-1]
    cls = getattr(module, "Configuration", None)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        msg = (
            f"cannot tell the configuration class of {path}: annotate run(helper, cfg: "
            "Configuration) or define a @configuration class named Configuration"
        )
        raise ConfigError(msg)
    return cls


def show(cfg: Any) -> str:
    """The configuration as YAML text (what ``--show`` prints).

    Examples
    --------
    >>> print(show(ConfigurationBase(id="xp")), end="")
    id: xp
    title: ''
    subtitle: ''
    paper: ''
    description: ''
    file: experiment
    parent: null
    """
    import yaml

    return yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False)


def run_plan(
    yaml_file: str | pathlib.Path,
    *,
    workdir: str | pathlib.Path,
    run_mode: Any = None,
    overrides: list[str] = (),  # type: ignore[assignment]
    launcher: Any = None,
    store: Any = None,
    progress: bool | str | None = None,
) -> Any:
    """Load a plan and run it in ``with experiment(workdir, cfg.id)``; return the experiment.

    ``progress`` is passed to :class:`~trialbook.tasks.workspace.experiment`.

    Raises
    ------
    JobFailedError
        If any job failed (the command line then exits with status 1).
    """
    from trialbook.tasks.workspace import experiment

    cfg, run, module = load_plan(yaml_file, overrides)
    helper_cls = getattr(run, "__trialbook_helper__", ExperimentHelper)
    options = {"run_mode": run_mode, "launcher": launcher, "store": store, "progress": progress}
    with experiment(workdir, cfg.id, **options) as xp:
        xp.scheduler.sys_path.append(str(pathlib.Path(module.__file__).parent))
        run(helper_cls(xp), cfg)
    return xp
