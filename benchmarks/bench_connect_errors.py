"""How long opening a store takes to fail, when it must fail (the figures that
``tests/test_backends.py`` used to assert; a unit test now checks only the error itself).

* a port where nothing listens (PostgreSQL, Redis, MongoDB URLs): target <= 15 s, the
  connect timeout of each backend being 5 s;
* ``rediss://`` to a Redis server that does not speak TLS, with ``connect_timeout=0.5``: the
  handshake never completes and must end with the connect timeout (target <= 5 s, not the
  60 s socket timeout of later commands).

The second figure needs the Redis test server (``TRIALBOOK_TEST_REDIS_URL``;
``scripts/services.sh up`` then ``source .services/env``); without it, it is reported skipped.

    .venv/bin/python benchmarks/bench_connect_errors.py
"""

from __future__ import annotations

import os
import socket
import time
import urllib.parse

from trialbook.errors import StorageError
from trialbook.storage import open_store


def seconds_to_fail(url: str, **options: object) -> float:
    """Seconds ``open_store(url)`` took to raise its ``StorageError``."""
    start = time.perf_counter()
    try:
        open_store(url, **options).close()
    except StorageError:
        return time.perf_counter() - start
    raise SystemExit(f"opening {url} did not fail")


def report(name: str, value: float, target: float) -> bool:
    ok = value <= target
    print(f"{name:52} {value:7.2f} s   target <= {target:g} s  {'ok' if ok else 'MISSED'}")
    return ok


def main() -> int:
    results = []
    with socket.socket() as refusing:  # bound, never listening: every connection is refused
        refusing.bind(("127.0.0.1", 0))
        port = refusing.getsockname()[1]
        for url in (
            f"postgresql://u:pw@127.0.0.1:{port}/db",
            f"redis://127.0.0.1:{port}/0",
            f"mongodb://127.0.0.1:{port}/db",
        ):
            name = f"{url.split(':')[0]}: nothing listens"
            results.append(report(name, seconds_to_fail(url), 15))
    redis_url = os.environ.get("TRIALBOOK_TEST_REDIS_URL", "")
    if redis_url:
        address = urllib.parse.urlsplit(redis_url).netloc
        tls = seconds_to_fail(f"rediss://{address}/0", connect_timeout=0.5)
        results.append(report("rediss:// to a plain Redis server", tls, 5))
    else:
        print("rediss:// to a plain Redis server: skipped (no TRIALBOOK_TEST_REDIS_URL)")
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
