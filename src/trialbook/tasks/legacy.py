"""Task experiments recorded by earlier versions in ``<workdir>/.trialbook``: moved once.

Earlier versions recorded a task experiment in a store inside its workdir. Task experiments
now record into the default store of the other two ways of working (``$TRIALBOOK_STORE``, else
``./.trialbook``), so that ``trialbook ls`` / ``runs`` / ``ui`` in the project folder show them.
The first task experiment of a workdir that opens the default store moves the task experiments
of the workdir's old store into it (runs with their fields, metrics, artifacts and code), and
says so. The old store is then kept as ``<workdir>/.trialbook.moved`` (nothing is deleted); if
it also holds experiments that are not task experiments, those stay in it, in place.

Examples
--------
>>> import tempfile
>>> from trialbook.storage import open_store
>>> from trialbook.tasks.legacy import move_legacy_store
>>> target = open_store(tempfile.mkdtemp() + "/store")
>>> move_legacy_store(tempfile.mkdtemp(), target) is None   # no old store: nothing to do
True
>>> target.close()
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pathlib
from collections.abc import Iterator
from typing import Any

from trialbook.errors import ConfigError, NotFoundError

__all__ = ["LEGACY_NAME", "legacy_location", "move_legacy_store"]

logger = logging.getLogger(__name__)

LEGACY_NAME = ".trialbook"
"""The store directory inside a workdir that earlier versions recorded task experiments in."""


def legacy_location(workdir: str | os.PathLike[str]) -> pathlib.Path:
    """``<workdir>/.trialbook``: where earlier versions recorded the workdir's task experiments."""
    return pathlib.Path(workdir).absolute() / LEGACY_NAME


def move_legacy_store(workdir: str | os.PathLike[str], target: Any) -> str | None:
    """Move the task experiments of ``<workdir>/.trialbook`` into the open store ``target``.

    Returns what was done (also logged as a warning), or ``None`` when there was nothing to
    move: no old store, or ``target`` is that store. Safe when several processes start at
    once: one moves, the others find nothing left.

    Raises
    ------
    ConfigError
        When ``target`` has an experiment of the same name that is not a task experiment
        (nothing is moved; the message says what to do).
    """
    legacy = legacy_location(workdir)
    if not (legacy / "trialbook.db").is_file() or _same_place(legacy, target):
        return None
    with _locked(legacy) as still_there:
        if not still_there:
            return None
        return _move(legacy, target)


def _same_place(legacy: pathlib.Path, target: Any) -> bool:
    directory = getattr(target, "directory", None)
    if directory is None:
        return False
    try:
        return pathlib.Path(directory).resolve() == legacy.resolve()
    except OSError:
        return False


@contextlib.contextmanager
def _locked(legacy: pathlib.Path) -> Iterator[bool]:
    """Hold the workdir's move lock; say whether the old store is still there."""
    fd = os.open(legacy.parent / ".trialbook.move.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield (legacy / "trialbook.db").is_file()
    finally:
        os.close(fd)


def _move(legacy: pathlib.Path, target: Any) -> str | None:
    from trialbook.storage import open_store

    old = open_store(legacy)
    try:
        infos = old.list_experiments()
        tasks = [i for i in infos if isinstance(i.meta, dict) and i.meta.get("kind") == "tasks"]
        for info in tasks:
            _check_free(info.name, target, legacy)
        jobs = sum(_copy_experiment(old, info, target) for info in tasks)
        keep_store = len(tasks) < len(infos)
        if keep_store:  # other experiments stay where they are; the moved ones leave
            for info in tasks:
                old.delete_experiment(info.name)
    finally:
        old.close()
    if not tasks:
        return None
    names = ", ".join(repr(i.name) for i in tasks)
    note = f"moved {len(tasks)} task experiment(s) ({names}, {jobs} job run(s)) from {legacy}"
    note += f" into the store {target.url}, where task experiments are recorded now"
    if not keep_store:
        kept = _free_name(legacy.with_name(LEGACY_NAME + ".moved"))
        legacy.rename(kept)
        note += f"; the old store is kept as {kept} (delete it when you like)"
    logger.warning(note)
    return note


def _check_free(name: str, target: Any, legacy: pathlib.Path) -> None:
    found = target.find_experiment(name)
    if found is not None and found.meta.get("kind") != "tasks":
        msg = (
            f"cannot move task experiment {name!r} from {legacy} into the store {target.url}: "
            f"that store has another experiment named {name!r}. Rename one of them, or keep "
            f"recording there with experiment(..., store={str(legacy)!r}) or --store {legacy}"
        )
        raise ConfigError(msg)


def _copy_experiment(old: Any, info: Any, target: Any) -> int:
    """Append the runs of ``info`` (in ``old``) to the experiment of that name in ``target``."""
    found = target.find_experiment(info.name)
    if found is None:
        found = target.create_experiment(info.name, meta=dict(info.meta))
    runs = old.read_runs(info.id)
    if not runs:
        return 0
    ids = target.allocate_run_ids(found.id, len(runs))
    new_id = dict(zip((r.run_id for r in runs), ids, strict=True))
    chunks = _metric_chunks(old, info.id, new_id)
    artifacts = [
        (new_id[r.run_id], name, value)
        for r in runs
        for name in old.list_artifacts(info.id, r.run_id)
        if (value := old.read_artifact(info.id, r.run_id, name)) is not None
    ]
    for run in runs:
        run.run_id = new_id[run.run_id]
        run.version = None  # a new run of the target store
        run.code = _copy_snapshot(old, target, "code", run.code)
        run.environment = _copy_snapshot(old, target, "environment", run.environment)
    target.write_runs(found.id, runs, chunks, artifacts=artifacts)
    return len(runs)


def _metric_chunks(old: Any, exp_id: int, new_id: dict[int, int]) -> list[Any]:
    import numpy as np

    from trialbook.storage.records import MetricChunk

    chunks = []
    for name in old.metric_names(exp_id):
        for run_id, series in old.read_metrics(exp_id, name, list(new_id)).items():
            chunks.append(MetricChunk(
                new_id[run_id], name, len(series),
                np.asarray(series.steps, dtype="<i8").tobytes(),
                np.asarray(series.values, dtype="<f8").tobytes(),
                np.asarray(series.times, dtype="<f8").tobytes(), 0,
            ))  # fmt: skip
    return chunks


def _copy_snapshot(old: Any, target: Any, kind: str, digest: str | None) -> str | None:
    if not digest:
        return digest
    try:
        return str(target.put_snapshot(kind, old.get_snapshot(digest)))
    except NotFoundError:
        return digest


def _free_name(path: pathlib.Path) -> pathlib.Path:
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate
