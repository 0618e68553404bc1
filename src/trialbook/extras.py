"""Optional parts of trialbook and the extra that installs each: one clear error when missing.

A feature that needs an optional package calls :func:`require` (or turns an ``ImportError``
it caught into an error with :func:`missing_extra`): the user reads which extra to install,
``pip install 'trialbook[ui]'``, instead of a ``ModuleNotFoundError`` traceback.

Examples
--------
>>> require("ui", "the web UI")
>>> print(missing_extra(ModuleNotFoundError("No module named 'redis'", name="redis"),
...                     "a Redis store"))
a Redis store needs the 'redis' extra (the package 'redis' is not installed):
pip install 'trialbook[redis]'
"""

from __future__ import annotations

import importlib

from trialbook.errors import MissingExtraError

__all__ = ["EXTRAS", "missing_extra", "require"]

EXTRAS: dict[str, tuple[str, ...]] = {
    "ui": ("starlette", "uvicorn"),
    "postgres": ("sqlalchemy", "psycopg"),
    "mysql": ("sqlalchemy", "pymysql"),
    "redis": ("redis",),
    "mongo": ("pymongo",),
    "distributed": ("distributed",),
    "viz": ("graphviz",),
    "notebook": ("matplotlib",),
}
"""Each extra of ``pyproject.toml`` and the top-level modules it provides."""

_EXTRA_OF = {
    "starlette": "ui", "uvicorn": "ui", "sqlalchemy": "postgres", "psycopg": "postgres",
    "psycopg2": "postgres", "pymysql": "mysql", "MySQLdb": "mysql", "redis": "redis",
    "pymongo": "mongo", "bson": "mongo", "distributed": "distributed", "graphviz": "viz",
    "matplotlib": "notebook",
}  # fmt: skip


def require(extra: str, purpose: str) -> None:
    """Import the modules of ``extra`` now, or raise :class:`MissingExtraError` naming it.

    Raises
    ------
    MissingExtraError
        If a module of the extra cannot be imported.

    Examples
    --------
    >>> require("viz", "drawing a step graph") is None
    True
    """
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            error = missing_extra(exc, purpose, extra)
            assert error is not None  # an extra is given
            raise error from exc


def missing_extra(
    exc: ImportError, purpose: str, extra: str | None = None
) -> MissingExtraError | None:
    """The error to raise for ``exc``: a :class:`MissingExtraError` naming the extra that
    installs the missing module (``extra`` when given, else found from the module's name), or
    ``None`` when the module belongs to no extra (re-raise ``exc`` then).

    Examples
    --------
    >>> print(missing_extra(ModuleNotFoundError("No module named 'pymysql'", name="pymysql"),
    ...                     "a MySQL store"))
    a MySQL store needs the 'mysql' extra (the package 'pymysql' is not installed):
    pip install 'trialbook[mysql]'
    """
    module = (getattr(exc, "name", None) or "").partition(".")[0]
    extra = extra or _EXTRA_OF.get(module)
    if extra is None:
        return None
    what = f"the package {module!r} is not installed" if module else str(exc)
    return MissingExtraError(
        f"{purpose} needs the {extra!r} extra ({what}): pip install 'trialbook[{extra}]'"
    )
