"""The query language in SQLite: the SQL back end of :mod:`trialbook.storage.query`.

:func:`query_sql` turns a parsed :class:`~trialbook.storage.query.Query` into an SQLite boolean
expression over the ``runs`` table (its names become ``json_extract`` calls on the ``doc``
column, see :mod:`trialbook.storage.sqlite_schema`), :func:`name_sql` a name into an expression,
:func:`order_sql` a sort into an ``ORDER BY`` list. :func:`query_page` and :func:`names_present`
run them for :class:`~trialbook.storage.sqlite.SqliteStore`: the filter becomes a ``WHERE``
clause, the sort an ``ORDER BY``, the page ``LIMIT``/``OFFSET``; only the page's rows are
decoded. No extra index: filters on JSON paths scan the experiment's rows either way.

Both back ends agree: the Python one (:meth:`~trialbook.storage.query.Query.predicate`) reads
values as ``json_extract`` returns them, and three-valued logic as SQL has it. JSON values have
no type affinity; the run's columns do (``run_id INTEGER``, ``status TEXT``, ...), so a column
compared with a constant of the other type, or with another name, is written ``+column`` (an
expression without affinity): ``run_id = '2'`` would be true for run 2, ``+run_id = '2'`` is
false, as in Python. ``x IN ()`` is false even for a NULL ``x``, the rule of the language.

Examples
--------
>>> from trialbook.storage.query import parse_query
>>> sql, params = query_sql(parse_query('lr > 0.01 and status == "done"'))
>>> sql  # the column's test first: a run it settles spares the JSON
'(status = ? AND coalesce(json_extract(doc, ?), json_extract(doc, ?), json_extract(doc, ?)) > ?)'
>>> params
['done', '$.p."lr"', '$.f."lr"', '$.t."lr"', 0.01]
>>> query_sql(parse_query('run_id == "2" or seed in [1, 2]'))
('(+run_id = ? OR seed IN (?, ?))', ['2', 1, 2])
"""

from __future__ import annotations

import ast
import json
import math
import sqlite3
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from trialbook.storage.query import (
    _MARKS,
    _NOT_CONSTANT,
    NAMESPACES,
    Name,
    Query,
    _constant,
    _name_of,
    _Py,
    _render,
    group_key,
    metric_part,
    parse_name,
    parse_query,
)
from trialbook.storage.records import RunRecord
from trialbook.storage.sqlite_schema import RUN_SELECT

__all__ = [
    "DOC_SQL",
    "finite_json",
    "name_sql",
    "names_present",
    "order_sql",
    "query_page",
    "query_sql",
    "value_columns",
]

