"""The table of a loaded experiment built from columns (issue 16, "Scale") is the table of its
runs: ``load_experiment(name).df()`` (no Run objects) against ``runs_frame`` of the same runs
loaded one by one, on varied experiments, frame for frame (columns, dtypes, index, values)."""

from __future__ import annotations

import re
import time

import numpy as np
import pandas as pd
import pytest
from tests.conftest import backend_location

import trialbook
from trialbook.runs import runs_frame
from trialbook.runs_table import arrow_frame
from trialbook.storage.records import RunColumns


def same_frame(new: pd.DataFrame, old: pd.DataFrame) -> None:
    if "error" in new.columns and "error" in old.columns:  # "lost ... N s ago": read apart
        new, old = new.copy(), old.copy()
        for frame in (new, old):
            frame["error"] = frame["error"].map(
                lambda e: e if not isinstance(e, str) else re.sub(r"\d+ s ago", "N s ago", e)
            )
    assert new.columns.tolist() == old.columns.tolist()
    assert new.dtypes.tolist() == old.dtypes.tolist()
    assert new.index.name == old.index.name and new.index.dtype == old.index.dtype
    pd.testing.assert_frame_equal(new, old, check_exact=True)
    for column in new.columns:  # cell by cell: the same Python types in object columns
        if new[column].dtype == object:
            assert [type(v) for v in new[column]] == [type(v) for v in old[column]], column


