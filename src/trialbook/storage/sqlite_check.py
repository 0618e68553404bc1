"""Checking an embedded store (``trialbook check``): the database file, and every blob and
metric chunk file its rows refer to.

:func:`check_sqlite` runs SQLite's ``PRAGMA integrity_check`` on the database, then reads
every blob and chunk file a run, artifact or metric chunk refers to and compares its bytes with
the hash in its name (:func:`~trialbook.storage.sqlite_blobs.blob_problem`; a chunk file also
with the size of its points). Each damaged value is named by experiment, run and field, with
how to repair it. What a garbage collection would free is reported apart: it is only space.

Examples
--------
>>> from trialbook.storage.sqlite import SqliteStore
>>> with SqliteStore(":memory:") as store:
...     store.check().ok
True
"""

from __future__ import annotations

from collections.abc import Iterator

from trialbook.errors import CorruptStoreError
from trialbook.storage.bundle import blob_entries
from trialbook.storage.records import CheckReport, Problem
from trialbook.storage.sqlite_blobs import SqliteBlobs, blob_problem
from trialbook.storage.sqlite_engine import SqliteConnection

__all__ = ["check_sqlite"]

RESTORE = "restore the store from a backup made before the damage (trialbook restore SRC --force)"


def check_sqlite(db: SqliteConnection, blobs: SqliteBlobs, *, min_age: float) -> CheckReport:
    """Check the database and the blob area of a store; ``min_age``: as for garbage
    collection, files younger than that are not counted as garbage (a write may be about to
    commit them)."""
    report = CheckReport(problems=_integrity(db))
    if report.problems:  # a damaged database: what its rows say cannot be trusted
        return report
    names = dict(db.read("SELECT id, name FROM experiments"))
    seen: dict[str, str | None] = {}
    for experiment_id, run_id, field, blob, count in _references(db):
        key = blob if count is None else f"{blob}:{count}"
        if key not in seen:
            seen[key] = _blob_problem(blobs, blob, count)
        problem = seen[key]
        if problem is not None:
            where = (
                f"{field} of run {run_id} of experiment {names.get(experiment_id, experiment_id)!r}"
            )
            report.problems.append(
                Problem(
                    f"{where} is damaged: blob {blob}: {problem}",
                    f"delete that run (or its experiment) and compute it again, or {RESTORE}",
                )
            )
    report.garbage = blobs.collect(min_age=min_age, dry_run=True)
    return report


def _integrity(db: SqliteConnection) -> list[Problem]:
    rows = db.read("PRAGMA integrity_check(20)")
    if [tuple(row) for row in rows] == [("ok",)]:
        return []
    fix = f"{RESTORE}; or recover what SQLite can read: sqlite3 trialbook.db .recover"
    lines = [line for (text,) in rows for line in str(text).splitlines()]
    found = [line for line in lines if not line.startswith("*** in database")]
    return [Problem(f"the database file is damaged: {line}", fix) for line in found[:20]]


def _references(db: SqliteConnection) -> Iterator[tuple[int, int, str, str, int | None]]:
    """``(experiment id, run id, field, blob, point count of a chunk file or None)`` of every
    blob and chunk file the rows refer to."""
    for experiment_id, run_id, bundle in db.read(
        "SELECT experiment_id, run_id, bundle FROM runs WHERE bundle IS NOT NULL"
    ):
        for slot, name, digest in blob_entries(bundle):
            yield (
                experiment_id,
                run_id,
                "result" if slot == "result" else f"{slot} {name!r}",
                digest,
                None,
            )
    for experiment_id, run_id, name, blob in db.read(
        "SELECT experiment_id, run_id, name, blob FROM artifacts WHERE blob IS NOT NULL"
    ):
        yield experiment_id, run_id, f"artifact {name!r}", blob, None
    for experiment_id, run_id, name, blob, count in db.read(
        "SELECT experiment_id, run_id, name, blob, count FROM metrics WHERE blob IS NOT NULL"
    ):
        yield experiment_id, run_id, f"metric {name!r}", blob, count


def _blob_problem(blobs: SqliteBlobs, name: str, count: int | None) -> str | None:
    try:
        data = blobs.raw(name)
    except CorruptStoreError:
        return "it is missing"
    if count is not None and len(data) != 24 * count:
        return f"it holds {len(data)} bytes, not the {24 * count} of {count} points"
    return blob_problem(name, data)
