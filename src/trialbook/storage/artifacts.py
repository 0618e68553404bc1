"""Files, folders and byte strings of a run, streamed in content-addressed chunks.

Built on the named binary values every store already keeps per run
(:meth:`~trialbook.storage.Store.write_artifact`), so it works unchanged on every backend:

* a file is read :data:`CHUNK_SIZE` bytes at a time; each piece is written as the run's value
  ``artifact-chunk/<sha256 of the piece>`` (a piece the run already holds is not written
  again). A piece over 256 KiB lands in the store's content-addressed blob area (blob files of
  the embedded store, the blob table or keys of a server backend), so the same bytes logged by
  two runs or two experiments are kept once there, and ``trialbook gc`` / ``trialbook check``
  see them like any other artifact blob;
* once every piece is in, a small JSON *manifest* is written as the value
  ``artifact/<name>``: kind (``file``, ``folder``, ``bytes``), size, media type, SHA-256 of the
  whole and its pieces in order (for a folder: its files, each with their pieces). A reader
  never sees a manifest whose pieces are not there yet; a crash before the manifest leaves
  pieces that belong to nothing visible (they go with the run);
* reading streams the pieces back one at a time (:func:`open_artifact`,
  :func:`download_artifact`), each checked against its SHA-256: a damaged or missing one raises
  :class:`~trialbook.errors.CorruptStoreError` naming the run and the artifact.

Memory stays bounded by a few pieces whatever the size of the file. Replacing an artifact
empties the pieces no other artifact of the run uses, so their blobs become garbage.

Examples
--------
>>> from trialbook.storage import open_store
>>> with open_store("sqlite:///:memory:") as store:
...     e = store.create_experiment("doc_artifacts").id
...     info = log_artifact(store, e, 1, b"weights", name="model.bin")
...     print(info.size, info.media_type, list_artifacts(store, e, 1))
...     print(open_artifact(store, e, 1, "model.bin").read())
7 application/octet-stream ['model.bin']
b'weights'
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import mimetypes
import os
import pathlib
from collections.abc import Iterator
from typing import Any

from trialbook.codecs import Encoded
from trialbook.errors import ConfigError, CorruptStoreError, NotFoundError
from trialbook.storage.base import Store

__all__ = [
    "CHUNK_SIZE",
    "ArtifactInfo",
    "describe_artifact",
    "download_artifact",
    "iter_artifact",
    "list_artifacts",
    "log_artifact",
    "open_artifact",
    "read_manifest",
    "require_manifest",
]

CHUNK_SIZE = 8 * 1024 * 1024
"""Bytes per stored piece of an artifact: what one write or read holds in memory."""
MANIFEST = "artifact/"
"""Prefix of the run values holding artifact manifests."""
CHUNK = "artifact-chunk/"
"""Prefix of the run values holding artifact pieces, named by their SHA-256."""
_CODEC = "bytes"


@dataclasses.dataclass(frozen=True)
class ArtifactInfo:
    """What a run holds under an artifact name.

    Examples
    --------
    >>> info = ArtifactInfo("model.bin", 7, "application/octet-stream", "ab12", "bytes")
    >>> info.size, info.kind
    (7, 'bytes')
    """

    name: str
    size: int
    """Bytes (of every file, for a folder)."""
    media_type: str
    """From the name's extension (:mod:`mimetypes`); ``inode/directory`` for a folder."""
    digest: str
    """SHA-256 of the bytes (for a folder: of its listing of relative paths and file digests)."""
    kind: str
    """``file``, ``folder`` or ``bytes``."""


def _media_type(name: str) -> str:
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name or name != name.strip():
        msg = (
            f"an artifact name must be a non-empty text without surrounding spaces, such as "
            f"'model.pt' (got {name!r} that is a {type(name)})"
        )
        raise ConfigError(msg)
    return name


