"""Sequences: a run field that grows by appended records (one per epoch, batch, ...).

A :class:`Sequence` is stored as the run's metric points, one series per column, all sharing
the record's index (``idx``) as their step and its time as their time. Appending costs a few
array appends and never rewrites what is stored: a persist writes only the new points (in
chunks, like any metric), and the field itself holds a small marker (its columns and their
point counts). The run that holds the sequence reads the stored points back on demand.

This module sits beside :mod:`trialbook.codecs` (which decodes the marker into an unbound
sequence); :mod:`trialbook.tracking` binds a sequence to its run and writes its points.

Examples
--------
>>> from trialbook.sequence import Sequence
>>> seq = Sequence()
>>> seq.append(epoch=1, loss=0.5)
>>> seq.append(epoch=2, loss=0.25)
>>> len(seq)
2
>>> seq.df()[["idx", "epoch", "loss"]]
   idx  epoch  loss
0    0      1  0.50
1    1      2  0.25
"""

from __future__ import annotations

import array
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trialbook.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Sequence"]

_RESERVED = ("idx", "timestamp")
Loader = Callable[[str], Any]
"""``load(column) -> (steps, values, times) | None``: the stored points of one column."""


class _Points:
    """Points of one column not yet stored: index, value and time of each."""

    __slots__ = ("steps", "times", "values")

    def __init__(self) -> None:
        self.steps = array.array("q")
        self.values = array.array("d")
        self.times = array.array("d")


