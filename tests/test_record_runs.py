"""Issue 12, items 2, 4 and 5: runs persistence keeps a trustworthy record.

Each test replays a user's steps against a real store: re-executing a reloaded experiment,
a persist that fails or is killed, ``trialbook gc``, and re-running a script under a name that
exists (two launches at once, a claim left by a dead process).
"""

from __future__ import annotations

import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from click.testing import CliRunner

import trialbook
from conftest import BACKENDS, Closing, backend_location
from trialbook.cli import cli
from trialbook.errors import (
    CodecError,
    ConfigError,
    ExperimentExistsError,
    RunFailedError,
)
from trialbook.storage import GcReport


def _python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh Python (another process, as the user's next script would)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def train(run: trialbook.Run) -> None:
    for epoch in range(15):
        run.log_metric("loss", run.params.lr / (epoch + 1))
    run.fields.final = run.params.lr / 15


# -- item 2: executing a reloaded experiment again ---------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_reexecuting_a_reloaded_experiment_replaces_points(
    backend: str, tmp_path: pathlib.Path
) -> None:
    with backend_location(backend, tmp_path) as url:
        session = trialbook.create_session(url)
        first = session.create_experiment("sweep")
        first.add_runs(lr=[0.1, 0.2])
        first.execute(train).persist()
        old_started = {run.id: run.started for run in first.runs.values()}
        session.close()

        session = trialbook.create_session(url)
        again = session.load_experiment("sweep")
        again.add_runs(lr=[0.3])
        again.execute(train).persist()  # re-executes runs 1 and 2 too
        assert all(run.started > old_started[i] for i, run in again.runs.items() if i < 3)
        session.close()

        check = _python(
            """
            import sys, trialbook
            exp = trialbook.create_session(sys.argv[1]).load_experiment("sweep")
            for run in exp.runs.values():
                steps = run.metrics("loss")["step"].tolist()
                print(run.id, len(steps), steps[0], steps[-1], run.fields.final)
            """,
            url,
        )
        assert check.returncode == 0, check.stderr
        lines = [line.split() for line in check.stdout.splitlines()]
        assert [line[:4] for line in lines] == [[str(i), "15", "0", "14"] for i in (1, 2, 3)]
        assert [float(line[4]) for line in lines] == [lr / 15 for lr in (0.1, 0.2, 0.3)]
        with trialbook.create_session(url) as session:
            info = session.store.find_experiment("sweep")
            assert session.store.metric_names(info.id) == {"loss": 45}


def test_only_pending_executes_what_has_not_run(session: trialbook.Session) -> None:
    calls: list[int] = []

    def fragile(run: trialbook.Run) -> None:
        calls.append(run.id)
        run.log_metric("loss", 1.0)
        if run.params.x == 0:
            raise ZeroDivisionError("x is 0")

    exp = session.create_experiment("grow")
    exp.add_runs(x=[1, 0])
    with pytest.raises(RunFailedError):
        exp.execute(fragile)
    exp.persist()
    loaded = session.load_experiment("grow")
    loaded.add_runs(x=[3])
    loaded.execute(fragile, only="pending")
    assert calls == [1, 2, 3]
    with pytest.raises(RunFailedError):
        loaded.execute(fragile, only="failed")
    assert calls == [1, 2, 3, 2]
    with pytest.raises(RunFailedError):
        loaded.execute(fragile, only="unfinished")
    assert calls == [1, 2, 3, 2, 2]
    loaded.execute(fragile, run_ids=[1, 3], only="pending")  # none of them is pending
    assert calls == [1, 2, 3, 2, 2]
    loaded.persist()
    reloaded = session.load_experiment("grow")
    assert [len(run.metrics("loss")) for run in reloaded.runs.values()] == [1, 1, 1]
    with pytest.raises(ConfigError, match="only must be 'pending', 'failed', 'unfinished'"):
        loaded.execute(fragile, only="done")


def test_metrics_and_fields_a_new_execution_does_not_write_are_kept(
    session: trialbook.Session,
) -> None:
    exp = session.create_experiment("eval")
    exp.add_runs(lr=[0.1])
    exp.execute(train).persist()

    def evaluate(run: trialbook.Run) -> None:
        run.log_metric("test_loss", run.fields.final * 2)  # reads the stored field

    loaded = session.load_experiment("eval")
    loaded.execute(evaluate).persist()
    run = session.load_experiment("eval").runs[1]
    assert len(run.metrics("loss")) == 15
    assert run.metrics("test_loss")["value"].tolist() == [pytest.approx(0.1 / 15 * 2)]
    assert run.fields.final == pytest.approx(0.1 / 15)


