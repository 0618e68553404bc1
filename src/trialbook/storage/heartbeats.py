"""Lost runs: a ``running`` run whose process stopped beating reads as ``failed``.

A process that executes runs while other processes may read them (see :mod:`trialbook.live`)
refreshes an entry ``meta["live:<token>"]`` of the experiment's metadata: its host, pid, the
ids of its running runs and the time of the beat (``beat``). Every reader derives from that
metadata, never writing it back, that a ``running`` run listed only in entries older than
:func:`heartbeat_timeout` is ``failed`` with a ``LostRun`` error naming the host and pid.

This module is the one place that rule lives: :func:`mark_lost` turns the records a reader
got, :func:`lost_filter` rewrites a query filter so that ``status`` comparisons see the same
status (used by :func:`trialbook.storage.query.query_runs`, hence by the runs table, the
status counts and ``trialbook runs``).

Examples
--------
>>> from trialbook.storage.records import RunRecord
>>> meta = {"live:ab": {"host": "n1", "pid": 7, "beat": 100.0, "runs": [2]}}
>>> records = [RunRecord(1, status="running"), RunRecord(2, status="running")]
>>> [r.status for r in mark_lost(records, meta, now=200.0, timeout=60.0)]
['running', 'failed']
>>> str(records[1].error)
'LostRun: its process (n1, pid 7) stopped sending heartbeats 100 s ago (timeout 60 s)'
"""

from __future__ import annotations

import ast
import os
import time
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from trialbook.storage.records import ErrorInfo, RunRecord, Status

__all__ = ["PREFIX", "env_seconds", "heartbeat_timeout", "lost_filter", "lost_runs", "mark_lost"]

PREFIX = "live:"
"""Keys of the experiment metadata that hold the heartbeat of a writing process."""


def env_seconds(variable: str, default: float) -> float:
    """A number of seconds >= 0 from the environment variable ``variable`` (unset or empty:
    ``default``).

    Raises
    ------
    ValueError
        If the variable holds anything else, naming it and its value.

    Examples
    --------
    >>> env_seconds("TRIALBOOK_NO_SUCH_SETTING", 2.5)
    2.5
    """
    text = os.environ.get(variable, "")
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        msg = f"{variable} must be a number of seconds >= 0 (got {text!r}); unset it or fix it"
        raise ValueError(msg)
    return value


def heartbeat_timeout() -> float:
    """Seconds without a heartbeat after which a reader shows a running run as lost
    (``TRIALBOOK_HEARTBEAT_TIMEOUT``, default 60).

    Examples
    --------
    >>> heartbeat_timeout()
    60.0
    """
    return env_seconds("TRIALBOOK_HEARTBEAT_TIMEOUT", 60.0)


def lost_runs(
    meta: Mapping[str, Any], *, now: float | None = None, timeout: float | None = None
) -> dict[int, dict[str, Any]]:
    """The run ids that heartbeat entries of ``meta`` list, whose every listing entry is older
    than ``timeout`` (default :func:`heartbeat_timeout`), each with the newest such entry.

    Whether such a run is still ``running`` in the store is for the caller to check (a run
    that ended after its process's last beat is not lost).

    Examples
    --------
    >>> meta = {"live:a": {"beat": 10.0, "runs": [1, 2]}, "live:b": {"beat": 95.0, "runs": [2]}}
    >>> list(lost_runs(meta, now=100.0, timeout=30.0))
    [1]
    """
    if not any(key.startswith(PREFIX) for key in meta):
        return {}
    now = time.time() if now is None else now
    timeout = heartbeat_timeout() if timeout is None else timeout
    fresh: set[int] = set()
    stale: dict[int, dict[str, Any]] = {}
    for key, entry in meta.items():
        if not key.startswith(PREFIX) or not isinstance(entry, Mapping):
            continue
        beat = float(entry.get("beat") or 0.0)
        for run_id in entry.get("runs") or ():
            if now - beat > timeout:
                if run_id not in stale or beat > float(stale[run_id].get("beat") or 0.0):
                    stale[int(run_id)] = dict(entry)
            else:
                fresh.add(int(run_id))
    return {run_id: entry for run_id, entry in stale.items() if run_id not in fresh}


def mark_lost(
    records: Iterable[RunRecord],
    meta: Mapping[str, Any],
    *,
    now: float | None = None,
    timeout: float | None = None,
) -> list[RunRecord]:
    """``records``, each ``running`` one that :func:`lost_runs` finds turned ``failed`` with a
    ``LostRun`` error (in place; the store is not written). See the module's example."""
    now = time.time() if now is None else now
    timeout = heartbeat_timeout() if timeout is None else timeout
    records = list(records)
    lost = lost_runs(meta, now=now, timeout=timeout)
    if not lost:
        return records
    for record in records:
        entry = lost.get(record.run_id)
        if entry is None or record.status != Status.RUNNING.value:
            continue
        age = now - float(entry.get("beat") or 0.0)
        record.status = Status.FAILED.value
        record.error = ErrorInfo(
            "LostRun",
            f"its process ({entry.get('host')}, pid {entry.get('pid')}) stopped sending "
            f"heartbeats {age:.0f} s ago (timeout {timeout:.0f} s)",
        )
    return records


def lost_filter(tree: ast.expr, lost: Collection[int]) -> ast.expr:
    """The filter ``tree`` (a parsed, checked query) rewritten so that its comparisons of
    ``status`` with constants see a lost run (a ``running`` run of ``lost``) as ``failed``.

    A comparison ``C`` that holds for ``status == "failed"`` becomes ``(C or LOST)``, any other
    ``(C and not LOST)``, where ``LOST`` is ``(status == "running" and run_id in [ids])``: the
    store still runs the whole filter itself, in one query. A comparison of ``status`` with
    another name (``status == kind``) is left as it is. ``tree`` is not changed.

    Examples
    --------
    >>> tree = ast.parse('status == "failed" and lr > 1', mode="eval").body
    >>> ast.unparse(lost_filter(tree, [4]))
    "(status == 'failed' or (status == 'running' and run_id in [4])) and lr > 1"
    >>> ast.unparse(lost_filter(ast.parse('status != "done"', mode="eval").body, []))
    "status != 'done'"
    """
    if not lost:
        return tree
    ids = sorted(int(run_id) for run_id in lost)
    is_lost = f"(status == 'running' and run_id in {ids!r})"
    return _Rewrite(is_lost).visit(_copy(tree))


def _copy(tree: ast.expr) -> ast.expr:
    return ast.parse(ast.unparse(tree), mode="eval").body


class _Rewrite(ast.NodeTransformer):
    def __init__(self, is_lost: str) -> None:
        self.is_lost = is_lost

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        operands = [node.left, *node.comparators]
        names = [o for o in operands if isinstance(o, ast.Name | ast.Attribute)]
        if not any(isinstance(o, ast.Name) and o.id == "status" for o in names):
            return node
        if len(names) > 1:
            return node
        as_failed = _holds_for_failed(node)
        lost = ast.parse(self.is_lost, mode="eval").body
        if as_failed:
            return ast.BoolOp(ast.Or(), [node, lost])
        return ast.BoolOp(ast.And(), [node, ast.UnaryOp(ast.Not(), lost)])


def _holds_for_failed(node: ast.Compare) -> bool:
    from trialbook.storage.query import parse_query

    query = parse_query(ast.unparse(node))
    return query.predicate()(RunRecord(0, status=Status.FAILED.value))
