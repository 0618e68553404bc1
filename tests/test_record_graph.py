"""Issue 12, the lazy step graph's record: parameter values come from the code (item 1), an
environment change is a real change (item 6), no phantom trials from worker processes (item 7),
one rule for parameter names (item 8), and trials of ``trialbook run`` scripts that compute
their result directly."""

from __future__ import annotations

import json
import logging
import os
import pathlib
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from click.testing import CliRunner

import trialbook
from conftest import BACKENDS, Closing, backend_location
from trialbook import capture
from trialbook.cli import cli
from trialbook.errors import CodecError, ConfigError
from trialbook.graph.script import parse_arguments

TRAIN = textwrap.dedent(
    """
    import trialbook

    ex = trialbook.Experiment("train", backend={store!r})
    epochs = ex.parameter("epochs", default={default})

    @ex.result
    def train(epochs):
        return epochs * 100

    result = train(epochs)
    """
)


def run_process(command: list[str], cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in ``cwd`` as a user would; it must succeed."""
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return done


def trialbook_run(cwd: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``trialbook run ...`` in a fresh process, as a user types it."""
    return run_process([sys.executable, "-m", "trialbook", "run", *args], cwd)


def history(store: str | pathlib.Path, name: str) -> object:
    ex = trialbook.Experiment(name, backend=store)
    try:
        return ex.get_history()
    finally:
        ex.store.close()


# -- item 1: parameter values come from the code, not from the last trial ------------------------


def test_cli_runs_take_the_default_written_in_the_script(tmp_path: pathlib.Path) -> None:
    store = str(tmp_path / "store")
    script = tmp_path / "train.py"
    script.write_text(TRAIN.format(store=store, default=10))
    trialbook_run(tmp_path, "train.py")
    trialbook_run(tmp_path, "train.py", "epochs=3")
    trialbook_run(tmp_path, "train.py")  # the value given once does not stick
    script.write_text(TRAIN.format(store=store, default=20))  # the user edits the default
    trialbook_run(tmp_path, "train.py")
    frame = history(store, "train")
    assert frame["epochs"].tolist() == [10, 3, 10, 20]
    assert frame["Result"].tolist() == [1000, 300, 1000, 2000]


def three_processes(location: str, caplog: pytest.LogCaptureFixture) -> list[str]:
    """Trials of `train` in "processes" (a new Experiment object each), as a script would run
    them; return the INFO lines about parameters taken from a trial."""

    def process(default: int, **given: object) -> object:
        ex = trialbook.Experiment("train", backend=location)
        try:
            epochs = ex.parameter("epochs", default=default)
            lr = ex.parameter("lr")  # no default: the last recorded value is used

            @ex.result
            def train(epochs, lr):
                return epochs * lr

            ex.set_parameters(**given)
            return train(epochs, lr).compute(seed=0)
        finally:
            ex.store.close()

    caplog.set_level(logging.INFO, logger="trialbook.graph")
    assert process(10, lr=2) == 20
    assert process(10, epochs=3) == 6
    assert process(10) == 20
    assert process(20) == 40
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Parameter ")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_process_takes_the_default_from_its_code(
    backend: str, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture, closing: Closing
) -> None:
    with backend_location(backend, tmp_path) as location:
        logged = three_processes(location, caplog)
        assert logged == [
            f"Parameter 'lr' is not set and has no default: using 2, its value in trial {i}"
            for i in (1, 2, 3)
        ]
        frame = history(location, "train")
        assert frame[["epochs", "lr"]].values.tolist() == [[10, 2], [3, 2], [10, 2], [20, 2]]
        # A process that only reads sees the default the code declared last, not the last
        # value given on a command line.
        reader = closing(trialbook.Experiment("train", backend=location))
        try:
            assert reader.get_parameters() == {"epochs": 20, "lr": 2}
            reader.set_parameters(epochs=3)
            assert reader.get_parameters() == {"epochs": 3, "lr": 2}
        finally:
            reader.store.close()


def test_a_parameter_without_default_in_the_edited_code_has_no_stored_default(
    store_dir: pathlib.Path,
    closing: Closing,
) -> None:
    ex = closing(trialbook.Experiment("train", backend=store_dir))
    ex.parameter("epochs", default=10)
    again = closing(trialbook.Experiment("train", backend=store_dir))
    assert again.get_parameters() == {"epochs": 10}
    again.parameter("epochs")  # the code no longer has a default, and no trial recorded one
    assert again.get_parameters() == {}
    assert closing(trialbook.Experiment("train", backend=store_dir)).get_parameters() == {}


