"""Issue 15, "correctness of what is shown", in headless Chromium (as tests/test_web_browser.py):
comparisons, environment tables, live counts and job names with progress, filter errors at
their position. Screenshots go to test-artifacts/correct-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from test_web_browser import TOKEN, browser, no_overflow, shot  # noqa: F401 - fixture
from test_web_correct_api import fill_values, two_trials
from trialbook.storage import open_store
from trialbook.web import serve


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A served store with `graph` (two trials) and `values` (arrays and frames)."""
    location = str(tmp_path / "store")
    two_trials(location)
    with open_store(location) as store:
        fill_values(store)
        with serve(store, port=0, token=TOKEN) as server:
            yield f"http://127.0.0.1:{server.port}", store


def open_page(browser: Any, url: str) -> tuple[Any, Any, list[str]]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(15_000)
    page.goto(url + ("&" if "?" in url else "?") + f"token={TOKEN}")
    return context, page, errors


@pytest.fixture
def page_at(browser: Any, site: tuple[str, Any]) -> Iterator[Any]:  # noqa: F811
    """Open a path of the site: ``page_at("/e/values")``; no page error may happen."""
    opened: list[tuple[Any, list[str]]] = []

    def go(path: str, width: int = 1280) -> Any:
        context, page, errors = open_page(browser, site[0] + path)
        page.set_viewport_size({"width": width, "height": 900})
        opened.append((context, errors))
        return page

    yield go
    for context, errors in opened:
        context.close()
        assert errors == []


def test_compare_shows_not_recorded_and_content_differences(page_at: Any) -> None:
    page = page_at("/e/values/compare?runs=1,2,3")
    page.wait_for_selector("#compare-fields")
    w = page.locator("#compare-fields tr[data-name='w']")
    assert "differs" in (w.get_attribute("class") or "")
    assert [cell.strip() for cell in w.inner_text().split("\t")[1:]] == [
        "array float64 [2 × 3]", "array float64 [2 × 3]\nsame as run 1",
        "array float64 [2 × 3]\nmax |Δ| 2.0"]  # fmt: skip
    assert "max |Δ| 0.25" in page.inner_text("#compare-fields tr[data-name='df']")
    states = page.eval_on_selector_all("[data-state]", "n => n.map(x => x.dataset.state)")
    assert states == ["not recorded"] * 4
    assert "identical" not in page.inner_text("main")
    assert "not recorded for run 1 and run 3" in page.inner_text("main")
    assert no_overflow(page)
    shot(page, "correct-compare-values")


def test_compare_graph_trials_shows_result_and_seed(page_at: Any) -> None:
    page = page_at("/e/graph/compare?runs=1,2")
    page.wait_for_selector("#compare-summary")
    result = page.locator("#compare-summary tr[data-name='result']")
    assert "differs" in (result.get_attribute("class") or "")
    assert "array float64 [2]" in result.inner_text()
    seed = page.locator("#compare-summary tr[data-name='seed']").inner_text().split("\t")
    assert seed == ["seed", "1", "2"]
    shot(page, "correct-compare-trials")


def test_a_filter_error_is_marked_at_its_column(page_at: Any) -> None:
    page = page_at("/e/values")
    page.wait_for_selector("#runs-table tbody tr")
    page.fill("#filter", "lr > 0.05 and nope == 2")
    page.press("#filter", "Enter")
    page.wait_for_selector("#filter-caret")
    assert page.get_attribute("#filter-caret", "data-column") == "15"
    assert page.inner_text("#filter-caret mark") == "nope"
    caret = page.inner_text("#filter-caret").split("\n")[1]
    assert caret == " " * 14 + "^^^^ column 15"
    assert "invalid" in (page.get_attribute("#filter", "class") or "")
    selected = page.evaluate("[document.getElementById('filter').selectionStart,"
                             " document.getElementById('filter').selectionEnd]")  # fmt: skip
    assert selected == [14, 18]
    outline = page.evaluate("getComputedStyle(document.getElementById('filter')).outlineColor")
    assert outline == "rgb(194, 59, 59)"
    assert page.locator("#runs-table").count() == 0
    assert no_overflow(page)
    shot(page, "correct-filter-error")
    page.fill("#filter", "lr > 0.05")
    page.press("#filter", "Enter")
    page.wait_for_selector("#runs-table tbody tr")
    assert page.inner_text("#filter-error") == ""
    assert "invalid" not in (page.get_attribute("#filter", "class") or "")


