"""Figures of the lazy step graph (issue 3), each against plain Dask measured in the same run.

Run: ``.venv/bin/python benchmarks/bench_graph.py [TRIALS]`` (default 1,000 trials).

* per-trial tracking overhead of the quickstart graph (two steps, two parameters) on the
  directory backend, above a plain ``dask.delayed`` compute of the same graph (same
  scheduler); target <= 0.5 ms;
* flatness: the median cost of the last trials against the first ones (trial 1,000 costs what
  trial 10 costs), without and with 1,000 metric points per trial; target ratio ~1;
* the threaded scheduler's cost on this tiny graph, which is why trials default to ``sync``.

Every figure is a median over the trials of a run (each trial timed on its own).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import dask

import trialbook

TRIALS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
WINDOW = 50


def prepare_data(a, b):
    return a + b


def calculate_score(s):
    return 10 / s


def time_each(count: int, call: Callable[[int], object]) -> list[float]:
    times = []
    for i in range(count):
        start = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - start)
    return times


def plain_dask(scheduler: str) -> list[float]:
    a, b = 1, 2
    node = dask.delayed(calculate_score)(dask.delayed(prepare_data)(a, b))
    return time_each(TRIALS, lambda i: dask.compute(node, scheduler=scheduler))


def trials(directory: str, metric_points: int) -> list[float]:
    ex = trialbook.Experiment("bench_graph", backend=directory)
    a, b = ex.parameter("a"), ex.parameter("b")
    prepare = ex(prepare_data)

    def score(s):
        for i in range(metric_points):
            ex.save_metric("loss", epoch=i, value=1.0 / (i + 1))
        return 10 / s

    s = ex.result(score)(prepare(a, b))
    ex.set_parameters(a=1, b=2)
    s.compute(seed=0)  # first trial: environment collected and stored once per process

    def one(i: int) -> object:
        ex.set_parameters(b=2 + i % 7)
        return s.compute(seed=i)

    return time_each(TRIALS, one)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


def flat(times: list[float]) -> tuple[float, float]:
    return statistics.median(times[:WINDOW]), statistics.median(times[-WINDOW:])


def import_time() -> float:
    code = "import time; t = time.perf_counter(); import trialbook; print(time.perf_counter() - t)"
    runs = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout)
        for _ in range(5)
    ]  # fmt: skip
    return statistics.median(runs)


def main() -> None:
    sync = statistics.median(plain_dask("sync"))
    threads = statistics.median(plain_dask("threads"))
    with tempfile.TemporaryDirectory() as tmp:
        tracked = trials(tmp + "/store", 0)
    with tempfile.TemporaryDirectory() as tmp:
        heavy = trials(tmp + "/store", 1000)
    per_trial = statistics.median(tracked)
    overhead = per_trial - sync
    print(f"quickstart graph, {TRIALS} trials, directory backend (medians per trial)")
    print(f"  plain dask.delayed compute, sync scheduler:    {ms(sync)}")
    print(f"  plain dask.delayed compute, threads scheduler: {ms(threads)}"
          f"  (x{threads / sync:.1f} sync: why trials default to sync)")  # fmt: skip
    print(f"  trialbook trial (sync):                        {ms(per_trial)}"
          f"  ratio to plain dask x{per_trial / sync:.2f}")  # fmt: skip
    print(f"  tracking overhead per trial: {ms(overhead)}  target <= 0.500 ms  "
          f"{'OK' if overhead <= 0.0005 else 'MISSED'}")  # fmt: skip
    for label, times in (("no metrics", tracked), ("1,000 metric points/trial", heavy)):
        first, last = flat(times)
        print(f"  flatness, {label}: first {WINDOW} trials {ms(first)}, last {WINDOW} "
              f"{ms(last)}, ratio last/first {last / first:.2f}  target ~1.0")  # fmt: skip
    print(f"  import trialbook: {ms(import_time())}  target <= 60 ms")


if __name__ == "__main__":
    main()
