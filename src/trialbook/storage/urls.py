"""Store URLs as shown to people: passwords masked as ``***``; and trialbook's own query
parameters.

:func:`public_url` is the one place that hides a password: store ``url`` attributes, reprs,
error messages, the ``trialbook`` commands and the web UI all show URLs through it (issue 18).

Examples
--------
>>> public_url("postgresql://ann:s3cret@host:5432/db")
'postgresql://ann:***@host:5432/db'
>>> public_url("unix://:s3cret@/tmp/r.sock?db=1&password=s3cret")
'unix://:***@/tmp/r.sock?db=1&password=***'
>>> take_param("redis://host:6379/0?prefix=team:&ssl_cert_reqs=none", "prefix")
('redis://host:6379/0?ssl_cert_reqs=none', 'team:')
"""

from __future__ import annotations

import urllib.parse

__all__ = ["public_url", "take_param", "with_param"]

MASK = ":***"
"""What stands for a password in the user part of a URL shown to people."""


def public_url(url: str) -> str:
    """The URL with its password masked as ``***`` (in the user part or a ``password`` query
    parameter); anything that is not a URL (a directory path) is returned as it is.

    It works on URLs no driver could parse, so that error messages never show a password.

    Examples
    --------
    >>> public_url("mongodb://ann%40lab:pw@h1:27017,h2:27017/db?authSource=admin")
    'mongodb://ann%40lab:***@h1:27017,h2:27017/db?authSource=admin'
    >>> public_url("postgresql://ann@host/db"), public_url("runs/store")
    ('postgresql://ann@host/db', 'runs/store')
    >>> public_url("https://bot:ghp_t0ken@github.com/team/repo.git")
    'https://bot:***@github.com/team/repo.git'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    base, has_query, query = rest.partition("?")
    netloc, slash, path = base.partition("/")
    auth, at, host = netloc.rpartition("@")
    if at:
        user, has_password, _ = auth.partition(":")
        netloc = f"{user}{MASK if has_password else ''}@{host}" if user or has_password else host
    if has_query:
        query = _encode([(k, "***" if k == "password" else v) for k, v in _pairs(query)])
    return f"{scheme}://{netloc}{slash}{path}" + (f"?{query}" if query else "")


def take_param(url: str, name: str) -> tuple[str, str | None]:
    """``(url without the query parameter name, its value or None)``; the rest is kept as is.

    Examples
    --------
    >>> take_param("unix:///tmp/r.sock?db=2&prefix=team:", "prefix")
    ('unix:///tmp/r.sock?db=2', 'team:')
    """
    base, sep, query = url.partition("?")
    if not sep:
        return url, None
    pairs = _pairs(query)
    value = next((v for k, v in pairs if k == name), None)
    rest = _encode([(k, v) for k, v in pairs if k != name])
    return base + (f"?{rest}" if rest else ""), value


def with_param(url: str, name: str, value: str) -> str:
    """The URL with one more query parameter.

    Examples
    --------
    >>> with_param("redis://host:6379/0", "prefix", "team:")
    'redis://host:6379/0?prefix=team:'
    """
    return f"{url}{'&' if '?' in url else '?'}{_encode([(name, value)])}"


def _pairs(query: str) -> list[tuple[str, str]]:
    return urllib.parse.parse_qsl(query, keep_blank_values=True)


def _encode(pairs: list[tuple[str, str]]) -> str:
    return urllib.parse.urlencode(pairs, safe=":/*")
