"""The columns an experiment's values were kept in (:mod:`trialbook.storage.value_cache`),
saved to files so that a process started later (the web UI's server after a restart) has them
at once instead of reading a million documents again, which takes seconds.

One file per experiment, ``<directory>/<experiment id>.npz`` (NumPy arrays, no pickles), holding
the run ids, each name's :class:`~trialbook.storage.value_columns.Column` and the experiment's
token (``experiment_token()``: creation time, count of the writes and deletes of its runs, that
count at the last delete, and the random stamp of the last one) they were read at. A file is
used only when the experiment's token is the same now: not after any write or delete of its
runs, by any process, nor for another experiment given the same id, nor after an older copy of
the store was restored and written as many times (another stamp). A file that does not match
is removed; one that cannot be read (cut short, changed) is removed and the columns are read
from the store as before. Files are written whole and then renamed into place, so that a
reader never finds half of one.

The directory of a store's files is :func:`default_directory`: ``$TRIALBOOK_CACHE_DIR``, else
``$XDG_CACHE_HOME/trialbook``, else ``~/.cache/trialbook``, then ``columns/`` and a digest of
the store's location (its file, or its URL without password).

Examples
--------
>>> import tempfile
>>> from trialbook.storage.value_columns import Column
>>> files = ValueFiles(tempfile.mkdtemp())
>>> ids, column = np.array([1, 2, 3]), Column.of([0.5, "a", None])
>>> token = (1700000000.0, 4, 0, 12345)
>>> files.save(7, token, ids, {Name("params", ("lr",)): column})
>>> got_ids, got = files.load(7, token)
>>> got_ids.tolist(), got[Name("params", ("lr",))].words
([1, 2, 3], ['a'])
>>> files.load(7, (1700000000.0, 5, 0, 999)) is None  # written since: not used, removed
True
>>> files.load(7, token) is None
True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import tempfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from trialbook.storage.query import Name

__all__ = ["BUDGET", "FORMAT", "ValueFiles", "default_directory"]

FORMAT = 1
"""The layout of the files; a file of another layout is not read (and is replaced)."""
BUDGET = 2 << 30
"""Bytes of value files kept at most, all stores together (the files of the other stores are
the siblings of a store's directory): a save removes the least recently used beyond it."""


def default_directory(store: Any) -> pathlib.Path | None:
    """The directory of the value files of ``store`` (see the module documentation), or
    ``None`` for a store without a lasting location (in memory).

    Examples
    --------
    >>> import tempfile
    >>> from trialbook.storage import open_store
    >>> store = open_store("sqlite:///:memory:")
    >>> default_directory(store) is None
    True
    >>> store.close()
    >>> store = open_store(tempfile.mkdtemp())
    >>> default_directory(store).parent.name
    'columns'
    >>> store.close()
    """
    path = getattr(store, "path", None)
    if path is not None:
        if str(path) == ":memory:":
            return None
        identity = f"file:{os.path.abspath(path)}"
    else:
        url = getattr(store, "url", None)
        if not url or ":memory:" in url or url.rstrip("/").endswith("sqlite:"):
            return None
        identity = f"url:{url}"
    base = os.environ.get("TRIALBOOK_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "trialbook",
    )
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:20]
    return pathlib.Path(base) / "columns" / digest


class ValueFiles:
    """The value files of one store, in ``directory`` (created when a file is first saved).

    Parameters
    ----------
    directory
        Where the files go: one per experiment.
    budget
        Bytes of files kept at most in ``directory`` and its siblings (:data:`BUDGET`).
    """

    def __init__(self, directory: str | os.PathLike[str], *, budget: int = BUDGET) -> None:
        self.directory = pathlib.Path(directory)
        self.budget = budget

    def path(self, experiment_id: int) -> pathlib.Path:
        """The file of an experiment."""
        return self.directory / f"{int(experiment_id)}.npz"

    def save(
        self,
        experiment_id: int,
        token: Sequence[Any],
        ids: np.ndarray,
        columns: Mapping[Name, Any],
    ) -> None:
        """Write the columns of an experiment read at ``token`` (its ``experiment_token()``),
        replacing its file whole. Raises ``OSError`` when it cannot (the caller goes on
        without)."""
        names = list(columns)
        header = {"format": FORMAT, "token": list(token),
                  "names": [[n.where, list(n.path)] for n in names]}  # fmt: skip
        arrays: dict[str, Any] = {
            "header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
            "ids": np.asarray(ids, dtype=np.int64),
        }
        for i, name in enumerate(names):
            column = columns[name]
            words = [w.encode("utf-8", "surrogatepass") for w in column.words]
            ends = np.cumsum([len(w) for w in words], dtype=np.int64)
            data = np.frombuffer(b"".join(words), dtype=np.uint8)
            arrays |= {f"kind{i}": column.kind, f"num{i}": column.num, f"code{i}": column.code,
                       f"ends{i}": ends, f"words{i}": data}  # fmt: skip
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                np.savez(out, **arrays)
            os.replace(temporary, self.path(experiment_id))
        except BaseException:
            pathlib.Path(temporary).unlink(missing_ok=True)
            raise
        self._prune()

    def _prune(self) -> None:
        """Remove the least recently used files (of any store) beyond :data:`BUDGET`, and the
        half-written files of a process killed while it saved (an hour old or more)."""
        files = []
        for path in self.directory.parent.glob("*/*"):
            with contextlib.suppress(OSError):  # removed meanwhile by another process
                stat = path.stat()
                if path.suffix == ".npz":
                    files.append((stat.st_mtime, stat.st_size, path))
                elif path.suffix == ".tmp" and stat.st_mtime < time.time() - 3600:
                    path.unlink()
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files, key=lambda f: f[0]):
            if total <= self.budget:
                return
            with contextlib.suppress(OSError):
                path.unlink()
            total -= size

    def load(
        self, experiment_id: int, token: Sequence[Any]
    ) -> tuple[np.ndarray, dict[Name, Any]] | None:
        """``(run ids, {name: column})`` saved for the experiment at ``token``, or ``None``:
        no file, a file of another token or layout (removed: it can only be replaced), or one
        that cannot be read (removed)."""
        from trialbook.storage.value_columns import Column

        path = self.path(experiment_id)
        try:  # the file opened here: NumPy leaves its own open when a damaged file raises
            with open(path, "rb") as file, np.load(file, allow_pickle=False) as saved:
                header = json.loads(saved["header"].tobytes())
                if header.get("format") != FORMAT or header.get("token") != list(token):
                    raise _Stale
                ids = saved["ids"]
                columns = {}
                for i, (where, parts) in enumerate(header["names"]):
                    data, ends = saved[f"words{i}"].tobytes(), saved[f"ends{i}"].tolist()
                    words = [data[a:b].decode("utf-8", "surrogatepass")
                             for a, b in zip([0, *ends], ends, strict=False)]  # fmt: skip
                    column = Column(saved[f"kind{i}"], saved[f"num{i}"], saved[f"code{i}"],
                                    words)  # fmt: skip
                    if not len(column.kind) == len(column.num) == len(column.code) == len(ids):
                        raise ValueError(f"{path}: a column of another length than the ids")
                    columns[Name(where, tuple(parts))] = column
            os.utime(path)  # used: the last to go when files are pruned
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (_Stale, OSError, ValueError, KeyError, TypeError, EOFError,
                zipfile.BadZipFile):  # fmt: skip
            with contextlib.suppress(OSError):  # another process may have replaced it
                path.unlink(missing_ok=True)
            return None
        return ids, columns


class _Stale(Exception):
    """A file saved at another token, or in another layout."""
