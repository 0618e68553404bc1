"""Running a trial's graph: in this process, or on a scheduler outside it (``distributed``...).

By default (:func:`execute` without options) the graph runs with ``dask.get``, Dask's
synchronous scheduler, on the node's already built graph. In-process schedulers (``sync``,
``threads``) run the graph as built: each step's task reads the trial's parameters and
records purity hashes, persisted outputs and metrics directly.
Another process has none of that state (and a store connection cannot be pickled), so for any
other scheduler the trial's graph is rewritten before it is handed over:

* each parameter's value is inlined into the tasks that use it;
* each step task ``K`` becomes two tasks: ``K-tracked`` runs :class:`RemoteStep`, which calls
  the step function with a fresh :class:`~trialbook.tracking.Run` as
  :func:`~trialbook.tracking.current_run` (so ``ex.save_metric`` works in the worker) and
  returns a :class:`StepOutcome` (value, purity hashes, metric chunks); ``K`` unwraps the value
  for the tasks downstream, so every other task of the graph runs unchanged.

The outcomes travel back with the result, and the trial absorbs them in this process: metrics,
persisted values and purity checks end up in the same single store transaction as in-process.
Each remote step seeds ``random`` and NumPy with the trial's seed before it runs.

Examples
--------
>>> import trialbook
>>> ex = trialbook.Experiment("doc_remote", backend="sqlite:///:memory:")
>>> a = ex.parameter("a")
>>> @ex.result
... def double(x):
...     return 2 * x
>>> ex.set_parameters(a=4)
>>> plan = rewrite(double(a), run_id=1, seed=0)
>>> sorted(k.split("-")[0] for k in plan.graph), list(plan.steps.values())
(['double', 'double'], [Step(double, persist=False, result=True)])
>>> plan.result
'double-...-trial1-...'
>>> sorted(plan.graph[plan.result].dependencies) == sorted(plan.steps)
True
>>> ex.close()
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dask._task_spec import DataNode, Task, TaskRef
from dask.delayed import Delayed

from trialbook import capture
from trialbook.errors import ConfigError, LockedTrialError
from trialbook.storage.records import MetricChunk
from trialbook.tracking import Run, current_run, using_run

if TYPE_CHECKING:
    from types import FrameType

    from trialbook.graph.nodes import Node, Step
    from trialbook.graph.recorder import ActiveTrial

__all__ = [
    "Plan",
    "RemoteStep",
    "StepOutcome",
    "WorkerExperiment",
    "execute",
    "importing_main_in_worker",
    "is_local",
    "metric_name",
    "outside_trial_error",
    "rewrite",
]

OUTCOME_SUFFIX = "-tracked"

logger = logging.getLogger(__name__)


@dataclass
class StepOutcome:
    """What one step run in another process sends back besides its value.

    Examples
    --------
    >>> StepOutcome(3, "add", None, None, "", []).value
    3
    """

    value: Any
    step: str
    in_hash: str | None
    out_hash: str | None
    call: str
    """``args: (...), kwargs: {...}`` as the purity warning shows them."""
    metrics: list[MetricChunk]


class RemoteStep:
    """The picklable task function of a step on another process: run it, report what happened.

    Examples
    --------
    >>> def add(a, b):
    ...     return a + b
    >>> outcome = RemoteStep(add, "add", run_id=1, seed=0)(1, 2)
    >>> outcome.value, outcome.call
    (3, 'args: (1, 2), kwargs: {}')
    """

    __slots__ = ("func", "name", "run_id", "seed")

    def __init__(self, func: Callable[..., Any], name: str, *, run_id: int, seed: int) -> None:
        self.func = func
        self.name = name
        self.run_id = run_id
        self.seed = seed

    def __call__(self, *args: Any, **kwargs: Any) -> StepOutcome:
        run = Run(self.run_id, kind="trial")
        capture.seed_everything(self.seed)
        with using_run(run):
            value = self.func(*args, **kwargs)
        in_hash = capture.input_hash(self.name, args, kwargs)
        out_hash = capture.output_hash(value)
        call = capture.describe_call(args, kwargs) if in_hash is not None else ""
        return StepOutcome(value, self.name, in_hash, out_hash, call, run.pending_metrics())

    def __repr__(self) -> str:
        return f"RemoteStep({self.name})"


def metric_name(metric_key: str | None, key: str | None, *, call: str = "save_metric") -> str:
    """The metric name given to ``call`` (``save_metric``, ``load_metric``): ``metric_key``
    (daskperiment's name for it) or its alias ``key``, exactly one of them.

    Examples
    --------
    >>> metric_name("loss", None), metric_name(None, "loss")
    ('loss', 'loss')
    >>> metric_name(None, None)
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: save_metric() needs the metric's name: ...
    """
    if metric_key is not None and key is not None:
        msg = (
            f"{call}() got two names for one metric: metric_key={metric_key!r} and "
            f"key={key!r}; pass only one (key= is another spelling of metric_key=)"
        )
        raise ConfigError(msg)
    name = metric_key if metric_key is not None else key
    if not isinstance(name, str) or not name:
        msg = (
            f"{call}() needs the metric's name: a non-empty str as its first argument or "
            f"metric_key= (got {name!r} that is a {type(name)}), e.g. "
            f"ex.{call}({_EXAMPLE_ARGUMENTS.get(call, '...')})"
        )
        raise ConfigError(msg)
    return name


_EXAMPLE_ARGUMENTS = {
    "save_metric": '"loss", epoch=0, value=0.5',
    "load_metric": '"loss", trial_id=1',
}


def outside_trial_error(experiment: str, metric: str) -> ConfigError:
    """The error of ``save_metric`` called where no trial runs.

    Examples
    --------
    >>> print(outside_trial_error("exp", "loss"))  # doctest: +ELLIPSIS
    save_metric('loss') was called outside a trial of experiment 'exp'; call it inside ...
    """
    msg = (
        f"save_metric({metric!r}) was called outside a trial of experiment {experiment!r}; "
        "call it inside a decorated step while its result is computed"
    )
    return ConfigError(msg)


class WorkerExperiment:
    """What an :class:`~trialbook.graph.Experiment` becomes when a step using it is pickled.

    A store connection does not travel to another process; inside a step, only
    :meth:`save_metric` is needed there, and it records into the step's run.

    Examples
    --------
    >>> import pickle, trialbook
    >>> ex = trialbook.Experiment("doc_worker", backend="sqlite:///:memory:")
    >>> copy = pickle.loads(pickle.dumps(ex))
    >>> copy
    WorkerExperiment(id: doc_worker)
    >>> with using_run(Run(1)) as run:
    ...     copy.save_metric("loss", epoch=0, value=0.5)
    ...     copy.save_metric(metric_key="acc", epoch=0, value=0.9)
    ...     copy.current_trial_id
    1
    >>> run.metric_names()
    ['acc', 'loss']
    >>> ex.close()
    """

    def __init__(self, id: str) -> None:
        self.id = id

    def __repr__(self) -> str:
        return f"WorkerExperiment(id: {self.id})"

    def save_metric(
        self,
        metric_key: str | None = None,
        *,
        epoch: int,
        value: float,
        key: str | None = None,
    ) -> None:
        """Record a metric point into the run of the step that is executing (the arguments
        of :meth:`trialbook.graph.Experiment.save_metric`)."""
        name = metric_name(metric_key, key)
        run = current_run()
        if run is None:
            raise outside_trial_error(self.id, name)
        run.log_metric(name, value, step=epoch)

    @property
    def current_trial_id(self) -> int:
        """The id of the trial whose step is executing (as
        :attr:`trialbook.graph.Experiment.current_trial_id`)."""
        run = current_run()
        if run is None:
            msg = (
                f"current_trial_id of experiment {self.id!r} was read outside a trial: it "
                "exists only while a trial is computed (read it inside a step)"
            )
            raise ConfigError(msg)
        return run.id

    @property
    def trial_id(self) -> int:
        """Not readable in a step (as :attr:`trialbook.graph.Experiment.trial_id` during a
        trial): raises :class:`~trialbook.errors.LockedTrialError`, or
        :class:`~trialbook.errors.ConfigError` outside a step."""
        run = current_run()
        if run is None:
            msg = (
                f"trial_id of experiment {self.id!r} cannot be read in a worker process: "
                "this stand-in has no store; read it in the process that computes the trial"
            )
            raise ConfigError(msg)
        raise LockedTrialError(self.id, running=run.id)


def unwrap(outcome: StepOutcome) -> Any:
    """The value of a step's outcome, for the tasks downstream.

    Examples
    --------
    >>> unwrap(StepOutcome(3, "add", None, None, "", []))
    3
    """
    return outcome.value


@dataclass
class Plan:
    """A trial's graph rewritten for another process: compute ``result`` and each key of
    ``steps`` (the outcome of that step)."""

    graph: dict[Any, Any]
    result: Any
    steps: dict[Any, Step]


def rewrite(node: Node, *, run_id: int, seed: int) -> Plan:
    """The graph of ``node`` with parameter values inlined and steps wrapped (see module doc).

    Call it while the trial runs: parameter tasks are evaluated here, giving the trial's values.
    Every key gets a suffix unique to this trial, so that a cluster that still holds the
    results of an earlier trial does not hand them back instead of computing.

    Examples
    --------
    See the module's example.
    """
    from trialbook.graph.nodes import _ParameterValue, _StepCall

    flat = node._flat_graph()
    suffix = f"-trial{run_id}-{uuid.uuid4().hex[:8]}"
    subs: dict[Any, Any] = {}
    for key, task in flat.items():
        func = task.func if isinstance(task, Task) else None
        if isinstance(func, _ParameterValue):
            # inlined into the tasks that use it: no data task that would pin them to one worker
            subs[key] = DataNode(None, func())
        else:
            subs[key] = _renamed(key, suffix)
    graph: dict[Any, Any] = {}
    steps = {}
    for key, task in flat.items():
        new = subs[key]
        if isinstance(new, DataNode):
            continue
        if isinstance(task, Task) and isinstance(task.func, _StepCall):
            tracked = _renamed(new, OUTCOME_SUFFIX)
            step = task.func.step
            remote = RemoteStep(step.func, step.name, run_id=run_id, seed=seed)
            call = task.substitute(subs)
            graph[tracked] = Task(tracked, remote, *call.args, **call.kwargs)
            graph[new] = Task(new, unwrap, TaskRef(tracked))
            steps[tracked] = step
        else:
            graph[new] = task.substitute(subs, key=new)
    return Plan(graph, subs[node.key], steps)


def _renamed(key: Any, suffix: str) -> Any:
    if isinstance(key, tuple):  # ("name", i, ...) keys of Dask collections
        return (f"{key[0]}{suffix}", *key[1:])
    return f"{key}{suffix}"


_SYNC = {"sync", "synchronous", "single-threaded"}


def execute(trial: ActiveTrial, node: Node, options: dict[str, Any]) -> Any:
    """Run the graph of ``node`` for ``trial`` with the Dask ``options`` of ``compute()``.

    ``dask.compute`` costs ~0.7 ms per call on a tiny graph (collection handling and
    optimisation) where ``dask.get`` on the already built graph costs ~0.07 ms, so a trial
    without scheduler options uses the latter (issue 3: tracking overhead <= 0.5 ms).
    Dask's default scheduler (``dask.config.set(scheduler=...)``, the last
    ``distributed.Client`` created) is deliberately not used: a trial leaves this process only
    when ``compute(scheduler=...)`` says so.

    Examples
    --------
    See :class:`trialbook.graph.Experiment`: ``node.compute()`` calls this.
    """
    import dask

    if not options or (len(options) == 1 and options.get("scheduler") in _SYNC):
        return dask.get(node._flat_graph(), node.key)
    options.setdefault("scheduler", "sync")
    if is_local(options):
        return dask.compute(node, **options)[0]
    run = trial.run
    plan = rewrite(node, run_id=run.id, seed=run.seed or 0)
    keys = [plan.result, *plan.steps]
    values = dask.compute(*(Delayed(k, plan.graph) for k in keys), **options)
    for key, outcome in zip(plan.steps, values[1:], strict=True):
        trial.absorb(plan.steps[key], outcome)
    return values[0]


def importing_main_in_worker() -> bool:
    """Whether this is a worker process importing its parent's main script.

    ``spawn`` and ``forkserver`` workers (``scheduler="processes"``, ``multiprocessing``,
    ``concurrent.futures``, joblib's loky) run the parent's main script again, as the module
    ``__mp_main__``, before they take any task. A ``compute()`` at the top level of a script
    without an ``if __name__ == "__main__":`` guard then runs once per worker: such a call is
    not the user's trial (the parent's is), so it must record nothing.

    Examples
    --------
    >>> importing_main_in_worker()
    False
    """
    if "__mp_main__" not in sys.modules:
        return False
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__mp_main__":
            return True
        frame = frame.f_back
    return False


def skip_in_worker(experiment_id: str) -> None:
    """Log, once per experiment and worker, that a top-level ``compute()`` is skipped."""
    if experiment_id in _WARNED_WORKER:
        return
    _WARNED_WORKER.add(experiment_id)
    main = getattr(sys.modules.get("__mp_main__"), "__file__", None) or "the main script"
    logger.warning(
        "compute() of experiment %r is skipped in worker process %d: the worker is importing "
        "%s, whose top-level code computes a trial; nothing is computed or recorded here (the "
        "parent process records the trial). Put that code under "
        '`if __name__ == "__main__":` so that workers do not run it',
        experiment_id,
        os.getpid(),
        main,
    )


_WARNED_WORKER: set[str] = set()


def is_local(options: Mapping[str, Any]) -> bool:
    """Whether the Dask options run tasks in this process (``sync`` or ``threads``).

    Examples
    --------
    >>> is_local({"scheduler": "threads"}), is_local({"scheduler": "processes"})
    (True, False)
    """
    import dask.base
    import dask.local
    import dask.threaded

    get = dask.base.get_scheduler(get=options.get("get"), scheduler=options.get("scheduler"))
    return get is None or get in (dask.local.get_sync, dask.threaded.get)
