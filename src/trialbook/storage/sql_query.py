"""The query language in PostgreSQL, for :class:`~trialbook.storage.sql.SqlStore`.

:func:`pg_query` turns a filter, a sort and a page into one statement over the run documents
as ``jsonb`` (the generated column ``docb``, parsed once when a run is written): it answers the
number of matching runs and the ids of the page, and only the page's runs are then read in
full. :func:`pg_names_present` answers
:func:`~trialbook.storage.query.check_names` in one statement. Other databases, and the
queries that cannot be written in SQL, read light runs (columns and documents, no values
bundle) and use the Python evaluator (:mod:`trialbook.storage.query_light`).

Every value of the language is a pair of SQL expressions, its number (``numeric``) and its text
(``text``), one of them ``NULL`` (both for a missing value), so that the rules of
:mod:`trialbook.storage.query` hold as in Python: a text never equals a number, numbers sort
before texts, a JSON ``true`` is the number 1, texts compare by code point (``COLLATE "C"``), a
JSON array or object is its compact JSON text (read from ``doc::json``, which keeps the text as
written), and ``AND``/``OR``/``NOT`` are SQL's three-valued logic. Numbers compare as decimals:
a float is the decimal of its shortest text (its JSON text; ``float8::text`` for a column),
which orders floats exactly and compares them with integers exactly below 2**53; from 2**53 on
a float is an integer and is compared by that exact value (at any size), so that
``2**60 == 2.0**60`` and ``2**70 == 2.0**70`` as in Python.

PostgreSQL's ``jsonb`` refuses NaN, infinities and ``\\u0000`` in a text, which a run document
may hold: rows whose text has one of them have no ``docb`` (:data:`STORED_BAD`), and when an
experiment has such a row the statement says so and the query is answered by the Python
evaluator instead (correct first).

Examples
--------
>>> kw = {"order_by": None, "descending": False, "limit": 0, "offset": 0}
>>> sql, params = pg_query('"t"', 7, 'status == "done"', **kw)
>>> "FROM \\"t\\" WHERE experiment_id = :e" in sql, params["e"]
(True, 7)
>>> pg_query('"t"', 7, "x > 1e999", **kw) is None  # not finite: the Python evaluator
True
"""

from __future__ import annotations

import ast
import contextlib
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from trialbook.errors import StorageError
from trialbook.storage.bundle import load_doc
from trialbook.storage.query import (
    _NOT_CONSTANT,
    NAMESPACES,
    Name,
    _constant,
    _dotted,
    _name_of,
    metric_part,
    parse_name,
    parse_query,
)
from trialbook.storage.query_light import (
    light_record,
    needs,
    page,
    path_parts,
    paths_present,
    select,
)
from trialbook.storage.records import RunRecord
from trialbook.storage.sql_engine import for_scan
from trialbook.storage.sql_schema import runs_t

__all__ = [
    "STORED_BAD",
    "change_token",
    "group_runs",
    "names_present",
    "pg_group",
    "pg_names_present",
    "pg_query",
    "query_runs",
    "value_columns",
]

