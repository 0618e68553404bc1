"""The nodes of a lazy step graph: parameters, steps, their outputs, and a running trial.

:class:`Parameter` is a ``dask.delayed`` leaf whose value is read when the graph runs;
:class:`Step` wraps a decorated function, and calling it builds a :class:`Node` (a
``dask.delayed.Delayed``) without running anything. While a trial runs, each step's task goes
through :class:`ActiveTrial`, which records purity hashes, persisted outputs and cache hits.
The experiment these objects point to is :class:`trialbook.graph.Experiment`.

Examples
--------
>>> import trialbook
>>> ex = trialbook.Experiment("doc_nodes", backend="sqlite:///:memory:")
>>> a = ex.parameter("a")
>>> @ex
... def inc(x):
...     return x + 1
>>> node = inc(a)
>>> type(node).__name__, len(dict(node.__dask_graph__()))
('Node', 2)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dask
from dask.delayed import Delayed

from trialbook import capture
from trialbook.codecs import Encoded, encode
from trialbook.graph import remote
from trialbook.identity import fingerprint
from trialbook.tracking import Run, using_run

if TYPE_CHECKING:
    from trialbook.graph.experiment import Experiment
    from trialbook.graph.remote import StepOutcome

__all__ = ["PERSIST_PREFIX", "RESULT_NOT_STORED", "UNDEFINED", "Node", "Parameter", "Step"]

PERSIST_PREFIX = "persist/"
"""Artifact names of persisted step outputs start with this."""
CACHE_PREFIX = "cache:"
RESULT_NOT_STORED = "result_not_stored"
"""Tag of a trial whose result no safe codec could store; its value is the result's type."""
UNDEFINED: Any = type("Undefined", (), {"__repr__": lambda self: "Undefined"})()
"""The value of a parameter that was never set."""


class _ParameterValue:
    """The task of a parameter: its value in the running trial, else its current value."""

    __slots__ = ("experiment", "name")

    def __init__(self, experiment: Experiment, name: str) -> None:
        self.experiment = experiment
        self.name = name

    def __call__(self) -> Any:
        trial = self.experiment._active
        if trial is not None and self.name in trial.run.params:
            return trial.run.params[self.name]
        value = self.experiment._values.get(self.name, UNDEFINED)
        if value is UNDEFINED:
            raise self.experiment._unset_error([self.name])
        return value

    def __dask_tokenize__(self) -> tuple[str, str]:
        return (self.experiment.id, self.name)

    def __reduce__(self) -> tuple[Any, ...]:
        # sent to another process (a plain dask.compute on a cluster): the value, not the store
        return (_constant, (self(),))


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


class Parameter(Delayed):
    """An input of the experiment, set with :meth:`Experiment.set_parameters`.

    A ``dask.delayed`` leaf: pass it to steps to build the graph.

    Examples
    --------
    >>> import trialbook
    >>> ex = trialbook.Experiment("doc_parameter", backend="sqlite:///:memory:")
    >>> a = ex.parameter("a")
    >>> a
    Parameter(a: Undefined)
    >>> ex.set_parameters(a=3)
    >>> a, a.compute()
    (Parameter(a: 3), 3)
    """

    __slots__ = ("_experiment", "_name")

    def __init__(self, experiment: Experiment, name: str) -> None:
        key = f"{name}-parameter-{dask.base.tokenize(experiment.id, name)}"
        leaf = dask.delayed(_ParameterValue(experiment, name), pure=True)(dask_key_name=key)
        super().__init__(key, leaf.__dask_graph__())
        object.__setattr__(self, "_experiment", experiment)
        object.__setattr__(self, "_name", name)

    @property
    def name(self) -> str:
        """The parameter's name."""
        return self._name

    def __repr__(self) -> str:
        value = self._experiment._values.get(self._name, UNDEFINED)
        return f"Parameter({self._name}: {value!r})"

    def __reduce__(self) -> Any:
        msg = f"Parameter {self._name!r} cannot be pickled: pass its value instead"
        raise TypeError(msg)


class _StepCall:
    """The task function of a step: runs the user function, tracked when a trial is active."""

    __slots__ = ("step",)

    def __init__(self, step: Step) -> None:
        self.step = step

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        trial = self.step.experiment._active
        if trial is None:
            return self.step.func(*args, **kwargs)
        return trial.call(self.step, args, kwargs)

    def __dask_tokenize__(self) -> tuple[str, str, str]:
        return (self.step.experiment.id, self.step.name, self.step.source)


