"""The OpenAPI 3.1 document of the JSON API, served at ``/api/openapi.json``.

Built from :data:`trialbook.web.api.ROUTES` (so every route is documented, and only those) and
the hand-written descriptions below.

Examples
--------
>>> doc = spec()
>>> doc["openapi"], sorted(doc["paths"]["/api/experiments/{name}/runs"])
('3.1.0', ['get'])
"""

from __future__ import annotations

import re
from typing import Any

from trialbook.web.api import ROUTES
from trialbook.web.charts import DOCS as CHART_DOCS

__all__ = ["spec"]

_Q = dict[str, tuple[str, str]]  # query parameter -> (JSON schema type, description)

_DOCS: dict[str, tuple[str, _Q]] = {
    "experiments": ("Experiments with run counts, last activity (`updated`, epoch s) and `live` "
                    "(running and pending counts by the rule of the experiment's `status`).", {}),
    "runs": ("One page of an experiment's runs: filtered, sorted, with the total matching, and "
             "the experiment's `description`.", {
        "where": ("string", 'A filter of the query language, e.g. `lr > 0.01 and x == "a"`; '
                            "a bad one answers 400 with `query`, `column` and `length`."),
        "order_by": ("string", "A name to sort by (`run_id`, `metric.loss`, `params.lr`, ...)."),
        "descending": ("boolean", "Sort in descending order."),
        "limit": ("integer", "Page size (0 to 1000, default 100)."),
        "offset": ("integer", "Runs to skip (default 0)."),
    }),
    "run": ("A run with previews of its values, artifacts, code and environment digests, logs.",
            {}),
    "delete_run": ("Delete a run (only with `--allow-actions`; 403 otherwise).", {}),
    "put_description": ("Set the experiment's description from a JSON body `{\"text\": ...}` "
                        "(markdown; an empty text removes it; only with `--allow-actions`).",
                        {}),
    "put_note": ("Set a run's note (its `note` tag) from a JSON body `{\"text\": ..., "
                 "\"version\": ...}` (`version`, optional: the run's version the page showed; "
                 "only with `--allow-actions`).", {}),
    "artifact": ("Download an artifact's bytes (its codec in the `X-Trialbook-Codec` header).",
                 {}),
    "artifact_files": ("The run's logged artifacts as a tree: name, kind (`file`, `bytes`, "
                       "`folder`), size, media type, SHA-256 digest; a folder's `children` "
                       "(nested folders and files with their `path`) and `model` (flavour, "
                       "versions and the line of code that loads it, when it holds a "
                       "`model.json`).", {}),
    "artifact_download": ("Stream the bytes of an artifact (of the file `path` of a folder "
                          "artifact) with its media type, length and a download file name.", {
        "path": ("string", "A file inside a folder artifact, e.g. `plots/loss.png`; `..` "
                           "and absolute paths are refused (400)."),
        "inline": ("boolean", "Show an image (PNG, JPEG, GIF, WebP, SVG) instead of saving it."),
    }),
    "artifact_preview": ("A bounded preview of an artifact file: `text` or `json` (first 64 KiB; "
                         "JSON pretty-printed when whole), `table` (first 20 rows of a CSV or "
                         "a Parquet file up to 64 MiB), `image` (`src`: the inline download "
                         "URL) or `none` with a `note`.", {
        "path": ("string", "A file inside a folder artifact; `..` and absolute paths are "
                           "refused (400)."),
    }),
    "log": ("Text of a job's log from `offset` (default: its last 64 KiB) and the next offset.", {
        "stream": ("string", "`stdout` (default) or `stderr`."),
        "offset": ("integer", "Byte offset to read from; pass back `offset` to follow."),
    }),
    "metric_names": ("Metric names with point counts (of one run with `run`).", {
        "run": ("integer", "Only this run's metrics."),
    }),
    "metric": ("A metric of 1 to 10 runs, down-sampled on the server (min/max per bucket).", {
        "runs": ("string", "Run ids separated by commas, e.g. `1,2`."),
        "points": ("integer", "At most this many points per run (4 to 100000, default 2000)."),
    }),
    "compare": ("Compare 1 to 10 runs: a summary (kind, status, seed, result, duration), "
                "params, fields and tags with `differs` flags, common "
                "metrics, unified diffs of code and environment against the first run.", {
        "runs": ("string", "Run ids separated by commas, e.g. `1,2,3`."),
    }),
    "scatter": ("Values of several names per run, for scatter and parallel-coordinates views.", {
        "axes": ("string", "Names separated by commas, e.g. `lr,metric.loss`."),
        "where": ("string", "A filter of the query language."),
        "limit": ("integer", "At most this many runs (default 5000)."),
    }),
    "table": ("One page of the runs table with chosen columns: nested parameters as dotted "
              "columns (`params.model.layers`), metrics as last, min and max; `columns` shown, "
              "`available` others, `rows` with `cells` in the order of `columns`.", {
        "where": ("string", "A filter of the query language."),
        "order_by": ("string", "A column key to sort by (`params.data.seed`, `metric.loss.min`)."),
        "desc": ("boolean", "Sort in descending order."),
        "cols": ("string", "Column keys separated by commas, in order (default: all found)."),
        "limit": ("integer", "Page size (0 to 1000, default 100)."),
        "offset": ("integer", "Runs to skip (default 0)."),
    }),
    "export": ("The whole filtered, sorted table (chosen columns) as a file: CSV (streamed) or "
               "Parquet.", {
        "format": ("string", "`csv` (default) or `parquet`."),
        "where": ("string", "A filter of the query language."),
        "order_by": ("string", "A column key to sort by."),
        "desc": ("boolean", "Sort in descending order."),
        "cols": ("string", "Column keys separated by commas (default: the table's columns)."),
    }),
    "groups": ("The matching runs grouped by one or more columns: per group its values, count, "
               "`where` (the filter of its runs) and `[mean, std, n]` of each numeric column.", {
        "group": ("string", "Column keys to group by, separated by commas, e.g. `params.lr`."),
        "where": ("string", "A filter of the query language."),
        "cols": ("string", "Columns to aggregate (default: the table's columns)."),
    }),
    "status": ("Live status: `counts` by status by one rule (runs, a lost run counting as "
               "failed, plus the task jobs not recorded as runs yet; `unrecorded`: how many of "
               "each are such jobs), the running runs (`live`, at most 200) and running jobs "
               "not yet recorded (`jobs`, each with its `name` from its task and tags and its "
               "`progress`), pending runs and waiting jobs (`waiting`), last activity.", {}),
    "graph": ("The job graph of a task experiment (nodes with status, dependency edges) and "
              "the services it registered.", {}),
    "job_log": ("Log of a job by identifier, from its job directory (also while running); a "
                "queued job answers an empty `text`, `status` \"waiting\" and a `note`, a job "
                "that never ran a 404 saying why.", {
        "stream": ("string", "`stdout` (default) or `stderr`."),
        "offset": ("integer", "Byte offset to read from."),
    }),
    "kill": ("Send SIGTERM to a running job (only with `--allow-actions`; 403 otherwise).", {}),
    "snapshot": ("The text of a code or environment snapshot.", {}),
    "environment": ("An environment snapshot as tables: `packages` (name, version, location; "
                    "sorted by name) and `sections` (Platform, CPU, Python, NumPy, Git, ...: "
                    "`key`/`value` rows, `long` for multi-line or long values); 400 for a "
                    "snapshot that is not an environment.", {}),
    "openapi": ("This document.", {}),
}  # fmt: skip

