"""What a runs experiment keeps in its store metadata: its ``id_experiment`` and its
``fields`` (a tagged JSON tree), so that neither needs a change of any store's schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trialbook.errors import CodecError, ConfigError
from trialbook.storage.records import ExperimentInfo

__all__ = ["experiment_fields_tree", "experiment_id", "new_experiment_id"]


def experiment_id(info: ExperimentInfo) -> str:
    """The ``id_experiment`` of a stored experiment: the UUID kept in its metadata, or, for an
    experiment stored before ids existed, one derived from its name and creation time (the
    same at every read, different for a later experiment of the same name).

    Examples
    --------
    >>> old = ExperimentInfo(1, "sweep", created=1700000000.5, updated=1700000000.5)
    >>> experiment_id(old) == experiment_id(old)
    True
    >>> experiment_id(ExperimentInfo(2, "x", 0.0, 0.0, meta={"id": "1b4e28ba"}))
    '1b4e28ba'
    """
    stored = info.meta.get("id")
    if isinstance(stored, str) and stored:
        return stored
    import uuid  # not at import: uuid costs milliseconds of `import trialbook`

    return str(uuid.uuid5(uuid.UUID(_OLD_IDS), f"{info.name}\n{info.created!r}"))


_OLD_IDS = "5f0e3c52-6a8e-4a5e-9a51-2b7f1c0d9e11"
"""Namespace of the ids derived for experiments stored before ids existed."""


def new_experiment_id() -> str:
    """A new ``id_experiment`` (a random UUID).

    Examples
    --------
    >>> len(new_experiment_id()), new_experiment_id() != new_experiment_id()
    (36, True)
    """
    import uuid

    return str(uuid.uuid4())


def experiment_fields_tree(fields: Mapping[str, Any]) -> Any:
    """The experiment's ``fields`` as a JSON tree for its metadata (tagged as by
    :func:`trialbook.codecs.to_tree`).

    Raises
    ------
    CodecError
        Naming the field that no safe codec stores.

    Examples
    --------
    >>> experiment_fields_tree({"dataset": "iris", "split": (0.8, 0.2)})
    {'dataset': 'iris', 'split': {'__tb__': 'tuple', 'v': [0.8, 0.2]}}
    """
    from trialbook.codecs import Unsupported, encode, to_tree

    tree = {}
    for name, value in fields.items():
        if type(name) is not str:
            msg = f"experiment field names must be str (got {name!r} that is a {type(name)})"
            raise ConfigError(msg)
        try:
            tree[name] = to_tree(value)
        except Unsupported:
            try:
                encode(value)  # raises the codec's error, which lists the safe types
            except CodecError as exc:
                msg = f"experiment field {name!r} cannot be persisted: {exc}"
                raise CodecError(msg) from None
            raise
    return tree
