"""Figures of distributed execution (Dask distributed and Slurm), each with a reference
measured in the same run.

Run: ``.venv/bin/python benchmarks/bench_distributed.py`` (or ``make bench``). The Slurm figure
needs the private cluster of ``scripts/slurm.sh up`` (it is skipped, saying so, without one).

1. 200 runs each sleeping 0.1 s on a 2-worker ``LocalCluster``, against the same grid run
   serially: speed-up (target >= 1.8x).
2. 1,000 trivial runs through Dask, against plain ``client.map`` of the same trivial
   function: overhead per run (target <= 2 ms).
3. 20 trivial task jobs through Slurm, submit to completion (reported; no target yet).
"""

from __future__ import annotations

import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import trialbook

REPEATS = 3


def nap(run: trialbook.Run) -> None:
    time.sleep(0.1)
    run.fields.done = True


def trivial(run: trialbook.Run) -> None:
    run.fields.y = run.params.x + 1


def plain(x: int) -> int:
    return x + 1


def grid(session: trialbook.Session, name: str, n: int) -> trialbook.RunsExperiment:
    experiment = session.create_experiment(name)
    experiment.add_runs(x=list(range(n)))
    return experiment


def timed(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def dask_figures(tmp: pathlib.Path) -> None:
    import distributed

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        session = trialbook.create_session(tmp / "store")
        client.submit(plain, 0).result()  # workers warm
        serial = timed(lambda: grid(session, "serial", 200).execute(nap))
        on_dask = statistics.median(
            timed(lambda i=i: grid(session, f"dask{i}", 200).execute(nap, client=client))
            for i in range(REPEATS)
        )
        speedup = serial / on_dask
        print(
            f"200 runs x 0.1 s, serial {serial:.2f} s, on 2 Dask workers {on_dask:.2f} s: "
            f"speed-up {speedup:.2f}x (target >= 1.8x)  [{'ok' if speedup >= 1.8 else 'MISSED'}]"
        )

        def through_map() -> None:
            futures = client.map(plain, range(1000), pure=False)
            client.gather(futures)
            client.cancel(futures)

        reference = statistics.median(timed(through_map) for _ in range(REPEATS))
        ours = statistics.median(
            timed(lambda i=i: grid(session, f"trivial{i}", 1000).execute(trivial, client=client))
            for i in range(REPEATS)
        )
        per_run = (ours - reference) / 1000 * 1e3
        print(
            f"1,000 trivial runs through Dask {ours * 1e3:.0f} ms, plain client.map "
            f"{reference * 1e3:.0f} ms: overhead {per_run:+.3f} ms per run (target <= 2 ms), "
            f"ratio {ours / reference:.2f}  [{'ok' if per_run <= 2 else 'MISSED'}]"
        )
        session.close()


SLURM_PLAN = """
import sys, time
from trialbook import Task, Param, experiment
from trialbook.execution.slurm import SlurmLauncher

class Noop(Task):
    __trialbook_id__ = "bench.slurm.noop"
    i: Param[int]
    def execute(self):
        pass

start = time.perf_counter()
with experiment(sys.argv[1], "slurm-bench", launcher=SlurmLauncher(time="5", poll=0.2)):
    for i in range(20):
        Noop.C(i=i).submit()
print(time.perf_counter() - start)
"""


def slurm_figure(tmp: pathlib.Path) -> None:
    conf = os.environ.get("SLURM_CONF") or str(
        pathlib.Path(__file__).parent.parent / ".services" / "slurm" / "slurm.conf"
    )
    if (
        not pathlib.Path(conf).exists()
        or subprocess.run(
            ["sinfo", "-h"],
            env={**os.environ, "SLURM_CONF": conf},
            capture_output=True,
            check=False,
        ).returncode
    ):
        print("20 jobs through Slurm: skipped (no cluster: run `bash scripts/slurm.sh up`)")
        return
    script = tmp / "plan.py"
    script.write_text(SLURM_PLAN)
    env = {**os.environ, "SLURM_CONF": conf}
    out = subprocess.run(
        [sys.executable, str(script), str(tmp / "wd")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    total = float(out.stdout.strip().splitlines()[-1])
    reference = timed(lambda: bare_sbatch(20, env, tmp))
    print(
        f"20 trivial jobs through Slurm, submit to completion: {total:.1f} s; 20 bare "
        f"`sbatch --wrap true`: {reference:.1f} s; ratio {total / reference:.2f} (no target yet)"
    )


def bare_sbatch(n: int, env: dict[str, str], tmp: pathlib.Path) -> None:
    def run(*argv: str) -> str:
        return subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout

    ids = [
        run("sbatch", "--parsable", "-o", str(tmp / "%j.out"), "--wrap", "true").strip()
        for _ in range(n)
    ]
    while run("squeue", "-h", "-j", ",".join(ids), "-t", "PENDING,RUNNING,COMPLETING").strip():
        time.sleep(0.05)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dask_figures(pathlib.Path(tmp))
        slurm_figure(pathlib.Path(tmp))


if __name__ == "__main__":
    main()
