"""MLtraq's documented examples, with ``import mltraq`` replaced by ``import trialbook``
(issue 13). Each test follows an example of MLtraq's tutorial or docs, written anew."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from tests.conftest import Closing

import trialbook
from trialbook.errors import (
    CodecError,
    ConfigError,
    ExperimentExistsError,
    ExperimentNotFoundError,
    NotFoundError,
)
from trialbook.steps import drop_fields, init_fields, init_sequences, nothing


def test_create_experiment_without_a_name(session: trialbook.Session) -> None:
    """Tutorial "Creating an experiment": no name given, one is generated; after persist the
    session counts it."""
    experiment = session.create_experiment()
    other = session.create_experiment()
    assert experiment.name != other.name
    assert experiment.name == experiment.id_experiment[:8]
    assert repr(session).endswith("experiments=0)")
    experiment.persist()
    assert repr(session).endswith("experiments=1)")
    assert session.load_experiment(experiment.name).id_experiment == experiment.id_experiment


def test_creating_a_run_and_runs_first(session: trialbook.Session) -> None:
    """Tutorial "Creating a run": vars emptied, state kept, fields kept; runs.first()."""
    experiment = session.create_experiment()
    with experiment.run() as run:
        run.vars.a = 1
        run.state.b = 2
        run.fields.c = 3
    first = experiment.runs.first()
    assert first is run
    assert (dict(first.vars), dict(first.state), dict(first.fields)) == ({}, {"b": 2}, {"c": 3})


def test_runs_first_of_no_runs_says_so(session: trialbook.Session) -> None:
    with pytest.raises(NotFoundError, match="has no runs yet; add some with add_runs"):
        session.create_experiment("empty").runs.first()


def test_runs_next_adds_a_run(session: trialbook.Session) -> None:
    """MLtraq's ``runs.next()`` adds a new run and returns it."""
    experiment = session.create_experiment("next")
    experiment.add_run(x=1)
    run = experiment.runs.next()
    assert run.id == 2 and dict(run.params) == {}
    assert experiment.runs[2] is run
    run.fields.y = 5
    experiment.persist()
    assert session.load_experiment("next").runs[2].fields.y == 5


def test_persisting_and_reloading(session: trialbook.Session) -> None:
    """Tutorial "Persisting and reloading an experiment": only fields come back."""
    experiment = session.create_experiment("example")

    def step(run: trialbook.Run) -> None:
        run.vars.a = 1
        run.state.b = 2
        run.fields.c = 3

    experiment.add_run()
    experiment.execute(step)
    experiment.persist()
    run = session.load_experiment("example").runs.first()
    assert (dict(run.vars), dict(run.state), dict(run.fields)) == ({}, {}, {"c": 3})


def test_add_runs_without_arguments_refuses(session: trialbook.Session) -> None:
    experiment = session.create_experiment("grid")
    with pytest.raises(ConfigError, match=r"add_runs\(\) needs at least one parameter"):
        experiment.add_runs()
    assert len(experiment.runs) == 0


def test_execute_with_config(session: trialbook.Session) -> None:
    """Tutorial "parameters": a grid of params plus a config shared by every run, read as
    ``run.config`` in the steps; the config is not kept after the execution nor persisted."""
    experiment = session.create_experiment("example")
    experiment.add_runs(A=[1, 10], B=[100, 1000])

    def step_sum(run: trialbook.Run) -> None:
        run.fields.sum_ABX = run.params.A + run.params.B + run.config.X

    experiment.execute([step_sum], config={"X": 10000})
    assert sorted(experiment.df()["sum_ABX"]) == [10101, 10110, 11001, 11010]
    assert all(dict(run.config) == {} for run in experiment.runs.values())
    experiment.persist()
    loaded = session.load_experiment("example")
    assert "X" not in loaded.df().columns
    assert set(loaded.runs.first().params) == {"A", "B"}


def test_execute_with_config_in_worker_processes(session: trialbook.Session) -> None:
    experiment = session.create_experiment("pool")
    experiment.add_runs(x=[1, 2])
    experiment.execute(_times_config, n_jobs=2, config={"k": 3})
    assert [run.fields.y for run in experiment.runs.values()] == [3, 6]


def _times_config(run: trialbook.Run) -> None:
    run.fields.y = run.params.x * run.config.k


def test_execute_refuses_a_config_that_is_not_a_dict(session: trialbook.Session) -> None:
    experiment = session.create_experiment("bad")
    experiment.add_run()
    with pytest.raises(ConfigError, match="config must be a dict"):
        experiment.execute(nothing, config=[1, 2])


def test_experiment_fields_are_persisted_and_reloaded(session: trialbook.Session) -> None:
    experiment = session.create_experiment("fields")
    experiment.fields.dataset = "iris"
    experiment.fields.weights = np.array([0.5, 0.25])
    experiment.fields.split = (0.8, 0.2)
    experiment.persist()
    loaded = session.load_experiment("fields")
    assert loaded.fields.dataset == "iris" and loaded.fields.split == (0.8, 0.2)
    assert loaded.fields.weights.tolist() == [0.5, 0.25]
    loaded.fields.note = "changed later"  # no run changed: the fields alone are written
    loaded.persist()
    assert session.load_experiment("fields").fields.note == "changed later"


