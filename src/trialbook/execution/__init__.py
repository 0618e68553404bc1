"""Executors: where work runs, behind one protocol (:mod:`trialbook.execution.base`).

``submit(fn, *args)`` returns a :class:`concurrent.futures.Future`. The implementations: this
process (:class:`~trialbook.execution.base.InProcessExecutor`), a pool of local worker processes
that stay alive between calls (:class:`~trialbook.execution.pool.LocalLauncher`, joblib's *loky*
executor), a Dask cluster (:class:`~trialbook.execution.dask.DaskLauncher`) and Slurm
(:class:`~trialbook.execution.slurm.SlurmLauncher`). Grids of runs and task jobs both go through
it; the lazy graph runs its trials on Dask schedulers.

Examples
--------
>>> from trialbook.execution import resolve_n_jobs
>>> resolve_n_jobs(1)
1
>>> import os
>>> resolve_n_jobs(1000) <= (os.cpu_count() or 1)
True
"""

from __future__ import annotations

from trialbook.execution.base import Executor, InProcessExecutor
from trialbook.execution.pool import resolve_n_jobs

__all__ = ["Executor", "InProcessExecutor", "resolve_n_jobs"]
