"""The team backends against real servers: the store contract on every backend, concurrent
writers, a server killed mid-write, URL dispatch and error wording, and a session end-to-end."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator

import pytest
from tests.conftest import (
    BACKENDS,
    OPTIONAL_BACKENDS,
    Closing,
    backend_location,
    need,
    require_module,
    service_url,
)

import trialbook
from races import wait_until
from trialbook.errors import ConfigError, StorageError
from trialbook.storage import open_store
from trialbook.storage.records import RunRecord
from trialbook.storage.urls import public_url
from trialbook.testing import StoreContract, metric_chunk


class TestBackendContract(StoreContract):
    @pytest.fixture
    def store(self, backend_store):
        return backend_store


def test_nan_and_infinities_survive(backend_store) -> None:
    """JSON is stored as text on every backend, so NaN and infinities come back exactly."""
    import math

    store = backend_store
    info = store.create_experiment("nan")
    record = RunRecord(
        run_id=1,
        params={"lr": math.nan, "hi": math.inf},
        fields={"xs": [math.nan, -math.inf]},
        result=-math.inf,
    )
    store.write_runs(info.id, [record], [metric_chunk(1, "m", [math.nan, math.inf])])
    (back,) = store.read_runs(info.id)
    assert math.isnan(back.params["lr"]) and back.params["hi"] == math.inf
    assert math.isnan(back.fields["xs"][0]) and back.fields["xs"][1] == -math.inf
    assert back.result == -math.inf
    values = store.read_metrics(info.id, "m", [1])[1].values
    assert math.isnan(values[0]) and values[1] == math.inf


class TestSqlCorePathContract(StoreContract):
    """SqlStore's SQLAlchemy Core path, the one MySQL/MariaDB and other databases take (the
    compiled hot statements are for PostgreSQL and SQLite only)."""

    @pytest.fixture
    def store(self, tmp_path: pathlib.Path):
        from sqlalchemy.dialects import mysql

        from trialbook.storage.sql import SqlStore
        from trialbook.storage.sql_schema import HotStatements

        store = SqlStore(f"sqlite+pysqlite:///{tmp_path / 'core.db'}")
        store._db.hot = HotStatements(mysql.dialect(), None)
        assert not store._db.hot.supported and store._db.one_statement is None
        yield store
        store.close()

    @pytest.fixture
    def store_password(self) -> None:
        return None  # SQLite has no passwords


# -- concurrency: 4 processes x 25 runs -> 100 unique ids ----------------------------------------
# The processes allocate in rounds: all four wait at a barrier, then each allocates one id at
# once (a race on the allocator every round); a round ends when all four wrote. So round k
# hands out exactly ids 4k+1..4k+4, one to each process: that, and no id twice, shows the
# allocations really were concurrent and still unique.


def _writer(
    location: str, experiment_id: int, count: int, barrier, batch: int = 1
) -> tuple[int, list[int]]:
    """``count`` runs, in rounds of ``batch`` runs (one id allocation and one write each)
    started together at the barrier."""
    store = open_store(location)
    ids: list[int] = []
    try:
        for _ in range(count // batch):
            barrier.wait(120)
            run_ids = list(store.allocate_run_ids(experiment_id, batch))
            store.write_runs(
                experiment_id,
                [RunRecord(run_id=i, params={"pid": os.getpid()}, status="done")
                 for i in run_ids],
                [metric_chunk(i, "loss", [1.0]) for i in run_ids],
            )  # fmt: skip
            ids.extend(run_ids)
    finally:
        store.close()
    return os.getpid(), ids


def _one_id_per_round(ids_of_each: list[list[int]]) -> None:
    """Each process got one id of each round of four (ids 1..4, 5..8, ...)."""
    for ids in ids_of_each:
        assert [(i - 1) // 4 for i in ids] == list(range(len(ids))), ids


@pytest.mark.parametrize("backend", BACKENDS + OPTIONAL_BACKENDS)
def test_concurrent_writers_get_unique_ids(backend: str, tmp_path: pathlib.Path) -> None:
    with backend_location(backend, tmp_path) as location:
        store = open_store(location)
        info = store.create_experiment("shared")
        ctx = multiprocessing.get_context("spawn")
        with ctx.Manager() as manager, ctx.Pool(4) as pool:
            barrier = manager.Barrier(4)
            results = pool.starmap(_writer, [(location, info.id, 25, barrier)] * 4)
        ids = sorted(i for _, part in results for i in part)
        assert ids == list(range(1, 101))
        assert len({pid for pid, _ in results}) == 4  # four processes, at the barrier together
        _one_id_per_round([part for _, part in results])
        runs = store.read_runs(info.id)
        assert [r.run_id for r in runs] == ids
        assert {r.params["pid"] for r in runs} == {pid for pid, _ in results}
        assert store.metric_names(info.id) == {"loss": 100}
        store.close()


def _trial_writer(location: str, count: int, barrier, rounds: bool = True) -> list:
    """``count`` trials of one shared graph experiment, opened by every process at once, one
    trial per round of the barrier (``rounds=False``: all in a row after the start)."""
    barrier.wait(120)
    ex = trialbook.Experiment("shared_trials", backend=location)
    a = ex.parameter("a")

    @ex.persist
    def square(a):
        return a * a

    @ex.result
    def report(x):
        ex.save_metric("x", epoch=0, value=float(x))
        return x

    node = report(square(a))
    done = []
    try:
        for i in range(count):
            value = os.getpid() * 1000 + i
            ex.set_parameters(a=value)
            if rounds:
                barrier.wait(120)
            out = node.compute(seed=i)
            done.append((ex.trial_id, value, out))
    finally:
        ex.store.close()
    return done


@pytest.mark.parametrize("backend", BACKENDS + OPTIONAL_BACKENDS)
def test_concurrent_trials_get_unique_ids(
    backend: str, tmp_path: pathlib.Path, closing: Closing
) -> None:
    """4 processes x 25 trials of one graph experiment, in rounds of one trial each started
    together: 100 trials with ids 1..100 (one of each round per process), nothing lost: each
    trial's parameters, result, persisted value and metric are its own."""
    with backend_location(backend, tmp_path) as location:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Manager() as manager, ctx.Pool(4) as pool:
            barrier = manager.Barrier(4)
            results = pool.starmap(_trial_writer, [(location, 25, barrier)] * 4)
        trials = {trial_id: (a, out) for part in results for trial_id, a, out in part}
        assert sorted(trials) == list(range(1, 101))
        _one_id_per_round([[trial_id for trial_id, _, _ in part] for part in results])
        assert all(out == a * a for a, out in trials.values())
        ex = closing(trialbook.Experiment("shared_trials", backend=location))
        assert ex.trial_id == 100
        history = ex.get_history()
        assert len(history) == 100
        for trial_id, (a, out) in trials.items():
            assert ex.get_parameters(trial_id=trial_id) == {"a": a}
            assert ex.get_persisted("square", trial_id=trial_id) == out
        points = ex.load_metric("x", trial_id=list(trials))
        assert {t: points[t].tolist() for t in trials} == {
            t: [float(out)] for t, (_, out) in trials.items()
        }
        ex.store.close()