_CMP_SQL = {ast.Eq: "=", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
DOC_SQL = (
    "CASE WHEN instr(doc, 'NaN') OR instr(doc, 'Infinity') THEN tb_finite_json(doc) ELSE doc END"
)
"""The ``doc`` column read safely when documents may hold NaN (needs :func:`finite_json`
registered as ``tb_finite_json``). About twice slower than plain ``doc`` (each call re-parses
the document), so the SQLite store uses it only after plain ``doc`` failed as malformed."""

Read = Callable[[str, Any], list[Any]]
"""Runs one statement and returns its rows: ``read(sql, parameters)``."""


def finite_json(text: str | None) -> str | None:
    """A run document with NaN as ``null`` and infinities as ``9e999`` (valid JSON for SQLite).

    Examples
    --------
    >>> finite_json('{"m":{"loss":[3,NaN]},"p":{"x":-Infinity,"s":"NaN"}}')
    '{"m":{"loss":[3,null]},"p":{"x":-9e999,"s":"NaN"}}'
    """
    if text is None:
        return None
    return _render(json.loads(text, parse_constant=_MARKS.__getitem__))


def name_sql(name: Name, doc: str = "doc") -> tuple[str, list[Any]]:
    """An SQLite expression for a name of the language, with its bound parameters (``doc``: the
    SQL of the run document, e.g. :data:`DOC_SQL` when documents may hold NaN).

    Examples
    --------
    >>> name_sql(parse_name("tags.model"))
    ('json_extract(doc, ?)', ['$.t."model"'])
    """
    if name.where == "column":
        return name.path[0], []
    if name.where == "derived":
        return {
            "duration": "(finished - started)",
            "result": f"json_extract({doc}, '$.r')",
            "error": f"json_extract({doc}, '$.e[0]')",
        }[name.path[0]], []
    rest = "".join(f'."{p}"' for p in name.path)
    if name.where == "bare":
        paths = [f"$.{slot}{rest}" for slot in ("p", "f", "t")]
        one = f"json_extract({doc}, ?)"
        return f"coalesce({one}, {one}, {one})", paths
    if name.where == "metric":
        index, keys = metric_part(name.path)
        head, tail = f'."{name.path[0]}"', "".join(f'."{p}"' for p in keys)
        return f"json_extract({doc}, ?)", [f"$.m{head}[{index}]{tail}"]
    return f"json_extract({doc}, ?)", [f"$.{NAMESPACES[name.where]}{rest}"]


def query_sql(query: Query, doc: str = "doc") -> tuple[str, list[Any]]:
    """An SQLite boolean expression over the ``runs`` table and its bound parameters (``doc``
    as for :func:`name_sql`).

    Examples
    --------
    >>> query_sql(parse_query("run_id in [1, 2]"))
    ('run_id IN (?, ?)', [1, 2])
    """
    params: list[Any] = []
    return _Sql(params, doc).node(query.tree), params


def order_sql(order_by: str | None, descending: bool, doc: str = "doc") -> tuple[str, list[Any]]:
    """An SQLite ``ORDER BY`` list for :func:`~trialbook.storage.query.query_runs` semantics
    (missing values last, then by id), with its parameters.

    Examples
    --------
    >>> order_sql("run_id", True)
    ('run_id IS NULL, run_id DESC, run_id', [])
    """
    if not order_by:
        return ("run_id DESC" if descending else "run_id"), []
    expr, params = name_sql(parse_name(order_by), doc)
    direction = " DESC" if descending else ""
    return f"{expr} IS NULL, {expr}{direction}, run_id", params + params


class _Sql:
    def __init__(self, params: list[Any], doc: str) -> None:
        self.params, self.doc = params, doc

    def node(self, node: ast.expr) -> str:
        if isinstance(node, ast.BoolOp):
            # The tests of columns first: SQLite evaluates the terms in the order written, and
            # one that settles a run (`status == "done"` false in an `and`) spares the JSON of
            # the others (a third of a million documents not read, at 1M runs).
            terms: list[tuple[str, list[Any]]] = []
            for value in node.values:
                start = len(self.params)
                terms.append((self.node(value), self.params[start:]))
                del self.params[start:]
            terms.sort(key=lambda term: self.doc in term[0])
            for _, params in terms:
                self.params.extend(params)
            joiner = " AND " if isinstance(node.op, ast.And) else " OR "
            return "(" + joiner.join(sql for sql, _ in terms) + ")"
        if isinstance(node, ast.UnaryOp):
            return f"(NOT {self.node(node.operand)})"
        assert isinstance(node, ast.Compare)
        operands = [node.left, *node.comparators]
        parts = [self.compare(operands[i], op, operands[i + 1]) for i, op in enumerate(node.ops)]
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def operand(self, node: ast.expr, against: Sequence[Any] = ()) -> str:
        """``node`` in SQL; ``against``: the constants it is compared with (``_NOT_CONSTANT``
        for a name)."""
        value = _constant(node)
        if value is not _NOT_CONSTANT:
            self.params.append(value)
            return "?"
        name = _name_of(node)
        sql, params = name_sql(name, self.doc)
        self.params.extend(params)
        if name.where == "column" and not all(_same_class(sql, v) for v in against):
            # A column has a type affinity that would convert the other side (`run_id = '2'`
            # is true for run 2); `+run_id` is an expression without one, so values of
            # different types compare as the Python back end does. Left plain otherwise: it
            # keeps the primary key and key indexes usable.
            return f"+{sql}"
        return sql

    def compare(self, left: ast.expr, op: ast.cmpop, right: ast.expr) -> str:
        if isinstance(op, ast.In | ast.NotIn):
            assert isinstance(right, ast.List | ast.Tuple)
            values = [_constant(e) for e in right.elts]
            lhs = self.operand(left, values)
            self.params.extend(_bindable(v) for v in values)
            marks = ", ".join("?" * len(values))
            return f"{lhs} {'NOT IN' if isinstance(op, ast.NotIn) else 'IN'} ({marks})"
        if _is_huge(_constant(left)) or _is_huge(_constant(right)):
            return self.compare_huge(left, op, right)
        lhs = self.operand(left, [_constant(right)])
        if _constant(right) is None and isinstance(op, ast.Eq | ast.NotEq):
            return f"{lhs} IS {'NOT ' if isinstance(op, ast.NotEq) else ''}NULL"
        return f"{lhs} {_CMP_SQL[type(op)]} {self.operand(right, [_constant(left)])}"

    def compare_huge(self, left: ast.expr, op: ast.cmpop, right: ast.expr) -> str:
        """A comparison with an int beyond SQLite's 64 bits (which it cannot bind), with the
        Python back end's answer: exact, as Python compares an int with a float."""
        a, b = _constant(left), _constant(right)
        if a is not _NOT_CONSTANT and b is not _NOT_CONSTANT:  # two constants
            test = _Py().compare(left, op, right)(None)  # type: ignore[arg-type]
            return "NULL" if test is None else str(int(test))
        if _is_huge(a):  # the constant to the right: `H < x` is `x > H`
            left, right, op = right, left, _FLIPPED[type(op)]()
        huge = _constant(right)
        lhs = self.operand(left, [huge])
        below, above = _floats_around(huge)
        if isinstance(op, ast.Eq | ast.NotEq):
            self.params.append(below if below == above else _NO_NUMBER)
            return f"{lhs} {_CMP_SQL[type(op)]} ?"
        if below == above:  # exactly a float: compare with it
            self.params.append(below)
            return f"{lhs} {_CMP_SQL[type(op)]} ?"
        # Between two floats: x < H is x <= the float below, x > H is x >= the float above.
        below_h = isinstance(op, ast.Lt | ast.LtE)
        self.params.append(below if below_h else above)
        return f"{lhs} {'<=' if below_h else '>='} ?"


_INT64 = range(-(2**63), 2**63)
_NO_NUMBER = b"\x00not a number"
"""Bound for an int beyond 64 bits that no float equals: a BLOB, which equals no number or text
(and ``NULL = blob`` stays unknown)."""
_FLIPPED: dict[type, type] = {ast.Eq: ast.Eq, ast.NotEq: ast.NotEq, ast.Lt: ast.Gt,
                              ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE}  # fmt: skip


def _is_huge(value: Any) -> bool:
    """An int that SQLite cannot bind (beyond 64 bits)."""
    return type(value) is int and value not in _INT64


def _floats_around(value: int) -> tuple[float, float]:
    """The largest float <= ``value`` and the smallest float >= it (the same float when it is
    exactly one; infinity beyond the largest float)."""
    try:
        near = float(value)
    except OverflowError:
        top = sys.float_info.max
        return (top, math.inf) if value > 0 else (-math.inf, -top)
    if near == value:
        return near, near
    if near < value:
        return near, math.nextafter(near, math.inf)
    return math.nextafter(near, -math.inf), near


def _bindable(value: Any) -> Any:
    """An item of an ``in`` list as SQLite can bind it: an int beyond 64 bits becomes the float
    it is exactly, else :data:`_NO_NUMBER` (it equals no stored value)."""
    if not _is_huge(value):
        return value
    below, above = _floats_around(value)
    return below if below == above else _NO_NUMBER


_NUMERIC_COLUMNS = ("run_id", "seed", "created", "started", "finished")


def _same_class(column: str, value: Any) -> bool:
    """Whether comparing ``column`` with the constant ``value`` is safe from its affinity: a
    number (or bool, bound as an integer) with a numeric column, a text with a text column."""
    if value is None:
        return True
    if column in _NUMERIC_COLUMNS:
        return type(value) in (bool, int, float)
    return type(value) is str


# -- running queries for SqliteStore ---------------------------------------------------------


def query_page(
    read: Read,
    record: Callable[[Any], RunRecord],
    experiment_id: int,
    *,
    where: str | None,
    order_by: str | None,
    descending: bool,
    limit: int,
    offset: int,
    doc: str,
) -> tuple[int, list[RunRecord]]:
    """``(total matching, page)`` of the runs of an experiment, in SQL: ``read`` runs a
    statement, ``record`` decodes a row of :data:`~trialbook.storage.sqlite_schema.RUN_SELECT`;
    ``limit`` is -1 for all."""
    clause, params = "experiment_id = ?", [experiment_id]
    filtered = bool(where and where.strip())
    if where and filtered:
        sql, extra = query_sql(parse_query(where), doc)
        clause, params = f"{clause} AND {sql}", params + extra
    if (order_by or filtered) and limit != 0 and sqlite3.sqlite_version_info >= (3, 35):
        # One pass: each row's JSON is parsed once for the filter, the sort key and the count
        # (a count, then a page, would evaluate the filter on every run twice). The count is
        # read from the page's rows: a page of no rows (limit 0, or past the end) counts apart.
        key, key_params = name_sql(parse_name(order_by or "run_id"), doc)
        direction = " DESC" if descending else ""
        columns = ", ".join(f"r.{c.strip()}" for c in RUN_SELECT.split(","))
        # The page is chosen from (run id, key) alone, then only its runs are read whole.
        order = "{0}k IS NULL, {0}k" + direction + ", {0}run_id"
        rows = read(
            f"WITH m AS MATERIALIZED (SELECT run_id, {key} AS k FROM runs WHERE {clause}), "
            f"p AS (SELECT run_id, k FROM m ORDER BY {order.format('')} LIMIT ? OFFSET ?) "
            f"SELECT {columns}, (SELECT count(*) FROM m) FROM p JOIN runs r "
            f"ON r.experiment_id = ? AND r.run_id = p.run_id ORDER BY {order.format('p.')}",
            [*key_params, *params, limit, offset, experiment_id],
        )
        if rows or not offset:
            total = rows[0][-1] if rows else 0
            return total, [record(row[:-1]) for row in rows]
    order, order_params = order_sql(order_by, descending, doc)
    total = read(f"SELECT count(*) FROM runs WHERE {clause}", params)[0][0]
    rows = read(
        f"SELECT {RUN_SELECT} FROM runs WHERE {clause} ORDER BY {order} LIMIT ? OFFSET ?",
        [*params, *order_params, limit, offset],
    )
    return total, [record(row) for row in rows]


def names_present(
    read: Read, experiment_id: int, paths: Sequence[Sequence[str]], doc: str
) -> list[bool]:
    """For each list of JSON paths of the run document, whether some run of the experiment has
    one of them (an empty list: whether the experiment has a run at all), in one query."""
    tests, params = [], []
    for group in paths:
        where = " OR ".join(f"json_type({doc}, ?) IS NOT NULL" for _ in group) or "1"
        tests.append(f"EXISTS (SELECT 1 FROM runs WHERE experiment_id = ? AND ({where}))")
        params += [experiment_id, *group]
    return [bool(v) for v in read(f"SELECT {', '.join(tests)}", params)[0]]


def value_columns(
    read: Callable[[str, Any], Iterable[list[Any]]],
    experiment_id: int,
    names: Sequence[Name],
    doc: str = "doc",
    *,
    since: int | None = None,
    ranges: Sequence[tuple[int, int]] | None = None,
) -> tuple[Any, list[Any]]:
    """The run ids of the experiment in order (an array) and, for each of ``names``, the
    :class:`~trialbook.storage.value_columns.Column` of its runs' values as :func:`query_sql`
    compares them, in one pass (SQLite parses each document once for all the names);
    ``read(sql, params)`` gives the rows a chunk at a time (memory: a chunk of Python values).
    ``since``: only the runs whose ``seq`` is greater (written after that write); ``ranges``:
    only the runs whose ids are in one of these ``(first, last)`` ranges.

    Examples
    --------
    >>> import sqlite3
    >>> from trialbook.storage.query import parse_name
    >>> conn = sqlite3.connect(":memory:")
    >>> _ = conn.execute("CREATE TABLE runs (experiment_id, run_id, status, doc)")
    >>> _ = conn.executemany("INSERT INTO runs VALUES (1, ?, 'done', ?)", [
    ...     (2, '{"p": {"o": true}}'), (1, '{"p": {"o": {"a": 1}}}')])
    >>> ids, (o, status) = value_columns(lambda sql, p: [conn.execute(sql, p).fetchall()], 1,
    ...                                  [parse_name("params.o"), parse_name("status")])
    >>> ids.tolist(), o.words, o.num.tolist(), status.words
    ([1, 2], ['{"a":1}'], [nan, 1.0], ['done'])
    >>> conn.close()
    """
    import numpy as np

    from trialbook.storage.value_columns import Column, joined_chunks, transposed

    select, params = ["run_id"], []
    for name in names:
        expr, p = name_sql(name, doc)
        select.append(expr)
        params += p
    chunks = []
    changed = "" if since is None else " AND seq > ?"
    where = [experiment_id, *([] if since is None else [since])]
    if ranges is not None:
        changed += f" AND ({' OR '.join(['run_id BETWEEN ? AND ?'] * len(ranges)) or '0'})"
        where += [bound for pair in ranges for bound in pair]
    sql = (f"SELECT {', '.join(select)} FROM runs WHERE experiment_id = ?{changed} "
           "ORDER BY run_id")  # fmt: skip
    for rows in read(sql, [*params, *where]):
        columns = transposed(rows)
        chunks.append((np.array(columns[0], dtype=np.int64),
                       [Column.of(values) for values in columns[1:]]))  # fmt: skip
    return joined_chunks(chunks, len(names))


def group_sql(
    read: Read,
    experiment_id: int,
    *,
    where: str | None,
    keys: Sequence[Name],
    measures: Sequence[Name],
    doc: str = "doc",
) -> list[tuple[tuple[Any, ...], int, list[tuple[int, float, float]]]]:
    """The runs matching ``where`` grouped by the values of ``keys`` in one ``GROUP BY``:
    per group its key values (as :func:`~trialbook.storage.query.group_key` writes them:
    ``true``, ``1`` and ``1.0`` are one group, as they are one value in the query language),
    its number of runs and, for each of ``measures``, the count, sum and sum of squares (as
    floats) of its finite numbers (booleans, texts and missing values left out). ``keys`` and
    ``measures`` are names of one place each (not bare names).

    Examples
    --------
    >>> import sqlite3
    >>> from trialbook.storage.query import parse_name
    >>> conn = sqlite3.connect(":memory:")
    >>> _ = conn.execute("CREATE TABLE runs (experiment_id, run_id, doc)")
    >>> _ = conn.executemany("INSERT INTO runs VALUES (1, ?, ?)", [
    ...     (1, '{"p": {"o": true, "x": 1}}'), (2, '{"p": {"o": true, "x": 3}}'),
    ...     (3, '{"p": {"o": "a", "x": "z"}}')])
    >>> group_sql(lambda sql, p: conn.execute(sql, p).fetchall(), 1, where=None,
    ...           keys=[parse_name("params.o")], measures=[parse_name("params.x")])
    [((1,), 2, [(2, 4.0, 10.0)]), (('a',), 1, [(0, 0.0, 0.0)])]
    >>> conn.close()
    """
    select, params, group, values, numeric = [], [], [], [], []
    for i, name in enumerate(keys):
        expr, p = name_sql(name, doc)
        select.append(f"{expr} AS k{i}")
        params += p
        group.append(f"k{i}")  # true, 1 and 1.0 are one value, as in the query language
    for i, name in enumerate(measures):
        expr, p = name_sql(name, doc)
        select.append(f"{expr} AS x{i}")
        params += p
        values.append(f"CASE WHEN typeof(x{i}) IN ('integer', 'real') AND x{i} BETWEEN "
                      f"-1.7976931348623157e308 AND 1.7976931348623157e308 THEN x{i} END "
                      f"AS v{i}")  # abs() of -2**63 would overflow  # fmt: skip
        numeric += [f"count(v{i})", f"total(v{i})", f"total(v{i} * v{i})"]
    clause, where_params = "experiment_id = ?", [experiment_id]
    if where and where.strip():
        sql, extra = query_sql(parse_query(where), doc)
        clause, where_params = f"{clause} AND {sql}", where_params + extra
    # each run's document is read once (materialized: the values are not read again per use),
    # and each measure tested once (n materialized too: not once per sum; 5% at 1M runs)
    once = "MATERIALIZED " if sqlite3.sqlite_version_info >= (3, 35) else ""
    inner = f"SELECT {', '.join(select) or '1 AS one'} FROM runs WHERE {clause}"
    tested = ", ".join([*group, *values]) or "1 AS one"
    outer = ", ".join([*group, "count(*)", *numeric])
    by = f" GROUP BY {', '.join(group)}" if group else ""
    rows = read(f"WITH m AS {once}({inner}), n AS {once}(SELECT {tested} FROM m) "
                f"SELECT {outer} FROM n{by}", [*params, *where_params])  # fmt: skip
    out: list[tuple[tuple[Any, ...], int, list[tuple[int, float, float]]]] = []
    width = len(keys)
    for row in rows:
        ident = tuple(group_key(v) for v in row[:width])
        sums = [(row[width + 1 + 3 * i], row[width + 2 + 3 * i], row[width + 3 + 3 * i])
                for i in range(len(measures))]  # fmt: skip
        out.append((ident, row[width], sums))
    return out
