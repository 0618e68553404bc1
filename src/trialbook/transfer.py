"""Copying experiments between stores (``trialbook copy``): a laptop's ``.trialbook/`` to the
team's PostgreSQL, a server store into a local one, and back.

An experiment is copied as it is stored, through the :class:`~trialbook.storage.base.Store`
protocol, so any backend to any backend and any kind of experiment (runs, lazy-graph trials,
task jobs): its metadata, runs (ids, params, fields and their large values, status, timings,
errors, tags, results), every metric point, artifacts, and the code and environment snapshots
its runs refer to. Not copied: the hashes of the purity check of lazy-graph steps (the target
starts checking afresh) and the plain files a directory store writes beside its database.

Copies are identified by ``id_experiment`` (kept in the experiment's metadata, which the copy
keeps): copying again never makes a second experiment. When the target already holds the
experiment of that id, its content (everything above, but not run versions nor the internal
numeric id) is compared with the source's: equal, nothing is written (``unchanged``);
different, the target's is replaced by the source's in one transaction (``replaced``). So
running the same copy twice leaves the same target.

Runs, metrics and snapshots are written in one transaction; artifacts (lazy-graph persisted
values) in a second one: a copy interrupted between the two is repaired by copying again.

Examples
--------
>>> import trialbook
>>> laptop, team = (trialbook.create_session("sqlite:///:memory:") for _ in "ab")
>>> experiment = laptop.create_experiment("sweep")
>>> _ = experiment.add_runs(x=[1, 2])
>>> _ = experiment.execute(lambda run: run.log_metric("loss", run.params.x / 10)).persist()
>>> [str(t) for t in copy_experiments(laptop.store, team.store)]
["copied 'sweep' (2 runs)"]
>>> [str(t) for t in copy_experiments(laptop.store, team.store)]
["unchanged 'sweep' (2 runs)"]
>>> team.load_experiment(id_experiment=experiment.id_experiment).runs[2].params.x
2
>>> laptop.close(); team.close()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from trialbook.codecs import Encoded
from trialbook.errors import ExperimentExistsError, ExperimentNotFoundError
from trialbook.runs_meta import experiment_id
from trialbook.storage.base import Store
from trialbook.storage.records import ExperimentInfo, MetricChunk, MetricSeries, RunRecord

__all__ = ["Transfer", "copy_experiments"]


@dataclass(slots=True)
class Transfer:
    """What :func:`copy_experiments` did with one experiment: ``outcome`` is ``copied`` (new
    in the target), ``replaced`` (the target's differed), ``unchanged`` (equal already) or
    ``skipped`` (created by a process that has not persisted it: nothing to copy yet).

    Examples
    --------
    >>> print(Transfer("sweep", "1b4e28ba", "copied", 3))
    copied 'sweep' (3 runs)
    """

    name: str
    id_experiment: str
    outcome: str
    runs: int

    def __str__(self) -> str:
        return f"{self.outcome} {self.name!r} ({self.runs} run{'s' * (self.runs != 1)})"


@dataclass(slots=True)
class _Content:
    """Everything of one experiment that a copy writes."""

    meta: dict[str, Any]
    runs: list[RunRecord]
    metrics: list[MetricChunk]
    artifacts: list[tuple[int, str, Encoded]]
    snapshots: dict[str, str] = field(default_factory=dict)
    """digest -> kind, of the code and environment snapshots the runs refer to."""


def copy_experiments(
    source: Store, target: Store, experiments: Sequence[str] = ()
) -> list[Transfer]:
    """Copy ``experiments`` (names or ``id_experiment`` values; default: all) of ``source``
    into ``target``; see the module documentation. Stops at the first experiment that cannot
    be copied, having copied the ones before it.

    Raises
    ------
    ExperimentNotFoundError
        If one of ``experiments`` is not in ``source`` (nothing copied).
    ExperimentExistsError
        If the target has another experiment of the same name (a different ``id_experiment``),
        or this one under another name: rename or delete one of them.
    """
    selected = _select(source, experiments)
    return [_copy(source, target, info) for info in selected]


def _select(source: Store, wanted: Sequence[str]) -> list[ExperimentInfo]:
    infos = source.list_experiments()
    if not wanted:
        return infos
    by_key = {**{experiment_id(i): i for i in infos}, **{i.name: i for i in infos}}
    missing = [w for w in wanted if w not in by_key]
    if missing:
        raise ExperimentNotFoundError(missing[0], available=[i.name for i in infos])
    chosen = {by_key[w].id: by_key[w] for w in wanted}
    return sorted(chosen.values(), key=lambda i: i.name)


def _copy(source: Store, target: Store, info: ExperimentInfo) -> Transfer:
    key = experiment_id(info)
    if info.meta.get("claim") and not info.runs:
        return Transfer(info.name, key, "skipped", 0)
    existing = _find(target, info, key)
    content = _read(source, info)
    if existing is not None and _digest(content) == _digest(_read(target, existing)):
        return Transfer(info.name, key, "unchanged", len(content.runs))
    for digest, kind in content.snapshots.items():
        target.put_snapshot(kind, source.get_snapshot(digest))
    created = target.create_experiment(
        info.name,
        meta=content.meta,
        replace=existing is not None,
        replace_id=existing.id if existing is not None else None,
        runs=content.runs,
        metrics=content.metrics,
    )
    if content.artifacts:
        target.write_runs(created.id, [], artifacts=content.artifacts)
    outcome = "copied" if existing is None else "replaced"
    return Transfer(info.name, key, outcome, len(content.runs))


def _find(target: Store, info: ExperimentInfo, key: str) -> ExperimentInfo | None:
    """The target's experiment of id ``key`` (``None``: none); an error when the name is taken
    by another experiment or the experiment is there under another name."""
    named = target.find_experiment(info.name)
    if named is not None and experiment_id(named) != key:
        msg = (
            f"the target already has another experiment named {info.name!r} (id_experiment "
            f"{experiment_id(named)!r}, not {key!r}); nothing of it was copied: rename or "
            "delete one of the two"
        )
        raise ExperimentExistsError(info.name, msg)
    if named is not None:
        return named
    for other in target.list_experiments():
        if experiment_id(other) == key:
            msg = (
                f"experiment {info.name!r} (id_experiment {key!r}) is in the target under the "
                f"name {other.name!r}; nothing of it was copied: give both the same name"
            )
            raise ExperimentExistsError(info.name, msg)
    return None


def _read(store: Store, info: ExperimentInfo) -> _Content:
    # a claim names a process of the source's host: meaningless (and in the way) elsewhere
    meta = {k: v for k, v in info.meta.items() if not (k == "claim" and v)}
    meta["id"] = experiment_id(info)  # kept by the copy, also when derived (older experiments)
    runs = store.read_runs(info.id)
    content = _Content(meta, runs, [], [])
    ids = [run.run_id for run in runs]
    for run in runs:
        run.version, run.writer = None, None
        for digest, kind in ((run.code, "code"), (run.environment, "environment")):
            if digest is not None:
                content.snapshots[digest] = kind
        for name in store.list_artifacts(info.id, run.run_id):
            value = store.read_artifact(info.id, run.run_id, name)
            if value is not None:
                content.artifacts.append((run.run_id, name, value))
    for name in sorted(store.metric_names(info.id)):
        for run_id, series in sorted(store.read_metrics(info.id, name, ids).items()):
            content.metrics.append(_chunk(run_id, name, series))
    return content


def _chunk(run_id: int, name: str, series: MetricSeries) -> MetricChunk:
    """All points of one metric of one run as one chunk (at position 0)."""
    steps = series.steps.astype("<i8").tobytes()
    values, times = series.values.astype("<f8").tobytes(), series.times.astype("<f8").tobytes()
    return MetricChunk(run_id, name, len(series), steps, values, times, 0)


def _digest(content: _Content) -> str:
    """A fingerprint of what a copy writes: equal in two stores when they hold the same."""
    from trialbook.identity import content_address, fingerprint
    from trialbook.storage.bundle import columns

    def plain(value: Any) -> Any:
        if isinstance(value, Encoded):
            return ("encoded", value.codec, content_address(value.data))
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    def run_key(run: RunRecord) -> list[Any]:
        error = run.error and [run.error.type, run.error.message, run.error.traceback]
        values = [run.params, run.fields, run.tags, run.metrics, run.result, error]
        return [list(columns(run).values()), *map(plain, values)]

    runs = [run_key(run) for run in sorted(content.runs, key=lambda r: r.run_id)]
    metrics = [
        (c.run_id, c.name, content_address(c.steps + c.values + c.times)) for c in content.metrics
    ]
    artifacts = sorted((run_id, name, plain(value)) for run_id, name, value in content.artifacts)
    return fingerprint([plain(content.meta), runs, metrics, artifacts])
