"""A model as a folder: its files, written by its flavour, and ``model.json``.

``model.json`` records the flavour, the model's class, the Python, trialbook and library
versions it was saved with, and, when one is given, an input example (stored next to it with
a safe codec: ``.npy`` for an array, Arrow IPC for a DataFrame, JSON for plain values) with
its shape and dtypes.

Examples
--------
>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> meta = save_model({"w": [1, 2]}, folder, SaveOptions(allow_pickle=True),
...                   input_example={"x": 1})
>>> meta["flavour"], meta["input_example"]["codec"], sorted(p.name for p in folder.iterdir())
('pickle', 'json', ['input_example.json', 'model.joblib', 'model.json'])
>>> load_model(folder, LoadOptions(allow_pickle=True))
{'w': [1, 2]}
>>> load_input_example(folder)
{'x': 1}
"""

from __future__ import annotations

import importlib.metadata
import json
import pathlib
import platform
from typing import Any

from trialbook.codecs import Encoded, decode, encode
from trialbook.errors import ConfigError, NotFoundError
from trialbook.models.flavour import LoadOptions, SaveOptions, detect, flavour

__all__ = ["META", "load_input_example", "load_model", "read_meta", "save_model"]

META = "model.json"
"""The description of a saved model, in its folder."""
FORMAT = 1
_EXAMPLE = "input_example"


def _versions(packages: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for package in packages:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _class_name(model: Any) -> str:
    cls = type(model)
    return f"{cls.__module__}.{cls.__qualname__}"


def describe_example(value: Any) -> dict[str, Any]:
    """Shape and dtypes of an input example, when cheap to tell.

    Examples
    --------
    >>> import numpy as np
    >>> describe_example(np.zeros((2, 3), dtype="float32"))
    {'type': 'ndarray', 'shape': [2, 3], 'dtype': 'float32'}
    >>> describe_example({"a": 1})
    {'type': 'dict', 'keys': ['a']}
    """
    kind = type(value).__name__
    if kind == "ndarray":
        return {"type": kind, "shape": list(value.shape), "dtype": str(value.dtype)}
    if kind == "DataFrame":
        dtypes = {str(c): str(t) for c, t in value.dtypes.items()}
        return {"type": kind, "shape": list(value.shape), "dtypes": dtypes}
    if isinstance(value, dict):
        return {"type": "dict", "keys": [str(k) for k in value]}
    if isinstance(value, list | tuple):
        return {"type": kind, "length": len(value)}
    return {"type": kind}


def _save_example(value: Any, folder: pathlib.Path) -> dict[str, Any]:
    encoded = encode(value)  # safe codecs only: refuses what would need pickle
    if not isinstance(encoded, Encoded):
        encoded = Encoded("json", json.dumps(encoded).encode())
    suffix = {"npy": "npy", "arrow": "arrow"}.get(encoded.codec, "json")
    path = folder / f"{_EXAMPLE}.{suffix}"
    path.write_bytes(encoded.data)
    return {"file": path.name, "codec": encoded.codec, **describe_example(value)}


def save_model(
    model: Any, folder: pathlib.Path, options: SaveOptions, *, input_example: Any = None
) -> dict[str, Any]:
    """Write ``model`` (its files, ``model.json`` and the input example) into ``folder``;
    return the content of ``model.json``.

    Raises
    ------
    CodecError
        If the model needs pickle and the store does not allow it, or the input example
        has no safe codec.
    """
    module = detect(model)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "flavour": module.NAME,
        "class": _class_name(model),
        "python": platform.python_version(),
    }
    meta.update(module.save(model, folder, options))
    meta["requirements"] = _versions(("trialbook", *module.PACKAGES))
    if input_example is not None:
        meta["input_example"] = _save_example(input_example, folder)
    (folder / META).write_text(json.dumps(meta, indent=1, sort_keys=True))
    return meta


def read_meta(folder: pathlib.Path) -> dict[str, Any]:
    """The content of ``model.json`` in ``folder``."""
    path = folder / META
    if not path.is_file():
        msg = (
            f"{str(folder)!r} holds no {META}: it is not a model logged with log_model "
            "(use open_artifact/download_artifact for other artifacts)"
        )
        raise NotFoundError(msg)
    meta: dict[str, Any] = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        msg = f"{META} of format {meta.get('format')!r}: this trialbook reads format {FORMAT}"
        raise ConfigError(msg)
    return meta


def load_model(folder: pathlib.Path, options: LoadOptions) -> Any:
    """The model saved in ``folder`` (see :func:`save_model`)."""
    meta = read_meta(folder)
    return flavour(meta["flavour"]).load(folder, meta, options)


def load_input_example(folder: pathlib.Path) -> Any:
    """The input example saved with the model in ``folder``, or ``None``."""
    info = read_meta(folder).get("input_example")
    if info is None:
        return None
    data = (folder / info["file"]).read_bytes()
    if info["codec"] == "json" and info["file"].endswith(".json"):
        return json.loads(data)
    return decode(Encoded(info["codec"], data))