STORED_BAD = "(docb IS NULL AND doc IS NOT NULL)"
"""Whether a row's document is one that ``jsonb`` refuses (NaN, infinities, ``\\u0000``; a text
holding them too), which the stored ``jsonb`` column (``docb``, see
:data:`~trialbook.storage.sql_schema.DOC_JSONB`) leaves out: such a row is read by the Python
evaluator, never wrongly. Queries read ``docb`` rather than parsing each document again."""
_OPS = {ast.Eq: "=", ast.NotEq: "<>", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_INTEGER_COLUMNS = ("run_id", "seed")
_FLOAT_COLUMNS = ("created", "started", "finished")


@dataclass(frozen=True)
class _Value:
    """A value in SQL: its number and its text (``None``: surely ``NULL``); ``sure``: never
    missing (a constant); ``json``: for a value read from the documents, its ``jsonb``
    column, whose ``jsonb_typeof`` tells which of the two it has without computing them
    (PostgreSQL computes an expression again at each place it is written, and the exact
    number of a name is a few casts: a filter testing it once rather than four times runs a
    fifth faster)."""

    n: str | None
    t: str | None
    sure: bool = False
    json: str | None = None

    @property
    def kind(self) -> str | None:
        return None if self.json is None else f"jsonb_typeof({self.json})"

    def real(self) -> str:
        """Its number as a ``float8`` (``NULL`` beyond the range of one, as SQLite leaves such
        numbers out of its sums): for a value of the documents, cast from its ``jsonb``
        directly, the same float as from its exact number, which takes a few casts more
        (a grouping of 1M runs by two names with two measures: 2.2 s against 1.6 s)."""
        if self.json is None:
            number = self.n or "CAST(NULL AS numeric)"
            return (f"CASE WHEN abs({number}) <= 1.7976931348623157e308 THEN "
                    f"CAST({number} AS float8) END")  # fmt: skip
        number = f"CAST({self.json} AS numeric)"
        return (f"CASE {self.kind} WHEN 'number' THEN CASE WHEN abs({number}) <= "
                f"1.7976931348623157e308 THEN CAST({number} AS float8) END "
                f"WHEN 'boolean' THEN CASE WHEN CAST({self.json} AS boolean) THEN 1.0::float8 "
                "ELSE 0.0::float8 END END")  # fmt: skip

    def missing(self) -> str:
        if self.sure:
            return "FALSE"
        if self.kind is not None:
            return f"({self.kind} IS NULL)"
        parts = [f"{e} IS NULL" for e in (self.n, self.t) if e is not None]
        return "(" + " AND ".join(parts) + ")" if parts else "TRUE"

    def has_number(self) -> str:
        """Whether it has a number (``NULL`` for a missing value read from the documents)."""
        return self._has(self.n, "'number', 'boolean'")

    def has_text(self) -> str:
        """Whether it has a text (``NULL`` for a missing value read from the documents)."""
        return self._has(self.t, "'string', 'array', 'object'")

    def _has(self, expr: str | None, kinds: str) -> str:
        if expr is None:
            return "FALSE"
        if self.kind is not None:
            return f"({self.kind} IN ({kinds}))"
        return f"({expr} IS NOT NULL)"


class _Untranslatable(Exception):
    """A query this module does not write in SQL (the Python evaluator answers it)."""


class _Pg:
    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.names: dict[Name, int] = {}

    def bind(self, value: Any, cast: str) -> str:
        key = f"p{len(self.params)}"
        self.params[key] = value
        return f"CAST(:{key} AS {cast})"

    def constant(self, value: Any) -> _Value:
        if value is None:
            return _Value(None, None)
        if type(value) is str:
            if "\x00" in value:
                raise _Untranslatable  # PostgreSQL's texts cannot hold it
            return _Value(None, self.bind(value, "text"), sure=True)
        if type(value) is float and not math.isfinite(value):
            raise _Untranslatable
        number = repr(value) if type(value) is float and not _integral(value) else str(int(value))
        return _Value(self.bind(number, "numeric"), None, sure=True)

    def name(self, name: Name) -> _Value:
        if name.where == "column":
            column = name.path[0]
            if column in _INTEGER_COLUMNS:
                return _Value(f"CAST({column} AS numeric)", None)
            if column in _FLOAT_COLUMNS:
                return _Value(_float_number(column), None)
            return _Value(None, column)
        if name.where == "derived" and name.path[0] == "duration":
            return _Value(_float_number("(finished - started)"), None)
        index = self.names.setdefault(name, len(self.names))
        return _Value(f"n{index}", f"t{index}", json=f"v{index}")

    def operand(self, node: ast.expr) -> _Value:
        value = _constant(node)
        if value is not _NOT_CONSTANT:
            return self.constant(value)
        return self.name(_name_of(node))

    def node(self, node: ast.expr) -> str:
        if isinstance(node, ast.BoolOp):
            joiner = " AND " if isinstance(node.op, ast.And) else " OR "
            return "(" + joiner.join(self.node(v) for v in node.values) + ")"
        if isinstance(node, ast.UnaryOp):
            return f"(NOT {self.node(node.operand)})"
        assert isinstance(node, ast.Compare)
        operands = [node.left, *node.comparators]
        parts = [self.compare(operands[i], op, operands[i + 1]) for i, op in enumerate(node.ops)]
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def compare(self, left: ast.expr, op: ast.cmpop, right: ast.expr) -> str:
        a = self.operand(left)
        if isinstance(op, ast.In | ast.NotIn):
            assert isinstance(right, ast.List | ast.Tuple)
            found = self.contains(a, [_constant(e) for e in right.elts])
            return f"(NOT {found})" if isinstance(op, ast.NotIn) else found
        if _constant(right) is None and isinstance(op, ast.Eq | ast.NotEq):
            return a.missing() if isinstance(op, ast.Eq) else f"(NOT {a.missing()})"
        b = self.operand(right)
        unknown = f"{a.missing()} OR {b.missing()}"
        if isinstance(op, ast.Eq | ast.NotEq):
            same = []
            if a.n is not None and b.n is not None:
                same.append(f"{a.n} = {b.n}")
            if a.t is not None and b.t is not None:
                same.append(f"{a.t} = {b.t}")
            equal = f"coalesce({', '.join([*same, 'FALSE'])})"
            if isinstance(op, ast.NotEq):
                equal = f"(NOT {equal})"
            return f"(CASE WHEN {unknown} THEN NULL ELSE {equal} END)"
        sql_op = _OPS[type(op)]
        whens = [f"WHEN {unknown} THEN NULL"]
        if a.n is not None and b.n is not None:
            whens.append(f"WHEN {a.has_number()} AND {b.has_number()} THEN {a.n} {sql_op} {b.n}")
        if a.t is not None and b.t is not None:
            whens.append(
                f'WHEN {a.has_text()} AND {b.has_text()} THEN {a.t} COLLATE "C" {sql_op} {b.t}'
            )
        # both present, of different classes: numbers sort before texts
        a_number = a.has_number()
        cross = a_number if sql_op in ("<", "<=") else f"(NOT {a_number})"
        return f"(CASE {' '.join(whens)} ELSE {cross} END)"

    def contains(self, a: _Value, items: list[Any]) -> str:
        if not items:
            return "FALSE"  # an empty `or`, for missing values too
        numbers, texts = [], []
        for item in items:
            if item is None:
                continue
            b = self.constant(item)
            if b.n is not None and a.n is not None:
                numbers.append(b.n)
            elif b.t is not None and a.t is not None:
                texts.append(b.t)
        # one IN per class: the value is computed once, not once per item
        tests = [f"{x} IN ({', '.join(bound)})" for x, bound in ((a.n, numbers), (a.t, texts))
                 if bound]  # fmt: skip
        matched = "(" + " OR ".join(tests) + ")" if tests else "FALSE"
        otherwise = "NULL" if None in items else "FALSE"
        return f"(CASE WHEN {a.missing()} THEN NULL WHEN {matched} THEN TRUE ELSE {otherwise} END)"

    def chain(self, base: str, parts: list[str | int]) -> str:
        out = base
        for part in parts:
            out += f" -> {part}" if isinstance(part, int) else f" -> {self.bind(part, 'text')}"
        return out

    def columns(self) -> tuple[list[str], list[str]]:
        """The expressions of the ``v`` columns of the names read from the document and of
        the ``n``/``t`` columns read from them (``n0``, ``t0``, ``n1``, ...), for
        :func:`_documents`."""
        values, pairs = [], []
        for name, i in self.names.items():
            paths = _json_parts(name)
            found = [f"NULLIF({self.chain('docb', p)}, 'null'::jsonb)" for p in paths]
            texts = [f"NULLIF(CAST({self.chain('CAST(doc AS json)', p)} AS text), 'null')"
                     for p in paths]  # fmt: skip
            values.append(f"coalesce({', '.join(found)})")
            kind, text = f"jsonb_typeof(v{i})", f"coalesce({', '.join(texts)})"
            number = f"CAST(v{i} AS numeric)"
            # a float of 2**53 or more is an integer: its exact value, as Python compares it
            exact = (f"CASE WHEN abs({number}) < {2**53} THEN {number} "
                     f"WHEN {text} !~ '[.eE]' THEN {number} "
                     f"WHEN abs({number}) <= {_INT8_FLOATS} THEN "
                     f"CAST(CAST(CAST({number} AS float8) AS int8) AS numeric) "
                     f"ELSE {_float_integer(number)} END")  # fmt: skip
            pairs.append(
                f"CASE {kind} WHEN 'number' THEN {exact} WHEN 'boolean' THEN "
                f"CASE WHEN CAST(v{i} AS boolean) THEN 1::numeric ELSE 0::numeric END END"
            )
            pairs.append(
                f"CASE {kind} WHEN 'string' THEN v{i} #>> '{{}}' WHEN 'array' THEN {text} "
                f"WHEN 'object' THEN {text} END"
            )
        return values, pairs


_ROW_COLUMNS = "run_id, kind, status, key, seed, created, started, finished"
_INT8_FLOATS = 2**63 - 1024
"""The largest float below 2**63: the floats from 2**53 to it are integers that ``int8``
holds exactly."""


def _integral(value: float) -> bool:
    """Whether a float is compared by its exact integer value (see :func:`_float_number`)."""
    return abs(value) >= 2**53


def _float_integer(decimal: str) -> str:
    """The exact integer value of a float of 2**63 or more (beyond ``int8``) from the decimal
    of its shortest text: that decimal rounded to the float's precision, a multiple of
    2**(e - 52) for a float of 2**e up to 2**(e + 1). ``e`` is that of the decimal (``log``
    corrected by one where it rounds across a power of two), which can be below a power of two
    that the float is: then the multiple is of a half step, and the rounding still lands on the
    float (the shortest decimal is within a quarter step of it there)."""
    size = f"abs({decimal})"
    guess = f"floor(log(2::numeric, {size}))"
    e = (f"({guess} + CAST(power(2::numeric, {guess} + 1) <= {size} AS int) "
         f"- CAST(power(2::numeric, {guess}) > {size} AS int))")  # fmt: skip
    step = f"power(2::numeric, {e} - 52)"
    return f"(round({decimal} / {step}) * {step})"


def _float_number(expr: str) -> str:
    """A ``float8`` expression as the ``numeric`` the rules compare: the decimal of its
    shortest text (as JSON writes it), or its exact integer value from 2**53 on, so that it
    compares with integers as in Python."""
    return (f"CASE WHEN abs({expr}) BETWEEN {2**53} AND {_INT8_FLOATS} THEN "
            f"CAST(CAST({expr} AS int8) AS numeric) ELSE CAST(CAST({expr} AS text) AS numeric) "
            "END")  # fmt: skip


def pg_query(
    table: str,
    experiment_id: int,
    where: str | None,
    *,
    order_by: str | None,
    descending: bool,
    limit: int | None,
    offset: int,
) -> tuple[str, dict[str, Any]] | None:
    """One PostgreSQL statement answering a query over the runs table ``table`` (quoted,
    schema included) and its parameters, or ``None`` when the query is not written in SQL.

    Its rows: first ``(0, NULL, total matching, whether some document needs the Python
    evaluator)``, then ``(1, run id, position, NULL)`` for each run of the page.
    """
    pg = _Pg()
    try:
        test = pg.node(parse_query(where).tree) if where and where.strip() else "TRUE"
        keys = _order(pg, order_by, descending)
    except _Untranslatable:
        return None
    values, pairs = pg.columns()
    params = {"e": experiment_id, **pg.params, "limit": limit, "offset": offset}
    narrow = _id_range(parse_query(where).tree, params) if where and where.strip() else ""
    key_columns = "".join(f", {expr} AS k{i}" for i, (expr, _) in enumerate(keys))
    order = ", ".join(f"k{i}{suffix}" for i, (_, suffix) in enumerate(keys)) + ", run_id"
    page = "" if limit is None else " LIMIT :limit"
    # the page's positions: numbered after the sort and the limit, over its rows only
    numbered = f"SELECT 1, run_id, row_number() OVER (ORDER BY {order}), NULL FROM"
    if not values:  # only the run's columns: counted and paged through the indexes
        matching = f"{table} WHERE experiment_id = :e{narrow} AND ({test}) IS TRUE"
        sql = (
            f"SELECT 0, NULL, (SELECT count(*) FROM {matching}), FALSE UNION ALL {numbered} "
            f"(SELECT run_id{key_columns} FROM {matching} ORDER BY {order}{page} OFFSET :offset) p"
        )
        return sql, params
    source = _documents(table, values, pairs, narrow)
    # m: the runs kept and those needing the Python evaluator, the only ones read again
    # (holding every run, m was written to disk at a million runs)
    kept = f"({test}) IS TRUE"
    sql = (
        f"WITH m AS (SELECT run_id, bad, {kept} AS keep{key_columns} FROM {source} "
        f"WHERE {kept} OR bad) "
        "SELECT 0, NULL, (SELECT count(*) FROM m WHERE keep), "
        f"(SELECT coalesce(bool_or(bad), false) FROM m) UNION ALL {numbered} "
        f"(SELECT run_id{''.join(f', k{i}' for i in range(len(keys)))} FROM m WHERE keep "
        f"ORDER BY {order}{page} OFFSET :offset) p"
    )
    return sql, params


_ID_OPS = {ast.Eq: "=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def _id_range(tree: ast.expr, params: dict[str, Any]) -> str:
    """Plain conditions on ``run_id`` that the filter implies (its conjuncts comparing
    ``run_id`` with integers), as `` AND ...`` with their parameters added to ``params``: the
    index of ``(experiment_id, run_id)`` then serves them (an export's chunks, ``run_id >
    last``), where the filter's own SQL, written for values of any type, reads every run.

    Examples
    --------
    >>> params = {}
    >>> _id_range(parse_query("run_id > 5 and x == 1 and run_id in [7, 8]").tree, params)
    ' AND run_id > :r0 AND run_id IN (:r1, :r2)'
    >>> params
    {'r0': 5, 'r1': 7, 'r2': 8}
    >>> _id_range(parse_query("run_id > 5 or x == 1").tree, {})
    ''
    """
    conjuncts = [tree]
    if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And):
        conjuncts = tree.values
    out: list[str] = []
    count = itertools.count()

    def bind(value: int) -> str:
        key = f"r{next(count)}"
        params[key] = value
        return f":{key}"

    def integer(value: Any) -> bool:
        return type(value) is int and -(2**63) <= value < 2**63

    for node in conjuncts:
        if not isinstance(node, ast.Compare) or len(node.ops) != 1:
            continue
        left, op, right = node.left, node.ops[0], node.comparators[0]
        if _constant(left) is not _NOT_CONSTANT and type(op) in _ID_OPS:
            left, right = right, left
            op = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE}.get(
                type(op), type(op)
            )()
        if _dotted(left) != ["run_id"]:
            continue
        if isinstance(op, ast.In) and isinstance(right, ast.List | ast.Tuple):
            items = [_constant(e) for e in right.elts]
            if items and all(integer(v) for v in items):
                out.append(f" AND run_id IN ({', '.join(bind(v) for v in items)})")
        elif type(op) in _ID_OPS and integer(_constant(right)):
            out.append(f" AND run_id {_ID_OPS[type(op)]} {bind(_constant(right))}")
    return "".join(out)


