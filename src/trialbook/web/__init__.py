"""The web UI: experiments, runs table, live status and logs, run pages with charts,
comparisons, a params-vs-metric view and the job graph, over any store.

Start it with ``trialbook ui`` or from Python with :func:`serve` (a background thread; the
returned handle has the URL with its access token and ``stop()``). :func:`create_app` gives the
ASGI application itself. Importing this package does not import Starlette or uvicorn (they
come with the ``ui`` extra: ``pip install 'trialbook[ui]'``).

Examples
--------
>>> from trialbook.web import serve
>>> with serve("sqlite:///:memory:", port=0, token="secret") as server:
...     server.url.endswith("?token=secret")
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trialbook.web.server import UIServer

__all__ = ["UIServer", "create_app", "serve"]


def create_app(store: Any, *, token: str | None = None, allow_actions: bool = False) -> Any:
    """The ASGI application; see :func:`trialbook.web.app.create_app`.

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> with open_store("sqlite:///:memory:") as store:
    ...     create_app(store, token="t").state.ui.token
    't'
    """
    from trialbook.web.app import create_app as make

    return make(store, token=token, allow_actions=allow_actions)


def serve(
    store: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    allow_actions: bool = False,
) -> UIServer:
    """Serve the UI in a background thread; see :func:`trialbook.web.server.serve`.

    Over a location (a URL, a directory) the server opens the store and closes it when it
    stops; an open store given to it stays open for its owner.

    Examples
    --------
    >>> server = serve("sqlite:///:memory:")
    >>> server.host
    '127.0.0.1'
    >>> server.stop()
    """
    from trialbook.web.server import serve as start

    return start(store, host=host, port=port, token=token, allow_actions=allow_actions)


def __getattr__(name: str) -> Any:
    if name == "UIServer":
        from trialbook.web.server import UIServer

        return UIServer
    msg = f"module 'trialbook.web' has no attribute {name!r}"
    raise AttributeError(msg)
