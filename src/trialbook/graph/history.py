"""Reading back a lazy-graph experiment: history, parameters, persisted values, metrics, diffs.

:class:`HistoryReader` holds the read side of :class:`trialbook.graph.Experiment`; every method
is one or two indexed store queries, so reading never depends on how trials were written.

Examples
--------
>>> import trialbook
>>> ex = trialbook.Experiment("doc_history", backend="sqlite:///:memory:")
>>> a = ex.parameter("a")
>>> @ex.result
... def inverse(a):
...     return 1 / a
>>> node = inverse(a)
>>> for value in (1, 2):
...     ex.set_parameters(a=value)
...     _ = node.compute(seed=0)
>>> ex.get_history()[["a", "Result", "Result Type", "Success", "Description", "Seed"]]
          a  Result      Result Type  Success Description  Seed
Trial ID
1         1     1.0  <class 'float'>     True         NaN     0
2         2     0.5  <class 'float'>     True         NaN     0
>>> ex.close()
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from trialbook import capture
from trialbook.bulk import paused_gc
from trialbook.codecs import Encoded, decode, decode_or_placeholder
from trialbook.errors import ConfigError, NotFoundError, RunNotFoundError, did_you_mean
from trialbook.graph.nodes import PERSIST_PREFIX, RESULT_NOT_STORED
from trialbook.graph.remote import metric_name
from trialbook.live import mark_lost
from trialbook.names import run_id
from trialbook.storage.bundle import column_docs
from trialbook.storage.records import RunRecord, Status

if TYPE_CHECKING:
    import pandas as pd

    from trialbook.storage.base import Store

__all__ = [
    "ENVIRONMENT_CATEGORIES",
    "HISTORY_COLUMNS",
    "VERBOSE_HISTORY_COLUMNS",
    "HistoryReader",
    "TrialDiff",
]

HISTORY_COLUMNS = [
    "Result",
    "Result Type",
    "Success",
    "Finished",
    "Process Time",
    "Description",
    "Seed",
]
"""Columns of :meth:`HistoryReader.get_history` after the parameter columns."""

VERBOSE_HISTORY_COLUMNS = [
    "Seed",
    "Result",
    "Result Type",
    "Success",
    "Finished",
    "Process Time",
    "Description",
]
"""The same columns in the order of daskperiment's ``get_history(verbose=True)``."""

ENVIRONMENT_CATEGORIES: dict[str, str] = {
    **{name: name for name in capture.SECTION_TITLES},
    "platform": "device",  # daskperiment's name for the platform (OS and machine) section
}
"""``get_environment(category=...)`` names -> environment sections (see
:data:`trialbook.capture.SECTION_TITLES`)."""

_OPTIONAL_SECTIONS = {
    "scipy": "SciPy is installed",
    "conda": "the process runs in a conda environment",
    "git": "the working directory is in a git repository",
    "gpu": "nvidia-smi finds NVIDIA GPUs",
    "numpy": "NumPy is installed",
    "pandas": "pandas is installed",
}
_REQUIREMENT = re.compile(r"^(\S+) (\S+)")


