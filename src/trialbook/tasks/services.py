"""Experiment services: a TensorBoard viewer, a notebook server... with their listeners.

``xp.add_service(service)`` writes what :meth:`Service.describe` says to
``<workdir>/xp/<name>/services.json`` (read by the web UI) and logs it.

Examples
--------
>>> from trialbook.tasks.services import WebService
>>> WebService("board", "http://127.0.0.1:6006").describe()
{'id': 'board', 'description': '', 'url': 'http://127.0.0.1:6006'}
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterable
from typing import Any, Protocol

__all__ = ["Service", "ServiceListener", "WebService", "read_services", "write_services"]

SERVICES = "services.json"


class ServiceListener(Protocol):
    """Anything called with each event a :class:`Service` sends (``listener(event)``)."""

    def __call__(self, event: Any) -> None:
        """Receive one event."""


class Service:
    """An experiment service (e.g. a TensorBoard viewer) with listeners.

    Examples
    --------
    >>> s = Service("board", "TensorBoard")
    >>> s.add_listener(print)
    >>> s.notify("started")
    started
    """

    def __init__(self, id: str, description: str = "") -> None:
        self.id = id
        self.description = description
        self._listeners: list[ServiceListener] = []

    def add_listener(self, listener: ServiceListener) -> None:
        """Call ``listener(event)`` on each notification (see the class example)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: ServiceListener) -> None:
        """Stop notifying ``listener``.

        Examples
        --------
        >>> s = Service("board")
        >>> s.add_listener(print)
        >>> s.remove_listener(print)
        >>> s.notify("nobody hears this")
        """
        self._listeners.remove(listener)

    def notify(self, event: Any) -> None:
        """Send ``event`` to every listener."""
        for listener in list(self._listeners):
            listener(event)

    def describe(self) -> dict[str, Any]:
        """What is written to ``services.json`` (and shown by the UI)."""
        return {"id": self.id, "description": self.description}


class WebService(Service):
    """A service reachable at a URL (shown in the UI and in the logs).

    Examples
    --------
    >>> WebService("board", "http://127.0.0.1:6006").describe()["url"]
    'http://127.0.0.1:6006'
    """

    def __init__(self, id: str, url: str, description: str = "") -> None:
        super().__init__(id, description)
        self.url = url

    def get_url(self) -> str:
        """The service's URL.

        Examples
        --------
        >>> WebService("board", "http://127.0.0.1:6006").get_url()
        'http://127.0.0.1:6006'
        """
        return self.url

    def describe(self) -> dict[str, Any]:
        """Id, description and URL."""
        return {**super().describe(), "url": self.get_url()}


def write_services(xppath: pathlib.Path, services: Iterable[Service]) -> None:
    """Write what each service describes to ``<xppath>/services.json``.

    Examples
    --------
    >>> import tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_services(folder, [WebService("board", "http://127.0.0.1:6006")])
    >>> read_services(folder)
    [{'id': 'board', 'description': '', 'url': 'http://127.0.0.1:6006'}]
    >>> read_services(folder / "nothing")
    []
    """
    xppath.mkdir(parents=True, exist_ok=True)
    described = [s.describe() for s in services]
    (xppath / SERVICES).write_text(json.dumps(described, indent=1))


def read_services(xppath: pathlib.Path) -> list[dict[str, Any]]:
    """The services described in ``<xppath>/services.json`` (none when it is missing or
    unreadable; entries that are not objects are skipped)."""
    try:
        described = json.loads((xppath / SERVICES).read_bytes())
    except (OSError, ValueError):
        return []
    return [s for s in described if isinstance(s, dict)] if isinstance(described, list) else []
