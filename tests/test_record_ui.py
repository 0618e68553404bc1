"""Issue 12 in the browser (headless Chromium, as tests/test_web_browser.py): an experiment
whose name holds `/` opens from its link, a filter with an unknown name shows the error with
its column and no stale table, trials compare with their results. Screenshots go to
test-artifacts/record-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from test_record_cli import sweep, two_trials
from test_web_browser import ARTIFACTS, TOKEN, browser, row_ids, shot  # noqa: F401 - fixture
from trialbook.storage import open_store
from trialbook.web import serve


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    """A served store: `team/sweep` (6 runs) and `graph` (two trials with dict results)."""
    location = str(tmp_path / "store")
    sweep(location, "team/sweep")
    two_trials(location)
    store = open_store(location)
    with serve(store, port=0, token=TOKEN) as server:
        yield f"http://127.0.0.1:{server.port}"
    store.close()


@pytest.fixture
def page(browser: Any, site: str) -> Iterator[Any]:  # noqa: F811 - the fixture above
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(15_000)
    page.goto(f"{site}/?token={TOKEN}")
    yield page
    context.close()
    assert errors == []


def test_an_experiment_named_with_a_slash_opens_from_its_link(page: Any) -> None:
    page.click("text=team/sweep")
    page.wait_for_selector("#runs-table tbody tr")
    assert page.url.endswith("/e/team%2Fsweep")
    assert row_ids(page) == [1, 2, 3, 4, 5, 6]
    assert page.inner_text("h1") == "team/sweep"
    page.click("#runs-table a:text-is('5')")
    page.wait_for_selector("#charts canvas")
    assert page.inner_text("h1") == "Run 5"
    assert "team/sweep" in page.inner_text("#crumbs")


def test_a_filter_with_an_unknown_name_shows_the_error_not_an_empty_table(page: Any) -> None:
    page.click("text=team/sweep")
    page.wait_for_selector("#runs-table tbody tr")
    page.fill("#filter", "loss == hinge")
    page.press("#filter", "Enter")
    page.wait_for_selector("#filter-error:has-text('column 9')")
    error = page.inner_text("#filter-error")
    assert "`hinge` at column 9" in error and 'quote it: loss == "hinge"' in error
    assert page.locator("#runs-table").count() == 0
    assert page.locator("#page-info").count() == 0  # no "0 of 0 runs"
    shot(page, "record-filter-error")
    page.fill("#filter", 'loss == "hinge"')
    page.press("#filter", "Enter")
    page.wait_for_selector("#runs-table tbody tr")
    assert row_ids(page) == [1, 3, 5]
    assert page.inner_text("#filter-error") == ""
    assert page.inner_text("#page-info") == "1–3 of 3 runs"


def test_comparing_trials_shows_their_results(page: Any) -> None:
    page.click("text=graph")
    page.wait_for_selector("#runs-table tbody tr")
    page.check("tr[data-run='1'] input.pick")
    page.check("tr[data-run='2'] input.pick")
    page.click("#compare-btn")
    page.wait_for_selector("#compare-summary")
    result = page.locator("#compare-summary tr[data-name='result']")
    assert result.count() == 1 and "differs" in (result.get_attribute("class") or "")
    assert result.inner_text().split("\t") == ["result", '{"value":2}', '{"value":4}']
    assert page.locator("#compare-summary tr[data-name='seed']").inner_text().split("\t") == [
        "seed", "1", "2"]  # fmt: skip
    shot(page, "record-compare-trials")


COUNT_UNFILTERED_REPLIES = """() => {
  // Count the replies to unfiltered runs requests that the page has read.
  window.unfilteredRead = 0;
  const unfiltered = (url) => url.includes("/table?") && !url.includes("where=");
  const json = Response.prototype.json;
  Response.prototype.json = function () {
    return json.call(this).then((body) => {
      if (unfiltered(this.url)) window.unfilteredRead += 1;
      return body;
    });
  };
}"""


def test_a_late_reply_to_an_older_request_does_not_hide_the_filter_error(page: Any) -> None:
    """The page's own refresh (no filter) is answered after the user's filter: the error of the
    filter stays, the older reply's table is not shown (Chromium holds that reply back)."""
    held: list[Any] = []

    def hold_unfiltered(route: Any) -> None:
        if "where=" in route.request.url:
            route.continue_()
        else:
            held.append(route)

    page.click("text=team/sweep")
    page.wait_for_selector("#runs-table tbody tr")
    page.evaluate(COUNT_UNFILTERED_REPLIES)
    page.route("**/api/experiments/*/table?*", hold_unfiltered)  # the runs table's own API
    page.click("#filter-btn")  # an unfiltered reload, held back
    for _ in range(200):  # until the route handler got the request (it runs between calls)
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the unfiltered request was never sent"
    page.fill("#filter", "loss == hinge")
    page.press("#filter", "Enter")
    page.wait_for_selector("#filter-error:has-text('column 9')")
    for route in held:
        route.continue_()
    # the page read the late reply, and ran the code that follows at once (before any other
    # task of the page, such as this check): it had its chance to (wrongly) repaint
    page.wait_for_function(f"window.unfilteredRead >= {len(held)}")
    assert "column 9" in page.inner_text("#filter-error")
    assert page.locator("#runs-table").count() == 0
