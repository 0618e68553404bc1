"""The artifacts of one :class:`~trialbook.tracking.Run`: written at once, or held back.

A run whose experiment is in a store writes what it logs at once
(:func:`trialbook.storage.artifacts.log_artifact`: streamed, content-addressed). A run of an
experiment not yet persisted (or a task job running in its worker) holds the artifact back:
bytes are copied, a file or folder is remembered by its absolute path and described (size,
digest) at once; the owner writes it when it writes the run (:meth:`RunArtifacts.flush`). A
file changed between the two is refused then (its digest differs), never stored silently.

Examples
--------
>>> from trialbook.tracking import Run
>>> run = Run(1)
>>> run.log_artifact(b"0.93", name="score.txt").size
4
>>> list(run.artifacts), run.artifacts["score.txt"].media_type
(['score.txt'], 'text/plain')
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from typing import Any

from trialbook.errors import ConfigError, NotFoundError
from trialbook.storage import artifacts as store_artifacts
from trialbook.storage.artifacts import ArtifactInfo, artifact_name
from trialbook.storage.base import Store

__all__ = ["ArtifactTarget", "RunArtifacts"]

ArtifactTarget = Callable[[], "tuple[Store, int] | None"]
"""``target() -> (store, experiment id)`` where the run's artifacts go now, or ``None`` while
its experiment is not in a store."""

Source = str | os.PathLike[str] | bytes | bytearray | memoryview


class RunArtifacts:
    """What a run logged with :meth:`~trialbook.tracking.Run.log_artifact`."""

    def __init__(self) -> None:
        self.target: ArtifactTarget | None = None
        self.held: dict[str, tuple[Any, ArtifactInfo]] = {}
        """Artifacts not written yet: name -> (bytes or absolute path, info)."""

    def _where(self) -> tuple[Store, int] | None:
        return self.target() if self.target is not None else None

    def store(self) -> Store | None:
        """The store the run's artifacts go to now, or ``None`` while they are held back."""
        where = self._where()
        return None if where is None else where[0]

    def log(self, run_id: int, source: Source, name: str | None) -> ArtifactInfo:
        """Write ``source`` now if the run's experiment is in a store, else hold it back."""
        name = artifact_name(source, name)
        where = self._where()
        if where is not None:
            self.held.pop(name, None)
            return store_artifacts.log_artifact(where[0], where[1], run_id, source, name=name)
        if isinstance(source, bytes | bytearray | memoryview):
            kept: Any = bytes(source)
        else:
            kept = pathlib.Path(source).resolve()
        info = store_artifacts.describe_artifact(kept, name=name)
        self.held[name] = (kept, info)
        return info

    def flush(self, run_id: int) -> None:
        """Write the artifacts held back (the run's experiment is in a store now).

        Raises
        ------
        ConfigError
            If a file or folder changed since it was logged (nothing of it is listed).
        """
        where = self._where()
        if where is None:
            return
        for name, (kept, info) in list(self.held.items()):
            stored = store_artifacts.log_artifact(where[0], where[1], run_id, kept, name=name)
            if stored.digest != info.digest:
                msg = (
                    f"{str(kept)!r} changed between log_artifact and the write of run "
                    f"{run_id}: log it again once it is final (artifact {name!r} now holds "
                    f"the new content)"
                )
                del self.held[name]
                raise ConfigError(msg)
            del self.held[name]

    def infos(self, run_id: int) -> dict[str, ArtifactInfo]:
        """Every artifact of the run by name: stored ones, then those held back."""
        found: dict[str, ArtifactInfo] = {}
        where = self._where()
        if where is not None:
            store, experiment_id = where
            for name in store_artifacts.list_artifacts(store, experiment_id, run_id):
                found[name] = store_artifacts.artifact_info(store, experiment_id, run_id, name)
        found.update((name, info) for name, (_, info) in self.held.items())
        return dict(sorted(found.items()))

    def stored(self, run_id: int, name: str) -> tuple[Store, int]:
        """Where the stored artifact ``name`` is read from."""
        where = self._where()
        if where is None or name in self.held:
            msg = (
                f"artifact {name!r} of run {run_id} is not in a store yet: it is written when "
                "the run is (persist the experiment), then it can be read"
            )
            raise NotFoundError(msg)
        return where
