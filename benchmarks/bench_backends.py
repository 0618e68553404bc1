"""Same workloads on every store backend, in one run; each figure with its ratio to SQLite.

Workloads (issue 5):

* ``runs``: 1,000 runs, each with 3 params and 1 metric, committed one run per transaction
  (``allocate_run_ids`` + ``write_runs``): the per-trial overhead;
* ``metric``: 10,000 values of one metric of one run, appended in chunks of 500 then read back;
* ``history``: the 1,000 runs of ``runs`` read into a pandas DataFrame;
* ``trial``: one ``compute()`` of a three-step graph (one persisted step, one metric) through
  :class:`trialbook.Experiment`, the median of :data:`N_TRIALS` trials each timed on its own.
  Its reference is the same graph run by plain Dask (``dask.get``) in the same run: the
  per-trial overhead is the difference. For MongoDB the time the driver waited for the server
  (pymongo's command monitoring) and the commands sent per trial are printed as well: the
  ``mongoeco`` test server takes about a millisecond per command (it is written in Python).

Targets: PostgreSQL and Redis within 5x of the embedded SQLite store on every workload; per-trial
overhead <= 2 ms on every backend (``runs``: the whole time of a run; ``trial``: the time above
plain Dask). Figures are medians over ``--repeats`` repeats, the backends
interleaved.

Servers come from ``TRIALBOOK_TEST_{POSTGRES,REDIS,MONGO}_URL`` (``scripts/services.sh up``
writes them to ``.services/env``); a backend without a URL is reported as skipped.

    bash scripts/services.sh up && source .services/env
    .venv/bin/python benchmarks/bench_backends.py
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator

import dask
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import backend_location  # noqa: E402 - after the path set-up
from timing import time_each  # noqa: E402

import trialbook  # noqa: E402
from trialbook.storage import open_store  # noqa: E402
from trialbook.storage.records import MetricChunk, RunRecord  # noqa: E402

N_RUNS = 1000
N_VALUES = 10_000
CHUNK = 500
N_TRIALS = 200
TARGETS = {"runs": 5.0, "metric": 5.0, "history": 5.0}


class MongoWaits:
    """What pymongo's command monitoring saw: commands sent and the time waited for them."""

    def __init__(self) -> None:
        self.commands = 0
        self.seconds = 0.0

    def listen(self) -> None:
        from pymongo import monitoring

        waits = self

        class Listener(monitoring.CommandListener):
            def started(self, event) -> None:
                pass

            def succeeded(self, event) -> None:
                waits.commands += 1
                waits.seconds += event.duration_micros / 1e6

            failed = succeeded

        monitoring.register(Listener())


MONGO_WAITS = MongoWaits()


def workload_runs(store) -> float:
    info = store.create_experiment("bench-runs")
    start = time.perf_counter()
    for i in range(N_RUNS):
        (run_id,) = store.allocate_run_ids(info.id, 1)
        now = time.time()
        record = RunRecord(
            run_id=run_id,
            kind="trial",
            status="done",
            params={"lr": 0.001 * i, "layers": i % 4, "name": f"m{i % 7}"},
            created=now,
            started=now,
            finished=now,
            metrics={"score": [1, float(i)]},
        )
        chunk = MetricChunk(
            run_id,
            "score",
            1,
            np.array([0], "<i8").tobytes(),
            np.array([float(i)], "<f8").tobytes(),
            np.array([now], "<f8").tobytes(),
            0,
        )
        store.write_runs(info.id, [record], [chunk])
    return time.perf_counter() - start


def workload_metric(store) -> float:
    info = store.create_experiment("bench-metric")
    store.write_runs(info.id, [RunRecord(run_id=1)])
    steps = np.arange(N_VALUES, dtype="<i8")
    values = np.random.default_rng(0).random(N_VALUES)
    start = time.perf_counter()
    for lo in range(0, N_VALUES, CHUNK):
        hi = lo + CHUNK
        chunk = MetricChunk(
            1,
            "loss",
            CHUNK,
            steps[lo:hi].tobytes(),
            values[lo:hi].astype("<f8").tobytes(),
            np.full(CHUNK, 1.0, "<f8").tobytes(),
            lo,
        )
        store.write_runs(info.id, [], [chunk])
    series = store.read_metrics(info.id, "loss", [1])[1]
    elapsed = time.perf_counter() - start
    assert len(series) == N_VALUES
    return elapsed


def workload_history(store) -> float:
    import pandas as pd

    info = store.find_experiment("bench-runs")
    start = time.perf_counter()
    runs = store.read_runs(info.id)
    frame = pd.DataFrame(
        [
            {
                "run_id": r.run_id,
                "status": r.status,
                **r.params,
                **{k: v[1] for k, v in r.metrics.items()},
            }
            for r in runs
        ]
    )
    elapsed = time.perf_counter() - start
    assert len(frame) == N_RUNS
    return elapsed


def prepare(a):
    return [a, a + 1]


def fit(xs):
    return sum(xs) / len(xs)


def score(x, metric=None):
    if metric is not None:
        metric("score", epoch=0, value=float(x))
    return x * 2


