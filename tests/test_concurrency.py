"""Two processes adding runs to one experiment at the same time never collide nor lose a run."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import trialbook
from conftest import Closing

WRITER = textwrap.dedent(
    """
    import sys, trialbook
    store, tag = sys.argv[1], sys.argv[2]
    session = trialbook.create_session(store)
    experiment = session.load_experiment("shared")
    for i in range(40):
        with experiment.run(writer=tag, i=i) as run:
            run.log_metric("m", i)
        experiment.persist()
    experiment.add_runs(writer=[tag], j=list(range(30)))
    experiment.persist()
    """
)


def test_two_processes_add_runs_concurrently(store_dir, closing: Closing) -> None:
    session = closing(trialbook.create_session(store_dir))
    session.create_experiment("shared").persist()
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(store_dir), tag]) for tag in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    runs = session.load_experiment("shared").runs
    assert sorted(runs) == list(range(1, 141))
    for tag in ("a", "b"):
        mine = [r for r in runs.values() if r.params.writer == tag]
        assert len(mine) == 70
        assert sorted(r.params.i for r in mine if "i" in r.params) == list(range(40))
    assert all(
        r.metrics("m")["value"].tolist() == [r.params.i] for r in runs.values() if "i" in r.params
    )


OPENER = textwrap.dedent(
    """
    import sys, time, trialbook
    store, start = sys.argv[1], float(sys.argv[2])
    time.sleep(max(0.0, start - time.time()))  # every process opens the new store at once
    session = trialbook.create_session(store)
    experiment = session.create_experiment(f"from-{sys.argv[3]}")
    experiment.add_run(x=1)
    experiment.persist()
    """
)


def test_processes_creating_one_new_store_at_once_all_succeed(tmp_path, closing: Closing) -> None:
    import time

    store = tmp_path / "fresh"
    start = time.time() + 1.5
    procs = [
        subprocess.Popen([sys.executable, "-c", OPENER, str(store), str(start), str(i)])
        for i in range(6)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * 6
    session = closing(trialbook.create_session(store))
    assert sorted(session.ls()["name"]) == [f"from-{i}" for i in range(6)]
