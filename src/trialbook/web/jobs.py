"""What the UI shows of task jobs: read through the task part, never re-derived here.

The task part owns what it records for an experiment whose metadata says
``{"kind": "tasks", "workdir": ...}``: the job directories of the workdir, their parameters,
status (with ``interrupted`` for a dead process), lock and logs
(:mod:`trialbook.tasks.jobdir`), the runs of ``kind="job"`` of finished jobs (``key`` the
identifier, fields ``task`` and ``jobpath``; :mod:`trialbook.tasks.record`) and the services of
``<workdir>/xp/<name>/services.json`` (:mod:`trialbook.tasks.services`). This module turns them
into what the pages need (job rows, the job graph) and imports the task part only when a page
asks, so that the UI starts without it.

Dependencies are read from the parameters: a parameter that is a submitted task appears as a
dict with ``__config__`` and ``identifier`` (:func:`trialbook.tasks.jobdir.dependencies`).
Anything missing or unreadable is skipped, never guessed.

Examples
--------
>>> from trialbook.storage.records import RunRecord
>>> a = RunRecord(1, kind="job", key="a", status="done")
>>> b = RunRecord(2, kind="job", key="b", params={"x": {"__config__": "T", "identifier": "a"}})
>>> job_graph([a, b], [])["edges"]
[['a', 'b']]
"""

from __future__ import annotations

import pathlib
from typing import Any

from trialbook.storage.records import ExperimentInfo, RunRecord

__all__ = [
    "job_dirs",
    "job_folder",
    "job_graph",
    "job_log_file",
    "kill_job",
    "log_file",
    "no_log_reason",
    "run_logs",
    "services",
]

MAX_JOB_DIRS = 5000


def workdir(info: ExperimentInfo) -> pathlib.Path | None:
    """The task workspace of an experiment, if its metadata names one.

    Examples
    --------
    >>> workdir(ExperimentInfo(1, "e", 0.0, 0.0, meta={"kind": "tasks", "workdir": "/w"}))
    PosixPath('/w')
    """
    path = info.meta.get("workdir") if isinstance(info.meta, dict) else None
    return pathlib.Path(path) if isinstance(path, str) else None


def job_dirs(info: ExperimentInfo) -> list[dict[str, Any]]:
    """The job directories of an experiment's workspace that belong to it, with their status
    (:func:`trialbook.tasks.jobdir.list_jobs`).

    Examples
    --------
    >>> job_dirs(ExperimentInfo(1, "e", 0.0, 0.0))
    []
    """
    root = workdir(info)
    if root is None:
        return []
    from trialbook.tasks.jobdir import list_jobs

    return [
        {
            "identifier": job.identifier, "task": job.task, "path": str(job.path),
            "params": job.params, "tags": job.tags, "status": job.status, "pid": job.pid,
            "started": job.started, "finished": job.finished, "progress": job.progress,
        }
        for job in list_jobs(root, experiment=info.name, limit=MAX_JOB_DIRS)
    ]  # fmt: skip


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
    from trialbook.tasks.jobdir import dependencies

    nodes: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {}
    tags: dict[str, Any] = {}
    for d in dirs:
        if isinstance(d.get("identifier"), str):
            nodes[d["identifier"]] = {
                "id": d["identifier"], "task": d.get("task"), "status": d["status"],
                "run_id": None, "path": d["path"], "progress": d.get("progress") or [],
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
    from trialbook.tasks.jobdir import xp_path
    from trialbook.tasks.services import read_services

    return read_services(xp_path(root, info.name))


def log_file(run: RunRecord, stream: str) -> pathlib.Path | None:
    """The log file ``stream`` (``stdout`` or ``stderr``) of a run, when its job directory is
    recorded (``fields["jobpath"]``) and the file exists.

    Examples
    --------
    >>> log_file(RunRecord(1, fields={"jobpath": "/nonexistent"}), "stdout") is None
    True
    """
    folder = run.fields.get("jobpath")
    if not isinstance(folder, str):
        return None
    from trialbook.tasks.jobdir import log_path

    return log_path(folder, stream)


def run_logs(run: RunRecord) -> list[str]:
    """The log streams a run has (those of its job directory that exist).

    Examples
    --------
    >>> run_logs(RunRecord(1))
    []
    """
    if not isinstance(run.fields.get("jobpath"), str):
        return []
    from trialbook.tasks.jobdir import STREAMS

    return [stream for stream in STREAMS if log_file(run, stream) is not None]


def job_log_file(info: ExperimentInfo, identifier: str, stream: str) -> pathlib.Path | None:
    """The log file ``stream`` of the job ``identifier`` of the experiment, if it exists.

    Examples
    --------
    >>> job_log_file(ExperimentInfo(1, "e", 0.0, 0.0), "abc", "stdout") is None
    True
    """
    found = [d for d in job_dirs(info) if d["identifier"] == identifier]
    if not found:
        return None
    from trialbook.tasks.jobdir import log_path

    return log_path(found[0]["path"], stream)


def no_log_reason(folder: str | pathlib.Path, stream: str) -> tuple[bool, str]:
    """Why the job directory ``folder`` has no log ``stream``: ``(queued, message)``, where
    ``queued`` says the job waits to start (its log is yet to come) (issue 18).

    Examples
    --------
    >>> import tempfile
    >>> from trialbook.tasks.jobdir import mark_never_ran
    >>> folder = tempfile.mkdtemp()
    >>> no_log_reason(folder, "stdout")
    (True, "the job is queued (waiting for its dependencies or a free worker): no 'stdout' log yet")
    >>> _ = mark_never_ran(pathlib.Path(folder), "dependency a failed: ValueError: boom")
    >>> no_log_reason(folder, "stderr")[1]
    "the job never ran (dependency a failed: ValueError: boom): it has no 'stderr' log"
    """
    from trialbook.tasks.jobdir import STREAMS, job_info

    if stream not in STREAMS:
        return False, f"no {stream!r} log: a job's logs are {' and '.join(map(repr, STREAMS))}"
    path = pathlib.Path(folder)
    if not path.is_dir():
        return False, f"the job directory {str(path)!r} is gone: no {stream!r} log"
    job = job_info(path)
    if job.status == "waiting":
        return True, (f"the job is queued (waiting for its dependencies or a free worker): "
                      f"no {stream!r} log yet")  # fmt: skip
    if job.never_ran:
        return False, f"the job never ran ({job.never_ran}): it has no {stream!r} log"
    return False, f"the job ({job.status}) wrote no {stream!r} log"


def job_folder(info: ExperimentInfo, identifier: str) -> str | None:
    """The directory of the job ``identifier`` of the experiment's workspace, if it has one.

    Examples
    --------
    >>> job_folder(ExperimentInfo(1, "e", 0.0, 0.0), "abc") is None
    True
    """
    found = [d for d in job_dirs(info) if d["identifier"] == identifier]
    return str(found[0]["path"]) if found else None


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
    from trialbook.tasks.jobdir import kill_jobs, list_jobs

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
