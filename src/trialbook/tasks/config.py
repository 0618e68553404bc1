"""Typed configurations and tasks: ``Config``, ``Task``, ``Param``, ``Meta``, ``Constant``, tags.

A configuration class declares its parameters with annotations::

    class Model(Config):
        layers: Param[int] = 3
        "Number of layers"          # the string after a parameter is its help text

Values are checked when they are set (``Model.C(layers="3")`` raises), a configuration is
*sealed* once submitted (changing it raises) and its **identifier** is a content hash.

Identifier encoding (pinned by known-answer tests; changing it is a breaking change)
------------------------------------------------------------------------------------
``identifier(cfg) = sha256(canonical_bytes(["trialbook.task/1", type_id, params]))`` where
:func:`trialbook.identity.canonical_bytes` is the type-tagged encoding of
:mod:`trialbook.identity`, ``type_id`` is ``cls.__trialbook_id__`` (or experimaestro's
``__xpmid__``) or ``"<module>.<qualname>"``, and ``params`` is a ``dict`` (so its order is
irrelevant) of every set parameter **except**: ``Meta`` parameters, parameters declared with
``field(ignored=True)``, parameters whose annotation is ``Path`` (or ``Optional[Path]``),
parameters declared with ``field(ignore_default=v)`` whose value equals ``v`` (in a class
declared with ``ignore_defaults=True``, a bare default ``= v`` acts as
``field(ignore_default=v)``), and parameters whose value is a configuration marked
``setmeta(c, True)`` (such configurations are also dropped from list and dict values;
``setmeta(c, False)`` makes a configuration count even as a ``Meta`` value). Ints given to a
``float`` parameter are converted to ``float`` first. A nested configuration is encoded as
the ``o`` chunk of its own identifier (hex text), so identifiers are recursive. Tags never
count.

Examples
--------
>>> from trialbook.tasks.config import Config, Param
>>> class Model(Config):
...     layers: Param[int] = 3
...     "Number of layers"
>>> m = Model.C(layers=4)
>>> m.layers
4
>>> Model.C(layers="4")
Traceback (most recent call last):
...
trialbook.errors.ConfigError: parameter 'layers' of Model must be <class 'int'> (got '4' ...)...
>>> Model.C(layers=4).__identifier__() == m.__identifier__()
True
"""

from __future__ import annotations

import collections
import hashlib
import inspect
import pathlib
import sys
import typing
import urllib.parse
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeVar, dataclass_transform

from trialbook.errors import ConfigError, SealedError, did_you_mean
from trialbook.identity import canonical_bytes
from trialbook.tasks.meta import meta_flag, without_meta
from trialbook.tasks.params import (
    _NOTSET,
    Constant,
    Meta,
    Option,
    Param,
    ParamSpec,
    _Field,
    _is_path_type,
    _Kind,
    check_value,
    field,
)

__all__ = [
    "Config",
    "Constant",
    "Meta",
    "Option",
    "Param",
    "Task",
    "field",
    "identifier",
    "tag",
    "tagspath",
]

_C = TypeVar("_C", bound="Config")
IDENTIFIER_FORMAT = "trialbook.task/1"


@dataclass(slots=True)
class Tagged:
    """A value marked with :func:`tag`; a configuration records it as a tag when it is set."""

    value: Any


def tag(value: Any) -> Any:
    """Mark a value as a tag: ``Model.C(epochs=tag(100))`` tags the configuration ``epochs=100``.

    Examples
    --------
    >>> class M(Config):
    ...     epochs: Param[int] = 10
    >>> M.C(epochs=tag(100)).tags()
    {'epochs': 100}
    """
    if isinstance(value, Tagged):
        return value
    if type(value) not in (str, int, float, bool):
        msg = (
            f"a tag value must be a str, int, float or bool (got {value!r} that is a {type(value)})"
        )
        raise ConfigError(msg)
    return Tagged(value)


