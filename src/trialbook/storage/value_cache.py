"""Columns of run values kept in memory while a store is unchanged, so that a long-lived
reader (the web UI's server) filters, sorts and groups a large experiment without reading a
million JSON documents again for each view (issue 15).

:class:`ValueCache` holds, per experiment, the values of the names the views asked for
(:class:`~trialbook.storage.value_columns.Column`), read in one pass by the store's
``value_columns`` and trusted while the store's ``change_token`` is the one read before them.
The token changes on every commit to the store, by any process, so an answer from the cache is
the answer the store would give at that moment. On a store that also counts the writes of each
experiment's runs (``experiment_token``: SQLite and the SQL stores), a commit makes the cache
look at that count rather than drop everything: an experiment none of whose runs was written
keeps its columns (a heartbeat, a write to another experiment), and one whose runs were written
reads only those runs (``value_columns(..., since=seq)``) and merges them in, so that a live
experiment is not read whole after each write; a delete of runs makes its columns read whole
again. Columns read whole are also saved to value files (:mod:`trialbook.storage.value_files`),
which a process started later on the store takes while the experiment's token is the same (a
server restarted answers its first views from them). A store without ``change_token`` and
``value_columns`` (Redis, MongoDB), an in-memory store, an experiment of fewer than
:attr:`ValueCache.min_runs` runs, an experiment with lost runs, or a query the columns cannot
answer exactly goes to the store as before.

:func:`cached_page` and :func:`cached_groups` are what :mod:`trialbook.web.table` calls.

Examples
--------
>>> import tempfile
>>> from trialbook.storage import open_store
>>> from trialbook.storage.records import RunRecord
>>> store = open_store(tempfile.mkdtemp())
>>> exp = store.create_experiment("e")
>>> store.write_runs(exp.id, [RunRecord(i, params={"lr": i / 10}) for i in range(1, 6)])
>>> cache = value_cache(store)
>>> cache.min_runs = 0  # the default leaves small experiments to the store
>>> def page():
...     return cached_page(store, exp.id, where="lr >= 0.2", order_by="lr", descending=True,
...                        limit=2, offset=0, meta={})
>>> page() is None  # not kept yet: the store answers, and the columns are read meanwhile
True
>>> cache.wait()
True
>>> total, runs = page()
>>> total, [run.run_id for run in runs]
(4, [5, 4])
>>> store.close()
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from trialbook.errors import ConfigError
from trialbook.storage.heartbeats import lost_runs
from trialbook.storage.query import Name, Query, check_names, parse_name, parse_query
from trialbook.storage.records import RunRecord

__all__ = [
    "BUDGET",
    "MIN_RUNS",
    "ValueCache",
    "cached_groups",
    "cached_page",
    "prefetch",
    "value_cache",
]

MIN_RUNS = 20_000
"""Experiments with fewer runs are left to the store: its SQL answers them in milliseconds."""
BUDGET = 1 << 30
"""Bytes of columns a cache keeps at most (the least recently used go first)."""
FETCH = 1000
"""Runs of a page read from the store per call of ``read_runs`` (by id)."""
QUICK_COVER = 0.9
"""The share of an experiment's runs its store's segments must hold exactly for a view to wait
for its columns (:meth:`ValueCache.is_quick`)."""


class _Entry:
    __slots__ = ("columns", "ids", "runs", "stale", "token")

    def __init__(self, runs: int, token: Any) -> None:
        self.runs = runs
        self.ids: Any = None
        self.columns: dict[Name, Any] = {}
        self.token = token
        """The experiment's token (``experiment_token()``) the columns are kept under, or the
        store's ``change_token()`` for a store that has no token per experiment."""
        self.stale = False
        """Whether something was committed to the store since ``token`` was checked."""


class _Build:
    """One read of columns under way (in a thread of its own)."""

    __slots__ = ("done", "experiment_id", "keep", "names", "token")

    def __init__(
        self, experiment_id: int, names: list[Name], keep: Sequence[Name], token: Any
    ) -> None:
        self.experiment_id, self.names, self.token = experiment_id, names, token
        self.keep = {(experiment_id, n) for n in [*names, *keep]}
        """Columns the budget must not drop: those the view asked for."""
        self.done = threading.Event()


