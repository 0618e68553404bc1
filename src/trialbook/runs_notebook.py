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
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from trialbook import notebook
from trialbook.runs_table import RunView, lost_statuses

if TYPE_CHECKING:
    from trialbook.runs import RunsExperiment
    from trialbook.storage.records import RunColumns
    from trialbook.tracking import Run

__all__ = ["experiment_html"]


def experiment_html(experiment: RunsExperiment) -> str:
    """The HTML of ``experiment``: name, description, runs by status and the first runs.

    See the module's example.
    """
    from trialbook.runs import runs_frame

    unread = experiment._unread
    if unread is not None:  # loaded, runs not built: the columns read at load
        meta = experiment._info.meta if experiment._info is not None else {}
        statuses, _ = lost_statuses(unread, meta)
        counts = Counter(statuses)
        first: list[Run | RunView] = list(
            _first_views(unread, meta, allow_pickle=experiment.store.allow_pickle)
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
    store = "" if not experiment.is_persisted else f" · in {experiment.store.url}"
    return notebook.card(f"Experiment {experiment.name}", f"{total} runs{store}", sections)


def _first_views(columns: RunColumns, meta: Any, *, allow_pickle: bool) -> Iterator[RunView]:
    """The first runs of ``columns`` as views, parsing only their documents (a batch of
    documents holds hundreds of thousands)."""
    statuses, lost = lost_statuses(columns, meta)
    i = 0
    for text in columns.docs:
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