def tagspath(config: Config) -> str:
    """A unique relative path naming the tags of ``config``: ``key=value`` joined by ``_``.

    Keys are sorted; keys and values are URL-quoted so the result is one path component.

    Examples
    --------
    >>> class M(Config):
    ...     a: Param[int] = 1
    ...     b: Param[str] = "x"
    >>> tagspath(M.C(b=tag("y/z"), a=tag(2)))
    'a=2_b=y%2Fz'
    """
    return "_".join(
        f"{urllib.parse.quote(str(k), safe='')}={urllib.parse.quote(str(v), safe='')}"
        for k, v in sorted(config.tags().items())
    )


_NAMESPACES: weakref.WeakKeyDictionary[type, Any] = weakref.WeakKeyDictionary()
_SOURCES: weakref.WeakKeyDictionary[type, tuple[str, int, Any]] = weakref.WeakKeyDictionary()
_SPECIAL = frozenset({"_tb_sealed", "_tb_tags", "_tb_job", "_tb_id", "_tb_deps", "_tb_callbacks"})


def _resolve_specs(cls: type) -> dict[str, ParamSpec]:
    """Read the parameters of ``cls`` (and its bases) from its annotations."""
    specs: dict[str, ParamSpec] = {}
    for base in reversed(cls.__mro__[1:]):
        if isinstance(base, type) and issubclass(base, Config) and base is not Config:
            specs.update(base.__tb_specs__())
    try:
        namespace = _NAMESPACES.get(cls)
        hints = typing.get_type_hints(cls, localns=namespace, include_extras=True)
    except NameError as exc:
        msg = (
            f"cannot resolve the annotations of {cls.__qualname__}: {exc}; define the classes "
            "it refers to at module level (or avoid string annotations for local classes)"
        )
        raise ConfigError(msg) from exc
    own = cls.__dict__.get("__tb_raw_defaults__", {})
    for name in inspect.get_annotations(cls):
        hint: Any = hints.get(name)
        if typing.get_origin(hint) is not Annotated:
            continue
        meta = [m for m in hint.__metadata__ if isinstance(m, _Kind)]
        if not meta:
            continue
        tp = hint.__origin__
        spec = ParamSpec(name, meta[0], tp, is_path=_is_path_type(tp))
        raw = own.get(name, _NOTSET)
        if isinstance(raw, _Field):
            spec.default, spec.default_factory = raw.default, raw.default_factory
            spec.ignore_default, spec.ignored, spec.help = raw.ignore_default, raw.ignored, raw.help
        elif raw is not _NOTSET and spec.kind is _Kind.PARAM and _ignores_defaults(cls):
            spec.ignore_default = raw  # experimaestro's rule, asked for by the class
        else:
            spec.default = raw
        if spec.kind is _Kind.CONSTANT and spec.default is _NOTSET:
            msg = (
                f"constant {name!r} of {cls.__qualname__} needs a value: {name}: Constant[...] = v"
            )
            raise ConfigError(msg)
        specs[name] = spec
    return specs


def _defining_frame(cls: type, frame: Any) -> Any:
    """The frame whose class statement created ``cls``, from the caller of ``__init_subclass__``:
    the first frame of the class's module that does not hold the class (frames that do are
    ``__init_subclass__`` methods of subclasses; wrappers of this method, such as a mutation
    tester's, run in other modules). The class statement binds its name only afterwards."""
    candidate = frame
    while candidate is not None:
        if candidate.f_globals.get("__name__") == cls.__module__ and not any(
            value is cls for value in candidate.f_locals.values()
        ):
            return candidate
        candidate = candidate.f_back
    return frame


def _ignores_defaults(cls: type) -> bool:
    """Whether the class was declared ``class X(Config, ignore_defaults=True)`` (or inherits it)."""
    return bool(getattr(cls, "__tb_ignore_defaults__", False))