class ValueCache:
    """The columns of run values of one store's experiments (see the module documentation).

    Columns are read in a thread of their own (one read at a time), on a connection of their
    own: a view that does not wait for them (``wait=False``) is answered by the store
    meanwhile, and no other read of the store waits for them.

    Parameters
    ----------
    store
        A store with ``change_token()``, ``query_runs()`` and ``value_columns(experiment_id,
        names)``.
    min_runs
        Experiments with fewer runs are not cached (:data:`MIN_RUNS`).
    budget
        Bytes of columns kept at most (:data:`BUDGET`).
    directory
        Where the columns of each experiment are saved once read, for the next process on
        this store (:mod:`trialbook.storage.value_files`); ``None``: the store's
        :func:`~trialbook.storage.value_files.default_directory`; ``False``: nowhere. Only on a
        store with a token per experiment (``experiment_token``).

    Examples
    --------
    >>> from trialbook.storage import open_store
    >>> store = open_store("sqlite:///:memory:")
    >>> ValueCache(store).columns(1, [parse_name("lr")]) is None  # in memory: no token
    True
    >>> store.close()
    """

    def __init__(
        self,
        store: Any,
        *,
        min_runs: int = MIN_RUNS,
        budget: int = BUDGET,
        directory: str | os.PathLike[str] | Literal[False] | None = None,
    ) -> None:
        from trialbook.storage.value_files import ValueFiles, default_directory

        self.store, self.min_runs, self.budget = store, min_runs, budget
        self.reads = 0
        """Passes over an experiment's documents so far (each reads every name it lacks)."""
        self.updates = 0
        """Reads of only the runs written since the columns were kept (then merged into
        them), on a store with a token per experiment."""
        self.loads = 0
        """Experiments whose columns were loaded from the files an earlier process saved."""
        self._per_experiment = hasattr(store, "experiment_token")
        if directory is None:
            directory = default_directory(store) or False
        self.files = ValueFiles(directory) if directory and self._per_experiment else None
        """Where the columns are saved once read (:mod:`trialbook.storage.value_files`)."""
        self.error: BaseException | None = None
        """The error of the last read that failed (its view was answered by the store)."""
        self.file_error: BaseException | None = None
        """The error of the last save of columns to a file that failed (they stay in memory),
        or of a load that failed unexpectedly (they are read from the store)."""
        self.segments_stored = 0
        """Value segments the store made anew after a read (see :meth:`_refresh_segments`)."""
        self.segment_error: BaseException | None = None
        """The error of the last of those that failed (the store is read as it is)."""
        self._lock = threading.Lock()
        self._refreshing = 0  # segments being made anew after reads (see _refresh_segments)
        self._refreshed = threading.Condition(self._lock)
        self._reading = threading.Lock()  # one read of columns at a time
        self._token: Any = None
        self._entries: dict[int, _Entry] = {}
        self._used: OrderedDict[tuple[int, Name], int] = OrderedDict()
        self._builds: list[_Build] = []
        self._rested: dict[int, float] = {}  # experiment -> when its next unasked read may start

    def current(self, token: Any, experiment_id: int) -> bool:
        """Whether the columns given with ``token`` (by :meth:`columns`, for the experiment
        ``experiment_id``) still hold its runs' values: nothing was committed since, or (on a
        store with a token per experiment) nothing to that experiment's runs."""
        store_token, mark = token
        if self.store.change_token() == store_token:
            return True
        return self._per_experiment and self.store.experiment_token(experiment_id) == mark

    def columns(
        self,
        experiment_id: int,
        names: Sequence[Name],
        extra: Sequence[Name] = (),
        *,
        wait: bool = True,
        quick: bool = False,
    ) -> tuple[Any, dict[Name, Any], Any] | None:
        """``(run ids, {name: column}, token)`` of the experiment's runs for ``names`` (``token``
        for :meth:`current`);
        ``None`` when the store cannot tell its changes, the experiment is small, or (with
        ``wait=False``) the columns are not kept yet: their read starts (with the ``extra``
        names not kept yet, in the same pass) and a later call finds them. With ``quick``, it
        waits all the same when the store reads them quickly (from its stored segments, see
        :meth:`is_quick`).

        Examples
        --------
        >>> import tempfile
        >>> from trialbook.storage import open_store
        >>> store = open_store(tempfile.mkdtemp())
        >>> exp = store.create_experiment("e")
        >>> store.write_runs(exp.id, [RunRecord(i, params={"x": i}) for i in (1, 2)])
        >>> cache = ValueCache(store, min_runs=0)
        >>> ids, cols, _ = cache.columns(exp.id, [parse_name("x")])
        >>> ids.tolist(), cols[parse_name("x")].num.tolist(), cache.reads
        ([1, 2], [1.0, 2.0], 1)
        >>> _ = cache.columns(exp.id, [parse_name("x")]); cache.reads  # kept
        1
        >>> store.write_runs(exp.id, [RunRecord(3, params={"x": 3})])
        >>> ids, cols, _ = cache.columns(exp.id, [parse_name("x")])
        >>> ids.tolist(), cache.reads, cache.updates  # only the run written since is read
        ([1, 2, 3], 1, 1)
        >>> store.close()
        """
        for attempt in range(2):
            with self._lock:
                token = self.store.change_token()
                if token is None:
                    return None
                entry = self._entry(experiment_id, token)
                if entry.runs < self.min_runs:
                    return None
                if all(n in entry.columns for n in names):
                    for name in names:
                        self._used.move_to_end((experiment_id, name))
                    return entry.ids, {n: entry.columns[n] for n in names}, (token, entry.token)
                if attempt or (
                    not wait
                    and not entry.columns
                    and time.monotonic() < self._rested.get(experiment_id, 0)
                ):
                    return None  # read again after a commit: not more than a quarter of the time
                wanted = [n for n in dict.fromkeys([*names, *extra]) if n not in entry.columns]
                build = self._start(experiment_id, wanted, names, entry.token)
            if not wait and not (quick and self.is_quick(experiment_id)):
                return None
            build.done.wait()
        return None

    def is_quick(self, experiment_id: int) -> bool:
        """Whether the store holds most of the experiment's values in its stored segments
        (:mod:`~trialbook.storage.value_segments`), so that reading its columns takes a
        fraction of a second: worth waiting for, rather than asking the store's SQL.

        Examples
        --------
        >>> from trialbook.storage import open_store
        >>> store = open_store("sqlite:///:memory:")
        >>> ValueCache(store).is_quick(store.create_experiment("e").id)
        False
        >>> store.close()
        """
        cover = getattr(self.store, "segments_cover", None)
        return cover is not None and cover(experiment_id) >= QUICK_COVER

    def _entry(self, experiment_id: int, token: Any) -> _Entry:
        """The entry of an experiment, its columns trusted at the store's ``token`` (under the
        lock): after a commit, an entry is kept as it is, updated (see :meth:`_refresh`) or
        made anew (without columns)."""
        if token != self._token:  # something was committed: nothing is trusted as it is
            self._token = token
            if self._per_experiment:
                for kept in self._entries.values():
                    kept.stale = True
            else:
                self._entries.clear()
                self._used.clear()
        entry = self._entries.get(experiment_id)
        if entry is not None and entry.stale:
            entry = self._refresh(experiment_id, entry)
        if entry is None:
            total, _ = self.store.query_runs(experiment_id, limit=0)
            mark = self.store.experiment_token(experiment_id) if self._per_experiment else token
            entry = self._entries[experiment_id] = _Entry(total, mark)
            if self.files is not None and mark is not None and total >= self.min_runs:
                self._load(experiment_id, entry)
        return entry

    def _load(self, experiment_id: int, entry: _Entry) -> None:
        """Take the columns an earlier process saved for the experiment at the token it has
        now, if any (under the lock)."""
        assert self.files is not None
        try:
            got = self.files.load(experiment_id, entry.token)
        except Exception as exc:  # never a view's error: the store is read as without files
            self.file_error = exc
            return
        if got is None or len(got[0]) != entry.runs:
            return
        entry.ids = got[0]
        self._keep(experiment_id, entry, got[1])
        self.loads += 1
        self._evict({(experiment_id, n) for n in entry.columns})

    def _refresh(self, experiment_id: int, entry: _Entry) -> _Entry | None:
        """The entry of an experiment after a commit to the store (under the lock): kept as
        it is if none of its runs changed; else updated with the runs written since its token
        (read and merged: a live experiment is not read whole after each write); ``None``
        (dropped) after a delete of runs, or for an experiment replaced or gone."""
        from trialbook.storage.value_columns import merged

        token = self.store.experiment_token(experiment_id)
        if token == entry.token:
            entry.stale = False
            return entry
        base = entry.token
        names = list(entry.columns)
        got = None
        # the same experiment (its creation time), written since (a count never goes back,
        # unless an older copy of the store was restored), and no run deleted since
        if token is not None and entry.ids is not None and names and token[0] == base[0] \
                and token[1] > base[1] and token[2] <= base[1]:  # fmt: skip
            got = self.store.value_columns(experiment_id, names, since=base[1])
        if got is None:
            self._drop(experiment_id)
            return None
        entry.ids, columns = merged(entry.ids, [entry.columns[n] for n in names], *got)
        self._keep(experiment_id, entry, dict(zip(names, columns, strict=True)))
        entry.runs, entry.token, entry.stale = len(entry.ids), token, False
        self.updates += 1
        return entry

    def _keep(self, experiment_id: int, entry: _Entry, columns: dict[Name, Any]) -> None:
        """Put ``columns`` (of the entry's run ids) into the entry, counted in the budget (under
        the lock)."""
        for name, column in columns.items():
            entry.columns[name] = column
            self._used[(experiment_id, name)] = column.nbytes

    def _drop(self, experiment_id: int) -> None:
        """Forget what is kept of an experiment (under the lock)."""
        entry = self._entries.pop(experiment_id, None)
        for name in entry.columns if entry is not None else ():
            self._used.pop((experiment_id, name), None)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no read of columns is under way (``False`` if ``timeout`` seconds passed
        first).

        Examples
        --------
        >>> from trialbook.storage import open_store
        >>> store = open_store("sqlite:///:memory:")
        >>> ValueCache(store).wait()
        True
        >>> store.close()
        """
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if end is None else end - time.monotonic()
            with self._lock:
                builds = list(self._builds)
                if not builds:  # and the segments made anew after them
                    return self._refreshed.wait_for(lambda: not self._refreshing, left)
            if left is not None and left <= 0:
                return False
            builds[0].done.wait(left)

    def _start(
        self, experiment_id: int, names: list[Name], keep: Sequence[Name], token: Any
    ) -> _Build:
        """The read under way of ``names`` (all of them), else a new one keeping the columns
        ``keep`` too (under the lock)."""
        for build in self._builds:
            if (build.experiment_id == experiment_id and build.token == token
                    and set(names) <= set(build.names)):  # fmt: skip
                build.keep.update((experiment_id, n) for n in keep)
                return build
        build = _Build(experiment_id, names, keep, token)
        self._builds.append(build)
        threading.Thread(target=self._read, args=(build,), daemon=True,
                         name="trialbook-value-columns").start()  # fmt: skip
        return build

    def _read(self, build: _Build) -> None:
        """Read the columns of ``build`` and keep them if nothing was committed meanwhile."""
        import numpy as np

        try:
            with self._reading:
                with self._lock:
                    entry = self._entries.get(build.experiment_id)
                    if entry is None or build.token != entry.token:
                        return
                    names = [n for n in build.names if n not in entry.columns]
                if not names:
                    return
                start = time.monotonic()
                got = self.store.value_columns(build.experiment_id, names)
                if got is None:  # the store cannot read them (a document it leaves out)
                    with self._lock:
                        if build.token == entry.token:
                            entry.runs = -1
                    return
                order, columns = got
                self.reads += 1
                with self._lock:
                    self._rested[build.experiment_id] = time.monotonic() + 3 * (
                        time.monotonic() - start
                    )  # a live experiment: at most a quarter of the time spent reading
                    if self._entries.get(build.experiment_id) is not entry or (
                        build.token != entry.token
                    ):
                        return  # changed meanwhile (and seen): not trusted
                    if entry.ids is None or not np.array_equal(entry.ids, order):
                        for name in entry.columns:
                            self._used.pop((build.experiment_id, name), None)
                        entry.columns.clear()
                        entry.ids = order
                    self._keep(build.experiment_id, entry, dict(zip(names, columns, strict=True)))
                    self._evict(build.keep)
                    saved = entry.ids, dict(entry.columns), entry.token
                self._save(build.experiment_id, *saved)
        except Exception as exc:  # the view is answered by the store instead
            self.error = exc
        finally:
            with self._lock:
                self._builds.remove(build)
                self._refreshing += 1
            build.done.set()
            try:
                self._refresh_segments(build.experiment_id)
            finally:
                with self._lock:
                    self._refreshing -= 1
                    self._refreshed.notify_all()

    def _refresh_segments(self, experiment_id: int) -> None:
        """After a read of a large experiment's columns (the views answered meanwhile): have
        the store make anew the segments of its runs that were read from their documents
        (``refresh_segments``), so that the next process reads arrays. Never a view's error."""
        from trialbook.storage.value_segments import SEGMENT_RUNS

        refresh = getattr(self.store, "refresh_segments", None)
        entry = self._entries.get(experiment_id)
        if refresh is None or entry is None or entry.runs < max(self.min_runs, SEGMENT_RUNS):
            return
        try:
            self.segments_stored += refresh(experiment_id)
        except Exception as exc:  # a store that cannot write (read-only): read as it is
            self.segment_error = exc

    def _save(self, experiment_id: int, ids: Any, columns: dict[Name, Any], token: Any) -> None:
        """Save the columns just read, for the next process (in the reading thread), if the
        experiment is still at the token they were read at: a write committed during the read
        may be in them, and a file is taken for exactly its token's state (an older copy of the
        store restored has that token again)."""
        if self.files is None or self.store.experiment_token(experiment_id) != token:
            return
        if self.is_quick(experiment_id):
            return  # the store's own segments are read as fast as a file
        try:
            self.files.save(experiment_id, token, ids, columns)
        except OSError as exc:  # a full disk or a directory not writable: kept in memory only
            self.file_error = exc

    def _evict(self, keep: set[tuple[int, Name]]) -> None:
        """Drop the least recently used columns (never those of ``keep``) beyond the budget."""
        total = sum(self._used.values())
        for key in list(self._used):
            if total <= self.budget:
                return
            if key in keep:
                continue
            total -= self._used.pop(key)
            entry = self._entries.get(key[0])
            if entry is not None:
                entry.columns.pop(key[1], None)