def _documents(table: str, values: list[str], pairs: list[str], narrow: str = "") -> str:
    """The runs of experiment ``:e`` with the ``n``/``t`` columns of the names read from their
    documents (``values`` read from ``docb`` as ``v0``, ``v1``..., then ``pairs`` from them as
    ``n0``, ``t0``, ``n1``...). The values are read once each, in a subquery that returns them
    through :func:`_once`, and that PostgreSQL scans in parallel; the pairs, cheap next to
    them, are written where they are used. Without names, the runs' columns alone."""
    if not values:
        return (f"(SELECT {_ROW_COLUMNS}, FALSE AS bad FROM {table} WHERE experiment_id = :e"
                f"{narrow}) x")  # fmt: skip
    read = ", ".join(_once(value, f"v{i}") for i, value in enumerate(values))
    named = [f"{kind}{i}" for i in range(len(values)) for kind in "nt"]
    passed = "".join(f", v{i}" for i in range(len(values)))  # for _Value.kind
    return (
        f"(SELECT {_ROW_COLUMNS}, {STORED_BAD} AS bad{passed}, "
        f"{', '.join(f'{p} AS {n}' for p, n in zip(pairs, named, strict=True))} "
        f"FROM (SELECT {_ROW_COLUMNS}, doc, docb, {read} FROM {table} "
        f"WHERE experiment_id = :e{narrow}) r) x"
    )