class _UIPoller:
    """A web UI client that polls the runs table of ``experiment`` (with its total) from a
    thread until stopped, over its own store, recording every answer's status code (issue 16:
    the UI keeps answering while many processes write)."""

    def __init__(self, location: str, experiment: str) -> None:
        require_module("starlette", "ui")
        from starlette.testclient import TestClient

        from trialbook.web import create_app

        self.store = open_store(location)
        self.client = TestClient(create_app(self.store, token="t"),
                                 headers={"Authorization": "Bearer t"})  # fmt: skip
        self.url = f"/api/experiments/{experiment}/runs"
        self.codes: list[int] = []
        self.totals: list[int] = []
        self.stop = threading.Event()
        self.polled = threading.Event()
        self.thread = threading.Thread(target=self._poll)

    def _poll(self) -> None:
        while True:
            answer = self.client.get(
                self.url, params={"limit": 50, "order_by": "run_id", "descending": "true"}
            )
            self.codes.append(answer.status_code)
            if answer.status_code == 200:
                self.totals.append(answer.json()["total"])
            self.polled.set()
            if self.stop.wait(0.25):  # pacing, so the writers keep the cores
                return

    def __enter__(self) -> _UIPoller:
        self.client.__enter__()
        self.thread.start()
        assert self.polled.wait(60), "the UI never answered"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(60)
        self.client.__exit__(None, None, None)
        self.store.close()


@pytest.mark.parametrize("backend", BACKENDS + OPTIONAL_BACKENDS)
def test_many_writers_while_the_ui_polls(backend: str, tmp_path: pathlib.Path) -> None:
    """8 processes x 200 runs (in batches of 25) and 8 x 200 graph trials of one experiment
    each, while a UI client polls its runs table: exactly 1,600 runs and 1,600 trials with
    distinct ids 1..1600, and every poll answered 200 with a total that only grows."""
    with backend_location(backend, tmp_path) as location:
        store = open_store(location)
        info = store.create_experiment("many")
        ex = trialbook.Experiment("shared_trials", backend=location)  # so the UI finds it
        ex.store.close()
        ctx = multiprocessing.get_context("spawn")
        with ctx.Manager() as manager, ctx.Pool(8) as pool:
            with _UIPoller(location, "many") as ui:
                barrier = manager.Barrier(8)
                results = pool.starmap(_writer, [(location, info.id, 200, barrier, 25)] * 8)
            with _UIPoller(location, "shared_trials") as ui_trials:
                barrier = manager.Barrier(8)
                trials = pool.starmap(_trial_writer, [(location, 200, barrier, False)] * 8)
        for poller in (ui, ui_trials):
            assert poller.codes and set(poller.codes) == {200}, poller.codes
            assert poller.totals == sorted(poller.totals)
        ids = sorted(i for _, part in results for i in part)
        assert ids == list(range(1, 1601))
        assert len({pid for pid, _ in results}) == 8
        assert [r.run_id for r in store.read_runs(info.id)] == ids
        assert store.metric_names(info.id) == {"loss": 1600}
        trial_ids = sorted(trial_id for part in trials for trial_id, _, _ in part)
        assert trial_ids == list(range(1, 1601))
        assert all(out == a * a for part in trials for _, a, out in part)
        shared = store.find_experiment("shared_trials")
        assert shared is not None and shared.runs == 1600
        assert ui_trials.totals[-1] <= 1600
        store.close()


# -- "open, else create" from several processes at once (issue 18) ------------------------------
# Each process looks the name up, finds nothing, and waits at a barrier until all of them found
# nothing: only then do they create it, all at once. The store lets one create it and refuses
# the others, which open it instead (each process says which happened to it).


def _open_or_create(location: str, barrier, count: int) -> tuple[int, str, str, list[int]]:
    from trialbook.errors import ExperimentExistsError

    session = trialbook.create_session(location)
    store = session.store
    find, create = store.find_experiment, store.create_experiment
    outcome = []

    def find_then_wait(name: str):
        info = find(name)
        if not outcome:  # the first look: everybody must have found nothing
            outcome.append("looked" if info is None else "found")
            barrier.wait(120)
        return info

    def create_or_refused(name: str, **options):
        try:
            info = create(name, **options)
        except ExperimentExistsError:
            outcome.append("refused")
            raise
        outcome.append("created")
        return info

    store.find_experiment = find_then_wait
    store.create_experiment = create_or_refused
    try:
        experiment = session.create_experiment("team", if_exists="append")
        mine = [run.id for run in experiment.add_runs(pid=os.getpid(), i=list(range(count)))]
        square = lambda run: run.fields.update(square=run.params.i**2)  # noqa: E731
        experiment.execute(square, run_ids=mine).persist()  # not the runs others loaded here
    finally:
        session.close()
    return os.getpid(), "/".join(outcome), experiment.id_experiment, mine


@pytest.mark.parametrize("backend", BACKENDS + OPTIONAL_BACKENDS)
def test_processes_open_or_create_one_experiment_at_once(
    backend: str, tmp_path: pathlib.Path, closing: Closing
) -> None:
    """4 processes call create_experiment("team", if_exists="append") together, each after
    finding no such experiment: one creates it, the other three open it; all their runs are in
    that one experiment, with distinct ids, and none is lost."""
    with backend_location(backend, tmp_path) as location:
        trialbook.create_session(location).close()  # the store exists before they start
        ctx = multiprocessing.get_context("spawn")
        with ctx.Manager() as manager, ctx.Pool(4) as pool:
            barrier = manager.Barrier(4)
            results = pool.starmap(_open_or_create, [(location, barrier, 3)] * 4)
        assert len({pid for pid, *_ in results}) == 4
        outcomes = sorted(outcome for _, outcome, _, _ in results)
        assert outcomes == ["looked/created"] + ["looked/refused"] * 3
        assert len({id_experiment for _, _, id_experiment, _ in results}) == 1
        session = closing(trialbook.create_session(location))
        assert session.ls()["name"].tolist() == ["team"]
        stored = session.load_experiment("team")
        assert stored.id_experiment == results[0][2]
        assert sorted(stored.runs) == list(range(1, 13))
        assert sorted(i for *_, ids in results for i in ids) == list(range(1, 13))
        by_pid = {pid: sorted(run.params.i for run in stored.runs.values() if run.params.pid == pid)
                  for pid, *_ in results}  # fmt: skip
        assert by_pid == {pid: [0, 1, 2] for pid, *_ in results}
        assert {run.status for run in stored.runs.values()} == {"done"}
        assert [run.fields.square for run in stored.runs.values()] == [
            run.params.i**2 for run in stored.runs.values()
        ]