_CACHES_LOCK = threading.Lock()


def value_cache(store: Any) -> ValueCache | None:
    """The :class:`ValueCache` of ``store`` (one per store object, kept on it: it goes with
    the store), or ``None`` for a store that cannot tell its changes or read columns of
    values."""
    if not (hasattr(store, "change_token") and hasattr(store, "value_columns")):
        return None
    with _CACHES_LOCK:
        cache = getattr(store, "_trialbook_value_cache", None)
        if cache is None:
            cache = ValueCache(store)
            try:
                store._trialbook_value_cache = cache
            except AttributeError:  # a store without a __dict__: no cache
                return None
        return cache


def _usable(store: Any, meta: Mapping[str, Any] | None) -> ValueCache | None:
    if meta is None or lost_runs(meta, now=time.time()):
        return None  # lost runs are `failed` in answers: the store's query rewrites for them
    return value_cache(store)


def cached_page(
    store: Any,
    experiment_id: int,
    *,
    where: str | None,
    order_by: str | None,
    descending: bool,
    limit: int | None,
    offset: int,
    meta: Mapping[str, Any] | None,
    extra: Sequence[str] = (),
) -> tuple[int, list[RunRecord]] | None:
    """``(total matching, page)`` as :func:`~trialbook.storage.query.query_runs` answers,
    from the cache's columns; ``None`` when the cache cannot answer (the caller asks the
    store). ``extra``: keys of other columns worth reading in the same pass (the table's).

    Raises
    ------
    QueryError
        On a bad filter or a name no run has, as ``query_runs``.
    """

    from trialbook.storage.value_columns import Unanswerable, order

    cache = _usable(store, meta)
    if cache is None:
        return None
    query = parse_query(where) if where and where.strip() else None
    key = parse_name(order_by) if order_by else None
    names = [n for n, _, _ in query.names()] if query is not None else []
    if key is not None:
        names.append(key)
    if not names:
        return None  # the first page in id order: the store reads it from its index
    check_names(store, experiment_id, query, order_by)
    for _ in range(3):  # a write between the columns and the page's runs: again, updated
        got = cache.columns(experiment_id, list(dict.fromkeys(names)), _names(extra), wait=False,
                            quick=True)  # fmt: skip
        if got is None:
            return None
        ids, columns, token = got
        try:
            rows = order(_matching(query, columns, len(ids)), columns.get(key) if key else None,
                         ids, descending=descending)  # fmt: skip
        except Unanswerable:
            return None
        chosen = ids[rows[offset : None if limit is None else offset + limit]].tolist()
        page = _read_runs(store, experiment_id, chosen)
        if page is not None and cache.current(token, experiment_id):
            return len(rows), page
    return None  # written to all the time: the store answers