class Node(Delayed):
    """The lazy output of a step; computing a result step's node runs one trial.

    Examples
    --------
    >>> import trialbook
    >>> ex = trialbook.Experiment("doc_node", backend="sqlite:///:memory:")
    >>> @ex.result
    ... def one():
    ...     return 1
    >>> node = one()
    >>> node
    Node(one-...)
    >>> node.compute(seed=1)
    1
    """

    __slots__ = ("_flat", "_step")

    def __init__(self, key: str, graph: Any, step: Step) -> None:
        super().__init__(key, graph)
        object.__setattr__(self, "_step", step)
        object.__setattr__(self, "_flat", None)

    def _flat_graph(self) -> dict[Any, Any]:
        """The graph as a plain dict, built on first use (a node never changes)."""
        flat = self._flat
        if flat is None:
            flat = dict(self.__dask_graph__())
            object.__setattr__(self, "_flat", flat)
        return flat

    def __repr__(self) -> str:
        return f"Node({self.key})"

    def visualize(self, *args: Any, **kwargs: Any) -> Any:
        """Draw the graph with graphviz (the ``viz`` extra and graphviz's ``dot``); the
        arguments are those of ``dask.delayed.Delayed.visualize``."""
        from trialbook.extras import require

        require("viz", "drawing a step graph (.visualize())")
        return super().visualize(*args, **kwargs)

    def compute(self, *, seed: int | None = None, **kwargs: Any) -> Any:
        """Compute the node; for a result step this runs and records one trial.

        Parameters
        ----------
        seed
            Seed for ``random`` and NumPy in this trial (default: the experiment's seed, else
            a generated one, logged and recorded).
        **kwargs
            Passed to ``dask.compute``: ``scheduler=`` is ``"sync"`` by default; ``"threads"``
            runs steps in threads of this process, ``"processes"`` or a
            ``distributed.Client`` in other processes (see :mod:`trialbook.graph.remote`).
        """
        if remote.importing_main_in_worker():  # a script without a __main__ guard
            remote.skip_in_worker(self._step.experiment.id)
            return None
        if not self._step.is_result:
            self._step.experiment._check_parameters(self)
            kwargs.setdefault("scheduler", "sync")
            return dask.compute(self, **kwargs)[0]
        return self._step.experiment._run_trial(self, seed=seed, dask_options=kwargs)


@dataclass(eq=False)
class Step:
    """A decorated step function: calling it builds a :class:`Node`, it does not run.

    Examples
    --------
    >>> import trialbook
    >>> ex = trialbook.Experiment("doc_step", backend="sqlite:///:memory:")
    >>> @ex.persist
    ... def prepare(a, b):
    ...     return a + b
    >>> prepare
    Step(prepare, persist=True, result=False)
    """

    experiment: Experiment
    func: Callable[..., Any]
    name: str
    source: str
    is_result: bool = False
    persist: bool = False
    cache: bool = False

    def __repr__(self) -> str:
        return f"Step({self.name}, persist={self.persist}, result={self.is_result})"

    def __call__(self, *args: Any, **kwargs: Any) -> Node:
        token = dask.base.tokenize(_StepCall(self), args, kwargs)
        key = f"{self.name}-{token}"
        delayed = dask.delayed(_StepCall(self), pure=True)(*args, dask_key_name=key, **kwargs)
        return Node(key, delayed.__dask_graph__(), self)

    @property
    def __wrapped__(self) -> Callable[..., Any]:
        return self.func


# -- a running trial -----------------------------------------------------------------------------


@dataclass(eq=False)
class ActiveTrial:
    """What one trial collects while its graph runs."""

    experiment: Experiment
    run: Run
    artifacts: list[tuple[int, str, Encoded]] = field(default_factory=list)
    step_hashes: list[tuple[str, str, str, int]] = field(default_factory=list)
    calls: list[tuple[str, str, str, str]] = field(default_factory=list)
    """``(step, input hash, output hash, call)`` of each step run: checked for purity against
    earlier trials in one store read when the trial ends."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        ex = self.experiment
        in_hash = capture.input_hash(step.name, args, kwargs)
        cache_key = _cache_key(step, in_hash) if step.cache else None
        if cache_key is not None:
            hit = ex._cached_output(step, cache_key)
            if hit is not None:
                self.keep(step, hit[0], cache_key=cache_key, out_hash=hit[1])
                return hit[0]
        with using_run(self.run):
            value = step.func(*args, **kwargs)
        out_hash = capture.output_hash(value)
        if in_hash is not None and out_hash is not None:
            self.hashed(step.name, in_hash, out_hash, capture.describe_call(args, kwargs))
        self.keep(step, value, cache_key=cache_key, out_hash=out_hash)
        return value

    def absorb(self, step: Step, outcome: StepOutcome) -> None:
        """Take in what ``step`` recorded while it ran in another process."""
        self.run.absorb_metrics(outcome.metrics)
        if outcome.in_hash is not None and outcome.out_hash is not None:
            self.hashed(step.name, outcome.in_hash, outcome.out_hash, outcome.call)
        self.keep(step, outcome.value, cache_key=None, out_hash=outcome.out_hash)

    def hashed(self, name: str, in_hash: str, out_hash: str, call: str) -> None:
        """Note that step ``name`` turned inputs ``in_hash`` into ``out_hash`` in this trial."""
        with self.lock:
            self.calls.append((name, in_hash, out_hash, call))
            self.step_hashes.append((name, in_hash, out_hash, self.run.id))

    def keep(self, step: Step, value: Any, *, cache_key: str | None, out_hash: str | None) -> None:
        if not step.persist:
            return
        encoded = encode(value, allow_pickle=self.experiment.store.allow_pickle)
        if type(encoded) is not Encoded:
            encoded = Encoded("json", _json_bytes(encoded))
        with self.lock:
            self.artifacts.append((self.run.id, PERSIST_PREFIX + step.name, encoded))
            if cache_key is not None and out_hash is not None:
                self.step_hashes.append(
                    (CACHE_PREFIX + step.name, cache_key, out_hash, self.run.id)
                )


def _cache_key(step: Step, in_hash: str | None) -> str | None:
    return None if in_hash is None else fingerprint((step.source, in_hash))


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()
