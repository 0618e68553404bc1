"""The ``lightgbm`` flavour: a ``Booster`` or a scikit-learn wrapper (``LGBMClassifier``...),
saved in LightGBM's own text format.

A wrapper is rebuilt from its parameters (``params.json``: those JSON can hold), its booster
and, for a classifier, its classes (``classes.npy``); a subclass of yours is loaded as the
LightGBM class it derives from. The wrapper's rebuild sets the attributes LightGBM's
``fit`` sets (they are private to LightGBM: tested with LightGBM 4).

Examples
--------
>>> import pathlib, tempfile
>>> import numpy as np, lightgbm
>>> from trialbook.models.flavour import LoadOptions, SaveOptions
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> X, y = np.arange(40.0).reshape(20, 2), np.array([0, 1] * 10)
>>> model = lightgbm.LGBMClassifier(n_estimators=3, min_child_samples=2, verbose=-1).fit(X, y)
>>> meta = save(model, folder, SaveOptions())
>>> meta["files"], meta["lightgbm_class"]
(['model.txt', 'params.json', 'classes.npy'], 'lightgbm.sklearn.LGBMClassifier')
>>> (load(folder, meta, LoadOptions()).predict_proba(X) == model.predict_proba(X)).all()
np.True_
"""

from __future__ import annotations

import importlib
import json
import pathlib
from typing import Any

from trialbook.errors import ConfigError
from trialbook.models.flavour import LoadOptions, SaveOptions, library_class

__all__ = ["NAME", "PACKAGES", "handles", "load", "save"]

NAME = "lightgbm"
PACKAGES = ("lightgbm", "numpy", "scipy", "scikit-learn")
_FILE = "model.txt"
_PARAMS = "params.json"
_CLASSES = "classes.npy"


def handles(model: Any) -> bool:
    """Whether ``model`` is a LightGBM ``Booster`` or ``LGBMModel``."""
    import lightgbm

    return isinstance(model, lightgbm.Booster | lightgbm.LGBMModel)


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    kept = {}
    for key, value in params.items():
        try:
            json.dumps(value)
        except TypeError:
            continue  # a callable objective, a random state object...: not restorable safely
        kept[key] = value
    return kept


def save(model: Any, folder: pathlib.Path, options: SaveOptions) -> dict[str, Any]:
    """Save the booster as text; a wrapper's parameters and classes next to it."""
    import lightgbm
    import numpy as np

    meta: dict[str, Any] = {"files": [_FILE], "lightgbm_class": library_class(model, "lightgbm")}
    if isinstance(model, lightgbm.Booster):
        model.save_model(folder / _FILE)
        return meta
    model.booster_.save_model(folder / _FILE)
    (folder / _PARAMS).write_text(json.dumps(_json_params(model.get_params()), sort_keys=True))
    meta["files"].append(_PARAMS)
    meta["objective"] = model.objective_ if isinstance(model.objective_, str) else None
    meta["feature_names"] = bool(getattr(model, "_fitted_with_feature_names", False))
    if isinstance(model, lightgbm.LGBMClassifier):
        np.save(folder / _CLASSES, np.asarray(model.classes_), allow_pickle=False)
        meta["files"].append(_CLASSES)
    return meta


def _class(name: str) -> Any:
    import lightgbm

    module, _, qualname = name.rpartition(".")
    cls = None
    if module.partition(".")[0] == "lightgbm":
        cls = getattr(importlib.import_module(module), qualname, None)
    if not (isinstance(cls, type) and issubclass(cls, lightgbm.Booster | lightgbm.LGBMModel)):
        msg = f"model.json names {name!r}, which is not a LightGBM Booster or LGBMModel class"
        raise ConfigError(msg)
    return cls


def load(folder: pathlib.Path, meta: dict[str, Any], options: LoadOptions) -> Any:
    """The booster, or the wrapper rebuilt around it."""
    import lightgbm
    import numpy as np

    cls = _class(str(meta.get("lightgbm_class", "")))
    booster = lightgbm.Booster(model_file=folder / _FILE)
    if cls is lightgbm.Booster or issubclass(cls, lightgbm.Booster):
        return booster
    model: Any = cls(**json.loads((folder / _PARAMS).read_text()))
    model._Booster = booster
    model._n_features = model._n_features_in = booster.num_feature()
    model._objective = meta.get("objective")
    model._fitted_with_feature_names = bool(meta.get("feature_names"))
    model.fitted_ = True
    if isinstance(model, lightgbm.LGBMClassifier):
        from lightgbm.sklearn import _LGBMLabelEncoder

        classes = np.load(folder / _CLASSES, allow_pickle=False)
        model._le = _LGBMLabelEncoder().fit(classes)
        model._classes = model._le.classes_
        model._n_classes = len(classes)
        model._class_map = dict(zip(classes, model._le.transform(classes), strict=True))
    return model
