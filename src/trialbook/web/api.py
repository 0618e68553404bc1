"""The JSON API under ``/api/`` (documented by :mod:`trialbook.web.openapi`).

Every endpoint is a plain function of a Starlette request; the store and the options live in
``request.app.state.ui`` (a :class:`UIState`). Errors answer ``{"error": message}`` with 400
(bad query; a bad filter adds ``query``, ``column`` (1-based, or ``null``) and ``length``,
where its problem is: :class:`~trialbook.errors.QueryError`), 403 (action not allowed), 404
(unknown experiment, run, metric, file), and 503
``{"error": "store unreachable, retrying", "detail": ...}`` while the store's server cannot be
reached (past the store's retry budget; the next request tries again).

Examples
--------
>>> ROUTES[0]
('GET', '/api/experiments', 'experiments')
"""

from __future__ import annotations

import dataclasses
import functools
import json
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from trialbook.errors import (
    ConfigError,
    NotFoundError,
    QueryError,
    RunConflictError,
    StoreUnavailableError,
)
from trialbook.notes import MAX_BYTES, NOTE_TAG, note_text
from trialbook.storage.heartbeats import mark_lost
from trialbook.storage.query import query_runs
from trialbook.storage.records import ExperimentInfo, RunRecord
from trialbook.web import files, jobs, previews, views
from trialbook.web import table as runs_table
from trialbook.web.live import live_counts
from trialbook.web.series import downsample

__all__ = ["ROUTES", "SegmentConvertor", "UIState", "register_segment"]

MAX_LIMIT = 1000
MAX_COMPARE = 10
MAX_LIVE = 200
"""At most this many running runs in the Live list (waiting ones are only counted)."""
UNREACHABLE = "store unreachable, retrying"


@dataclasses.dataclass
class UIState:
    """What the app serves: a store, its access token, whether actions are allowed.

    Examples
    --------
    >>> UIState(store=None, token="t").allow_actions
    False
    """

    store: Any
    token: str
    allow_actions: bool = False


