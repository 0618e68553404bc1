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

from typing import TYPE_CHECKING

from trialbook import notebook
from trialbook.storage.query import query_runs
from trialbook.storage.records import Status

if TYPE_CHECKING:
    from trialbook.graph.history import HistoryReader

__all__ = ["history_html"]


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
    subtitle = f"lazy graph · {total} trials · parameters: {parameters}"
    return notebook.card(f"Experiment {reader.id}", subtitle, sections)