# -- URL dispatch, repr, password hiding, errors --------------------------------------------------


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A port of 127.0.0.1 that refuses connections: bound by this test, never listening (so
    no other process can start listening there meanwhile)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("postgresql://ann:s3cret@127.0.0.1:{port}/db", "SQLBackend"),
        ("postgresql+psycopg://ann:s3cret@127.0.0.1:{port}/db", "SQLBackend"),
        ("redis://:s3cret@127.0.0.1:{port}/0", "RedisBackend"),
        ("mongodb://ann:s3cret@127.0.0.1:{port}/db", "MongoBackend"),
    ],
)
def test_wrong_port_is_a_clear_storage_error(url: str, label: str, refusing_port: int) -> None:
    with pytest.raises(StorageError, match=label) as info:
        open_store(url.format(port=refusing_port))
    message = str(info.value)
    assert "s3cret" not in message
    assert "127.0.0.1" in message


def test_mongo_client_without_database_is_a_config_error() -> None:
    import pymongo

    client = pymongo.MongoClient("mongodb://127.0.0.1:1/", connect=False)
    with pytest.raises(ConfigError, match=r"client\['experiments'\]"):
        open_store(client)
    client.close()
    with pytest.raises(ConfigError, match="names no database"):
        open_store("mongodb://127.0.0.1:1/")


def test_bad_sql_url_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match=r"SQLBackend.*nosuchdriver"):
        open_store("postgresql+nosuchdriver://u:pw@127.0.0.1/db")


def test_redis_pool_and_url_forms() -> None:
    import redis

    url = service_url("redis")
    pool = redis.ConnectionPool.from_url(url)
    store = open_store(pool)
    assert repr(store) == f"RedisBackend({url!r})"
    assert store.backend_label == "RedisBackend"
    store.close()
    store = open_store(url.replace("redis://", "redis://:pw@") + "?prefix=tbtest:x:")
    assert "pw" not in store.url
    assert store.prefix == "tbtest:x:"
    store.close()


def test_mongo_database_object(tmp_path: pathlib.Path) -> None:
    import pymongo

    with backend_location("mongo", tmp_path) as location:
        client = pymongo.MongoClient(location, serverSelectionTimeoutMS=5000)
        store = open_store(client.get_default_database())
        assert repr(store).startswith("MongoBackend('mongodb://")
        assert store.url.endswith("/" + client.get_default_database().name)
        store.create_experiment("x")
        assert [e.name for e in store.list_experiments()] == ["x"]
        store.close()
        client.close()


def test_postgres_url_hides_password_and_uses_schema(tmp_path: pathlib.Path) -> None:
    with backend_location("postgres", tmp_path) as location:
        store = open_store(location.replace("postgres@", "postgres:pw@"))
        assert store.backend_label == "SQLBackend"
        assert "pw" not in store.url and "pw" not in repr(store)
        assert store.schema.startswith("tbtest_")
        store.close()


def test_mongo_password_never_shows() -> None:
    """The shared MongoDB test server has no users, so the store contract opens it without a
    password: here a private one with a user runs the contract's password check, and a wrong
    password is a clear error that does not show it either."""
    password = "m0ngo-s3cret"
    proc, port = _mongoeco_server(None, MONGOECO_USER=f"ann:{password}")
    try:
        url = (
            f"mongodb://ann:{{}}@127.0.0.1:{port}/team?authSource=admin&authMechanism=SCRAM-SHA-256"
        )
        store = open_store(url.format(password))
        try:
            assert store.url == url.format("***")
            StoreContract().test_password_never_shows(store, password)
        finally:
            store.close()
        with pytest.raises(StorageError, match="Authentication failed") as info:
            open_store(url.format("wrong-" + password), connect_timeout=2)
        assert password not in str(info.value) and "ann:***@127.0.0.1" in str(info.value)
    finally:
        proc.kill()
        proc.wait()


# -- a session end-to-end on every backend --------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS + OPTIONAL_BACKENDS)
def test_session_persists_and_reloads(backend: str, tmp_path: pathlib.Path) -> None:
    import numpy as np

    with backend_location(backend, tmp_path) as location:
        session = trialbook.create_session(location)
        experiment = session.create_experiment("grid")
        for lr in (0.1, 0.2):
            with experiment.run(lr=lr) as run:
                run.fields.weights = np.arange(3.0) * lr
                run.log_metric("loss", lr * 10)
        experiment.persist()
        session.close()
        again = trialbook.create_session(location)
        loaded = again.load_experiment("grid")
        assert len(loaded.runs) == 2
        assert np.allclose(loaded.runs[2].fields.weights, [0.0, 0.2, 0.4])
        assert again.ls()["name"].tolist() == ["grid"]
        again.close()


# -- a server killed mid-write: clear error, consistent store after restart ------------------------
# Private servers listen on a port chosen free just before they start; another process may take
# it first, so a server that cannot listen there is started again on another port (Redis and
# PostgreSQL cannot choose their own port; the MongoDB test server can, and says which).


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_LOGS = itertools.count()