class HTTPError(Exception):
    """An answer other than 200, with its message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json(content: Any, status: int = 200) -> Any:
    from starlette.responses import Response

    body = json.dumps(views.clean_json(content), ensure_ascii=False, separators=(",", ":"))
    return Response(body, status, media_type="application/json")


def endpoint(func: Callable[..., Any]) -> Callable[[Any], Awaitable[Any]]:
    """Run a synchronous handler in a worker thread; map errors to JSON answers."""
    from starlette.concurrency import run_in_threadpool

    @functools.wraps(func)
    async def handler(request: Any) -> Any:
        if request.method == "PUT":  # read here: handlers run in a worker thread
            request.state.body = await request.body()
        try:
            result = await run_in_threadpool(func, request, request.app.state.ui)
        except HTTPError as exc:
            return _json({"error": str(exc)}, exc.status)
        except QueryError as exc:  # where the filter went wrong, for the page to mark it
            return _json({"error": str(exc), "query": exc.query, "column": exc.column,
                          "length": exc.length}, 400)  # fmt: skip
        except (ConfigError, ValueError) as exc:
            return _json({"error": str(exc)}, 400)
        except (NotFoundError, LookupError) as exc:
            return _json({"error": str(exc).strip("'\"")}, 404)
        except StoreUnavailableError as exc:  # an outage, not a bug: the page says so
            return _json({"error": UNREACHABLE, "detail": str(exc)}, 503)
        return result if hasattr(result, "status_code") else _json(result)

    return handler


def _experiment(ui: UIState, request: Any) -> ExperimentInfo:
    name = request.path_params["name"]
    info = ui.store.find_experiment(name)
    if info is None:
        names = [e.name for e in ui.store.list_experiments()]
        raise HTTPError(404, f"no experiment {name!r} in the store (experiments: {names})")
    return info


def _run(ui: UIState, info: ExperimentInfo, run_id: int) -> RunRecord:
    found = ui.store.read_runs(info.id, [run_id])
    if not found:
        raise HTTPError(404, f"experiment {info.name!r} has no run {run_id}")
    return mark_lost(found, info.meta)[0]


def _int(request: Any, name: str, default: int, low: int = 0, high: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        upper = f" and <= {high}" if high is not None else ""
        raise HTTPError(400, f"query parameter {name!r} must be an int >= {low}{upper} "
                             f"(got {raw!r})")  # fmt: skip
    return value


def _run_ids(request: Any, most: int) -> list[int]:
    raw = request.query_params.get("runs", "")
    try:
        ids = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        ids = []
    if not ids or len(ids) > most:
        raise HTTPError(400, f"query parameter 'runs' must list 1 to {most} run ids separated "
                             f"by commas, e.g. runs=1,2 (got {raw!r})")  # fmt: skip
    return ids


# -- experiments and runs --------------------------------------------------------------------------


def experiments(request: Any, ui: UIState) -> Any:
    """The experiments, each with ``live``: its running and pending counts by the one rule
    of :mod:`trialbook.web.live` (the numbers its page's header shows)."""
    return {"experiments": [
        {"id": e.id, "name": e.name, "runs": e.runs, "created": e.created, "updated": e.updated,
         "kind": e.meta.get("kind") if isinstance(e.meta, dict) else None,
         "live": live_counts(ui.store, e, ("running", "pending")).counts}
        for e in ui.store.list_experiments()
    ]}  # fmt: skip


def runs(request: Any, ui: UIState) -> Any:
    info = _experiment(ui, request)
    q = request.query_params
    limit = _int(request, "limit", 100, 0, MAX_LIMIT)
    total, page = query_runs(
        ui.store, info.id, where=q.get("where") or None, order_by=q.get("order_by") or None,
        descending=q.get("descending", "false").lower() in ("1", "true", "yes"),
        limit=limit, offset=_int(request, "offset", 0), meta=info.meta,
    )  # fmt: skip
    rows = [views.run_row(run) for run in page]
    columns: dict[str, dict[str, None]] = {s: {} for s in ("params", "fields", "tags", "metrics")}
    for row in rows:
        for slot, names in columns.items():
            names.update(dict.fromkeys(row[slot]))
    return {
        "experiment": info.name, "description": _description(info), "total": total,
        "limit": limit,
        "offset": _int(request, "offset", 0), "runs": rows,
        "columns": {slot: list(names) for slot, names in columns.items()},
    }  # fmt: skip


def _description(info: ExperimentInfo) -> str | None:
    value = info.meta.get("description") if isinstance(info.meta, dict) else None
    return value if isinstance(value, str) else None


def run(request: Any, ui: UIState) -> Any:
    info = _experiment(ui, request)
    record = _run(ui, info, int(request.path_params["run_id"]))
    detail = views.run_detail(ui.store, info.id, record)
    detail["logs"] = jobs.run_logs(record)
    return detail


def delete_run(request: Any, ui: UIState) -> Any:
    if not ui.allow_actions:
        raise HTTPError(403, "actions are disabled; start the UI with --allow-actions to "
                             "delete runs")  # fmt: skip
    info = _experiment(ui, request)
    record = _run(ui, info, int(request.path_params["run_id"]))
    ui.store.delete_runs(info.id, [record.run_id])
    return {"deleted": record.run_id}


def _allowed(ui: UIState, what: str) -> None:
    if not ui.allow_actions:
        raise HTTPError(403, f"actions are disabled; start the UI with --allow-actions to {what}")


def _text_body(request: Any, what: str) -> str | None:
    """The ``text`` of a JSON body ``{"text": "..."}`` checked as a note (``None``: an empty
    text, which removes it); 413 past :data:`trialbook.notes.MAX_BYTES`, 400 for a bad body."""
    body: bytes = request.state.body
    too_big = f"{what} is too long: at most {MAX_BYTES // 1024} KiB of text; keep long texts " \
              "and files as artifacts"  # fmt: skip
    if len(body) > 2 * MAX_BYTES + 1024:  # any JSON escaping of the largest text accepted
        raise HTTPError(413, too_big)
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("text"), str):
        raise HTTPError(400, f'the body must be JSON {{"text": "..."}} giving {what} (an '
                             "empty text removes it)")  # fmt: skip
    text: str = parsed["text"]
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise HTTPError(413, too_big)
    return note_text(text, what)


