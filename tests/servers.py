"""Private database servers for the tests that stop, kill and restart them (issue 18).

The shared servers of ``scripts/services.sh`` serve every other test (and other processes):
a test that takes its server down starts one of its own here, on a free port, with its data in
a directory of its own, and restarts it **on the same port**, so that a store opened before the
outage reaches it again. Each class has ``url``, ``port``, ``start()``, ``stop()`` (the server
goes away at once, as in a crash: PostgreSQL ``stop -m immediate``, SIGKILL for the others),
``kill()`` (SIGKILL) and ``close()`` (stop and remove). :func:`private_server` skips (fails
under CI) when a server program is missing.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import threading

from tests.conftest import need

from races import wait_until


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class PrivatePostgres:
    """A PostgreSQL cluster of its own (``initdb`` in a directory of /tmp, run as the
    ``postgres`` user with trust authentication; fsync on, as a durable server has it)."""

    def __init__(self, bindir: pathlib.Path) -> None:
        self.bindir = bindir
        self.data = pathlib.Path(tempfile.mkdtemp(prefix="tbtest-pg-", dir="/tmp"))
        shutil.chown(self.data, "postgres", "postgres")
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._pg("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.start()

    def _pg(self, program: str, *args: str, check: bool = True) -> None:
        command = " ".join([str(self.bindir / program), *args])
        subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", command], check=check,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def start(self) -> None:
        """Start (again, on the same port), once the backends of a killed server are gone."""
        options = f"'-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1'"
        log = self.data / "log"

        def started() -> bool:
            try:
                self._pg("pg_ctl", "-D", str(self.data), "-w", "-l", str(log), "-o", options,
                         "start")  # fmt: skip
            except subprocess.CalledProcessError:
                return False
            return True

        wait_until(started, f"PostgreSQL starts (its log: {log})")

    def stop(self) -> None:
        """Stop at once, without a checkpoint (crash recovery replays the WAL at start)."""
        self._pg("pg_ctl", "-D", str(self.data), "-w", "stop", "-m", "immediate")

    def kill(self) -> None:
        """SIGKILL the postmaster (its backends exit when they notice)."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not _answers(self.port), "PostgreSQL stops listening")

    def close(self) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "stop", "-m", "immediate", check=False)
        shutil.rmtree(self.data, ignore_errors=True)


class PrivateRedis:
    """A ``redis-server`` of its own, with an append-only file (``appendfsync always``) in
    ``directory``, so that what it acknowledged survives a kill."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        log = self.directory / "redis.log"
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory),
             "--logfile", str(log)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        proc = self.proc
        wait_until(lambda: proc.poll() is not None or _answers(self.port), "redis-server starts")
        assert proc.poll() is None, f"redis-server did not start (its log: {log})"

    def stop(self) -> None:
        """SIGKILL: no shutdown, no save."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    kill = stop

    def close(self) -> None:
        self.stop()


class PrivateMongo:
    """The MongoDB wire-protocol test server (mongoeco) with its data in an SQLite file, so
    that what it acknowledged survives a kill."""

    def __init__(self, python: str, directory: pathlib.Path) -> None:
        self.python = python
        self.path = directory / "mongo.db"
        self.port = free_port()
        self.url = f"mongodb://127.0.0.1:{self.port}/outage"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        script = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "mongoeco_server.py"
        self.proc = subprocess.Popen(
            [self.python, str(script), str(self.port), str(self.path)], stdout=subprocess.PIPE
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.proc.stdout.close()
        assert line.strip() == str(self.port).encode(), f"mongoeco did not start: {line!r}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    kill = stop

    def close(self) -> None:
        self.stop()


Server = PrivatePostgres | PrivateRedis | PrivateMongo


def _pg_bindir() -> pathlib.Path | None:
    for candidate in sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin")):
        if (candidate / "pg_ctl").exists():
            return candidate
    return None


def private_server(name: str, directory: pathlib.Path) -> Server:
    """A private server of ``name`` (``postgres``, ``redis``, ``mongo``), or skip."""
    if name == "postgres":
        bindir = _pg_bindir()
        need(bindir is not None and os.geteuid() == 0, "PostgreSQL binaries (and root) needed")
        assert bindir is not None
        return PrivatePostgres(bindir)
    if name == "redis":
        need(shutil.which("redis-server") is not None, "redis-server is not installed")
        return PrivateRedis(directory)
    python = os.environ.get("TRIALBOOK_TEST_MONGOECO_PYTHON", "")
    need(bool(python), "no mongoeco: set TRIALBOOK_TEST_MONGOECO_PYTHON (scripts/test.sh does)")
    return PrivateMongo(python, directory)


class AnswerLosingProxy:
    """A TCP proxy to ``port`` on 127.0.0.1 that can lose one answer: after
    :meth:`lose_next_answer`, the next bytes a server sends are dropped and both ends of that
    connection are closed (the server did the work; the client never hears of it)."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._lose = threading.Event()
        self.lost = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def lose_next_answer(self) -> None:
        self.lost.clear()
        self._lose.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, answers: bool) -> None:
        try:
            while data := source.recv(65536):
                if answers and self._lose.is_set():
                    self._lose.clear()
                    self.lost.set()
                    break
                target.sendall(data)
        except OSError:
            pass
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self.listener.close()
        for end in self._sockets:
            end.close()
