"""An experiment of runs in a notebook: its HTML representation and its metric plots.

:meth:`RunsExperiment._repr_html_ <trialbook.runs.RunsExperiment._repr_html_>` must stay quick
on a million runs, so it never builds the runs of a loaded experiment: the status counts come
from the status column read at load, and the table shows the first :data:`~trialbook.notebook.
ROWS` runs, their documents parsed alone (issue 17, "Notebooks").

Examples
--------
>>> import trialbook
>>> with trialbook.create_session("sqlite:///:memory:") as session:
...     experiment = session.create_experiment("e")
...     _ = experiment.add_runs(x=range(25))
...     text = experiment_html(experiment)
>>> "pending 25" in text and "… 5 more" in text
True
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from trialbook import notebook
from trialbook.errors import ConfigError, NotFoundError, did_you_mean
from trialbook.plots import Curve, check_plot_options, draw_curves, group_label
from trialbook.runs_table import RunView, lost_statuses

if TYPE_CHECKING:
    import pandas as pd

    from trialbook.runs import RunsExperiment
    from trialbook.storage.records import ErrorInfo, RunColumns
    from trialbook.tracking import Run

__all__ = ["experiment_html", "plot_metric"]


def experiment_html(experiment: RunsExperiment) -> str:
    """The HTML of ``experiment``: name, description, runs by status and the first runs.

    See the module's example.
    """
    from trialbook.runs import runs_frame

    unread = experiment._unread
    if unread is not None:  # loaded, runs not built: the columns read at load
        meta = experiment._info.meta if experiment._info is not None else {}
        statuses, lost = lost_statuses(unread, meta)
        counts = Counter(statuses)
        first: list[Run | RunView] = list(
            _first_views(unread, statuses, lost, allow_pickle=experiment.store.allow_pickle)
        )
        total = len(unread)
    else:
        runs = experiment._runs
        counts = Counter(str(run.status) for run in runs.values())
        first = list(itertools.islice(runs.values(), notebook.ROWS))
        total = len(runs)
    order = ("done", "running", "failed", "pending")
    counts_in_order = {s: counts[s] for s in order} | {s: counts[s] for s in counts}
    sections = [
        ("Description", notebook.escape(experiment.description or "", 2000)),
        ("Runs by status", notebook.counts_line(counts_in_order) if total else ""),
        ("Runs", notebook.frame_table(runs_frame(first), more=total - len(first)) if first else ""),
    ]
    subtitle = notebook.count(total, "run")
    if experiment.is_persisted:
        subtitle += f" · in {experiment.store.url}"
    return notebook.card(f"Experiment {experiment.name}", subtitle, sections)


def _first_views(
    columns: RunColumns,
    statuses: list[str],
    lost: dict[int, ErrorInfo],
    *,
    allow_pickle: bool,
) -> Iterator[RunView]:
    """The first runs of ``columns`` as views (``statuses`` and ``lost`` errors: as
    :func:`~trialbook.runs_table.lost_statuses` gives them), parsing only their documents (a
    batch of documents holds hundreds of thousands)."""
    i = 0
    for text in columns.docs:
        if not text:  # a batch of no runs
            continue
        for line in text.split("\n", notebook.ROWS - i)[: notebook.ROWS - i]:
            run_id = columns.run_ids[i]
            view = RunView(
                run_id, json.loads(line), status=statuses[i], started=columns.started[i],
                finished=columns.finished[i], bins=columns.bundles.get(run_id),
                allow_pickle=allow_pickle,
            )  # fmt: skip
            if i in lost:
                view.error = lost[i]
            yield view
            i += 1
        if i >= notebook.ROWS:
            return


def plot_metric(
    experiment: RunsExperiment,
    metric: str,
    group_by: str | Sequence[str] | None = None,
    *,
    band: str = "minmax",
    x: str = "step",
    ax: Any = None,
) -> Any:
    """Draw ``metric`` of every run of ``experiment`` that logged it (see
    :meth:`trialbook.runs.RunsExperiment.plot`) and return the matplotlib axes."""
    names = [group_by] if isinstance(group_by, str) else list(group_by or [])
    check_plot_options(band, x, grouped=bool(names))
    frame = experiment.df()
    _check_metric(experiment.name, frame, metric)
    _check_group_names(experiment.name, frame, names)
    logged = frame[frame[f"metric.{metric}"].notna()]
    curves = []
    for run_id, (steps, values, times) in _points(experiment, metric, list(logged.index)):
        group = None
        if names:
            group = group_label(names, [_plain(logged.at[run_id, n]) for n in names])
        xs = steps
        if x == "time":  # seconds since the run's first point
            xs = times - times[0] if len(times) else times
        curves.append(Curve(f"run {run_id}", xs, values, group))
    return draw_curves(curves, metric=metric, x=x, grouped=bool(names), band=band, ax=ax)


def _check_metric(name: str, frame: pd.DataFrame, metric: str) -> None:
    column = f"metric.{metric}"
    if column in frame.columns and frame[column].notna().any():
        return
    known = [c.removeprefix("metric.") for c in frame.columns if c.startswith("metric.")]
    msg = (
        f"no run of experiment {name!r} logged the metric {metric!r} (the metrics its runs "
        f"logged: {', '.join(map(repr, known)) or 'none'}){did_you_mean(metric, known)}"
    )
    raise NotFoundError(msg)


def _check_group_names(name: str, frame: pd.DataFrame, names: list[str]) -> None:
    known = [c for c in frame.columns if not c.startswith(("metric.", "tag."))]
    for group_name in names:
        if group_name not in frame.columns:
            msg = (
                f"group_by names {group_name!r}, which no run of experiment {name!r} has as "
                f"a parameter or scalar field (they have: {', '.join(map(repr, known))})"
                f"{did_you_mean(group_name, known)}"
            )
            raise ConfigError(msg)


def _points(
    experiment: RunsExperiment, metric: str, run_ids: list[int]
) -> Iterator[tuple[int, tuple[Any, Any, Any]]]:
    """``(run id, (steps, values, times))`` of the metric in each of ``run_ids``: from the
    runs in memory, or from the store in one read while a loaded experiment's runs are not
    built."""
    if experiment._unread is not None and experiment._info is not None:
        found = experiment.store.read_metrics(experiment._info.id, metric, run_ids)
        for run_id in run_ids:
            series = found.get(run_id)
            if series is not None:
                yield run_id, (series.steps, series.values, series.times)
        return
    for run_id in run_ids:
        points = experiment.runs[run_id].metrics(metric)
        yield run_id, (points["step"].to_numpy(), points["value"].to_numpy(),
                       points["time"].to_numpy())  # fmt: skip


def _plain(value: Any) -> Any:
    """A group's value as a label reads it (a missing one is ``None``)."""
    import pandas as pd

    if value is None or (not isinstance(value, list | dict) and pd.isna(value)):
        return None
    return value
