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
``P exp:E``                         hash       ``name``, ``created``, ``updated``, ``meta``
                                               (JSON text), ``next_run_id`` (``HINCRBY``),
                                               ``hashes_by_run`` (``1``: the sets
                                               ``step_hashes:R`` are complete)
``P exp:E:runs``                    zset       run ids (score = id): the history's order
``P exp:E:run:R``                   hash       run ``R``: ``kind``, ``status``, ``key``,
                                               ``seed``, times, ``code``, ``environment``,
                                               ``doc`` (JSON text), ``bundle`` (binary)
``P exp:E:key:K``                   zset       ids of the runs whose ``key`` is ``K``
``P exp:E:metric:R:NAME``           list       metric chunks of run ``R`` (``RPUSH``)
``P exp:E:counts``                  hash       metric name -> points in the experiment
``P exp:E:counts:R``                hash       metric name -> points in run ``R``
``P exp:E:artifacts:R``             hash       artifact name -> codec, size, data or blob
``P exp:E:step_hashes``             hash       ``step NUL input hash`` -> ``output NUL run``
``P exp:E:step_hashes:R``           set        the fields of ``step_hashes`` run ``R``
                                               wrote (a later run may have replaced some)
``P exp:E:keys``                    set        every key above of the experiment (for delete)
``P snapshot:DIGEST``               hash       ``kind``, ``text`` (content-addressed)
``P blob:DIGEST``                   string     values larger than 256 KiB (content-addressed)
``P blobs``                         zset       blob digests (score = when last written or
                                               reused), for :meth:`RedisStore.collect_garbage`
==================================  =========  ===============================================

Run ids come from ``HINCRBY`` in a server-side script that first checks the experiment still
exists, so concurrent processes never collide. :meth:`RedisStore.write_runs` is one
``MULTI``/``EXEC`` transaction, and so is :meth:`RedisStore.delete_runs`: it removes the step
hashes of a run through ``step_hashes:R`` (only those still pointing at that run). An experiment
written before those sets existed (no ``hashes_by_run`` field) gets them from its
``step_hashes`` hash the first time runs of it are deleted.

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
    StorageError,
    StoreFormatError,
)
from trialbook.identity import content_address
from trialbook.storage.base import ClosingStore, batches
from trialbook.storage.bundle import (
    INLINE_LIMIT,
    RUN_COLUMNS,
    blob_digests,
    columns,
    dump_doc,
    fill_record,
    load_doc,
    pack,
    record_from_columns,
    run_document,
    unpack,
)
from trialbook.storage.chunks import join_chunk, metric_series, split_chunk
from trialbook.storage.records import (
    ExperimentInfo,
    GcReport,
    MetricChunk,
    MetricSeries,
    RunRecord,
)
from trialbook.storage.urls import public_url, take_param, with_param

__all__ = ["RedisStore", "open_redis"]

