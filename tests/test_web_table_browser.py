"""The runs table in headless Chromium (issue 15): hide and order columns, sort on the server,
group by a parameter, export and parse the CSV, reload a shared URL and see the same view, and a
task experiment with nested configs whose runs table is no wider than the window. Screenshots
go to test-artifacts/."""

from __future__ import annotations

import csv
import io
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import test_web_browser
from test_web_browser import TOKEN, no_overflow, row_ids, shot
from trialbook import Config, Param, Task, experiment
from trialbook.storage import open_store
from trialbook.tasks import LocalLauncher
from trialbook.web import serve

browser, site, page = test_web_browser.browser, test_web_browser.site, test_web_browser.page


def open_demo(page: Any, query: str = "") -> None:
    base = page.url.split("/?")[0].rstrip("/")
    page.goto(f"{base}/e/demo{query}")
    page.wait_for_selector("#runs-table tbody tr[data-run]")


def headers(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "#runs-table thead th[data-key]", "ths => ths.map(t => t.dataset.key)"
    )


def url_query(page: Any) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)


def test_hide_a_column_sort_select_and_reload_the_shared_url(page: Any) -> None:
    open_demo(page)
    assert "params.opt" in headers(page) and "metric.loss" in headers(page)
    page.click("#columns-menu summary")
    page.uncheck("#columns-panel input.col-toggle[value='params.opt']")
    page.wait_for_function("!document.querySelector(\"th[data-key='params.opt']\")")
    assert "params.opt" not in headers(page)
    page.click("#columns-menu summary")  # close the menu
    page.fill("#filter", 'status == "done"')
    page.press("#filter", "Enter")
    page.wait_for_function("document.querySelector('#page-info')?.textContent.includes('of 9 ')")
    page.click("th[data-key='params.lr']")
    page.wait_for_function("document.querySelector(\"th[data-key='params.lr']\")"
                           ".classList.contains('sorted-asc')")  # fmt: skip
    page.click("th[data-key='params.lr']")
    page.wait_for_function("document.querySelector(\"th[data-key='params.lr']\")"
                           ".classList.contains('sorted-desc')")  # fmt: skip
    assert row_ids(page) == [11, 10, 9, 7, 6, 5, 3, 2, 1]
    page.check("#runs-table tr[data-run='3'] input.pick")
    page.check("#runs-table tr[data-run='5'] input.pick")
    page.wait_for_function("location.search.includes('sel=')")
    query = url_query(page)
    assert query["order_by"] == ["params.lr"] and query["desc"] == ["1"]
    assert query["where"] == ['status == "done"'] and query["sel"] == ["3,5"]
    assert "params.opt" not in query["cols"][0].split(",")
    shown = headers(page)
    shot(page, "table-hidden-column-sorted")

    page.reload()  # the same URL, as another person would open it
    page.wait_for_selector("#runs-table tbody tr[data-run]")
    page.wait_for_function("document.querySelector('#page-info')?.textContent.includes('of 9 ')")
    assert headers(page) == shown
    assert row_ids(page) == [11, 10, 9, 7, 6, 5, 3, 2, 1]
    assert page.input_value("#filter") == 'status == "done"'
    checked = page.eval_on_selector_all(
        "#runs-table input.pick:checked", "xs => xs.map(x => +x.closest('tr').dataset.run)"
    )
    assert checked == [5, 3]
    assert not page.is_disabled("#compare-btn")
    assert no_overflow(page)


def test_order_columns_from_the_menu(page: Any) -> None:
    open_demo(page, "?cols=run_id,params.lr,params.opt")
    assert headers(page) == ["run_id", "params.lr", "params.opt"]
    page.click("#columns-menu summary")
    page.click("#columns-panel li:has(input[value='params.opt']) button[title='move left']")
    page.wait_for_function("location.search.includes('cols=run_id%2Cparams.opt%2Cparams.lr')")
    page.wait_for_function(
        "[...document.querySelectorAll('#runs-table th[data-key]')].map(t => t.dataset.key)"
        ".join() === 'run_id,params.opt,params.lr'"
    )
    page.check("#columns-panel input.col-toggle[value='metric.loss.min']")
    page.wait_for_selector("th[data-key='metric.loss.min']")
    page.click("#columns-menu summary")
    page.click("th[data-key='metric.loss.min']")
    page.wait_for_function("document.querySelector(\"th[data-key='metric.loss.min']\")"
                           ".classList.contains('sorted-asc')")  # fmt: skip
    assert row_ids(page)[:3] == [12, 11, 10]  # loss 1/(step + i): smallest for the last runs
    shot(page, "table-ordered-columns")


