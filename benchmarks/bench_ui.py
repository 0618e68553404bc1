"""Figures of the web UI (issue 7), served over real HTTP by uvicorn from a directory store.

Run: ``.venv/bin/python benchmarks/bench_ui.py``. Each figure is the median of several repeats,
printed with its target and its ratio to a reference measured in the same run:

* first page of a 100,000-run experiment: ``GET /api/.../runs?limit=50`` (JSON), the HTML page
  plus that call (what a browser waits for), and a filtered + sorted first page; reference: a
  raw ``sqlite3`` ``SELECT ... ORDER BY run_id LIMIT 50`` of the same rows;
* a metric of 1,000,000 points, down-sampled on the server to 2,000 points; reference: reading
  the raw series with ``store.read_metrics`` (no HTTP, no down-sampling);
* parallel coordinates of 10,000 runs (:func:`bench_parallel`, issue 15): the columns endpoint
  (four axes), and in headless Chromium (when playwright and ``chromium`` are installed) the
  canvas draw alone and the whole tab (navigation to lines drawn); reference: a raw ``sqlite3``
  ``SELECT`` of the same four values of the same 10,000 runs with ``json_extract``.

``bench_ui.py parallel [STORE]`` runs only the parallel-coordinates figures, on a store kept at
``STORE`` (built there once if empty): a directory (default ``/tmp/trialbook-bench-ui``) or a
PostgreSQL URL with a ``schema=`` of its own (drop that schema when done), whose reference is a
raw ``psycopg`` read of the same values.
"""

from __future__ import annotations

import atexit
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def build(location: Path | str) -> None:
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
            bench_parallel(base, lambda: conn.execute(PARALLEL_SQL).fetchall())
        store.close()
        conn.close()


PARALLEL_RUNS = 10_000
PARALLEL_SQL = (
    "SELECT run_id, json_extract(doc, '$.p.lr'), json_extract(doc, '$.p.depth'), "
    "json_extract(doc, '$.p.opt'), json_extract(doc, '$.m.loss[1]') FROM runs "
    f"WHERE experiment_id = 1 ORDER BY run_id LIMIT {PARALLEL_RUNS}"
)
DRAW_JS = """async (url) => {
  const data = await (await fetch(url)).json();
  const canvas = document.createElement("canvas");
  document.body.append(canvas);
  const times = [];
  for (let i = 0; i < 5; i++) {
    const start = performance.now();
    drawParallel(canvas, data, pcLayout(data, 1200, 440, {}), {"params.depth": {lo: 2, hi: 5}});
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return [data.count, times[2] / 1000];
}"""


def bench_parallel(base: str, reference: Callable[[], object]) -> None:
    """Parallel coordinates of 10,000 runs of ``big`` served at ``base``: the endpoint, the
    canvas draw and the whole tab in Chromium, against ``reference``: a raw SQL read of the
    same values."""
    raw = median(reference, 5)
    print(f"{'reference: raw SQL, JSON of 4 values, 10,000 runs':<58} {raw * 1000:8.1f} ms")
    url = f"{base}/api/experiments/big/parallel?limit={PARALLEL_RUNS}"
    answer = json.loads(get(url))
    assert answer["count"] == PARALLEL_RUNS, answer["count"]
    report("parallel coordinates, columns of 10,000 runs (4 axes)", median(lambda: get(url), 5),
           1.0, raw)  # fmt: skip
    query = urllib.parse.urlencode({"where": 'status == "done" and params.depth >= 3',
                                    "limit": PARALLEL_RUNS})  # fmt: skip
    filtered = f"{base}/api/experiments/big/parallel?{query}"
    report("parallel coordinates, 10,000 runs of a filter", median(lambda: get(filtered), 5),
           1.0, raw)  # fmt: skip
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if chromium is None:
        print("(no playwright or chromium: the draw time in a browser is not measured)")
        return
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/?token={TOKEN}")
        page.goto(f"{base}/e/big")
        count, draw = page.evaluate(DRAW_JS, f"/api/experiments/big/parallel?limit={PARALLEL_RUNS}")
        assert count == PARALLEL_RUNS
        report("parallel coordinates, canvas draw of 10,000 runs", draw, 1.0, raw)
        tabs = []
        for _ in range(3):
            page.goto(f"{base}/e/big")
            page.wait_for_selector("#runs-table")
            page.wait_for_timeout(2500)  # the runs tab's first poll of /status is over
            start = time.perf_counter()
            page.click("#tab-parallel")  # the tab also asks /status (the counts above)
            page.wait_for_selector("#pc-canvas[data-layout]", timeout=60_000)
            tabs.append(time.perf_counter() - start)
        report("parallel coordinates tab, click to 10,000 lines drawn", statistics.median(tabs),
               1.0, raw)  # fmt: skip
        browser.close()


