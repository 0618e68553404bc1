"""Executing runs in worker processes: what travels to a worker, and what comes back.

A run does not travel as itself (it is tied to its experiment): a worker gets its id, params,
``state``, ``fields`` and metric counts, rebuilds a detached :class:`~trialbook.tracking.Run`,
executes the steps, and sends back the run's status, error, ``state``, ``fields`` and new metric
points. Runs travel in batches so that thousands of tiny runs do not cost one round trip each.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from typing import Any

from trialbook.errors import ExecutionError
from trialbook.tracking import Run

__all__ = ["execute_remote"]


def execute_remote(
    runs: Sequence[Run],
    steps: Sequence[Callable[[Run], object]],
    workers: int,
    advance: Callable[[int], None],
    *,
    client: Any = None,
) -> dict[int, BaseException]:
    """Execute ``steps`` on ``runs`` in ``workers`` processes, or on the Dask ``client``'s
    cluster; return the exception of each failed run by run id.

    A batch whose worker died marks its runs failed with that error; the others go on.
    """
    import cloudpickle

    from trialbook.execution.pool import map_outcomes

    by_id = {run.id: run for run in runs}
    size = max(1, min(64, len(runs) // (workers * 8)))
    batches = [[_outbound(run) for run in runs[i : i + size]] for i in range(0, len(runs), size)]
    blob = cloudpickle.dumps(list(steps))
    if client is None:
        outcomes = map_outcomes(_execute_batch, batches, n_jobs=workers, args=(blob,))
    else:
        from trialbook.execution.dask import map_outcomes_dask

        outcomes = map_outcomes_dask(_execute_batch, batches, client=client, args=(blob,))
    failures: dict[int, BaseException] = {}
    for index, results, error in outcomes:
        if error is not None:
            for item in batches[index]:
                run = by_id[item["id"]]
                run.finish(error)
                failures[run.id] = error
            advance(len(batches[index]))
            continue
        for result in results:
            exc = _inbound(by_id[result["id"]], result)
            if exc is not None:
                failures[result["id"]] = exc
        advance(len(results))
    return failures


def _outbound(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "kind": run.kind,
        "params": dict(run.params),
        "state": dict(run.state),
        "fields": dict(run.fields),
        "counts": run.metric_summary(),
    }


def _inbound(run: Run, result: dict[str, Any]) -> BaseException | None:
    run.status = result["status"]
    run.error = result["error"]
    run.started, run.finished = result["started"], result["finished"]
    run.state.clear()
    run.state.update(result["state"])
    dict.clear(run.fields)
    dict.update(run.fields, result["fields"])
    run.absorb_execution(result["metrics"])
    run.touch()
    exc = result["exception"]
    if exc is not None and run.error is not None:
        exc.add_note(f"Traceback in the worker process:\n{run.error.traceback}")
    return exc


def _execute_batch(blob: bytes, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Worker side: rebuild each run, execute the steps, report back."""
    from trialbook.runs import execute_run

    steps = pickle.loads(blob)
    out = []
    for item in batch:
        run = Run(item["id"], params=item["params"], kind=item["kind"])
        run.state.update(item["state"])
        dict.update(run.fields, item["fields"])
        run._counts = item["counts"]
        exc = execute_run(run, steps)
        out.append(
            {
                "id": run.id,
                "status": run.status,
                "error": run.error,
                "exception": _portable(exc),
                "started": run.started,
                "finished": run.finished,
                "state": dict(run.state),
                "fields": dict(run.fields),
                "metrics": run.pending_metrics(),
            }
        )
    return out


def _portable(exc: BaseException | None) -> BaseException | None:
    """The exception itself if it survives pickling, else an ExecutionError describing it."""
    if exc is None:
        return None
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return ExecutionError(f"{type(exc).__name__}: {exc} (the original could not be pickled)")
    exc.__traceback__ = None
    return exc
