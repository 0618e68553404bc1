"""Executing runs: in this process, or through an executor (:mod:`trialbook.execution.base`).

:func:`choose_executor` turns the ``n_jobs=`` / ``backend=`` / ``client=`` / ``executor=`` of
``execute`` into one executor (or none: this process).
:func:`execute_run` executes the steps on a run in this process. :func:`execute_remote` sends
runs to an executor (worker processes, a Dask cluster, Slurm): a run does not travel as itself
(it is tied to its experiment); a worker gets its id, params, ``state``, ``fields`` and metric
counts, rebuilds a detached copy (:meth:`~trialbook.tracking.Run.replica`), executes the steps,
and sends back the copy's status, error, ``state``, ``fields`` and new metric points, which the
run absorbs (:meth:`~trialbook.tracking.Run.absorb_replica`). Runs travel in batches, one call
of the executor each, so that thousands of tiny runs do not cost one round trip each.
"""

from __future__ import annotations

import pathlib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from trialbook.errors import ConfigError, ExecutionError
from trialbook.tracking import Bunch, Run, using_run

if TYPE_CHECKING:
    from trialbook.execution.base import Executor
    from trialbook.live import LiveWriter

__all__ = ["choose_executor", "execute_remote", "execute_run"]

Step = Callable[[Run], object]


def execute_run(
    run: Run,
    steps: Sequence[Step],
    config: Mapping[str, Any] | None = None,
    *,
    live: LiveWriter | None = None,
) -> BaseException | None:
    """Run ``steps`` on ``run`` in this process; return the exception a step raised, if any.

    ``run.config`` holds ``config`` while the steps run, and is empty again afterwards.
    ``live`` (a :class:`~trialbook.live.LiveWriter`) is told when the run starts and ends.
    ``KeyboardInterrupt`` and ``SystemExit`` mark the run failed and propagate at once.

    Examples
    --------
    >>> run = Run(1, params={"x": 3})
    >>> def square(run):
    ...     run.fields.y = run.params.x ** 2
    >>> execute_run(run, [square]), run.status, run.fields.y
    (None, 'done', 9)
    >>> execute_run(run, [lambda run: 1 / 0]), run.status
    (ZeroDivisionError('division by zero'), 'failed')
    """
    run.start()
    run.vars = Bunch()
    run.config = Bunch(config) if config else Bunch()
    if live is not None:
        live.started(run)
    try:
        with using_run(run):
            for step in steps:
                step(run)
    except Exception as exc:
        run.finish(exc)
        return exc
    except BaseException as exc:
        run.finish(exc)
        raise
    else:
        run.finish()
        return None
    finally:
        run.vars = Bunch()
        run.config = Bunch()
        if live is not None:
            live.finished(run)


