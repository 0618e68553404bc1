"""Forcing the interleavings that concurrency tests are about, without clocks.

A test of a race must make the race happen and then check that it did, instead of sleeping
and hoping that two things overlapped. The pieces here are shared by the tests of the job
scheduler, tokens, the Dask launcher and the stores; they run in the test process, in worker
processes and in scripts started by the tests (which put this folder on ``sys.path``):

- :func:`wait_until`: poll a condition, fail after a generous timeout (never a duration
  assertion: only a bound on how long a broken test hangs);
- :class:`Occupancy`: how many holders were inside a section at once, recorded by the holders
  themselves in a file under an exclusive ``flock`` (no timestamps compared);
- :func:`recording`: wrap a function so that each call whose result is "refused" (e.g. a token
  that gave no units, a job lock found held) appends a line to a file that other processes read:
  the evidence that the contended path ran, and the event a holder waits for.

Examples
--------
>>> import pathlib, tempfile
>>> place = Occupancy(pathlib.Path(tempfile.mkdtemp()) / "inside.json")
>>> place.enter("a"); place.enter("b"); place.leave(); place.leave()
>>> place.read()["most"], place.read()["entered"]
(2, {'a': 1, 'b': 1})
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
import time
from collections.abc import Callable, Iterator
from typing import Any

TIMEOUT = 60.0
"""How long a forced interleaving may take before the test fails (a hang, not a slow run)."""


def wait_until(condition: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    """Poll ``condition()`` until it is truthy and return its value; fail after ``timeout``
    seconds saying ``what`` never happened.

    Examples
    --------
    >>> wait_until(lambda: 42, "the answer")
    42
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting until {what}")
        time.sleep(0.01)


@contextlib.contextmanager
def _locked(path: pathlib.Path) -> Iterator[None]:
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Occupancy:
    """A JSON file of how many holders are ``inside`` a section now, the ``most`` at once, how
    many ``entered`` (by label) and ``left`` (with ``notes``: what each saw); updated under an
    exclusive lock, so processes count themselves in and out exactly (see the module
    example)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = pathlib.Path(path)

    def _update(self, change: Callable[[dict[str, Any]], None]) -> None:
        with _locked(self.path):
            state = self._load()
            change(state)
            self.path.write_text(json.dumps(state))

    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"inside": 0, "most": 0, "entered": {}, "left": 0, "notes": {}}

    def enter(self, label: str = "") -> None:
        """Count one more holder inside (and one more entry of ``label``)."""

        def change(state: dict[str, Any]) -> None:
            state["inside"] += 1
            state["most"] = max(state["most"], state["inside"])
            state["entered"][label] = state["entered"].get(label, 0) + 1

        self._update(change)

    def leave(self, note: str = "") -> None:
        """Count one holder out (with a ``note`` counted in ``notes``, when given)."""

        def change(state: dict[str, Any]) -> None:
            state["inside"] -= 1
            state["left"] += 1
            if note:
                state["notes"][note] = state["notes"].get(note, 0) + 1

        self._update(change)

    def read(self) -> dict[str, Any]:
        """The current state (``inside``, ``most``, ``entered`` by label, ``left``, ``notes``)."""
        with _locked(self.path):
            return self._load()

    def entered(self, label: str) -> int:
        """How many holders labelled ``label`` entered so far."""
        return int(self.read()["entered"].get(label, 0))


def recording(
    original: Callable[..., Any], path: str | os.PathLike[str], refused: Callable[[Any], bool]
) -> Callable[..., Any]:
    """``original`` that also appends a line to ``path`` each time ``refused(result)``; a
    method stays a method (the line is the ``name`` of ``self`` when it has one).

    Examples
    --------
    >>> import tempfile
    >>> log = pathlib.Path(tempfile.mkdtemp()) / "refusals"
    >>> pick = recording(lambda wanted: None if wanted > 2 else wanted, log, lambda r: r is None)
    >>> pick(1), pick(3), count(log)
    (1, None, 1)
    """

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if refused(result):
            name = getattr(args[0], "name", "") if args else ""
            with _locked(pathlib.Path(path)), open(path, "a") as f:
                f.write(f"{name}\n")
        return result

    return wrapper


def count(path: str | os.PathLike[str], name: str | None = None) -> int:
    """How many lines ``path`` has (those equal to ``name`` only, when given); 0 if missing."""
    try:
        lines = pathlib.Path(path).read_text().splitlines()
    except FileNotFoundError:
        return 0
    return len(lines) if name is None else sum(line == name for line in lines)


def hold_until_contended(
    place: Occupancy,
    token: str,
    *,
    refusals: str | os.PathLike[str],
    label: str,
    group: int,
    limit: int = 1,
) -> str:
    """Called by a job that holds units of ``token``, once inside ``place``: wait until a
    scheduler is refused units of that token (a new ``token`` line in ``refusals``), so that
    the limit is tested while this job holds them; or until all ``group`` jobs labelled
    ``label`` entered (nobody is left to be refused). Return ``"contended"`` or ``"alone"``, or
    ``"exceeded"`` at once when more than ``limit`` jobs are inside (the bug the test is for:
    no need to wait)."""
    seen = count(refusals, token)

    def outcome() -> str | None:
        if count(refusals, token) > seen:
            return "contended"
        state = place.read()
        if state["inside"] > limit:
            return "exceeded"
        return "alone" if state["entered"].get(label, 0) >= group else None

    return wait_until(outcome, f"a scheduler asks for units of token {token!r}")
