"""LightGBM integration (issue 17): metrics per iteration, params and the best iteration,
recorded into a given experiment, the current run (runs step, graph trial) or a run of its own
in the default store; the ``with`` block closes what LightGBM does not tell (early stopping, a
failure). Every check reads the store back."""

from __future__ import annotations

import pathlib

import pytest

import trialbook
from conftest import Closing, require_module
from trialbook.errors import RunFailedError

np = require_module("numpy", "lightgbm")
lgb = require_module("lightgbm", "lightgbm")

from trialbook.integrations.lightgbm import TrialbookCallback  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.normal(size=(200, 3))
Y = (X[:, 0] + RNG.normal(scale=0.8, size=200) > 0).astype(int)
PARAMS = {"objective": "binary", "num_leaves": 5, "learning_rate": 0.3, "verbose": -1}


def _train(callback: TrialbookCallback, rounds: int = 6, *, stop: int | None = None, **kw):
    train = lgb.Dataset(X[:140], label=Y[:140])
    valid = lgb.Dataset(X[140:], label=Y[140:], reference=train)
    callbacks = [callback] if stop is None else [callback, lgb.early_stopping(stop, verbose=False)]
    return lgb.train(
        PARAMS,
        train,
        num_boost_round=rounds,
        valid_sets=[train, valid],
        valid_names=["train", "valid"],
        callbacks=callbacks,
        **kw,
    )


def test_with_block_records_metrics_params_and_best_iteration(store_dir: pathlib.Path) -> None:
    with trialbook.create_session(store_dir) as session:
        with TrialbookCallback(session.create_experiment("lgb")) as callback:
            booster = _train(callback, rounds=300, stop=3)
            assert callback.run is not None  # LightGBM did not say that training stopped
        assert callback.run is None
    rounds = booster.best_iteration + 3  # trained: the best, then 3 rounds without progress
    assert rounds < 300
    with trialbook.create_session(store_dir) as session:
        (run,) = session.load_experiment("lgb").runs.values()
        assert run.status == "done"
        assert (run.params.num_leaves, run.params.learning_rate, run.params.objective) == (
            5,
            0.3,
            "binary",
        )
        valid = run.metrics("valid-binary_logloss")
        assert valid["step"].tolist() == list(range(rounds))
        assert set(run.metric_names()) == {"train-binary_logloss", "valid-binary_logloss"}
        assert run.fields.iterations == rounds
        assert run.fields.best_iteration == booster.best_iteration
        assert valid["value"].idxmin() == booster.best_iteration - 1
        assert run.fields.best_score == {
            "train-binary_logloss": booster.best_score["train"]["binary_logloss"],
            "valid-binary_logloss": valid["value"].min(),
        }


def test_without_a_block_the_last_round_closes_the_run(session: trialbook.Session) -> None:
    callback = TrialbookCallback(session.create_experiment("plain"), params={"leaves": 5})
    _train(callback, rounds=4)
    assert callback.run is None
    (run,) = session.load_experiment("plain").runs.values()
    assert run.status == "done" and dict(run.params) == {"leaves": 5}
    assert run.fields.iterations == 4 and "best_iteration" not in run.fields


def test_early_stopping_without_a_block_is_closed_by_the_next_training(
    session: trialbook.Session,
) -> None:
    callback = TrialbookCallback(session.create_experiment("reused"))
    first = _train(callback, rounds=300, stop=2)
    assert callback.run is not None
    _train(callback, rounds=3)
    assert callback.run is None
    one, two = session.load_experiment("reused").runs.values()
    assert one.status == "done" and one.fields.best_iteration == first.best_iteration
    assert one.fields.iterations == first.best_iteration + 2
    assert two.status == "done" and two.fields.iterations == 3


def test_inside_a_step_the_current_run_gets_the_values(store_dir: pathlib.Path) -> None:
    def fit(run: trialbook.Run) -> None:
        _train(TrialbookCallback(), rounds=run.params.rounds)

    with trialbook.create_session(store_dir) as session:
        grid = session.create_experiment("steps")
        grid.add_runs(rounds=[2, 3])
        grid.execute([fit])
        grid.persist()
    with trialbook.create_session(store_dir) as session:
        assert list(session.ls()["name"]) == ["steps"]
        runs = session.load_experiment("steps").runs
        for run, rounds in zip(runs.values(), (2, 3), strict=True):
            assert run.status == "done" and dict(run.params) == {"rounds": rounds}
            assert run.fields.lightgbm_params["num_leaves"] == 5
            assert run.fields.iterations == rounds
            assert run.metrics("valid-binary_logloss")["step"].tolist() == list(range(rounds))


