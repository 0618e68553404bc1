"""Parameters and a lazy step graph: ``parameter()``, ``@ex`` steps, ``compute()`` = one trial.

The graph is a real Dask graph. :meth:`Experiment.parameter` returns a :class:`Parameter`
(a ``dask.delayed`` leaf); calling a decorated step returns a :class:`Node` (a
``dask.delayed.Delayed``), so ``.visualize()``, ``dask.compute`` and Dask schedulers work.
Nothing runs when a step is decorated or called: only ``compute`` runs.

Computing a node built by an ``@ex.result`` step runs one **trial**:

1. every parameter the graph uses must be set (else :class:`~trialbook.errors.ConfigError`,
   before any trial id is taken);
2. the store allocates the next trial id atomically (concurrent processes never collide);
3. ``random`` and NumPy are seeded (given seed, experiment seed, or a generated one);
4. the graph runs (``dask.get``, the synchronous scheduler, unless ``scheduler=`` says
   otherwise); each step records the hashes of its inputs and output (purity), persisted
   outputs and metrics;
5. the trial (params, result or error, seed, timings, code and environment snapshot digests,
   metrics, persisted values, step hashes) is written in **one** store transaction.

A trial that fails is recorded with its error, and the step's exception is re-raised with its
own type and traceback. :class:`Experiment` holds the user's API (parameters, decorators,
scripts); steps 2 to 5 are the work of its :class:`~trialbook.graph.recorder.TrialRecorder`.
History, metrics and persisted values are read back with the methods of :class:`Experiment`
(see :mod:`trialbook.graph.history`).

Tracking (metrics, persisted values, purity) follows the trial into the threads of Dask's
local schedulers; for steps that run in other processes (``scheduler="processes"``, a
``distributed.Client``) the graph is rewritten so that what they record travels back with
their outputs (see :mod:`trialbook.graph.remote`).

Examples
--------
>>> import trialbook
>>> ex = trialbook.Experiment("doc_graph", backend="sqlite:///:memory:")
>>> a = ex.parameter("a")
>>> @ex.result
... def double(x):
...     return 2 * x
>>> node = double(a)
>>> ex.set_parameters(a=21)
>>> node.compute(seed=0)
42
>>> ex.trial_id
1
>>> ex.close()
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dask.delayed import Delayed

from trialbook import capture
from trialbook.codecs import decode, encode, is_plain
from trialbook.errors import CodecError, ConfigError, LockedTrialError, did_you_mean
from trialbook.graph import files, remote
from trialbook.graph.history import HistoryReader, TrialDiff
from trialbook.graph.nodes import UNDEFINED, Node, Parameter, Step
from trialbook.graph.recorder import TrialRecorder, choose_seed
from trialbook.graph.script import ScriptTrial, current_request, parse_arguments
from trialbook.names import check_parameter_name
from trialbook.notes import note_text
from trialbook.storage import open_store
from trialbook.tracking import current_run

if TYPE_CHECKING:
    from trialbook.storage.base import Store

__all__ = ["Experiment", "Node", "Parameter", "Step", "TrialDiff"]

logger = logging.getLogger(__name__)


# -- the experiment ------------------------------------------------------------------------------


class Experiment(HistoryReader):
    """Parameters, decorated steps and their trials, kept in a store.

    Parameters
    ----------
    id
        The experiment's name in the store. Creating it again (in this process or another)
        recovers its trials and declared parameters, with their defaults (a parameter without
        a default has its value in the last trial: see :meth:`parameter`).
    backend
        Where it is stored: ``None`` (``$TRIALBOOK_STORE`` or the directory ``.trialbook``), a
        directory path, a URL or a client object :func:`trialbook.storage.open_store` accepts,
        or an open store.
    seed
        Seed of every trial that is not given one in ``compute(seed=...)``.

    An experiment that opened its store from a location owns it: :meth:`close` (or the end of
    a ``with`` block) closes it. An open store given as ``backend`` stays open for its owner.

    Examples
    --------
    >>> import trialbook
    >>> with trialbook.Experiment("quickstart_pj", backend="sqlite:///:memory:") as ex:
    ...     ex
    Experiment(id: quickstart_pj, trial_id: 0, backend: LocalBackend('sqlite:///:memory:'))
    """

    def __init__(self, id: str, backend: Any = None, seed: int | None = None) -> None:
        if not isinstance(id, str) or not id.strip():
            msg = f"an experiment id must be a non-empty str (got {id!r})"
            raise ConfigError(msg)
        if seed is not None and type(seed) is not int:
            msg = f"seed must be an int or None (got {seed!r} that is a {type(seed)})"
            raise ConfigError(msg)
        store = open_store(backend)  # a store is returned as is
        self.id = id
        self.seed = seed
        self.store: Store = store
        self.owns_store = store is not backend
        """Whether :meth:`close` closes the store (opened here from a location)."""
        self._parameters: dict[str, Parameter] = {}
        self._values: dict[str, Any] = {}
        """The value each parameter has now (see :meth:`parameter` for where it comes from)."""
        self._given: set[str] = set()  # set with set_parameters in this process
        self._declared: dict[str, Any] = {}  # declared here: name -> default (or UNDEFINED)
        self._stored_defaults: dict[str, Any] = {}  # defaults the store knows, by name
        self._recorded: dict[str, tuple[Any, int]] = {}  # last recorded value, its trial id
        self._from_record: set[str] = set()  # values taken from a trial, not yet logged
        self._steps: dict[str, Step] = {}
        self._known_sources: dict[str, str] = {}
        try:
            super().__init__(store, self._open())
        except BaseException:
            self.close()
            raise
        self._recorder = TrialRecorder(store, self.experiment_id, id)
        request = current_request()
        if request is not None:  # created by a script under `trialbook run`: closed at its end
            request.experiments.append(self)

    def __repr__(self) -> str:
        backend = f"{self.store.backend_label}({self.store.url!r})"
        return f"Experiment(id: {self.id}, trial_id: {self._trial_id}, backend: {backend})"

    @property
    def trial_id(self) -> int:
        """The id of the experiment's last trial (0 before the first one).

        Once a trial finishes in this process, it is that trial's id; other processes may have
        recorded later trials meanwhile. It cannot be read while a trial of this experiment
        runs: inside a step, :attr:`current_trial_id` is the id of the trial being computed.

        Raises
        ------
        LockedTrialError
            While a trial of this experiment runs.

        Examples
        --------
        >>> import trialbook
        >>> from trialbook.errors import LockedTrialError
        >>> ex = trialbook.Experiment("doc_trial_id", backend="sqlite:///:memory:")
        >>> @ex.result
        ... def step():
        ...     try:
        ...         ex.trial_id
        ...     except LockedTrialError:
        ...         return "locked"
        >>> ex.trial_id, step().compute(seed=0), ex.trial_id
        (0, 'locked', 1)
        >>> ex.close()
        """
        trial = self._recorder.active
        if trial is not None:
            raise LockedTrialError(self.id, running=trial.run.id)
        return self._trial_id

    @property
    def current_trial_id(self) -> int:
        """The id of the trial being computed, read inside its steps.

        Raises
        ------
        ConfigError
            Outside a running trial (the id is allocated when the trial starts); after a
            trial, :attr:`trial_id` is its id.

        Examples
        --------
        >>> import trialbook
        >>> ex = trialbook.Experiment("doc_current", backend="sqlite:///:memory:")
        >>> @ex.result
        ... def which():
        ...     return ex.current_trial_id
        >>> which().compute(seed=0), which().compute(seed=0)
        (1, 2)
        >>> ex.current_trial_id
        Traceback (most recent call last):
        ...
        trialbook.errors.ConfigError: current_trial_id of experiment 'doc_current' was read ...
        >>> ex.close()
        """
        trial = self._recorder.active
        if trial is not None:
            return trial.run.id
        msg = (
            f"current_trial_id of experiment {self.id!r} was read outside a trial: it exists "
            "only while a trial is computed (read it inside a step); the last trial's id is "
            "ex.trial_id"
        )
        raise ConfigError(msg)

    @property
    def description(self) -> str | None:
        """The experiment's description (markdown text; ``None``: none), read from the store
        and written to it at once when set (``None`` or a blank text removes it); the UI shows
        it on the experiment's page.

        Examples
        --------
        >>> import trialbook
        >>> with trialbook.Experiment("doc_described", backend="sqlite:///:memory:") as ex:
        ...     ex.description = "Does *a* larger batch help?"
        ...     ex.description
        'Does *a* larger batch help?'
        """
        info = self.store.find_experiment(self.id)
        value = info.meta.get("description") if info is not None else None
        return value if isinstance(value, str) else None

    @description.setter
    def description(self, value: str | None) -> None:
        text = note_text(value, f"the description of experiment {self.id!r}")
        self.store.update_meta(self.experiment_id, {"description": text})

    def close(self) -> None:
        """Close the store if this experiment opened it (``backend`` was a location, not an
        open store); closing twice is harmless. The experiment is not used afterwards.

        Examples
        --------
        >>> from trialbook.storage import open_store
        >>> with open_store("sqlite:///:memory:") as store:
        ...     Experiment("given", backend=store).close()  # leaves the given store open
        ...     [e.name for e in store.list_experiments()]
        ['given']
        """
        self._recorder.close()
        if self.owns_store:
            self.store.close()

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, ...]:
        # A step pickled for another process may use `ex.save_metric`; the store stays here.
        return (remote.WorkerExperiment, (self.id,))

    def _open(self) -> int:
        info = self.store.find_experiment(self.id)
        if info is None:
            try:
                info = self.store.create_experiment(self.id, meta={"kind": "graph"})
            except FileExistsError:  # another process created it first
                info = self.store.find_experiment(self.id)
            else:
                self._trial_id = 0
                logger.info("Initialized new experiment: %r", self)
                return info.id
        assert info is not None
        graph = info.meta.get("graph", {})
        self._known_sources = dict(graph.get("steps", {}))
        last = self._recover(info.id, graph.get("parameters", {}), graph.get("defaults"))
        logger.info("Loaded %r", self)
        # (a worker re-importing a script does not warn again: the parent process did)
        if last is not None and last.environment and not remote.importing_main_in_worker():
            files.warn_environment(self.store, last.environment)
        return info.id

    def _recover(self, exp_id: int, declared: Mapping[str, Any], defaults: Any) -> Any:
        """Re-declare the stored parameters with their stored default, else the value of the
        last trial that recorded them; return the last trial's record."""
        records = [r for r in self.store.read_runs(exp_id) if r.kind == "trial"]
        last = records[-1] if records else None
        self._trial_id = max((r.run_id for r in records), default=0)
        for record in sorted(records, key=lambda r: r.run_id):
            for name, value in record.params.items():
                self._recorded[name] = (value, record.run_id)
        with_default = _names_with_default(declared, defaults)
        for name, default in declared.items():
            self._parameters[name] = Parameter(self, name)
            if name in with_default:
                self._stored_defaults[name] = default
                self._values[name] = decode(default)
            elif name in self._recorded:
                self._use_recorded(name)
        return last

    def _use_recorded(self, name: str) -> None:
        """The parameter takes the value of the last trial that recorded it (logged when a
        trial uses it)."""
        self._values[name] = decode(self._recorded[name][0], allow_pickle=self.store.allow_pickle)
        self._from_record.add(name)

    # -- parameters --

    def parameter(self, name: str, default: Any = UNDEFINED) -> Parameter:
        """Declare (or get) the parameter ``name``, with an optional ``default``
        (``ex.parameter("b", 2)`` or ``ex.parameter("b", default=2)``).

        The value a trial uses is the first of:

        1. a value given for the trials: :meth:`set_parameters`, :meth:`run_trial`'s
           arguments, ``trialbook run script.py name=value``;
        2. ``default``, the default written in the code (declaring the parameter again with
           another default changes it, unless a value was given);
        3. for a parameter declared without a default, its value in the last trial that
           recorded it (in this process or an earlier one); the first trial that uses it logs
           the value and that trial's id at INFO.

        So ``trialbook run train.py epochs=3`` sets ``epochs`` for that run only: the next
        ``trialbook run train.py`` uses the default in ``train.py`` again, as edited.

        Raises
        ------
        ConfigError
            If ``name`` is not a Python identifier or is a keyword (the rule of
            :func:`trialbook.names.check_parameter_name`).

        Examples
        --------
        >>> import trialbook
        >>> ex = trialbook.Experiment("doc_declare", backend="sqlite:///:memory:")
        >>> ex.parameter("lr", default=0.1)
        Parameter(lr: 0.1<class 'float'>)
        >>> ex.parameter("lr", 0.2)  # the code changed its default
        Parameter(lr: 0.2<class 'float'>)
        >>> ex.set_parameters(lr=0.5)  # a value given for the trials wins over the default
        >>> ex.parameter("lr", default=0.2)
        Parameter(lr: 0.5<class 'float'>)
        >>> ex.close()
        """
        check_parameter_name(name)
        self._declared[name] = default
        if name not in self._given:
            self._from_record.discard(name)
            if default is not UNDEFINED:
                self._values[name] = default
            elif name in self._recorded:
                self._use_recorded(name)
            else:  # a default the store knows from earlier code is no longer in the code
                self._values.pop(name, None)
        param = self._parameters.get(name)
        changed = self._note_default(name, default)
        if param is None:
            param = self._parameters[name] = Parameter(self, name)
            changed = True
        if changed:
            self._save_meta()
        return param

    def _note_default(self, name: str, default: Any) -> bool:
        """Remember the default the store keeps for ``name``; whether it changed."""
        stored = _storable_default(default)
        before = self._stored_defaults.get(name, UNDEFINED)
        if stored is UNDEFINED:
            self._stored_defaults.pop(name, None)
        else:
            self._stored_defaults[name] = stored
        return _json_text(before) != _json_text(stored)

    def set_parameters(self, **values: Any) -> None:
        """Set parameter values for the next trials (others keep their values).

        Raises
        ------
        ConfigError
            If a name was not declared with :meth:`parameter`.

        Examples
        --------
        >>> import trialbook
        >>> ex = trialbook.Experiment("doc_set", backend="sqlite:///:memory:")
        >>> _ = ex.parameter("alpha")
        >>> ex.set_parameters(alpa=1)
        Traceback (most recent call last):
        ...
        trialbook.errors.ConfigError: unknown parameter 'alpa' (did you mean 'alpha'?); ...
        >>> ex.close()
        """
        for name in values:
            if name not in self._parameters:
                declared = ", ".join(map(repr, self._parameters)) or "none"
                msg = (
                    f"unknown parameter {name!r}{did_you_mean(name, self._parameters)}; "
                    f"declared parameters: {declared}. Declare it first with "
                    f"ex.parameter({name!r})"
                )
                raise ConfigError(msg)
        self._values.update(values)
        self._given.update(values)
        self._from_record.difference_update(values)

    def get_parameters(self, trial_id: int | None = None) -> dict[str, Any]:
        """Parameter values of a trial, or the current ones (``trial_id=None``).

        Raises
        ------
        RunNotFoundError
            For an unknown trial id.

        Examples
        --------
        >>> import trialbook
        >>> ex = trialbook.Experiment("doc_get", backend="sqlite:///:memory:")
        >>> a, b = ex.parameter("a"), ex.parameter("b")
        >>> ex.set_parameters(a=1, b=2)
        >>> ex.get_parameters()
        {'a': 1, 'b': 2}
        >>> ex.close()
        """
        if trial_id is None:
            return {n: self._values[n] for n in self._parameters if n in self._values}
        record = self._trial_record(trial_id)
        return {k: self._decode(v) for k, v in record.params.items()}

    def _unset_error(self, names: Sequence[str]) -> ConfigError:
        listed = ", ".join(map(repr, names))
        msg = (
            f"parameter {listed} of experiment {self.id!r} has no value; set it with "
            f"ex.set_parameters({names[0]}=...) or give it a default"
        )
        return ConfigError(msg)

    def check_parameters(self, node: Delayed) -> None:
        """Raise :class:`~trialbook.errors.ConfigError` if a parameter ``node``'s graph uses
        has no value (for the nodes: see :class:`~trialbook.graph.nodes.TrialHost`)."""
        used = [p.key for p in self._parameters.values()]
        graph = node.__dask_graph__()
        unset = [
            name
            for name, key in zip(self._parameters, used, strict=True)
            if key in graph and name not in self._values
        ]
        if unset:
            raise self._unset_error(unset)

    def parameter_value(self, name: str) -> Any:
        """The value the task of parameter ``name`` gives: the running trial's, else the
        current one, else :class:`~trialbook.errors.ConfigError` (for the nodes: see
        :class:`~trialbook.graph.nodes.TrialHost`)."""
        trial = self._recorder.active
        if trial is not None and name in trial.run.params:
            return trial.run.params[name]
        value = self._values.get(name, UNDEFINED)
        if value is UNDEFINED:
            raise self._unset_error([name])
        return value

    # -- steps --

    def __call__(self, func: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
        """Decorate a step: ``@ex``, ``@ex()`` or ``@ex(name="step_name")``.

        A step is known by its name, the function's name unless ``name=`` gives another.
        Defining a step name again in this experiment replaces the step (a notebook cell run
        again, with a warning in the log when its source changed), but the same ``def``
        executed again for the same name (in a loop, or a function called again) is refused:
        each definition would be one and the same step. Name each one apart instead:
        ``@ex(name=f"branch_{k}")`` (``@ex.result`` and ``@ex.persist`` take ``name=`` too).

        Raises
        ------
        ConfigError
            If ``name`` is not a Python identifier, or the same ``def`` defines the step name
            a second time.

        Examples
        --------
        >>> import trialbook
        >>> ex = trialbook.Experiment("doc_call", backend="sqlite:///:memory:")
        >>> @ex
        ... def inc(x):
        ...     return x + 1
        >>> @ex()
        ... def dec(x):
        ...     return x - 1
        >>> inc, dec
        (Step(inc, persist=False, result=False), Step(dec, persist=False, result=False))
        >>> scaled = []
        >>> for k in range(2):
        ...     @ex(name=f"scale_{k}")
        ...     def scale(x, k=k):
        ...         return x * k
        ...     scaled.append(scale(10))
        >>> scale, scaled[0].compute(), scaled[1].compute()
        (Step(scale_1, persist=False, result=False), 0, 10)
        >>> for k in range(2):
        ...     @ex
        ...     def shift(x, k=k):
        ...         return x + k
        Traceback (most recent call last):
        ...
        trialbook.errors.ConfigError: step 'shift' ... is defined again by the same def ...
        >>> ex.close()
        """
        if func is None:
            return lambda f: self._register(f, name=name)
        return self._register(func, name=name)

    def result(self, func: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
        """Decorate the step whose output is the trial's result: ``@ex.result`` (``name=``:
        as for ``@ex``).

        Examples
        --------
        >>> import trialbook
        >>> ex = trialbook.Experiment("doc_result", backend="sqlite:///:memory:")
        >>> @ex.result()
        ... def score(x):
        ...     return x
        >>> score
        Step(score, persist=False, result=True)
        >>> ex.close()
        """
        if func is None:
            return lambda f: self._register(f, name=name, is_result=True)
        return self._register(func, name=name, is_result=True)

    def persist(
        self,
        func: Callable[..., Any] | None = None,
        *,
        cache: bool = False,
        name: str | None = None,
    ) -> Any:
        """Decorate a step whose output is stored with each trial: ``@ex.persist`` (``name=``:
        as for ``@ex``; the output is read back under that name).

        With ``cache=True``, a trial reuses the output stored by an earlier trial when the
        step's source and inputs are the same, instead of running the step.

        Examples
        --------
        >>> import trialbook
        >>> ex = trialbook.Experiment("doc_persist", backend="sqlite:///:memory:")
        >>> @ex.persist(cache=True)
        ... def load(n):
        ...     return list(range(n))
        >>> load
        Step(load, persist=True, result=False)
        >>> ex.close()
        """
        if func is None:
            return lambda f: self._register(f, name=name, persist=True, cache=cache)
        return self._register(func, name=name, persist=True, cache=cache)

    def _register(
        self, func: Callable[..., Any], *, name: str | None = None, **options: bool
    ) -> Step:
        if not callable(func):
            msg = f"a step must be a function (got {func!r} that is a {type(func)})"
            raise ConfigError(msg)
        if name is None:
            name = func.__name__
        elif not isinstance(name, str) or not name.isidentifier():
            msg = (
                f"a step name must be a Python identifier such as 'branch_1' (got {name!r} "
                f"that is a {type(name)})"
            )
            raise ConfigError(msg)
        source = capture.step_source(func)
        previous = self._steps.get(name)
        if previous is not None and _same_def(previous.func, func):
            raise self._defined_again_error(name)
        old = previous.source if previous is not None else self._known_sources.get(name)
        if old is not None and old != source:
            logger.warning("Code context has been changed: %s", name)
            for line in capture.source_diff(old, source):
                logger.warning(line)
        step = Step(self, func, name, source, **options)
        self._steps[name] = step
        return step

    def _defined_again_error(self, name: str) -> ConfigError:
        """The error for a step name defined twice by one ``def`` (issue 18): in a loop, the
        steps would collapse into the last one, silently."""
        msg = (
            f"step {name!r} of experiment {self.id!r} is defined again by the same def (in a "
            "loop, or a function called again): a step is known by its name, so every "
            "definition would be the same step and only the last one would run. Give each its "
            f'own name: @ex(name=f"{name}_{{k}}") (also @ex.result(name=...) and '
            "@ex.persist(name=...)), or define the step once and pass what differs as an "
            "argument"
        )
        return ConfigError(msg)

    def get_code(self, trial_id: int | None = None) -> str:
        """Source of the decorated steps: current (``trial_id=None``) or of a trial.

        Examples
        --------
        >>> import trialbook
        >>> ex = trialbook.Experiment("doc_code", backend="sqlite:///:memory:")
        >>> @ex
        ... def f(x):
        ...     return x
        >>> print(ex.get_code())
        @ex
        def f(x):
            return x
        >>> ex.close()
        """
        if trial_id is None:
            return self._code_text()
        record = self._trial_record(trial_id)
        return self.store.get_snapshot(record.code) if record.code else ""

    def _code_text(self) -> str:
        return "\n".join(step.source for step in self._steps.values()).rstrip("\n")

    def save_metric(
        self,
        metric_key: str | None = None,
        *,
        epoch: int,
        value: float,
        key: str | None = None,
    ) -> None:
        """Record ``value`` of metric ``metric_key`` at ``epoch``, inside a step of a running
        trial: ``ex.save_metric("loss", epoch=i, value=v)`` or
        ``ex.save_metric(metric_key="loss", epoch=i, value=v)``; ``key=`` is accepted for
        ``metric_key=``.

        Raises
        ------
        ConfigError
            Outside a running trial, or without a metric name (or with both ``metric_key``
            and ``key``).

        Examples
        --------
        >>> import trialbook
        >>> ex = trialbook.Experiment("doc_metric", backend="sqlite:///:memory:")
        >>> @ex.result
        ... def train():
        ...     for i in range(3):
        ...         ex.save_metric("loss", epoch=i, value=1 / (i + 1))
        ...     return 0
        >>> train().compute(seed=0)
        0
        >>> ex.load_metric("loss", trial_id=1)
        Trial ID         1
        Epoch
        0         1.000000
        1         0.500000
        2         0.333333
        >>> ex.close()
        """
        name = remote.metric_name(metric_key, key)
        run = current_run()  # the trial's Run, also in a worker process (see graph.remote)
        trial = self._recorder.active
        if run is None and trial is not None:  # a plain dask.delayed task of the trial
            run = trial.run
        if run is None:
            raise remote.outside_trial_error(self.id, name)
        run.log_metric(name, value, step=epoch)

    # -- trials --

    def call_step(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run ``step``'s function on ``args``, tracked when a trial is running (for the
        nodes: see :class:`~trialbook.graph.nodes.TrialHost`)."""
        return self._recorder.call(step, args, kwargs)

    def record_trial(self, node: Node, *, seed: int | None, dask_options: dict[str, Any]) -> Any:
        """Compute the result node ``node`` as one recorded trial; return its value (for the
        nodes: ``node.compute()``, see :class:`~trialbook.graph.nodes.TrialHost`)."""
        request = current_request()  # under `trialbook run script.py a=1 --seed 2`
        if request is not None:  # the command line's values win over the script's
            self.set_parameters(**request.params)
            seed = seed if request.seed is None else request.seed
        self.check_parameters(node)
        if seed is not None and type(seed) is not int:
            msg = f"seed must be an int or None (got {seed!r} that is a {type(seed)})"
            raise ConfigError(msg)
        params = self._trial_parameters()
        seed = choose_seed(seed, self.seed)
        run = self._recorder.new_run(params, seed=seed, code=self._code_digest())
        self._trial_id = max(self._trial_id, run.id)
        self._recorded.update((name, (value, run.id)) for name, value in params.items())
        value = self._recorder.record(node, run, dask_options)
        if request is not None:
            request.trials.append(ScriptTrial(self, run.id, value))
        return value

    def _trial_parameters(self) -> dict[str, Any]:
        """The values a trial records: of the parameters this process declared or set (not
        those only known from earlier trials); a value taken from a trial is logged once."""
        params = {
            name: self._values[name]
            for name in self._parameters
            if name in self._values and (name in self._declared or name in self._given)
        }
        for name in [n for n in params if n in self._from_record]:
            logger.info(
                "Parameter %r is not set and has no default: using %r, its value in trial %d",
                name,
                params[name],
                self._recorded[name][1],
            )
            self._from_record.discard(name)
        for name, value in params.items():
            self._check_storable(name, value)
        return params

    def _check_storable(self, name: str, value: Any) -> None:
        """Refuse a parameter value the store cannot keep, before the trial runs."""
        if is_plain(value):
            return
        try:
            encode(value, allow_pickle=self.store.allow_pickle)
        except CodecError as exc:
            msg = (
                f"parameter {name!r} of experiment {self.id!r} cannot be stored, so no trial "
                f"was computed: {exc}"
            )
            raise CodecError(msg) from None

    def _code_digest(self) -> str:
        digest, stored = self._recorder.code_digest(self._code_text())
        if stored:
            sources = {name: step.source for name, step in self._steps.items()}
            if sources != {k: self._known_sources.get(k) for k in sources}:
                self._known_sources.update(sources)
                self._save_meta()
        return digest

    def _save_meta(self) -> None:
        params = {name: self._stored_defaults.get(name) for name in self._parameters}
        graph = {
            "parameters": params,
            "defaults": sorted(self._stored_defaults),
            "steps": self._known_sources,
        }
        self.store.update_meta(self.experiment_id, {"graph": graph})

    # -- scripts --

    def run_trial(
        self,
        result: Node,
        argv: Sequence[str] | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> Any:
        """Set parameters, compute ``result`` and record one trial; return its value.

        The explicit entry point of a script: ``ex.run_trial(s, sys.argv[1:])`` parses
        ``key=value`` arguments and ``--seed N``. Under ``trialbook run script.py a=1`` the
        command line's values (parameters and ``--seed``) are used over those passed here.
        Malformed arguments raise before anything is recorded.

        Examples
        --------
        >>> import trialbook
        >>> ex = trialbook.Experiment("doc_script", backend="sqlite:///:memory:")
        >>> a = ex.parameter("a")
        >>> @ex.result
        ... def square(a):
        ...     return a * a
        >>> ex.run_trial(square(a), ["a=4", "--seed", "1"])
        16
        >>> ex.run_trial(square(a), ["a"])
        Traceback (most recent call last):
        ...
        trialbook.errors.ConfigError: malformed argument 'a': expected key=value ...
        >>> ex.close()
        """
        given, given_seed = parse_arguments(argv or ())
        given.update(params or {})
        self.set_parameters(**given)  # under `trialbook run`, the trial applies its values
        return result.compute(seed=seed if seed is not None else given_seed)


def _same_def(old: Callable[..., Any], new: Callable[..., Any]) -> bool:
    """Whether ``new`` comes from executing again the ``def`` that made ``old`` (a loop, a
    function called again): the same code object, another function. A cell run again in a
    notebook, or edited code, is compiled anew: another code object."""
    code = getattr(new, "__code__", None)
    return old is not new and code is not None and getattr(old, "__code__", None) is code


def _storable_default(default: Any) -> Any:
    """``default`` as the store's metadata keeps it (plain JSON), or UNDEFINED when there is
    no default or it is not plain JSON (such a default lives only in the code)."""
    return default if default is not UNDEFINED and is_plain(default) else UNDEFINED


def _json_text(value: Any) -> str | None:
    """Compare stored defaults by their JSON text: ``1``, ``1.0`` and ``True`` differ."""
    return None if value is UNDEFINED else json.dumps(value, sort_keys=True)


def _names_with_default(declared: Mapping[str, Any], defaults: Any) -> set[str]:
    """The stored parameters that have a default. Metadata written before the list of
    defaults was kept stored ``None`` for a parameter without one."""
    if isinstance(defaults, list):
        return {name for name in defaults if name in declared}
    return {name for name, value in declared.items() if value is not None}
