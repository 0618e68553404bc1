"""What the UI knows of task jobs, read defensively from what the task part records.

The task part (:mod:`trialbook.tasks`) writes, for an experiment whose metadata says
``{"kind": "tasks", "workdir": ...}``:

* a job directory ``<workdir>/jobs/<task id>/<identifier>/`` per job, with ``params.json``
  (``task``, ``identifier``, ``experiment``, ``params``, ``tags``), ``status.json`` (``status``,
  ``pid``, ``started``, ``finished``) while and after it runs, and ``stdout.log`` /
  ``stderr.log``;
* a run of ``kind="job"`` per finished job, whose ``key`` is the identifier and whose fields
  hold ``task`` and ``jobpath``;
* ``<workdir>/xp/<name>/services.json``: the services the experiment registered.

Dependencies are read from the parameters: a parameter that is a submitted task appears as a
dict with ``__config__`` and ``identifier`` (and ``jobpath``). Anything missing or unreadable
is skipped, never guessed.

Examples
--------
>>> from trialbook.storage.records import RunRecord
>>> r = RunRecord(2, kind="job", key="b", params={"x": {"__config__": "T", "identifier": "a"}})
>>> dependencies(r.params)
['a']
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

from trialbook.storage.records import ExperimentInfo, RunRecord

__all__ = ["dependencies", "job_dirs", "job_graph", "kill_job", "log_file", "read_log", "services"]

MAX_JOB_DIRS = 5000
LOG_CHUNK = 64 * 1024
STREAMS = ("stdout", "stderr")


def workdir(info: ExperimentInfo) -> pathlib.Path | None:
    """The task workspace of an experiment, if its metadata names one.

    Examples
    --------
    >>> workdir(ExperimentInfo(1, "e", 0.0, 0.0, meta={"kind": "tasks", "workdir": "/w"}))
    PosixPath('/w')
    """
    path = info.meta.get("workdir") if isinstance(info.meta, dict) else None
    return pathlib.Path(path) if isinstance(path, str) else None


def _read_json(path: pathlib.Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def job_dirs(info: ExperimentInfo) -> list[dict[str, Any]]:
    """The job directories of an experiment's workspace that belong to it, with their status.

    Examples
    --------
    >>> job_dirs(ExperimentInfo(1, "e", 0.0, 0.0))
    []
    """
    root = workdir(info)
    if root is None or not (root / "jobs").is_dir():
        return []
    out = []
    for params_path in sorted((root / "jobs").glob("*/*/params.json"))[:MAX_JOB_DIRS]:
        params = _read_json(params_path)
        if not isinstance(params, dict) or params.get("experiment") != info.name:
            continue
        status = _read_json(params_path.parent / "status.json") or {}
        if status.get("status") == "running" and not _is_locked(params_path.parent):
            status["status"] = "interrupted"  # its process died; as `trialbook jobs` says
        out.append({
            "identifier": params.get("identifier"), "task": params.get("task"),
            "path": str(params_path.parent), "params": params.get("params") or {},
            "tags": params.get("tags") or {}, "status": status.get("status", "waiting"),
            "pid": status.get("pid"), "started": status.get("started"),
            "finished": status.get("finished"),
        })  # fmt: skip
    return out


def _is_locked(path: pathlib.Path) -> bool:
    """Whether a process holds the job directory's lock (the job really runs)."""
    from trialbook.tasks.jobs import try_lock

    fd = try_lock(path)
    if fd is None:
        return True
    os.close(fd)
    return False


def dependencies(params: Any) -> list[str]:
    """Identifiers of the tasks found (recursively) among parameters, in order of appearance.

    Examples
    --------
    >>> dependencies({"model": {"__config__": "M", "identifier": "m1", "data": [
    ...     {"__config__": "D", "identifier": "d1"}]}})
    ['m1', 'd1']
    """
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "__config__" in value:
                ident = value.get("identifier")
                if isinstance(ident, str) and ident not in found:
                    found.append(ident)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for value in (params or {}).values():
        walk(value)
    return found