def _redis_server(
    directory: pathlib.Path, *options: str, tls: bool = False, port: int | None = None
) -> tuple[subprocess.Popen, int]:
    """A ``redis-server`` with ``options`` on 127.0.0.1 (on ``port`` if still free), once it
    accepts connections, and its (TLS) port."""
    for attempt in range(10):
        chosen = port if port is not None and attempt == 0 else _free_port()
        log = directory / f"redis-{next(_LOGS)}.log"
        listen = ["--port", "0", "--tls-port", str(chosen)] if tls else ["--port", str(chosen)]
        proc = subprocess.Popen(
            ["redis-server", *listen, "--bind", "127.0.0.1", "--logfile", str(log),
             "--dir", str(directory), *options],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip

        def up(proc: subprocess.Popen = proc, log: pathlib.Path = log) -> bool:
            return proc.poll() is not None or (
                log.exists() and "Ready to accept connections" in log.read_text()
            )

        wait_until(up, f"redis-server starts (its log: {log})")
        if proc.poll() is None:
            return proc, chosen
        proc.wait()  # it could not listen: the port was taken meanwhile
    raise AssertionError(f"redis-server never started: see the logs in {directory}")


def _write_until_killed(store, experiment_id: int, kill) -> int:
    """Write runs (with a large value each) while the server is killed from another thread,
    once a few writes went through: most likely in the middle of one; return the last id whose
    write returned."""
    import numpy as np

    last = 0
    under_way = threading.Event()

    def killer() -> None:
        under_way.wait(120)
        kill()

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        for _ in range(100_000):
            try:
                (run_id,) = store.allocate_run_ids(experiment_id, 1)
                store.write_runs(
                    experiment_id,
                    [RunRecord(run_id, fields={"w": trialbook.codecs.encode(np.ones(50_000))})],
                    [metric_chunk(run_id, "m", [float(run_id)] * 10)],
                )
            except StorageError as exc:
                error = exc
                break
            last = run_id
            if last == 3:
                under_way.set()
        else:
            raise AssertionError("the killed server kept answering")
    finally:
        under_way.set()
        thread.join()
    assert store.backend_label in str(error)
    assert last >= 3  # writes were under way when the server died
    return last


def _check_consistent(store, experiment_id: int, last: int) -> None:
    runs = store.read_runs(experiment_id)
    ids = [r.run_id for r in runs]
    assert ids == list(range(1, len(ids) + 1))
    assert len(ids) >= last
    series = store.read_metrics(experiment_id, "m", ids)
    assert sorted(series) == ids
    assert all(len(s) == 10 for s in series.values())
    assert all(trialbook.codecs.decode(r.fields["w"]).shape == (50_000,) for r in runs)
    assert store.allocate_run_ids(experiment_id, 1)[0] > len(ids)


def test_redis_killed_mid_write(tmp_path: pathlib.Path) -> None:
    need(shutil.which("redis-server") is not None, "redis-server is not installed")
    durable = ("--save", "", "--appendonly", "yes", "--appendfsync", "always")
    proc, port = _redis_server(tmp_path, *durable)
    try:
        store = open_store(f"redis://127.0.0.1:{port}/0", retry_seconds=1)  # test_outages.py
        info = store.create_experiment("crash")
        last = _write_until_killed(store, info.id, lambda: proc.send_signal(signal.SIGKILL))
        store.close()  # its connections went with the server
        proc.wait()
        # restarts from its append-only file (on the same port unless it was taken meanwhile)
        proc, port = _redis_server(tmp_path, *durable, port=port)
        store = open_store(f"redis://127.0.0.1:{port}/0")
        _check_consistent(store, info.id, last)
        store.close()
    finally:
        proc.kill()
        proc.wait()


def _pg_bin() -> pathlib.Path | None:
    for candidate in sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin")):
        if (candidate / "pg_ctl").exists():
            return candidate
    return None


def _pg_start(start, port: int, log: pathlib.Path) -> int:
    """``start(port)`` until it succeeds: on another port when this one was taken by another
    process, on the same one while the children of a killed server still exit; return the
    port."""

    def started() -> bool:
        nonlocal port
        seen = log.stat().st_size if log.exists() else 0
        try:
            start(port)
        except subprocess.CalledProcessError:
            with open(log, "rb") as f:
                f.seek(seen)
                if b"Address already in use" in f.read():
                    port = _free_port()
            return False
        return True

    wait_until(started, f"PostgreSQL starts (its log: {log})")
    return port


def test_postgres_killed_mid_write(tmp_path: pathlib.Path) -> None:
    bindir = _pg_bin()
    need(bindir is not None and os.geteuid() == 0, "PostgreSQL binaries (and root) needed")
    data = pathlib.Path(tempfile.mkdtemp(prefix="tbtest-pg-", dir="/tmp"))  # short socket path
    shutil.chown(data, "postgres", "postgres")
    log = data / "log"

    def as_pg(*cmd: str) -> None:
        subprocess.run(
            ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(cmd)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(port: int) -> None:
        as_pg(
            f"{bindir}/pg_ctl",
            "-D",
            str(data),
            "-w",
            "-l",
            str(log),
            "-o",
            f"'-p {port} -k {data} -c listen_addresses=127.0.0.1'",
            "start",
        )

    as_pg(f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U", "postgres")
    port = _pg_start(start, _free_port(), log)
    try:
        store = open_store(f"postgresql://postgres@127.0.0.1:{port}/postgres", retry_seconds=1)
        info = store.create_experiment("crash")
        pid = int((data / "postmaster.pid").read_text().split()[0])
        last = _write_until_killed(store, info.id, lambda: os.kill(pid, signal.SIGKILL))
        store.close()
        port = _pg_start(start, port, log)  # crash recovery replays the WAL
        store = open_store(f"postgresql://postgres@127.0.0.1:{port}/postgres")
        _check_consistent(store, info.id, last)
        store.close()
    finally:
        subprocess.run(
            [
                "su",
                "postgres",
                "-s",
                "/bin/sh",
                "-c",
                f"{bindir}/pg_ctl -D {data} stop -m immediate",
            ],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(data, ignore_errors=True)


# -- a private Redis server: unix socket, password, TLS mismatch, the seed's forms ----------------


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory):
    """A Redis server of this module only (password ``right``): ``(port, socket path)``."""
    need(shutil.which("redis-server") is not None, "redis-server is not installed")
    directory = tmp_path_factory.mktemp("redis")
    sock = directory / "r.sock"
    proc, port = _redis_server(
        directory, "--unixsocket", str(sock), "--requirepass", "right",
        "--save", "", "--appendonly", "no",
    )  # fmt: skip
    try:
        yield port, sock
    finally:
        proc.terminate()
        proc.wait()


def test_redis_unix_socket_with_password(private_redis) -> None:
    _, sock = private_redis
    store = open_store(f"unix://:right@{sock}?db=0")
    assert repr(store) == f"RedisBackend('unix://:***@{sock}?db=0')"
    info = store.create_experiment("over-a-socket")
    assert store.allocate_run_ids(info.id, 2) == range(1, 3)
    store.delete_experiment("over-a-socket")
    store.close()
    store = open_store(f"unix://{sock}?db=1&password=right&prefix=team:")
    assert store.url == f"unix://{sock}?db=1&password=***&prefix=team:"
    store.close()


@pytest.mark.parametrize(
    "url",
    [
        "redis://:wrong@127.0.0.1:{port}/0",
        "redis://127.0.0.1:{port}/0?password=wrong",
        "redis://127.0.0.1:{port}/0",
    ],
)
def test_redis_wrong_password_is_a_clear_storage_error(private_redis, url: str) -> None:
    """Refused at once by the server (an authentication error, nothing retried)."""
    import redis

    port, _ = private_redis
    shown = re.escape(public_url(url.format(port=port)))
    with pytest.raises(StorageError, match=rf"RedisBackend '{shown}'") as info:
        open_store(url.format(port=port))
    assert isinstance(info.value.__cause__, redis.AuthenticationError)
    assert "wrong" not in str(info.value)


def test_rediss_to_a_plain_server_fails_within_the_connect_timeout(private_redis) -> None:
    """A TLS handshake that never completes ends with the connect timeout: a timeout error
    while connecting (how long it takes is for the benchmarks)."""
    import redis

    port, _ = private_redis
    with pytest.raises(
        StorageError, match=r"RedisBackend 'rediss://:\*\*\*@127.0.0.1:\d+/0'"
    ) as info:
        open_store(f"rediss://:right@127.0.0.1:{port}/0", connect_timeout=0.5)
    assert isinstance(info.value.__cause__, redis.TimeoutError)
    assert "Timeout connecting" in str(info.value)


def test_seed_forms_on_redis(private_redis, closing: Closing) -> None:
    import redis

    port, _ = private_redis
    url = f"redis://:right@127.0.0.1:{port}/0"
    shown = f"RedisBackend('redis://:***@127.0.0.1:{port}/0')"
    ex = closing(trialbook.Experiment("redis_uri_backend", backend=url))
    assert repr(ex) == f"Experiment(id: redis_uri_backend, trial_id: 0, backend: {shown})"
    ex.store.close()
    pool = redis.ConnectionPool.from_url(url)
    ex = closing(trialbook.Experiment("redis_pool_backend", backend=pool))
    assert repr(ex) == f"Experiment(id: redis_pool_backend, trial_id: 0, backend: {shown})"
    client = redis.Redis(connection_pool=pool)
    assert open_store(client).url == f"redis://:***@127.0.0.1:{port}/0"
    assert [e.name for e in open_store(pool).list_experiments()] == [
        "redis_pool_backend",
        "redis_uri_backend",
    ]
    pool.disconnect()


def test_seed_forms_on_mongo(tmp_path: pathlib.Path, closing: Closing) -> None:
    import pymongo

    with backend_location("mongo", tmp_path) as url:
        ex = closing(trialbook.Experiment("mongo_uri_backend", backend=url))
        assert repr(ex) == (
            f"Experiment(id: mongo_uri_backend, trial_id: 0, backend: MongoBackend({url!r}))"
        )
        ex.store.close()
        client = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000)
        store = open_store(client.get_default_database())
        assert repr(store) == f"MongoBackend({url!r})"
        store.close()
        with pytest.raises(ConfigError, match="does not say which database"):
            open_store(client)
        client.close()


def test_seed_database_form_of_the_graph_experiment(
    tmp_path: pathlib.Path, closing: Closing
) -> None:
    import pymongo

    with backend_location("mongo", tmp_path) as url:
        client = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000)
        try:
            ex = closing(
                trialbook.Experiment("mongo_db_backend", backend=client.get_default_database())
            )
            assert repr(ex).endswith(f"backend: MongoBackend({url!r}))")
        finally:
            client.close()


def test_bad_urls_are_storage_errors() -> None:
    with pytest.raises(StorageError, match=r"RedisBackend: cannot use the URL.*notaport"):
        open_store("redis://127.0.0.1:notaport/0")
    with pytest.raises(StorageError, match=r"MongoBackend: cannot use the URL.*notaport"):
        open_store("mongodb://u:pw@127.0.0.1:notaport/db")
    with pytest.raises(
        StorageError, match=r"SQLBackend: cannot parse the URL 'postgresql://u:\*\*\*@.*notaport"
    ):
        open_store("postgresql://u:pw@127.0.0.1:notaport/db")


def test_postgres_unknown_database_is_a_storage_error() -> None:
    url = service_url("postgres")
    base = url.partition("?")[0].rsplit("/", 1)[0]
    with pytest.raises(StorageError, match=r"SQLBackend .*tbtest_nosuchdb.*does not exist"):
        open_store(f"{base}/tbtest_nosuchdb")


def _open_and_close(location: str, barrier) -> int:
    barrier.wait(120)
    open_store(location).close()
    return os.getpid()


def test_postgres_processes_racing_to_create_the_tables(tmp_path: pathlib.Path) -> None:
    """Four processes open the same new schema at once (released together by a barrier): all
    succeed, one set of tables."""
    with backend_location("postgres", tmp_path) as location:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Manager() as manager, ctx.Pool(4) as pool:
            barrier = manager.Barrier(4)
            pids = pool.starmap(_open_and_close, [(location, barrier)] * 4)
        assert len(set(pids)) == 4
        store = open_store(location)
        assert store.list_experiments() == []
        store.close()


@pytest.mark.parametrize("backend", ["postgres", "redis"])
def test_one_large_batch(backend: str, tmp_path: pathlib.Path) -> None:
    """More rows than one statement may carry (PostgreSQL) are written in one transaction."""
    with backend_location(backend, tmp_path) as location:
        store = open_store(location)
        info = store.create_experiment("big")
        ids = store.allocate_run_ids(info.id, 2500)
        runs = [RunRecord(run_id=i, params={"i": i}, key=f"k{i % 3}") for i in ids]
        store.write_runs(
            info.id,
            runs,
            [metric_chunk(i, "m", [1.0, 2.0]) for i in ids],
            step_hashes=[("s", f"in{i}", f"out{i}", i) for i in ids],
        )
        assert len(store.read_runs(info.id)) == 2500
        assert store.metric_names(info.id) == {"m": 5000}
        assert len(store.find_runs_by_key(info.id, "k1")) == 834
        keys = [("s", f"in{i}") for i in range(1, 2501)]
        found = store.get_step_hashes(info.id, keys)
        assert len(found) == 2500 and found["s", "in7"] == ("out7", 7)
        store.close()


def test_mongo_large_chunks_and_bundles(tmp_path: pathlib.Path) -> None:
    """Documents stay under MongoDB's 16 MiB: long chunks are split, big bundles go to blobs."""
    import numpy as np

    from trialbook.codecs import Encoded, decode, encode

    with backend_location("mongo", tmp_path) as location:
        store = open_store(location)
        info = store.create_experiment("big")
        values = [float(i) for i in range(250_000)]
        fields = {f"w{i}": encode(np.full(30_000, float(i))) for i in range(20)}  # 240 KB each
        assert all(type(v) is Encoded for v in fields.values())
        store.write_runs(
            info.id, [RunRecord(run_id=1, fields=fields)], [metric_chunk(1, "m", values)]
        )
        series = store.read_metrics(info.id, "m", [1])[1]
        assert series.values.tolist() == values
        assert store.metric_names(info.id) == {"m": 250_000}
        (run,) = store.read_runs(info.id)
        assert decode(run.fields["w19"])[0] == 19.0
        store.close()


@pytest.mark.parametrize("url", ["mysql+pymysql://", "mariadb+pymysql://"])
def test_sql_tables_compile_for_mysql(url: str) -> None:
    """MySQL/MariaDB is not required here; its DDL must at least compile (key lengths, blob
    types), and every table is utf8mb4 with a case-sensitive collation (the servers' defaults
    fold case: ``Loss`` would find ``loss``)."""
    import sqlalchemy as sa

    from trialbook.storage.sql_schema import HotStatements, metadata

    dialect = sa.make_url(url).get_dialect()()
    ddl = [str(sa.schema.CreateTable(t).compile(dialect=dialect)) for t in metadata.sorted_tables]
    assert any("LONGBLOB" in text for text in ddl)
    assert len(ddl) == 10  # with the two tables of value segments
    for text in ddl:
        assert text.rstrip().endswith("CHARSET=utf8mb4 COLLATE utf8mb4_bin"), text
    assert not HotStatements(dialect, None).supported  # generic SQLAlchemy Core path


def test_postgres_one_statement_write_never_casts_to_a_bounded_varchar() -> None:
    """An explicit cast to ``VARCHAR(255)`` cuts a longer text silently; to ``VARCHAR`` it
    does not, so the column refuses it (behind the length check of every write)."""
    import sqlalchemy as sa

    from trialbook.storage.sql_schema import OneStatementWrite

    writer = OneStatementWrite(sa.make_url("postgresql+psycopg://").get_dialect()(), None)
    row = {"experiment_id": 1, "run_id": 1, "name": "m", "codec": "json", "size": 1,
           "data": b"1", "blob": None, "step": "s", "input_hash": "i", "output_hash": "o",
           "digest": "d", "kind": "trial", "status": "done", "key": None, "seed": None,
           "created": None, "started": None, "finished": None, "code": None,
           "environment": None, "doc": "{}", "bundle": None, "count": 1, "steps": b"",
           "vals": b"", "times": b"", "start": 0, "version": 1, "writer": None}  # fmt: skip
    tables = ["blobs", "artifacts", "step_hashes", "runs", "metrics"]
    sql, _ = writer.render(1, [(name, [row]) for name in tables], touch=1.0)
    assert "::VARCHAR," in sql and "VARCHAR(" not in sql


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_long_name_is_refused_on_every_sql_write_path(backend: str, tmp_path) -> None:
    """A 256-character metric name on PostgreSQL: refused with the limit and nothing written,
    by the one-statement write, by the executemany path of large batches and by the Core path
    (with ``replace_metrics``); a 255-character one is stored intact."""
    from trialbook.errors import ConfigError
    from trialbook.storage.sql import SqlStore

    with backend_location(backend, tmp_path) as where:
        store = SqlStore(f"sqlite+pysqlite:///{where}.db" if backend == "sqlite" else where)
        try:
            info = store.create_experiment("e")
            long, limit = "m" * 256, "m" * 255
            many = [RunRecord(run_id=i) for i in range(100, 3200)]  # > 30,000 parameters
            writes = [
                {"runs": [RunRecord(run_id=1)], "metrics": [metric_chunk(1, long, [1.0])]},
                {"runs": many, "metrics": [metric_chunk(2, long, [1.0])]},
                {"runs": [RunRecord(run_id=3)], "metrics": [metric_chunk(3, long, [1.0])],
                 "replace_metrics": [(3, long)]},
            ]  # fmt: skip
            for write in writes:
                with pytest.raises(ConfigError, match="256 characters long, more than the 255"):
                    store.write_runs(info.id, **write)
            assert store.read_runs(info.id) == []
            assert store.metric_names(info.id) == {}
            with pytest.raises(ConfigError, match="experiment name"):
                store.create_experiment("e" * 256)
            assert [e.name for e in store.list_experiments()] == ["e"]
            store.write_runs(info.id, [RunRecord(run_id=1)], [metric_chunk(1, limit, [1.0])])
            assert store.metric_names(info.id) == {limit: 1}
        finally:
            store.close()


def _mysql_store_of_a_case_insensitive_collation_is_converted(tmp_path) -> None:
    """Optional (``TRIALBOOK_TEST_MYSQL_URL``): a store whose tables have the server's default
    collation (which folds case, as stores created before the collation was set have) is
    converted on open, so ``Loss`` becomes a name of its own."""
    import sqlalchemy as sa

    from trialbook.storage.sql_schema import metadata

    with backend_location("mysql", tmp_path) as location:
        store = open_store(location)
        with store._db.engine.begin() as conn:
            for table in metadata.sorted_tables:
                conn.execute(sa.text(
                    f"ALTER TABLE {table.name} CONVERT TO CHARACTER SET latin1 "
                    "COLLATE latin1_swedish_ci"
                ))  # fmt: skip
            conn.execute(sa.text("DROP TABLE trialbook_schema"))  # no layout version: older
        info = store.create_experiment("loss")
        store.write_runs(info.id, [RunRecord(run_id=1)], [metric_chunk(1, "loss", [1.0])])
        # at another position: a chunk at the same one would replace "loss"'s, the names being
        # one key for this collation
        store.write_runs(info.id, [], [metric_chunk(1, "Loss", [2.0], start=1)])
        assert store.read_metrics(info.id, "loss", [1])[1].values.tolist() == [1.0, 2.0]
        store.close()
        store = open_store(location)
        try:
            with store._db.engine.connect() as conn:
                collations = {row[0] for row in conn.execute(sa.text(
                    "SELECT DISTINCT COLLATION_NAME FROM information_schema.COLUMNS WHERE "
                    "TABLE_SCHEMA = DATABASE() AND COLLATION_NAME IS NOT NULL"
                ))}  # fmt: skip
            assert len(collations) == 1 and "_bin" in collations.pop()
            assert store.read_metrics(info.id, "loss", [1])[1].values.tolist() == [1.0]
            assert store.read_metrics(info.id, "Loss", [1])[1].values.tolist() == [2.0]
            assert store.create_experiment("Loss").id != info.id
        finally:
            store.close()


if "mysql" in OPTIONAL_BACKENDS:  # collected only when MySQL is configured, like every MySQL test
    test_mysql_store_of_a_case_insensitive_collation_is_converted = (
        _mysql_store_of_a_case_insensitive_collation_is_converted
    )


# -- the lazy graph end-to-end on every backend ----------------------------------------------------


def _three_trials(location: str, name: str) -> None:
    """Trials a=1, 2, 1 of a graph with a cached persisted step and three metric points."""
    ex = trialbook.Experiment(name, backend=location)
    a = ex.parameter("a")

    @ex.persist(cache=True)
    def double(a):
        return [a, a]

    @ex.result
    def total(xs):
        for i in range(3):
            ex.save_metric("score", epoch=i, value=float(sum(xs) + i))
        return sum(xs)

    node = total(double(a))
    for value in (1, 2, 1):
        ex.set_parameters(a=value)
        node.compute(seed=value)
    ex.store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_graph_trials_on_every_backend(
    backend: str, tmp_path: pathlib.Path, closing: Closing
) -> None:
    with backend_location(backend, tmp_path) as location:
        _three_trials(location, "team_graph")
        again = closing(trialbook.Experiment("team_graph", backend=location))
        assert again.trial_id == 3
        assert again.get_parameters(trial_id=2) == {"a": 2}
        assert again.get_persisted("double", trial_id=2) == [2, 2]
        assert again.load_metric("score", trial_id=[1, 2])[2].tolist() == [4.0, 5.0, 6.0]
        assert "def double(a):" in again.get_code(trial_id=1)
        assert again.get_environment(trial_id=1)
        assert again.get_history()["Result"].tolist() == [2, 4, 2]
        again.store.close()


def _mongoeco_server(path: pathlib.Path | None, **environ: str) -> tuple[subprocess.Popen, int]:
    """The MongoDB test server (data in the SQLite file ``path``, else in memory; ``environ``
    added to its environment) on a port it chooses (it prints it once it listens)."""
    python = os.environ.get("TRIALBOOK_TEST_MONGOECO_PYTHON", "")
    need(bool(python), "no mongoeco: set TRIALBOOK_TEST_MONGOECO_PYTHON (scripts/test.sh does)")
    script = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "mongoeco_server.py"
    args = [python, str(script), "0", *([str(path)] if path is not None else [])]
    env = {**os.environ, **environ}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    proc.stdout.close()
    assert line.strip().isdigit(), f"the MongoDB test server did not start: {line!r}"
    return proc, int(line)


def test_mongo_killed_mid_write(tmp_path: pathlib.Path) -> None:
    """MongoDB has no multi-document transaction here: the order of writes keeps it consistent."""
    path = tmp_path / "mongo.db"
    proc, port = _mongoeco_server(path)
    try:
        store = open_store(f"mongodb://127.0.0.1:{port}/crash", connect_timeout=2, retry_seconds=1)
        info = store.create_experiment("crash")
        last = _write_until_killed(store, info.id, lambda: proc.send_signal(signal.SIGKILL))
        store.close()
        proc.wait()
        proc, port = _mongoeco_server(path)  # restarts from its SQLite file
        store = open_store(f"mongodb://127.0.0.1:{port}/crash")
        _check_consistent(store, info.id, last)
        runs = {r.run_id for r in store.read_runs(info.id)}
        assert store.metric_names(info.id) == {"m": 10 * len(runs)}  # orphan chunks ignored
        store.close()
    finally:
        proc.kill()
        proc.wait()


# -- every feature, watched from the server: no key scans on Redis, indexes on MongoDB ----------


def _use_every_feature(location: str, workdir: pathlib.Path) -> None:
    """Runs and steps, graph trials, a task job, the history, metrics, queries, deletion."""
    from trialbook.storage.query import query_runs

    session = trialbook.create_session(location)
    grid = session.create_experiment("every_runs")
    grid.add_runs(x=[1, 2, 3])

    def double(run):
        run.fields.y = run.params.x * 2
        run.log_metric("m", float(run.params.x))

    grid.execute(double).persist()
    assert session.load_experiment("every_runs").df()["y"].tolist() == [2, 4, 6]
    assert len(session.ls()) == 1
    _three_trials(location, "every_graph")
    ex = trialbook.Experiment("every_graph", backend=location)
    assert ex.get_history()["Result"].tolist() == [2, 4, 2]
    assert ex.load_metric("score", trial_id=[1, 2])[2].tolist() == [4.0, 5.0, 6.0]
    assert "def double(a):" in ex.get_code(trial_id=1)
    ex.store.close()
    with trialbook.experiment(workdir, "every_jobs", store=location):
        _Square.C(x=3).submit()
    with trialbook.experiment(workdir, "every_jobs", store=location):
        _Square.C(x=3).submit()  # found finished by its key
    store = open_store(location)
    info = store.find_experiment("every_runs")
    total, page = query_runs(store, info.id, where="params.x >= 2")
    assert (total, [r.run_id for r in page]) == (2, [2, 3])
    assert store.metric_names(info.id) == {"m": 3}
    store.delete_runs(info.id, [1])
    store.delete_experiment("every_graph")
    assert [e.name for e in store.list_experiments()] == ["every_jobs", "every_runs"]
    store.close()
    session.close()


def test_redis_never_scans_the_key_space(private_redis, tmp_path: pathlib.Path) -> None:
    """Every feature on Redis without KEYS, SCAN or FLUSH* (the server's command counts)."""
    import redis

    port, _ = private_redis
    url = f"redis://:right@127.0.0.1:{port}/3?prefix=scan-test:"
    admin = redis.Redis(port=port, password="right")
    admin.config_resetstat()
    _use_every_feature(url, tmp_path / "wd")
    used = {name.removeprefix("cmdstat_").split("|")[0] for name in admin.info("commandstats")}
    assert used >= {"hset", "zadd", "evalsha"}  # the statistics saw the workload
    assert not used & {"keys", "scan", "flushdb", "flushall"}
    admin.close()


class _MongoFilters:
    """The filters of the MongoDB commands sent while :attr:`active` (one pymongo command
    listener, registered once: pymongo has no public way to remove one)."""

    def __init__(self) -> None:
        self.active = False
        self.seen: list[tuple[str, set[str]]] = []
        self._registered = False

    def start(self) -> None:
        if not self._registered:
            from pymongo import monitoring

            filters = self

            class Listener(monitoring.CommandListener):
                def started(self, event) -> None:
                    if filters.active:
                        filters.add(event.command_name, event.command)

                def succeeded(self, event) -> None:
                    pass

                failed = succeeded

            monitoring.register(Listener())
            self._registered = True
        self.seen, self.active = [], True

    def add(self, name: str, command: dict) -> None:
        if name in ("find", "count", "findAndModify"):
            spec = command.get("filter", command.get("query"))
            self.seen.append((command[name], set(spec or {})))
        elif name == "aggregate" and command.get("pipeline"):
            match = command["pipeline"][0].get("$match")
            if match is not None:
                self.seen.append((command[name], set(match)))
        elif name in ("update", "delete"):
            for op in command.get("updates" if name == "update" else "deletes", []):
                self.seen.append((command[name], set(op["q"])))


_MONGO_FILTERS = _MongoFilters()


def test_mongo_queries_use_indexes(tmp_path: pathlib.Path) -> None:
    """Every filter the store sends (finds, counts, updates, deletes) starts with the first
    field of an index of its collection, or names ``_id``."""
    import pymongo

    _MONGO_FILTERS.start()
    try:
        with backend_location("mongo", tmp_path) as url:
            _use_every_feature(url, tmp_path / "wd")
            client = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000)
            db = client.get_default_database()
            first_fields = {
                name: {keys["key"][0][0] for keys in db[name].index_information().values()}
                for name in db.list_collection_names()
            }
            client.close()
    finally:
        _MONGO_FILTERS.active = False
    filters = _MONGO_FILTERS.seen
    ours = [(c, f) for c, f in filters if c in first_fields]
    assert {c for c, _ in ours} >= {"experiments", "runs", "metrics", "step_hashes"}
    unindexed = [(c, sorted(f)) for c, f in ours if f and not f & first_fields[c]]
    assert unindexed == []
    assert all(f for c, f in ours if c != "experiments")  # only experiments are listed whole


