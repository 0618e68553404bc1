"""Queries answered from *light* runs: a run's columns and JSON document, never its values
bundle (arrays, frames, blobs), then only the page read in full.

The backends without SQL over the document (Redis, MongoDB, and the SQL store on a database
without JSON operators) filter and sort with the Python evaluator of
:mod:`trialbook.storage.query` over light runs, so that a query costs one read of the small
parts of the experiment's runs instead of decoding every value: :func:`needs` says which
columns (and whether the document) a query reads, :func:`light_record` builds a run from them,
:func:`select` filters, sorts and pages light runs into run ids, and :func:`page` reads the
page's runs in full, in that order. :func:`paths_present` answers
:func:`~trialbook.storage.query.check_names` from documents.

A value of the bundle is missing for a filter in every back end (``Name.value`` treats it so),
and a name that only a bundle value has is not a name of the experiment, as in the SQL of the
SQLite store (the names are those of the run documents).

Examples
--------
>>> runs = [light_record({"run_id": i, "status": s}, None) for i, s in [(1, "done"), (2, "failed")]]
>>> select(runs, 'status == "done"', order_by=None, descending=False, limit=10, offset=0)
(1, [1])
>>> needs("lr > 0.1 and status == 'done'", "duration")
(['status', 'started', 'finished'], True)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from trialbook.storage.bundle import fill_record
from trialbook.storage.query import COLUMNS, parse_name, parse_query, sort_runs
from trialbook.storage.records import RunRecord

__all__ = ["light_record", "needs", "page", "path_parts", "paths_present", "select"]

_DERIVED_COLUMNS = {"duration": ("started", "finished")}
_PART = re.compile(r'\."([^"]*)"|\[(\d+)\]')


def needs(where: str | None, order_by: str | None) -> tuple[list[str], bool]:
    """The columns of the run (besides ``run_id``, in :data:`~trialbook.storage.query.COLUMNS`
    order) and whether the JSON document are needed to filter by ``where`` and sort by
    ``order_by``.

    Examples
    --------
    >>> needs('status in ["pending", "running"]', None)
    (['status'], False)
    >>> needs(None, "metric.loss")
    ([], True)
    """
    names = [item[0] for item in parse_query(where).names()] if where and where.strip() else []
    if order_by:
        names.append(parse_name(order_by))
    wanted: set[str] = set()
    doc = False
    for name in names:
        if name.where == "column":
            wanted.add(name.path[0])
        elif name.where == "derived" and name.path[0] in _DERIVED_COLUMNS:
            wanted.update(_DERIVED_COLUMNS[name.path[0]])
        else:
            doc = True
    return [c for c in COLUMNS[1:] if c in wanted], doc


def light_record(values: Mapping[str, Any], doc: dict[str, Any] | None) -> RunRecord:
    """A run with the columns of ``values`` (by name; ``run_id`` required) and the plain values
    of its JSON document ``doc`` (``None``: not read), without any bundle value.

    Examples
    --------
    >>> light_record({"run_id": 3, "seed": 1}, {"p": {"lr": 0.1}}).params
    {'lr': 0.1}
    """
    record = RunRecord(int(values["run_id"]))
    for column in COLUMNS[1:]:
        if column in values:
            setattr(record, column, values[column])
    if doc:
        fill_record(record, doc, {})
    return record


def select(
    runs: list[RunRecord],
    where: str | None,
    *,
    order_by: str | None,
    descending: bool,
    limit: int | None,
    offset: int,
) -> tuple[int, list[int]]:
    """``(total matching, run ids of the page)``: :func:`~trialbook.storage.query.query_runs`
    semantics (the Python evaluator) over ``runs`` in id order, light or not.

    Examples
    --------
    >>> runs = [light_record({"run_id": i}, {"p": {"lr": i / 10}}) for i in (1, 2, 3)]
    >>> select(runs, "lr > 0.1", order_by="lr", descending=True, limit=1, offset=0)
    (2, [3])
    """
    if where and where.strip():
        keep = parse_query(where).predicate()
        runs = [run for run in runs if keep(run)]
    if order_by:
        runs = sort_runs(runs, parse_name(order_by), descending)
    elif descending:
        runs = runs[::-1]
    chosen = runs[offset : None if limit is None else offset + limit]
    return len(runs), [run.run_id for run in chosen]


def page(read_runs: Callable[[list[int]], list[RunRecord]], ids: list[int]) -> list[RunRecord]:
    """The runs of ``ids`` read in full (``read_runs(ids)``: one batched read), in the order of
    ``ids``; a run deleted meanwhile is left out.

    Examples
    --------
    >>> [r.run_id for r in page(lambda ids: [RunRecord(i) for i in sorted(ids)], [3, 1])]
    [3, 1]
    """
    if not ids:
        return []
    found = {run.run_id: run for run in read_runs(ids)}
    return [found[i] for i in ids if i in found]


def path_parts(path: str) -> list[str | int]:
    """The keys (``str``) and array indexes (``int``) of a JSON path of the run document, as
    :meth:`~trialbook.storage.query.Name.json_paths` writes them.

    Examples
    --------
    >>> path_parts('$.m."loss"[1]."x"')
    ['m', 'loss', 1, 'x']
    """
    head, dot, rest = path.removeprefix("$.").partition(".")
    parts: list[str | int] = [head]
    for key, number in _PART.findall(dot + rest):
        parts.append(int(number) if number else key)
    return parts


def paths_present(docs: Iterable[dict[str, Any]], paths: Sequence[Sequence[str]]) -> list[bool]:
    """For each list of JSON paths, whether one of ``docs`` (run documents) has one of them (an
    empty list: whether there is a document at all): the answer of a store's
    ``names_present`` (see :func:`~trialbook.storage.query.check_names`).

    Examples
    --------
    >>> paths_present([{"p": {"lr": None}}, {}], [[], ['$.p."lr"'], ['$.t."lr"']])
    [True, True, False]
    """
    found = [False] * len(paths)
    wanted = [[path_parts(p) for p in group] for group in paths]
    for doc in docs:
        for i, group in enumerate(wanted):
            if not found[i] and (not group or any(_has(doc, parts) for parts in group)):
                found[i] = True
        if all(found):
            break
    return found


def _has(value: Any, parts: Sequence[str | int]) -> bool:
    for part in parts:
        if isinstance(part, int):
            if type(value) is not list or part >= len(value):
                return False
        elif type(value) is not dict or part not in value:
            return False
        value = value[part]
    return True
