"""HTML for notebooks: what Jupyter and VS Code show of sessions, experiments, runs and trials.

A notebook shows an object's ``_repr_html_()`` when it ends a cell. The objects gather what to
show (a few rows, counts kept by the store, a run's metric points) and this module turns those
plain values into HTML; it knows nothing of runs or stores. The HTML is self-contained and
safe to show whatever the values hold:

* every text is escaped (a parameter may be ``"<script>"``); no script, no external resource;
* no colour is set: text and lines inherit the notebook's theme (``color: inherit``,
  ``currentColor``), so dark themes read as well as light ones;
* a metric is a sparkline, a small inline SVG polyline of at most :data:`SPARK_POINTS` points.

Examples
--------
>>> print(counts_line({"done": 2, "failed": 1, "pending": 0}))
<span>done 2 · failed 1</span>
>>> '<polyline' in sparkline([0.9, 0.5, 0.3])
True
>>> print(escape("<b>bold</b> & more"))
&lt;b&gt;bold&lt;/b&gt; &amp; more
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ROWS",
    "SPARK_POINTS",
    "Html",
    "card",
    "count",
    "counts_line",
    "escape",
    "frame_table",
    "mapping_table",
    "rows_table",
    "sparkline",
]

ROWS = 20
"""Rows of a table shown in a notebook; the rest is counted (``… N more``)."""

SPARK_POINTS = 200
"""Points of a sparkline at most: a longer metric is thinned, evenly, keeping its last point."""

_TEXT_LIMIT = 80
_BOX = "color: inherit; font-size: 0.9em; line-height: 1.4"
_TABLE = "border-collapse: collapse; margin: 2px 0 6px 0; color: inherit"
_ROW = "border-bottom: 1px solid rgba(128, 128, 128, 0.3)"
_CELL = "padding: 1px 8px; text-align: left; white-space: nowrap"
_HEAD = f"{_CELL}; font-weight: bold"
_MUTED = "opacity: 0.7"


class Html(str):
    """A text that is HTML already (a sparkline in a table cell): :func:`escape` keeps it.

    Examples
    --------
    >>> escape(Html("<i>kept</i>")), escape("<i>escaped</i>")
    ('<i>kept</i>', '&lt;i&gt;escaped&lt;/i&gt;')
    """

    __slots__ = ()


def escape(value: Any, limit: int = _TEXT_LIMIT) -> str:
    """``value`` as text safe in HTML: formatted for a table cell (numbers to 6 significant
    digits, times to the second, nothing for a missing value), cut at ``limit`` characters.

    Examples
    --------
    >>> escape(0.123456789), escape(None), escape(float("nan")), escape("a" * 90)[-3:]
    ('0.123457', '', '', 'aa…')
    >>> import numpy as np, pandas as pd
    >>> escape(np.zeros((3, 4))), escape(pd.DataFrame({"a": [1, 2]})), escape(pd.NaT)
    ('ndarray 3x4 float64', 'DataFrame 2x1', '')
    """
    if isinstance(value, Html):
        return value
    text = _text(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=True)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    if type(value).__module__.partition(".")[0] in {"numpy", "pandas"}:
        return _library_text(value)
    if isinstance(value, _dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, _dt.timedelta):
        return f"{value.total_seconds():.3g} s"
    return str(value)


def _library_text(value: Any) -> str:
    """A NumPy or pandas scalar (a timestamp, a missing value) as the plain one would read."""
    if getattr(value, "ndim", 0):  # an array or a frame in a cell: its summary, not its items
        shape = "x".join(map(str, value.shape))
        return f"{type(value).__name__} {shape} {getattr(value, 'dtype', '')}".rstrip()
    import pandas as pd

    if pd.isna(value):
        return ""
    if isinstance(value, pd.Timestamp):  # not to_pydatetime(): it warns of nanoseconds
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, pd.Timedelta):
        return f"{value.total_seconds():.3g} s"
    item = getattr(value, "item", None)
    return _text(item()) if callable(item) else str(value)


def rows_table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, more: int = 0) -> str:
    """A ``<table>`` of ``rows`` under ``header``, every cell escaped; ``more`` rows not shown
    are counted in a last line.

    Examples
    --------
    >>> print(rows_table(["a", "b"], [[1, "<x>"]], more=3))
    <table style="..."><thead><tr style="..."><th style="...">a</th>...</thead><tbody>
    <tr style="..."><td style="...">1</td><td style="...">&lt;x&gt;</td></tr>
    </tbody></table><div style="opacity: 0.7">… 3 more</div>
    """
    head = "".join(f'<th style="{_HEAD}">{escape(name)}</th>' for name in header)
    body = "".join(
        f'<tr style="{_ROW}">'
        + "".join(f'<td style="{_CELL}">{escape(cell)}</td>' for cell in row)
        + "</tr>\n"
        for row in rows
    )
    table = (
        f'<table style="{_TABLE}"><thead><tr style="{_ROW}">{head}</tr></thead><tbody>\n'
        f"{body}</tbody></table>"
    )
    if more > 0:
        table += f'<div style="{_MUTED}">… {more} more</div>'
    return table


def frame_table(frame: pd.DataFrame, *, more: int = 0) -> str:
    """:func:`rows_table` of a pandas frame, its index as the first column.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"lr": [0.1]}, index=pd.Index([7], name="run_id"))
    >>> ">run_id</th>" in frame_table(frame)
    True
    """
    header = [str(frame.index.name or ""), *map(str, frame.columns)]
    rows = (
        [index, *values]
        for index, values in zip(frame.index, frame.itertuples(index=False), strict=True)
    )
    return rows_table(header, rows, more=more)


def mapping_table(values: Mapping[str, Any]) -> str:
    """A two-column table of names and values (params, fields); empty text for no value.

    Examples
    --------
    >>> mapping_table({})
    ''
    >>> ">lr</td><td" in mapping_table({"lr": 0.1})
    True
    """
    if not values:
        return ""
    return rows_table(["name", "value"], ([name, value] for name, value in values.items()))


def sparkline(values: Sequence[float] | Any, *, width: int = 120, height: int = 24) -> Html:
    """A small inline SVG line of ``values`` (NaN and infinite points skipped), drawn in the
    text colour; an empty ``<svg>`` when no point is finite.

    Examples
    --------
    >>> svg = sparkline([1.0, 2.0, float("nan"), 3.0])
    >>> svg.startswith("<svg") and 'stroke="currentColor"' in svg
    True
    >>> '<polyline' in sparkline([])
    False
    """
    finite = [(i, float(v)) for i, v in enumerate(_thinned(values)) if math.isfinite(v)]
    size = f'width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
    if not finite:
        return Html(f'<svg xmlns="http://www.w3.org/2000/svg" {size}></svg>')
    if len(finite) == 1:  # one point: a short flat line, visible
        finite = [(0, finite[0][1]), (1, finite[0][1])]
    first, last = finite[0][0], finite[-1][0]
    low, high = min(v for _, v in finite), max(v for _, v in finite)
    span_x, span_y = (last - first) or 1, (high - low) or 1.0
    pad = 2
    points = " ".join(
        f"{pad + (i - first) / span_x * (width - 2 * pad):.1f},"
        f"{height - pad - ((v - low) / span_y if high > low else 0.5) * (height - 2 * pad):.1f}"
        for i, v in finite
    )
    return Html(
        f'<svg xmlns="http://www.w3.org/2000/svg" {size} style="vertical-align: middle">'
        f'<polyline fill="none" stroke="currentColor" stroke-width="1.2" points="{points}"/>'
        "</svg>"
    )


def _thinned(values: Sequence[float] | Any) -> list[float]:
    values = [float(v) for v in values]
    if len(values) <= SPARK_POINTS:
        return values
    step = (len(values) - 1) / (SPARK_POINTS - 1)
    return [values[round(i * step)] for i in range(SPARK_POINTS)]


def count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1.

    Examples
    --------
    >>> count(1, "run"), count(3, "trial")
    ('1 run', '3 trials')
    """
    return f"{n} {noun}" + ("" if n == 1 else "s")


