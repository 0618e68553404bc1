"""The run being tracked: its params, state containers, fields and buffered metrics.

A :class:`Run` is the record every way of working produces (a grid run, a lazy-graph trial, a
task job). It knows nothing of stores: its owner turns it into a
:class:`~trialbook.storage.RunRecord` plus :class:`~trialbook.storage.MetricChunk` rows with
:meth:`Run.to_record` and :meth:`Run.pending_metrics`.

Metrics are buffered in memory (three ``array.array`` per series) and handed over in chunks when
the owner persists, so logging a value costs a few hundred nanoseconds and never a transaction.

Examples
--------
>>> from trialbook.tracking import Run
>>> run = Run(1, params={"lr": 0.1})
>>> run.fields.loss = 0.25
>>> for epoch in range(3):
...     run.log_metric("acc", 0.5 + epoch / 10)
>>> run.fields["loss"], run.params.lr
(0.25, 0.1)
>>> run.metrics("acc")["value"].tolist()
[0.5, 0.6, 0.7]
"""

from __future__ import annotations

import array
import contextvars
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from trialbook.bulk import paused_gc
from trialbook.codecs import Encoded, Pickled, decode_or_placeholder, encode, plain_scalar
from trialbook.errors import CodecError, ConfigError, NotFoundError, did_you_mean
from trialbook.notes import NOTE_TAG, note_text
from trialbook.sequence import Sequence
from trialbook.storage.records import ErrorInfo, MetricChunk, MetricSeries, RunRecord, Status

if TYPE_CHECKING:
    import io
    import os
    import pathlib

    import pandas as pd

    from trialbook.run_artifacts import ArtifactTarget, RunArtifacts
    from trialbook.storage.artifacts import ArtifactInfo
    from trialbook.storage.base import Store

__all__ = ["Bunch", "Fields", "MetricSource", "Run", "current_run", "paused_gc", "using_run"]

_now = time.time
_PENDING = Status.PENDING.value
_NO_NAMES: frozenset[str] = frozenset()  # shared by every run that replaced no metric
_CURRENT: contextvars.ContextVar[Run | None] = contextvars.ContextVar("trialbook_run", default=None)

MetricSource = Callable[[int, str], Any]
"""``source(run_id, name) -> MetricSeries | None``: reads points already in a store."""


