"""Values whose fingerprints and identifiers are pinned by known answers and must not depend on
the process: sets of strings (their iteration order follows ``PYTHONHASHSEED``), frozensets,
dicts with keys of several types, and nested task configurations holding them.

Imported by ``tests/test_identity.py`` and, in subprocesses started with different
``PYTHONHASHSEED`` values, by ``python tests/identity_cases.py`` (which prints the digests as
JSON), so that a hash that depends on the process is caught.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from trialbook.identity import fingerprint
from trialbook.tasks import Config, Param, Task, field

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]


class Vocabulary(Config):
    __trialbook_id__ = "golden.vocabulary"
    words: Param[set[str]] = field(default_factory=set)
    frozen: Param[frozenset[str]] = frozenset()
    weights: Param[dict[str, float]] = field(default_factory=dict)


class Pipeline(Config):
    __trialbook_id__ = "golden.pipeline"
    stages: Param[list[Vocabulary]] = field(default_factory=list)
    by_name: Param[dict[str, Vocabulary]] = field(default_factory=dict)
    names: Param[frozenset[str]] = frozenset()


class Train(Task):
    __trialbook_id__ = "golden.train"
    pipeline: Param[Pipeline]
    vocabulary: Param[Vocabulary]
    out: Param[Path] = Path("out")

    def execute(self) -> None:
        pass


def _vocabulary(n: int) -> Vocabulary:
    return Vocabulary.C(
        words=set(WORDS[:n]),
        frozen=frozenset(w.upper() for w in WORDS[-n:]),
        weights={w: float(i) for i, w in enumerate(WORDS[:n])},
    )


def _pipeline() -> Pipeline:
    return Pipeline.C(
        stages=[_vocabulary(3), _vocabulary(8)],
        by_name={"small": _vocabulary(2), "large": _vocabulary(7)},
        names=frozenset(WORDS),
    )


VALUES: dict[str, Callable[[], object]] = {
    "set of strings": lambda: set(WORDS),
    "frozenset of strings": lambda: frozenset(WORDS),
    "set of bytes": lambda: {w.encode() for w in WORDS},
    "set of mixed members": lambda: {"a", "b", 1, 2.5, (1, "x"), None, b"c", frozenset("xyz")},
    "dict with mixed keys": lambda: {
        "b": 1,
        1: "one",
        2.5: [1, 2],
        None: {"x", "y", "z"},
        (1, "a"): frozenset(WORDS[:4]),
        "a": {"nested": set(WORDS[4:])},
    },
    "list of sets": lambda: [set(WORDS[:3]), set(WORDS[3:]), frozenset()],
}
"""Plain values: name -> a function making it (made anew in each process)."""

CONFIGS: dict[str, Callable[[], Config]] = {
    "vocabulary": lambda: _vocabulary(8),
    "pipeline": _pipeline,
    "task": lambda: Train.C(pipeline=_pipeline(), vocabulary=_vocabulary(5)),
}
"""Task configurations: name -> a function making it; their identifiers are pinned."""


def digests() -> dict[str, str]:
    """``{name: fingerprint or identifier}`` of every case, computed in this process."""
    out = {f"value: {name}": fingerprint(make()) for name, make in VALUES.items()}
    out.update({f"config: {name}": make().__identifier__() for name, make in CONFIGS.items()})
    return out


if __name__ == "__main__":
    print(json.dumps(digests(), sort_keys=True))
