"""Scale figures (issue 16, "Scale"): one experiment of many runs, many trials, many metric points.

Run: ``.venv/bin/python benchmarks/bench_scale.py`` (1,000,000 runs, 100,000,000 points: takes
minutes), ``--quick`` (100,000 runs, 10,000,000 points; what ``make bench`` runs), or choose
``--runs N --points N --trials N``. ``--backend postgres`` uses ``TRIALBOOK_TEST_POSTGRES_URL``
(``source .services/env``) instead of a SQLite file.

Figures, each printed with its target and its ratio to a reference measured in the same run:

* bulk create: ``add_runs`` of N runs (two params) + one ``persist``; reference: plain
  ``sqlite3.executemany`` of the same rows as JSON;
* read: ``load_experiment`` then ``df()`` (after a read of a one-run experiment, so that the
  modules a first read imports are imported; the first read and the median of ``--repeats``);
  and the peak of memory allocated while reading
  (``tracemalloc``, a separate pass) against the size of the frame it returns (target: at most
  5 times that size: the read holds one copy of the documents, not a record per run);
* a filtered query (``session.search_runs``, matching 1,000 runs); reference: the same filter
  in SQL over the plain table;
* the cost of one committed run (``with experiment.run(): ...`` + ``persist``) in experiments
  of 1,000, 100,000 and N runs (median of ``COMMITS`` commits each): flat is the target;
* trials: a trial's cost (``compute``) with 1,000 and ``--trials`` trials already stored, and
  ``get_history()`` of them. Trials past the first few are written as trial records in bulk
  (through the store), since computing 100,000 of them one by one takes minutes;
* metric points: ``run.log_metric`` of ``--points`` points spread over runs + ``persist``
  (points per second); the same points as one array per run (``run.log_metrics``); the
  store's own bulk path (``write_runs`` of ready-made metric chunks); and reading back one
  run's series. Reference: NumPy filling the same arrays.

Every timing is a median of ``--repeats`` repeats where it is cheap enough to repeat, else one
measurement (said so). The machine may be shared: compare ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pathlib
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

import trialbook
from trialbook.storage.records import MetricChunk, RunRecord

COMMITS = 50
MODELS = ["mlp", "cnn", "rnn", "svm"]


class Report:
    """Collects figures and prints them as a table."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []

    def add(self, name: str, value: float, target: str, reference: float | None = None) -> None:
        ratio = f"{value / reference:8.2f}x" if reference else ""
        ref = f"{reference * 1000:11.1f} ms" if reference else ""
        self.rows.append((name, f"{value * 1000:11.2f} ms", target, ref, ratio))
        print(f"  {name}: {value * 1000:.2f} ms {target} {ref} {ratio}".rstrip(), flush=True)

    def note(self, text: str) -> None:
        self.rows.append((text,))
        print(f"  {text}", flush=True)

    def print(self) -> None:
        print(f"\n{'figure':58} {'trialbook':>14} {'target':>16} {'reference':>14} {'ratio':>9}")
        for row in self.rows:
            if len(row) == 1:
                print(f"  {row[0]}")
            else:
                print(f"{row[0]:58} {row[1]:>14} {row[2]:>16} {row[3]:>14} {row[4]:>9}")


def target(value: float, limit: float) -> str:
    return f"<= {limit * 1000:.0f} ms {'ok' if value <= limit else 'MISSED'}"


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def median_of(repeats: int, func: Callable[[], Any]) -> float:
    return statistics.median(timed(func)[0] for _ in range(repeats))


# -- runs ------------------------------------------------------------------------------------


