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
from trialbook.tasks.deprecation import deprecate
from trialbook.tasks.launchers import Connector, Launcher, LocalConnector, LocalLauncher
from trialbook.tasks.meta import setmeta
from trialbook.tasks.modes import RunMode
from trialbook.tasks.tokens import CounterToken, TokenDependency
from trialbook.tasks.workspace import Service, ServiceListener, WebService, experiment

__all__ = [
    "Config",
    "Connector",
    "Constant",
    "CounterToken",
    "Launcher",
    "LocalConnector",
    "LocalLauncher",
    "Meta",
    "Option",
    "Param",
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
    "identifier",
    "setmeta",
    "tag",
    "tagspath",
]
