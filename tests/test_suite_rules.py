"""Rules of the test suite itself: no unit test asserts how long something took.

A duration assertion (``assert time.monotonic() - start < 5``) fails on a loaded machine and
passes when the behaviour it stands for is broken but fast; timings belong in ``benchmarks/``.
The check parses every ``tests/*.py`` and flags an ``assert`` that compares a difference of
clock readings (``time.time()``, ``time.monotonic()``, ``time.perf_counter()``, or a name
assigned one of them), or a name assigned such a difference (``elapsed = ...``). A deadline
guard of a wait (``assert time.monotonic() < deadline``) compares a reading with a deadline, not
a difference, and is allowed: it only bounds how long a broken test hangs.
"""

from __future__ import annotations

import ast
import pathlib
import textwrap

import pytest
from hypothesis import settings

TESTS = pathlib.Path(__file__).parent
CLOCKS = {"time", "monotonic", "perf_counter", "time_ns", "monotonic_ns", "perf_counter_ns"}


def _is_clock(node: ast.AST) -> bool:
    """``time.monotonic()`` and friends, or a bare ``monotonic()`` imported from ``time``."""
    if not isinstance(node, ast.Call) or node.args:
        return False
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr in CLOCKS and isinstance(func.value, ast.Name) and func.value.id == "time"
    return isinstance(func, ast.Name) and func.id in CLOCKS - {"time"}


def _assigned(tree: ast.AST) -> list[tuple[str, ast.AST]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            found.append((target.id, value))
    return found


def duration_assertions(source: str) -> list[int]:
    """Line numbers of the asserts in ``source`` that compare a measured duration."""
    tree = ast.parse(source)
    assigned = _assigned(tree)
    readings = {name for name, value in assigned if _is_clock(value)}

    def reads_clock(node: ast.AST) -> bool:
        return any(
            _is_clock(n) or (isinstance(n, ast.Name) and n.id in readings) for n in ast.walk(node)
        )

    def is_difference(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Sub)
            and reads_clock(node.left)
            and reads_clock(node.right)
        )

    durations = {name for name, value in assigned if is_difference(value)}
    flagged = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assert):
            continue
        for compare in ast.walk(node.test):
            if not isinstance(compare, ast.Compare):
                continue
            if not all(isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)) for op in compare.ops):
                continue
            sides = [compare.left, *compare.comparators]
            if any(
                is_difference(side) or (isinstance(side, ast.Name) and side.id in durations)
                for side in sides
            ):
                flagged.append(node.lineno)
                break
    return flagged


@pytest.mark.parametrize(
    ("snippet", "flagged"),
    [
        ("start = time.monotonic()\nrun()\nassert time.monotonic() - start < 5\n", [3]),
        ("t0 = time.perf_counter()\nassert time.perf_counter() - t0 <= 30, 'slow'\n", [2]),
        ("s = time.time()\nrun()\nelapsed = time.time() - s\nassert elapsed < 15\n", [4]),
        ("from time import monotonic\nt = monotonic()\nassert 1.0 > monotonic() - t\n", [3]),
        ("assert time.monotonic() - time.monotonic() < 1 and ok\n", [1]),
        # allowed: a deadline guard, timestamps as values, comparisons of recorded times
        ("deadline = time.monotonic() + 60\nassert time.monotonic() < deadline, 'hang'\n", []),
        ("record = RunRecord(1, started=time.time())\nassert record.started <= record.ended\n", []),
        ("assert span_a_start < span_b_end\nassert len(xs) - 1 < 5\n", []),
        ("start = time.monotonic()\nassert start > 0\n", []),
    ],
)
def test_the_check_tells_durations_from_deadlines(snippet: str, flagged: list[int]) -> None:
    assert duration_assertions(textwrap.dedent(snippet)) == flagged


def test_no_test_asserts_a_duration() -> None:
    found = [
        f"{path.name}:{line}"
        for path in sorted(TESTS.glob("*.py"))
        for line in duration_assertions(path.read_text())
    ]
    assert found == [], (
        "these asserts compare how long something took, which depends on the machine: assert "
        "the behaviour instead (the error, the fallback taken, what the steps recorded), and "
        f"measure durations in benchmarks/: {found}"
    )


def test_hypothesis_has_no_deadline() -> None:
    """tests/conftest.py loads a profile without Hypothesis's 200 ms deadline per example."""
    assert settings.default.deadline is None