def _once(expr: str, name: str) -> str:
    """A select-list column ``name`` that PostgreSQL computes once per row: ``expr`` as the
    one row of a set-returning function. The planner does not flatten a subquery returning
    one, so it does not copy the expression into each place the column is used; an ``OFFSET
    0`` fence did that too, but kept the subquery from a parallel scan, which this one may
    have (at 1,000,000 runs, a filter of two names: 0.64 s against 0.96 s; a grouping by two
    names with two measures: 2.4 s against 4.8 s). A grouping by such a column is also
    estimated at the default number of groups, where one by an expression of ``docb`` was
    estimated at one group per run (every document differs), which chose a sort on disk over
    a hash table of the few groups there are."""
    return f"unnest(ARRAY[{expr}]) AS {name}"


def _order(pg: _Pg, order_by: str | None, descending: bool) -> list[tuple[str, str]]:
    """``(expression, direction)`` keys of the sort (before ``run_id``): missing values last,
    numbers before texts, texts by code point."""
    direction = " DESC" if descending else ""
    if not order_by:
        return [("run_id", direction)]
    value = pg.name(parse_name(order_by))
    keys = [(value.missing(), "")]
    keys.append(("FALSE" if value.n is None else f"{value.n} IS NULL", direction))
    if value.n is not None:
        keys.append((value.n, direction))
    if value.t is not None:
        keys.append((f'{value.t} COLLATE "C"', direction))
    return keys