def parallel_only(location: str) -> None:
    """The parallel-coordinates figures alone, on a store kept at ``location``: a directory
    (SQLite) or a PostgreSQL URL with its own ``schema=``; built there once if empty."""
    store = open_store(location)
    if store.find_experiment("big") is None:
        store.close()
        start = time.perf_counter()
        build(location)
        print(f"built {RUNS:,} runs in {time.perf_counter() - start:.1f} s")
        store = open_store(location)
    info = store.find_experiment("big")
    assert info is not None
    if "://" in location:
        reference = postgres_reference(location, info.id)
    else:
        conn = sqlite3.connect(Path(location) / "trialbook.db")
        reference = lambda: conn.execute(PARALLEL_SQL).fetchall()  # noqa: E731
    with serve(store, port=0, token=TOKEN) as server:
        bench_parallel(f"http://127.0.0.1:{server.port}", reference)
    store.close()


def postgres_reference(url: str, experiment_id: int) -> Callable[[], object]:
    """A raw psycopg read of the same four values of the same 10,000 runs (JSON in SQL)."""
    import psycopg

    parts = urllib.parse.urlsplit(url)
    schema = urllib.parse.parse_qs(parts.query)["schema"][0]
    conn = psycopg.connect(urllib.parse.urlunsplit(parts._replace(query="")), autocommit=True)
    sql = (
        "SELECT run_id, doc::json->'p'->'lr', doc::json->'p'->'depth', doc::json->'p'->'opt', "
        f"doc::json->'m'->'loss'->1 FROM (SELECT run_id, doc FROM {schema}.trialbook_runs "
        f"WHERE experiment_id = %s ORDER BY run_id LIMIT {PARALLEL_RUNS}) AS page"
    )
    return lambda: conn.execute(sql, (experiment_id,)).fetchall()


# -- the runs table at 1,000,000 runs (issue 15) ----------------------------------------------
#
# Run: ``.venv/bin/python benchmarks/bench_ui.py table [store directory]``. The store of
# 1,000,000 runs is built once in the directory (default /tmp/trialbook-bench-table) and reused.

TABLE_RUNS = 1_000_000


