"""Down-sampling metric series on the server, so a chart of millions of points stays small.

:func:`downsample` keeps, per bucket of consecutive points, the first point and the points with
the smallest and largest value (min/max decimation): spikes and the envelope of the curve
survive, and at most ``points`` points are sent.

Examples
--------
>>> import numpy as np
>>> steps, values = downsample(np.arange(1000), np.sin(np.arange(1000) / 50), 100)
>>> len(steps) <= 100, steps[0], steps[-1]
(True, 0, 999)
"""

from __future__ import annotations

from typing import Any

__all__ = ["downsample"]


def downsample(steps: Any, values: Any, points: int) -> tuple[list[Any], list[Any]]:
    """At most ``points`` of the series ``(steps, values)`` (1-D arrays of the same length),
    as lists (non-finite values become ``None``).

    Raises
    ------
    ValueError
        If ``points`` is smaller than 4.

    Examples
    --------
    >>> downsample([1, 2, 3], [0.5, float("nan"), 1.5], 10)
    ([1, 2, 3], [0.5, None, 1.5])
    """
    import numpy as np

    if points < 4:
        msg = f"points must be at least 4 (got {points!r})"
        raise ValueError(msg)
    steps, values = np.asarray(steps), np.asarray(values, dtype="f8")
    n = len(values)
    if n > points:
        keep = _keep(values, (points - 1) // 3)
        steps, values = steps[keep], values[keep]
    finite = np.isfinite(values)
    out = values.astype(object)
    out[~finite] = None
    return steps.tolist(), out.tolist()


def _keep(values: Any, buckets: int) -> Any:
    """Indices kept: first, argmin and argmax of each bucket, and the last point."""
    import numpy as np

    n = len(values)
    size = -(-n // buckets)
    padded = np.full(size * buckets, np.nan)
    padded[:n] = values
    grid = padded.reshape(buckets, size)
    low = np.where(np.isnan(grid), np.inf, grid).argmin(axis=1)
    high = np.where(np.isnan(grid), -np.inf, grid).argmax(axis=1)
    base = np.arange(buckets) * size
    keep = np.concatenate([base, base + low, base + high, [n - 1]])
    return np.unique(keep[keep < n])
