"""How a run's values are laid out in a backend: one JSON document plus one binary bundle.

:func:`run_document` splits a :class:`RunRecord`: its plain JSON values go into one document
(queryable by the database) under short keys, each left out when empty -- ``p`` params, ``f``
fields, ``t`` tags, ``m`` metrics summary, ``r`` result, ``e`` error -- and the others (arrays,
frames, tagged values) are packed together into one *bundle*; :func:`fill_record` reverses it::

    b"TBV1" | uint32 header length | header (JSON) | payload

The header lists ``[slot, name, codec, offset, length, digest]`` per value. A value larger than
``inline_limit`` is not copied into the payload: it goes to the store's content-addressed blob
area and the header keeps its ``digest`` (``length`` then counts 0 bytes of payload).

Examples
--------
>>> from trialbook.codecs import Encoded
>>> data = pack({("field", "w"): Encoded("npy", b"123")}, put_blob=None)
>>> unpack(data, get_blob=None)
{('field', 'w'): Encoded(codec='npy', data=b'123')}
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from trialbook.codecs import Encoded
from trialbook.errors import CodecError, CorruptStoreError, StoreFormatError
from trialbook.storage.records import ErrorInfo, RunRecord

__all__ = [
    "INLINE_LIMIT",
    "RUN_COLUMNS",
    "blob_digests",
    "blob_entries",
    "column_docs",
    "column_values",
    "columns",
    "dump_doc",
    "fill_record",
    "load_doc",
    "numpy_doc",
    "pack",
    "record_from_columns",
    "run_document",
    "split",
    "unpack",
]

INLINE_LIMIT = 256 * 1024
RUN_COLUMNS = (
    "run_id",
    "kind",
    "status",
    "key",
    "seed",
    "created",
    "started",
    "finished",
    "code",
    "environment",
)
"""The plain columns a backend keeps next to a run's document, in this order (see
:func:`columns`); every backend names them so."""
_MAGIC = b"TBV1"
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=True).encode
try:  # the C encoder of the json module, made once (``_dumps`` makes one per call)
    from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]

    _dump_c = c_make_encoder(None, None, encode_basestring, None, ":", ",", False, False, True)
except ImportError:  # pragma: no cover - a Python without the C accelerator
    _dump_c = None


def split(slot: str, values: Mapping[str, Any], bins: dict[tuple[str, str], Encoded]) -> dict:
    """Return the plain values of ``values`` (``values`` itself when all are plain: the
    caller only reads it); add the encoded ones to ``bins`` under ``slot``. An encoded value
    with a :attr:`~trialbook.codecs.Encoded.plain` value (a NumPy number) is in both: its
    plain value in the document, for queries; its exact value in the bundle.

    Examples
    --------
    >>> import numpy as np
    >>> from trialbook.codecs import encode
    >>> bins = {}
    >>> split("field", {"acc": encode(np.float64(0.5)), "w": encode(np.ones(2)), "n": 1}, bins)
    {'acc': 0.5, 'n': 1}
    >>> sorted(bins)
    [('field', 'acc'), ('field', 'w')]
    """
    for value in values.values():
        if type(value) is Encoded:
            break
    else:
        return values  # type: ignore[return-value]
    plain: dict[str, Any] = {}
    for name, value in values.items():
        if type(value) is Encoded:
            bins[slot, name] = value
            if value.plain is not None:
                plain[name] = value.plain
        else:
            plain[name] = value
    return plain


def run_document(run: RunRecord) -> tuple[dict[str, Any], dict[tuple[str, str], Encoded]]:
    """Split a run into its JSON document and its encoded values (for :func:`pack`)."""
    bins: dict[tuple[str, str], Encoded] = {}
    doc: dict[str, Any] = {}
    if run.params:
        doc["p"] = split("param", run.params, bins)
    if run.fields:
        doc["f"] = split("field", run.fields, bins)
    if run.tags:
        doc["t"] = run.tags
    if run.metrics:
        doc["m"] = run.metrics
    if type(run.result) is Encoded:
        bins["result", ""] = run.result
        if run.result.plain is not None:
            doc["r"] = run.result.plain
    elif run.result is not None:
        doc["r"] = run.result
    if run.error is not None:
        doc["e"] = [run.error.type, run.error.message, run.error.traceback]
    return doc, bins


def fill_record(
    record: RunRecord, doc: dict[str, Any], bins: dict[tuple[str, str], Encoded]
) -> None:
    """Set a record's values from what :func:`run_document` produced. An encoded value whose
    plain value the document also holds (a NumPy number) gets it back as its
    :attr:`~trialbook.codecs.Encoded.plain`, so that writing the record again keeps it.

    Examples
    --------
    >>> import numpy as np
    >>> from trialbook.codecs import encode
    >>> doc, bins = run_document(RunRecord(1, fields={"acc": encode(np.float32(0.5))}))
    >>> record = RunRecord(1)
    >>> fill_record(record, doc, {key: Encoded(e.codec, e.data) for key, e in bins.items()})
    >>> record.fields["acc"].plain, run_document(record)[0]
    (0.5, {'f': {'acc': 0.5}})
    """
    if doc:
        record.params = doc.get("p", {})
        record.fields = doc.get("f", {})
        record.tags = doc.get("t", {})
        record.metrics = doc.get("m", {})
        record.result = doc.get("r")
        error = doc.get("e")
        if error is not None:
            record.error = ErrorInfo(*error)
    for (slot, name), enc in bins.items():
        if slot == "param":
            record.params[name] = _with_plain(enc, record.params.get(name))
        elif slot == "field":
            record.fields[name] = _with_plain(enc, record.fields.get(name))
        else:
            record.result = _with_plain(enc, record.result)


def _with_plain(enc: Encoded, plain: Any) -> Encoded:
    """``enc`` with the plain value the document holds beside it (see :func:`split`)."""
    if plain is None or enc.plain is not None or type(plain) in {list, dict}:
        return enc
    return Encoded(enc.codec, enc.data, plain)


def column_docs(docs: Sequence[str], bundles: Mapping[int, Any], run_ids: Sequence[int]) -> Any:
    """The documents of :class:`~trialbook.storage.records.RunColumns` (``docs``, ``bundles``,
    ``run_ids``) as one dict per run, parsed in one ``json.loads`` per batch, each run's
    encoded values added as :func:`fill_record` adds them (params and fields after the plain
    ones, under ``p`` and ``f``; the result as ``r``).

    Examples
    --------
    >>> from trialbook.codecs import Encoded
    >>> bundles = {2: {("param", "w"): Encoded("npy", b"...")}}
    >>> list(column_docs(['{"p":{"a":1}}\\n{"p":{"a":2}}'], bundles, [1, 2]))
    [{'p': {'a': 1}}, {'p': {'a': 2, 'w': Encoded(codec='npy', data=b'...')}}]
    """
    i = 0
    for text in docs:
        for doc in json.loads("[" + text.replace("\n", ",") + "]"):
            bins = bundles.get(run_ids[i]) if bundles else None
            if bins:
                slots = {"param": "p", "field": "f"}
                for (slot, name), enc in bins.items():
                    if slot in slots:
                        values = doc.setdefault(slots[slot], {})
                        values[name] = _with_plain(enc, values.get(name))
                    else:
                        doc["r"] = _with_plain(enc, doc.get("r"))
            yield doc
            i += 1


def columns(run: RunRecord) -> dict[str, Any]:
    """The plain columns a backend keeps next to a run's document (for indexes and queries),
    by name, in the order of :data:`RUN_COLUMNS`.

    Examples
    --------
    >>> from trialbook.storage.records import RunRecord
    >>> columns(RunRecord(3, status="done", key="k"))["status"]
    'done'
    >>> tuple(columns(RunRecord(3))) == RUN_COLUMNS
    True
    """
    return dict(zip(RUN_COLUMNS, column_values(run), strict=True))


def column_values(run: RunRecord) -> tuple[Any, ...]:
    """The values of :func:`columns` as a tuple (a row; what a bulk insert binds).

    Examples
    --------
    >>> from trialbook.storage.records import RunRecord
    >>> column_values(RunRecord(3, status="done"))[:3]
    (3, 'run', 'done')
    """
    return (
        run.run_id,
        run.kind,
        str(run.status),
        run.key,
        run.seed,
        run.created,
        run.started,
        run.finished,
        run.code,
        run.environment,
    )


def record_from_columns(values: Sequence[Any]) -> RunRecord:
    """A run with the column values of :data:`RUN_COLUMNS` (in that order) and nothing else
    yet: :func:`fill_record` adds its document and bundle.

    Examples
    --------
    >>> record_from_columns([2, "job", "done", "k", None, 1.0, None, None, None, None]).key
    'k'
    """
    return RunRecord(
        run_id=values[0],
        kind=values[1],
        status=values[2],
        key=values[3],
        seed=values[4],
        created=values[5],
        started=values[6],
        finished=values[7],
        code=values[8],
        environment=values[9],
    )


def dump_doc(doc: Mapping[str, Any] | None) -> str | None:
    """A JSON document as text, or ``None`` for an empty one (saves a parse on read).

    Examples
    --------
    >>> dump_doc({"p": {"lr": 0.1, "name": "é"}}), dump_doc({})
    ('{"p":{"lr":0.1,"name":"é"}}', None)
    >>> cycle = []; cycle.append(cycle)
    >>> dump_doc({"t": cycle})
    Traceback (most recent call last):
    ...
    ValueError: Circular reference detected
    """
    if not doc:
        return None
    if _dump_c is not None:
        try:  # no cycle check here: a cycle ends in RecursionError, and the slow path names it
            return "".join(_dump_c(doc, 0))
        except (RecursionError, TypeError, ValueError):
            pass  # the message of json's own encoder, below
    return _dumps(doc)


def load_doc(text: str | None) -> dict[str, Any]:
    """Parse what :func:`dump_doc` wrote."""
    return json.loads(text) if text else {}


def pack(
    bins: Mapping[tuple[str, str], Encoded],
    put_blob: Callable[[bytes], str] | None,
    inline_limit: int = INLINE_LIMIT,
) -> bytes | None:
    """Pack encoded values into one bundle (``None`` when there are none)."""
    if not bins:
        return None
    header: list[list[Any]] = []
    payload: list[bytes] = []
    offset = 0
    for (slot, name), enc in bins.items():
        if put_blob is not None and len(enc.data) > inline_limit:
            header.append([slot, name, enc.codec, offset, 0, put_blob(enc.data)])
            continue
        header.append([slot, name, enc.codec, offset, len(enc.data), None])
        payload.append(enc.data)
        offset += len(enc.data)
    head = _dumps(header).encode()
    return b"".join([_MAGIC, struct.pack("<I", len(head)), head, *payload])


def unpack(
    data: bytes | None, get_blob: Callable[[str], bytes] | None
) -> dict[tuple[str, str], Encoded]:
    """Unpack a bundle written by :func:`pack`."""
    if not data:
        return {}
    if data[:4] != _MAGIC:
        msg = "a run's value bundle is damaged (bad magic bytes); the store may be corrupt"
        raise StoreFormatError(msg)
    (size,) = struct.unpack_from("<I", data, 4)
    body = memoryview(data)[8 + size :]
    out: dict[tuple[str, str], Encoded] = {}
    for slot, name, codec, offset, length, digest in json.loads(data[8 : 8 + size]):
        if digest is not None:
            if get_blob is None:
                msg = f"value {name!r} refers to blob {digest} but this store has no blob area"
                raise StoreFormatError(msg)
            try:
                raw = get_blob(digest)
            except CorruptStoreError as exc:
                exc.field = "result" if slot == "result" else f"{slot} {name!r}"
                raise
        else:
            raw = bytes(body[offset : offset + length])
        out[slot, name] = Encoded(codec, raw)
    return out


def checked_blob(digest: str, raw: bytes) -> bytes:
    """``raw``, the bytes of the blob at content address ``digest``, once checked to hash to
    it; else :class:`~trialbook.errors.CorruptStoreError` naming the blob.

    Examples
    --------
    >>> from trialbook.identity import content_address
    >>> checked_blob(content_address(b"abc"), b"abc")
    b'abc'
    >>> checked_blob(content_address(b"abc"), b"abd")
    Traceback (most recent call last):
    ...
    trialbook.errors.CorruptStoreError: a stored value is corrupt: blob ba7816bf8f01...: ...
    """
    from trialbook.identity import content_address

    actual = content_address(raw)
    if actual != digest:
        problem = (
            f"its bytes ({len(raw)}) hash to {actual[:12]}...; its name says {digest[:12]}...: "
            "they changed after it was written"
        )
        raise CorruptStoreError(problem, blob=digest)
    return raw


def unpack_checked(run_id: int, data: bytes | None, blobs: Mapping[str, bytes]) -> dict:
    """:func:`unpack` of run ``run_id``'s bundle ``data`` whose blobs were read into ``blobs``
    (by content address), each checked to hash to its address: a blob changed in the database
    raises :class:`~trialbook.errors.CorruptStoreError` naming the run and the value, never
    returns wrong data (what the embedded store checks of its files).

    Examples
    --------
    >>> from trialbook.codecs import Encoded
    >>> from trialbook.identity import content_address
    >>> digest = content_address(b"12345")
    >>> data = pack({("field", "w"): Encoded("npy", b"12345")}, lambda d: digest, inline_limit=2)
    >>> unpack_checked(1, data, {digest: b"12345"})[("field", "w")].data
    b'12345'
    >>> unpack_checked(1, data, {digest: b"12346"})
    Traceback (most recent call last):
    ...
    trialbook.errors.CorruptStoreError: field 'w' of run 1 is corrupt: blob 5994471abb01...: ...
    """
    try:
        return unpack(data, lambda digest: checked_blob(digest, blobs[digest]))
    except CorruptStoreError as exc:
        exc.run_id = run_id
        raise


_SMALL = 1024  # bytes: more than the tagged JSON of any NumPy scalar


def numpy_doc(text: str | None, data: bytes | None) -> str | None:
    """The document ``text`` of a run written before documents held the plain values of NumPy
    numbers (see :func:`split`), with those its bundle ``data`` holds added; ``None`` when it
    needs none (or the bundle is not one trialbook wrote: ``trialbook check`` reports it). For
    the migrations of the stores.

    Examples
    --------
    >>> import numpy as np
    >>> from trialbook.codecs import encode
    >>> data = pack({("field", "acc"): encode(np.float64(0.5))}, put_blob=None)
    >>> numpy_doc('{"f":{"n":1}}', data), numpy_doc('{"f":{"acc":0.5}}', data)
    ('{"f":{"n":1,"acc":0.5}}', None)
    """
    from trialbook.codecs import decode, numpy_plain

    if not data or data[:4] != _MAGIC:
        return None
    doc = load_doc(text)
    slots = {"param": "p", "field": "f"}
    changed = False
    try:
        (size,) = struct.unpack_from("<I", data, 4)
        body = memoryview(data)[8 + size :]
        for slot, name, codec, offset, length, digest in json.loads(data[8 : 8 + size]):
            if codec != "tjson" or digest is not None or length > _SMALL:
                continue
            plain = numpy_plain(decode(Encoded(codec, bytes(body[offset : offset + length]))))
            if plain is None:
                continue
            if slot in slots:
                values = doc.setdefault(slots[slot], {})
                if name not in values:
                    values[name] = plain
                    changed = True
            elif "r" not in doc:
                doc["r"] = plain
                changed = True
    except (ValueError, TypeError, struct.error, CodecError):
        return None  # a damaged bundle: left as it is
    return dump_doc(doc) if changed else None


def blob_digests(data: bytes | None) -> list[str]:
    """The digests of the blobs a bundle refers to (read from its header only), for garbage
    collection.

    Examples
    --------
    >>> from trialbook.codecs import Encoded
    >>> data = pack({("field", "w"): Encoded("npy", b"12345")}, lambda d: "d1", inline_limit=2)
    >>> blob_digests(data), blob_digests(None)
    (['d1'], [])
    """
    return [digest for _, _, digest in blob_entries(data)]


def blob_entries(data: bytes | None) -> list[tuple[str, str, str]]:
    """``(slot, name, digest)`` of each value of a bundle kept in a blob (read from its header
    only): which field (or param, or the result) each blob holds.

    Examples
    --------
    >>> from trialbook.codecs import Encoded
    >>> data = pack({("field", "w"): Encoded("npy", b"12345")}, lambda d: "d1", inline_limit=2)
    >>> blob_entries(data)
    [('field', 'w', 'd1')]
    """
    if not data or data[:4] != _MAGIC:
        return []
    (size,) = struct.unpack_from("<I", data, 4)
    return [
        (entry[0], entry[1], entry[5])
        for entry in json.loads(bytes(data[8 : 8 + size]))
        if entry[5] is not None
    ]
