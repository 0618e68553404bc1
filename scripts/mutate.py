"""Mutation testing of trialbook's core with mutmut (`make mutate`; not part of CI).

Each target below is mutated on its own, in a scratch copy of the project
(`.mutate/<target>/`, kept for `mutmut show <mutant>` / `mutmut browse` afterwards), and its
mutants are checked against a targeted subset of the tests: the tests that exercise it. The
script prints one line per target: mutants killed, survived, timed out, the score (killed and
timed out over all mutants) and the time the run took, then the names of the survivors.

    python scripts/mutate.py                 # every target, one after the other
    python scripts/mutate.py identity codecs # some targets
    python scripts/mutate.py --list          # the targets, their source files and tests
    python scripts/mutate.py --survivors codecs  # after adding tests: only the last survivors
    python scripts/mutate.py --baseline codecs   # without tests/test_mutants_*.py

Runs under `nice` (MUTATE_NICE, default 15) with one worker (MUTATE_JOBS, default 1): it is
slow on purpose and leaves the machine usable. Tests that need a server (PostgreSQL, Redis,
MongoDB) are skipped: the targets are checked through the embedded store. Survivors judged
equivalent to the original code are listed, with the reason, in docs/testing.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRATCH = ROOT / ".mutate"


@dataclasses.dataclass(frozen=True)
class Target:
    """What to mutate (source files, optionally only the mutants matching ``only``: fnmatch
    patterns over mutmut's mutant names) and which tests check it."""

    sources: tuple[str, ...]
    tests: tuple[str, ...]
    only: tuple[str, ...] = ()
    doctests: bool = True
    """Whether the sources' doctests check them too (not when they start worker processes)."""
    deselect: tuple[str, ...] = ()
    """Tests of the listed files left out (pytest node ids): those that start worker processes."""


TARGETS: dict[str, Target] = {
    "identity": Target(
        ("src/trialbook/identity.py",),
        ("tests/test_identity.py", "tests/test_tasks_config.py", "tests/test_mutants_identity.py"),
    ),
    "codecs": Target(
        ("src/trialbook/codecs.py",),
        ("tests/test_codecs.py", "tests/test_mutants_codecs.py"),
    ),
    "query": Target(
        ("src/trialbook/storage/query.py",),
        ("tests/test_query.py", "tests/test_mutants_query.py"),
    ),
    # run-id allocation (SQLite only: the other backends need their servers)
    "run-ids": Target(
        ("src/trialbook/storage/sqlite.py",),
        # (not test_backends / test_concurrency: their writers are processes started with
        # "spawn", which import the mutated code without mutmut's set-up, and fail)
        (
            "tests/test_store_contract.py",
            "tests/test_storage_sqlite.py",
            "tests/test_mutants_run_ids.py",
        ),
        only=("*allocate_run_ids*",),
    ),
    # the graph's trial recording, history and purity checks (test_record_graph and
    # test_graph_reload start processes with "spawn", like test_backends above: left out)
    "graph": Target(
        ("src/trialbook/graph/recorder.py", "src/trialbook/graph/history.py"),
        (
            "tests/test_graph.py",
            "tests/test_compat_daskperiment.py",
            "tests/test_mutants_graph.py",
        ),
        deselect=(
            # computes a step with scheduler="processes": its workers cannot import mutated code
            "tests/test_compat_daskperiment.py::"
            "test_metric_key_and_current_trial_id_in_worker_processes",
            # scheduler="threads": Dask's shared thread pool has no threads in the processes
            # forked for each mutant (see DASK_SCHEDULER in run())
            "tests/test_graph.py::test_dask_schedulers_and_plain_compute",
        ),
    ),
    # task identifiers (Config / Task hashing); the scheduler's tests run jobs in loky worker
    # processes, which mutmut cannot follow: the scheduler needs in-process tests first. Of the
    # experimaestro compatibility tests, only those that run no job (pytest node ids)
    "tasks": Target(
        ("src/trialbook/tasks/config.py",),
        (
            "tests/test_tasks_config.py",
            *(
                f"tests/test_compat_experimaestro_config.py::test_{name}"
                for name in (
                    "before_submission_unknown_names_are_still_refused",
                    "plain_attributes_do_not_count_and_are_not_saved",
                    "a_task_checked_with_a_dry_run_may_be_the_parameter_of_another",
                    "option_is_a_parameter_that_does_not_count",
                    "setmeta_true_leaves_a_configuration_out_of_its_holders_identifier",
                    "setmeta_false_makes_a_meta_parameter_count",
                    "setmeta_refuses_a_sealed_configuration_and_bad_values",
                    "cache_needs_a_workdir_and_a_relative_name",
                    "copyconfig_shares_nested_configurations_and_copies_lists",
                    "deprecating_a_class_with_its_own_parameters_is_refused",
                    "a_deprecated_parameter_warns_and_sets_its_replacement",
                    "deprecate_refuses_other_values",
                    "xpmid_names_the_type_like_trialbook_id",
                    "ignore_defaults_lets_a_parameter_be_added_without_new_identifiers",
                    "without_the_option_a_bare_default_counts",
                )
            ),
            *(
                f"tests/test_compat_experimaestro_jobs.py::test_{name}"
                for name in (
                    "a_generated_path_that_would_count_in_the_identifier_is_refused",
                    "progress_outside_a_job_records_nothing",
                    "get_experiment_is_the_experiment_of_the_innermost_block",
                    "dry_run_submit_outside_an_experiment_checks_the_task_without_a_workdir",
                )
            ),
            "tests/test_mutants_tasks.py",
        ),
        doctests=False,  # config.py's examples run jobs in worker processes
    ),
}

# mutmut's exit codes of a mutant's test run, grouped as this report counts them
KILLED = {1, 3, 37}  # a test failed (3: pytest internal error); 37: caught by a type check
TIMEOUT = {36, 24, -24, 152, 255, -9, -11}  # the mutant hung or crashed the worker
SURVIVED = {0}
NO_TESTS = {5, 33}  # no test reaches the mutated function: counts as survived


def mutmut_config(target: Target, baseline: bool) -> str:
    """The [tool.mutmut] section of the scratch copy's pyproject.toml (``baseline``: without
    the tests written to kill mutants, tests/test_mutants_*.py)."""
    tests = [t for t in target.tests if (ROOT / t.partition("::")[0]).exists()]  # or node ids
    if baseline:
        tests = [t for t in tests if not pathlib.Path(t).name.startswith("test_mutants_")]
    doctests = list(target.sources) if target.doctests else []  # the modules' own examples
    deselect = [f"--deselect={t}" for t in target.deselect]

    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"

    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"only_mutate = {toml_list(list(target.sources))}\n"
        'also_copy = ["conftest.py", "docs"]\n'
        f"pytest_add_cli_args_test_selection = {toml_list(tests + doctests)}\n"
        # the suite's own addopts collect doctests of every path given; warnings stay errors;
        # a fixed Hypothesis seed makes a score repeatable
        "pytest_add_cli_args = "
        + toml_list(["-q", "--timeout=120", "--hypothesis-seed=0", *deselect])
        + "\n"
        # a mutant whose tests take 10x the original's (+5 s) is a timeout (an endless loop)
        "timeout_multiplier = 10.0\n"
        "timeout_constant = 5.0\n"
    )


