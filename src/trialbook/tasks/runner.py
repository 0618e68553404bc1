"""Run a generated job: ``python -m trialbook.tasks.runner <job directory>``.

The job directory holds ``task.pkl`` (written in generate mode); the job runs in this process,
its output goes to the job's log files and ``status.json`` tells the result. The exit status is
0 when the job succeeded, 1 when it failed. While it runs, this process holds the job
directory's lock, as an experiment does for the jobs it runs: ``trialbook jobs`` lists the job as
``running`` (``interrupted`` if this process dies), and ``jobs clean`` leaves it alone.

Examples
--------
>>> from trialbook.tasks.runner import main
>>> main("/nonexistent")
Traceback (most recent call last):
...
trialbook.errors.ConfigError: no task.pkl in /nonexistent: generate the job first (run mode ...)
"""

from __future__ import annotations

import os
import pathlib
import sys

from trialbook.errors import ConfigError
from trialbook.tasks.jobdir import try_lock
from trialbook.tasks.jobs import JobSpec, execute_job

__all__ = ["main"]


def main(path: str) -> int:
    """Run the job stored in ``path``; return 0 on success, 1 on failure."""
    pickled = pathlib.Path(path) / "task.pkl"
    if not pickled.exists():
        msg = f"no task.pkl in {path}: generate the job first (run mode 'generate')"
        raise ConfigError(msg)
    fd = try_lock(pathlib.Path(path))
    if fd is None:
        msg = (
            f"the job in {path} is running in another process (its lock is held); wait for it, "
            "or stop it with `trialbook jobs kill`"
        )
        raise ConfigError(msg)
    try:
        spec = JobSpec(pickled.read_bytes(), str(path), sys_path=list(sys.path))
        outcome = execute_job(spec)
    finally:
        os.close(fd)
    return 0 if outcome.status == "done" else 1


if __name__ == "__main__":  # pragma: no cover - exercised through run.py scripts
    sys.exit(main(sys.argv[1]))
