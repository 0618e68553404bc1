"""A run's artifacts as the UI shows them: a tree of files with sizes, media types and digests,
safe file paths inside folder artifacts, download headers and model descriptions. Pure
functions over a store (no web framework here); previews are in :mod:`trialbook.web.previews`.

Examples
--------
>>> from trialbook.storage import open_store
>>> from trialbook.storage.artifacts import log_artifact
>>> with open_store("sqlite:///:memory:") as store:
...     e = store.create_experiment("doc_files").id
...     _ = log_artifact(store, e, 1, b"hi", name="notes.txt")
...     [(a["name"], a["size"], a["media_type"]) for a in artifact_tree(store, e, 1)]
[('notes.txt', 2, 'text/plain')]
"""

from __future__ import annotations

import json
import mimetypes
import re
import urllib.parse
from typing import Any

from trialbook.errors import ConfigError, NotFoundError
from trialbook.storage.artifacts import (
    CHUNK,
    MANIFEST,
    list_artifacts,
    read_manifest,
    require_manifest,
)

__all__ = [
    "MODEL_FILE",
    "artifact_tree",
    "check_path",
    "disposition",
    "file_entry",
    "load_code",
    "media_type",
    "model_info",
    "stored_values",
]

MODEL_FILE = "model.json"
"""A folder artifact holding this file at its root is a model."""
MODEL_JSON_LIMIT = 64 * 1024
"""Bytes of a ``model.json`` read at most."""
_EXTRA_TYPES = {
    ".log": "text/plain",
    ".out": "text/plain",
    ".err": "text/plain",
    ".md": "text/markdown",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".jsonl": "application/x-ndjson",
    ".parquet": "application/vnd.apache.parquet",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}


def media_type(path: str, stored: str | None = None) -> str:
    """The media type of a file named ``path``: ``stored`` if it says more than "bytes",
    else from the extension (with log, CSV, Parquet, YAML... that :mod:`mimetypes` may miss).

    Examples
    --------
    >>> media_type("logs/train.log"), media_type("t.parquet"), media_type("x.bin")
    ('text/plain', 'application/vnd.apache.parquet', 'application/octet-stream')
    """
    if stored and stored != "application/octet-stream":
        return stored
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if suffix in _EXTRA_TYPES:
        return _EXTRA_TYPES[suffix]
    return mimetypes.guess_type(path, strict=False)[0] or "application/octet-stream"


def stored_values(store: Any, experiment_id: int, run_id: int) -> dict[str, int]:
    """The run's named values other than artifacts (graph outputs ``persist/...``, values
    written by name): name -> bytes. The manifests and pieces of artifacts are internal and
    left out (the artifact tree shows them).

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> from trialbook.storage.artifacts import log_artifact
    >>> with open_store("sqlite:///:memory:") as store:
    ...     e = store.create_experiment("doc_values").id
    ...     _ = log_artifact(store, e, 1, b"hi", name="notes.txt")
    ...     stored_values(store, e, 1)
    {}
    """
    values = store.list_artifacts(experiment_id, run_id)
    return {name: size for name, size in values.items() if not name.startswith((MANIFEST, CHUNK))}


def check_path(path: Any) -> str | None:
    """A file path inside a folder artifact, checked: relative, ``/``-separated, without
    ``..`` or ``.`` segments, backslashes or control characters; ``None`` or ``""`` give
    ``None`` (the artifact itself).

    Raises
    ------
    ConfigError
        For any other path (the web API answers 400).

    Examples
    --------
    >>> check_path("plots/loss curve.png"), check_path("")
    ('plots/loss curve.png', None)
    >>> check_path("../secret")
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: path '../secret' must be a relative path inside the artifact...
    """
    if path is None or path == "":
        return None
    parts = path.split("/") if isinstance(path, str) else []
    bad = (
        not parts
        or any(p in ("", ".", "..") for p in parts)
        or "\\" in path
        or re.search(r"[\x00-\x1f\x7f]", path)
    )
    if bad:
        msg = (
            f"path {path!r} must be a relative path inside the artifact, such as "
            f"'plots/loss.png' (no '..', '.', empty segments, leading '/' or backslashes); "
            f"the files route lists the paths there are"
        )
        raise ConfigError(msg)
    return str(path)


