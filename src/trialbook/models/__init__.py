"""Models logged with a run, in a safe format where the library has one (issue 21).

``run.log_model(model, name="model")`` saves the model in its *flavour* and logs the folder
as an artifact of the run: the model's files and ``model.json`` (flavour, class, Python,
trialbook and library versions, the input example if given). ``run.load_model(name)`` gives
it back, and :func:`load_model` loads it from anywhere through a URI
``trialbook:<experiment>/<run>/<artifact>`` (see :mod:`trialbook.models.uri`).

========== =========================================== ==========================================
flavour    models                                      files
========== =========================================== ==========================================
sklearn    scikit-learn estimators and pipelines       ``model.skops`` (skops, no pickle)
xgboost    ``Booster`` and ``XGBModel`` (XGBClassifier) ``model.ubj`` (XGBoost's own format)
lightgbm   ``Booster`` and ``LGBMModel``                ``model.txt`` (LightGBM's text format)
pytorch    ``torch.nn.Module``                         ``model.safetensors`` (its ``state_dict``)
pickle     anything else, if the store allows pickle   ``model.joblib``
========== =========================================== ==========================================

Examples
--------
>>> import numpy as np, trialbook
>>> from sklearn.linear_model import LogisticRegression
>>> X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
>>> with trialbook.create_session("sqlite:///:memory:") as session:
...     run, = session.create_experiment("doc_models").add_runs(C=[1.0])
...     _ = run.log_model(LogisticRegression().fit(X, y), input_example=X[:2])
...     run.load_model().predict(X)
array([0, 0, 1, 1])
"""

from __future__ import annotations

from trialbook.models.uri import load_model, parse_uri

__all__ = ["load_model", "parse_uri"]
