"""Models logged as folder artifacts of a run, and read back from a store.

A run in a store writes the model's folder at once (from a temporary folder, removed after).
A run whose experiment is not in a store yet (a task job in its worker, an experiment that will
replace a stored one) holds the folder back like any artifact: it is saved in a temporary
folder of the system's temp directory, kept (not removed) so that the process writing the run
later can read it.

Examples
--------
>>> import numpy as np, trialbook
>>> from sklearn.linear_model import LinearRegression
>>> model = LinearRegression().fit(np.array([[0.0], [1.0]]), np.array([1.0, 3.0]))
>>> with trialbook.create_session("sqlite:///:memory:") as session:
...     run, = session.create_experiment("doc_logged").add_runs(x=[1])
...     info = log_model(run, model, "model")
...     print(info.kind, load_logged(run, "model").predict(np.array([[2.0]])))
folder [5.]
"""

from __future__ import annotations

import pathlib
import tempfile
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from trialbook.errors import NotFoundError
from trialbook.models.flavour import LoadOptions, SaveOptions
from trialbook.models.folder import META, load_model, save_model
from trialbook.storage import artifacts as store_artifacts

if TYPE_CHECKING:
    from trialbook.storage.artifacts import ArtifactInfo
    from trialbook.storage.base import Store
    from trialbook.tracking import Run

__all__ = ["list_models", "load_logged", "load_stored", "log_model"]


def log_model(
    run: Run,
    model: Any,
    name: str = "model",
    *,
    input_example: Any = None,
    trusted: Iterable[str] = (),
) -> ArtifactInfo:
    """Save ``model`` in its flavour and log the folder as the artifact ``name`` of ``run``."""
    store = run.artifact_store()
    options = SaveOptions(
        trusted=tuple(trusted), allow_pickle=bool(store is not None and store.allow_pickle)
    )
    if store is None:  # held back: the folder must outlive this call
        folder = pathlib.Path(tempfile.mkdtemp(prefix="trialbook-model-")) / name
        folder.mkdir()
        save_model(model, folder, options, input_example=input_example)
        return run.log_artifact(folder, name=name)
    with tempfile.TemporaryDirectory(prefix="trialbook-model-") as tmp:
        folder = pathlib.Path(tmp)
        save_model(model, folder, options, input_example=input_example)
        return run.log_artifact(folder, name=name)


def load_stored(
    store: Store, experiment_id: int, run_id: int, name: str, options: LoadOptions
) -> Any:
    """The model logged as artifact ``name`` of a run of a store."""
    manifest = store_artifacts.read_manifest(store, experiment_id, run_id, name)
    if manifest is None:  # the error names the artifacts there are
        store_artifacts.artifact_info(store, experiment_id, run_id, name)
    assert manifest is not None
    files = {f["path"] for f in manifest.get("files", ())}
    if manifest["kind"] != "folder" or META not in files:
        msg = (
            f"artifact {name!r} of run {run_id} is not a model (no {META}: it was not logged "
            "with log_model); read it with open_artifact or download_artifact"
        )
        raise NotFoundError(msg)
    with tempfile.TemporaryDirectory(prefix="trialbook-model-") as tmp:
        folder = store_artifacts.download_artifact(
            store, experiment_id, run_id, name, pathlib.Path(tmp) / "model"
        )
        return load_model(folder, options)


def load_logged(
    run: Run, name: str = "model", *, trusted: Iterable[str] = (), model: Any = None
) -> Any:
    """The model ``run`` logged as ``name`` (it must be in the store)."""
    store, experiment_id = run.stored_artifact(name)
    options = LoadOptions(trusted=tuple(trusted), allow_pickle=store.allow_pickle, model=model)
    return load_stored(store, experiment_id, run.id, name, options)


def list_models(run: Run) -> dict[str, dict[str, Any]]:
    """The models of ``run`` by artifact name: the content of each one's ``model.json``
    (flavour, class, requirements...), read without downloading the model."""
    import json

    found: dict[str, dict[str, Any]] = {}
    for name, kept in run.held_artifacts().items():
        meta = pathlib.Path(kept) / META if not isinstance(kept, bytes) else None
        if meta is not None and meta.is_file():
            found[name] = json.loads(meta.read_text())
    store = run.artifact_store()
    if store is not None:
        for name, info in run.artifacts.items():
            if info.kind != "folder" or name in found:
                continue
            _, experiment_id = run.stored_artifact(name)
            manifest = store_artifacts.read_manifest(store, experiment_id, run.id, name)
            if manifest is not None and META in {f["path"] for f in manifest["files"]}:
                with run.open_artifact(name, path=META) as f:
                    found[name] = json.loads(f.read())
    return dict(sorted(found.items()))
