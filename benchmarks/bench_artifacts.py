"""Cost of logging a large artifact on the embedded store (issue 21).

For a 100 MB file (and a 2 GB one with ``--big``): the time and peak memory of

* ``shutil.copyfile`` of the file (the floor: reading and writing its bytes once);
* ``run.log_artifact(path)`` into a directory store (pieces of 8 MiB, each hashed and written
  as a content-addressed blob file, then a manifest);
* ``run.download_artifact(name, dest)`` back to a file (each piece checked against its hash).

Each measurement runs in a fresh process, so its peak resident memory (``ru_maxrss``) is its
own; printed: that peak, the resident memory just before the call (interpreter, imports, open
store), and the peak of Python allocations during the call (``tracemalloc``).
The file's content is distinct in every piece (no deduplication helps).

    PYTHONPATH=src python benchmarks/bench_artifacts.py [--big] [--folder /tmp/x]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time

MB = 1024 * 1024


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _rss_mb() -> float:
    pages = int(pathlib.Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / MB


def make_file(path: pathlib.Path, size: int) -> None:
    """``size`` bytes, every 8 MiB piece different (a counter in front of random bytes)."""
    block = os.urandom(8 * MB)
    with open(path, "wb") as out:
        written, i = 0, 0
        while written < size:
            piece = (i.to_bytes(8, "little") + block)[: min(8 * MB, size - written)]
            out.write(piece)
            written += len(piece)
            i += 1


def measure(case: str, source: pathlib.Path, work: pathlib.Path) -> dict[str, float]:
    """One measurement in this process: seconds and peak memory above the start."""
    import tracemalloc

    import trialbook

    store = work / "store"
    with trialbook.create_session(store) as session:
        if case == "download":
            run = session.load_experiment("bench").runs[1]
        elif case == "log":
            experiment = session.create_experiment("bench", if_exists="replace").persist()
            (run,) = experiment.add_runs(x=[1])
            experiment.persist()
        base = _rss_mb()
        tracemalloc.start()
        start = time.perf_counter()
        if case == "copy":
            shutil.copyfile(source, work / "copy.bin")
        elif case == "log":
            run.log_artifact(source, name="model.bin")
        else:
            run.download_artifact("model.bin", work / "back.bin")
        seconds = time.perf_counter() - start
        traced = tracemalloc.get_traced_memory()[1] / MB
        tracemalloc.stop()
    return {"seconds": seconds, "peak_mb": _peak_rss_mb(), "base_mb": base, "traced_mb": traced}


def run_case(case: str, source: pathlib.Path, work: pathlib.Path) -> dict[str, float]:
    args = [sys.executable, __file__, "--case", case, "--source", str(source), "--work", str(work)]
    out = subprocess.run(args, check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout))


def bench(size_mb: int, folder: pathlib.Path) -> None:
    work = pathlib.Path(tempfile.mkdtemp(dir=folder))
    try:
        source = work / "source.bin"
        make_file(source, size_mb * MB)
        copy = run_case("copy", source, work)
        (work / "copy.bin").unlink()
        log = run_case("log", source, work)
        back = run_case("download", source, work)
        assert (work / "back.bin").stat().st_size == size_mb * MB
        for label, r in (("copyfile", copy), ("log_artifact", log), ("download", back)):
            ratio = r["seconds"] / copy["seconds"]
            print(f"{size_mb:>5} MB  {label:<13} {r['seconds']:7.2f} s  x{ratio:5.2f} of copy"
                  f"  peak RSS {r['peak_mb']:6.1f} MB (before {r['base_mb']:5.1f})"
                  f"  Python peak {r['traced_mb']:5.1f} MB")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true", help="also a 2 GB file (about a minute)")
    parser.add_argument("--folder", default=None, help="where the temporary files go")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        figures = measure(args.case, pathlib.Path(args.source), pathlib.Path(args.work))
        print(json.dumps(figures))
        return
    folder = pathlib.Path(args.folder or tempfile.gettempdir())
    bench(100, folder)
    if args.big:
        bench(2048, folder)


if __name__ == "__main__":
    main()
