"""Riding out short outages of a store's server: one retry policy for every team backend.

A server that restarts, fails over or drops its connections for a few seconds should cost a
running experiment a pause, not its results (issue 18). Every operation of a store on a server
(:class:`~trialbook.storage.sql.SqlStore`, :class:`~trialbook.storage.redis.RedisStore`,
:class:`~trialbook.storage.mongo.MongoStore`) goes through :meth:`RetryPolicy.call`: when it
fails with a *transient* connection error (:func:`is_transient`: the server refused or lost
the connection, or did not answer in time), the whole operation is tried again after an
exponential backoff with jitter, until it succeeds or ``seconds`` (30 by default) have
passed; then :class:`~trialbook.errors.StoreUnavailableError` (a
:class:`~trialbook.errors.StorageError`) names the server, the operation and the last error,
with the driver's exception as its ``__cause__``. Any other error (a wrong password, an
unknown database, a conflict) is raised at once.

Retrying a whole operation is safe because every write of a store is idempotent: runs carry
their writer's token and version (a write applied once whose answer was lost is accepted
again, see :func:`~trialbook.storage.base.version_conflicts`), metric chunks, artifacts and
step hashes are upserts on their keys, snapshots and blobs are content-addressed. Two
operations may leave a trace of the lost attempt: :meth:`~trialbook.storage.base.Store.
allocate_run_ids` may skip the ids of the lost answer (ids stay unique, with a gap), and a
:meth:`~trialbook.storage.base.Store.create_experiment` whose answer was lost is refused with
``ExperimentExistsError`` on its retry (the experiment is there; load it).

Opening a store is not retried: a wrong URL or a server that is down is reported at once.
Connections a restart broke are dropped by the drivers (SQLAlchemy invalidates them when it
sees a disconnect, redis-py and pymongo reconnect on the next command), so the same process
carries on once the server is back. How long one attempt may wait is the backend's
``connect_timeout`` (5 s), so the error comes at most that long after the budget ends.

Examples
--------
>>> policy = RetryPolicy(seconds=0.0)
>>> policy.call("redis://db:6379/0", "read_runs", lambda: 42)
42
>>> is_transient(ConnectionRefusedError(111, "Connection refused"))
True
>>> is_transient(ValueError("bad value"))
False
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from trialbook.errors import ConfigError, StoreUnavailableError

__all__ = [
    "DEFAULT_RETRY_SECONDS",
    "OPERATIONS",
    "RetryPolicy",
    "is_transient",
    "retry_operations",
    "retry_seconds",
]

T = TypeVar("T")
C = TypeVar("C", bound=type)

log = logging.getLogger(__name__)

DEFAULT_RETRY_SECONDS = 30.0
"""How long a store keeps retrying an operation through an outage, by default."""

_JITTER = random.Random()
"""The retries' own random numbers: the global ``random`` state is the user's (seeded trials)."""

FIRST_DELAY = 0.05
MAX_DELAY = 2.0

OPERATIONS = (
    "list_experiments", "find_experiment", "create_experiment", "delete_experiment",
    "update_meta", "allocate_run_ids", "write_runs", "read_runs", "delete_runs",
    "find_runs_by_key", "put_step_hash", "get_step_hashes", "read_metrics", "metric_names",
    "write_artifact", "read_artifact", "list_artifacts", "put_snapshot", "get_snapshot",
    "collect_garbage", "query_runs", "names_present", "group_runs", "change_token",
    "value_columns", "experiment_token", "segments_cover", "refresh_segments",
)  # fmt: skip
"""The methods of a store that :func:`retry_operations` wraps: the whole
:class:`~trialbook.storage.base.Store` protocol and the optional query methods."""

_TRANSIENT = {
    "psycopg.OperationalError",
    "psycopg.InterfaceError",
    "psycopg2.OperationalError",
    "psycopg2.InterfaceError",
    "redis.exceptions.ConnectionError",
    "redis.exceptions.TimeoutError",
    "pymongo.errors.ConnectionFailure",  # AutoReconnect, ServerSelectionTimeoutError, ...
    "builtins.ConnectionError",  # refused, reset, aborted, broken pipe
    "builtins.TimeoutError",
}
_PERMANENT = {
    "redis.exceptions.AuthenticationError",  # a ConnectionError to redis-py
    "redis.exceptions.AuthenticationWrongNumberOfArgsError",
}
_PERMANENT_TEXT = ("authentication failed", "does not exist", "pg_hba.conf", "password")
"""A PostgreSQL connection error with one of these is about the URL, not the server's state."""
_PG_TRANSIENT_STATES = ("08", "57P01", "57P02", "57P03")
"""SQLSTATEs of lost connections and of a server shutting down or starting up."""

_inside = threading.local()


def _names(exc: BaseException) -> set[str]:
    return {f"{cls.__module__}.{cls.__qualname__}" for cls in type(exc).__mro__}


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, its ``__cause__`` chain and SQLAlchemy's ``orig`` driver exceptions."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        orig = getattr(item, "orig", None)
        todo += [item.__cause__, orig if isinstance(orig, BaseException) else None]


