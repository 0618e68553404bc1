"""One rule for every live count the UI shows (issue 15): the header counts of an experiment,
its Live list and the experiments list read :func:`live_counts`, so they never disagree
(the header once read "running 0" beside "+ 2 jobs in progress").

The rule: the runs of the experiment by status (a lost run counts as failed, as everywhere),
plus the task jobs of its workspace that are not recorded as runs yet, by the status of
their job directory (``running`` -> running, ``waiting`` -> pending, ``done`` -> done,
``failed`` and ``interrupted`` -> failed). A job in progress is "not recorded" unless a run
with its identifier as ``key`` is running or pending. A task job is recorded as a run of kind
``job`` when it finishes (:mod:`trialbook.tasks.record`): the finished jobs not recorded yet
are the job directories finished with a status beyond the experiment's job runs of that
status (counted, not matched one by one: matching thousands of keys on every poll took
seconds).

Examples
--------
>>> from trialbook.storage import open_store
>>> from trialbook.storage.records import RunRecord
>>> store = open_store("sqlite:///:memory:")
>>> exp = store.create_experiment("e")
>>> store.write_runs(exp.id, [RunRecord(1, status="running"), RunRecord(2, status="done")])
>>> live_counts(store, store.find_experiment("e")).counts
{'pending': 0, 'running': 1, 'done': 1, 'failed': 0}
>>> store.close()
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

from trialbook.storage.query import query_runs
from trialbook.storage.records import ExperimentInfo
from trialbook.web import jobs

__all__ = ["STATUSES", "LiveCounts", "job_name", "live_counts"]

STATUSES = ("pending", "running", "done", "failed")
JOB_STATUS = {"running": "running", "waiting": "pending", "done": "done", "failed": "failed",
              "interrupted": "failed"}  # fmt: skip
"""The run status a job directory's status counts as."""
_IN_PROGRESS = ("running", "waiting")


@dataclasses.dataclass
class LiveCounts:
    """What :func:`live_counts` found.

    Examples
    --------
    >>> LiveCounts({"running": 2}, {"running": 2}, []).counts["running"]
    2
    """

    counts: dict[str, int]
    """By status: the runs plus the jobs not recorded yet (the one rule)."""
    unrecorded: dict[str, int]
    """By status: how many of ``counts`` are jobs not recorded yet."""
    jobs: list[dict[str, Any]]
    """The job directories in progress not recorded yet (running and waiting), each with its
    display ``name``."""


def job_name(job: dict[str, Any]) -> str:
    """A job's display name: its task and tags, else its task and short identifier, as every
    list of jobs names it (:func:`trialbook.tasks.jobs.job_label`).

    Examples
    --------
    >>> job_name({"task": "Train", "tags": {"seed": 2, "lr": 0.1}, "identifier": "3f2a9c1e77d0a1"})
    'Train lr=0.1 seed=2'
    >>> job_name({"task": "Train", "tags": {}, "identifier": "3f2a9c1e77d0a1b2"})
    'Train 3f2a9c1e77d0'
    """
    from trialbook.tasks.jobs import job_label

    task = job.get("task") if isinstance(job.get("task"), str) else "job"
    tags = job.get("tags") if isinstance(job.get("tags"), dict) else {}
    ident = job.get("identifier") if isinstance(job.get("identifier"), str) else ""
    return job_label(str(task), tags, str(ident))


def live_counts(store: Any, info: ExperimentInfo, statuses: Sequence[str] = STATUSES) -> LiveCounts:
    """Counts of the experiment ``info`` by status (only ``statuses``), by the rule of the
    module documentation: one count per status, plus, for a task experiment (its job
    directories, at most :data:`trialbook.web.jobs.MAX_JOB_DIRS`), one query for the jobs in
    progress and one count per status of its finished jobs.

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> store = open_store("sqlite:///:memory:")
    >>> info = store.create_experiment("e")
    >>> live_counts(store, info, ["running"]).counts
    {'running': 0}
    >>> store.close()
    """
    count = functools.partial(_count, store, info)
    counts = {s: count(f"status == {s!r}") for s in statuses}
    unrecorded = dict.fromkeys(statuses, 0)
    dirs = [d for d in jobs.job_dirs(info) if d["status"] in JOB_STATUS]
    in_progress = _unrecorded_in_progress(store, info, dirs)
    for job in in_progress:
        status = JOB_STATUS[job["status"]]
        if status in counts:
            counts[status] += 1
            unrecorded[status] += 1
    finished = collections.Counter(
        JOB_STATUS[d["status"]] for d in dirs if d["status"] not in _IN_PROGRESS
    )
    for status, number in finished.items():
        if status in counts:
            missing = max(0, number - count(f'kind == "job" and status == {status!r}'))
            counts[status] += missing
            unrecorded[status] += missing
    return LiveCounts(counts, unrecorded, [{**j, "name": job_name(j)} for j in in_progress])


def _count(store: Any, info: ExperimentInfo, where: str) -> int:
    return int(query_runs(store, info.id, where=where, limit=0, meta=info.meta)[0])


def _unrecorded_in_progress(
    store: Any, info: ExperimentInfo, dirs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The running and waiting job directories whose run is not recorded as running or
    pending (those are in the counts already): one query, for these few identifiers."""
    active = [d for d in dirs if d["status"] in _IN_PROGRESS]
    idents = [d["identifier"] for d in active if isinstance(d.get("identifier"), str)]
    if not idents:
        return active
    where = f"key in {idents!r} and status in ['running', 'pending']"
    _, runs = query_runs(store, info.id, where=where, limit=len(idents), meta=info.meta)
    recorded = {run.key for run in runs}
    return [d for d in active if d.get("identifier") not in recorded]