def put_description(request: Any, ui: UIState) -> Any:
    _allowed(ui, "edit descriptions")
    info = _experiment(ui, request)
    text = _text_body(request, f"the description of {info.name!r}")
    ui.store.update_meta(info.id, {"description": text})
    return {"experiment": info.name, "description": text}


def put_note(request: Any, ui: UIState) -> Any:
    """Set a run's note: the run is read, its ``note`` tag set, and written back at the version
    read (and at the ``version`` the page showed, when the body gives it): a run changed
    meanwhile answers 409 and is left as the other writer left it."""
    _allowed(ui, "edit notes")
    info = _experiment(ui, request)
    run_id = int(request.path_params["run_id"])
    text = _text_body(request, f"the note of run {run_id}")
    found = ui.store.read_runs(info.id, [run_id])  # as stored: not marked lost for display
    if not found:
        raise HTTPError(404, f"experiment {info.name!r} has no run {run_id}")
    record = found[0]
    shown = json.loads(request.state.body).get("version")
    conflict = (
        f"run {run_id} was changed since this page read it (by a step, a persist or another "
        "editor); reload the page to see its current note, then edit again"
    )
    if shown is not None and type(shown) is not int:
        raise HTTPError(400, f"'version' must be the run's version as an int (got {shown!r})")
    if shown is not None and shown != record.version:
        raise HTTPError(409, conflict)
    tags = {k: v for k, v in record.tags.items() if k != NOTE_TAG}
    record.tags = tags if text is None else {**tags, NOTE_TAG: text}
    try:
        ui.store.write_runs(info.id, [record])
    except RunConflictError:
        raise HTTPError(409, conflict) from None
    version = 1 if record.version is None else record.version + 1
    return {"run_id": run_id, "note": text, "version": version}


def metric(request: Any, ui: UIState) -> Any:
    info = _experiment(ui, request)
    name = request.path_params["metric"]
    ids = _run_ids(request, MAX_COMPARE)
    points = _int(request, "points", 2000, 4, 100_000)
    series = ui.store.read_metrics(info.id, name, ids)
    out = {}
    for run_id, s in series.items():
        steps, values = downsample(s.steps, s.values, points)
        out[str(run_id)] = {"steps": steps, "values": values, "total": len(s)}
    return {"metric": name, "points": points, "runs": out}


def metric_names(request: Any, ui: UIState) -> Any:
    info = _experiment(ui, request)
    raw = request.query_params.get("run")
    run_id = int(raw) if raw and raw.isdigit() else None
    return {"metrics": ui.store.metric_names(info.id, run_id)}


def artifact(request: Any, ui: UIState) -> Any:
    from starlette.responses import Response

    info = _experiment(ui, request)
    run_id, name = int(request.path_params["run_id"]), request.path_params["artifact"]
    value = (
        None
        if name not in files.stored_values(ui.store, info.id, run_id)
        else (ui.store.read_artifact(info.id, run_id, name))
    )  # the pieces and manifests of logged artifacts are internal: see the files routes
    if value is None:
        raise HTTPError(404, f"run {run_id} of {info.name!r} has no artifact {name!r}")
    filename = f"{info.name}-{run_id}-{name}.{value.codec}"
    headers = {"Content-Disposition": files.disposition(filename),
               "X-Trialbook-Codec": value.codec}  # fmt: skip
    return Response(value.data, media_type="application/octet-stream", headers=headers)


def artifact_files(request: Any, ui: UIState) -> Any:
    """The run's artifacts as a tree (:func:`trialbook.web.files.artifact_tree`), each model
    folder with its one-line load code."""
    info = _experiment(ui, request)
    record = _run(ui, info, int(request.path_params["run_id"]))
    tree = files.artifact_tree(ui.store, info.id, record.run_id)
    for entry in tree:
        if entry.get("model") is not None:
            entry["model"]["load"] = files.load_code(info.name, record.run_id, entry["name"])
    return {"run_id": record.run_id, "artifacts": tree}


def _artifact_file(request: Any, ui: UIState) -> tuple[ExperimentInfo, dict[str, Any]]:
    info = _experiment(ui, request)
    record = _run(ui, info, int(request.path_params["run_id"]))
    name, path = request.path_params["artifact"], request.query_params.get("path")
    return info, files.file_entry(ui.store, info.id, record.run_id, name, path)


