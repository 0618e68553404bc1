"""Typed columns of run values kept in the store beside the documents ("value segments"), so
that reading a name's values for a million runs costs a read of arrays, not a million JSON
parses (the web UI's first grouped table or filter on a large experiment).

The runs of an experiment are cut by ``run_id`` into segments of :data:`SEGMENT_RUNS`
(``run_id >> SEGMENT_BITS``). A bulk write (a batch holding every run of a segment) also
writes, in its transaction, for each such segment: a *manifest* (its run ids, the largest
``seq`` of its runs, the experiment's creation time and the paths it does not hold) and one row
per JSON path of the documents with the values of its runs as a
:class:`~trialbook.storage.value_columns.Column` (:func:`encode_column`).

A segment is used only while it is exact, which is checked against the runs themselves at
each read (:func:`usable`): the same experiment (creation time), no delete of its runs since
(``deleted_seq``), and its runs now the same number with no ``seq`` above the manifest's (any
write of a run gives it a ``seq`` above every earlier one, whichever code path wrote it). A
segment that is not exact is read from the documents, as before; so is a name that is not a
document path (``status``, ``duration``...), and a path some document of the segment holds as
a dict, list or non-finite number (:func:`segment_columns` leaves those out, naming them).

Values are those of the store's SQL (``json_extract``): booleans are the integers 1 and 0, a
dict or list its JSON text (not kept here, nor an integer beyond 64 bits), ``null`` missing.

Examples
--------
>>> docs = [{"p": {"lr": 0.1, "opt": "adam"}, "m": {"loss": [3, 0.5, 0.2, 0.9]}},
...         {"p": {"lr": True, "model": {"depth": 2}}}]
>>> columns, unknown = segment_columns(docs)
>>> sorted(columns)[:3], sorted(unknown)
(['$.m."loss"[0]', '$.m."loss"[1]', '$.m."loss"[2]'], ['$.m', '$.m."loss"', '$.p', '$.p."model"'])
>>> columns['$.p."lr"'].num.tolist(), columns['$.p."opt"'].words
([0.1, 1.0], ['adam'])
>>> decode_column(encode_column(columns['$.p."opt"'])).code.tolist()
[0, -1]
"""

from __future__ import annotations

import json
import math
import struct
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from trialbook.storage.query import Name
from trialbook.storage.value_columns import NUMBER, TEXT, WIDE, Column

__all__ = [
    "SEGMENT_BITS",
    "SEGMENT_RUNS",
    "Manifest",
    "Marks",
    "build_segment",
    "covered",
    "decode_column",
    "encode_column",
    "name_path",
    "name_paths",
    "plan_segments",
    "read_columns",
    "segment_columns",
    "segment_ranges",
    "standing",
    "usable",
    "wide_numbers",
]

SEGMENT_BITS = 12
SEGMENT_RUNS = 1 << SEGMENT_BITS
"""Runs (by ``run_id``) in a segment: 4,096."""
MIN_COVERED = 0.5
"""The share of an experiment's runs its exact segments must hold for a read to use them (else
the documents are read, as before: reading most of them by ranges would cost more)."""

TABLE_COLUMNS = ("kind", "status", "key", "seed", "created", "started", "finished")
"""The runs table's columns a segment holds too (``run_id`` is its ids)."""
_LISTS = ("$.m", "$.e")
"""Where a list's items are values of the language: a metric's summary and the error."""
_HEADER = struct.Struct("<IIII")
T = TypeVar("T")


class Manifest:
    """What a stored segment holds: ``segment`` (``run_id >> SEGMENT_BITS``), ``seq`` (the
    largest ``seq`` of its runs when written), ``created`` (the experiment's creation time), its
    ``ids`` in order and the paths it ``unknown``-s (held by some of its documents as a dict,
    list or non-finite number: read from the documents)."""

    __slots__ = ("created", "ids", "runs", "segment", "seq", "unknown")

    def __init__(
        self,
        segment: int,
        seq: int,
        created: float,
        ids: np.ndarray | None,
        unknown: frozenset[str],
        *,
        runs: int | None = None,
    ) -> None:
        self.segment, self.seq, self.created, self.unknown = segment, seq, created, unknown
        self.ids = np.zeros(0, np.int64) if ids is None else ids
        self.runs = len(self.ids) if runs is None else runs
        """Its number of runs (given without ``ids`` by a check of coverage alone)."""

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Manifest:
        """From a stored row ``(segment, seq, created, ids bytes, unknown JSON)``."""
        segment, seq, created, ids, unknown = row
        return cls(int(segment), int(seq), float(created),
                   np.frombuffer(bytes(ids), dtype="<i8").astype(np.int64),
                   frozenset(json.loads(unknown)))  # fmt: skip

    def row(self) -> tuple[int, int, float, bytes, str]:
        """The stored row (see :meth:`from_row`)."""
        return (self.segment, self.seq, self.created, self.ids.astype("<i8").tobytes(),
                json.dumps(sorted(self.unknown)))  # fmt: skip


