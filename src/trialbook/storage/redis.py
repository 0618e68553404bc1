"""A store in Redis: ``redis://host:port/db``, ``rediss://`` (TLS), ``unix:///path.sock``,
a ``redis.ConnectionPool`` or a ``redis.Redis`` client.

A ``prefix`` query parameter (``redis://host:6379/0?prefix=team:``) or the ``prefix=`` option
starts every key of the store (default ``trialbook:``), so several stores share a database and
a store can be removed without touching other keys. No command scans the key space (no
``KEYS``, no ``FLUSHDB``). A prefix other than the default is part of the store's ``url``; a
password never is.

Opening a store from a URL first connects with ``connect_timeout`` as the only timeout, so a
wrong address, password or TLS setting fails fast; later commands may take up to 60 s (large
transfers).

Layout
------
With ``P`` the prefix and ``E`` an experiment id:

==================================  =========  ===============================================
key                                 type       holds
==================================  =========  ===============================================
``P experiments``                   hash       experiment name -> id
``P experiment_ids``                string     counter for experiment ids (``INCR``)
``P numpy_docs``                    string     ``1``: the documents of runs hold the plain
                                               values of their NumPy numbers (opening an
                                               older store adds them, then sets it)
``P exp:E``                         hash       ``name``, ``created``, ``updated``, ``meta``
                                               (JSON text), ``next_run_id`` (``HINCRBY``),
                                               ``hashes_by_run`` (``1``: the sets
                                               ``step_hashes:R`` are complete)
``P exp:E:runs``                    zset       run ids (score = id): the history's order
``P exp:E:run:R``                   hash       run ``R``: ``kind``, ``status``, ``key``,
                                               ``seed``, times, ``code``, ``environment``,
                                               ``doc`` (JSON text), ``bundle`` (binary),
                                               ``version`` (none: 0), ``writer``
``P exp:E:key:K``                   zset       ids of the runs whose ``key`` is ``K``
``P exp:E:chunks:R:NAME``           zset       metric chunks of run ``R`` (score: ``start``,
                                               the position of their first point)
``P exp:E:metric:R:NAME``           list       metric chunks of run ``R`` as trialbook wrote
                                               them before chunks had positions (read first)
``P exp:E:counts``                  hash       metric name -> points in the experiment
``P exp:E:counts:R``                hash       metric name -> points in run ``R``
``P exp:E:artifacts:R``             hash       artifact name -> codec, size, data or blob
``P exp:E:step_hashes``             hash       ``step NUL input hash`` -> ``output NUL run``
``P exp:E:step_hashes:R``           set        the fields of ``step_hashes`` run ``R``
                                               wrote (a later run may have replaced some)
``P exp:E:keys``                    set        every key above of the experiment (for delete)
``P deleting``                      set        ids of experiments deleted (their hash gone)
                                               whose keys are not all removed yet
``P snapshot:DIGEST``               hash       ``kind``, ``text`` (content-addressed)
``P blob:DIGEST``                   string     values larger than 256 KiB (content-addressed)
``P blobs``                         zset       blob digests (score = when last written or
                                               reused), for :meth:`RedisStore.collect_garbage`
==================================  =========  ===============================================

Every write of an experiment is one Lua script, atomic on the server (see
:mod:`trialbook.storage.redis_scripts`), that first checks that the experiment's hash still exists:
a write to a deleted experiment raises ``ExperimentNotFoundError`` and writes nothing, so it never
re-creates keys of it. The same script compares the stored versions of the runs the write replaces
that were read from the store, and writes nothing if one moved (``RunConflictError``); it puts each
metric chunk in place of the chunk of the same position and corrects the point counts by the
difference, so a retried write leaves its points once. A write is one round trip, re-saves of runs
read from the store included. Run ids come from ``HINCRBY`` in such a script, so concurrent
processes never collide; experiment ids from ``INCR`` on ``experiment_ids``, so an id is never given
again. :meth:`RedisStore.create_experiment` creates (or replaces) an experiment and writes its first
runs in one script; a command of it that fails removes what it wrote, leaving the experiment it
would replace untouched. Deleting an experiment first removes its name and hash in one script (from
then on every write of it is refused, so no key can be added behind the delete's back), then its
keys, listed in ``exp:E:keys``; an id stays in ``deleting`` until then, and
:meth:`RedisStore.collect_garbage` finishes a delete that was interrupted.
:meth:`RedisStore.delete_runs` removes the step hashes of a run through ``step_hashes:R`` (only
those still pointing at that run). An experiment written before those sets existed (no
``hashes_by_run`` field) gets them from its ``step_hashes`` hash the first time runs of it are
deleted.

A failing command in a script (a key of the wrong type, a server out of memory) does not undo
the commands before it, as in ``MULTI``/``EXEC``: only the first write of a new experiment is
undone.

Many runs are read by one script call per 1,000 runs (their hashes' fields), and their blobs
by one ``MGET`` per 500; a query reads only the fields it needs of each run (see
:mod:`trialbook.storage.redis_query`).

Examples
--------
>>> from trialbook.storage.redis import RedisStore
>>> RedisStore.url_of_pool  # doctest: +ELLIPSIS
<function RedisStore.url_of_pool at ...>
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable, Sequence
from typing import Any

from trialbook.codecs import Encoded
from trialbook.errors import (
    ExperimentExistsError,
    ExperimentNotFoundError,
    NotFoundError,
    RunConflictError,
    StorageError,
    StoreFormatError,
)
from trialbook.identity import content_address
from trialbook.storage.base import ClosingStore, batches, next_version, version_conflicts
from trialbook.storage.bundle import (
    INLINE_LIMIT,
    RUN_COLUMNS,
    blob_digests,
    checked_blob,
    columns,
    dump_doc,
    fill_record,
    load_doc,
    numpy_doc,
    pack,
    record_from_columns,
    run_document,
    unpack_checked,
)
from trialbook.storage.chunks import join_chunk, metric_series, split_chunk
from trialbook.storage.records import (
    ExperimentInfo,
    GcReport,
    MetricChunk,
    MetricSeries,
    RunRecord,
)
from trialbook.storage.redis_query import HMGET_MANY, read_fields
from trialbook.storage.redis_scripts import (
    ALLOCATE,
    COLLECT,
    CREATE,
    MARK_DELETED,
    WRITE,
    Commands,
)
from trialbook.storage.retry import retry_operations
from trialbook.storage.urls import MASK, public_url, take_param, with_param

__all__ = ["RedisStore", "open_redis"]

DEFAULT_PREFIX = "trialbook:"
CONNECT_TIMEOUT = 5.0
SOCKET_TIMEOUT = 60.0
_RUN_FIELDS = (*RUN_COLUMNS[1:], "doc", "bundle", "version")
"""The fields of a run's hash (its id is in the key)."""


