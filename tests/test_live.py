"""Runs are live (issue 18): a run that another process executes reads as ``running`` with its
metric points growing before it ends, and a run whose process was killed reads as lost
(failed) once its heartbeat is older than the timeout; on every backend.

The executing process is a real second process (spawn); it waits at barrier files that the
test creates once it has seen what it expects, so nothing depends on timing."""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import signal

import pytest
from tests.conftest import BACKENDS, OPTIONAL_BACKENDS, backend_location

import trialbook
from races import wait_until
from trialbook.live import LiveWriter, lost_runs, mark_lost
from trialbook.storage import open_store
from trialbook.storage.records import RunRecord


def _wait_file(path: pathlib.Path) -> None:
    wait_until(path.exists, f"{path.name} exists", timeout=120)


def _slow_runs(location: str, folder: str) -> None:
    """Child: execute two runs of experiment 'live'; the first logs a point, waits at barrier
    'b1', logs a second point, waits at 'b2' (or forever if 'b2' never comes: it is killed)."""
    os.environ["TRIALBOOK_LIVE_INTERVAL"] = "0"  # write at every point
    barriers = pathlib.Path(folder)

    def step(run: trialbook.Run) -> None:
        run.log_metric("loss", 1.0)
        _wait_file(barriers / f"b1-{run.id}")
        run.log_metric("loss", 0.5)
        _wait_file(barriers / f"b2-{run.id}")
        run.fields.final = run.id

    with trialbook.create_session(location) as session:
        experiment = session.load_experiment("live")
        experiment.execute(step).persist()


def _setup(location: str) -> int:
    with trialbook.create_session(location) as session:
        experiment = session.create_experiment("live")
        experiment.add_runs(x=[1, 2])
        experiment.persist()
        return experiment._info.id  # type: ignore[union-attr]


def _statuses(store, experiment_id: int) -> dict[int, str]:
    return {r.run_id: r.status for r in store.read_runs(experiment_id)}


def _points(store, experiment_id: int, run_id: int) -> int:
    return store.metric_names(experiment_id, run_id).get("loss", 0)


@pytest.mark.parametrize("backend", BACKENDS + OPTIONAL_BACKENDS)
def test_running_run_and_growing_metrics_seen_by_another_process(
    backend: str, tmp_path: pathlib.Path
) -> None:
    with backend_location(backend, tmp_path) as location:
        experiment_id = _setup(location)
        ctx = multiprocessing.get_context("spawn")
        child = ctx.Process(target=_slow_runs, args=(location, str(tmp_path)))
        child.start()
        try:
            with open_store(location) as store:
                wait_until(lambda: _points(store, experiment_id, 1) == 1, "run 1 has 1 point")
                assert _statuses(store, experiment_id) == {1: "running", 2: "pending"}
                (tmp_path / "b1-1").touch()
                wait_until(lambda: _points(store, experiment_id, 1) == 2, "run 1 has 2 points")
                assert _statuses(store, experiment_id)[1] == "running"
                (tmp_path / "b2-1").touch()
                wait_until(
                    lambda: _statuses(store, experiment_id) == {1: "done", 2: "running"},
                    "run 1 done and run 2 running",
                )
                (run1,) = store.read_runs(experiment_id, [1])
                assert run1.fields == {"final": 1}
                (tmp_path / "b1-2").touch()
                (tmp_path / "b2-2").touch()
                child.join(120)
                assert child.exitcode == 0
                assert _statuses(store, experiment_id) == {1: "done", 2: "done"}
                assert _points(store, experiment_id, 2) == 2
                info = store.find_experiment("live")
                assert info is not None
                assert not any(v for k, v in info.meta.items() if k.startswith("live:"))
        finally:
            if child.is_alive():
                child.kill()
                child.join()


@pytest.mark.parametrize("backend", BACKENDS + OPTIONAL_BACKENDS)
def test_run_of_a_killed_process_reads_as_lost(backend: str, tmp_path: pathlib.Path) -> None:
    with backend_location(backend, tmp_path) as location:
        experiment_id = _setup(location)
        ctx = multiprocessing.get_context("spawn")
        child = ctx.Process(target=_slow_runs, args=(location, str(tmp_path)))
        child.start()
        try:
            with open_store(location) as store:
                wait_until(lambda: _points(store, experiment_id, 1) == 1, "run 1 has 1 point")
        finally:
            os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
            child.join()
        with open_store(location) as store:
            records = store.read_runs(experiment_id)
            info = store.find_experiment("live")
            assert info is not None
            # within the timeout the run still reads as running; past it, as lost
            fresh = mark_lost(store.read_runs(experiment_id), info.meta, timeout=3600)
            assert [r.status for r in fresh] == ["running", "pending"]
            lost = mark_lost(records, info.meta, timeout=0.0, now=1e12)
            assert [r.status for r in lost] == ["failed", "pending"]
            assert lost[0].error is not None and lost[0].error.type == "LostRun"
            assert f"pid {child.pid}" in lost[0].error.message
            assert _statuses(store, experiment_id)[1] == "running"  # derived, not written
        os.environ["TRIALBOOK_HEARTBEAT_TIMEOUT"] = "0"
        try:
            with trialbook.create_session(location) as session:
                loaded = session.load_experiment("live")
                assert loaded.runs[1].status == "failed"
                assert loaded.runs[1].error is not None
                assert loaded.runs[1].error.type == "LostRun"
        finally:
            del os.environ["TRIALBOOK_HEARTBEAT_TIMEOUT"]