def pg_group(
    table: str,
    experiment_id: int,
    where: str | None,
    keys: Sequence[Name],
    measures: Sequence[Name],
    *,
    exact: bool = False,
) -> tuple[str, dict[str, Any]] | None:
    """One PostgreSQL statement grouping the runs that match ``where`` by the values of
    ``keys``, with the count, sum and sum of squares of each of ``measures`` per group, or
    ``None`` when the filter is not written in SQL.

    Values are the language's (a number and a text per name, see the module): ``true``, ``1``
    and ``1.0`` are one group, a number and a text never are, and a measure counts numbers
    (booleans as 1 and 0). Its rows, one per group: ``(whether some document of the group
    needs the Python evaluator, key numbers and texts ..., count, then count, sum, sum of
    squares per measure)``. The sums are ``float8``'s, as SQLite's ``total()``; ``exact``:
    ``numeric``'s, three times slower, for when ``float8``'s overflow (it raises where
    ``total()`` gives infinity: squares of numbers beyond 1e154).
    """
    pg = _Pg()
    try:
        test = pg.node(parse_query(where).tree) if where and where.strip() else "TRUE"
        chosen = [pg.name(k) for k in keys]
        measured = [pg.name(m) for m in measures]
    except _Untranslatable:
        return None
    values, pairs = pg.columns()
    params = {"e": experiment_id, **pg.params}
    source = _documents(table, values, pairs)
    columns, group = [], []
    for i, value in enumerate(chosen):
        columns += [_once(value.n or "CAST(NULL AS numeric)", f"gn{i}"),
                    _once(value.t or "CAST(NULL AS text)", f"gt{i}")]  # fmt: skip
        group += [f"gn{i}", f"gt{i}"]
    sums = []
    for i, value in enumerate(measured):
        # finite as a float8: a number beyond its range is left out, as SQLite does
        columns.append(_once(value.real(), f"x{i}"))
        x = f"CAST(x{i} AS numeric)" if exact else f"x{i}"
        sums += [f"count(x{i}) FILTER (WHERE keep)", f"sum({x}) FILTER (WHERE keep)",
                 f"sum({x} * {x}) FILTER (WHERE keep)"]  # fmt: skip
    listed = ", ".join(group)
    # a plain GROUP BY, which PostgreSQL aggregates in parallel (a grouping set of all runs,
    # for whether some document was left out, made the leader aggregate every run alone)
    sql = (
        f"WITH m AS (SELECT bad, ({test}) IS TRUE AS keep, {', '.join(columns)} FROM {source}) "
        f"SELECT bool_or(bad), {listed}, count(*) FILTER (WHERE keep)"
        f"{''.join(', ' + s for s in sums)} FROM m GROUP BY {listed}"
    )
    return sql, params


