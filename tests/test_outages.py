"""Outages of a store's server (issues 18 and 16): a short one costs a pause and nothing else;
a longer one than the retry budget raises StoreUnavailableError (never a driver's exception)
and the same store carries on once the server is back. Every test takes down a private server
of its own (tests/servers.py), never the shared ones."""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import pytest
from tests.conftest import backend_location

import trialbook
from races import wait_until
from servers import AnswerLosingProxy, PrivatePostgres, Server, private_server
from trialbook.errors import ConfigError, StorageError, StoreUnavailableError
from trialbook.storage import RunRecord, open_store
from trialbook.testing import metric_chunk

ROOT = pathlib.Path(__file__).resolve().parents[1]


def write_run(store, experiment_id: int) -> int:
    """What a trial does when it ends: a new run id, then the run with a metric; its id."""
    (run_id,) = store.allocate_run_ids(experiment_id, 1)
    record = RunRecord(run_id, fields={"x": trialbook.codecs.encode(run_id)})
    store.write_runs(experiment_id, [record], [metric_chunk(run_id, "m", [float(run_id)] * 3)])
    return run_id


@contextlib.contextmanager
def restart_once_retrying(server: Server) -> Iterator[None]:
    """Restart ``server`` as soon as an operation of a store reports that it is retrying (the
    warning of trialbook.storage.retry): the outage lasts until a writer met it."""
    retrying = threading.Event()

    class Signal(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            retrying.set()

    handler = Signal(logging.WARNING)
    logger = logging.getLogger("trialbook.storage.retry")
    logger.addHandler(handler)
    failures: list[BaseException] = []

    def restart() -> None:
        try:
            if retrying.wait(120):
                server.start()
        except BaseException as exc:  # reported by the test
            failures.append(exc)

    thread = threading.Thread(target=restart)
    thread.start()
    try:
        yield
    finally:
        retrying.set()
        thread.join()
        logger.removeHandler(handler)
    assert not failures, failures
    assert retrying.is_set()


def test_a_short_outage_loses_nothing(server: Server, closing) -> None:
    """The server goes away between two trials and comes back while the next one waits: no
    error, every run is stored."""
    store = closing(open_store(server.url))
    info = store.create_experiment("outage")
    written = [write_run(store, info.id) for _ in range(3)]
    server.stop()
    with restart_once_retrying(server):
        written += [write_run(store, info.id) for _ in range(3)]
    assert [r.run_id for r in store.read_runs(info.id)] == written
    assert sorted(store.read_metrics(info.id, "m", written)) == written


def _with_password(server: Server) -> str:
    if isinstance(server, PrivatePostgres):  # trust authentication: any password connects
        return server.url.replace("postgres@", "postgres:s3cret@")
    if server.url.startswith("redis"):  # no requirepass: redis-py sends it, Redis accepts it
        return server.url.replace("redis://", "redis://:s3cret@")
    return server.url


def test_an_outage_past_the_budget_raises_then_the_same_store_carries_on(
    server: Server, closing
) -> None:
    """``?retry_seconds=`` in the URL bounds the wait; the error names the server and the
    operation, without the password, and keeps the driver's exception as its cause; once the
    server is back the same store object writes again (it reconnects by itself)."""
    store = closing(open_store(_with_password(server) + "?retry_seconds=1"))
    assert store.retry_policy.seconds == 1.0
    info = store.create_experiment("outage")
    before = [write_run(store, info.id) for _ in range(2)]
    server.stop()
    with pytest.raises(StoreUnavailableError, match="allocate_run_ids") as caught:
        write_run(store, info.id)
    message = str(caught.value)
    assert f"127.0.0.1:{server.port}" in message and store.backend_label in message
    assert "s3cret" not in message
    assert caught.value.__cause__ is not None
    assert not type(caught.value.__cause__).__module__.startswith("trialbook")
    server.start()
    after = write_run(store, info.id)
    assert [r.run_id for r in store.read_runs(info.id)] == [*before, after]


WRITER = textwrap.dedent(
    """
    import pathlib, sys
    from trialbook.storage import RunRecord, open_store
    from trialbook.testing import metric_chunk
    import trialbook

    url, experiment_id, out = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])
    acks = open(out / "acks", "a")
    with open_store(url, retry_seconds=2) as store:
        try:
            for _ in range(100_000):
                (run_id,) = store.allocate_run_ids(experiment_id, 1)
                record = RunRecord(run_id, fields={"x": trialbook.codecs.encode(run_id)})
                chunk = metric_chunk(run_id, "m", [1.0, 2.0])
                store.write_runs(experiment_id, [record], [chunk])
                print(run_id, file=acks, flush=True)  # acknowledged by the server
            (out / "status").write_text("finished")
        except Exception as exc:
            (out / "status").write_text(f"{type(exc).__name__}: {exc}")
    """
)


def test_writers_of_a_killed_server_get_an_error_and_keep_what_was_acknowledged(
    server: Server, tmp_path: pathlib.Path, closing
) -> None:
    """Four processes write runs; the server is killed: each one gets StoreUnavailableError
    (no hang, no driver exception) and every run it was told was written is there after the
    restart (PostgreSQL: its WAL; Redis: its append-only file; mongoeco: its SQLite file)."""
    store = closing(open_store(server.url))
    info = store.create_experiment("killed")
    outs = [tmp_path / f"writer-{i}" for i in range(4)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    procs = []
    for out in outs:
        out.mkdir()
        args = [sys.executable, "-c", WRITER, server.url, str(info.id), str(out)]
        procs.append(subprocess.Popen(args, env=env))
    try:

        def under_way() -> bool:
            assert all(proc.poll() is None for proc in procs), "a writer ended before the kill"
            return all(
                (out / "acks").exists() and len((out / "acks").read_text().split()) >= 3
                for out in outs
            )

        wait_until(under_way, "every writer has written 3 runs", timeout=120)
        server.kill()
        for proc in procs:
            assert proc.wait(timeout=120) == 0
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    for out in outs:
        status = (out / "status").read_text()
        assert status.startswith("StoreUnavailableError: "), status
        assert f"127.0.0.1:{server.port}" in status
    server.start()
    acknowledged = {int(word) for out in outs for word in (out / "acks").read_text().split()}
    stored = {r.run_id for r in store.read_runs(info.id)}
    assert acknowledged <= stored
    assert store.allocate_run_ids(info.id, 1)[0] > max(stored)


def test_the_ui_answers_503_while_the_store_is_unreachable(tmp_path: pathlib.Path, closing) -> None:
    """The JSON API says "store unreachable, retrying" with 503 (the page shows a banner);
    the first request after the server is back succeeds."""
    from starlette.testclient import TestClient

    from trialbook.web.app import create_app

    redis_server = private_server("redis", tmp_path)
    try:
        store = closing(open_store(redis_server.url, retry_seconds=0.5))
        store.create_experiment("shown")
        headers = {"Authorization": "Bearer t"}
        with TestClient(create_app(store, token="t")) as client:
            redis_server.stop()
            down = client.get("/api/experiments", headers=headers)
            assert down.status_code == 503
            assert down.json()["error"] == "store unreachable, retrying"
            assert f"127.0.0.1:{redis_server.port}" in down.json()["detail"]
            redis_server.start()
            up = client.get("/api/experiments", headers=headers)
            assert up.status_code == 200
            assert [e["name"] for e in up.json()["experiments"]] == ["shown"]
    finally:
        redis_server.close()


def test_retry_seconds_is_an_option_of_sessions_and_urls() -> None:
    with trialbook.create_session("sqlite:///:memory:", retry_seconds=3) as session:
        assert session.store.retry_policy.seconds == 3.0
    with pytest.raises(ConfigError, match=r"retry_seconds must be a number of seconds >= 0"):
        open_store("postgresql://u@127.0.0.1:1/db?retry_seconds=soon")
    with pytest.raises(ConfigError, match=r"got -2"):
        trialbook.create_session("sqlite:///:memory:", retry_seconds=-2)


def test_an_unreachable_server_at_open_is_reported_at_once() -> None:
    """Opening is not retried: a wrong URL or a server that is down is told without waiting
    for the retry budget."""
    with pytest.raises(StorageError, match=r"127\.0\.0\.1:1\b") as caught:
        open_store("redis://127.0.0.1:1/0", retry_seconds=600)
    assert not isinstance(caught.value, StoreUnavailableError)


@pytest.mark.parametrize("name", ["postgres", "redis"])
def test_a_write_whose_answer_was_lost_is_applied_once(
    name: str, tmp_path: pathlib.Path, closing
) -> None:
    """The server applies a write but its answer is lost with the connection: the retry is
    recognised by the record's writer token, accepted, and the run moves one version."""
    with backend_location(name, tmp_path) as location:
        port = int(location.split("://")[1].split("/")[0].rsplit(":", 1)[1])
        proxy = AnswerLosingProxy(port)
        try:
            store = closing(open_store(location.replace(f":{port}/", f":{proxy.port}/")))
            info = store.create_experiment("lost")
            run_id = write_run(store, info.id)
            (record,) = store.read_runs(info.id)
            assert record.version == 1
            record.writer = "writer-token"
            record.fields["x"] = trialbook.codecs.encode("changed")
            proxy.lose_next_answer()
            store.write_runs(info.id, [record])  # applied, unanswered, retried: no conflict
            assert proxy.lost.is_set()
            (stored,) = store.read_runs(info.id)
            assert (stored.run_id, stored.version) == (run_id, 2)
            assert trialbook.codecs.decode(stored.fields["x"]) == "changed"
            store.close()
        finally:
            proxy.close()


def test_a_ui_that_opens_its_store_gives_up_sooner_unless_the_url_says(tmp_path) -> None:
    """`trialbook ui URL` (serve with a location) retries an unreachable server for 5 s, not
    30, so its pages say "store unreachable" soon; the URL's own retry_seconds wins, and a
    store given open keeps its policy."""
    from trialbook.web import serve
    from trialbook.web.server import UI_RETRY_SECONDS

    location = str(tmp_path / "store")
    with serve(location, port=0) as server:
        assert server._owned_store.retry_policy.seconds == UI_RETRY_SECONDS == 5.0
    with serve(f"sqlite:///{tmp_path / 'file.db'}?retry_seconds=2", port=0) as server:
        assert server._owned_store.retry_policy.seconds == 2.0
    with open_store(location, retry_seconds=12) as store, serve(store, port=0):
        assert store.retry_policy.seconds == 12.0
