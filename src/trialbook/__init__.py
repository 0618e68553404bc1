"""trialbook: define, run, track, persist, reload and compare experiments.

Examples
--------
>>> import trialbook
>>> session = trialbook.create_session("sqlite:///:memory:")
>>> experiment = session.create_experiment("hello")
>>> _ = experiment.add_runs(x=[1, 2])
>>> _ = experiment.execute(lambda run: run.fields.update(y=run.params.x * 10))
>>> [run.fields.y for run in experiment.runs.values()]
[10, 20]
"""

from trialbook.errors import TrialbookError, TrialbookWarning
from trialbook.runs import Runs, RunsExperiment
from trialbook.session import Session, create_session
from trialbook.storage import open_store
from trialbook.tracking import Run, current_run

__version__ = "0.1.0"

__all__ = [
    # runs and chained steps
    "Run",
    "Runs",
    "RunsExperiment",
    "Session",
    "create_session",
    "current_run",
    # stores
    "open_store",
    # errors
    "TrialbookError",
    "TrialbookWarning",
]