def artifact_download(request: Any, ui: UIState) -> Any:
    """The bytes of an artifact file, streamed piece by piece (never whole in memory);
    ``inline=1`` shows an image in the page instead of saving it."""
    from starlette.responses import StreamingResponse

    from trialbook.storage.artifacts import iter_artifact

    info, entry = _artifact_file(request, ui)
    run_id = int(request.path_params["run_id"])
    pieces = iter_artifact(ui.store, info.id, run_id, entry["name"], path=entry["path"])
    inline = request.query_params.get("inline") in ("1", "true") and (
        entry["media_type"] in previews.IMAGE_TYPES
    )
    filename = (entry["path"] or entry["name"]).rsplit("/", 1)[-1]
    headers = {
        "Content-Disposition": files.disposition(filename, inline=inline),
        "Content-Length": str(entry["size"]),
        "X-Content-Type-Options": "nosniff",
        # an SVG or HTML file opened directly runs nothing on the UI's origin
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    }
    return StreamingResponse(pieces, media_type=entry["media_type"], headers=headers)


def artifact_preview(request: Any, ui: UIState) -> Any:
    """A bounded preview of an artifact file (:func:`trialbook.web.previews.preview`)."""
    from trialbook.storage.artifacts import open_artifact

    info, entry = _artifact_file(request, ui)
    run_id = int(request.path_params["run_id"])
    quote = functools.partial(urllib.parse.quote, safe="")
    url = (f"/api/experiments/{quote(info.name)}/runs/{run_id}/files/{quote(entry['name'])}"
           f"/download?{urllib.parse.urlencode({'path': entry['path'] or ''})}")  # fmt: skip
    with open_artifact(ui.store, info.id, run_id, entry["name"], path=entry["path"]) as f:
        out = previews.preview(entry, f.read, download_url=url)
    return {"name": entry["name"], "path": entry["path"], "digest": entry["digest"], **out}


def snapshot(request: Any, ui: UIState) -> Any:
    digest = request.path_params["digest"]
    return {"digest": digest, "text": ui.store.get_snapshot(digest)}


def environment(request: Any, ui: UIState) -> Any:
    """An environment snapshot as tables (:func:`trialbook.web.environment.environment_tables`)."""
    from trialbook.web.environment import environment_tables

    digest = request.path_params["digest"]
    return {"digest": digest, **environment_tables(ui.store.get_snapshot(digest))}


