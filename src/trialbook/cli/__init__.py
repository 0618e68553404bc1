"""The ``trialbook`` command: a thin client of the library.

Every command takes ``--store URL`` (default: ``$TRIALBOOK_STORE`` or ``.trialbook``). Errors
print one line and exit with status 1; bad usage exits with status 2.
"""

from __future__ import annotations

import click

from trialbook.cli.experiments import ls, runs, show
from trialbook.cli.gc import gc
from trialbook.cli.maintenance import backup, check, copy, flush, restore
from trialbook.cli.script import run
from trialbook.cli.tasks import jobs, run_experiment
from trialbook.cli.ui import ui

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="trialbook")
def cli() -> None:
    """Define, run, track, persist, reload and compare experiments."""


# runs and chained steps
cli.add_command(ls)
cli.add_command(runs)
cli.add_command(show)
cli.add_command(gc)
# keeping a store
cli.add_command(check)
cli.add_command(backup)
cli.add_command(restore)
cli.add_command(copy)
cli.add_command(flush)
# lazy step graph
cli.add_command(run)
# typed tasks and plans
cli.add_command(run_experiment)
cli.add_command(jobs)
# web UI
cli.add_command(ui)


def main() -> None:
    """Entry point of the ``trialbook`` console script."""
    cli(prog_name="trialbook")