# -- task jobs on the team backends -------------------------------------------------------------


class _Square(trialbook.Task):
    """A job that logs a metric and keeps a field."""

    __trialbook_id__ = "test.backends.square"
    x: trialbook.Param[int] = 1

    def execute(self) -> None:
        run = trialbook.current_run()
        run.log_metric("y", float(self.x**2))
        run.fields.x2 = self.x**2


@pytest.mark.parametrize("backend", ["postgres", "redis", "mongo"])
def test_jobs_on_team_backends(backend: str, tmp_path: pathlib.Path) -> None:
    """Jobs are recorded in a team store; a finished configuration is found by its key."""
    with backend_location(backend, tmp_path) as location:
        with trialbook.experiment(tmp_path / "wd", "team_jobs", store=location):
            job = _Square.C(x=3).submit()
        store = open_store(location)
        info = store.find_experiment("team_jobs")
        [record] = store.read_runs(info.id)
        assert (record.kind, record.status) == ("job", "done")
        assert record.key == job.__identifier__()
        assert record.fields["x2"] == 9
        assert store.read_metrics(info.id, "y", [record.run_id])[record.run_id].values[0] == 9.0
        assert [r.run_id for r in store.find_runs_by_key(info.id, record.key)] == [record.run_id]
        store.close()


