"""``python -m trialbook``: the command line."""

from trialbook.cli import main

main()