def file_entry(
    store: Any, experiment_id: int, run_id: int, name: str, path: str | None
) -> dict[str, Any]:
    """The file an artifact (or its file ``path``, for a folder) stands for: name, path,
    size, media type, digest.

    Raises
    ------
    NotFoundError
        If there is no such artifact or file; a folder without ``path``.
    ConfigError
        If ``path`` is not a safe relative path (see :func:`check_path`).

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> from trialbook.storage.artifacts import log_artifact
    >>> with open_store("sqlite:///:memory:") as store:
    ...     e = store.create_experiment("doc_entry").id
    ...     _ = log_artifact(store, e, 1, b"{}", name="c.json")
    ...     file_entry(store, e, 1, "c.json", None)["media_type"]
    'application/json'
    """
    path = check_path(path)
    manifest = require_manifest(store, experiment_id, run_id, name)
    if manifest["kind"] != "folder":
        if path is not None:
            msg = f"artifact {name!r} of run {run_id} is a file, not a folder: leave path out"
            raise NotFoundError(msg)
        return {
            "name": name, "path": None, "size": manifest["size"],
            "media_type": media_type(name, manifest.get("media_type")),
            "digest": manifest["digest"],
        }  # fmt: skip
    files = {f["path"]: f for f in manifest["files"]}
    if path is None or path not in files:
        listed = ", ".join(map(repr, list(files)[:20])) or "none"
        msg = f"folder artifact {name!r} of run {run_id} has no file {path!r} (its files: {listed})"
        raise NotFoundError(msg)
    part = files[path]
    return {
        "name": name, "path": path, "size": part["size"], "media_type": media_type(path),
        "digest": part["digest"],
    }  # fmt: skip