def test_a_run_listed_by_a_fresh_process_is_not_lost() -> None:
    """Executed again by another process after its first one died: running, not lost."""
    meta = {
        "live:dead": {"host": "a", "pid": 1, "beat": 0.0, "runs": [1, 2]},
        "live:alive": {"host": "b", "pid": 2, "beat": 100.0, "runs": [2]},
        "live:ended": None,
    }
    assert list(lost_runs(meta, now=100.0, timeout=10.0)) == [1]
    records = [RunRecord(1, status="done"), RunRecord(2, status="running")]
    assert [r.status for r in mark_lost(records, meta, now=100.0, timeout=10.0)] == [
        "done",
        "running",
    ]


def test_live_writes_do_not_conflict_with_persist(session: trialbook.Session) -> None:
    """Live writes hold the run's version: the session's persist after them is accepted, and
    a second execution replaces the metric points written live."""
    experiment = session.create_experiment("versions")
    experiment.add_runs(x=[1, 2, 3])
    experiment.persist()
    experiment_id = experiment._info.id  # type: ignore[union-attr]
    os.environ["TRIALBOOK_LIVE_INTERVAL"] = "0"
    try:
        for value in (1.0, 2.0):
            experiment.execute(lambda run, value=value: run.log_metric("m", value)).persist()
    finally:
        del os.environ["TRIALBOOK_LIVE_INTERVAL"]
    store = session.store
    assert _statuses(store, experiment_id) == {1: "done", 2: "done", 3: "done"}
    assert store.read_metrics(experiment_id, "m", [1])[1].values.tolist() == [2.0]
    reloaded = session.load_experiment("versions")
    assert reloaded.runs[2].metrics("m")["value"].tolist() == [2.0]


def test_many_runs_start_in_few_writes(tmp_path: pathlib.Path) -> None:
    """With the default interval, a thousand quick runs do not cost a write each: the writer
    writes at the first start, then only when the interval has elapsed (the versions of the
    stored runs count their writes)."""
    with trialbook.create_session(tmp_path / "store") as session:
        experiment = session.create_experiment("many")
        experiment.add_runs(x=range(1000))
        experiment.persist()
        experiment_id = experiment._info.id  # type: ignore[union-attr]
        with LiveWriter(session.store, experiment_id, interval=3600.0) as live:
            for run in experiment.runs.values():
                run.start()
                live.started(run)
                run.finish()
                live.finished(run)
        versions = {r.run_id: (r.status, r.version) for r in session.store.read_runs(experiment_id)}
        assert versions[1] == ("done", 3)  # persisted, written running, written done
        assert set(list(versions.values())[1:]) == {("pending", 1)}  # left to persist()


def _slow_trial(location: str, folder: str) -> None:
    """Child: compute one trial of graph experiment 'g' that logs a point, then waits at
    barrier 'b1' (or forever if it never comes: it is killed)."""
    os.environ["TRIALBOOK_LIVE_INTERVAL"] = "0"  # write at every point
    barriers = pathlib.Path(folder)
    with trialbook.Experiment("g", backend=location) as ex:
        a = ex.parameter("a")

        @ex.result
        def slow(a):
            ex.save_metric("loss", epoch=0, value=1.0)
            _wait_file(barriers / "b1")
            return a * 2

        ex.set_parameters(a=3)
        slow(a).compute(seed=0)


@pytest.mark.parametrize("backend", BACKENDS + OPTIONAL_BACKENDS)
def test_a_trial_in_progress_reads_as_running_and_as_lost_once_killed(
    backend: str, tmp_path: pathlib.Path
) -> None:
    """A graph trial is `running` from compute()'s start with its points written as they come;
    the history lists ended trials only; killed, the trial is in the history as LostRun."""
    with backend_location(backend, tmp_path) as location:
        ctx = multiprocessing.get_context("spawn")
        child = ctx.Process(target=_slow_trial, args=(location, str(tmp_path)))
        child.start()
        try:
            with open_store(location) as store:

                def started() -> bool:
                    info = store.find_experiment("g")
                    return info is not None and _points(store, info.id, 1) == 1

                wait_until(started, "trial 1 logged its point")
                info = store.find_experiment("g")
                assert info is not None
                assert _statuses(store, info.id) == {1: "running"}
            with trialbook.Experiment("g", backend=location) as ex:
                assert len(ex.get_history()) == 0  # running: not in the history yet
        finally:
            os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
            child.join()
        os.environ["TRIALBOOK_HEARTBEAT_TIMEOUT"] = "0"
        try:
            with trialbook.Experiment("g", backend=location) as ex:
                history = ex.get_history()
                assert history.index.tolist() == [1]
                assert history.loc[1, "Success"] == False  # noqa: E712 - a NumPy bool
                assert str(history.loc[1, "Description"]).startswith("LostRun(")
        finally:
            del os.environ["TRIALBOOK_HEARTBEAT_TIMEOUT"]


