"""Metric chunks as the backends keep them: three little-endian arrays of ``count`` items.

A :class:`~trialbook.storage.records.MetricChunk` holds the new points of one metric of one
run as raw bytes: ``steps`` (int64), ``values`` and ``times`` (float64), and its position
``start`` in the series (its key). A backend stores each chunk by upsert on that key -- as three
columns, or as one byte string with the three arrays one after the other (:func:`join_chunk`,
:func:`split_chunk`) -- and reads a metric back by concatenating its chunks in order of
``start`` (:func:`metric_series`).

Examples
--------
>>> from trialbook.testing import metric_chunk
>>> chunk = metric_chunk(1, "loss", [0.5, 0.25])
>>> data = join_chunk(chunk)
>>> series = metric_series([split_chunk(data, chunk.count)])
>>> series.steps.tolist(), series.values.tolist()
([0, 1], [0.5, 0.25])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from trialbook.storage.records import MetricChunk, MetricSeries

__all__ = ["join_chunk", "metric_series", "split_chunk"]

ChunkParts = Sequence[bytes | bytearray | memoryview]
"""``(steps, values, times)`` of one chunk, as stored (any bytes-like objects)."""


def join_chunk(chunk: MetricChunk) -> bytes:
    """The steps, values and times of a chunk as one byte string (read by :func:`split_chunk`).

    Examples
    --------
    >>> from trialbook.testing import metric_chunk
    >>> len(join_chunk(metric_chunk(1, "m", [1.0, 2.0])))
    48
    """
    return b"".join((chunk.steps, chunk.values, chunk.times))


def split_chunk(data: bytes | memoryview, count: int, offset: int = 0) -> tuple[bytes, ...]:
    """``(steps, values, times)`` of ``count`` items each from ``data``, starting at ``offset``
    (after a header of the backend's own).

    Examples
    --------
    >>> split_chunk(b"HDR" + bytes(range(24)), 1, offset=3)[2]
    b'\\x10\\x11\\x12\\x13\\x14\\x15\\x16\\x17'
    """
    size = 8 * count
    return tuple(bytes(data[offset + i * size : offset + (i + 1) * size]) for i in range(3))


def metric_series(chunks: Iterable[ChunkParts]) -> MetricSeries:
    """All points of one metric of one run: its chunks' ``(steps, values, times)``, in the
    order of their positions, joined into NumPy arrays.

    Examples
    --------
    >>> from trialbook.testing import metric_chunk
    >>> a, b = metric_chunk(1, "m", [1.0]), metric_chunk(1, "m", [2.0], first_step=1)
    >>> metric_series([(a.steps, a.values, a.times), (b.steps, b.values, b.times)]).values
    array([1., 2.])
    """
    import numpy as np

    chunks = list(chunks)
    return MetricSeries(
        steps=np.frombuffer(b"".join(bytes(c[0]) for c in chunks), dtype="<i8"),
        values=np.frombuffer(b"".join(bytes(c[1]) for c in chunks), dtype="<f8"),
        times=np.frombuffer(b"".join(bytes(c[2]) for c in chunks), dtype="<f8"),
    )