DEFAULT_PREFIX = "trialbook:"
CONNECT_TIMEOUT = 5.0
SOCKET_TIMEOUT = 60.0
_RUN_FIELDS = (*RUN_COLUMNS[1:], "doc", "bundle")
"""The fields of a run's hash (its id is in the key)."""
_ALLOCATE = """
if redis.call('HEXISTS', KEYS[1], 'name') == 0 then return -1 end
return redis.call('HINCRBY', KEYS[1], 'next_run_id', ARGV[1])
"""
# KEYS[1] the blob index, KEYS[2..] blob keys; ARGV[1] the cutoff, ARGV[2..] their digests;
# ARGV[#] 1 for a dry run. Removes each blob still last used before the cutoff (atomically: a
# write that reuses it refreshes its score in its own MULTI). Returns [count, bytes].
_COLLECT = """
local count, size = 0, 0
local dry = ARGV[#ARGV] == '1'
for i = 2, #KEYS do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= tonumber(ARGV[1]) then
    count = count + 1
    size = size + redis.call('STRLEN', KEYS[i])
    if not dry then
      redis.call('DEL', KEYS[i])
      redis.call('ZREM', KEYS[1], ARGV[i])
    end
  end
end
return {count, size}
"""
# KEYS[1] an experiment's step hashes, KEYS[2] the fields run R wrote there; ARGV[1] is
# NUL R. Removes the fields that still point at run R (a later run may have replaced one),
# then the set. Returns how many were removed.
_UNHASH = """
local removed = 0
for _, field in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local value = redis.call('HGET', KEYS[1], field)
  if value and string.sub(value, -#ARGV[1]) == ARGV[1] then
    removed = removed + redis.call('HDEL', KEYS[1], field)
  end
end
redis.call('DEL', KEYS[2])
return removed
"""


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
        self._allocate = self._r.register_script(_ALLOCATE)
        self._collect = self._r.register_script(_COLLECT)
        self._unhash = self._r.register_script(_UNHASH)
        try:
            self._call(self._r.ping)
        except BaseException:
            self.close()
            raise
        self.holds_connections = self._owns_pool

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
        """The URL (without password) a ``redis.ConnectionPool`` connects to.

        Examples
        --------
        >>> import redis
        >>> RedisStore.url_of_pool(redis.ConnectionPool.from_url("unix:///tmp/r.sock?db=2"))
        'unix:///tmp/r.sock?db=2'
        """
        kw = pool.connection_kwargs
        db = kw.get("db", 0)
        user = kw.get("username")
        auth = f"{user}@" if user else ""
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
    ) -> ExperimentInfo:
        """Create an experiment (or replace one of the same name when ``replace``, only the
        experiment ``replace_id`` if given: a ``WATCH`` transaction on the name index)."""
        now = time.time()
        exp_id = int(self._call(self._r.incr, self._k("experiment_ids")))
        self._call(
            self._r.hset,
            self._k("exp", exp_id),
            None,
            None,
            {
                "name": name,
                "created": repr(now),
                "updated": repr(now),
                "meta": dump_doc(meta) or "",
                "next_run_id": 0,
                "hashes_by_run": 1,
            },
        )
        if not self._call(self._r.hsetnx, self._k("experiments"), name, exp_id):
            if not replace:
                self._call(self._r.delete, self._k("exp", exp_id))
                raise ExperimentExistsError(name)
            old = self._swap_name(name, exp_id, replace_id)
            if old is not None:
                self._drop(old)
        return ExperimentInfo(exp_id, name, now, now, 0, dict(meta or {}))

    def _swap_name(self, name: str, exp_id: int, replace_id: int | None) -> int | None:
        """Point ``name`` at ``exp_id``; return the id it had. With ``replace_id``, only if it
        still had that id (else the new experiment is removed and ``ExperimentExistsError``)."""
        index = self._k("experiments")
        found: list[int | None] = []

        def swap(pipe: Any) -> None:
            old = pipe.hget(index, name)
            if replace_id is not None and (old is None or int(old) != replace_id):
                raise ExperimentExistsError(name)
            found[:] = [None if old is None else int(old)]
            pipe.multi()
            pipe.hset(index, name, exp_id)

        try:
            self._call(self._r.transaction, swap, index)
        except ExperimentExistsError:
            self._call(self._r.delete, self._k("exp", exp_id))
            raise
        return found[0]

    def delete_experiment(self, name: str) -> None:
        """Delete an experiment with all its runs, metrics and artifacts."""
        exp_id = self._call(self._r.hget, self._k("experiments"), name)
        if exp_id is None:
            raise ExperimentNotFoundError(name, available=sorted(self._ids()))
        self._call(self._r.hdel, self._k("experiments"), name)
        self._drop(int(exp_id))

    def _drop(self, exp_id: int) -> None:
        index = self._k("exp", exp_id, "keys")
        keys = [k.decode() for k in self._call(self._r.smembers, index)]
        pipe = self._r.pipeline(transaction=True)
        for part in batches(keys, 1000):
            pipe.delete(*part)
        pipe.delete(index, self._k("exp", exp_id), self._k("exp", exp_id, "runs"))
        self._exec(pipe)

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
        """Write runs, metric chunks, artifacts and step hashes in one ``MULTI``/``EXEC``
        (first deleting the stored points of the ``replace_metrics``)."""
        e = experiment_id
        old_counts = self._metric_counts(e, replace_metrics)
        pipe = self._r.pipeline(transaction=True)
        created: list[str] = []
        for (run_id, name), count in zip(replace_metrics, old_counts, strict=True):
            pipe.delete(self._k("exp", e, "metric", run_id, name))
            pipe.hincrby(self._k("exp", e, "counts"), name, -count)
            pipe.hdel(self._k("exp", e, "counts", run_id), name)
        for run in runs:
            self._queue_run(pipe, e, run, created)
        for chunk in metrics:
            self._queue_chunk(pipe, e, chunk, created)
        for run_id, name, value in artifacts:
            self._queue_artifact(pipe, e, run_id, name, value, created=created)
        if step_hashes:
            pipe.hset(
                self._k("exp", e, "step_hashes"),
                mapping={f"{s}\0{i}": f"{o}\0{r}" for s, i, o, r in step_hashes},
            )
            created.append(self._k("exp", e, "step_hashes"))
            by_run: dict[int, list[str]] = {}
            for s, i, _, r in step_hashes:
                by_run.setdefault(r, []).append(f"{s}\0{i}")
            for r, fields in by_run.items():
                pipe.sadd(self._k("exp", e, "step_hashes", r), *fields)
                created.append(self._k("exp", e, "step_hashes", r))
        if created:
            pipe.sadd(self._k("exp", e, "keys"), *set(created))
        now = time.time()
        # "last activity" to the second: not one more command per commit in a hot loop
        touch = now - self._touched.get(e, 0.0) > 1.0
        if touch:
            pipe.hset(self._k("exp", e), "updated", repr(now))
        self._exec(pipe)
        if touch:
            self._touched[e] = now

    def _metric_counts(self, e: int, which: Sequence[tuple[int, str]]) -> list[int]:
        """The stored point counts of ``(run_id, name)`` metrics (0 for none)."""
        if not which:
            return []
        pipe = self._r.pipeline(transaction=False)
        for run_id, name in which:
            pipe.hget(self._k("exp", e, "counts", run_id), name)
        return [int(c or 0) for c in self._exec(pipe)]

    def _queue_run(self, pipe: Any, e: int, run: RunRecord, created: list[str]) -> None:
        doc, bins = run_document(run)
        values = columns(run)
        del values["run_id"]  # in the key
        values["doc"] = dump_doc(doc)
        values["bundle"] = pack(bins, lambda data: self._queue_blob(pipe, data))
        mapping = {
            f: (repr(v) if isinstance(v, float) else v) for f, v in values.items() if v is not None
        }
        key = self._k("exp", e, "run", run.run_id)
        pipe.delete(key)
        pipe.hset(key, mapping=mapping)
        pipe.zadd(self._k("exp", e, "runs"), {str(run.run_id): run.run_id})
        created.append(key)
        if run.key is not None:
            pipe.zadd(self._k("exp", e, "key", run.key), {str(run.run_id): run.run_id})
            created.append(self._k("exp", e, "key", run.key))

    def _queue_chunk(self, pipe: Any, e: int, c: MetricChunk, created: list[str]) -> None:
        key = self._k("exp", e, "metric", c.run_id, c.name)
        pipe.rpush(key, struct.pack("<I", c.count) + join_chunk(c))
        pipe.hincrby(self._k("exp", e, "counts"), c.name, c.count)
        pipe.hincrby(self._k("exp", e, "counts", c.run_id), c.name, c.count)
        created += [key, self._k("exp", e, "counts"), self._k("exp", e, "counts", c.run_id)]

    def _queue_blob(self, pipe: Any, data: bytes) -> str:
        digest = content_address(data)
        pipe.set(self._k("blob", digest), data, nx=True)
        pipe.zadd(self._k("blobs"), {digest: time.time()})
        return digest

    def _queue_artifact(
        self, pipe: Any, e: int, run_id: int, name: str, value: Encoded, *, created: list[str]
    ) -> None:
        head = f"{value.codec}\0{value.size}\0".encode()
        if value.size > INLINE_LIMIT:
            packed = head + b"B" + self._queue_blob(pipe, value.data).encode()
        else:
            packed = head + b"D" + value.data
        key = self._k("exp", e, "artifacts", run_id)
        pipe.hset(key, name, packed)
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
        pipe = self._r.pipeline(transaction=False)
        for run_id in ids:
            pipe.hmget(self._k("exp", e, "run", run_id), *_RUN_FIELDS)
        out = []
        for run_id, row in zip(ids, self._exec(pipe), strict=True):
            if row[0] is None:
                continue
            record = record_from_columns(
                [run_id, row[0].decode(), row[1].decode(), _text(row[2]), _num(row[3], int),
                 _num(row[4]), _num(row[5]), _num(row[6]), _text(row[7]), _text(row[8])]
            )  # fmt: skip
            fill_record(record, load_doc(_text(row[9])), unpack(row[10], self._get_blob))
            out.append(record)
        return out

    def delete_runs(self, experiment_id: int, run_ids: Iterable[int]) -> None:
        """Delete runs with their metrics, artifacts and the step hashes that point at them
        (a step hash a later run has replaced stays), in one ``MULTI``/``EXEC``."""
        e = experiment_id
        ids = sorted(set(run_ids))
        pipe = self._r.pipeline(transaction=False)
        pipe.hmget(self._k("exp", e), "name", "hashes_by_run")
        for run_id in ids:
            pipe.hget(self._k("exp", e, "run", run_id), "key")
            pipe.hgetall(self._k("exp", e, "counts", run_id))
        (name, indexed), *found = self._exec(pipe)
        if name is not None and indexed is None:
            self._index_step_hashes(e)
        pipe = self._r.pipeline(transaction=True)
        for i, run_id in enumerate(ids):
            key, counts = found[2 * i], found[2 * i + 1]
            self._unhash(
                keys=[self._k("exp", e, "step_hashes"), self._k("exp", e, "step_hashes", run_id)],
                args=[f"\0{run_id}"],
                client=pipe,
            )
            if key is not None:
                pipe.zrem(self._k("exp", e, "key", key.decode()), run_id)
            for name, count in counts.items():
                pipe.hincrby(self._k("exp", e, "counts"), name.decode(), -int(count))
                pipe.delete(self._k("exp", e, "metric", run_id, name.decode()))
            pipe.delete(
                self._k("exp", e, "run", run_id),
                self._k("exp", e, "counts", run_id),
                self._k("exp", e, "artifacts", run_id),
            )
            pipe.zrem(self._k("exp", e, "runs"), run_id)
        self._exec(pipe)

    def _index_step_hashes(self, e: int) -> None:
        """The migration of an experiment written before the sets ``step_hashes:R``: build
        them from its step hashes (one ``HGETALL``, once) and mark the experiment."""
        raw = self._call(self._r.hgetall, self._k("exp", e, "step_hashes"))
        by_run: dict[int, list[bytes]] = {}
        for field, value in raw.items():
            by_run.setdefault(int(value.rpartition(b"\0")[2]), []).append(field)
        sets = {run_id: self._k("exp", e, "step_hashes", run_id) for run_id in by_run}
        pipe = self._r.pipeline(transaction=True)
        for run_id, names in by_run.items():
            for some in batches(names, 1000):
                pipe.sadd(sets[run_id], *some)
        for keys in batches(list(sets.values()), 1000):
            pipe.sadd(self._k("exp", e, "keys"), *keys)
        pipe.hset(self._k("exp", e), "hashes_by_run", 1)
        self._exec(pipe)

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
        out: dict[int, MetricSeries] = {}
        for run_id, chunks in zip(ids, self._exec(pipe), strict=True):
            if chunks:  # each: its point count (uint32), then its three arrays
                out[run_id] = metric_series(
                    split_chunk(raw, struct.unpack_from("<I", raw)[0], offset=4) for raw in chunks
                )
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
        0.x before the index existed are kept. Experiments are deleted with all their keys, so
        there are no orphaned rows to look for."""
        cutoff = time.time() - min_age
        raw = self._call(self._r.zrangebyscore, self._k("blobs"), "-inf", cutoff)
        used = self._referenced()
        stale = [d.decode() for d in raw if d.decode() not in used]
        report = GcReport()
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
        data = self._call(self._r.get, self._k("blob", digest))
        if data is None:
            msg = f"blob {digest} is missing from store {self.url!r}; the store is incomplete"
            raise StoreFormatError(msg)
        return bytes(data)