def test_experiment_fields_that_cannot_be_stored(session: trialbook.Session) -> None:
    experiment = session.create_experiment("bad-fields")
    experiment.add_run()
    experiment.fields.model = object()
    with pytest.raises(CodecError, match="experiment field 'model' cannot be persisted"):
        experiment.persist()
    assert session.load_experiment("bad-fields").runs == {}  # nothing was written


def test_load_experiment_by_id(session: trialbook.Session) -> None:
    experiment = session.create_experiment("by-id")
    experiment.add_run(x=1)
    experiment.persist()
    loaded = session.load_experiment(id_experiment=experiment.id_experiment)
    assert loaded.name == "by-id" and loaded.id_experiment == experiment.id_experiment
    with pytest.raises(ExperimentNotFoundError, match="no experiment with id_experiment 'nope'"):
        session.load_experiment(id_experiment="nope")
    with pytest.raises(ConfigError, match="a name or an id_experiment"):
        session.load_experiment("by-id", id_experiment=experiment.id_experiment)


def test_experiment_stored_without_an_id_gets_a_stable_one(
    session: trialbook.Session,
) -> None:
    """An experiment written before ids existed (no ``id`` in its metadata): its id is
    derived from its name and creation time, the same at every load, and finds it."""
    info = session.store.create_experiment("old")
    first = session.load_experiment("old").id_experiment
    assert first == session.load_experiment("old").id_experiment
    assert session.load_experiment(id_experiment=first).name == "old"
    assert "id" not in session.store.find_experiment("old").meta
    session.store.delete_experiment("old")
    assert session.store.create_experiment("old").id != info.id
    assert session.load_experiment("old").id_experiment != first


def test_runs_union(session: trialbook.Session) -> None:
    experiment = session.create_experiment("union")
    runs = experiment.add_runs(x=[1, 2, 3])
    low = {run.id: run for run in runs[:2]}
    high = {run.id: run for run in runs[1:]}
    union = trialbook.Runs("part") | low
    union |= high
    assert sorted(union) == [1, 2, 3] and union[3] is runs[2]
    assert sorted(experiment.runs | high) == [1, 2, 3]
    with pytest.raises(ConfigError, match=r"runs\.next\(\) adds runs to an experiment"):
        union.next()


def test_runs_union_of_two_experiments_and_merge_runs(session: trialbook.Session) -> None:
    """MLtraq's blog example "merge runs": the runs of two experiments combined in a third."""
    e1 = session.create_experiment("e1").execute(init_fields(a=1, c=10))  # no run: no-op
    e1.add_run()
    e1.execute(init_fields(a=1, c=10))
    e2 = session.create_experiment("e2")
    e2.add_run()
    e2.execute(init_fields(b=2, c=20))
    with pytest.raises(ConfigError, match=r"experiment\.merge_runs"):
        _ = e1.runs | e2.runs  # both have a run 1
    e12 = session.create_experiment("e12").merge_runs(e1.runs, e2.runs)
    e12.runs |= e1.runs  # into an experiment: merged as a copy with a new id
    frame = e12.df()
    assert frame["c"].tolist() == [10, 20, 10]
    assert e1.runs[1].fields.c == 10 and len(e1.runs) == 1  # the originals are untouched
    e12.persist()
    assert session.load_experiment("e12").df()["c"].tolist() == [10, 20, 10]


def test_copy_to_another_store(session: trialbook.Session, closing: Closing) -> None:
    source = session.create_experiment("source")
    source.fields.owner = "ann"
    source.add_runs(x=[1, 2])

    def train(run: trialbook.Run) -> None:
        for epoch in range(3):
            run.log_metric("loss", run.params.x / (epoch + 1))
            run.fields.history.append(epoch=epoch, acc=0.5 + epoch / 10)

    source.execute([init_sequences("history"), train]).persist()
    source.runs[1].log_metric("late", 1.0)  # not yet persisted: copied all the same
    target = closing(trialbook.create_session("sqlite:///:memory:"))
    copy = source.copy_to(target, name="copy")
    assert copy.id_experiment != source.id_experiment
    loaded = target.load_experiment("copy")
    assert loaded.fields.owner == "ann"
    assert loaded.runs[2].metrics("loss")["value"].tolist() == [2.0, 1.0, 2 / 3]
    assert loaded.runs[1].metrics("late")["value"].tolist() == [1.0]
    assert loaded.runs[2].fields.history.df()["acc"].tolist() == [0.5, 0.6, 0.7]
    assert [r.status for r in loaded.runs.values()] == ["done", "done"]
    with pytest.raises(ExperimentExistsError):
        source.copy_to(target, name="copy")
    source.copy_to(target, name="copy", if_exists="replace")
    with pytest.raises(ConfigError, match="open it first"):
        source.copy_to("sqlite:///:memory:")


