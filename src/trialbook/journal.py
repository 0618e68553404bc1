"""The local journal: writes a store's server could not take, kept on disk until it can.

When the server of a store stays unreachable past its retry budget
(:class:`~trialbook.errors.StoreUnavailableError`), what was computed is not thrown away: the
write of a finished trial (``compute()``) or of persisted runs (``persist()``) is kept as an
*entry* of a journal, a folder next to the working directory (``.trialbook-journal``, or
``$TRIALBOOK_JOURNAL``), and the caller carries on with a :class:`~trialbook.errors.
JournalWarning` naming the entry. The entries are written to the store, oldest first, before
the next write of this process to the same store (:func:`write_pending`), or by
``trialbook flush``.

An entry is the store operation itself (``write_runs`` or ``update_meta``) with its
arguments, already encoded; it is written aside, fsynced and renamed into place, so a crash
leaves a whole entry or none. Replaying one is safe even if the store took the write after
all: runs carry their writer's token and version, metric chunks are keyed upserts (see
:mod:`trialbook.storage.retry`). An entry names its store by URL, without password; the
entries of other stores are left alone. Entries are Python pickles of trialbook's own
records: keep the folder as private as the working directory.

Examples
--------
>>> import tempfile, trialbook
>>> folder = tempfile.mkdtemp()
>>> session = trialbook.create_session("sqlite:///:memory:")
>>> info = session.store.create_experiment("doc_journal")
>>> journal = Journal(folder)
>>> entry = journal.keep(session.store, "update_meta", info.id, {"note": "kept"}, what="a note")
>>> [e.what for e in journal.entries(session.store)]
['a note']
>>> journal.flush(session.store)
FlushReport(written=1, failed=[])
>>> session.store.find_experiment("doc_journal").meta["note"], journal.entries(session.store)
('kept', [])
>>> session.close()
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import pathlib
import pickle
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any

from trialbook.errors import ConfigError, JournalWarning, StoreUnavailableError, TrialbookError

if TYPE_CHECKING:
    from trialbook.storage.base import Store

__all__ = [
    "FlushReport",
    "Journal",
    "JournalEntry",
    "Writes",
    "default_journal",
    "keep_or_raise",
    "write_pending",
]

FOLDER = ".trialbook-journal"
SUFFIX = ".entry"
FORMAT = 1
OPERATIONS = frozenset({"write_runs", "update_meta"})
"""The store operations a journal keeps: both are idempotent, so replaying them is safe."""

_counter = itertools.count()
_lock = threading.Lock()


def default_journal() -> Journal:
    """The journal of this process: ``$TRIALBOOK_JOURNAL``, else ``.trialbook-journal`` in the
    working directory.

    Examples
    --------
    >>> default_journal().directory.name
    '.trialbook-journal'
    """
    return Journal(os.environ.get("TRIALBOOK_JOURNAL") or pathlib.Path.cwd() / FOLDER)


def store_key(store: Store) -> str:
    """How entries name their store: its URL without password."""
    return str(getattr(store, "url", None) or repr(store))


@dataclasses.dataclass
class JournalEntry:
    """One kept write: its file, the store's URL, what it holds, when it was kept."""

    path: pathlib.Path
    store: str
    operation: str
    what: str
    created: float
    args: tuple[Any, ...] = dataclasses.field(repr=False)
    kwargs: dict[str, Any] = dataclasses.field(repr=False)


@dataclasses.dataclass
class FlushReport:
    """What :meth:`Journal.flush` did: entries written, and those refused with the reason."""

    written: int = 0
    failed: list[tuple[JournalEntry, str]] = dataclasses.field(default_factory=list)


