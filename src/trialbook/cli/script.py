"""``trialbook run SCRIPT key=value ... --seed N``: run a lazy-graph script as one trial."""

from __future__ import annotations

import os

import click

from trialbook.cli.common import friendly_errors, store_option


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("script", type=click.Path(exists=True, dir_okay=False))
@click.argument("params", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--seed", type=int, default=None, help="Seed random and NumPy with SEED.")
@store_option
@friendly_errors
def run(script: str, params: tuple[str, ...], seed: int | None, store: str | None) -> None:
    """Run SCRIPT, setting parameters KEY=VALUE, and record one trial.

    Values are Python literals (1, 0.5, [1, 2], 'x') or else text. The script either calls
    ex.run_trial(node) itself or defines one @ex.result node at top level, which is computed.
    --store applies to experiments the script creates without backend=.
    """
    from trialbook.graph.script import parse_arguments, run_script
    from trialbook.storage import ENV_VAR

    argv = list(params)
    parse_arguments(argv)  # malformed arguments fail before the script runs
    if seed is not None:
        argv += ["--seed", str(seed)]
    saved = os.environ.get(ENV_VAR)
    if store is not None:
        os.environ[ENV_VAR] = store
    try:
        trials = run_script(script, argv)
    finally:
        if saved is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = saved
    for trial in trials:
        click.echo(
            f"trial {trial.trial_id} of experiment {trial.experiment.id!r}: result {trial.result!r}"
        )
