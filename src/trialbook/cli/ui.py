"""``trialbook ui``: serve the web UI over a store (see ``docs/ui.md``)."""

from __future__ import annotations

import click

from trialbook.cli.common import existing_store, friendly_errors, store_option


@click.command()
@store_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind: the default serves this machine only (and answers only requests "
    "for localhost, 127.0.0.1 or [::1]); 0.0.0.0 or :: serves every interface, and the printed "
    "URL then names this machine.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="TCP port (0 picks a free one).",
)
@click.option(
    "--token",
    metavar="TOKEN",
    envvar="TRIALBOOK_UI_TOKEN",
    default=None,
    help="Access token every request must carry (default: $TRIALBOOK_UI_TOKEN, else a new "
    "random one at each start). A fixed token gives a team's shared UI a stable URL.",
)
@click.option(
    "--allow-actions",
    is_flag=True,
    default=False,
    help="Allow deleting runs and killing jobs from the UI (read-only otherwise).",
)
@friendly_errors
def ui(store: str | None, host: str, port: int, token: str | None, allow_actions: bool) -> None:
    """Serve the web UI; open the printed URL (it carries the access token)."""
    from trialbook.extras import require
    from trialbook.storage.urls import public_url
    from trialbook.web.hosts import is_loopback
    from trialbook.web.server import serve

    require("ui", "trialbook ui")
    location = existing_store(store)
    # over a location, the server owns the store: it closes it when it stops
    server = serve(location, host=host, port=port, token=token, allow_actions=allow_actions)
    if not is_loopback(host):
        click.echo(f"warning: serving on {host}: anyone who can reach it and has the token "
                   "can read the store", err=True)  # fmt: skip
    mode = "actions allowed" if allow_actions else "read-only"
    shown = public_url(location)  # never the store's password (issue 18)
    click.echo(f"trialbook UI ({mode}) for {shown}:\n    {server.url}\nPress Ctrl-C to stop.")
    server.wait()
