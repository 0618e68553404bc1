"""The query language over columns of run values held in memory (numpy): filter, sort, group.

A :class:`Column` holds the values of one name of the language (:class:`~trialbook.storage.
query.Name`) for every run of an experiment, as the SQL of the SQLite store reads them
(``json_extract``: ``NULL``, integers, reals and texts; a dict or list is its JSON text, a
boolean the integer 1 or 0). :func:`evaluate` answers a filter over such columns with the rules
of :mod:`trialbook.storage.query` (types never converted, numbers before texts, three-valued
logic), :func:`order` sorts as ``query_runs`` does (missing values last, then by ``run_id``) and
:func:`group` groups as :func:`~trialbook.storage.sqlite_query.group_sql` does.

Each answers ``None`` when the columns cannot answer exactly, and the caller asks the store:
a comparison of two names, an int constant beyond 2**53 (floats would round it), a column
holding an int beyond 2**53 or a value that is neither number nor text. So an answer from
here is the store's answer, only without reading a million JSON documents again
(:mod:`trialbook.storage.value_cache` keeps the columns while the store is unchanged).

Examples
--------
>>> import numpy as np
>>> from trialbook.storage.query import parse_name, parse_query
>>> lr = Column.of([0.1, 0.001, None, "high"])
>>> keep = evaluate(parse_query("lr >= 0.01"), {parse_name("lr"): lr}, 4)
>>> keep.tolist()
[True, False, False, True]
>>> order(np.flatnonzero(keep), lr, np.array([1, 2, 3, 4]), descending=False).tolist()
[0, 3]
"""

from __future__ import annotations

import ast
import bisect
import operator
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from trialbook.bulk import paused_gc
from trialbook.storage.query import (
    _NOT_CONSTANT,
    Name,
    Query,
    _constant,
    _name_of,
    _Py,
    group_key,
    three_valued,
)

__all__ = ["Column", "evaluate", "group", "joined_chunks", "merged", "order", "transposed"]

MISSING, NUMBER, TEXT, WIDE, OTHER = 0, 1, 2, 3, 4
"""Kinds of a value: missing (``NULL``), a number exact as a float, a text, an integer of 2**53
or more in size (not exact as a float), anything else (a blob)."""
EXACT = 2**53
_KINDS: defaultdict[type, int] = defaultdict(
    lambda: OTHER, {type(None): MISSING, int: NUMBER, float: NUMBER, bool: NUMBER, str: TEXT}
)
"""The kind of a value by its type (``OTHER`` for any other type)."""
_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}  # fmt: skip
_FLIP = {ast.Eq: ast.Eq, ast.NotEq: ast.NotEq, ast.Lt: ast.Gt, ast.LtE: ast.GtE,
         ast.Gt: ast.Lt, ast.GtE: ast.LtE}  # fmt: skip
_NUMBER_BELOW_TEXT = {ast.Eq: False, ast.NotEq: True, ast.Lt: True, ast.LtE: True,
                      ast.Gt: False, ast.GtE: False}  # fmt: skip
"""``number OP text`` for any number and text: numbers sort before texts."""
Truth = tuple[np.ndarray, np.ndarray]
"""A test's answer per run: ``(true, false)`` masks; a run in neither is unknown."""


class Unanswerable(Exception):
    """The columns cannot answer this exactly: the store must."""


