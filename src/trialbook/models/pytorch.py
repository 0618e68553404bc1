"""The ``pytorch`` flavour: a ``torch.nn.Module``'s ``state_dict`` as safetensors.

Only the weights are saved, never the module's code: loading needs the module's class.
``load_model(..., model=MyNet())`` fills that module (``load_state_dict``, strict) and returns
it; without ``model=`` the ``state_dict`` itself (name -> tensor) is returned. ``model.json``
names the class (``class``) so you know which one to build.

Examples
--------
(torch is optional: the round trip itself is ``tests/test_models.py``)

>>> NAME, PACKAGES[0]
('pytorch', 'torch')
"""

from __future__ import annotations

import pathlib
from typing import Any

from trialbook.errors import ConfigError
from trialbook.extras import missing_extra
from trialbook.models.flavour import LoadOptions, SaveOptions

__all__ = ["NAME", "PACKAGES", "handles", "load", "save"]

NAME = "pytorch"
PACKAGES = ("torch", "safetensors", "numpy")
_FILE = "model.safetensors"


def _safetensors() -> Any:
    try:
        import safetensors.torch
    except ImportError as exc:
        error = missing_extra(exc, "saving a PyTorch model", "models")
        raise error from exc  # type: ignore[misc]
    return safetensors.torch


def handles(model: Any) -> bool:
    """Whether ``model`` is a ``torch.nn.Module``."""
    import torch

    return isinstance(model, torch.nn.Module)


def save(model: Any, folder: pathlib.Path, options: SaveOptions) -> dict[str, Any]:
    """Write the module's ``state_dict`` (each tensor copied: shared ones are stored apart)."""
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    _safetensors().save_file(state, str(folder / _FILE))
    return {"files": [_FILE], "tensors": {k: list(v.shape) for k, v in sorted(state.items())}}


def load(folder: pathlib.Path, meta: dict[str, Any], options: LoadOptions) -> Any:
    """The ``state_dict``, or ``options.model`` filled with it."""
    state = _safetensors().load_file(str(folder / _FILE))
    if options.model is None:
        return state
    if not handles(options.model):
        msg = (
            f"model= takes the torch.nn.Module to fill with the saved weights (a new "
            f"{meta.get('class', 'module')}), got {options.model!r} that is a "
            f"{type(options.model)}"
        )
        raise ConfigError(msg)
    options.model.load_state_dict(state)
    return options.model
