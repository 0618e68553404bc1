"""The ``sklearn`` flavour: scikit-learn estimators and pipelines, through skops.

:func:`skops.io.dump` writes the estimator without pickle; loading rebuilds only the types
skops trusts by default. Any other type (a custom transformer, a tree's inner ``Tree``...) is
refused, naming it, unless the caller trusts it by name: ``log_model(...,
trusted=["mymodule.MyScaler"])`` and the same ``trusted=`` to ``load_model``.

Examples
--------
>>> import pathlib, tempfile
>>> import numpy as np
>>> from sklearn.linear_model import LinearRegression
>>> from trialbook.models.flavour import LoadOptions, SaveOptions
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> model = LinearRegression().fit(np.array([[0.0], [1.0]]), np.array([1.0, 3.0]))
>>> save(model, folder, SaveOptions())
{'files': ['model.skops'], 'trusted': []}
>>> load(folder, {}, LoadOptions()).predict(np.array([[2.0]]))
array([5.])
"""

from __future__ import annotations

import pathlib
from typing import Any

from trialbook.errors import CodecError
from trialbook.extras import missing_extra
from trialbook.models.flavour import LoadOptions, SaveOptions

__all__ = ["NAME", "PACKAGES", "handles", "load", "save"]

NAME = "sklearn"
PACKAGES = ("scikit-learn", "skops", "numpy", "scipy")
_FILE = "model.skops"


def _skops() -> Any:
    try:
        import skops.io
    except ImportError as exc:
        error = missing_extra(exc, "saving a scikit-learn model", "models")
        raise error from exc  # type: ignore[misc]
    return skops.io


def handles(model: Any) -> bool:
    """Whether ``model`` is a scikit-learn estimator (a pipeline, a search...)."""
    from sklearn.base import BaseEstimator

    return isinstance(model, BaseEstimator)


def _refuse(untrusted: list[str], doing: str) -> None:
    listed = ", ".join(untrusted)
    msg = (
        f"{doing} needs types that skops does not trust by default: {listed}. If you trust "
        f"them, pass trusted={untrusted!r} (to log_model and to load_model)"
    )
    raise CodecError(msg)


def save(model: Any, folder: pathlib.Path, options: SaveOptions) -> dict[str, Any]:
    """Dump ``model`` with skops; refuse types not trusted (named in the error)."""
    sio = _skops()
    data = sio.dumps(model)
    untrusted = sorted(set(sio.get_untrusted_types(data=data)) - set(options.trusted))
    if untrusted:
        _refuse(untrusted, f"saving {type(model).__name__} with skops")
    (folder / _FILE).write_bytes(data)
    return {"files": [_FILE], "trusted": sorted(options.trusted)}


def load(folder: pathlib.Path, meta: dict[str, Any], options: LoadOptions) -> Any:
    """Load the skops file, trusting the default types and ``options.trusted``."""
    sio = _skops()
    path = folder / _FILE
    untrusted = sorted(set(sio.get_untrusted_types(file=path)) - set(options.trusted))
    if untrusted:
        _refuse(untrusted, f"loading {meta.get('class', 'the model')}")
    return sio.load(path, trusted=sorted(set(sio.get_untrusted_types(file=path))))
