"""``trialbook check``, ``backup``, ``restore``, ``copy`` and ``flush``: keeping a store."""

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


SERVER_TOOLS = {
    "postgres": "pg_dump: pg_dump --format=custom --schema=SCHEMA --file=trialbook.dump "
    "'postgresql://HOST/DB' (the schema of the store, `public` unless its URL names one); "
    "restore with pg_restore --dbname='postgresql://HOST/DB' trialbook.dump",
    "mysql": "mysqldump: mysqldump --single-transaction DB > trialbook.sql; restore with "
    "mysql DB < trialbook.sql",
    "redis": "the server's own snapshot: redis-cli BGSAVE, wait until LASTSAVE changes, then "
    "copy dump.rdb (or, with appendonly yes, the appendonly files) from the server's `dir`; "
    "restore by starting a server on that file",
    "mongodb": "mongodump: mongodump --uri='mongodb://HOST/DB' --out=DIR; restore with "
    "mongorestore --uri='mongodb://HOST' DIR",
}
"""How to back up a server store with the server's own tools, by URL scheme prefix."""


def server_backup_advice(url: str) -> str:
    """What to tell someone who asks ``trialbook backup`` for a server store.

    Examples
    --------
    >>> server_backup_advice("redis://localhost:6379/0")[:60]
    'trialbook backup copies embedded (SQLite) stores; back up th'
    """
    scheme = url.partition("://")[0].lower()
    found = next((tool for prefix, tool in SERVER_TOOLS.items() if scheme.startswith(prefix)), "")
    how = f" with {found}" if found else " with the server's own backup tool"
    return (
        f"trialbook backup copies embedded (SQLite) stores; back up the server store {url!r}"
        f"{how}. Or copy its experiments into a local store: trialbook copy --from URL --to DIR"
    )


@click.command()
@click.argument("dest", type=click.Path(file_okay=False, path_type=str))
@store_option
@friendly_errors
def backup(dest: str, store: str | None) -> None:
    """Copy a store into the new directory DEST, consistently while other processes write:
    the database (SQLite's online backup) and then the blob files it refers to. DEST is a
    store of its own (`--store DEST`); `trialbook restore DEST` copies it back. For a server
    store, says which tool of the server to use."""
    with open_session(store) as session:
        target = session.store
        if not callable(getattr(target, "backup", None)):
            raise click.ClickException(server_backup_advice(target.url))
        report = target.backup(dest)
        url = target.url
    click.echo(f"backed up {report} of {url} into {dest}")


@click.command()
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=str))
@store_option
@click.option("--force", is_flag=True, help="Replace the contents of a store that has experiments.")
@friendly_errors
def restore(source: str, store: str | None, force: bool) -> None:
    """Copy the backup in SOURCE (made by `trialbook backup`) into the embedded store given by
    --store (created if missing). Refuses a store that has experiments unless --force; stop
    the processes using it first."""
    from trialbook.session import create_session
    from trialbook.storage import default_location

    with create_session(store or default_location()) as session:
        target = session.store
        restore_into = getattr(target, "restore", None)
        if not callable(restore_into):
            msg = (
                f"trialbook restore writes embedded (SQLite) stores, not {target.url!r}: copy "
                f"the backup's experiments there (trialbook copy --from {source} --to URL), or "
                "restore a backup made with the server's own tool"
            )
            raise click.ClickException(msg)
        report = restore_into(source, force=force)
        url = target.url
    click.echo(f"restored {report} from {source} into {url}")


@click.command()
@click.argument("experiments", nargs=-1, metavar="[EXPERIMENT]...")
@click.option(
    "--from", "source", required=True, metavar="URL", help="Store to copy from (must exist)."
)
@click.option(
    "--to", "target", required=True, metavar="URL", help="Store to copy into (created if missing)."
)
@friendly_errors
def copy(experiments: tuple[str, ...], source: str, target: str) -> None:
    """Copy experiments (by name or id_experiment; default: all) between stores of any
    backends, with their runs, metrics, large values, artifacts, and code and environment
    snapshots. Idempotent: an experiment already in the target (same id_experiment) is left as
    it is when equal, else replaced; copying twice gives the same target."""
    from trialbook.session import create_session
    from trialbook.transfer import copy_experiments

    with open_session(source) as src, create_session(target) as dst:
        for transfer in copy_experiments(src.store, dst.store, experiments):
            click.echo(str(transfer))
        into = dst.store.url
    click.echo(f"done: {src.store.url} -> {into}")


@click.command()
@store_option
@click.option(
    "--journal",
    "folder",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="The journal's folder (default: $TRIALBOOK_JOURNAL, else .trialbook-journal here).",
)
@friendly_errors
def flush(store: str | None, folder: str | None) -> None:
    """Write the writes kept in the local journal during an outage (trials and runs the
    store's server did not take in time) to the store, oldest first, removing each one
    written. Entries of other stores are left alone and listed. Exits with status 1 if an
    entry of this store stays (the server is still away, or the store refused it)."""
    from trialbook.journal import Journal, default_journal

    journal = Journal(folder) if folder else default_journal()
    with open_session(store) as session:
        target = session.store
        url = target.url
        report = journal.flush(target)
    for entry, reason in report.failed:
        click.echo(f"kept: {entry.path.name} ({entry.what}): {reason}")
    others = [e for e in journal.entries() if e.store != url]
    for entry in others:
        click.echo(f"other store: {entry.path.name} ({entry.what}) is for {entry.store}")
    click.echo(
        f"wrote {report.written} journal entr{'y' if report.written == 1 else 'ies'} to {url}"
    )
    if report.failed:
        count = len(report.failed)
        raise click.ClickException(
            f"{count} entr{'y' if count == 1 else 'ies'} of {url} stay in {journal.directory}"
        )
