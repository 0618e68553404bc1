"""Where the time of ``execute(step, n_jobs=2)`` goes (issue 21): a 12-run sweep of a step that
spends its time in BLAS (NumPy matrix products, as a scikit-learn fit does), serially and in a
pool of worker processes.

Run: ``.venv/bin/python benchmarks/bench_pool.py``. Figures (medians of ``REPEATS``), each with
its ratio to the serial execution measured in the same run:

* serial: ``execute(step)`` in this process;
* pool, first call: ``execute(step, n_jobs=2)`` including the start of the workers and their
  imports (the pool stays alive afterwards);
* pool, warm: the same once the workers are running;
* pool, oversubscribed: warm, with each worker's BLAS allowed every core
  (``OMP_NUM_THREADS`` etc. set to the number of cores, as before trialbook bounded them), so
  2 workers x 2 threads compete for 2 cores.

Target: the warm pool at most as slow as serial on a 2-core machine (ratio <= 1.0): a sweep
whose steps already use every core through BLAS cannot gain from processes, but must not lose.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np

import trialbook

RUNS = 12
REPEATS = 3
SIZE = 500


def step(run: trialbook.Run) -> None:
    rng = np.random.default_rng(run.params.seed)
    a = rng.standard_normal((SIZE, SIZE))
    for _ in range(12):
        a = a @ a.T
        a /= np.abs(a).max()
    run.fields.score = float(a.trace())


def timed_execute(n_jobs: int | None) -> float:
    with tempfile.TemporaryDirectory() as tmp, trialbook.create_session(tmp) as session:
        experiment = session.create_experiment("sweep")
        experiment.add_runs(seed=list(range(RUNS)))
        start = time.perf_counter()
        experiment.execute(step, n_jobs=n_jobs)
        return time.perf_counter() - start


def shutdown_pool() -> None:
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True, kill_workers=True)


def main() -> None:
    cores = os.cpu_count() or 1
    serial = statistics.median(timed_execute(None) for _ in range(REPEATS))
    firsts, warms = [], []
    for _ in range(REPEATS):
        shutdown_pool()
        firsts.append(timed_execute(2))
        warms.append(timed_execute(2))
    first, warm = statistics.median(firsts), statistics.median(warms)
    shutdown_pool()
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(dict.fromkeys(names, str(cores)))
    try:
        timed_execute(2)  # start the oversubscribed workers
        over = statistics.median(timed_execute(2) for _ in range(REPEATS))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutdown_pool()
    print(f"execute() of {RUNS} BLAS-bound runs ({SIZE}x{SIZE} products), {cores} cores, "
          f"medians of {REPEATS}")  # fmt: skip
    print(f"  serial, this process:             {serial:7.3f} s  (reference)")
    print(f"  n_jobs=2, first call (start-up):  {first:7.3f} s  ratio {first / serial:5.2f}")
    print(f"  n_jobs=2, warm workers:           {warm:7.3f} s  ratio {warm / serial:5.2f}"
          f"  target <= 1.00 {'OK' if warm <= serial else 'MISSED'}")  # fmt: skip
    print(
        f"  n_jobs=2, warm, BLAS on every core: {over:5.3f} s  ratio {over / serial:5.2f}"
        "  (oversubscribed: what bounding the threads avoids)"
    )


if __name__ == "__main__":
    main()
