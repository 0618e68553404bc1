"""A store's password never shows (issue 18): every `trialbook` command, the UI's pages and API
answers, the `trialbook ui` banner, reprs, logs, errors of unreachable servers, and the git
remote of an environment snapshot.

The stores are real PostgreSQL and Redis servers opened from URLs with a password (their test
servers accept any password, see ``conftest.with_password``); MongoDB's test server has no
users, and ``test_backends.test_mongo_password_never_shows`` covers it at the store level.
"""

from __future__ import annotations

import json
import logging
import pathlib
import socket
import subprocess
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import click
import pytest
from click.testing import CliRunner

import trialbook
from conftest import STORE_PASSWORD, backend_location, require_module, with_password
from trialbook.cli import cli

SCRIPT = textwrap.dedent(
    """
    import trialbook

    ex = trialbook.Experiment("script_pw")
    a = ex.parameter("a")

    @ex.result
    def double(a):
        return 2 * a

    d = double(a)
    """
)

PLAN_MODULE = textwrap.dedent(
    """
    from trialbook import ConfigurationBase, ExperimentHelper, Param, Task, configuration, tag


    class Square(Task):
        __trialbook_id__ = "pw.square"
        x: Param[int]

        def execute(self):
            print(self.x * self.x)


    @configuration
    class Configuration(ConfigurationBase):
        n: int = 2


    @ExperimentHelper.decorator
    def run(helper: ExperimentHelper, cfg: Configuration):
        for i in range(cfg.n):
            Square.C(x=tag(i)).submit()
    """
)