def _folder_tree(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nested nodes of a folder artifact's files: folders first, then files, by name."""
    root: dict[str, Any] = {"children": {}}
    for part in files:
        *dirs, leaf = part["path"].split("/")
        node = root
        for i, d in enumerate(dirs):
            node = node["children"].setdefault(
                d, {"type": "folder", "name": d, "path": "/".join(dirs[: i + 1]),
                    "size": 0, "children": {}},
            )  # fmt: skip
            node["size"] += part["size"]
        node["children"][leaf] = {
            "type": "file", "name": leaf, "path": part["path"], "size": part["size"],
            "media_type": media_type(part["path"]), "digest": part["digest"],
        }  # fmt: skip
    return _listed(root["children"])


def _listed(children: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = sorted(children.values(), key=lambda n: (n["type"] != "folder", n["name"]))
    for node in nodes:
        if node["type"] == "folder":
            node["children"] = _listed(node["children"])
    return nodes


def artifact_tree(store: Any, experiment_id: int, run_id: int) -> list[dict[str, Any]]:
    """The run's artifacts, sorted by name: name, kind (``file``, ``bytes``, ``folder``),
    size, media type, digest; a folder's ``children`` (nested folders and files, each with
    path, size, media type, digest) and ``model`` (:func:`model_info`, or ``None``).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from trialbook.storage import open_store
    >>> from trialbook.storage.artifacts import log_artifact
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "out"
    >>> (folder / "plots").mkdir(parents=True)
    >>> _ = (folder / "plots" / "a.png").write_bytes(b"png"), (folder / "r.txt").write_text("r")
    >>> with open_store("sqlite:///:memory:") as store:
    ...     e = store.create_experiment("doc_tree").id
    ...     _ = log_artifact(store, e, 1, folder)
    ...     [tree] = artifact_tree(store, e, 1)
    >>> [(n["type"], n["path"], n["size"]) for n in tree["children"]]
    [('folder', 'plots', 3), ('file', 'r.txt', 1)]
    """
    out = []
    for name in list_artifacts(store, experiment_id, run_id):
        manifest = read_manifest(store, experiment_id, run_id, name)
        if manifest is None:  # replaced meanwhile
            continue
        entry: dict[str, Any] = {
            "name": name, "kind": manifest["kind"], "size": manifest["size"],
            "media_type": media_type(name, manifest.get("media_type")),
            "digest": manifest["digest"],
        }  # fmt: skip
        if manifest["kind"] == "folder":
            entry["children"] = _folder_tree(manifest["files"])
            entry["model"] = model_info(store, experiment_id, run_id, name, manifest)
        out.append(entry)
    return out


def model_info(
    store: Any, experiment_id: int, run_id: int, name: str, manifest: dict[str, Any]
) -> dict[str, Any] | None:
    """What the ``model.json`` of a folder artifact says: flavour, class, versions (of
    Python and of the libraries it names under ``requirements`` or ``versions``), or ``None``
    if it has none. Read defensively: at most :data:`MODEL_JSON_LIMIT` bytes; a file that is
    not a JSON object gives an ``error`` instead of failing the page."""
    files = {f["path"]: f for f in manifest.get("files", [])}
    if MODEL_FILE not in files:
        return None
    if files[MODEL_FILE]["size"] > MODEL_JSON_LIMIT:
        return {"error": f"{MODEL_FILE} is over {MODEL_JSON_LIMIT} bytes: not read"}
    from trialbook.storage.artifacts import iter_artifact

    try:
        data = b"".join(iter_artifact(store, experiment_id, run_id, name, path=MODEL_FILE))
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        return {"error": f"{MODEL_FILE} is not valid JSON: {exc}"}
    if not isinstance(doc, dict):
        return {"error": f"{MODEL_FILE} holds a {type(doc).__name__}, not a JSON object"}
    flavour = doc.get("flavour", doc.get("flavor"))
    versions: dict[str, str] = {}
    if isinstance(doc.get("python"), str):
        versions["python"] = doc["python"]
    for key in ("requirements", "versions"):
        if isinstance(doc.get(key), dict):
            versions.update({str(k): str(v) for k, v in doc[key].items()})
    return {
        "flavour": flavour if isinstance(flavour, str) else None,
        "class": doc["class"] if isinstance(doc.get("class"), str) else None,
        "versions": versions,
    }


def load_code(experiment: str, run_id: int, name: str) -> str:
    """The line of Python that loads the model artifact ``name`` of a run (in the URI, ``%``
    is written ``%25`` and a ``/`` of the artifact's name ``%2F``: each part is decoded).

    Examples
    --------
    >>> load_code("mnist", 3, "net")
    'trialbook.load_model("trialbook:mnist/3/net")'
    >>> load_code("team/fit", 1, "nets/best")
    'trialbook.load_model("trialbook:team/fit/1/nets%2Fbest")'
    """
    experiment = experiment.replace("%", "%25")
    name = name.replace("%", "%25").replace("/", "%2F")
    uri = f"trialbook:{experiment}/{run_id}/{name}"
    return f"trialbook.load_model({json.dumps(uri, ensure_ascii=False)})"


def disposition(filename: str, *, inline: bool = False) -> str:
    """A ``Content-Disposition`` value for ``filename``: an ASCII fallback without quotes,
    slashes or control characters, and the exact name in UTF-8 (RFC 6266 ``filename*``).

    Examples
    --------
    >>> disposition('a/b "c".txt')
    'attachment; filename="a_b _c_.txt"; filename*=UTF-8\\'\\'a_b%20%22c%22.txt'
    >>> disposition("é.png", inline=True)
    'inline; filename="_.png"; filename*=UTF-8\\'\\'%C3%A9.png'
    """
    exact = re.sub(r"[/\\\x00-\x1f\x7f]", "_", filename) or "download"
    fallback = re.sub(r'[^\x20-\x7e]|["\\%;]', "_", exact)
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{urllib.parse.quote(exact)}"
