"""Who opens a store closes it (issue 20, item 11): a store, and every object that opens one from
a location (a session, a graph experiment, the web UI's server, a task experiment and its UI,
the commands of the CLI), closes its connections; an object given an open store leaves it open.

Each test opens and closes many times and counts the connections of *this* process to the
server before and after, so tests of other processes sharing the servers do not disturb it:
PostgreSQL by the ``application_name`` the URL sets (``pg_stat_activity``), Redis by the
``client_name`` the URL sets (``CLIENT LIST``), MongoDB by this process's TCP sockets to the
server's port (its wire server has no per-client list), SQLite by this process's open files of
the store.
"""

from __future__ import annotations

import gc
import os
import pathlib
import re
import time
import urllib.parse
import uuid
import warnings
from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner

from conftest import BACKENDS, backend_location, require_module
from trialbook import Experiment, Session, create_session
from trialbook.cli import cli
from trialbook.storage import open_store
from trialbook.storage.base import ClosingStore
from trialbook.storage.urls import with_param

psutil = require_module("psutil", "test")

CYCLES = 50
"""Open/close cycles of a store, a session, a graph experiment: a leak of one connection per
cycle shows as 50 more."""
SERVER_CYCLES = 10
"""Cycles of what starts a server or runs commands (each takes a fraction of a second)."""


class Connections:
    """Counts this process's connections to one store location's server."""

    def __init__(self, backend: str, location: str) -> None:
        self.backend = backend
        self.marker = f"tbclose{uuid.uuid4().hex[:10]}"
        if backend == "postgres":
            self.location = with_param(location, "application_name", self.marker)
        elif backend == "redis":
            self.location = with_param(location, "client_name", self.marker)
        else:
            self.location = location

    def count(self) -> int:
        """How many connections this process has open to the store's server (or file)."""
        if self.backend == "postgres":
            return _pg_count(self.location, self.marker)
        if self.backend == "redis":
            return _redis_count(self.location, self.marker)
        if self.backend == "mongo":
            port = urllib.parse.urlsplit(self.location).port or 27017
            return sum(
                1
                for c in psutil.Process().net_connections(kind="tcp")
                if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
            )
        folder = os.path.realpath(self.location)
        return sum(1 for f in psutil.Process().open_files() if f.path.startswith(folder))

    def settle(self, expected: int) -> int:
        """The count once it is at most ``expected``: a server notices a closed connection a
        moment after the client closed it (polled, with a generous deadline)."""
        deadline = time.monotonic() + 30
        count = self.count()
        while count > expected and time.monotonic() < deadline:
            time.sleep(0.05)
            count = self.count()
        return count