def grid(runs: int) -> dict[str, Any]:
    """Params of ``runs`` runs: ``i`` x ``model`` (4 models)."""
    return {"i": range(runs // len(MODELS)), "model": MODELS}


def bulk_create(session: trialbook.Session, name: str, runs: int) -> float:
    def create() -> None:
        experiment = session.create_experiment(name)
        experiment.add_runs(**grid(runs))
        experiment.persist()

    seconds, _ = timed(create)
    gc.collect()
    return seconds


def bulk_create_reference(path: pathlib.Path, runs: int) -> float:
    def create() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, status TEXT, params TEXT)")
        rows = (
            (n * len(MODELS) + m + 1, "pending", json.dumps({"i": n, "model": model}))
            for n in range(runs // len(MODELS))
            for m, model in enumerate(MODELS)
        )
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO runs VALUES (?, ?, ?)", rows)
        conn.execute("COMMIT")
        conn.close()

    return timed(create)[0]


def read_frame(session: trialbook.Session, name: str) -> tuple[float, float, Any]:
    load, experiment = timed(lambda: session.load_experiment(name))
    frame_time, frame = timed(experiment.df)
    del experiment
    return load, frame_time, frame


def warm_imports(session: trialbook.Session) -> None:
    """Read a one-run experiment: the modules a read imports the first time (pyarrow's JSON
    reader, pandas' parts) are imported before the measured reads, which then time reading,
    not importing."""
    small = session.create_experiment("warm-imports")
    small.add_runs(i=[1], model=["a"])
    small.persist()
    session.load_experiment("warm-imports").df()


def read_peak(session: trialbook.Session, name: str) -> tuple[int, int]:
    """Peak bytes allocated while loading and framing, and the frame's own size."""
    gc.collect()
    tracemalloc.start()
    frame = session.load_experiment(name).df()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, int(frame.memory_usage(deep=True).sum())


def read_reference(path: pathlib.Path) -> float:
    def read() -> Any:
        conn = sqlite3.connect(path)
        rows = conn.execute("SELECT id, status, params FROM runs").fetchall()
        conn.close()
        loads = json.loads
        params = [loads(r[2]) for r in rows]
        return pd.DataFrame(
            {
                "i": [p["i"] for p in params],
                "model": [p["model"] for p in params],
                "status": [r[1] for r in rows],
            },
            index=pd.Index([r[0] for r in rows], name="run_id"),
        )

    return timed(read)[0]


FILTER = 'model == "cnn" and i < 1000'


def query_time(session: trialbook.Session, name: str, repeats: int, expected: int) -> float:
    frame = session.search_runs(name, FILTER)
    assert len(frame) == expected, len(frame)
    return median_of(repeats, lambda: session.search_runs(name, FILTER))


def query_reference(path: pathlib.Path, repeats: int, expected: int) -> float:
    conn = sqlite3.connect(path)
    sql = (
        "SELECT id, status, params FROM runs WHERE json_extract(params, '$.model') = 'cnn' "
        "AND json_extract(params, '$.i') < 1000"
    )
    assert len(conn.execute(sql).fetchall()) == expected
    seconds = median_of(repeats, lambda: [json.loads(r[2]) for r in conn.execute(sql)])
    conn.close()
    return seconds


def commit_cost(session: trialbook.Session, name: str) -> float:
    """Median seconds of one run committed on its own into the stored experiment ``name``."""
    experiment = session.load_experiment(name)
    times = []
    for k in range(COMMITS):
        start = time.perf_counter()
        with experiment.run(i=-k, model="new") as run:
            run.log_metric("loss", 1.0 / (k + 1))
        experiment.persist()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# -- trials ----------------------------------------------------------------------------------


def trial_experiment(url: str, name: str) -> tuple[Any, Callable[[int], object]]:
    ex = trialbook.Experiment(name, backend=url)
    a = ex.parameter("a")
    score = ex.result(lambda x: x * 2)(a)

    def one(i: int) -> object:
        ex.set_parameters(a=i)
        return score.compute(seed=i)

    one(0)
    return ex, one


def add_trials(ex: Any, count: int, batch: int = 10_000) -> None:
    """``count`` more trial records like the stored first one, written through the store."""
    store, experiment_id = ex.store, ex.experiment_id
    (model,) = [r for r in store.read_runs(experiment_id) if r.run_id == 1]
    for first in range(0, count, batch):
        ids = list(store.allocate_run_ids(experiment_id, min(batch, count - first)))
        records = [
            RunRecord(
                run_id, kind="trial", status="done", params={"a": run_id}, seed=run_id,
                created=model.created, started=model.started, finished=model.finished,
                result=run_id * 2, code=model.code, environment=model.environment,
            )
            for run_id in ids
        ]  # fmt: skip
        store.write_runs(experiment_id, records)


def trial_figures(url: str, trials: int, repeats: int, report: Report) -> None:
    costs = {}
    for existing in sorted({1000, trials}):
        ex, one = trial_experiment(url, f"trials-{existing}")
        try:
            add_trials(ex, existing - 1)
            for i in range(5):
                one(existing + i)  # warm up
            times = []
            for i in range(COMMITS):
                start = time.perf_counter()
                one(existing + 10 + i)
                times.append(time.perf_counter() - start)
            costs[existing] = statistics.median(times)
            if existing == trials:
                history = ex.get_history()
                assert len(history) >= trials, len(history)
                seconds = median_of(repeats, ex.get_history)
                report.add(f"get_history() of {len(history):,} trials", seconds,
                           target(seconds, 1.0))  # fmt: skip
        finally:
            ex.close()
    base = costs[1000]
    for existing, cost in costs.items():
        report.add(f"one trial computed + stored, {existing:,} trials stored", cost,
                   f"<= 1.5x first {'ok' if cost <= 1.5 * base else 'MISSED'}", base)  # fmt: skip


# -- metric points ---------------------------------------------------------------------------


def metric_figures(session: trialbook.Session, points: int, repeats: int, report: Report) -> None:
    per_run = min(points, 100_000)
    runs = points // per_run
    experiment = session.create_experiment("points")
    start = time.perf_counter()
    batch = 10
    for first in range(0, runs, batch):  # persist every few runs: memory stays bounded
        for _ in range(min(batch, runs - first)):
            with experiment.run() as run:
                log = run.log_metric
                for k in range(per_run):
                    log("loss", k * 0.5)
        experiment.persist()
    seconds = time.perf_counter() - start
    written = runs * per_run
    reference = timed(lambda: np.arange(written, dtype="float64") * 0.5)[0]
    report.add(f"log_metric + persist of {written:,} points ({runs:,} runs)", seconds,
               f"{written / seconds / 1e6:.2f} M points/s (>= 5 M)", reference)  # fmt: skip

    # the array API: each run's points as one NumPy array
    arrays = session.create_experiment("points-arrays")
    start = time.perf_counter()
    for first in range(0, runs, batch):
        for _ in range(min(batch, runs - first)):
            with arrays.run() as run:
                run.log_metrics("loss", np.arange(per_run, dtype="float64") * 0.5)
        arrays.persist()
    seconds = time.perf_counter() - start
    report.add(f"log_metrics + persist of {written:,} points ({runs:,} runs)", seconds,
               f"{written / seconds / 1e6:.2f} M points/s (>= 5 M)", reference)  # fmt: skip

    # the store's bulk path: ready-made chunks of the same size
    store = session.store
    info = store.create_experiment("points-bulk")
    ids = list(store.allocate_run_ids(info.id, runs))
    steps = np.arange(per_run, dtype="<i8").tobytes()
    values = (np.arange(per_run, dtype="<f8") * 0.5).tobytes()
    times = np.full(per_run, time.time(), dtype="<f8").tobytes()
    start = time.perf_counter()
    for first in range(0, runs, batch):
        chunk_ids = ids[first : first + batch]
        records = [RunRecord(run_id, status="done") for run_id in chunk_ids]
        chunks = [MetricChunk(run_id, "loss", per_run, steps, values, times, 0)
                  for run_id in chunk_ids]  # fmt: skip
        store.write_runs(info.id, records, chunks)
    bulk = time.perf_counter() - start
    report.add("store.write_runs of the same points as metric chunks", bulk,
               f"{written / bulk / 1e6:.2f} M points/s (>= 5 M)", reference)  # fmt: skip

    loaded = session.load_experiment("points")
    run = loaded.runs[1]
    assert len(run.metrics("loss")) == per_run
    read = median_of(repeats, lambda: session.load_experiment("points").runs[1].metrics("loss"))
    read_series = median_of(repeats, lambda: run.metrics("loss"))
    ref = median_of(repeats, lambda: np.frombuffer(values, dtype="<f8").copy())
    report.add(f"read one run's series ({per_run:,} points), run loaded", read_series,
               target(read_series, 0.050), ref)  # fmt: skip
    report.add(f"load experiment ({runs:,} runs) + read that series", read,
               target(read, 0.050), ref)  # fmt: skip


# -- main ------------------------------------------------------------------------------------


def store_url(backend: str, tmp: pathlib.Path) -> tuple[str, str | None]:
    """The store to benchmark and, on PostgreSQL, the schema of its own (dropped at the end)."""
    if backend == "sqlite":
        return str(tmp / "store"), None
    url = os.environ.get("TRIALBOOK_TEST_POSTGRES_URL")
    if not url:
        sys.exit("--backend postgres needs TRIALBOOK_TEST_POSTGRES_URL (source .services/env)")
    schema = f"bench_scale_{uuid.uuid4().hex[:8]}"
    return f"{url}{'&' if '?' in url else '?'}schema={schema}", schema


def drop_schema(schema: str) -> None:
    import sqlalchemy as sa

    from trialbook.storage.sql_engine import driver_url

    url = os.environ["TRIALBOOK_TEST_POSTGRES_URL"]
    engine = sa.create_engine(driver_url(sa.make_url(url)))
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--points", type=int, default=100_000_000)
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="100,000 runs, 10,000,000 points, 100,000 trials")  # fmt: skip
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.points = 100_000, 10_000_000
    runs = args.runs - args.runs % len(MODELS)
    load = os.getloadavg()[0]
    print(f"bench_scale: {runs:,} runs, {args.points:,} points, {args.trials:,} trials on "
          f"{args.backend}; medians of {args.repeats}; load average {load:.2f} on "
          f"{os.cpu_count()} cores", flush=True)  # fmt: skip
    report = Report()
    pd.DataFrame({"warm": [1]}).memory_usage()  # pandas imported and warm before any timing
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = pathlib.Path(tmp_name)
        url, schema = store_url(args.backend, tmp)
        try:
            figures(url, tmp, runs, args, report)
        finally:
            if schema is not None:
                drop_schema(schema)
    report.print()
    return 0


def figures(
    url: str, tmp: pathlib.Path, runs: int, args: argparse.Namespace, report: Report
) -> None:
    """Measure every figure on the store at ``url`` into ``report``."""
    with trialbook.create_session(url) as session:
        created = bulk_create(session, "big", runs)
        ref = bulk_create_reference(tmp / "ref.db", runs)
        report.add(f"create {runs:,} runs: add_runs + persist (once)", created,
                   target(created, 10.0 * runs / 1_000_000), ref)  # fmt: skip
        warm_imports(session)
        reads = []
        for _ in range(max(1, args.repeats)):
            load_time, frame_time, frame = read_frame(session, "big")
            assert len(frame) == runs
            del frame
            gc.collect()
            reads.append((load_time, frame_time))
        ref = read_reference(tmp / "ref.db")
        load_time, frame_time = reads[0]
        report.add("load_experiment, first read", load_time, "", ref)
        report.add("df() of the loaded experiment, first read", frame_time,
                   target(frame_time, 2.0 * runs / 1_000_000), ref)  # fmt: skip
        report.add("load_experiment + df(), first read", load_time + frame_time,
                   target(load_time + frame_time, 2.0 * runs / 1_000_000), ref)  # fmt: skip
        both = statistics.median(a + b for a, b in reads)
        report.add(f"load_experiment + df(), median of {len(reads)}", both,
                   target(both, 2.0 * runs / 1_000_000), ref)  # fmt: skip
        peak, size = read_peak(session, "big")
        report.note(f"peak memory allocated reading {runs:,} runs: {peak / 1e6:.0f} MB "
                    f"({peak / runs:.0f} B/run), {peak / size:.1f}x the frame it returns "
                    f"({size / 1e6:.0f} MB); target <= 5x "
                    f"{'ok' if peak <= 5 * size else 'MISSED'}")  # fmt: skip
        matching = min(1000, runs // len(MODELS))
        seconds = query_time(session, "big", args.repeats, matching)
        report.add(f"search_runs({FILTER!r})", seconds, target(seconds, 1.0),
                   query_reference(tmp / "ref.db", args.repeats, matching))  # fmt: skip
        costs = {}
        for size in sorted({1000, min(100_000, runs)}):
            if size != runs:
                bulk_create(session, f"grow-{size}", size)
            costs[size] = commit_cost(session, f"grow-{size}" if size != runs else "big")
        costs[runs] = commit_cost(session, "big")
        base = costs[1000]
        for size, cost in costs.items():
            report.add(f"one run committed into an experiment of {size:,} runs", cost,
                       f"<= 1.5x first {'ok' if cost <= 1.5 * base else 'MISSED'}",
                       base)  # fmt: skip
        metric_figures(session, args.points, args.repeats, report)
    trials_url = f"sqlite:///{tmp}/trials.db" if args.backend == "sqlite" else url
    trial_figures(trials_url, args.trials, args.repeats, report)


if __name__ == "__main__":
    sys.exit(main())