def pg_names_present(
    table: str, experiment_id: int, paths: list[list[str]]
) -> tuple[str, dict[str, Any]]:
    """One statement telling, for each list of JSON paths, whether a run of the experiment has
    one of them in its document (an empty list: whether it has a run). Each is an ``EXISTS``,
    which stops at the first run that has it: a name of the first runs costs a few rows, not
    a million. Documents ``jsonb`` refuses (see :data:`STORED_BAD`) are skipped: the caller
    checks those in Python when a name was not found."""
    pg = _Pg()
    doc = "docb"
    tests = []
    for group in paths:
        found = " OR ".join(f"{pg.chain(doc, path_parts(p))} IS NOT NULL" for p in group)
        tests.append(f"EXISTS (SELECT 1 FROM {table} WHERE experiment_id = :e"
                     f"{f' AND ({found})' if found else ''})")  # fmt: skip
    return f"SELECT {', '.join(tests)}", {"e": experiment_id, **pg.params}


# -- running queries for SqlStore ------------------------------------------------------------


def query_runs(
    db: Any,
    read_runs: Callable[[list[int]], list[RunRecord]],
    experiment_id: int,
    *,
    where: str | None,
    order_by: str | None,
    descending: bool,
    limit: int | None,
    offset: int,
) -> tuple[int, list[RunRecord]]:
    """``(total matching, page)`` for :class:`~trialbook.storage.sql.SqlStore` (``db`` its
    :class:`~trialbook.storage.sql_engine.SqlConnection`, ``read_runs(ids)`` its batched read):
    one statement on PostgreSQL, else the Python evaluator over light runs."""
    if db.engine.dialect.name == "postgresql":
        plan = pg_query(
            _table(db), experiment_id, where, order_by=order_by, descending=descending,
            limit=limit, offset=offset,
        )  # fmt: skip
        if plan is not None:
            rows = db.read(sa.text(plan[0]), plan[1], scan=True)
            stats = next(row for row in rows if row[0] == 0)
            if not stats[3]:
                ids = [
                    int(r[1]) for r in sorted((r for r in rows if r[0] == 1), key=lambda r: r[2])
                ]
                return int(stats[2]), page(read_runs, ids)
    runs = _light_runs(db, experiment_id, *needs(where, order_by))
    total, ids = select(
        runs, where, order_by=order_by, descending=descending, limit=limit, offset=offset
    )
    return total, page(read_runs, ids)


def group_runs(
    db: Any,
    experiment_id: int,
    *,
    where: str | None,
    keys: Sequence[Name],
    measures: Sequence[Name],
) -> list[tuple[tuple[Any, ...], int, list[tuple[int, float, float]]]] | None:
    """The groups of :func:`pg_group` on PostgreSQL, as
    :func:`~trialbook.storage.sqlite_query.group_sql` gives them (key values as
    :func:`~trialbook.storage.query.group_key` writes them, count, and per measure its count,
    sum and sum of squares); ``None`` on other databases, for a filter not written in SQL, and
    when some document is one ``jsonb`` refuses: the caller groups in Python then."""
    if db.engine.dialect.name != "postgresql":
        return None
    plan = pg_group(_table(db), experiment_id, where, keys, measures)
    if plan is None:
        return None
    try:
        rows = db.read(sa.text(plan[0]), plan[1], scan=True)
    except StorageError as exc:
        if getattr(getattr(exc.__cause__, "orig", None), "sqlstate", None) != _OVERFLOW:
            raise
        plan = pg_group(_table(db), experiment_id, where, keys, measures, exact=True)
        assert plan is not None
        rows = db.read(sa.text(plan[0]), plan[1], scan=True)
    if any(row[0] for row in rows):  # a document jsonb refuses was left out
        return None
    width = 2 * len(keys)
    out = []
    for row in rows:
        count = int(row[1 + width])
        if not count:
            continue  # no run of this group matches the filter
        ident = tuple(_key_value(row[1 + 2 * i], row[2 + 2 * i]) for i in range(len(keys)))
        rest = row[2 + width :]
        sums = [(int(rest[3 * i]), float(rest[3 * i + 1] or 0.0), float(rest[3 * i + 2] or 0.0))
                for i in range(len(measures))]  # fmt: skip
        out.append((ident, count, sums))
    return out