def test_metadata_of_earlier_versions_is_read(store_dir: pathlib.Path, closing: Closing) -> None:
    ex = closing(trialbook.Experiment("old", backend=store_dir))
    lr = ex.parameter("lr")

    @ex.result
    def f(lr):
        return lr

    ex.set_parameters(lr=0.5)
    f(lr).compute(seed=0)
    # as written before defaults were listed: a value per parameter, None for "no default"
    meta = {"graph": {"parameters": {"epochs": 10, "lr": None}, "steps": {}}}
    ex.store.update_meta(ex.experiment_id, meta)
    again = closing(trialbook.Experiment("old", backend=store_dir))
    assert again.get_parameters() == {"epochs": 10, "lr": 0.5}


def test_a_trial_records_only_the_parameters_its_code_declares(
    store_dir: pathlib.Path, closing: Closing
) -> None:
    ex = closing(trialbook.Experiment("declared", backend=store_dir))
    a, b = ex.parameter("a", default=1), ex.parameter("b", default=2)

    @ex.result
    def total(a, b):
        return a + b

    total(a, b).compute(seed=0)
    again = closing(trialbook.Experiment("declared", backend=store_dir))  # the new code has no `b`
    a = again.parameter("a", default=1)

    @again.result
    def same(a):
        return a

    same(a).compute(seed=0)
    assert again.get_parameters(trial_id=2) == {"a": 1}
    assert again.get_parameters(trial_id=1) == {"a": 1, "b": 2}


def test_an_unstorable_parameter_fails_before_the_trial(
    store_dir: pathlib.Path, closing: Closing
) -> None:
    ex = closing(trialbook.Experiment("values", backend=store_dir))
    a = ex.parameter("a")
    calls = []

    @ex.result
    def f(a):
        calls.append(a)
        return 1

    ex.set_parameters(a=lambda: 1)
    with pytest.raises(CodecError, match=r"^parameter 'a' of experiment 'values' cannot be stored"):
        f(a).compute(seed=0)
    assert calls == []
    assert ex.trial_id == 0
    ex.set_parameters(a=2)
    assert f(a).compute(seed=0) == 1
    assert ex.get_history().index.tolist() == [1]


def test_an_unstorable_result_is_not_recorded_as_none(
    store_dir: pathlib.Path, caplog: pytest.LogCaptureFixture, closing: Closing
) -> None:
    ex = closing(trialbook.Experiment("values", backend=store_dir))

    @ex.result
    def make():
        return lambda: 2

    @ex.result
    def none():
        return None

    caplog.set_level(logging.WARNING, logger="trialbook.graph")
    make().compute(seed=0)
    none().compute(seed=0)
    assert caplog.records[0].getMessage().startswith("Result of trial 1 is not stored: ")
    frame = closing(trialbook.Experiment("values", backend=store_dir)).get_history()
    assert frame["Result Type"].tolist() == ["<class 'function'>", "<class 'NoneType'>"]
    assert pd.isna(frame.loc[1, "Result"])
    assert frame["Success"].tolist() == [True, True]
    assert ex.diff(1, 2).result == ("<not stored: <class 'function'>>", None)


# -- scripts that compute their result themselves under `trialbook run` ---------------------------


def test_a_script_computing_its_result_uses_the_command_line(tmp_path: pathlib.Path) -> None:
    store = str(tmp_path / "store")
    script = tmp_path / "direct.py"
    script.write_text(TRAIN.format(store=store, default=10) + "print(result.compute())\n")
    done = CliRunner().invoke(cli, ["run", str(script), "epochs=3", "--seed", "4"])
    assert done.exit_code == 0, done.output
    assert done.output.splitlines() == ["300", "trial 1 of experiment 'train': result 300"]
    frame = history(store, "train")
    assert frame[["epochs", "Result", "Seed"]].values.tolist() == [[3, 300, 4]]


def test_the_command_line_seed_wins_over_the_scripts(tmp_path: pathlib.Path) -> None:
    store = str(tmp_path / "store")
    script = tmp_path / "seeded.py"
    script.write_text(
        TRAIN.format(store=store, default=10)
        + "print(result.compute(seed=1))\n"
        + "import sys\nprint(ex.run_trial(result, sys.argv[1:], seed=2))\n"
    )
    done = CliRunner().invoke(cli, ["run", str(script), "--seed", "7"])
    assert done.exit_code == 0, done.output
    assert history(store, "train")["Seed"].tolist() == [7, 7]
    assert CliRunner().invoke(cli, ["run", str(script)]).exit_code == 0
    assert history(store, "train")["Seed"].tolist() == [7, 7, 1, 2]


