"""Runs and chained steps: the seed's walkthrough and every promise of issue 2."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import trialbook
from conftest import Closing
from trialbook.errors import (
    CodecError,
    ConfigError,
    ExperimentExistsError,
    ExperimentNotFoundError,
    RunFailedError,
    RunNotFoundError,
)
from trialbook.execution import InProcessExecutor


def test_seed_walkthrough_creating_and_running(session: trialbook.Session) -> None:
    experiment = session.create_experiment("example")
    assert repr(session) == f"Session(url={session.store.url!r}, experiments=0)"
    assert repr(experiment) == "Experiment(name='example', runs.count=0)"
    with experiment.run() as run:
        run.vars.a = 1
        run.state.b = 2
        run.fields.c = 3
    assert repr(experiment) == "Experiment(name='example', runs.count=1)"
    assert list(experiment.runs) == [run.id]
    assert experiment.runs[run.id] is run
    assert dict(run.vars) == {}
    assert dict(run.state) == {"b": 2}
    assert dict(run.fields) == {"c": 3}
    assert run.fields.c == run.fields["c"] == 3


def _seed_persistence_script(store: str) -> str:
    return textwrap.dedent(
        f"""
        import numpy as np, pandas as pd, pyarrow as pa, trialbook
        session = trialbook.create_session({store!r})
        experiment = session.create_experiment("example")
        experiment.add_run()
        def step(run):
            run.vars.a = 1
            run.state.b = 2
            run.fields.c = 3
            run.fields.arr = np.arange(4)
            run.fields.df = pd.DataFrame({{"x": [1, 2]}})
            run.fields.tbl = pa.table({{"y": ["a", "b"]}})
        experiment.execute(step)
        experiment.persist()
        """
    )


def test_seed_walkthrough_persist_and_reload_in_fresh_process(
    session: trialbook.Session, store_dir
) -> None:
    script = _seed_persistence_script(str(store_dir))
    subprocess.run([sys.executable, "-c", script], check=True)
    experiment = session.load_experiment("example")
    (run,) = experiment.runs.values()
    assert dict(run.vars) == {}
    assert dict(run.state) == {}
    assert run.fields.c == 3
    assert run.fields.arr.tolist() == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(run.fields.df, pd.DataFrame({"x": [1, 2]}))
    assert run.fields.tbl.equals(pa.table({"y": ["a", "b"]}))
    assert run.status == "done"


def test_add_runs_is_a_cartesian_product(session: trialbook.Session) -> None:
    experiment = session.create_experiment("grid")
    runs = experiment.add_runs(a=[1, 2], b=("x", "y", "z"), c=np.array([0.5]), d="const")
    assert len(runs) == 6
    assert [r.id for r in runs] == [1, 2, 3, 4, 5, 6]
    assert {(r.params.a, r.params.b) for r in runs} == {(a, b) for a in (1, 2) for b in "xyz"}
    assert all(r.params.c == 0.5 and r.params.d == "const" for r in runs)
    assert experiment.add_runs(a=[]) == []


def test_vars_are_per_execution_and_state_survives(session: trialbook.Session) -> None:
    experiment = session.create_experiment("state")
    experiment.add_runs(x=[1, 2])

    def first(run: trialbook.Run) -> None:
        assert dict(run.vars) == {}
        run.vars.tmp = run.params.x
        run.state.count = run.state.get("count", 0) + 1

    def second(run: trialbook.Run) -> None:
        run.fields.double = run.vars.tmp * 2

    experiment.execute([first, second])
    experiment.execute([first, second])
    for run in experiment.runs.values():
        assert dict(run.vars) == {}
        assert run.state.count == 2
        assert run.fields.double == run.params.x * 2


def test_state_is_not_persisted(session: trialbook.Session) -> None:
    experiment = session.create_experiment("s")
    experiment.add_run()
    experiment.execute(lambda run: run.state.update(model=object()))
    experiment.persist()
    (run,) = session.load_experiment("s").runs.values()
    assert dict(run.state) == {}


def test_parallel_execution_matches_serial(session: trialbook.Session) -> None:
    experiment = session.create_experiment("par")
    experiment.add_runs(x=list(range(40)))
    experiment.add_run(x=100)

    def step(run: trialbook.Run) -> None:
        run.state.seen = run.state.get("seen", 0) + 1
        run.fields.y = run.params.x**2
        for i in range(3):
            run.log_metric("m", run.params.x + i)

    experiment.execute(step, n_jobs=2)
    experiment.execute(step, n_jobs=2)
    experiment.persist()
    loaded = session.load_experiment("par")
    for run in loaded.runs.values():
        assert run.fields.y == run.params.x**2
        assert run.status == "done"
        assert run.metrics("m")["step"].tolist() == [0, 1, 2]  # the second execution's
    assert all(run.state.seen == 2 for run in experiment.runs.values())


def test_failing_step_marks_run_and_keeps_others(session: trialbook.Session) -> None:
    experiment = session.create_experiment("fail")
    experiment.add_runs(x=[1, 0, 2])

    def divide(run: trialbook.Run) -> None:
        run.fields.inv = 1 / run.params.x

    with pytest.raises(
        RunFailedError, match=r"run 2 of experiment 'fail' failed: ZeroDivision"
    ) as info:
        experiment.execute(divide)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert info.value.__cause__.__traceback__ is not None
    assert info.value.failures == {2: "ZeroDivisionError: division by zero"}
    failed = experiment.runs[2]
    assert failed.status == "failed"
    assert failed.error.type == "ZeroDivisionError"
    assert "in divide" in failed.error.traceback
    assert [experiment.runs[i].status for i in (1, 3)] == ["done", "done"]
    experiment.persist()
    reloaded = session.load_experiment("fail").runs
    assert reloaded[2].error.type == "ZeroDivisionError"
    assert "1 / run.params.x" in reloaded[2].error.traceback
    assert reloaded[3].fields.inv == 0.5


def test_failing_step_in_worker_keeps_type(session: trialbook.Session) -> None:
    experiment = session.create_experiment("failpar")
    experiment.add_runs(x=[1, 0, 2, 0])

    def divide(run: trialbook.Run) -> None:
        run.fields.inv = 1 / run.params.x

    with pytest.raises(RunFailedError, match="and 1 other run failed too") as info:
        experiment.execute(divide, n_jobs=2)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert any("Traceback in the worker" in n for n in info.value.__cause__.__notes__)
    assert [r.status for r in experiment.runs.values()] == ["done", "failed", "done", "failed"]


class _Watched:
    """A ``LocalLauncher`` of two workers that counts, in ``done``, the calls that returned (a
    line each): what a step in a worker can wait for."""

    n_workers = 2

    def __init__(self, done: pathlib.Path) -> None:
        from trialbook.execution.pool import LocalLauncher

        self.launcher = LocalLauncher(self.n_workers)
        self.done = done

    def submit(self, fn, /, *args):
        future = self.launcher.submit(fn, *args)

        def returned(f) -> None:
            if not f.cancelled() and f.exception() is None:
                with open(self.done, "a") as out:
                    out.write("returned\n")

        future.add_done_callback(returned)
        return future

    def shutdown(self) -> None:
        self.launcher.shutdown()


def test_killed_local_worker_marks_its_runs_failed_and_the_rest_goes_on(
    session: trialbook.Session, tmp_path: pathlib.Path
) -> None:
    """The run with x=3 kills its worker once the three other runs came back (each travels
    alone: one call per run): it fails, saying its worker died, and the others are done."""
    from races import count, wait_until

    experiment = session.create_experiment("killed")
    experiment.add_runs(x=[1, 2, 3, 4])
    done = tmp_path / "returned"

    def die_on_three(run: trialbook.Run) -> None:
        if run.params.x == 3:
            wait_until(lambda: count(done) == 3, "the other runs came back")
            os._exit(1)  # the worker process dies mid-run
        run.fields.ok = True

    with pytest.raises(RunFailedError, match="worker process died") as info:
        experiment.execute(die_on_three, executor=_Watched(done))
    assert list(info.value.failures) == [3]
    statuses = {run.params.x: run.status for run in experiment.runs.values()}
    assert statuses == {1: "done", 2: "done", 3: "failed", 4: "done"}
    assert all(experiment.runs[i].fields.ok for i in (1, 2, 4))
    experiment.persist()
    reloaded = session.load_experiment("killed").runs
    assert [reloaded[i].status for i in (1, 2, 3, 4)] == ["done", "done", "failed", "done"]


def test_runs_go_to_any_executor(session: trialbook.Session) -> None:
    """`execute(executor=...)` sends runs through the executor protocol, here this process."""
    experiment = session.create_experiment("through-executor")
    experiment.add_runs(x=[1, 0, 3])
    experiment.runs[1].state.seen = 1

    def step(run: trialbook.Run) -> None:
        run.state.seen = run.state.get("seen", 0) + 1
        run.log_metric("m", run.params.x)
        run.fields.inv = 1 / run.params.x

    with pytest.raises(RunFailedError, match="run 2 of experiment 'through-executor'") as info:
        experiment.execute(step, executor=InProcessExecutor())
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    runs = experiment.runs
    assert [r.status for r in runs.values()] == ["done", "failed", "done"]
    assert [r.state.seen for r in runs.values()] == [2, 1, 1]
    assert runs[3].fields.inv == 1 / 3 and runs[3].metrics("m")["value"].tolist() == [3.0]
    experiment.persist()
    assert session.load_experiment("through-executor").runs[3].fields.inv == 1 / 3


def test_executor_excludes_the_other_ways_of_choosing(session: trialbook.Session) -> None:
    experiment = session.create_experiment("executor-args")
    experiment.add_run(x=1)
    with pytest.raises(ConfigError, match="drop n_jobs=, backend= and client="):
        experiment.execute(lambda r: None, executor=InProcessExecutor(), n_jobs=2)
    with pytest.raises(ConfigError, match="drop n_jobs=, backend= and client="):
        experiment.execute(lambda r: None, executor=InProcessExecutor(), backend="local")
    with pytest.raises(ConfigError, match="executor must follow the executor protocol"):
        experiment.execute(lambda r: None, executor="slurm")
    assert experiment.runs[1].status == "pending"


def test_run_context_marks_failure_and_reraises(session: trialbook.Session) -> None:
    experiment = session.create_experiment("ctx")
    with pytest.raises(KeyError, match="boom"), experiment.run(a=1) as run:
        raise KeyError("boom")
    assert run.status == "failed"
    assert run.error.type == "KeyError"


def test_persist_writes_only_new_and_changed_runs(store_dir, closing: Closing) -> None:
    statements: list[str] = []
    store = closing(
        trialbook.open_store(
            store_dir,
            tracer=lambda sql, params: statements.append(
                (sql, len(params) if isinstance(params, list) else 1)
            ),
        )
    )
    session = trialbook.Session(store)
    experiment = session.create_experiment("inc")
    experiment.add_runs(x=list(range(100)))
    experiment.execute(lambda run: run.fields.update(y=run.params.x))
    experiment.persist()

    def written() -> int:
        return sum(n for sql, n in statements if sql.startswith("INSERT OR REPLACE INTO runs"))

    assert written() == 100
    statements.clear()
    experiment.persist()
    assert statements == []  # nothing changed: not even a transaction
    experiment.runs[5].fields.y = -1
    experiment.add_run(x=1000)
    experiment.persist()
    assert written() == 2
    loaded = session.load_experiment("inc").runs
    assert loaded[5].fields.y == -1
    assert len(loaded) == 101


def test_persist_existing_name_fails_or_replaces(session: trialbook.Session) -> None:
    first = session.create_experiment("dup")
    first.add_run(v=1)
    first.persist()
    with pytest.raises(ExperimentExistsError, match="load_experiment"):
        session.create_experiment("dup")  # at once, before any compute
    second = session.create_experiment("dup", if_exists="replace")
    second.add_run(v=2)
    with pytest.raises(ExperimentExistsError, match="load_experiment"):
        second.persist(if_exists="fail")
    assert session.load_experiment("dup").runs[1].params.v == 1  # untouched
    second.persist()
    assert session.load_experiment("dup").runs[1].params.v == 2


def test_replace_with_an_unstorable_field_keeps_the_3_old_runs(
    session: trialbook.Session,
) -> None:
    """persist(if_exists='replace') with an unstorable field keeps the 3 old runs: nothing is
    replaced, and once the field is fixed the same persist replaces them."""
    first = session.create_experiment("keep")
    first.add_runs(v=[1, 2, 3])
    first.persist()
    old_id = session.store.find_experiment("keep").id
    second = session.create_experiment("keep", if_exists="replace")
    second.add_runs(v=[10, 20])
    second.runs[2].fields.bad = object()
    with pytest.raises(CodecError, match="field 'bad' of run 2 cannot be persisted"):
        second.persist(if_exists="replace")
    assert session.store.find_experiment("keep").id == old_id
    assert [run.params.v for run in session.load_experiment("keep").runs.values()] == [1, 2, 3]
    del second.runs[2].fields["bad"]
    second.persist(if_exists="replace")
    assert [run.params.v for run in session.load_experiment("keep").runs.values()] == [10, 20]


def test_names_differing_in_case_or_punctuation_are_distinct(session: trialbook.Session) -> None:
    for name in ("my-exp", "My Exp", "my_exp"):
        e = session.create_experiment(name)
        e.add_run(name=name)
        e.persist()
    assert sorted(session.ls()["name"]) == ["My Exp", "my-exp", "my_exp"]
    assert session.load_experiment("My Exp").runs[1].params.name == "My Exp"


def test_unsupported_field_type_writes_nothing(session: trialbook.Session) -> None:
    experiment = session.create_experiment("bad")
    experiment.add_run()
    experiment.persist()
    experiment.runs[1].fields.ok = 1
    experiment.runs[1].fields.bad = object()
    with pytest.raises(CodecError, match="field 'bad' of run 1 cannot be persisted"):
        experiment.persist()
    assert session.load_experiment("bad").runs[1].fields == {}
    del experiment.runs[1].fields["bad"]
    experiment.persist()
    assert session.load_experiment("bad").runs[1].fields == {"ok": 1}


def test_pickle_needs_explicit_opt_in(store_dir, closing: Closing) -> None:
    class Thing:
        def __init__(self) -> None:
            self.v = 3

    session = closing(trialbook.create_session(store_dir, allow_pickle=True))
    e = session.create_experiment("p")
    e.add_run()
    e.runs[1].fields.thing = Thing()
    e.persist()
    assert session.load_experiment("p").runs[1].fields.thing.v == 3
    loaded = closing(trialbook.create_session(store_dir)).load_experiment("p")  # loads...
    with pytest.raises(CodecError, match="allow_pickle=True"):
        _ = loaded.runs[1].fields.thing  # ...but the pickled value is not unpickled


def test_df_has_params_status_timings_fields_and_metrics(session: trialbook.Session) -> None:
    experiment = session.create_experiment("df")
    experiment.add_runs(lr=[0.1, 0.01])

    def fit(run: trialbook.Run) -> None:
        run.fields.score = run.params.lr * 10
        run.fields.weights = np.zeros(3)  # not a scalar: no column
        run.fields.status = "mine"  # clashes with a fixed column
        run.log_metric("loss", 1.0)
        run.log_metric("loss", 0.5)

    experiment.execute(fit).persist()
    for frame in (experiment.df(), session.load_experiment("df").runs.df()):
        assert list(frame.columns) == [
            "lr",
            "status",
            "started",
            "finished",
            "duration",
            "error",
            "score",
            "field.status",
            "metric.loss",
        ]
        assert frame.index.tolist() == [1, 2]
        assert frame["score"].tolist() == [1.0, 0.1]
        assert frame["metric.loss"].tolist() == [0.5, 0.5]
        assert (frame["duration"] >= 0).all()
        assert str(frame["started"].dtype).startswith("datetime64")


def test_metrics_round_trip_and_continue_after_reload(session: trialbook.Session) -> None:
    experiment = session.create_experiment("metrics")
    with experiment.run() as run:
        for i in range(1000):
            run.log_metric("loss", 1 / (i + 1))
        run.log_metric("acc", 0.9, step=10)
    experiment.persist()
    loaded = session.load_experiment("metrics")
    run = loaded.runs[1]
    frame = run.metrics("loss")
    assert list(frame.columns) == ["step", "value", "time"]
    assert frame["step"].tolist() == list(range(1000))
    assert frame["value"].iloc[-1] == pytest.approx(1 / 1000)
    run.log_metric("loss", 0.0)
    loaded.persist()
    again = session.load_experiment("metrics").runs[1].metrics("loss")
    assert again["step"].tolist()[-2:] == [999, 1000]
    assert session.load_experiment("metrics").runs[1].metrics()["name"].unique().tolist() == [
        "acc",
        "loss",
    ]


def test_metric_errors(session: trialbook.Session) -> None:
    experiment = session.create_experiment("merr")
    run = experiment.add_run()
    with pytest.raises(ConfigError, match="metric 'x' takes real numbers"):
        run.log_metric("x", "high")
    run.log_metric("loss", 1.0)
    with pytest.raises(trialbook.errors.NotFoundError, match="did you mean 'loss'"):
        run.metrics("los")


def test_execute_rejects_bad_input(session: trialbook.Session) -> None:
    experiment = session.create_experiment("bad-input")
    experiment.add_run()
    with pytest.raises(ConfigError, match="step 1 is not callable"):
        experiment.execute([lambda r: None, "oops"])
    with pytest.raises(ConfigError, match="n_jobs must be a positive int"):
        experiment.execute(lambda r: None, n_jobs=0)
    with pytest.raises(RunNotFoundError, match="has no run with id 9"):
        experiment.execute(lambda r: None, run_ids=[9])
    with pytest.raises(ConfigError, match="if_exists must be"):
        experiment.persist(if_exists="merge")


def test_session_errors(session: trialbook.Session) -> None:
    e = session.create_experiment("present")
    e.persist()
    with pytest.raises(ExperimentNotFoundError, match=r"did you mean 'present'"):
        session.load_experiment("presnt")
    with pytest.raises(ExperimentNotFoundError):
        session.delete_experiment("absent")
    with pytest.raises(ConfigError, match="non-empty str"):
        session.create_experiment("")
    session.delete_experiment("present")
    assert session.ls().empty


def test_default_store_is_dot_trialbook_in_cwd(tmp_path, closing: Closing) -> None:
    session = closing(trialbook.create_session())
    session.create_experiment("d").persist()
    assert (tmp_path / ".trialbook" / "trialbook.db").exists()
    assert repr(session).startswith("Session(url='.trialbook'")


def test_default_store_from_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TRIALBOOK_STORE", str(tmp_path / "elsewhere"))
    with trialbook.create_session() as session:
        session.create_experiment("d").persist()
    assert (tmp_path / "elsewhere" / "trialbook.db").exists()


# -- issue 18: a failed run never costs the others --------------------------------------------


def _fit(run: trialbook.Run) -> None:
    """A step of the README's kind that fails for one run (``alpha == 0``)."""
    run.log_metric("mse", 1.0 / run.params.alpha)
    run.fields.w = np.arange(3.0) / run.params.alpha


