"""Trials on Dask schedulers: threads in this process, worker processes, a distributed cluster.

Tracking (metrics, persisted values, purity hashes) made by steps in other processes travels
back with their outcomes and is stored with the trial in one transaction.
"""

from __future__ import annotations

import logging
import os
import pathlib

import numpy as np
import pytest

import trialbook
from conftest import Closing, require_module
from trialbook.graph import Experiment, Node

distributed = require_module("distributed", "distributed")


def tracked_graph(ex: Experiment) -> Node:
    a, b = ex.parameter("a"), ex.parameter("b")

    @ex.persist
    def prepare_data(a, b):
        return {"sum": a + b}

    @ex.result
    def calculate_score(d):
        ex.save_metric("pid", epoch=0, value=os.getpid())
        for i in range(5):
            ex.save_metric("score", epoch=i, value=d["sum"] * i + np.random.random())
        return 10 / d["sum"]

    return calculate_score(prepare_data(a, b))


def check_trial(ex: Experiment, trial_id: int, *, remote: bool) -> None:
    (record,) = ex.store.read_runs(ex.experiment_id, [trial_id])
    assert record.kind == "trial"
    assert record.status == "done"
    persisted = ex.get_persisted("prepare_data", trial_id=trial_id)
    assert persisted == {"sum": 3}
    pid = ex.load_metric("pid", trial_id=trial_id).loc[0, trial_id]
    assert bool(pid != os.getpid()) is remote
    metric = ex.load_metric("score", trial_id=trial_id)
    assert list(metric.index) == [0, 1, 2, 3, 4]
    assert metric.loc[1, trial_id] == pytest.approx(3, abs=1)


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_in_process_schedulers_are_tracked(
    store_dir: pathlib.Path, scheduler: str, closing: Closing
) -> None:
    ex = closing(trialbook.Experiment("local_sched", backend=store_dir))
    s = tracked_graph(ex)
    ex.set_parameters(a=1, b=2)
    assert s.compute(seed=1, scheduler=scheduler) == pytest.approx(10 / 3)
    check_trial(ex, 1, remote=False)


def test_processes_scheduler(
    store_dir: pathlib.Path, caplog: pytest.LogCaptureFixture, closing: Closing
) -> None:
    ex = closing(trialbook.Experiment("proc_sched", backend=store_dir))
    s = tracked_graph(ex)
    ex.set_parameters(a=1, b=2)
    caplog.set_level(logging.WARNING, logger="trialbook.graph")
    assert s.compute(seed=1, scheduler="processes") == pytest.approx(10 / 3)
    check_trial(ex, 1, remote=True)
    # the same seed gives the same metrics in the worker; purity is checked from the outcomes
    s.compute(seed=1, scheduler="processes")
    first, second = (ex.load_metric("score", trial_id=t)[t].tolist() for t in (1, 2))
    assert first == second
    key = ("calculate_score", _any_input(ex))
    assert key in ex.store.get_step_hashes(ex.experiment_id, [key])
    assert not [r for r in caplog.records if "result is changed" in r.getMessage()]


def _any_input(ex: Experiment) -> str:
    """The input hash recorded for calculate_score (one input value in these trials)."""
    (record,) = ex.store.read_runs(ex.experiment_id, [1])
    assert record.status == "done"
    from trialbook import capture

    return capture.input_hash("calculate_score", (ex.get_persisted("prepare_data", 1),), {})


def test_failure_in_a_worker_process_is_recorded(store_dir: pathlib.Path, closing: Closing) -> None:
    ex = closing(trialbook.Experiment("proc_fail", backend=store_dir))
    b = ex.parameter("b")

    @ex.result
    def inverse(b):
        return 1 / b

    ex.set_parameters(b=0)
    with pytest.raises(ZeroDivisionError):
        inverse(b).compute(seed=0, scheduler="processes")
    history = ex.get_history()
    assert history.loc[1, "Description"] == "ZeroDivisionError(division by zero)"


def test_distributed_client(
    store_dir: pathlib.Path, caplog: pytest.LogCaptureFixture, closing: Closing
) -> None:
    ex = closing(trialbook.Experiment("dist_sched", backend=store_dir))
    a = ex.parameter("a")

    @ex.result
    def noisy(a):
        for i in range(3):
            ex.save_metric("m", epoch=i, value=float(a * i))
        return a + np.random.random()

    node = noisy(a)
    ex.set_parameters(a=2)
    caplog.set_level(logging.WARNING, logger="trialbook.graph")
    with distributed.Client(
        processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0"
    ) as client:
        first = node.compute(seed=1, scheduler=client)
        assert node.compute(seed=1, scheduler=client) == first
        assert node.compute(seed=2, scheduler=client) != first
        assert a.compute() == 2  # plain Dask, on the default client: the value travels
    assert ex.trial_id == 3
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        "Experiment step result is changed with the same input: "
        "(step: noisy, args: (2,), kwargs: {})"
    ]
    assert ex.load_metric("m", trial_id=[1, 3]).loc[2].tolist() == [4.0, 4.0]
    assert ex.get_history()["Seed"].tolist() == [1, 1, 2]


def test_trials_ignore_the_dask_default_scheduler(
    store_dir: pathlib.Path, closing: Closing
) -> None:
    import threading

    import dask

    ex = closing(trialbook.Experiment("configured", backend=store_dir))

    @ex.result
    def where():
        return threading.current_thread() is threading.main_thread()

    with dask.config.set(scheduler="threads"):  # Dask's default is not a trial's default
        assert where().compute(seed=0) is True
    assert where().compute(seed=0, scheduler="threads") is False


def test_experiment_pickles_to_a_worker_stand_in(store_dir: pathlib.Path, closing: Closing) -> None:
    import pickle

    ex = closing(trialbook.Experiment("pickled", backend=store_dir))
    copy = pickle.loads(pickle.dumps(ex))
    assert repr(copy) == "WorkerExperiment(id: pickled)"
    with pytest.raises(trialbook.errors.ConfigError, match="outside a trial"):
        copy.save_metric("x", epoch=0, value=1.0)
