"""Which host names the UI prints and answers (issue 18).

* The printed URL names a host a browser can reach: the bound address, except for the
  wildcards ``0.0.0.0`` and ``::`` (every interface), where it is this machine's name if that
  resolves to an address other than loopback, else the address this machine reaches others from
  (:func:`reachable_name`).
* A UI bound to loopback serves this machine only, so it answers only requests whose ``Host``
  header is a loopback name (``localhost``, ``127.0.0.1``, ``[::1]``) or the bound address
  (:class:`HostGate`). A web page of another site can make a browser resolve *its* name to
  127.0.0.1 (DNS rebinding) and read the answers as its own; the ``Host`` header still carries
  that site's name, and is refused with 400.

Examples
--------
>>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
(True, True, False)
>>> host_name("[::1]:8765"), host_name("LocalHost.:80"), host_name("evil.example")
('[::1]', 'localhost', 'evil.example')
>>> sorted(loopback_names("127.0.0.2"))
['127.0.0.1', '127.0.0.2', '[::1]', 'localhost']
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterable
from typing import Any

__all__ = ["WILDCARDS", "HostGate", "host_name", "is_loopback", "loopback_names", "reachable_name"]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
"""The ``Host`` names of this machine that no other site can claim."""

WILDCARDS = frozenset({"", "0.0.0.0", "::"})
"""Bind addresses meaning "every interface"; a URL naming them reaches nothing."""


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` serves this machine only (``localhost`` or a loopback address).

    Examples
    --------
    >>> is_loopback("::1"), is_loopback("192.168.1.4")
    (True, False)
    """
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The host name of a ``Host`` header: lower case, without its port or a final dot, an IPv6
    address in brackets.

    Examples
    --------
    >>> host_name("127.0.0.1:8765"), host_name("::1")
    ('127.0.0.1', '[::1]')
    """
    value = header.strip().lower()
    if value.startswith("["):
        return value.partition("]")[0] + "]"
    if value.count(":") > 1:  # a bare IPv6 address (no port can follow it unbracketed)
        return f"[{value}]"
    return value.partition(":")[0].rstrip(".")


def loopback_names(bound: str) -> frozenset[str]:
    """The ``Host`` names a UI bound to the loopback address ``bound`` answers.

    Examples
    --------
    >>> sorted(loopback_names("::1"))
    ['127.0.0.1', '[::1]', 'localhost']
    """
    return LOOPBACK_NAMES | {host_name(f"[{bound}]" if ":" in bound else bound)}


def reachable_name(bound: str) -> str:
    """The host to put in the UI's URL when it is bound to ``bound``.

    ``bound`` itself, except for the wildcards (:data:`WILDCARDS`): then this machine's host
    name when it resolves to an address other than loopback, else the address this machine
    reaches other machines from, else the host name all the same.

    Examples
    --------
    >>> reachable_name("127.0.0.1"), reachable_name("::1")
    ('127.0.0.1', '[::1]')
    >>> reachable_name("0.0.0.0") not in ("0.0.0.0", "")
    True
    """
    if bound not in WILDCARDS:
        return f"[{bound}]" if ":" in bound else bound
    name = socket.gethostname()
    if not all(is_loopback(address) for address in _addresses(name)):
        return name
    address = _outbound_address()
    return address if address is not None else name


def _addresses(name: str) -> list[str]:
    """The addresses ``name`` resolves to (``['127.0.0.1']`` when it does not resolve)."""
    try:
        found = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except OSError:
        return ["127.0.0.1"]
    return [str(info[4][0]).partition("%")[0] for info in found]


def _outbound_address() -> str | None:
    """The address this machine would send from to another network: "connecting" a UDP socket
    sends nothing, it only picks the route (192.0.2.1 is a documentation address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address in WILDCARDS or is_loopback(address) else address


class HostGate:
    """ASGI middleware answering 400 to every HTTP request whose ``Host`` header is not one of
    ``names`` (see :func:`host_name`; a request without one is refused too).

    Examples
    --------
    >>> from starlette.applications import Starlette
    >>> from starlette.testclient import TestClient
    >>> app = HostGate(Starlette(), loopback_names("127.0.0.1"), bound="127.0.0.1")
    >>> client = TestClient(app, base_url="http://evil.example:8765")
    >>> client.get("/").status_code
    400
    >>> client.get("/", headers={"Host": "localhost:8765"}).status_code
    404
    """

    def __init__(self, app: Any, names: Iterable[str], *, bound: str) -> None:
        self.app, self.names, self.bound = app, frozenset(names), bound

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"host", b"").decode("latin-1")
        if host_name(given) in self.names:
            await self.app(scope, receive, send)
            return
        text = (
            f"400 Bad Request: this UI listens on {self.bound} (this machine only) and answers "
            f"requests for {', '.join(sorted(self.names))}, not for Host {given!r}; open the URL "
            "printed by `trialbook ui`, or serve the UI with --host 0.0.0.0 to share it"
        )
        api = scope["path"].startswith("/api/")
        body = json.dumps({"error": text}).encode() if api else text.encode()
        kind = b"application/json" if api else b"text/plain; charset=utf-8"
        await send({"type": "http.response.start", "status": 400, "headers": [
            (b"content-type", kind), (b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})