def name_path(name: Name) -> str | None:
    """The JSON path of the run document a name reads (as the SQL of the stores writes it), the
    name of a column of the runs table, or ``None`` for a name of no one place (see
    :func:`name_paths`).

    Examples
    --------
    >>> from trialbook.storage.query import parse_name
    >>> [name_path(parse_name(n)) for n in ("params.model.depth", "metric.loss", "duration")]
    ['$.p."model"."depth"', '$.m."loss"[1]', None]
    """
    from trialbook.storage.sqlite_query import name_sql

    if name.where == "column":
        return name.path[0] if name.path[0] in TABLE_COLUMNS or name.path[0] == "run_id" else None
    if name.where == "bare":
        return None
    if name.where == "derived":
        return {"result": "$.r", "error": "$.e[0]"}.get(name.path[0])
    expr, params = name_sql(name)
    if expr != "json_extract(doc, ?)" or len(params) != 1:
        return None
    return str(params[0])


def name_paths(name: Name) -> tuple[str, tuple[str, ...]] | None:
    """How a segment gives a name's values: ``("one", (path,))``; ``("first", paths)`` for a
    bare name (its parameter, else its field, else its tag); ``("duration", ("started",
    "finished"))``; ``None`` for a name it does not hold.

    Examples
    --------
    >>> from trialbook.storage.query import parse_name
    >>> name_paths(parse_name("lr"))
    ('first', ('$.p."lr"', '$.f."lr"', '$.t."lr"'))
    """
    if name.where == "bare":
        rest = "".join(f'."{p}"' for p in name.path)
        return "first", tuple(f"$.{slot}{rest}" for slot in ("p", "f", "t"))
    if name.where == "derived" and name.path[0] == "duration":
        return "duration", ("started", "finished")
    path = name_path(name)
    return None if path is None else ("one", (path,))


def _first(columns: Sequence[Column]) -> Column:
    """Each run's value in the first of ``columns`` that has one (SQL's ``coalesce``).

    Examples
    --------
    >>> c = _first([Column.of([None, "b", None]), Column.of(["z", "a", 2])])
    >>> c.kind.tolist(), c.code.tolist(), c.words
    ([2, 2, 1], [1, 0, -1], ['b', 'z'])
    """
    words = sorted(set().union(*(c.words for c in columns)))
    index = {w: i for i, w in enumerate(words)}
    kind = np.zeros(len(columns[0].kind), np.int8)
    num = np.full(len(kind), np.nan)
    code = np.full(len(kind), -1, np.int32)
    for column in columns:
        take = (kind == 0) & (column.kind != 0)
        kind[take], num[take] = column.kind[take], column.num[take]
        if column.words:
            ranks = np.array([index[w] for w in column.words], np.int32)
            texts = take & (column.code >= 0)
            code[texts] = ranks[column.code[texts]]
    texts = code >= 0
    used = np.unique(code[texts])  # the texts taken only, as a read of the documents has
    code[texts] = np.searchsorted(used, code[texts])
    return Column(kind, num, code, [words[i] for i in used.tolist()])


def _duration(started: Column, finished: Column) -> Column:
    """``finished - started`` of each run (SQL's: missing when either is)."""
    both = (started.kind == NUMBER) & (finished.kind == NUMBER)
    num = np.where(both, finished.num - started.num, np.nan)
    kind = np.where(both, NUMBER, 0).astype(np.int8)
    return Column(kind, num, np.full(len(kind), -1, np.int32), [])


