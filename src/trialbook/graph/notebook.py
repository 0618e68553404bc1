"""A lazy-graph experiment in a notebook: its HTML representation and its metric plots.

The representation reads a page of the history (:data:`~trialbook.notebook.ROWS` trials, a
limited query of the store) and the store's count of trials by status, whatever the number of
trials; the plot reads the points of one metric of every trial that saved it
(:meth:`~trialbook.graph.Experiment.save_metric`), in one read.

Examples
--------
>>> import trialbook
>>> with trialbook.Experiment("doc_graph_html", backend="sqlite:///:memory:") as ex:
...     a = ex.parameter("a")
...     @ex.result
...     def double(a):
...         return 2 * a
...     for value in range(25):
...         ex.set_parameters(a=value)
...         _ = double(a).compute(seed=0)
...     text = history_html(ex)
>>> "done 25" in text and "… 5 more" in text
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from trialbook import notebook
from trialbook.errors import ConfigError, NotFoundError, did_you_mean
from trialbook.plots import Curve, check_plot_options, draw_curves, group_label
from trialbook.storage.query import query_runs
from trialbook.storage.records import Status

if TYPE_CHECKING:
    from trialbook.graph.history import HistoryReader

__all__ = ["history_html", "plot_trials"]


def history_html(reader: HistoryReader) -> str:
    """The HTML of a lazy-graph experiment: its trials by status and the first trials of its
    history. See the module's example."""
    store, exp_id = reader.store, reader.experiment_id
    info = store.find_experiment(reader.id)
    meta = info.meta if info is not None else {}
    counts = {
        status.value: query_runs(
            store, exp_id, where=f"status == {status.value!r}", limit=0, meta=meta
        )[0]
        for status in (Status.DONE, Status.RUNNING, Status.FAILED, Status.PENDING)
    }
    total, page = query_runs(store, exp_id, limit=notebook.ROWS, meta=meta)
    parameters = ", ".join(getattr(reader, "_parameters", {})) or "none declared here"
    sections = [
        ("Description", notebook.escape(meta.get("description") or "", 2000)),
        ("Trials by status", notebook.counts_line(counts) if total else ""),
        ("History", notebook.frame_table(reader._page_frame(page), more=total - len(page))
         if page else ""),
    ]  # fmt: skip
    subtitle = f"lazy graph · {notebook.count(total, 'trial')} · parameters: {parameters}"
    return notebook.card(f"Experiment {reader.id}", subtitle, sections)


def plot_trials(
    reader: HistoryReader,
    metric: str,
    group_by: str | Sequence[str] | None = None,
    *,
    band: str = "minmax",
    x: str = "step",
    ax: Any = None,
) -> Any:
    """Draw the metric ``metric`` of every trial that saved it (see
    :meth:`trialbook.graph.Experiment.plot`) and return the matplotlib axes."""
    names = [group_by] if isinstance(group_by, str) else list(group_by or [])
    check_plot_options(band, x, grouped=bool(names))
    store, exp_id = reader.store, reader.experiment_id
    known = sorted(store.metric_names(exp_id))
    if metric not in known:
        msg = (
            f"no trial of experiment {reader.id!r} saved the metric {metric!r} (the metrics "
            f"its trials saved: {', '.join(map(repr, known)) or 'none'})"
            f"{did_you_mean(metric, known)}"
        )
        raise NotFoundError(msg)
    records = {r.run_id: r for r in store.read_runs(exp_id)}
    series = store.read_metrics(exp_id, metric, list(records))
    params = {run_id: records[run_id].params for run_id in series}
    _check_group_names(reader.id, params, names)
    curves = []
    for run_id in sorted(series):
        points = series[run_id]
        group = None
        if names:
            values = [reader._decode(params[run_id].get(name)) for name in names]
            group = group_label(names, values)
        xs = points.steps
        if x == "time":  # seconds since the trial's first point
            xs = points.times - points.times[0] if len(points.times) else points.times
        curves.append(Curve(f"trial {run_id}", xs, points.values, group))
    return draw_curves(curves, metric=metric, x=x, grouped=bool(names), band=band, ax=ax)


def _check_group_names(name: str, params: dict[int, dict[str, Any]], names: list[str]) -> None:
    known = sorted({key for values in params.values() for key in values})
    for group_name in names:
        if group_name not in known:
            msg = (
                f"group_by names {group_name!r}, which is no parameter of the trials of "
                f"experiment {name!r} that saved the metric (their parameters: "
                f"{', '.join(map(repr, known)) or 'none'}){did_you_mean(group_name, known)}"
            )
            raise ConfigError(msg)
