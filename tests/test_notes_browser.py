"""Notes and descriptions in headless Chromium (issue 21): the empty states say how to add one,
editing with --allow-actions stores the text and renders its markdown subset, markup in a text
shows as text, a read-only UI has no edit control. Screenshots go to test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import test_web_browser
from test_web_api import fill
from test_web_browser import TOKEN, shot
from trialbook.storage import open_store
from trialbook.web import serve

browser = test_web_browser.browser  # the Chromium fixture, shared
XSS = "<img src=x onerror=\"document.title='owned'\"> and <b>not bold</b>"


def served(
    browser: Any,
    tmp_path: Path,
    *,
    allow_actions: bool,
) -> Iterator[tuple[Any, Any]]:
    store = open_store(tmp_path / "store")
    fill(store)
    with serve(store, port=0, token=TOKEN, allow_actions=allow_actions) as server:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_default_timeout(15_000)
        page.goto(f"http://127.0.0.1:{server.port}/?token={TOKEN}")
        yield page, store
        context.close()
    store.close()
    assert errors == []


@pytest.fixture
def editor(browser: Any, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    yield from served(browser, tmp_path, allow_actions=True)


@pytest.fixture
def reader(browser: Any, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    yield from served(browser, tmp_path, allow_actions=False)


def test_edit_a_description_and_a_note(editor: tuple[Any, Any]) -> None:
    page, store = editor
    page.click("text=demo")
    page.wait_for_selector("#description .empty")
    assert "No description yet" in page.inner_text("#description")
    assert 'experiment.description = "..."' in page.inner_text("#description")
    shot(page, "notes-description-empty")
    page.click("#description button.edit")
    page.fill(
        "#description textarea",
        "Sweep of **lr** for the *small* model; see `train.py`.\n"
        "Second line, and [the paper](https://example.org/paper).\n\n" + XSS,
    )
    page.click("#description button.save")
    page.wait_for_selector("#description .markdown strong")
    assert page.inner_text("#description strong") == "lr"
    assert page.inner_text("#description em") == "small"
    assert page.inner_text("#description code") == "train.py"
    assert page.get_attribute("#description a", "href") == "https://example.org/paper"
    assert page.locator("#description p").count() == 2
    assert page.locator("#description br").count() == 1
    assert page.locator("#description img, #description b").count() == 0
    assert "<img src=x" in page.inner_text("#description")
    assert page.title() != "owned"
    page.wait_for_selector("#runs-table tbody tr")
    shot(page, "notes-description-edited")

    page.click("#runs-table a:text-is('2')")
    page.wait_for_selector("#note .empty")
    assert "No note yet" in page.inner_text("#note")
    page.click("#note button.edit")
    page.fill("#note textarea", "Diverged after epoch 3: **lr too high**.\n\n" + "long " * 120)
    page.click("#note button.save")
    page.wait_for_selector("#note .markdown strong")
    assert page.inner_text("#note strong") == "lr too high"
    assert "note" not in page.inner_text("#tags")  # shown once, in its own section
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, "the note overflows the page"
    shot(page, "notes-run-note")
    page.click("#note button.edit")
    page.fill("#note textarea", "second edit")
    page.click("#note button.save")  # the page sends the version its last save returned
    page.wait_for_selector("#note .markdown:has-text('second edit')")
    page.go_back()
    page.wait_for_selector("#runs-table .note-cell")
    assert page.inner_text("#runs-table .note-cell") == "second edit"
    experiment = store.find_experiment("demo")
    assert experiment.meta["description"].endswith(XSS)
    assert store.read_runs(experiment.id, [2])[0].tags["note"] == "second edit"


def test_a_read_only_ui_shows_a_description_without_an_edit_control(
    reader: tuple[Any, Any],
) -> None:
    page, store = reader
    info = store.find_experiment("demo")
    store.update_meta(info.id, {"description": XSS})
    page.click("text=demo")
    page.wait_for_selector("#description .markdown")
    assert page.inner_text("#description").startswith("<img src=x")
    assert page.locator("#description img, #description button").count() == 0
    page.click("#runs-table a:text-is('3')")
    page.wait_for_selector("#note .empty")
    assert page.inner_text("#note").startswith("No note yet")
    assert "Or edit it here" not in page.inner_text("#note")
    assert "null" not in page.inner_text("#note")
    assert page.locator("#note button").count() == 0
    shot(page, "notes-read-only")
