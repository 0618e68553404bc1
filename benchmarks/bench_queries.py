"""Queries of the UI on every store backend: a count by status and a filtered, sorted page.

Workloads (issue 20, item 10), on one experiment of ``--runs`` runs (default 2,000), each with
two params, a 16 KiB array field (kept in the run's values bundle) and, one run in 20, a
300 KiB array field (a blob):

* ``status count``: ``query_runs(where='status == "running"', limit=0)``, what the UI's live
  status asks four times per poll;
* ``filtered page``: ``query_runs(where='lr >= 0.5 and model == "mlp"', order_by="lr",
  descending=True, limit=50)``, a page of the runs table.

Each figure is the median of ``--repeats`` calls, with its ratio to the same query on the
embedded SQLite store in the same run (the reference: SQL over the run documents). For MongoDB
(the ``mongoeco`` test server, written in Python) the commands sent per query are printed too.

Run it on the code before a change and after, to compare (the same servers, the same machine)::

    source .services/env
    git archive <before> src | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before/src .venv/bin/python benchmarks/bench_queries.py
    PYTHONPATH=src .venv/bin/python benchmarks/bench_queries.py
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import backend_location  # noqa: E402 - after the path set-up

import trialbook  # noqa: E402
from trialbook.codecs import Encoded  # noqa: E402
from trialbook.storage import open_store  # noqa: E402
from trialbook.storage.query import query_runs  # noqa: E402
from trialbook.storage.records import RunRecord  # noqa: E402

QUERIES = {
    "status count": {"where": 'status == "running"', "limit": 0},
    "filtered page": {"where": 'lr >= 0.5 and model == "mlp"', "order_by": "lr",
                      "descending": True, "limit": 50},
}  # fmt: skip


def fill(store: Any, runs: int) -> int:
    """An experiment of ``runs`` runs with array fields; its id."""
    info = store.create_experiment("bench-queries")
    rng = np.random.default_rng(0)
    for first in range(1, runs + 1, 100):
        batch = []
        for i in range(first, min(first + 100, runs + 1)):
            fields: dict[str, Any] = {"small": Encoded("npy", rng.bytes(16 * 1024)), "i": i}
            if i % 20 == 0:
                fields["large"] = Encoded("npy", rng.bytes(300 * 1024))
            batch.append(RunRecord(
                i, status="running" if i % 10 == 0 else "done",
                params={"lr": (i % 100) / 100, "model": "mlp" if i % 2 else "cnn"},
                fields=fields,
            ))  # fmt: skip
        store.write_runs(info.id, batch)
    return info.id


def median_seconds(repeats: int, call: Any, *args: Any, **kwargs: Any) -> float:
    """The median time of ``call(*args, **kwargs)`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class MongoCommands:
    """Commands pymongo sent (its command monitoring), when MongoDB is benchmarked."""

    count = 0

    @classmethod
    def listen(cls) -> None:
        from pymongo import monitoring

        class Listener(monitoring.CommandListener):
            def started(self, event: Any) -> None:
                cls.count += 1

            def succeeded(self, event: Any) -> None:
                pass

            failed = succeeded

        monitoring.register(Listener())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backends", default="sqlite,postgres,redis,mongo")
    args = parser.parse_args(argv)
    os.environ.pop("TRIALBOOK_TEST_REQUIRE_ALL", None)
    print(f"trialbook from {pathlib.Path(trialbook.__file__).parent}; {args.runs} runs, "
          f"medians of {args.repeats}")  # fmt: skip
    backends = []
    for backend in args.backends.split(","):
        env = {"postgres": "POSTGRES", "redis": "REDIS", "mongo": "MONGO"}.get(backend)
        if env and not os.environ.get(f"TRIALBOOK_TEST_{env}_URL"):
            print(f"{backend:9s} skipped: TRIALBOOK_TEST_{env}_URL is not set")
            continue
        backends.append(backend)
    if "mongo" in backends:
        MongoCommands.listen()
    results: dict[str, dict[str, tuple[float, int | None]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            with backend_location(backend, pathlib.Path(tmp)) as location:
                store = open_store(location)
                exp = fill(store, args.runs)
                results[backend] = {}
                for label, kwargs in QUERIES.items():
                    before = MongoCommands.count
                    query_runs(store, exp, **kwargs)  # warm: caches, scripts, connections
                    sent = MongoCommands.count - before if backend == "mongo" else None
                    seconds = median_seconds(args.repeats, query_runs, store, exp, **kwargs)
                    results[backend][label] = (seconds, sent)
                store.close()
    reference = results.get("sqlite", {})
    for label in QUERIES:
        print(f"\n{label}")
        for backend, figures in results.items():
            seconds, sent = figures[label]
            ratio = ""
            if label in reference:
                ratio = f"  {seconds / reference[label][0]:8.1f}x SQLite"
            commands = f"  ({sent} commands)" if sent is not None else ""
            print(f"  {backend:9s} {seconds * 1000:10.1f} ms{ratio}{commands}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