def build_table_store(location: Path | str) -> None:
    """1,000,000 runs with a nested config, a seed, fields and a metric summary with min/max."""
    store = open_store(location)
    exp = store.create_experiment("table")
    rng = random.Random(0)
    for start in range(1, TABLE_RUNS + 1, 20_000):
        batch = []
        for i in range(start, min(start + 20_000, TABLE_RUNS + 1)):
            loss = rng.random()
            batch.append(RunRecord(
                i, status=rng.choice(["done", "done", "failed"]),
                params={"lr": rng.choice([1e-4, 1e-3, 1e-2, 1e-1]),
                        "opt": rng.choice(["adam", "sgd"]),
                        "model": {"depth": rng.randint(1, 8), "act": "relu"},
                        "data": {"seed": i % 10}},
                fields={"acc": rng.random()},
                metrics={"loss": [100, loss, loss / 2, loss * 2]},
                started=float(i), finished=float(i + 5),
            ))  # fmt: skip
        store.write_runs(exp.id, batch)
    store.close()


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stream_size(url: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    size = 0
    with urllib.request.urlopen(request, timeout=600) as answer:
        while chunk := answer.read(1 << 20):
            size += len(chunk)
    return size


TABLE_COLS = "run_id,status,params.lr,params.opt,params.model.depth,fields.acc,metric.loss"
TABLE_QUERY = urllib.parse.urlencode({
    "where": 'lr >= 0.01 and status == "done"', "order_by": "params.model.depth",
    "desc": 1, "limit": 50, "cols": TABLE_COLS})  # fmt: skip
"""The filtered and sorted page of the table's figures."""
TABLE_OTHER = urllib.parse.urlencode({
    "where": 'fields.acc < 0.5 and params.opt == "adam"', "order_by": "metric.loss",
    "limit": 50, "offset": 100, "cols": TABLE_COLS})  # fmt: skip
TABLE_GROUP = urllib.parse.urlencode({"group": "params.opt,params.model.depth",
                                      "cols": "fields.acc,metric.loss"})  # fmt: skip


def once(url: str) -> float:
    """Seconds to stream the answer of ``url`` once."""
    start = time.perf_counter()
    stream_size(url)
    return time.perf_counter() - start


def table_views(
    store: Any, api: str, *, label: str, first_ref: float, sorted_ref: float, group_ref: float
) -> None:
    """The table's views on a server just started, in the order a user meets them: a grouped
    table (answered by the store's SQL while its columns are read in the background), the first
    page (which starts reading the table's columns), a filtered + sorted page at once (the
    store's SQL again), then, once the columns are kept (``trialbook.storage.value_cache``),
    the same views answered from memory."""
    from trialbook.storage.value_cache import value_cache

    report(f"{label}grouped table, cold (SQL; its columns read meanwhile)",
           once(f"{api}/groups?{TABLE_GROUP}"), 1.0, group_ref)  # fmt: skip
    start = time.perf_counter()
    report(f"{label}table: first page (50 of 1,000,000)",
           median(lambda: get(f"{api}/table?limit=50"), 3), 0.3, first_ref)  # fmt: skip
    report(f"{label}table: filtered + sorted page, cold (SQL)",
           once(f"{api}/table?{TABLE_QUERY}"), 1.0, sorted_ref)  # fmt: skip
    cache = value_cache(store)
    assert cache is not None
    cache.wait()
    print(f"{label}the table's columns kept {time.perf_counter() - start:.1f} s after the first "
          f"page ({cache.reads} reads; error: {cache.error})")  # fmt: skip
    report(f"{label}table: filtered + sorted page (columns kept)",
           median(lambda: get(f"{api}/table?{TABLE_QUERY}"), 5), 1.0, sorted_ref)  # fmt: skip
    report(f"{label}table: another filter, sort and offset (columns kept)",
           median(lambda: get(f"{api}/table?{TABLE_OTHER}"), 5), 1.0, sorted_ref)  # fmt: skip
    report(f"{label}grouped table (columns kept)",
           median(lambda: get(f"{api}/groups?{TABLE_GROUP}"), 5), 1.0, group_ref)  # fmt: skip
    print(f"{label}server memory: peak {peak_rss_mib():.0f} MiB")


def restart_views(location: Any, *, label: str, sorted_ref: float, group_ref: float) -> None:
    """The first views of a server started again on the store (a new store object, cache and
    server): the columns the first server read were saved to value files
    (``trialbook.storage.value_files``), and answer at once. Then the live views."""
    from trialbook.storage.value_cache import value_cache

    store = open_store(location)
    with serve(store, port=0, token=TOKEN) as server:
        api = f"http://127.0.0.1:{server.port}/api/experiments/table"
        report(f"{label}after a restart: grouped table, first view",
               once(f"{api}/groups?{TABLE_GROUP}"), 1.0, group_ref)  # fmt: skip
        report(f"{label}after a restart: filtered + sorted page, first view",
               once(f"{api}/table?{TABLE_QUERY}"), 1.0, sorted_ref)  # fmt: skip
        cache = value_cache(store)
        assert cache is not None
        print(f"{label}after a restart: {cache.loads} experiment's columns loaded from value "
              f"files, {cache.reads} reads of the store")  # fmt: skip
        live_views(store, f"{api}/table?{TABLE_QUERY}", label=label, sorted_ref=sorted_ref)
    store.close()


WRITER = """
import sys, time
from trialbook.storage import open_store
with open_store(sys.argv[1]) as store:
    exp = store.find_experiment("table")
    end = time.monotonic() + float(sys.argv[2])
    i = 0
    while time.monotonic() < end:
        ids = [1 + (i + k) % 1000 for k in range(5)]
        store.write_runs(exp.id, store.read_runs(exp.id, ids))  # the same values, written again
        i += 5
        time.sleep(0.2)
"""


def live_views(store: Any, url: str, *, label: str, sorted_ref: float) -> None:
    """The filtered and sorted page while another process writes 5 runs every 0.2 s (a live
    experiment; the runs are written back with the values they have, so the store stays as
    built): with a token per experiment (SQLite) only the runs written since are read."""
    import subprocess

    from trialbook.storage.value_cache import value_cache

    cache = value_cache(store)
    assert cache is not None
    reads, updates = cache.reads, cache.updates
    writer = subprocess.Popen([sys.executable, "-c", WRITER, store.url, "12"])
    try:
        time.sleep(1.0)
        times = []
        for _ in range(15):
            start = time.perf_counter()
            get(url)
            times.append(time.perf_counter() - start)
            time.sleep(0.3)
    finally:
        writer.wait()
    report(f"{label}table: filtered + sorted page, another process writing",
           statistics.median(times), 1.0, sorted_ref)  # fmt: skip
    print(f"{label}  while writing: slowest {max(times) * 1000:.0f} ms; {cache.reads - reads} "
          f"whole reads and {cache.updates - updates} updates of the kept columns")  # fmt: skip


def table_main(location: Path) -> None:
    """The runs table's figures at 1,000,000 runs, each with a plain SQL reference."""
    if not (location / "trialbook.db").exists():
        start = time.perf_counter()
        build_table_store(location)
        print(f"built {TABLE_RUNS:,} runs in {time.perf_counter() - start:.1f} s")
    conn = sqlite3.connect(location / "trialbook.db")
    eid = conn.execute("SELECT id FROM experiments WHERE name = 'table'").fetchone()[0]
    first_ref = median(lambda: conn.execute(
        "SELECT run_id, kind, status, doc FROM runs WHERE experiment_id = ? ORDER BY run_id "
        "LIMIT 50", (eid,)).fetchall(), 5)  # fmt: skip
    sorted_ref = median(
        lambda: conn.execute(
            "SELECT run_id, kind, status, doc FROM runs WHERE experiment_id = ? AND "
            "json_extract(doc, '$.p.lr') >= 0.01 AND status = 'done' ORDER BY "
            "json_extract(doc, '$.p.model.depth') DESC, run_id LIMIT 50",
            (eid,),
        ).fetchall(),
        3,
    )
    group_ref = median(lambda: conn.execute(
        "SELECT json_extract(doc, '$.p.opt'), json_extract(doc, '$.p.model.depth'), count(*), "
        "avg(json_extract(doc, '$.f.acc')), avg(json_extract(doc, '$.m.loss[1]')) FROM runs "
        "WHERE experiment_id = ? GROUP BY 1, 2", (eid,)).fetchall(), 3)  # fmt: skip

    def csv_ref() -> None:
        import csv
        import io

        out = io.StringIO()
        writer = csv.writer(out)
        for row in conn.execute("SELECT run_id, status, json_extract(doc, '$.p.lr'), "
                                "json_extract(doc, '$.m.loss[1]') FROM runs WHERE "
                                "experiment_id = ? ORDER BY run_id", (eid,)):  # fmt: skip
            writer.writerow(row)
            if out.tell() > 1 << 20:
                out.seek(0)
                out.truncate()

    store = open_store(location)
    with serve(store, port=0, token=TOKEN) as server:
        api = f"http://127.0.0.1:{server.port}/api/experiments/table"
        cols = TABLE_COLS
        table_views(store, api, label="", first_ref=first_ref, sorted_ref=sorted_ref,
                    group_ref=group_ref)  # fmt: skip

        export_ref = median(csv_ref, 1)
        before = peak_rss_mib()
        start = time.perf_counter()
        size = stream_size(f"{api}/export?format=csv&cols={cols}")
        export = time.perf_counter() - start
        after = peak_rss_mib()
        print(f"CSV export of {TABLE_RUNS:,} runs: {size / 2**20:.0f} MiB streamed; peak memory "
              f"of the process {before:.0f} MiB before, {after:.0f} MiB after")  # fmt: skip
        report("CSV export, 1,000,000 runs (streamed)", export, None, export_ref)
    store.close()
    restart_views(location, label="", sorted_ref=sorted_ref, group_ref=group_ref)
    conn.close()


def table_postgres(url: str) -> None:
    """The runs table's figures on PostgreSQL (``url``: a ``postgresql://...?schema=...`` store
    URL), each with a plain SQL reference through psycopg. Builds the 1,000,000 runs once."""
    import psycopg

    base, _, options = url.partition("?")
    schema = dict(part.split("=", 1) for part in options.split("&") if part).get("schema")
    store = open_store(url)
    if store.find_experiment("table") is None:
        store.close()
        start = time.perf_counter()
        build_table_store(url)
        print(f"built {TABLE_RUNS:,} runs in PostgreSQL in {time.perf_counter() - start:.1f} s")
        store = open_store(url)
    info = store.find_experiment("table")
    runs = f"{schema}.trialbook_runs" if schema else "trialbook_runs"
    conn = psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://"))

    def sql(text: str) -> Callable[[], object]:
        return lambda: conn.execute(text, (info.id,)).fetchall()

    doc = "docb"  # the stored jsonb of each document (layout version 4)
    first_ref = median(sql(f"SELECT run_id, kind, status, doc FROM {runs} WHERE experiment_id "
                           "= %s ORDER BY run_id LIMIT 50"), 3)  # fmt: skip
    sorted_ref = median(sql(
        f"SELECT run_id, kind, status, doc FROM {runs} WHERE experiment_id = %s AND "
        f"CAST({doc} -> 'p' ->> 'lr' AS float) >= 0.01 AND status = 'done' ORDER BY "
        f"CAST({doc} -> 'p' -> 'model' ->> 'depth' AS int) DESC, run_id LIMIT 50"), 1)  # fmt: skip
    group_ref = median(sql(
        f"SELECT {doc} -> 'p' ->> 'opt', {doc} -> 'p' -> 'model' ->> 'depth', count(*), "
        f"avg(CAST({doc} -> 'f' ->> 'acc' AS float)), avg(CAST({doc} -> 'm' -> 'loss' ->> 1 AS "
        f"float)) FROM {runs} WHERE experiment_id = %s GROUP BY 1, 2"), 1)  # fmt: skip
    with serve(store, port=0, token=TOKEN) as server:
        api = f"http://127.0.0.1:{server.port}/api/experiments/table"
        table_views(store, api, label="PostgreSQL ", first_ref=first_ref, sorted_ref=sorted_ref,
                    group_ref=group_ref)  # fmt: skip
    store.close()
    restart_views(url, label="PostgreSQL ", sorted_ref=sorted_ref, group_ref=group_ref)
    conn.close()


if __name__ == "__main__":
    # value files of this run only: the cold figures are cold, the restart ones from this run
    os.environ["TRIALBOOK_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-ui-cache-")
    atexit.register(shutil.rmtree, os.environ["TRIALBOOK_CACHE_DIR"], ignore_errors=True)
    if sys.argv[1:2] == ["parallel"]:
        parallel_only(sys.argv[2] if len(sys.argv) > 2 else "/tmp/trialbook-bench-ui")
    elif sys.argv[1:2] == ["table"] and sys.argv[2:3] and "://" in sys.argv[2]:
        table_postgres(sys.argv[2])
    elif sys.argv[1:2] == ["table"]:
        table_main(Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/trialbook-bench-table"))
    else:
        main()
