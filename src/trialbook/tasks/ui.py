"""The web UI seen from the task part: a hook, never an import of :mod:`trialbook.web`.

``experiment(workdir, name, port=N)`` serves the web UI over the experiment's store while its
block runs. The library must not import the UI (the UI sits above every layer of the library
and is a client of it), so the UI is found the way plugins are:

1. a server factory given to :func:`register_ui` (a test, or another UI), else
2. the ``trialbook.ui`` entry point that trialbook's own distribution declares in
   ``pyproject.toml`` (``web = "trialbook.web:serve"``): :mod:`importlib.metadata` names the
   factory, and loading it imports the UI only when a port is asked for.

Why an entry point rather than ``trialbook.web`` registering itself on import: the user of
``experiment(port=N)`` never imports ``trialbook.web``, so a registration at import time would
need someone (the library) to import it first, which is the edge this module removes. The
entry point is metadata of the installed package, so it works from plain Python and from the
command line alike, and a UI of another package plugs in the same way.

Examples
--------
>>> from trialbook.tasks.ui import register_ui, serve_ui
>>> class Handle:
...     url = "http://127.0.0.1:1/?token=t"
...     def stop(self):
...         print("stopped")
>>> register_ui(lambda store, *, host, port, token: Handle())
>>> serve_ui("sqlite:///:memory:", host="127.0.0.1", port=0, token=None).url
'http://127.0.0.1:1/?token=t'
>>> register_ui(None)  # back to the installed UI
"""

from __future__ import annotations

from typing import Any, Protocol

from trialbook.errors import ConfigError

__all__ = ["GROUP", "UIFactory", "UIHandle", "register_ui", "serve_ui"]

GROUP = "trialbook.ui"
"""The entry-point group where a distribution declares its UI server factory."""


class UIHandle(Protocol):
    """A running UI: the address to open (with its access token) and ``stop()``."""

    @property
    def url(self) -> str:
        """The address to open in a browser."""

    def stop(self) -> None:
        """Stop serving."""


class UIFactory(Protocol):
    """Starts a UI over a store (a location or an open store) and returns once it listens.

    A UI started over a location opens the store itself and closes it in ``stop()``; an open
    store given to it stays open for its owner.
    """

    def __call__(self, store: Any, *, host: str, port: int, token: str | None) -> UIHandle:
        """Serve the UI on ``host:port`` (``0``: a free port) with the access ``token``."""


_REGISTERED: list[UIFactory] = []  # at most one: the factory given to register_ui


def register_ui(factory: UIFactory | None) -> None:
    """Serve experiments' UI with ``factory`` (``None``: the installed UI again).

    See the module example.
    """
    _REGISTERED[:] = [] if factory is None else [factory]


def serve_ui(store: Any, *, host: str, port: int, token: str | None) -> UIHandle:
    """Start the registered UI, else the one of the ``trialbook.ui`` entry point.

    Raises
    ------
    ConfigError
        When no UI is registered or installed (with what to install), or the UI could not start.
    """
    factory = _REGISTERED[0] if _REGISTERED else _installed()
    if factory is None:
        msg = (
            f"no web UI to serve the experiment on port {port}: no {GROUP!r} entry point is "
            "installed and none was registered; install trialbook with its UI (pip install "
            "'trialbook[ui]', or pip install -e '.[ui]' in a source tree), or pass no port"
        )
        raise ConfigError(msg)
    return factory(store, host=host, port=port, token=token)


def _installed() -> UIFactory | None:
    """The factory of the first ``trialbook.ui`` entry point (by name), loaded."""
    from importlib.metadata import entry_points

    found = sorted(entry_points(group=GROUP), key=lambda point: point.name)
    return found[0].load() if found else None
