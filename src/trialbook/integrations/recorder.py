"""Where an integration's values go: the current run, a given experiment, or a run of its own.

The rule, the same for every integration:

1. an experiment given to the integration gets a new run of its own (added, started, and
   persisted when the recorder finishes);
2. otherwise, inside a run's step, a graph trial's step or a task's ``execute()``, values go
   to that run (:func:`trialbook.current_run`); its parameters are the step's, so the
   integration's parameters are kept in ``run.fields[<integration>_params]``; the run is
   finished and persisted by whoever runs it, not by the recorder;
3. otherwise a run of its own in the default store (``$TRIALBOOK_STORE`` or ``.trialbook``),
   in the experiment named after the integration (opened, or created, with
   ``if_exists="append"``), persisted when the recorder finishes.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from trialbook.tracking import current_run

if TYPE_CHECKING:
    from trialbook.runs import RunsExperiment
    from trialbook.session import Session
    from trialbook.tracking import Run

_INVALID = re.compile(r"\W")


def param_name(name: Any) -> str:
    """``name`` made a valid parameter name: other characters become ``_``.

    Examples
    --------
    >>> param_name("learning-rate"), param_name("2nd"), param_name("class"), param_name("lr")
    ('learning_rate', '_2nd', 'class_', 'lr')
    """
    text = _INVALID.sub("_", str(name)) or "_"
    if text[0].isdigit():
        text = "_" + text
    if keyword.iskeyword(text):
        text += "_"
    return text


def plain_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` with valid names and values a store keeps as they are: numbers, strings,
    booleans, ``None``, and lists and dicts of them; anything else becomes its ``repr``.

    Examples
    --------
    >>> plain_params({"max-depth": 3, "loss": print, "layers": (64, 32)})
    {'max_depth': 3, 'loss': '<built-in function print>', 'layers': [64, 32]}
    """
    return {param_name(k): _plain(v) for k, v in (params or {}).items()}


def _plain(value: Any) -> Any:
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    item = getattr(value, "item", None)  # NumPy and torch scalars
    if callable(item) and getattr(value, "ndim", None) == 0:
        return _plain(item())
    return repr(value)


class Recorder:
    """The run an integration writes into, chosen by the rule of this module.

    ``integration`` names the integration: the experiment of its own runs in the default
    store and the field that keeps its parameters inside a current run.

    Examples
    --------
    >>> import trialbook
    >>> from trialbook.integrations import Recorder
    >>> session = trialbook.create_session("sqlite:///:memory:")
    >>> experiment = session.create_experiment("fits")
    >>> recorder = Recorder("demo", experiment)
    >>> run = recorder.start({"lr": 0.1})
    >>> run.log_metric("loss", 0.5)
    >>> recorder.finish()
    >>> stored = session.load_experiment("fits").runs.first()
    >>> stored.status, dict(stored.params), stored.metrics("loss")["value"].tolist()
    ('done', {'lr': 0.1}, [0.5])

    Inside a run's step the values go to that run, its parameters kept in a field:

    >>> with experiment.run(seed=1) as outer:
    ...     inner = Recorder("demo").start({"lr": 0.2})
    ...     inner is outer
    True
    >>> outer.fields.demo_params
    {'lr': 0.2}
    >>> session.close()
    """

    def __init__(self, integration: str, experiment: RunsExperiment | None = None) -> None:
        self.integration = integration
        self._experiment = experiment
        self._session: Session | None = None
        self._run: Run | None = None
        self._own_experiment: RunsExperiment | None = None

    @property
    def run(self) -> Run | None:
        """The run written into, once :meth:`start` chose it."""
        return self._run

    @property
    def owns_run(self) -> bool:
        """Whether the run is the recorder's own (it finishes and persists it)."""
        return self._own_experiment is not None

    def start(self, params: Mapping[str, Any] | None = None) -> Run:
        """Choose the run (once; later calls return it and add ``params`` to it)."""
        values = plain_params(params)
        if self._run is not None:
            self._add_params(self._run, values)
            return self._run
        current = current_run() if self._experiment is None else None
        if current is not None:
            self._run = current
            self._add_params(current, values)
            return current
        experiment = self._experiment if self._experiment is not None else self._default()
        run = experiment.add_run(**values)
        run.start()
        self._run = run
        self._own_experiment = experiment
        return run

    def _add_params(self, run: Run, values: dict[str, Any]) -> None:
        if not values:
            return
        if self.owns_run:  # params are fixed when a run is added: later ones become fields
            values = {k: v for k, v in values.items() if k not in run.params or run.params[k] != v}
            if not values:
                return
        key = f"{self.integration}_params"
        run.fields[key] = {**(run.fields.get(key) or {}), **values}

    def _default(self) -> RunsExperiment:
        from trialbook.session import create_session

        self._session = create_session()
        return self._session.create_experiment(self.integration, if_exists="append")

    def persist(self) -> None:
        """Write the own run's values so far (nothing for a current run: its owner persists)."""
        if self._own_experiment is not None:
            self._own_experiment.persist()

    def finish(self, exc: BaseException | None = None) -> None:
        """End the own run (failed with ``exc`` if given), persist it, close what was opened.

        For a current run only the recorder is reset; the run goes on."""
        try:
            if self._own_experiment is not None and self._run is not None:
                if self._run.status == "running":
                    self._run.finish(exc)
                self._own_experiment.persist()
        finally:
            if self._session is not None:
                self._session.close()
            self._session = None
            self._run = None
            self._own_experiment = None
