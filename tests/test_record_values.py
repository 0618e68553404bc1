"""Issue 12, items 3 and 8: the values a user stores come back as they were, everywhere they
are shown (``df()``, ``trialbook runs``, the UI's runs table), and a value that cannot be stored
gives an error naming it, with nothing written."""

from __future__ import annotations

import datetime as dt
import decimal
import pathlib
import uuid
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import trialbook
from conftest import require_module
from trialbook.cli import cli
from trialbook.errors import CodecError

LAYERS = [[64, 64], [128]]
OPTS = [None, {"name": "adam", "betas": [0.9, 0.99]}]


def sweep(store_dir: pathlib.Path) -> None:
    """The user's structured sweep, persisted and closed (as a script would)."""
    with trialbook.create_session(store_dir) as session:
        experiment = session.create_experiment("structured")
        experiment.add_runs(layers=LAYERS, opt=OPTS, shape=[(2, 3)])
        experiment.add_run(epochs=2000)
        experiment.execute(lambda run: run.fields.update(acc=0.5)).persist()


# -- item 3: structured parameters are columns -----------------------------------------------------


def test_df_keeps_each_runs_structured_params_after_reload(store_dir: pathlib.Path) -> None:
    sweep(store_dir)
    with trialbook.create_session(store_dir) as session:
        frame = session.load_experiment("structured").df()
    expected = [(layers, opt) for layers in LAYERS for opt in OPTS]
    assert [(frame.loc[i, "layers"], frame.loc[i, "opt"]) for i in range(1, 5)] == expected
    assert all(frame.loc[i, "shape"] == (2, 3) for i in range(1, 5))
    assert frame.loc[5, "layers"] is None
    # integer params with gaps stay integers
    assert str(frame["epochs"].dtype) == "Int64"
    assert frame.loc[5, "epochs"] == 2000
    assert frame["epochs"].isna().sum() == 4


def test_cli_runs_shows_structured_params_as_compact_json(store_dir: pathlib.Path) -> None:
    sweep(store_dir)
    result = CliRunner().invoke(cli, ["runs", "structured", "--store", str(store_dir)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    row2 = next(line for line in lines if line.startswith("2 "))
    assert "[64,64]" in row2 and '{"name":"adam","betas":[0.9,0.99]}' in row2
    assert "[2,3]" in row2
    row5 = next(line for line in lines if line.startswith("5 "))
    assert "2000" in row5 and "2000.0" not in row5 and "None" not in row5


def test_ui_runs_table_shows_structured_params(store_dir: pathlib.Path) -> None:
    TestClient = require_module("starlette.testclient", "ui").TestClient
    from trialbook.web import create_app

    sweep(store_dir)
    store = trialbook.open_store(store_dir)
    try:
        client = TestClient(create_app(store, token="t"))
        reply = client.get(
            "/api/experiments/structured/runs", headers={"Authorization": "Bearer t"}
        )
        assert reply.status_code == 200, reply.text
        rows = {row["run_id"]: row for row in reply.json()["runs"]}
    finally:
        store.close()
    assert rows[2]["params"]["layers"] == [64, 64]
    assert rows[2]["params"]["opt"] == {"name": "adam", "betas": [0.9, 0.99]}
    assert rows[1]["params"]["opt"] is None
    assert rows[1]["params"]["shape"] == [2, 3]  # a tuple, shown as a JSON list (not "<tjson>")
    assert rows[5]["params"]["epochs"] == 2000


# -- item 8: values round-trip, or fail clearly ------------------------------------------------

ROUND_TRIP: dict[str, Any] = {
    "datetime": dt.datetime(2024, 1, 2, 3, 4, 5, 6),
    "aware": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    "date": dt.date(2024, 1, 2),
    "time": dt.time(3, 4, 5),
    "timedelta": dt.timedelta(days=1, seconds=5),
    "timestamp": pd.Timestamp("2024-01-02 03:04:05.123456789"),
    "timestamp_tz": pd.Timestamp("2024-03-31 03:30", tz="Europe/Paris"),
    "timestamp_offset": pd.Timestamp("2024-01-02", tz=dt.timezone(dt.timedelta(hours=-5))),
    "timestamp_s": pd.Timestamp("2024-01-02").as_unit("s"),
    "pd_timedelta": pd.Timedelta("1 days 2 ns"),
    "nat": pd.NaT,
    "period": pd.Period("2024-01", freq="M"),
    "datetime64": np.datetime64("2024-01-02T03:04:05"),
    "dates": [pd.Timestamp("2024-01-01"), dt.date(2024, 1, 2)],
    "index": pd.Index([3, 1, 2], name="ids"),
    "categorical": pd.Categorical(["a", "b", "a"]),
    "decimal": decimal.Decimal("1.10"),
    "uuid": uuid.UUID(int=7),
}


def same(a: Any, b: Any) -> bool:
    if isinstance(a, pd.Index):
        return isinstance(b, pd.Index) and a.equals(b) and a.name == b.name
    if isinstance(a, pd.Categorical):
        return isinstance(b, pd.Categorical) and list(a) == list(b) and a.dtype == b.dtype
    if a is pd.NaT:
        return b is pd.NaT
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b and repr(a) == repr(b)


def test_dates_times_and_other_values_round_trip(store_dir: pathlib.Path) -> None:
    with trialbook.create_session(store_dir) as session:
        experiment = session.create_experiment("values")
        with experiment.run(when=pd.Timestamp("2024-05-01 12:00", tz="UTC")) as run:
            run.fields.update(ROUND_TRIP)
        experiment.persist()
    with trialbook.create_session(store_dir) as session:
        run = session.load_experiment("values").runs[1]
    assert run.params.when == pd.Timestamp("2024-05-01 12:00", tz="UTC")
    mismatched = {k: run.fields[k] for k, v in ROUND_TRIP.items() if not same(v, run.fields[k])}
    assert not mismatched


def test_self_referencing_dict_names_the_field_and_writes_nothing(
    store_dir: pathlib.Path,
) -> None:
    with trialbook.create_session(store_dir) as session:
        experiment = session.create_experiment("cycle")
        with experiment.run(a=1) as run:
            loop: dict[str, Any] = {"x": 1}
            loop["self"] = loop
            run.fields.config = loop
            run.fields.deep = {"ok": [1, 2, {"again": loop}]}
        with pytest.raises(CodecError, match=r"field 'config' of run 1 .*contains itself"):
            experiment.persist()
    with trialbook.create_session(store_dir) as session:
        stored = {e.name: e.runs for e in session.store.list_experiments()}
    assert stored.get("cycle", 0) == 0


def test_shared_values_are_not_cycles(store_dir: pathlib.Path) -> None:
    shared = [1, 2]
    value = {"a": shared, "b": shared, "c": (shared, shared)}
    with trialbook.create_session(store_dir) as session:
        experiment = session.create_experiment("shared")
        with experiment.run() as run:
            run.fields.value = value
        experiment.persist()
        assert session.load_experiment("shared").runs[1].fields.value == {
            "a": [1, 2], "b": [1, 2], "c": ([1, 2], [1, 2])
        }  # fmt: skip
