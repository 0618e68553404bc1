"""Pickled values do not poison the rest (issue 21): an experiment with a pickled field loads
without the opt-in, its other values read as usual, the pickled one shows as a placeholder
(`<pickled: module.Class>`) in tables and on the command line, reading it raises with the way
to opt in, and persisting the run again writes the stored bytes back unchanged."""

from __future__ import annotations

import fractions
import pathlib

import pytest
from click.testing import CliRunner

import trialbook
from trialbook.cli import cli
from trialbook.codecs import Pickled
from trialbook.errors import CodecError


def _fit(run: trialbook.Run) -> None:
    run.fields.model = fractions.Fraction(int(run.params.c), 3)  # no safe codec: pickled
    run.fields.acc = 0.9


@pytest.fixture
def store(tmp_path: pathlib.Path) -> str:
    location = str(tmp_path / "store")
    with trialbook.create_session(location, allow_pickle=True) as session:
        experiment = session.create_experiment("models")
        experiment.add_runs(c=[1, 2])
        experiment.execute(_fit).persist()
    return location


def test_an_experiment_with_a_pickled_field_loads_without_the_opt_in(store: str) -> None:
    with trialbook.create_session(store) as session:
        loaded = session.load_experiment("models")
        run = loaded.runs[1]
        assert run.fields.acc == 0.9
        assert loaded.df()["acc"].tolist() == [0.9, 0.9]
        assert repr(run.fields.get("model")) == "<pickled: fractions.Fraction>"
        with pytest.raises(CodecError, match=r"field 'model' holds a pickled fractions\.Fraction"):
            _ = run.fields.model
        with pytest.raises(CodecError, match="allow_pickle=True"):
            _ = run.fields["model"]
        run.fields.acc = 0.95  # persisting the run again keeps the pickled bytes as they were
        loaded.persist()
    with trialbook.create_session(store, allow_pickle=True) as session:
        again = session.load_experiment("models").runs[1]
        assert again.fields.model == fractions.Fraction(1, 3)
        assert again.fields.acc == 0.95


def test_the_command_line_shows_a_placeholder_and_unpickles_on_request(store: str) -> None:
    runner = CliRunner()
    table = runner.invoke(cli, ["runs", "models", "--store", store])
    assert table.exit_code == 0, table.output
    shown = runner.invoke(cli, ["show", "models", "1", "--store", store])
    assert shown.exit_code == 0, shown.output
    assert "model: <pickled: fractions.Fraction>" in shown.output
    trusted = runner.invoke(cli, ["show", "models", "1", "--store", store, "--allow-pickle"])
    assert trusted.exit_code == 0, trusted.output
    assert "model: <pickled" not in trusted.output and "Fraction(1, 3)" in trusted.output


def test_a_pickled_trial_result_shows_in_the_history_and_raises_when_read(
    tmp_path: pathlib.Path,
) -> None:
    location = str(tmp_path / "store")
    with (
        trialbook.create_session(location, allow_pickle=True) as session,
        trialbook.Experiment("g", backend=session.store) as ex,
    ):
        a = ex.parameter("a")

        @ex.persist
        def third(a):
            return fractions.Fraction(a, 3)

        @ex.result
        def result(x):
            return x

        ex.set_parameters(a=1)
        result(third(a)).compute(seed=0)
    with trialbook.Experiment("g", backend=location) as ex:
        history = ex.get_history()
        assert isinstance(history.loc[1, "Result"], Pickled)
        assert str(history.loc[1, "Result"]) == "<pickled: fractions.Fraction>"
        with pytest.raises(CodecError, match="allow_pickle=True"):
            ex.get_persisted("third", trial_id=1)