def test_rediss_with_tls(tmp_path: pathlib.Path) -> None:
    """``rediss://`` against a Redis server that speaks TLS (a self-signed certificate)."""
    need(shutil.which("redis-server") is not None, "redis-server is not installed")
    need(shutil.which("openssl") is not None, "openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    proc, port = _redis_server(
        tmp_path, "--tls-cert-file", str(cert), "--tls-key-file", str(key),
        "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
        "--save", "", "--appendonly", "no", tls=True,
    )  # fmt: skip
    try:
        store = open_store(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}")
        assert store.url.startswith(f"rediss://127.0.0.1:{port}/0")
        info = store.create_experiment("tls")
        store.write_runs(info.id, [RunRecord(run_id=1, params={"secure": True})])
        assert store.read_runs(info.id)[0].params == {"secure": True}
        store.close()
        with pytest.raises(StorageError, match="RedisBackend 'redis://"):
            open_store(f"redis://127.0.0.1:{port}/0", connect_timeout=0.5)  # plain to TLS
    finally:
        proc.terminate()
        proc.wait()


# -- stores written before step hashes were indexed by run (issue 20, item 9) -----------------


def _to_the_layout_before_the_run_index(backend: str, store) -> None:
    """Undo what a store of an older trialbook lacks: the index (or sets) of step hashes by
    run."""
    if backend == "postgres":
        import sqlalchemy as sa

        with store._db.engine.begin() as conn:
            conn.execute(sa.text(f'DROP INDEX "{store._db.schema}".trialbook_step_hashes_by_run'))
            # stores of then had no layout version (version 1)
            conn.execute(sa.text(f'DROP TABLE "{store._db.schema}".trialbook_schema'))
    elif backend == "redis":
        store._r.delete(*(store._k("exp", 1, "step_hashes", r) for r in (1, 2)))
        store._r.hdel(store._k("exp", 1), "hashes_by_run")
    else:
        store._db.step_hashes.drop_index("experiment_id_1_run_id_1")
        store._db.step_hashes.create_index("experiment_id")