class Journal:
    """The journal in ``directory`` (created at its first entry).

    Examples
    --------
    >>> Journal("/tmp/nowhere-yet").entries()
    []
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = pathlib.Path(directory).absolute()

    def __repr__(self) -> str:
        return f"Journal({str(self.directory)!r})"

    def keep(
        self, store: Store, operation: str, *args: Any, what: str, **kwargs: Any
    ) -> JournalEntry:
        """Keep ``store.<operation>(*args, **kwargs)`` as an entry (durably) and return it."""
        if operation not in OPERATIONS:
            msg = f"a journal keeps only {sorted(OPERATIONS)} (got {operation!r})"
            raise ConfigError(msg)
        self.directory.mkdir(parents=True, exist_ok=True)
        with _lock:
            name = f"{time.time_ns():020d}-{os.getpid()}-{next(_counter):06d}{SUFFIX}"
        entry = JournalEntry(
            self.directory / name, store_key(store), operation, what, time.time(), args, kwargs
        )
        state = {
            "format": FORMAT,
            **{f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)},
        }
        state.pop("path")
        aside = entry.path.with_suffix(".tmp")
        with open(aside, "wb") as file:
            pickle.dump(state, file, protocol=pickle.HIGHEST_PROTOCOL)
            file.flush()
            os.fsync(file.fileno())
        os.replace(aside, entry.path)
        _sync_directory(self.directory)
        return entry

    def entries(self, store: Store | str | None = None) -> list[JournalEntry]:
        """The entries, oldest first; only those of ``store`` (a store or its URL) if given."""
        if not self.directory.is_dir():
            return []
        key = store if isinstance(store, str) or store is None else store_key(store)
        found = []
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            try:
                with open(path, "rb") as file:
                    state = pickle.load(file)  # written by trialbook: see the module
            except FileNotFoundError:  # flushed by another process meanwhile
                continue
            state.pop("format", None)
            entry = JournalEntry(path=path, **state)
            if key is None or entry.store == key:
                found.append(entry)
        return found

    def flush(self, store: Store) -> FlushReport:
        """Write the entries of ``store`` to it, oldest first, removing each one written.

        Stops at the first :class:`~trialbook.errors.StoreUnavailableError` (the server is
        still away: that one and the later ones stay); an entry the store refuses for another
        reason (its experiment was deleted, ...) stays, with the reason in the report.
        """
        report = FlushReport()
        for entry in self.entries(store):
            try:
                getattr(store, entry.operation)(*entry.args, **entry.kwargs)
            except StoreUnavailableError:
                raise
            except TrialbookError as exc:  # the experiment was deleted, a conflict, ...
                report.failed.append((entry, f"{type(exc).__name__}: {exc}"))
                continue
            entry.path.unlink(missing_ok=True)
            report.written += 1
        return report


def write_pending(store: Store) -> None:
    """Write this process's journal entries of ``store`` before its next write (one ``stat``
    when the journal is empty). Raises StoreUnavailableError if the server is still away; an
    entry the store refuses for another reason stays, with a warning."""
    journal = default_journal()
    if not journal.directory.is_dir():
        return
    report = journal.flush(store)
    for entry, reason in report.failed:
        warnings.warn(
            f"the journal entry {entry.path} ({entry.what}) could not be written to "
            f"{entry.store}: {reason}; it stays in the journal (`trialbook flush` tries again)",
            JournalWarning,
            stacklevel=3,
        )


def keep_or_raise(
    store: Store, error: StoreUnavailableError, operation: str, *args: Any, what: str, **kwargs: Any
) -> JournalEntry:
    """Keep a write the store's server did not take (``error``) in the default journal and warn
    naming it; if even the journal cannot be written, raise ``error``."""
    journal = default_journal()
    try:
        entry = journal.keep(store, operation, *args, what=what, **kwargs)
    except OSError as exc:
        error.add_note(f"it could not be kept in the journal {journal.directory} either: {exc}")
        raise error  # noqa: B904 - the driver's error stays its cause
    warnings.warn(
        f"{error}\n{what} is kept in the journal {entry.path}; it is written to {entry.store} "
        "before the next write there from this working directory, or with `trialbook flush "
        f"--store URL` from {journal.directory.parent}",
        JournalWarning,
        stacklevel=3,
    )
    return entry


class Writes:
    """The writes of one save (a trial, a persist), journalled when the server is away.

    Each call ``writes(operation, *args, what=..., **kwargs)`` first writes the journal's
    pending entries of the store (once), then ``store.<operation>(...)``; from the first
    :class:`~trialbook.errors.StoreUnavailableError` on, that write and the later ones of this
    save are kept in the journal without waiting for the server again.

    Examples
    --------
    >>> import trialbook
    >>> session = trialbook.create_session("sqlite:///:memory:")
    >>> info = session.store.create_experiment("doc_writes")
    >>> writes = Writes(session.store)
    >>> writes("update_meta", info.id, {"note": 1}, what="a note")
    >>> session.store.find_experiment("doc_writes").meta["note"], writes.kept
    (1, [])
    >>> session.close()
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.kept: list[JournalEntry] = []
        self._away: StoreUnavailableError | None = None
        self._pending_written = False

    def __call__(self, operation: str, *args: Any, what: str, **kwargs: Any) -> None:
        if self._away is None:
            try:
                if not self._pending_written:
                    write_pending(self.store)
                    self._pending_written = True
                getattr(self.store, operation)(*args, **kwargs)
                return
            except StoreUnavailableError as exc:
                self._away = exc
        self.kept.append(
            keep_or_raise(self.store, self._away, operation, *args, what=what, **kwargs)
        )


def _sync_directory(directory: pathlib.Path) -> None:
    """fsync the folder so the rename of an entry survives a power loss."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