def test_inside_a_graph_trial(store_dir: pathlib.Path, closing: Closing) -> None:
    ex = closing(trialbook.Experiment(id="graph_lgb", backend=store_dir))
    leaves = ex.parameter("leaves")

    @ex.result
    def train(leaves):
        with TrialbookCallback(params={"leaves": leaves}) as callback:
            return _train(callback, rounds=3).current_iteration()

    ex.set_parameters(leaves=4)
    assert train(leaves).compute() == 3
    with trialbook.create_session(store_dir) as session:
        (run,) = session.load_experiment("graph_lgb").runs.values()
        assert run.fields.lightgbm_params == {"leaves": 4}
        assert run.metrics("train-binary_logloss")["step"].tolist() == [0, 1, 2]


def test_alone_a_run_of_its_own_in_the_default_store(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIALBOOK_STORE", str(tmp_path / "default"))
    _train(TrialbookCallback(), rounds=2)
    with trialbook.create_session(tmp_path / "default") as session:
        (run,) = session.load_experiment("lightgbm").runs.values()
        assert run.status == "done" and run.params.num_leaves == 5


class Diverged(Exception):
    pass


def _failing_metric(at: int):
    calls = []

    def metric(preds, data):
        calls.append(1)
        if len(calls) > at:
            raise Diverged("loss is nan")
        return "fake", 0.5, False

    return metric


def test_a_failure_in_a_with_block_leaves_the_run_failed(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIALBOOK_STORE", str(tmp_path / "default"))
    with pytest.raises(Diverged, match="loss is nan"), TrialbookCallback() as callback:
        _train(callback, rounds=10, feval=_failing_metric(at=2 * 3))
    with trialbook.create_session(tmp_path / "default") as session:
        (run,) = session.load_experiment("lightgbm").runs.values()
        assert run.status == "failed"
        assert run.error.type == "Diverged" and "raise Diverged" in run.error.traceback
        assert run.metrics("valid-fake")["step"].tolist() == [0, 1, 2]
        assert run.fields.iterations == 3


def test_a_failure_inside_a_step_fails_that_run(store_dir: pathlib.Path) -> None:
    def fit(run: trialbook.Run) -> None:
        _train(TrialbookCallback(), rounds=10, feval=_failing_metric(at=4))

    with trialbook.create_session(store_dir) as session:
        grid = session.create_experiment("failing")
        grid.add_runs(seed=[0])
        with pytest.raises(RunFailedError) as failed:
            grid.execute([fit])
        assert type(failed.value.__cause__) is Diverged
    with trialbook.create_session(store_dir) as session:
        (run,) = session.load_experiment("failing").runs.values()
        assert run.status == "failed" and run.error.type == "Diverged"
        assert run.metrics("valid-fake")["step"].tolist() == [0, 1]


def test_the_sklearn_api_in_a_search(store_dir: pathlib.Path) -> None:
    """A search passes the same callback to every fit: each fit is a run of its own."""
    from sklearn.model_selection import GridSearchCV

    with trialbook.create_session(store_dir) as session:
        callback = TrialbookCallback(session.create_experiment("sk"))
        model = lgb.LGBMClassifier(n_estimators=3, verbose=-1)
        search = GridSearchCV(model, {"num_leaves": [4]}, cv=2)
        search.fit(X, Y, eval_X=(X,), eval_y=(Y,), callbacks=[callback])
    with trialbook.create_session(store_dir) as session:
        runs = session.load_experiment("sk").runs
        assert len(runs) == 3  # two folds and the refit
        for run in runs.values():
            assert run.status == "done" and run.params.num_leaves == 4
            assert run.params.num_iterations == 3
            assert run.metrics("valid_0-binary_logloss")["step"].tolist() == [0, 1, 2]


def test_cv_records_mean_and_std(session: trialbook.Session) -> None:
    experiment = session.create_experiment("cv")
    with TrialbookCallback(experiment) as callback:
        lgb.cv(PARAMS, lgb.Dataset(X, label=Y), num_boost_round=3, nfold=2, callbacks=[callback])
    (run,) = session.load_experiment("cv").runs.values()
    assert run.status == "done"
    assert set(run.metric_names()) == {"valid-binary_logloss", "valid-binary_logloss-std"}
    assert run.metrics("valid-binary_logloss-std")["step"].tolist() == [0, 1, 2]
