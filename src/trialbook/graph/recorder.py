"""Running and recording trials: a new run, the active trial, cache, purity, the store write.

:class:`TrialRecorder` is the write side of one :class:`trialbook.graph.Experiment`: the
experiment decides a trial's parameters, seed and code, and the recorder runs the graph and
writes the trial. While the graph runs, the recorder's :attr:`~TrialRecorder.active` trial
(an :class:`ActiveTrial`) collects what each step records (purity hashes, persisted outputs,
cache entries); when it ends, the purity of its steps is checked against earlier trials and the
trial is written in **one** store transaction, failed or not.

Examples
--------
>>> from trialbook.storage import open_store
>>> store = open_store("sqlite:///:memory:")
>>> info = store.create_experiment("doc_recorder", meta={"kind": "graph"})
>>> recorder = TrialRecorder(store, info.id, "doc_recorder")
>>> run = recorder.new_run({"a": 1}, seed=0, code=recorder.code_digest("")[0])
>>> run.id, dict(run.params), recorder.active is None
(1, {'a': 1}, True)
>>> store.close()
"""

from __future__ import annotations

import json
import logging
import pathlib
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trialbook import capture, journal
from trialbook.codecs import Encoded, decode, encode
from trialbook.errors import CodecError, ConfigError, StorageError
from trialbook.graph import files, remote
from trialbook.graph.nodes import CACHE_PREFIX, PERSIST_PREFIX, RESULT_NOT_STORED
from trialbook.identity import fingerprint
from trialbook.live import LiveWriter
from trialbook.tracking import Run, using_run

if TYPE_CHECKING:
    from trialbook.graph.nodes import Node, Step
    from trialbook.graph.remote import StepOutcome
    from trialbook.storage.base import Store

__all__ = ["ActiveTrial", "TrialRecorder", "choose_seed"]

logger = logging.getLogger(__name__)


def choose_seed(seed: int | None, default: int | None) -> int:
    """The seed of a trial: ``seed``, else the experiment's ``default``, else a generated one
    (logged either way).

    Examples
    --------
    >>> choose_seed(None, 7), choose_seed(3, 7)
    (7, 3)
    """
    if seed is None:
        seed = default
    if seed is None:
        seed = capture.generate_seed()
        logger.info("Random seed is not provided, initialized with generated seed: %d", seed)
    else:
        logger.info("Random seed is initialized with given seed: %d", seed)
    return seed


