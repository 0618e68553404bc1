"""Models logged with runs (issue 21): ``run.log_model`` / ``run.load_model`` per flavour,
``trialbook.load_model(uri)`` from another process, graph steps and task jobs."""

from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

import trialbook
from conftest import Closing, require_module
from trialbook import Meta, Param, Task, experiment
from trialbook.errors import CodecError, ConfigError, ExperimentNotFoundError, NotFoundError
from trialbook.models import parse_uri
from trialbook.storage import open_store
from trialbook.tasks import LocalLauncher

np = require_module("numpy", "models")
sklearn = require_module("sklearn", "models")
require_module("skops", "models")

from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402

X = np.array([[0.0, 1.0], [1.0, 0.5], [2.0, 0.2], [3.0, 0.1], [4.0, 0.0], [5.0, 0.3]])
Y = np.array([0, 0, 0, 1, 1, 1])


def _meta(run: trialbook.Run, name: str = "model") -> dict:
    with run.open_artifact(name, path="model.json") as f:
        return json.loads(f.read())


def test_sklearn_round_trip_records_the_environment_and_the_input_example(
    session: trialbook.Session,
) -> None:
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y)
    experiment_ = session.create_experiment("sk")
    (run,) = experiment_.add_runs(C=[1.0])
    info = run.log_model(model, input_example=X[:2])
    assert (info.name, info.kind) == ("model", "folder")
    experiment_.persist()
    loaded = session.load_experiment("sk").runs[1].load_model()
    assert (loaded.predict_proba(X) == model.predict_proba(X)).all()
    meta = _meta(run)
    assert run.models == {"model": meta}
    assert meta["flavour"] == "sklearn"
    assert meta["class"] == "sklearn.pipeline.Pipeline"
    assert {"trialbook", "scikit-learn", "skops", "numpy"} <= set(meta["requirements"])
    assert meta["requirements"]["scikit-learn"] == sklearn.__version__
    assert meta["python"] == ".".join(map(str, sys.version_info[:3]))
    assert meta["input_example"] == {
        "file": "input_example.npy", "codec": "npy", "type": "ndarray", "shape": [2, 2],
        "dtype": "float64",
    }  # fmt: skip
    with run.open_artifact("model", path="input_example.npy") as f:
        assert (np.load(io.BytesIO(f.read()), allow_pickle=False) == X[:2]).all()


def test_dataframe_and_dict_input_examples_round_trip(session: trialbook.Session) -> None:
    import pandas as pd

    from trialbook.models.folder import load_input_example

    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    (run,) = session.create_experiment("ex").add_runs(x=[1])
    run.log_model(LogisticRegression().fit(X, Y), "frame", input_example=frame)
    run.log_model(LogisticRegression().fit(X, Y), "dict", input_example={"a": [1, 2]})
    run.log_artifact(b"x", name="notes.txt")
    assert sorted(run.models) == ["dict", "frame"]  # not the plain artifact
    assert _meta(run, "frame")["input_example"]["dtypes"] == {
        "a": "float64", "b": str(frame.dtypes["b"])
    }  # fmt: skip
    for name, expected in [("frame", frame), ("dict", {"a": [1, 2]})]:
        folder = run.download_artifact(name, session.store.url.split("///")[-1] + f"-{name}")
        got = load_input_example(folder)
        assert got.equals(expected) if name == "frame" else got == expected


def test_skops_untrusted_types_are_refused_naming_them_unless_trusted(
    session: trialbook.Session,
) -> None:
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, Y)
    (run,) = session.create_experiment("tree").add_runs(x=[1])
    with pytest.raises(CodecError, match=r"sklearn\.tree\._tree\.Tree.*trusted="):
        run.log_model(tree)
    assert run.artifacts == {}
    run.log_model(tree, trusted=["sklearn.tree._tree.Tree"])
    with pytest.raises(CodecError, match=r"loading .*DecisionTreeClassifier.*_tree\.Tree"):
        run.load_model()
    loaded = run.load_model(trusted=["sklearn.tree._tree.Tree"])
    assert (loaded.predict(X) == tree.predict(X)).all()


def _double(x):
    return x * 2


