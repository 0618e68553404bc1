"""Two processes adding runs to one experiment at the same time never collide nor lose a run."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import trialbook
from conftest import Closing

WRITER = textwrap.dedent(
    """
    import pathlib, sys, time, trialbook
    store, tag, meeting = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    other = {"a": "b", "b": "a"}[tag]

    def meet(step):  # lockstep: both processes finish step i before either goes on
        (meeting / f"{tag}-{step}").touch()
        deadline = time.monotonic() + 60
        while not (meeting / f"{other}-{step}").exists():
            assert time.monotonic() < deadline, f"{other} never reached step {step}"
            time.sleep(0.001)

    session = trialbook.create_session(store)
    experiment = session.load_experiment("shared")
    meet("start")
    for i in range(40):
        with experiment.run(writer=tag, i=i) as run:
            run.log_metric("m", i)
        experiment.persist()
        meet(i)
    experiment.add_runs(writer=[tag], j=list(range(30)))
    experiment.persist()
    """
)


def test_two_processes_add_runs_concurrently(store_dir, tmp_path, closing: Closing) -> None:
    """The two processes add and persist their runs in lockstep (each run of round i is
    created and persisted by both before round i + 1): ids 2i + 1 and 2i + 2 go to the runs
    of round i, one each, so the two really wrote at the same time."""
    session = closing(trialbook.create_session(store_dir))
    session.create_experiment("shared").persist()
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(store_dir), tag, str(meeting)])
        for tag in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    runs = session.load_experiment("shared").runs
    assert sorted(runs) == list(range(1, 141))
    for tag in ("a", "b"):
        mine = [r for r in runs.values() if r.params.writer == tag]
        assert len(mine) == 70
        assert sorted(r.params.i for r in mine if "i" in r.params) == list(range(40))
    rounds = {}
    for run_id, run in runs.items():
        if "i" in run.params:
            rounds.setdefault(run.params.i, set()).add(run_id)
    assert rounds == {i: {2 * i + 1, 2 * i + 2} for i in range(40)}
    assert all(
        r.metrics("m")["value"].tolist() == [r.params.i] for r in runs.values() if "i" in r.params
    )


OPENER = textwrap.dedent(
    """
    import pathlib, sys, time, trialbook
    store, meeting, me = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
    (meeting / f"ready-{me}").touch()
    go = meeting / "go"
    deadline = time.monotonic() + 60
    while not go.exists():  # every process opens the new store at once
        assert time.monotonic() < deadline, "never told to go"
        time.sleep(0.001)
    session = trialbook.create_session(store)
    experiment = session.create_experiment(f"from-{me}")
    experiment.add_run(x=1)
    experiment.persist()
    """
)


def test_processes_creating_one_new_store_at_once_all_succeed(tmp_path, closing: Closing) -> None:
    """Six processes, started and imported, are released together to create the same new
    store."""
    from races import wait_until

    store, meeting = tmp_path / "fresh", tmp_path / "meeting"
    meeting.mkdir()
    procs = [
        subprocess.Popen([sys.executable, "-c", OPENER, str(store), str(meeting), str(i)])
        for i in range(6)
    ]
    wait_until(lambda: len(list(meeting.glob("ready-*"))) == 6, "the six processes are ready")
    (meeting / "go").touch()
    assert [p.wait(timeout=120) for p in procs] == [0] * 6
    session = closing(trialbook.create_session(store))
    assert sorted(session.ls()["name"]) == [f"from-{i}" for i in range(6)]


def test_environment_export_tolerates_another_process_exporting_it_first(
    tmp_path, monkeypatch
) -> None:
    """Two processes recording trials of one environment export its files at once: the one
    that finds the folder already in place when it is done keeps the other's copy, fails
    nothing and leaves no staging folder behind. The interleaving is forced: while this
    process captures its environment, "another process" renames a complete folder into place."""
    from trialbook import capture
    from trialbook.graph import files

    digest = "feedfacecafebeef" + "0" * 24
    target = tmp_path / "environment" / digest[:16]
    real = capture.environment

    def environment_while_another_process_exports() -> dict[str, str]:
        other = tmp_path / "other"
        other.mkdir()
        (other / "python.json").write_text('{"by": "the other process"}', encoding="utf-8")
        other.rename(target)
        return real()

    monkeypatch.setattr(capture, "environment", environment_while_another_process_exports)
    files.write_environment_files(tmp_path, digest)

    assert (target / "python.json").read_text(encoding="utf-8") == '{"by": "the other process"}'
    assert sorted(p.name for p in (tmp_path / "environment").iterdir()) == [digest[:16]]