def _fit_fixed(run: trialbook.Run) -> None:
    run.fields.w = np.arange(3.0) * run.params.alpha


def test_failed_run_in_the_readme_chain_keeps_the_finished_runs(
    session: trialbook.Session,
) -> None:
    """`execute(step).persist()` with one failing run: execute stores the finished runs and
    the failed one (as failed, with its traceback) before raising; re-running only the failed
    one, by the ids the error names, completes the experiment."""
    experiment = session.create_experiment("ridge", if_exists="replace")  # a new name
    experiment.add_runs(alpha=[0.5, 0.0, 2.0])
    with pytest.raises(RunFailedError, match="run 2 of experiment 'ridge' failed") as caught:
        experiment.execute(_fit).persist()
    err = caught.value
    assert isinstance(err.__cause__, ZeroDivisionError)
    assert (err.failed, err.succeeded, err.stored) == ([2], [1, 3], True)
    assert "The 2 runs that finished are stored, and the failed one as failed" in str(err)
    assert "experiment.execute(steps, run_ids=[2])" in str(err)
    stored = session.load_experiment("ridge").runs
    assert [run.status for run in stored.values()] == ["done", "failed", "done"]
    assert stored[2].error.type == "ZeroDivisionError"
    assert "1.0 / run.params.alpha" in stored[2].error.traceback
    assert stored[3].fields.w.tolist() == [0.0, 0.5, 1.0]
    assert stored[3].metrics("mse")["value"].tolist() == [0.5]
    experiment.execute(_fit_fixed, run_ids=err.failed).persist()
    again = session.load_experiment("ridge").runs
    assert [run.status for run in again.values()] == ["done", "done", "done"]
    assert again[2].error is None and again[2].fields.w.tolist() == [0.0, 0.0, 0.0]
    assert again[1].fields.w.tolist() == [0.0, 2.0, 4.0]  # not executed again