class Column:
    """The values of one name for each run: ``kind`` (see :data:`MISSING`...), ``num`` (the
    number as a float, NaN elsewhere) and ``code`` (a text's rank among the column's distinct
    texts ``words``, sorted by code point; -1 elsewhere).

    Examples
    --------
    >>> c = Column.of([3, "b", None, 2**60, "a"])
    >>> c.kind.tolist(), c.exact, c.code.tolist(), c.words
    ([1, 2, 0, 3, 2], False, [-1, 1, -1, -1, 0], ['a', 'b'])
    """

    __slots__ = ("code", "exact", "kind", "nbytes", "num", "words")

    def __init__(
        self, kind: np.ndarray, num: np.ndarray, code: np.ndarray, words: list[str]
    ) -> None:
        self.kind, self.num, self.code, self.words = kind, num, code, words
        self.exact = not bool(np.any(kind >= WIDE))
        """Whether every value is missing, a number exact as a float or a text."""
        self.nbytes = kind.nbytes + num.nbytes + code.nbytes + sum(49 + len(w) for w in words)

    @classmethod
    def of(cls, values: Sequence[Any]) -> Column:
        """The column of ``values`` (Python values as SQLite returns them)."""
        n = len(values)
        # map in C, not a generator: a third of the time of reading a million runs' columns
        kind = np.fromiter(map(_KINDS.__getitem__, map(type, values)), np.int8, n)
        texts = kind == TEXT
        code = np.full(n, -1, np.int32)
        words: list[str] = []
        if not texts.any() and not np.any(kind == OTHER):
            num = np.array(values, dtype=np.float64)
        else:
            num = np.array([v if k == NUMBER else None for v, k in zip(values, kind.tolist(),
                                                                      strict=True)],
                           dtype=np.float64)  # fmt: skip
            if texts.any():
                found = [v for v in values if type(v) is str]
                index = {w: i for i, w in enumerate(sorted(set(found)))}
                code[texts] = np.fromiter(map(index.__getitem__, found), np.int32, len(found))
                words = list(index)
        wide = np.flatnonzero(np.abs(num) >= EXACT)
        for i in wide.tolist():  # rare: only an int of 2**53 or more is not exact
            if type(values[i]) is int:
                kind[i] = WIDE
        return cls(kind, num, code, words)

    @classmethod
    def typed(
        cls, kinds: Sequence[int], numbers: Sequence[float | None], texts: Sequence[str | None]
    ) -> Column:
        """The column of values given as their kinds, numbers (as floats) and texts, as a
        database computed them.

        Examples
        --------
        >>> c = Column.typed([1, 2, 0, 3], [0.5, None, None, 1e19], [None, "a", None, None])
        >>> c.kind.tolist(), c.code.tolist(), c.words, c.exact
        ([1, 2, 0, 3], [-1, 0, -1, -1], ['a'], False)
        """
        n = len(kinds)
        kind = np.array(kinds, dtype=np.int8)
        num = np.array(numbers, dtype=np.float64)
        code = np.full(n, -1, np.int32)
        words: list[str] = []
        text = kind == TEXT
        if text.any():
            found = [t for t in texts if t is not None]
            index = {w: i for i, w in enumerate(sorted(set(found)))}
            code[text] = np.fromiter(map(index.__getitem__, found), np.int32, len(found))
            words = list(index)
        return cls(kind, num, code, words)

    @classmethod
    def joined(cls, parts: Sequence[Column]) -> Column:
        """One column of the runs of ``parts`` (columns of consecutive chunks of runs), each
        text's code its rank among the texts of them all.

        Examples
        --------
        >>> c = Column.joined([Column.of(["b", 1]), Column.of(["a", "b"])])
        >>> c.code.tolist(), c.words, c.num.tolist()[1]
        ([1, -1, 0, 1], ['a', 'b'], 1.0)
        """
        if len(parts) == 1:
            return parts[0]
        words = sorted({w for part in parts for w in part.words})
        index = {w: i for i, w in enumerate(words)}
        codes = []
        for part in parts:
            codes.append(_recoded(part.code, [index[w] for w in part.words]))
        return cls(
            np.concatenate([p.kind for p in parts]),
            np.concatenate([p.num for p in parts]),
            np.concatenate(codes).astype(np.int32),
            words,
        )

    def replaced(self, at: np.ndarray, source: Column, rows: np.ndarray) -> Column:
        """This column with the values at positions ``at`` those of ``source`` at ``rows``
        (copied; the texts ranked again when ``source`` brings new ones).

        Examples
        --------
        >>> c = Column.of(["b", 2, "c"]).replaced(np.array([1]), Column.of([5, "a"]), np.array([1]))
        >>> c.kind.tolist(), c.code.tolist(), c.words
        ([2, 2, 2], [1, 0, 2], ['a', 'b', 'c'])
        """
        if not len(at):
            return self
        words, code = self.words, self.code.copy()
        picked = source.code[rows]
        new = [w for w in {source.words[i] for i in picked[picked >= 0].tolist()}
               if not _holds(words, w)]  # fmt: skip
        if new:
            words = sorted([*words, *new])
            index = {w: i for i, w in enumerate(words)}
            code = _recoded(code, [index[w] for w in self.words])
        else:
            index = None
        if picked.size and (picked >= 0).any():
            # (a text of source's other rows, not picked, may be in neither: never used)
            lookup = (lambda w: index.get(w, 0)) if index is not None else (
                lambda w: bisect.bisect_left(words, w))  # fmt: skip
            picked = _recoded(picked, [lookup(w) for w in source.words])
        kind, num = self.kind.copy(), self.num.copy()
        kind[at], num[at], code[at] = source.kind[rows], source.num[rows], picked
        return Column(kind, num, code, words)

    def take(self, rows: np.ndarray) -> Column:
        """The column of the runs at ``rows`` (positions), in that order.

        Examples
        --------
        >>> Column.of(["b", 2, "a"]).take(np.array([2, 0])).code.tolist()
        [0, 1]
        """
        return Column(self.kind[rows], self.num[rows], self.code[rows], self.words)

    def text_compare(self, op: type, text: str) -> np.ndarray:
        """``value OP text`` for the runs holding a text (false elsewhere), on the ranks."""
        at = bisect.bisect_left(self.words, text)
        found = at < len(self.words) and self.words[at] == text
        code, texts = self.code, self.kind == TEXT
        if op is ast.Eq:
            return code == at if found else np.zeros(len(code), bool)
        if op is ast.NotEq:
            return texts & (code != at) if found else texts
        if op is ast.Lt:
            return texts & (code < at)
        if op is ast.LtE:
            return texts & (code < at + found)
        if op is ast.Gt:
            return code >= at + found
        return code >= at