_PATH_TYPES = {"int": "integer"}


def _operation(method: str, path: str, name: str) -> dict[str, Any]:
    summary, query = {**_DOCS, **CHART_DOCS}[name]
    params: list[dict[str, Any]] = []
    for pname, conv in re.findall(r"{(\w+)(?::(\w+))?}", path):
        schema = {"type": _PATH_TYPES.get(conv, "string")}
        params.append({"name": pname, "in": "path", "required": True, "schema": schema})
    for qname, (typ, text) in query.items():
        required = qname in ("runs", "axes")
        params.append({"name": qname, "in": "query", "required": required,
                       "description": text, "schema": {"type": typ}})  # fmt: skip
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {}}},
        "403": {"description": "Missing or wrong access token (or action not allowed)."},
    }
    if name.startswith("put_"):
        responses["400"] = {"description": "The body is not {\"text\": \"...\"}.",
                            "content": {"application/json": {}}}  # fmt: skip
        responses["413"] = {"description": "The text is longer than 64 KiB.",
                            "content": {"application/json": {}}}  # fmt: skip
    if name == "put_note":
        responses["409"] = {"description": "The run changed since it was read: reload it.",
                            "content": {"application/json": {}}}  # fmt: skip
    if name == "kill":
        responses["409"] = {"description": "The job is not running.",
                            "content": {"application/json": {}}}  # fmt: skip
    if name in ("artifact", "artifact_download"):
        responses["200"] = {"description": "The bytes", "content": {"application/octet-stream": {}}}
    if name == "export":
        responses["200"] = {"description": "The file", "content": {
            "text/csv": {}, "application/vnd.apache.parquet": {}}}  # fmt: skip
    if "{" in path:
        responses["404"] = {"description": "Unknown experiment, run or file.",
                            "content": {"application/json": {}}}  # fmt: skip
    if query:
        responses["400"] = {"description": "Bad query parameter (the message says which).",
                            "content": {"application/json": {}}}  # fmt: skip
    return {"operationId": name, "summary": summary, "parameters": params,
            "responses": responses}  # fmt: skip


def spec() -> dict[str, Any]:
    """The OpenAPI document (a dict).

    Examples
    --------
    >>> spec()["paths"]["/api/experiments/{name}/runs/{run_id}"]["delete"]["operationId"]
    'delete_run'
    """
    paths: dict[str, dict[str, Any]] = {}
    for method, path, name in ROUTES:
        plain = re.sub(r"{(\w+):\w+}", r"{\1}", path)
        paths.setdefault(plain, {})[method.lower()] = _operation(method, path, name)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "trialbook UI API",
            "version": "1",
            "description": "JSON API of `trialbook ui`. Every request carries the access token: "
            "`Authorization: Bearer <token>`, the `token` query parameter, or the cookie set "
            "by opening the printed URL.",
        },
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "query": {"type": "apiKey", "in": "query", "name": "token"},
            "cookie": {"type": "apiKey", "in": "cookie", "name": "trialbook_token"},
        }},
        "security": [{"bearer": []}, {"query": []}, {"cookie": []}],
        "paths": paths,
    }  # fmt: skip