def test_executing_twice_before_persisting_keeps_the_last_execution(
    session: trialbook.Session,
) -> None:
    exp = session.create_experiment("twice")
    exp.add_runs(lr=[0.1, 0.2])
    exp.execute(train).persist()
    exp.execute(train)
    exp.execute(train, n_jobs=2)  # through worker processes too
    exp.persist()
    for run in session.load_experiment("twice").runs.values():
        assert run.metrics("loss")["step"].tolist() == list(range(15))


# -- item 4: a persist that fails leaves nothing behind -----------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failed_persist_leaves_nothing_and_the_fixed_script_runs(
    backend: str, tmp_path: pathlib.Path
) -> None:
    with backend_location(backend, tmp_path) as url:
        script = """
            import sys, numpy as np, trialbook
            exp = trialbook.create_session(sys.argv[1]).create_experiment("fit")
            exp.add_runs(seed=[1, 2])
            def fit(run):
                run.fields.weights = np.full(200_000, float(run.params.seed))  # a blob
                run.fields.score = (lambda x: x) if sys.argv[2] == "bug" else 0.5
            exp.execute(fit).persist()
            print("persisted", len(exp.runs))
        """
        buggy = _python(script, url, "bug")
        assert buggy.returncode == 1
        assert "CodecError: field 'score' of run 1 cannot be persisted" in buggy.stderr
        session = trialbook.create_session(url)
        assert session.ls()[["name", "runs"]].values.tolist() == [["fit", 0]]  # the claim
        assert repr(session).endswith("experiments=0)")  # nothing persisted
        assert session.gc(min_age=0, dry_run=True) == GcReport()
        fixed = _python(script, url, "fixed")  # the claimant is gone: taken over
        assert fixed.returncode == 0, fixed.stderr
        assert fixed.stdout.split() == ["persisted", "2"]
        loaded = session.load_experiment("fit")
        assert [run.fields.weights[0] for run in loaded.runs.values()] == [1.0, 2.0]
        assert repr(session).endswith("experiments=1)")
        session.close()


def test_in_process_failure_removes_the_blob_files_it_wrote(
    tmp_path: pathlib.Path, closing: Closing
) -> None:
    """Ctrl-C in the middle of a persist's transaction (raised from the store's statement
    tracer, just before the runs are written): the rows roll back and the blob files the
    persist wrote are removed; a blob another experiment uses is kept."""
    from trialbook.storage.sqlite import SqliteStore

    interrupt = {"on": False}

    def tracer(sql: str, params: object) -> None:
        if interrupt["on"] and sql.startswith("INSERT OR REPLACE INTO runs"):
            raise KeyboardInterrupt

    store = closing(SqliteStore.from_directory(tmp_path / "store", tracer=tracer))
    session = trialbook.Session(store)
    shared = np.arange(300_000.0)
    keep = session.create_experiment("keep")
    keep.add_run().fields.w = shared
    keep.persist()
    assert len(_blob_files(tmp_path / "store")) == 1
    exp = session.create_experiment("x")
    exp.add_run().fields.big = np.arange(400_000.0)
    exp.add_run().fields.w = shared
    interrupt["on"] = True
    with pytest.raises(KeyboardInterrupt):
        exp.persist()
    interrupt["on"] = False
    assert len(_blob_files(tmp_path / "store")) == 1  # only the committed one
    assert session.store.read_runs(session.store.find_experiment("x").id) == []
    exp.persist()  # the same experiment persists once the interruption is over
    loaded = closing(trialbook.create_session(tmp_path / "store")).load_experiment("x")
    assert loaded.runs[1].fields.big[-1] == 399_999.0
    assert session.load_experiment("keep").runs[1].fields.w[-1] == 299_999.0


def _blob_files(store: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in (store / "blobs").glob("*/*") if p.is_file())


