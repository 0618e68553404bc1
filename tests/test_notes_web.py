"""Editing notes and descriptions through the UI's JSON API (issue 21) over a real SQLite store:
refused without --allow-actions, stored with it, a run changed meanwhile is a 409, a text too
long a 413, and the text comes back as JSON data, never as markup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import require_module

require_module("starlette", "ui")

from starlette.testclient import TestClient  # noqa: E402 - after the check of the ui extra

import trialbook  # noqa: E402
from trialbook.notes import MAX_BYTES  # noqa: E402
from trialbook.storage import open_store  # noqa: E402
from trialbook.web import create_app  # noqa: E402

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
XSS = "<img src=x onerror=\"document.title='owned'\"> **bold**"
DESCRIPTION = "/api/experiments/demo/description"
NOTE = "/api/experiments/demo/runs/2/note"


@pytest.fixture
def location(tmp_path: Path) -> str:
    location = str(tmp_path / "store")
    with trialbook.create_session(location) as session:
        experiment = session.create_experiment("demo")
        experiment.add_runs(x=[1, 2, 3])
        experiment.execute(lambda run: run.tags.update(group="a")).persist()
    return location


@pytest.fixture
def store(location: str) -> Any:
    store = open_store(location)
    yield store
    store.close()


@pytest.fixture
def admin(store: Any) -> TestClient:
    with TestClient(create_app(store, token=TOKEN, allow_actions=True), headers=AUTH) as client:
        yield client


def test_editing_is_refused_unless_actions_are_allowed(store: Any) -> None:
    with TestClient(create_app(store, token=TOKEN), headers=AUTH) as read_only:
        refused = read_only.put(DESCRIPTION, json={"text": "x"})
        assert refused.status_code == 403
        assert "--allow-actions to edit descriptions" in refused.json()["error"]
        refused = read_only.put(NOTE, json={"text": "x"})
        assert refused.status_code == 403 and "edit notes" in refused.json()["error"]
        assert read_only.get("/api/experiments/demo/runs").json()["description"] is None
        assert "note" not in read_only.get("/api/experiments/demo/runs/2").json()["tags"]


def test_a_description_and_a_note_are_stored_and_removed(admin: TestClient, location: str) -> None:
    answer = admin.put(DESCRIPTION, json={"text": "Sweep of *x*"})
    assert answer.status_code == 200
    assert answer.json() == {"experiment": "demo", "description": "Sweep of *x*"}
    assert admin.get("/api/experiments/demo/runs").json()["description"] == "Sweep of *x*"
    version = admin.get("/api/experiments/demo/runs/2").json()["version"]
    answer = admin.put(NOTE, json={"text": "looks **good**", "version": version})
    assert answer.status_code == 200
    assert answer.json() == {"run_id": 2, "note": "looks **good**", "version": version + 1}
    run = admin.get("/api/experiments/demo/runs/2").json()
    assert run["tags"] == {"group": "a", "note": "looks **good**"}
    assert run["version"] == version + 1
    with trialbook.create_session(location) as session:
        loaded = session.load_experiment("demo")
        assert loaded.description == "Sweep of *x*"
        assert loaded.runs[2].note == "looks **good**" and loaded.runs[2].status == "done"
    assert admin.put(NOTE, json={"text": ""}).json()["note"] is None
    assert admin.put(DESCRIPTION, json={"text": "  "}).json()["description"] is None
    with trialbook.create_session(location) as session:
        loaded = session.load_experiment("demo")
        assert loaded.description is None
        assert dict(loaded.runs[2].tags) == {"group": "a"}


def test_a_note_on_a_run_changed_since_the_page_read_it_is_a_409(
    admin: TestClient, location: str
) -> None:
    shown = admin.get("/api/experiments/demo/runs/2").json()["version"]
    with trialbook.create_session(location) as session:
        loaded = session.load_experiment("demo")
        loaded.runs[2].note = "written from Python"
        loaded.persist()
    answer = admin.put(NOTE, json={"text": "from the page", "version": shown})
    assert answer.status_code == 409
    assert "run 2 was changed since this page read it" in answer.json()["error"]
    assert "reload the page" in answer.json()["error"]
    run = admin.get("/api/experiments/demo/runs/2").json()
    assert run["tags"]["note"] == "written from Python"


def test_bad_bodies_are_400_and_texts_too_long_are_413(admin: TestClient) -> None:
    too_long = admin.put(DESCRIPTION, json={"text": "x" * (MAX_BYTES + 1)})
    assert too_long.status_code == 413 and "at most 64 KiB" in too_long.json()["error"]
    too_long = admin.put(NOTE, json={"text": "é" * MAX_BYTES})
    assert too_long.status_code == 413 and "the note of run 2" in too_long.json()["error"]
    huge = admin.put(NOTE, content=b'{"text": "' + b"x" * (3 * MAX_BYTES) + b'"}')
    assert huge.status_code == 413
    for body in (b"not json", b'{"note": "x"}', b'{"text": 3}', b"[]"):
        bad = admin.put(DESCRIPTION, content=body)
        assert bad.status_code == 400 and '{"text": "..."}' in bad.json()["error"]
    bad = admin.put(NOTE, json={"text": "x", "version": "1"})
    assert bad.status_code == 400 and "'version' must be" in bad.json()["error"]
    assert admin.put("/api/experiments/nope/description", json={"text": "x"}).status_code == 404
    assert admin.put("/api/experiments/demo/runs/9/note", json={"text": "x"}).status_code == 404
    assert admin.get("/api/experiments/demo/runs").json()["description"] is None


def test_markup_in_a_text_comes_back_as_json_data(admin: TestClient) -> None:
    """The API never renders a text: it is a JSON string (application/json), which the page
    writes as text (the browser test checks the page)."""
    answer = admin.put(DESCRIPTION, json={"text": XSS})
    assert answer.headers["content-type"] == "application/json"
    runs = admin.get("/api/experiments/demo/runs")
    assert runs.headers["content-type"] == "application/json"
    assert runs.json()["description"] == XSS
    admin.put(NOTE, json={"text": XSS})
    assert admin.get("/api/experiments/demo/runs/2").json()["tags"]["note"] == XSS
