"""XGBoost integration (issue 17): metrics per iteration, booster params and the best iteration,
recorded into a given experiment, the current run (runs step, graph trial) or a run of its own
in the default store; failures leave the run failed. Every check reads the store back."""

from __future__ import annotations

import copy
import pathlib

import pytest

import trialbook
from conftest import Closing, require_module
from trialbook.errors import RunFailedError

np = require_module("numpy", "xgboost")
xgb = require_module("xgboost", "xgboost")

from trialbook.integrations.xgboost import TrialbookCallback, booster_params  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.normal(size=(120, 3))
Y = (X[:, 0] + RNG.normal(scale=0.7, size=120) > 0).astype(int)
TRAIN = xgb.DMatrix(X[:80], label=Y[:80])
VALID = xgb.DMatrix(X[80:], label=Y[80:])
PARAMS = {"objective": "binary:logistic", "max_depth": 2, "eta": 0.5, "eval_metric": "logloss"}


def _train(callback: TrialbookCallback, rounds: int = 8, **kw) -> xgb.Booster:
    return xgb.train(
        PARAMS,
        TRAIN,
        num_boost_round=rounds,
        evals=[(TRAIN, "train"), (VALID, "valid")],
        callbacks=[callback],
        verbose_eval=False,
        **kw,
    )


def test_train_records_metrics_params_and_best_iteration(store_dir: pathlib.Path) -> None:
    with trialbook.create_session(store_dir) as session:
        callback = TrialbookCallback(session.create_experiment("xgb"))
        booster = _train(callback, rounds=200, early_stopping_rounds=3)
        assert callback.run is None  # finished: the next training gets a new run
    rounds = booster.num_boosted_rounds()
    assert rounds < 200
    with trialbook.create_session(store_dir) as session:
        (run,) = session.load_experiment("xgb").runs.values()
        assert run.status == "done"
        assert (run.params.max_depth, run.params.eta, run.params.objective) == (
            2,
            0.5,
            "binary:logistic",
        )
        assert run.params.eval_metric == ["logloss"]
        assert "num_feature" not in run.params and "base_score" not in run.params
        valid = run.metrics("valid-logloss")
        assert valid["step"].tolist() == list(range(rounds))
        assert set(run.metric_names()) == {"train-logloss", "valid-logloss"}
        assert run.fields.best_iteration == booster.best_iteration
        assert run.fields.best_score == pytest.approx(valid["value"].min())
        assert valid["value"].idxmin() == booster.best_iteration
        assert run.fields.iterations == rounds


def test_params_given_replace_the_booster_config(session: trialbook.Session) -> None:
    experiment = session.create_experiment("given")
    _train(TrialbookCallback(experiment, params={"depth-max": 2, "note": "small"}), rounds=2)
    (run,) = session.load_experiment("given").runs.values()
    assert dict(run.params) == {"depth_max": 2, "note": "small"}
    assert "best_iteration" not in run.fields  # no early stopping


def test_booster_params_are_numbers_and_skip_learned_values() -> None:
    params = booster_params(xgb.train({"max_depth": 3, "eta": 0.1, "lambda": 2.5}, TRAIN, 1))
    assert (params["max_depth"], params["eta"], params["learning_rate"], params["lambda_"]) == (
        3,
        0.1,
        0.1,
        2.5,
    )
    assert params["booster"] == "gbtree" and params["seed"] == 0
    assert not {"num_feature", "base_score", "num_trees", "name"} & set(params)


def test_inside_a_step_the_current_run_gets_the_values(store_dir: pathlib.Path) -> None:
    def fit(run: trialbook.Run) -> None:
        callback = TrialbookCallback()
        _train(callback, rounds=run.params.rounds)
        assert callback.run is None

    with trialbook.create_session(store_dir) as session:
        grid = session.create_experiment("steps")
        grid.add_runs(rounds=[3, 4])
        grid.execute([fit])
        grid.persist()
    with trialbook.create_session(store_dir) as session:
        assert list(session.ls()["name"]) == ["steps"]  # no experiment of its own
        runs = session.load_experiment("steps").runs
        for run, rounds in zip(runs.values(), (3, 4), strict=True):
            assert run.status == "done" and dict(run.params) == {"rounds": rounds}
            assert run.fields.xgboost_params["max_depth"] == 2
            assert run.fields.iterations == rounds
            assert len(run.metrics("valid-logloss")) == rounds


