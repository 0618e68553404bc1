"""End-to-end tests of the UI in headless Chromium (Debian's `chromium`, driven by Playwright;
`scripts/browser.sh` installs it). Screenshots go to test-artifacts/."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import need
from test_web_api import fill
from trialbook.storage import open_store
from trialbook.storage.records import RunRecord
from trialbook.web import serve

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TOKEN = "browser-token"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need(shutil.which("chromium") is not None,
         "no `chromium` on PATH: run scripts/browser.sh (apt-get install chromium)")  # fmt: skip
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "playwright is not installed: pip install playwright")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A served store (base URL, store) with the `demo` experiment of test_web_api."""
    store = open_store(tmp_path / "store")
    fill(store)
    with serve(store, port=0, token=TOKEN) as server:
        yield f"http://127.0.0.1:{server.port}", store
    store.close()


@pytest.fixture
def page(browser: Any, site: tuple[str, Any]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(15_000)
    page.goto(f"{site[0]}/?token={TOKEN}")
    yield page
    context.close()
    assert errors == []


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def row_ids(page: Any) -> list[int]:
    return [int(x) for x in page.eval_on_selector_all(
        "#runs-table tbody tr", "rows => rows.map(r => r.dataset.run)")]  # fmt: skip


def test_a_request_without_the_token_is_refused(browser: Any, site: tuple[str, Any]) -> None:
    context = browser.new_context()
    page = context.new_page()
    response = page.goto(site[0] + "/e/demo")
    assert response.status == 403
    assert "missing or wrong access token" in page.content()
    context.close()


def test_runs_table_filter_sort_and_page(page: Any) -> None:
    page.click("text=demo")
    page.wait_for_selector("#runs-table tbody tr")
    assert row_ids(page) == list(range(1, 13))
    assert page.inner_text("#page-info") == "1–12 of 12 runs"
    page.fill("#filter", 'lr > 0.05 and status == "done"')
    page.press("#filter", "Enter")
    page.wait_for_function("document.querySelector('#page-info')?.textContent.includes('of 5 ')")
    assert row_ids(page) == [6, 7, 9, 10, 11]
    page.click("th[data-key='metric.loss']")
    page.wait_for_function("document.querySelector(\"th[data-key='metric.loss']\")"
                           ".classList.contains('sorted-asc')")  # fmt: skip
    assert row_ids(page) == [11, 10, 9, 7, 6]
    shot(page, "runs-table-filtered")
    page.fill("#filter", "lr >> 1")
    page.press("#filter", "Enter")
    page.wait_for_selector("#filter-error:has-text('bad query')")
    page.fill("#filter", "lrr > 0.05")  # a typo: the name beside it, at the filter box
    page.press("#filter", "Enter")
    page.wait_for_selector("#filter-error:has-text(\"did you mean 'lr'\")")
    assert "quote it" not in page.inner_text("#filter-error") and no_overflow(page)
    shot(page, "runs-table-filter-typo")
    page.fill("#filter", "")
    page.press("#filter", "Enter")
    page.select_option("#page-size", "25")
    page.wait_for_function(
        "document.querySelector('#page-info')?.textContent === '1–12 of 12 runs'"
    )


def test_open_a_run_and_see_its_chart(page: Any) -> None:
    page.click("text=demo")
    page.click("#runs-table a:text-is('2')")
    page.wait_for_selector("#charts canvas")
    box = page.locator("#charts canvas").first.bounding_box()
    assert box["width"] > 100 and box["height"] > 100
    assert "array float64 [2 × 3]" in page.inner_text("#fields")
    assert page.locator("#fields table.preview td").count() > 0
    page.click("summary:text('code')")
    page.wait_for_selector("details[open] pre:has-text('return x + 1')")
    assert page.locator("#artifacts a").count() == 0  # only run 1 has one
    shot(page, "run-page")


def test_compare_two_runs(page: Any) -> None:
    page.click("text=demo")
    page.wait_for_selector("#runs-table tbody tr")
    assert page.is_disabled("#compare-btn")
    page.check("tr[data-run='3'] input.pick")
    page.check("tr[data-run='9'] input.pick")
    page.click("#compare-btn")
    page.wait_for_selector("#charts canvas")
    assert page.url.endswith("/e/demo/compare?runs=3,9")
    assert page.locator("#compare-params tr.differs[data-name='lr']").count() == 1
    assert page.locator("#compare-params tr.differs[data-name='opt']").count() == 0
    assert "+    return x + 2" in page.inner_text("pre.diff")
    box = page.locator("#charts canvas").first.bounding_box()
    assert box["width"] > 100 and box["height"] > 100
    shot(page, "compare")


def test_live_status_changes_without_reloading(page: Any, site: tuple[str, Any]) -> None:
    store = site[1]
    exp_id = store.find_experiment("demo").id
    page.click("text=demo")
    page.wait_for_selector("#runs-table tbody tr")
    page.evaluate("window.__marker = 1")  # gone if the page reloads
    store.write_runs(exp_id, [RunRecord(13, status="running", started=time.time(),
                                        params={"lr": 0.5})])  # fmt: skip
    page.wait_for_selector("tr[data-run='13'] [data-status='running']")
    page.wait_for_selector("#live a:text('run 13')")
    shot(page, "live-running")
    store.write_runs(exp_id, [RunRecord(13, status="done", started=1.0, finished=2.0,
                                        params={"lr": 0.5})])  # fmt: skip
    page.wait_for_selector("tr[data-run='13'] [data-status='done']")
    page.wait_for_selector("#live:has-text('nothing running')")
    assert page.evaluate("window.__marker") == 1
    shot(page, "live-done")


def test_the_live_list_counts_what_waits_and_a_lost_run_is_failed(
    page: Any, site: tuple[str, Any]
) -> None:
    """Issue 18: 2 running runs listed, 300 pending counted ("300 waiting"), and a running run
    whose process stopped beating shows failed in the table and is not in the Live list."""
    store = site[1]
    exp_id = store.find_experiment("demo").id
    store.write_runs(exp_id, [
        RunRecord(i, status="running" if i < 16 else "pending", params={"lr": 0.5},
                  started=time.time() if i < 16 else None)
        for i in range(13, 316)
    ])  # fmt: skip
    store.update_meta(exp_id, {"live:gone": {"host": "n1", "pid": 7, "beat": 1.0, "runs": [15]}})
    page.click("text=demo")
    page.wait_for_selector("#live-waiting:has-text('300 waiting')")
    links = page.eval_on_selector_all("#live li a", "links => links.map(a => a.textContent)")
    assert links == ["run 13", "run 14"]
    assert page.inner_text("[data-count='failed']").split()[-1] == "4"  # 3 of fill, 1 lost
    assert page.inner_text("[data-count='pending']").split()[-1] == "300"
    page.fill("#filter", "run_id >= 13 and run_id <= 15")
    page.press("#filter", "Enter")
    page.wait_for_selector("tr[data-run='15'] [data-status='failed']")
    shot(page, "live-waiting-and-lost")


def test_scatter_and_job_graph_views(page: Any) -> None:
    page.click("text=demo")
    page.click("#tab-scatter")
    page.wait_for_selector("canvas#scatter")
    page.wait_for_function("document.querySelector('#axis-x').value === 'params.lr'")
    page.wait_for_selector("text=12 of 12 runs have numeric params.lr and metric.loss")
    shot(page, "scatter")
    page.click("#tab-graph")
    page.wait_for_selector("text=no jobs recorded for this experiment")


def test_job_graph_of_a_task_plan(browser: Any, tmp_path: Path) -> None:
    from test_web_api import Consume, Produce
    from trialbook import experiment, tag
    from trialbook.tasks import LocalLauncher, WebService

    location = str(tmp_path / "jobs-store")
    with experiment(tmp_path / "wd", "plan", launcher=LocalLauncher(n_workers=2),
                    store=location) as xp:  # fmt: skip
        xp.add_service(WebService("board", "http://127.0.0.1:6006", "TensorBoard"))
        Consume.C(upstream=Produce.C(x=tag(3)).submit()).submit()
    store = open_store(location)
    with serve(store, port=0, token=TOKEN) as server:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{server.port}/e/plan?token={TOKEN}#graph")
        page.wait_for_selector("#job-graph g.node[data-status='done']")
        assert page.locator("#job-graph g.node").count() == 2
        assert page.locator("#job-graph path[marker-end]").count() == 1
        assert page.get_attribute("#services a", "href") == "http://127.0.0.1:6006"
        shot(page, "job-graph")
        context.close()
    store.close()


def test_follow_the_log_of_a_running_job(browser: Any, tmp_path: Path) -> None:
    import threading

    from test_web_api import Produce, Waiting, wait_for
    from trialbook import experiment
    from trialbook.tasks import LocalLauncher

    location, signal = str(tmp_path / "jobs-store"), tmp_path / "go"

    def plan() -> None:
        for task in (Produce.C(x=7), Waiting.C(signal=str(signal))):
            with experiment(tmp_path / "wd", "live", launcher=LocalLauncher(n_workers=1),
                            store=location):  # fmt: skip
                task.submit()

    store = open_store(location)
    thread = threading.Thread(target=plan)
    thread.start()
    try:
        wait_for(lambda: store.find_experiment("live"))
        with serve(store, port=0, token=TOKEN) as server:
            context = browser.new_context()
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"http://127.0.0.1:{server.port}/e/live?token={TOKEN}")
            # the Waiting job's log (the Produce job before it may still be running)
            page.click("#live li:has([data-status='running']):has-text('test.web.waiting') "
                       "a:text('log')")  # fmt: skip
            page.wait_for_selector("pre#log:has-text('started')")
            shot(page, "job-log-running")
            signal.touch()
            page.wait_for_selector("pre#log:has-text('finished')")
            assert page.inner_text("pre#log") == "started\nfinished\n"
            page.wait_for_selector("#live:has-text('nothing running')")
            context.close()
    finally:
        signal.touch()
        thread.join(60)
        store.close()


