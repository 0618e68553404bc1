"""PyTorch Lightning: a ``Logger`` that records a ``Trainer``'s hyperparameters and metrics.

Pass :class:`TrialbookLogger` to ``lightning.pytorch.Trainer(logger=...)``. Where it writes
follows :mod:`trialbook.integrations.recorder`: a runs experiment given to it gets a new run,
the run of a step, graph trial or task that is executing gets the values, and elsewhere the
logger keeps a run of its own in the default store (experiment ``lightning``). The example of
``docs/integrations.md`` (section *Lightning*) shows it whole::

    from trialbook.integrations.lightning import TrialbookLogger

    trainer = lightning.pytorch.Trainer(max_epochs=2, logger=TrialbookLogger())
    trainer.fit(model, data)

What is recorded:

* the hyperparameters Lightning logs (``self.save_hyperparameters()``): the parameters of the
  logger's own run, or the field ``lightning_params`` of a current run;
* every metric Lightning hands to its loggers (``self.log(...)``, per step and per epoch as
  configured there), at the step Lightning gives (its ``epoch`` counter is a metric too);
* with ``log_checkpoint=True``, the best checkpoint of the ``ModelCheckpoint`` callback as an
  artifact, and the field ``lightning_checkpoint`` naming it (with its monitor and score);
* the end: each ``fit``, ``validate`` or ``test`` call ends the logger's own run (failed, with
  the error, when training raised), and a later call starts a new one. A current run is ended
  by whoever runs it.

Only the single-process trainer is supported (no distributed strategy writing from several
ranks).
"""

from __future__ import annotations

import os
import sys
from argparse import Namespace
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger

from trialbook.integrations.recorder import Recorder, plain_params

if TYPE_CHECKING:
    from trialbook.runs import RunsExperiment
    from trialbook.tracking import Run

__all__ = ["TrialbookLogger"]

_INTEGRATION = "lightning"


class TrialbookLogger(Logger):
    """A Lightning logger writing into a trialbook run.

    Parameters
    ----------
    experiment
        A runs experiment (``session.create_experiment(...)``) that gets a new run for the
        training, persisted by the logger; ``None``: the current run, else a run of the
        logger's own in the default store.
    log_checkpoint
        Keep the best checkpoint of the trainer's ``ModelCheckpoint`` as an artifact when the
        training ends.

    Examples
    --------
    >>> import trialbook
    >>> from trialbook.integrations.lightning import TrialbookLogger
    >>> session = trialbook.create_session("sqlite:///:memory:")
    >>> logger = TrialbookLogger(session.create_experiment("mnist"))
    >>> logger.log_hyperparams({"lr": 0.01, "hidden": 32})
    >>> logger.log_metrics({"train_loss": 0.5, "epoch": 0}, step=9)
    >>> logger.name, logger.version
    ('mnist', 1)
    >>> logger.finalize("success")
    >>> run = session.load_experiment("mnist").runs[1]
    >>> run.status, dict(run.params), run.metrics("train_loss")[["step", "value"]].values.tolist()
    ('done', {'lr': 0.01, 'hidden': 32}, [[9.0, 0.5]])
    >>> session.close()
    """

    def __init__(
        self, experiment: RunsExperiment | None = None, *, log_checkpoint: bool = False
    ) -> None:
        super().__init__()
        self._experiment = experiment
        self._recorder = Recorder(_INTEGRATION, experiment)
        self._log_checkpoint = log_checkpoint
        self._checkpoint: ModelCheckpoint | None = None
        self._bare = False  # the own run was started before any hyperparameters came
        self._last_epoch: tuple[int | None, float] | None = None
        self._ended: Run | None = None  # the run of the last training, once it ended

    @property
    def name(self) -> str:
        """The experiment's name (``lightning`` for the default one); Lightning puts its
        checkpoints under ``<default_root_dir>/<name>/version_<version>/``."""
        return self._experiment.name if self._experiment is not None else _INTEGRATION

    @property
    def version(self) -> int:
        """The id of :attr:`run`."""
        return self.run.id

    @property
    def run(self) -> Run:
        """The run written into (chosen now if none is yet), or after the training the run
        that was written into."""
        if self._recorder.run is None and self._ended is not None:
            return self._ended
        return self._chosen_run()

    @property
    def experiment(self) -> Run:
        """:attr:`run`: Lightning's name for a logger's underlying object, so that
        ``self.logger.experiment.log_artifact(...)`` works in a ``LightningModule``."""
        return self.run

    def _chosen_run(self) -> Run:
        run = self._recorder.run
        if run is None:
            # Lightning asks for the version (checkpoint folder) before it logs the
            # hyperparameters: a run of our own gets them as params once they come
            run = self._recorder.start()
            self._bare = self._recorder.owns_run
        return run

    def log_hyperparams(self, params: Mapping[str, Any] | Namespace, *args: Any, **kw: Any) -> None:
        """Record ``params`` (a dict or an ``argparse.Namespace``): the parameters of the
        logger's own run, or the field ``lightning_params`` of a current run."""
        values = plain_params(vars(params) if isinstance(params, Namespace) else dict(params))
        run = self._recorder.run
        if run is not None and self._bare:
            # the own run, started only for its id, was never written: it takes them as params
            self._bare = False
            run.params.update(values)
            return
        self._recorder.start(values)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record each metric at ``step`` (the step Lightning gives)."""
        run = self._chosen_run()
        self._bare = False
        for name, value in metrics.items():
            point = (step, float(value))
            if name == "epoch":  # Lightning adds it to every call: one point per step is enough
                if point == self._last_epoch:
                    continue
                self._last_epoch = point
            run.log_metric(name, point[1], step=step)

    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        """Remember the checkpoint callback whose best checkpoint is kept at the end."""
        self._checkpoint = checkpoint_callback

    def save(self) -> None:
        """Write the own run's values so far (Lightning calls it after each logging)."""
        self._bare = False
        self._recorder.persist()

    def finalize(self, status: str) -> None:
        """End the own run: done after ``"success"``, failed with the training's error after
        ``"failed"``; ``"finished"`` (a cluster's requeue signal) only writes it."""
        if self._recorder.run is None:
            return
        if status == "finished":
            self.save()
            return
        if self._log_checkpoint:
            self._keep_checkpoint(self._recorder.run)
        error: BaseException | None = None
        if status == "failed":
            # Lightning calls this inside the ``except`` block that catches the training's
            # error, so it is the one being handled
            error = sys.exc_info()[1] or RuntimeError(f"Lightning ended the training: {status}")
        self._bare = False
        self._ended = self._recorder.run
        self._last_epoch = None
        self._recorder.finish(error)

    def _keep_checkpoint(self, run: Run) -> None:
        callback = self._checkpoint
        path = callback.best_model_path if callback is not None else ""
        if callback is None or not path or not os.path.isfile(path):
            return
        info = run.log_artifact(path)
        score = callback.best_model_score
        run.fields[f"{_INTEGRATION}_checkpoint"] = {
            "artifact": info.name,
            "monitor": callback.monitor,
            "score": None if score is None else float(score),
        }
