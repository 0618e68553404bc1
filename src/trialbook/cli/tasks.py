"""``trialbook run-experiment`` (YAML plans) and ``trialbook jobs ls|kill|clean``."""

from __future__ import annotations

from typing import Any

import click

from trialbook.cli.common import existing_workdir, friendly_errors

__all__ = ["jobs", "run_experiment"]

workdir_option = click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    envvar="TRIALBOOK_WORKDIR",
    default="workdir",
    show_default=True,
    help="Working directory (jobs, experiments, tokens); default $TRIALBOOK_WORKDIR or ./workdir.",
)
task_store_option = click.option(
    "--store",
    "store",
    metavar="URL",
    envvar="TRIALBOOK_STORE",
    default=None,
    help="Store where jobs are recorded (default: $TRIALBOOK_STORE or .trialbook).",
)


@click.command("run-experiment")
@workdir_option
@task_store_option
@click.option(
    "--run-mode",
    type=click.Choice(["normal", "dry-run", "generate"]),
    default="normal",
    show_default=True,
    help="normal runs jobs; dry-run lists them with their status; generate writes run scripts.",
)
@click.option(
    "-c", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a key (YAML value)."
)
@click.option("--show", is_flag=True, help="Print the merged configuration and exit.")
@click.option("--workers", type=int, default=-1, show_default=True, help="Local worker processes.")
@click.option(
    "--quiet", "-q", is_flag=True, help="Do not tell jobs started, done and failed as they happen."
)
@click.argument("yaml_file", type=click.Path(exists=True, dir_okay=False))
@friendly_errors
def run_experiment(yaml_file: str, **options: Any) -> None:
    """Run the plan of YAML_FILE: merge parents, apply -c overrides, call run(helper, cfg).

    Exits with status 1 if any job failed.
    """
    from trialbook.tasks.launchers import LocalLauncher
    from trialbook.tasks.plans import load_plan, run_plan, show

    overrides = list(options["overrides"])
    if options["show"]:
        cfg, _, _ = load_plan(yaml_file, overrides)
        click.echo(show(cfg), nl=False)
        return
    xp = run_plan(
        yaml_file,
        workdir=options["workdir"],
        run_mode=options["run_mode"],
        overrides=overrides,
        launcher=LocalLauncher(options["workers"]),
        store=options["store"],
        progress=False if options["quiet"] else None,
    )
    for entry in xp.plan:
        deps = entry.get("depends_names")
        depends = f"  (depends on {', '.join(deps)})" if deps else ""
        click.echo(f"{entry['status']:<10} {entry['name']}{depends}")
    if options["run_mode"] == "normal":
        done = sum(1 for j in xp.scheduler.jobs.values() if j.state == "done")
        click.echo(f"{done} job(s) done in experiment {xp.name!r}")


def _filters(status: str | None, tags: tuple[str, ...]) -> dict[str, Any]:
    parsed = {}
    for item in tags:
        key, sep, value = item.partition("=")
        if not sep:
            msg = f"--tag takes NAME=VALUE (got {item!r})"
            raise click.BadParameter(msg)
        parsed[key] = value
    return {"status": status, "tags": parsed}


status_option = click.option(
    "--status",
    type=click.Choice(["waiting", "running", "done", "failed", "interrupted"]),
    default=None,
    help="Only jobs with this status.",
)
tag_option = click.option(
    "--tag", "tags", multiple=True, metavar="NAME=VALUE", help="Only jobs with this tag."
)


@click.group()
@task_store_option
@click.pass_context
def jobs(ctx: click.Context, store: str | None) -> None:
    """List and manage the job directories of a workdir."""
    ctx.obj = store


@jobs.command("ls")
@workdir_option
@status_option
@tag_option
@friendly_errors
def jobs_ls(workdir: str, status: str | None, tags: tuple[str, ...]) -> None:
    """List jobs: status, task/identifier and tags, how far unfinished jobs got, and why a
    failed job never ran (waiting: queued, not started yet)."""
    from trialbook.tasks.jobdir import list_jobs

    listed = list_jobs(existing_workdir(workdir), **_filters(status, tags))
    for job in listed:
        where = f"  [{job.identifier[:12]}]" if job.tags else ""  # untagged: already in label
        why = f"  (never ran: {job.never_ran})" if job.never_ran else ""
        click.echo(f"{job.status:<11} {job.label}{where}{_progress_text(job.progress)}{why}")
    if not listed:
        click.echo(f"no jobs{' matching' if status or tags else ''} in {workdir}")


def _progress_text(levels: list[dict[str, Any]]) -> str:
    """``  42% epochs, 10% batches`` from the levels a job reported ("" when none)."""
    parts = []
    for level in levels:
        value, desc = level.get("progress"), level.get("desc")
        if isinstance(value, (int, float)):
            parts.append(f"{100 * value:.0f}%" + (f" {desc}" if desc else ""))
    return f"  {', '.join(parts)}" if parts else ""


@jobs.command("kill")
@workdir_option
@tag_option
@friendly_errors
def jobs_kill(workdir: str, tags: tuple[str, ...]) -> None:
    """Stop running jobs (SIGTERM to the process running each)."""
    from trialbook.tasks.jobdir import kill_jobs, list_jobs

    killed = kill_jobs(list_jobs(existing_workdir(workdir), **_filters("running", tags)))
    for job in killed:
        click.echo(f"killed {job.label} (pid {job.pid})")
    if not killed:
        click.echo(f"no running jobs{' matching' if tags else ''} in {workdir}: nothing killed")


@jobs.command("clean")
@workdir_option
@click.option(
    "--status",
    type=click.Choice(["waiting", "done", "failed", "interrupted"]),
    default="failed",
    show_default=True,
    help="Delete jobs with this status (running jobs are never deleted).",
)
@tag_option
@click.option("--forget-runs", is_flag=True, help="Also delete the jobs' runs from the store.")
@click.pass_obj
@friendly_errors
def jobs_clean(
    store: str | None, workdir: str, status: str, tags: tuple[str, ...], forget_runs: bool
) -> None:
    """Delete job directories (failed ones by default)."""
    from trialbook.tasks.jobdir import clean_jobs, list_jobs
    from trialbook.tasks.record import forget_runs as forget

    removed = clean_jobs(list_jobs(workdir, **_filters(status, tags)))
    for job in removed:
        click.echo(f"removed {job.label}")
    click.echo(f"{len(removed)} job(s) removed")
    if forget_runs and removed:
        count = forget(store, [j.identifier for j in removed], workdir=workdir)
        click.echo(f"{count} run(s) deleted from the store")