def test_a_command_line_value_for_no_parameter_records_nothing(tmp_path: pathlib.Path) -> None:
    store = str(tmp_path / "store")
    script = tmp_path / "direct.py"
    script.write_text(TRAIN.format(store=store, default=10) + "print(result.compute())\n")
    done = CliRunner().invoke(cli, ["run", str(script), "epoch=3"])
    assert done.exit_code == 1
    assert "unknown parameter 'epoch' (did you mean 'epochs'?)" in done.output
    assert len(history(store, "train")) == 0


# -- item 6: an environment change is a real change ------------------------------------------------

ONE_TRIAL = textwrap.dedent(
    """
    import logging, sys
    import trialbook

    logging.basicConfig(level=logging.WARNING)
    ex = trialbook.Experiment("env", backend=sys.argv[1])

    @ex.result
    def one():
        return 1

    one().compute(seed=0)
    """
)


def test_the_same_interpreter_by_another_path_is_no_change(
    tmp_path: pathlib.Path, closing: Closing
) -> None:
    store = str(tmp_path / "store")
    script = tmp_path / "one.py"
    script.write_text(ONE_TRIAL)
    sub = tmp_path / "sub"
    sub.mkdir()
    linked_env = tmp_path / "linked-venv"
    linked_env.symlink_to(sys.prefix, target_is_directory=True)
    exe = pathlib.Path(sys.executable)
    linked_python = linked_env / exe.relative_to(sys.prefix)
    ways = [
        (str(exe), tmp_path),
        (os.path.relpath(exe, sub), sub),  # ../../.venv/bin/python
        (str(linked_python), tmp_path),  # the venv reached through a symbolic link
    ]
    for python, cwd in ways:
        done = run_process([python, str(script), store], cwd)
        assert "has been changed" not in done.stderr, (python, done.stderr)
    ex = closing(trialbook.Experiment("env", backend=store))
    digests = {record.environment for record in ex.store.read_runs(ex.experiment_id)}
    assert len(digests) == 1  # one snapshot: the three trials ran in one environment
    python = json.loads(ex.get_environment(trial_id=3)["python"])
    assert python["executable"] == os.path.realpath(sys.executable)
    assert python["prefix"] == os.path.realpath(sys.prefix)


def test_snapshots_with_unresolved_paths_compare_resolved(tmp_path: pathlib.Path) -> None:
    env = dict(capture.environment())
    link = tmp_path / "link"
    link.symlink_to(sys.prefix, target_is_directory=True)
    python = json.loads(env["python"])
    python["prefix"] = str(link)  # an older snapshot, taken through the link
    lines = env["requirements"].splitlines(keepends=True)
    first = lines[0]
    lines[0] = first.replace(f"({os.path.realpath(sys.prefix)}", f"({link}")
    assert lines[0] != first
    old = {
        **env,
        "python": json.dumps(python, sort_keys=True, indent=1),
        "requirements": "".join(lines),
    }
    assert old != env
    assert capture.environment_diff(old, env) == {}


def test_another_interpreter_is_still_a_change(
    store_dir: pathlib.Path, caplog: pytest.LogCaptureFixture, closing: Closing
) -> None:
    ex = closing(trialbook.Experiment("env_pj", backend=store_dir))

    @ex.result
    def one():
        return 1

    one().compute(seed=0)
    env = dict(capture.environment())
    python = json.loads(env["python"])
    python["prefix"] = "/opt/another-venv"
    env["python"] = json.dumps(python, sort_keys=True, indent=1)
    digest = ex.store.put_snapshot("environment", capture.environment_text(env))
    (record,) = ex.store.read_runs(ex.experiment_id, [1])
    record.environment = digest
    ex.store.write_runs(ex.experiment_id, [record])
    caplog.set_level(logging.WARNING, logger="trialbook.graph")
    trialbook.Experiment("env_pj", backend=store_dir).close()
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings[0] == "Python information has been changed"
    assert warnings[1].startswith("@@ ")
    assert warnings[2:] == [
        '- "prefix": "/opt/another-venv",',
        f'+ "prefix": "{os.path.realpath(sys.prefix)}",',
    ]


# -- item 7: no phantom trials from worker processes -----------------------------------------------

NO_GUARD = textwrap.dedent(
    """
    import logging, sys
    import trialbook

    logging.basicConfig(level=logging.WARNING)
    ex = trialbook.Experiment("phantom", backend={store!r})
    a = ex.parameter("a", default=2)

    @ex
    def inc(x):
        return x + 1

    @ex.result
    def double(x):
        ex.save_metric("x", epoch=0, value=x)
        return 2 * x

    print("result", double(inc(a)).compute(scheduler="processes", seed=1))
    """
)