_OVERFLOW = "22003"
"""PostgreSQL's SQLSTATE of a number out of its type's range (``float8`` sums overflowing)."""


def _key_value(number: Any, text: str | None) -> Any:
    """A group's key from its number (a ``Decimal``) or text: an integral number as an int,
    as :func:`~trialbook.storage.query.group_key` writes ``1.0`` and ``true``."""
    if number is None:
        return text
    if number == number.to_integral_value():
        return int(number)
    return float(number)


def names_present(db: Any, experiment_id: int, paths: Sequence[Sequence[str]]) -> list[bool]:
    """For each list of JSON paths, whether a run of the experiment has one of them (see
    :func:`~trialbook.storage.query.check_names`): one statement on PostgreSQL (and one more
    read of the documents ``jsonb`` refuses, when needed), else a read of the documents."""
    groups = [list(group) for group in paths]
    if db.engine.dialect.name != "postgresql":
        rows = db.read(sa.select(runs_t.c.doc).where(runs_t.c.experiment_id == experiment_id))
        return paths_present((load_doc(row[0]) for row in rows), groups)
    sql, params = pg_names_present(_table(db), experiment_id, groups)
    found = [bool(v) for v in db.read(sa.text(sql), params)[0]]
    if not all(found):  # the documents jsonb refuses, if any, in Python
        rest = db.read(
            sa.text(f"SELECT doc FROM {_table(db)} WHERE experiment_id = :e AND {STORED_BAD}"),
            {"e": experiment_id},
        )
        more = paths_present((load_doc(row[0]) for row in rest), groups)
        found = [a or b for a, b in zip(found, more, strict=True)]
    return found


def change_token(db: Any) -> str | None:
    """PostgreSQL's snapshot (``txid_current_snapshot()``: the next transaction id and those
    in progress): equal to an earlier one only if no transaction committed a change anywhere
    on the server in between. ``None`` on other databases."""
    if db.engine.dialect.name != "postgresql":
        return None
    return str(db.read(sa.text("SELECT CAST(txid_current_snapshot() AS text)"))[0][0])


_KIND_SQL = (
    "CASE jsonb_typeof({v}) WHEN 'number' THEN CASE WHEN abs(CAST({v} AS numeric)) >= "
    "9007199254740992 THEN 3 ELSE 1 END WHEN 'boolean' THEN 1 "
    "WHEN 'string' THEN 2 WHEN 'object' THEN 4 WHEN 'array' THEN 4 ELSE 0 END"
)
"""The kind of a ``jsonb`` value (:data:`~trialbook.storage.value_columns.MISSING`...): a
number of 2**53 or more is left to the store (``jsonb`` writes ``1e20`` as an integer: whether
it was an integer or a float, which exact comparisons and group keys need, is in the document's
text only); a dict or list is compared by SQLite as its JSON text, in the order of its keys as
written, which ``jsonb`` does not keep: the columns leave it to the store too."""
_NUMBER_SQL = (
    "CASE jsonb_typeof({v}) WHEN 'number' THEN CASE WHEN abs(CAST({v} AS numeric)) <= "
    "1.7976931348623157e308 THEN CAST({v} AS float8) END WHEN 'boolean' THEN CASE WHEN "
    "CAST({v} AS boolean) THEN 1.0 ELSE 0.0 END END"
)
_TEXT_SQL = "CASE jsonb_typeof({v}) WHEN 'string' THEN {v} #>> '{{}}' END"