def test_kill_during_persist_then_gc_frees_the_blobs(
    tmp_path: pathlib.Path, closing: Closing
) -> None:
    """A process persisting big arrays is killed with SIGKILL after its blob files are written
    and before its commit (deterministic: this test holds the store's write lock meanwhile)."""
    store_dir = tmp_path / "store"
    session = closing(trialbook.create_session(store_dir))
    kept = session.create_experiment("kept")
    kept.add_run().fields.w = np.arange(100_000.0)
    kept.persist()
    committed = _blob_files(store_dir)
    assert len(committed) == 1

    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, numpy as np, trialbook
                exp = trialbook.create_session(sys.argv[1]).load_experiment("kept")
                for i in range(8):
                    exp.add_run(i=i).fields.big = np.full(1_000_000, float(i))  # 8 MB each
                print("ready", flush=True)
                sys.stdin.readline()
                exp.persist()
                """
            ),
            str(store_dir),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stdin is not None
    assert child.stdout.readline() == b"ready\n"
    blocker = sqlite3.connect(store_dir / "trialbook.db", timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    child.stdin.write(b"go\n")
    child.stdin.flush()
    try:
        deadline = time.monotonic() + 60
        # every blob written (not a temporary file still being written), waiting for the lock
        while len([p for p in _blob_files(store_dir) if p.suffix != ".tmp"]) < 1 + 8:
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "the child never wrote its blobs"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream:
                stream.close()
        blocker.rollback()
        blocker.close()

    leftover = [p for p in _blob_files(store_dir) if p not in committed]
    assert len(leftover) == 8
    leftover_bytes = sum(p.stat().st_size for p in leftover)
    assert leftover_bytes > 8 * 8_000_000
    session = closing(trialbook.create_session(store_dir))
    young = session.gc(min_age=3600)  # a persist in progress may still commit them: kept
    assert young.blobs == 0
    assert len(_blob_files(store_dir)) == 9
    report = session.gc(min_age=0)
    assert (report.blobs, report.bytes) == (8, leftover_bytes)
    assert _blob_files(store_dir) == committed
    loaded = closing(trialbook.create_session(store_dir)).load_experiment("kept")
    assert len(loaded.runs) == 1  # the interrupted runs were never committed
    assert loaded.runs[1].fields.w[-1] == 99_999.0


def test_gc_command_reports_and_frees_blobs_of_deleted_experiments(
    tmp_path: pathlib.Path,
    closing: Closing,
) -> None:
    store_dir = tmp_path / "store"
    session = closing(trialbook.create_session(store_dir))
    for name in ("a", "b"):
        exp = session.create_experiment(name)
        exp.add_run().fields.w = np.full(100_000, ord(name), dtype="f8")
        exp.persist()
    session.delete_experiment("b")
    runner = CliRunner()
    dry = runner.invoke(cli, ["gc", "--store", str(store_dir), "--dry-run", "--min-age", "0"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith("would free 1 unreferenced blob (0.8 MB) and 0 orphaned rows")
    assert len(_blob_files(store_dir)) == 2
    done = runner.invoke(cli, ["gc", "--store", str(store_dir), "--min-age", "0"])
    assert done.output.startswith("freed 1 unreferenced blob (0.8 MB)")
    assert len(_blob_files(store_dir)) == 1
    assert session.load_experiment("a").runs[1].fields.w[0] == ord("a")
    again = runner.invoke(cli, ["gc", "--store", str(store_dir)])
    assert again.output.startswith("freed 0 unreferenced blobs (0.0 MB)")
    bad = runner.invoke(cli, ["gc", "--store", str(store_dir), "--min-age", "-1"])
    assert bad.exit_code == 2
    with pytest.raises(ConfigError, match="min_age must be a number of seconds"):
        session.gc(min_age=-5)


# -- item 5: re-running a script under an existing name ------------------------------------------

LAUNCH = """
    import pathlib, sys, time, trialbook
    from trialbook.errors import ExperimentExistsError
    go = pathlib.Path(sys.argv[2])
    while not go.exists():
        time.sleep(0.01)
    session = trialbook.create_session(sys.argv[1])
    try:
        exp = session.create_experiment("sweep")
    except ExperimentExistsError as exc:
        print("FAILED EARLY:", exc)
        sys.exit(3)
    print("COMPUTING", flush=True)
    exp.add_runs(x=[1, 2, 3])
    exp.execute(lambda run: run.fields.update(y=run.params.x ** 2)).persist()
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_launches_at_once_one_proceeds_the_other_fails_early(
    backend: str, tmp_path: pathlib.Path
) -> None:
    with backend_location(backend, tmp_path) as url:
        trialbook.create_session(url).close()  # the store exists before both start
        go = tmp_path / "go"
        launches = [
            subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(LAUNCH), url, str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        go.touch()
        outcomes = sorted((p.wait(timeout=120), *p.communicate()) for p in launches)
        (ok, ok_out, ok_err), (failed, failed_out, _) = outcomes
        assert (ok, failed) == (0, 3), ok_err
        assert "COMPUTING" in ok_out
        assert "COMPUTING" not in failed_out
        assert "load_experiment" in failed_out and "if_exists=" in failed_out
        session = trialbook.create_session(url)
        loaded = session.load_experiment("sweep")
        assert [run.fields.y for run in loaded.runs.values()] == [1, 4, 9]
        session.close()


def test_claim_of_a_live_process_blocks_a_dead_ones_does_not(
    tmp_path: pathlib.Path, closing: Closing
) -> None:
    url = str(tmp_path / "store")
    trialbook.create_session(url).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, trialbook\n"
            "trialbook.create_session(sys.argv[1]).create_experiment('long')\n"
            "print('claimed', flush=True)\n"
            "sys.stdin.read()\n",
            url,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "claimed\n"
        session = closing(trialbook.create_session(url))
        with pytest.raises(ExperimentExistsError) as caught:
            session.create_experiment("long")
        message = str(caught.value)
        assert f"being created by process {holder.pid}" in message
        assert "if_exists='replace'" in message
        assert "deletes the stored experiment with every run" in message
        joined = session.create_experiment("long", if_exists="append")  # opens the live claim
        claimed = session.store.find_experiment("long")
        assert claimed is not None and joined.id_experiment == claimed.meta["id"]
        os.kill(holder.pid, signal.SIGKILL)  # died before persisting anything
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        for stream in (holder.stdin, holder.stdout):
            if stream:
                stream.close()
    taken = session.create_experiment("long")  # taken over
    taken.add_run(v=1)
    taken.persist()
    assert session.load_experiment("long").runs[1].params.v == 1


def test_claim_from_another_host_is_never_taken_over(session: trialbook.Session) -> None:
    claim = {"host": "elsewhere.example", "pid": 1, "at": 0.0}
    session.store.create_experiment("remote", meta={"claim": claim})
    with pytest.raises(ExperimentExistsError, match=r"host 'elsewhere\.example'"):
        session.create_experiment("remote")
    replacing = session.create_experiment("remote", if_exists="replace")
    replacing.add_run(v=2)
    replacing.persist()
    assert session.load_experiment("remote").runs[1].params.v == 2


def test_same_process_takes_over_its_own_unpersisted_claim(
    session: trialbook.Session,
) -> None:
    """A notebook cell run again after its persist failed: the new object wins."""
    first = session.create_experiment("cell")
    first.add_run().fields.f = lambda: None
    with pytest.raises(CodecError):
        first.persist()
    second = session.create_experiment("cell")
    second.add_run().fields.f = 1
    second.persist()
    with pytest.raises(ExperimentExistsError, match="replaced by a later create_experiment"):
        first.persist()
    assert [run.fields.f for run in session.load_experiment("cell").runs.values()] == [1]


def test_append_and_replace(session: trialbook.Session) -> None:
    first = session.create_experiment("e")
    first.add_runs(x=[1, 2])
    first.persist()
    appended = session.create_experiment("e", if_exists="append")
    assert [run.id for run in appended.add_runs(x=[3])] == [3]
    appended.persist()
    replacing = session.create_experiment("e", if_exists="replace")
    replacing.add_run(x=10)
    assert len(session.load_experiment("e").runs) == 3  # the old one stays until persist
    replacing.persist()
    assert [run.params.x for run in session.load_experiment("e").runs.values()] == [10]
    other = session.create_experiment("e", if_exists="replace")
    session.create_experiment("e", if_exists="replace").persist()  # replaced meanwhile
    with pytest.raises(ExperimentExistsError, match="replaced by another process"):
        other.persist()
    with pytest.raises(ConfigError, match="if_exists must be 'fail', 'append' or 'replace'"):
        session.create_experiment("e", if_exists="merge")


def test_claimed_experiment_shows_with_zero_runs(session: trialbook.Session) -> None:
    session.create_experiment("pending")
    assert session.ls()[["name", "runs"]].values.tolist() == [["pending", 0]]
    assert repr(session).endswith("experiments=0)")
    result = CliRunner().invoke(cli, ["ls", "--store", session.store.url])
    assert "pending" in result.output


def test_a_claim_left_on_an_experiment_with_runs_does_not_hide_its_data(
    session: trialbook.Session,
) -> None:
    """A process that wrote its runs and died before clearing its claim: the runs count."""
    gone = {"host": "elsewhere.example", "pid": 1, "at": 0.0}
    info = session.store.create_experiment("written", meta={"claim": gone})
    ids = session.store.allocate_run_ids(info.id, 1)
    session.store.write_runs(info.id, [trialbook.Run(ids.start, params={"x": 1}).to_record()])
    with pytest.raises(ExperimentExistsError, match=r"already exists in this store \(1 runs\)"):
        session.create_experiment("written")
    appended = session.create_experiment("written", if_exists="append")
    assert [run.params.x for run in appended.runs.values()] == [1]
    assert repr(session).endswith("experiments=1)")