class Sequence:
    """A growing table of records: ``append(**values)`` adds one, ``df()`` reads them all.

    Each record gets an index ``idx`` (0, 1, 2, ...) and a ``timestamp``; its values are real
    numbers (``int``, ``float``, ``bool`` or NumPy scalars of those kinds), as a metric's are.
    A record may leave out columns: its cell is then missing in ``df()``. Assign a sequence to
    a run field (``run.fields.history = Sequence()``): it is persisted with the run (its
    points go to the metric store, only the new ones at each persist) and reloaded with it.

    Examples
    --------
    >>> seq = Sequence()
    >>> seq.append(loss=0.9)
    >>> seq.append(loss=0.7, accuracy=0.6)
    >>> seq.df()[["idx", "loss", "accuracy"]]
       idx  loss  accuracy
    0    0   0.9       NaN
    1    1   0.7       0.6
    >>> seq.append(note="slow")
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: sequence values are real numbers, like metrics (got 'slow' \
that is a <class 'str'> for 'note'); store other values in run.fields
    """

    __slots__ = ("_kinds", "_length", "_load", "_pending", "_stored", "_touch", "token")

    def __init__(self) -> None:
        self._pending: dict[str, _Points] = {}
        self._kinds: dict[str, str] = {}
        self._stored: dict[str, int] = {}
        self._length = 0
        self._load: Loader | None = None
        self._touch: Callable[[], None] | None = None
        self.token = os.urandom(8).hex()
        """Identifies this sequence (and its copies sent to worker processes): a new
        ``Sequence()`` assigned to the field replaces the stored one."""

    def __len__(self) -> int:
        return self._length

    def __repr__(self) -> str:
        return f"Sequence(rows={self._length}, columns={list(self._kinds)})"

    @property
    def columns(self) -> list[str]:
        """The names of the columns, in the order they first appeared."""
        return list(self._kinds)

    def append(self, **values: Any) -> None:
        """Add one record; its index is the number of records before it.

        Raises
        ------
        ConfigError
            If no value is given, a name is ``idx`` or ``timestamp`` (they are the record's
            own), or a value is not a real number; nothing is appended then.
        """
        if not values:
            msg = "append at least one value: seq.append(epoch=1, loss=0.3)"
            raise ConfigError(msg)
        kinds = {name: _kind(name, value) for name, value in values.items()}
        idx, now = self._length, time.time()
        for name, value in values.items():
            points = self._pending.get(name)
            if points is None:
                points = self._pending[name] = _Points()
            points.steps.append(idx)
            points.values.append(float(value))
            points.times.append(now)
            known = self._kinds.get(name)
            self._kinds[name] = kinds[name] if known in (None, kinds[name]) else "float"
        self._length += 1
        if self._touch is not None:
            self._touch()

    def df(self) -> pd.DataFrame:
        """All records as a table: ``idx``, ``timestamp``, then one column per name.

        Integer columns stay integers (nullable ``Int64`` where some records lack them), and
        boolean ones booleans.
        """
        import numpy as np
        import pandas as pd

        series, times = {}, []
        for name in self._kinds:
            steps, values, stamps = self.points(name)
            series[name] = pd.Series(values, index=steps)
            times.append(pd.Series(stamps, index=steps))
        index = pd.Index(np.arange(self._length, dtype="int64"), name=None)
        frame = pd.DataFrame({"idx": index.to_numpy()})
        stamp = pd.concat(times) if times else pd.Series([], dtype="float64")
        stamp = stamp[~stamp.index.duplicated()].reindex(index)
        frame["timestamp"] = pd.to_datetime(stamp.to_numpy(), unit="s")
        for name, values in series.items():
            column = values.reindex(index).to_numpy()
            frame[name] = _typed(column, self._kinds[name])
        return frame

    # -- for the run that holds it (trialbook.tracking) -------------------------------------

    def copy(self) -> Sequence:
        """An independent copy with every record (stored ones read back), none of them stored.

        Examples
        --------
        >>> seq = Sequence()
        >>> seq.append(loss=0.5)
        >>> twin = seq.copy()
        >>> twin.append(loss=0.4)
        >>> len(seq), len(twin)
        (1, 2)
        """
        twin = Sequence()
        twin._kinds = dict(self._kinds)
        twin._length = self._length
        for name in self._kinds:
            steps, values, times = self.points(name)
            points = twin._pending[name] = _Points()
            points.steps.frombytes(steps.astype("<i8").tobytes())
            points.values.frombytes(values.astype("<f8").tobytes())
            points.times.frombytes(times.astype("<f8").tobytes())
        return twin

    def points(self, name: str) -> tuple[Any, Any, Any]:
        """Every point of one column as NumPy arrays ``(idx, value, time)``: stored ones first,
        then those not yet stored."""
        import numpy as np

        parts = []
        if self._stored.get(name):
            if self._load is None:
                msg = (
                    "this sequence's earlier records are in the store and it is not attached "
                    "to its run here; read it through the run of a loaded experiment"
                )
                raise ConfigError(msg)
            stored = self._load(name)
            if stored is not None:
                parts.append(tuple(np.asarray(a) for a in stored))
        points = self._pending.get(name)
        if points is not None:
            parts.append(
                (
                    np.frombuffer(points.steps, dtype="<i8"),
                    np.frombuffer(points.values, dtype="<f8"),
                    np.frombuffer(points.times, dtype="<f8"),
                )
            )
        if not parts:
            return np.empty(0, "<i8"), np.empty(0, "<f8"), np.empty(0, "<f8")
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))  # type: ignore[return-value]

    def pending(self) -> dict[str, tuple[int, _Points]]:
        """``{column: (position of its first new point, new points)}`` of the points not yet
        stored (see :meth:`written`)."""
        return {
            name: (self._stored.get(name, 0), points)
            for name, points in self._pending.items()
            if len(points.values)
        }

    def written(self) -> None:
        """The points of :meth:`pending` are in the store now: forget them here."""
        for name, points in self._pending.items():
            self._stored[name] = self._stored.get(name, 0) + len(points.values)
        self._pending = {}

    def attach(self, load: Loader | None) -> None:
        """Tie the sequence to its run: ``load(column)`` reads the column's stored points."""
        self._load = load

    def on_append(self, touch: Callable[[], None] | None) -> None:
        """Call ``touch()`` (mark the run changed) when a record is appended."""
        self._touch = touch

    def marker(self) -> dict[str, Any]:
        """What the field stores: the columns with their kinds and point counts, the length
        and the token (the points are in the metric store)."""
        counts = {name: self._stored.get(name, 0) for name in self._kinds}
        for name, points in self._pending.items():
            counts[name] += len(points.values)
        columns = {name: [kind, counts[name]] for name, kind in self._kinds.items()}
        return {"columns": columns, "length": self._length, "token": self.token}

    @classmethod
    def from_marker(cls, marker: dict[str, Any]) -> Sequence:
        """An unattached sequence whose points are all stored, from what :meth:`marker` gave."""
        seq = cls()
        seq._length = int(marker["length"])
        seq.token = str(marker.get("token") or seq.token)
        for name, (kind, count) in marker["columns"].items():
            seq._kinds[name] = kind
            seq._stored[name] = int(count)
        return seq

    def __getstate__(self) -> dict[str, Any]:
        return {
            "pending": {n: (p.steps, p.values, p.times) for n, p in self._pending.items()},
            "kinds": self._kinds,
            "stored": self._stored,
            "length": self._length,
            "token": self.token,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._pending = {}
        for name, (steps, values, times) in state["pending"].items():
            points = self._pending[name] = _Points()
            points.steps, points.values, points.times = steps, values, times
        self._kinds = state["kinds"]
        self._stored = state["stored"]
        self._length = state["length"]
        self.token = state["token"]
        self._load = None
        self._touch = None


def _kind(name: object, value: object) -> str:
    if type(name) is not str or not name or name in _RESERVED:
        msg = (
            f"a sequence column needs a non-empty name other than 'idx' and 'timestamp' "
            f"(the record's own; got {name!r})"
        )
        raise ConfigError(msg)
    t = type(value)
    if t is bool:
        return "bool"
    if t is int:
        return "int"
    if t is float:
        return "float"
    if t.__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        kind = getattr(getattr(value, "dtype", None), "kind", "")
        if kind in "biuf" and kind:
            return {"b": "bool", "i": "int", "u": "int", "f": "float"}[kind]
    msg = (
        f"sequence values are real numbers, like metrics (got {value!r} that is a {t} for "
        f"{name!r}); store other values in run.fields"
    )
    raise ConfigError(msg)


def _typed(column: Any, kind: str) -> Any:
    """A column of float64 values (NaN where missing) back as its kind."""
    import numpy as np
    import pandas as pd

    if kind == "float":
        return column
    missing = np.isnan(column)
    if kind == "int":
        if missing.any():
            return pd.array([None if m else int(v) for v, m in zip(column, missing, strict=True)],
                            dtype="Int64")  # fmt: skip
        return column.astype("int64")
    if missing.any():
        return pd.array([None if m else bool(v) for v, m in zip(column, missing, strict=True)],
                        dtype="boolean")  # fmt: skip
    return column.astype(bool)
