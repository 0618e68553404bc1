"""Figures of the lazy step graph (issue 3), each against plain Dask measured in the same run.

Run: ``.venv/bin/python benchmarks/bench_graph.py [TRIALS]`` (default 1,000 trials).

* per-trial cost of the quickstart graph (two steps, two parameters) on the directory backend,
  against two references computing the same graph with plain ``dask.delayed`` in the same run:
  ``dask.compute(node, scheduler="sync")`` (what a user writes) and ``dask.get(graph, key)``
  (the synchronous scheduler alone, which trials use by default). Target: a trial costs
  <= 0.5 ms more than the plain compute;
* flatness: a trial of an experiment that already has TRIALS trials against a trial of one
  that has 10, the two computed alternately (so that machine noise hits both alike), without
  and with 1,000 metric points per trial. Target ratio ~1.0 (trial 1,000 costs what trial 10
  costs: nothing re-reads or rewrites history);
* the threaded scheduler's cost on this tiny graph, which is why trials default to ``sync``;
* ``import trialbook`` (target <= 60 ms).

Every figure is a median over the trials of the run (each trial timed on its own).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable

import dask
from timing import time_each

import trialbook

TRIALS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
PAIRS = 200


def prepare_data(a, b):
    return a + b


def calculate_score(s):
    return 10 / s


def plain_dask() -> dict[str, float]:
    a, b = dask.delayed(1), dask.delayed(2)
    node = dask.delayed(calculate_score)(dask.delayed(prepare_data)(a, b))
    graph, key = dict(node.__dask_graph__()), node.key
    return {
        "sync": statistics.median(
            time_each(TRIALS, lambda i: dask.compute(node, scheduler="sync"))
        ),
        "threads": statistics.median(
            time_each(TRIALS, lambda i: dask.compute(node, scheduler="threads"))
        ),
        "get": statistics.median(time_each(TRIALS, lambda i: dask.get(graph, key))),
    }


def quickstart(directory: str, name: str, metric_points: int) -> Callable[[int], object]:
    """The quickstart graph of seed 001 in ``directory``; returns a function running a trial."""
    ex = trialbook.Experiment(name, backend=directory)
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

    return one


def flatness(directory: str, metric_points: int) -> tuple[float, float]:
    """Median trial time of an experiment at trial ~10 and of one at trial ~TRIALS."""
    young = quickstart(directory, f"young_{metric_points}", metric_points)
    old = quickstart(directory, f"old_{metric_points}", metric_points)
    for i in range(9):
        young(i)
    for i in range(TRIALS - 1):
        old(i)
    first, last = [], []
    for _ in range(PAIRS):
        first += time_each(1, young)
        last += time_each(1, old)
    return statistics.median(first), statistics.median(last)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


def import_time() -> float:
    code = "import time; t = time.perf_counter(); import trialbook; print(time.perf_counter() - t)"
    runs = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout)
        for _ in range(5)
    ]  # fmt: skip
    return statistics.median(runs)


def main() -> None:
    plain = plain_dask()
    with tempfile.TemporaryDirectory() as tmp:
        trial = statistics.median(time_each(TRIALS, quickstart(tmp + "/store", "quick", 0)))
    print(f"quickstart graph, {TRIALS} trials, directory backend (medians per trial)")
    print(f"  plain dask.compute(node, scheduler='sync'):    {ms(plain['sync'])}")
    slower = plain["threads"] / plain["sync"]
    print(f"  plain dask.compute(node, scheduler='threads'): {ms(plain['threads'])}"
          f"  (x{slower:.1f} sync: why trials default to sync)")  # fmt: skip
    print(f"  plain dask.get(graph, key) (sync scheduler):   {ms(plain['get'])}")
    print(f"  trialbook trial, tracked and stored:           {ms(trial)}"
          f"  ratio to plain dask.compute x{trial / plain['sync']:.2f}")  # fmt: skip
    over = trial - plain["sync"]
    print(f"  overhead above plain dask.compute: {ms(over)}  target <= 0.500 ms  "
          f"{'OK' if over <= 0.0005 else 'MISSED'}")  # fmt: skip
    print(f"  overhead above plain dask.get (tracking + one store transaction): "
          f"{ms(trial - plain['get'])}")  # fmt: skip
    for points in (0, 1000):
        with tempfile.TemporaryDirectory() as tmp:
            first, last = flatness(tmp + "/store", points)
        print(f"  flatness, {points:,} metric points/trial: trial ~10 {ms(first)}, "
              f"trial ~{TRIALS:,} {ms(last)}, ratio {last / first:.2f}  target ~1.0")  # fmt: skip
    print(f"  import trialbook: {ms(import_time())}  target <= 60 ms")


if __name__ == "__main__":
    main()