def _driver_error(exc: BaseException) -> BaseException:
    """The driver's exception behind ``exc`` (``exc`` itself when it has none)."""
    found = [item for item in _causes(exc) if _names(item) & _TRANSIENT]
    return found[-1] if found else exc


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or the driver exception it was raised from) says the server could not
    be reached or the connection was lost: worth trying the operation again.

    Examples
    --------
    >>> from trialbook.errors import StorageError
    >>> try:
    ...     try:
    ...         raise TimeoutError("timed out")
    ...     except TimeoutError as cause:
    ...         raise StorageError("RedisBackend 'redis://db:6379/0': timed out") from cause
    ... except StorageError as exc:
    ...     is_transient(exc)
    True
    >>> is_transient(StorageError("no such table"))
    False
    """
    for item in _causes(exc):
        names = _names(item)
        if names & _PERMANENT:
            return False
        if not names & _TRANSIENT:
            continue
        if "psycopg" in type(item).__module__:
            return _pg_transient(item)
        return True
    return False


def _pg_transient(exc: BaseException) -> bool:
    state = getattr(exc, "sqlstate", None)
    if state is not None:
        return str(state).startswith(_PG_TRANSIENT_STATES)
    text = str(exc).lower()
    return not any(marker in text for marker in _PERMANENT_TEXT)


class RetryPolicy:
    """Try an operation again through transient connection errors, for ``seconds`` at most.

    Parameters
    ----------
    seconds
        The budget of one operation: no new attempt starts after it (default
        :data:`DEFAULT_RETRY_SECONDS`); ``0`` tries once.

    Examples
    --------
    >>> attempts = []
    >>> def flaky():
    ...     attempts.append(1)
    ...     if len(attempts) < 3:
    ...         raise ConnectionResetError(104, "Connection reset by peer")
    ...     return "written"
    >>> RetryPolicy(seconds=5).call("postgresql://db:5432/x", "write_runs", flaky), len(attempts)
    ('written', 3)
    >>> RetryPolicy(seconds=0).call("postgresql://db:5432/x", "write_runs", flaky)
    'written'
    """

    def __init__(self, seconds: float = DEFAULT_RETRY_SECONDS) -> None:
        self.seconds = check_seconds(seconds)

    def __repr__(self) -> str:
        return f"RetryPolicy(seconds={self.seconds})"

    def call(self, store: str, operation: str, fn: Callable[[], T]) -> T:
        """``fn()``, tried again while it fails with a transient error (see the module docs);
        ``store`` (the backend and its URL without password) and ``operation`` name what
        failed in the
        :class:`~trialbook.errors.StoreUnavailableError` raised past the budget."""
        if getattr(_inside, "active", False):  # an operation made of operations: one budget
            return fn()
        with _active():
            return self._attempts(store, operation, fn)

    def _attempts(self, store: str, operation: str, fn: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.seconds
        delay, attempt = FIRST_DELAY, 0
        while True:
            attempt += 1
            try:
                return fn()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                left = deadline - time.monotonic()
                cause = _driver_error(exc)
                if left <= 0:
                    raise StoreUnavailableError(
                        store, operation, self.seconds, attempt, _reason(cause)
                    ) from cause
                if attempt == 1:
                    log.warning("%s: %s failed (%s); retrying for up to %g s",
                                store, operation, _reason(cause), self.seconds)  # fmt: skip
            time.sleep(min(left, _JITTER.uniform(delay / 2, delay)))  # jitter: no herd
            delay = min(delay * 2, MAX_DELAY)


@contextlib.contextmanager
def _active() -> Iterator[None]:
    _inside.active = True
    try:
        yield
    finally:
        _inside.active = False


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def check_seconds(value: Any) -> float:
    """``value`` as a retry budget in seconds (a number ``>= 0``, or its text), or raise
    :class:`~trialbook.errors.ConfigError`.

    Examples
    --------
    >>> check_seconds("2.5")
    2.5
    >>> check_seconds(-1)
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: retry_seconds must be a number of seconds >= 0 (got -1 ...
    """
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not seconds >= 0:
        msg = (
            f"retry_seconds must be a number of seconds >= 0 (got {value!r} that is a "
            f"{type(value)}); e.g. ?retry_seconds=10 in the store URL, or 0 to never retry"
        )
        raise ConfigError(msg)
    return seconds


def retry_seconds(store: object, seconds: float | str | None) -> None:
    """Give ``store`` a :class:`RetryPolicy` of ``seconds`` (``None``: leave the one it has).

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> with open_store("sqlite:///:memory:") as store:
    ...     retry_seconds(store, "3")
    ...     store.retry_policy
    RetryPolicy(seconds=3.0)
    """
    if seconds is not None:
        store.retry_policy = RetryPolicy(check_seconds(seconds))  # type: ignore[attr-defined]


def retry_operations(cls: C) -> C:
    """Class decorator: each method of :data:`OPERATIONS` that ``cls`` defines runs through
    the store's ``retry_policy`` (a :class:`RetryPolicy` of :data:`DEFAULT_RETRY_SECONDS`
    unless :func:`retry_seconds` set another).

    Examples
    --------
    >>> @retry_operations
    ... class Store:
    ...     backend_label, url = "RedisBackend", "redis://db:6379/0"
    ...     def read_runs(self, experiment_id):
    ...         return [experiment_id]
    >>> Store().read_runs(7), Store.read_runs.__name__
    ([7], 'read_runs')
    """
    cls.retry_policy = RetryPolicy()  # type: ignore[attr-defined]
    for name in OPERATIONS:
        method = cls.__dict__.get(name)
        if callable(method):
            setattr(cls, name, _retried(name, method))
    return cls


def _retried(name: str, method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def operation(self: Any, *args: Any, **kwargs: Any) -> T:
        call = functools.partial(method, self, *args, **kwargs)
        return self.retry_policy.call(f"{self.backend_label} {self.url!r}", name, call)

    return operation