def open_redis(location: Any, **options: Any) -> RedisStore:
    """Open a Redis store from a URL, a ``redis.ConnectionPool`` or a ``redis.Redis`` client
    (the registered opener).

    Examples
    --------
    >>> open_redis.claims(object())
    False
    """
    if isinstance(location, str):
        return RedisStore(location, **options)
    pool = getattr(location, "connection_pool", location)  # a redis.Redis client
    return RedisStore(None, pool=pool, **options)


def _claims(client: object) -> bool:
    module = type(client).__module__
    if not module.startswith("redis"):
        return False
    import redis

    return isinstance(client, redis.ConnectionPool | redis.Redis)


open_redis.claims = _claims  # type: ignore[attr-defined]


def _text(value: Any) -> str | None:
    return None if value is None else value.decode() if isinstance(value, bytes) else str(value)


def _num(value: Any, kind: type = float) -> Any:
    return None if value is None or value == b"" else kind(value.decode())


@retry_operations
class RedisStore(ClosingStore):
    """A store in a Redis database (layout: see the module documentation).

    Its ``backend_label`` is ``RedisBackend``; ``url`` never shows the password.

    Parameters
    ----------
    url
        ``redis://[user:password@]host:port/db``, ``rediss://...`` or ``unix:///path.sock``;
        a ``prefix`` query parameter sets the key prefix.
    pool
        A ``redis.ConnectionPool`` to use instead of ``url``.
    prefix
        Start of every key of the store (default ``trialbook:``).
    allow_pickle
        Allow pickled values (see :func:`trialbook.storage.open_store`).
    connect_timeout
        Seconds to wait for the server before failing with :class:`StorageError`.

    Raises
    ------
    StorageError
        When the server cannot be reached or refuses the credentials.

    Examples
    --------
    >>> import redis
    >>> pool = redis.ConnectionPool.from_url("redis://localhost:6379/0")
    >>> RedisStore.url_of_pool(pool)
    'redis://localhost:6379/0'
    """

    backend_label = "RedisBackend"

    def __init__(
        self,
        url: str | None,
        *,
        pool: Any = None,
        prefix: str | None = None,
        allow_pickle: bool = False,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        import redis

        self.allow_pickle = allow_pickle
        self._redis = redis
        self._owns_pool = pool is None  # a pool given by the caller stays open for it
        if pool is None:
            if url is None:
                msg = "RedisStore needs a URL, a redis.ConnectionPool or a redis.Redis client"
                raise StorageError(msg)
            url, query_prefix = take_param(url, "prefix")
            prefix = prefix or query_prefix
            self.url = public_url(url)
            pool = self._pool_from_url(url, connect_timeout)
        else:
            self.url = self.url_of_pool(pool)
        self.prefix = prefix or DEFAULT_PREFIX
        if self.prefix != DEFAULT_PREFIX:  # the URL says where the store is, prefix included
            self.url = with_param(self.url, "prefix", self.prefix)
        self._touched: dict[int, float] = {}
        self._pool = pool
        self._r = redis.Redis(connection_pool=pool)
        self._allocate = self._r.register_script(ALLOCATE)
        self._collect = self._r.register_script(COLLECT)
        self._create = self._r.register_script(CREATE)
        self._mark_deleted = self._r.register_script(MARK_DELETED)
        self._write = self._r.register_script(WRITE)
        self._hmget_many = self._r.register_script(HMGET_MANY)
        try:
            self._call(self._r.ping)
            self._upgrade_numpy_docs()
        except BaseException:
            self.close()
            raise
        self.holds_connections = self._owns_pool

    def _upgrade_numpy_docs(self) -> None:
        """Once per store (until its key ``numpy_docs`` is set): add to the documents of runs
        written before they held the plain values of NumPy numbers (a field ``np.float64(0.9)``
        as ``0.9``) those their bundles hold, so queries find them. A run rewritten meanwhile
        is left to its writer; a store where some run moved is upgraded again at the next
        opening."""
        marker = self._k("numpy_docs")
        if self._call(self._r.exists, marker):
            return
        done = True
        for exp_id in self._ids().values():
            done &= self._add_numpy_values(exp_id)
        if done:
            self._call(self._r.set, marker, 1)

    def _add_numpy_values(self, e: int) -> bool:
        """:meth:`_upgrade_numpy_docs` of experiment ``e``, only where each run changed is
        still at the version read; whether it was."""
        from trialbook.storage.redis_query import run_ids

        ids = run_ids(self, e)
        commands, checked = Commands(), []
        for run_id, (doc, bundle, version) in zip(
            ids, read_fields(self, e, ids, ["doc", "bundle", "version"]), strict=True
        ):
            text = numpy_doc(_text(doc), bundle)
            if text is not None:
                commands.add("HSET", self._k("exp", e, "run", run_id), "doc", text)
                checked.append(RunRecord(run_id, version=int(version or 0)))
        if commands:
            try:
                self._run_write(e, commands, checked)  # nothing, if e was deleted meanwhile
            except RunConflictError:
                return False
        return True

    def _pool_from_url(self, url: str, connect_timeout: float) -> Any:
        """A connection pool for ``url``, after a first connection made within the timeout.

        The probe bounds everything that happens while connecting (a TLS handshake with a
        server that does not speak TLS, a wrong password) by ``connect_timeout``; the pool's
        own socket timeout is longer, for large transfers.
        """
        redis = self._redis
        try:
            probe = redis.Redis.from_url(
                url, socket_connect_timeout=connect_timeout, socket_timeout=connect_timeout
            )
            pool = redis.ConnectionPool.from_url(
                url, socket_connect_timeout=connect_timeout, socket_timeout=SOCKET_TIMEOUT
            )
        except (ValueError, redis.RedisError) as exc:
            msg = (
                f"RedisBackend: cannot use the URL {self.url!r}: {exc}; expected "
                "redis://host:port/db, rediss://host:port/db or unix:///path/to/socket"
            )
            raise StorageError(msg) from exc
        try:
            self._call(probe.ping)
        finally:
            probe.close()
            probe.connection_pool.disconnect()
        return pool

    def __repr__(self) -> str:
        return f"{self.backend_label}({self.url!r})"

    @staticmethod
    def url_of_pool(pool: Any) -> str:
        """The URL a ``redis.ConnectionPool`` connects to, its password masked.

        Examples
        --------
        >>> import redis
        >>> RedisStore.url_of_pool(redis.ConnectionPool.from_url("unix:///tmp/r.sock?db=2"))
        'unix:///tmp/r.sock?db=2'
        >>> RedisStore.url_of_pool(redis.ConnectionPool.from_url("redis://:pw@h:6380/1"))
        'redis://:***@h:6380/1'
        """
        kw = pool.connection_kwargs
        db = kw.get("db", 0)
        user = kw.get("username") or ""
        auth = f"{user}{MASK}@" if kw.get("password") else f"{user}@" if user else ""
        if "path" in kw:
            return f"unix://{auth}{kw['path']}?db={db}"
        scheme = "rediss" if "SSL" in getattr(pool.connection_class, "__name__", "") else "redis"
        return f"{scheme}://{auth}{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{db}"

    def close(self) -> None:
        """Close the connections of the pool this store created from its URL (a pool or client
        given to the store stays open: its owner closes it)."""
        self.holds_connections = False
        self._r.close()
        if self._owns_pool:
            self._pool.disconnect()

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except self._redis.RedisError as exc:
            msg = (
                f"RedisBackend {self.url!r}: {exc} ({type(exc).__name__}); check that the "
                "server runs and the URL and password are right"
            )
            raise StorageError(msg) from exc

    def _k(self, *parts: object) -> str:
        return self.prefix + ":".join(str(p) for p in parts)

    def _exec(self, pipe: Any) -> list[Any]:
        return self._call(pipe.execute)

    # -- experiments ---------------------------------------------------------------------------

    def _ids(self) -> dict[str, int]:
        raw = self._call(self._r.hgetall, self._k("experiments"))
        return {k.decode(): int(v) for k, v in raw.items()}

    def _infos(self, ids: dict[str, int]) -> list[ExperimentInfo]:
        pipe = self._r.pipeline(transaction=False)
        for exp_id in ids.values():
            pipe.hmget(self._k("exp", exp_id), "created", "updated", "meta")
            pipe.zcard(self._k("exp", exp_id, "runs"))
        out = self._exec(pipe)
        infos = []
        for i, (name, exp_id) in enumerate(ids.items()):
            (created, updated, meta), count = out[2 * i], out[2 * i + 1]
            if created is None:  # deleted between the two reads
                continue
            infos.append(
                ExperimentInfo(
                    exp_id, name, float(created), float(updated), count, load_doc(_text(meta))
                )
            )
        return sorted(infos, key=lambda e: e.name)

    def list_experiments(self) -> list[ExperimentInfo]:
        """All experiments ordered by name."""
        return self._infos(self._ids())

    def find_experiment(self, name: str) -> ExperimentInfo | None:
        """The experiment named exactly ``name``, or ``None``."""
        exp_id = self._call(self._r.hget, self._k("experiments"), name)
        if exp_id is None:
            return None
        found = self._infos({name: int(exp_id)})
        return found[0] if found else None

    def create_experiment(
        self,
        name: str,
        *,
        meta: dict[str, Any] | None = None,
        replace: bool = False,
        replace_id: int | None = None,
        runs: Sequence[RunRecord] = (),
        metrics: Sequence[MetricChunk] = (),
    ) -> ExperimentInfo:
        """Create an experiment (or replace one of the same name when ``replace``, only the
        experiment ``replace_id`` if given) with its first ``runs`` and ``metrics``: one
        script, atomic on the server; the keys of a replaced experiment are swept after it."""
        now = time.time()
        exp_id = int(self._call(self._r.incr, self._k("experiment_ids")))
        fields = {
            "name": name,
            "created": repr(now),
            "updated": repr(now),
            "meta": dump_doc(meta) or "",
            "next_run_id": max((r.run_id for r in runs), default=0),
            "hashes_by_run": 1,
        }
        commands = self._write_commands(exp_id, runs, metrics)
        head = [name, exp_id, int(replace), "" if replace_id is None else replace_id]
        flat = [word for pair in fields.items() for word in pair]
        keys = [self._k("experiments"), self._k("exp", exp_id), self._k("deleting")]
        args = [*head, self.prefix, len(flat), *flat, *commands.words()]
        old = int(self._call(self._create, keys, args))
        if old < 0:
            raise ExperimentExistsError(name)
        if old:
            self._sweep(old)
        return ExperimentInfo(exp_id, name, now, now, len(runs), dict(meta or {}))

    def delete_experiment(self, name: str) -> None:
        """Delete an experiment with all its runs, metrics and artifacts: first its name and
        hash, in one script (every later write of it is refused, so it adds no key), then its
        keys (:meth:`_sweep`)."""
        keys = [self._k("experiments"), self._k("deleting")]
        exp_id = int(self._call(self._mark_deleted, keys, [name, self.prefix]))
        if not exp_id:
            raise ExperimentNotFoundError(name, available=sorted(self._ids()))
        self._sweep(exp_id)

    def _sweep(self, exp_id: int, *, dry_run: bool = False) -> int:
        """Remove the keys of an experiment marked deleted (its hash is gone, so no write adds
        a key any more) and unmark it; return how many keys it had."""
        index = self._k("exp", exp_id, "keys")
        keys = [k.decode() for k in self._call(self._r.smembers, index)]
        if dry_run:
            return len(keys)
        pipe = self._r.pipeline(transaction=True)
        for part in batches(keys, 1000):
            pipe.delete(*part)
        pipe.delete(index, self._k("exp", exp_id, "runs"))
        pipe.srem(self._k("deleting"), exp_id)
        self._exec(pipe)
        return len(keys)

    def _run_write(
        self, experiment_id: int, commands: Commands, checked: Sequence[RunRecord] = ()
    ) -> bool:
        """Run a write's commands in one script if the experiment exists and each run of
        ``checked`` (read from the store) is still at the version it was read at; return
        whether the experiment exists.

        Raises
        ------
        RunConflictError
            When a run of ``checked`` moved (or was deleted); nothing was written.
        """
        e = experiment_id
        checks = [
            word
            for run in checked
            for word in (self._k("exp", e, "run", run.run_id), run.version, run.writer or "")
        ]
        args = [len(checked), *checks, *commands.words()]
        answer = self._call(self._write, [self._k("exp", e)], args)
        if not isinstance(answer, list):
            return bool(answer)
        name, *found = answer
        stored = {
            run.run_id: (int(found[3 * i + 1]), _text(found[3 * i + 2]) or None)
            for i, run in enumerate(checked)
            if int(found[3 * i])
        }
        raise RunConflictError(_text(name) or e, version_conflicts(checked, stored))

    def update_meta(self, experiment_id: int, meta: dict[str, Any]) -> None:
        """Merge ``meta`` into the experiment's metadata (optimistic ``WATCH`` transaction)."""
        key = self._k("exp", experiment_id)

        def merge(pipe: Any) -> None:
            current = pipe.hget(key, "meta")
            if not pipe.hexists(key, "name"):
                raise ExperimentNotFoundError(experiment_id=experiment_id, store=self.url)
            merged = {**load_doc(_text(current)), **meta}
            pipe.multi()
            pipe.hset(key, mapping={"meta": dump_doc(merged) or "", "updated": repr(time.time())})

        self._call(self._r.transaction, merge, key)

    # -- runs ----------------------------------------------------------------------------------

    def allocate_run_ids(self, experiment_id: int, count: int) -> range:
        """Reserve ``count`` consecutive run ids atomically (``HINCRBY`` in a script)."""
        last = int(self._call(self._allocate, [self._k("exp", experiment_id)], [count]))
        if last < 0:
            raise ExperimentNotFoundError(experiment_id=experiment_id, store=self.url)
        return range(last - count + 1, last + 1)

    def write_runs(
        self,
        experiment_id: int,
        runs: Sequence[RunRecord],
        metrics: Sequence[MetricChunk] = (),
        *,
        artifacts: Sequence[tuple[int, str, Encoded]] = (),
        step_hashes: Sequence[tuple[str, str, str, int]] = (),
        replace_metrics: Sequence[tuple[int, str]] = (),
    ) -> None:
        """Write runs, metric chunks, artifacts and step hashes in one script that first
        checks that the experiment exists (else ``ExperimentNotFoundError``) and that each run
        read from the store is still at the version it was read at (else
        ``RunConflictError``), writing nothing otherwise; it deletes the stored points of the
        ``replace_metrics`` first."""
        e = experiment_id
        commands = self._write_commands(
            e,
            runs,
            metrics,
            artifacts=artifacts,
            step_hashes=step_hashes,
            replace_metrics=replace_metrics,
        )
        now = time.time()
        # "last activity" to the second: not one more command per commit in a hot loop
        touch = now - self._touched.get(e, 0.0) > 1.0
        if touch:
            commands.add("HSET", self._k("exp", e), "updated", repr(now))
        checked = [run for run in runs if run.version is not None]
        if not self._run_write(e, commands, checked):
            raise ExperimentNotFoundError(experiment_id=e, store=self.url)
        if touch:
            self._touched[e] = now

    def _write_commands(
        self,
        e: int,
        runs: Sequence[RunRecord],
        metrics: Sequence[MetricChunk],
        *,
        artifacts: Sequence[tuple[int, str, Encoded]] = (),
        step_hashes: Sequence[tuple[str, str, str, int]] = (),
        replace_metrics: Sequence[tuple[int, str]] = (),
    ) -> Commands:
        """The commands of a write (``replace_metrics``: the ``(run_id, name)`` metrics whose
        stored points it deletes first), each key listed in the experiment's key set."""
        commands = Commands()
        created: list[str] = []
        for run_id, name in replace_metrics:
            commands.add(
                "CLEAR",
                self._k("exp", e, "metric", run_id, name),
                self._k("exp", e, "chunks", run_id, name),
                self._k("exp", e, "counts"),
                self._k("exp", e, "counts", run_id),
                name,
            )
        for run in runs:
            self._queue_run(commands, e, run, created)
        for chunk in metrics:
            self._queue_chunk(commands, e, chunk, created)
        for run_id, name, value in artifacts:
            self._queue_artifact(commands, e, run_id, name, value, created=created)
        if step_hashes:
            hashes = self._k("exp", e, "step_hashes")
            mapping = {f"{s}\0{i}": f"{o}\0{r}" for s, i, o, r in step_hashes}
            commands.add_many("HSET", hashes, [w for pair in mapping.items() for w in pair], 2)
            created.append(hashes)
            by_run: dict[int, list[str]] = {}
            for s, i, _, r in step_hashes:
                by_run.setdefault(r, []).append(f"{s}\0{i}")
            for r, fields in by_run.items():
                commands.add_many("SADD", self._k("exp", e, "step_hashes", r), fields)
                created.append(self._k("exp", e, "step_hashes", r))
        if created:
            commands.add_many("SADD", self._k("exp", e, "keys"), sorted(set(created)))
        return commands

    def _queue_run(self, commands: Commands, e: int, run: RunRecord, created: list[str]) -> None:
        doc, bins = run_document(run)
        values = columns(run)
        del values["run_id"]  # in the key
        values["doc"] = dump_doc(doc)
        values["bundle"] = pack(bins, lambda data: self._queue_blob(commands, data))
        values["version"] = next_version(run)
        values["writer"] = run.writer
        flat = [
            word
            for f, v in values.items()
            if v is not None
            for word in (f, repr(v) if isinstance(v, float) else v)
        ]
        key = self._k("exp", e, "run", run.run_id)
        commands.add("DEL", key)
        commands.add("HSET", key, *flat)
        commands.add("ZADD", self._k("exp", e, "runs"), run.run_id, str(run.run_id))
        created.append(key)
        if run.key is not None:
            commands.add("ZADD", self._k("exp", e, "key", run.key), run.run_id, str(run.run_id))
            created.append(self._k("exp", e, "key", run.key))

    def _queue_chunk(self, commands: Commands, e: int, c: MetricChunk, created: list[str]) -> None:
        keys = [
            self._k("exp", e, "chunks", c.run_id, c.name),
            self._k("exp", e, "counts"),
            self._k("exp", e, "counts", c.run_id),
        ]
        member = struct.pack("<qI", c.start, c.count) + join_chunk(c)
        commands.add("CHUNK", *keys, c.start, member, c.count, c.name)
        created += keys

    def _queue_blob(self, commands: Commands, data: bytes) -> str:
        digest = content_address(data)
        commands.add("SET", self._k("blob", digest), data, "NX")
        commands.add("ZADD", self._k("blobs"), repr(time.time()), digest)
        return digest

    def _queue_artifact(
        self,
        commands: Commands,
        e: int,
        run_id: int,
        name: str,
        value: Encoded,
        *,
        created: list[str],
    ) -> None:
        head = f"{value.codec}\0{value.size}\0".encode()
        if value.size > INLINE_LIMIT:
            packed = head + b"B" + self._queue_blob(commands, value.data).encode()
        else:
            packed = head + b"D" + value.data
        key = self._k("exp", e, "artifacts", run_id)
        commands.add("HSET", key, name, packed)
        created.append(key)

    def read_runs(
        self, experiment_id: int, run_ids: Iterable[int] | None = None
    ) -> list[RunRecord]:
        """Runs ordered by id: all of them, or those of ``run_ids`` that exist."""
        if run_ids is None:
            ids = [
                int(i)
                for i in self._call(self._r.zrange, self._k("exp", experiment_id, "runs"), 0, -1)
            ]
        else:
            ids = sorted(set(run_ids))
        return self._records(experiment_id, ids)

    def _records(self, e: int, ids: list[int]) -> list[RunRecord]:
        """Runs ``ids`` in full: one script call per 1,000 runs, one ``MGET`` per 500 blobs."""
        rows = read_fields(self, e, ids, _RUN_FIELDS)
        found = [(i, row) for i, row in zip(ids, rows, strict=True) if row[0] is not None]
        blobs = self._get_blobs([d for _, row in found for d in blob_digests(row[10])])
        out = []
        for run_id, row in found:
            record = record_from_columns(
                [run_id, row[0].decode(), row[1].decode(), _text(row[2]), _num(row[3], int),
                 _num(row[4]), _num(row[5]), _num(row[6]), _text(row[7]), _text(row[8])]
            )  # fmt: skip
            fill_record(record, load_doc(_text(row[9])), unpack_checked(run_id, row[10], blobs))
            record.version = int(row[11] or 0)
            out.append(record)
        return out

    # -- run queries (see trialbook.storage.redis_query) ---------------------------------------

    def query_runs(
        self,
        experiment_id: int,
        *,
        where: str | None = None,
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = 100,
        offset: int = 0,
    ) -> tuple[int, list[RunRecord]]:
        """Filter, sort and page runs from the fields the query needs; only the page is read
        in full. See :func:`trialbook.storage.query.query_runs`."""
        from trialbook.storage.query import _check_page
        from trialbook.storage.redis_query import query_runs

        _check_page(limit, offset)
        return query_runs(
            self, lambda ids: self._records(experiment_id, ids), experiment_id,
            where=where, order_by=order_by, descending=descending, limit=limit, offset=offset,
        )  # fmt: skip

    def names_present(self, experiment_id: int, paths: Sequence[Sequence[str]]) -> list[bool]:
        """For each list of JSON paths of the run document, whether some run of the experiment
        has one of them (an empty list: whether it has a run); used by
        :func:`trialbook.storage.query.check_names`."""
        from trialbook.storage.redis_query import names_present

        return names_present(self, experiment_id, paths)

    def delete_runs(self, experiment_id: int, run_ids: Iterable[int]) -> None:
        """Delete runs with their metrics, artifacts and the step hashes that point at them
        (a step hash a later run has replaced stays), in one script (nothing, for an
        experiment that no longer exists)."""
        e = experiment_id
        ids = sorted(set(run_ids))
        pipe = self._r.pipeline(transaction=False)
        pipe.hmget(self._k("exp", e), "name", "hashes_by_run")
        for run_id in ids:
            pipe.hget(self._k("exp", e, "run", run_id), "key")
            pipe.hgetall(self._k("exp", e, "counts", run_id))
        (name, indexed), *found = self._exec(pipe)
        if name is None:
            return
        if indexed is None:
            self._index_step_hashes(e)
        commands = Commands()
        for i, run_id in enumerate(ids):
            key, counts = found[2 * i], found[2 * i + 1]
            commands.add(
                "UNHASH",
                self._k("exp", e, "step_hashes"),
                self._k("exp", e, "step_hashes", run_id),
                f"\0{run_id}",
            )
            if key is not None:
                commands.add("ZREM", self._k("exp", e, "key", key.decode()), run_id)
            for metric, count in counts.items():
                commands.add("HINCRBY", self._k("exp", e, "counts"), metric.decode(), -int(count))
                commands.add(
                    "DEL",
                    self._k("exp", e, "metric", run_id, metric.decode()),
                    self._k("exp", e, "chunks", run_id, metric.decode()),
                )
            commands.add("DEL", self._k("exp", e, "run", run_id))
            commands.add("DEL", self._k("exp", e, "counts", run_id))
            commands.add("DEL", self._k("exp", e, "artifacts", run_id))
            commands.add("ZREM", self._k("exp", e, "runs"), run_id)
        if commands:
            self._run_write(e, commands)

    def _index_step_hashes(self, e: int) -> None:
        """The migration of an experiment written before the sets ``step_hashes:R``: build
        them from its step hashes (one ``HGETALL``, once) and mark the experiment."""
        raw = self._call(self._r.hgetall, self._k("exp", e, "step_hashes"))
        by_run: dict[int, list[bytes]] = {}
        for field, value in raw.items():
            by_run.setdefault(int(value.rpartition(b"\0")[2]), []).append(field)
        sets = {run_id: self._k("exp", e, "step_hashes", run_id) for run_id in by_run}
        commands = Commands()
        for run_id, names in by_run.items():
            commands.add_many("SADD", sets[run_id], names)
        commands.add_many("SADD", self._k("exp", e, "keys"), list(sets.values()))
        commands.add("HSET", self._k("exp", e), "hashes_by_run", 1)
        self._run_write(e, commands)

    def find_runs_by_key(self, experiment_id: int, key: str) -> list[RunRecord]:
        """Runs whose ``key`` is ``key``, ordered by id (from the key's index)."""
        ids = self._call(self._r.zrange, self._k("exp", experiment_id, "key", key), 0, -1)
        # A run rewritten with another key stays in its old key's index (no read before each
        # write); it is filtered out here.
        return [r for r in self._records(experiment_id, [int(i) for i in ids]) if r.key == key]

    def put_step_hash(
        self, experiment_id: int, step: str, input_hash: str, output_hash: str, run_id: int
    ) -> None:
        """Record the output hash of ``step`` for ``input_hash`` (the latest one wins)."""
        self.write_runs(experiment_id, [], step_hashes=[(step, input_hash, output_hash, run_id)])

    def get_step_hashes(
        self, experiment_id: int, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, int]]:
        """The latest ``(output_hash, run_id)`` of each ``(step, input_hash)`` (one ``HMGET``)."""
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        fields = [f"{step}\0{input_hash}" for step, input_hash in wanted]
        raws = self._call(self._r.hmget, self._k("exp", experiment_id, "step_hashes"), fields)
        found = {}
        for key, raw in zip(wanted, raws, strict=True):
            if raw is not None:
                output, _, run_id = raw.decode().partition("\0")
                found[key] = (output, int(run_id))
        return found

    # -- metrics -------------------------------------------------------------------------------

    def read_metrics(
        self, experiment_id: int, name: str, run_ids: Iterable[int]
    ) -> dict[int, MetricSeries]:
        """All points of metric ``name`` for each of ``run_ids`` that has it."""
        ids = sorted(set(run_ids))
        pipe = self._r.pipeline(transaction=False)
        for run_id in ids:
            pipe.lrange(self._k("exp", experiment_id, "metric", run_id, name), 0, -1)
            pipe.zrange(self._k("exp", experiment_id, "chunks", run_id, name), 0, -1)
        found = self._exec(pipe)
        out: dict[int, MetricSeries] = {}
        for i, run_id in enumerate(ids):
            old, chunks = found[2 * i], found[2 * i + 1]
            if old or chunks:  # old: count (uint32), arrays; new: start (int64), count, arrays
                out[run_id] = metric_series([
                    *(split_chunk(raw, struct.unpack_from("<I", raw)[0], offset=4) for raw in old),
                    *(split_chunk(raw, struct.unpack_from("<I", raw, 8)[0], 12) for raw in chunks),
                ])  # fmt: skip
        return out

    def metric_names(self, experiment_id: int, run_id: int | None = None) -> dict[str, int]:
        """Metric names with their point counts (of one run, or of the experiment)."""
        parts = ("exp", experiment_id, "counts") + (() if run_id is None else (run_id,))
        raw = self._call(self._r.hgetall, self._k(*parts))
        return dict(sorted((k.decode(), int(v)) for k, v in raw.items() if int(v) > 0))

    # -- artifacts, snapshots, blobs -----------------------------------------------------------

    def write_artifact(self, experiment_id: int, run_id: int, name: str, value: Encoded) -> None:
        """Store a named binary value of a run (replacing one of the same name)."""
        self.write_runs(experiment_id, [], artifacts=[(run_id, name, value)])

    def read_artifact(self, experiment_id: int, run_id: int, name: str) -> Encoded | None:
        """The named binary value of a run, or ``None``."""
        raw = self._call(self._r.hget, self._k("exp", experiment_id, "artifacts", run_id), name)
        if raw is None:
            return None
        codec, _size, rest = raw.split(b"\0", 2)
        data = self._get_blob(rest[1:].decode()) if rest[:1] == b"B" else rest[1:]
        return Encoded(codec.decode(), data)

    def list_artifacts(self, experiment_id: int, run_id: int) -> dict[str, int]:
        """Artifact names of a run with their sizes in bytes."""
        raw = self._call(self._r.hgetall, self._k("exp", experiment_id, "artifacts", run_id))
        return dict(sorted((k.decode(), int(v.split(b"\0", 2)[1])) for k, v in raw.items()))

    def put_snapshot(self, kind: str, text: str) -> str:
        """Store a text snapshot content-addressed; return its digest."""
        digest = content_address(text)
        self._call(
            self._r.hset,
            self._k("snapshot", digest),
            None,
            None,
            {"kind": kind, "text": text.encode("utf-8", "surrogatepass")},
        )
        return digest

    def get_snapshot(self, digest: str) -> str:
        """The text of a snapshot."""
        raw = self._call(self._r.hget, self._k("snapshot", digest), "text")
        if raw is None:
            msg = f"no snapshot {digest!r} in store {self.url!r}"
            raise NotFoundError(msg)
        return raw.decode("utf-8", "surrogatepass")

    # -- garbage -------------------------------------------------------------------------------

    def collect_garbage(self, *, min_age: float = 3600.0, dry_run: bool = False) -> GcReport:
        """Remove blobs that no run or artifact refers to and that were last written or reused
        more than ``min_age`` seconds ago (a write reusing one refreshes its time in its own
        transaction). Only blobs in the ``blobs`` index are known: those written by trialbook
        0.x before the index existed are kept. The keys of an experiment whose delete was
        interrupted (its id still in ``deleting``) are removed first, counted as rows."""
        report = GcReport()
        for exp_id in self._call(self._r.smembers, self._k("deleting")):  # interrupted deletes
            report.rows += self._sweep(int(exp_id), dry_run=dry_run)
        cutoff = time.time() - min_age
        raw = self._call(self._r.zrangebyscore, self._k("blobs"), "-inf", cutoff)
        used = self._referenced()
        stale = [d.decode() for d in raw if d.decode() not in used]
        for part in batches(stale):
            keys = [self._k("blobs"), *(self._k("blob", d) for d in part)]
            count, size = self._call(self._collect, keys, [cutoff, *part, "1" if dry_run else "0"])
            report.blobs += int(count)
            report.bytes += int(size)
        return report

    def _referenced(self) -> set[str]:
        """Every blob digest a run's bundle or an artifact refers to."""
        used: set[str] = set()
        for exp_id in self._ids().values():
            keys = self._call(self._r.smembers, self._k("exp", exp_id, "keys"))
            run_prefix, art_prefix = (
                self._k("exp", exp_id, "run", ""),
                self._k("exp", exp_id, "artifacts", ""),
            )
            pipe = self._r.pipeline(transaction=False)
            for key in (k.decode() for k in keys):
                if key.startswith(run_prefix):
                    pipe.hget(key, "bundle")
                elif key.startswith(art_prefix):
                    pipe.hvals(key)
            for value in self._exec(pipe):
                if isinstance(value, list):  # an artifacts hash
                    for packed in value:
                        _codec, _size, rest = packed.split(b"\0", 2)
                        if rest[:1] == b"B":
                            used.add(rest[1:].decode())
                else:
                    used.update(blob_digests(value))
        return used

    def _get_blob(self, digest: str) -> bytes:
        return checked_blob(digest, self._get_blobs([digest])[digest])

    def _get_blobs(self, digests: Sequence[str]) -> dict[str, bytes]:
        """The blobs of ``digests``: one ``MGET`` per :data:`~trialbook.storage.base.BATCH`,
        in one pipeline."""
        wanted = sorted(set(digests))
        if not wanted:
            return {}
        pipe = self._r.pipeline(transaction=False)
        for part in batches(wanted):
            pipe.mget([self._k("blob", d) for d in part])
        values = [v for part in self._exec(pipe) for v in part]
        missing = [d for d, v in zip(wanted, values, strict=True) if v is None]
        if missing:
            msg = (
                f"blob {missing[0]} is missing from store {self.url!r}; the store is incomplete"
                + (f" ({len(missing)} blobs are missing)" if len(missing) > 1 else "")
            )
            raise StoreFormatError(msg)
        return {d: bytes(v) for d, v in zip(wanted, values, strict=True)}
