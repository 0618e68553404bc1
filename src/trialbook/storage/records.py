"""The records a store reads and writes: plain dataclasses, no behaviour.

Values inside ``params``, ``fields`` and ``result`` are what :func:`trialbook.codecs.encode`
returns: plain JSON values as themselves, everything else as :class:`~trialbook.codecs.Encoded`.

Examples
--------
>>> from trialbook.storage.records import RunRecord
>>> RunRecord(run_id=1, params={"lr": 0.1}).status
'pending'
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "EXTRA_COLUMNS",
    "CheckReport",
    "ErrorInfo",
    "ExperimentInfo",
    "GcReport",
    "MetricChunk",
    "MetricSeries",
    "Problem",
    "RunColumns",
    "RunRecord",
    "Status",
    "check_extra_columns",
]


class Status(StrEnum):
    """Life cycle of a run: ``pending`` -> ``running`` -> ``done`` or ``failed``.

    Examples
    --------
    >>> Status.DONE == "done"
    True
    """

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(slots=True)
class ExperimentInfo:
    """One experiment as the store knows it."""

    id: int
    name: str
    created: float
    updated: float
    runs: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ErrorInfo:
    """Why a run failed: the exception's type name, message and formatted traceback."""

    type: str
    message: str
    traceback: str = ""

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


@dataclass(slots=True)
class RunRecord:
    """One run (a grid run, a lazy-graph trial or a task job) as stored."""

    run_id: int
    kind: str = "run"
    status: str = Status.PENDING.value
    params: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    seed: int | None = None
    created: float | None = None
    started: float | None = None
    finished: float | None = None
    result: Any = None
    error: ErrorInfo | None = None
    code: str | None = None
    environment: str | None = None
    metrics: dict[str, list[Any]] = field(default_factory=dict)
    """Summary of the run's metrics: ``{name: [point count, last value, min, max]}`` (min and
    max are left out by versions before they were recorded, ``None`` when unknown)."""
    version: int | None = field(default=None, compare=False)
    """The stored version of the run this record was read at (``0`` for a run stored before
    runs had versions), or ``None`` for a run never stored. A write replaces the stored run
    only if it is still at this version, and bumps it (see
    :meth:`trialbook.storage.base.Store.write_runs`); a new run is written as version 1."""
    writer: str | None = field(default=None, compare=False)
    """Who writes this record (a token unique to one change of the run, kept while that write
    is retried): a retry of a write that was applied but whose answer was lost finds the run
    at ``version + 1`` written by the same ``writer``, and is accepted. Never read back."""


@dataclass(slots=True)
class RunColumns:
    """An experiment's runs read column-wise, as much as a table of them needs (issue 16,
    "Scale"): lists in order of run id, and no record per run.

    ``docs`` holds the runs' JSON documents as stored (see :mod:`trialbook.storage.bundle`),
    as texts of one document a line (``{}`` for an empty one), a text per batch of runs;
    ``started`` and ``finished`` have ``None`` where unknown; ``versions`` the stored version of
    each run as it was read (see :attr:`RunRecord.version`); ``bundles`` holds the encoded
    values of the runs that have some (their blobs read), by run id.

    Examples
    --------
    >>> columns = RunColumns()
    >>> times = {"run_id": [1, 2], "started": [1.5, None], "finished": [2.0, None]}
    >>> columns.add_batch("1,2", "done,pending", '{"p":{"x":1}}\\n{}', times)
    >>> columns.run_ids, columns.statuses, columns.started, len(columns)
    ([1, 2], ['done', 'pending'], [1.5, None], 2)
    """

    run_ids: list[int] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    docs: list[str] = field(default_factory=list)
    started: list[float | None] = field(default_factory=list)
    finished: list[float | None] = field(default_factory=list)
    versions: list[int | None] = field(default_factory=list)
    bundles: dict[int, dict[tuple[str, str], Any]] = field(default_factory=dict)
    extra: dict[str, list[Any]] = field(default_factory=dict)
    """Other plain columns asked for (``kind``, ``seed``...), by name."""

    def __len__(self) -> int:
        return len(self.run_ids)

    def add_batch(
        self,
        ids_text: str,
        statuses_text: str,
        docs_text: str,
        more: Mapping[str, Sequence[Any]] | None = None,
        versions_text: str | None = None,
    ) -> None:
        """Add a batch of runs of ids above those added so far, read as texts: ids and
        statuses joined by commas, documents by newlines, in the same order (the order of
        the ids, or sorted here). ``more``: other columns by name (``started``, ``finished``
        and any of ``extra``), as sequences of values, with the ids (``run_id``) in an order
        of their own; without ``started`` or ``finished``, none is known. ``versions_text``:
        the versions (numbers or ``null``) in the order of the ids (without it, ``None``).
        """
        ids, docs = json.loads(f"[{ids_text}]"), docs_text
        statuses = statuses_text.split(",")
        versions = [None] * len(ids) if versions_text is None else json.loads(f"[{versions_text}]")
        if ids != sorted(ids):
            order = sorted(range(len(ids)), key=ids.__getitem__)
            lines = docs.split("\n")
            ids = [ids[i] for i in order]
            statuses = [statuses[i] for i in order]
            versions = [versions[i] for i in order]
            docs = "\n".join([lines[i] for i in order])
        if ids and self.run_ids and ids[0] <= self.run_ids[-1]:
            msg = "the batches of a column-wise read of runs overlap; read them by id"
            raise ValueError(msg)
        values = {name: list(column) for name, column in (more or {}).items()}
        more_ids = values.pop("run_id", ids)
        if more_ids != ids:
            where = {run_id: i for i, run_id in enumerate(more_ids)}
            values = {name: [v[where[run_id]] for run_id in ids] for name, v in values.items()}
        nothing: list[Any] = [None] * len(ids)
        self.run_ids += ids
        self.statuses += statuses
        self.versions += versions
        self.docs.append(docs)
        self.started += values.pop("started", nothing)
        self.finished += values.pop("finished", nothing)
        for name, column in values.items():
            self.extra.setdefault(name, []).extend(column)