@dataclass
class TrialDiff:
    """What changed between two trials; ``str()`` gives a readable report.

    Examples
    --------
    >>> print(TrialDiff((1, 2), parameters={"b": (2, 3)}, result=(3.3, 2.5)))
    trial 1 -> trial 2
    parameters:
      b: 2 -> 3
    result: 3.3 -> 2.5
    code: unchanged
    environment: unchanged
    """

    trials: tuple[int, int]
    parameters: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    result: tuple[Any, Any] | None = None
    code: list[str] = field(default_factory=list)
    environment: dict[str, list[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.parameters or self.result or self.code or self.environment)

    def __str__(self) -> str:
        lines = [f"trial {self.trials[0]} -> trial {self.trials[1]}"]
        if self.parameters:
            lines.append("parameters:")
            lines += [f"  {k}: {a!r} -> {b!r}" for k, a, b in _triples(self.parameters)]
        else:
            lines.append("parameters: unchanged")
        if self.result is not None:
            lines.append(f"result: {self.result[0]!r} -> {self.result[1]!r}")
        else:
            lines.append("result: unchanged")
        lines += ["code:", *("  " + x for x in self.code)] if self.code else ["code: unchanged"]
        if self.environment:
            lines.append("environment:")
            for section, diff in self.environment.items():
                lines.append(f"  {capture.SECTION_TITLES.get(section, section)}")
                lines += ["    " + x for x in diff]
        else:
            lines.append("environment: unchanged")
        return "\n".join(line.rstrip() for line in lines)


def _triples(values: Mapping[str, tuple[Any, Any]]) -> Iterable[tuple[str, Any, Any]]:
    return ((k, a, b) for k, (a, b) in values.items())


_Columns = tuple[Sequence[Any], ...]
"""What the history shows of the runs, a sequence per column: ids, kinds, statuses, params
(decoded), tags, results (as stored), errors (type and message, or ``None``), seeds, started,
finished."""
_EXTRA = ("kind", "seed")


def _record_columns(records: list[RunRecord], decode_value: Any) -> _Columns:
    if not records:
        return ((),) * 10
    return tuple(zip(*(
        (r.run_id, r.kind, r.status, {k: decode_value(v) for k, v in r.params.items()}, r.tags,
         r.result, None if r.error is None else (r.error.type, r.error.message), r.seed,
         r.started, r.finished)
        for r in records
    ), strict=True))  # fmt: skip


class _Missing:
    def __repr__(self) -> str:
        return "<unset>"


_MISSING = _Missing()


class HistoryReader:
    """The read side of a lazy-graph experiment (base of :class:`trialbook.graph.Experiment`).

    Examples
    --------
    >>> import trialbook
    >>> ex = trialbook.Experiment("doc_reader", backend="sqlite:///:memory:")
    >>> isinstance(ex, HistoryReader)
    True
    >>> ex.close()
    """

    id: str
    _parameters: Mapping[str, Any]

    def __init__(self, store: Store, experiment_id: int) -> None:
        self.store = store
        self.experiment_id = experiment_id

    # -- records --

    def _decode(self, value: Any) -> Any:
        """A stored value for a table or a report: a pickled one without the store's opt-in
        shows as ``<pickled: Class>`` (see :class:`~trialbook.codecs.Pickled`)."""
        return decode_or_placeholder(value, allow_pickle=self.store.allow_pickle)

    def _trial_record(self, trial_id: int) -> RunRecord:
        trial_id = run_id(trial_id, "trial_id")
        found = self.store.read_runs(self.experiment_id, [trial_id])
        if not found:
            ids = [r.run_id for r in self.store.read_runs(self.experiment_id)]
            raise RunNotFoundError(self.id, trial_id, available=ids)
        return found[0]

    def _ended_records(self) -> list[RunRecord]:
        """The records of the experiment but for trials still running (the history lists
        trials that ended, as daskperiment's does); a trial whose process died (its heartbeat
        stopped, see :mod:`trialbook.live`) is there, failed with a ``LostRun`` error."""
        records = self.store.read_runs(self.experiment_id)
        if not any(r.status == Status.RUNNING for r in records):
            return records
        info = self.store.find_experiment(self.id)
        records = mark_lost(records, info.meta if info is not None else {})
        return [r for r in records if not (r.status == Status.RUNNING and r.kind == "trial")]

    def _ended_columns(self) -> _Columns:
        """What the history shows of the records of :meth:`_ended_records`, a sequence per
        column, read column-wise where the store can and no trial is running (issue 16: no
        row per run from the database, documents parsed in bulk, no record per run)."""
        read_columns = getattr(self.store, "read_run_columns", None)
        found = None if read_columns is None else read_columns(self.experiment_id, extra=_EXTRA)
        if found is None or Status.RUNNING.value in found.statuses:
            return _record_columns(self._ended_records(), self._decode)
        docs = list(column_docs(found.docs, found.bundles, found.run_ids))
        params = [doc.get("p") or {} for doc in docs]
        if found.bundles:  # encoded params: only in the runs that have a bundle
            decode_value = self._decode
            params = [{k: decode_value(v) for k, v in p.items()} for p in params]
        errors = [doc.get("e") for doc in docs]
        return (
            found.run_ids, found.extra.get("kind", []), found.statuses, params,
            [doc.get("t") or {} for doc in docs], [doc.get("r") for doc in docs],
            [None if e is None else e[:2] for e in errors], found.extra.get("seed", []),
            found.started, found.finished,
        )  # fmt: skip

    # -- history --

    def get_history(self, verbose: bool = False) -> pd.DataFrame:
        """One row per trial (and per run of other kinds), indexed by trial id (the index is
        named ``Trial ID``).

        Columns: the parameters, then ``Result``, ``Result Type``, ``Success``, ``Finished``,
        ``Process Time``, ``Description`` (the error of a failed trial) and ``Seed``; a
        ``Kind`` column is added when the experiment also holds runs or jobs. With
        ``verbose=True`` the same columns come in daskperiment's verbose order
        (:data:`VERBOSE_HISTORY_COLUMNS`: ``Seed`` first).

        Examples
        --------
        >>> import trialbook
        >>> with trialbook.Experiment("doc_empty", backend="sqlite:///:memory:") as ex:
        ...     history, verbose = ex.get_history(), ex.get_history(verbose=True)
        >>> history.index.name, len(history)
        ('Trial ID', 0)
        >>> history.columns.tolist()
        ['Result', 'Result Type', 'Success', 'Finished', 'Process Time', 'Description', 'Seed']
        >>> verbose.columns.tolist()
        ['Seed', 'Result', 'Result Type', 'Success', 'Finished', 'Process Time', 'Description']
        """
        with paused_gc():  # thousands of dicts and tuples at once: no collection midway
            return self._history_frame(self._ended_columns(), verbose=verbose)

    def _history_frame(self, found: _Columns, *, verbose: bool = False) -> pd.DataFrame:
        """The history table of the runs of ``found`` (all of them, or a page)."""
        import pandas as pd

        names = list(self._parameters)
        for params in found[3]:
            names += [k for k in params if k not in names]
        columns = [*names, *HISTORY_COLUMNS]
        if any(kind != "trial" for kind in found[1]):
            columns.append("Kind")
        rows = self._history_rows(found, names, kind=columns[-1] == "Kind")
        index = pd.Index(found[0], name="Trial ID", dtype="int64")
        frame = pd.DataFrame(rows, columns=columns, index=index)
        if rows:
            frame["Process Time"] = pd.to_timedelta(frame["Process Time"], unit="s")
            frame["Finished"] = pd.to_datetime(frame["Finished"])
        if verbose:
            rest = columns[len(names) + len(HISTORY_COLUMNS) :]  # "Kind"
            frame = frame[[*names, *VERBOSE_HISTORY_COLUMNS, *rest]]
        return frame

    def _repr_html_(self) -> str:
        """The experiment in a notebook: its trials by status and the first 20 rows of its
        history (``… N more``), read with a limited query (see :mod:`trialbook.graph.notebook`).

        Examples
        --------
        >>> import trialbook
        >>> with trialbook.Experiment("doc_html", backend="sqlite:///:memory:") as ex:
        ...     @ex.result
        ...     def one():
        ...         return 1
        ...     one().compute(seed=0)
        ...     "done 1" in ex._repr_html_()
        1
        True
        """
        from trialbook.graph.notebook import history_html

        return history_html(self)

    def plot(
        self,
        metric: str,
        group_by: str | Sequence[str] | None = None,
        *,
        band: str = "minmax",
        x: str = "step",
        ax: Any = None,
    ) -> Any:
        """Draw the metric saved by the trials (:meth:`save_metric`, by epoch) with
        matplotlib and return the axes: one line per trial, or with ``group_by`` (parameter
        names) one mean line per group in a ``band`` (``"minmax"`` or ``"std"``); as
        :meth:`trialbook.RunsExperiment.plot`.

        Raises
        ------
        NotFoundError
            If no trial saved ``metric`` (the message names the metrics they saved).
        ConfigError
            If a ``group_by`` name is no parameter of those trials, or ``band`` or ``x`` is
            unknown.

        Examples
        --------
        >>> import trialbook
        >>> ex = trialbook.Experiment("doc_plot", backend="sqlite:///:memory:")
        >>> @ex.result
        ... def fit():
        ...     for epoch in range(3):
        ...         ex.save_metric("loss", epoch=epoch, value=1 / (epoch + 1))
        >>> fit().compute(seed=0); fit().compute(seed=1)
        >>> [line.get_label() for line in ex.plot("loss").get_lines()]
        ['trial 1', 'trial 2']
        >>> import matplotlib.pyplot as plt; plt.close("all"); ex.close()
        """
        from trialbook.graph.notebook import plot_trials

        return plot_trials(self, metric, group_by, band=band, x=x, ax=ax)

    def _page_frame(self, records: list[RunRecord]) -> pd.DataFrame:
        """The history table of a few records (a page of a query)."""
        return self._history_frame(_record_columns(records, self._decode))

    def _history_rows(
        self, found: _Columns, names: list[str], *, kind: bool
    ) -> list[tuple[Any, ...]]:
        """The rows of the history, computed column by column (issue 16: a list
        comprehension per column rather than a Python function call per trial)."""
        import numpy as np

        if not found[0]:
            return []
        nan, decode_value, done_value = np.nan, self._decode, Status.DONE.value
        _, kinds, statuses, params, tags, stored, errors, seeds, started, ended = found
        done = [status == done_value for status in statuses]
        unstored = [
            t.get(RESULT_NOT_STORED) if d and t else None for t, d in zip(tags, done, strict=True)
        ]
        shown = [d and u is None for d, u in zip(done, unstored, strict=True)]
        results = [
            (r if type(r) is not Encoded else decode_value(r)) if show else None
            for r, show in zip(stored, shown, strict=True)
        ]
        columns: list[Any] = [[p.get(name, nan) for p in params] for name in names]
        columns += [
            [r if show else nan for r, show in zip(results, shown, strict=True)],
            [(u or str(type(r))) if d else None
             for r, d, u in zip(results, done, unstored, strict=True)],
            done,
            [None if t is None else _dt.datetime.fromtimestamp(t) for t in ended],
            [None if a is None or b is None else b - a
             for a, b in zip(started, ended, strict=True)],
            [nan if e is None else f"{e[0]}({e[1]})" for e in errors],
            seeds,
        ]  # fmt: skip
        if kind:
            columns.append(kinds)
        return list(zip(*columns, strict=True))

    def get_persisted(self, name: str, trial_id: int) -> Any:
        """The output of the ``@ex.persist`` step ``name`` in trial ``trial_id``.

        Raises
        ------
        RunNotFoundError
            If there is no such trial.
        NotFoundError
            If that trial did not persist a step of that name.

        Examples
        --------
        >>> import trialbook
        >>> ex = trialbook.Experiment("doc_get_persisted", backend="sqlite:///:memory:")
        >>> @ex.persist
        ... def prepare():
        ...     return {"rows": 3}
        >>> @ex.result
        ... def count(d):
        ...     return d["rows"]
        >>> count(prepare()).compute(seed=0)
        3
        >>> ex.get_persisted("prepare", trial_id=1)
        {'rows': 3}
        >>> ex.close()
        """
        trial_id = run_id(trial_id, "trial_id")
        stored = self.store.read_artifact(self.experiment_id, trial_id, PERSIST_PREFIX + name)
        if stored is None:
            self._trial_record(trial_id)  # raises for an unknown trial
            names = [
                n.removeprefix(PERSIST_PREFIX)
                for n in self.store.list_artifacts(self.experiment_id, trial_id)
                if n.startswith(PERSIST_PREFIX)
            ]
            msg = (
                f"trial {trial_id} of experiment {self.id!r} has no persisted step {name!r} "
                f"(it persisted: {', '.join(map(repr, names)) or 'none'})"
                f"{did_you_mean(name, names)}; decorate the step with @ex.persist"
            )
            raise NotFoundError(msg)
        return decode(stored, allow_pickle=self.store.allow_pickle)  # the value itself: strict

    # -- metrics --

    def load_metric(
        self,
        metric_key: str | None = None,
        trial_id: int | Iterable[int] | None = None,
        *,
        key: str | None = None,
    ) -> pd.DataFrame:
        """Metric ``metric_key`` of one or more trials: indexed by epoch (the index is named
        ``Epoch``), one column per trial (the columns are named ``Trial ID``).

        The metric is named as in :meth:`~trialbook.graph.Experiment.save_metric`: first
        argument, ``metric_key=`` or ``key=``. A trial without that metric gets a column of
        NaN.

        Raises
        ------
        ConfigError
            Without a metric name or without ``trial_id``.
        RunNotFoundError
            For an unknown trial id.
        NotFoundError
            If none of the trials has the metric (the message lists the known ones).

        Examples
        --------
        >>> import trialbook
        >>> ex = trialbook.Experiment("doc_load_metric", backend="sqlite:///:memory:")
        >>> @ex.result
        ... def fit():
        ...     ex.save_metric("loss", epoch=1, value=0.5)
        >>> fit().compute(seed=0)
        >>> ex.load_metric(metric_key="loss", trial_id=1)
        Trial ID    1
        Epoch
        1         0.5
        >>> ex.close()
        """
        import pandas as pd

        key = metric_name(metric_key, key, call="load_metric")
        if trial_id is None:
            msg = (
                f"load_metric({key!r}) needs trial_id=: a trial id or a list of them, e.g. "
                f"ex.load_metric({key!r}, trial_id=[1, 2])"
            )
            raise ConfigError(msg)

        given: Iterable[Any] = (
            trial_id
            if isinstance(trial_id, Iterable) and not isinstance(trial_id, str | bytes)
            else [trial_id]
        )
        ids = [run_id(t, "trial_id") for t in given]
        found = {r.run_id for r in self.store.read_runs(self.experiment_id, ids)}
        for tid in ids:
            if tid not in found:
                self._trial_record(tid)
        series = self.store.read_metrics(self.experiment_id, key, ids)
        if not series:
            names = sorted(self.store.metric_names(self.experiment_id))
            msg = (
                f"no metric {key!r} in trial(s) {', '.join(map(str, ids))} of experiment "
                f"{self.id!r} (its metrics: {', '.join(map(repr, names)) or 'none'})"
                f"{did_you_mean(key, names)}"
            )
            raise NotFoundError(msg)
        columns = {}
        for tid in ids:
            points = series.get(tid)
            if points is None:
                columns[tid] = pd.Series(dtype="float64")
                continue
            s = pd.Series(points.values, index=points.steps)
            columns[tid] = s[~s.index.duplicated(keep="last")]
        frame = pd.DataFrame(columns).sort_index()
        frame.columns.name = "Trial ID"
        frame.index.name = "Epoch"
        return frame

    # -- environment and diffs --

    @overload
    def get_environment(
        self, trial_id: int | None = None, category: None = None
    ) -> dict[str, str]: ...

    @overload
    def get_environment(self, trial_id: int | None = None, *, category: str) -> str: ...

    def get_environment(
        self, trial_id: int | None = None, category: str | None = None
    ) -> dict[str, str] | str:
        """The environment of a trial (``None``: this process): section name -> text, or the
        text of one section with ``category=``.

        The categories are the sections of :data:`trialbook.capture.SECTION_TITLES`
        (``device``, ``cpu``, ``python``, ``requirements``, ``numpy``, ``scipy``, ``pandas``,
        ``conda``, ``git``, ``gpu``) and daskperiment's ``platform`` (the ``device``
        section); structured sections are JSON texts.

        Raises
        ------
        ConfigError
            For an unknown category.
        NotFoundError
            If the environment has no such section (``scipy``, ``conda``, ``git``, ``gpu``...
            are captured only where they exist).

        Examples
        --------
        >>> import json, trialbook
        >>> ex = trialbook.Experiment("doc_env", backend="sqlite:///:memory:")
        >>> sorted(ex.get_environment())
        ['cpu', 'device', ...]
        >>> platform = json.loads(ex.get_environment(category="platform"))
        >>> sorted(platform)
        ['machine', 'node', 'platform', 'release', 'system', 'version']
        >>> ex.close()
        """
        section = None if category is None else _section_of(category)
        if trial_id is None:
            env = dict(capture.environment())
            where = "this process's environment"
        else:
            record = self._trial_record(trial_id)
            env = {}
            if record.environment:
                env = capture.parse_environment(self.store.get_snapshot(record.environment))
            where = f"the environment of trial {trial_id} of experiment {self.id!r}"
        if section is None:
            return env
        if section not in env:
            when = _OPTIONAL_SECTIONS.get(section)
            msg = (
                f"{where} has no {section!r} section"
                f"{f' (it is captured only when {when})' if when else ''}; "
                f"its sections: {', '.join(map(repr, env)) or 'none'}"
            )
            raise NotFoundError(msg)
        return env[section]

    def get_python_packages(self, trial_id: int | None = None) -> str:
        """The installed Python packages of a trial (``None``: this process), one
        ``name==version`` line each, as ``pip freeze`` writes them.

        The ``requirements`` section of :meth:`get_environment` also has each package's
        location.

        Examples
        --------
        >>> import trialbook
        >>> ex = trialbook.Experiment("doc_packages", backend="sqlite:///:memory:")
        >>> any(line.startswith("dask==") for line in ex.get_python_packages().splitlines())
        True
        >>> ex.close()
        """
        text = self.get_environment(trial_id, category="requirements")
        pins = [_REQUIREMENT.match(line) for line in text.splitlines()]
        return "\n".join(f"{m[1]}=={m[2]}" for m in pins if m is not None)

    def diff(self, first: int, second: int) -> TrialDiff:
        """What changed from trial ``first`` to trial ``second``.

        Examples
        --------
        >>> import trialbook
        >>> ex = trialbook.Experiment("doc_diff", backend="sqlite:///:memory:")
        >>> b = ex.parameter("b")
        >>> @ex.result
        ... def inv(b):
        ...     return 10 / b
        >>> for value in (2, 4):
        ...     ex.set_parameters(b=value)
        ...     _ = inv(b).compute(seed=0)
        >>> d = ex.diff(1, 2)
        >>> d.parameters, d.result, d.code
        ({'b': (2, 4)}, (5.0, 2.5), [])
        >>> ex.close()
        """
        a, b = self._trial_record(first), self._trial_record(second)
        pa = {k: self._decode(v) for k, v in a.params.items()}
        pb = {k: self._decode(v) for k, v in b.params.items()}
        params = {
            k: (pa.get(k, _MISSING), pb.get(k, _MISSING))
            for k in [*pa, *(k for k in pb if k not in pa)]
            if not _same(pa.get(k, _MISSING), pb.get(k, _MISSING))
        }
        ra, rb = (self._outcome(r) for r in (a, b))
        code = []
        if a.code != b.code:
            text = [self.store.get_snapshot(r.code) if r.code else "" for r in (a, b)]
            code = capture.source_diff(*text)
        env = {}
        if a.environment != b.environment:
            env = capture.environment_diff(
                self.get_environment(first), self.get_environment(second)
            )
        result = None if _same(ra, rb) else (ra, rb)
        return TrialDiff((first, second), params, result, code, env)

    def _outcome(self, record: RunRecord) -> Any:
        if record.status == Status.DONE and RESULT_NOT_STORED in record.tags:
            return f"<not stored: {record.tags[RESULT_NOT_STORED]}>"
        if record.status == Status.DONE:
            return self._decode(record.result)
        return f"{record.error.type}({record.error.message})" if record.error else record.status


def _section_of(category: str) -> str:
    """The environment section a ``get_environment(category=...)`` name stands for."""
    section = ENVIRONMENT_CATEGORIES.get(str(category).lower())
    if section is None:
        msg = (
            f"unknown environment category {category!r}"
            f"{did_you_mean(str(category).lower(), ENVIRONMENT_CATEGORIES)}; "
            f"expected one of: {', '.join(map(repr, ENVIRONMENT_CATEGORIES))}"
        )
        raise ConfigError(msg)
    return section


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    first, second = capture.output_hash(a), capture.output_hash(b)
    if first is not None and second is not None:
        return first == second
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False
