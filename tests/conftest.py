"""Shared fixtures. Services (PostgreSQL, Redis, MongoDB) are found through
TRIALBOOK_TEST_{POSTGRES,REDIS,MONGO}_URL; scripts/test.sh starts them. With no URL a test
that needs one is skipped with the reason.

Under CI nothing skips. CI is ``TRIALBOOK_TEST_REQUIRE_ALL=1`` or ``CI=true`` (set by GitHub
Actions, GitLab CI and others), however pytest is started (``scripts/test.sh`` or plain
``pytest``). Then :func:`need` and :func:`require_module` fail instead of skipping, and the hooks
below turn any other skip of a test of this directory (``pytest.skip``, ``pytest.importorskip``,
a ``skipif`` that holds, a module-level skip) into a failure that says so, with two exceptions:

* tests marked ``@pytest.mark.optional`` may skip: they need something CI does not provide;
* MySQL/MariaDB: its tests are *deselected*, not skipped, when ``TRIALBOOK_TEST_MYSQL_URL`` is
  unset (``OPTIONAL_BACKENDS`` is then empty, so no ``mysql`` test is collected), under CI too.

Expected failures (``xfail``) are not skips. The doctests of ``src/`` and ``docs/`` are outside
this directory and its hooks; none of them skips.
"""

from __future__ import annotations

import importlib
import os
import pathlib
from collections.abc import Iterator, Mapping
from typing import Any, Protocol, TypeVar

import pytest
from hypothesis import settings

import trialbook

# No Hypothesis deadline: how long one example takes on a loaded machine is no test failure
# (timings belong in benchmarks/). Tests may still set their own settings on top of this.
settings.register_profile("trialbook", deadline=None)
settings.load_profile("trialbook")


def require_all(environ: Mapping[str, str]) -> bool:
    """Whether every test must run (CI): ``TRIALBOOK_TEST_REQUIRE_ALL=1`` or ``CI=true``."""
    ci = environ.get("CI", "").strip().lower() in {"true", "1", "yes"}
    return environ.get("TRIALBOOK_TEST_REQUIRE_ALL") == "1" or ci


