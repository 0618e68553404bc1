"""Keras: a callback that records what ``model.fit`` does.

Pass :class:`TrialbookCallback` to ``model.fit(..., callbacks=[...])`` (Keras 3, any backend:
set ``KERAS_BACKEND`` before Keras is imported). Where it writes follows
:mod:`trialbook.integrations.recorder`: a runs experiment given to it gets a new run, the run of
a step, graph trial or task that is executing gets the values, and elsewhere the callback keeps a
run of its own in the default store (experiment ``keras``). The example of
``docs/integrations.md`` (section *Keras*) shows it whole::

    from trialbook.integrations.keras import TrialbookCallback

    with TrialbookCallback() as callback:
        model.fit(x, y, epochs=2, callbacks=[callback])

What is recorded:

* the parameters of ``fit``: ``epochs``, ``steps`` (batches per epoch), and the optimizer's
  class name and learning rate; the params of the callback's own run, or the field
  ``keras_params`` of a current run;
* every epoch's logs (``loss``, the compiled metrics, ``val_*``) with step = the epoch;
* with ``log_batches=True``, each batch's logs as ``batch_<name>`` with step = the batch's
  number counted from the first epoch (Keras gives running means over the epoch so far);
* the end: ``on_train_end`` ends the callback's own run, so each ``fit`` gets a run. Keras has
  no hook for an error in ``fit``: use the callback as a ``with`` block around ``fit`` to leave
  its own run failed with the error (without it such a run stays ``running``, with the epochs
  it finished). A current run is ended, failed or done, by whoever runs it.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

import keras
import numpy

from trialbook.integrations.recorder import Recorder

if TYPE_CHECKING:
    from trialbook.runs import RunsExperiment
    from trialbook.tracking import Run

__all__ = ["TrialbookCallback"]

_INTEGRATION = "keras"


class TrialbookCallback(keras.callbacks.Callback):
    """A Keras callback writing a ``fit`` into a trialbook run.

    Parameters
    ----------
    experiment
        A runs experiment (``session.create_experiment(...)``) that gets a new run for each
        ``fit``, persisted by the callback; ``None``: the current run, else a run of the
        callback's own in the default store.
    log_batches
        Also record each batch's logs (as ``batch_<name>``).

    Examples
    --------
    >>> import numpy as np, keras, trialbook
    >>> from trialbook.integrations.keras import TrialbookCallback
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    >>> x = np.ones((8, 2), dtype="float32")
    >>> with trialbook.create_session("sqlite:///:memory:") as session:
    ...     experiment = session.create_experiment("dense")
    ...     with TrialbookCallback(experiment) as callback:
    ...         _ = model.fit(x, x[:, :1], epochs=2, batch_size=4, verbose=0, callbacks=[callback])
    ...     run = session.load_experiment("dense").runs[1]
    ...     print(run.status, dict(run.params), run.metrics("loss")["step"].tolist())
    done {'epochs': 2, 'steps': 2, 'optimizer': 'SGD', 'learning_rate': 0.01} [0, 1]
    """

    def __init__(self, experiment: RunsExperiment | None = None, *, log_batches: bool = False):
        super().__init__()
        self._recorder = Recorder(_INTEGRATION, experiment)
        self._log_batches = log_batches
        self._batch = 0  # the batch's number counted from the first epoch

    @property
    def run(self) -> Run | None:
        """The run written into while ``fit`` runs."""
        return self._recorder.run

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Choose the run and record the parameters of ``fit``."""
        self._batch = 0
        self._recorder.start(self._fit_params())

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Record the batch's logs when ``log_batches`` is on."""
        if self._log_batches:
            run = self._recorder.start()
            for name, value in _numbers(logs):
                run.log_metric(f"batch_{name}", value, step=self._batch)
        self._batch += 1

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Record the epoch's logs at step ``epoch`` and write the own run so far."""
        run = self._recorder.start()
        for name, value in _numbers(logs):
            run.log_metric(name, value, step=epoch)
        self._recorder.persist()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """End the callback's own run (done)."""
        self._recorder.finish()

    def __enter__(self) -> TrialbookCallback:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """End a run that ``fit`` left open: failed with the error that left the block."""
        if self._recorder.run is not None:
            self._recorder.finish(exc)

    def _fit_params(self) -> dict[str, Any]:
        given = self.params or {}
        params = {name: given[name] for name in ("epochs", "steps") if name in given}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            params["optimizer"] = type(optimizer).__name__
            try:
                rate = optimizer.learning_rate
                value = float(rate)
            except (AttributeError, TypeError, ValueError):  # no single number: leave it out
                return params
            if str(getattr(rate, "dtype", "")) == "float32":
                # the shortest decimal of that precision: 0.01, not 0.009999999776482582
                value = float(str(numpy.float32(value)))
            params["learning_rate"] = value
        return params


def _numbers(logs: dict[str, Any] | None) -> list[tuple[str, float]]:
    """The entries of ``logs`` that are numbers, as floats."""
    numbers = []
    for name, value in (logs or {}).items():
        try:
            numbers.append((name, float(value)))
        except (TypeError, ValueError):
            continue
    return numbers
