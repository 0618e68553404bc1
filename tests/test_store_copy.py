"""``trialbook copy --from URL --to URL``: experiments between an embedded store and the team
backends (PostgreSQL, Redis, MongoDB) and back, with their large values, metrics, artifacts and
snapshots; idempotent (issue 16, "Tools")."""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import trialbook
from conftest import backend_location
from trialbook.cli import cli
from trialbook.codecs import Encoded
from trialbook.errors import ExperimentExistsError
from trialbook.runs_meta import experiment_id
from trialbook.storage import open_store
from trialbook.storage.base import Store
from trialbook.storage.records import ErrorInfo, RunRecord
from trialbook.testing import metric_chunk
from trialbook.transfer import copy_experiments

SERVERS = ["postgres", "redis", "mongo"]
BIG = 40_000


def _fill(location: str) -> None:
    """A runs experiment made through a session, and one written through the store API with
    large values, a long metric, artifacts, snapshots, tags and an error."""
    with trialbook.create_session(location) as session:
        sweep = session.create_experiment("sweep")
        sweep.fields.dataset = "iris"
        sweep.add_runs(x=[1, 2])
        sweep.execute(lambda run: run.log_metric("loss", run.params.x / 10))
        sweep.runs[1].fields.weights = np.arange(100_000.0)
        sweep.persist()
        store = session.store
        code = store.put_snapshot("code", "def f():\n    return 1\n")
        env = store.put_snapshot("environment", "numpy==2.0\n")
        info = store.create_experiment("raw", meta={"kind": "graph", "owner": "ann"})
        first = RunRecord(
            1, status="done", params={"lr": 0.1}, tags={"t": "a"}, code=code, environment=env,
            fields={"big": Encoded("npy-raw", bytes(range(256)) * 2000)}, created=1.5,
            started=2.5, finished=3.25,
        )  # fmt: skip
        failed = RunRecord(2, status="failed", error=ErrorInfo("ValueError", "bad", "tb"), seed=7)
        store.write_runs(
            info.id,
            [first, failed],
            [metric_chunk(1, "acc", [0.5] * BIG), metric_chunk(2, "acc", [0.1, 0.2])],
            artifacts=[
                (1, "model", Encoded("bytes", bytes(300_000))),
                (2, "note", Encoded("json", b'"hi"')),
            ],
        )


def _dump(store: Store) -> dict[str, Any]:
    """Everything a copy must carry, by experiment name, as comparable plain values."""
    out: dict[str, Any] = {}
    for info in store.list_experiments():
        runs = store.read_runs(info.id)
        ids = [r.run_id for r in runs]
        out[info.name] = {
            "id": experiment_id(info),
            "meta": {k: v for k, v in info.meta.items() if k not in ("id", "claim")},
            "runs": runs,  # compared without versions (compare=False)
            "metrics": {
                (name, run_id): (s.steps.tolist(), s.values.tolist(), s.times.tolist())
                for name in store.metric_names(info.id)
                for run_id, s in store.read_metrics(info.id, name, ids).items()
            },
            "artifacts": {
                (r, name): store.read_artifact(info.id, r, name)
                for r in ids
                for name in store.list_artifacts(info.id, r)
            },
            "snapshots": {
                d: store.get_snapshot(d) for r in runs for d in (r.code, r.environment) if d
            },
        }
    return out


def _copy(source: str, target: str, *names: str) -> Any:
    return CliRunner().invoke(cli, ["copy", "--from", source, "--to", target, *names])


@pytest.mark.parametrize("server", SERVERS)
def test_copy_to_a_server_and_back_is_complete_and_idempotent(
    server: str, tmp_path: pathlib.Path
) -> None:
    laptop = str(tmp_path / "laptop")
    _fill(laptop)
    with backend_location(server, tmp_path) as team:
        first = _copy(laptop, team)
        assert first.exit_code == 0, first.output
        assert first.output.splitlines()[:2] == ["copied 'raw' (2 runs)", "copied 'sweep' (2 runs)"]
        with open_store(laptop) as a, open_store(team) as b:
            assert _dump(b) == _dump(a)
            internal = {i.name: i.id for i in b.list_experiments()}

        again = _copy(laptop, team)
        assert again.output.splitlines()[:2] == [
            "unchanged 'raw' (2 runs)",
            "unchanged 'sweep' (2 runs)",
        ]
        with open_store(team) as b:
            assert {i.name: i.id for i in b.list_experiments()} == internal  # nothing rewritten

        with open_store(laptop) as a:  # the laptop goes on: one more run in "sweep"
            (sweep,) = [i for i in a.list_experiments() if i.name == "sweep"]
            a.write_runs(sweep.id, [RunRecord(3, status="done", params={"x": 3})])
        changed = _copy(laptop, team, "sweep")
        assert changed.output.splitlines()[0] == "replaced 'sweep' (3 runs)"

        back = str(tmp_path / "back")
        home = _copy(team, back)
        assert home.output.splitlines()[:2] == ["copied 'raw' (2 runs)", "copied 'sweep' (3 runs)"]
        round_trip = _copy(team, laptop)
        assert round_trip.output.splitlines()[:2] == [
            "unchanged 'raw' (2 runs)",
            "unchanged 'sweep' (3 runs)",
        ]
        with open_store(laptop) as a, open_store(team) as b, open_store(back) as c:
            assert _dump(c) == _dump(b) == _dump(a)
    with trialbook.create_session(back) as session:
        loaded = session.load_experiment("sweep")
        assert loaded.fields.dataset == "iris"
        assert loaded.runs[1].fields.weights[-1] == 99_999.0
        assert loaded.runs[2].metrics("loss").value.tolist() == [0.2]


def test_copy_refuses_an_experiment_of_the_same_name_and_another_id(
    tmp_path: pathlib.Path,
) -> None:
    laptop, other = str(tmp_path / "laptop"), str(tmp_path / "other")
    _fill(laptop)
    with trialbook.create_session(other) as session:
        session.create_experiment("raw").persist()
    result = _copy(laptop, other, "raw")
    assert result.exit_code == 1
    assert "the target already has another experiment named 'raw' (id_experiment" in result.output
    assert "nothing of it was copied: rename or delete one of the two" in result.output
    with open_store(laptop) as a, open_store(other) as b:
        with pytest.raises(ExperimentExistsError):
            copy_experiments(a, b)
        assert copy_experiments(a, b, ["sweep"])[0].outcome == "copied"


def test_copy_names_a_missing_experiment(tmp_path: pathlib.Path) -> None:
    laptop = str(tmp_path / "laptop")
    _fill(laptop)
    result = _copy(laptop, str(tmp_path / "other"), "swep")
    assert result.exit_code == 1
    assert "no experiment named 'swep'" in result.output
    missing = _copy(str(tmp_path / "nowhere"), str(tmp_path / "other"))
    assert missing.exit_code == 1
    assert "no store at" in missing.output
