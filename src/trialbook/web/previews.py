"""Bounded previews of artifact files for the UI: the first :data:`TEXT_LIMIT` bytes of text,
logs and JSON (pretty-printed when whole), the first :data:`TABLE_ROWS` rows of CSV and
Parquet, images by reference (the page loads them from the download URL). Never the whole of a
large file in memory.

Examples
--------
>>> preview_kind("text/csv"), preview_kind("image/svg+xml"), preview_kind("application/zip")
('table', 'image', None)
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from typing import Any

__all__ = ["IMAGE_TYPES", "PARQUET_LIMIT", "TABLE_ROWS", "TEXT_LIMIT", "preview", "preview_kind"]

TEXT_LIMIT = 64 * 1024
"""Bytes of a text, log, JSON or CSV file a preview reads at most."""
TABLE_ROWS = 20
PARQUET_LIMIT = 64 * 1024 * 1024
"""A Parquet file up to this size is read for its first rows; a larger one is not previewed."""
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml"})
_TEXT_TYPES = frozenset({
    "application/json", "application/x-ndjson", "application/yaml", "application/xml",
    "application/x-yaml", "application/toml", "application/javascript",
    "application/x-python-code", "application/x-sh",
})  # fmt: skip
_TABLE_TYPES = frozenset(
    {"text/csv", "text/tab-separated-values", "application/vnd.apache.parquet"}
)


def preview_kind(media_type: str) -> str | None:
    """How a file of ``media_type`` is previewed: ``json``, ``table``, ``image``, ``text``,
    or ``None`` (download only).

    Examples
    --------
    >>> preview_kind("application/json"), preview_kind("text/x-python")
    ('json', 'text')
    """
    if media_type == "application/json":
        return "json"
    if media_type in _TABLE_TYPES:
        return "table"
    if media_type in IMAGE_TYPES:
        return "image"
    if media_type.startswith("text/") or media_type in _TEXT_TYPES:
        return "text"
    return None


def _text(prefix: bytes, size: int) -> tuple[str, bool]:
    truncated = size > len(prefix)
    text = prefix.decode("utf-8", errors="replace")
    if truncated and text.endswith("\ufffd"):  # a character cut at the limit
        text = text.rstrip("\ufffd")
    return text, truncated


def preview(
    entry: dict[str, Any], read: Callable[[int], bytes], *, download_url: str
) -> dict[str, Any]:
    """A JSON-ready preview of the file ``entry`` (name, path, size, media type) whose bytes
    ``read(n)`` returns from the start (at most ``n``): ``type`` is ``text``, ``json``,
    ``table``, ``image`` (with ``src``, the inline download URL) or ``none`` (with a ``note``).

    Examples
    --------
    >>> entry = {"size": 9, "media_type": "application/json"}
    >>> preview(entry, io.BytesIO(b'{"a": [1]}').read, download_url="/d")["text"]
    '{\\n  "a": [\\n    1\\n  ]\\n}'
    >>> entry = {"size": 8, "media_type": "text/csv"}
    >>> preview(entry, io.BytesIO(b"a,b\\n1,x\\n").read, download_url="/d")["rows"]
    [['1', 'x']]
    """
    size, media = entry["size"], entry["media_type"]
    kind = preview_kind(media)
    base = {"size": size, "media_type": media}
    if kind == "image":
        return {**base, "type": "image", "src": download_url + "&inline=1"}
    if kind is None:
        return {**base, "type": "none", "note": f"no preview for {media}: download the file"}
    if media == "application/vnd.apache.parquet":
        return {**base, **_parquet(read, size)}
    text, truncated = _text(read(TEXT_LIMIT), size)
    if kind == "table":
        return {**base, **_csv(text, truncated, media)}
    if kind == "json" and not truncated:
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            return {**base, "type": "text", "text": text, "truncated": False,
                    "note": "not valid JSON: shown as text"}  # fmt: skip
    return {**base, "type": "json" if kind == "json" else "text", "text": text,
            "truncated": truncated}  # fmt: skip


def _rows(frame: Any) -> dict[str, Any]:
    from trialbook.codecs import plain_scalar

    def cell(value: Any) -> Any:
        value = plain_scalar(value)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return value if isinstance(value, str | int | float | bool) else str(value)

    return {
        "type": "table",
        "columns": [str(c) for c in frame.columns],
        "rows": [[cell(v) for v in row] for row in frame.itertuples(index=False)],
    }


def _csv(text: str, truncated: bool, media: str) -> dict[str, Any]:
    import pandas as pd

    if truncated:  # drop the line cut at the limit
        text = text[: text.rfind("\n") + 1] if "\n" in text else ""
    sep = "\t" if media == "text/tab-separated-values" else ","
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, nrows=TABLE_ROWS, dtype=str,
                            keep_default_na=False)  # fmt: skip
    except (ValueError, pd.errors.ParserError) as exc:
        return {"type": "text", "text": text, "truncated": truncated,
                "note": f"not readable as a table ({exc}): shown as text"}  # fmt: skip
    return {**_rows(frame), "truncated": truncated}


def _parquet(read: Callable[[int], bytes], size: int) -> dict[str, Any]:
    if size > PARQUET_LIMIT:
        return {"type": "none",
                "note": f"too large to preview (over {PARQUET_LIMIT // 2**20} MiB): "
                        "download the file"}  # fmt: skip
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(pa.BufferReader(read(size)))
        batch = next(parquet.iter_batches(batch_size=TABLE_ROWS), None)
    except (OSError, pa.ArrowException) as exc:
        return {"type": "none", "note": f"not a readable Parquet file: {exc}"}
    names = parquet.schema_arrow.names
    frame = batch.to_pandas() if batch is not None else None
    out = _rows(frame) if frame is not None else {"type": "table", "columns": names, "rows": []}
    return {**out, "total_rows": parquet.metadata.num_rows,
            "truncated": parquet.metadata.num_rows > TABLE_ROWS}  # fmt: skip