@pytest.fixture(params=["postgres", "redis"])
def team_url(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[str]:
    """A store on a real server, opened from a URL with :data:`STORE_PASSWORD`, holding an
    experiment ``fit`` of two runs (with metrics, fields, code and environment snapshots)."""

    def step(run: trialbook.Run) -> None:
        run.fields.score = run.params.lr * 2
        for i in range(3):
            run.log_metric("loss", 1.0 / (i + 1))

    with backend_location(request.param, tmp_path) as location:
        url = with_password(request.param, location)
        assert STORE_PASSWORD in url
        with trialbook.create_session(url) as session:
            experiment = session.create_experiment("fit")
            experiment.add_runs(lr=[0.1, 0.01])
            experiment.execute(step).persist()
        with trialbook.Experiment("graph_fit", backend=url) as ex:  # code, environment snapshots
            a = ex.parameter("a", default=2)

            @ex.result
            def twice(a: int) -> int:
                return 2 * a

            ex.run_trial(twice(a))
        yield url


def command_names(group: click.Group, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every command of ``group``, subcommands of its groups included, as name paths."""
    names: set[tuple[str, ...]] = set()
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            names |= command_names(command, (*prefix, name))
        else:
            names.add((*prefix, name))
    return names


def invocations(url: str, tmp_path: pathlib.Path) -> list[list[str]]:
    """Real invocations of every command but ``ui`` (served in a process of its own) with the
    store ``url``: successful ones, then ones that fail after opening the store."""
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    (tmp_path / "experiment.py").write_text(PLAN_MODULE)
    plan = tmp_path / "plan.yaml"
    plan.write_text("id: pw-plan\nfile: experiment\n")
    workdir = str(tmp_path / "wd")
    return [
        ["ls", "--store", url],
        ["runs", "fit", "--store", url],
        ["runs", "fit", "--where", "lr > 0.05", "--sort", "-score", "--store", url],
        ["show", "fit", "1", "--store", url],
        ["gc", "--dry-run", "--store", url],
        ["run", str(script), "a=3", "--store", url],
        ["run-experiment", "--workdir", workdir, "--workers", "1", "--store", url, str(plan)],
        ["run-experiment", "--show", "--store", url, str(plan)],
        ["jobs", "--store", url, "ls", "--workdir", workdir],
        ["jobs", "--store", url, "kill", "--workdir", workdir],
        [
            "jobs",
            "--store",
            url,
            "clean",
            "--workdir",
            workdir,
            "--status",
            "done",
            "--forget-runs",
        ],
        # failing after the store is open: the error messages
        ["runs", "nosuch", "--store", url],
        ["runs", "fit", "--where", "nosuch == 1", "--store", url],
        ["show", "fit", "99", "--store", url],
        ["show", "nosuch", "1", "--store", url],
        # keeping the store: check and copy succeed; backup and restore name the server's tools
        ["check", "--store", url],
        ["copy", "--from", url, "--to", str(tmp_path / "copied")],
        ["copy", "--from", str(tmp_path / "copied"), "--to", url],
        ["backup", str(tmp_path / "backup"), "--store", url],
        ["restore", str(tmp_path), "--store", url],
        ["flush", "--store", url, "--journal", str(tmp_path / "journal")],
    ]


def assert_hidden(texts: list[str], password: str = STORE_PASSWORD) -> None:
    for text in texts:
        assert password not in text, f"the store's password shows in {text!r}"


def logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [caplog.text] + [r.getMessage() for r in caplog.records]


def test_no_command_shows_the_store_password(
    team_url: str, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    """Every command (walked from ``cli.commands``), run for real on a store whose URL has a
    password: neither its output, its errors nor the logs show the password."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    ran: set[tuple[str, ...]] = {("ui",)}  # served for real in test_ui_never_shows_...
    outputs = []
    codes = []
    for args in invocations(team_url, tmp_path):
        result = runner.invoke(cli, args, catch_exceptions=False)
        outputs += [result.output, str(result.exception or "")]
        codes.append(result.exit_code)
        group = cli.commands[args[0]]
        ran.add((args[0], args[3]) if isinstance(group, click.Group) else (args[0],))
    assert ran == command_names(cli), "a command is not run by this test: add its invocation"
    assert codes == [0] * 11 + [1] * 4 + [0] * 3 + [1] * 2 + [0], list(
        zip(codes, outputs[::2], strict=True)
    )
    assert "trial 1 of experiment 'script_pw': result 6" in outputs[10]
    assert "2 job(s) done in experiment 'pw-plan'" in outputs[12]
    assert "2 run(s) deleted from the store" in outputs[20]
    assert outputs[8].endswith(f" in {public(team_url)}\n")  # gc names the store, masked
    assert ":***@" in outputs[8]
    assert_hidden(outputs + logged(caplog))


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://ann:{password}@127.0.0.1:{port}/db",
        "redis://:{password}@127.0.0.1:{port}/0",
        "mongodb://ann:{password}@127.0.0.1:{port}/db",
        "postgresql://ann:{password}@127.0.0.1:notaport/db",
        "mongodb://ann:{password}@127.0.0.1:notaport/db",
        "redis://127.0.0.1:{port}/0?password={password}",
    ],
)
def test_unreachable_servers_are_errors_without_the_password(
    url: str, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    """Each command that opens a store, given a server that refuses connections or a URL that
    does not parse, fails in one line that names the URL with its password masked."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.chdir(tmp_path)
    with socket.socket() as refusing:  # bound, never listening: connections are refused
        refusing.bind(("127.0.0.1", 0))
        location = url.format(password=STORE_PASSWORD, port=refusing.getsockname()[1])
        first: dict[str, list[str]] = {}  # the first invocation of each command
        for args in invocations(location, tmp_path):
            first.setdefault(args[0], args)
        del first["jobs"]  # opens the store only to forget the runs of jobs it removed
        commands = [*first.values(), ["ui", "--port", "0", "--store", location]]
        if url.startswith("mongodb") and "{port}" in url:
            commands = commands[:1]  # pymongo waits its 5 s server selection for each
        results = [
            CliRunner().invoke(cli, args, catch_exceptions=False, env={"TRIALBOOK_STORE": None})
            for args in commands
        ]
    for result in results:
        assert result.exit_code == 1, result.output
        assert ":***@" in result.output or "password=***" in result.output, result.output
    assert_hidden([r.output for r in results] + logged(caplog))


def test_reprs_and_errors_of_a_store_opened_with_a_password(team_url: str) -> None:
    """Session, store, both kinds of experiment and a task experiment: reprs and errors."""
    from trialbook.errors import TrialbookError

    shown = []
    with trialbook.create_session(team_url) as session:
        shown += [repr(session), str(session), repr(session.store), session.store.url]
        shown.append(repr(session.load_experiment("fit")))
        for call in (lambda: session.load_experiment("nosuch"),
                     lambda: session.create_experiment("fit").persist()):  # fmt: skip
            with pytest.raises(TrialbookError) as info:
                call()
            shown += [str(info.value), repr(info.value)]
    with trialbook.Experiment("graph_pw", backend=team_url) as ex:
        shown.append(repr(ex))
    assert ":***@" in shown[0]
    assert_hidden(shown)


def test_ui_pages_and_api_never_show_the_password(
    team_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Every page and every endpoint of the API (``ROUTES``), over a store opened from a URL
    with a password."""
    require_module("starlette", "ui")
    from starlette.testclient import TestClient

    from trialbook.storage import open_store
    from trialbook.web import create_app
    from trialbook.web.api import ROUTES

    caplog.set_level(logging.DEBUG)
    store = open_store(team_url)
    try:
        answers = sweep(TestClient(create_app(store, token="t"), headers=auth("t")).request)
    finally:
        store.close()
    assert answers[0].count('"runs":2') == 1  # /api/experiments
    assert len(answers) == len(ROUTES) + 2 + 4  # the endpoints, two snapshots, four pages
    assert "python" in answers[len(ROUTES) + 1]  # the environment snapshot's text
    assert_hidden(answers + logged(caplog))


def test_ui_banner_and_served_answers_never_show_the_password(
    team_url: str, tmp_path: pathlib.Path
) -> None:
    """`trialbook ui` for real: its banner names the store with the password masked, and the
    pages and API answers of the running server do not show it either."""
    require_module("uvicorn", "ui")
    command = [sys.executable, "-m", "trialbook", "ui", "--store", team_url, "--port", "0",
               "--token", "team-token"]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          cwd=tmp_path) as proc:  # fmt: skip
        try:
            assert proc.stdout is not None
            banner = [proc.stdout.readline() for _ in range(2)]
            assert banner[0] == f"trialbook UI (read-only) for {public(team_url)}:\n"
            base = banner[1].strip().partition("/?")[0]

            def request(method: str, path: str, **options: Any) -> Any:
                query = "?" + urllib.parse.urlencode(options.get("params", {}))
                req = urllib.request.Request(base + path + query, method=method,
                                             headers=auth("team-token"))  # fmt: skip
                try:
                    with urllib.request.urlopen(req, timeout=30) as answer:
                        return Answer(answer.read().decode())
                except urllib.error.HTTPError as error:
                    return Answer(error.read().decode())

            answers = sweep(request)
        finally:
            proc.terminate()
            _, errors = proc.communicate(timeout=30)
    assert '"fit"' in answers[0]
    assert_hidden([*banner, *answers, errors])


