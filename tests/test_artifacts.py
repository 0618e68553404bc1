"""Artifacts of runs, graph trials and task jobs (issue 21): ``run.log_artifact``,
``run.artifacts`` and reading them back; the store level is in the contract tests
(``StoreContract.test_artifact_*``, every backend)."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

import trialbook
from conftest import Closing
from trialbook import Param, Task, experiment
from trialbook.cli import cli
from trialbook.errors import ConfigError, CorruptStoreError, NotFoundError
from trialbook.storage import artifacts as af
from trialbook.storage import open_store
from trialbook.tasks import LocalLauncher, Meta


def test_persisted_run_writes_at_once_and_a_second_process_reads_it(
    session: trialbook.Session, store_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    experiment_ = session.create_experiment("fit").persist()
    (run,) = experiment_.add_runs(lr=[0.1])
    model = tmp_path / "model.bin"
    model.write_bytes(b"\x01" * 1000)
    info = run.log_artifact(model)
    assert (info.name, info.size, info.kind) == ("model.bin", 1000, "file")
    assert run.log_artifact(b'{"a": 1}', name="config.json").media_type == "application/json"
    assert list(run.artifacts) == ["config.json", "model.bin"]
    model.unlink()  # already stored: the file is no longer needed
    experiment_.persist()  # the run itself (its artifacts are in already)
    with run.open_artifact("model.bin") as f:
        assert f.read() == b"\x01" * 1000
    script = textwrap.dedent(f"""
        import trialbook
        with trialbook.create_session({str(store_dir)!r}) as session:
            run = session.load_experiment("fit").runs[1]
            print(sorted(run.artifacts), run.artifacts["model.bin"].size)
            print(run.download_artifact("config.json", {str(tmp_path / "c.json")!r}).read_text())
    """)
    out = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["['config.json', 'model.bin'] 1000", '{"a": 1}']


def _replacing(session: trialbook.Session, name: str) -> trialbook.RunsExperiment:
    """An experiment that is not in the store until its first persist (it replaces one)."""
    session.create_experiment(name).persist()
    return session.create_experiment(name, if_exists="replace")


def test_run_not_in_a_store_holds_its_artifacts_until_persist(
    session: trialbook.Session, tmp_path: pathlib.Path
) -> None:
    experiment_ = _replacing(session, "later")
    (run,) = experiment_.add_runs(x=[1])
    folder = tmp_path / "ckpt"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "w.bin").write_bytes(b"w" * 10)
    (folder / "meta.txt").write_text("epoch 3")
    info = run.log_artifact(folder)
    assert (info.name, info.kind, info.size) == ("ckpt", "folder", 17)
    assert run.artifacts == {"ckpt": info}
    with pytest.raises(NotFoundError, match="persist the experiment"):
        run.open_artifact("ckpt")
    experiment_.persist()
    assert run.held_artifacts() == {}
    reloaded = session.load_experiment("later").runs[1]
    assert reloaded.artifacts == {"ckpt": info}
    out = reloaded.download_artifact("ckpt", tmp_path / "restored")
    assert (out / "sub" / "w.bin").read_bytes() == b"w" * 10
    with reloaded.open_artifact("ckpt", path="meta.txt") as f:
        assert f.read() == b"epoch 3"


def test_file_changed_before_persist_is_refused(
    session: trialbook.Session, tmp_path: pathlib.Path
) -> None:
    experiment_ = _replacing(session, "changed")
    (run,) = experiment_.add_runs(x=[1])
    path = tmp_path / "w.bin"
    path.write_bytes(b"first")
    run.log_artifact(path)
    path.write_bytes(b"second")
    with pytest.raises(ConfigError, match="changed between log_artifact and the write"):
        experiment_.persist()


def test_failed_artifact_write_is_tried_again_at_the_next_persist(
    session: trialbook.Session, tmp_path: pathlib.Path
) -> None:
    """A crash between the run's write and its artifacts': the run is stored; the artifact is
    still held, and the next persist writes it."""
    experiment_ = _replacing(session, "retry")
    (run,) = experiment_.add_runs(x=[1])
    path = tmp_path / "w.bin"
    path.write_bytes(b"abc")
    run.log_artifact(path)
    hidden = tmp_path / "hidden.bin"
    path.rename(hidden)
    with pytest.raises(FileNotFoundError, match=r"w\.bin"):
        experiment_.persist()
    assert session.load_experiment("retry").runs[1].artifacts == {}
    hidden.rename(path)
    experiment_.persist()
    assert list(session.load_experiment("retry").runs[1].artifacts) == ["w.bin"]


def test_re_run_replaces_the_artifact_and_bad_input_is_explained(
    session: trialbook.Session,
) -> None:
    experiment_ = session.create_experiment("again").persist()
    (run,) = experiment_.add_runs(x=[1])

    def step(run: trialbook.Run) -> None:
        run.log_artifact(f"value {run.vars.get('n', 0)}".encode(), name="out.txt")

    experiment_.execute(step)
    experiment_.execute(step)
    assert list(run.artifacts) == ["out.txt"]
    with run.open_artifact("out.txt") as f:
        assert f.read() == b"value 0"
    with pytest.raises(ConfigError, match="bytes need a name"):
        run.log_artifact(b"x")
    with pytest.raises(ConfigError, match=r"a path .* or bytes"):
        run.log_artifact(3)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match=r"its artifacts: 'out\.txt'"):
        run.open_artifact("ou.txt")


def test_same_file_in_two_runs_is_one_blob_and_check_finds_a_damaged_piece(
    session: trialbook.Session, store_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    experiment_ = session.create_experiment("dedup").persist()
    runs = experiment_.add_runs(x=[1, 2])
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(range(256)) * 2000)  # 512,000 bytes: one blob file
    for run in runs:
        run.log_artifact(path)
    digest = af.read_manifest(session.store, experiment_._info.id, 1, "big.bin")["chunks"][0][0]
    blob_files = [p for p in (store_dir / "blobs").rglob("*") if p.is_file()]
    assert [p.name for p in blob_files] == [digest]
    assert session.store.collect_garbage(min_age=0).blobs == 0  # referenced: kept
    blob_files[0].write_bytes(b"\x00" * 512_000)
    with pytest.raises(CorruptStoreError) as err, runs[1].open_artifact("big.bin") as f:
        f.read()
    assert (err.value.run_id, err.value.field) == (2, "artifact 'big.bin'")
    result = CliRunner().invoke(cli, ["check", "--store", str(store_dir)])
    assert result.exit_code != 0
    assert digest in result.output


def test_graph_step_logs_through_the_current_run(store_dir: pathlib.Path, closing: Closing) -> None:
    ex = closing(trialbook.Experiment(id="graph_art", backend=store_dir))
    a = ex.parameter("a")

    @ex.result
    def train(a):
        trialbook.current_run().log_artifact(f"model {a}".encode(), name="model.txt")
        return a

    ex.set_parameters(a=3)
    assert train(a).compute() == 3
    store = closing(open_store(store_dir))
    info = store.find_experiment("graph_art")
    assert af.list_artifacts(store, info.id, 1) == ["model.txt"]
    assert b"".join(af.iter_artifact(store, info.id, 1, "model.txt")) == b"model 3"


class SaveModel(Task):
    """Writes a file in its job directory and logs it as an artifact."""

    __trialbook_id__ = "test.save_model"
    x: Param[int] = 1
    out: Meta[str] = ""

    def execute(self) -> None:
        path = pathlib.Path("model.txt")  # the job directory is the working directory
        path.write_text(f"model {self.x}")
        trialbook.current_run().log_artifact(path)
        trialbook.current_run().log_artifact(b"raw", name="raw.bin")


def test_task_job_logs_in_execute(tmp_path: pathlib.Path, closing: Closing) -> None:
    with experiment(tmp_path / "wd", "jobs_art", launcher=LocalLauncher(n_workers=1)):
        SaveModel.C(x=5).submit()
    store = closing(open_store(tmp_path / ".trialbook"))
    info = store.find_experiment("jobs_art")
    (record,) = store.read_runs(info.id)
    assert af.list_artifacts(store, info.id, record.run_id) == ["model.txt", "raw.bin"]
    text = b"".join(af.iter_artifact(store, info.id, record.run_id, "model.txt"))
    assert text == b"model 5"


def _log_in_worker(run: trialbook.Run) -> None:
    folder = pathlib.Path(run.params.folder)
    run.log_artifact(f"score {run.id}".encode(), name="score.txt")
    path = folder / f"model-{run.id}.bin"
    path.write_bytes(bytes([run.id]) * 100)
    run.log_artifact(path, name="model.bin")
    if run.params.gone:
        path.unlink()  # deleted before the results come back: cannot be stored


def test_artifacts_logged_in_worker_processes_come_back_or_fail_the_run(
    session: trialbook.Session, tmp_path: pathlib.Path
) -> None:
    """Runs executed in a pool log through a copy of themselves: their artifacts travel back
    with the results and are stored by this process; a file deleted meanwhile fails its run,
    naming the artifact, instead of being lost silently."""
    experiment_ = session.create_experiment("pool")
    experiment_.add_runs(folder=[str(tmp_path)], gone=[False, True])
    with pytest.raises(trialbook.errors.RunFailedError) as caught:
        experiment_.execute(_log_in_worker, n_jobs=2)
    assert caught.value.failed == [2]
    first, second = experiment_.runs[1], experiment_.runs[2]
    assert sorted(first.artifacts) == ["model.bin", "score.txt"]
    with first.open_artifact("model.bin") as f:
        assert f.read() == b"\x01" * 100
    with first.open_artifact("score.txt") as f:
        assert f.read() == b"score 1"
    assert second.status == "failed" and "model.bin" in str(caught.value.__cause__.__notes__)
