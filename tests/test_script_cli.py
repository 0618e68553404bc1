"""`trialbook run script.py a=1 b=2 --seed 1` and the explicit helper `ex.run_trial`."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from click.testing import CliRunner

import trialbook
from trialbook.cli import cli
from trialbook.errors import ConfigError
from trialbook.graph.script import parse_arguments, run_script

SCRIPT = textwrap.dedent(
    """
    import random
    import trialbook

    ex = trialbook.Experiment("script_pj", backend="store")
    a = ex.parameter("a")
    b = ex.parameter("b", default=10)

    @ex.result
    def score(a, b):
        return a * b + random.random()

    s = score(a, b)
    """
)

HELPER = SCRIPT + textwrap.dedent(
    """
    if __name__ == "__main__":
        import sys
        print("value", ex.run_trial(s, sys.argv[1:]))
    """
)


@pytest.fixture
def script() -> pathlib.Path:
    path = pathlib.Path("exp.py")
    path.write_text(SCRIPT)
    return path


def history() -> object:
    with trialbook.Experiment("script_pj", backend="store") as ex:
        return ex.get_history()


def test_run_command_records_one_trial(script: pathlib.Path) -> None:
    result = CliRunner().invoke(cli, ["run", str(script), "a=2", "b=3", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("trial 1 of experiment 'script_pj': result 6.13")
    frame = history()
    assert frame[["a", "b", "Seed"]].values.tolist() == [[2, 3, 1]]
    again = CliRunner().invoke(cli, ["run", str(script), "a=2", "b=3", "--seed", "1"])
    assert again.output.replace("trial 2", "trial 1") == result.output  # same seed, same result


def test_defaults_and_literal_values(script: pathlib.Path) -> None:
    result = CliRunner().invoke(cli, ["run", str(script), "a=0.5"])
    assert result.exit_code == 0, result.output
    assert history()[["a", "b"]].values.tolist() == [[0.5, 10]]


def test_malformed_argument_records_nothing(script: pathlib.Path) -> None:
    result = CliRunner().invoke(cli, ["run", str(script), "a=2", "b"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: malformed argument 'b': expected key=value with a parameter name as key, "
        "e.g. a=1 or name=adam\n"
    )
    assert not pathlib.Path("store").exists()  # the script did not even run


def test_unknown_parameter_records_nothing(script: pathlib.Path) -> None:
    result = CliRunner().invoke(cli, ["run", str(script), "a=2", "c=3"])
    assert result.exit_code == 1
    assert "unknown parameter 'c'" in result.output
    assert history().empty


def test_bad_seed(script: pathlib.Path) -> None:
    result = CliRunner().invoke(cli, ["run", str(script), "a=1", "--seed", "x"])
    assert result.exit_code == 2
    assert "'x' is not a valid integer" in result.output


def test_script_calling_the_helper(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "helper.py"
    path.write_text(HELPER)
    trials = run_script(path, ["a=3", "--seed", "2"])
    assert [(t.trial_id, t.experiment.id) for t in trials] == [(1, "script_pj")]
    assert len(history()) == 1  # the helper ran the trial; no second one


def test_script_run_directly_with_python(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "helper.py"
    path.write_text(HELPER)
    out = subprocess.run(
        [sys.executable, str(path), "a=4", "b=1", "--seed", "1"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.startswith("value 4.13")
    assert history()["a"].tolist() == [4]


def test_script_without_a_result_node(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "empty.py"
    path.write_text("x = 1\n")
    with pytest.raises(ConfigError, match="defines 0 result nodes"):
        run_script(path, [])


def test_importing_a_script_under_pytest_runs_nothing(script: pathlib.Path) -> None:
    """Defining and calling steps never runs them, and sys.argv (pytest's) is never read."""
    namespace: dict[str, Any] = {}
    exec(compile(script.read_text(), str(script), "exec"), namespace)
    namespace["ex"].close()
    assert history().empty


def test_parse_arguments() -> None:
    assert parse_arguments(["x='a b'", "y=None", "z=text", "--seed=4"]) == (
        {"x": "a b", "y": None, "z": "text"},
        4,
    )
    with pytest.raises(ConfigError, match="--seed takes an integer"):
        parse_arguments(["--seed"])
    with pytest.raises(ConfigError, match="malformed argument '1=2'"):
        parse_arguments(["1=2"])


def test_store_option_sets_the_default_store(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "default.py"
    path.write_text(SCRIPT.replace('backend="store"', "backend=None"))
    result = CliRunner().invoke(cli, ["run", str(path), "a=1", "--store", "other"])
    assert result.exit_code == 0, result.output
    with trialbook.Experiment("script_pj", backend="other") as ex:
        assert ex.trial_id == 1
    assert not pathlib.Path(".trialbook").exists()
