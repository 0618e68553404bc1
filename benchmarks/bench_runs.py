"""Figures of the foundation (runs, steps, embedded store), each with a plain-sqlite3 reference.

Run: ``.venv/bin/python benchmarks/bench_runs.py`` (or ``make bench``). Every figure is the median
of several repeats, printed with its target and its ratio to a reference doing the same I/O with
the standard library's ``sqlite3`` module in the same run (machines are noisy: compare ratios).
"""

from __future__ import annotations

import array
import json
import pathlib
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import pandas as pd

import trialbook

REPEATS = 5


def median_time(func: Callable[[pathlib.Path], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            func(pathlib.Path(tmp))
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def median_split(func: Callable[[pathlib.Path], tuple[float, float]]) -> tuple[float, float]:
    firsts, seconds = [], []
    for _ in range(REPEATS):
        with tempfile.TemporaryDirectory() as tmp:
            a, b = func(pathlib.Path(tmp))
            firsts.append(a)
            seconds.append(b)
    return statistics.median(firsts), statistics.median(seconds)


def wal(path: pathlib.Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


# -- 1. import time ---------------------------------------------------------------------------


def import_time(statement: str) -> float:
    times = []
    for _ in range(9):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# -- 2. 10,000 runs of a trivial step ---------------------------------------------------------


def runs_10k(tmp: pathlib.Path) -> tuple[float, float]:
    start = time.perf_counter()
    session = trialbook.create_session(tmp / "s")
    experiment = session.create_experiment("bench")
    experiment.add_runs(i=list(range(10_000)))
    experiment.execute(lambda run: run.fields.update(y=run.params.i * 2))
    experiment.persist()
    created = time.perf_counter() - start
    start = time.perf_counter()
    frame = trialbook.create_session(tmp / "s").load_experiment("bench").df()
    loaded = time.perf_counter() - start
    assert len(frame) == 10_000
    return created, loaded


def runs_10k_reference(tmp: pathlib.Path) -> tuple[float, float]:
    start = time.perf_counter()
    conn = wal(tmp / "ref.db")
    conn.execute(
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, status TEXT, params TEXT, fields TEXT)"
    )
    rows = [(i, "done", json.dumps({"i": i}), json.dumps({"y": i * 2})) for i in range(1, 10_001)]
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO runs VALUES (?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    conn.close()
    created = time.perf_counter() - start
    start = time.perf_counter()
    conn = sqlite3.connect(tmp / "ref.db")
    data = conn.execute("SELECT id, status, params, fields FROM runs").fetchall()
    frame = pd.DataFrame(
        [{"id": r[0], "status": r[1], **json.loads(r[2]), **json.loads(r[3])} for r in data]
    ).set_index("id")
    loaded = time.perf_counter() - start
    assert len(frame) == 10_000
    return created, loaded


# -- 3. 1,000,000 metric values, one call each -------------------------------------------------


def metrics_1m(tmp: pathlib.Path) -> None:
    session = trialbook.create_session(tmp / "s")
    experiment = session.create_experiment("m")
    with experiment.run() as run:
        log = run.log_metric
        for _ in range(1_000_000):
            log("loss", 0.5)
    experiment.persist()
    values = session.load_experiment("m").runs[1].metrics("loss")["value"]
    assert len(values) == 1_000_000


def metrics_1m_reference(tmp: pathlib.Path) -> None:
    values = array.array("d")
    append = values.append
    for _ in range(1_000_000):
        append(0.5)
    conn = wal(tmp / "ref.db")
    conn.execute("CREATE TABLE m (run INTEGER, vals BLOB)")
    conn.execute("INSERT INTO m VALUES (1, ?)", (values.tobytes(),))
    back = array.array("d")
    back.frombytes(conn.execute("SELECT vals FROM m").fetchone()[0])
    assert len(back) == 1_000_000


# -- 4. 1,000 runs committed one by one ---------------------------------------------------------


def runs_committed_each(tmp: pathlib.Path) -> None:
    session = trialbook.create_session(tmp / "s")
    experiment = session.create_experiment("each")
    experiment.persist()
    for i in range(1000):
        with experiment.run(a=i, b=i * 0.5, c="x") as run:
            run.log_metric("loss", 1.0 / (i + 1))
        experiment.persist()


def runs_committed_each_reference(tmp: pathlib.Path) -> None:
    conn = wal(tmp / "ref.db")
    conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, params TEXT)")
    conn.execute("CREATE TABLE metrics (run INTEGER, name TEXT, vals BLOB)")
    for i in range(1000):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO runs VALUES (?, ?)", (i, json.dumps({"a": i, "b": i * 0.5, "c": "x"}))
        )
        conn.execute(
            "INSERT INTO metrics VALUES (?, 'loss', ?)", (i, array.array("d", [1.0]).tobytes())
        )
        conn.execute("COMMIT")


# -- 5. cost grows with the work, not with the history ------------------------------------------


def persist_small(store: pathlib.Path, name: str) -> float:
    session = trialbook.create_session(store)
    experiment = session.create_experiment(name)
    experiment.add_runs(x=list(range(20)))
    start = time.perf_counter()
    experiment.execute(lambda run: run.fields.update(y=run.params.x)).persist()
    return time.perf_counter() - start


def history_independence(tmp: pathlib.Path) -> tuple[float, float]:
    empty = statistics.median(persist_small(tmp / "empty", f"e{i}") for i in range(20))
    full = tmp / "full"
    session = trialbook.create_session(full)
    for i in range(1000):
        experiment = session.create_experiment(f"old-{i}")
        experiment.add_runs(x=[1, 2])
        experiment.persist()
    loaded = statistics.median(persist_small(full, f"n{i}") for i in range(20))
    return empty, loaded


# -- 6. reads check the hash of a large value (issue 16) -----------------------------------------


def checked_read(tmp: pathlib.Path, megabytes: int = 64) -> tuple[float, float]:
    """Seconds to read a run whose field holds ``megabytes`` of array, through the store (its
    blob's SHA-256 checked), and to read the same blob file alone, unchecked (the reference)."""
    import numpy as np

    from trialbook.codecs import Encoded
    from trialbook.storage.records import RunRecord
    from trialbook.storage.sqlite import SqliteStore

    data = np.random.default_rng(0).random(megabytes * 131_072).tobytes()
    with SqliteStore.from_directory(tmp / "s") as store:
        info = store.create_experiment("big")
        store.write_runs(info.id, [RunRecord(1, fields={"w": Encoded("npy-raw", data)})])
        (blob,) = (tmp / "s" / "blobs").glob("*/*")
        checked = statistics.median(
            _timed(lambda: store.read_runs(info.id)) for _ in range(REPEATS)
        )
        plain = statistics.median(_timed(blob.read_bytes) for _ in range(REPEATS))
    return checked, plain


def _timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def main() -> None:
    rows: list[tuple[str, str, str, str, str]] = []

    def report(name: str, value: float, target: float, reference: float) -> None:
        ok = "ok" if value <= target else "MISSED"
        rows.append(
            (
                name,
                f"{value * 1000:9.1f} ms",
                f"<= {target * 1000:.0f} ms {ok}",
                f"{reference * 1000:9.1f} ms",
                f"{value / reference:6.2f}x",
            )
        )

    report(
        "import trialbook (fresh interpreter)",
        import_time("import trialbook"),
        0.060,
        import_time("import sqlite3"),
    )
    (created, loaded) = median_split(runs_10k)
    (ref_created, ref_loaded) = median_split(runs_10k_reference)
    report("10,000 runs: create + execute + persist", created, 0.2, ref_created)
    report("10,000 runs: load into a DataFrame", loaded, 0.1, ref_loaded)
    report(
        "1,000,000 metric values: log + persist + read",
        median_time(metrics_1m, 3),
        0.5,
        median_time(metrics_1m_reference, 3),
    )
    report(
        "1,000 runs (3 params, 1 metric), a commit each",
        median_time(runs_committed_each),
        0.1,
        median_time(runs_committed_each_reference),
    )
    with tempfile.TemporaryDirectory() as tmp:
        empty, full = history_independence(pathlib.Path(tmp))
    with tempfile.TemporaryDirectory() as tmp:
        checked, plain = checked_read(pathlib.Path(tmp))
    print(f"{'figure':48} {'trialbook':>12} {'target':>18} {'sqlite3 ref':>12} {'ratio':>8}")
    for row in rows:
        print(f"{row[0]:48} {row[1]:>12} {row[2]:>18} {row[3]:>12} {row[4]:>8}")
    print(
        f"\npersist 20 runs into an empty store: {empty * 1000:.2f} ms; into a store holding "
        f"1,000 experiments: {full * 1000:.2f} ms (ratio {full / empty:.2f}, target ~1.0)"
    )
    print(
        f"read a run with a 64 MB field, its hash checked: {checked * 1000:.1f} ms; the blob "
        f"file alone: {plain * 1000:.1f} ms (SHA-256 at {64 / (checked - plain) / 1000:.1f} GB/s)"
    )


if __name__ == "__main__":
    main()
