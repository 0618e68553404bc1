"""A store in MongoDB: ``mongodb://host:port/database`` or a ``pymongo.database.Database``.

A ``MongoClient`` alone is refused (:class:`~trialbook.errors.ConfigError`): it does not say
which database holds the store; pass ``client["name"]`` or put the database in the URL.

Layout
------
Collections of the database, each created with the indexes listed (the natural keys are the
``_id`` fields; ``E`` is an experiment id, ``R`` a run id on 12 digits):

* ``experiments``: ``{_id: E, name, created, updated, meta (JSON text), next_run_id}``, index
  ``name`` (unique); an experiment being created to replace another is named ``NUL E`` and
  has ``pending`` (the name it takes once its first runs are written): it is not listed;
* ``counters``: ``{_id: "experiments", seq}``, the last experiment id; ``{_id: "numpy_docs"}``
  once the documents of runs hold the plain values of their NumPy numbers (opening an older
  store adds them from the bundles, then inserts it);
* ``runs``: ``{_id: "E/R", experiment_id, run_id, kind, status, key, seed, created, started,
  finished, code, environment, doc (JSON text), bundle (binary) or bundle_blob (digest),
  version, writer}``, index ``(experiment_id, key)``; a run written before runs had versions
  has no ``version`` (read as 0);
* ``metrics``: one document per chunk of at most :data:`CHUNK_POINTS` points,
  ``{_id: "E/R/START/name", experiment_id, run_id, name, start, count, steps, vals, times}``
  (``start``: the position of its first point), indexes ``(experiment_id, name, run_id,
  start)`` and ``(experiment_id, run_id)``. Chunks written before chunks had positions have an
  ``at`` (the time of their write) instead, and come first, in that order;
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

Experiment ids come from ``$inc`` on the counter: an id is never given again. Writes do not
use multi-document transactions (a standalone ``mongod`` and the ``mongoeco`` test server lack
them), so the existence of the experiment is checked by a conditional update of its document
*after* a write's documents are in (every write ends with ``update_one({_id: E}, {$set:
{updated}})``): if it matched nothing, the experiment was deleted meanwhile, the write removes
every document of that id and raises ``ExperimentNotFoundError``. As deleting an experiment
removes its document before its other documents, a write either ends before that (and its
documents are deleted with the rest) or sees the document gone and cleans up after itself; only
a process killed between its writes and that check leaves documents of a deleted id, which no
reader reaches (ids are not reused) and :meth:`MongoStore.collect_garbage` removes.

Replacing an experiment with its first runs (``create_experiment(..., replace=True, runs=)``)
writes the new experiment under a hidden name first, then deletes the old one only if it is
still the one to replace (a conditional ``delete_one``), then gives the new one its name, then
removes the old one's documents. A failed write of the runs leaves the old experiment as it
was. A crash after the old one was deleted and before the new one was named leaves no
experiment under the name until :meth:`MongoStore.collect_garbage` names the new one (or removes
it, if another process took the name meanwhile); another process creating the same name in that
instant wins, and the replace fails with ``ExperimentExistsError``.

:meth:`MongoStore.write_runs` orders its writes so that a crash leaves the store consistent:
blobs first, then the metric chunks, then the run documents, and only then the artifacts and
step hashes (a step hash never points at a trial whose run was not recorded), and last the
conditional update above. A reader therefore never sees a run whose metric points are missing;
at worst a crash leaves unreferenced blobs, or metric chunks of a run that was never written
(ignored by the history and by :meth:`MongoStore.metric_names`, removed with the experiment), or
a run without the artifacts of its write; unreferenced blobs and the leftovers of an
interrupted delete are removed by :meth:`MongoStore.collect_garbage`. Every part is written by
key (upserts), so the retry of an interrupted or unanswered write completes it and leaves each
metric point once. A run executed again replaces a metric's points by writing the new chunks
first and deleting the other chunks of that metric last: a crash in between leaves the new
points followed by older ones, never none.

Versions of runs: a write of runs read from the store first reads their versions (one ``find``)
and refuses the whole write with ``RunConflictError`` before anything is written if one
changed; each run document is then replaced with a filter on that version, atomically per
document. Only a writer that changes the same run between that read and its own replace (a
race of milliseconds) can make the second refusal happen after other parts of the write (the
chunks, other runs) were applied; the error says so.

Write concern: the client's (the URL's ``w`` and ``journal`` options; MongoDB's default is
``w: "majority"`` on a replica set, acknowledged by the primary on a standalone server). Every
write waits for that acknowledgement before the next part is sent, so the order above holds on
the server; with ``w=0`` (unacknowledged) it does not, and a lost write is not retried.

Long writes are sent in commands of at most :data:`BATCH` documents, so that a slow server still
answers its heartbeats.

Runs are read with one ``find`` and their blobs with one ``find`` per :data:`BATCH` blobs;
:meth:`MongoStore.query_runs` turns the comparisons of a filter on run columns into a ``find``
filter (a count by status is one ``count`` command) and evaluates the rest on the documents read
without their bundles (see :mod:`trialbook.storage.mongo_query`; the stored format is the same).

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
    CorruptStoreError,
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
from trialbook.storage.chunks import metric_series
from trialbook.storage.records import (
    ExperimentInfo,
    GcReport,
    MetricChunk,
    MetricSeries,
    RunRecord,
)
from trialbook.storage.retry import retry_operations
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


@retry_operations
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
            [("experiment_id", asc), ("name", asc), ("run_id", asc), ("start", asc)],
        )
        old = "experiment_id_1_name_1_run_id_1_at_1"  # chunks ordered by time, before positions
        if old in self._call(db.metrics.index_information):
            self._call(db.metrics.drop_index, old)
        self._call(db.metrics.create_index, [("experiment_id", asc), ("run_id", asc)])
        self._call(db.artifacts.create_index, [("experiment_id", asc), ("run_id", asc)])
        self._call(db.step_hashes.create_index, [("experiment_id", asc), ("run_id", asc)])
        if self._call(db.counters.find_one, {"_id": "numpy_docs"}) is None:
            self._upgrade_numpy_docs()

    def _upgrade_numpy_docs(self) -> None:
        """Once per store (until ``counters`` holds ``{_id: "numpy_docs"}``): add to the
        documents of runs written before they held the plain values of NumPy numbers (a field
        ``np.float64(0.9)`` as ``0.9``) those their bundles hold, so queries find them. Each
        run is updated only if its document is still the one read (a run rewritten meanwhile
        is its writer's); a store where one moved is upgraded again at the next opening."""

        def scan() -> list[Any]:
            ops = []
            shown = {"doc": 1, "bundle": 1, "bundle_blob": 1}
            ids = [d["_id"] for d in self._db.experiments.find({}, {"_id": 1})]
            for d in (d for e in ids for d in self._db.runs.find({"experiment_id": e}, shown)):
                if d.get("bundle") is None and not d.get("bundle_blob"):
                    continue
                if d.get("bundle_blob"):  # a bundle of many values: the blob of its bytes
                    digest = d["bundle_blob"]
                    try:
                        bundle = checked_blob(digest, self._get_blobs([digest])[digest])
                    except (CorruptStoreError, KeyError):
                        continue  # reading the run reports it
                else:
                    bundle = bytes(d["bundle"])
                text = numpy_doc(d.get("doc"), bundle)
                if text is not None:
                    read = {"_id": d["_id"], "doc": d.get("doc")}
                    ops.append(self._pymongo.UpdateOne(read, {"$set": {"doc": text}}))
            return ops

        ops = self._call(scan)
        matched = 0
        for part in batches(ops, BATCH):
            matched += self._call(self._db.runs.bulk_write, part, ordered=False).matched_count
        if matched == len(ops):
            done = {"$set": {"done": True}}
            self._call(self._db.counters.update_one, {"_id": "numpy_docs"}, done, upsert=True)

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
        """All experiments ordered by name (not one being created to replace another)."""
        docs = self._call(lambda: list(self._db.experiments.find({}, {"next_run_id": 0})))
        infos = (self._info(d) for d in docs if "pending" not in d)
        return sorted(infos, key=lambda e: e.name)

    def find_experiment(self, name: str) -> ExperimentInfo | None:
        """The experiment named exactly ``name``, or ``None``."""
        doc = self._call(self._db.experiments.find_one, {"name": name})
        return None if doc is None or "pending" in doc else self._info(doc)

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
        experiment ``replace_id`` if given: one replacer deletes it, the others fail) with its
        first ``runs`` and ``metrics`` (see the module docs for the order of the steps)."""
        old = self._call(self._db.experiments.find_one, {"name": name}, {"_id": 1})
        if old is not None and (not replace or replace_id not in (None, old["_id"])):
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
            "next_run_id": max((r.run_id for r in runs), default=0),
        }
        if old is not None:  # hidden until its runs are in and the old one is gone
            doc.update(name=f"\0{exp_id}", pending=name)
        try:
            self._call(self._db.experiments.insert_one, doc)
        except self._pymongo.errors.DuplicateKeyError as exc:
            raise ExperimentExistsError(name) from exc
        try:
            self._write_docs(exp_id, runs, metrics, new=True)
            if old is not None:
                self._take_name(exp_id, name, old["_id"], strict=replace_id is not None)
        except BaseException:
            self._drop(exp_id)
            raise
        return ExperimentInfo(exp_id, name, now, now, len(runs), dict(meta or {}))

    def _take_name(self, exp_id: int, name: str, old_id: int, *, strict: bool) -> None:
        """Delete experiment ``old_id`` if it still has ``name`` (``strict``: else raise
        ``ExperimentExistsError``), give ``name`` to the hidden experiment ``exp_id``, then
        remove the old one's documents."""
        gone = self._call(self._db.experiments.delete_one, {"_id": old_id, "name": name})
        if strict and not gone.deleted_count:
            raise ExperimentExistsError(name)
        try:
            self._call(
                self._db.experiments.update_one,
                {"_id": exp_id},
                {"$set": {"name": name}, "$unset": {"pending": ""}},
            )
        except self._pymongo.errors.DuplicateKeyError as exc:
            raise ExperimentExistsError(name) from exc
        self._drop(old_id)

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
        """Write metric chunks, then runs, then artifacts and step hashes, delete the older
        points of the ``replace_metrics``, and last set the experiment's ``updated`` time: if
        that finds no experiment, remove every document of its id and raise
        ``ExperimentNotFoundError`` (see the module docs). A run read from the store is
        replaced only at the version it was read at (else ``RunConflictError``)."""
        e = experiment_id
        checked = [run for run in runs if run.version is not None]
        if checked:  # before anything is written
            self._check_versions(e, checked)
        self._write_docs(
            e, runs, metrics, artifacts=artifacts, step_hashes=step_hashes, replace=replace_metrics
        )
        self._require(e)

    def _require(self, e: int) -> None:
        """The end of every write: set the experiment's ``updated`` time; if it no longer
        exists, remove every document of its id (what the write added) and raise
        ``ExperimentNotFoundError``."""
        done = self._call(
            self._db.experiments.update_one, {"_id": e}, {"$set": {"updated": time.time()}}
        )
        if not done.matched_count:  # deleted meanwhile: what this write added goes too
            self._drop(e)
            raise ExperimentNotFoundError(experiment_id=e, store=self.url)

    def _write_docs(
        self,
        e: int,
        runs: Sequence[RunRecord],
        metrics: Sequence[MetricChunk],
        *,
        artifacts: Sequence[tuple[int, str, Encoded]] = (),
        step_hashes: Sequence[tuple[str, str, str, int]] = (),
        replace: Sequence[tuple[int, str]] = (),
        new: bool = False,
    ) -> None:
        """The documents of a write, in the order of the module docs (``new``: the first
        write of a new experiment, whose runs have no stored version to compare)."""
        run_docs = [(run, self._run_doc(e, run)) for run in runs]  # their blobs are written
        artifact_ops = [self._artifact_op(e, *a) for a in artifacts]
        new_chunks: dict[tuple[int, str], list[str]] = {}
        chunk_ops = []
        for c, lo, n, steps, vals, times in _split_chunks(metrics):
            key = _chunk_id(e, c.run_id, c.start + lo, c.name)
            new_chunks.setdefault((c.run_id, c.name), []).append(key)
            doc = {"experiment_id": e, "run_id": c.run_id, "name": c.name, "start": c.start + lo,
                   "count": n, "steps": steps, "vals": vals, "times": times}  # fmt: skip
            chunk_ops.append(self._pymongo.ReplaceOne({"_id": key}, doc, upsert=True))
        self._bulk("metrics", chunk_ops)
        self._write_run_docs(e, run_docs, new=new)
        self._bulk("artifacts", artifact_ops)
        self._bulk("step_hashes", [self._step_hash_op(e, *h) for h in step_hashes])
        for run_id, name in replace:
            self._call(
                self._db.metrics.delete_many,
                {"experiment_id": e, "run_id": run_id, "name": name,
                 "_id": {"$nin": new_chunks.get((run_id, name), [])}},
            )  # fmt: skip

    def _check_versions(self, e: int, runs: list[RunRecord]) -> None:
        """Raise ``RunConflictError`` unless each of ``runs`` is stored at the version it was
        read at (or is this write, applied once already); one ``find``."""
        ids = [f"{e}/{run.run_id:012d}" for run in runs]
        docs = self._call(
            lambda: list(
                self._db.runs.find({"_id": {"$in": ids}}, {"run_id": 1, "version": 1, "writer": 1})
            )
        )
        stored = {int(d["run_id"]): (int(d.get("version") or 0), d.get("writer")) for d in docs}
        conflicts = version_conflicts(runs, stored)
        if conflicts:
            raise RunConflictError(self._experiment_name(e), conflicts)

    def _experiment_name(self, e: int) -> str:
        """The experiment's name, to explain a conflict; ``ExperimentNotFoundError`` if it no
        longer exists (its runs went with it: that is the conflict), after removing every
        document of its id (what a write may have added)."""
        doc = self._call(self._db.experiments.find_one, {"_id": e}, {"name": 1})
        if doc is None:
            self._drop(e)
            raise ExperimentNotFoundError(experiment_id=e, store=self.url)
        return str(doc["name"])

    def _write_run_docs(
        self, e: int, run_docs: list[tuple[RunRecord, dict[str, Any]]], *, new: bool = False
    ) -> None:
        """Replace the run documents: new runs by upsert, runs read from the store only at the
        version they were read at (a filter on it; ``new``: an experiment just created, with
        no stored run to compare)."""
        ops, checked = [], []
        for run, doc in run_docs:
            key: dict[str, Any] = {"_id": f"{e}/{run.run_id:012d}"}
            if run.version is None or new:
                ops.append(self._pymongo.ReplaceOne(key, doc, upsert=True))
                continue
            same: dict[str, Any] = {"version": run.version}
            if run.version == 0:  # a run written before versions has none
                same = {"version": {"$in": [0, None]}}
            retry = {"version": run.version + 1, "writer": run.writer}
            key["$or"] = [same, retry] if run.writer else [same]
            checked.append((run, self._pymongo.ReplaceOne(key, doc)))
        self._bulk("runs", ops)
        if not checked:
            return
        matched = 0
        for part in batches(checked, BATCH):
            done = self._call(self._db.runs.bulk_write, [op for _, op in part], ordered=True)
            matched += done.matched_count
        if matched < len(checked):  # changed since _check_versions: a race of two writers
            runs = [run for run, _ in checked]
            ids = [f"{e}/{run.run_id:012d}" for run in runs]
            docs = self._call(lambda: list(self._db.runs.find({"_id": {"$in": ids}})))
            stored = {int(d["run_id"]): (int(d.get("version") or 0), d.get("writer")) for d in docs}
            conflicts = [
                (r.run_id, r.version, stored[r.run_id][0] if r.run_id in stored else None)
                for r in runs
                if stored.get(r.run_id) != (next_version(r), r.writer)
            ]
            raise RunConflictError(
                self._experiment_name(e),
                conflicts,
                applied="the other parts of this write were applied (MongoDB without "
                "transactions): reload and check those runs",
            )

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
            "version": next_version(run),
            "writer": run.writer,
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
        """The runs matching ``query`` in full: one ``find``, then their blobs in batches."""
        asc = self._pymongo.ASCENDING
        docs = self._call(lambda: list(self._db.runs.find(query, {"_id": 0}).sort("run_id", asc)))
        outer = self._get_blobs([d["bundle_blob"] for d in docs if d.get("bundle_blob")])
        bundles = [
            checked_blob(d["bundle_blob"], outer[d["bundle_blob"]]) if d.get("bundle_blob")
            else None if d.get("bundle") is None else bytes(d["bundle"])
            for d in docs
        ]  # fmt: skip
        blobs = self._get_blobs([digest for b in bundles for digest in blob_digests(b)])
        out = []
        for d, bundle in zip(docs, bundles, strict=True):
            record = record_from_columns(
                [int(d["run_id"]), d["kind"], d["status"], *(d.get(c) for c in RUN_COLUMNS[3:])]
            )
            record.version = int(d.get("version") or 0)
            fill_record(
                record, load_doc(d.get("doc")), unpack_checked(record.run_id, bundle, blobs)
            )
            out.append(record)
        return out

    # -- run queries (see trialbook.storage.mongo_query) ---------------------------------------

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
        """Filter, sort and page runs (a ``find`` filter on the columns, the Python evaluator
        on the documents without their bundles); only the page is read in full. See
        :func:`trialbook.storage.query.query_runs`."""
        from trialbook.storage.mongo_query import query_runs
        from trialbook.storage.query import _check_page

        _check_page(limit, offset)
        return self._call(
            lambda: query_runs(
                self._db.runs, lambda ids: self.read_runs(experiment_id, ids), experiment_id,
                where=where, order_by=order_by, descending=descending, limit=limit,
                offset=offset,
            )
        )  # fmt: skip

    def names_present(self, experiment_id: int, paths: Sequence[Sequence[str]]) -> list[bool]:
        """For each list of JSON paths of the run document, whether some run of the experiment
        has one of them (an empty list: whether it has a run); used by
        :func:`trialbook.storage.query.check_names`."""
        from trialbook.storage.mongo_query import names_present

        return self._call(lambda: names_present(self._db.runs, experiment_id, paths))

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
        # chunks written before positions (an ``at`` time, no ``start``) come first
        docs.sort(key=lambda d: (d["run_id"], *((1, d["start"]) if "start" in d else (0, d["at"]))))
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
        """Finish replaces interrupted more than ``min_age`` seconds ago (see the module docs),
        then remove documents of no experiment (an interrupted delete or write) and blobs that
        nothing refers to and that were last written or reused more than ``min_age`` seconds
        ago (a write in progress writes its blobs before its runs)."""
        cutoff = time.time() - min_age
        report = GcReport()
        if not dry_run:
            self._finish_replaces(cutoff)
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

    def _finish_replaces(self, cutoff: float) -> None:
        """Hidden experiments of a replace interrupted before ``cutoff``: name each one if its
        name is free (the old experiment was deleted), else delete its document (its other
        documents are then orphans)."""
        query = {"pending": {"$exists": True}, "created": {"$lte": cutoff}}
        for doc in self._call(lambda: list(self._db.experiments.find(query, {"pending": 1}))):
            try:
                self._call(
                    self._db.experiments.update_one,
                    {"_id": doc["_id"]},
                    {"$set": {"name": doc["pending"]}, "$unset": {"pending": ""}},
                )
            except self._pymongo.errors.DuplicateKeyError:
                self._call(self._db.experiments.delete_one, {"_id": doc["_id"]})

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
        return checked_blob(digest, self._get_blobs([digest])[digest])

    def _get_blobs(self, digests: Sequence[str]) -> dict[str, bytes]:
        """The blobs of ``digests``: one ``find`` of their first parts per :data:`BATCH`, and
        one more for the other parts of those stored in several."""
        wanted = sorted(set(digests))
        parts: dict[str, dict[int, bytes]] = {d: {} for d in wanted}
        counts: dict[str, int] = {}

        def fetch(ids: list[str]) -> None:
            for part in batches(ids, BATCH):
                for doc in self._call(self._find_blobs, part):
                    digest, _, index = doc["_id"].partition("/")
                    parts[digest][int(index)] = bytes(doc["data"])
                    counts[digest] = int(doc["parts"])

        fetch([f"{d}/00000" for d in wanted])
        fetch([f"{d}/{i:05d}" for d in wanted for i in range(1, counts.get(d, 1))])
        missing = [d for d in wanted if not parts[d] or len(parts[d]) != counts[d]]
        if missing:
            msg = (
                f"blob {missing[0]} is missing from store {self.url!r}; the store is incomplete"
                + (f" ({len(missing)} blobs are missing)" if len(missing) > 1 else "")
            )
            raise StoreFormatError(msg)
        return {d: b"".join(parts[d][i] for i in range(counts[d])) for d in wanted}

    def _find_blobs(self, ids: list[str]) -> list[dict[str, Any]]:
        """The blob documents of ``ids`` (parts of at most 8 MiB each). MongoDB answers a large
        result in batches of 16 MiB; a server that sends it in one reply larger than its
        largest message (``mongoeco``) makes the driver fail: the ids are then asked in two
        halves."""
        try:
            return list(self._db.blobs.find({"_id": {"$in": ids}}))
        except self._pymongo.errors.ProtocolError as exc:
            if len(ids) < 2 or "larger than server max message size" not in str(exc):
                raise
        half = len(ids) // 2
        return self._find_blobs(ids[:half]) + self._find_blobs(ids[half:])


def _split_chunks(
    chunks: Sequence[MetricChunk],
) -> Iterable[tuple[MetricChunk, int, int, bytes, bytes, bytes]]:
    """``(chunk, offset, count, steps, values, times)`` parts of at most :data:`CHUNK_POINTS`
    points (``offset``: of the part's first point in the chunk)."""
    for c in chunks:
        for lo in range(0, max(c.count, 1), CHUNK_POINTS):
            hi = min(lo + CHUNK_POINTS, c.count)
            a, b = 8 * lo, 8 * hi
            yield c, lo, hi - lo, c.steps[a:b], c.values[a:b], c.times[a:b]


def _chunk_id(experiment_id: int, run_id: int, start: int, name: str) -> str:
    return f"{experiment_id}/{run_id:012d}/{start:015d}/{name}"


def _step_hash_id(experiment_id: int, step: str, input_hash: str) -> str:
    return f"{experiment_id}/{input_hash}/{step}"


def _artifact_id(experiment_id: int, run_id: int, name: str) -> str:
    return f"{experiment_id}/{run_id:012d}/{name}"