def both_frames(session: trialbook.Session, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table from columns (a fresh load) and the table of the runs built one by one."""
    new = session.load_experiment(name).df()
    loaded = session.load_experiment(name)
    return new, runs_frame(loaded.runs.values())


def lose(session: trialbook.Session, name: str, run_id: int) -> None:
    """Make run ``run_id`` a lost run: running, listed by a heartbeat that stopped long ago."""
    info = session.store.find_experiment(name)
    entry = {"host": "n1", "pid": 7, "beat": time.time() - 3600, "runs": [run_id]}
    session.store.update_meta(info.id, {"live:dead": entry})


def plain_experiment(session: trialbook.Session, name: str = "plain") -> None:
    """Plain values only: every column kept whole (the Arrow way)."""
    experiment = session.create_experiment(name)
    experiment.add_runs(lr=[0.1, 0.01], model=["mlp", "cnn"], layers=2)
    experiment.add_run(lr=0.5, model="svm", extra=3)  # a param the others lack: Int64

    def step(run: trialbook.Run) -> None:
        if run.params.model == "cnn" and run.params.lr == 0.01:
            raise ValueError("diverged")
        run.fields.score = run.params.lr * 10
        run.fields.name = f"run-{run.id}"
        run.fields.ok = True
        run.fields.history = [1, 2, 3]  # a list: no column
        run.fields.lr = run.params.lr  # a field named as a param: field.lr
        if run.id == 2:
            run.fields.note = None
        for step_ in range(3):
            run.log_metric("loss", 1.0 / (step_ + run.id))
        if run.id % 2:
            run.log_metric("acc", 0.5)

    with pytest.raises(trialbook.errors.RunFailedError):
        experiment.execute(step, run_ids=[1, 2, 3, 4])
    experiment.persist()
    experiment.add_run(lr=0.2, model="rnn", layers=4)  # pending
    running = experiment.add_run(lr=0.3, model="rnn", layers=4)
    running.start()  # running, listed by a dead heartbeat: lost
    experiment.persist()
    lose(session, name, running.id)


def varied_experiment(session: trialbook.Session, name: str = "varied") -> None:
    """Non-plain values (arrays, frames, dicts, lists), tags, NaN: decoded through the codecs."""
    experiment = session.create_experiment(name)
    experiment.add_runs(x=[1, 2, 3], opt=[None, {"name": "adam"}])
    experiment.add_run(x=np.arange(3))  # an array param

    def step(run: trialbook.Run) -> None:
        if run.id == 3:
            raise KeyError("missing")
        run.fields.weights = np.ones(3) * run.id
        run.fields.frame = pd.DataFrame({"a": [run.id]})
        run.fields.scalar = np.float64(run.id) / 4  # a NumPy scalar: a column
        run.fields.zero_d = np.array(run.id)  # 0-d array: a column too
        run.fields.nan = float("nan")
        run.fields.mixed = "text" if run.id % 2 else run.id
        run.log_metric("loss", float("nan") if run.id == 2 else 0.5)

    with pytest.raises(trialbook.errors.RunFailedError):
        experiment.execute(step)
    experiment.runs[1].tags["team"] = "a"
    experiment.runs[1].touch()
    experiment.persist()
    running = experiment.add_run(x=9)
    running.start()
    experiment.persist()
    lose(session, name, running.id)


def test_plain_experiment_frame_is_the_runs_frame(session: trialbook.Session) -> None:
    plain_experiment(session)
    new, old = both_frames(session, "plain")
    same_frame(new, old)
    assert "field.lr" in new.columns and "history" not in new.columns
    assert new["status"].tolist().count("failed") == 2  # the failed run and the lost one
    assert new["error"].str.startswith("LostRun").sum() == 1
    assert new["extra"].dtype == "Int64"


def test_plain_experiment_takes_the_arrow_way(session: trialbook.Session) -> None:
    plain_experiment(session)
    info = session.store.find_experiment("plain")
    columns = session.store.read_run_columns(info.id)
    frame = arrow_frame(columns, info.meta)
    assert frame is not None
    same_frame(frame, session.load_experiment("plain").df())


def test_varied_experiment_frame_is_the_runs_frame(session: trialbook.Session) -> None:
    varied_experiment(session)
    info = session.store.find_experiment("varied")
    assert arrow_frame(session.store.read_run_columns(info.id), info.meta) is None
    new, old = both_frames(session, "varied")
    same_frame(new, old)
    assert {"scalar", "zero_d", "nan", "mixed", "tag.team"} <= set(new.columns)
    assert "weights" not in new.columns and "frame" not in new.columns


def test_empty_and_fieldless_experiments(session: trialbook.Session) -> None:
    session.create_experiment("empty").persist()
    new, old = both_frames(session, "empty")
    same_frame(new, old)
    experiment = session.create_experiment("bare")
    experiment.add_run()
    experiment.add_run()
    experiment.persist()
    new, old = both_frames(session, "bare")
    same_frame(new, old)


def test_columns_that_arrow_cannot_type_take_the_other_way(session: trialbook.Session) -> None:
    """A param of numbers and strings, a bool among numbers, an integer past int64, a field
    that is a list in one run and None in another, a field named as a param some runs lack."""
    cases = {
        "mixed": [{"a": 1}, {"a": "x"}],
        "bools": [{"a": 1}, {"a": True}],
        "huge": [{"a": 2**64}, {"a": 1}],
        "dicts": [{"a": {"k": 1}}, {"a": {"j": 2}}],
    }
    for name, params in cases.items():
        experiment = session.create_experiment(name)
        for p in params:
            experiment.add_run(**p)
        experiment.persist()
    experiment = session.create_experiment("fields")
    first, second = experiment.add_run(b=1), experiment.add_run()
    first.fields.update(c=[1], b=2)
    second.fields.update(c=None, b=3)
    experiment.persist()
    for name in [*cases, "fields"]:
        info = session.store.find_experiment(name)
        assert arrow_frame(session.store.read_run_columns(info.id), info.meta) is None, name
        new, old = both_frames(session, name)
        same_frame(new, old)


def test_loaded_runs_are_built_at_first_use(session: trialbook.Session) -> None:
    plain_experiment(session)
    loaded = session.load_experiment("plain")
    assert repr(loaded) == "Experiment(name='plain', runs.count=7)"
    assert loaded.runs[1].fields.score == 1.0
    loaded.runs[1].fields.score = 7.0  # built runs: df() shows them, changes included
    assert loaded.df().loc[1, "score"] == 7.0
    loaded.persist()
    assert session.load_experiment("plain").df().loc[1, "score"] == 7.0


def test_adding_runs_to_a_loaded_experiment_keeps_the_stored_ones(
    session: trialbook.Session,
) -> None:
    plain_experiment(session)
    loaded = session.load_experiment("plain")
    loaded.add_run(lr=1.0, model="new")
    loaded.persist()
    frame = session.load_experiment("plain").df()
    assert len(frame) == 8 and frame["model"].iloc[-1] == "new"


def test_batches_out_of_order_are_sorted() -> None:
    columns = RunColumns()
    docs = '{}\n{"p":{"a":1}}\n{}'
    more = {"run_id": [2, 3, 1], "started": [None, 1.5, None], "finished": [1, 2, 3]}
    columns.add_batch("3,1,2", "done,pending,failed", docs, more)
    assert columns.run_ids == [1, 2, 3]
    assert columns.statuses == ["pending", "failed", "done"]
    assert columns.docs == ['{"p":{"a":1}}\n{}\n{}']
    assert columns.started == [None, None, 1.5]
    assert columns.finished == [3, 1, 2]
    with pytest.raises(ValueError, match="overlap"):
        columns.add_batch("2", "done", "{}")


def test_timings_keep_every_digit(session: trialbook.Session) -> None:
    experiment = session.create_experiment("t")
    run = experiment.add_run()
    run.start()
    run.finish()
    run.started, run.finished = 1733212345.1234567, 1733212345.1234568
    experiment.persist()
    columns = session.store.read_run_columns(session.store.find_experiment("t").id)
    assert (columns.started, columns.finished) == ([run.started], [run.finished])


@pytest.mark.postgres
def test_postgres_frame_is_the_runs_frame(tmp_path) -> None:
    with backend_location("postgres", tmp_path) as url, trialbook.create_session(url) as session:
        plain_experiment(session)
        varied_experiment(session)
        for name in ("plain", "varied"):
            new, old = both_frames(session, name)
            same_frame(new, old)


def test_runs_built_after_a_change_of_another_session_conflict(store_dir) -> None:
    """Runs built at first use keep the versions of the load: another session's write in
    between makes this session's write of that run a conflict, as when built at load; a run
    that session added since is not among them."""
    with trialbook.create_session(store_dir) as one, trialbook.create_session(store_dir) as two:
        plain_experiment(one)
        first, second = one.load_experiment("plain"), two.load_experiment("plain")
        first.runs[1].fields.note = "first"
        first.add_run(lr=9.0)
        first.persist()
        assert 8 not in second.runs and len(second.runs) == 7
        second.runs[1].fields.note = "second"
        with pytest.raises(trialbook.errors.RunConflictError, match="run 1 of experiment"):
            second.persist()


@pytest.mark.postgres
def test_postgres_reads_columns_in_one_snapshot(tmp_path) -> None:
    """PostgreSQL reads runs column-wise too (string_agg, one REPEATABLE READ transaction): the
    plain experiment takes the Arrow way, value bundles come with their blobs, timings keep
    every digit, and runs built at first use keep the versions of the load (another session's
    write in between is a conflict)."""
    with (
        backend_location("postgres", tmp_path) as url,
        trialbook.create_session(url) as one,
        trialbook.create_session(url) as two,
    ):
        plain_experiment(one)
        info = one.store.find_experiment("plain")
        columns = one.store.read_run_columns(info.id)
        assert columns is not None and columns.run_ids == [1, 2, 3, 4, 5, 6, 7]
        assert arrow_frame(columns, info.meta) is not None
        varied_experiment(one)
        varied = one.store.read_run_columns(one.store.find_experiment("varied").id)
        assert varied is not None and varied.bundles  # arrays and frames: blobs read
        timed = one.create_experiment("t")
        run = timed.add_run()
        run.start()
        run.finish()
        run.started, run.finished = 1733212345.1234567, 1733212345.1234568
        timed.persist()
        read = one.store.read_run_columns(one.store.find_experiment("t").id)
        assert read is not None and (read.started, read.finished) == ([run.started], [run.finished])
        first, second = one.load_experiment("plain"), two.load_experiment("plain")
        first.runs[1].fields.note = "first"
        first.persist()
        second.runs[1].fields.note = "second"
        with pytest.raises(trialbook.errors.RunConflictError, match="run 1 of experiment"):
            second.persist()
