"""What the training callbacks share: a recorder per training, and a ``with`` block around it.

XGBoost and LightGBM call a callback while training goes well and say nothing when it raises
(LightGBM says nothing either when early stopping ends it). A callback that is also a context
manager closes what it started when the ``with`` block ends: a run of its own is finished, failed
with the exception that left the block, and persisted. A copy of a callback
(``copy.deepcopy``, as scikit-learn's ``clone`` makes of an estimator's parameters) is a fresh
callback writing to the same experiment: a store session is never copied.
"""

from __future__ import annotations

import copy
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self

from trialbook.integrations.recorder import Recorder

if TYPE_CHECKING:
    from trialbook.runs import RunsExperiment
    from trialbook.tracking import Run


class CallbackScope:
    """A recorder for one training at a time, closed by the callback or by a ``with`` block.

    Subclasses name their ``integration``, call :meth:`_begin` when training starts and
    :meth:`_end` when it ends, and keep their per-training state in :meth:`_reset`.

    Examples
    --------
    >>> import trialbook
    >>> class Demo(CallbackScope):
    ...     integration = "demo"
    >>> with trialbook.create_session("sqlite:///:memory:") as session:
    ...     experiment = session.create_experiment("demo")
    ...     try:
    ...         with Demo(experiment) as callback:
    ...             _ = callback._begin({"depth": 2})
    ...             raise ValueError("diverged")
    ...     except ValueError:
    ...         pass
    ...     run = session.load_experiment("demo").runs[1]
    ...     run.status, str(run.error)
    ('failed', 'ValueError: diverged')
    """

    integration: ClassVar[str]

    def __init__(self, experiment: RunsExperiment | None = None) -> None:
        self._experiment = experiment
        self._reset()

    def _reset(self) -> None:
        """Forget everything of a training (a new callback, or a copy, starts so)."""
        self._recorder = Recorder(self.integration, self._experiment)
        self._in_block = False

    @property
    def run(self) -> Run | None:
        """The run being written into, while training goes on (``None`` between trainings)."""
        return self._recorder.run

    def _begin(self, params: dict[str, Any] | None) -> Run:
        if self._recorder.run is not None:  # the previous training never told its end
            self._abandoned()
        return self._recorder.start(params)

    def _abandoned(self) -> None:
        """Close a run whose training ended without telling the callback (default: as done)."""
        self._end(None)

    def _end(self, exc: BaseException | None) -> None:
        self._recorder.finish(exc)

    def __enter__(self) -> Self:
        self._in_block = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._in_block = False
        if self._recorder.run is not None:
            self._end(exc)

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        fresh = copy.copy(self)
        fresh._reset()
        return fresh
