"""The ``xgboost`` flavour: a ``Booster`` or a scikit-learn wrapper (``XGBClassifier``...),
saved with XGBoost's own ``save_model`` as UBJSON and loaded back into the same class.

Only classes of the ``xgboost`` package are rebuilt: a subclass of yours is loaded as the
XGBoost class it derives from (named in ``model.json`` as ``xgboost_class``).

Examples
--------
>>> import pathlib, tempfile
>>> import numpy as np, xgboost
>>> from trialbook.models.flavour import LoadOptions, SaveOptions
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
>>> model = xgboost.XGBClassifier(n_estimators=2, max_depth=1).fit(X, y)
>>> save(model, folder, SaveOptions())
{'files': ['model.ubj'], 'xgboost_class': 'xgboost.sklearn.XGBClassifier'}
>>> (load(folder, {"xgboost_class": "xgboost.sklearn.XGBClassifier"}, LoadOptions())
...  .predict(X) == model.predict(X)).all()
np.True_
"""

from __future__ import annotations

import importlib
import pathlib
from typing import Any

from trialbook.errors import ConfigError
from trialbook.models.flavour import LoadOptions, SaveOptions, library_class

__all__ = ["NAME", "PACKAGES", "handles", "load", "save"]

NAME = "xgboost"
PACKAGES = ("xgboost", "xgboost-cpu", "numpy", "scipy", "scikit-learn")
_FILE = "model.ubj"


def handles(model: Any) -> bool:
    """Whether ``model`` is an XGBoost ``Booster`` or ``XGBModel``."""
    import xgboost

    return isinstance(model, xgboost.Booster | xgboost.XGBModel)


def save(model: Any, folder: pathlib.Path, options: SaveOptions) -> dict[str, Any]:
    """Save with ``model.save_model`` (UBJSON)."""
    model.save_model(folder / _FILE)
    return {"files": [_FILE], "xgboost_class": library_class(model, "xgboost")}


def load(folder: pathlib.Path, meta: dict[str, Any], options: LoadOptions) -> Any:
    """A new instance of the saved XGBoost class, filled with ``load_model``."""
    import xgboost

    name = str(meta.get("xgboost_class", ""))
    module, _, qualname = name.rpartition(".")
    cls = None
    if module.partition(".")[0] == "xgboost":
        cls = getattr(importlib.import_module(module), qualname, None)
    if not (isinstance(cls, type) and issubclass(cls, xgboost.Booster | xgboost.XGBModel)):
        msg = f"model.json names {name!r}, which is not an XGBoost Booster or XGBModel class"
        raise ConfigError(msg)
    model = cls()
    model.load_model(folder / _FILE)
    return model
