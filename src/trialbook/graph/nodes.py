"""The nodes of a lazy step graph: parameters, steps and their outputs.

:class:`Parameter` is a ``dask.delayed`` leaf whose value is read when the graph runs;
:class:`Step` wraps a decorated function, and calling it builds a :class:`Node` (a
``dask.delayed.Delayed``) without running anything.

The nodes talk to their experiment only through :class:`TrialHost`, the few methods
:class:`trialbook.graph.Experiment` offers them: a parameter's value, running a step's
function (tracked by the running trial, see :mod:`trialbook.graph.recorder`), checking that
a graph's parameters are set, and recording a trial.

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
>>> ex.close()
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import dask
from dask.delayed import Delayed

from trialbook.graph import remote

__all__ = [
    "PERSIST_PREFIX",
    "RESULT_NOT_STORED",
    "UNDEFINED",
    "Node",
    "Parameter",
    "Step",
    "TrialHost",
]

PERSIST_PREFIX = "persist/"
"""Artifact names of persisted step outputs start with this."""
CACHE_PREFIX = "cache:"
RESULT_NOT_STORED = "result_not_stored"
"""Tag of a trial whose result no safe codec could store; its value is the result's type."""
UNDEFINED: Any = type("Undefined", (), {"__repr__": lambda self: "Undefined"})()
"""The value of a parameter that was never set."""


class TrialHost(Protocol):
    """What the nodes of a graph need from their experiment (:class:`trialbook.graph.Experiment`).

    These methods are public so that the nodes need no private member of the experiment; they
    are meant for the nodes, not for users.

    Examples
    --------
    >>> import trialbook
    >>> ex: TrialHost = trialbook.Experiment("doc_host", backend="sqlite:///:memory:")
    >>> _ = ex.parameter("a", default=1)
    >>> ex.parameter_value("a")
    1
    >>> ex.close()
    """

    id: str
    """The experiment's name."""

    def get_parameters(self, trial_id: int | None = None) -> dict[str, Any]:
        """The current parameter values (``trial_id=None``), or those of a trial."""
        ...

    def parameter_value(self, name: str) -> Any:
        """The value the task of parameter ``name`` gives: the running trial's, else the
        current one; :class:`~trialbook.errors.ConfigError` if it has none."""
        ...

    def call_step(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run ``step``'s function on ``args``, tracked when a trial is running."""
        ...

    def check_parameters(self, node: Delayed) -> None:
        """Raise :class:`~trialbook.errors.ConfigError` if a parameter ``node`` uses is unset."""
        ...

    def record_trial(self, node: Node, *, seed: int | None, dask_options: dict[str, Any]) -> Any:
        """Compute the result node ``node`` as one recorded trial; return its value."""
        ...


class _ParameterValue:
    """The task of a parameter: its value in the running trial, else its current value."""

    __slots__ = ("experiment", "name")

    def __init__(self, experiment: TrialHost, name: str) -> None:
        self.experiment = experiment
        self.name = name

    def __call__(self) -> Any:
        return self.experiment.parameter_value(self.name)

    def __dask_tokenize__(self) -> tuple[str, str]:
        return (self.experiment.id, self.name)

    def __reduce__(self) -> tuple[Any, ...]:
        # sent to another process (a plain dask.compute on a cluster): the value, not the store
        return (_constant, (self(),))


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


class Parameter(Delayed):
    """An input of the experiment, set with :meth:`Experiment.set_parameters`.

    A ``dask.delayed`` leaf: pass it to steps to build the graph. Its repr shows the current
    value and its type, as daskperiment does (``Parameter(a: 3<class 'int'>)``), or
    ``Undefined`` while it has none.

    Examples
    --------
    >>> import trialbook
    >>> ex = trialbook.Experiment("doc_parameter", backend="sqlite:///:memory:")
    >>> a = ex.parameter("a")
    >>> a
    Parameter(a: Undefined)
    >>> ex.set_parameters(a=3)
    >>> a, a.compute()
    (Parameter(a: 3<class 'int'>), 3)
    >>> ex.close()
    """

    __slots__ = ("_experiment", "_name")

    def __init__(self, experiment: TrialHost, name: str) -> None:
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
        value = self._experiment.get_parameters().get(self._name, UNDEFINED)
        if value is UNDEFINED:
            return f"Parameter({self._name}: Undefined)"
        return f"Parameter({self._name}: {value}{type(value)})"

    def __reduce__(self) -> Any:
        msg = f"Parameter {self._name!r} cannot be pickled: pass its value instead"
        raise TypeError(msg)


class _StepCall:
    """The task function of a step: runs the user function, tracked when a trial is active."""

    __slots__ = ("step",)

    def __init__(self, step: Step) -> None:
        self.step = step

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.step.experiment.call_step(self.step, args, kwargs)

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
    >>> ex.close()
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
            self._step.experiment.check_parameters(self)
            kwargs.setdefault("scheduler", "sync")
            return dask.compute(self, **kwargs)[0]
        return self._step.experiment.record_trial(self, seed=seed, dask_options=kwargs)


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
    >>> ex.close()
    """

    experiment: TrialHost
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
