"""Figures of issue 4 (typed tasks), measured in one run; each printed with its target and
the ratio to a reference measured in the same run (medians over repeats).

    .venv/bin/python benchmarks/bench_tasks.py [--repeats N]

1. 500 trivial tasks, 2-worker local launcher, end to end (submit -> all done and recorded):
   target >= 100 jobs/s; reference: `concurrent.futures.ProcessPoolExecutor(2).map` of the
   same trivial function (workers already started).
2. Re-submitting the same 500 finished tasks: target <= 0.1 s; reference: computing the 500
   identifiers alone.
3. Identifier computation for a 10-parameter config with one nested config: target >= 20,000
   configs/s; reference: hashlib.sha256 over json.dumps(sort_keys=True) of the same values.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import shutil
import statistics
import tempfile
import time

from trialbook.tasks import Config, LocalLauncher, Param, Task, experiment

N = 500


class Nested(Config):
    __trialbook_id__ = "bench.nested"
    a: Param[int] = 1
    b: Param[str] = "x"


class Big(Config):
    __trialbook_id__ = "bench.big"
    p0: Param[int] = 0
    p1: Param[float] = 0.1
    p2: Param[str] = "s"
    p3: Param[bool] = True
    p4: Param[list[int]] = [1, 2]  # noqa: RUF012 - copied per instance
    p5: Param[int] = 5
    p6: Param[float] = 6.0
    p7: Param[str] = "seven"
    p8: Param[int] = 8
    nested: Param[Nested]


class Trivial(Task):
    __trialbook_id__ = "bench.trivial"
    i: Param[int]

    def execute(self) -> None:
        pass


def trivial(i: int) -> int:
    return i


def median_of(fn, repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


def warm(launcher: LocalLauncher) -> None:
    """Start both workers and let them import trialbook (the reference pool is warm too)."""
    workdir = tempfile.mkdtemp()
    try:
        with experiment(workdir, "warm-up", launcher=launcher):
            for i in range(8):
                Trivial.C(i=-1 - i).submit()
    finally:
        shutil.rmtree(workdir)


def bench_jobs(workdir: str) -> tuple[float, float]:
    launcher = LocalLauncher(n_workers=2)
    warm(launcher)
    start = time.perf_counter()
    with experiment(workdir, "bench", launcher=launcher):
        for i in range(N):
            Trivial.C(i=i).submit()
    first = time.perf_counter() - start
    start = time.perf_counter()
    with experiment(workdir, "bench", launcher=launcher):
        for i in range(N):
            Trivial.C(i=i).submit()
    again = time.perf_counter() - start
    return first, again


def bench_pool() -> float:
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        list(pool.map(trivial, range(4)))
        start = time.perf_counter()
        list(pool.map(trivial, range(N)))
        return time.perf_counter() - start


def bench_ids() -> tuple[float, float]:
    configs = [Big.C(p0=i, nested=Nested.C(a=i)) for i in range(2000)]
    start = time.perf_counter()
    for c in configs:
        c.__identifier__()
    ours = time.perf_counter() - start
    plain = [
        {
            "p0": i,
            "p1": 0.1,
            "p2": "s",
            "p3": True,
            "p4": [1, 2],
            "p5": 5,
            "p6": 6.0,
            "p7": "seven",
            "p8": 8,
            "nested": {"a": i, "b": "x"},
        }
        for i in range(2000)
    ]
    start = time.perf_counter()
    for d in plain:
        inner = hashlib.sha256(json.dumps(d["nested"], sort_keys=True).encode()).hexdigest()
        hashlib.sha256(json.dumps({**d, "nested": inner}, sort_keys=True).encode()).hexdigest()
    return ours, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    firsts, agains = [], []
    for _ in range(repeats):
        workdir = tempfile.mkdtemp()
        try:
            first, again = bench_jobs(workdir)
        finally:
            shutil.rmtree(workdir)
        firsts.append(first)
        agains.append(again)
    first, again = statistics.median(firsts), statistics.median(agains)
    pool = median_of(bench_pool, repeats)
    ids = [bench_ids() for _ in range(repeats)]
    ours = statistics.median(i[0] for i in ids)
    plain = statistics.median(i[1] for i in ids)
    rate = N / first
    print(
        f"500 trivial tasks, 2 workers: {rate:.0f} jobs/s (target >= 100); "
        f"ratio to concurrent.futures map ({N / pool:.0f}/s): {rate / (N / pool):.3f}"
    )
    print(
        f"re-submit 500 finished tasks: {again:.3f} s (target <= 0.1 s); "
        f"ratio to computing 500 identifiers ({ours / 4:.4f} s): {again / (ours / 4):.2f}"
    )
    id_rate = 2000 / ours
    print(
        f"identifiers (10 params + nested): {id_rate:.0f} configs/s (target >= 20000); "
        f"ratio to hashlib over json ({2000 / plain:.0f}/s): {id_rate / (2000 / plain):.3f}"
    )


if __name__ == "__main__":
    main()
