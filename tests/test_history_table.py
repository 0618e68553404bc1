"""``get_history()`` read column-wise (issue 16, "Scale") is the history it was: the same frame
as the one built row by row from records (the reference below is the code it replaced), on a
varied lazy-graph experiment: plain and encoded params and results, failed and lost trials, a
result not stored, runs of other kinds."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.conftest import backend_location

import trialbook
from trialbook.codecs import decode, encode
from trialbook.graph.history import HISTORY_COLUMNS
from trialbook.graph.nodes import RESULT_NOT_STORED
from trialbook.live import mark_lost
from trialbook.storage.records import ErrorInfo, RunRecord, Status


def reference_history(ex: trialbook.Experiment) -> pd.DataFrame:
    """The history as built before issue 16: a record per run, a row per record."""
    store = ex.store
    records = store.read_runs(ex.experiment_id)
    if any(r.status == Status.RUNNING for r in records):
        info = store.find_experiment(ex.id)
        records = mark_lost(records, info.meta if info is not None else {})
        records = [r for r in records if not (r.status == Status.RUNNING and r.kind == "trial")]
    names = list(ex._parameters)
    for record in records:
        names += [k for k in record.params if k not in names]
    columns = [*names, *HISTORY_COLUMNS]
    if any(r.kind != "trial" for r in records):
        columns.append("Kind")

    def row(record: RunRecord) -> list[Any]:
        params = {k: decode(v) for k, v in record.params.items()}
        done = record.status == Status.DONE
        unstored = record.tags.get(RESULT_NOT_STORED) if done else None
        result = decode(record.result) if done and unstored is None else None
        err = record.error
        took = None
        if record.started is not None and record.finished is not None:
            took = record.finished - record.started
        finished = None
        if record.finished is not None:
            finished = dt.datetime.fromtimestamp(record.finished)
        return [
            *(params.get(n, np.nan) for n in names),
            result if done and unstored is None else np.nan,
            (unstored or str(type(result))) if done else None,
            done,
            finished,
            took,
            np.nan if err is None else f"{err.type}({err.message})",
            record.seed,
            record.kind,
        ][: len(columns)]

    index = pd.Index([r.run_id for r in records], name="Trial ID", dtype="int64")
    frame = pd.DataFrame([row(r) for r in records], columns=columns, index=index)
    if records:
        frame["Process Time"] = pd.to_timedelta(frame["Process Time"], unit="s")
        frame["Finished"] = pd.to_datetime(frame["Finished"])
    return frame


def same_frame(new: pd.DataFrame, old: pd.DataFrame) -> None:
    assert new.columns.tolist() == old.columns.tolist()
    assert new.dtypes.tolist() == old.dtypes.tolist()
    assert new.index.name == old.index.name and new.index.dtype == old.index.dtype
    pd.testing.assert_frame_equal(new, old, check_exact=True)
    for column in new.columns:
        if new[column].dtype == object:
            assert [type(v) for v in new[column]] == [type(v) for v in old[column]], column


def computed_trials(ex: trialbook.Experiment) -> None:
    a = ex.parameter("a")
    b = ex.parameter("b")

    @ex.result
    def ratio(a, b):
        return a / b

    for a_value, b_value in [(1, 2), (3, 0), (5.5, 1), ("x", 1)]:
        ex.set_parameters(a=a_value, b=b_value)
        with contextlib.suppress(ZeroDivisionError, TypeError):
            ratio(a, b).compute(seed=a_value if isinstance(a_value, int) else None)


def crafted_trials(ex: trialbook.Experiment, *, lost: bool) -> None:
    """Records the graph writes rarely or never in a test: an array param and result, a result
    not stored, a job among the trials, a trial whose process died."""
    store, experiment_id = ex.store, ex.experiment_id
    now = time.time()
    ids = list(store.allocate_run_ids(experiment_id, 4))
    records = [
        RunRecord(ids[0], kind="trial", status="done", params={"a": encode(np.arange(3))},
                  seed=1, started=now - 2, finished=now - 1, result=encode(np.ones(2))),
        RunRecord(ids[1], kind="trial", status="done", params={"a": 7, "c": "new"},
                  started=now, finished=now + 0.25, tags={RESULT_NOT_STORED: "too large"}),
        RunRecord(ids[2], kind="job", status="failed", params={"a": 8},
                  error=ErrorInfo("OSError", "disk", "tb")),
        RunRecord(ids[3], kind="trial", status="running", params={"a": 9}, started=now),
    ]  # fmt: skip
    store.write_runs(experiment_id, records)
    if lost:
        entry = {"host": "n1", "pid": 7, "beat": now - 3600, "runs": [ids[3]]}
        store.update_meta(experiment_id, {"live:dead": entry})


@pytest.mark.parametrize("lost", [False, True])
def test_history_is_the_reference_history(tmp_path, lost: bool) -> None:
    with trialbook.Experiment("h", backend=str(tmp_path / "store")) as ex:
        computed_trials(ex)
        same_frame(ex.get_history(), reference_history(ex))
        crafted_trials(ex, lost=lost)
        history = ex.get_history()
        same_frame(history, reference_history(ex))
        assert (history["Kind"] == "job").sum() == 1
        assert ("LostRun" in history["Description"].fillna("").str.cat()) is lost
        same_frame(ex.get_history(verbose=True), reference_history(ex)[history.columns][
            ["a", "b", "c", "Seed", "Result", "Result Type", "Success", "Finished",
             "Process Time", "Description", "Kind"]])  # fmt: skip


def test_history_of_no_trial(tmp_path) -> None:
    with trialbook.Experiment("empty", backend=str(tmp_path / "store")) as ex:
        ex.parameter("a")
        same_frame(ex.get_history(), reference_history(ex))


@pytest.mark.postgres
def test_postgres_history_is_the_reference_history(tmp_path) -> None:
    with (
        backend_location("postgres", tmp_path) as url,
        trialbook.Experiment("h", backend=url) as ex,
    ):
        computed_trials(ex)
        crafted_trials(ex, lost=True)
        same_frame(ex.get_history(), reference_history(ex))
