"""Trials of a step graph computed on a real Dask LocalCluster (worker processes): independent
steps run in parallel on different workers, and what they track reaches the store."""

from __future__ import annotations

import os
import pathlib

import pytest

import trialbook
from conftest import Closing, require_module

distributed = require_module("distributed", "distributed")


@pytest.fixture
def client(dask_client):
    return dask_client


def build(ex: trialbook.Experiment, meeting: pathlib.Path):
    """``left`` and ``right`` each say they started (a file in ``meeting``) and wait for the
    other one: they can finish only by running at once, on two workers (one thread each)."""
    a = ex.parameter("a")
    here = str(meeting)

    def meet(me: str, other: str) -> int:
        from races import wait_until

        pathlib.Path(here, me).write_text(str(os.getpid()))
        wait_until(pathlib.Path(here, other).exists, f"step {other} runs too")
        return os.getpid()

    @ex.persist
    def left(a):
        pid = meet("left", "right")
        for epoch in range(3):
            ex.save_metric("left_loss", epoch=epoch, value=a / (epoch + 1))
        return {"pid": pid, "value": a + 1}

    @ex
    def right(a):
        pid = meet("right", "left")
        ex.save_metric("right_loss", epoch=0, value=a * 10.0)
        return {"pid": pid, "value": a * 10}

    @ex.result
    def total(x, y):
        return {"pids": {x["pid"], y["pid"]}, "value": x["value"] + y["value"]}

    return total(left(a), right(a))


def test_a_trial_on_the_cluster_runs_steps_in_parallel_and_tracks_them(
    tmp_path, client, closing: Closing
) -> None:
    ex = closing(trialbook.Experiment("dask_trial", backend=tmp_path / "store"))
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    node = build(ex, meeting)
    ex.set_parameters(a=2)
    result = node.compute(seed=1, scheduler=client)
    assert result["value"] == 23
    # both steps ran at once (each waited for the other), so on the two workers
    workers = set(client.run(os.getpid).values())
    assert result["pids"] == workers and len(workers) == 2 and os.getpid() not in workers
    met = {p.name: int(p.read_text()) for p in meeting.iterdir()}
    assert met.keys() == {"left", "right"} and set(met.values()) == workers
    history = ex.get_history()
    assert bool(history.loc[1, "Success"]) and history.loc[1, "Seed"] == 1
    assert ex.load_metric("left_loss", trial_id=1)[1].tolist() == [2.0, 1.0, pytest.approx(2 / 3)]
    assert ex.load_metric("right_loss", trial_id=1)[1].tolist() == [20.0]
    assert ex.get_persisted("left", trial_id=1)["value"] == 3


def test_a_failing_step_on_the_cluster_is_recorded_and_reraised(
    tmp_path, client, closing: Closing
) -> None:
    ex = closing(trialbook.Experiment("dask_fail", backend=tmp_path / "store"))
    a = ex.parameter("a")

    @ex.result
    def invert(a):
        return 1 / a

    ex.set_parameters(a=0)
    with pytest.raises(ZeroDivisionError):
        invert(a).compute(scheduler=client)
    history = ex.get_history()
    assert not bool(history.loc[1, "Success"])
    assert "ZeroDivisionError" in history.loc[1, "Description"]
