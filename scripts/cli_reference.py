"""Write docs/cli.md from the `--help` of every `trialbook` command (checked by the docs tests)."""

from __future__ import annotations

import pathlib
import sys

import click
from click.testing import CliRunner

from trialbook.cli import cli

HEADER = """# Command line reference

Generated from `--help` by `python scripts/cli_reference.py`; `make test` fails when it is stale.
Every command takes `--store URL` (default: `$TRIALBOOK_STORE`, else `.trialbook`). Errors print one
line and exit with status 1; bad usage exits with status 2.
"""


def walk(group: click.Group, prefix: list[str]) -> list[list[str]]:
    paths = []
    for name in sorted(group.commands):
        command = group.commands[name]
        paths.append([*prefix, name])
        if isinstance(command, click.Group):
            paths += walk(command, [*prefix, name])
    return paths


def render() -> str:
    runner = CliRunner()
    parts = [HEADER]
    for path in [[], *walk(cli, [])]:
        result = runner.invoke(cli, [*path, "--help"], prog_name="trialbook", terminal_width=100)
        title = " ".join(["trialbook", *path])
        parts.append(f"## `{title}`\n\n```text\n{result.output.rstrip()}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    target = pathlib.Path(__file__).resolve().parent.parent / "docs" / "cli.md"
    target.write_text(render())
    sys.stdout.write(f"wrote {target}\n")
