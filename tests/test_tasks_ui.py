"""``experiment(..., port=N)`` serves the web UI through a hook: the library never imports it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import require_module
from trialbook.tasks import LocalLauncher, experiment
from trialbook.tasks.ui import register_ui


class FakeUI:
    """A UI that records how it was started and stopped."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.stopped = 0

    def __call__(self, store: Any, *, host: str, port: int, token: str | None) -> FakeUI:
        self.calls.append({"store": store, "host": host, "port": port, "token": token})
        return self

    @property
    def url(self) -> str:
        return "http://ui.invalid/?token=t"

    def stop(self) -> None:
        self.stopped += 1


@pytest.fixture
def fake_ui() -> Any:
    ui = FakeUI()
    register_ui(ui)
    yield ui
    register_ui(None)


def test_a_registered_ui_serves_the_experiment_store_while_the_block_runs(
    tmp_path: Path, fake_ui: FakeUI
) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    with experiment(tmp_path / "wd", "served", port=0, token="t", store=store) as xp:
        assert xp.server is fake_ui
        assert fake_ui.stopped == 0
    assert fake_ui.calls == [{"store": store, "host": "127.0.0.1", "port": 0, "token": "t"}]
    assert fake_ui.stopped == 1
    assert xp.server is None


def test_no_port_starts_no_ui(tmp_path: Path, fake_ui: FakeUI) -> None:
    with experiment(tmp_path / "wd", "quiet", store=tmp_path / "store") as xp:
        assert xp.server is None
    assert fake_ui.calls == []


def _python(code: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_plain_python_experiment_with_a_port_finds_the_installed_ui(tmp_path: Path) -> None:
    """Only ``trialbook.tasks`` is imported: the UI comes from the ``trialbook.ui`` entry point."""
    require_module("starlette", "ui")
    require_module("uvicorn", "ui")
    out = _python(
        """
        import sys, urllib.request
        from trialbook.tasks import experiment
        assert "trialbook.web" not in sys.modules
        with experiment("wd", "plain", port=0, token="s3cret", store="store") as xp:
            request = urllib.request.Request(
                xp.server.url.split("/?")[0] + "/api/experiments",
                headers={"Authorization": "Bearer s3cret"})
            print(urllib.request.urlopen(request).read().decode())
        """,
        tmp_path,
    )
    assert '"name":"plain"' in out


def test_an_experiment_without_a_port_never_imports_the_ui(tmp_path: Path) -> None:
    out = _python(
        """
        import sys
        from trialbook.tasks import Task, experiment
        class Noop(Task):
            def execute(self):
                pass
        with experiment("wd", "plain", store="store"):
            Noop.C().submit()
        print(sorted(m for m in sys.modules if m.startswith("trialbook.web")))
        """,
        tmp_path,
    )
    assert out == "[]\n"


def test_the_ui_stops_when_a_job_fails(tmp_path: Path, fake_ui: FakeUI) -> None:
    from trialbook.errors import JobFailedError
    from trialbook.tasks import Task

    class Boom(Task):
        __trialbook_id__ = "test.ui.boom"

        def execute(self) -> None:
            raise ValueError("boom")

    with (
        pytest.raises(JobFailedError),
        experiment(
            tmp_path / "wd", "failing", port=0, store=tmp_path / "s", launcher=LocalLauncher(1)
        ),
    ):
        Boom.C().submit()
    assert fake_ui.stopped == 1