REQUIRE_ALL = require_all(os.environ)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "optional: may skip under CI (needs something CI does not provide)"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Under CI, a skipped test fails (unless marked ``optional``), naming the skip's reason."""
    outcome = yield
    report = outcome.get_result()
    if (
        REQUIRE_ALL
        and report.skipped
        and not hasattr(report, "wasxfail")
        and item.get_closest_marker("optional") is None
    ):
        report.outcome = "failed"
        report.longrepr = _ci_skip_message(report.longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """Under CI, a module that skips itself (``importorskip`` at module level) fails to collect."""
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped:
        report.outcome = "failed"
        report.longrepr = _ci_skip_message(report.longrepr)


def _ci_skip_message(longrepr: object) -> str:
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else longrepr
    reason = str(reason).removeprefix("Skipped: ")
    return (
        f"skipped under CI, where nothing may skip: {reason}. Provide what it needs, or mark "
        "the test @pytest.mark.optional if CI cannot (see tests/conftest.py)"
    )


T = TypeVar("T")


def need(condition: bool, reason: str) -> None:
    """Skip (or, when every service is required, fail) unless ``condition``."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required under CI but unavailable: {reason}")
    pytest.skip(reason)


def require_module(name: str, extra: str) -> Any:
    """Import an optional package of the extra ``extra``, or skip the tests that need it (at
    module level too); under CI (see the module documentation) a missing one fails. Use it
    instead of ``pytest.importorskip``."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        reason = f"{name} is not installed ({exc}): pip install 'trialbook[{extra}]'"
        if REQUIRE_ALL:
            pytest.fail(f"required under CI but unavailable: {reason}")
        pytest.skip(reason, allow_module_level=True)


class Closing(Protocol):
    """The ``closing`` fixture: ``ex = closing(Experiment(...))`` closes ``ex`` after the test."""

    def __call__(self, opened: T, /) -> T: ...


@pytest.fixture
def closing() -> Iterator[Closing]:
    """Close what a test opens (stores, sessions, experiments), last opened first, when it ends:
    ``store = closing(open_store(url))``. A test closes what it opens: an unclosed store is
    closed by the garbage collector at some later moment, with a ``ResourceWarning``."""
    opened: list[Any] = []

    def keep(thing: T) -> T:
        opened.append(thing)
        return thing

    yield keep
    for thing in reversed(opened):
        thing.close()


@pytest.fixture
def store_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "store"


@pytest.fixture
def session(store_dir: pathlib.Path) -> trialbook.Session:
    session = trialbook.create_session(store_dir)
    yield session
    session.close()


# -- services for the team backends (issue 5) ------------------------------------------------------
# A test that needs a server asks for `backend_location(<name>)`: a URL of its own private
# schema (PostgreSQL), key prefix (Redis) or database (MongoDB), dropped afterwards. Only what
# the test created is removed: nothing else on the server is touched.

import contextlib  # noqa: E402 - kept with the section it serves
import uuid  # noqa: E402

SERVICE_ENV = {
    "postgres": "TRIALBOOK_TEST_POSTGRES_URL",
    "redis": "TRIALBOOK_TEST_REDIS_URL",
    "mongo": "TRIALBOOK_TEST_MONGO_URL",
}
BACKENDS = ["sqlite", "postgres", "redis", "mongo"]
OPTIONAL_BACKENDS = ["mysql"] if os.environ.get("TRIALBOOK_TEST_MYSQL_URL") else []
"""Tested only when their URL is set (``TRIALBOOK_TEST_MYSQL_URL``, e.g.
``mysql+pymysql://root@127.0.0.1:3306/mysql``): not required, also not under CI, where their
tests are deselected (never collected) rather than skipped."""


def service_url(name: str) -> str:
    """The server URL of a service, or skip (fail under CI) when none is configured."""
    var = SERVICE_ENV[name]
    url = os.environ.get(var, "")
    need(bool(url), f"no {name} server: set {var} (scripts/test.sh starts one)")
    return url


@contextlib.contextmanager
def backend_location(name: str, tmp_path: pathlib.Path) -> Iterator[str]:
    """A private, empty store location on backend ``name``; removed on exit."""
    token = uuid.uuid4().hex[:12]
    if name == "sqlite":
        yield str(tmp_path / f"store-{token}")
    elif name == "postgres":
        base = service_url("postgres")
        schema = f"tbtest_{token}"
        yield f"{base}{'&' if '?' in base else '?'}schema={schema}"
        _drop_pg_schema(base, schema)
    elif name == "redis":
        base = service_url("redis")
        prefix = f"tbtest:{token}:"
        yield f"{base}{'&' if '?' in base else '?'}prefix={prefix}"
        _drop_redis_prefix(base, prefix)
    elif name == "mysql":
        base = os.environ.get("TRIALBOOK_TEST_MYSQL_URL", "")
        if not base:
            pytest.skip("optional: set TRIALBOOK_TEST_MYSQL_URL to test MySQL/MariaDB")
        database = f"tbtest_{token}"
        _mysql_database(base, f"CREATE DATABASE {database}")
        yield f"{base.partition('?')[0].rsplit('/', 1)[0]}/{database}"
        _mysql_database(base, f"DROP DATABASE IF EXISTS {database}")
    elif name == "mongo":
        base = service_url("mongo")
        database = f"tbtest_{token}"
        head, _, _ = base.partition("?")
        root = head.rsplit("/", 1)[0] if head.count("/") > 2 else head
        yield f"{root}/{database}"
        _drop_mongo_database(root, database)
    else:
        raise ValueError(name)


def _drop_pg_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa

    from trialbook.storage.sql_engine import driver_url

    engine = sa.create_engine(driver_url(sa.make_url(url)))
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def _mysql_database(url: str, statement: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(statement))
    engine.dispose()


def _drop_redis_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    batch = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if batch:
        client.delete(*batch)
    client.close()


def _drop_mongo_database(root: str, database: str) -> None:
    import pymongo

    client = pymongo.MongoClient(root, serverSelectionTimeoutMS=5000)
    client.drop_database(database)
    client.close()


STORE_PASSWORD = "tb-contract-s3cret"
"""The password ``backend_store`` puts in its URL on the backends whose test servers accept one
(``store_password`` names it): PostgreSQL here uses trust authentication, so any password
connects; Redis has no ``requirepass``, and redis-py connects with a password anyway. The
MongoDB wire-protocol test server (mongoeco) has no users, so that a password there would fail
to authenticate: its URLs have none here, and ``test_mongo_password_never_shows`` (in
test_backends.py) runs the contract's password check on a private server that has a user."""

PASSWORD_BACKENDS = {"postgres", "redis"}


def with_password(name: str, location: str) -> str:
    """``location`` with :data:`STORE_PASSWORD` in its user part, on the backends of
    :data:`PASSWORD_BACKENDS` (the others' locations are returned as they are)."""
    if name not in PASSWORD_BACKENDS:
        return location
    scheme, _, rest = location.partition("://")
    user, at, host = rest.partition("@")
    if not at:
        user, host = "", rest
    assert ":" not in user, f"{location} has a password already"
    return f"{scheme}://{user}:{STORE_PASSWORD}@{host}"


@pytest.fixture(params=BACKENDS + OPTIONAL_BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    """Each backend in turn: sqlite, postgres, redis, mongo (mysql when configured)."""
    return request.param


@pytest.fixture
def backend_store(backend_name: str, tmp_path: pathlib.Path):
    """A fresh store on each backend (sqlite, postgres, redis, mongo; mysql when configured),
    opened from a URL with a password where the test server takes one (:func:`with_password`),
    closed and dropped after."""
    from trialbook.storage import open_store

    with backend_location(backend_name, tmp_path) as location:
        store = open_store(with_password(backend_name, location))
        try:
            yield store
        finally:
            store.close()


@pytest.fixture
def store_password(backend_name: str) -> str | None:
    """The password in the URL ``backend_store`` was opened from (None: it has none)."""
    return STORE_PASSWORD if backend_name in PASSWORD_BACKENDS else None


# -- a Dask cluster for the distributed-execution tests (issue 6) ----------------------------------


def _local_cluster():
    distributed = require_module("distributed", "distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    # not the global default: a test opts in (a default client would capture dask.compute)
    return cluster, distributed.Client(cluster, set_as_default=False)


@pytest.fixture(scope="session")
def dask_client():
    """A ``distributed.Client`` of a 2-worker ``LocalCluster`` of processes (one thread each)."""
    cluster, client = _local_cluster()
    yield client
    client.close()
    cluster.close()


@pytest.fixture
def own_dask_client():
    """Like ``dask_client``, a cluster of the test's own: for tests that kill its workers."""
    cluster, client = _local_cluster()
    yield client
    client.close()
    cluster.close()


@pytest.fixture(params=["postgres", "redis", "mongo"])
def server(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Any]:
    """Each server in turn (PostgreSQL, Redis, MongoDB), private to the test: a test may stop,
    kill or restart it (tests/servers.py); it is stopped and removed after the test."""
    from servers import private_server

    started = private_server(request.param, tmp_path)
    try:
        yield started
    finally:
        started.close()
