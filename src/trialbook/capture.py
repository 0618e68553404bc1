"""Reproducibility capture: code snapshots, environment snapshots, their diffs, purity, seeds.

* **Code**: :func:`step_source` is the source of a decorated step (decorators included), and
  :func:`source_diff` the unified diff between two versions, as the lines logged when a step
  is re-decorated with changed source.
* **Environment**: :func:`environment` collects platform, CPU, Python, installed packages
  (``importlib.metadata``, no subprocess), NumPy / SciPy / pandas build information, conda and
  git, **once per process** and only when first asked (never at import). Each section is a
  text, so that :func:`environment_diff` can show a line diff per section;
  :func:`environment_text` is the canonical JSON stored as a content-addressed snapshot.
* **Purity**: :func:`input_hash` / :func:`output_hash` fingerprint a step's inputs and output
  (``None`` when a value cannot be hashed deterministically: purity is then not checked).
* **Seeds**: :func:`seed_everything` seeds :mod:`random` and NumPy's global generator;
  :func:`generate_seed` draws a fresh seed.

Examples
--------
>>> from trialbook.capture import source_diff
>>> source_diff("@ex\\ndef f(a):\\n    return a\\n", "@ex.persist\\ndef f(a):\\n    return a\\n")
['@@ -1,3 +1,3 @@', '-@ex', '+@ex.persist', ' def f(a):', '     return a']
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata
import importlib.util
import inspect
import json
import os
import platform
import random
import re
import reprlib
import secrets
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

from trialbook.errors import FingerprintError
from trialbook.identity import fingerprint

__all__ = [
    "SECTION_TITLES",
    "describe_call",
    "environment",
    "environment_diff",
    "environment_text",
    "generate_seed",
    "input_hash",
    "output_hash",
    "parse_environment",
    "seed_everything",
    "source_diff",
    "step_source",
]

SECTION_TITLES: dict[str, str] = {
    "device": "Device information has been changed",
    "cpu": "CPU information has been changed",
    "python": "Python information has been changed",
    "requirements": "Installed Python packages have been changed",
    "numpy": "NumPy information has been changed",
    "scipy": "SciPy information has been changed",
    "pandas": "pandas information has been changed",
    "conda": "conda information has been changed",
    "git": "Git information has been changed",
    "gpu": "GPU information has been changed",
}
"""Environment sections, in order, with the warning logged when one changed."""

_GIT_DIFF_LIMIT = 200_000  # characters of `git diff HEAD` kept: a snapshot is not a backup


# -- code ----------------------------------------------------------------------------------------


def step_source(func: Callable[..., Any]) -> str:
    """The dedented source of ``func`` with its decorators, ending with one newline.

    Functions without retrievable source (built in, defined with ``exec``) give a one-line
    placeholder naming them, so code tracking degrades instead of failing.

    Examples
    --------
    >>> def add(a, b):
    ...     return a + b
    >>> print(step_source(add), end="")
    def add(a, b):
        return a + b
    >>> step_source(len)
    '# source of len is not available\\n'
    """
    try:
        text = inspect.getsource(func)
    except (OSError, TypeError):
        name = getattr(func, "__qualname__", repr(func))
        return f"# source of {name} is not available\n"
    return textwrap.dedent(text).rstrip() + "\n"


def source_diff(old: str, new: str) -> list[str]:
    """Unified diff lines from ``old`` to ``new`` source, without file headers.

    Examples
    --------
    >>> source_diff("a\\n", "a\\n")
    []
    >>> source_diff("x = 1\\n", "x = 2\\n")
    ['@@ -1 +1 @@', '-x = 1', '+x = 2']
    """
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=3)
    return [line for line in lines if not line.startswith(("--- ", "+++ "))]


# -- environment ---------------------------------------------------------------------------------


@functools.cache
def environment() -> dict[str, str]:
    """The environment of this process, collected on first call and cached.

    Keys are the sections of :data:`SECTION_TITLES` that apply (``scipy`` only when SciPy is
    installed, ``conda`` only inside a conda environment, ``git`` only inside a repository,
    ``gpu`` only when ``nvidia-smi`` finds NVIDIA GPUs);
    values are texts (JSON for structured sections).

    Examples
    --------
    >>> env = environment()
    >>> {"device", "cpu", "python", "requirements"} <= set(env)
    True
    >>> environment() is env
    True
    """
    sections: dict[str, str | None] = {
        "device": _as_json(_device()),
        "cpu": _as_json(_cpu()),
        "python": _as_json(_python()),
        "requirements": _requirements(),
        "numpy": _numpy(),
        "scipy": _scipy(),
        "pandas": _pandas(),
        "conda": _conda(),
        "git": _git(),
        "gpu": _gpu(),
    }
    return {k: v for k, v in sections.items() if v is not None}


def environment_text(env: Mapping[str, str]) -> str:
    """The canonical text of an environment, as stored in a snapshot.

    Examples
    --------
    >>> environment_text({"python": "3.12", "cpu": "x"})
    '{\\n "cpu": "x",\\n "python": "3.12"\\n}'
    """
    return json.dumps(dict(env), sort_keys=True, indent=1, ensure_ascii=False)


def parse_environment(text: str) -> dict[str, str]:
    """The environment stored by :func:`environment_text`.

    Examples
    --------
    >>> parse_environment(environment_text({"cpu": "x"}))
    {'cpu': 'x'}
    """
    return dict(json.loads(text))


def environment_diff(old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, list[str]]:
    """Per changed section, the unified diff lines (no context) from ``old`` to ``new``.

    Examples
    --------
    >>> old = {"requirements": "numpy 2.0\\npandas 2.1\\n"}
    >>> new = {"requirements": "numpy 2.0\\npandas 2.2\\n"}
    >>> environment_diff(old, new)
    {'requirements': ['@@ -2 +2 @@', '-pandas 2.1', '+pandas 2.2']}
    """
    out = {}
    for name in [*SECTION_TITLES, *sorted(set(old) | set(new) - set(SECTION_TITLES))]:
        before, after = old.get(name, ""), new.get(name, "")
        if before != after:  # snapshots taken before paths were resolved: compare resolved
            before, after = _resolved_paths(name, before), _resolved_paths(name, after)
        if before != after:
            lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            out[name] = [line for line in lines if not line.startswith(("--- ", "+++ "))]
    return out


_LOCATION = re.compile(r"^(.* )\((.*)\)$")


def _resolved_paths(section: str, text: str) -> str:
    r"""``text`` of an environment section with its paths resolved (see :func:`_resolved`).

    Examples
    --------
    >>> import os
    >>> text = _resolved_paths("requirements", "x 1.0 (/a/b/../c)\n")
    >>> text == f"x 1.0 ({os.path.realpath('/a/c')})\n"
    True
    """
    if section == "requirements":
        lines = []
        for line in text.splitlines():
            match = _LOCATION.match(line)
            lines.append(line if match is None else f"{match[1]}({_resolved(match[2])})")
        return "".join(line + "\n" for line in lines)
    if section in {"python", "conda"}:
        try:
            info = json.loads(text)
        except ValueError:
            return text
        if not isinstance(info, dict):
            return text
        for key in ("executable", "prefix"):
            if isinstance(info.get(key), str):
                info[key] = _resolved(info[key])
        return _as_json(info)
    return text


def _as_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, indent=1, default=str)


def _device() -> dict[str, Any]:
    uname = platform.uname()
    return {
        "system": uname.system,
        "node": uname.node,
        "release": uname.release,
        "version": uname.version,
        "machine": uname.machine,
        "platform": platform.platform(),
    }


def _cpu() -> dict[str, Any]:
    info: dict[str, Any] = {"count": os.cpu_count(), "processor": platform.processor()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in {"model name", "flags", "cpu MHz"} and key.strip() not in info:
                    info[key.strip()] = value.strip()
    except OSError:
        pass  # not Linux: platform.processor() above is what there is
    info.pop("cpu MHz", None)  # varies from second to second: would make every snapshot new
    return info


def _python() -> dict[str, Any]:
    return {
        "implementation": platform.python_implementation(),
        "version": platform.python_version(),
        "build": list(platform.python_build()),
        "compiler": platform.python_compiler(),
        "executable": _resolved(sys.executable),
        "prefix": _resolved(sys.prefix),
    }


def _resolved(path: str) -> str:
    """``path`` with symbolic links, ``..`` and ``.`` resolved: the same interpreter or folder
    reached by another path (``../.venv/bin/python``, a link to the project) is one path."""
    return os.path.realpath(path) if path else path


def _requirements() -> str:
    seen = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] or "?"
        location = _resolved(os.path.dirname(str(dist.locate_file("")).rstrip(os.sep)))
        seen[name.lower()] = f"{name} {dist.version} ({location})"
    return "".join(seen[k] + "\n" for k in sorted(seen))


def _numpy() -> str | None:
    if importlib.util.find_spec("numpy") is None:
        return None
    import numpy as np

    config: dict[str, Any]
    try:
        config = dict(np.show_config(mode="dicts"))
    except TypeError:  # NumPy < 1.26 prints only
        config = {}
    return _as_json({"version": np.__version__, "config": config})


def _scipy() -> str | None:
    if importlib.util.find_spec("scipy") is None:
        return None
    import scipy

    try:
        config = scipy.show_config(mode="dicts")
    except TypeError:
        config = {}
    return _as_json({"version": scipy.__version__, "config": config})


def _pandas() -> str | None:
    if importlib.util.find_spec("pandas") is None:
        return None
    import pandas as pd

    return _as_json({"version": pd.__version__, "git_version": getattr(pd, "__git_version__", "")})


def _conda() -> str | None:
    prefix = os.environ.get("CONDA_PREFIX")
    meta = os.path.join(sys.prefix, "conda-meta")
    if prefix is None and not os.path.isdir(meta):
        return None
    return _as_json(
        {
            "prefix": _resolved(prefix or sys.prefix),
            "env": os.environ.get("CONDA_DEFAULT_ENV"),
            "exe": os.environ.get("CONDA_EXE"),
        }
    )


def _git() -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    root = _run_git(git, "rev-parse", "--show-toplevel")
    if root is None:
        return None
    diff = _run_git(git, "diff", "HEAD") or ""
    status = _run_git(git, "status", "--porcelain") or ""
    return _as_json(
        {
            "repository": root,
            "branch": _run_git(git, "rev-parse", "--abbrev-ref", "HEAD"),
            "commit": _run_git(git, "rev-parse", "HEAD"),
            "remote": _public_remote(_run_git(git, "config", "--get", "remote.origin.url")),
            "dirty": bool(status),
            "diff": diff[:_GIT_DIFF_LIMIT],
        }
    )


def _public_remote(url: str | None) -> str | None:
    """A git remote as an environment snapshot keeps it: a token or password in the URL
    (``https://bot:TOKEN@host/repo.git``) is masked, as every URL shown by trialbook is."""
    from trialbook.storage.urls import public_url

    return None if url is None else public_url(url)


def _gpu() -> str | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    query = "name,driver_version,memory.total"
    try:
        out = subprocess.run(
            [smi, f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    gpus = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    if out.returncode != 0 or not gpus:
        return None
    return _as_json({"query": query, "gpus": gpus})


def _run_git(git: str, *args: str) -> str | None:
    try:
        out = subprocess.run([git, *args], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


# -- purity --------------------------------------------------------------------------------------


class _ShortRepr(reprlib.Repr):
    """``repr`` bounded in size; arrays and frames are summarised by type, shape and dtype."""

    def __init__(self) -> None:
        super().__init__()  # Python 3.11's takes no limits: they are set below
        self.maxlevel = 3
        self.maxtuple = self.maxlist = self.maxdict = self.maxset = 10
        self.maxstring = self.maxother = 120

    def repr_instance(self, x: Any, level: int) -> str:
        try:
            shape = getattr(x, "shape", None)
            if isinstance(shape, tuple) and shape:
                dtype = getattr(x, "dtype", None)
                kind = "" if dtype is None else f" dtype={dtype}"
                return f"<{type(x).__name__} shape={shape}{kind}>"
        except Exception:  # a property that fails: the default below
            pass
        return super().repr_instance(x, level)  # which survives a failing __repr__

    def repr_bytes(self, x: bytes, level: int) -> str:
        return repr(x) if len(x) <= self.maxstring else f"<bytes of length {len(x)}>"

    def repr_bytearray(self, x: bytearray, level: int) -> str:
        return repr(x) if len(x) <= self.maxstring else f"<bytearray of length {len(x)}>"


_short_repr = _ShortRepr()


def describe_call(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    """A step call as the purity warning shows it, bounded in size and cheap to build.

    Taken when a step finishes, so the trial keeps no reference to the step's inputs.

    Examples
    --------
    >>> import numpy as np
    >>> describe_call((7,), {})
    'args: (7,), kwargs: {}'
    >>> describe_call((np.zeros((1000, 3)),), {})
    'args: (<ndarray shape=(1000, 3) dtype=float64>,), kwargs: {}'
    >>> len(describe_call(("x" * 10_000,), {"ys": list(range(10_000))})) < 250
    True
    >>> describe_call((b"a" * 10_000_000,), {})
    'args: (<bytes of length 10000000>,), kwargs: {}'
    """
    return f"args: {_short_repr.repr(tuple(args))}, kwargs: {_short_repr.repr(dict(kwargs))}"


def input_hash(step: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str | None:
    """Fingerprint of a step's name and inputs, or ``None`` if they cannot be hashed.

    Examples
    --------
    >>> input_hash("f", (1, 2), {}) == input_hash("f", (1, 2), {})
    True
    >>> input_hash("f", (1, 2), {}) == input_hash("g", (1, 2), {})
    False
    >>> input_hash("f", (object(),), {}) is None
    True
    """
    try:
        return fingerprint((step, list(args), dict(kwargs)))
    except FingerprintError:
        return None


def output_hash(value: Any) -> str | None:
    """Fingerprint of a step's output, or ``None`` if it cannot be hashed.

    Examples
    --------
    >>> output_hash(3.5) == output_hash(3.5), output_hash(object())
    (True, None)
    """
    try:
        return fingerprint(value)
    except FingerprintError:
        return None


# -- seeds ---------------------------------------------------------------------------------------


def generate_seed() -> int:
    """A fresh seed in ``[0, 2**31)``, from the operating system's randomness.

    Examples
    --------
    >>> 0 <= generate_seed() < 2**31
    True
    """
    return secrets.randbelow(2**31)


def seed_everything(seed: int) -> None:
    """Seed :mod:`random` and NumPy's global generator (``numpy.random.seed``).

    Examples
    --------
    >>> import numpy as np
    >>> seed_everything(1)
    >>> a = (random.random(), np.random.random())
    >>> seed_everything(1)
    >>> a == (random.random(), np.random.random())
    True
    """
    random.seed(seed)
    if importlib.util.find_spec("numpy") is not None:
        import numpy as np

        np.random.seed(seed % 2**32)