@pytest.fixture
def artifact_site(tmp_path: Path) -> Iterator[str]:
    """A served store with the artifacts of test_web_files (run 1; run 2 has none)."""
    from test_web_files import fill_artifacts

    with open_store(tmp_path / "store") as store:
        fill_artifacts(store, tmp_path)
        with serve(store, port=0, token=TOKEN) as server:
            yield f"http://127.0.0.1:{server.port}"


def no_overflow(page: Any) -> bool:
    root = "document.documentElement"
    return bool(page.evaluate(f"{root}.scrollWidth <= {root}.clientWidth"))


def test_artifact_browser_tree_previews_model_and_empty_state(
    browser: Any, artifact_site: str
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(15_000)
    run = f"{artifact_site}/e/art%2F%C3%BC%20x/runs/1"
    page.goto(f"{run}?token={TOKEN}")
    page.wait_for_selector("#file-tree")
    tree = page.inner_text("#file-tree")
    for name in ("notes.txt", "config.json", "scores.csv", "plots/loss curve.png", "net/",
                 "layer één/", "w 1.bin", "model.json"):  # fmt: skip
        assert name in tree, name
    assert "16 B" in tree and "2.0 KiB" not in tree
    assert 'trialbook.load_model("trialbook:art/ü x/1/net")' in page.inner_text(".model")
    assert "sklearn · sklearn.linear_model.Ridge" in page.inner_text(".model")
    assert "python 3.12 · scikit-learn 1.5" in page.inner_text(".model")
    assert "persist/loss" in page.inner_text("#artifacts")  # stored values stay listed
    assert "artifact-chunk" not in page.inner_text("main")

    def pick(artifact: str, path: str = "") -> None:
        row = f".file[data-artifact='{artifact}'][data-path='{path}']"
        page.click(f"{row} button")
        page.wait_for_selector(f"#preview .preview-head:has-text('{path or artifact}')")

    pick("notes.txt")
    assert page.inner_text("#preview pre").strip() == "hello artifacts"
    pick("config.json")
    assert '"layers": [\n    64,' in page.inner_text("#preview pre")
    assert "null" not in page.inner_text("#preview")
    shot(page, "artifacts-json")
    pick("scores.csv")
    assert page.locator("#preview table tbody tr").count() == 20
    shot(page, "artifacts-csv")
    pick("plots/loss curve.png")
    page.wait_for_function(
        "document.querySelector('#preview img')?.complete && "
        "document.querySelector('#preview img').naturalWidth === 3"
    )
    assert no_overflow(page)
    shot(page, "artifacts-image")
    pick("train.log")
    assert "first part only" in page.inner_text("#preview")
    assert no_overflow(page)
    pick("net", "weights/layer één/w 1.bin")
    assert "no preview" in page.inner_text("#preview")
    href = page.get_attribute(".file[data-artifact='notes.txt'] a.download", "href")
    assert href.endswith("/files/notes.txt/download")
    page.click("details.folder[data-path='weights'] > summary")
    assert not page.is_visible("text=w 1.bin")
    shot(page, "artifacts-tree")
    page.goto(run.replace("/runs/1", "/runs/2"))
    page.wait_for_selector("#files .empty")
    assert "run.log_artifact(path)" in page.inner_text("#files")
    shot(page, "artifacts-empty")
    context.close()
    assert errors == []
