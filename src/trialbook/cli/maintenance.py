"""``trialbook check``, ``backup``, ``restore`` and ``copy``: keeping a store."""

from __future__ import annotations

import click

from trialbook.cli.common import friendly_errors, open_session, store_option


@click.command()
@store_option
@click.option(
    "--min-age",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    metavar="MINUTES",
    help="Count as garbage only files older than MINUTES (as `trialbook gc` removes them).",
)
@friendly_errors
def check(store: str | None, min_age: float) -> None:
    """Check a store: the database's integrity (SQLite), every blob and metric chunk present
    with the right hash, experiments left empty by a crash. Prints one line per problem with
    how to fix it, and exits with status 1 if there is any. Changes nothing."""
    with open_session(store) as session:
        report = session.check(min_age=min_age * 60)
        url = session.store.url
    for problem in report.problems:
        click.echo(f"problem: {problem}")
    if report.garbage.blobs or report.garbage.rows:
        click.echo(f"note: {report.garbage} can be freed with `trialbook gc`")
    if report.problems:
        count = len(report.problems)
        raise click.ClickException(f"{count} problem{'s' * (count != 1)} in {url}")
    click.echo(f"no problems in {url}")