def compare(request: Any, ui: UIState) -> Any:
    info = _experiment(ui, request)
    ids = _run_ids(request, MAX_COMPARE)
    found = {r.run_id: r for r in mark_lost(ui.store.read_runs(info.id, ids), info.meta)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise HTTPError(404, f"experiment {info.name!r} has no runs {missing}")
    return views.compare_runs(ui.store, [found[i] for i in ids])


def scatter(request: Any, ui: UIState) -> Any:
    info = _experiment(ui, request)
    q = request.query_params
    axes = [a for a in q.get("axes", "").split(",") if a.strip()]
    if not axes:
        raise HTTPError(400, "query parameter 'axes' must list names separated by commas, "
                             "e.g. axes=lr,metric.loss")  # fmt: skip
    from trialbook.storage.query import parse_name

    names = [parse_name(a) for a in axes]
    limit = _int(request, "limit", 5000, 1, 50_000)
    total, page = query_runs(
        ui.store, info.id, where=q.get("where") or None, limit=limit, meta=info.meta
    )
    points = [[run.run_id, *(n.value(run) for n in names)] for run in page]
    return {"axes": axes, "total": total, "points": points}


def table(request: Any, ui: UIState) -> Any:
    """The runs table with chosen columns (:mod:`trialbook.web.table`)."""
    info = _experiment(ui, request)
    limit, offset = _int(request, "limit", 100, 0, MAX_LIMIT), _int(request, "offset", 0)
    return runs_table.table_answer(request, ui.store, info, limit, offset)


def export(request: Any, ui: UIState) -> Any:
    return runs_table.export_answer(request, ui.store, _experiment(ui, request))


def groups(request: Any, ui: UIState) -> Any:
    return runs_table.groups_answer(request, ui.store, _experiment(ui, request))


# -- live status, logs, job graph ------------------------------------------------------------


def status(request: Any, ui: UIState) -> Any:
    """Run counts by status, and the Live list: the running runs (at most :data:`MAX_LIVE`)
    and running jobs whose run is not recorded yet are listed; the pending runs and the
    waiting jobs are only counted (``waiting``), whatever their number. A lost run (its
    process stopped sending heartbeats) counts as failed and is not listed: it no longer runs,
    and the runs table shows it failed with its ``LostRun`` error.

    ``counts`` follows the one rule of :mod:`trialbook.web.live` (runs plus the jobs not
    recorded yet, ``unrecorded`` saying how many of each), as the experiments list does."""
    info = _experiment(ui, request)
    found = live_counts(ui.store, info)
    _, running = query_runs(
        ui.store, info.id, where='status == "running"', limit=MAX_LIVE, meta=info.meta
    )
    fresh = ui.store.find_experiment(info.name) or info
    return {
        "experiment": info.name, "updated": fresh.updated, "total": fresh.runs,
        "counts": found.counts, "unrecorded": found.unrecorded,
        "live": [views.run_row(run) for run in running],
        "jobs": [j for j in found.jobs if j["status"] == "running"],
        "waiting": {"runs": found.counts["pending"] - found.unrecorded["pending"],
                    "jobs": found.unrecorded["pending"]},
    }  # fmt: skip


def log(request: Any, ui: UIState) -> Any:
    info = _experiment(ui, request)
    record = _run(ui, info, int(request.path_params["run_id"]))
    stream = request.query_params.get("stream", "stdout")
    path = jobs.log_file(record, stream)
    if path is None:
        folder = record.fields.get("jobpath")
        if not isinstance(folder, str):
            raise HTTPError(404, f"run {record.run_id} has no {stream!r} log (logs are known "
                                 "for jobs, whose record names their job directory)")  # fmt: skip
        return _no_log(folder, stream, f"run {record.run_id}")
    return {"stream": stream, **_read_log(request, path)}


def job_log(request: Any, ui: UIState) -> Any:
    info = _experiment(ui, request)
    ident, stream = request.path_params["identifier"], request.query_params.get("stream", "stdout")
    path = jobs.job_log_file(info, ident, stream)
    if path is None:
        folder = jobs.job_folder(info, ident)
        if folder is None:
            raise HTTPError(404, f"no job {ident!r} in the workspace of {info.name!r}")
        return _no_log(folder, stream, f"job {ident!r} of {info.name!r}")
    return {"stream": stream, **_read_log(request, path)}


def _no_log(folder: str, stream: str, what: str) -> dict[str, Any]:
    """A queued job's log is yet to come: an empty text and a note, so the viewer keeps
    polling; any other missing log is a 404 saying why (never ran, ...)."""
    queued, why = jobs.no_log_reason(folder, stream)
    if not queued:
        raise HTTPError(404, f"{what}: {why}")
    return {"stream": stream, "text": "", "offset": None, "status": "waiting",
            "note": f"{what}: {why}"}  # fmt: skip


def _read_log(request: Any, path: Any) -> dict[str, Any]:
    """The log's text from the request's ``offset`` (none: its end), with where to go on."""
    from trialbook.tasks.jobdir import read_log

    raw = request.query_params.get("offset")
    offset = _int(request, "offset", 0) if raw not in (None, "") else None
    return read_log(path, offset)


def graph(request: Any, ui: UIState) -> Any:
    info = _experiment(ui, request)
    _, records = query_runs(
        ui.store, info.id, where='kind == "job"', limit=jobs.MAX_JOB_DIRS, meta=info.meta
    )
    return {**jobs.job_graph(records, jobs.job_dirs(info)), "services": jobs.services(info)}


def kill(request: Any, ui: UIState) -> Any:
    if not ui.allow_actions:
        raise HTTPError(403, "actions are disabled; start the UI with --allow-actions to kill jobs")
    info = _experiment(ui, request)
    ident = request.path_params["identifier"]
    try:
        pid = jobs.kill_job(info, ident)
    except ProcessLookupError as exc:
        raise HTTPError(409, str(exc)) from None
    return {"killed": ident, "pid": pid}


def openapi(request: Any, ui: UIState) -> Any:
    from trialbook.web.openapi import spec

    return spec()


ROUTES: list[tuple[str, str, str]] = [
    ("GET", "/api/experiments", "experiments"),
    ("GET", "/api/experiments/{name:segment}/runs", "runs"),
    ("GET", "/api/experiments/{name:segment}/runs/{run_id:int}", "run"),
    ("PUT", "/api/experiments/{name:segment}/description", "put_description"),
    ("DELETE", "/api/experiments/{name:segment}/runs/{run_id:int}", "delete_run"),
    ("PUT", "/api/experiments/{name:segment}/runs/{run_id:int}/note", "put_note"),
    (
        "GET",
        "/api/experiments/{name:segment}/runs/{run_id:int}/artifacts/{artifact:segment}",
        "artifact",
    ),
    ("GET", "/api/experiments/{name:segment}/runs/{run_id:int}/files", "artifact_files"),
    (
        "GET",
        "/api/experiments/{name:segment}/runs/{run_id:int}/files/{artifact:segment}/download",
        "artifact_download",
    ),
    (
        "GET",
        "/api/experiments/{name:segment}/runs/{run_id:int}/files/{artifact:segment}/preview",
        "artifact_preview",
    ),
    ("GET", "/api/experiments/{name:segment}/runs/{run_id:int}/log", "log"),
    ("GET", "/api/experiments/{name:segment}/metrics", "metric_names"),
    ("GET", "/api/experiments/{name:segment}/metrics/{metric:segment}", "metric"),
    ("GET", "/api/experiments/{name:segment}/compare", "compare"),
    ("GET", "/api/experiments/{name:segment}/scatter", "scatter"),
    ("GET", "/api/experiments/{name:segment}/parallel", "parallel"),  # web/charts.py
    ("GET", "/api/experiments/{name:segment}/overlay", "overlay"),  # web/charts.py
    ("GET", "/api/experiments/{name:segment}/curves", "curves"),  # web/charts.py
    ("GET", "/api/experiments/{name:segment}/table", "table"),
    ("GET", "/api/experiments/{name:segment}/export", "export"),
    ("GET", "/api/experiments/{name:segment}/groups", "groups"),
    ("GET", "/api/experiments/{name:segment}/status", "status"),
    ("GET", "/api/experiments/{name:segment}/graph", "graph"),
    ("GET", "/api/experiments/{name:segment}/jobs/{identifier:segment}/log", "job_log"),
    ("POST", "/api/experiments/{name:segment}/jobs/{identifier:segment}/kill", "kill"),
    ("GET", "/api/snapshots/{digest:segment}", "snapshot"),
    ("GET", "/api/environments/{digest:segment}", "environment"),
    ("GET", "/api/openapi.json", "openapi"),
]
"""``(method, path, handler name)`` of every endpoint; the OpenAPI test checks the spec
documents exactly these."""


class SegmentConvertor:
    """A path parameter that is one URL segment, percent-decoded: with
    :class:`trialbook.web.app.EncodedSlashes`, ``/e/a%2Fb`` gives the experiment name ``a/b``
    (and ``%25`` a ``%``), so names holding ``/`` work in links.

    Examples
    --------
    >>> SegmentConvertor().convert("runs%2Fa%25"), SegmentConvertor().to_string("a/b")
    ('runs/a%', 'a%2Fb')
    """

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        return urllib.parse.unquote(value)

    def to_string(self, value: str) -> str:
        return urllib.parse.quote(value, safe="")


def register_segment() -> None:
    """Make ``{name:segment}`` usable in Starlette routes."""
    from starlette import convertors

    convertors.register_url_convertor("segment", SegmentConvertor())  # type: ignore[arg-type]


def routes() -> list[Any]:
    """Starlette routes of the API."""
    from starlette.routing import Route

    register_segment()

    from trialbook.web import charts  # its handlers use this module's helpers

    handlers = {**vars(charts), **globals()}
    return [Route(path, endpoint(handlers[name]), methods=[method], name=f"api_{name}")
            for method, path, name in ROUTES]  # fmt: skip