def artifact_name(source: Any, name: str | None) -> str:
    """The name ``source`` is logged under: ``name``, else the file's or folder's name.

    Examples
    --------
    >>> artifact_name("out/model.pt", None), artifact_name(b"x", "w.bin")
    ('model.pt', 'w.bin')
    >>> artifact_name(b"x", None)
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: bytes need a name: log_artifact(data, name='model.bin') ...
    """
    if name is not None:
        return _check_name(name)
    if isinstance(source, bytes | bytearray | memoryview):
        msg = (
            "bytes need a name: log_artifact(data, name='model.bin') (a file or folder is "
            "named after itself)"
        )
        raise ConfigError(msg)
    if isinstance(source, str | os.PathLike):
        return _check_name(pathlib.Path(source).resolve().name)
    msg = (
        f"log_artifact takes a path (str or pathlib.Path) to a file or folder, or bytes "
        f"(got {source!r} that is a {type(source)})"
    )
    raise ConfigError(msg)


# -- writing ----------------------------------------------------------------------------------


class _Writer:
    """Writes the pieces of one artifact of a run, skipping those the run already holds."""

    def __init__(
        self, store: Store | None, experiment_id: int, run_id: int, chunk_size: int
    ) -> None:
        self.store, self.experiment_id, self.run_id = store, experiment_id, run_id
        self.chunk_size = chunk_size
        held = store.list_artifacts(experiment_id, run_id) if store is not None else {}
        self.held = {n for n, size in held.items() if n.startswith(CHUNK) and size}

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if self.store is not None and CHUNK + digest not in self.held:
            self.store.write_artifact(
                self.experiment_id, self.run_id, CHUNK + digest, Encoded(_CODEC, data)
            )
            self.held.add(CHUNK + digest)
        return digest

    def stream(self, read: Any) -> dict[str, Any]:
        """Pieces of what ``read(n)`` returns, until it returns nothing: size, digest, pieces."""
        whole, size, chunks = hashlib.sha256(), 0, []
        while True:
            data = read(self.chunk_size)
            if not data:
                break
            whole.update(data)
            size += len(data)
            chunks.append([self.put(data), len(data)])
        return {"size": size, "digest": whole.hexdigest(), "chunks": chunks}


