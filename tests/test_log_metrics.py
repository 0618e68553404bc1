"""``run.log_metrics``: whole arrays of metric points, and the bulk write path of many runs."""

from __future__ import annotations

import dataclasses
import pathlib
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

import trialbook
from trialbook.errors import ConfigError
from trialbook.tracking import Run


def test_arrays_round_trip_through_persist_and_reload(session: trialbook.Session) -> None:
    experiment = session.create_experiment("arrays")
    with experiment.run(lr=0.1) as run:
        run.log_metrics("loss", np.linspace(1.0, 0.0, 1000))
        run.log_metrics("acc", [0.5, 0.75, True, np.float32(0.25), Decimal("0.125")])
    experiment.persist()
    loaded = session.load_experiment("arrays").runs[run.id]
    loss = loaded.metrics("loss")
    assert loss["value"].tolist() == np.linspace(1.0, 0.0, 1000).tolist()
    assert loss["step"].tolist() == list(range(1000))
    assert loaded.metrics("acc")["value"].tolist() == [0.5, 0.75, 1.0, 0.25, 0.125]
    assert loaded.metric_summary() == {"acc": [5, 0.125], "loss": [1000, 0.0]}


def test_steps_continue_the_series_across_calls_and_persists(
    session: trialbook.Session,
) -> None:
    experiment = session.create_experiment("steps")
    [run] = experiment.add_runs(x=[1])
    run.log_metric("m", 1.0)
    run.log_metrics("m", np.array([2.0, 3.0]))
    experiment.persist()
    run.log_metrics("m", [4.0])  # after the write: goes on from the 3 points stored
    run.log_metrics("m", [5.0, 6.0], steps=np.array([10, 20], dtype=np.uint8))
    run.log_metric("m", 7.0)  # the next step after the last point's position
    run.log_metrics("m", [8.0])
    experiment.persist()
    stored = session.load_experiment("steps").runs[run.id].metrics("m")
    assert stored["value"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert stored["step"].tolist() == [0, 1, 2, 3, 10, 20, 6, 7]


def test_points_of_one_call_share_one_time_and_come_after_the_previous() -> None:
    run = Run(1)
    run.log_metric("m", 0.0)
    run.log_metrics("m", range(3))
    times = run.metrics("m")["time"].tolist()
    assert len(set(times[1:])) == 1 and times[1] >= times[0]


@pytest.mark.parametrize(
    ("values", "steps", "message"),
    [
        ([1.0, "x"], None, "metric 'm' takes real numbers (got 'x' that is a <class 'str'>"),
        ([1.0, None], None, "takes real numbers (got None that is a <class 'NoneType'>"),
        ([1j], None, "takes real numbers (got 1j"),
        (np.zeros((2, 2)), None, "one-dimensional array or sequence of real numbers"),
        (3.0, None, "(got 3.0 of shape ()); for one value use log_metric"),
        ([[1.0], [2.0, 3.0]], None, "one-dimensional array"),
        ([1.0, 2.0], [1], "1 steps for 2 values; give one step per value, or no steps"),
        ([1.0], [0.5], "steps must be a one-dimensional array or sequence of 64-bit integers"),
        ([1.0], ["a"], "sequence of 64-bit integers (got ['a'], <U1 of shape (1,))"),
        ([1.0], [2**64], "64-bit integers (got [18446744073709551616])"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error_and_logs_nothing(
    values: object, steps: object, message: str
) -> None:
    run = Run(1)
    run.log_metric("m", 1.0)
    with pytest.raises(ConfigError) as info:
        run.log_metrics("m", values, steps=steps)
    assert message in str(info.value)
    assert run.metrics("m")["value"].tolist() == [1.0]
    assert run.metric_names() == ["m"]


def test_a_bad_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="a metric name must be a non-empty str"):
        Run(1).log_metrics("", [1.0])


def test_an_empty_array_logs_nothing() -> None:
    run = Run(1)
    run.log_metrics("m", np.array([]))
    assert run.metric_names() == []


def test_arrays_logged_in_worker_processes_travel_back(session: trialbook.Session) -> None:
    experiment = session.create_experiment("pool")
    experiment.add_runs(x=list(range(6)))

    def step(run: trialbook.Run) -> None:
        run.log_metrics("curve", np.arange(5) * run.params.x)
        run.log_metrics("curve", [100.0], steps=[50])

    experiment.execute(step, n_jobs=2).persist()
    for run in session.load_experiment("pool").runs.values():
        curve = run.metrics("curve")
        assert curve["value"].tolist() == [*(float(k * run.params.x) for k in range(5)), 100.0]
        assert curve["step"].tolist() == [0, 1, 2, 3, 4, 50]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_second_execution_replaces_the_arrays_of_the_first(
    session: trialbook.Session, n_jobs: int
) -> None:
    experiment = session.create_experiment("again")
    experiment.add_runs(x=[1, 2])
    experiment.execute(lambda run: run.log_metrics("m", np.ones(10)), n_jobs=n_jobs).persist()
    experiment.execute(lambda run: run.log_metrics("m", [2.0, 3.0]), n_jobs=n_jobs)
    for run in experiment.runs.values():  # in memory
        assert run.metrics("m")["value"].tolist() == [2.0, 3.0]
    experiment.persist()
    for run in session.load_experiment("again").runs.values():  # and in the store
        assert run.metrics("m")["value"].tolist() == [2.0, 3.0]
        assert run.metrics("m")["step"].tolist() == [0, 1]


def test_a_graph_trial_logs_arrays_through_current_run(tmp_path: pathlib.Path) -> None:
    ex = trialbook.Experiment("arrays", backend=f"sqlite:///{tmp_path}/graph.db")
    try:

        @ex.result
        def train() -> int:
            run = trialbook.current_run()
            assert run is not None
            run.log_metrics("loss", np.array([0.5, 0.25, 0.125]))
            ex.save_metric("loss", epoch=3, value=0.0625)  # per point, as before
            return 0

        train().compute(seed=0)
        assert ex.load_metric("loss", trial_id=1)[1].tolist() == [0.5, 0.25, 0.125, 0.0625]
    finally:
        ex.close()


def test_one_callback_per_call_for_a_live_writer() -> None:
    run, seen = Run(1), []
    run.on_point(lambda: seen.append(1))
    run.log_metrics("m", np.arange(1000))
    assert seen == [1]


# -- the bulk write path -----------------------------------------------------------------------


def test_a_record_holds_each_value_under_its_own_name() -> None:
    """``to_record`` builds the record by position: every field lands where it belongs."""
    run = Run(5, params={"a": 1}, kind="job", tags={"t": "x"})
    run.fields.f = 2
    run.key, run.seed, run.code, run.environment, run.result = "k", 7, "c", "env", 3
    run.started, run.finished = 10.0, 12.0
    run.log_metric("m", 0.5)
    run.written()
    record = dataclasses.asdict(run.to_record())
    assert record == {
        "run_id": 5, "kind": "job", "status": "pending", "params": {"a": 1}, "fields": {"f": 2},
        "tags": {"t": "x"}, "key": "k", "seed": 7, "created": run.created, "started": 10.0,
        "finished": 12.0, "result": 3, "error": None, "code": "c", "environment": "env",
        "metrics": {"m": [1, 0.5, 0.5, 0.5]}, "version": 1, "writer": record["writer"],
    }  # fmt: skip
    assert isinstance(record["writer"], str)


def test_runs_built_in_bulk_are_runs_built_one_by_one() -> None:
    def sink(run: Run) -> None:
        return None

    [bulk] = Run.pending_runs([4], [{"a": 1}], changed=sink, metric_source=None)
    single = Run(4, params={"a": 1})
    single.bind(sink, None)
    for name in Run.__slots__:
        if name not in ("created", "fields"):
            assert getattr(bulk, name) == getattr(single, name), name
    assert bulk.fields == single.fields and type(bulk.fields) is type(single.fields)
    seen = []
    bulk.bind(lambda run: seen.append(run.id), None)
    bulk.fields.x = 1  # a change marks the run as changed
    assert seen == [4]


def test_many_runs_created_at_once_are_stored_and_reloaded(session: trialbook.Session) -> None:
    experiment = session.create_experiment("bulk")
    experiment.add_runs(i=range(1500), model=["a", "b"])
    experiment.persist()
    loaded = session.load_experiment("bulk")
    assert len(loaded.runs) == 3000
    assert dict(loaded.runs[3000].params) == {"i": 1499, "model": "b"}
    assert {run.status for run in loaded.runs.values()} == {"pending"}
    loaded.runs[1].fields.note = "x"  # a reloaded run writes at its version
    loaded.persist()
    assert session.load_experiment("bulk").runs[1].fields.note == "x"


def test_paused_gc_leaves_collection_on_and_frozen_objects_frozen() -> None:
    import gc
    import weakref

    from trialbook.bulk import paused_gc

    class Node:
        pass

    with paused_gc(5000):
        assert not gc.isenabled()
        node = Node()
        node.self = node  # type: ignore[attr-defined]  # a cycle: only the collector frees it
        gone = weakref.ref(node)
        del node
    assert gc.isenabled()
    gc.collect()
    assert gone() is None  # moved to the oldest generation, still collected

    gc.freeze()  # a program that froze its objects (before a fork, say)
    try:
        frozen = gc.get_freeze_count()
        with paused_gc(5000):
            kept = [[i] for i in range(10)]
        # still frozen (unfreezing would make it 0; other threads may free a few frozen objects)
        assert gc.get_freeze_count() >= frozen // 2 > 0 and len(kept) == 10
    finally:
        gc.unfreeze()


def test_run_rows_of_several_shapes_and_a_repeated_run_in_one_write(
    tmp_path: pathlib.Path, closing: Any
) -> None:
    """Rows are inserted grouped by their NULL columns; a run written twice in one write still
    ends as its last record."""
    from trialbook.storage.records import RunRecord
    from trialbook.storage.sqlite import SqliteStore

    store = closing(SqliteStore(tmp_path / "s.db"))
    info = store.create_experiment("e")
    records = [
        RunRecord(1, key="first"),
        RunRecord(2, started=1.5, finished=2.5, code="c", params={"a": [1, None]}),
        RunRecord(3),
        RunRecord(1, key="last", seed=7),
    ]
    store.write_runs(info.id, records)
    stored = {r.run_id: r for r in store.read_runs(info.id)}
    assert (stored[1].key, stored[1].seed) == ("last", 7)
    assert (stored[2].started, stored[2].finished, stored[2].code) == (1.5, 2.5, "c")
    assert stored[2].params == {"a": [1, None]} and stored[2].key is None
    assert stored[3].key is None and stored[3].started is None and stored[3].params == {}
    store.write_runs(info.id, [RunRecord(4, environment="env"), RunRecord(5, seed=1)])
    assert [r.run_id for r in store.read_runs(info.id)] == [1, 2, 3, 4, 5]
