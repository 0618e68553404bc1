"""Queries of :class:`~trialbook.storage.mongo.MongoStore`: a ``find`` filter on the run
columns, the Python evaluator for the rest.

A run's columns (``status``, ``kind``, ``key``, ``run_id``, ``seed``, ``created``, ``started``,
``finished``) are fields of its document, so the comparisons of a filter that name a column and
a constant become a ``find`` filter (:func:`column_filter`); its JSON values are kept as text in
``doc`` (so that NaN, infinities, integers beyond 64 bits and the order of keys survive), which a
filter cannot read: the comparisons that name a value, and sorting, are done by the Python
evaluator over the matching documents read without their values bundle
(:mod:`trialbook.storage.query_light`). The stored format is unchanged, so stores written
before read the same.

The filter keeps the three-valued logic of the language exactly: each part of the query is
written twice, the documents where it is true and those where it is false (``not`` swaps them;
a comparison with a missing value is neither). A part it cannot write (a value of the document,
two names compared) matches every document in both, so the filter is then a superset of the
answer and the evaluator decides; a filter without such a part is the answer, and a count by
status is one ``count`` command.

Examples
--------
>>> column_filter('status == "done" and seed != 3')[1]
True
>>> column_filter('status == "done" and lr > 0.1')
({'$and': [{'status': {'$ne': None}}, {'status': {'$eq': 'done'}}]}, False)
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from typing import Any

from trialbook.storage.bundle import load_doc
from trialbook.storage.query import (
    _NOT_CONSTANT,
    _constant,
    _name_of,
    _Py,
    parse_query,
    three_valued,
)
from trialbook.storage.query_light import light_record, needs, page, paths_present, select
from trialbook.storage.records import RunRecord

__all__ = ["column_filter", "names_present", "query_runs"]

_NONE: dict[str, Any] = {"_id": {"$in": []}}
"""Matches no document."""
_NUMBER_COLUMNS = ("run_id", "seed", "created", "started", "finished")
_TEXT_COLUMNS = ("status", "kind", "key")
_OPS = {ast.Eq: "$eq", ast.NotEq: "$ne", ast.Lt: "$lt", ast.LtE: "$lte", ast.Gt: "$gt",
        ast.GtE: "$gte"}  # fmt: skip
_NEGATED = {"$eq": "$ne", "$ne": "$eq", "$lt": "$gte", "$lte": "$gt", "$gt": "$lte",
            "$gte": "$lt"}  # fmt: skip
_FLIPPED = {ast.Lt: ast.Gt(), ast.LtE: ast.GtE(), ast.Gt: ast.Lt(), ast.GtE: ast.LtE()}

Filter = dict[str, Any] | None
"""A ``find`` filter; ``None`` matches every document."""


def column_filter(where: str | None) -> tuple[Filter, bool]:
    """A ``find`` filter on the run columns that every run matching ``where`` matches, and
    whether it matches exactly those runs.

    Examples
    --------
    >>> column_filter("seed == None")
    ({'seed': None}, True)
    >>> column_filter("kind in []")
    ({'_id': {'$in': []}}, True)
    """
    if not where or not where.strip():
        return None, True
    writer = _Writer()
    true, _ = writer.node(parse_query(where).tree)
    return true, writer.exact


def _and(parts: list[Filter]) -> Filter:
    kept = [p for p in parts if p is not None]
    if any(p == _NONE for p in kept):
        return _NONE
    return None if not kept else kept[0] if len(kept) == 1 else {"$and": kept}


def _or(parts: list[Filter]) -> Filter:
    if any(p is None for p in parts):
        return None
    kept = [p for p in parts if p != _NONE]
    return _NONE if not kept else kept[0] if len(kept) == 1 else {"$or": kept}


def _class(value: Any) -> str:
    return "text" if type(value) is str else "number"


def _storable(value: Any) -> bool:
    """Whether BSON holds ``value`` (an ``int`` must fit in 64 bits)."""
    return type(value) is not int or -(2**63) <= value < 2**63


def _value(value: Any) -> Any:
    return int(value) if type(value) is bool else value


class _Writer:
    """Writes each part of a query as ``(where true, where false)`` filters."""

    def __init__(self) -> None:
        self.exact = True

    def unknown(self) -> tuple[Filter, Filter]:
        self.exact = False
        return None, None

    def node(self, node: ast.expr) -> tuple[Filter, Filter]:
        return three_valued(node, self.compare, _and, _or)

    def compare(self, left: ast.expr, op: ast.cmpop, right: ast.expr) -> tuple[Filter, Filter]:
        a, b = _constant(left), _constant(right)
        has_in = isinstance(op, ast.In | ast.NotIn)
        if a is not _NOT_CONSTANT and (b is not _NOT_CONSTANT or has_in):
            outcome = _Py().compare(left, op, right)(RunRecord(0))  # no name: the same for all
            return (None if outcome is True else _NONE), (None if outcome is False else _NONE)
        if a is not _NOT_CONSTANT:  # constant op name: the name on the left
            if a is None:
                return _NONE, _NONE  # `None == x` is unknown (only `x == None` tests presence)
            flipped = op if isinstance(op, ast.Eq | ast.NotEq) else _FLIPPED[type(op)]
            return self.compare(right, flipped, left)
        name = _name_of(left)
        # BSON has no int beyond 64 bits: Python compares one
        constants = [_constant(e) for e in right.elts] if has_in else [b]  # type: ignore[attr-defined]
        if (
            name.where != "column"
            or (b is _NOT_CONSTANT and not has_in)
            or not all(_storable(c) for c in constants)
        ):
            return self.unknown()
        column = name.path[0]
        kind = "number" if column in _NUMBER_COLUMNS else "text"
        if has_in:
            assert isinstance(right, ast.List | ast.Tuple)
            true, false = self.contains(column, kind, [_constant(e) for e in right.elts])
            return (false, true) if isinstance(op, ast.NotIn) else (true, false)
        return self.versus(column, kind, op, b)

    @staticmethod
    def versus(column: str, kind: str, op: ast.cmpop, value: Any) -> tuple[Filter, Filter]:
        """``column op value`` for a constant ``value``."""
        present = {column: {"$ne": None}}
        if value is None:
            if not isinstance(op, ast.Eq | ast.NotEq):
                return _NONE, _NONE
            missing: Filter = {column: None}
            return (missing, present) if isinstance(op, ast.Eq) else (present, missing)
        mongo_op = _OPS[type(op)]
        if _class(value) == kind:
            return (
                _and([present, {column: {mongo_op: _value(value)}}]),
                _and([present, {column: {_NEGATED[mongo_op]: _value(value)}}]),
            )
        # a number and a text: never equal, numbers before texts
        before = mongo_op in ("$lt", "$lte")
        holds = {"$eq": False, "$ne": True}.get(mongo_op, (kind == "number") == before)
        return (present, _NONE) if holds else (_NONE, present)

    def contains(self, column: str, kind: str, items: list[Any]) -> tuple[Filter, Filter]:
        if not items:
            return _NONE, None  # an empty `or`: false for every run
        present = {column: {"$ne": None}}
        same = [_value(v) for v in items if v is not None and _class(v) == kind]
        true = _and([present, {column: {"$in": same}}]) if same else _NONE
        if None in items:
            return true, _NONE  # unmatched: unknown
        return true, _and([present, {column: {"$nin": same}}]) if same else present


# -- running queries for MongoStore ----------------------------------------------------------


def query_runs(
    runs: Any,
    read_runs: Callable[[list[int]], list[RunRecord]],
    experiment_id: int,
    *,
    where: str | None,
    order_by: str | None,
    descending: bool,
    limit: int | None,
    offset: int,
) -> tuple[int, list[RunRecord]]:
    """``(total matching, page)`` over the ``runs`` collection: a count alone when the column
    filter is exact and no run is asked for, else the documents of the filter's runs without
    their bundles, the Python evaluator, then the page read in full with ``read_runs(ids)``."""
    condition, exact = column_filter(where)
    query: dict[str, Any] = {"experiment_id": experiment_id}
    if condition is not None:
        query["$and"] = [condition]
    if exact and limit == 0:
        return int(runs.count_documents(query)), []
    columns, doc = needs(where, order_by)
    fields = {"_id": 0, "run_id": 1, **dict.fromkeys(columns, 1), **({"doc": 1} if doc else {})}
    found = [
        light_record(d, load_doc(d.get("doc")) if doc else None)
        for d in runs.find(query, fields).sort("run_id", 1)
    ]
    total, ids = select(
        found, where, order_by=order_by, descending=descending, limit=limit, offset=offset
    )
    return total, page(read_runs, ids)


def names_present(runs: Any, experiment_id: int, paths: Sequence[Sequence[str]]) -> list[bool]:
    """For each list of JSON paths, whether a run of the experiment has one of them in its
    document (see :func:`~trialbook.storage.query.check_names`): the documents alone are read."""
    docs = runs.find({"experiment_id": experiment_id}, {"_id": 0, "doc": 1})
    return paths_present((load_doc(d.get("doc")) for d in docs), [list(g) for g in paths])