def _sql_value(value: Any) -> tuple[bool, Any]:
    """``(kept, value as json_extract gives it)`` of a JSON scalar; not kept: a value SQL reads
    otherwise than Python (a non-finite float, a text that is not valid UTF-8)."""
    kind = type(value)
    if kind is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False, None
        return True, value
    if kind is bool:
        return True, int(value)
    if kind is int:  # beyond 64 bits: a float in SQLite, an exact number in PostgreSQL
        return -(2**63) <= value < 2**63, value
    if kind is float:
        return math.isfinite(value), value
    return value is None, None


def _walk(
    path: str, value: Any, row: int, out: dict[str, dict[int, Any]], unknown: set[str]
) -> None:
    kind = type(value)
    if kind is dict:
        unknown.add(path)  # its JSON text in SQL: read from the documents
        for key, item in value.items():
            if type(key) is not str or '"' in key:
                unknown.add(f'{path}."{key}"')
                continue
            _walk(f'{path}."{key}"', item, row, out, unknown)
        return
    if kind is list or kind is tuple:
        unknown.add(path)
        if path in _LISTS or (path.startswith("$.m.") and path.count('"') == 2):
            for i, item in enumerate(value):
                _walk(f"{path}[{i}]", item, row, out, unknown)
        return
    kept, plain = _sql_value(value)
    if not kept:
        unknown.add(path)
    elif plain is not None:
        out.setdefault(path, {})[row] = plain


def _typed(column: str, value: Any) -> tuple[bool, Any]:
    """``(kept, value as SQLite reads it back)`` of a value of a column of the runs table:
    texts, integers and reals of the types SQLite stores as they are (no type conversion by
    the column's affinity; anything else is read from the table)."""
    kind = type(value)
    if value is None:
        return True, None
    if column in ("kind", "status", "key"):
        return kind is str and _sql_value(value)[0], value
    if column == "seed":
        return (kind is int or kind is bool) and -(2**63) <= value < 2**63, int(value)
    if kind in (int, float, bool) and math.isfinite(value):
        return True, float(value)  # a REAL column
    return False, None


def wide_numbers(column: Column) -> Column:
    """The column as PostgreSQL's ``jsonb`` reads it: any number of 2**53 or more in size is
    not exact (a ``numeric`` does not tell an int from a float), where SQLite says so of ints
    only.

    Examples
    --------
    >>> wide_numbers(Column.of([1.0, 1e20])).kind.tolist()
    [1, 3]
    """
    wide = (column.kind == NUMBER) & (np.abs(column.num) >= 2**53)
    if not wide.any():
        return column
    kind = column.kind.copy()
    kind[wide] = WIDE
    return Column(kind, column.num, column.code, column.words)


def segment_columns(
    docs: Sequence[Mapping[str, Any] | None],
    rows: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Column], set[str]]:
    """The columns of the document paths of ``docs`` (one document per run, ``None`` for an
    empty one) and of the runs table's columns (:data:`TABLE_COLUMNS`) of ``rows`` (a dict of
    them per run), and the paths left out (see the module)."""
    found: dict[str, dict[int, Any]] = {}
    unknown: set[str] = set()
    for row, doc in enumerate(docs):
        for key, value in (doc or {}).items():
            _walk(f"$.{key}", value, row, found, unknown)
    for row, table in enumerate(rows or ()):
        for column, value in table.items():
            kept, plain = _typed(column, value)
            if not kept:
                unknown.add(column)
            elif plain is not None:
                found.setdefault(column, {})[row] = plain
    n = len(docs)
    columns = {}
    for path, held in found.items():
        if path in unknown:
            continue
        full: list[Any] = [None] * n
        for at, value in held.items():
            full[at] = value
        columns[path] = Column.of(full)
    return columns, unknown