def counts_line(counts: Mapping[str, int]) -> str:
    """The non-zero counts as ``name n · name n`` (runs by status).

    Examples
    --------
    >>> counts_line({"done": 0})
    '<span>no runs</span>'
    """
    parts = [f"{escape(name)} {count}" for name, count in counts.items() if count]
    return f"<span>{' · '.join(parts) or 'no runs'}</span>"


def card(title: str, subtitle: str = "", sections: Iterable[tuple[str, str]] = ()) -> str:
    """A whole representation: a bold ``title`` and a muted ``subtitle`` (both plain texts,
    escaped here), then each ``(heading, html)`` section that has some HTML.

    Examples
    --------
    >>> print(card("Session", "x.db", [("Experiments", "<table></table>"), ("Empty", "")]))
    <div class="trialbook" style="..."><div><b>Session</b> <span style="...">x.db</span></div>
    <div style="margin-top: 4px"><div style="opacity: 0.7">Experiments</div><table></table></div>
    </div>
    """
    parts = [
        f'<div class="trialbook" style="{_BOX}"><div><b>{escape(title, 200)}</b> '
        f'<span style="{_MUTED}">{escape(subtitle, 200)}</span></div>\n'
    ]
    parts += [
        f'<div style="margin-top: 4px"><div style="{_MUTED}">{escape(heading)}</div>{body}</div>\n'
        for heading, body in sections
        if body
    ]
    parts.append("</div>")
    return "".join(parts)


def metrics_table(series: Mapping[str, Sequence[float] | Any], *, more: int = 0) -> str:
    """One row per metric: its name, number of points, last value and :func:`sparkline`.

    Examples
    --------
    >>> html_text = metrics_table({"loss": [0.9, 0.4, 0.2]})
    >>> ">0.2</td>" in html_text and "<svg" in html_text
    True
    """
    if not series:
        return ""
    rows = [
        [name, len(values), values[-1] if len(values) else None, sparkline(values)]
        for name, values in series.items()
    ]
    return rows_table(["metric", "points", "last", "curve"], rows, more=more)
