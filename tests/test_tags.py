"""Tags that stick (issue 21): a tag set at any time — on a reloaded run, in a step, in a worker
process, on a graph trial — is stored by the next persist on every backend, or refused at once
with a clear error; removing one is stored too."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from tests.conftest import BACKENDS, OPTIONAL_BACKENDS, backend_location

import trialbook
from trialbook.errors import ConfigError


@pytest.mark.parametrize("backend", BACKENDS + OPTIONAL_BACKENDS)
def test_a_tag_set_on_a_reloaded_run_is_stored_and_so_is_its_removal(
    backend: str, tmp_path: pathlib.Path
) -> None:
    with backend_location(backend, tmp_path) as location:
        with trialbook.create_session(location) as session:
            experiment = session.create_experiment("sweep")
            experiment.add_runs(x=[1, 2])
            experiment.execute(lambda run: None).persist()
        with trialbook.create_session(location) as session:
            loaded = session.load_experiment("sweep")
            loaded.runs[1].tags["reviewed"] = True
            loaded.runs[2].tags.update(owner="ann", score=np.float64(0.5))
            loaded.persist()
        with trialbook.create_session(location) as session:
            again = session.load_experiment("sweep")
            assert dict(again.runs[1].tags) == {"reviewed": True}
            assert dict(again.runs[2].tags) == {"owner": "ann", "score": 0.5}
            assert type(again.runs[2].tags["score"]) is float
            found = session.search_runs("sweep", "tags.reviewed == True")
            assert found.index.tolist() == [1]
            del again.runs[1].tags["reviewed"]
            again.runs[2].tags.pop("owner")
            again.persist()
        with trialbook.create_session(location) as session:
            last = session.load_experiment("sweep")
            assert dict(last.runs[1].tags) == {}
            assert dict(last.runs[2].tags) == {"score": 0.5}


def _tagging_step(run: trialbook.Run) -> None:
    run.tags["parity"] = "even" if run.params.x % 2 == 0 else "odd"


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_tags_set_in_a_step_are_stored_from_this_process_and_from_workers(
    n_jobs: int | None, tmp_path: pathlib.Path
) -> None:
    location = str(tmp_path / "store")
    with trialbook.create_session(location) as session:
        experiment = session.create_experiment("parity")
        experiment.add_runs(x=[1, 2, 3])
        experiment.execute(_tagging_step, n_jobs=n_jobs).persist()
        assert [run.tags["parity"] for run in experiment.runs.values()] == ["odd", "even", "odd"]
    with trialbook.create_session(location) as session:
        loaded = session.load_experiment("parity")
        assert [run.tags["parity"] for run in loaded.runs.values()] == ["odd", "even", "odd"]


def test_a_tag_set_in_a_graph_trial_is_stored(tmp_path: pathlib.Path) -> None:
    location = str(tmp_path / "store")
    with trialbook.Experiment("g", backend=location) as ex:
        a = ex.parameter("a")

        @ex.result
        def double(a):
            trialbook.current_run().tags["checked"] = True
            return 2 * a

        ex.set_parameters(a=1)
        double(a).compute(seed=0)
    with trialbook.create_session(location) as session:
        assert dict(session.load_experiment("g").runs[1].tags) == {"checked": True}


def test_a_tag_that_cannot_be_stored_is_refused_when_set(tmp_path: pathlib.Path) -> None:
    """A tag is a short label: anything else is refused at once, naming the tag and where such
    a value goes; the run keeps its other tags, and nothing stored changes."""
    with trialbook.create_session(str(tmp_path / "store")) as session:
        experiment = session.create_experiment("bad")
        (run,) = experiment.add_runs(x=[1])
        run.tags["ok"] = 1
        with pytest.raises(ConfigError, match=r"tag 'model' must be a str, int, float, bool"):
            run.tags["model"] = [1, 2]
        with pytest.raises(ConfigError, match=r"run\.fields\.model = \.\.\."):
            run.tags.update(model={"a": 1})
        with pytest.raises(ConfigError, match="tag names must be str"):
            run.tags[3] = "x"  # type: ignore[index]
        assert dict(run.tags) == {"ok": 1}
        experiment.persist()
        assert dict(session.load_experiment("bad").runs[1].tags) == {"ok": 1}


def test_mlflow_spellings_of_namespaces_and_constants_are_understood_or_explained(
    tmp_path: pathlib.Path,
) -> None:
    """`metrics.x` and `param.x` are aliases (MLflow's spellings), an unknown prefix is an
    error with a suggestion instead of silently no run, and `true` says how to write it."""
    with trialbook.create_session(str(tmp_path / "store")) as session:
        experiment = session.create_experiment("mlflow")

        def step(run: trialbook.Run) -> None:
            run.log_metric("cv_accuracy", run.params.c / 10)
            run.tags["fold"] = "a"

        experiment.add_runs(c=[1, 5, 9])
        experiment.execute(step).persist()
        assert session.search_runs("mlflow", "metrics.cv_accuracy > 0.4").index.tolist() == [2, 3]
        assert session.search_runs("mlflow", "param.c == 1").index.tolist() == [1]
        assert session.search_runs("mlflow", 'tag.fold == "a"').index.tolist() == [1, 2, 3]
        with pytest.raises(ConfigError, match=r"'metric_' is not a namespace \(did you mean"):
            session.search_runs("mlflow", "metric_.cv_accuracy > 0.4")
        with pytest.raises(ConfigError, match="the constant is written True, as in Python"):
            session.search_runs("mlflow", "c == true")


def test_numpy_integers_are_ids_wherever_an_id_is(tmp_path: pathlib.Path) -> None:
    """Ids straight out of df() / idxmax() (np.int64) find their trial; a float is refused."""
    with trialbook.Experiment("ids", backend=str(tmp_path / "store")) as ex:
        a = ex.parameter("a")

        @ex.persist
        def plus(a):
            ex.save_metric("m", epoch=0, value=float(a))
            return a + 1

        @ex.result
        def double(x):
            return 2 * x

        for value in (1, 2):
            ex.set_parameters(a=value)
            double(plus(a)).compute(seed=0)
        best = ex.get_history()["Result"].idxmax()
        assert type(best) is not int
        assert ex.get_persisted("plus", trial_id=best) == 3
        assert ex.load_metric("m", trial_id=best).columns.tolist() == [2]
        assert ex.load_metric("m", trial_id=np.array([1, 2])).columns.tolist() == [1, 2]
        assert ex.get_parameters(trial_id=best) == {"a": 2}
        with pytest.raises(ConfigError, match="trial_id must be an int"):
            ex.get_persisted("plus", trial_id=1.0)  # type: ignore[arg-type]
