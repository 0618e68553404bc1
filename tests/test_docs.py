"""The documentation is code: README examples run, the CLI reference matches `--help`."""

from __future__ import annotations

import pathlib
import re
import runpy
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def python_blocks(path: pathlib.Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    """The first experiment prints its 6 runs (alpha x seed) with their fields, reloaded from
    the store; run again, it starts over instead of failing or adding 6 more."""
    for attempt in range(2):
        for block in python_blocks(ROOT / "README.md"):
            exec(compile(block, "README.md", "exec"), {})
        lines = capsys.readouterr().out.splitlines()
        header = lines[0].split()
        assert header[:2] == ["alpha", "seed"] and "mse" in header and "metric.mse" in header
        runs = [line.split() for line in lines[2:] if line[:1].isdigit()]
        assert [row[0] for row in runs] == ["1", "2", "3", "4", "5", "6"], attempt
        assert sorted((float(r[1]), int(r[2])) for r in runs) == [
            (a, s) for a in (0.1, 1.0, 10.0) for s in (0, 1)
        ]
        assert all(row[3] == "done" for row in runs)


def test_readme_commands_show_the_first_experiment(capsys: pytest.CaptureFixture[str]) -> None:
    """The three commands after the first experiment list it, its runs table and run 3 with its
    params, fields and metrics, as the README's comments say."""
    from click.testing import CliRunner

    from trialbook.cli import cli

    for block in python_blocks(ROOT / "README.md"):
        exec(compile(block, "README.md", "exec"), {})
    capsys.readouterr()
    shell = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    commands = [
        line.split("#")[0].split()[1:]
        for block in shell
        for line in block.splitlines()
        if line.startswith(".venv/bin/trialbook ")
    ]
    assert commands == [["ls"], ["runs", "ridge"], ["show", "ridge", "3"]]
    outputs = []
    for args in commands:
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        outputs.append(result.output.splitlines())
    listing, table, shown = outputs
    assert listing[0].split()[:2] == ["name", "runs"] and listing[1].split()[:2] == ["ridge", "6"]
    assert table[0].split()[:2] == ["alpha", "seed"] and "mse" in table[0].split()
    assert [row.split()[0] for row in table[2:]] == ["1", "2", "3", "4", "5", "6"]
    assert shown[0] == "run 3 of 'ridge': done"
    assert {"params:", "  alpha: 1.0", "  seed: 0", "fields:", "metrics:"} <= set(shown)
    assert "  w: <ndarray shape=(5,) dtype=float64>" in shown
    assert any(line.startswith("  mse: 1 points, last ") for line in shown)


def test_cli_reference_is_current() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from cli_reference import render
    finally:
        sys.path.pop(0)
    assert (ROOT / "docs" / "cli.md").read_text() == render(), (
        "docs/cli.md is stale: run `.venv/bin/python scripts/cli_reference.py`"
    )


def test_demo_runs_and_runs_again(capsys: pytest.CaptureFixture[str]) -> None:
    """`make demo` prints the history of its 12 runs read back from the store, and a second
    `make demo` replaces the first one's experiment (12 runs again, not 24, not an error)."""
    for _ in range(2):
        runpy.run_path(str(ROOT / "examples" / "demo.py"), run_name="__main__")
        out = capsys.readouterr().out
        assert "history of 'demo-ridge' (12 runs, reloaded from the store):" in out
        assert "best run: " in out and "its learning curve" in out
        assert "Session(url=" in out and "experiments=1)" in out


def test_every_command_is_documented() -> None:
    from trialbook.cli import cli

    text = (ROOT / "docs" / "cli.md").read_text()
    for name, command in cli.commands.items():
        assert command.help, f"`trialbook {name}` has no help text"
        assert f"`trialbook {name}`" in text