def value_columns(
    db: Any,
    experiment_id: int,
    names: Sequence[Name],
    since: int | None = None,
    *,
    ranges: Sequence[tuple[int, int]] | None = None,
) -> tuple[Any, list[Any]] | None:
    """The run ids of the experiment in order (an array) and, for each of ``names``, the
    :class:`~trialbook.storage.value_columns.Column` of its runs' values as the query language
    reads them (booleans as 1 and 0), from the stored ``jsonb`` in one statement, streamed, its
    kind, number and text computed in SQL; ``None`` on other databases and when some document
    is one ``jsonb`` refuses. ``since``: only the runs whose ``seq`` is greater (written after
    that write of the experiment's runs); ``ranges``: only the runs whose ids are in one of
    these ``(first, last)`` ranges."""
    if db.engine.dialect.name != "postgresql":
        return None
    from trialbook.storage.value_columns import joined_chunks

    inner: list[str] = []
    select: list[str] = []
    params: dict[str, Any] = {}
    widths: list[int] = []
    for i, name in enumerate(names):
        if name.where == "column" or name.path == ("duration",):
            inner.append(f"{'finished - started' if name.where == 'derived' else name.path[0]} "
                         f"AS v{i}")  # fmt: skip
            select.append(f"v{i}")
            widths.append(1)
            continue
        values = []
        for j, path in enumerate(_json_parts(name)):
            params[f"p{i}_{j}"] = [str(part) for part in path]  # text[] for #>
            values.append(f"NULLIF(docb #> CAST(:p{i}_{j} AS text[]), 'null')")
        value = values[0] if len(values) == 1 else f"COALESCE({', '.join(values)})"
        inner.append(f"{value} AS v{i}")
        select += [sql.format(v=f"v{i}") for sql in (_KIND_SQL, _NUMBER_SQL, _TEXT_SQL)]
        widths.append(3)
    params["e"] = experiment_id
    changed = ""
    if since is not None:
        changed, params["since"] = " AND seq > :since", since
    if ranges is not None:
        tests = []
        for i, (first, last) in enumerate(ranges):
            tests.append(f"run_id BETWEEN :ra{i} AND :rb{i}")
            params[f"ra{i}"], params[f"rb{i}"] = first, last
        changed += f" AND ({' OR '.join(tests) or 'FALSE'})"
    statement = sa.text(
        f"SELECT run_id, bad{''.join(', ' + c for c in select)} FROM (SELECT run_id, "
        f"{STORED_BAD} AS bad{''.join(', ' + c for c in inner)} FROM {_table(db)} "
        f"WHERE experiment_id = :e{changed} OFFSET 0) AS v"
    )  # OFFSET 0: each value extracted once; no ORDER BY: sorted here (no sort on disk)
    try:
        with db.engine.connect() as conn:
            for_scan(conn)
            result = conn.execution_options(stream_results=True).execute(statement, params)
            with contextlib.closing(result):
                chunks = list(_value_chunks(result, widths, db.give_way))
    except sa.exc.SQLAlchemyError as exc:
        raise db.error(exc) from exc
    if any(chunk is None for chunk in chunks):
        return None
    return joined_chunks(chunks, len(names))


def _value_chunks(result: Any, widths: list[int], give_way: Callable[[], None]) -> Iterator[Any]:
    """``(ids, columns)`` of each chunk of rows of :func:`value_columns`' statement (a name
    is one column of plain values, or three: kind, number, text), until (and with) ``None``
    for a chunk holding a document ``jsonb`` refuses; ``give_way()`` is called before each
    chunk is fetched."""
    import numpy as np

    from trialbook.storage.value_columns import Column, transposed

    chunks = result.partitions(20_000)
    while True:
        give_way()
        if not (rows := next(chunks, None)):
            return
        columns = transposed(rows)
        if any(columns[1]):
            yield None
            return
        out, at = [], 2
        for width in widths:
            if width == 1:
                out.append(Column.of(columns[at]))
            else:
                out.append(Column.typed(*columns[at : at + 3]))
            at += width
        yield np.array(columns[0], dtype=np.int64), out


def _json_parts(name: Name) -> list[list[str | int]]:
    """The paths (keys and indexes) of the document where ``name`` lives, tried in order."""
    if name.where == "derived":
        return [["r"]] if name.path[0] == "result" else [["e", 0]]
    if name.where == "bare":
        return [[slot, *name.path] for slot in ("p", "f", "t")]
    if name.where == "metric":
        index, rest = metric_part(name.path)
        return [["m", name.path[0], index, *rest]]
    return [[NAMESPACES[name.where], *name.path]]


def _table(db: Any) -> str:
    """The runs table's name for SQL text (see ``SqlConnection.qualified``)."""
    return str(db.qualified(runs_t))


def _light_runs(db: Any, experiment_id: int, columns: list[str], doc: bool) -> list[RunRecord]:
    """The experiment's runs with only ``columns`` (and the document when ``doc``), by id."""
    selected = [runs_t.c.run_id, *(runs_t.c[c] for c in columns)]
    if doc:
        selected.append(runs_t.c.doc)
    rows = db.read(
        sa.select(*selected)
        .where(runs_t.c.experiment_id == experiment_id)
        .order_by(runs_t.c.run_id)
    )
    names = ["run_id", *columns]
    return [
        light_record(dict(zip(names, row, strict=False)), load_doc(row[-1]) if doc else None)
        for row in rows
    ]