def prepare(name: str, target: Target, baseline: bool) -> pathlib.Path:
    """A fresh scratch copy of the project for one target."""
    where = SCRATCH / name
    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("src", "tests", "docs"):
        shutil.copytree(ROOT / folder, where / folder, ignore=ignore)
    shutil.copy2(ROOT / "conftest.py", where / "conftest.py")
    pyproject = (ROOT / "pyproject.toml").read_text()
    (where / "pyproject.toml").write_text(pyproject + mutmut_config(target, baseline))
    return where


def results(where: pathlib.Path, target: Target) -> dict[str, int]:
    """Exit code of each mutant of ``target`` (from mutmut's .meta files)."""
    import fnmatch

    codes: dict[str, int] = {}
    for source in target.sources:
        meta = where / "mutants" / (source + ".meta")
        if not meta.exists():
            continue
        for key, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if not target.only or any(fnmatch.fnmatch(key, p) for p in target.only):
                codes[key] = code
    return codes


def run(
    name: str, target: Target, names: list[str], baseline: bool = False
) -> tuple[dict[str, int], float]:
    """Run mutmut on ``target`` (only the mutants ``names`` when given); exit code by mutant."""
    where = prepare(name, target, baseline)
    nice = os.environ.get("MUTATE_NICE", "15")
    jobs = os.environ.get("MUTATE_JOBS", "1")
    command = ["nice", "-n", nice, sys.executable, "-m", "mutmut", "run", "--max-children", jobs]
    command += names or list(target.only)
    # the embedded store only: tests that need a server skip (faster, and the same everywhere)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIALBOOK_TEST_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # Dask's default scheduler, synchronous: its shared thread pool, started while mutmut first
    # runs the tests, has no threads in the processes forked to test each mutant, so a plain
    # `.compute()` there waits forever (a timeout, counted as killed, whatever the mutant)
    env["DASK_SCHEDULER"] = "sync"
    log = where / "mutmut.log"
    started = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(
            command, check=False, cwd=where, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    elapsed = time.monotonic() - started
    codes = results(where, target)
    if names:
        codes = {k: c for k, c in codes.items() if k in names}
    if done.returncode != 0 or not codes or None in codes.values():
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise SystemExit(f"mutate: mutmut failed on {name!r} (see {log}):\n{tail}")
    return codes, elapsed


def report(name: str, codes: dict[str, int], elapsed: float) -> str:
    killed = sum(c in KILLED for c in codes.values())
    timeout = sum(c in TIMEOUT for c in codes.values())
    survivors = sorted(k for k, c in codes.items() if c not in KILLED | TIMEOUT)
    total = len(codes)
    score = 100.0 * (killed + timeout) / total if total else 0.0
    lines = [
        f"{name:10} {score:5.1f}%  killed {killed}, timeout {timeout}, "
        f"survived {len(survivors)} of {total} mutants  ({elapsed / 60:.1f} min)"
    ]
    lines += [f"    survived: {s} (exit {codes[s]})" for s in survivors]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help=f"some of: {', '.join(TARGETS)} (default all)")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument(
        "--survivors",
        action="store_true",
        help="check again only the survivors of the last run (after adding tests: a killed "
        "mutant stays killed), and report the merged result",
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="without the tests/test_mutants_*.py files: the score they start from",
    )
    args = parser.parse_args()
    if args.list:
        for name, target in TARGETS.items():
            print(f"{name}: {' '.join(target.sources)} <- {' '.join(target.tests)}")
        return
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {unknown}: expected some of {list(TARGETS)}")
    lines = []
    for name in args.targets or list(TARGETS):
        saved = SCRATCH / f"{name}.json"
        previous: dict[str, int] = {}
        names: list[str] = []
        if args.survivors:
            if not saved.exists():
                parser.error(f"--survivors: no earlier run of {name!r} ({saved} is missing)")
            previous = json.loads(saved.read_text())["codes"]
            names = sorted(k for k, c in previous.items() if c not in KILLED | TIMEOUT)
            if not names:
                print(f"mutate: {name}: no survivors to check again")
                continue
        print(f"mutate: {name} ({len(names) or 'all'} mutants) ...", flush=True)
        codes, elapsed = run(name, TARGETS[name], names, args.baseline)
        codes = {**previous, **codes}
        result = json.dumps({"codes": codes, "elapsed": elapsed}, indent=1)
        saved.write_text(result)  # the latest result, which --survivors starts from
        if args.baseline:
            (SCRATCH / f"{name}-baseline.json").write_text(result)
        lines.append(report(name, codes, elapsed))
        print(lines[-1], flush=True)
    print("\nmutation scores (killed or timed out / all mutants):")
    for line in lines:
        print(line.splitlines()[0])


if __name__ == "__main__":
    main()