def test_inside_a_graph_trial(store_dir: pathlib.Path, closing: Closing) -> None:
    ex = closing(trialbook.Experiment(id="graph_xgb", backend=store_dir))
    depth = ex.parameter("depth")

    @ex.result
    def train(depth):
        booster = xgb.train(
            {"max_depth": depth},
            TRAIN,
            3,
            evals=[(VALID, "valid")],
            callbacks=[TrialbookCallback()],
            verbose_eval=False,
        )
        return booster.num_boosted_rounds()

    ex.set_parameters(depth=1)
    assert train(depth).compute() == 3
    with trialbook.create_session(store_dir) as session:
        (run,) = session.load_experiment("graph_xgb").runs.values()
        assert run.fields.xgboost_params["max_depth"] == 1
        assert run.metrics("valid-rmse")["step"].tolist() == [0, 1, 2]


def test_alone_each_training_is_a_run_of_its_own_in_the_default_store(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIALBOOK_STORE", str(tmp_path / "default"))
    callback = TrialbookCallback()
    _train(callback, rounds=2)
    _train(callback, rounds=3)
    with trialbook.create_session(tmp_path / "default") as session:
        runs = session.load_experiment("xgboost").runs
        assert [(r.status, r.fields.iterations) for r in runs.values()] == [
            ("done", 2),
            ("done", 3),
        ]


class Diverged(Exception):
    pass


def _failing_metric(at: int):
    calls = []

    def metric(predt, dtrain):
        calls.append(1)
        if len(calls) > at:
            raise Diverged("loss is nan")
        return "fake", 0.5

    return metric


def test_a_failure_in_a_with_block_leaves_the_run_failed(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIALBOOK_STORE", str(tmp_path / "default"))
    with pytest.raises(Diverged, match="loss is nan"), TrialbookCallback() as callback:
        _train(callback, rounds=10, custom_metric=_failing_metric(at=2 * 3))
    with trialbook.create_session(tmp_path / "default") as session:
        (run,) = session.load_experiment("xgboost").runs.values()
        assert run.status == "failed"
        assert run.error.type == "Diverged" and run.error.message == "loss is nan"
        assert "raise Diverged" in run.error.traceback
        assert run.metrics("valid-fake")["step"].tolist() == [0, 1, 2]


def test_without_a_with_block_the_next_training_marks_the_failed_one(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIALBOOK_STORE", str(tmp_path / "default"))
    callback = TrialbookCallback()
    with pytest.raises(Diverged):
        _train(callback, rounds=10, custom_metric=_failing_metric(at=2))
    _train(callback, rounds=2)
    with trialbook.create_session(tmp_path / "default") as session:
        first, second = session.load_experiment("xgboost").runs.values()
        assert first.status == "failed" and "raised before its end" in first.error.message
        assert second.status == "done"


def test_a_failure_inside_a_step_fails_that_run(store_dir: pathlib.Path) -> None:
    def fit(run: trialbook.Run) -> None:
        _train(TrialbookCallback(), rounds=10, custom_metric=_failing_metric(at=4))

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


def test_the_sklearn_api_and_its_clones(store_dir: pathlib.Path) -> None:
    """GridSearchCV clones the estimator with its callbacks: every fit is a run of the same
    experiment, no session copied."""
    from sklearn.model_selection import GridSearchCV

    with trialbook.create_session(store_dir) as session:
        experiment = session.create_experiment("sk")
        callback = TrialbookCallback(experiment)
        assert copy.deepcopy(callback)._experiment is experiment
        model = xgb.XGBClassifier(n_estimators=3, max_depth=2, callbacks=[callback])
        search = GridSearchCV(model, {"max_depth": [2]}, cv=2)
        search.fit(X, Y, eval_set=[(X, Y)], verbose=False)
    with trialbook.create_session(store_dir) as session:
        runs = session.load_experiment("sk").runs
        assert len(runs) == 3  # two folds and the refit
        for run in runs.values():
            assert run.status == "done" and run.params.max_depth == 2
            assert run.metrics("validation_0-logloss")["step"].tolist() == [0, 1, 2]


def test_cv_records_mean_and_std(session: trialbook.Session) -> None:
    experiment = session.create_experiment("cv")
    xgb.cv(PARAMS, TRAIN, num_boost_round=3, nfold=2, callbacks=[TrialbookCallback(experiment)])
    (run,) = session.load_experiment("cv").runs.values()
    assert run.status == "done"
    assert set(run.metric_names()) == {
        "train-logloss",
        "train-logloss-std",
        "test-logloss",
        "test-logloss-std",
    }
    assert run.metrics("test-logloss-std")["step"].tolist() == [0, 1, 2]