def _file_part(writer: _Writer, path: pathlib.Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        return writer.stream(f.read)


def log_artifact(
    store: Store,
    experiment_id: int,
    run_id: int,
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    name: str | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> ArtifactInfo:
    """Store a file, a folder (every file under it) or bytes as the artifact ``name`` of a run
    (default: the file's or folder's name), replacing one of that name; return its info.
    ``chunk_size``: bytes per stored piece (what the write holds in memory).

    Raises
    ------
    ConfigError
        If bytes come without a name, or ``source`` is neither bytes nor a path.
    FileNotFoundError
        If the path does not exist.
    ExperimentNotFoundError
        If the experiment no longer exists.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from trialbook.storage import open_store
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> (folder / "a.txt").write_text("hello")
    5
    >>> with open_store("sqlite:///:memory:") as store:
    ...     e = store.create_experiment("doc_log_artifact").id
    ...     log_artifact(store, e, 1, folder / "a.txt")
    ArtifactInfo(name='a.txt', size=5, media_type='text/plain', digest='2cf24dba...', kind='file')
    """
    name = artifact_name(source, name)
    manifest = _build(_Writer(store, experiment_id, run_id, chunk_size), source, name)
    old = read_manifest(store, experiment_id, run_id, name)
    data = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
    store.write_artifact(experiment_id, run_id, MANIFEST + name, Encoded("json", data))
    if old is not None:
        _release(store, experiment_id, run_id, _chunk_digests(old) - _chunk_digests(manifest))
    return _info(manifest)


def describe_artifact(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview, *, name: str | None = None
) -> ArtifactInfo:
    """The :class:`ArtifactInfo` that :func:`log_artifact` would return, reading ``source``
    without storing it (what a run not yet in a store shows for an artifact it holds back).

    Examples
    --------
    >>> info = describe_artifact(b"abc", name="x.json")
    >>> info.size, info.media_type, info.digest[:12]
    (3, 'application/json', 'ba7816bf8f01')
    """
    name = artifact_name(source, name)
    return _info(_build(_Writer(None, 0, 0, CHUNK_SIZE), source, name))


def _build(writer: _Writer, source: Any, name: str) -> dict[str, Any]:
    """The manifest of ``source``, its pieces written by ``writer``."""
    manifest: dict[str, Any]
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source)
        offset = [0]

        def read(n: int) -> bytes:
            data = bytes(view[offset[0] : offset[0] + n])
            offset[0] += len(data)
            return data

        manifest = {"kind": "bytes", **writer.stream(read), "media_type": _media_type(name)}
    else:
        path = pathlib.Path(source)
        if path.is_dir():
            manifest = _folder_manifest(writer, path)
        elif path.exists():
            manifest = {"kind": "file", **_file_part(writer, path), "media_type": _media_type(name)}
        else:
            msg = f"no file or folder {str(path)!r} to log as artifact {name!r}"
            raise FileNotFoundError(msg)
    manifest["name"] = name
    return manifest


def _folder_manifest(writer: _Writer, root: pathlib.Path) -> dict[str, Any]:
    files = []
    listing = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        part = _file_part(writer, path)
        files.append({"path": rel, **part})
        listing.update(f"{part['digest']}  {rel}\n".encode())
    return {
        "kind": "folder",
        "size": sum(f["size"] for f in files),
        "digest": listing.hexdigest(),
        "media_type": "inode/directory",
        "files": files,
    }


def _chunk_digests(manifest: dict[str, Any]) -> set[str]:
    parts = manifest.get("files") or [manifest]
    return {digest for part in parts for digest, _ in part["chunks"]}


def _release(store: Store, experiment_id: int, run_id: int, digests: set[str]) -> None:
    """Empty the pieces of ``digests`` that no artifact of the run still uses (a store cannot
    delete one value of a run; an empty one frees its blob for the garbage collection)."""
    if not digests:
        return
    for name in list_artifacts(store, experiment_id, run_id):
        manifest = read_manifest(store, experiment_id, run_id, name)
        if manifest is not None:
            digests -= _chunk_digests(manifest)
    for digest in sorted(digests):
        store.write_artifact(experiment_id, run_id, CHUNK + digest, Encoded(_CODEC, b""))


# -- reading ----------------------------------------------------------------------------------


def _info(manifest: dict[str, Any]) -> ArtifactInfo:
    return ArtifactInfo(
        manifest["name"], manifest["size"], manifest["media_type"], manifest["digest"],
        manifest["kind"],
    )  # fmt: skip


def list_artifacts(store: Store, experiment_id: int, run_id: int) -> list[str]:
    """The names of a run's artifacts, sorted.

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> with open_store("sqlite:///:memory:") as store:
    ...     e = store.create_experiment("doc_list_artifacts").id
    ...     _ = log_artifact(store, e, 1, b"1", name="b"), log_artifact(store, e, 1, b"2", name="a")
    ...     list_artifacts(store, e, 1)
    ['a', 'b']
    """
    names = store.list_artifacts(experiment_id, run_id)
    return sorted(n[len(MANIFEST) :] for n in names if n.startswith(MANIFEST))


def read_manifest(
    store: Store, experiment_id: int, run_id: int, name: str
) -> dict[str, Any] | None:
    """The manifest of an artifact (kind, size, digest, pieces...), or ``None``.

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> with open_store("sqlite:///:memory:") as store:
    ...     e = store.create_experiment("doc_read_manifest").id
    ...     _ = log_artifact(store, e, 1, b"abc", name="x")
    ...     read_manifest(store, e, 1, "x")["chunks"][0][1]
    3
    """
    value = store.read_artifact(experiment_id, run_id, MANIFEST + name)
    if value is None:
        return None
    manifest: dict[str, Any] = json.loads(value.data)
    return manifest


def artifact_info(store: Store, experiment_id: int, run_id: int, name: str) -> ArtifactInfo:
    """The :class:`ArtifactInfo` of an artifact; ``NotFoundError`` naming the ones there are."""
    return _info(require_manifest(store, experiment_id, run_id, name))


def require_manifest(store: Store, experiment_id: int, run_id: int, name: str) -> dict[str, Any]:
    """The manifest of artifact ``name``; ``NotFoundError`` naming the run's artifacts."""
    manifest = read_manifest(store, experiment_id, run_id, name)
    if manifest is None:
        names = ", ".join(map(repr, list_artifacts(store, experiment_id, run_id))) or "none"
        msg = f"run {run_id} has no artifact {name!r} (its artifacts: {names})"
        raise NotFoundError(msg)
    return manifest


def _pieces(
    store: Store, experiment_id: int, run_id: int, name: str, chunks: list[list[Any]]
) -> Iterator[bytes]:
    field = f"artifact {name!r}"
    for digest, size in chunks:
        try:
            value = store.read_artifact(experiment_id, run_id, CHUNK + digest)
        except CorruptStoreError as exc:
            exc.run_id, exc.field = run_id, field
            raise
        if value is None:
            raise CorruptStoreError(
                "its piece is missing from the store", blob=digest, run_id=run_id, field=field
            )
        data = value.data
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest or len(data) != size:
            problem = (
                f"its piece of {size} bytes reads as {len(data)} bytes hashing to "
                f"{actual[:12]}...: it changed after it was written"
            )
            raise CorruptStoreError(problem, blob=digest, run_id=run_id, field=field)
        yield data


def iter_artifact(
    store: Store, experiment_id: int, run_id: int, name: str, *, path: str | None = None
) -> Iterator[bytes]:
    """The bytes of an artifact (of the file ``path`` of a folder artifact), piece by piece,
    each checked against its SHA-256.

    Raises
    ------
    NotFoundError
        If the run has no such artifact, or the folder no such file.
    CorruptStoreError
        If a piece is missing or changed, naming the run and the artifact.
    """
    manifest = require_manifest(store, experiment_id, run_id, name)
    if manifest["kind"] == "folder":
        files = {f["path"]: f for f in manifest["files"]}
        if path not in files:
            listed = ", ".join(map(repr, files)) or "none"
            msg = (
                f"artifact {name!r} of run {run_id} is a folder: name one of its files with "
                f"path= (got {path!r}; its files: {listed}), or download it"
            )
            raise NotFoundError(msg)
        manifest = files[path]
    return _pieces(store, experiment_id, run_id, name, manifest["chunks"])


class _ArtifactFile(io.RawIOBase):
    """A read-only file over an iterator of pieces."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        super().__init__()
        self._pieces, self._buffer, self._pos = pieces, b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while self._pos >= len(self._buffer):
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._buffer, self._pos = piece, 0
        n = min(len(b), len(self._buffer) - self._pos)
        b[:n] = self._buffer[self._pos : self._pos + n]
        self._pos += n
        return n


def open_artifact(
    store: Store, experiment_id: int, run_id: int, name: str, *, path: str | None = None
) -> io.BufferedReader:
    """A binary file reading an artifact (or the file ``path`` of a folder artifact), streamed
    (see :func:`iter_artifact` for errors); close it when done (``with``)."""
    pieces = iter_artifact(store, experiment_id, run_id, name, path=path)
    return io.BufferedReader(_ArtifactFile(pieces), buffer_size=1024 * 1024)


def download_artifact(
    store: Store,
    experiment_id: int,
    run_id: int,
    name: str,
    dest: str | os.PathLike[str],
) -> pathlib.Path:
    """Write an artifact to ``dest``: a file (a folder artifact: a folder with its files);
    return ``dest``. A file is written next to ``dest`` and moved there once complete.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from trialbook.storage import open_store
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "copy.bin"
    >>> with open_store("sqlite:///:memory:") as store:
    ...     e = store.create_experiment("doc_download").id
    ...     _ = log_artifact(store, e, 1, b"abc", name="w.bin")
    ...     download_artifact(store, e, 1, "w.bin", out).read_bytes()
    b'abc'
    """
    dest = pathlib.Path(dest)
    manifest = require_manifest(store, experiment_id, run_id, name)
    if manifest["kind"] != "folder":
        _write_file(_pieces(store, experiment_id, run_id, name, manifest["chunks"]), dest)
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    for part in manifest["files"]:
        target = dest.joinpath(*part["path"].split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_file(_pieces(store, experiment_id, run_id, name, part["chunks"]), target)
    return dest


def _write_file(pieces: Iterator[bytes], dest: pathlib.Path) -> None:
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            for piece in pieces:
                out.write(piece)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