def prefetch(
    store: Any, experiment_id: int, keys: Sequence[str], meta: Mapping[str, Any] | None
) -> None:
    """Start reading the columns of ``keys`` (the table's, as it is first shown) in the
    background, for the filters, sorts and groupings that may follow; nothing for a small
    experiment or a store the cache cannot serve."""
    cache = _usable(store, meta)
    shown = _names(keys)
    if cache is not None and shown:
        cache.columns(experiment_id, shown[:1], shown, wait=False)


def cached_groups(
    store: Any,
    experiment_id: int,
    *,
    where: str | None,
    keys: Sequence[Name],
    measures: Sequence[Name],
    meta: Mapping[str, Any] | None,
) -> list[Any] | None:
    """The groups of the matching runs as a store's ``group_runs`` answers them, from the
    cache's columns; ``None`` when the cache cannot answer, or not yet (the columns are then
    read in the background, and the caller asks the store meanwhile)."""

    from trialbook.storage.value_columns import Unanswerable, group

    cache = _usable(store, meta)
    if cache is None or any(n.where == "bare" for n in [*keys, *measures]):
        return None
    query = parse_query(where) if where and where.strip() else None
    names = [n for n, _, _ in query.names()] if query is not None else []
    wanted = list(dict.fromkeys([*names, *keys, *measures]))
    got = cache.columns(experiment_id, wanted, wait=False, quick=True)
    if got is None:
        return None
    ids, columns, _ = got
    try:
        rows = _matching(query, columns, len(ids))
        return group(rows, [columns[k] for k in keys], [columns[m] for m in measures])
    except Unanswerable:
        return None


def _matching(query: Query | None, columns: Mapping[Name, Any], n: int) -> Any:
    """The positions of the runs ``query`` keeps (all ``n`` without one), from ``columns``."""
    import numpy as np

    from trialbook.storage.value_columns import evaluate

    return np.arange(n) if query is None else np.flatnonzero(evaluate(query, columns, n))


def _names(keys: Sequence[str]) -> list[Name]:
    """The names of column keys that are names of the language (others skipped)."""
    out = []
    for key in keys:
        try:
            out.append(parse_name(key))
        except ConfigError:  # a column of the table that is not a name
            continue
    return out


def _read_runs(store: Any, experiment_id: int, ids: list[int]) -> list[RunRecord] | None:
    """The runs of ``ids``, in that order (``None`` if one is gone)."""
    found: dict[int, RunRecord] = {}
    for start in range(0, len(ids), FETCH):
        part = ids[start : start + FETCH]
        found.update((run.run_id, run) for run in store.read_runs(experiment_id, part))
    if len(found) != len(set(ids)):
        return None
    return [found[i] for i in ids]