def _pg_count(location: str, marker: str) -> int:
    import sqlalchemy as sa

    from trialbook.storage.sql_engine import driver_url

    base = os.environ["TRIALBOOK_TEST_POSTGRES_URL"]
    engine = sa.create_engine(driver_url(sa.make_url(base)), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :m"),
                    {"m": marker},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _redis_count(location: str, marker: str) -> int:
    import redis

    client = redis.Redis.from_url(os.environ["TRIALBOOK_TEST_REDIS_URL"], socket_timeout=5)
    try:
        return sum(1 for c in client.client_list() if c.get("name") == marker)
    finally:
        client.close()
        client.connection_pool.disconnect()


@pytest.fixture(params=BACKENDS)
def place(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Connections]:
    """A private store location on each backend, with its counter of connections."""
    with backend_location(request.param, tmp_path) as location:
        yield Connections(request.param, location)


def cycles(
    place: Connections, open_and_close: Callable[[str], object], count: int = CYCLES
) -> None:
    """Run ``open_and_close(location)`` ``count`` times; no connection may be left behind.

    The objects it returns are kept alive until the count, so that only their closing, not
    the garbage collector, can release their connections.
    """
    with open_store(place.location) as store:  # the store exists: later openings only read
        assert place.count() >= 1, "the counter does not see an open store's connection"
        store.list_experiments()
    before = place.settle(0)
    kept = [open_and_close(place.location) for _ in range(count)]
    assert place.settle(before) == before, (
        f"{place.backend}: {place.count() - before} connection(s) left open after {count} "
        "cycles of opening and closing"
    )
    assert len(kept) == count


def test_a_store_closes_its_connections(place: Connections) -> None:
    def cycle(location: str) -> object:
        store = open_store(location)
        store.list_experiments()
        store.close()
        store.close()  # closing twice is harmless
        return store

    cycles(place, cycle)


def test_a_store_is_a_context_manager(place: Connections) -> None:
    def cycle(location: str) -> object:
        with open_store(location) as store:
            store.find_experiment("nothing")
        return store

    cycles(place, cycle)


def test_a_session_closes_the_store_it_opened(place: Connections) -> None:
    def cycle(location: str) -> object:
        with create_session(location) as session:
            session.ls()
        return session

    cycles(place, cycle)


def test_a_graph_experiment_closes_the_store_it_opened(place: Connections) -> None:
    def cycle(location: str) -> object:
        with Experiment("closing", backend=location) as ex:
            a = ex.parameter("a", default=1)
            ex.result(lambda a: a + 1)(a).compute(seed=0)
        return ex

    cycles(place, cycle)


def test_the_commands_close_their_store(place: Connections) -> None:
    def cycle(location: str) -> object:
        for args in (["ls"], ["runs", "closing"], ["gc", "--dry-run"]):
            result = CliRunner().invoke(cli, [*args, "--store", location])
            assert result.exit_code in (0, 1), result.output

    cycles(place, cycle, SERVER_CYCLES)


def test_the_ui_server_closes_the_store_it_opened(place: Connections) -> None:
    require_module("uvicorn", "ui")
    from trialbook.web import serve

    def cycle(location: str) -> object:
        with serve(location, port=0) as server:
            assert server.port > 0
        return server

    cycles(place, cycle, SERVER_CYCLES)


def test_a_task_experiment_and_its_ui_close_their_stores(
    place: Connections, tmp_path: pathlib.Path
) -> None:
    require_module("uvicorn", "ui")
    from trialbook import experiment

    def cycle(location: str) -> object:
        with experiment(tmp_path / "wd", "closing", store=location, port=0) as xp:
            assert xp.server is not None
        return xp

    cycles(place, cycle, SERVER_CYCLES)


def test_an_object_given_an_open_store_leaves_it_open(place: Connections) -> None:
    require_module("uvicorn", "ui")
    from trialbook import experiment
    from trialbook.web import serve

    with open_store(place.location) as store:
        with Session(store) as session:
            session.create_experiment("given")
        with create_session(store) as session:
            session.ls()
        with Experiment("graph", backend=store):
            pass
        with serve(store, port=0):
            pass
        with experiment(pathlib.Path("wd"), "tasks", store=store, port=0):
            pass
        names = [e.name for e in store.list_experiments()]  # still open
    assert names == ["given", "graph", "tasks"]


def test_a_redis_store_leaves_a_given_pool_open(tmp_path: pathlib.Path) -> None:
    redis = require_module("redis", "redis")
    with backend_location("redis", tmp_path) as location:
        url, _, query = location.partition("?")
        prefix = urllib.parse.parse_qs(query)["prefix"][0]
        pool = redis.ConnectionPool.from_url(url)
        try:
            client = redis.Redis(connection_pool=pool)
            for _ in range(3):
                with open_store(pool, prefix=prefix) as store:
                    store.create_experiment(f"e{uuid.uuid4().hex[:6]}")
                assert client.ping()  # the pool still works after the store closed
            with open_store(client, prefix=prefix) as store:
                assert len(store.list_experiments()) == 3
            assert client.ping()
        finally:
            pool.disconnect()


def test_trialbook_run_closes_the_experiments_its_script_created(tmp_path: pathlib.Path) -> None:
    """A script under `trialbook run` (run in this process) leaves no store open: its
    experiments are closed when it ends, as the end of its process would close them."""
    from trialbook.graph.script import run_script

    store = tmp_path / "store"
    script = tmp_path / "train.py"
    script.write_text(
        "import trialbook\n"
        f"ex = trialbook.Experiment('train', backend={str(store)!r})\n"
        "a = ex.parameter('a')\n"
        "@ex.result\n"
        "def twice(a):\n"
        "    return 2 * a\n"
        "node = twice(a)\n"
    )
    place = Connections("sqlite", str(store))
    kept = [run_script(script, [f"a={i}"]) for i in range(SERVER_CYCLES)]
    assert [trials[0].result for trials in kept] == [2 * i for i in range(SERVER_CYCLES)]
    assert place.count() == 0


def test_a_store_collected_unclosed_says_so(tmp_path: pathlib.Path) -> None:
    """Like an unclosed file, a store collected with its connections open warns (on every
    Python: the suite turns the warning into an error, so a test that leaks a store fails)."""
    store = open_store(tmp_path / "s")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del store
        gc.collect()
        for warning in caught:  # the warning keeps the store (its source): close it here
            if isinstance(warning.source, ClosingStore):
                warning.source.close()
    said = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert any(re.match(r"unclosed store SqliteStore\(.*close what you open", m) for m in said)
    closed = open_store(tmp_path / "s")
    closed.close()
    del closed
    gc.collect()  # no warning: it was closed
