"""Entry point of a Slurm job written by :class:`trialbook.execution.slurm.SlurmLauncher`.

``python -m trialbook.execution.slurm_worker FOLDER`` runs the call stored in ``FOLDER`` and
writes its result there; the exit status is 0 when the call returned and 1 when it raised.

Examples
--------
>>> from trialbook.execution.slurm_worker import main
>>> main([])
Traceback (most recent call last):
...
SystemExit: usage: python -m trialbook.execution.slurm_worker FOLDER
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str]) -> int:
    """Run the call in ``argv[0]``; the exit status."""
    if len(argv) != 1:
        raise SystemExit("usage: python -m trialbook.execution.slurm_worker FOLDER")
    from trialbook.execution.slurm import run_call

    return run_call(argv[0])


if __name__ == "__main__":  # pragma: no cover - runs on Slurm nodes
    sys.exit(main(sys.argv[1:]))
