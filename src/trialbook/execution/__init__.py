"""Executors: where work runs. In-process by default, a pool of worker processes on request.

The pool is joblib's *loky* executor: its workers stay alive between calls (no interpreter
start-up per task) and functions travel with cloudpickle, so steps defined in a script or a
notebook work too.

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

from trialbook.execution.pool import map_unordered, resolve_n_jobs

__all__ = ["map_unordered", "resolve_n_jobs"]
