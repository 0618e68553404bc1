"""Fingerprints: deterministic, order-insensitive where order is meaningless, strict on types."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import identity_cases
from strategies import tagged_values
from trialbook.errors import FingerprintError
from trialbook.identity import fingerprint

# Golden fingerprints: changing one is a breaking change (stored hashes would no longer match),
# which needs a CHANGELOG entry.
GOLDEN = [
    (None, "8ce86a6ae65d3692e7305e2c58ac62eebd97d3d943e093f577da25c36988246b"),
    (1, "a5cea59f4ee695fb4cac0db770b3ac6bb7b52884409e0670f5bbe2a3b3b344b2"),
    (1.5, "714a6be3e0f2a79fa84b831d62e332c66e71f6ddb7ced7ecf332dbc623249f50"),
    ("abc", "299f1615db5ffd7bd8d91795c61467a19a07be760214733af04e2732a542ec1d"),
    ([1, "a"], "97158dae48b6d461abc6beda4302e2e994c5f639c0ac232af51852da2f975912"),
    ({"b": 2, "a": 1}, "13ad5e4d458a6cf21ec7ab7b04f0c9c4e93fafc0a7d17365af6490e6a8de0ac3"),
    ((1, 2), "fb8f47a016524e4da498f28e3a0f58b62451530e2f7980f44f56fe7ae44091c0"),
    ({3, 1}, "924b04ed197de9739a51381f16531d00e8de47056df0ecbe0ac6fb9302d54960"),
]

# Known answers of values whose hash could depend on the process: sets of strings iterate in an
# order that PYTHONHASHSEED decides (sets of small ints do not), so only sorting their members'
# encodings makes them stable. Computed once (tests/identity_cases.py) and written here; a set
# and a frozenset of the same members are the same value.
GOLDEN_ACROSS_PROCESSES = {
    "value: set of strings": "c4d8d78085e4b0bd3823cae54c4261ba52ab481b244213f859324f24b9fb49ae",
    "value: frozenset of strings": (
        "c4d8d78085e4b0bd3823cae54c4261ba52ab481b244213f859324f24b9fb49ae"
    ),
    "value: set of bytes": "1a2638c426721c98229cc146eb4491e718fc473eb0656b6b92b8a6cd18bf866c",
    "value: set of mixed members": (
        "c7ce608d4df27bc9423fdd468d0ee01217624630efb30a75ad74b8acf45bccf7"
    ),
    "value: dict with mixed keys": (
        "575661bb36ab4656f20153751910e07e5135a71d3cb052d22ab435e990576bae"
    ),
    "value: list of sets": "e656ddba7944a7aea0d72b6932348478d7dc1b19a8a453e3acbb4c8e3195f7f0",
    "config: vocabulary": "298da30a0fbb852d62ed21b1c385e1052185b134b59db099cf49a7ac39cf8ce1",
    "config: pipeline": "a444a2269b374048ac450d3b6d5bbaa392093b1ae1c9e8e6b85a40ce4a669e1f",
    "config: task": "6ec764e29791c69813dff903c3c50324e4809f83b71e29e2df029578ec2ce132",
}


def test_dict_and_set_order_do_not_matter() -> None:
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({3, 1, 2}) == fingerprint({2, 3, 1})


def test_types_and_order_matter() -> None:
    values = [1, 1.0, True, "1", b"1", [1], (1,), {1}, [1, 2], [2, 1], ["ab", "c"], ["a", "bc"]]
    assert len({fingerprint(v) for v in values}) == len(values)


@given(tagged_values)
def test_fingerprint_is_deterministic(value: object) -> None:
    assert fingerprint(value) == fingerprint(value)


@given(st.dictionaries(st.text(), st.integers(), min_size=1), st.text(), st.integers())
def test_any_change_alters_the_fingerprint(d: dict, key: str, value: int) -> None:
    changed = dict(d)
    changed[key] = value
    if changed != d:
        assert fingerprint(changed) != fingerprint(d)


def test_arrays_and_frames() -> None:
    a = np.arange(6).reshape(2, 3)
    assert fingerprint(a) == fingerprint(a.copy())
    assert fingerprint(a) != fingerprint(a.T)
    assert fingerprint(a) != fingerprint(a.astype("f8"))
    f = pd.DataFrame({"x": [1, 2]})
    assert fingerprint(f) == fingerprint(f.copy())
    assert fingerprint(f) != fingerprint(f.rename(columns={"x": "y"}))


def test_stable_across_processes() -> None:
    code = (
        "from trialbook.identity import fingerprint; "
        "print(fingerprint({'a': [1, 2.5, 'x'], 'b': {3}}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == fingerprint({"a": [1, 2.5, "x"], "b": {3}})


@pytest.mark.parametrize(("value", "expected"), GOLDEN)
def test_known_answers(value: object, expected: str) -> None:
    assert fingerprint(value) == expected


def test_known_answers_of_sets_dicts_and_configurations() -> None:
    """Changing one is a breaking change: job identifiers, cache keys and purity records stored
    earlier would no longer match (a CHANGELOG entry is needed)."""
    assert identity_cases.digests() == GOLDEN_ACROSS_PROCESSES


@pytest.mark.parametrize("seed", ["0", "1", "12345"])
def test_sets_dicts_and_configurations_hash_alike_under_every_hash_seed(seed: str) -> None:
    """Each process randomizes the hashes of strings (PYTHONHASHSEED), hence the order in which
    a set of strings iterates: the fingerprints and identifiers must not follow it."""
    tests = pathlib.Path(__file__).parent
    env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run(
        [sys.executable, str(tests / "identity_cases.py")],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert json.loads(out.stdout) == GOLDEN_ACROSS_PROCESSES


def test_refuses_what_cannot_be_hashed_stably() -> None:
    with pytest.raises(FingerprintError, match="function"):
        fingerprint({"f": lambda: 1})
    with pytest.raises(FingerprintError, match="object"):
        fingerprint(object())


def test_custom_fingerprint_hook() -> None:
    class Model:
        def __init__(self, size: int) -> None:
            self.size = size

        def __trialbook_fingerprint__(self) -> str:
            return f"Model:{self.size}"

    assert fingerprint(Model(3)) == fingerprint(Model(3)) != fingerprint(Model(4))
