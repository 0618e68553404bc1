"""Figures of the web UI (issue 7), served over real HTTP by uvicorn from a directory store.

Run: ``.venv/bin/python benchmarks/bench_ui.py``. Each figure is the median of several repeats,
printed with its target and its ratio to a reference measured in the same run:

* first page of a 100,000-run experiment: ``GET /api/.../runs?limit=50`` (JSON), the HTML page
  plus that call (what a browser waits for), and a filtered + sorted first page; reference: a
  raw ``sqlite3`` ``SELECT ... ORDER BY run_id LIMIT 50`` of the same rows;
* a metric of 1,000,000 points, down-sampled on the server to 2,000 points; reference: reading
  the raw series with ``store.read_metrics`` (no HTTP, no down-sampling).
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np

from trialbook.storage import open_store
from trialbook.storage.records import MetricChunk, RunRecord
from trialbook.web import serve

RUNS = 100_000
POINTS = 1_000_000
REPEATS = 9
TOKEN = "bench"


def median(func: Callable[[], object], repeats: int = REPEATS) -> float:
    func()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build(location: Path) -> None:
    store = open_store(location)
    exp = store.create_experiment("big")
    rng = random.Random(0)
    for start in range(1, RUNS + 1, 10_000):
        batch = [
            RunRecord(
                i, status=rng.choice(["done", "done", "failed"]),
                params={"lr": rng.choice([1e-4, 1e-3, 1e-2, 1e-1]), "depth": rng.randint(1, 8),
                        "opt": rng.choice(["adam", "sgd"])},
                fields={"acc": rng.random()}, tags={"seed": i % 10},
                metrics={"loss": [100, rng.random()]}, started=float(i), finished=float(i + 5),
            )
            for i in range(start, min(start + 10_000, RUNS + 1))
        ]  # fmt: skip
        store.write_runs(exp.id, batch)
    series = store.create_experiment("series")
    steps = np.arange(POINTS, dtype="<i8")
    values = np.cumsum(np.random.default_rng(0).normal(size=POINTS)).astype("<f8")
    times = np.linspace(0, 3600, POINTS).astype("<f8")
    chunk = MetricChunk(1, "loss", POINTS, steps.tobytes(), values.tobytes(), times.tobytes(), 0)
    store.write_runs(series.id, [RunRecord(1, status="done")], [chunk])
    store.close()


def get(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return answer.read()


def report(label: str, seconds: float, target: float | None, reference: float) -> None:
    goal = f"target <= {target * 1000:.0f} ms" if target else "no target"
    status = "" if target is None else ("  OK" if seconds <= target else "  MISSED")
    print(f"{label:<58} {seconds * 1000:8.1f} ms  ({goal}; {seconds / reference:6.1f}x "
          f"reference){status}")  # fmt: skip


def bench_live_counts(base: str, raw: float) -> None:
    """The experiments list, which counts what runs and waits in each experiment by the rule
    of its status (``trialbook.web.live``: one count per status)."""
    report("experiments list (running + pending of each)",
           median(lambda: get(f"{base}/api/experiments")), None, raw)  # fmt: skip


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        location = Path(tmp) / "store"
        start = time.perf_counter()
        build(location)
        print(f"built {RUNS:,} runs and a {POINTS:,}-point metric in "
              f"{time.perf_counter() - start:.1f} s")  # fmt: skip
        conn = sqlite3.connect(location / "trialbook.db")
        raw = median(lambda: conn.execute(
            "SELECT run_id, kind, status, doc FROM runs WHERE experiment_id = 1 "
            "ORDER BY run_id LIMIT 50").fetchall())  # fmt: skip
        print(f"{'reference: raw sqlite3 SELECT ... LIMIT 50':<58} {raw * 1000:8.2f} ms")
        store = open_store(location)
        with serve(store, port=0, token=TOKEN) as server:
            base = f"http://127.0.0.1:{server.port}"
            api = f"{base}/api/experiments/big/runs?limit=50"
            report("first page, JSON API (50 of 100,000 runs)", median(lambda: get(api)), 0.3, raw)
            report("first page, HTML page + its API call", median(
                lambda: (get(f"{base}/e/big"), get(api))), 0.3, raw)  # fmt: skip
            query = urllib.parse.urlencode({"where": 'lr >= 0.01 and status == "done"',
                                            "order_by": "metric.loss", "limit": 50})  # fmt: skip
            report(
                "filtered + sorted first page (lr, status; metric.loss)",
                median(lambda: get(f"{base}/api/experiments/big/runs?{query}")),
                0.3,
                raw,
            )
            report(
                "live status (counts + running runs)",
                median(lambda: get(f"{base}/api/experiments/big/status")),
                None,
                raw,
            )
            bench_live_counts(base, raw)
            series_ref = median(lambda: store.read_metrics(2, "loss", [1]))
            print(f"{'reference: store.read_metrics of 1,000,000 points':<58} "
                  f"{series_ref * 1000:8.1f} ms")  # fmt: skip
            url = f"{base}/api/experiments/series/metrics/loss?runs=1&points=2000"
            report(
                "metric chart, 1,000,000 points -> 2,000 (server)",
                median(lambda: get(url)),
                1.0,
                series_ref,
            )
        store.close()
        conn.close()


if __name__ == "__main__":
    main()
