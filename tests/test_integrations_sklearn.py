"""scikit-learn integration (issue 17): a fitted search as one run per candidate, and
``log_estimator`` into a given experiment, the current run (runs step, graph trial, task job) or
a run of its own in the default store. Every check reads the store back in a new session."""

from __future__ import annotations

import pathlib

import pytest

import trialbook
from conftest import Closing, require_module
from trialbook import Meta, Param, Task, experiment
from trialbook.errors import CodecError, ConfigError
from trialbook.storage import open_store
from trialbook.tasks import LocalLauncher

np = require_module("numpy", "sklearn")
require_module("sklearn", "sklearn")
require_module("skops", "sklearn")

from sklearn.datasets import load_iris  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

from trialbook.integrations.sklearn import log_estimator, log_search  # noqa: E402

X, Y = load_iris(return_X_y=True)


def _pipeline() -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))])


def test_grid_search_becomes_one_run_per_candidate(store_dir: pathlib.Path) -> None:
    search = GridSearchCV(_pipeline(), {"clf__C": [0.01, 1.0]}, cv=3, return_train_score=True)
    search.fit(X, Y)
    with trialbook.create_session(store_dir) as session:
        runs = log_search(search, session.create_experiment("grid"))
    assert [r.id for r in runs] == [1, 2]
    with trialbook.create_session(store_dir) as session:
        stored = session.load_experiment("grid").runs
        assert [dict(r.params) for r in stored.values()] == [{"clf__C": 0.01}, {"clf__C": 1.0}]
        results = search.cv_results_
        for index, run in enumerate(stored.values()):
            assert run.status == "done"
            for split in range(3):
                for part in ("test", "train"):
                    key = f"split{split}_{part}_score"
                    assert run.fields[key] == results[key][index]
            for key in (
                "mean_test_score",
                "std_test_score",
                "mean_train_score",
                "std_train_score",
                "mean_fit_time",
                "std_fit_time",
                "mean_score_time",
                "std_score_time",
            ):
                assert run.fields[key] == results[key][index], key
            assert run.fields.rank_test_score == results["rank_test_score"][index]
            assert type(run.fields.rank_test_score) is int
            assert (run.fields.candidate, run.fields.search) == (index, "GridSearchCV")
            assert run.tags["best"] is (index == int(search.best_index_))
        assert not any(key.startswith("param") for r in stored.values() for key in r.fields)


def test_multi_metric_randomized_search_keeps_every_scorer(store_dir: pathlib.Path) -> None:
    """Several scorers: each gets its split, mean, std and rank fields; refit names the best.
    Candidates over estimators keep a readable ``repr`` as their parameter."""
    search = RandomizedSearchCV(
        make_pipeline(StandardScaler(), SVC()),
        {"svc": [SVC(C=0.1), LogisticRegression(max_iter=500)], "svc__C": [0.5]},
        n_iter=2,
        cv=2,
        scoring=["accuracy", "f1_macro"],
        refit="f1_macro",
        random_state=0,
    ).fit(X, Y)
    with trialbook.create_session(store_dir) as session:
        log_search(search, session.create_experiment("random"))
    with trialbook.create_session(store_dir) as session:
        stored = list(session.load_experiment("random").runs.values())
    assert len(stored) == 2
    for run in stored:
        assert {
            "split0_test_accuracy",
            "split1_test_f1_macro",
            "mean_test_f1_macro",
            "std_test_accuracy",
            "rank_test_accuracy",
            "rank_test_f1_macro",
        } <= set(run.fields)
        assert "score" not in "".join(k for k in run.fields if k.startswith("split"))
    assert {r.params.svc for r in stored} == {"SVC(C=0.1)", "LogisticRegression(max_iter=500)"}
    assert [r.tags["best"] for r in stored] == [i == search.best_index_ for i in range(2)]


def test_a_search_without_refit_has_no_best_tag(session: trialbook.Session) -> None:
    """Several scorers and no refit: the search has no best candidate, nor do the runs."""
    search = GridSearchCV(
        LogisticRegression(max_iter=500),
        {"C": [1.0]},
        cv=2,
        scoring=["accuracy", "f1_macro"],
        refit=False,
    )
    runs = log_search(search.fit(X, Y), session.create_experiment("norefit"))
    assert "best" not in runs[0].tags


def test_an_unfitted_search_is_refused(session: trialbook.Session) -> None:
    search = GridSearchCV(LogisticRegression(), {"C": [1.0]})
    experiment_ = session.create_experiment("unfitted")
    with pytest.raises(ConfigError, match=r"GridSearchCV without cv_results_.*search\.fit"):
        log_search(search, experiment_)
    assert experiment_.runs == {}