def test_the_run_page_shows_the_environment_as_tables(page_at: Any) -> None:
    import platform

    page = page_at("/e/graph/runs/2")
    page.wait_for_selector("#packages tbody tr")
    python = page.inner_text("#environment [data-section='python']")
    assert platform.python_version() in python and '{"' not in python
    assert platform.system() in page.inner_text("#environment [data-section='device']")
    names = page.eval_on_selector_all(
        "#packages tbody tr", "rows => rows.map(r => r.dataset.package)"
    )
    assert names == sorted(names, key=str.lower) and len(names) > 20
    page.fill("#package-filter", "numpy")
    page.wait_for_function("document.querySelectorAll('#packages tbody tr').length < 5")
    assert "numpy" in page.eval_on_selector_all(
        "#packages tbody tr", "rows => rows.map(r => r.dataset.package)")  # fmt: skip
    assert "of" in page.inner_text("#package-count")
    page.fill("#package-filter", "")
    page.click("#packages th[data-key='name']")  # descending
    first = page.get_attribute("#packages tbody tr", "data-package")
    assert first == names[-1]
    assert no_overflow(page)
    shot(page, "correct-run-environment")


def test_a_run_without_environment_says_not_recorded(page_at: Any) -> None:
    page = page_at("/e/values/runs/1")
    page.wait_for_selector("#environment .empty")
    assert "not recorded" in page.inner_text("#environment")


def test_long_values_do_not_overflow_the_window(page_at: Any) -> None:
    page = page_at("/")
    page.wait_for_selector("#experiments a")
    assert no_overflow(page)
    shot(page, "correct-experiments-long-name")
    page = page_at("/e/values/runs/4")
    page.wait_for_selector("#params")
    page.wait_for_selector("#environment")
    assert no_overflow(page)
    shot(page, "correct-run-long-values")
    page = page_at("/e/values")
    page.wait_for_selector("#runs-table tbody tr")
    assert no_overflow(page)
    shot(page, "correct-runs-long-values")


def test_live_counts_job_names_and_progress_bars_agree(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    """A task experiment whose jobs run: the header, the Live list and the experiments list
    give the same numbers; jobs are named by their tags and show a progress bar."""
    from test_web_correct_api import start_sweep, wait_for

    location = str(tmp_path / "jobs-store")
    thread, signal = start_sweep(tmp_path, location)
    try:
        wait_for(lambda: Path(location).exists())
        with open_store(location) as store:
            wait_for(lambda: store.find_experiment("sweep"))
            with serve(store, port=0, token=TOKEN) as server:
                base = f"http://127.0.0.1:{server.port}"
                context, page, errors = open_page(browser, base + "/e/sweep")
                page.set_default_timeout(30_000)
                page.wait_for_function(
                    "document.querySelectorAll('#live li[data-job] progress').length === 2"
                )
                assert page.inner_text("[data-count='running']").split()[:2] == ["running", "2"]
                assert "2 jobs not recorded yet" in page.inner_text("[data-count='running']")
                assert page.inner_text("[data-count='pending']").split()[:2] == ["pending", "1"]
                assert page.inner_text("#live-waiting").startswith("1 waiting")
                names = page.eval_on_selector_all(
                    "#live .job-name", "n => n.map(x => x.textContent)"
                )
                assert all(n.startswith("Train lr=0.1 seed=") for n in names) and len(names) == 2
                assert page.eval_on_selector_all(
                    "#live progress", "n => n.map(x => x.value)") == [40, 40]  # fmt: skip
                assert "40% epochs" in page.inner_text("#live")
                assert no_overflow(page)
                shot(page, "correct-live-jobs")
                page.click("#tab-graph")
                page.wait_for_selector("#job-graph g.node[data-status='running'] rect.progress-bar")
                assert page.locator("#job-graph rect.progress-bar").count() == 2
                shot(page, "correct-graph-progress")
                page.click("#tab-runs")
                page.goto(base + "/")
                page.wait_for_selector("#experiments [data-count='running']")
                row = page.inner_text("#experiments tr:has(a:text-is('sweep'))")
                assert "running 2" in row and "pending 1" in row
                shot(page, "correct-experiments-live")
                signal.touch()
                thread.join(60)
                page.wait_for_selector("#experiments .live-counts:has-text('idle')")
                context.close()
                assert errors == []
    finally:
        signal.touch()
        thread.join(60)
