"""A store in MongoDB: ``mongodb://host:port/database`` or a ``pymongo.database.Database``.

A ``MongoClient`` alone is refused (:class:`~trialbook.errors.ConfigError`): it does not say
which database holds the store; pass ``client["name"]`` or put the database in the URL.

Layout
------
Collections of the database, each created with the indexes listed (the natural keys are the
``_id`` fields; ``E`` is an experiment id, ``R`` a run id on 12 digits):

* ``experiments``: ``{_id: E, name, created, updated, meta (JSON text), next_run_id}``, index
  ``name`` (unique);
* ``counters``: ``{_id: "experiments", seq}``, the last experiment id;
* ``runs``: ``{_id: "E/R", experiment_id, run_id, kind, status, key, seed, created, started,
  finished, code, environment, doc (JSON text), bundle (binary) or bundle_blob (digest)}``,
  index ``(experiment_id, key)``;
* ``metrics``: one document per appended chunk of at most :data:`CHUNK_POINTS` points,
  ``{experiment_id, run_id, name, at, count, steps, vals, times}``, indexes
  ``(experiment_id, name, run_id, at)`` and ``(experiment_id, run_id)``;
* ``artifacts``: ``{_id: "E/R/name", experiment_id, run_id, name, codec, size, data | blob}``,
  index ``(experiment_id, run_id)``;
* ``step_hashes``: ``{_id: "E/input hash/step", experiment_id, step, input_hash, output_hash,
  run_id}``, index ``(experiment_id, run_id)`` (stores created before it also have an index
  ``experiment_id``; opening one creates the new index);
* ``snapshots``: ``{_id: digest, kind, text}``;
* ``blobs``: ``{_id: "digest/part", data, parts, used}``: values over 256 KiB and bundles over
  :data:`BUNDLE_LIMIT`, in 8 MiB parts, so that no document reaches MongoDB's 16 MiB limit;
  ``used`` is when the blob was last written or reused (for :meth:`MongoStore.collect_garbage`).

Run ids come from ``find_one_and_update({_id: E}, {$inc: {next_run_id: n}})``, atomic on the
server, so concurrent processes never collide. The JSON parts of a run are stored as text so
that NaN and infinities survive exactly.

Writes do not use multi-document transactions (a standalone ``mongod`` and the ``mongoeco``
test server lack them). :meth:`MongoStore.write_runs` orders its writes so that a crash leaves
the store consistent: blobs first, then artifacts, step hashes and metric chunks, and the run
documents last. A reader therefore never sees a run whose values are missing; at worst a crash
leaves unreferenced blobs, or metric chunks of a run that was never written (ignored by the
history and by :meth:`MongoStore.metric_names`, removed with the experiment); unreferenced blobs
and the leftovers of an interrupted delete are removed by :meth:`MongoStore.collect_garbage`. A
run executed again replaces a metric's points by writing the new chunks first and deleting the
older ones last: a crash in between leaves both, never neither. Long writes are
sent in commands of at most :data:`BATCH` documents, so that a slow server still answers its
heartbeats.

Examples
--------
>>> from trialbook.storage.mongo import open_mongo
>>> open_mongo.claims(object())
False
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from trialbook.codecs import Encoded
from trialbook.errors import (
    ConfigError,
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
from trialbook.storage.chunks import metric_series
from trialbook.storage.records import (
    ExperimentInfo,
    GcReport,
    MetricChunk,
    MetricSeries,
    RunRecord,
)
from trialbook.storage.urls import public_url

__all__ = ["MongoStore", "open_mongo"]

TIMEOUT_MS = 5000
SOCKET_TIMEOUT_MS = 60000
HEARTBEAT_MS = 30000
BATCH = 250
BLOB_PART = 8 * 1024 * 1024
BUNDLE_LIMIT = 4 * 1024 * 1024
"""A run's values bundle larger than this goes to the blobs (MongoDB's limit is 16 MiB)."""
CHUNK_POINTS = 100_000
"""A metric chunk of more points is stored as several documents (MongoDB's limit is 16 MiB)."""


def open_mongo(location: Any, **options: Any) -> MongoStore:
    """Open a MongoDB store from a URL or a ``pymongo.database.Database`` (registered opener).

    Examples
    --------
    >>> open_mongo("mongodb://127.0.0.1:1/db", connect_timeout=0.2)
    Traceback (most recent call last):
    ...
    trialbook.errors.StorageError: MongoBackend 'mongodb://127.0.0.1:1/db': cannot reach ...
    """
    return MongoStore(location, **options)


def _claims(client: object) -> bool:
    return type(client).__module__.startswith("pymongo")


open_mongo.claims = _claims  # type: ignore[attr-defined]


class MongoStore(ClosingStore):
    """A store in a MongoDB database (layout: see the module documentation).

    Its ``backend_label`` is ``MongoBackend``; ``url`` never shows the password.

    Parameters
    ----------
    location
        ``mongodb://[user:password@]host:port/database`` or a ``pymongo`` ``Database``.
    allow_pickle
        Allow pickled values (see :func:`trialbook.storage.open_store`).
    connect_timeout
        Seconds to wait for the server before failing with :class:`StorageError`.

    Raises
    ------
    ConfigError
        For a ``MongoClient`` (no database chosen) or a URL without a database.
    StorageError
        When the server cannot be reached or refuses the credentials.

    Examples
    --------
    >>> import pymongo
    >>> MongoStore(pymongo.MongoClient("mongodb://127.0.0.1:1/", connect=False))
    Traceback (most recent call last):
    ...
    trialbook.errors.ConfigError: a MongoClient does not say which database holds the store; ...
    """

    backend_label = "MongoBackend"

    def __init__(
        self, location: Any, *, allow_pickle: bool = False, connect_timeout: float | None = None
    ) -> None:
        import pymongo

        self.allow_pickle = allow_pickle
        self._pymongo = pymongo
        self._owns_client = isinstance(location, str)
        self._touched: dict[int, float] = {}
        ms = int((connect_timeout or TIMEOUT_MS / 1000) * 1000)
        if isinstance(location, str):
            self.url = public_url(location)
            self._db = self._open_url(location, ms)
        elif isinstance(location, pymongo.database.Database):
            self._db = location
            hosts = ",".join(
                f"{h}:{p}" for h, p in location.client.topology_description.server_descriptions()
            )
            self.url = f"mongodb://{hosts}/{location.name}"
        elif isinstance(location, pymongo.MongoClient):
            msg = (
                "a MongoClient does not say which database holds the store; pass a database, "
                "e.g. client['experiments'], or a URL such as 'mongodb://host:27017/experiments'"
            )
            raise ConfigError(msg)
        else:
            msg = f"MongoBackend needs a mongodb:// URL or a pymongo Database, got {type(location)}"
            raise ConfigError(msg)
        try:
            self._prepare()
        except BaseException:
            self.close()
            raise
        self.holds_connections = self._owns_client

    def _open_url(self, url: str, ms: int) -> Any:
        try:
            client: Any = self._pymongo.MongoClient(
                # connectTimeoutMS is also the heartbeat's timeout: a server busy with a long
                # write for longer than it is declared unknown and the write is cancelled.
                url,
                serverSelectionTimeoutMS=ms,
                connectTimeoutMS=max(ms, HEARTBEAT_MS),
                socketTimeoutMS=SOCKET_TIMEOUT_MS,
                tz_aware=False,
            )
        except (self._pymongo.errors.PyMongoError, ValueError) as exc:
            msg = (
                f"MongoBackend: cannot use the URL {self.url!r}: {exc}; expected "
                "mongodb://[user:password@]host:port/database"
            )
            raise StorageError(msg) from exc
        try:
            return client.get_default_database()
        except self._pymongo.errors.ConfigurationError as exc:
            client.close()
            msg = (
                f"MongoBackend: the URL {self.url!r} names no database; add one, e.g. "
                f"'{self.url.rstrip('/')}/experiments'"
            )
            raise ConfigError(msg) from exc

    def __repr__(self) -> str:
        return f"{self.backend_label}({self.url!r})"

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._pymongo.errors.DuplicateKeyError:
            raise
        except self._pymongo.errors.PyMongoError as exc:
            reason = str(exc).split(", Timeout:")[0].split(" (configured timeouts")[0]
            if isinstance(exc, self._pymongo.errors.ServerSelectionTimeoutError):
                reason = f"cannot reach the server ({reason})"
            msg = (
                f"MongoBackend {self.url!r}: {reason}; check that the server runs and the URL, "
                "user and password are right"
            )
            raise StorageError(msg) from exc

    def _prepare(self) -> None:
        db = self._db
        asc = self._pymongo.ASCENDING
        self._call(db.experiments.create_index, [("name", asc)], unique=True)
        # Natural keys are the ``_id`` (always unique and indexed): a unique secondary index
        # makes every insert scan the collection on mongoeco.
        self._call(db.runs.create_index, [("experiment_id", asc), ("key", asc)])
        self._call(
            db.metrics.create_index,
            [("experiment_id", asc), ("name", asc), ("run_id", asc), ("at", asc)],
        )
        self._call(db.metrics.create_index, [("experiment_id", asc), ("run_id", asc)])
        self._call(db.artifacts.create_index, [("experiment_id", asc), ("run_id", asc)])
        self._call(db.step_hashes.create_index, [("experiment_id", asc), ("run_id", asc)])

    def close(self) -> None:
        """Close the client (only one this store created from a URL)."""
        self.holds_connections = False
        if self._owns_client:
            self._db.client.close()

    # -- experiments ---------------------------------------------------------------------------

    def _info(self, doc: dict[str, Any]) -> ExperimentInfo:
        count = self._call(self._db.runs.count_documents, {"experiment_id": doc["_id"]})
        return ExperimentInfo(
            int(doc["_id"]),
            doc["name"],
            doc["created"],
            doc["updated"],
            count,
            load_doc(doc.get("meta")),
        )

    def list_experiments(self) -> list[ExperimentInfo]:
        """All experiments ordered by name."""
        docs = self._call(lambda: list(self._db.experiments.find({}, {"next_run_id": 0})))
        return sorted((self._info(d) for d in docs), key=lambda e: e.name)

    def find_experiment(self, name: str) -> ExperimentInfo | None:
        """The experiment named exactly ``name``, or ``None``."""
        doc = self._call(self._db.experiments.find_one, {"name": name})
        return None if doc is None else self._info(doc)

    def create_experiment(
        self,
        name: str,
        *,
        meta: dict[str, Any] | None = None,
        replace: bool = False,
        replace_id: int | None = None,
    ) -> ExperimentInfo:
        """Create an experiment (or replace one of the same name when ``replace``, only the
        experiment ``replace_id`` if given: one replacer deletes it, the others fail)."""
        old = self._call(self._db.experiments.find_one, {"name": name}, {"_id": 1})
        if old is not None:
            if not replace or replace_id not in (None, old["_id"]):
                raise ExperimentExistsError(name)
            if not self._drop(old["_id"]) and replace_id is not None:
                raise ExperimentExistsError(name)
        counter = self._call(
            self._db.counters.find_one_and_update,
            {"_id": "experiments"},
            {"$inc": {"seq": 1}},
            upsert=True,
            return_document=self._pymongo.ReturnDocument.AFTER,
        )
        exp_id = int(counter["seq"])
        now = time.time()
        doc = {
            "_id": exp_id,
            "name": name,
            "created": now,
            "updated": now,
            "meta": dump_doc(meta),
            "next_run_id": 0,
        }
        try:
            self._call(self._db.experiments.insert_one, doc)
        except self._pymongo.errors.DuplicateKeyError as exc:
            raise ExperimentExistsError(name) from exc
        return ExperimentInfo(exp_id, name, now, now, 0, dict(meta or {}))

    def delete_experiment(self, name: str) -> None:
        """Delete an experiment with all its runs, metrics and artifacts."""
        doc = self._call(self._db.experiments.find_one, {"name": name}, {"_id": 1})
        if doc is None:
            names = [d["name"] for d in self._call(self._db.experiments.find, {}, {"name": 1})]
            raise ExperimentNotFoundError(name, available=names)
        self._drop(doc["_id"])

    def _drop(self, exp_id: int) -> bool:
        """Delete an experiment; return whether this call deleted its document."""
        # The experiment document goes first: a crash midway leaves unreachable leftovers only.
        done = self._call(self._db.experiments.delete_one, {"_id": exp_id})
        for coll in ("runs", "metrics", "artifacts", "step_hashes"):
            self._call(self._db[coll].delete_many, {"experiment_id": exp_id})
        return bool(done.deleted_count)

    def update_meta(self, experiment_id: int, meta: dict[str, Any]) -> None:
        """Merge ``meta`` into the experiment's metadata (compare-and-set on the old value)."""
        while True:
            doc = self._call(self._db.experiments.find_one, {"_id": experiment_id}, {"meta": 1})
            if doc is None:
                raise ExperimentNotFoundError(experiment_id=experiment_id, store=self.url)
            merged = dump_doc({**load_doc(doc.get("meta")), **meta})
            done = self._call(
                self._db.experiments.update_one,
                {"_id": experiment_id, "meta": doc.get("meta")},
                {"$set": {"meta": merged, "updated": time.time()}},
            )
            if done.matched_count:
                return

    # -- runs ----------------------------------------------------------------------------------

    def allocate_run_ids(self, experiment_id: int, count: int) -> range:
        """Reserve ``count`` consecutive run ids atomically (``$inc`` on the server)."""
        doc = self._call(
            self._db.experiments.find_one_and_update,
            {"_id": experiment_id},
            {"$inc": {"next_run_id": count}},
            projection={"next_run_id": 1},
            return_document=self._pymongo.ReturnDocument.AFTER,
        )
        if doc is None:
            raise ExperimentNotFoundError(experiment_id=experiment_id, store=self.url)
        last = int(doc["next_run_id"])
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
        """Write artifacts, step hashes, metric chunks and then runs, and last delete the older
        points of the ``replace_metrics`` (see the module docs)."""
        e = experiment_id
        self._bulk("artifacts", [self._artifact_op(e, *a) for a in artifacts])
        self._bulk("step_hashes", [self._step_hash_op(e, *h) for h in step_hashes])
        at = time.time_ns()
        if metrics:
            docs = [
                {
                    "experiment_id": e,
                    "run_id": c.run_id,
                    "name": c.name,
                    "at": at + i,
                    "count": n,
                    "steps": steps,
                    "vals": vals,
                    "times": times,
                }
                for i, (c, n, steps, vals, times) in enumerate(_split_chunks(metrics))
            ]
            for part in batches(docs, BATCH):
                self._call(self._db.metrics.insert_many, part, ordered=True)
        self._bulk(
            "runs",
            [
                self._pymongo.ReplaceOne(
                    {"_id": f"{e}/{run.run_id:012d}"}, self._run_doc(e, run), upsert=True
                )
                for run in runs
            ],
        )
        for run_id, name in replace_metrics:
            self._call(
                self._db.metrics.delete_many,
                {"experiment_id": e, "run_id": run_id, "name": name, "at": {"$lt": at}},
            )
        now = time.time()
        # "last activity" to the second: not one more round trip per commit in a hot loop
        if now - self._touched.get(e, 0.0) > 1.0:
            self._call(self._db.experiments.update_one, {"_id": e}, {"$set": {"updated": now}})
            self._touched[e] = now

    def _bulk(self, collection: str, ops: list[Any]) -> None:
        """Send ``ops`` in ordered commands of at most :data:`BATCH` operations."""
        for part in batches(ops, BATCH):  # short commands: a busy server still answers
            self._call(self._db[collection].bulk_write, part, ordered=True)

    def _run_doc(self, e: int, run: RunRecord) -> dict[str, Any]:
        doc, bins = run_document(run)
        bundle = pack(bins, self._put_blob)
        bundle_blob = None
        if bundle is not None and len(bundle) > BUNDLE_LIMIT:  # many values, each small
            bundle_blob, bundle = self._put_blob(bundle), None
        return {
            "experiment_id": e,
            **columns(run),
            "doc": dump_doc(doc),
            "bundle": bundle,
            "bundle_blob": bundle_blob,
        }

    def read_runs(
        self, experiment_id: int, run_ids: Iterable[int] | None = None
    ) -> list[RunRecord]:
        """Runs ordered by id: all of them, or those of ``run_ids`` that exist."""
        query: dict[str, Any] = {"experiment_id": experiment_id}
        if run_ids is not None:
            query["run_id"] = {"$in": sorted(set(run_ids))}
        return self._records(query)

    def _records(self, query: dict[str, Any]) -> list[RunRecord]:
        asc = self._pymongo.ASCENDING
        docs = self._call(lambda: list(self._db.runs.find(query, {"_id": 0}).sort("run_id", asc)))
        out = []
        for d in docs:
            record = record_from_columns(
                [int(d["run_id"]), d["kind"], d["status"], *(d.get(c) for c in RUN_COLUMNS[3:])]
            )
            bundle = d.get("bundle")
            if d.get("bundle_blob"):
                bundle = self._get_blob(d["bundle_blob"])
            fill_record(
                record,
                load_doc(d.get("doc")),
                unpack(None if bundle is None else bytes(bundle), self._get_blob),
            )
            out.append(record)
        return out

    def delete_runs(self, experiment_id: int, run_ids: Iterable[int]) -> None:
        """Delete runs with their values and the step hashes that point at them (a step hash
        a later run has replaced stays): the step hashes first (an interrupted delete leaves
        runs without purity records, never purity records of deleted runs), then the runs (so
        that no half-deleted run is visible), then their values."""
        query = {"experiment_id": experiment_id, "run_id": {"$in": sorted(set(run_ids))}}
        for coll in ("step_hashes", "runs", "metrics", "artifacts"):
            self._call(self._db[coll].delete_many, query)

    def find_runs_by_key(self, experiment_id: int, key: str) -> list[RunRecord]:
        """Runs whose ``key`` is ``key``, ordered by id."""
        return self._records({"experiment_id": experiment_id, "key": key})

    def put_step_hash(
        self, experiment_id: int, step: str, input_hash: str, output_hash: str, run_id: int
    ) -> None:
        """Record the output hash of ``step`` for ``input_hash`` (the latest one wins)."""
        self.write_runs(experiment_id, [], step_hashes=[(step, input_hash, output_hash, run_id)])

    def _step_hash_op(
        self, experiment_id: int, step: str, input_hash: str, output_hash: str, run_id: int
    ) -> Any:
        fields = {
            "experiment_id": experiment_id,
            "step": step,
            "input_hash": input_hash,
            "output_hash": output_hash,
            "run_id": run_id,
        }
        key = {"_id": _step_hash_id(experiment_id, step, input_hash)}
        return self._pymongo.UpdateOne(key, {"$set": fields}, upsert=True)

    def get_step_hashes(
        self, experiment_id: int, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, int]]:
        """The latest ``(output_hash, run_id)`` of each ``(step, input_hash)`` (one ``find``)."""
        ids = sorted({_step_hash_id(experiment_id, step, i) for step, i in keys})
        if not ids:
            return {}
        docs = self._call(lambda: list(self._db.step_hashes.find({"_id": {"$in": ids}})))
        return {(d["step"], d["input_hash"]): (d["output_hash"], int(d["run_id"])) for d in docs}

    # -- metrics -------------------------------------------------------------------------------

    def read_metrics(
        self, experiment_id: int, name: str, run_ids: Iterable[int]
    ) -> dict[int, MetricSeries]:
        """All points of metric ``name`` for each of ``run_ids`` that has it."""

        query = {
            "experiment_id": experiment_id,
            "name": name,
            "run_id": {"$in": sorted(set(run_ids))},
        }
        docs = self._call(lambda: list(self._db.metrics.find(query, {"_id": 0})))
        docs.sort(key=lambda d: (d["run_id"], d["at"]))
        parts: dict[int, list[Any]] = {}
        for d in docs:
            parts.setdefault(int(d["run_id"]), []).append(d)
        return {
            run_id: metric_series((c["steps"], c["vals"], c["times"]) for c in chunks)
            for run_id, chunks in parts.items()
        }

    def metric_names(self, experiment_id: int, run_id: int | None = None) -> dict[str, int]:
        """Metric names with their point counts (of one run, or of the experiment)."""
        query: dict[str, Any] = {"experiment_id": experiment_id}
        if run_id is not None:
            query["run_id"] = run_id
        fields = {"_id": 0, "name": 1, "count": 1, "run_id": 1}
        docs = self._call(lambda: list(self._db.metrics.find(query, fields)))
        if run_id is None:  # only runs that exist: a crash may leave chunks of an unwritten run
            runs = self._call(lambda: list(self._db.runs.find(query, {"_id": 0, "run_id": 1})))
            known = {d["run_id"] for d in runs}
            docs = [d for d in docs if d["run_id"] in known]
        totals: dict[str, int] = {}
        for d in docs:
            totals[d["name"]] = totals.get(d["name"], 0) + int(d["count"])
        return dict(sorted(totals.items()))

    # -- artifacts, snapshots, blobs -----------------------------------------------------------

    def write_artifact(self, experiment_id: int, run_id: int, name: str, value: Encoded) -> None:
        """Store a named binary value of a run (replacing one of the same name)."""
        self.write_runs(experiment_id, [], artifacts=[(run_id, name, value)])

    def _artifact_op(self, experiment_id: int, run_id: int, name: str, value: Encoded) -> Any:
        doc: dict[str, Any] = {
            "experiment_id": experiment_id,
            "run_id": run_id,
            "name": name,
            "codec": value.codec,
            "size": value.size,
            "data": None,
            "blob": None,
        }
        if value.size > INLINE_LIMIT:
            doc["blob"] = self._put_blob(value.data)
        else:
            doc["data"] = value.data
        key = {"_id": _artifact_id(experiment_id, run_id, name)}
        return self._pymongo.ReplaceOne(key, doc, upsert=True)

    def read_artifact(self, experiment_id: int, run_id: int, name: str) -> Encoded | None:
        """The named binary value of a run, or ``None``."""
        doc = self._call(
            self._db.artifacts.find_one, {"_id": _artifact_id(experiment_id, run_id, name)}
        )
        if doc is None:
            return None
        data = self._get_blob(doc["blob"]) if doc.get("blob") else bytes(doc["data"])
        return Encoded(doc["codec"], data)

    def list_artifacts(self, experiment_id: int, run_id: int) -> dict[str, int]:
        """Artifact names of a run with their sizes in bytes."""
        docs = self._call(
            lambda: list(
                self._db.artifacts.find(
                    {"experiment_id": experiment_id, "run_id": run_id}, {"name": 1, "size": 1}
                )
            )
        )
        return dict(sorted((d["name"], int(d["size"])) for d in docs))

    def put_snapshot(self, kind: str, text: str) -> str:
        """Store a text snapshot content-addressed; return its digest."""
        digest = content_address(text)
        self._call(
            self._db.snapshots.update_one,
            {"_id": digest},
            {"$setOnInsert": {"kind": kind, "text": text}},
            upsert=True,
        )
        return digest

    def get_snapshot(self, digest: str) -> str:
        """The text of a snapshot."""
        doc = self._call(self._db.snapshots.find_one, {"_id": digest})
        if doc is None:
            msg = f"no snapshot {digest!r} in store {self.url!r}"
            raise NotFoundError(msg)
        return str(doc["text"])

    def _put_blob(self, data: bytes) -> str:
        digest = content_address(data)
        parts = range(0, max(len(data), 1), BLOB_PART)
        for i, start in enumerate(parts):
            self._call(
                self._db.blobs.update_one,
                {"_id": f"{digest}/{i:05d}"},
                {
                    "$setOnInsert": {"data": data[start : start + BLOB_PART], "parts": len(parts)},
                    "$set": {"used": time.time()},
                },
                upsert=True,
            )
        return digest

    # -- garbage -------------------------------------------------------------------------------

    def collect_garbage(self, *, min_age: float = 3600.0, dry_run: bool = False) -> GcReport:
        """Remove documents of no experiment (an interrupted delete) and blobs that nothing
        refers to and that were last written or reused more than ``min_age`` seconds ago (a
        write in progress writes its blobs before its runs)."""
        cutoff = time.time() - min_age
        report = GcReport()
        ids = [d["_id"] for d in self._call(self._db.experiments.find, {}, {"_id": 1})]
        orphan = {"experiment_id": {"$nin": ids}}
        for coll in ("runs", "metrics", "artifacts", "step_hashes"):
            report.rows += self._call(self._db[coll].count_documents, orphan)
            if not dry_run:
                self._call(self._db[coll].delete_many, orphan)
        used = self._referenced()
        old = {"$or": [{"used": {"$lte": cutoff}}, {"used": {"$exists": False}}]}
        stale = [
            d for d in self._call(lambda: list(self._db.blobs.find(old, {"_id": 1})))
            if d["_id"].partition("/")[0] not in used
        ]  # fmt: skip
        for part in batches([d["_id"] for d in stale], BATCH):
            query = {"_id": {"$in": part}, **old}
            for doc in self._call(lambda q=query: list(self._db.blobs.find(q))):
                report.bytes += len(doc["data"])
                report.blobs += doc["_id"].endswith("/00000")
            if not dry_run:
                self._call(self._db.blobs.delete_many, query)
        return report

    def _referenced(self) -> set[str]:
        """Every blob digest a run's bundle or an artifact refers to."""
        used = {
            d["blob"]
            for d in self._call(lambda: list(self._db.artifacts.find({"blob": {"$ne": None}})))
            if d.get("blob")
        }
        fields = {"bundle": 1, "bundle_blob": 1}
        for doc in self._call(lambda: list(self._db.runs.find({}, fields))):
            if doc.get("bundle_blob"):
                used.add(doc["bundle_blob"])
                used.update(blob_digests(self._get_blob(doc["bundle_blob"])))
            elif doc.get("bundle") is not None:
                used.update(blob_digests(bytes(doc["bundle"])))
        return used

    def _get_blob(self, digest: str) -> bytes:
        query = {"_id": {"$gte": f"{digest}/", "$lt": f"{digest}0"}}
        docs = self._call(lambda: list(self._db.blobs.find(query)))
        docs.sort(key=lambda d: d["_id"])
        if not docs or len(docs) != docs[0]["parts"]:
            msg = f"blob {digest} is missing from store {self.url!r}; the store is incomplete"
            raise StoreFormatError(msg)
        return b"".join(bytes(d["data"]) for d in docs)


def _split_chunks(
    chunks: Sequence[MetricChunk],
) -> Iterable[tuple[MetricChunk, int, bytes, bytes, bytes]]:
    """``(chunk, count, steps, values, times)`` parts of at most :data:`CHUNK_POINTS` points."""
    for c in chunks:
        for lo in range(0, max(c.count, 1), CHUNK_POINTS):
            hi = min(lo + CHUNK_POINTS, c.count)
            a, b = 8 * lo, 8 * hi
            yield c, hi - lo, c.steps[a:b], c.values[a:b], c.times[a:b]


def _step_hash_id(experiment_id: int, step: str, input_hash: str) -> str:
    return f"{experiment_id}/{input_hash}/{step}"


def _artifact_id(experiment_id: int, run_id: int, name: str) -> str:
    return f"{experiment_id}/{run_id:012d}/{name}"