def test_failure_does_not_replace_a_stored_experiment_by_itself(
    session: trialbook.Session,
) -> None:
    """With `if_exists="replace"` over a stored experiment, a failed execute stores nothing
    (its first persist would delete the stored runs): the message says so and how to store
    them; following it stores the finished and failed runs."""
    old = session.create_experiment("ridge")
    old.add_runs(alpha=[9.0])
    old.persist()
    experiment = session.create_experiment("ridge", if_exists="replace")
    experiment.add_runs(alpha=[0.5, 0.0])
    with pytest.raises(RunFailedError) as caught:
        experiment.execute(_fit).persist()
    err = caught.value
    assert (err.failed, err.succeeded, err.stored) == ([2], [1], False)
    message = str(err)
    assert "1 run finished and is kept in memory only" in message
    assert "replaces the stored experiment 'ridge' and deletes its runs" in message
    assert "call experiment.persist() to store them" in message
    assert [run.params.alpha for run in session.load_experiment("ridge").runs.values()] == [9.0]
    experiment.persist()  # as the message says
    stored = session.load_experiment("ridge").runs
    assert [(run.params.alpha, run.status) for run in stored.values()] == [
        (0.5, "done"),
        (0.0, "failed"),
    ]
    experiment.execute(_fit_fixed, run_ids=err.failed).persist()
    assert session.load_experiment("ridge").runs[2].status == "done"


