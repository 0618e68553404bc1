"""Metric curves drawn with matplotlib: one line per run, or a mean line and a band per group.

The experiments gather the points (``experiment.plot(metric, group_by=...)``); this module only
draws them, so it knows nothing of runs or stores. matplotlib is imported when a plot is drawn
(the ``notebook`` extra), never at ``import trialbook``; without a display it draws off screen
(matplotlib's Agg backend), for a saved figure.

Examples
--------
>>> import numpy as np
>>> curves = [Curve("run 1", np.array([0, 1]), np.array([1.0, 0.5]), "lr=0.1"),
...           Curve("run 2", np.array([0, 1]), np.array([0.8, 0.2]), "lr=0.1")]
>>> ax = draw_curves(curves, metric="loss", x="step", grouped=True)
>>> [line.get_label() for line in ax.get_lines()]
['lr=0.1 (2 runs)']
>>> import matplotlib.pyplot as plt; plt.close("all")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trialbook.errors import ConfigError
from trialbook.extras import require

__all__ = ["BANDS", "XS", "Curve", "check_plot_options", "draw_curves", "group_label"]

BANDS = ("minmax", "std")
"""The bands around a group's mean: its runs' minimum to maximum, or one standard deviation."""

XS = ("step", "time")
"""What the horizontal axis shows: the metric's steps, or seconds since the run's first point."""


@dataclass(slots=True)
class Curve:
    """The points of one run's metric: ``label`` (the run), ``x`` and ``y`` (arrays of the
    same length) and ``group`` (the label of its group, ``None`` without ``group_by``)."""

    label: str
    x: Any
    y: Any
    group: str | None = None


def check_plot_options(band: str, x: str, *, grouped: bool = False) -> None:
    """Refuse a band or an axis that :func:`draw_curves` does not know, listing those it knows.

    Examples
    --------
    >>> check_plot_options("range", "step")
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: band must be 'minmax' or 'std' (got 'range')
    """
    if band not in BANDS:
        msg = f"band must be 'minmax' or 'std' (got {band!r})"
        raise ConfigError(msg)
    if x not in XS:
        msg = f"x must be 'step' or 'time' (seconds since the run's first point) (got {x!r})"
        raise ConfigError(msg)
    if grouped and x == "time":
        msg = (
            "group_by draws a group's mean at each step its runs share, and runs share no "
            "times: with group_by, use x='step' (or plot without group_by to see times)"
        )
        raise ConfigError(msg)


def group_label(names: Sequence[str], values: Sequence[Any]) -> str:
    """The label of a group: ``name=value`` pairs.

    Examples
    --------
    >>> group_label(["lr", "opt"], [0.1, "adam"])
    'lr=0.1, opt=adam'
    """
    return ", ".join(f"{name}={value}" for name, value in zip(names, values, strict=True))


def draw_curves(
    curves: Sequence[Curve],
    *,
    metric: str,
    x: str = "step",
    grouped: bool = False,
    band: str = "minmax",
    ax: Any = None,
) -> Any:
    """Draw ``curves`` on ``ax`` (default: a new figure's axes) and return the axes: one line
    per curve, or, ``grouped``, one line per group (the mean, over the group's runs, of the
    values at each x) with a shaded ``band`` (``"minmax"`` or ``"std"``).

    See the module's example.
    """
    check_plot_options(band, x, grouped=grouped)
    require("notebook", "experiment.plot()")
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    if grouped:
        _draw_groups(ax, curves, band)
    else:
        for curve in curves:
            ax.plot(curve.x, curve.y, label=curve.label)
    ax.set_xlabel("seconds" if x == "time" else "step")
    ax.set_ylabel(metric)
    ax.set_title(metric)
    if 0 < len(ax.get_lines()) <= 12:
        ax.legend(fontsize="small")
    return ax


def _draw_groups(ax: Any, curves: Sequence[Curve], band: str) -> None:
    import pandas as pd

    groups: dict[str, list[Curve]] = {}
    for curve in curves:
        groups.setdefault(str(curve.group), []).append(curve)
    for label, members in groups.items():
        # one column per run, aligned on x; a run without a point at some x does not count there
        table = pd.concat(
            [_series(curve) for curve in members], axis=1, ignore_index=True
        ).sort_index()
        mean = table.mean(axis=1)
        if band == "std":
            spread = table.std(axis=1, ddof=0).fillna(0.0)
            low, high = mean - spread, mean + spread
        else:
            low, high = table.min(axis=1), table.max(axis=1)
        runs = f"{len(members)} run" + ("s" if len(members) > 1 else "")
        (line,) = ax.plot(mean.index, mean.to_numpy(), label=f"{label} ({runs})")
        ax.fill_between(
            mean.index, low.to_numpy(), high.to_numpy(), color=line.get_color(), alpha=0.2,
            linewidth=0,
        )  # fmt: skip


def _series(curve: Curve) -> Any:
    import pandas as pd

    series = pd.Series(curve.y, index=curve.x, dtype="float64")
    return series[~series.index.duplicated(keep="last")]  # a step logged twice: its last value
