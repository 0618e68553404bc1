"""Loading a logged model from anywhere: ``trialbook:<experiment>/<run>/<artifact>``.

Parse rule: the text after ``trialbook:`` is split at its **last two** ``/``: the last part
is the artifact's name, the one before it the run's id (a number), and everything before that
the experiment's name, which may itself contain ``/`` (``trialbook:team/fit/3/model`` is
artifact ``model`` of run 3 of experiment ``team/fit``). An artifact whose name contains
``/`` is written with ``%2F`` (each part is percent-decoded).

The store is ``store=`` (an open store, a session, or a location such as a directory or
URL), else ``$TRIALBOOK_STORE``, else the directory ``.trialbook``. A store opened here is
closed before returning; to load a pickled model, pass a store or session opened with
``allow_pickle=True``.

Examples
--------
>>> parse_uri("trialbook:team/fit/3/model")
ModelURI(experiment='team/fit', run_id=3, artifact='model')
>>> parse_uri("trialbook:fit/best/model")
Traceback (most recent call last):
...
trialbook.errors.ConfigError: the run of a model URI is a run id, a number ...
"""

from __future__ import annotations

import contextlib
import dataclasses
import urllib.parse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from trialbook.errors import ConfigError, ExperimentNotFoundError
from trialbook.models.flavour import LoadOptions

if TYPE_CHECKING:
    from trialbook.storage.base import Store

__all__ = ["SCHEME", "ModelURI", "load_model", "parse_uri"]

SCHEME = "trialbook:"
_FORM = "trialbook:<experiment>/<run id>/<artifact>, e.g. 'trialbook:fit/3/model'"


@dataclasses.dataclass(frozen=True)
class ModelURI:
    """Where a logged model is: experiment name, run id, artifact name.

    Examples
    --------
    >>> str(ModelURI("a/b", 2, "model"))
    'trialbook:a/b/2/model'
    """

    experiment: str
    run_id: int
    artifact: str

    def __str__(self) -> str:
        artifact = urllib.parse.quote(self.artifact, safe="")
        return f"{SCHEME}{self.experiment}/{self.run_id}/{artifact}"


def parse_uri(uri: str) -> ModelURI:
    """Split a model URI into experiment, run id and artifact (see the module documentation).

    Raises
    ------
    ConfigError
        If ``uri`` does not have the form ``trialbook:<experiment>/<run id>/<artifact>``.
    """
    if not isinstance(uri, str) or not uri.startswith(SCHEME):
        msg = f"a model URI has the form {_FORM} (got {uri!r} that is a {type(uri)})"
        raise ConfigError(msg)
    parts = uri[len(SCHEME) :].rsplit("/", 2)
    if len(parts) != 3 or not all(parts):
        msg = f"a model URI has the form {_FORM}: three non-empty parts (got {uri!r})"
        raise ConfigError(msg)
    experiment, run, artifact = (urllib.parse.unquote(p) for p in parts)
    if not run.isdigit():
        msg = f"the run of a model URI is a run id, a number (got {run!r} in {uri!r}): {_FORM}"
        raise ConfigError(msg)
    return ModelURI(experiment, int(run), artifact)


def _store(store: Store | Any, stack: contextlib.ExitStack) -> Store:
    from trialbook.storage import default_location, open_store
    from trialbook.storage.base import Store

    if isinstance(getattr(store, "store", None), Store):  # a session
        return store.store  # type: ignore[union-attr]
    if isinstance(store, Store):
        return store
    opened = open_store(default_location() if store is None else store)
    stack.callback(opened.close)
    return opened


def load_model(
    uri: str,
    *,
    store: Store | Any = None,
    trusted: Iterable[str] = (),
    model: Any = None,
) -> Any:
    """The model at ``uri`` (``trialbook:<experiment>/<run id>/<artifact>``); ``trusted`` and
    ``model`` as in :meth:`~trialbook.tracking.Run.load_model`.

    Raises
    ------
    ConfigError
        If ``uri`` is malformed.
    ExperimentNotFoundError, NotFoundError
        If the experiment, or the run's artifact, is not in the store.

    Examples
    --------
    >>> import pathlib, tempfile, trialbook
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with trialbook.create_session(folder, allow_pickle=True) as session:
    ...     run, = session.create_experiment("team/fit").add_runs(x=[1])
    ...     _ = run.log_model({"w": 3}, "weights")
    ...     trialbook.load_model("trialbook:team/fit/1/weights", store=session)
    {'w': 3}
    """
    from trialbook.models.logged import load_stored

    where = parse_uri(uri)
    with contextlib.ExitStack() as stack:
        opened = _store(store, stack)
        info = opened.find_experiment(where.experiment)
        if info is None:
            names = [e.name for e in opened.list_experiments()]
            raise ExperimentNotFoundError(where.experiment, available=names)
        options = LoadOptions(trusted=tuple(trusted), allow_pickle=opened.allow_pickle, model=model)
        return load_stored(opened, info.id, where.run_id, where.artifact, options)
