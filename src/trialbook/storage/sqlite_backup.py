"""Backing up and restoring an embedded store while other processes use it.

A backup is a directory store: ``trialbook.db`` and, for a directory store, ``blobs/``; it
opens as a store of its own (``--store BACKUP``), and :func:`restore_sqlite` copies it back.

:func:`backup_sqlite` first copies the database with SQLite's online backup API, in one step:
a consistent snapshot, taken while writers of other processes go on. Then it copies the blob and
metric chunk files *that snapshot* refers to (files written later are not in it, files it does
not refer to are garbage). Files are never changed in place, but one may be removed after the
snapshot (its rows deleted since, then a garbage collection; a replaced metric chunk): then the
snapshot is stale, and the backup starts again from a new one (a few times, then an error).

:func:`restore_sqlite` copies the backup's blob files first (harmless extra files until rows
refer to them), then the database with the backup API, so a reader of the restored store never
meets a row whose file is not there yet. Into a file store (``sqlite:///file.db``) the files go
into its ``blobs`` table.

Examples
--------
>>> import pathlib, tempfile
>>> from trialbook.storage.sqlite import SqliteStore
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with SqliteStore.from_directory(folder / "store") as store:
...     _ = store.create_experiment("sweep")
...     print(backup_sqlite(store, folder / "backup"))
1 experiment, 0 blob files (0.0 MB)
>>> with SqliteStore.from_directory(folder / "backup") as copy:
...     [info.name for info in copy.list_experiments()]
['sweep']
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trialbook.errors import ConfigError, StorageError
from trialbook.storage.bundle import blob_digests
from trialbook.storage.sqlite_schema import DB_NAME

if TYPE_CHECKING:
    from trialbook.storage.sqlite import SqliteStore

__all__ = ["ATTEMPTS", "BackupReport", "backup_sqlite", "restore_sqlite"]

ATTEMPTS = 5
"""Snapshots a backup takes at most before giving up (each one stale because a file it refers to
was removed meanwhile: a store changing faster than it can be copied)."""


@dataclass(slots=True)
class BackupReport:
    """What a backup or restore copied.

    Examples
    --------
    >>> print(BackupReport(experiments=2, files=3, bytes=4_200_000))
    2 experiments, 3 blob files (4.2 MB)
    """

    experiments: int = 0
    files: int = 0
    bytes: int = 0

    def __str__(self) -> str:
        return (
            f"{self.experiments} experiment{'s' * (self.experiments != 1)}, {self.files} blob "
            f"file{'s' * (self.files != 1)} ({self.bytes / 1e6:.1f} MB)"
        )


def backup_sqlite(
    store: SqliteStore,
    dest: str | os.PathLike[str],
    *,
    on_snapshot: Callable[[], object] | None = None,
) -> BackupReport:
    """Copy ``store`` (open, possibly in use by other processes) into the new directory
    ``dest``; ``on_snapshot`` is called after each database snapshot, before its files are
    copied (a seam for progress and tests).

    Raises
    ------
    ConfigError
        If ``dest`` exists and is not an empty directory, or the store is in memory.
    StorageError
        If the store changed under every one of :data:`ATTEMPTS` snapshots.
    """
    target = pathlib.Path(dest)
    if store.path == ":memory:":
        msg = "an in-memory store cannot be backed up: it is gone when closed"
        raise ConfigError(msg)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        msg = (
            f"backup destination {str(target)!r} exists and is not an empty directory; "
            "choose a new directory (a backup never overwrites anything)"
        )
        raise ConfigError(msg)
    for _ in range(ATTEMPTS):
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        _copy_database(store.path, target / DB_NAME)
        if on_snapshot is not None:
            on_snapshot()
        report = _copy_files(target / DB_NAME, store.blob_dir, target / "blobs")
        if report is not None:
            return report
    msg = (
        f"store {store.url!r} changed under each of {ATTEMPTS} snapshots (files they referred "
        "to were removed while copying); try again when it is quieter"
    )
    raise StorageError(msg)


def restore_sqlite(
    store: SqliteStore, source: str | os.PathLike[str], *, force: bool = False
) -> BackupReport:
    """Replace the contents of ``store`` with the backup in directory ``source``.

    Raises
    ------
    ConfigError
        If ``source`` holds no backup, or the store has experiments and not ``force``.
    """
    backup = pathlib.Path(source)
    if not (backup / DB_NAME).is_file():
        msg = f"no backup at {str(backup)!r}: it holds no {DB_NAME} (made by `trialbook backup`)"
        raise ConfigError(msg)
    existing = store.list_experiments()
    if existing and not force:
        msg = (
            f"store {store.url!r} is not empty (it has {len(existing)} experiments); nothing "
            "was restored. Restore into a new store, or pass --force to replace its contents"
        )
        raise ConfigError(msg)
    with _connect(backup / DB_NAME, read_only=True) as db:
        names = _referenced(db) - {d for (d,) in db.execute("SELECT digest FROM blobs")}
        experiments = db.execute("SELECT count(*) FROM experiments").fetchone()[0]
    report = BackupReport(experiments=experiments)
    files = [(name, backup / "blobs" / name[:2] / name) for name in sorted(names)]
    missing = [name for name, path in files if not path.is_file()]
    if missing:
        msg = (
            f"the backup at {str(backup)!r} is incomplete: {len(missing)} blob files its "
            f"database refers to are missing (e.g. {missing[0]}); nothing was restored"
        )
        raise StorageError(msg)
    if store.blob_dir is not None:
        for name, path in files:
            report.bytes += _copy_file(path, store.blob_dir / name[:2] / name)
    _copy_database(str(backup / DB_NAME), store.path)
    if store.blob_dir is None and files:
        with _connect(pathlib.Path(store.path)) as db:
            for name, path in files:
                data = path.read_bytes()
                report.bytes += len(data)
                db.execute("INSERT OR IGNORE INTO blobs VALUES (?, ?)", (name, data))
    report.files = len(files)
    return report


@contextlib.contextmanager
def _connect(path: pathlib.Path, *, read_only: bool = False) -> Iterator[sqlite3.Connection]:
    """A plain connection (committing on success), closed at the end."""
    try:
        if read_only:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        else:
            db = sqlite3.connect(path, timeout=30)
    except sqlite3.Error as exc:
        msg = f"cannot open {str(path)!r}: {exc}"
        raise StorageError(msg) from exc
    try:
        with db:
            yield db
    except sqlite3.Error as exc:
        msg = f"cannot copy {str(path)!r}: {exc}"
        raise StorageError(msg) from exc
    finally:
        db.close()


def _copy_database(source: str, dest: str | os.PathLike[str]) -> None:
    """One-step online backup of ``source`` into ``dest``: a consistent snapshot."""
    with _connect(pathlib.Path(source)) as src, _connect(pathlib.Path(dest)) as dst:
        src.backup(dst)


def _referenced(db: sqlite3.Connection) -> set[str]:
    """The blob and chunk file names the rows of a database refer to."""
    names = {b for (b,) in db.execute("SELECT blob FROM artifacts WHERE blob IS NOT NULL")}
    names.update(b for (b,) in db.execute("SELECT blob FROM metrics WHERE blob IS NOT NULL"))
    for (bundle,) in db.execute("SELECT bundle FROM runs WHERE bundle IS NOT NULL"):
        names.update(blob_digests(bundle))
    return names


def _copy_files(
    snapshot: pathlib.Path, blob_dir: pathlib.Path | None, dest: pathlib.Path
) -> BackupReport | None:
    """Copy the files ``snapshot`` refers to from ``blob_dir`` into ``dest``; ``None`` when one
    is gone (the snapshot is stale). A file store has none: its blobs are in the database."""
    with _connect(snapshot, read_only=True) as db:
        names = _referenced(db)
        stored = {d for (d,) in db.execute("SELECT digest FROM blobs")}
        experiments = db.execute("SELECT count(*) FROM experiments").fetchone()[0]
    report = BackupReport(experiments=experiments)
    if blob_dir is None:
        return report
    for name in sorted(names - stored):
        try:
            report.bytes += _copy_file(blob_dir / name[:2] / name, dest / name[:2] / name)
        except FileNotFoundError:
            return None
        report.files += 1
    return report


def _copy_file(source: pathlib.Path, dest: pathlib.Path) -> int:
    """Copy one immutable file (through a temporary name: never half a file under its name);
    return its size."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, dest)
    return dest.stat().st_size