def plan_segments(runs: Iterable[tuple[int, T]]) -> dict[int, dict[int, T]]:
    """The segments a bulk write's runs (``(run_id, run)`` pairs; the last of one run wins)
    are to store: ``{segment: {run_id: run}}`` for each segment holding an eighth of
    :data:`SEGMENT_RUNS` of them or more, and the segments of its first and last runs (where
    a range of new runs starts and ends; their other runs are read back in the write). A few
    runs written here and there are left to the documents: their segments are no longer
    exact, and are read from the documents.

    Examples
    --------
    >>> planned = plan_segments((i, None) for i in range(4000, 5096))
    >>> [(segment, len(runs)) for segment, runs in planned.items()]
    [(0, 96), (1, 1000)]
    """
    by_segment: dict[int, dict[int, T]] = {}
    for run_id, run in runs:
        by_segment.setdefault(run_id >> SEGMENT_BITS, {})[run_id] = run
    if not by_segment:
        return {}
    ends = {min(by_segment), max(by_segment)}
    return {s: got for s, got in sorted(by_segment.items())
            if len(got) >= SEGMENT_RUNS // 8 or s in ends}  # fmt: skip


def build_segment(
    segment: int,
    runs: Mapping[int, tuple[Mapping[str, Any] | None, Mapping[str, Any]]],
    seq: int,
    created: float,
) -> tuple[Manifest, dict[str, Column]]:
    """The manifest and columns of a segment from all its runs (``{run_id: (document, {table
    column: value})}``), its largest ``seq`` and the experiment's creation time: what a write
    stores in its transaction, after writing its runs (and reading back the segment's other
    runs, if any).

    Examples
    --------
    >>> manifest, columns = build_segment(0, {2: ({"p": {"x": 2}}, {"status": "done"}),
    ...                                       1: (None, {"status": "failed"})}, 7, 1.0)
    >>> manifest.ids.tolist(), manifest.seq, columns['$.p."x"'].num.tolist()
    ([1, 2], 7, [nan, 2.0])
    >>> columns["status"].words
    ['done', 'failed']
    """
    ids = sorted(runs)
    columns, unknown = segment_columns([runs[i][0] for i in ids], [runs[i][1] for i in ids])
    return Manifest(segment, seq, created, np.array(ids, np.int64), frozenset(unknown)), columns


def segment_ranges(segments: Iterable[int]) -> list[tuple[int, int]]:
    """The first and last ``run_id`` of each run of consecutive ``segments``.

    Examples
    --------
    >>> segment_ranges([0, 1, 3])
    [(0, 8191), (12288, 16383)]
    """
    out: list[list[int]] = []
    for segment in sorted(segments):
        if out and out[-1][1] == segment - 1:
            out[-1][1] = segment
        else:
            out.append([segment, segment])
    return [(a << SEGMENT_BITS, ((b + 1) << SEGMENT_BITS) - 1) for a, b in out]


def encode_column(column: Column) -> bytes:
    """A column's bytes: its kinds, then only its numbers and its texts' codes, then its words
    (JSON).

    Examples
    --------
    >>> c = decode_column(encode_column(Column.of([1.5, "b", None, 2**60, "a"])))
    >>> c.kind.tolist(), c.num.tolist()[:2], c.code.tolist(), c.words
    ([1, 2, 0, 3, 2], [1.5, nan], [-1, 1, -1, -1, 0], ['a', 'b'])
    """
    kind = column.kind.astype(np.int8)
    numeric = (kind == NUMBER) | (kind == WIDE)
    numbers = column.num[numeric].astype("<f8")
    codes = column.code[kind == TEXT].astype("<i4")
    words = json.dumps(column.words, ensure_ascii=False).encode()
    head = _HEADER.pack(len(kind), len(numbers), len(codes), len(words))
    return b"".join([head, kind.tobytes(), numbers.tobytes(), codes.tobytes(), words])


def decode_column(data: bytes) -> Column:
    """The column of :func:`encode_column`'s bytes."""
    data = bytes(data)
    n, numbers, codes, size = _HEADER.unpack_from(data)
    at = _HEADER.size
    kind = np.frombuffer(data, np.int8, n, at).copy()
    at += n
    num = np.full(n, np.nan)
    num[(kind == NUMBER) | (kind == WIDE)] = np.frombuffer(data, "<f8", numbers, at)
    at += 8 * numbers
    code = np.full(n, -1, np.int32)
    code[kind == TEXT] = np.frombuffer(data, "<i4", codes, at)
    at += 4 * codes
    words = json.loads(data[at : at + size].decode()) if size else []
    return Column(kind, num, code, words)


def usable(
    manifests: Iterable[Manifest],
    marks: Mapping[int, tuple[int, int | None]],
    token: tuple[float, int, int, int],
    paths: Iterable[str],
) -> list[Manifest]:
    """The manifests still exact for ``paths`` (see the module): ``marks`` are the runs' count
    and largest ``seq`` per segment now, ``token`` the experiment's
    :meth:`~trialbook.storage.sqlite.SqliteStore.experiment_token`.

    Examples
    --------
    >>> m = Manifest(0, 5, 1.0, np.array([1, 2]), frozenset({'$.p."x"'}))
    >>> [len(usable([m], {0: (2, s)}, (1.0, 9, 0, 7), ['$.p."lr"'])) for s in (5, 6)]
    [1, 0]
    >>> len(usable([m], {0: (2, 5)}, (1.0, 9, 0, 7), ['$.p."x"']))  # a path it cannot hold
    0
    """
    created, _, deleted_seq, _ = token
    wanted = set(paths)
    out = []
    for manifest in manifests:
        count, top = marks.get(manifest.segment, (0, None))
        if (manifest.created == created and manifest.seq >= deleted_seq
                and count == manifest.runs and top is not None and top <= manifest.seq
                and not wanted & manifest.unknown):  # fmt: skip
            out.append(manifest)
    return out


class Marks:
    """The marks of the last experiment read (per segment: its runs and their largest ``seq``)
    with the experiment's token they were read at: the same token, the same runs, so a
    check of coverage and the read that follows query the runs once. One reader at a time
    (the second waits, then finds them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: tuple[Any, dict[int, tuple[int, int | None]]] | None = None

    def get(
        self, experiment_id: int, token: Any, read: Callable[[], dict[int, tuple[int, int | None]]]
    ) -> dict[int, tuple[int, int | None]]:
        """The marks of the experiment at ``token``: kept ones, else ``read()``'s."""
        with self._lock:
            if self._kept is not None and self._kept[0] == (experiment_id, token):
                return self._kept[1]
            marks = read()
            self._kept = ((experiment_id, token), marks)
            return marks

    def clear(self) -> None:
        """Forget the marks kept."""
        with self._lock:
            self._kept = None


def _ids_column(ids: np.ndarray) -> Column:
    """The column of ``run_id`` (the segment's ids)."""
    kind = np.where(np.abs(ids) >= 2**53, WIDE, NUMBER).astype(np.int8)
    return Column(kind, ids.astype(np.float64), np.full(len(ids), -1, np.int32), [])


def covered(good: Sequence[Manifest], marks: Mapping[int, tuple[int, int | None]]) -> float:
    """The share of the experiment's runs (``marks``: per segment, its runs and largest
    ``seq``) in the ``good`` segments (:func:`usable`); 1.0 for an experiment without runs.

    Examples
    --------
    >>> covered([Manifest(0, 1, 1.0, np.arange(3), frozenset())], {0: (3, 1), 1: (1, 2)})
    0.75
    """
    total = sum(count for count, _ in marks.values())
    return sum(m.runs for m in good) / total if total else 1.0


def standing(
    manifests: Sequence[Manifest],
    marks: Mapping[int, tuple[int, int | None]],
    token: tuple[float, int, int, int] | None,
) -> tuple[float, list[int]]:
    """What the stored segments of an experiment (``token``: its token, ``None`` if gone) are
    worth now: the share of its runs they hold exactly (0.0 without any), and the segments of
    its runs no exact one holds (to make anew).

    Examples
    --------
    >>> standing([Manifest(0, 1, 1.0, np.arange(3), frozenset())], {0: (3, 1), 1: (1, 2)},
    ...          (1.0, 2, 0, 5))
    (0.75, [1])
    """
    if token is None:
        return 0.0, []
    good = usable(manifests, marks, token, [])
    exact = {m.segment for m in good}
    return (covered(good, marks) if manifests else 0.0), sorted(set(marks) - exact)


Rows = Callable[[list[str], list[int]], Iterable[tuple[str, int, int, bytes]]]
"""``(paths, segments)`` -> the stored ``(path, segment, seq, data)`` rows among them."""
Rest = Callable[[list[Name], "list[int] | None"], "tuple[np.ndarray, list[Column]] | None"]
"""``(names, segments or None for all)`` -> the run ids and columns of those runs, read from
their documents (and the runs table) as before (``None``: they cannot be read so)."""


def read_columns(
    names: Sequence[Name],
    token: tuple[float, int, int, int] | None,
    manifests: Iterable[Manifest],
    marks: Mapping[int, tuple[int, int | None]],
    rows: Rows,
) -> Callable[[Rest], tuple[np.ndarray, list[Column]] | None] | None:
    """The columns of ``names`` of an experiment with stored segments, in two steps: this one
    with its ``token``, ``manifests`` and ``marks`` (runs and largest ``seq`` per segment) and
    ``rows`` (the stored columns), all read in one snapshot, then the function it returns, with
    ``rest`` (a read of the documents, as before: the segments not exact, and the names that
    are not document paths), which gives the run ids and the columns, or ``None`` when runs
    were written between the two (or ``rest`` cannot read them). ``None`` at once when the
    exact segments hold less than :data:`MIN_COVERED` of the runs: the caller reads the
    documents, as before.

    Examples
    --------
    >>> from trialbook.storage.query import parse_name
    >>> manifest, columns = build_segment(0, {1: ({"p": {"x": 1}}, {}), 2: ({"p": {"x": "a"}}, {})},
    ...                                   3, 1.0)
    >>> stored = [('$.p."x"', 0, 3, encode_column(columns['$.p."x"']))]
    >>> def rest(names, segments):  # the runs of segment 1, read from their documents
    ...     return np.array([4096]), [Column.of([2.5]) for _ in names]
    >>> finish = read_columns([parse_name("params.x")], (1.0, 4, 0, 9), [manifest],
    ...                       {0: (2, 3), 1: (1, 4)}, lambda p, s: stored)
    >>> ids, (x,) = finish(rest)
    >>> ids.tolist(), x.num.tolist(), x.words
    ([1, 2, 4096], [1.0, nan, 2.5], ['a'])
    """
    if token is None:
        return None
    manifests = list(manifests)
    doubtful = frozenset().union(*(m.unknown for m in manifests))
    recipes = {name: name_paths(name) for name in names}
    for name, recipe in recipes.items():
        if recipe is not None and doubtful & set(recipe[1]):
            recipes[name] = None  # a dict, list or non-finite number somewhere: its documents
    documented = [name for name in names if recipes[name] is not None]
    wanted = sorted({path for name in documented for path in recipes[name][1]})  # type: ignore[index]
    good = usable(manifests, marks, token, wanted)
    if not documented or covered(good, marks) < MIN_COVERED:
        return None
    seqs = {m.segment: m.seq for m in good}
    found: dict[tuple[str, int], bytes] = {}
    for path, number, seq, data in rows(wanted, list(seqs)):
        if seqs.get(number) == seq:  # of this manifest's write, not an earlier one
            found[path, number] = bytes(data)
    others = sorted(set(marks) - set(seqs))
    plain = [name for name in names if recipes[name] is None]

    def of_segment(m: Manifest) -> list[Column]:
        n = len(m.ids)
        got = {}
        for path in wanted:
            data = found.pop((path, m.segment), None)
            got[path] = (decode_column(data) if data is not None
                         else _ids_column(m.ids) if path == "run_id"
                         else Column.of([None] * n))  # fmt: skip
        out = []
        for name in documented:
            how, paths = recipes[name]  # type: ignore[misc]
            columns = [got[p] for p in paths]
            out.append(columns[0] if how == "one" else _first(columns) if how == "first"
                       else _duration(*columns))  # fmt: skip
        return out

    def finish(rest: Rest) -> tuple[np.ndarray, list[Column]] | None:
        from trialbook.storage.value_columns import joined_chunks

        chunks: list[tuple[np.ndarray, list[Any]]] = [(m.ids, of_segment(m)) for m in good]
        if others:
            got = rest(documented, others)
            if got is None:
                return None
            chunks.append(got)
        ids, columns = joined_chunks(chunks, len(documented))
        by_name = dict(zip(documented, columns, strict=True))
        if plain:
            got = rest(plain, None)
            if got is None or not np.array_equal(got[0], ids):
                return None  # runs written between the reads (or a read that cannot)
            plain_columns = got[1]
            by_name.update(zip(plain, plain_columns, strict=True))
        return ids, [by_name[name] for name in names]

    return finish