class Bunch(dict[str, Any]):
    """A dict whose keys are also attributes: ``b.x`` is ``b["x"]``.

    Examples
    --------
    >>> b = Bunch(a=1)
    >>> b.b = 2
    >>> b
    Bunch({'a': 1, 'b': 2})
    >>> b.c
    Traceback (most recent call last):
    ...
    AttributeError: no key 'c' here (keys: 'a', 'b')
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            if name.startswith("__"):
                raise AttributeError(name) from None
            keys = ", ".join(repr(k) for k in self) or "none"
            msg = f"no key {name!r} here (keys: {keys}){did_you_mean(name, map(str, self))}"
            raise AttributeError(msg) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __dir__(self) -> list[str]:
        return [*dict.__dir__(self), *(k for k in self if isinstance(k, str))]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Bunch, (dict(self),))


class Fields(Bunch):
    """A run's persisted values; assigning one marks the run as changed.

    Values must be storable by :mod:`trialbook.codecs` (checked when the run is persisted).
    Mutating a stored value in place (``run.fields.history.append(x)``) outside a step is not
    noticed; assign the field again so the change is persisted.
    """

    __slots__ = ("_changed",)

    def __init__(self, *args: Any, changed: Callable[[], None] | None = None, **kw: Any) -> None:
        if args or kw:
            dict.__init__(self, *args, **kw)
        _set_changed(self, changed)  # the slot itself: __setattr__ sets keys

    def __setitem__(self, name: str, value: Any) -> None:
        if type(name) is not str:
            msg = f"field names must be str (got {name!r} that is a {type(name)})"
            raise ConfigError(msg)
        dict.__setitem__(self, name, value)
        if type(value) is Sequence:
            value.on_append(self._changed)
        if self._changed is not None:
            self._changed()

    def __getitem__(self, name: str) -> Any:
        value = dict.__getitem__(self, name)
        if type(value) is Pickled:
            msg = (
                f"field {name!r} holds a pickled {value.type_name}, and unpickling runs code "
                "taken from the store; if you trust this store, open it with "
                "allow_pickle=True (on the command line: --allow-pickle)"
            )
            raise CodecError(msg)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delitem__(self, name: str) -> None:
        dict.__delitem__(self, name)
        if self._changed is not None:
            self._changed()

    def update(self, *args: Any, **kw: Any) -> None:
        for k, v in dict(*args, **kw).items():
            self[k] = v


_set_changed = Fields._changed.__set__  # type: ignore[attr-defined]


def _checked_tag(name: Any, value: Any) -> tuple[str, Any]:
    if type(name) is not str:
        msg = f"tag names must be str (got {name!r} that is a {type(name)})"
        raise ConfigError(msg)
    value = plain_scalar(value)
    if value is None or isinstance(value, str | int | float):  # bool is an int
        return name, value
    msg = (
        f"tag {name!r} must be a str, int, float, bool or None (got a {type(value)}); keep "
        f"other values in a field: run.fields.{name} = ..."
    )
    raise ConfigError(msg)


class Tags(dict[str, Any]):
    """A run's tags: short labels (``str``, ``int``, ``float``, ``bool`` or ``None``; NumPy
    scalars become plain values) that the runs table, the filters (``tags.reviewed == true``)
    and the UI show. Setting or removing one at any time marks the run as changed, so the next
    ``persist()`` stores it, a reloaded run's included.

    Examples
    --------
    >>> run = Run(1)
    >>> run.tags["reviewed"] = True
    >>> run.tags.update(owner="ann", score=0.5)
    >>> dict(run.tags)
    {'reviewed': True, 'owner': 'ann', 'score': 0.5}
    >>> run.tags["model"] = object()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: tag 'model' must be a str, int, float, bool or None (...
    """

    __slots__ = ("_changed",)

    def __init__(
        self, values: Mapping[str, Any] | None = None, *, changed: Callable[[], None] | None = None
    ) -> None:
        super().__init__()
        self._changed: Callable[[], None] | None = None
        for name, value in (values or {}).items():
            dict.__setitem__(self, *_checked_tag(name, value))
        self._changed = changed

    @classmethod
    def loaded(cls, values: Mapping[str, Any], changed: Callable[[], None]) -> Tags:
        """Tags read from a store (already checked when they were written)."""
        tags = cls.__new__(cls)
        if values:
            dict.update(tags, values)
        tags._changed = changed
        return tags

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed()

    def __setitem__(self, name: str, value: Any) -> None:
        dict.__setitem__(self, *_checked_tag(name, value))
        self._notify()

    def __delitem__(self, name: str) -> None:
        dict.__delitem__(self, name)
        self._notify()

    def update(self, *args: Any, **kw: Any) -> None:
        for name, value in dict(*args, **kw).items():
            dict.__setitem__(self, *_checked_tag(name, value))
        self._notify()

    def __ior__(self, other: Any) -> Tags:  # type: ignore[override,misc]
        self.update(other)
        return self

    def setdefault(self, name: str, default: Any = None) -> Any:
        if name not in self:
            self[name] = default
        return dict.__getitem__(self, name)

    def pop(self, name: str, *default: Any) -> Any:
        present = name in self
        value = dict.pop(self, name, *default)
        if present:
            self._notify()
        return value

    def popitem(self) -> tuple[str, Any]:
        item = dict.popitem(self)
        self._notify()
        return item

    def clear(self) -> None:
        if self:
            dict.clear(self)
            self._notify()

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


def _extent(values: array.array[float]) -> tuple[float | None, float | None]:
    """The smallest and largest of ``values`` ignoring NaN (``None`` if all are NaN)."""
    if len(values) <= 64:  # a few points (a million runs of one point each): no NumPy call
        numbers = [v for v in values if not math.isnan(v)]
        return (min(numbers), max(numbers)) if numbers else (None, None)
    import numpy as np

    points = np.frombuffer(values, dtype="<f8")
    finite = points[~np.isnan(points)] if np.isnan(points).any() else points
    if not len(finite):
        return None, None
    return float(finite.min()), float(finite.max())


def _join(a: float | None, b: float | None, pick: Any) -> float | None:
    return b if a is None else a if b is None else pick(a, b)


class _Series:
    """Buffered points of one metric since the last hand-over.

    While every step is implicit (the point's index) ``steps`` stays ``None``: logging then
    costs two appends instead of three, which matters at a million points.
    """

    __slots__ = ("base", "steps", "times", "values")

    def __init__(self, base: int) -> None:
        self.base = base
        self.steps: array.array[int] | None = None
        self.values = array.array("d")
        self.times = array.array("d")

    def explicit_steps(self) -> array.array[int]:
        """The steps array, filled with the implicit steps so far if it did not exist."""
        if self.steps is None:
            self.steps = array.array("q", range(self.base, self.base + len(self.values)))
        return self.steps

    def step_array(self) -> Any:
        """The steps as a NumPy array, without materialising implicit steps here."""
        import numpy as np

        if self.steps is None:
            return np.arange(self.base, self.base + len(self.values), dtype="<i8")
        return np.frombuffer(self.steps, dtype="<i8")


class Run:
    """One run: params, ``vars`` / ``state`` / ``fields``, metrics, status and timings.

    ``vars`` lives for one execution only; ``state`` stays in memory (never persisted);
    ``fields`` is persisted and reloaded.

    Examples
    --------
    >>> run = Run(3, params={"a": 1})
    >>> run
    Run(id=3, status='pending', params={'a': 1})
    """

    __slots__ = (
        "_artifacts",
        "_counts",
        "_metric_source",
        "_on_point",
        "_previous",
        "_replaced",
        "_sequences",
        "_series",
        "_sink",
        "_tags",
        "_writer",
        "code",
        "config",
        "created",
        "environment",
        "error",
        "fields",
        "finished",
        "id",
        "key",
        "kind",
        "params",
        "result",
        "seed",
        "started",
        "state",
        "status",
        "vars",
        "version",
    )

    def __init__(
        self,
        run_id: int,
        *,
        params: Mapping[str, Any] | None = None,
        kind: str = "run",
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        self.id = run_id
        self.kind = kind
        self.params = Bunch(params) if params else Bunch()
        self._tags = Tags(tags, changed=self.touch)
        self.vars = Bunch()
        self.state = Bunch()
        self.config = Bunch()
        """The ``config`` of the ``execute`` running the run's steps (the same for every run
        of that execution); empty outside an execution, never persisted."""
        self.fields = Fields(changed=self.touch)
        self.status: str = _PENDING
        self.error: ErrorInfo | None = None
        self.result: Any = None
        self.seed: int | None = None
        self.key: str | None = None
        self.code: str | None = None
        self.environment: str | None = None
        self.created: float = _now()
        self.started: float | None = None
        self.finished: float | None = None
        self._series: dict[str, _Series] = {}
        self._counts: dict[str, list[Any]] = {}
        self._previous: dict[str, _Series] | None = None
        self._replaced: AbstractSet[str] = _NO_NAMES
        self._sequences: dict[str, tuple[str, list[str]]] = {}
        self._sink: Callable[[Run], None] | None = None
        self._metric_source: MetricSource | None = None
        self._on_point: Callable[[], None] | None = None
        self.version: int | None = None
        """The version of the stored run this object holds (read, or last written); ``None``
        before its first write. A write of a version the store no longer has is refused."""
        self._writer: str | None = None
        self._artifacts: RunArtifacts | ArtifactTarget | None = None

    def __repr__(self) -> str:
        return f"Run(id={self.id}, status={str(self.status)!r}, params={dict(self.params)!r})"

    def _repr_html_(self) -> str:
        """The run in a notebook: status, duration, params, fields, tags, error, and a
        sparkline per metric (the first 20 metrics).

        Examples
        --------
        >>> run = Run(1, params={"name": "<b>"})
        >>> run.log_metric("loss", 0.5)
        >>> text = run._repr_html_()
        >>> "&lt;b&gt;" in text and "<svg" in text and "<b>" not in text.replace("<b>Run", "")
        True
        """
        from trialbook import notebook

        names = self.metric_names()
        series = {name: self._points(name)[1] for name in names[: notebook.ROWS]}
        duration = self.duration
        subtitle = str(self.status) + ("" if duration is None else f" · {duration:.3g} s")
        error = "" if self.error is None else notebook.escape(str(self.error), 2000)
        return notebook.card(
            f"{str(self.kind).capitalize()} {self.id}",
            subtitle,
            [
                ("Params", notebook.mapping_table(self.params)),
                ("Fields", notebook.mapping_table(self.fields)),
                ("Tags", notebook.mapping_table(self._tags)),
                ("Error", error),
                ("Metrics", notebook.metrics_table(series, more=len(names) - len(series))),
            ],
        )

    @classmethod
    def pending_runs(
        cls,
        ids: Iterable[int],
        param_sets: Iterable[Mapping[str, Any]],
        *,
        changed: Callable[[Run], None] | None = None,
        metric_source: MetricSource | None = None,
        artifacts: ArtifactTarget | None = None,
    ) -> list[Run]:
        """New runs, one per id and params, each already bound as :meth:`bind` does: what
        ``Run(run_id, params=params)`` then ``bind(changed, metric_source)`` give (created at
        the same time), built without the per-run calls (adding a million runs at once). A
        params :class:`Bunch` becomes the run's own ``params`` (not copied: build a new one
        per run); any other mapping is copied.

        Examples
        --------
        >>> Run.pending_runs([1, 2], [{"x": 1}, {"x": 2}])
        [Run(id=1, status='pending', params={'x': 1}), Run(id=2, ...)]
        """
        runs = []
        new, now = object.__new__, _now()
        for run_id, params in zip(ids, param_sets, strict=True):
            run = new(cls)
            run.id = run_id
            run.kind = "run"
            run.params = params if type(params) is Bunch else Bunch(params)
            run._tags = Tags.loaded({}, run.touch)
            run._artifacts = artifacts
            run.vars = Bunch()
            run.state = Bunch()
            run.config = Bunch()
            run.fields = Fields(changed=run.touch)
            run.status = _PENDING
            run.error = run.result = run.seed = run.key = run.code = run.environment = None
            run.created = now
            run.started = run.finished = None
            run._series = {}
            run._counts = {}
            run._previous = None
            run._replaced = _NO_NAMES
            run._sequences = {}
            run._sink = changed
            run._metric_source = metric_source
            run._on_point = None
            run.version = run._writer = None
            runs.append(run)
        return runs

    def bind(self, changed: Callable[[Run], None], metric_source: MetricSource | None) -> None:
        """Tie the run to its experiment: ``changed(run)`` is called when it changes (see
        :meth:`touch`), ``metric_source`` reads its metric points already in the store."""
        self._sink = changed
        self._metric_source = metric_source
        if self.fields:  # a run without fields has no sequence to attach
            self._attach_sequences()

    def bind_artifacts(self, target: ArtifactTarget) -> None:
        """Tell the run where its artifacts go: ``target()`` returns ``(store, experiment
        id)``, or ``None`` while the experiment is not in a store (see
        :mod:`trialbook.run_artifacts`)."""
        if self._artifacts is None or callable(self._artifacts):
            self._artifacts = target  # the shelf is made at first use (a million runs: none)
        else:
            self._artifacts.target = target

    def _artifact_shelf(self) -> RunArtifacts:
        shelf = self._artifacts
        if shelf is None or callable(shelf):  # a target only: the shelf is made at first use
            from trialbook.run_artifacts import RunArtifacts

            made = RunArtifacts()
            made.target = shelf
            self._artifacts = shelf = made
        return shelf

    def log_artifact(
        self, source: str | os.PathLike[str] | bytes, name: str | None = None
    ) -> ArtifactInfo:
        """Keep a file, a folder or bytes with the run under ``name`` (default: the file's or
        folder's name; bytes need one), replacing an artifact of that name: streamed in
        pieces, each stored once by content. Written at once if the run's experiment is in a
        store, else when the run is written (persist); see :mod:`trialbook.run_artifacts`.

        Examples
        --------
        >>> run = Run(1)
        >>> info = run.log_artifact(b"01", name="weights.bin")
        >>> info.name, info.size, info.kind
        ('weights.bin', 2, 'bytes')
        """
        shelf = self._artifact_shelf()
        info = shelf.log(self.id, source, name)
        if info.name in shelf.held:
            self.touch()  # written with the run
        return info

    @property
    def artifacts(self) -> dict[str, ArtifactInfo]:
        """The run's artifacts by name, each with its size, media type and digest.

        Examples
        --------
        >>> Run(1).artifacts
        {}
        """
        if self._artifacts is None:
            return {}
        return self._artifact_shelf().infos(self.id)

    def open_artifact(self, name: str, *, path: str | None = None) -> io.BufferedReader:
        """A binary file reading the stored artifact ``name`` (``path``: one file of a folder
        artifact), streamed and checked against its digest; close it (``with``)."""
        from trialbook.storage.artifacts import open_artifact

        store, experiment_id = self._artifact_shelf().stored(self.id, name)
        return open_artifact(store, experiment_id, self.id, name, path=path)

    def download_artifact(self, name: str, dest: str | os.PathLike[str]) -> pathlib.Path:
        """Write the stored artifact ``name`` to the file (or folder) ``dest``; return it."""
        from trialbook.storage.artifacts import download_artifact

        store, experiment_id = self._artifact_shelf().stored(self.id, name)
        return download_artifact(store, experiment_id, self.id, name, dest)

    def artifact_store(self) -> Store | None:
        """The store the run's artifacts are written to now, or ``None`` while its experiment
        is not in a store (they are held back until it is).

        Examples
        --------
        >>> Run(1).artifact_store() is None
        True
        """
        return None if self._artifacts is None else self._artifact_shelf().store()

    def stored_artifact(self, name: str) -> tuple[Store, int]:
        """``(store, experiment id)`` where the stored artifact ``name`` is read from;
        :class:`~trialbook.errors.NotFoundError` while it is not written yet."""
        return self._artifact_shelf().stored(self.id, name)

    def log_model(
        self,
        model: Any,
        name: str = "model",
        *,
        input_example: Any = None,
        trusted: Iterable[str] = (),
    ) -> ArtifactInfo:
        """Save ``model`` in a safe format where one exists and log it as the folder artifact
        ``name``: its files, and ``model.json`` with its flavour, the library versions it
        needs and the ``input_example`` if given. See :mod:`trialbook.models` (flavours:
        scikit-learn through skops, ``trusted=`` names extra types it may rebuild; XGBoost and
        LightGBM native files; PyTorch ``state_dict`` as safetensors; anything else with
        pickle, only if the store allows it).

        Examples
        --------
        >>> import trialbook
        >>> with trialbook.create_session("sqlite:///:memory:", allow_pickle=True) as session:
        ...     run, = session.create_experiment("doc_log_model").add_runs(x=[1])
        ...     run.log_model({"w": [1, 2]}, "weights").kind
        ...     run.load_model("weights")
        'folder'
        {'w': [1, 2]}
        """
        from trialbook.models.logged import log_model

        return log_model(self, model, name, input_example=input_example, trusted=trusted)

    @property
    def models(self) -> dict[str, dict[str, Any]]:
        """The models logged with :meth:`log_model`, by artifact name: the content of each
        one's ``model.json`` (``flavour``, ``class``, ``requirements``, ``input_example``...).

        Examples
        --------
        >>> Run(1).models
        {}
        """
        if self._artifacts is None:
            return {}
        from trialbook.models.logged import list_models

        return list_models(self)

    def load_model(
        self, name: str = "model", *, trusted: Iterable[str] = (), model: Any = None
    ) -> Any:
        """The model logged with :meth:`log_model` as ``name`` (``trusted=``: extra types a
        scikit-learn model may rebuild; ``model=``: the PyTorch module to fill with its
        weights, else the ``state_dict`` is returned). See :meth:`log_model` for an example.
        """
        from trialbook.models.logged import load_logged

        return load_logged(self, name, trusted=trusted, model=model)

    def held_artifacts(self) -> dict[str, Any]:
        """The artifacts not written yet: name -> bytes or absolute path (what a task job
        hands back from its worker, written by the recorder with the job's run).

        Examples
        --------
        >>> run = Run(1)
        >>> _ = run.log_artifact(b"x", name="x.bin")
        >>> run.held_artifacts()
        {'x.bin': b'x'}
        """
        shelf = self._artifacts
        if shelf is None or callable(shelf):
            return {}
        return {name: kept for name, (kept, _) in shelf.held.items()}

    def write_artifacts(self) -> None:
        """Write the artifacts held back until the run's experiment was in a store (its
        owner calls this once the run is written)."""
        shelf = self._artifacts
        if shelf is not None and not callable(shelf) and shelf.held:
            shelf.flush(self.id)

    def on_point(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback()`` after each point logged (once per :meth:`log_metrics` call;
        ``None``: stop); a live writer
        (:class:`trialbook.live.LiveWriter`) uses it to write points while the run runs.

        Examples
        --------
        >>> run, seen = Run(1), []
        >>> run.on_point(lambda: seen.append(1))
        >>> run.log_metric("loss", 0.5); run.on_point(None); run.log_metric("loss", 0.4)
        >>> seen
        [1]
        """
        self._on_point = callback

    # -- copies executed elsewhere --

    @classmethod
    def replica(
        cls,
        run_id: int,
        *,
        params: Mapping[str, Any],
        kind: str,
        state: Mapping[str, Any],
        fields: Mapping[str, Any],
        metrics: dict[str, list[Any]],
        tags: Mapping[str, Any] | None = None,
    ) -> Run:
        """A copy of a run rebuilt where it executes (a worker process), tied to no experiment:
        ``state`` and ``fields`` as they were, ``metrics`` the original's
        :meth:`metric_summary`, so that the copy knows the metrics stored so far.

        Examples
        --------
        >>> copy = Run.replica(4, params={"x": 1}, kind="run", state={}, fields={"y": 2},
        ...                    metrics={"loss": [3, 0.5]})
        >>> copy.fields.y, copy.metric_names()
        (2, ['loss'])
        """
        run = cls(run_id, params=params, kind=kind, tags=tags)
        run.state.update(state)
        dict.update(run.fields, fields)
        run._counts = metrics
        return run

    def absorb_replica(
        self,
        *,
        status: str,
        error: ErrorInfo | None,
        started: float | None,
        finished: float | None,
        state: Mapping[str, Any],
        fields: Mapping[str, Any],
        metrics: list[MetricChunk],
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Take what an execution of a :meth:`replica` of this run left: its status, error,
        timings, ``state``, ``fields`` and ``tags``, and its metric points (which replace the
        metrics of the same names, see :meth:`absorb_execution`)."""
        if tags is not None:
            dict.clear(self._tags)
            dict.update(self._tags, tags)
        self.status = status
        self.error = error
        self.started, self.finished = started, finished
        self.state.clear()
        self.state.update(state)
        dict.clear(self.fields)
        dict.update(self.fields, fields)
        self._attach_sequences()
        self.absorb_execution(metrics)
        self.touch()

    # -- life cycle --

    @property
    def tags(self) -> Tags:
        """The run's tags (see :class:`Tags`); assigning a mapping replaces them all.

        Examples
        --------
        >>> run = Run(1, tags={"team": "vision"})
        >>> run.tags = {"reviewed": True}
        >>> dict(run.tags)
        {'reviewed': True}
        """
        return self._tags

    @tags.setter
    def tags(self, values: Mapping[str, Any]) -> None:
        self._tags = Tags(values, changed=self.touch)
        self.touch()

    @property
    def note(self) -> str | None:
        """The run's note: markdown text kept in its ``note`` tag (``None``: no note). Setting
        it marks the run changed, so the next ``persist()`` stores it; ``None``, a blank text
        or ``del run.note`` removes it. In a graph step: ``trialbook.current_run().note = ...``.

        Examples
        --------
        >>> run = Run(1)
        >>> run.note = "lr too high: **diverged** after epoch 3"
        >>> run.tags["note"]
        'lr too high: **diverged** after epoch 3'
        >>> del run.note
        >>> run.note is None, dict(run.tags)
        (True, {})
        """
        value = self._tags.get(NOTE_TAG)
        return value if isinstance(value, str) else None

    @note.setter
    def note(self, value: str | None) -> None:
        text = note_text(value, f"the note of run {self.id}")
        if text is not None:
            self._tags[NOTE_TAG] = text
        elif NOTE_TAG in self._tags:
            del self._tags[NOTE_TAG]

    @note.deleter
    def note(self) -> None:
        self.note = None

    def touch(self) -> None:
        """Mark the run as changed, so that the next persist writes it."""
        if self._sink is not None:
            self._sink(self)

    @property
    def duration(self) -> float | None:
        """Seconds between start and end of the last execution (``None`` if not finished)."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    def start(self) -> None:
        """Mark the run as running (clears a previous error) and begin a new execution: a
        metric logged during it replaces the points earlier executions logged under that
        name (fields are replaced by assigning them; the others keep their values)."""
        self.status = Status.RUNNING.value
        self.error = None
        self.started = _now()
        self.finished = None
        self._begin_execution()

    def mark_running(self) -> None:
        """Show the run as running while a copy of it executes elsewhere (a worker process,
        a cluster): status and start time only; what the copy leaves comes back with
        :meth:`absorb_replica`.

        Examples
        --------
        >>> run = Run(1)
        >>> run.mark_running()
        >>> run.status, run.started is not None
        ('running', True)
        """
        self.status = Status.RUNNING.value
        self.started = _now()
        self.touch()

    def finish(self, exc: BaseException | None = None) -> None:
        """Mark the run as done, or failed with ``exc`` (its traceback is kept)."""
        self._end_execution()
        self.finished = _now()
        if exc is None:
            self.status = Status.DONE.value
        else:
            self.status = Status.FAILED.value
            self.error = error_info(exc)
        self.touch()

    # -- metrics --

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Append a point to the metric ``name``; ``step`` defaults to the number of points so far.

        Examples
        --------
        >>> run = Run(1)
        >>> run.log_metric("loss", 0.9)
        >>> run.log_metric("loss", 0.7, step=10)
        >>> run.metrics("loss")[["step", "value"]].values.tolist()
        [[0.0, 0.9], [10.0, 0.7]]
        """
        try:
            s = self._series[name]
        except KeyError:
            s = self._open_series(name)
        if step is not None or s.steps is not None:
            s.explicit_steps().append(s.base + len(s.values) if step is None else step)
        try:
            s.values.append(value)
        except TypeError:
            if s.steps is not None:
                s.steps.pop()
            msg = (
                f"metric {name!r} takes real numbers (got {value!r} that is a {type(value)}); "
                "store other values in run.fields"
            )
            raise ConfigError(msg) from None
        s.times.append(_now())
        if self._on_point is not None:
            self._on_point()

    def log_metrics(self, name: str, values: Any, steps: Any = None) -> None:
        """Append many points to the metric ``name`` at once: a NumPy array or a sequence of
        real numbers, copied into the run's buffer in one go (no Python work per point).

        ``steps`` (integers, one per value) defaults to continuing the series: the number of
        points so far, then one more per value. Every point of one call gets the same time.
        As with :meth:`log_metric`, the first points logged under a name during an execution
        replace the points earlier executions logged under it.

        Raises
        ------
        ConfigError
            If ``values`` holds something other than real numbers or is not one-dimensional,
            or if ``steps`` are not integers or not as many as the values; nothing is logged.

        Examples
        --------
        >>> import numpy as np
        >>> run = Run(1)
        >>> run.log_metric("loss", 1.0)
        >>> run.log_metrics("loss", np.array([0.5, 0.25]))
        >>> run.log_metrics("loss", [0.125], steps=[10])
        >>> run.metrics("loss")[["step", "value"]].values.tolist()
        [[0.0, 1.0], [1.0, 0.5], [2.0, 0.25], [10.0, 0.125]]
        >>> run.log_metrics("loss", [0.1, 0.2], steps=[11])
        Traceback (most recent call last):
        ...
        trialbook.errors.ConfigError: log_metrics('loss'): 1 steps for 2 values; give one step ...
        """
        import numpy as np

        if type(name) is not str or not name:
            msg = f"a metric name must be a non-empty str (got {name!r})"
            raise ConfigError(msg)
        points = _real_array(name, values)
        count = len(points)
        step_array = None if steps is None else _step_array(name, steps, count)
        if not count:
            return
        try:
            s = self._series[name]
        except KeyError:
            s = self._open_series(name)
        if step_array is not None:
            s.explicit_steps().frombytes(step_array.data.cast("B"))
        elif s.steps is not None:
            first = s.base + len(s.values)
            s.steps.frombytes(np.arange(first, first + count, dtype=np.int64).data.cast("B"))
        s.values.frombytes(points.data.cast("B"))
        s.times.frombytes(np.full(count, _now()).data.cast("B"))
        if self._on_point is not None:
            self._on_point()

    def _open_series(self, name: str) -> _Series:
        if type(name) is not str or not name:
            msg = f"a metric name must be a non-empty str (got {name!r})"
            raise ConfigError(msg)
        if self._previous is not None:  # the first point of this execution: replace the old
            self._previous.pop(name, None)
            if self._counts.pop(name, None) is not None:
                self._replaced = self._replaced | {name}  # rare: a new set then
        count = self._counts.get(name)
        s = self._series[name] = _Series(count[0] if count else 0)
        self.touch()
        return s

    def _begin_execution(self) -> None:
        self._end_execution()
        self._previous, self._series = self._series, {}

    def _end_execution(self) -> None:
        """Keep the buffered points of the metrics this execution did not log."""
        if self._previous is None:
            return
        for name, s in self._previous.items():
            self._series.setdefault(name, s)
        self._previous = None

    def replaced_metrics(self) -> list[tuple[int, str]]:
        """``(run id, name)`` of the stored metrics a later execution replaced: the store
        deletes their points when the new ones are written (see :meth:`metrics_written`).

        Examples
        --------
        >>> run = Run(1)
        >>> run.log_metric("loss", 0.5)
        >>> run.metrics_written()  # as if persisted
        >>> run.start(); run.log_metric("loss", 0.4); run.finish()
        >>> run.replaced_metrics(), run.metrics("loss")["value"].tolist()
        ([(1, 'loss')], [0.4])
        """
        if not self._replaced and not self._sequences:
            return []
        names = self._replaced | self._replaced_sequences()
        if not names:
            return []
        return [(self.id, name) for name in sorted(names)]

    def absorb_execution(self, chunks: list[MetricChunk]) -> None:
        """Take the points of an execution that ran elsewhere (a copy of this run in a worker
        process): like points logged here during an execution, they replace the metrics of
        the same names."""
        self._begin_execution()
        try:
            self.absorb_metrics(chunks)
        finally:
            self._end_execution()

    def pending_metrics(self, *, sequences: bool = True) -> list[MetricChunk]:
        """The buffered points as chunks, with the new records of the run's sequences unless
        ``sequences`` is false (a sequence travelling back from a worker carries its own);
        call :meth:`metrics_written` once they are stored."""
        if not self._series and not self.fields:  # nothing buffered, no sequence
            return []
        chunks = self._sequence_chunks() if sequences else []
        for name, s in self._series.items():
            if len(s.values):
                chunks.append(
                    MetricChunk(
                        self.id,
                        name,
                        len(s.values),
                        s.step_array().tobytes(),
                        s.values.tobytes(),
                        s.times.tobytes(),
                        s.base,  # points before these: the same on a retry of the write
                    )
                )
        return chunks

    def metrics_written(self) -> None:
        """Forget the buffered points: they are in the store now."""
        if not (self._series or self._previous or self._replaced or self.fields):
            self._sequences = {}  # nothing buffered, no sequence: nothing else changes
            return
        self._counts = self.metric_summary(extent=True)
        if self._previous is None:
            self._series = {}
        else:  # written while it runs: the metrics it logs go on from the points written
            self._series = {name: _Series(self._counts[name][0]) for name in self._counts
                            if name in self._series}  # fmt: skip
        self._replaced = _NO_NAMES
        for seq in self.sequence_fields().values():
            seq.written()
        self._remember_sequences()
        self._attach_sequences()

    def written(self) -> None:
        """The record of :meth:`to_record` and the chunks of :meth:`pending_metrics` are in
        the store now: forget the buffered points and hold the version just written (the next
        write replaces that one only).

        Examples
        --------
        >>> run = Run(1)
        >>> run.version, run.to_record().version
        (None, None)
        >>> run.written()
        >>> run.version, run.to_record().version
        (1, 1)
        """
        self.metrics_written()
        self.version = 1 if self.version is None else self.version + 1
        self._writer = None

    def absorb_metrics(self, chunks: list[MetricChunk]) -> None:
        """Append points recorded elsewhere (by a copy of this run in a worker process)."""
        for chunk in chunks:
            try:
                s = self._series[chunk.name]
            except KeyError:
                s = self._open_series(chunk.name)
            s.explicit_steps().frombytes(chunk.steps)
            s.values.frombytes(chunk.values)
            s.times.frombytes(chunk.times)

    def metric_names(self) -> list[str]:
        """Names of the metrics this run has (stored or buffered)."""
        return sorted({*self._counts, *self._series, *(self._previous or ())})

    def metrics(self, name: str | None = None) -> pd.DataFrame:
        """Points of one metric (columns ``step``, ``value``, ``time``) or of all (plus ``name``).

        Raises
        ------
        NotFoundError
            If the run has no metric of that name.
        """
        import pandas as pd

        if name is None:
            frames = [self.metrics(n).assign(name=n) for n in self.metric_names()]
            columns = ["name", "step", "value", "time"]
            if not frames:
                return pd.DataFrame(columns=columns)
            return pd.concat(frames, ignore_index=True)[columns]
        if name not in self.metric_names():
            names = self.metric_names()
            msg = (
                f"run {self.id} has no metric {name!r} (it has: {', '.join(names) or 'none'})"
                f"{did_you_mean(name, names)}"
            )
            raise NotFoundError(msg)
        return pd.DataFrame(dict(zip(("step", "value", "time"), self._points(name), strict=True)))

    def _points(self, name: str) -> tuple[Any, Any, Any]:
        import numpy as np

        parts = []
        if name in self._counts and self._metric_source is not None:
            stored = self._metric_source(self.id, name)
            if stored is not None:
                parts.append((stored.steps, stored.values, stored.times))
        s = self._series.get(name) or (self._previous or {}).get(name)
        if s is not None:
            parts.append(
                (
                    s.step_array(),
                    np.frombuffer(s.values, dtype="<f8"),
                    np.frombuffer(s.times, dtype="<f8"),
                )
            )
        if not parts:
            return np.empty(0, "<i8"), np.empty(0, "<f8"), np.empty(0, "<f8")
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))  # type: ignore[return-value]

    def metric_summary(self, *, extent: bool = False) -> dict[str, list[Any]]:
        """``{name: [count, last value]}`` over stored and buffered points; with ``extent``,
        ``[count, last value, min, max]`` as the store keeps it (min and max ignore NaN;
        ``None`` when unknown: all NaN, or points stored by a version that kept only the
        count and the last value).

        Examples
        --------
        >>> run = Run(1)
        >>> for x in (0.5, 0.2, float("nan"), 0.9):
        ...     run.log_metric("loss", x)
        >>> run.metric_summary(), run.metric_summary(extent=True)
        ({'loss': [4, 0.9]}, {'loss': [4, 0.9, 0.2, 0.9]})
        """
        if not self._counts and not self._series and self._previous is None:
            return {}
        if not extent:  # the count and the last value: no pass over the points
            out = {k: list(v[:2]) for k, v in self._counts.items()}
            for series in (
                (self._series,) if self._previous is None else (self._previous, self._series)
            ):
                for name, s in series.items():
                    if len(s.values):
                        out[name] = [s.base + len(s.values), s.values[-1]]
            return out
        out = {k: list(v) for k, v in self._counts.items()}
        for series in (self._series,) if self._previous is None else (self._previous, self._series):
            for name, s in series.items():
                if len(s.values):
                    low, high = _extent(s.values)
                    prior = out.get(name) if s.base else None
                    if s.base and (prior is None or len(prior) < 4):
                        low = high = None  # the stored points' extent is unknown
                    elif prior is not None:
                        low, high = _join(prior[2], low, min), _join(prior[3], high, max)
                    out[name] = [s.base + len(s.values), s.values[-1], low, high]
        return out

    # -- conversion to and from records --

    def to_record(self, *, allow_pickle: bool = False) -> RunRecord:
        """The run as a :class:`RunRecord` (params, fields and result encoded)."""
        # Written for a million runs at once: the empty parts cost no call, and the fields
        # go by position (in the order RunRecord declares them: half the time of keywords).
        return RunRecord(
            self.id,
            self.kind,
            str(self.status),
            _encoded(self.params, allow_pickle, self.id, "param") if self.params else {},
            _encoded(self.fields, allow_pickle, self.id, "field") if self.fields else {},
            dict(self.tags) if self.tags else {},
            self.key,
            self.seed,
            self.created,
            self.started,
            self.finished,
            None if self.result is None else encode(self.result, allow_pickle=allow_pickle),
            self.error,
            self.code,
            self.environment,
            self.metric_summary(extent=True)
            if self._counts or self._series or self._previous
            else {},
            self.version,
            None if self.version is None else self._write_token(),
        )

    def _write_token(self) -> str | None:
        """The token of the change being written (kept until :meth:`written`: the same if the
        write is retried); ``None`` for a run never stored."""
        if self.version is None:
            return None
        if self._writer is None:
            import secrets

            self._writer = secrets.token_hex(8)
        return self._writer

    @classmethod
    def from_record(cls, record: RunRecord, *, allow_pickle: bool = False) -> Run:
        """Rebuild a run from what a store returned."""
        # Loading an experiment builds thousands of runs: set every slot once, directly.
        run = object.__new__(cls)
        run.id = record.run_id
        run.kind = record.kind
        run.params = Bunch(_decoded(record.params, allow_pickle))
        run._tags = Tags.loaded(record.tags, run.touch)
        run.vars = Bunch()
        run.state = Bunch()
        fields = run.fields = Fields(changed=run.touch)
        if record.fields:
            dict.update(fields, _decoded(record.fields, allow_pickle))
        run.status = record.status
        run.error = record.error
        run.result = (
            record.result
            if type(record.result) is not Encoded
            else decode_or_placeholder(record.result, allow_pickle=allow_pickle)
        )
        run.seed = record.seed
        run.key = record.key
        run.code = record.code
        run.environment = record.environment
        run.created = record.created or _now()
        run.started = record.started
        run.finished = record.finished
        run._series = {}
        run._counts = {k: list(v) for k, v in record.metrics.items()} if record.metrics else {}
        run._previous = None
        run._replaced = set()
        run._sink = None
        run._metric_source = None
        run._on_point = None
        run.version = record.version
        run._writer = None
        run._artifacts = None
        run.config = Bunch()
        run._remember_sequences()
        run._attach_sequences()
        return run

    # -- sequences: fields whose records are stored as metric points --

    def sequence_fields(self) -> dict[str, Sequence]:
        """The run's fields that hold a :class:`~trialbook.sequence.Sequence`, by name."""
        if not self.fields:
            return {}
        return {name: v for name, v in self.fields.items() if type(v) is Sequence}

    def _remember_sequences(self) -> None:
        """Note the sequences as stored now (to delete their points if they are replaced)."""
        self._sequences = {n: (s.token, s.columns) for n, s in self.sequence_fields().items()}

    def _attach_sequences(self) -> None:
        for name, seq in self.sequence_fields().items():
            seq.attach(self._sequence_loader(name))
            seq.on_append(self.touch)

    def _sequence_loader(self, field: str) -> Callable[[str], Any]:
        def load(column: str) -> tuple[Any, Any, Any] | None:
            source = self._metric_source
            stored: MetricSeries | None = (
                None if source is None else source(self.id, sequence_metric(field, column))
            )
            return None if stored is None else (stored.steps, stored.values, stored.times)

        return load

    def _replaced_sequences(self) -> set[str]:
        """Metric names of stored sequences that the run's fields no longer hold (a new
        ``Sequence()`` assigned, or the field dropped)."""
        if not self._sequences:
            return set()
        out: set[str] = set()
        for name, (token, columns) in self._sequences.items():
            current = self.fields.get(name)
            if type(current) is not Sequence or current.token != token:
                out.update(sequence_metric(name, column) for column in columns)
        return out

    def _sequence_chunks(self) -> list[MetricChunk]:
        chunks = []
        for field, seq in self.sequence_fields().items():
            for column, (start, points) in seq.pending().items():
                name = sequence_metric(field, column)
                if name in self._series or name in self._counts:
                    msg = (
                        f"run {self.id} has both a metric {name!r} and a sequence field "
                        f"{field!r} with a column {column!r}, stored under the same name; "
                        "rename one of them"
                    )
                    raise ConfigError(msg)
                chunks.append(
                    MetricChunk(
                        self.id, name, len(points.values), points.steps.tobytes(),
                        points.values.tobytes(), points.times.tobytes(), start,
                    )
                )  # fmt: skip
        return chunks


def sequence_metric(field: str, column: str) -> str:
    """The metric name under which a column of a sequence field is stored.

    Examples
    --------
    >>> sequence_metric("history", "loss")
    'history.loss'
    """
    return f"{field}.{column}"


def _real_array(name: str, values: Any) -> Any:
    """``values`` as a contiguous one-dimensional float64 array, or a ``ConfigError`` naming
    the metric and the first value that is not a real number (the rule of ``log_metric``)."""
    import numpy as np

    try:
        found = np.asarray(values)
    except (TypeError, ValueError):  # e.g. a ragged nesting of sequences
        found = None
    if found is None or found.ndim != 1:
        shape = "" if found is None else f" of shape {found.shape}"
        msg = (
            f"log_metrics({name!r}) takes a one-dimensional array or sequence of real numbers "
            f"(got {_short(values)}{shape}); for one value use log_metric"
        )
        raise ConfigError(msg)
    if found.dtype.kind in "biuf":
        return np.ascontiguousarray(found, dtype=np.float64)
    # the values as given ([1.0, "x"] is an array of strings for NumPy); any object with
    # __float__ is a real number, as in log_metric
    items = (found if type(values) is np.ndarray else np.asarray(values, dtype=object)).tolist()
    try:
        return np.frombuffer(array.array("d", items), dtype=np.float64)
    except TypeError:
        bad = next((v for v in items if not _is_real(v)), values)
    msg = (
        f"metric {name!r} takes real numbers (got {bad!r} that is a {type(bad)} in the values "
        f"given to log_metrics); store other values in run.fields"
    )
    raise ConfigError(msg)


def _is_real(value: Any) -> bool:
    try:
        array.array("d", [value])
    except TypeError:
        return False
    return True


def _step_array(name: str, steps: Any, count: int) -> Any:
    """``steps`` as a contiguous int64 array of ``count`` items, or a ``ConfigError``."""
    import numpy as np

    try:
        found = np.asarray(steps)
    except (TypeError, ValueError):
        found = None
    if found is not None and found.dtype.kind == "O":
        try:
            found = np.frombuffer(array.array("q", found.tolist()), dtype=np.int64)
        except (TypeError, OverflowError):
            found = None
    if found is None or found.ndim != 1 or found.dtype.kind not in "iu":
        kind = "" if found is None else f", {found.dtype} of shape {found.shape}"
        msg = (
            f"log_metrics({name!r}): steps must be a one-dimensional array or sequence of "
            f"64-bit integers (got {_short(steps)}{kind})"
        )
        raise ConfigError(msg)
    if len(found) != count:
        msg = (
            f"log_metrics({name!r}): {len(found)} steps for {count} values; give one step per "
            "value, or no steps (they continue the series)"
        )
        raise ConfigError(msg)
    if found.dtype.kind == "u" and len(found) and found.max() > np.iinfo(np.int64).max:
        msg = f"log_metrics({name!r}): steps must fit in a 64-bit signed integer"
        raise ConfigError(msg)
    return np.ascontiguousarray(found, dtype=np.int64)


def _short(value: Any) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else f"{text[:57]}..."


def _decoded(values: dict[str, Any], allow_pickle: bool) -> dict[str, Any]:
    for v in values.values():
        if type(v) is Encoded:
            return {
                k: decode_or_placeholder(v, allow_pickle=allow_pickle) for k, v in values.items()
            }
    return values


_PLAIN_SCALARS = frozenset({int, float, str, bool, type(None)})


def _encoded(values: dict[str, Any], allow_pickle: bool, run_id: int, what: str) -> dict[str, Any]:
    """``values`` encoded for storage (the same dict, copied, when all are plain scalars)."""
    for v in values.values():
        if type(v) not in _PLAIN_SCALARS:
            break
    else:
        return dict(values)
    out = {}
    for name, value in values.items():
        if type(value) is Sequence:  # a marker: the records are the run's metric points
            out[name] = Encoded("tjson", _sequence_tree(value))
            continue
        if type(value) is Pickled:  # read without the opt-in: written back as it was
            out[name] = value.encoded
            continue
        try:
            out[name] = encode(value, allow_pickle=allow_pickle)
        except ConfigError as exc:
            msg = f"{what} {name!r} of run {run_id} cannot be persisted: {exc}"
            raise type(exc)(msg) from None
    return out


def _sequence_tree(seq: Sequence) -> bytes:
    import json

    return json.dumps({"__tb__": "sequence", "v": seq.marker()}, separators=(",", ":")).encode()


def error_info(exc: BaseException) -> ErrorInfo:
    """Summarise an exception (type name, message, formatted traceback) for storage.

    Examples
    --------
    >>> info = error_info(ZeroDivisionError("division by zero"))
    >>> info.type, info.message, info.traceback
    ('ZeroDivisionError', 'division by zero', 'ZeroDivisionError: division by zero\\n')
    """
    import traceback

    text = "".join(traceback.format_exception(exc))
    return ErrorInfo(type(exc).__name__, str(exc), text)


def current_run() -> Run | None:
    """The run whose step is executing in this thread or task, if any.

    Examples
    --------
    >>> current_run() is None
    True
    """
    return _CURRENT.get()


class using_run:
    """Make ``run`` the :func:`current_run` inside a ``with`` block.

    Examples
    --------
    >>> with using_run(Run(7)) as run:
    ...     current_run().id
    7
    """

    __slots__ = ("_run", "_token")

    def __init__(self, run: Run) -> None:
        self._run = run

    def __enter__(self) -> Run:
        self._token = _CURRENT.set(self._run)
        return self._run

    def __exit__(self, *exc: object) -> None:
        _CURRENT.reset(self._token)


def iter_scalars(values: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """The ``(name, value)`` pairs of ``values`` that are scalars (for table columns)."""
    if not values:
        return
    for k, v in values.items():
        if type(v) in _SCALARS:
            yield k, v
        elif type(v).__module__ == "numpy" and getattr(v, "ndim", 1) == 0:
            yield k, v.item()


_SCALARS = frozenset({int, float, str, bool, type(None)})
