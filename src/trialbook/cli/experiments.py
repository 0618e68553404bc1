"""``trialbook ls``, ``runs`` and ``show``: look at experiments and their runs."""

from __future__ import annotations

import json
import math
from typing import Any

import click

from trialbook.cli.common import ALLOW_PICKLE_HELP, friendly_errors, open_session, store_option
from trialbook.codecs import json_view, plain_scalar


@click.command()
@store_option
@friendly_errors
def ls(store: str | None) -> None:
    """List the experiments of the store with their run counts."""
    with open_session(store) as session:
        frame = session.ls()
        url = session.store.url
    if frame.empty:
        click.echo(f"no experiments in {url}")
        return
    frame["created"] = frame["created"].dt.strftime("%Y-%m-%d %H:%M:%S")
    frame["updated"] = frame["updated"].dt.strftime("%Y-%m-%d %H:%M:%S")
    click.echo(frame.to_string(index=False))


@click.command()
@click.argument("experiment")
@store_option
@click.option(
    "--where",
    metavar="FILTER",
    default=None,
    help="Keep the runs matching FILTER, in the query language of the web UI, e.g. "
    "'lr > 0.01 and status == \"done\"' (quote text values).",
)
@click.option(
    "--sort",
    metavar="NAME",
    default=None,
    help="Sort by NAME (run_id, status, duration, a param, field, tag or metric.x); "
    "-NAME sorts in descending order. Runs without a value come last.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Show N runs: the first N in the --sort order, or the last N runs (by run id) "
    "without --sort.",
)
@click.option("--allow-pickle", is_flag=True, help=ALLOW_PICKLE_HELP)
@friendly_errors
def runs(  # noqa: PLR0917 - click passes the options by keyword
    experiment: str,
    store: str | None,
    where: str | None,
    sort: str | None,
    limit: int | None,
    allow_pickle: bool,
) -> None:
    """Show the runs of EXPERIMENT as a table (params, status, timings, scalar fields, metrics,
    tags), optionally filtered, sorted and limited in the store. A run whose process stopped
    sending heartbeats shows as failed, with a line saying it was lost."""
    order_by, descending = _sort(sort)
    last = limit is not None and order_by is None  # "the last N runs", as before --sort
    with open_session(store, allow_pickle=allow_pickle) as session:
        frame = session.search_runs(
            experiment, where, order_by=order_by, descending=descending or last, limit=limit
        )
    if last:
        frame = frame.iloc[::-1]
    total = frame.attrs["total"]
    if frame.empty:
        click.echo(f"no run of {experiment!r} matches {where!r}" if where and total == 0
                   else f"experiment {experiment!r} has no runs")  # fmt: skip
        return
    for column in ("started", "finished"):
        frame[column] = frame[column].dt.strftime("%Y-%m-%d %H:%M:%S")
    frame["duration"] = frame["duration"].map(lambda s: "" if math.isnan(s) else f"{s:.3f}s")
    click.echo(_cells(frame.drop(columns=["error"])).to_string())
    if where or len(frame) < total:
        click.echo(f"({len(frame)} of {total} {'matching ' if where else ''}runs)")
    for run_id, error in frame["error"].items():
        if isinstance(error, str) and error.startswith("LostRun: "):  # issue 18
            click.echo(f"run {run_id} lost: {error.removeprefix('LostRun: ')}")


def _sort(sort: str | None) -> tuple[str | None, bool]:
    """``--sort NAME`` / ``--sort -NAME`` as ``(order_by, descending)``."""
    if sort is None:
        return None, False
    descending = sort.startswith("-")
    name = sort[1:] if descending else sort
    if not name.strip():
        msg = f"--sort needs a name, e.g. --sort metric.loss or --sort -acc (got {sort!r})"
        raise click.BadParameter(msg, param_hint="--sort")
    return name.strip(), descending


@click.command()
@click.argument("experiment")
@click.argument("run_id", metavar="RUN", type=int)
@store_option
@click.option("--allow-pickle", is_flag=True, help=ALLOW_PICKLE_HELP)
@friendly_errors
def show(experiment: str, run_id: int, store: str | None, allow_pickle: bool) -> None:
    """Show one RUN of EXPERIMENT (a run, trial or job): status, seed, duration, result,
    params, tags, fields and a summary of its metrics."""
    with open_session(store, allow_pickle=allow_pickle) as session:
        run = session.load_experiment(experiment).runs[run_id]
    lines = [f"{run.kind} {run.id} of {experiment!r}: {run.status}"]
    if run.key is not None:
        lines.append(f"key: {run.key}")
    if run.seed is not None:
        lines.append(f"seed: {run.seed}")
    if run.duration is not None:
        lines.append(f"duration: {run.duration:.3f}s")
    if run.result is not None:
        lines.append(f"result: {_describe(run.result)}")
    lines += _section("params", run.params)
    lines += _section("tags", run.tags)
    lines += _section("fields", run.fields)
    summary = run.metric_summary()
    if summary:
        lines.append("metrics:")
        lines += [
            f"  {name}: {count} points, last {_describe(last)}"
            for name, (count, last) in summary.items()
        ]
    if run.error is not None:
        lines.append("error:")
        text = run.error.traceback.rstrip() or str(run.error)  # a LostRun has no traceback
        lines += ["  " + line for line in text.splitlines()]
    click.echo("\n".join(lines))


def _cells(frame: Any) -> Any:
    """``frame`` as text cells: missing values empty, lists, tuples and dicts as compact JSON
    (``[64,64]``, ``{"name":"adam"}``), everything else as pandas prints it."""
    import pandas as pd

    text = frame.astype(object)
    for column in text.columns:
        text[column] = [
            _compact_json(v) if isinstance(v, _CONTAINERS) else "" if pd.isna(v) else v
            for v in text[column]
        ]
    return text


_CONTAINERS = (list, tuple, dict, set, frozenset)


def _compact_json(value: Any) -> str:
    return json.dumps(json_view(value), separators=(",", ":"))


def _section(title: str, values: dict[str, Any]) -> list[str]:
    if not values:
        return []
    return [f"{title}:"] + [f"  {name}: {_describe(value)}" for name, value in values.items()]


def _describe(value: Any) -> str:
    value = plain_scalar(value)  # np.float64(0.917) shows 0.917 (issue 18)
    shape = getattr(value, "shape", None)
    if shape is not None and type(value).__module__.partition(".")[0] in {
        "numpy",
        "pandas",
        "pyarrow",
    }:
        kind = type(value).__name__
        dtype = getattr(value, "dtype", None)
        return f"<{kind} shape={tuple(shape)}{f' dtype={dtype}' if dtype is not None else ''}>"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
