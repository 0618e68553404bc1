"""What ``Task.submit()`` does: init tasks, the run mode, scheduling, and the task's outputs.

``task.submit(init_tasks=[...], run_mode=..., launcher=...)`` (:meth:`~trialbook.tasks.Task.submit`)
calls :func:`submit_task`, which

1. checks and attaches the **init tasks**: :class:`LightweightTask` configurations whose
   ``execute()`` runs in the job's process before the task's own (to load weights, say); they
   count in the job's identifier (the same task initialised differently is another job) and
   the job waits for the tasks they are outputs of;
2. seals the task, generates its paths in the job directory
   (:class:`~trialbook.tasks.generators.PathGenerator`) and schedules it in the current
   experiment, in the experiment's run mode or in the ``run_mode`` given for this job;
3. returns ``task.task_outputs(dep)``. ``dep(config)`` marks ``config`` as an output of the
   job: a task given it as a parameter (or as an init task) waits for the job, and its
   identifier includes the job's (``_tb_output_of``; see
   :meth:`trialbook.tasks.config.Config.__identifier__`).

Examples
--------
>>> import tempfile
>>> from trialbook.tasks import Config, Param, Task, experiment
>>> class Checkpoint(Config):
...     step: Param[int]
>>> class Learn(Task):
...     def task_outputs(self, dep):
...         return dep(Checkpoint.C(step=10))
...     def execute(self):
...         pass
>>> class Evaluate(Task):
...     checkpoint: Param[Checkpoint]
...     def execute(self):
...         print("evaluating step", self.checkpoint.step)
>>> with experiment(tempfile.mkdtemp(), "doc") as xp:
...     checkpoint = Learn.C().submit()
...     evaluation = Evaluate.C(checkpoint=checkpoint).submit()
>>> (evaluation.jobpath / "stdout.log").read_text()
'evaluating step 10\\n'
>>> [job.task for job in evaluation.__dict__["_tb_job"].deps]  # it waited for Learn
[Learn()]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from trialbook.errors import ConfigError, SealedError
from trialbook.tasks.config import Config, Task, unsubmitted_tasks
from trialbook.tasks.modes import RunMode

__all__ = ["DependentMarker", "LightweightTask", "submit_task"]

logger = logging.getLogger(__name__)

_C = TypeVar("_C", bound=Config)

DependentMarker = Callable[[_C], _C]
"""The type of ``dep`` in ``task_outputs(self, dep)``: it returns the configuration it marks."""


class LightweightTask(Config):
    """A configuration that runs in another task's job before it: ``submit(init_tasks=[...])``.

    Define ``execute(self)``; it runs in the job's process, in the job directory, right before
    the task's ``execute()`` (init tasks run in the order given). An exception in it fails the
    job. Typical use: restore a model's state from the directory of the job that learned it,
    so that the evaluation task itself only needs the model's configuration.

    Examples
    --------
    >>> import tempfile
    >>> from trialbook.tasks import Param, Task, experiment
    >>> class Greet(LightweightTask):
    ...     word: Param[str] = "hello"
    ...     def execute(self):
    ...         print(self.word, end=" ")
    >>> class Name(Task):
    ...     def execute(self):
    ...         print("world")
    >>> with experiment(tempfile.mkdtemp(), "doc") as xp:
    ...     task = Name.C().submit(init_tasks=[Greet.C()])
    >>> (task.jobpath / "stdout.log").read_text()
    'hello world\\n'
    """

    def execute(self) -> None:
        """Run before the task it initialises; override in subclasses.

        Examples
        --------
        >>> LightweightTask().execute()
        Traceback (most recent call last):
        ...
        NotImplementedError: LightweightTask must define execute(self)
        """
        msg = f"{type(self).__qualname__} must define execute(self)"
        raise NotImplementedError(msg)


def submit_task(
    task: Task,
    *,
    launcher: Any = None,
    run_mode: RunMode | str | None = None,
    init_tasks: Sequence[Config] = (),
) -> Any:
    """Seal ``task``, schedule it and return its outputs (see the module documentation).

    Outside an experiment block only ``run_mode="dry-run"`` is accepted: the task is sealed
    and its identifier computed (so a plan can be checked without a workdir), nothing runs.

    Examples
    --------
    >>> from trialbook.tasks import Param
    >>> class Fit(Task):
    ...     alpha: Param[float] = 0.5
    >>> fit = submit_task(Fit.C(), run_mode="dry-run")
    >>> fit is not None, len(fit.__identifier__())
    (True, 64)
    >>> submit_task(Fit.C(), run_mode="later")
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: unknown run mode 'later' for Fit.submit(); expected one of ...
    """
    from trialbook.tasks import jobdir
    from trialbook.tasks.current import current_or_none
    from trialbook.tasks.generators import find_generated, generate_paths

    owner = type(task).__qualname__
    mode = _run_mode(run_mode, owner)
    _attach_init_tasks(task, init_tasks)
    xp = current_or_none()
    if xp is None and mode is not RunMode.DRY_RUN:
        msg = (
            f"{owner}.submit() needs an active experiment: use `with experiment(workdir, name) "
            "as xp:` (or submit(run_mode='dry-run') to only check the task)"
        )
        raise ConfigError(msg)
    for where, dependency in unsubmitted_tasks(task):
        name = type(dependency).__qualname__
        msg = (
            f"{owner}.submit(): its parameter {where!r} is a {name} task that was never "
            f"submitted; call submit() on the {name} first (then {owner} waits for its "
            "job), or give a configuration that is not a Task"
        )
        raise ConfigError(msg)
    pending = find_generated(task)
    task.__tb_seal__()
    if xp is None:
        task.__dict__["_tb_dry_run"] = True  # submitted, for the check of its dependents
        logger.info("dry run (no experiment): %s %s", owner, task.__identifier__()[:12])
        return task.task_outputs(_marker(task))
    task_id = type(task).__trialbook_type_id__()
    path = jobdir.job_path(xp.workdir, task_id, task.__identifier__())
    generate_paths(pending, path)
    if task.__dict__.get("_tb_job") is None:
        task.__dict__["_tb_jobpath"] = path  # task_outputs may use self.jobpath
    # The outputs before scheduling: a task_outputs that raises leaves no job behind.
    outputs = task.task_outputs(_marker(task))
    xp.schedule(task, launcher=launcher, run_mode=mode)
    return outputs


def _run_mode(value: RunMode | str | None, owner: str) -> RunMode | None:
    if value is None:
        return None
    try:
        return RunMode(value)
    except ValueError:
        modes = ", ".join(m.value for m in RunMode)
        msg = f"unknown run mode {value!r} for {owner}.submit(); expected one of {modes}"
        raise ConfigError(msg) from None


def _attach_init_tasks(task: Task, init_tasks: Sequence[Config]) -> None:
    owner = type(task).__qualname__
    if isinstance(init_tasks, Config) or not isinstance(init_tasks, Sequence):
        msg = f"init_tasks of {owner}.submit() must be a list (got {init_tasks!r})"
        raise ConfigError(msg)
    tasks = list(init_tasks)
    for init in tasks:
        if not isinstance(init, LightweightTask):
            msg = (
                f"init_tasks of {owner}.submit() must be LightweightTask configurations (their "
                f"execute() runs before the task's); got {init!r} that is a {type(init)}"
            )
            raise ConfigError(msg)
    d = task.__dict__
    if d["_tb_sealed"]:
        if tasks and tasks != d.get("_tb_init_tasks", []):
            msg = (
                f"{owner} was already submitted: init tasks make another job, give them at its "
                "first submit() or build a new task"
            )
            raise SealedError(msg)
        return
    for init in tasks:
        init.__tb_seal__()
    if tasks:
        d["_tb_init_tasks"] = tasks


def _marker(task: Task) -> Callable[[Any], Any]:
    owner = type(task).__qualname__

    def dep(config: Any) -> Any:
        """Mark ``config`` as an output of the job of the task being submitted."""
        if config is task:
            return config  # a submitted task already carries its job
        if not isinstance(config, Config) or isinstance(config, Task):
            msg = (
                f"dep() in {owner}.task_outputs marks a configuration as an output of the job; "
                f"got {config!r} that is a {type(config)}: pass a Config built there (a task "
                "other than this one cannot be an output)"
            )
            raise ConfigError(msg)
        d = config.__dict__
        if d.get("_tb_output_of") is task:
            return config
        if d["_tb_sealed"]:
            msg = (
                f"dep() in {owner}.task_outputs got {config!r}, which is sealed (used by a "
                "submitted task): marking it would change its identifier; build a new one"
            )
            raise SealedError(msg)
        d["_tb_output_of"] = task
        d["_tb_id"] = None
        return config

    return dep
