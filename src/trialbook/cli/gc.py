"""``trialbook gc``: remove what nothing in the store refers to."""

from __future__ import annotations

import click

from trialbook.cli.common import friendly_errors, open_session, store_option


@click.command()
@store_option
@click.option("--dry-run", is_flag=True, help="Only report what would be removed; remove nothing.")
@click.option(
    "--min-age",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    metavar="MINUTES",
    help="Keep blobs written or reused less than MINUTES ago: a persist running in another "
    "process may be about to commit them.",
)
@friendly_errors
def gc(store: str | None, dry_run: bool, min_age: float) -> None:
    """Remove unreferenced data: blobs of deleted experiments and runs, blob files left by an
    interrupted persist (kill -9, a crash), rows of no experiment. Prints what was freed."""
    with open_session(store) as session:
        report = session.gc(min_age=min_age * 60, dry_run=dry_run)
        url = session.store.url
    verb = "would free" if dry_run else "freed"
    click.echo(f"{verb} {report} in {url}")