def test_a_script_without_main_guard_records_one_trial_per_compute(
    tmp_path: pathlib.Path,
    closing: Closing,
) -> None:
    store = str(tmp_path / "store")
    script = tmp_path / "noguard.py"
    second = "ex.set_parameters(a=5)\n" + NO_GUARD.splitlines()[-1] + "\n"
    script.write_text(NO_GUARD.format(store=store) + second)
    done = run_process([sys.executable, str(script)], tmp_path)
    assert [line for line in done.stdout.splitlines() if line != "result None"] == [
        "result 6",
        "result 12",
    ]
    assert "compute() of experiment 'phantom' is skipped in worker process" in done.stderr
    assert 'if __name__ == "__main__":' in done.stderr
    frame = history(store, "phantom")
    assert frame[["a", "Result", "Success"]].values.tolist() == [[2, 6, True], [5, 12, True]]
    ex = closing(trialbook.Experiment("phantom", backend=store))
    assert ex.load_metric("x", trial_id=[1, 2]).loc[0].tolist() == [3, 6]


def test_trialbook_run_of_a_script_without_main_guard(tmp_path: pathlib.Path) -> None:
    store = str(tmp_path / "store")
    (tmp_path / "noguard.py").write_text(NO_GUARD.format(store=store))
    done = trialbook_run(tmp_path, "noguard.py", "a=4")
    assert "trial 1 of experiment 'phantom': result 10" in done.stdout
    frame = history(store, "phantom")
    assert frame[["a", "Result", "Success"]].values.tolist() == [[4, 10, True]]


def test_trials_computed_in_pool_workers_are_recorded(tmp_path: pathlib.Path) -> None:
    """The guard only skips the re-import of the main script: a worker that computes a trial
    as its task (several trials in parallel, as the docs suggest) records it."""
    store = str(tmp_path / "store")
    script = tmp_path / "pool.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import multiprocessing
            import trialbook

            def one_trial(value):
                ex = trialbook.Experiment("pool", backend={store!r})
                a = ex.parameter("a")

                @ex.result
                def square(a):
                    return a * a

                ex.set_parameters(a=value)
                return square(a).compute(seed=0)

            if __name__ == "__main__":
                trialbook.Experiment("pool", backend={store!r})
                with multiprocessing.get_context("spawn").Pool(2) as pool:
                    print(sorted(pool.map(one_trial, [1, 2, 3])))
            """
        )
    )
    done = run_process([sys.executable, str(script)], tmp_path)
    assert done.stdout.strip() == "[1, 4, 9]"
    frame = history(store, "pool")
    assert sorted(frame["Result"].tolist()) == [1, 4, 9]
    assert frame["Success"].all()


# -- item 8: one rule for parameter names ----------------------------------------------------------

BAD_NAMES = ["learning rate", "lr-max", "2nd", "class", "", "a.b"]


def message(call: object) -> str:
    with pytest.raises(ConfigError) as info:
        call()  # type: ignore[operator]
    return str(info.value)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_parameter_names_are_refused_alike(
    name: str, store_dir: pathlib.Path, closing: Closing
) -> None:
    ex = closing(trialbook.Experiment("names", backend=store_dir))
    session = trialbook.create_session(store_dir)
    try:
        runs = session.create_experiment("grid")
        graph_message = message(lambda: ex.parameter(name))
        assert graph_message == message(lambda: runs.add_run(**{name: 1}))
        assert graph_message == message(lambda: runs.add_runs(**{name: [1, 2]}))
        assert graph_message.startswith(f"invalid parameter name {name!r}: ")
        assert "rename it, e.g. '" in graph_message
        assert not runs.runs
    finally:
        session.close()
    with pytest.raises(ConfigError, match="malformed argument"):
        parse_arguments([f"{name}=1"])


def test_good_parameter_names_are_accepted_alike(store_dir: pathlib.Path, closing: Closing) -> None:
    names = ["lr", "_x", "n_layers2", "α"]
    ex = closing(trialbook.Experiment("names", backend=store_dir))
    session = trialbook.create_session(store_dir)
    try:
        runs = session.create_experiment("grid")
        (run,) = runs.add_runs(**{name: [1] for name in names})
        assert [getattr(run.params, name) for name in names] == [1, 1, 1, 1]
        for name in names:
            ex.parameter(name, default=1)
        assert ex.get_parameters() == dict.fromkeys(names, 1)
    finally:
        session.close()
