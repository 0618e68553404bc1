"""What every command shares: the ``--store`` option, opening an existing store, and turning
errors (trialbook's, and optional packages that are not installed) into one line."""

from __future__ import annotations

import functools
import os
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
    """Turn trialbook's errors, and a missing optional package (naming the extra that
    installs it), into one-line messages and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TrialbookError as exc:
            raise click.ClickException(str(exc)) from exc
        except ModuleNotFoundError as exc:
            from trialbook.extras import missing_extra

            error = missing_extra(exc, f"trialbook {click.get_current_context().info_name}")
            if error is None:
                raise
            raise click.ClickException(str(error)) from exc

    return wrapper  # type: ignore[return-value]


def existing_store(store: str | None) -> str:
    """The location of the store to read: ``store``, else ``$TRIALBOOK_STORE`` or
    ``.trialbook``; a directory or SQLite file that does not exist is an error (a command that
    only reads never creates a store).

    Raises
    ------
    StorageError
        If the location is a path, ``sqlite:///file`` or ``file:///directory`` that does not
        exist.

    Examples
    --------
    >>> existing_store("sqlite:///:memory:")
    'sqlite:///:memory:'
    >>> existing_store("sqlite:///no/such.db")
    Traceback (most recent call last):
    ...
    trialbook.errors.StorageError: no store at 'sqlite:///no/such.db' (the file 'no/such.db'
    does not exist); pass --store URL or set TRIALBOOK_STORE
    """
    from trialbook.errors import StorageError
    from trialbook.storage import default_location
    from trialbook.storage.urls import public_url

    location = store or default_location()
    path = _local_path(location)
    if path is not None and not os.path.exists(path):
        what = "directory" if "://" not in location or location.startswith("file:") else "file"
        detail = f" (the {what} {path!r} does not exist)" if path != location else ""
        shown = public_url(location)
        msg = f"no store at {shown!r}{detail}; pass --store URL or set TRIALBOOK_STORE"
        raise StorageError(msg)
    return location


def _local_path(location: str) -> str | None:
    """The file or directory a store location names on this machine (``None`` for servers
    and in-memory databases)."""
    scheme, sep, rest = location.partition("://")
    if not sep:
        return location
    if scheme.lower() == "file":
        return rest
    if scheme.lower() == "sqlite":
        path = rest[1:] if rest.startswith("/") else rest
        return None if path in ("", ":memory:") else path
    return None


ALLOW_PICKLE_HELP = (
    "Unpickle values stored with pickle (this runs code taken from the store: only for a "
    "store you trust). Without it they show as <pickled: Class>."
)


def open_session(store: str | None, *, allow_pickle: bool = False) -> Any:
    """Open a session on an existing store (a missing directory or file is an error, never
    created). The session owns the store: use it in a ``with`` block, which closes it.

    Examples
    --------
    >>> with open_session("sqlite:///:memory:") as session:
    ...     session.store
    SqliteStore('sqlite:///:memory:')
    """
    from trialbook.session import create_session

    return create_session(existing_store(store), allow_pickle=allow_pickle)


def existing_workdir(workdir: str) -> str:
    """``workdir`` when it is a directory; else an error naming it (commands that read jobs
    never create a workdir).

    Examples
    --------
    >>> existing_workdir("no/such/workdir")
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: no workdir at 'no/such/workdir'; pass --workdir DIR (the
    directory given to experiment(...) or run-experiment) or set TRIALBOOK_WORKDIR
    """
    from trialbook.errors import ConfigError

    if not os.path.isdir(workdir):
        msg = (f"no workdir at {workdir!r}; pass --workdir DIR (the directory given to "
               "experiment(...) or run-experiment) or set TRIALBOOK_WORKDIR")  # fmt: skip
        raise ConfigError(msg)
    return workdir