def test_log_estimator_into_a_given_experiment(store_dir: pathlib.Path) -> None:
    model = _pipeline().fit(X, Y)
    with trialbook.create_session(store_dir) as session:
        run = log_estimator(
            model, session.create_experiment("est"), metrics={"acc": np.float64(0.5), "n": 3}
        )
        assert run.status == "done"
    with trialbook.create_session(store_dir) as session:
        stored = session.load_experiment("est").runs[1]
        assert stored.status == "done"
        assert stored.params.verbose is False and stored.params.memory is None
        assert stored.params.steps == [
            ["scale", "StandardScaler()"],
            ["clf", "LogisticRegression(max_iter=500)"],
        ]
        assert stored.metrics("acc")["value"].tolist() == [0.5]
        assert stored.metrics("n")["value"].tolist() == [3.0]
        assert (stored.load_model().predict(X) == model.predict(X)).all()


def test_log_estimator_into_the_current_run_of_a_step(store_dir: pathlib.Path) -> None:
    def fit(run: trialbook.Run) -> None:
        model = LogisticRegression(C=run.params.c, max_iter=500).fit(X, Y)
        assert log_estimator(model, metrics={"acc": model.score(X, Y)}, name="clf") is run

    with trialbook.create_session(store_dir) as session:
        grid = session.create_experiment("steps")
        grid.add_runs(c=[0.5])
        grid.execute([fit])
        grid.persist()
    with trialbook.create_session(store_dir) as session:
        run = session.load_experiment("steps").runs[1]
        assert dict(run.params) == {"c": 0.5}
        assert run.fields.sklearn_params["C"] == 0.5
        assert run.fields.sklearn_params["max_iter"] == 500
        assert run.metrics("acc")["value"].tolist()[0] > 0.9
        assert list(run.models) == ["clf"]
        assert list(session.ls()["name"]) == ["steps"]


def test_log_estimator_into_a_graph_trial(store_dir: pathlib.Path, closing: Closing) -> None:
    ex = closing(trialbook.Experiment(id="graph_sklearn", backend=store_dir))
    c = ex.parameter("c")

    @ex.result
    def train(c):
        model = LogisticRegression(C=c, max_iter=500).fit(X, Y)
        log_estimator(model, metrics={"acc": model.score(X, Y)})
        return 1

    ex.set_parameters(c=2.0)
    assert train(c).compute() == 1
    loaded = trialbook.load_model("trialbook:graph_sklearn/1/model", store=str(store_dir))
    assert loaded.C == 2.0


class FitInTask(Task):
    """Fits a model in its job and records it with log_estimator."""

    __trialbook_id__ = "test.integrations.sklearn_fit"
    c: Param[float] = 1.0
    out: Meta[str] = ""

    def execute(self) -> None:
        model = LogisticRegression(C=self.c, max_iter=500).fit(X, Y)
        log_estimator(model, metrics={"acc": model.score(X, Y)})


def test_log_estimator_in_a_task_execute(tmp_path: pathlib.Path, closing: Closing) -> None:
    with experiment(tmp_path / "wd", "jobs_sklearn", launcher=LocalLauncher(n_workers=1)):
        FitInTask.C(c=0.25).submit()
    store = closing(open_store(tmp_path / ".trialbook"))
    (record,) = store.read_runs(store.find_experiment("jobs_sklearn").id)
    assert record.status == "done"
    assert record.fields["sklearn_params"]["C"] == 0.25
    loaded = trialbook.load_model(f"trialbook:jobs_sklearn/{record.run_id}/model", store=store)
    assert loaded.C == 0.25


def test_log_estimator_alone_starts_a_run_in_the_default_store(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIALBOOK_STORE", str(tmp_path / "default"))
    for c in (0.5, 1.5):
        log_estimator(LogisticRegression(C=c, max_iter=500).fit(X, Y))
    with trialbook.create_session(tmp_path / "default") as session:
        runs = session.load_experiment("sklearn").runs
        assert [(r.status, r.params.C) for r in runs.values()] == [("done", 0.5), ("done", 1.5)]
        assert runs[2].load_model().C == 1.5


def _double(x):
    return 2 * x


def test_a_model_that_cannot_be_logged_leaves_the_run_failed(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """skops refuses the user's function: the error propagates and the own run is failed."""
    monkeypatch.setenv("TRIALBOOK_STORE", str(tmp_path / "default"))
    model = make_pipeline(FunctionTransformer(_double), LogisticRegression(max_iter=500))
    model.fit(X, Y)
    with pytest.raises(CodecError, match=r"_double"):
        log_estimator(model, metrics={"acc": 0.5})
    with trialbook.create_session(tmp_path / "default") as session:
        (run,) = session.load_experiment("sklearn").runs.values()
        assert run.status == "failed"
        assert run.error.type == "CodecError" and "_double" in run.error.message
        assert run.metrics("acc")["value"].tolist() == [0.5]


def test_an_unfitted_or_foreign_estimator_is_refused(session: trialbook.Session) -> None:
    experiment_ = session.create_experiment("refused")
    with pytest.raises(ConfigError, match=r"this LogisticRegression is not fitted: call \.fit"):
        log_estimator(LogisticRegression(), experiment_)
    with pytest.raises(ConfigError, match=r"got \[1, 2\] that is a <class 'list'>"):
        log_estimator([1, 2], experiment_)
    assert experiment_.runs == {}