def test_group_by_a_parameter_one_row_per_group(page: Any) -> None:
    open_demo(page)
    page.click("#group-menu summary")
    page.check("#group-panel input.group-key[value='params.opt']")
    page.wait_for_selector("#groups-table tbody tr[data-group]")
    page.click("#group-menu summary")
    rows = page.eval_on_selector_all(
        "#groups-table tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert [r[:2] for r in rows] == [["adam", "6"], ["sgd", "6"]]
    lr = headers_of_groups(page).index("params.lr")
    assert rows[0][lr].startswith("0.06 ± 0.0374")  # lr of the odd runs: 0.01, 0.03, ... 0.11
    assert url_query(page)["group"] == ["params.opt"]
    shot(page, "table-grouped")
    page.reload()
    page.wait_for_selector("#groups-table tbody tr[data-group]")
    assert page.locator("#groups-table tbody tr").count() == 2
    page.click("#groups-table tr[data-group='1'] a.group-link")
    page.wait_for_selector("#runs-table tbody tr[data-run]")
    page.wait_for_function("document.querySelector('#page-info')?.textContent.includes('of 6 ')")
    assert row_ids(page) == [2, 4, 6, 8, 10, 12]
    assert page.input_value("#filter") == 'params.opt == "sgd"'


def headers_of_groups(page: Any) -> list[str]:
    return page.eval_on_selector_all("#groups-table thead th", "ths => ths.map(t => t.dataset.key)")


def test_export_the_table_as_csv_and_parse_it(page: Any) -> None:
    open_demo(page, "?cols=run_id,params.lr,metric.loss&where=lr+%3E+0.05&order_by=metric.loss")
    with page.expect_download() as info:
        page.click("#export-csv")
    path = info.value.path()
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    assert list(rows[0]) == ["run_id", "params.lr", "metric.loss"]
    assert [int(r["run_id"]) for r in rows] == [12, 11, 10, 9, 8, 7, 6]
    assert float(rows[0]["params.lr"]) == 0.12
    assert info.value.suggested_filename == "demo-runs.csv"


class Data(Config):
    """Where the data comes from (a nested config)."""

    __trialbook_id__ = "test.table.data"
    seed: Param[int]
    path: Param[str]


class Model(Config):
    __trialbook_id__ = "test.table.model"
    layers: Param[int]
    activation: Param[str]
    description: Param[str]


class Train(Task):
    __trialbook_id__ = "test.table.train"
    data: Param[Data]
    model: Param[Model]
    lr: Param[float]

    def execute(self) -> None:
        pass


@pytest.fixture
def task_site(tmp_path: Path) -> Iterator[str]:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    long = "a very long description of this model " * 20
    with experiment(tmp_path / "wd", "nested", store=store_url,
                    launcher=LocalLauncher(n_workers=1)):  # fmt: skip
        for i in range(3):
            data = Data.C(seed=i, path=f"/data/set-{i}/" + "x" * 200)
            model = Model.C(layers=2 + i, activation="relu", description=long)
            Train.C(data=data, model=model, lr=0.1 * (i + 1)).submit()
    store = open_store(store_url)
    with serve(store, port=0, token=TOKEN) as server:
        yield f"http://127.0.0.1:{server.port}"
    store.close()


def test_a_nested_config_task_table_is_no_wider_than_the_window(
    browser: Any, task_site: str
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(15_000)
    page.goto(f"{task_site}/e/nested?token={TOKEN}")
    page.wait_for_selector("#runs-table tbody tr[data-run]")
    keys = headers(page)
    assert {"params.data.seed", "params.model.layers", "params.lr"} <= set(keys), keys
    assert no_overflow(page)
    width = page.evaluate("document.querySelector('#runs-table').getBoundingClientRect().width")
    assert width > 1280  # the table is wider than the window: it scrolls inside its box
    wrap = page.evaluate("document.querySelector('.table-wrap').getBoundingClientRect().width")
    assert wrap <= 1280
    cell = page.locator("#runs-table td span.cell[title^='a very long description']").first
    assert cell.get_attribute("title") == ("a very long description of this model " * 20)
    # cut, the whole value on hover (measured in one call: the live refresh may redraw the table
    # between two calls, and a redrawn cell has no box)
    assert cell.evaluate("e => e.getBoundingClientRect().width") < 300
    page.click("th[data-key='params.data.seed']")
    page.wait_for_function("document.querySelector(\"th[data-key='params.data.seed']\")"
                           ".classList.contains('sorted-asc')")  # fmt: skip
    page.click("th[data-key='params.data.seed']")
    page.wait_for_function("document.querySelector(\"th[data-key='params.data.seed']\")"
                           ".classList.contains('sorted-desc')")  # fmt: skip
    seeds = page.eval_on_selector_all(
        "#runs-table tbody tr", f"rs => rs.map(r => r.cells[{keys.index('params.data.seed') + 1}]"
        ".textContent)",
    )  # fmt: skip
    assert seeds == ["2", "1", "0"]
    shot(page, "table-nested-task")
    context.close()
    assert errors == []


def test_page_size_and_position_come_from_the_url_and_other_keys_stay(page: Any) -> None:
    base = page.url.split("/?")[0].rstrip("/")
    page.goto(f"{base}/e/demo?limit=5&offset=5&pc.axes=lr#runs")
    page.wait_for_selector("#runs-table tbody tr[data-run]")
    page.wait_for_function(
        "document.querySelector('#page-info')?.textContent === '6–10 of 12 runs'"
    )
    assert row_ids(page) == [6, 7, 8, 9, 10]
    assert page.input_value("#page-size") == "5"
    page.click("#next")
    page.wait_for_function(
        "document.querySelector('#page-info')?.textContent === '11–12 of 12 runs'"
    )
    query = url_query(page)
    assert query["offset"] == ["10"] and query["limit"] == ["5"]
    assert query["pc.axes"] == ["lr"]  # another view's key stays
    assert page.evaluate("location.hash") == "#runs"


def test_the_menus_fit_the_window_and_explain_themselves(page: Any) -> None:
    open_demo(page)
    for menu in ("columns", "group"):
        page.click(f"#{menu}-menu summary")
        panel = page.locator(f"#{menu}-panel")
        box = panel.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 1280, (menu, box)
        assert "null" not in panel.inner_text()
        assert no_overflow(page)
        shot(page, f"table-{menu}-menu")
        if menu == "group":
            assert "typically all but the seed" in panel.inner_text()
        page.click(f"#{menu}-menu summary")
