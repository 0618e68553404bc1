"""Typed task configurations and plans: ``Config`` / ``Task``, job identifiers, the scheduler.

See ``docs/tasks.md``. Importing this package does not import yaml or click (plans and the
command-line glue load them on use).

Examples
--------
>>> from trialbook.tasks import Config, Param, tagspath, tag
>>> class Data(Config):
...     n_tokens: Param[int] = 100
>>> tagspath(Data.C(n_tokens=tag(50)))
'n_tokens=50'
"""

from __future__ import annotations

from trialbook.tasks.cachedir import cache
from trialbook.tasks.config import (
    Config,
    Constant,
    Meta,
    Option,
    Param,
    Task,
    field,
    identifier,
    tag,
    tagspath,
)
from trialbook.tasks.copying import copyconfig
from trialbook.tasks.current import get_experiment
from trialbook.tasks.deprecation import deprecate
from trialbook.tasks.generators import PathGenerator
from trialbook.tasks.launchers import Connector, Launcher, LocalConnector, LocalLauncher
from trialbook.tasks.meta import setmeta
from trialbook.tasks.modes import RunMode
from trialbook.tasks.reporting import progress
from trialbook.tasks.submission import DependentMarker, LightweightTask
from trialbook.tasks.tokens import CounterToken, TokenDependency
from trialbook.tasks.workspace import Service, ServiceListener, WebService, experiment

__all__ = [
    "Config",
    "Connector",
    "Constant",
    "CounterToken",
    "DependentMarker",
    "Launcher",
    "LightweightTask",
    "LocalConnector",
    "LocalLauncher",
    "Meta",
    "Option",
    "Param",
    "PathGenerator",
    "RunMode",
    "Service",
    "ServiceListener",
    "Task",
    "TokenDependency",
    "WebService",
    "cache",
    "copyconfig",
    "deprecate",
    "experiment",
    "field",
    "get_experiment",
    "identifier",
    "progress",
    "setmeta",
    "tag",
    "tagspath",
]