class TrialRecorder:
    """Runs the trials of the experiment ``name`` (id ``experiment_id`` in ``store``) and
    writes them.

    Examples
    --------
    See the module's example.
    """

    def __init__(self, store: Store, experiment_id: int, name: str) -> None:
        self.store = store
        self.experiment_id = experiment_id
        self.name = name
        self.active: ActiveTrial | None = None
        """The trial whose graph is running, if any."""
        self._lock = threading.Lock()
        self._code: tuple[str, str] | None = None  # (text, digest) of the last stored code
        self._live: LiveWriter | None = None  # trials in progress, seen by other processes

    def close(self) -> None:
        """Stop the heartbeat of this process's trials (and remove its entry)."""
        if self._live is not None:
            self._live.close()
            self._live = None

    def live(self) -> LiveWriter:
        """The writer that shows this experiment's trials as running while they run."""
        if self._live is None:
            self._live = LiveWriter(self.store, self.experiment_id).__enter__()
        return self._live

    def code_digest(self, text: str) -> tuple[str, bool]:
        """Digest of the code snapshot ``text``, stored when it is not the last one stored;
        whether it was stored."""
        if self._code is not None and self._code[0] == text:
            return self._code[1], False
        self._code = (text, self.store.put_snapshot("code", text))
        return self._code[1], True

    def new_run(self, params: dict[str, Any], *, seed: int, code: str) -> Run:
        """A run with the next trial id of the store (allocated atomically)."""
        environment = files.environment_digest(self.store)
        (trial_id,) = self.store.allocate_run_ids(self.experiment_id, 1)
        run = Run(trial_id, params=params, kind="trial")
        run.seed, run.code, run.environment = seed, code, environment
        run.bind_artifacts(lambda: (self.store, self.experiment_id))  # written at once
        return run

    def record(self, node: Node, run: Run, dask_options: dict[str, Any]) -> Any:
        """Compute ``node`` as the trial ``run`` and write it; return its value.

        A failed trial is written with its error, and the exception is re-raised.
        """
        with self._lock:
            if self.active is not None:
                msg = f"experiment {self.name!r} is already computing trial {self.active.run.id}"
                raise ConfigError(msg)
            trial = self.active = ActiveTrial(self, run)
        logger.info("Started Experiment (trial id=%d)", run.id)
        live = self.live()
        try:
            capture.seed_everything(run.seed)  # type: ignore[arg-type]
            run.start()
            live.started(run, now=True)  # `running` in the store, with a heartbeat
            value = remote.execute(trial, node, dask_options)
        except BaseException as exc:
            run.finish(exc)
            live.forget(run)
            self.save(trial)
            raise
        finally:
            self.active = None
        run.result = value
        run.finish()
        live.forget(run)
        self.save(trial)
        logger.info("Finished Experiment (trial id=%d)", run.id)
        return value

    def call(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run a step's function: tracked by the active trial, or as is without one."""
        trial = self.active
        if trial is None:
            return step.func(*args, **kwargs)
        return trial.call(step, args, kwargs)

    def save(self, trial: ActiveTrial) -> None:
        """Check the trial's purity, then write it (record, metrics, persisted values, step
        hashes) in one store transaction, and the plain files of a directory store.

        If the store's server stays unreachable past its retry budget, the write is kept in
        the local journal (:mod:`trialbook.journal`) with a warning naming it, and the trial
        still counts as computed."""
        self.check_purity(trial)  # before the write replaces the hashes of earlier trials
        run = trial.run
        try:
            record = run.to_record(allow_pickle=self.store.allow_pickle)
        except CodecError as exc:  # parameters were checked before the trial: the result
            logger.warning("Result of trial %d is not stored: %s", run.id, exc)
            run.tags[RESULT_NOT_STORED] = str(type(run.result))
            run.result = None
            record = run.to_record(allow_pickle=self.store.allow_pickle)
        metrics = run.pending_metrics()
        extra = {"artifacts": trial.artifacts, "step_hashes": trial.step_hashes}
        what = f"trial {run.id} of experiment {self.name!r}"
        write = journal.Writes(self.store)  # past the retry budget: kept, not lost
        write("write_runs", self.experiment_id, [record], metrics, what=what, **extra)
        run.written()
        self.export_files(run)

    def export_files(self, run: Run) -> None:
        """Directory stores also get each trial's code and environment as plain files."""
        directory = getattr(self.store, "directory", None)
        if directory is None:
            return
        text = self._code[0] if self._code is not None else ""
        folder = pathlib.Path(directory)
        files.write_code_file(folder, self.name, run.id, run.code or "", text)
        files.write_environment_files(folder, run.environment or "")

    def check_purity(self, trial: ActiveTrial) -> None:
        """Warn for each step that gave another output for the same inputs in an earlier trial
        (one store read for all the steps of the trial). Only a warning: a store that cannot
        answer is logged, and the trial is still recorded."""
        with trial.lock:  # steps of a failed trial may still be running on other threads
            calls = list(trial.calls)
        if not calls:
            return
        keys = [(name, in_hash) for name, in_hash, _, _ in calls]
        try:
            known = self.store.get_step_hashes(self.experiment_id, keys)
        except StorageError as exc:
            logger.warning("Purity of trial %d's steps is not checked: %s", trial.run.id, exc)
            return
        for name, in_hash, out_hash, call in calls:
            earlier = known.get((name, in_hash))
            if earlier is not None and earlier[0] != out_hash:
                logger.warning(
                    "Experiment step result is changed with the same input: (step: %s, %s)",
                    name,
                    call,
                )

    def cached_output(self, step: Step, cache_key: str) -> tuple[Any, str] | None:
        """The output (and its hash) an earlier trial stored for ``step`` with the same code
        and inputs (``cache_key``), if any."""
        key = (CACHE_PREFIX + step.name, cache_key)
        known = self.store.get_step_hashes(self.experiment_id, [key]).get(key)
        if known is None:
            return None
        stored = self.store.read_artifact(self.experiment_id, known[1], PERSIST_PREFIX + step.name)
        if stored is None:
            return None
        logger.info("Reusing %s from trial %d (same code and inputs)", step.name, known[1])
        return decode(stored, allow_pickle=self.store.allow_pickle), known[0]


# -- a running trial -----------------------------------------------------------------------------


@dataclass(eq=False)
class ActiveTrial:
    """What one trial collects while its graph runs.

    Examples
    --------
    >>> from trialbook.tracking import Run
    >>> trial = ActiveTrial(None, Run(1))  # the recorder is only needed to run steps
    >>> trial.hashed("prepare", "in", "out", "args: (), kwargs: {}")
    >>> trial.step_hashes
    [('prepare', 'in', 'out', 1)]
    """

    recorder: TrialRecorder
    run: Run
    artifacts: list[tuple[int, str, Encoded]] = field(default_factory=list)
    step_hashes: list[tuple[str, str, str, int]] = field(default_factory=list)
    calls: list[tuple[str, str, str, str]] = field(default_factory=list)
    """``(step, input hash, output hash, call)`` of each step run: checked for purity against
    earlier trials in one store read when the trial ends."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run ``step`` on ``args``/``kwargs`` in this trial (or reuse its cached output)."""
        in_hash = capture.input_hash(step.name, args, kwargs)
        cache_key = _cache_key(step, in_hash) if step.cache else None
        if cache_key is not None:
            hit = self.recorder.cached_output(step, cache_key)
            if hit is not None:
                self.keep(step, hit[0], cache_key=cache_key, out_hash=hit[1])
                return hit[0]
        with using_run(self.run):
            value = step.func(*args, **kwargs)
        out_hash = capture.output_hash(value)
        if in_hash is not None and out_hash is not None:
            self.hashed(step.name, in_hash, out_hash, capture.describe_call(args, kwargs))
        self.keep(step, value, cache_key=cache_key, out_hash=out_hash)
        return value

    def absorb(self, step: Step, outcome: StepOutcome) -> None:
        """Take in what ``step`` recorded while it ran in another process."""
        self.run.absorb_metrics(outcome.metrics)
        if outcome.in_hash is not None and outcome.out_hash is not None:
            self.hashed(step.name, outcome.in_hash, outcome.out_hash, outcome.call)
        self.keep(step, outcome.value, cache_key=None, out_hash=outcome.out_hash)

    def hashed(self, name: str, in_hash: str, out_hash: str, call: str) -> None:
        """Note that step ``name`` turned inputs ``in_hash`` into ``out_hash`` in this trial."""
        with self.lock:
            self.calls.append((name, in_hash, out_hash, call))
            self.step_hashes.append((name, in_hash, out_hash, self.run.id))

    def keep(self, step: Step, value: Any, *, cache_key: str | None, out_hash: str | None) -> None:
        """Keep the output of a persisted step (and its cache entry) for the trial's write."""
        if not step.persist:
            return
        encoded = encode(value, allow_pickle=self.recorder.store.allow_pickle)
        if type(encoded) is not Encoded:
            encoded = Encoded("json", _json_bytes(encoded))
        with self.lock:
            self.artifacts.append((self.run.id, PERSIST_PREFIX + step.name, encoded))
            if cache_key is not None and out_hash is not None:
                self.step_hashes.append(
                    (CACHE_PREFIX + step.name, cache_key, out_hash, self.run.id)
                )


def _cache_key(step: Step, in_hash: str | None) -> str | None:
    return None if in_hash is None else fingerprint((step.source, in_hash))


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()