def execute_remote(
    runs: Sequence[Run],
    steps: Sequence[Step],
    executor: Executor,
    workers: int,
    advance: Callable[[int], None],
    *,
    config: Mapping[str, Any] | None = None,
    live: LiveWriter | None = None,
) -> dict[int, BaseException]:
    """Execute ``steps`` on ``runs`` through ``executor`` (about ``workers`` calls at once);
    return the exception of each failed run by run id.

    A batch whose call failed (its worker died, its job was cancelled) marks its runs failed
    with that error; the others go on. With ``live`` (a :class:`~trialbook.live.LiveWriter`),
    the runs of the first ``workers`` batches, then of the next batch each time one ends (the
    order in which executors start them), are shown running; their points arrive with their
    batch.
    """
    from concurrent.futures import FIRST_COMPLETED, wait

    import cloudpickle

    by_id = {run.id: run for run in runs}
    size = max(1, min(64, len(runs) // (workers * 8)))
    batches = [[_outbound(run) for run in runs[i : i + size]] for i in range(0, len(runs), size)]
    blob = cloudpickle.dumps((list(steps), dict(config or {}), _warning_filters()))
    futures = {executor.submit(_execute_batch, blob, batch): i for i, batch in enumerate(batches)}
    failures: dict[int, BaseException] = {}
    shown = _LiveBatches(live, batches, by_id)
    shown.start(workers)
    pending = set(futures)
    try:
        while pending:
            done, pending = wait(pending, timeout=shown.timeout, return_when=FIRST_COMPLETED)
            for future in done:
                batch = batches[futures[future]]
                error = future.exception()
                if error is not None:
                    for item in batch:
                        run = by_id[item["id"]]
                        run.finish(error)
                        failures[run.id] = error
                else:
                    for result in future.result():
                        exc = _inbound(by_id[result["id"]], result)
                        if exc is not None:
                            failures[result["id"]] = exc
                shown.end(futures[future])
                advance(len(batch))
            shown.tick()
    finally:
        for future in futures:
            future.cancel()
    return failures


class _LiveBatches:
    """Which runs of an ``execute_remote`` show as running: those of the batches that started,
    in submission order, one more each time a batch ends."""

    def __init__(
        self, live: LiveWriter | None, batches: list[list[dict[str, Any]]], by_id: dict[int, Run]
    ) -> None:
        self.live, self.batches, self.by_id = live, batches, by_id
        self.next = 0
        self.ended: set[int] = set()
        self.timeout = None if live is None else max(live.interval, 1.0)

    def start(self, count: int) -> None:
        """Show the next ``count`` batches that have not ended as running."""
        if self.live is None:
            return
        while count > 0 and self.next < len(self.batches):
            index, self.next = self.next, self.next + 1
            if index in self.ended:  # came back before its turn: its results stand
                continue
            for item in self.batches[index]:
                run = self.by_id[item["id"]]
                run.mark_running()
                self.live.started(run)
            count -= 1

    def end(self, index: int) -> None:
        """Batch ``index`` came back (its runs hold their results): one more starts."""
        if self.live is None:
            return
        self.ended.add(index)
        for item in self.batches[index]:
            self.live.finished(self.by_id[item["id"]])
        self.start(1)

    def tick(self) -> None:
        if self.live is not None:
            self.live.tick()


def _check_executor(executor: Any, *, n_jobs: int, backend: str | None, client: Any) -> None:
    if executor is None:
        return
    from trialbook.execution.base import Executor

    if not isinstance(executor, Executor):
        msg = (
            f"executor must follow the executor protocol (submit(fn, *args) returning a "
            f"concurrent.futures.Future, and shutdown()); got {executor!r} that is a "
            f"{type(executor)}; use an executor of trialbook.execution"
        )
        raise ConfigError(msg)
    if n_jobs != 1 or backend is not None or client is not None:
        msg = (
            f"executor={executor!r} decides where the runs execute: drop n_jobs=, backend= "
            "and client="
        )
        raise ConfigError(msg)


@contextmanager
def choose_executor(
    *, executor: Executor | None, n_jobs: int, backend: str | None, client: Any, count: int
) -> Iterator[tuple[Executor | None, int]]:
    """The executor of an ``execute`` of ``count`` runs, and about how many calls it runs at
    once: ``executor``, else a Dask cluster for ``client`` (or ``backend="dask"``), else a
    local pool for ``n_jobs`` > 1, else ``None`` (this process, on the runs themselves rather
    than on copies). An executor created here is shut down at the end of the block.

    Raises
    ------
    ConfigError
        If the arguments contradict each other or one is invalid.
    """
    _check_executor(executor, n_jobs=n_jobs, backend=backend, client=client)
    client = _dask_target(backend, client)
    if executor is not None:
        yield executor, max(1, getattr(executor, "n_workers", 1))
    elif client is not None:
        from trialbook.execution.dask import DaskLauncher, worker_count

        launcher = DaskLauncher(client)
        try:
            yield launcher, worker_count(launcher.client)
        finally:
            launcher.shutdown()
    elif (workers := _resolve_jobs(n_jobs, count)) > 1:
        from trialbook.execution.pool import LocalLauncher

        yield LocalLauncher(workers), workers
    else:
        yield None, 1


def _resolve_jobs(n_jobs: int, count: int) -> int:
    from trialbook.execution import resolve_n_jobs

    return max(1, min(resolve_n_jobs(n_jobs), count))


def _dask_target(backend: str | None, client: Any) -> Any:
    """The Dask client (or address) to execute on, ``None`` for local execution."""
    if backend not in (None, "local", "dask"):
        msg = f"backend must be 'local' or 'dask' (got {backend!r})"
        raise ConfigError(msg)
    if backend == "local" and client is not None:
        msg = "backend='local' runs on this machine: drop client=, or use backend='dask'"
        raise ConfigError(msg)
    if backend != "dask" or client is not None:
        return client
    from trialbook.extras import require

    require("distributed", "backend='dask'")
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError) as exc:
        msg = (
            "backend='dask' needs a cluster: pass client=distributed.Client(...) or a "
            "scheduler address, or create a Client first"
        )
        raise ConfigError(msg) from exc


def _outbound(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "kind": run.kind,
        "params": dict(run.params),
        "state": dict(run.state),
        "fields": dict(run.fields),
        "tags": dict(run.tags),
        "counts": run.metric_summary(extent=True),
    }


def _inbound(run: Run, result: dict[str, Any]) -> BaseException | None:
    run.absorb_replica(
        status=result["status"],
        error=result["error"],
        started=result["started"],
        finished=result["finished"],
        state=result["state"],
        fields=result["fields"],
        metrics=result["metrics"],
        tags=result.get("tags"),
    )
    exc = result["exception"]
    if exc is not None and run.error is not None:
        exc.add_note(f"Traceback in the worker process:\n{run.error.traceback}")
    held = result.get("artifacts") or {}
    if held:
        failed = _take_artifacts(run, held)
        if failed is not None and exc is None:
            run.finish(failed)
            return failed
    return exc


def _take_artifacts(run: Run, held: Mapping[str, Any]) -> BaseException | None:
    """Log in this process the artifacts the worker's copy of ``run`` logged (bytes, or the
    path of a file or folder, which must still be there); the error of the first that
    fails, naming it, if any."""
    for name, source in held.items():
        try:
            run.log_artifact(source, name=name)
        except Exception as exc:
            exc.add_note(
                f"artifact {name!r} was logged by run {run.id} in a worker process "
                f"({source if isinstance(source, str | pathlib.Path) else 'bytes'}); a file "
                "must still exist when the worker's results come back (keep it until "
                "execute() returns, or log its bytes)"
            )
            return exc
    return None


def _execute_batch(blob: bytes, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Worker side: rebuild each run, execute the steps, report back."""
    import pickle

    steps, config, filters = pickle.loads(blob)
    with warnings.catch_warnings():
        if filters is not None:  # the sending process's filters: `-W error`, ignores, ...
            warnings.filters[:] = filters  # type: ignore[index]
        return _execute_items(steps, config, batch)


def _warning_filters() -> list[Any] | None:
    """This process's warning filters, for the workers (``None`` if one cannot be pickled)."""
    import cloudpickle

    filters = list(warnings.filters)
    try:
        cloudpickle.dumps(filters)
    except Exception:  # e.g. a category class that does not pickle: workers keep theirs
        return None
    return filters


def _execute_items(
    steps: Sequence[Step], config: Mapping[str, Any], batch: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    out = []
    for item in batch:
        run = Run.replica(
            item["id"],
            params=item["params"],
            kind=item["kind"],
            state=item["state"],
            fields=item["fields"],
            metrics=item["counts"],
            tags=item.get("tags"),
        )
        exc = execute_run(run, steps, config)
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
                "tags": dict(run.tags),
                "metrics": run.pending_metrics(sequences=False),
                "artifacts": run.held_artifacts(),
            }
        )
    return out


def _portable(exc: BaseException | None) -> BaseException | None:
    """The exception itself if it survives pickling, else an ExecutionError describing it."""
    if exc is None:
        return None
    import pickle  # here, not at the top: `import trialbook` loads this module

    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return ExecutionError(f"{type(exc).__name__}: {exc} (the original could not be pickled)")
    exc.__traceback__ = None
    return exc
