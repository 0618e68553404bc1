"""The team backends against real servers: the store contract on every backend, concurrent
writers, a server killed mid-write, URL dispatch and error wording, and a session end-to-end."""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time

import pytest

import trialbook
from tests.conftest import BACKENDS, backend_location, need, service_url
from trialbook.errors import ConfigError, StorageError
from trialbook.storage import open_store
from trialbook.storage.records import RunRecord
from trialbook.testing import StoreContract, metric_chunk


class TestBackendContract(StoreContract):
    @pytest.fixture
    def store(self, backend_store):
        return backend_store


# -- concurrency: 4 processes x 25 runs -> 100 unique ids ----------------------------------------


def _writer(location: str, experiment_id: int, count: int) -> list[int]:
    store = open_store(location)
    ids = []
    try:
        for _ in range(count):
            (run_id,) = store.allocate_run_ids(experiment_id, 1)
            store.write_runs(
                experiment_id,
                [RunRecord(run_id=run_id, params={"pid": os.getpid()}, status="done")],
                [metric_chunk(run_id, "loss", [1.0])],
            )
            ids.append(run_id)
    finally:
        store.close()
    return ids


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_writers_get_unique_ids(backend: str, tmp_path: pathlib.Path) -> None:
    with backend_location(backend, tmp_path) as location:
        store = open_store(location)
        info = store.create_experiment("shared")
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(4) as pool:
            results = pool.starmap(_writer, [(location, info.id, 25)] * 4)
        ids = sorted(i for part in results for i in part)
        assert ids == list(range(1, 101))
        runs = store.read_runs(info.id)
        assert [r.run_id for r in runs] == ids
        assert len({r.params["pid"] for r in runs}) >= 2
        assert store.metric_names(info.id) == {"loss": 100}
        store.close()


# -- URL dispatch, repr, password hiding, errors ----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("postgresql://ann:s3cret@127.0.0.1:{port}/db", "SQLBackend"),
        ("postgresql+psycopg://ann:s3cret@127.0.0.1:{port}/db", "SQLBackend"),
        ("redis://:s3cret@127.0.0.1:{port}/0", "RedisBackend"),
        ("mongodb://ann:s3cret@127.0.0.1:{port}/db", "MongoBackend"),
    ],
)
def test_wrong_port_is_a_fast_clear_storage_error(url: str, label: str) -> None:
    url = url.format(port=_free_port())
    start = time.monotonic()
    with pytest.raises(StorageError, match=label) as info:
        open_store(url)
    assert time.monotonic() - start < 15
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
    with pytest.raises(StorageError, match="SQLBackend.*nosuchdriver"):
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


# -- a session end-to-end on every backend --------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
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


# -- a server killed mid-write: clear error, consistent store after restart -------------------------


def _redis_server(port: int, directory: pathlib.Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "yes", "--appendfsync", "always", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    _wait_port(port)
    return proc


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"server on port {port} did not start")


def _write_until_killed(store, experiment_id: int, kill) -> int:
    """Write runs (with a large value each) until the server dies; return the last committed id."""
    import numpy as np

    last = 0
    with pytest.raises(StorageError) as info:
        for i in range(1, 10_000):
            if i == 20:
                kill()
            (run_id,) = store.allocate_run_ids(experiment_id, 1)
            store.write_runs(
                experiment_id,
                [RunRecord(run_id=run_id, fields={"w": trialbook.codecs.encode(np.ones(50_000))})],
                [metric_chunk(run_id, "m", [float(run_id)] * 10)],
            )
            last = run_id
    assert store.backend_label in str(info.value)
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
    port = _free_port()
    proc = _redis_server(port, tmp_path)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        store = open_store(url)
        info = store.create_experiment("crash")
        last = _write_until_killed(store, info.id, lambda: proc.send_signal(signal.SIGKILL))
        proc.wait()
        proc = _redis_server(port, tmp_path)  # restarts from its append-only file
        store = open_store(url)
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


def _restart_after_crash(start) -> None:
    """The killed postmaster's children exit on their own; retry until they are gone."""
    for _ in range(40):
        try:
            start()
            return
        except subprocess.CalledProcessError:
            time.sleep(0.25)
    start()


def test_postgres_killed_mid_write(tmp_path: pathlib.Path) -> None:
    bindir = _pg_bin()
    need(bindir is not None and os.geteuid() == 0, "PostgreSQL binaries (and root) needed")
    data = pathlib.Path(f"/tmp/tbtest-pg-{os.getpid()}-{_free_port()}")
    port = _free_port()
    data.mkdir(mode=0o700)
    shutil.chown(data, "postgres", "postgres")

    def as_pg(*cmd: str) -> None:
        subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", " ".join(cmd)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def start() -> None:
        as_pg(f"{bindir}/pg_ctl", "-D", str(data), "-w", "-l", f"{data}/log", "-o",
              f"'-p {port} -k {data} -c listen_addresses=127.0.0.1'", "start")  # fmt: skip

    as_pg(f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U", "postgres")
    start()
    try:
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        store = open_store(url)
        info = store.create_experiment("crash")
        pid = int((data / "postmaster.pid").read_text().split()[0])
        last = _write_until_killed(store, info.id, lambda: os.kill(pid, signal.SIGKILL))
        store.close()
        _restart_after_crash(start)  # crash recovery replays the WAL
        store = open_store(url)
        _check_consistent(store, info.id, last)
        store.close()
    finally:
        subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c",
                        f"{bindir}/pg_ctl -D {data} stop -m immediate"],
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        shutil.rmtree(data, ignore_errors=True)
