"""Re-creating a lazy-graph experiment: fresh processes, concurrent processes, environment diff."""

from __future__ import annotations

import logging
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import trialbook
from conftest import Closing
from trialbook import capture

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import trialbook

    ex = trialbook.Experiment("reload_pj", backend=sys.argv[1])
    a = ex.parameter("a")
    b = ex.parameter("b")

    @ex.persist
    def prepare_data(a, b):
        return a + b

    @ex.result
    def calculate_score(s):
        for i in range(10):
            ex.save_metric("score", epoch=i, value=float(s * i))
        return 10 / s

    s = calculate_score(prepare_data(a, b))
    for value in sys.argv[2:]:
        ex.set_parameters(a=1, b=int(value))
        s.compute(seed=1)
    """
)


def run_script(tmp_path: pathlib.Path, store: pathlib.Path, *values: int) -> subprocess.Popen:
    script = tmp_path / "trials.py"
    script.write_text(SCRIPT)
    args = [sys.executable, str(script), str(store), *map(str, values)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err


def test_reload_in_a_fresh_process(
    tmp_path: pathlib.Path, store_dir: pathlib.Path, closing: Closing
) -> None:
    finish(run_script(tmp_path, store_dir, 2, 3))
    ex = closing(trialbook.Experiment("reload_pj", backend=store_dir))
    assert ex.trial_id == 2
    assert repr(ex).startswith("Experiment(id: reload_pj, trial_id: 2,")
    history = ex.get_history()
    assert history[["a", "b"]].values.tolist() == [[1, 2], [1, 3]]
    assert history["Result"].tolist() == [pytest.approx(10 / 3), 2.5]
    assert history["Seed"].tolist() == [1, 1]
    assert ex.get_parameters(trial_id=2) == {"a": 1, "b": 3}
    assert ex.get_parameters() == {"a": 1, "b": 3}  # declared parameters and last values
    assert repr(ex.parameter("b")) == "Parameter(b: 3<class 'int'>)"
    assert ex.get_persisted("prepare_data", trial_id=1) == 3
    metric = ex.load_metric("score", trial_id=[1, 2])
    assert metric.loc[9].tolist() == [27.0, 36.0]
    code = ex.get_code(trial_id=1)
    assert "@ex.persist\ndef prepare_data(a, b):" in code
    assert (store_dir / "code" / "reload_pj_2.py").read_text() == code + "\n"

    # the recovered parameters can be computed again right away, here
    @ex.result
    def total(a, b):
        return a + b

    assert total(ex.parameter("a"), ex.parameter("b")).compute(seed=0) == 4
    assert ex.trial_id == 3


def test_reload_in_the_same_process_keeps_parameters(
    store_dir: pathlib.Path, caplog: pytest.LogCaptureFixture, closing: Closing
) -> None:
    caplog.set_level(logging.INFO, logger="trialbook.graph")
    ex = closing(trialbook.Experiment("same", backend=store_dir))
    assert caplog.records[0].getMessage() == f"Initialized new experiment: {ex!r}"
    x = ex.parameter("x")

    @ex.result
    def square(x):
        return x * x

    ex.set_parameters(x=3)
    square(x).compute(seed=0)
    caplog.clear()
    again = closing(trialbook.Experiment("same", backend=store_dir))
    assert caplog.records[0].getMessage() == f"Loaded {again!r}"
    assert again.trial_id == 1
    assert again.get_parameters() == {"x": 3}
    assert again.get_history()["Result"].tolist() == [9]


def test_code_change_is_noticed_across_processes(
    tmp_path: pathlib.Path,
    store_dir: pathlib.Path,
    caplog: pytest.LogCaptureFixture,
    closing: Closing,
) -> None:
    finish(run_script(tmp_path, store_dir, 2))
    ex = closing(trialbook.Experiment("reload_pj", backend=store_dir))
    caplog.set_level(logging.WARNING, logger="trialbook.graph")

    @ex.result
    def calculate_score(s):
        return 1 / s

    warnings = [r.getMessage() for r in caplog.records]
    assert warnings[0] == "Code context has been changed: calculate_score"
    assert "+    return 1 / s" in warnings


def test_two_processes_five_trials_each(
    tmp_path: pathlib.Path, store_dir: pathlib.Path, closing: Closing
) -> None:
    trialbook.Experiment("reload_pj", backend=store_dir).close()  # create the store first
    procs = [run_script(tmp_path, store_dir, *range(1, 6)) for _ in range(2)]
    for proc in procs:
        finish(proc)
    ex = closing(trialbook.Experiment("reload_pj", backend=store_dir))
    history = ex.get_history()
    assert list(history.index) == list(range(1, 11))
    assert sorted(history["b"].tolist()) == sorted([*range(1, 6)] * 2)
    assert history["Success"].all()
    assert ex.trial_id == 10


def test_environment_change_is_warned_on_reload(
    store_dir: pathlib.Path, caplog: pytest.LogCaptureFixture, closing: Closing
) -> None:
    ex = closing(trialbook.Experiment("env_pj", backend=store_dir))

    @ex.result
    def one():
        return 1

    one().compute(seed=0)
    # Simulate an older environment for the last trial: the same snapshot with another pandas.
    env = dict(capture.environment())
    lines = env["requirements"].splitlines(keepends=True)
    (index,) = [i for i, line in enumerate(lines) if line.startswith("pandas ")]
    old_line = lines[index].replace("pandas ", "pandas 0.0.1-old ", 1)
    lines[index] = old_line
    env["requirements"] = "".join(lines)
    digest = ex.store.put_snapshot("environment", capture.environment_text(env))
    (record,) = ex.store.read_runs(ex.experiment_id, [1])
    record.environment = digest
    ex.store.write_runs(ex.experiment_id, [record])

    caplog.set_level(logging.WARNING, logger="trialbook.graph")
    trialbook.Experiment("env_pj", backend=store_dir).close()
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings[0] == "Installed Python packages have been changed"
    assert warnings[1] == f"@@ -{index + 1} +{index + 1} @@"
    assert warnings[2] == "-" + old_line.rstrip("\n")
    assert warnings[3].startswith("+pandas ")
    assert len(warnings) == 4
    diff = closing(trialbook.Experiment("env_pj", backend=store_dir)).diff(1, 1)
    assert not diff


def test_environment_snapshot_is_content_addressed(
    store_dir: pathlib.Path, closing: Closing
) -> None:
    ex = closing(trialbook.Experiment("env_same", backend=store_dir))

    @ex.result
    def one():
        return np.float64(1.0)

    for _ in range(3):
        one().compute(seed=0)
    digests = {r.environment for r in ex.store.read_runs(ex.experiment_id)}
    codes = {r.code for r in ex.store.read_runs(ex.experiment_id)}
    assert len(digests) == 1
    assert len(codes) == 1
    assert len(list((store_dir / "environment").iterdir())) == 1
