"""Copying runs: an experiment into another store, or runs into another experiment.

A copy takes a run as it is in memory (stored and not yet stored metric points alike): its
params, fields (and the records of its sequences), status, timings, error, tags, seed, result
and metric points. Code and environment snapshots are content-addressed per store, so their
texts are copied too.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from trialbook.errors import ConfigError
from trialbook.storage.records import MetricChunk
from trialbook.tracking import Run, paused_gc, sequence_metric

if TYPE_CHECKING:
    from trialbook.runs import RunsExperiment
    from trialbook.storage.base import Store
    from trialbook.storage.records import ExperimentInfo

__all__ = ["copy_experiment", "copy_run", "target_store"]


def target_store(target: Any) -> Store:
    """The open store of ``target``: a session's store, or ``target`` itself.

    Raises
    ------
    ConfigError
        For a URL or path (open it first, so that it is closed), or anything else.
    """
    from trialbook.storage.base import Store

    if isinstance(target, str | os.PathLike):
        msg = (
            f"copy_to takes a session or an open store, not a location ({target!r}): open "
            "it first, so that it is closed afterwards: with trialbook.create_session(url) as "
            "target: experiment.copy_to(target)"
        )
        raise ConfigError(msg)
    store = getattr(target, "store", target)
    if not isinstance(store, Store):
        msg = f"copy_to takes a session or an open store (got {target!r} that is a {type(target)})"
        raise ConfigError(msg)
    return store


def copy_experiment(
    experiment: RunsExperiment, store: Store, name: str, *, replace: bool
) -> ExperimentInfo:
    """Write a copy of ``experiment`` into ``store`` under ``name``, in one transaction."""
    from trialbook.runs_meta import experiment_fields_tree, new_experiment_id

    fields = experiment_fields_tree(experiment.fields)
    allow_pickle = experiment.store.allow_pickle
    records, chunks = [], []
    with paused_gc(len(experiment.runs)):
        for run in experiment.runs.values():
            record = run.to_record(allow_pickle=allow_pickle)
            record.version, record.writer = None, None
            record.code = _copy_snapshot(experiment.store, store, "code", record.code)
            record.environment = _copy_snapshot(
                experiment.store, store, "environment", record.environment
            )
            records.append(record)
            chunks.extend(_all_points(run))
    meta = {"id": new_experiment_id(), **({"fields": fields} if fields else {})}
    return store.create_experiment(name, meta=meta, replace=replace, runs=records, metrics=chunks)


def copy_run(source: Run, target: Run) -> None:
    """Give ``target`` (a new run of another experiment) what ``source`` holds."""
    target.status = source.status
    target.error = source.error
    target.started, target.finished = source.started, source.finished
    target.tags = dict(source.tags)
    target.seed, target.result = source.seed, source.result
    target.state.update(source.state)
    sequences = source.sequence_fields()
    target.fields.update(
        {name: sequences[name].copy() if name in sequences else value
         for name, value in source.fields.items()}
    )  # fmt: skip
    target.absorb_metrics(_metric_points(source))
    target.touch()


def _all_points(run: Run) -> list[MetricChunk]:
    """Every point of the run's metrics and sequences, one chunk per series."""
    chunks = _metric_points(run)
    for field, seq in run.sequence_fields().items():
        for column in seq.columns:
            steps, values, times = seq.points(column)
            chunks.append(_chunk(run.id, sequence_metric(field, column), steps, values, times))
    return [chunk for chunk in chunks if chunk.count]


def _metric_points(run: Run) -> list[MetricChunk]:
    chunks = []
    for name in run.metric_names():
        steps, values, times = run._points(name)
        chunks.append(_chunk(run.id, name, steps, values, times))
    return chunks


def _chunk(run_id: int, name: str, steps: Any, values: Any, times: Any) -> MetricChunk:
    return MetricChunk(
        run_id, name, len(values), steps.astype("<i8").tobytes(),
        values.astype("<f8").tobytes(), times.astype("<f8").tobytes(), 0,
    )  # fmt: skip


def _copy_snapshot(source: Store, target: Store, kind: str, digest: str | None) -> str | None:
    if digest is None or source is target:
        return digest
    return target.put_snapshot(kind, source.get_snapshot(digest))