def test_failure_whose_persist_fails_keeps_the_runs_in_memory(
    session: trialbook.Session,
) -> None:
    """When storing after a failure fails too, the steps' exception is still what is raised,
    the message gives the reason, and the runs are all in memory."""
    experiment = session.create_experiment("unstorable")
    experiment.add_runs(x=[1, 0])

    def step(run: trialbook.Run) -> None:
        run.fields.model = object()  # no codec stores it
        run.fields.inv = 1 / run.params.x

    with pytest.raises(RunFailedError) as caught:
        experiment.execute(step)
    err = caught.value
    assert isinstance(err.__cause__, ZeroDivisionError) and not err.stored
    assert "kept in memory only (storing them failed: CodecError: field 'model'" in str(err)
    assert [run.status for run in experiment.runs.values()] == ["done", "failed"]
    assert session.store.find_experiment("unstorable").runs == 0


_CRASHING_SCRIPT = """
    import sys, trialbook
    session = trialbook.create_session(sys.argv[1])
    experiment = session.create_experiment("crash", if_exists="append")
    experiment.add_runs(x=[1, 0, 2])
    def invert(run):
        run.fields.inv = 1 / run.params.x
    experiment.execute(invert).persist()  # raises RunFailedError: the script ends here
    print("NOT REACHED")
"""

