"""The charts of the runs page in headless Chromium (issue 15): parallel coordinates with brushing,
overlay of selected runs, grouped curves, scatter log axes, views restored from the URL.
Screenshots go to test-artifacts/ (charts-*.png)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import require_module

require_module("starlette", "ui")

from test_web_browser import ARTIFACTS, TOKEN, browser  # noqa: E402, F401 - the browser fixture
from test_web_charts_api import mixed, sweep  # noqa: E402
from trialbook.storage import open_store  # noqa: E402
from trialbook.web import serve  # noqa: E402


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    store = open_store(tmp_path / "store")
    sweep(store)
    mixed(store)
    with serve(store, port=0, token=TOKEN) as server:
        yield f"http://127.0.0.1:{server.port}"
    store.close()


@pytest.fixture
def page(browser: Any, site: str) -> Iterator[Any]:  # noqa: F811 - the imported fixture
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(15_000)
    page.goto(f"{site}/?token={TOKEN}")
    page.base = site
    yield page
    context.close()
    assert errors == []


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"charts-{name}.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{name}: the page is {width} px wide"


def layout(page: Any) -> dict[str, Any]:
    return json.loads(page.get_attribute("#pc-canvas", "data-layout"))


def axis_x(page: Any, name: str) -> float:
    box = page.locator("#pc-canvas").bounding_box()
    axis = next(a for a in layout(page)["axes"] if a["name"] == name)
    return box["x"] + axis["x"]


def drag(page: Any, x: float, y0: float, y1: float) -> None:
    page.mouse.move(x, y0)
    page.mouse.down()
    page.mouse.move(x, (y0 + y1) / 2)
    page.mouse.move(x, y1)
    page.mouse.up()


def table_ids(page: Any, box: str) -> list[int]:
    return [int(x) for x in page.eval_on_selector_all(
        f"{box} #runs-table tbody tr", "rows => rows.map(r => r.dataset.run)")]  # fmt: skip


def test_brush_an_axis_and_see_the_table_filter(page: Any) -> None:
    page.goto(f"{page.base}/e/sweep#parallel")
    page.wait_for_selector("#pc-canvas[data-layout]")
    names = [a["name"] for a in layout(page)["axes"]]
    assert names == ["params.lr", "params.opt", "params.seed", "metric.loss"]
    assert page.locator("text=No brush").count() == 1
    top = page.locator("#pc-canvas").bounding_box()["y"]
    lay = layout(page)
    # opt is categorical: adam at the bottom, sgd at the top; brush the bottom end (adam)
    drag(page, axis_x(page, "params.opt"), top + lay["bottom"] + 5, top + lay["bottom"] - 20)
    page.wait_for_selector("#pc-count")
    assert page.inner_text("#pc-count") == "12 runs match"
    assert 'params.opt in ["adam"]' in page.inner_text("#pc-match")
    ids = table_ids(page, "#pc-table")
    assert ids == [1, 2, 3, 4, 9, 10, 11, 12, 17, 18, 19, 20]
    # lr has a log axis (1e-5..1e-3): brush its lower half, AND-ed with the first brush
    assert page.is_checked(".pc-log[data-axis='params.lr']")
    mid = (lay["top"] + lay["bottom"]) / 2
    drag(page, axis_x(page, "params.lr"), top + lay["bottom"] + 5, top + mid + 10)
    page.wait_for_function("document.querySelector('#pc-count')?.textContent === '4 runs match'")
    assert table_ids(page, "#pc-table") == [1, 2, 3, 4]
    assert "params.lr >= " in page.inner_text("#pc-match")
    assert json.loads(
        page.evaluate("new URLSearchParams(location.search).get('pc.brush')")
    ).keys() == {"params.opt", "params.lr"}
    shot(page, "parallel-brushed")
    # a click on the lr axis clears its brush
    page.mouse.click(axis_x(page, "params.lr"), top + mid)
    page.wait_for_function("document.querySelector('#pc-count')?.textContent === '12 runs match'")
    # open in the runs table: the runs tab filtered by the brushes
    page.click("#pc-open")
    page.wait_for_function("document.querySelector('#page-info')?.textContent.includes('of 12 ')")
    assert page.input_value("#filter") == 'params.opt in ["adam"]'


def test_colour_by_a_column_and_pick_axes(page: Any) -> None:
    page.goto(f"{page.base}/e/sweep#parallel")
    page.wait_for_selector("#pc-canvas[data-layout]")
    page.select_option("#pc-color", "params.opt")
    page.wait_for_selector("#pc-legend:has-text('sgd')")
    page.click("#pc-picker summary")
    page.check(".pc-axis[value='fields.alpha']")
    page.wait_for_function("JSON.parse(document.querySelector('#pc-canvas').dataset.layout)"
                           ".axes.length === 5")  # fmt: skip
    page.click("#pc-picker summary")
    shot(page, "parallel-colour")
    assert page.evaluate("new URLSearchParams(location.search).get('pc.color')") == "params.opt"


def test_overlay_three_runs_with_parameter_legends(page: Any) -> None:
    page.goto(f"{page.base}/e/sweep")
    page.wait_for_selector("#runs-table tbody tr")
    page.locator("#runs-table tr[data-run='1'] input.pick").check()
    page.locator("#runs-table tr[data-run='5'] input.pick").check()
    page.locator("#runs-table tr[data-run='9'] input.pick").check()
    page.click("#tab-overlay")
    page.wait_for_selector("#ov-chart .u-legend")
    labels = page.eval_on_selector_all("#ov-chart .u-legend .u-series .u-label",
                                       "xs => xs.map(x => x.textContent)")  # fmt: skip
    assert labels == ["run 1 · lr=1e-05, opt=adam", "run 5 · lr=1e-05, opt=sgd",
                          "run 9 · lr=0.0001, opt=adam"]  # fmt: skip
    page.fill("#ov-smooth", "0.6")
    page.check("#ov-log")
    page.select_option("#ov-x", "relative")
    shot(page, "overlay")
    query = page.evaluate("location.search")
    assert "ov.runs=1%2C5%2C9" in query and "ov.log=1" in query and "ov.x=relative" in query
    # reloading the shared URL shows the same chart
    page.goto(page.url)
    page.wait_for_selector("#ov-chart .u-legend")
    assert page.is_checked("#ov-log") and page.input_value("#ov-x") == "relative"
    assert page.input_value("#ov-smooth") == "0.6"
    assert page.locator("#ov-chart .u-legend .u-series").count() == 3


def test_overlay_empty_states(page: Any) -> None:
    page.goto(f"{page.base}/e/sweep#overlay")
    page.wait_for_selector("#ov-empty")
    assert "No runs selected" in page.inner_text("#ov-empty")
    shot(page, "overlay-empty")
    page.goto(f"{page.base}/e/mixed?ov.runs=4&ov.metric=loss#overlay")
    page.wait_for_selector("#ov-empty")
    assert page.inner_text("#ov-empty") == "Run 4 did not log the metric loss."
    page.goto(f"{page.base}/e/mixed?ov.runs=3,4&ov.metric=loss#overlay")
    page.wait_for_selector("#ov-missing")
    assert page.inner_text("#ov-missing") == "run 4 did not log loss"
    shot(page, "overlay-missing")


def test_group_by_a_parameter_one_line_per_group(page: Any) -> None:
    page.goto(f"{page.base}/e/sweep#groups")
    page.wait_for_selector("#gr-empty")
    page.select_option("#gr-by", ["params.opt"])
    page.wait_for_selector("#gr-chart[data-groups='2']")
    labels = page.eval_on_selector_all("#gr-chart .u-legend .u-series .u-label",
                                       "xs => xs.map(x => x.textContent)")  # fmt: skip
    assert "opt=adam (12 runs)" in labels and "opt=sgd (12 runs)" in labels
    assert page.locator("#gr-chart .u-legend .u-series:visible").count() == 2  # edges unlisted
    shot(page, "groups-minmax")
    page.select_option("#gr-by", ["params.opt", "params.lr"])
    page.wait_for_selector("#gr-chart[data-groups='6']")
    page.select_option("#gr-band", "std")
    shot(page, "groups-std")
    page.goto(page.url)
    page.wait_for_selector("#gr-chart[data-groups='6']")
    assert page.input_value("#gr-band") == "std"


def test_scatter_log_axis_when_values_span_decades(page: Any) -> None:
    page.goto(f"{page.base}/e/sweep#scatter")
    page.wait_for_selector("#axis-x option", state="attached")
    page.select_option("#axis-x", "fields.alpha")
    page.select_option("#axis-y", "metric.loss")
    page.wait_for_function("document.querySelector('#scatter').dataset.log === 'x'")
    assert page.is_checked("#scatter-logx") and not page.is_checked("#scatter-logy")
    shot(page, "scatter-log")
    page.uncheck("#scatter-logx")
    page.wait_for_function("document.querySelector('#scatter').dataset.log === ''")


def test_reload_a_shared_parallel_url(page: Any) -> None:
    brush = json.dumps({"params.opt": {"cats": ["sgd"]}, "params.seed": {"lo": 1, "hi": 2}})
    from urllib.parse import urlencode

    query = urlencode({"pc.axes": "params.lr,params.opt,params.seed,metric.loss", "pc.brush": brush,
                       "pc.color": "params.lr", "pc.lin": "params.lr"})  # fmt: skip
    page.goto(f"{page.base}/e/sweep?{query}#parallel")
    page.wait_for_selector("#pc-count")
    assert [a["name"] for a in layout(page)["axes"]] == ["params.lr", "params.opt", "params.seed",
                                                         "metric.loss"]  # fmt: skip
    assert page.inner_text("#pc-count") == "6 runs match"
    assert table_ids(page, "#pc-table") == [6, 7, 14, 15, 22, 23]
    assert "params.lr" in page.inner_text("#pc-legend")  # a colour ramp
    assert not page.is_checked(".pc-log[data-axis='params.lr']")  # pc.lin: linear, as shared
    shot(page, "parallel-shared")


def test_brushed_and_ticked_runs_go_to_the_overlay(page: Any) -> None:
    page.goto(f"{page.base}/e/sweep#parallel")
    page.wait_for_selector("#pc-canvas[data-layout]")
    top = page.locator("#pc-canvas").bounding_box()["y"]
    lay = layout(page)
    drag(page, axis_x(page, "params.seed"), top + lay["bottom"] + 5, top + lay["bottom"] - 10)
    page.wait_for_function("document.querySelector('#pc-count')?.textContent === '6 runs match'")
    page.click("#pc-overlay")
    page.wait_for_selector("#ov-chart .u-legend")
    labels = page.eval_on_selector_all("#ov-chart .u-legend .u-series .u-label",
                                       "xs => xs.map(x => x.textContent)")  # fmt: skip
    assert labels == ["run 1 · lr=1e-05, opt=adam", "run 5 · lr=1e-05, opt=sgd",
                      "run 9 · lr=0.0001, opt=adam", "run 13 · lr=0.0001, opt=sgd",
                      "run 17 · lr=0.001, opt=adam", "run 21 · lr=0.001, opt=sgd"]  # fmt: skip
    page.click("#tab-parallel")
    page.wait_for_selector("#pc-table #runs-table")
    page.locator("#pc-table tr[data-run='17'] input.pick").check()
    page.click("#tab-overlay")
    page.wait_for_selector("#ov-chart .u-legend")
    assert page.locator("#ov-chart .u-legend .u-series").count() == 1  # the ticked run
    assert "run 17" in page.inner_text("#ov-chart .u-legend")


def test_a_shared_url_with_unknown_axes_falls_back(page: Any) -> None:
    page.goto(f"{page.base}/e/sweep?pc.axes=params.gone#parallel")
    page.wait_for_selector("#pc-canvas[data-layout]")
    assert "'params.gone' is not a name" in page.inner_text("#pc-error")
    assert len(layout(page)["axes"]) == 4


@pytest.mark.parametrize("view", ["parallel", "groups", "overlay"])
def test_narrow_window_nothing_overflows(browser: Any, site: str, view: str) -> None:  # noqa: F811
    context = browser.new_context(viewport={"width": 560, "height": 800})
    page = context.new_page()
    page.goto(f"{site}/?token={TOKEN}")
    page.goto(f"{site}/e/sweep?ov.runs=1,2&ov.metric=loss&ov.group=params.opt#{view}")
    selector = {"parallel": "#pc-canvas[data-layout]", "groups": "#gr-chart[data-groups='2']",
                "overlay": "#ov-chart .u-legend"}[view]  # fmt: skip
    page.wait_for_selector(selector)
    shot(page, f"narrow-{view}")
    context.close()


def test_brushes_combine_with_the_runs_tab_filter(page: Any) -> None:
    page.goto(f"{page.base}/e/sweep")
    page.wait_for_selector("#runs-table tbody tr")
    page.fill("#filter", "params.seed <= 1 or params.seed == 3")
    page.press("#filter", "Enter")
    page.wait_for_function("document.querySelector('#page-info')?.textContent.includes('of 18 ')")
    page.click("#tab-parallel")
    page.wait_for_selector("#pc-canvas[data-layout]")
    assert page.inner_text("#pc-info") == "18 runs drawn"
    top = page.locator("#pc-canvas").bounding_box()["y"]
    lay = layout(page)
    drag(page, axis_x(page, "params.opt"), top + lay["bottom"] + 5, top + lay["bottom"] - 20)
    page.wait_for_selector("#pc-count")
    assert page.inner_text("#pc-count") == "9 runs match"
    assert "(params.seed <= 1 or params.seed == 3) and params.opt in" in page.inner_text(
        "#pc-match")  # fmt: skip
    assert table_ids(page, "#pc-table") == [1, 2, 4, 9, 10, 12, 17, 18, 20]