def transposed(rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
    """The columns of ``rows`` (a chunk read from a database), the collector paused while the
    many small tuples are built.

    Examples
    --------
    >>> transposed([(1, "a"), (2, "b")])
    [(1, 2), ('a', 'b')]
    """
    with paused_gc(len(rows)):
        return list(zip(*rows, strict=True))


def merged(
    ids: np.ndarray,
    columns: Sequence[Column],
    changed_ids: np.ndarray,
    changed: Sequence[Column],
) -> tuple[np.ndarray, list[Column]]:
    """The runs of ``ids`` (in order, with ``columns``) where the runs of ``changed_ids``
    (in order, with ``changed``: the same names) take their new values, the new ones joining
    in the order of their ids. Runs rewritten and runs added after the last id (a live
    experiment) cost a copy of the columns; new runs among the others a sort.

    Examples
    --------
    >>> ids, (x,) = merged(np.array([1, 2, 4]), [Column.of(["a", 2, "d"])],
    ...                    np.array([2, 3]), [Column.of(["b", 3])])
    >>> ids.tolist(), x.num.tolist()[2], x.code.tolist(), x.words
    ([1, 2, 3, 4], 3.0, [0, 1, -1, 2], ['a', 'b', 'd'])
    """
    if not len(changed_ids):
        return ids, list(columns)
    pos = np.searchsorted(ids, changed_ids)
    found = pos < len(ids)
    found[found] = ids[pos[found]] == changed_ids[found]
    rows = np.flatnonzero(found)
    updated = [
        old.replaced(pos[rows], new, rows) for old, new in zip(columns, changed, strict=True)
    ]
    if bool(found.all()):
        return ids, updated
    fresh = np.flatnonzero(~found)
    added = changed_ids[fresh]  # in order, as changed_ids
    joined = [Column.joined([u, new.take(fresh)]) for u, new in zip(updated, changed, strict=True)]
    everyone = np.concatenate([ids, added])
    if not len(ids) or added[0] > ids[-1]:
        return everyone, joined
    order = np.argsort(everyone, kind="stable")
    return everyone[order], [column.take(order) for column in joined]


def _recoded(code: np.ndarray, ranks: list[int]) -> np.ndarray:
    """Text codes mapped through ``ranks`` (each word's rank in a new list of words); -1 (no
    text) stays.

    Examples
    --------
    >>> _recoded(np.array([1, -1, 0]), [2, 0]).tolist()
    [0, -1, 2]
    """
    table = np.array(ranks or [0], dtype=np.int32)
    return np.where(code >= 0, table[np.maximum(code, 0)], -1).astype(np.int32)


def _holds(words: list[str], word: str) -> bool:
    """Whether the sorted ``words`` hold ``word``."""
    at = bisect.bisect_left(words, word)
    return at < len(words) and words[at] == word


def joined_chunks(
    chunks: list[tuple[np.ndarray, list[Any]]], count: int
) -> tuple[np.ndarray, list[Column]]:
    """The run ids in order and ``count`` columns from chunks of runs (``(ids, columns)``
    each, read in any order), one column at a time, its chunks let go as it is joined (memory:
    about two columns beyond those kept).

    Examples
    --------
    >>> chunks = [(np.array([3, 4]), [Column.of(["c", 4])]), (np.array([1]), [Column.of([1])])]
    >>> ids, (x,) = joined_chunks(chunks, 1)
    >>> ids.tolist(), x.num.tolist(), x.words
    ([1, 3, 4], [1.0, nan, 4.0], ['c'])
    """
    if not chunks:
        return np.zeros(0, np.int64), [Column.of([]) for _ in range(count)]
    ids = np.concatenate([chunk[0] for chunk in chunks])
    order = None if bool(np.all(ids[1:] > ids[:-1])) else np.argsort(ids, kind="stable")
    columns = []
    for i in range(count):
        column = Column.joined([chunk[1][i] for chunk in chunks])
        columns.append(column if order is None else column.take(order))
        for chunk in chunks:
            chunk[1][i] = None
    return (ids if order is None else ids[order]), columns


def evaluate(query: Query, columns: Mapping[Name, Column], n: int) -> np.ndarray:
    """The runs ``query`` keeps (a boolean mask of ``n`` runs), over ``columns`` of every name
    it reads.

    Raises
    ------
    Unanswerable
        When the columns cannot answer exactly (see the module documentation).
    """
    return _Eval(columns, n).node(query.tree)[0]


class _Eval:
    def __init__(self, columns: Mapping[Name, Column], n: int) -> None:
        self.columns, self.n = columns, n

    def node(self, node: ast.expr) -> Truth:
        return three_valued(node, self.compare, _all, _any)

    def constant(self, value: bool) -> Truth:
        return np.full(self.n, value), np.full(self.n, not value)

    def unknown(self) -> Truth:
        return np.zeros(self.n, bool), np.zeros(self.n, bool)

    def column(self, node: ast.expr) -> Column:
        column = self.columns[_name_of(node)]
        if not column.exact:
            raise Unanswerable
        return column

    def compare(self, left: ast.expr, op: ast.cmpop, right: ast.expr) -> Truth:
        a, b = _constant(left), _constant(right)
        if isinstance(op, ast.In | ast.NotIn):
            assert isinstance(right, ast.List | ast.Tuple)
            items = [_constant(e) for e in right.elts]
            return self.member(left, items, isinstance(op, ast.NotIn))
        if a is not _NOT_CONSTANT and b is not _NOT_CONSTANT:
            test = _Py().compare(left, op, right)(None)  # type: ignore[arg-type]
            return self.unknown() if test is None else self.constant(test)
        if b is _NOT_CONSTANT and a is not _NOT_CONSTANT:
            if a is None:
                return self.unknown()  # `None == x` is unknown: only `x == None` tests presence
            left, right, op, b = right, left, _FLIP[type(op)](), a
        if b is _NOT_CONSTANT:
            raise Unanswerable  # two names
        column = self.column(left)
        present = column.kind != MISSING
        if b is None:
            return self.presence(present, op)
        compare = _OPS[type(op)]
        if type(b) is str:
            numbers = column.kind == NUMBER
            hit = column.text_compare(type(op), b)
            if _NUMBER_BELOW_TEXT[type(op)]:
                hit |= numbers
            return hit, present & ~hit
        value = _number(b)
        texts = column.kind == TEXT
        with np.errstate(invalid="ignore"):
            hit = compare(column.num, value) & (column.kind == NUMBER)
        if _NUMBER_BELOW_TEXT[_FLIP[type(op)]]:  # text OP number is number FLIP(OP) text
            hit |= texts
        return hit, present & ~hit

    def presence(self, present: np.ndarray, op: ast.cmpop) -> Truth:
        """``x == None`` / ``x != None`` test presence; any other comparison with ``None`` is
        unknown."""
        if isinstance(op, ast.Eq | ast.NotEq):
            test = present if isinstance(op, ast.NotEq) else ~present
            return test, ~test
        return self.unknown()

    def member(self, left: ast.expr, items: list[Any], negate: bool) -> Truth:
        if not items:
            return self.constant(negate)
        if _constant(left) is not _NOT_CONSTANT:
            raise Unanswerable  # a constant tested against a list: rare, the store answers
        column = self.column(left)
        present = column.kind != MISSING
        hit = np.zeros(self.n, bool)
        numbers = [_number(v) for v in items if v is not None and type(v) is not str]
        if numbers:
            hit |= np.isin(column.num, numbers) & (column.kind == NUMBER)
        ranks = [i for v in items if type(v) is str
                 and (i := bisect.bisect_left(column.words, v)) < len(column.words)
                 and column.words[i] == v]  # fmt: skip
        if ranks:
            hit |= np.isin(column.code, ranks)
        miss = present & ~hit
        if any(v is None for v in items):
            miss = np.zeros(self.n, bool)  # `x IN (.., NULL)` is unknown when x matches nothing
        return (miss, hit) if negate else (hit, miss)


def _number(value: Any) -> float:
    """A constant as the float it exactly is (booleans as 1 and 0)."""
    if type(value) is int and not -EXACT < value < EXACT:
        raise Unanswerable  # a float would round it
    return float(value)


def _all(masks: list[np.ndarray]) -> np.ndarray:
    out = masks[0]
    for mask in masks[1:]:
        out = out & mask
    return out


def _any(masks: list[np.ndarray]) -> np.ndarray:
    out = masks[0]
    for mask in masks[1:]:
        out = out | mask
    return out


def order(
    rows: np.ndarray, column: Column | None, ids: np.ndarray, *, descending: bool
) -> np.ndarray:
    """``rows`` (positions of runs) in the order of ``query_runs``: by ``column`` (missing
    values last in either direction, numbers before texts, ascending or not), then by run id
    (``ids``: the run id of each position); by run id alone (in the direction) without a
    column.

    Raises
    ------
    Unanswerable
        When the column holds a value that is neither a number exact as a float nor a text.
    """
    if column is None:
        return rows[::-1] if descending else rows
    if not column.exact:
        raise Unanswerable
    kind = column.kind[rows]
    number, text = kind == NUMBER, kind == TEXT
    rank = np.where(kind == MISSING, 2, np.where(number, 1 if descending else 0,
                                                 0 if descending else 1))  # fmt: skip
    nums = np.where(number, column.num[rows], 0.0)
    texts = np.where(text, column.code[rows], 0).astype(np.int64)
    if descending:
        nums, texts = -nums, -texts
    return rows[np.lexsort((ids[rows], texts, nums, rank))]


def group(
    rows: np.ndarray, keys: Sequence[Column], measures: Sequence[Column]
) -> list[tuple[tuple[Any, ...], int, list[tuple[int, float, float]]]]:
    """The runs at ``rows`` grouped by the values of ``keys``, as
    :func:`~trialbook.storage.sqlite_query.group_sql` answers: per group its key values (as
    :func:`~trialbook.storage.query.group_key` writes them), its number of runs and, per
    measure, the count, sum and sum of squares of its finite numbers.

    Raises
    ------
    Unanswerable
        When a key column holds a value that is neither a number exact as a float nor a text.

    Examples
    --------
    >>> import numpy as np
    >>> o, x = Column.of([1, 1.0, "a", None]), Column.of([2, 4, "z", 1])
    >>> group(np.arange(4), [o], [x])
    [((None,), 1, [(1, 1.0, 1.0)]), ((1,), 2, [(2, 6.0, 20.0)]), (('a',), 1, [(0, 0.0, 0.0)])]
    """
    codes, values, size = np.zeros(len(rows), np.int64), [], 1
    for column in keys:
        code, distinct = _codes(column, rows)
        codes = codes * len(distinct) + code
        size *= len(distinct)
        values.append(distinct)
        if size >= 2**62:
            raise Unanswerable
    if size <= 4 * len(rows) + 4096:  # few possible groups: counted, not sorted
        every = np.bincount(codes, minlength=size)
        found = np.flatnonzero(every)
        place = np.zeros(size, np.int64)
        place[found] = np.arange(len(found))
        inverse, counts = place[codes], every[found]
    else:
        found, inverse = np.unique(codes, return_inverse=True)
        counts = np.bincount(inverse, minlength=len(found))
    sums = []
    for column in measures:
        num = column.num[rows]
        kind = column.kind[rows]
        valid = ((kind == NUMBER) | (kind == WIDE)) & np.isfinite(num)
        where, x = inverse[valid], num[valid]
        with np.errstate(over="ignore"):  # beyond a float: infinity, as SQLite's total()
            sums.append((np.bincount(where, minlength=len(found)),
                         np.bincount(where, weights=x, minlength=len(found)),
                         np.bincount(where, weights=x * x, minlength=len(found))))  # fmt: skip
    out = []
    for g, combined in enumerate(found.tolist()):
        ident, rest = [], combined
        for distinct in reversed(values):
            rest, digit = divmod(rest, len(distinct))
            ident.append(distinct[digit])
        out.append((tuple(reversed(ident)), int(counts[g]),
                    [(int(n[g]), float(s[g]), float(q[g])) for n, s, q in sums]))  # fmt: skip
    return out


def _codes(column: Column, rows: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """Each row's code among the column's distinct values (``None``, then numbers, then texts,
    in order), and those values as group keys."""
    if not column.exact:
        raise Unanswerable
    kind = column.kind[rows]
    code = np.zeros(len(rows), np.int64)
    distinct: list[Any] = [None]
    number = kind == NUMBER
    if number.any():
        found, inverse = np.unique(column.num[rows[number]], return_inverse=True)
        code[number] = 1 + inverse
        distinct += [group_key(v) for v in found.tolist()]
    text = kind == TEXT
    if text.any():
        code[text] = len(distinct) + column.code[rows[text]]
        distinct += column.words
    return code, distinct