def test_environment_snapshots_mask_a_token_in_the_git_remote(
    tmp_path: pathlib.Path, monkeypatch: Any
) -> None:
    from trialbook import capture

    git = ["git", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "remote", "add", "origin", "https://bot:ghp_S3cret@example.com/r.git"],
                   check=True)  # fmt: skip
    monkeypatch.chdir(tmp_path)
    section = json.loads(capture._git() or "{}")
    assert section["remote"] == "https://bot:***@example.com/r.git"


# -- helpers ---------------------------------------------------------------------------------------


class Answer:
    """The text of an answer of the real server, as the test client's ``.text``."""

    def __init__(self, text: str) -> None:
        self.text = text


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def public(url: str) -> str:
    from trialbook.storage.urls import public_url

    return public_url(url)


def sweep(request: Any) -> list[str]:
    """The text of every page and of each endpoint of ``ROUTES`` (experiment ``fit``)."""
    import re

    from trialbook.web.api import ROUTES

    values = {"name": "fit", "run_id": "1", "artifact": "model", "metric": "loss",
              "identifier": "abc", "digest": "0" * 64}  # fmt: skip
    params = {"compare": {"runs": "1,2"}, "scatter": {"axes": "lr,metric.loss"},
              "metric": {"runs": "1,2"}, "runs": {"where": "lr > 0"}}  # fmt: skip
    texts = []
    for method, path, handler in ROUTES:
        filled = re.sub(r"{(\w+)(:\w+)?}", lambda m: values[m.group(1)], path)
        texts.append(request(method, filled, params=params.get(handler, {})).text)
    detail = json.loads(request("GET", "/api/experiments/graph_fit/runs/1").text)
    digests = [d for d in (detail.get("code"), detail.get("environment")) if isinstance(d, str)]
    assert digests, "the run has code and environment snapshots"
    for digest in digests:
        texts.append(request("GET", f"/api/snapshots/{digest}").text)
    for page in ["/", "/e/fit", "/e/fit/runs/1", "/e/fit/compare?runs=1,2"]:
        texts.append(request("GET", page).text)
    return texts
