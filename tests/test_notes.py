"""Notes on runs and descriptions of experiments (issue 21, "Tags and notes"): a run's note is
its ``note`` tag, an experiment's description a key of its metadata; both round-trip through
every backend, from the runs way, the graph way and ``Session.describe``."""

from __future__ import annotations

import pathlib

import pytest
from tests.conftest import BACKENDS, OPTIONAL_BACKENDS, backend_location

import trialbook
from trialbook.errors import ConfigError, ExperimentNotFoundError
from trialbook.notes import MAX_BYTES

NOTE = "Diverged after epoch 3: **lr too high**.\n\nTry `lr=0.01` next."


@pytest.mark.parametrize("backend", BACKENDS + OPTIONAL_BACKENDS)
def test_run_notes_and_experiment_descriptions_round_trip(
    backend: str, tmp_path: pathlib.Path
) -> None:
    with backend_location(backend, tmp_path) as location:
        with trialbook.create_session(location) as session:
            experiment = session.create_experiment("sweep")
            experiment.description = "Sweep of *lr* — ünïcode too"
            experiment.add_runs(lr=[0.1, 0.01])
            experiment.execute(lambda run: None).persist()
            experiment.runs[1].note = NOTE
            experiment.persist()
        with trialbook.create_session(location) as session:
            loaded = session.load_experiment("sweep")
            assert loaded.description == "Sweep of *lr* — ünïcode too"
            assert loaded.runs[1].note == NOTE
            assert loaded.runs[1].tags["note"] == NOTE
            assert loaded.runs[2].note is None
            loaded.runs[2].note = "fine"
            del loaded.runs[1].note
            loaded.description = None
            loaded.persist()
        with trialbook.create_session(location) as session:
            again = session.load_experiment("sweep")
            assert again.description is None
            assert again.runs[1].note is None and dict(again.runs[1].tags) == {}
            assert again.runs[2].note == "fine"
            session.describe("sweep", "written at once")
            assert session.load_experiment("sweep").description == "written at once"
            session.describe("sweep", "")
            assert session.load_experiment("sweep").description is None


@pytest.mark.parametrize("backend", BACKENDS + OPTIONAL_BACKENDS)
def test_a_graph_experiment_description_and_a_trial_note_are_stored(
    backend: str, tmp_path: pathlib.Path
) -> None:
    with backend_location(backend, tmp_path) as location:
        with trialbook.Experiment("g", backend=location) as ex:
            a = ex.parameter("a")

            @ex.result
            def double(a):
                trialbook.current_run().note = f"doubled {a}"
                return 2 * a

            ex.set_parameters(a=1)
            double(a).compute(seed=0)
            ex.description = "graph *way*"
        with trialbook.Experiment("g", backend=location) as ex:
            assert ex.description == "graph *way*"
        with trialbook.create_session(location) as session:
            assert session.load_experiment("g").runs[1].note == "doubled 1"
            session.describe("g", "from the session")
        with trialbook.Experiment("g", backend=location) as ex:
            assert ex.description == "from the session"
            ex.description = None
            assert ex.description is None


def test_a_description_set_before_the_first_persist_is_stored_with_the_experiment(
    tmp_path: pathlib.Path,
) -> None:
    location = str(tmp_path / "store")
    with trialbook.create_session(location) as session:
        experiment = session.create_experiment("new", if_exists="replace")
        experiment.description = "created with it"
        experiment.add_run(x=1)
        experiment.persist()
    with trialbook.create_session(location) as session:
        assert session.load_experiment("new").description == "created with it"


def test_a_bad_note_or_description_is_refused_and_changes_nothing(
    tmp_path: pathlib.Path,
) -> None:
    with trialbook.create_session(str(tmp_path / "store")) as session:
        experiment = session.create_experiment("bad")
        (run,) = experiment.add_runs(x=[1])
        run.note = "kept"
        experiment.description = "kept too"
        with pytest.raises(ConfigError, match=r"the note of run 1 must be a str \(markdown\)"):
            run.note = 3  # type: ignore[assignment]
        with pytest.raises(ConfigError, match=r"is 65,537 bytes, more than the 65,536"):
            run.note = "x" * (MAX_BYTES + 1)
        with pytest.raises(ConfigError, match=r"description of experiment 'bad' must be a str"):
            experiment.description = ["x"]  # type: ignore[assignment]
        assert run.note == "kept" and experiment.description == "kept too"
        experiment.persist()
        with pytest.raises(ExperimentNotFoundError, match="nope"):
            session.describe("nope", "text")
        with pytest.raises(ConfigError, match="more than the 65,536"):
            session.describe("bad", "é" * MAX_BYTES)
        assert session.load_experiment("bad").description == "kept too"
