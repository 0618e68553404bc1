"""Run modes: how an experiment treats the jobs submitted in its block.

``normal`` runs them (:mod:`trialbook.tasks.scheduler`); ``dry-run`` and ``generate`` run
nothing and tell, for each job, what would happen: the functions here give the entry of the
experiment's ``plan`` for one job (``xp.plan``, printed by ``trialbook run-experiment``).

Examples
--------
>>> from trialbook.tasks.modes import RunMode
>>> [mode.value for mode in RunMode]
['normal', 'dry-run', 'generate']
"""

from __future__ import annotations

import enum
import logging
import pathlib
from typing import TYPE_CHECKING, Any

from trialbook.tasks.jobdir import read_status
from trialbook.tasks.jobs import JobState

if TYPE_CHECKING:
    from trialbook.tasks.scheduler import Job

__all__ = ["RunMode", "dry_run", "generated"]

logger = logging.getLogger(__name__)


class RunMode(enum.StrEnum):
    """How an experiment treats submitted jobs.

    ``normal`` runs them; ``dry-run`` lists each job with its status (done, failed, would run)
    and dependencies, running nothing; ``generate`` writes each job's directory with
    ``task.pkl`` and a ``run.py`` script, running nothing.

    Examples
    --------
    >>> RunMode("dry-run")
    <RunMode.DRY_RUN: 'dry-run'>
    """

    NORMAL = "normal"
    DRY_RUN = "dry-run"
    GENERATE = "generate"
    GENERATE_ONLY = "generate"  # experimaestro's name of GENERATE: its plans run unchanged


def dry_run(job: Job) -> dict[str, Any]:
    """Set the job's state from its directory (done, failed, or would run) and return its plan
    entry; a failed job is reported, and then stays ``would run``: a dry run does not fail."""
    status = read_status(job.path)
    state = status["status"] if status and status["status"] in ("done", "failed") else None
    job.state = JobState(state) if state else JobState.DRY
    entry = {
        "job": job.name,
        "name": job.label,
        "status": str(job.state),
        "depends": [d.name for d in job.deps],
        "depends_names": [d.label for d in job.deps],
    }
    logger.info("dry run: %s [%s]", job.label, job.state)
    if job.state is JobState.FAILED:
        job.state = JobState.DRY  # a dry run reports, it does not fail
    return entry


def generated(job: Job, script: pathlib.Path) -> dict[str, Any]:
    """Mark the job generated (its ``run.py`` is ``script``) and return its plan entry."""
    job.state = JobState.GENERATED
    return {"job": job.name, "name": job.label, "status": "generated", "script": str(script)}