def test_pickle_fallback_is_refused_without_the_opt_in_and_works_with_it(
    store_dir: pathlib.Path, closing: Closing
) -> None:
    model = {"weights": [1.0, 2.0], "fn": _double}
    safe = closing(trialbook.create_session(store_dir))
    experiment_ = safe.create_experiment("p")
    (run,) = experiment_.add_runs(x=[1])
    with pytest.raises(CodecError, match=r"<class 'dict'> has no safe flavour.*allow_pickle"):
        run.log_model(model)
    assert run.artifacts == {}
    experiment_.persist()
    safe.close()
    trusting = closing(trialbook.create_session(store_dir, allow_pickle=True))
    (run,) = trusting.load_experiment("p").runs.values()
    run.log_model(model)
    assert _meta(run)["flavour"] == "pickle"
    assert run.load_model() == model
    trusting.close()
    again = closing(trialbook.create_session(store_dir))
    with pytest.raises(CodecError, match=r"saved with pickle.*allow_pickle=True"):
        again.load_experiment("p").runs[1].load_model()


def test_uri_loads_from_another_process_with_the_store_from_the_environment(
    session: trialbook.Session, store_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    model = LogisticRegression().fit(X, Y)
    (run,) = session.create_experiment("team/fit").add_runs(C=[1.0])
    run.log_model(model, "best model")
    np.save(tmp_path / "x.npy", X)
    script = textwrap.dedent(f"""
        import numpy as np, trialbook
        model = trialbook.load_model("trialbook:team/fit/1/best%20model")
        print(model.predict(np.load({str(tmp_path / "x.npy")!r})).tolist())
    """)
    env = {**os.environ, "TRIALBOOK_STORE": str(store_dir)}
    out = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, env=env,
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(model.predict(X).tolist())
    loaded = trialbook.load_model("trialbook:team/fit/1/best model", store=str(store_dir))
    assert (loaded.predict(X) == model.predict(X)).all()


def test_bad_uris_and_missing_models_are_explained(session: trialbook.Session) -> None:
    assert parse_uri("trialbook:a/b/c/12/m%2Fx") == trialbook.models.uri.ModelURI(
        "a/b/c", 12, "m/x"
    )
    with pytest.raises(ConfigError, match="trialbook:<experiment>/<run id>/<artifact>"):
        trialbook.load_model("models:/fit/1", store=session)
    with pytest.raises(ConfigError, match="a run id, a number"):
        parse_uri("trialbook:fit/best/model")
    with pytest.raises(ExperimentNotFoundError):
        trialbook.load_model("trialbook:nope/1/model", store=session)
    (run,) = session.create_experiment("fit").add_runs(x=[1])
    run.log_artifact(b"x", name="notes.txt")
    with pytest.raises(NotFoundError, match=r"its artifacts: 'notes\.txt'"):
        trialbook.load_model("trialbook:fit/1/model", store=session)
    with pytest.raises(NotFoundError, match="not a model"):
        trialbook.load_model("trialbook:fit/1/notes.txt", store=session)


def test_graph_step_logs_a_model_through_the_current_run(
    store_dir: pathlib.Path, closing: Closing
) -> None:
    ex = closing(trialbook.Experiment(id="graph_model", backend=store_dir))
    c = ex.parameter("c")

    @ex.result
    def train(c):
        model = LogisticRegression(C=c).fit(X, Y)
        trialbook.current_run().log_model(model)
        return float(model.score(X, Y))

    ex.set_parameters(c=1.0)
    assert train(c).compute() == 1.0
    loaded = trialbook.load_model("trialbook:graph_model/1/model", store=str(store_dir))
    assert loaded.predict(X).tolist() == Y.tolist()


class TrainModel(Task):
    """Fits a model in its job and logs it."""

    __trialbook_id__ = "test.train_model"
    c: Param[float] = 1.0
    out: Meta[str] = ""

    def execute(self) -> None:
        model = LogisticRegression(C=self.c).fit(X, Y)
        trialbook.current_run().log_model(model, input_example=X[:1])


def test_task_job_logs_a_model_in_execute(tmp_path: pathlib.Path, closing: Closing) -> None:
    with experiment(tmp_path / "wd", "jobs_model", launcher=LocalLauncher(n_workers=1)):
        TrainModel.C(c=0.5).submit()
    store = closing(open_store(tmp_path / ".trialbook"))
    (record,) = store.read_runs(store.find_experiment("jobs_model").id)
    loaded = trialbook.load_model(f"trialbook:jobs_model/{record.run_id}/model", store=store)
    assert loaded.predict(X).tolist() == LogisticRegression(C=0.5).fit(X, Y).predict(X).tolist()


def test_custom_transformer_needs_trust(session: trialbook.Session) -> None:
    """A function of the user's inside a pipeline is not trusted by skops: named, then trusted."""
    model = make_pipeline(FunctionTransformer(_double), LogisticRegression()).fit(X, Y)
    (run,) = session.create_experiment("fn").add_runs(x=[1])
    with pytest.raises(CodecError, match=r"test_models\._double") as caught:
        run.log_model(model)
    trusted = str(caught.value).split(": ", 1)[1].split(". ")[0].split(", ")
    run.log_model(model, trusted=trusted)
    assert (run.load_model(trusted=trusted).predict(X) == model.predict(X)).all()


def test_xgboost_booster_and_classifier_round_trip(session: trialbook.Session) -> None:
    xgboost = require_module("xgboost", "models")
    classifier = xgboost.XGBClassifier(n_estimators=3, max_depth=2).fit(X, Y)
    booster = xgboost.train({"max_depth": 2}, xgboost.DMatrix(X, label=Y), num_boost_round=3)
    (run,) = session.create_experiment("xgb").add_runs(x=[1])
    run.log_model(classifier, "clf", input_example=X[:1])
    run.log_model(booster, "booster")
    loaded = run.load_model("clf")
    assert type(loaded) is xgboost.XGBClassifier
    assert (loaded.predict_proba(X) == classifier.predict_proba(X)).all()
    again = run.load_model("booster")
    assert type(again) is xgboost.Booster
    matrix = xgboost.DMatrix(X)
    assert (again.predict(matrix) == booster.predict(matrix)).all()
    meta = _meta(run, "clf")
    assert meta["flavour"] == "xgboost" and meta["files"] == ["model.ubj"]
    assert meta["requirements"]["xgboost-cpu"] == xgboost.__version__


def test_lightgbm_booster_and_classifier_round_trip(session: trialbook.Session) -> None:
    lightgbm = require_module("lightgbm", "models")
    features = np.arange(80.0).reshape(40, 2) % 7
    labels = np.array(["a", "b", "c", "d"] * 10)
    classifier = lightgbm.LGBMClassifier(n_estimators=3, min_child_samples=2, verbose=-1)
    classifier.fit(features, labels)
    (run,) = session.create_experiment("lgb").add_runs(x=[1])
    run.log_model(classifier, "clf")
    run.log_model(classifier.booster_, "booster")
    loaded = run.load_model("clf")
    assert type(loaded) is lightgbm.LGBMClassifier
    assert (loaded.predict(features) == classifier.predict(features)).all()
    assert (loaded.predict_proba(features) == classifier.predict_proba(features)).all()
    booster = run.load_model("booster")
    assert (booster.predict(features) == classifier.booster_.predict(features)).all()
    assert _meta(run, "clf")["requirements"]["lightgbm"] == lightgbm.__version__


@pytest.mark.optional  # torch is installed by scripts/bootstrap.sh on Python 3.11 only
def test_pytorch_state_dict_round_trip(session: trialbook.Session) -> None:
    torch = pytest.importorskip("torch")
    require_module("safetensors", "models")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    (run,) = session.create_experiment("torch").add_runs(x=[1])
    run.log_model(net, input_example=X[:2].astype("float32"))
    state = run.load_model()
    assert sorted(state) == sorted(net.state_dict())
    fresh = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    filled = run.load_model(model=fresh)
    assert filled is fresh
    inputs = torch.tensor(X, dtype=torch.float32)
    assert torch.equal(filled(inputs), net(inputs))
    meta = _meta(run)
    assert meta["flavour"] == "pytorch" and meta["class"] == "torch.nn.modules.container.Sequential"
    assert meta["requirements"]["torch"] == torch.__version__.split("+")[0] or meta["requirements"][
        "torch"
    ].startswith(torch.__version__.split("+")[0])
    with pytest.raises(ConfigError, match=r"model= takes the torch\.nn\.Module"):
        run.load_model(model=LogisticRegression())


def test_models_held_back_until_persist_are_listed_and_written(
    session: trialbook.Session,
) -> None:
    session.create_experiment("later").persist()
    experiment_ = session.create_experiment("later", if_exists="replace")
    (run,) = experiment_.add_runs(x=[1])
    model = LogisticRegression().fit(X, Y)
    run.log_model(model)
    assert run.models["model"]["flavour"] == "sklearn"
    experiment_.persist()
    loaded = trialbook.load_model("trialbook:later/1/model", store=session)
    assert (loaded.predict(X) == model.predict(X)).all()