def test_sequence_append_df_and_reload(session: trialbook.Session) -> None:
    """MLtraq's Sequence: records appended in a step, read as a frame, reloaded after
    persist; appending after a reload continues the index and writes only the new points."""
    experiment = session.create_experiment("seq")
    experiment.add_run()

    def train(run: trialbook.Run) -> None:
        run.fields.seq = trialbook.Sequence()
        for epoch in range(3):
            run.fields.seq.append(epoch=epoch, loss=1 / (epoch + 1))

    experiment.execute(train).persist()
    run = session.load_experiment("seq").runs.first()
    frame = run.fields.seq.df()
    assert list(frame.columns) == ["idx", "timestamp", "epoch", "loss"]
    assert frame["epoch"].tolist() == [0, 1, 2] and frame["epoch"].dtype == "int64"
    run.fields.seq.append(epoch=3, loss=0.2, note=True)
    session.load_experiment("seq").runs.first()  # another reader: still three records
    loaded = session.load_experiment("seq")
    loaded.runs.first().fields.seq.append(epoch=3, loss=0.2)
    loaded.persist()
    again = session.load_experiment("seq").runs.first().fields.seq
    assert len(again) == 4 and again.df()["loss"].tolist()[-1] == 0.2
    assert session.store.metric_names(loaded._info.id, 1) == {"seq.epoch": 4, "seq.loss": 4}


def test_sequence_replaced_by_a_new_one_drops_its_points(session: trialbook.Session) -> None:
    experiment = session.create_experiment("seq")
    experiment.add_run()
    experiment.execute([init_sequences("seq"), _append_three]).persist()
    experiment.execute([init_sequences("seq"), _append_three]).persist()  # again: replaced
    seq = session.load_experiment("seq").runs.first().fields.seq
    assert seq.df()["i"].tolist() == [0, 1, 2]
    experiment.execute(drop_fields("seq")).persist()
    assert session.store.metric_names(experiment._info.id, 1) == {}


def _append_three(run: trialbook.Run) -> None:
    for i in range(3):
        run.fields.seq.append(i=i)


def test_sequence_appended_in_worker_processes(session: trialbook.Session) -> None:
    experiment = session.create_experiment("seq-pool")
    experiment.add_runs(x=[1, 2])
    experiment.execute([init_sequences("seq"), _append_three], n_jobs=2).persist()
    loaded = session.load_experiment("seq-pool")
    assert [len(run.fields.seq) for run in loaded.runs.values()] == [3, 3]
    loaded.execute(_append_three, n_jobs=2).persist()  # stored records stay, new ones follow
    assert session.load_experiment("seq-pool").runs[2].fields.seq.df()["i"].tolist() == [
        0, 1, 2, 0, 1, 2,
    ]  # fmt: skip


def test_sequence_refuses_what_it_cannot_store() -> None:
    seq = trialbook.Sequence()
    with pytest.raises(ConfigError, match="append at least one value"):
        seq.append()
    with pytest.raises(ConfigError, match="other than 'idx' and 'timestamp'"):
        seq.append(idx=1)
    with pytest.raises(ConfigError, match="real numbers"):
        seq.append(loss=0.1, model="ridge")
    assert len(seq) == 0  # nothing of a refused record was kept


def test_steps_library(session: trialbook.Session) -> None:
    """``mltraq.steps``: init_fields, init_sequences, drop_fields, nothing."""
    experiment = session.create_experiment("steps")
    experiment.add_runs(x=[1, 2])
    steps = [init_fields(a=1, tmp="x"), init_sequences(["s1", "s2"]), nothing, drop_fields("tmp")]
    experiment.execute(steps).persist()
    run = session.load_experiment("steps").runs[1]
    assert sorted(run.fields) == ["a", "s1", "s2"]
    assert isinstance(run.fields.s1, trialbook.Sequence) and len(run.fields.s1) == 0


def test_readme_example_end_to_end(tmp_path: pathlib.Path) -> None:
    """The README's shape: a grid of runs, a step, the table of results, on a store file."""
    with trialbook.create_session(f"sqlite:///{tmp_path / 'db.sqlite'}") as session:
        experiment = session.create_experiment()
        experiment.add_runs(i=range(20))
        experiment.execute(lambda run: run.fields.update(v=run.params.i / 20))
        assert experiment.runs.df().v.mean() == pytest.approx(0.475)


def test_module_level_create_experiment_in_a_scratch_store() -> None:
    """MLtraq's ``mltraq.create_experiment()``: an experiment with a generated name in an
    in-memory store of this process; two calls share the store (names stay unique), and an
    existing name is refused, or appended to, as in a session."""
    first = trialbook.create_experiment()
    second = trialbook.create_experiment()
    assert first.name != second.name
    with first.run() as run:
        run.fields.accuracy = 0.83
    first.persist()
    assert first.runs.first().fields.accuracy == 0.83
    named = trialbook.create_experiment("scratch-named")
    named.add_run(x=1)
    named.persist()
    with pytest.raises(trialbook.errors.ExperimentExistsError):
        trialbook.create_experiment("scratch-named")
    assert len(trialbook.create_experiment("scratch-named", if_exists="append").runs) == 1