def _has_the_run_index(backend: str, store) -> bool:
    if backend == "postgres":
        import sqlalchemy as sa

        found = sa.inspect(store._db.engine).get_indexes(
            "trialbook_step_hashes", schema=store._db.schema
        )
        return any(i["column_names"] == ["experiment_id", "run_id"] for i in found)
    if backend == "redis":
        return store._r.hget(store._k("exp", 1), "hashes_by_run") == b"1"
    keys = [list(i["key"]) for i in store._db.step_hashes.index_information().values()]
    return [("experiment_id", 1), ("run_id", 1)] in keys


@pytest.mark.parametrize("backend", ["postgres", "redis", "mongo"])
def test_store_before_the_step_hash_run_index(backend: str, tmp_path: pathlib.Path) -> None:
    """A store written before step hashes were indexed by run: opening it (or, on Redis,
    deleting runs of an experiment) adds the index, and deleting a run then removes the step
    hashes that point at it, and only those."""
    with backend_location(backend, tmp_path) as location:
        store = open_store(location)
        info = store.create_experiment("old")
        assert info.id == 1
        store.write_runs(
            info.id,
            [RunRecord(run_id=1), RunRecord(run_id=2)],
            step_hashes=[("s", "a", "o1", 1), ("s", "b", "o2", 1), ("s", "c", "o3", 2)],
        )
        store.write_runs(info.id, [], step_hashes=[("s", "b", "o4", 2)])
        _to_the_layout_before_the_run_index(backend, store)
        assert not _has_the_run_index(backend, store)
        store.close()
        store = open_store(location)
        try:
            if backend != "redis":
                assert _has_the_run_index(backend, store)
            store.delete_runs(info.id, [1])
            assert _has_the_run_index(backend, store)
            keys = [("s", "a"), ("s", "b"), ("s", "c")]
            assert store.get_step_hashes(info.id, keys) == {
                ("s", "b"): ("o4", 2),
                ("s", "c"): ("o3", 2),
            }
            store.delete_runs(info.id, [2])
            assert store.get_step_hashes(info.id, keys) == {}
        finally:
            store.close()
