"""What every command shares: the ``--store`` option and error translation."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from trialbook.errors import TrialbookError

F = TypeVar("F", bound=Callable[..., Any])

store_option = click.option(
    "--store",
    "store",
    metavar="URL",
    envvar="TRIALBOOK_STORE",
    default=None,
    help="Store URL or directory (default: $TRIALBOOK_STORE or .trialbook).",
)


def friendly_errors(func: F) -> F:
    """Turn trialbook's errors into one-line messages and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TrialbookError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def open_session(store: str | None) -> Any:
    """Open a session on an existing store (a missing directory is an error, not created)."""
    import os

    from trialbook.errors import StorageError
    from trialbook.session import create_session
    from trialbook.storage import default_location

    location = store or default_location()
    if "://" not in location and not os.path.exists(location):
        msg = f"no store at {location!r}; pass --store URL or set TRIALBOOK_STORE"
        raise StorageError(msg)
    return create_session(location)
