"""Serving the UI with uvicorn in a background thread: :func:`serve` returns a handle with the
URL (token included) and ``stop()``.

The URL names a host a browser can reach (never ``0.0.0.0``), and a server bound to loopback
answers only requests for a loopback name (see :mod:`trialbook.web.hosts`).

A server started over a location (a URL, a directory) opens the store itself and closes it when
it stops; a server given an open store leaves it open for its owner.

Examples
--------
>>> server = serve("sqlite:///:memory:", port=0, token="t0ken")
>>> server.url.startswith("http://127.0.0.1:") and server.url.endswith("/?token=t0ken")
True
>>> server.stop()
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from trialbook.errors import ConfigError
from trialbook.web.hosts import HostGate, is_loopback, loopback_names, reachable_name

__all__ = ["UIServer", "serve"]


UI_RETRY_SECONDS = 5.0
"""How long a store the UI opened itself retries an unreachable server before its pages
answer "store unreachable, retrying" (HTTP 503); ``?retry_seconds=N`` on the URL overrides."""


@dataclass
class UIServer:
    """A running UI: ``url`` to open (with the token), ``token``, ``host`` (the bound
    interface), ``port``.

    Examples
    --------
    >>> with serve("sqlite:///:memory:", port=0) as server:
    ...     server.port > 0
    True
    """

    host: str
    port: int
    token: str
    _server: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _owned_store: Any = field(default=None, repr=False)
    """The store :func:`serve` opened from a location: closed by :meth:`stop`."""
    address: str = ""
    """The host named in :attr:`url`: the bound one, or for ``0.0.0.0`` / ``::`` this
    machine's name or address (:func:`trialbook.web.hosts.reachable_name`)."""

    @property
    def url(self) -> str:
        """The address to open in a browser, with the access token."""
        host = self.address or reachable_name(self.host)
        return f"http://{host}:{self.port}/?token={self.token}"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, wait for the server thread to end and close the store if the server
        opened it. Stopping twice is harmless."""
        self._server.should_exit = True
        self._thread.join(timeout)
        store, self._owned_store = self._owned_store, None
        if store is not None:
            store.close()

    def wait(self) -> None:
        """Block until the server stops (``stop()`` from another thread, or Ctrl-C), then
        :meth:`stop` (which closes the store the server opened)."""
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        self.stop()

    def __enter__(self) -> UIServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    store: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    allow_actions: bool = False,
    timeout: float = 15.0,
) -> UIServer:
    """Start the UI over ``store`` in a background thread and return once it listens.

    Parameters
    ----------
    store
        Any :class:`~trialbook.storage.Store` (left open: its owner closes it), or a location
        for :func:`~trialbook.storage.open_store` (the server opens the store and closes it
        when it stops).
    host
        Interface to bind; the default serves this machine only, and then answers only
        requests for ``localhost``, ``127.0.0.1`` or ``[::1]`` (DNS rebinding defence).
        ``0.0.0.0`` or ``::`` serve every interface; the URL then names this machine.
    port
        TCP port; ``0`` picks a free one (see ``UIServer.port``).
    token
        Access token; ``None`` generates one.
    allow_actions
        Allow deleting runs and killing jobs.
    timeout
        Seconds to wait for the server to listen.

    Raises
    ------
    ConfigError
        If the server could not start (port in use, bad host), with the reason.

    Examples
    --------
    >>> import urllib.request
    >>> with serve("sqlite:///:memory:", token="abc") as server:
    ...     request = urllib.request.Request(
    ...         f"http://127.0.0.1:{server.port}/api/experiments",
    ...         headers={"Authorization": "Bearer abc"})
    ...     urllib.request.urlopen(request).read()
    b'{"experiments":[]}'
    """
    from trialbook.extras import require

    require("ui", "the web UI")
    from trialbook.storage import open_store
    from trialbook.web.app import create_app

    if type(port) is not int or not 0 <= port < 65536:
        msg = f"port must be an int from 0 to 65535 (got {port!r}); 0 picks a free port"
        raise ConfigError(msg)
    # A store opened here retries an unreachable server for UI_RETRY_SECONDS, not the 30 s
    # default, so pages say "store unreachable" soon; a URL's own retry_seconds wins.
    own_budget = isinstance(store, str | os.PathLike) and "retry_seconds=" in os.fspath(store)
    budget = None if own_budget or not isinstance(store, str | os.PathLike) else UI_RETRY_SECONDS
    opened = open_store(store, retry_seconds=budget)  # a store is returned as is
    owned = opened if opened is not store else None
    try:
        return _start(create_app(opened, token=token, allow_actions=allow_actions),
                      host, port, timeout, owned)  # fmt: skip
    except BaseException:
        if owned is not None:
            owned.close()
        raise


def _start(app: Any, host: str, port: int, timeout: float, owned: Any) -> UIServer:
    """Serve ``app`` in a thread (behind a :class:`~trialbook.web.hosts.HostGate` when bound
    to loopback); return once it listens."""
    import uvicorn

    sock = _listen(host, port)
    served = HostGate(app, loopback_names(host), bound=host) if is_loopback(host) else app
    config = uvicorn.Config(served, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name="trialbook-ui", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not server.started:
        server.should_exit = True
        sock.close()
        reason = errors[0] if errors else "it did not start in time"
        msg = f"could not serve the UI on {host}:{port}: {reason}"
        raise ConfigError(msg)
    token, bound_port = app.state.ui.token, sock.getsockname()[1]
    return UIServer(host, bound_port, token, server, thread, owned, reachable_name(host))


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``(host, port)``, so that a busy port fails here, clearly."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        msg = f"cannot serve the UI on {host!r}: {exc}; pass an address of this machine"
        raise ConfigError(msg) from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        msg = (
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another port "
            "(--port N, or 0 for a free one)"
        )
        raise ConfigError(msg) from None
    return sock
