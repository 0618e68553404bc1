"""Integrations with the tools researchers already train in.

Each integration is a module of its own (``trialbook.integrations.lightning``,
``.keras``, ``.transformers``, ``.xgboost``, ``.lightgbm``, ``.sklearn``, ``.optuna``) that
imports its library only when it is imported itself, so ``import trialbook`` never pays for them.
They all write through one :class:`~trialbook.integrations.recorder.Recorder`: into the
run of the step, graph trial or task that is executing (:func:`trialbook.current_run`), into
a runs experiment given to them, or else into a run of their own in the default store.

Examples
--------
>>> from trialbook.integrations import Recorder
>>> Recorder  # doctest: +ELLIPSIS
<class 'trialbook.integrations.recorder.Recorder'>
"""

from __future__ import annotations

from trialbook.integrations.recorder import Recorder, param_name, plain_params

__all__ = ["Recorder", "param_name", "plain_params"]
