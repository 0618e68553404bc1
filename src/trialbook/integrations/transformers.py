"""Hugging Face Transformers: a ``TrainerCallback`` that records what a ``Trainer`` does.

Pass :class:`TrialbookCallback` to ``Trainer(..., callbacks=[...])`` (and ``report_to=[]`` in
the ``TrainingArguments`` if no other tracker should report). Where it writes follows
:mod:`trialbook.integrations.recorder`: a runs experiment given to it gets a new run, the run of
a step, graph trial or task that is executing gets the values, and elsewhere the callback keeps
a run of its own in the default store (experiment ``transformers``). The example of
``docs/integrations.md`` (section *Transformers*) shows it whole::

    from trialbook.integrations.transformers import TrialbookCallback

    with TrialbookCallback() as callback:
        Trainer(model=model, args=args, train_dataset=data, callbacks=[callback]).train()

What is recorded:

* the training arguments that matter most (``learning_rate``, ``num_train_epochs``,
  ``per_device_train_batch_size``, ``seed``, ``weight_decay``): the params of the callback's
  own run, or the field ``transformers_params`` of a current run; all of them
  (``TrainingArguments.to_dict()``, tokens masked by Transformers) in the field
  ``transformers_args``;
* every number the ``Trainer`` logs (``loss``, ``grad_norm``, ``learning_rate``, ``epoch``,
  ``eval_*``, the final ``train_*`` figures) with step = ``state.global_step``;
* the end: ``on_train_end`` ends the callback's own run, so each ``train()`` gets a run (and
  so does each ``trainer.evaluate()`` outside it, ended with its log). A
  ``Trainer`` has no hook for an error in training: use the callback as a ``with`` block
  around ``train()`` to leave its own run failed with the error (without it such a run stays
  ``running``, with what was logged). A current run is ended by whoever runs it.

Only the main process records (``state.is_world_process_zero``).
"""

from __future__ import annotations

import numbers
from types import TracebackType
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from trialbook.integrations.recorder import Recorder, plain_params

if TYPE_CHECKING:
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from trialbook.runs import RunsExperiment
    from trialbook.tracking import Run

__all__ = ["TrialbookCallback"]

_INTEGRATION = "transformers"

PARAMS = (
    "learning_rate", "num_train_epochs", "per_device_train_batch_size", "seed", "weight_decay",
)  # fmt: skip
"""The training arguments recorded as parameters (all are kept in a field)."""


class TrialbookCallback(TrainerCallback):
    """A ``TrainerCallback`` writing a training into a trialbook run.

    Parameters
    ----------
    experiment
        A runs experiment (``session.create_experiment(...)``) that gets a new run for each
        ``train()``, persisted by the callback; ``None``: the current run, else a run of the
        callback's own in the default store.

    Examples
    --------
    Called by hand here as a ``Trainer`` calls it (``docs/integrations.md`` trains a model):

    >>> import trialbook
    >>> from transformers import TrainerControl, TrainerState, TrainingArguments
    >>> from trialbook.integrations.transformers import TrialbookCallback
    >>> args = TrainingArguments("out", learning_rate=1e-3, report_to=[], use_cpu=True)
    >>> state, control = TrainerState(), TrainerControl()
    >>> with trialbook.create_session("sqlite:///:memory:") as session:
    ...     callback = TrialbookCallback(session.create_experiment("bert"))
    ...     callback.on_train_begin(args, state, control)
    ...     state.global_step = 10
    ...     callback.on_log(args, state, control, logs={"loss": 0.69, "epoch": 0.5})
    ...     callback.on_train_end(args, state, control)
    ...     run = session.load_experiment("bert").runs[1]
    ...     print(run.status, run.params.learning_rate, run.metrics("loss")["step"].tolist())
    ...     print(len(run.fields.transformers_args) > 50, run.fields.transformers_args["seed"])
    done 0.001 [10]
    True 42
    """

    def __init__(self, experiment: RunsExperiment | None = None) -> None:
        super().__init__()
        self._recorder = Recorder(_INTEGRATION, experiment)
        self._last_epoch: tuple[int, float] | None = None
        self._training = False

    @property
    def run(self) -> Run | None:
        """The run written into while training."""
        return self._recorder.run

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        """Choose the run and record the training arguments."""
        if not state.is_world_process_zero:
            return
        self._last_epoch = None
        self._training = True
        self._start(args)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        """Record the logged numbers at step ``state.global_step``; write the own run so far
        (outside ``train()``, e.g. ``trainer.evaluate()``, the own run ends with this log)."""
        if not state.is_world_process_zero:
            return
        run = self._recorder.run or self._start(args)
        step = state.global_step
        for name, value in (logs or {}).items():
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                continue  # the Trainer logs numbers; anything else is no metric
            number = float(value)
            if name == "epoch":  # in every log: one point per step is enough
                if (step, number) == self._last_epoch:
                    continue
                self._last_epoch = (step, number)
            run.log_metric(name, number, step=step)
        if self._training:
            self._recorder.persist()
        else:  # a log outside train(), as trainer.evaluate() makes: a run of its own ends with it
            self._recorder.finish()

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        """End the callback's own run (done)."""
        self._training = False
        if state.is_world_process_zero:
            self._recorder.finish()

    def _start(self, args: TrainingArguments) -> Run:
        run = self._recorder.start({name: getattr(args, name) for name in PARAMS})
        run.fields[f"{_INTEGRATION}_args"] = plain_params(args.to_dict())
        return run

    def __enter__(self) -> TrialbookCallback:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """End a run that training left open: failed with the error that left the block."""
        self._training = False
        if self._recorder.run is not None:
            self._recorder.finish(exc)