def job_graph(records: list[RunRecord], dirs: list[dict[str, Any]]) -> dict[str, Any]:
    """Nodes (jobs, with status and run id when recorded) and dependency edges.

    Each node's ``name`` is the job's display name, its task and tags
    (:func:`trialbook.tasks.jobs.job_label`), as in every list of jobs.

    Examples
    --------
    >>> a = RunRecord(1, kind="job", key="a", status="done", fields={"task": "T"}, tags={"k": 1})
    >>> b = RunRecord(2, kind="job", key="b", params={"x": {"__config__": "T", "identifier": "a"}})
    >>> graph = job_graph([a, b], [])
    >>> graph["edges"], graph["nodes"][0]["name"]
    ([['a', 'b']], 'T k=1')
    """
    nodes: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {}
    tags: dict[str, Any] = {}
    for d in dirs:
        if isinstance(d.get("identifier"), str):
            nodes[d["identifier"]] = {
                "id": d["identifier"], "task": d.get("task"), "status": d["status"],
                "run_id": None, "path": d["path"],
            }  # fmt: skip
            params[d["identifier"]] = d["params"]
            tags[d["identifier"]] = d.get("tags")
    for run in records:
        if run.kind != "job" or not run.key:
            continue
        node = nodes.setdefault(run.key, {"id": run.key, "path": run.fields.get("jobpath")})
        node.update(task=run.fields.get("task", node.get("task")), run_id=run.run_id)
        if not (node.get("status") == "running" and run.status != "running"):
            node["status"] = str(run.status)
        params[run.key] = run.params
        tags[run.key] = run.tags or tags.get(run.key)
    for ident, node in nodes.items():
        node["name"] = _name(node.get("task"), tags.get(ident), ident)
    edges = [
        [dep, ident] for ident in nodes for dep in dependencies(params.get(ident))
        if dep in nodes and dep != ident
    ]  # fmt: skip
    return {"nodes": list(nodes.values()), "edges": edges}


def _name(task: Any, tags: Any, identifier: str) -> str:
    from trialbook.tasks.jobs import job_label

    task = task if isinstance(task, str) else "job"
    return job_label(task, tags if isinstance(tags, dict) else {}, identifier)


def services(info: ExperimentInfo) -> list[dict[str, Any]]:
    """The services (``id``, ``description``, ``url``) the experiment registered.

    Examples
    --------
    >>> services(ExperimentInfo(1, "e", 0.0, 0.0, meta={"workdir": "/nonexistent"}))
    []
    """
    root = workdir(info)
    if root is None:
        return []
    described = _read_json(root / "xp" / info.name / "services.json")
    return [s for s in described if isinstance(s, dict)] if isinstance(described, list) else []


def log_file(run: RunRecord, stream: str) -> pathlib.Path | None:
    """The log file ``stream`` (``stdout`` or ``stderr``) of a run, when its job directory is
    recorded (``fields["jobpath"]``) and the file exists.

    Examples
    --------
    >>> log_file(RunRecord(1, fields={"jobpath": "/nonexistent"}), "stdout") is None
    True
    """
    folder = run.fields.get("jobpath")
    if stream not in STREAMS or not isinstance(folder, str):
        return None
    path = pathlib.Path(folder) / f"{stream}.log"
    return path if path.is_file() else None


def read_log(path: pathlib.Path, offset: int | None) -> dict[str, Any]:
    """Text of a log from byte ``offset`` (``None``: its last 64 KiB), and where to go on.

    Examples
    --------
    >>> import tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "stdout.log"
    >>> _ = p.write_text("one\\ntwo\\n")
    >>> read_log(p, None)["text"], read_log(p, 4)["text"], read_log(p, 4)["offset"]
    ('one\\ntwo\\n', 'two\\n', 8)
    """
    size = path.stat().st_size
    start = max(0, size - LOG_CHUNK) if offset is None else min(max(0, offset), size)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(LOG_CHUNK)
    return {"text": data.decode("utf-8", "replace"), "offset": start + len(data), "size": size}


def kill_job(info: ExperimentInfo, identifier: str) -> int:
    """Stop the running job ``identifier`` of the experiment's workspace; return its pid.

    Uses the task part's own ``kill_jobs`` (SIGTERM to the process running the job, which
    fails the job and keeps the worker).

    Raises
    ------
    LookupError
        If the workspace has no such job.
    ProcessLookupError
        If the job is not running.

    Examples
    --------
    >>> kill_job(ExperimentInfo(1, "e", 0.0, 0.0), "abc")
    Traceback (most recent call last):
    ...
    LookupError: no job 'abc' in the workspace of 'e'
    """
    from trialbook.tasks.listing import kill_jobs, list_jobs

    root = workdir(info)
    found = [j for j in list_jobs(root) if j.identifier == identifier] if root else []
    if not found:
        msg = f"no job {identifier!r} in the workspace of {info.name!r}"
        raise LookupError(msg)
    killed = kill_jobs(found)
    if not killed or killed[0].pid is None:
        msg = f"job {found[0].name} is not running (status {found[0].status!r})"
        raise ProcessLookupError(msg)
    return killed[0].pid