def workload_trial(location: str) -> dict[str, float]:
    """Median seconds per trial, and the MongoDB driver's commands and waits per trial."""
    ex = trialbook.Experiment("bench-trials", backend=location)
    a = ex.parameter("a")
    node = ex.result(lambda x: score(x, ex.save_metric))(ex(fit)(ex.persist(prepare)(a)))
    ex.set_parameters(a=0)
    node.compute(seed=0)  # the first trial of a process stores its code and environment

    def one(i: int) -> None:
        ex.set_parameters(a=i)
        node.compute(seed=0)

    commands, waited = MONGO_WAITS.commands, MONGO_WAITS.seconds
    median = statistics.median(time_each(N_TRIALS, one))
    ex.store.close()
    return {
        "seconds": median,
        "commands": (MONGO_WAITS.commands - commands) / N_TRIALS,
        "waited": (MONGO_WAITS.seconds - waited) / N_TRIALS,
    }


def plain_trial() -> float:
    """The reference of ``trial``: the same graph built with plain ``dask.delayed`` and run by
    Dask's synchronous scheduler (``dask.get``, what trials use), its input set per trial."""
    a = dask.delayed(0, name="a")
    node = dask.delayed(score)(dask.delayed(fit)(dask.delayed(prepare)(a)))
    graph = dict(node.__dask_graph__())

    def one(i: int) -> None:
        graph["a"] = i
        dask.get(graph, node.key)

    return statistics.median(time_each(N_TRIALS, one))


@contextlib.contextmanager
def fresh_store(backend: str, tmp: pathlib.Path) -> Iterator[object]:
    with backend_location(backend, tmp) as location:
        store = open_store(location)
        try:
            yield store
        finally:
            store.close()


def measure_once(backend: str, tmp: pathlib.Path) -> dict[str, float]:
    with fresh_store(backend, tmp) as store:
        runs = workload_runs(store)
        history = workload_history(store)
        metric = workload_metric(store)
    with backend_location(backend, tmp) as location:
        trial = workload_trial(location)
    return {
        "runs": runs,
        "metric": metric,
        "history": history,
        "trial": trial["seconds"],
        "trial_commands": trial["commands"],
        "trial_waited": trial["waited"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres,redis,mongo")
    args = parser.parse_args(argv)
    os.environ.pop("TRIALBOOK_TEST_REQUIRE_ALL", None)
    backends = []
    for backend in args.backends.split(","):
        env = {"postgres": "POSTGRES", "redis": "REDIS", "mongo": "MONGO"}.get(backend)
        if env and not os.environ.get(f"TRIALBOOK_TEST_{env}_URL"):
            print(f"{backend:9s} skipped: TRIALBOOK_TEST_{env}_URL is not set")
            continue
        backends.append(backend)
    if "mongo" in backends:
        MONGO_WAITS.listen()
    samples: dict[str, dict[str, list[float]]] = {b: {} for b in backends}
    plain: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        # Interleaved (each repeat runs every backend in turn), so that a change of load on a
        # shared machine falls on all backends alike.
        for _ in range(args.repeats):
            plain.append(plain_trial())
            for backend in backends:
                for name, seconds in measure_once(backend, pathlib.Path(tmp)).items():
                    samples[backend].setdefault(name, []).append(seconds)
    medians = {b: {n: statistics.median(v) for n, v in f.items()} for b, f in samples.items()}
    report(medians, statistics.median(plain))
    return 0


def report(results: dict[str, dict[str, float]], plain: float) -> None:
    ref = results.get("sqlite")
    print(
        "medians; ratio = backend / embedded SQLite measured in this run; "
        "target: PostgreSQL and Redis <= 5x, per-trial overhead <= 2 ms"
    )
    print(f"trial reference: the same graph in plain Dask (dask.get) {plain * 1000:.3f} ms")
    header = f"{'backend':9s} {'workload':9s} {'seconds':>9s} {'ratio':>7s}  note"
    print(header)
    for backend, figures in results.items():
        for name in ("runs", "metric", "history", "trial"):
            seconds = figures[name]
            ratio = seconds / ref[name] if ref else float("nan")
            note = ""
            if name == "runs":
                per = seconds / N_RUNS * 1000
                note = f"{per:.3f} ms per run ({'ok' if per <= 2 else 'ABOVE'} <= 2 ms)"
            if name == "trial":
                over = (seconds - plain) * 1000
                note = f"overhead {over:.3f} ms ({'ok' if over <= 2 else 'ABOVE'} <= 2 ms)"
                if figures["trial_commands"]:
                    own = over - figures["trial_waited"] * 1000
                    note += (
                        f"; {figures['trial_commands']:.0f} commands, "
                        f"{figures['trial_waited'] * 1000:.3f} ms waiting for the server, "
                        f"{own:.3f} ms in the client"
                    )
            if backend in ("postgres", "redis") and name in TARGETS:
                note += f" {'ok' if ratio <= TARGETS[name] else 'ABOVE'} <= 5x"
            print(f"{backend:9s} {name:9s} {seconds:9.4f} {ratio:7.2f}  {note.strip()}")


if __name__ == "__main__":
    raise SystemExit(main())
