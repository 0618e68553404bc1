"""``with experiment(workdir, name) as xp:`` — the context in which tasks are submitted.

Directories: jobs live in ``<workdir>/jobs/<task id>/<identifier>/`` (shared by every
experiment of the workdir, which is what makes caching work across experiments); each
experiment has ``<workdir>/xp/<name>/`` with ``jobs/`` (links to its jobs), ``results/``
(:attr:`experiment.resultspath`), ``data/`` (:meth:`experiment.save`) and ``services.json``.

The block owns what ties these together; each part lives in its own module: the job
directory (:mod:`trialbook.tasks.jobdir`), the scheduler (:mod:`trialbook.tasks.scheduler`),
the store records of finished jobs (:mod:`trialbook.tasks.record`: runs of ``kind="job"`` of
the experiment ``name`` in the default store of every way of working), the current experiment
(:mod:`trialbook.tasks.current`), services (:mod:`trialbook.tasks.services`) and the web UI
started for ``port=`` (:mod:`trialbook.tasks.ui`).

Examples
--------
>>> import tempfile
>>> from trialbook.tasks import Task, Param, experiment
>>> class Square(Task):
...     __trialbook_id__ = "doc.square"
...     x: Param[int]
...     def execute(self):
...         print(self.x * self.x)
>>> workdir = tempfile.mkdtemp()
>>> with experiment(workdir, "demo") as xp:
...     job = Square.C(x=3).submit()
>>> (job.jobpath / "stdout.log").read_text()
'9\\n'
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
from typing import Any

from trialbook.errors import ConfigError, JobFailedError, StorageError
from trialbook.tasks import current, jobdir
from trialbook.tasks.config import Config, Task
from trialbook.tasks.jobs import JobState, json_view
from trialbook.tasks.launchers import Launcher, LocalConnector, LocalLauncher
from trialbook.tasks.modes import RunMode, dry_run, generated
from trialbook.tasks.progress import Progress
from trialbook.tasks.record import JobRecorder
from trialbook.tasks.scheduler import Job, Scheduler
from trialbook.tasks.services import Service, ServiceListener, WebService, write_services
from trialbook.tasks.tokens import CounterToken, TokenDependency

__all__ = ["RunMode", "Service", "ServiceListener", "WebService", "experiment"]

logger = logging.getLogger(__name__)


class experiment:
    """The experiment context: submit tasks inside ``with experiment(workdir, name) as xp:``.

    Leaving the block waits for every job; if any failed, it raises
    :class:`~trialbook.errors.JobFailedError` listing them.

    Parameters
    ----------
    env
        The working directory (jobs, experiment folders, tokens, default store).
    name
        The experiment's name (also its name in the store).
    host, port, token
        With a ``port`` (``0``: any free one; ``None`` or negative: none), the web UI
        (``trialbook.web.serve``, found through :mod:`trialbook.tasks.ui`) runs over the
        experiment's store for the duration of the block, on ``host`` (default
        ``127.0.0.1``) with the access ``token`` (default: a generated one); its address is
        logged and in ``xp.server.url``.
    run_mode
        :class:`RunMode` (or its value): normal (default), dry run, generate.
    launcher
        Where jobs run (default: a :class:`~trialbook.tasks.launchers.LocalLauncher` on every core).
    store
        Where jobs are recorded: a store URL, directory or open store (default: the store of
        every way of working, ``$TRIALBOOK_STORE`` if set, else ``./.trialbook``).
    progress
        Tell jobs started, done and failed as they happen (:mod:`trialbook.tasks.progress`):
        ``None`` (default) a live display on a terminal and log lines otherwise, ``"bar"``,
        ``"lines"``, or ``False`` for nothing.

    Examples
    --------
    >>> import tempfile
    >>> with experiment(tempfile.mkdtemp(), "empty") as xp:
    ...     experiment.current() is xp
    True
    """

    def __init__(
        self,
        env: str | os.PathLike[str],
        name: str,
        *,
        host: str | None = None,
        port: int | None = None,
        token: str | None = None,
        run_mode: RunMode | str | None = None,
        launcher: Launcher | None = None,
        store: Any = None,
        progress: bool | str | None = None,
    ) -> None:
        if not isinstance(name, str) or not name or "/" in name:
            msg = f"an experiment name must be a non-empty str without '/' (got {name!r})"
            raise ConfigError(msg)
        self.workdir = pathlib.Path(env).absolute()
        self.name = name
        self.host, self.port, self.web_token = host, port, token
        try:
            self.run_mode = RunMode(run_mode or RunMode.NORMAL)
        except ValueError:
            modes = ", ".join(m.value for m in RunMode)
            msg = f"unknown run mode {run_mode!r}; expected one of {modes}"
            raise ConfigError(msg) from None
        if launcher is not None and not isinstance(launcher, Launcher):
            msg = (
                f"launcher must follow the Launcher protocol (a connector attribute, submit(fn, "
                f"*args) and shutdown()); got {launcher!r} that is a {type(launcher)}; use "
                "LocalLauncher(n_workers) or a launcher of trialbook.execution"
            )
            raise ConfigError(msg)
        self.launcher: Launcher = launcher or LocalLauncher()
        if getattr(self.launcher, "connector", None) is None:
            # No workdir: its tokens live in the workdir of the experiment asking for them, so
            # one launcher can serve experiments of several workdirs.
            self.launcher.connector = LocalConnector()
        self.services: dict[str, Service] = {}
        self.server: Any = None  # the web UI while the block runs, when a port is given
        self.plan: list[dict[str, Any]] = []
        self.recorder = JobRecorder(name, self.workdir, store)
        self.scheduler = Scheduler(self.launcher, self.recorder.record, self._prepare_directory)
        self.progress = Progress(name, progress if self.run_mode is RunMode.NORMAL else False)
        self._jobs_root = jobdir.jobs_root(self.workdir)
        self._links_root = str(self.jobspath)
        self._link_dirs: set[str] = set()

    def __repr__(self) -> str:
        return f"experiment({str(self.workdir)!r}, {self.name!r}, run_mode={self.run_mode.value!r})"

    def _repr_html_(self) -> str:
        """The experiment block in a notebook: the jobs submitted in it by state, and the
        first 20 (task, tags, state, identifier); the jobs recorded in the store show with
        ``session.load_experiment(name)``.

        Examples
        --------
        >>> import tempfile
        >>> with experiment(tempfile.mkdtemp(), "<empty>") as xp:
        ...     pass
        >>> "no jobs" in xp._repr_html_() and "&lt;empty&gt;" in xp._repr_html_()
        True
        """
        from collections import Counter

        from trialbook import notebook

        jobs = list(self.scheduler.jobs.values())
        rows = [
            [job.task_id, ", ".join(f"{k}={v}" for k, v in job.task.tags().items()),
             str(job.state), job.identifier[:12]]
            for job in jobs[: notebook.ROWS]
        ]  # fmt: skip
        counts = Counter(str(job.state) for job in jobs)
        sections = [
            ("Jobs by state", notebook.counts_line(counts) if jobs else "<span>no jobs</span>"),
            ("Jobs", notebook.rows_table(["task", "tags", "state", "identifier"], rows,
                                         more=len(jobs) - len(rows)) if jobs else ""),
        ]  # fmt: skip
        subtitle = f"tasks · {self.run_mode.value} · {self.workdir}"
        return notebook.card(f"Experiment {self.name}", subtitle, sections)

    # -- paths --

    @property
    def xppath(self) -> pathlib.Path:
        """``<workdir>/xp/<name>``: this experiment's folder.

        Examples
        --------
        >>> xp = experiment("/tmp/wd", "demo")
        >>> for path in (xp.xppath, xp.jobspath, xp.resultspath, xp.jobsbakpath):
        ...     print(path)
        /tmp/wd/xp/demo
        /tmp/wd/xp/demo/jobs
        /tmp/wd/xp/demo/results
        /tmp/wd/xp/demo/jobs.bak
        """
        return jobdir.xp_path(self.workdir, self.name)

    @property
    def jobspath(self) -> pathlib.Path:
        """``<workdir>/xp/<name>/jobs``: links to the directories of this experiment's jobs."""
        return self.xppath / "jobs"

    @property
    def resultspath(self) -> pathlib.Path:
        """``<workdir>/xp/<name>/results``: a folder for the experiment's own results."""
        return self.xppath / "results"

    @property
    def jobsbakpath(self) -> pathlib.Path:
        """``<workdir>/xp/<name>/jobs.bak``: where links of a previous run may be kept."""
        return self.xppath / "jobs.bak"

    @property
    def alt_jobspaths(self) -> list[pathlib.Path]:
        """Other folders where the jobs of this experiment may be found (the job folders of the
        workdir, shared by all its experiments).

        Examples
        --------
        >>> xp = experiment("/tmp/wd", "demo")
        >>> xp.jobspath, xp.alt_jobspaths
        (PosixPath('/tmp/wd/xp/demo/jobs'), [PosixPath('/tmp/wd/jobs')])
        """
        return [self._jobs_root]

    # -- context --

    def __enter__(self) -> experiment:
        try:
            if self.run_mode is not RunMode.DRY_RUN:
                for path in (self.jobspath, self.resultspath):
                    path.mkdir(parents=True, exist_ok=True)
                self.recorder.open()  # the experiment is in the store (and the UI) from the start
            if self.port is not None and self.port >= 0:
                self._start_server()
        except BaseException:
            self.recorder.close()  # the block does not start: nothing else closes the store
            raise
        self.progress.start()
        self.scheduler.progress = self.progress
        current.enter(self)
        return self

    def _start_server(self) -> None:
        from trialbook.tasks.ui import serve_ui

        self.server = serve_ui(
            self.recorder.target,
            host=self.host or "127.0.0.1",
            port=self.port or 0,
            token=self.web_token,
        )
        logger.info("experiment %s: web UI at %s", self.name, self.server.url)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is not None:
                self.stop()
            self.scheduler.wait()
        finally:
            self.scheduler.close()
            self.progress.close()
            current.leave(self)
            if self.server is not None:
                self.server.stop()
                self.server = None
            self.recorder.close()
        if exc_type is None:
            self._check_recorded()
            failed = self.failed_jobs()
            if failed:
                reasons = failures(failed)
                never_ran = [key for key, job in zip(reasons, failed, strict=True)
                             if job.outcome is None]  # fmt: skip
                raise JobFailedError(self.name, reasons, never_ran=never_ran)

    def _check_recorded(self) -> None:
        """Raise if finished jobs could not be written to the store (never a silent gap)."""
        if not self.scheduler.unrecorded:
            return
        count = sum(n for n, _ in self.scheduler.unrecorded)
        why = self.scheduler.unrecorded[0][1]
        msg = (
            f"{count} finished job(s) of experiment {self.name!r} could not be recorded in the "
            f"store {self.recorder.target}: {why}. Their results are in their job directories "
            f"(`trialbook jobs ls --workdir {self.workdir}`)"
        )
        raise StorageError(msg)

    @staticmethod
    def current() -> experiment:
        """The experiment of the innermost ``with`` block (raises if there is none).

        Examples
        --------
        >>> experiment.current()
        Traceback (most recent call last):
        ...
        trialbook.errors.ConfigError: no current experiment: use `with experiment(...) as xp:`
        """
        xp = current.current_or_none()
        if xp is None:
            msg = "no current experiment: use `with experiment(workdir, name) as xp:`"
            raise ConfigError(msg)
        return xp

    def wait(self) -> None:
        """Wait until every job submitted so far has finished (failures do not raise here).

        Examples
        --------
        >>> import tempfile
        >>> from trialbook.tasks import Task
        >>> class Noop(Task):
        ...     def execute(self):
        ...         pass
        >>> with experiment(tempfile.mkdtemp(), "doc") as xp:
        ...     task = Noop.C().submit()
        ...     xp.wait()
        ...     print(task.__dict__["_tb_job"].state)
        done
        """
        self.scheduler.wait()

    def stop(self) -> None:
        """Stop as soon as possible: jobs not started yet are cancelled, running jobs finish.

        Leaving the block then raises :class:`~trialbook.errors.JobFailedError` listing the
        cancelled jobs.

        Examples
        --------
        >>> import tempfile
        >>> with experiment(tempfile.mkdtemp(), "doc") as xp:
        ...     xp.stop()
        >>> xp.failed_jobs()
        []
        """
        self.scheduler.stop()

    def failed_jobs(self) -> list[Job]:
        """Jobs that failed or were cancelled (see :meth:`stop`)."""
        bad = (JobState.FAILED, JobState.CANCELLED)
        return [j for j in self.scheduler.jobs.values() if j.state in bad]

    def setenv(self, name: str, value: str, override: bool = True) -> None:
        """Set an environment variable for the jobs (kept if already set and not ``override``).

        Examples
        --------
        >>> xp = experiment("/tmp/wd", "demo")
        >>> xp.setenv("OMP_NUM_THREADS", 1)
        >>> xp.setenv("OMP_NUM_THREADS", 4, override=False)
        >>> xp.scheduler.env
        {'OMP_NUM_THREADS': '1'}
        """
        if override or name not in self.scheduler.env:
            self.scheduler.env[name] = str(value)

    def token(self, name: str, count: int) -> CounterToken:
        """The workspace token ``name`` with ``count`` units (through the launcher's connector).

        Examples
        --------
        >>> import tempfile
        >>> with experiment(tempfile.mkdtemp(), "tokens") as xp:
        ...     token = xp.token("gpu", 2)
        >>> token, token.path == xp.workdir / ".tokens" / "gpu"
        (CounterToken('gpu', total=2), True)
        """
        connector = self.launcher.connector  # set in __init__ when the launcher had none
        unbound = isinstance(connector, LocalConnector) and connector.workdir is None
        if connector is None or unbound:
            connector = LocalConnector(self.workdir)
        return connector.createtoken(name, count)

    def add_service(self, service: Service) -> Service:
        """Register a service; it is written to ``services.json`` and logged with its URL.

        Examples
        --------
        >>> import tempfile
        >>> with experiment(tempfile.mkdtemp(), "doc") as xp:
        ...     board = xp.add_service(WebService("board", "http://127.0.0.1:6006"))
        >>> print((xp.xppath / "services.json").read_text())
        [
         {
          "id": "board",
          "description": "",
          "url": "http://127.0.0.1:6006"
         }
        ]
        """
        self.services[service.id] = service
        write_services(self.xppath, self.services.values())
        logger.info("service %s: %s", service.id, service.describe())
        return service

    def save(self, obj: Any, name: str = "default") -> None:
        """Save configurations (and plain values) to ``<xp>/data/<name>/objects.json``.

        Examples
        --------
        >>> import tempfile
        >>> from trialbook.tasks import Config, Param
        >>> class Model(Config):
        ...     layers: Param[int] = 2
        >>> with experiment(tempfile.mkdtemp(), "doc") as xp:
        ...     xp.save({"model": Model.C(), "note": "best"}, "final")
        ...     xp.load("doc", "final")
        {'model': Model(layers=2), 'note': 'best'}
        """
        from trialbook.tasks.serial import dump

        folder = self.xppath / "data" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "objects.json").write_text(json.dumps(dump(obj), indent=1))

    def load(self, reference: str, name: str = "default") -> Any:
        """Load what experiment ``reference`` of this workdir saved under ``name``.

        Configurations come back sealed; tasks keep their ``jobpath`` (see :meth:`save`).

        Raises
        ------
        ConfigError
            When ``reference`` saved nothing under ``name``.
        """
        from trialbook.tasks.serial import load

        path = jobdir.xp_path(self.workdir, reference) / "data" / name / "objects.json"
        if not path.exists():
            msg = f"experiment {reference!r} saved nothing under {name!r} (no {path})"
            raise ConfigError(msg)
        return load(json.loads(path.read_text()))

    # -- scheduling --

    def schedule(
        self, task: Task, *, launcher: Launcher | None = None, run_mode: RunMode | None = None
    ) -> Job:
        """Create the job of a sealed task and schedule it (``task.submit()`` calls this).

        ``run_mode`` treats this job in another mode than the experiment's.

        Examples
        --------
        >>> import tempfile
        >>> from trialbook.tasks import Task
        >>> class Noop(Task):
        ...     __trialbook_id__ = "doc.noop"
        ...     def execute(self):
        ...         pass
        >>> task = Noop.C()
        >>> task.__tb_seal__()
        >>> with experiment(tempfile.mkdtemp(), "doc", run_mode="dry-run") as xp:
        ...     xp.schedule(task)
        Job('doc.noop/...', state='would run')
        """
        ident = task.__identifier__()
        task_id = type(task).__trialbook_type_id__()
        path = jobdir.job_path(self.workdir, task_id, ident)
        job = Job(task, path, ident, task_id)
        job.launcher = launcher
        for dep in task.__dict__.get("_tb_deps", ()):
            if isinstance(dep, TokenDependency):
                job.tokens.append(dep)
            elif isinstance(dep, Task):
                job.deps.append(_job_of(dep))
        for init in task.__dict__.get("_tb_init_tasks", ()):
            job.deps.extend(_task_deps(init, itself=True))
        job.deps.extend(j for j in _task_deps(task) if j not in job.deps)
        job.callbacks.extend(task.__dict__.pop("_tb_callbacks", ()))
        mode = run_mode or self.run_mode
        if mode is RunMode.NORMAL:
            # No file I/O here: the scheduler's thread prepares the job (trialbook.tasks.scheduler).
            job = self.scheduler.add(job)
            task.__dict__["_tb_job"] = job
            return job
        if mode is RunMode.DRY_RUN:
            entry = dry_run(job)
        else:
            self._prepare_directory(job, done=False)
            entry = generated(job, self.prepare(job))
        task.__dict__["_tb_job"] = job
        self.scheduler.jobs[job.path] = job
        self.plan.append(entry)
        return job

    def _prepare_directory(self, job: Job, *, done: bool | None = None) -> bool:
        """Write the job's directory, ``params.json`` and link; return whether it is done.

        A finished job keeps its files: a cache hit costs one status read and a link check.
        """
        if done is None:
            done = jobdir.is_done(job.path)
        if not done:
            job.path.mkdir(parents=True, exist_ok=True)
            jobdir.write_params(
                job.path, task=job.task_id, identifier=job.identifier, experiment=self.name,
                params={s.name: json_view(v) for s, v in job.task.__tb_values__()},
                tags=job.task.tags(),
            )  # fmt: skip
        link = os.path.join(self._links_root, job.task_id, job.identifier)
        if not os.path.islink(link):
            if job.task_id not in self._link_dirs:
                os.makedirs(os.path.dirname(link), exist_ok=True)
                self._link_dirs.add(job.task_id)
            os.symlink(job.path, link)
        return done

    def prepare(self, job: Job | Task) -> pathlib.Path:
        """Write the job's ``task.pkl`` and its executable ``run.py`` script; return the script.

        ``python run.py`` (or a batch system) then runs the job in that process, with its logs
        and status in the job directory. Generate mode calls this for each submitted job.
        """
        import sys

        from trialbook.tasks.payload import dumps

        if isinstance(job, Task):
            job = _job_of(job)
        return jobdir.write_script(
            job.path,
            dumps(job.task),
            title=f"Runs job {job.name} of experiment {self.name!r}.",
            sys_path=[*self.scheduler.sys_path, *sys.path],
        )


