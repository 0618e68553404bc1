"""Finished jobs as store records: runs of ``kind="job"`` keyed by their identifier.

Examples
--------
>>> from trialbook.tasks.record import job_runs
>>> job_runs([], range(0), lambda cls: None)
([], [])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from trialbook.storage.records import ErrorInfo, MetricChunk, RunRecord
from trialbook.tasks.jobs import JobState, json_view
from trialbook.tracking import Run

if TYPE_CHECKING:
    from trialbook.tasks.scheduler import Job

__all__ = ["job_runs"]


def job_runs(
    jobs: Sequence[Job], run_ids: range, code: Callable[[type], str | None]
) -> tuple[list[RunRecord], list[MetricChunk]]:
    """Records and metric chunks of finished ``jobs`` under the run ids ``run_ids``."""
    records: list[RunRecord] = []
    chunks: list[MetricChunk] = []
    for job, run_id in zip(jobs, run_ids, strict=True):
        run = _run(job, run_id)
        run.code = code(type(job.task))
        records.append(run.to_record())
        chunks.extend(run.pending_metrics())
    return records, chunks


def _run(job: Job, run_id: int) -> Run:
    params: dict[str, Any] = {s.name: json_view(v) for s, v in job.task.__tb_values__()}
    run = Run(run_id, params=params, kind="job", tags=job.task.tags())
    run.key = job.identifier
    outcome = job.outcome
    if outcome is not None:
        dict.update(run.fields, outcome.fields)
        for chunk in outcome.metrics:
            chunk.run_id = run_id
        run.absorb_metrics(outcome.metrics)
        run.started, run.finished, run.error = outcome.started, outcome.finished, outcome.error
    else:
        run.error = ErrorInfo("JobNotRunError", job.reason or str(job.state))
    dict.update(run.fields, {"task": job.task_id, "jobpath": str(job.path)})
    run.status = "done" if job.state is JobState.DONE else "failed"
    return run