_RERUN_SCRIPT = """
    import sys, trialbook
    from trialbook.errors import RunFailedError
    with trialbook.create_session(sys.argv[1]) as session:
        experiment = session.load_experiment("crash")
        def invert(run):
            run.fields.inv = 1 / run.params.x if run.params.x else None
        experiment.execute(invert, only="failed").persist()
"""


def test_script_ended_by_a_failed_run_left_the_others_stored(tmp_path: pathlib.Path) -> None:
    """A script whose chain raises RunFailedError (the exception ends it): the finished runs
    and the failed one are in the store; a second script re-runs only the failed one."""
    store = str(tmp_path / "store")
    crashed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CRASHING_SCRIPT), store],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crashed.returncode == 1 and "NOT REACHED" not in crashed.stdout
    assert "RunFailedError: run 2 of experiment 'crash' failed" in crashed.stderr
    assert "The 2 runs that finished are stored" in crashed.stderr
    with trialbook.create_session(store) as session:
        stored = session.load_experiment("crash").runs
        assert [run.status for run in stored.values()] == ["done", "failed", "done"]
        assert [stored[i].fields.inv for i in (1, 3)] == [1.0, 0.5]
        assert "ZeroDivisionError" in stored[2].error.traceback
        finished = [stored[i].finished for i in (1, 3)]
    rerun = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_RERUN_SCRIPT), store],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr
    with trialbook.create_session(store) as session:
        stored = session.load_experiment("crash").runs
        assert [run.status for run in stored.values()] == ["done", "done", "done"]
        assert [stored[i].finished for i in (1, 3)] == finished  # not executed again
        assert stored[2].fields.inv is None and stored[2].error is None


