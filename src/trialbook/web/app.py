"""The Starlette application: access-token check, HTML pages, static assets, the JSON API.

Pages are small HTML shells (``templates/page.html``) that the bundled ``static/app.js`` fills
from the JSON API; charts use the bundled uPlot (``static/VENDORED.md``). Nothing is loaded
from elsewhere.

Every request must carry the access token: ``Authorization: Bearer <token>`` (scripts), the
``token`` query parameter (the printed URL; an HTML page then sets a cookie and redirects to
the same URL without the token), or that cookie. Anything else gets 403.

Examples
--------
>>> from starlette.testclient import TestClient
>>> from trialbook.storage import open_store
>>> store = open_store("sqlite:///:memory:")
>>> app = create_app(store, token="secret")
>>> with TestClient(app) as client:
...     client.get("/api/experiments").status_code, client.get(
...         "/api/experiments", headers={"Authorization": "Bearer secret"}).json()
(403, {'experiments': []})
>>> store.close()
"""

from __future__ import annotations

import html
import http.cookies
import json
import pathlib
import re
import secrets
import urllib.parse
from typing import Any

from trialbook.errors import ConfigError
from trialbook.web.api import UIState, register_segment, routes

__all__ = ["create_app"]

HERE = pathlib.Path(__file__).parent
COOKIE = "trialbook_token"
PAGES = {
    "/": "experiments",
    "/e/{name:segment}": "runs",
    "/e/{name:segment}/runs/{run_id:int}": "run",
    "/e/{name:segment}/compare": "compare",
}


class EncodedSlashes:
    """ASGI middleware keeping ``%2F`` (and ``%25``) encoded in the path that routes see, so a
    name holding ``/`` stays one segment; the ``segment`` path convertor
    (:class:`trialbook.web.api.SegmentConvertor`) decodes it. Servers decode
    the whole path, which would split ``/e/a%2Fb`` into the segments ``a`` and ``b``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        text = raw.decode("latin-1") if raw else ""
        if _ESCAPES.search(text):
            parts = _ESCAPES.split(text)
            path = "".join(p.upper() if i % 2 else urllib.parse.unquote(p)
                           for i, p in enumerate(parts))  # fmt: skip
            scope = {**scope, "path": path}
        await self.app(scope, receive, send)


_ESCAPES = re.compile(r"(%2[fF]|%25)")


class TokenGate:
    """ASGI middleware refusing (403) every HTTP request without the access token."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.token = app, token

    def _matches(self, candidate: str | None) -> bool:
        return bool(candidate) and secrets.compare_digest(
            str(candidate).encode(), self.token.encode()
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cookie_name = _cookie_name(scope)
        auth = headers.get("authorization", "")
        jar = http.cookies.SimpleCookie()
        try:
            jar.load(headers.get("cookie", ""))
        except http.cookies.CookieError:
            jar = http.cookies.SimpleCookie()
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        in_query = self._matches((query.get("token") or [None])[0])
        if self._matches(auth[7:] if auth.lower().startswith("bearer ") else None) or (
            cookie_name in jar and self._matches(jar[cookie_name].value)
        ):
            await self.app(scope, receive, send)
        elif in_query and scope["method"] == "GET" and not scope["path"].startswith("/api/"):
            await self._redirect_with_cookie(scope, query, cookie_name, send)
        elif in_query:
            await self.app(scope, receive, send)
        else:
            await _refuse(send, scope["path"].startswith("/api/"))

    async def _redirect_with_cookie(
        self, scope: Any, query: dict[str, list[str]], cookie_name: str, send: Any
    ) -> None:
        rest = {k: v for k, v in query.items() if k != "token"}
        path = scope.get("raw_path", b"").decode("latin-1") or urllib.parse.quote(scope["path"])
        location = path + ("?" + urllib.parse.urlencode(rest, doseq=True) if rest else "")
        cookie = f"{cookie_name}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        await send({"type": "http.response.start", "status": 303, "headers": [
            (b"location", location.encode("latin-1")), (b"set-cookie", cookie.encode("latin-1")),
            (b"content-length", b"0")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b""})


def _cookie_name(scope: Any) -> str:
    """One cookie per port: browsers share cookies between ports of the same host."""
    server = scope.get("server") or ("", None)
    return f"{COOKIE}_{server[1]}" if server[1] else COOKIE


async def _refuse(send: Any, api: bool) -> None:
    text = (
        "403 Forbidden: missing or wrong access token. Open the URL printed by `trialbook ui` "
        "(it ends with ?token=...), or send 'Authorization: Bearer <token>'."
    )
    body = json.dumps({"error": text}).encode() if api else text.encode()
    kind = b"application/json" if api else b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": 403, "headers": [
        (b"content-type", kind), (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def _page(name: str) -> Any:
    from starlette.responses import HTMLResponse

    template = (HERE / "templates" / "page.html").read_text()

    async def page(request: Any) -> Any:
        ui: UIState = request.app.state.ui
        config = {"page": name, **request.path_params,
                  "query": dict(request.query_params), "actions": ui.allow_actions}  # fmt: skip
        title = html.escape(str(request.path_params.get("name", "experiments")))
        data = json.dumps(config).replace("</", "<\\/")
        body = template.replace("{{title}}", title).replace("{{config}}", data)
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})

    return page


async def _no_icon(request: Any) -> Any:
    from starlette.responses import Response

    return Response(status_code=204)


def create_app(store: Any, *, token: str | None = None, allow_actions: bool = False) -> Any:
    """The ASGI application of the UI over ``store``.

    Parameters
    ----------
    store
        Any :class:`~trialbook.storage.Store`.
    token
        The access token every request must carry; ``None`` generates one
        (``secrets.token_urlsafe``), readable as ``app.state.ui.token``.
    allow_actions
        Allow deleting runs and killing jobs (read-only otherwise).

    Raises
    ------
    ConfigError
        If ``token`` is given but empty or not a str.

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> store = open_store("sqlite:///:memory:")
    >>> app = create_app(store)
    >>> len(app.state.ui.token) > 20
    True
    >>> store.close()
    """
    from trialbook.extras import require

    require("ui", "the web UI")
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    if token is None:
        token = secrets.token_urlsafe(24)
    if not isinstance(token, str) or not token:
        msg = f"token must be a non-empty str, or None to generate one (got {token!r})"
        raise ConfigError(msg)
    register_segment()
    page_routes = [Route(path, _page(name), name=f"page_{name}") for path, name in PAGES.items()]
    page_routes.append(Route("/favicon.ico", _no_icon))
    app = Starlette(
        routes=[*routes(), *page_routes,
                Mount("/static", StaticFiles(directory=HERE / "static"), name="static")],
        middleware=[Middleware(EncodedSlashes), Middleware(TokenGate, token=token)],
    )  # fmt: skip
    app.state.ui = UIState(store=store, token=token, allow_actions=allow_actions)
    return app