def failures(jobs: list[Job]) -> dict[str, str]:
    """Each failed job's display name and reason (names shared by several jobs get the start
    of their identifier, so no failure hides another).

    Examples
    --------
    >>> import pathlib
    >>> from trialbook.tasks import Task, Param, tag
    >>> class Fit(Task):
    ...     __trialbook_id__ = "fit"
    ...     alpha: Param[float]
    ...     def execute(self):
    ...         pass
    >>> job = Job(Fit.C(alpha=tag(0.1)), pathlib.Path("/w"), "d865c80f3d10f4ad", "fit")
    >>> job.reason = "ValueError: bad alpha"
    >>> failures([job])
    {'fit alpha=0.1': 'ValueError: bad alpha'}
    """
    labels = [j.label for j in jobs]
    out = {}
    for job, label in zip(jobs, labels, strict=True):
        shared = labels.count(label) > 1
        out[f"{label} [{job.identifier[:12]}]" if shared else label] = job.reason or "failed"
    return out


def _job_of(task: Task) -> Job:
    job = task.__dict__.get("_tb_job")
    if job is None:
        msg = f"{type(task).__qualname__} is used as a dependency but was not submitted"
        raise ConfigError(msg)
    return job


def _task_deps(config: Config, *, itself: bool = False) -> list[Job]:
    """Jobs of the submitted tasks found among the parameters (recursively), and of the tasks
    whose outputs (``dep(...)`` in their ``task_outputs``) they are; with ``itself``, also
    the job ``config`` itself is an output of."""
    out: list[Job] = []
    children = [config] if itself else list(config.__tb_children__())
    for child in children:
        source = child.__dict__.get("_tb_output_of")
        if source is not None and source.__dict__.get("_tb_job") is not None:
            out.append(source.__dict__["_tb_job"])
        if isinstance(child, Task) and child.__dict__.get("_tb_job") is not None:
            out.append(child.__dict__["_tb_job"])
        else:
            out.extend(_task_deps(child))
    return list(dict.fromkeys(out))