def test_run_ids_are_checked_and_each_run_executes_once(session: trialbook.Session) -> None:
    experiment = session.create_experiment("chosen")
    experiment.add_runs(x=[1, 2, 3])
    calls: list[int] = []
    experiment.execute(lambda run: calls.append(run.id), run_ids=[3, 1, 3])
    assert calls == [3, 1]
    with pytest.raises(ConfigError, match=r"run_ids must be a list of run ids.*got 2"):
        experiment.execute(lambda run: None, run_ids=2)  # type: ignore[arg-type]
    with pytest.raises(RunNotFoundError, match="no run with id 7"):
        experiment.execute(lambda run: None, run_ids=[7])


def _warning_step(run: trialbook.Run) -> None:
    warnings.warn("from the step", UserWarning, stacklevel=1)
    run.fields.went_on = True


def test_the_parents_warning_filters_reach_the_workers(session: trialbook.Session) -> None:
    """`-W error` or an ignore set in the sending process holds in the worker processes."""
    experiment = session.create_experiment("warned")
    experiment.add_runs(x=[1, 2])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="from the step")
        experiment.execute(_warning_step, n_jobs=2)
    assert all(run.fields.went_on for run in experiment.runs.values())
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="from the step")
        with pytest.raises(RunFailedError) as caught:
            experiment.execute(_warning_step, n_jobs=2)
    assert isinstance(caught.value.__cause__, UserWarning)
    assert [run.error.type for run in experiment.runs.values()] == ["UserWarning"] * 2