class _Builder:
    """``Cls.C`` is the class itself, so ``Model1.C(layers=3)`` builds a configuration and type
    checkers check its keywords against the synthesized ``__init__`` (``dataclass_transform``)."""

    def __get__(self, instance: object, owner: type[_C]) -> type[_C]:
        return owner


@dataclass_transform(kw_only_default=True, field_specifiers=(field,))
class Config:
    """Base class of typed configurations.

    Declare parameters with ``Param[...]`` (counts in the identifier), ``Meta[...]`` (does
    not) and ``Constant[...]`` (fixed by the class). Build with ``Cls.C(name=value)`` or
    ``Cls(name=value)``, then assign members; each value is checked when it is set.

    Define ``__validate__(self)`` to check a configuration as a whole; it is called before
    the task is submitted (raise to refuse).

    Examples
    --------
    >>> class Model1(Config):
    ...     layers: Param[int] = 3
    >>> model = Model1.C(layers=3)
    >>> model.layers = 5
    >>> model
    Model1(layers=5)
    >>> model.layers = 2.5
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: parameter 'layers' of Model1 must be <class 'int'> (got 2.5...)...
    >>> Model1.C is Model1
    True
    >>> Model1.C(layer=2)
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: Model1 has no parameter 'layer' ... (did you mean 'layers'?)
    """

    C: ClassVar[_Builder] = _Builder()
    """The class itself: ``Model1.C(layers=3)`` is ``Model1(layers=3)`` (the seed's spelling)."""
    __tb_spec_cache__: ClassVar[dict[str, ParamSpec] | None] = None
    __tb_raw_defaults__: ClassVar[dict[str, Any]] = {}
    __tb_ignore_defaults__: ClassVar[bool] = False

    def __init_subclass__(cls, *, ignore_defaults: bool | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if ignore_defaults is not None:
            cls.__tb_ignore_defaults__ = bool(ignore_defaults)
        raw = {}
        for name in inspect.get_annotations(cls):
            if name in cls.__dict__ and not name.startswith("__"):
                raw[name] = cls.__dict__[name]
        cls.__tb_raw_defaults__ = raw
        cls.__tb_spec_cache__ = None
        # String annotations (``from __future__ import annotations``) of classes defined in a
        # function or a doctest refer to names of the defining frame: keep them to resolve.
        frame = _defining_frame(cls, sys._getframe(1))
        _SOURCES[cls] = (frame.f_code.co_filename, frame.f_lineno, frame.f_globals)
        _NAMESPACES[cls] = collections.ChainMap(
            frame.f_locals,
            frame.f_globals,
            {"Param": Param, "Meta": Meta, "Constant": Constant, "Option": Option},
        )
        for name, value in raw.items():
            if isinstance(value, _Field) or not callable(value):
                delattr(cls, name)

    @classmethod
    def __tb_specs__(cls) -> dict[str, ParamSpec]:
        specs = cls.__dict__.get("__tb_spec_cache__")
        if specs is None:
            specs = _resolve_specs(cls)
            cls.__tb_spec_cache__ = specs
        return specs

    @classmethod
    def __trialbook_type_id__(cls) -> str:
        own = cls.__dict__.get("__trialbook_id__") or _xpmid(cls)
        return own or f"{cls.__module__}.{cls.__qualname__}"

    def __init__(self, **kwargs: Any) -> None:
        d = self.__dict__
        d["_tb_sealed"] = False
        d["_tb_tags"] = {}
        d["_tb_id"] = None
        specs = type(self).__tb_specs__()
        for name, spec in specs.items():
            value = spec.initial()
            if value is not _NOTSET:
                d[name] = value
        for name, value in kwargs.items():
            setattr(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        cls = type(self)
        spec = cls.__tb_specs__().get(name)
        if spec is None and _is_data_descriptor(cls, name):  # a property, a deprecated parameter
            object.__setattr__(self, name, value)
            return
        if spec is None and self.__dict__["_tb_sealed"]:
            # Not a parameter: a plain attribute of a submitted configuration, e.g. what
            # ``execute()`` builds (``self.model = build()``). It never counts and is not saved.
            self.__dict__[name] = value
            return
        if spec is None:
            names = list(cls.__tb_specs__())
            listing = ", ".join(repr(n) for n in names) or "none"
            msg = f"{cls.__qualname__} has no parameter {name!r} (its parameters: {listing})"
            raise ConfigError(msg + did_you_mean(name, names))
        if self.__dict__["_tb_sealed"]:
            msg = (
                f"{cls.__qualname__} is sealed (it was submitted): cannot set {name!r}; "
                "build a new configuration instead"
            )
            raise SealedError(msg)
        if spec.kind is _Kind.CONSTANT:
            msg = (
                f"{name!r} of {cls.__qualname__} is a constant ({spec.default!r}); it cannot be set"
            )
            raise ConfigError(msg)
        value_tagged = isinstance(value, Tagged)
        if value_tagged:
            value = value.value
        checked = check_value(value, spec.type, name, cls.__qualname__)
        if value_tagged:
            self.__dict__["_tb_tags"][name] = checked
        else:  # a new plain value: the tag of the old one no longer holds
            self.__dict__["_tb_tags"].pop(name, None)
        self.__dict__[name] = checked

    def __getattr__(self, name: str) -> Any:
        attr = getattr(type(self), name, None)
        if isinstance(attr, property):  # the property raised AttributeError: keep its message
            return attr.fget(self)  # type: ignore[misc]
        if attr is not None and _is_data_descriptor(type(self), name):  # its own message
            return attr.__get__(self, type(self))
        specs = type(self).__tb_specs__()
        if name in specs:
            msg = f"parameter {name!r} of {type(self).__qualname__} is not set (it has no default)"
            raise AttributeError(msg)
        msg = f"{type(self).__qualname__!r} object has no attribute {name!r}"
        raise AttributeError(msg)

    def __repr__(self) -> str:
        specs = type(self).__tb_specs__()
        parts = [f"{n}={self.__dict__[n]!r}" for n in specs if n in self.__dict__]
        return f"{type(self).__qualname__}({', '.join(parts)})"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        job = state.get("_tb_job")
        if job is not None:
            state["_tb_jobpath"] = job.path
        for key in ("_tb_job", "_tb_deps", "_tb_callbacks"):
            state.pop(key, None)
        specs = type(self).__tb_specs__()
        for key in [k for k in state if not k.startswith("_") and k not in specs]:
            del state[key]  # plain attributes set after submission are not configuration
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # -- tags --

    def tag(self: _C, name: str, value: Any) -> _C:
        """Add the tag ``name=value`` (tags never change the identifier); return the configuration.

        Returning it lets calls chain: ``Concat.C(strings=["a"]).tag("y", 1).submit()``.

        Examples
        --------
        >>> class M(Config):
        ...     x: Param[int] = 1
        >>> m = M.C()
        >>> m.tag("model", "small") is m
        True
        >>> m.tags()
        {'model': 'small'}
        """
        tag(value)  # validates the value
        self.__dict__["_tb_tags"][name] = value
        return self

    def tags(self) -> dict[str, Any]:
        """Tags of this configuration and of the configurations inside it (own tags win).

        Examples
        --------
        >>> class Inner(Config):
        ...     n: Param[int] = 1
        >>> class Outer(Config):
        ...     inner: Param[Inner]
        ...     m: Param[int] = 2
        >>> Outer.C(inner=Inner.C(n=tag(5)), m=tag(3)).tags()
        {'n': 5, 'm': 3}
        """
        out: dict[str, Any] = {}
        for child in self.__tb_children__():
            out.update(child.tags())
        out.update(self.__dict__["_tb_tags"])
        return out

    # -- structure --

    def __tb_values__(self) -> Iterator[tuple[ParamSpec, Any]]:
        d = self.__dict__
        for name, spec in type(self).__tb_specs__().items():
            if spec.kind is _Kind.CONSTANT:
                yield spec, spec.default
            elif name in d:
                yield spec, d[name]

    def __tb_children__(self) -> Iterator[Config]:
        for _, value in self.__tb_values__():
            yield from _configs_in(value)

    def __tb_seal__(self) -> None:
        """Validate (user hook, required params) and seal this configuration and its children."""
        if self.__dict__["_tb_sealed"]:
            return
        for child in self.__tb_children__():
            child.__tb_seal__()
        d = self.__dict__
        missing = [n for n, s in type(self).__tb_specs__().items() if s.required and n not in d]
        if missing:
            names = ", ".join(repr(n) for n in missing)
            msg = f"{type(self).__qualname__} is missing required parameter(s) {names}; set them"
            raise ConfigError(msg)
        validate = getattr(self, "__validate__", None)
        if validate is not None:
            validate()
        d["_tb_sealed"] = True

    def __identifier__(self) -> str:
        """The configuration's identifier (hex SHA-256, see the module documentation)."""
        cached = self.__dict__["_tb_id"]
        if cached is not None:
            return cached
        params = {}
        for spec, value in self.__tb_values__():
            flag = meta_flag(value)  # setmeta(config, True / False) overrides the declaration
            if flag is True or (not spec.counts and flag is not False):
                continue
            counted = without_meta(value)
            if spec.ignore_default is not _NOTSET and counted == spec.ignore_default:
                continue
            params[spec.name] = counted
        key: list[Any] = [IDENTIFIER_FORMAT, type(self).__trialbook_type_id__(), params]
        key.extend(_job_links(self.__dict__))  # nothing for most configurations: ids unchanged
        digest = hashlib.sha256(canonical_bytes(key)).hexdigest()
        if self.__dict__["_tb_sealed"]:
            self.__dict__["_tb_id"] = digest
        return digest

    def __trialbook_fingerprint__(self) -> str:
        return self.__identifier__()


def identifier(config: Config) -> str:
    """The identifier of a configuration (hex SHA-256; see the module documentation).

    Examples
    --------
    >>> class M(Config):
    ...     __trialbook_id__ = "doc.M"
    ...     x: Param[int] = 1
    >>> identifier(M.C())
    '...'
    >>> identifier(M.C(x=1)) == identifier(M.C())
    True
    """
    return config.__identifier__()


def _job_links(d: dict[str, Any]) -> list[Any]:
    """What ties a configuration to jobs, for its identifier: the task it is an output of
    (``dep(...)`` in ``task_outputs``) and the init tasks it was submitted with
    (:mod:`trialbook.tasks.submission`). Empty unless one was set, so other identifiers stay."""
    links: list[Any] = []
    source = d.get("_tb_output_of")
    if source is not None:
        links.append(["output-of", source.__identifier__()])
    init = d.get("_tb_init_tasks")
    if init:
        links.append(["init-tasks", [t.__identifier__() for t in init]])
    return links


def _configs_in(value: Any) -> Iterator[Config]:
    if isinstance(value, Config):
        yield value
    elif type(value) in (list, tuple, set, frozenset):
        for item in value:
            yield from _configs_in(item)
    elif type(value) is dict:
        for item in value.values():
            yield from _configs_in(item)


def _is_data_descriptor(cls: type, name: str) -> bool:
    return hasattr(type(inspect.getattr_static(cls, name, None)), "__set__")


def _xpmid(cls: type) -> str | None:
    """experimaestro's spelling of the type id: ``__xpmid__ = "my.model"`` (or a classmethod)."""
    if "__xpmid__" not in cls.__dict__:
        return None
    value = cls.__xpmid__  # type: ignore[attr-defined]
    return str(value() if callable(value) else value)


def unsubmitted_tasks(config: Config, prefix: str = "") -> Iterator[tuple[str, Task]]:
    """``(parameter path, task)`` for each task among the parameters that was never submitted.

    A submitted task is not searched further: its own parameters were checked when it was.
    """
    for spec, value in config.__tb_values__():
        for child in _configs_in(value):
            path = f"{prefix}{spec.name}"
            if isinstance(child, Task):
                if not _is_submitted(child):
                    yield path, child
            else:
                yield from unsubmitted_tasks(child, f"{path}.")


def _is_submitted(task: Task) -> bool:
    d = task.__dict__
    return (
        d.get("_tb_job") is not None
        or d.get("_tb_jobpath") is not None
        or bool(d.get("_tb_dry_run"))  # submitted with run_mode="dry-run" outside an experiment
    )


class Task(Config):
    """A configuration that runs: define ``execute(self)``, then ``task.submit()``.

    ``submit()`` seals the task (and every configuration inside it), computes its identifier
    and schedules it in the current :func:`~trialbook.experiment`; it returns the task itself,
    whose ``jobpath`` is the job directory (or what its :meth:`task_outputs` returns).
    Passing a submitted task as a parameter of another task makes the latter wait for it.

    Examples
    --------
    >>> class Hello(Task):
    ...     name: Param[str] = "world"
    ...     def execute(self):
    ...         print("hello", self.name)
    >>> Hello.C().submit()
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: Hello.submit() needs an active experiment: use `with ...` ...
    """

    #: Set ``resumable = True`` on a task whose ``execute`` can pick up where an interrupted
    #: attempt stopped (e.g. from a checkpoint in its job directory): a launcher that sees the
    #: job hit its time limit (Slurm's ``TIMEOUT``) then submits it again instead of failing it.
    resumable = False

    def execute(self) -> Any:
        """Run the task; override in subclasses.

        It runs in a worker process, with the job directory as working directory and its
        standard output and error captured to ``stdout.log`` / ``stderr.log`` there; an
        exception fails the job (its traceback goes to ``stderr.log`` and to the store).

        Examples
        --------
        >>> Task().execute()
        Traceback (most recent call last):
        ...
        NotImplementedError: Task must define execute(self)
        """
        msg = f"{type(self).__qualname__} must define execute(self)"
        raise NotImplementedError(msg)

    def submit(
        self,
        *,
        launcher: Any = None,
        run_mode: Any = None,
        init_tasks: Sequence[Config] = (),
    ) -> Any:
        """Seal the task and schedule it in the current experiment; return its outputs.

        What ``submit()`` returns is what :meth:`task_outputs` returns: by default the task
        itself.

        Parameters
        ----------
        launcher
            Run this job with another launcher than the experiment's.
        run_mode
            :class:`~trialbook.tasks.modes.RunMode` (or its value) for this job only; by
            default the experiment's. Outside an experiment block, ``"dry-run"`` seals the
            task and computes its identifier without scheduling anything.
        init_tasks
            :class:`~trialbook.tasks.submission.LightweightTask` configurations whose
            ``execute()`` runs in the job's process, in order, before the task's own; they
            count in the job's identifier and make it wait for the tasks they come from.

        Raises
        ------
        ConfigError
            Outside an experiment block, for missing parameters, or when ``__validate__`` fails.

        Examples
        --------
        >>> import tempfile
        >>> from trialbook.tasks import experiment
        >>> class Echo(Task):
        ...     text: Param[str] = "hi"
        ...     def execute(self):
        ...         print(self.text)
        >>> with experiment(tempfile.mkdtemp(), "doc") as xp:
        ...     task = Echo.C().submit()
        >>> print((task.jobpath / "stdout.log").read_text(), end="")
        hi
        """
        from trialbook.tasks.submission import submit_task

        return submit_task(self, launcher=launcher, run_mode=run_mode, init_tasks=init_tasks)

    def task_outputs(self, dep: Callable[[Any], Any]) -> Any:
        """What :meth:`submit` returns; override to hand dependents other configurations.

        Wrap each returned configuration in ``dep(...)``: it is then an output of this job,
        so a task that takes it as a parameter waits for this job, and its identifier
        includes this job's. The default returns the task itself.

        Examples
        --------
        >>> import tempfile
        >>> from trialbook.tasks import experiment
        >>> class Weights(Config):
        ...     name: Param[str] = "w"
        >>> class Train(Task):
        ...     def task_outputs(self, dep):
        ...         return dep(Weights.C())
        ...     def execute(self):
        ...         pass
        >>> with experiment(tempfile.mkdtemp(), "doc") as xp:
        ...     weights = Train.C().submit()
        >>> weights
        Weights(name='w')
        """
        return self

    @property
    def jobpath(self) -> pathlib.Path:
        """The job directory ``<workdir>/jobs/<task id>/<identifier>`` (after ``submit()``).

        Examples
        --------
        >>> class Job(Task):
        ...     pass
        >>> Job.C().jobpath
        Traceback (most recent call last):
        ...
        AttributeError: Job has no job directory yet: submit() it first
        """
        job = self.__dict__.get("_tb_job")
        path = job.path if job is not None else self.__dict__.get("_tb_jobpath")
        if path is None:
            msg = f"{type(self).__qualname__} has no job directory yet: submit() it first"
            raise AttributeError(msg)
        return path

    @property
    def __xpm_stdout__(self) -> pathlib.Path:
        """The job's captured standard output, ``jobpath / "stdout.log"`` (experimaestro's
        name; a dependent task reads what its dependency printed from there).

        Examples
        --------
        >>> import tempfile
        >>> from trialbook.tasks import experiment
        >>> class Shout(Task):
        ...     def execute(self):
        ...         print("HI")
        >>> with experiment(tempfile.mkdtemp(), "doc") as xp:
        ...     shout = Shout.C().submit()
        >>> shout.__xpm_stdout__.read_text(), shout.__xpm_stderr__.name
        ('HI\\n', 'stderr.log')
        """
        return self.jobpath / "stdout.log"

    @property
    def __xpm_stderr__(self) -> pathlib.Path:
        """The job's captured standard error, ``jobpath / "stderr.log"`` (see
        :attr:`__xpm_stdout__`)."""
        return self.jobpath / "stderr.log"

    def on_completed(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` once when the job has completed successfully.

        Registered after completion, the callback is called at once. Callbacks run in the
        experiment's scheduling thread; an exception in one is logged, not raised.

        Examples
        --------
        >>> import tempfile
        >>> from trialbook.tasks import experiment
        >>> class Nothing(Task):
        ...     def execute(self):
        ...         pass
        >>> done = []
        >>> with experiment(tempfile.mkdtemp(), "doc") as xp:
        ...     task = Nothing.C()
        ...     task.on_completed(lambda: done.append("completed"))
        ...     _ = task.submit()
        >>> done
        ['completed']
        """
        job = self.__dict__.get("_tb_job")
        if job is not None:
            job.add_callback(callback)
        else:
            self.__dict__.setdefault("_tb_callbacks", []).append(callback)

    def add_dependencies(self, *dependencies: Any) -> None:
        """Make the job wait for other submitted tasks or for tokens (``token.dependency(n)``).

        Examples
        --------
        >>> class Step(Task):
        ...     pass
        >>> Step.C().add_dependencies(3)
        Traceback (most recent call last):
        ...
        trialbook.errors.ConfigError: a dependency of Step must be a submitted Task or ...
        """
        from trialbook.tasks.tokens import TokenDependency

        owner = type(self).__qualname__
        if self.__dict__["_tb_sealed"]:
            msg = f"{owner} is sealed (submitted): add dependencies before submit()"
            raise SealedError(msg)
        for dep in dependencies:
            if not isinstance(dep, (Task, TokenDependency)):
                msg = (
                    f"a dependency of {owner} must be a submitted Task or a token dependency "
                    f"(token.dependency(n)); got {dep!r} that is a {type(dep)}"
                )
                raise ConfigError(msg)
        self.__dict__.setdefault("_tb_deps", []).extend(dependencies)
