"""Per-process snapshot digests and the plain files a directory store gets for each trial.

When an experiment is loaded, :func:`warn_environment` logs how this process's environment
differs from that of the experiment's last trial.

A directory store (``store.directory``) also receives each trial's code as a text file,
``code/<experiment id>_<trial id>.py``, and the environment's sections as files under
``environment/<digest>/`` (``requirements.txt``, ``python.json``, ...), so that diff tools and
git can read them without trialbook. Both are written without re-reading anything: the code
text once per code version, each trial's file a hard link to it; the environment once per
process and store.

Examples
--------
>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_code_file(folder, "demo", 1, "abcdef", "def f():\\n    return 1")
>>> (folder / "code" / "demo_1.py").read_text()
'def f():\\n    return 1\\n'
"""

from __future__ import annotations

import logging
import os
import pathlib
import re
import shutil
import uuid
from typing import TYPE_CHECKING, Any

from trialbook import capture

if TYPE_CHECKING:
    from trialbook.storage.base import Store

__all__ = [
    "environment_digest",
    "warn_environment",
    "write_code_file",
    "write_environment_files",
]

logger = logging.getLogger(__name__)

_ENV_DIGESTS: dict[int, tuple[Any, str]] = {}
_EXPORTED: set[pathlib.Path] = set()
"""Environment folders this process already wrote into directory stores (skips a stat)."""


def environment_digest(store: Store) -> str:
    """Digest of this process's environment snapshot in ``store`` (stored once per store).

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> store = open_store("sqlite:///:memory:")
    >>> environment_digest(store) == environment_digest(store)
    True
    >>> store.close()
    """
    known = _ENV_DIGESTS.get(id(store))
    if known is not None and known[0] is store:
        return known[1]
    digest = store.put_snapshot("environment", capture.environment_text(capture.environment()))
    _ENV_DIGESTS[id(store)] = (store, digest)
    return digest


def warn_environment(store: Store, digest: str) -> None:
    """Log, at WARNING, each section of this process's environment that differs from the
    environment snapshot ``digest`` in ``store`` (nothing if the store does not have it).

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> store = open_store("sqlite:///:memory:")
    >>> warn_environment(store, environment_digest(store))  # the same: nothing is logged
    >>> store.close()
    """
    current = capture.environment()
    try:
        before = capture.parse_environment(store.get_snapshot(digest))
    except LookupError:
        return
    for section, lines in capture.environment_diff(before, current).items():
        logger.warning(capture.SECTION_TITLES.get(section, f"{section} has been changed"))
        for line in lines[:200]:
            logger.warning(line)


def write_code_file(
    directory: pathlib.Path, experiment: str, trial_id: int, digest: str, text: str
) -> None:
    """Write ``code/<experiment>_<trial_id>.py`` in a directory store.

    The text is written once per code version (``code/.snapshots/<digest>.py``) and each
    trial's file is a hard link to it: creating a file costs ~0.5 ms, a link ~15 us.

    Examples
    --------
    See the module's example.
    """
    code_dir = directory / "code"
    source = code_dir / ".snapshots" / f"{(digest or 'none')[:16]}.py"
    target = code_dir / f"{_safe(experiment)}_{trial_id}.py"
    try:
        _link(source, target)
    except FileNotFoundError:  # first trial of this code version
        source.parent.mkdir(parents=True, exist_ok=True)
        # written aside and renamed: a process linking it at the same moment never sees it
        # half-written (two processes writing one version write the same text)
        staging = source.with_name(f".{source.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        staging.write_text(text + "\n", encoding="utf-8")
        os.replace(staging, source)
        _link(source, target)


def write_environment_files(directory: pathlib.Path, digest: str) -> None:
    """Write this process's environment under ``environment/<digest[:16]>/``, once.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_environment_files(folder, "0123456789abcdef0123")
    >>> names = {p.name for p in (folder / "environment" / "0123456789abcdef").iterdir()}
    >>> {"cpu.json", "device.json", "python.json", "requirements.txt"} <= names
    True
    """
    folder = directory / "environment" / digest[:16]
    if not digest or folder in _EXPORTED:
        return
    _EXPORTED.add(folder)
    if folder.exists():
        return
    # Several processes may export the same environment at once: each writes a private
    # folder and renames it into place; the first rename wins and the others discard theirs,
    # so a reader never sees a half-written folder.
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()  # mode from the umask, like the folder it becomes
    try:
        for section, text in capture.environment().items():
            suffix = "txt" if section == "requirements" else "json"
            (staging / f"{section}.{suffix}").write_text(text, encoding="utf-8")
        try:
            staging.rename(folder)
        except OSError:  # another process renamed its copy first
            if not folder.is_dir():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _link(source: pathlib.Path, target: pathlib.Path) -> None:
    try:
        os.link(source, target)
    except FileExistsError:  # a trial id reused after the experiment was deleted and re-created
        target.unlink()
        _link(source, target)
    except FileNotFoundError:
        raise
    except OSError:  # no hard links on this file system
        shutil.copyfile(source, target)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)
