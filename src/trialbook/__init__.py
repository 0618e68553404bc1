"""trialbook: define, run, track, persist, reload and compare experiments.

Three ways of working share one model and one store: runs and chained steps
(:func:`create_session`), parameters and a lazy step graph (:class:`Experiment`), and typed task
configurations and plans. Heavy parts load on first use, so ``import trialbook`` stays fast.

Examples
--------
>>> import trialbook
>>> session = trialbook.create_session("sqlite:///:memory:")
>>> experiment = session.create_experiment("hello")
>>> _ = experiment.add_runs(x=[1, 2])
>>> _ = experiment.execute(lambda run: run.fields.update(y=run.params.x * 10))
>>> [run.fields.y for run in experiment.runs.values()]
[10, 20]
>>> session.close()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from trialbook.errors import TrialbookError, TrialbookWarning
from trialbook.runs import Runs, RunsExperiment
from trialbook.sequence import Sequence
from trialbook.session import Session, create_experiment, create_session
from trialbook.storage import open_store
from trialbook.tracking import Run, current_run

if TYPE_CHECKING:  # type checkers see the lazy names with their real types
    # models
    # distributed execution
    from trialbook.execution.dask import DaskLauncher
    from trialbook.execution.slurm import SlurmLauncher
    from trialbook.models.uri import load_model

    # typed tasks and plans (with experimaestro's configuration names)
    from trialbook.tasks.cachedir import cache
    from trialbook.tasks.config import (
        Config,
        Constant,
        Meta,
        Option,
        Param,
        Task,
        field,
        tag,
        tagspath,
    )
    from trialbook.tasks.copying import copyconfig
    from trialbook.tasks.current import get_experiment
    from trialbook.tasks.deprecation import deprecate
    from trialbook.tasks.generators import PathGenerator
    from trialbook.tasks.launchers import LocalLauncher
    from trialbook.tasks.meta import setmeta
    from trialbook.tasks.modes import RunMode
    from trialbook.tasks.options import arguments, forwardoption
    from trialbook.tasks.plans import ConfigurationBase, ExperimentHelper, configuration
    from trialbook.tasks.reporting import progress
    from trialbook.tasks.submission import LightweightTask
    from trialbook.tasks.workspace import experiment

__version__ = "0.1.0"

# Public names loaded on first access (their modules import dask, yaml, ...): name -> module.
_LAZY: dict[str, str] = {
    # lazy step graph
    "Experiment": "trialbook.graph",
    "Parameter": "trialbook.graph",
    # typed tasks and plans
    "Config": "trialbook.tasks.config",
    "Task": "trialbook.tasks.config",
    "Param": "trialbook.tasks.config",
    "Meta": "trialbook.tasks.config",
    "Constant": "trialbook.tasks.config",
    "field": "trialbook.tasks.config",
    "tag": "trialbook.tasks.config",
    "tagspath": "trialbook.tasks.config",
    "experiment": "trialbook.tasks.workspace",
    "RunMode": "trialbook.tasks.modes",
    "LocalLauncher": "trialbook.tasks.launchers",
    "ConfigurationBase": "trialbook.tasks.plans",
    "configuration": "trialbook.tasks.plans",
    "ExperimentHelper": "trialbook.tasks.plans",
    "forwardoption": "trialbook.tasks.options",
    "arguments": "trialbook.tasks.options",
    # experimaestro's configuration names
    "Option": "trialbook.tasks.config",
    "setmeta": "trialbook.tasks.meta",
    "cache": "trialbook.tasks.cachedir",
    "copyconfig": "trialbook.tasks.copying",
    "deprecate": "trialbook.tasks.deprecation",
    "LightweightTask": "trialbook.tasks.submission",
    "PathGenerator": "trialbook.tasks.generators",
    "progress": "trialbook.tasks.reporting",
    "get_experiment": "trialbook.tasks.current",
    # models
    "load_model": "trialbook.models.uri",
    # distributed execution
    "DaskLauncher": "trialbook.execution.dask",
    "SlurmLauncher": "trialbook.execution.slurm",
}

__all__ = [  # noqa: RUF022 - grouped by way of working, not sorted
    # runs and chained steps
    "Run",
    "Runs",
    "RunsExperiment",
    "Sequence",
    "Session",
    "create_experiment",
    "create_session",
    "current_run",
    "load_model",
    # lazy step graph
    "Experiment",
    "Parameter",
    # typed tasks and plans
    "Config",
    "Task",
    "Param",
    "Meta",
    "Constant",
    "field",
    "tag",
    "tagspath",
    "experiment",
    "RunMode",
    "LocalLauncher",
    "ConfigurationBase",
    "configuration",
    "ExperimentHelper",
    "forwardoption",
    "arguments",
    # experimaestro's configuration names
    "Option",
    "setmeta",
    "cache",
    "copyconfig",
    "deprecate",
    "LightweightTask",
    "PathGenerator",
    "progress",
    "get_experiment",
    # distributed execution
    "DaskLauncher",
    "SlurmLauncher",
    # stores
    "open_store",
    # errors
    "TrialbookError",
    "TrialbookWarning",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'trialbook' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public API only (not the helpers this module imports for itself)."""
    return sorted({*__all__, "__version__"})
