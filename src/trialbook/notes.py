"""Notes on runs and descriptions of experiments (issue 21): markdown text, checked once here.

A run's note is its ``note`` tag (:attr:`trialbook.Run.note`); an experiment's description is
the ``description`` key of its metadata. Both are plain ``str`` of at most :data:`MAX_BYTES`
bytes (UTF-8); ``None`` or a blank text means "none".

Examples
--------
>>> note_text("**tried** a smaller lr", "run 3's note")
'**tried** a smaller lr'
>>> note_text("  ", "run 3's note") is None
True
"""

from __future__ import annotations

from typing import Any

from trialbook.errors import ConfigError

__all__ = ["MAX_BYTES", "NOTE_TAG", "note_text"]

NOTE_TAG = "note"
"""The tag that holds a run's note (MLflow keeps run descriptions in a tag too)."""

MAX_BYTES = 64 * 1024
"""The largest note or description, in bytes of its UTF-8 text: a description, not a file (keep
files as artifacts)."""


def note_text(value: Any, what: str) -> str | None:
    """``value`` checked as a note or description named ``what``: the text, or ``None`` for
    ``None`` and a blank text (which remove it).

    Raises
    ------
    ConfigError
        If ``value`` is not a ``str`` or ``None``, or is longer than :data:`MAX_BYTES`.

    Examples
    --------
    >>> note_text(None, "the description") is None
    True
    >>> note_text(3, "the description")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: the description must be a str (markdown) or None to remove it ...
    """
    if value is None:
        return None
    if not isinstance(value, str):
        msg = (
            f"{what} must be a str (markdown) or None to remove it "
            f"(got {value!r} that is a {type(value)})"
        )
        raise ConfigError(msg)
    if not value.strip():
        return None
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        msg = (
            f"{what} is {size:,} bytes, more than the {MAX_BYTES:,} a note or description may "
            "hold; keep long texts and files as artifacts (run.fields or an artifact) and link "
            "to them"
        )
        raise ConfigError(msg)
    return value
