"""Timing helpers shared by the benchmark scripts (run as scripts: this folder is on the path)."""

from __future__ import annotations

import time
from collections.abc import Callable


def time_each(count: int, call: Callable[[int], object]) -> list[float]:
    """Seconds taken by each of ``call(0)`` ... ``call(count - 1)``, timed one by one."""
    times = []
    for i in range(count):
        start = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - start)
    return times