def test_a_finished_trial_leaves_no_heartbeat(tmp_path: pathlib.Path) -> None:
    """Trials of a process that closes its experiment leave no live entry listing them."""
    location = str(tmp_path / "store")
    with trialbook.Experiment("g", backend=location) as ex:
        a = ex.parameter("a")

        @ex.result
        def double(a):
            return 2 * a

        ex.set_parameters(a=1)
        assert double(a).compute(seed=0) == 2
        assert double(a).compute(seed=0) == 2
    with open_store(location) as store:
        info = store.find_experiment("g")
        assert info is not None
        assert _statuses(store, info.id) == {1: "done", 2: "done"}
        assert not any(v for k, v in info.meta.items() if k.startswith("live:"))


def _pool_runs(location: str, folder: str) -> None:
    """Child: execute the four runs of experiment 'live' in a pool of two worker processes;
    run N waits at barrier 'p-N'."""
    os.environ["TRIALBOOK_LIVE_INTERVAL"] = "0"
    barriers = pathlib.Path(folder)

    def step(run: trialbook.Run) -> None:
        _wait_file(barriers / f"p-{run.id}")
        run.fields.final = run.id

    with trialbook.create_session(location) as session:
        experiment = session.load_experiment("live")
        experiment.execute(step, n_jobs=2).persist()


def test_runs_sent_to_a_worker_pool_read_as_running_while_their_batch_runs(
    tmp_path: pathlib.Path,
) -> None:
    """Through an executor, the runs of the batches being executed read as running (two
    workers: two runs), the others as pending, until their batch ends."""
    location = str(tmp_path / "store")
    with trialbook.create_session(location) as session:
        experiment = session.create_experiment("live")
        experiment.add_runs(x=[1, 2, 3, 4])
        experiment.persist()
        experiment_id = experiment._info.id  # type: ignore[union-attr]
    child = multiprocessing.get_context("spawn").Process(
        target=_pool_runs, args=(location, str(tmp_path))
    )
    child.start()
    try:
        with open_store(location) as store:
            expected = {1: "running", 2: "running", 3: "pending", 4: "pending"}
            wait_until(lambda: _statuses(store, experiment_id) == expected, "runs 1, 2 running")
            (tmp_path / "p-1").touch()
            expected = {1: "done", 2: "running", 3: "running", 4: "pending"}
            wait_until(lambda: _statuses(store, experiment_id) == expected, "run 3 running")
            for run_id in (2, 3, 4):
                (tmp_path / f"p-{run_id}").touch()
            child.join(120)
            assert child.exitcode == 0
            assert _statuses(store, experiment_id) == dict.fromkeys((1, 2, 3, 4), "done")
            assert [r.fields["final"] for r in store.read_runs(experiment_id)] == [
                trialbook.codecs.encode(i) for i in (1, 2, 3, 4)
            ]
    finally:
        if child.is_alive():
            child.kill()
            child.join()


def test_a_batch_that_comes_back_before_its_turn_is_never_shown_running_again() -> None:
    """Executors may finish a later batch first: its runs keep their results; the next batch
    shown running is the next one that has not come back."""
    from trialbook.runs_pool import _LiveBatches

    with trialbook.create_session("sqlite:///:memory:") as session:
        experiment = session.create_experiment("order")
        runs = experiment.add_runs(x=[1, 2, 3, 4])
        experiment.persist()
        batches = [[{"id": run.id}] for run in runs]
        by_id = {run.id: run for run in runs}
        with LiveWriter(session.store, experiment._info.id, interval=0.0) as live:  # type: ignore[union-attr]
            shown = _LiveBatches(live, batches, by_id)
            shown.start(2)
            assert [run.status for run in runs] == ["running", "running", "pending", "pending"]
            runs[3].start()
            runs[3].finish()  # batch 4 came back first (absorbed: done)
            shown.end(3)
            assert [run.status for run in runs] == ["running", "running", "running", "done"]
            for index in (0, 1, 2):
                runs[index].finish()
                shown.end(index)
            assert [run.status for run in runs] == ["done"] * 4
