"""The ``pickle`` flavour: any model, through joblib, only where the store allows pickle.

Loading a pickle runs code from the store, so both saving and loading need the store's
``allow_pickle`` opt-in (``create_session(..., allow_pickle=True)``); without it the model is
refused with a :class:`~trialbook.errors.CodecError` naming its type and the safe flavours.

Examples
--------
>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> from trialbook.models.flavour import LoadOptions, SaveOptions
>>> save({"w": 1}, folder, SaveOptions())
Traceback (most recent call last):
...
trialbook.errors.CodecError: a model of type <class 'dict'> has no safe flavour ...
>>> save({"w": 1}, folder, SaveOptions(allow_pickle=True))
{'files': ['model.joblib']}
>>> load(folder, {}, LoadOptions(allow_pickle=True))
{'w': 1}
"""

from __future__ import annotations

import pathlib
from typing import Any

from trialbook.errors import CodecError
from trialbook.models.flavour import LoadOptions, SaveOptions

__all__ = ["NAME", "PACKAGES", "handles", "load", "save"]

NAME = "pickle"
PACKAGES = ("joblib", "cloudpickle")
_FILE = "model.joblib"
SAFE = (
    "scikit-learn estimators (skops), XGBoost and LightGBM models (their own files), "
    "PyTorch modules (state_dict as safetensors)"
)
"""What is saved without pickle."""


def handles(model: Any) -> bool:
    """Every model (the last resort)."""
    return True


def save(model: Any, folder: pathlib.Path, options: SaveOptions) -> dict[str, Any]:
    """Dump ``model`` with joblib; refused unless the store allows pickle."""
    if not options.allow_pickle:
        msg = (
            f"a model of type {type(model)} has no safe flavour (safe: {SAFE}); saving it "
            "needs pickle: open the store with allow_pickle=True if you trust whoever reads "
            "it, or convert the model to one of the safe kinds"
        )
        raise CodecError(msg)
    import joblib

    joblib.dump(model, folder / _FILE)
    return {"files": [_FILE]}


def load(folder: pathlib.Path, meta: dict[str, Any], options: LoadOptions) -> Any:
    """Load the joblib dump; refused unless the store allows pickle."""
    if not options.allow_pickle:
        msg = (
            f"the model of class {meta.get('class', '?')} was saved with pickle: loading it "
            "runs code taken from the store; if you trust this store, open it with "
            "allow_pickle=True"
        )
        raise CodecError(msg)
    import joblib

    return joblib.load(folder / _FILE)