EXTRA_COLUMNS = ("kind", "key", "seed", "created", "code", "environment")
"""The columns :class:`RunColumns` reads only when asked (``read_run_columns(extra=...)``)."""


def check_extra_columns(names: Sequence[str]) -> list[str]:
    """``names`` as a list, if each is one of :data:`EXTRA_COLUMNS`.

    Examples
    --------
    >>> check_extra_columns(["seed", "kind"])
    ['seed', 'kind']
    >>> check_extra_columns(["bogus"])
    Traceback (most recent call last):
    ...
    ValueError: read_run_columns(extra=...) reads columns among 'kind', 'key', 'seed', ...
    """
    names = list(names)
    for name in names:
        if name not in EXTRA_COLUMNS:
            msg = (
                f"read_run_columns(extra=...) reads columns among "
                f"{', '.join(map(repr, EXTRA_COLUMNS))} (got {name!r})"
            )
            raise ValueError(msg)
    return names


@dataclass(slots=True)
class MetricChunk:
    """New points of one metric of one run, stored as one row.

    ``steps`` (int64), ``values`` and ``times`` (float64) are little-endian raw bytes of
    ``count`` items each. ``start`` is the position of the chunk's first point in the run's
    series of that metric (the number of points before it, as the writer knows them): with the
    experiment, run and name it is the chunk's key. Writing a chunk of a key already stored
    replaces that chunk (a retried write leaves its points once), and a metric's points are its
    chunks in order of ``start``.
    """

    run_id: int
    name: str
    count: int
    steps: bytes
    values: bytes
    times: bytes
    start: int


@dataclass(slots=True)
class MetricSeries:
    """All points of one metric of one run, as NumPy arrays."""

    steps: Any
    values: Any
    times: Any

    def __len__(self) -> int:
        return len(self.values)


@dataclass(slots=True)
class GcReport:
    """What a garbage collection freed (or, in a dry run, would free).

    Examples
    --------
    >>> print(GcReport(blobs=2, bytes=3_500_000, rows=1))
    2 unreferenced blobs (3.5 MB) and 1 orphaned row
    """

    blobs: int = 0
    """Unreferenced blobs (values of deleted experiments or runs, or of interrupted writes)."""
    bytes: int = 0
    """Their size."""
    rows: int = 0
    """Orphaned rows: runs, metric chunks, artifacts or purity records of no experiment."""

    def __str__(self) -> str:
        blobs = f"{self.blobs} unreferenced blob{'s' * (self.blobs != 1)}"
        rows = f"{self.rows} orphaned row{'s' * (self.rows != 1)}"
        return f"{blobs} ({self.bytes / 1e6:.1f} MB) and {rows}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a store (``what``) and how to repair it (``fix``).

    Examples
    --------
    >>> print(Problem("blob ab12 is missing", "restore the store from a backup"))
    blob ab12 is missing; fix: restore the store from a backup
    """

    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.what}; fix: {self.fix}"


@dataclass(slots=True)
class CheckReport:
    """What a check of a store found: ``problems`` (damage, leftovers of crashes), and the
    ``garbage`` a collection would free (harmless: only space).

    Examples
    --------
    >>> report = CheckReport()
    >>> report.ok, str(report.garbage)
    (True, '0 unreferenced blobs (0.0 MB) and 0 orphaned rows')
    """

    problems: list[Problem] = field(default_factory=list)
    garbage: GcReport = field(default_factory=GcReport)

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not self.problems
