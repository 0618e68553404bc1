"""The `trialbook` command: ls, runs, show; errors are one line with a non-zero exit."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

import trialbook
from trialbook.cli import cli


@pytest.fixture
def filled(store_dir) -> str:
    def step(run: trialbook.Run) -> None:
        run.fields.score = round(run.params.lr * 2, 3)
        run.fields.weights = [1, 2]
        for i in range(3):
            run.log_metric("loss", 1.0 / (i + 1))

    with trialbook.create_session(store_dir) as session:
        experiment = session.create_experiment("fit")
        experiment.add_runs(lr=[0.1, 0.01])
        experiment.execute(step).persist()
        session.create_experiment("empty").persist()
    return str(store_dir)


def invoke(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_ls(filled: str) -> None:
    result = invoke("ls", "--store", filled)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["name", "runs", "created", "updated"]
    assert [line.split()[:2] for line in lines[1:]] == [["empty", "0"], ["fit", "2"]]


def test_ls_empty_store(store_dir) -> None:
    trialbook.create_session(store_dir).close()
    result = invoke("ls", "--store", str(store_dir))
    assert result.output == f"no experiments in {store_dir}\n"


def test_runs_table(filled: str) -> None:
    result = invoke("runs", "fit", "--store", filled)
    assert result.exit_code == 0
    header, _, first, second = result.output.splitlines()
    assert header.split() == [
        "lr",
        "status",
        "started",
        "finished",
        "duration",
        "score",
        "metric.loss",
    ]
    assert first.split()[:3] == ["1", "0.10", "done"]
    assert first.split()[-2:] == ["0.20", "0.333333"]
    assert second.split()[0] == "2"


def test_runs_of_empty_experiment(filled: str) -> None:
    assert invoke("runs", "empty", "--store", filled).output == "experiment 'empty' has no runs\n"


def test_show(filled: str) -> None:
    result = invoke("show", "fit", "2", "--store", filled)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "run 2 of 'fit': done"
    assert lines[2:] == [
        "params:",
        "  lr: 0.01",
        "fields:",
        "  score: 0.02",
        "  weights: [1, 2]",
        "metrics:",
        "  loss: 3 points, last 0.3333333333333333",
    ]


def test_show_prints_numpy_scalars_as_plain_values(store_dir) -> None:
    """Issue 18: `0.917`, not `np.float64(0.917)` or `<float64 shape=()>`."""
    import numpy as np

    def step(run: trialbook.Run) -> np.float64:
        run.fields.update(score=np.float64(0.917), n=np.int64(3), ok=np.bool_(True),
                          half=np.float32(0.1), when=np.datetime64("2024-01-02"))  # fmt: skip
        run.log_metric("loss", np.float64(0.25))
        return np.float64(1.5)

    with trialbook.create_session(store_dir) as session:
        experiment = session.create_experiment("np")
        experiment.add_runs(lr=[np.float64(0.1)], k=[np.int64(2)])
        experiment.execute(step).persist()
    result = invoke("show", "np", "1", "--store", str(store_dir))
    assert result.exit_code == 0
    assert result.output.splitlines()[2:] == [
        "params:",
        "  lr: 0.1",
        "  k: 2",
        "fields:",
        "  score: 0.917",
        "  n: 3",
        "  ok: True",
        "  half: 0.1",
        "  when: '2024-01-02'",
        "metrics:",
        "  loss: 1 points, last 0.25",
    ]
    table = invoke("runs", "np", "--store", str(store_dir)).output
    assert "np." not in table and "0.917" in table


def test_store_from_environment(filled: str, monkeypatch) -> None:
    monkeypatch.setenv("TRIALBOOK_STORE", filled)
    assert "fit" in invoke("ls").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["runs", "fitt"],
            "Error: no experiment named 'fitt' in this store (it has: 'empty', 'fit') "
            "(did you mean 'fit'?); list them with `trialbook ls` or session.ls()",
        ),
        (
            ["show", "fit", "9"],
            "Error: experiment 'fit' has no run with id 9 (it has 2 runs, ids 1..2)",
        ),
    ],
)
def test_errors_are_one_line(filled: str, args: list[str], message: str) -> None:
    result = invoke(*args, "--store", filled)
    assert result.exit_code == 1
    assert result.output == message + "\n"


def test_missing_and_unreadable_store(tmp_path) -> None:
    result = invoke("ls", "--store", str(tmp_path / "nothing"))
    assert result.exit_code == 1
    missing = str(tmp_path / "nothing")
    assert result.output == (
        f"Error: no store at {missing!r}; pass --store URL or set TRIALBOOK_STORE\n"
    )
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"garbage" * 1000)
    result = invoke("ls", "--store", f"sqlite:///{bad}")
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "not a readable trialbook store" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_bad_usage_exits_2(filled: str) -> None:
    result = invoke("show", "fit", "notanumber", "--store", filled)
    assert result.exit_code == 2


def test_help_everywhere() -> None:
    for command in cli.commands.values():
        assert command.help, f"{command.name} has no help"
        result = invoke(command.name, "--help")
        assert result.exit_code == 0
        if command.name != "copy":  # it names two stores: --from and --to
            assert "--store" in result.output


def test_python_dash_m(filled: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "trialbook", "ls", "--store", filled],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "fit" in out.stdout
