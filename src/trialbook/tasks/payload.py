"""Tasks as bytes for worker processes, with their classes decoded once per worker.

A task class defined in a script (``__main__``) or a plan file travels *by value*: pickling
the task would carry, and unpickling would rebuild, the whole class for every job. Here every
configuration class inside a task is replaced in the task's pickle by a key (pickle's
``persistent_id``); the class itself is pickled once per submitting process and sent beside
the task (``classes``), and a worker decodes each key's class once and keeps it. A job costs
the worker the unpickling of its parameters only.

Examples
--------
>>> from trialbook.tasks import Param, Task
>>> from trialbook.tasks.payload import dump_task, load_task
>>> class Square(Task):
...     x: Param[int] = 3
>>> payload, classes = dump_task(Square.C(x=4), {})
>>> load_task(payload, classes)
Square(x=4)
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import types
from collections import ChainMap
from typing import Any

__all__ = ["dump_task", "dumps", "load_task"]

_CLASSES: dict[str, type] = {}  # in a worker: key -> class decoded from its bytes


def _named_code(rebuild: Any, args: tuple[Any, ...], filename: str) -> types.CodeType:
    """Rebuild a code object with its real file name (cloudpickle writes ``<dynamic-code>``)."""
    return rebuild(*args).replace(co_filename=filename)


@functools.cache
def _pickler() -> type:
    """cloudpickle's pickler, keeping the file name of code pickled by value, so a traceback
    in a worker names the plan file and line where the task's code is."""
    import cloudpickle

    base = cloudpickle.Pickler
    code_reduce = base.dispatch_table.get(types.CodeType)
    if code_reduce is None:  # pragma: no cover - a cloudpickle without its own code reducer
        return base

    def reduce_code(code: types.CodeType) -> tuple[Any, ...]:
        rebuild, args = code_reduce(code)[:2]
        return _named_code, (rebuild, args, code.co_filename)

    return type("FilePickler", (base,), {"dispatch_table": ChainMap(
        {types.CodeType: reduce_code}, base.dispatch_table
    )})  # fmt: skip


def dumps(obj: Any) -> bytes:
    """``cloudpickle.dumps`` that keeps the file names of code pickled by value.

    Examples
    --------
    >>> import pickle
    >>> def f():
    ...     return 1
    >>> pickle.loads(dumps(f)).__code__.co_filename == f.__code__.co_filename
    True
    """
    buffer = io.BytesIO()
    _pickler()(buffer).dump(obj)
    return buffer.getvalue()


def _key(cls: type) -> str:
    # The class object of this process: a class redefined under the same name gets a new key.
    return f"{cls.__module__}:{cls.__qualname__}:{os.getpid()}:{id(cls)}"


def dump_task(task: Any, cache: dict[type, tuple[str, bytes]]) -> tuple[bytes, dict[str, bytes]]:
    """Pickle ``task`` with its configuration classes as keys; return it and the classes' bytes.

    ``cache`` (class -> key and bytes) is kept by the caller, so each class is pickled once.
    """
    from trialbook.tasks.config import Config

    classes: dict[str, bytes] = {}

    class _Pickler(_pickler()):  # type: ignore[misc]
        def persistent_id(self, obj: Any) -> str | None:
            if not isinstance(obj, type) or not issubclass(obj, Config):
                return None
            known = cache.get(obj)
            if known is None:
                known = cache[obj] = (_key(obj), dumps(obj))
            classes[known[0]] = known[1]
            return known[0]

    buffer = io.BytesIO()
    _Pickler(buffer).dump(task)
    return buffer.getvalue(), classes


def load_task(payload: bytes, classes: dict[str, bytes]) -> Any:
    """Unpickle what :func:`dump_task` made (a plain pickle works too: ``classes={}``)."""

    class _Unpickler(pickle.Unpickler):
        def persistent_load(self, key: str) -> type:
            cls = _CLASSES.get(key)
            if cls is None:
                cls = _CLASSES[key] = pickle.loads(classes[key])
            return cls

    return _Unpickler(io.BytesIO(payload)).load()
