"""Stores: where experiments live. Open one from a URL, a path or a client object.

=====================================  ===============================================
location                               store
=====================================  ===============================================
``None``                               ``$TRIALBOOK_STORE``, else the directory ``.trialbook``
a directory path (``str`` or ``Path``)   SQLite database + blob folder inside that directory
``sqlite:///file.db``                   one SQLite file (blobs inside it)
``sqlite:///:memory:``                  a private in-memory database
=====================================  ===============================================

On a server (PostgreSQL, Redis, MongoDB) every operation is retried through short outages for
30 s, or ``retry_seconds`` (the ``?retry_seconds=N`` query parameter of the URL, or the
keyword of :func:`open_store`): see :mod:`trialbook.storage.retry`.

Backends register themselves by URL scheme with :func:`register_store`; core code never imports
a specific backend.

Examples
--------
>>> from trialbook.storage import open_store
>>> store = open_store("sqlite:///:memory:")
>>> store.url
'sqlite:///:memory:'
>>> open_store("nosuch://x")
Traceback (most recent call last):
...
trialbook.errors.ConfigError: cannot open a store from 'nosuch://x': unknown scheme 'nosuch'...
>>> store.close()
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

from trialbook.errors import ConfigError
from trialbook.storage.base import Store
from trialbook.storage.records import (
    ErrorInfo,
    ExperimentInfo,
    GcReport,
    MetricChunk,
    MetricSeries,
    RunRecord,
    Status,
)
from trialbook.storage.retry import check_seconds
from trialbook.storage.retry import retry_seconds as retry_seconds_of
from trialbook.storage.urls import take_param

__all__ = [
    "DEFAULT_LOCATION",
    "ErrorInfo",
    "ExperimentInfo",
    "GcReport",
    "MetricChunk",
    "MetricSeries",
    "RunRecord",
    "Status",
    "Store",
    "default_location",
    "open_store",
    "register_store",
]

DEFAULT_LOCATION = ".trialbook"
ENV_VAR = "TRIALBOOK_STORE"

Opener = Callable[..., Store]
_OPENERS: dict[str, Opener | str] = {
    "sqlite": "trialbook.storage.sqlite:open_sqlite_url",
    "file": "trialbook.storage.sqlite:open_sqlite_url",
    # team backends (issue 5). Redis and MongoDB come before the SQL schemes: their modules
    # import their drivers lazily, so claiming a client object never needs SQLAlchemy.
    "redis": "trialbook.storage.redis:open_redis",
    "rediss": "trialbook.storage.redis:open_redis",
    "unix": "trialbook.storage.redis:open_redis",
    "mongodb": "trialbook.storage.mongo:open_mongo",
    "postgresql": "trialbook.storage.sql:open_sql_url",
    "mysql": "trialbook.storage.sql:open_sql_url",
    "mariadb": "trialbook.storage.sql:open_sql_url",
    "mssql": "trialbook.storage.sql:open_sql_url",
    "oracle": "trialbook.storage.sql:open_sql_url",
    # end of team backends
}


def register_store(scheme: str, opener: Opener | str) -> None:
    """Make ``open_store`` hand URLs of ``scheme`` to ``opener(url, **options)``.

    ``opener`` may be a ``"module:function"`` string, imported on first use.

    Examples
    --------
    >>> from trialbook.storage.sqlite import open_sqlite_url
    >>> register_store("mysqlite", lambda url, **kw: open_sqlite_url("sqlite:///:memory:", **kw))
    >>> with open_store("mysqlite://anything") as store:
    ...     store.url
    'sqlite:///:memory:'
    """
    _OPENERS[scheme] = opener


def default_location() -> str:
    """The store used when none is given: ``$TRIALBOOK_STORE`` or ``.trialbook``.

    Examples
    --------
    >>> default_location()
    '...'
    """
    return os.environ.get(ENV_VAR) or DEFAULT_LOCATION


def open_store(
    location: Store | str | os.PathLike[str] | None = None,
    *,
    allow_pickle: bool = False,
    retry_seconds: float | None = None,
    **options: Any,
) -> Store:
    """Open the store at ``location`` (see the module documentation for the forms).

    Parameters
    ----------
    location
        A URL, a directory path, an already open :class:`Store`, or ``None`` for the default.
    allow_pickle
        Allow values that no safe codec handles to be written and read with pickle. Only for
        stores you trust: unpickling runs code taken from the store.
    retry_seconds
        How long an operation of a store on a server is retried while the server cannot be
        reached, before :class:`~trialbook.errors.StoreUnavailableError` (default 30; also the
        URL's ``retry_seconds`` query parameter; see :mod:`trialbook.storage.retry`).
    **options
        Passed to the backend (e.g. ``tracer=`` for SQL backends).

    Raises
    ------
    ConfigError
        For an unknown URL scheme, or a ``retry_seconds`` that is not a number ``>= 0``.
    StorageError
        If the location cannot be opened or does not hold a trialbook store.
    """
    if retry_seconds is not None:
        check_seconds(retry_seconds)  # before connecting: a typo is told at once
    store, in_url = _open(location, allow_pickle=allow_pickle, **options)
    retry_seconds_of(store, in_url if retry_seconds is None else retry_seconds)
    return store


def _open(location: Any, *, allow_pickle: bool, **options: Any) -> tuple[Store, str | None]:
    """The store at ``location`` and the ``retry_seconds`` parameter of its URL, if any."""
    # dir(), not only the Protocol check: driver objects such as a pymongo Database answer
    # every attribute name through __getattr__ and would pass for a Store.
    if isinstance(location, Store) and "backend_label" in dir(location):
        return location, None
    if location is None:
        location = default_location()
    if isinstance(location, os.PathLike):
        location = os.fspath(location)
    if not isinstance(location, str):
        opener = _opener_for_client(location)
        return opener(location, allow_pickle=allow_pickle, **options), None
    scheme, sep, _ = location.partition("://")
    if not sep:
        import pathlib

        from trialbook.storage.sqlite import SqliteStore

        directory = SqliteStore.from_directory(
            pathlib.Path(location), allow_pickle=allow_pickle, **options
        )
        return directory, None
    location, in_url = take_param(location, "retry_seconds")
    scheme = scheme.lower().partition("+")[0]
    if scheme not in _OPENERS:
        known = ", ".join(sorted(_OPENERS))
        msg = (
            f"cannot open a store from {location!r}: unknown scheme {scheme!r}; "
            f"known schemes: {known}, or a directory path"
        )
        raise ConfigError(msg)
    if in_url is not None:
        check_seconds(in_url)
    try:
        store = _resolve(scheme)(location, allow_pickle=allow_pickle, **options)
    except ModuleNotFoundError as exc:  # a backend's driver is an extra
        from trialbook.extras import EXTRAS, missing_extra

        extra = _SCHEME_EXTRAS.get(scheme)
        if extra is not None and (exc.name or "").partition(".")[0] not in EXTRAS[extra]:
            extra = None  # not the driver: name the extra of the module that is missing
        error = missing_extra(exc, f"a {scheme!r} store", extra)
        if error is None:
            raise
        raise error from exc
    return store, in_url


# The extra that installs the driver of a URL scheme (`pip install 'trialbook[<extra>]'`).
_SCHEME_EXTRAS = {"redis": "redis", "rediss": "redis", "unix": "redis", "mongodb": "mongo",
                  "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}  # fmt: skip


def _resolve(scheme: str) -> Opener:
    opener = _OPENERS[scheme]
    if isinstance(opener, str):
        module, _, name = opener.partition(":")
        opener = getattr(importlib.import_module(module), name)
        _OPENERS[scheme] = opener
    return opener


def _opener_for_client(client: object) -> Opener:
    """Client objects (a connection pool, a database handle) are claimed by their backend."""
    for scheme in list(_OPENERS):
        opener = _resolve(scheme)
        claims = getattr(opener, "claims", None)
        if claims is not None and claims(client):
            return opener
    msg = (
        f"cannot open a store from a {type(client)}: expected a URL, a directory path "
        "or a client object of a registered backend"
    )
    raise ConfigError(msg)
