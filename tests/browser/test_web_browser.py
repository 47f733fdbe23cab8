"""`headwater serve` in a real browser: headless Chromium driven by Playwright.

Open the graph, open a node, start a run from its page, watch its status go to
done through the live event stream, and find the run in the runs timeline.
Needs Debian's chromium and the ``playwright`` package (never ``playwright
install``). Every request must stay on the server: the UI works offline.
Screenshots go to tests/.artifacts/.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent / ".artifacts"

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
pytest.importorskip("fastapi", reason="pip install 'headwater[web]'")
if not CHROMIUM.exists():  # pragma: no cover - CI installs it, where a skip fails the build
    pytest.skip(f"{CHROMIUM} missing: apt-get install -y chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`headwater serve --port 0` on a fresh demo project that was never run."""
    root = tmp_path_factory.mktemp("web-browser") / "shop"
    proc, url = start_serve(root, rows=5000, token=None)
    try:
        yield url
    finally:
        stop_serve(proc)


def start_serve(root: Path, *, rows: int, token: str | None) -> tuple[Any, str]:
    """`headwater init` a demo at ``root``, then `headwater serve --port 0` on it."""
    subprocess.run([sys.executable, "-m", "headwater.cli", "init", str(root), "--rows", str(rows)],
                   check=True, capture_output=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k != "HEADWATER_TOKEN"}
    if token is not None:
        env["HEADWATER_TOKEN"] = token
    proc = subprocess.Popen(
        [sys.executable, "-m", "headwater.cli", "serve", "--port", "0", "--project", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert " at http://127.0.0.1:" in line, line
    return proc, line.split(" at ", 1)[1].split()[0]


def stop_serve(proc: Any) -> str:
    """SIGINT, as at a terminal: it must exit cleanly; returns what it wrote to stderr."""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return str(err)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()
    offsite = [u for u in requests if not u.startswith(server)]
    assert offsite == [], f"requests left the server: {offsite}"
    assert errors == [], f"console errors: {errors}"


def view_box(page: Any) -> list[float]:
    return [float(x) for x in page.get_attribute("#dag", "viewBox").split()]


def shot(page: Any, name: str, full: bool = False) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"), full_page=full)


def test_graph_node_run_live_and_timeline(page: Any, server: str) -> None:
    expect = sync_api.expect
    # the graph: every node drawn, coloured by status (nothing built yet: stale)
    page.goto(server)
    nodes = page.locator("#dag .node")
    expect(nodes.first).to_be_visible()
    assert nodes.count() >= 15
    assert page.locator("#dag .edge").count() > 10
    node = page.locator('#dag .node[data-node="device_health_daily"]')
    assert node.get_attribute("data-status") == "stale"
    fill = page.eval_on_selector('#dag .node[data-node="device_health_daily"] rect.box',
                                 "r => getComputedStyle(r).fill")
    assert fill == "rgb(191, 135, 0)"  # stale = amber
    shot(page, "graph-before")

    # pan and zoom
    box = page.locator("#dag").bounding_box()
    before = view_box(page)
    page.mouse.move(box["x"] + 300, box["y"] + 200)
    page.mouse.wheel(0, -400)
    page.wait_for_timeout(100)
    zoomed = view_box(page)
    assert zoomed[2] < before[2]
    page.mouse.move(box["x"] + 40, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + 160, box["y"] + 120, steps=5)
    page.mouse.up()
    panned = view_box(page)
    assert panned[0] < zoomed[0] and panned[2] == zoomed[2]
    page.click("#fit")

    # open a node
    node.click()
    page.wait_for_url("**/nodes/device_health_daily")
    expect(page.locator("h1 .name")).to_have_text("device_health_daily")
    expect(page.locator("#status")).to_have_text("stale")
    expect(page.locator("#code .k").first).to_be_visible()  # highlighted SQL
    expect(page.locator("#preview .notice")).to_contain_text("has not been built")

    # run it with its upstream; the status follows the run live, without a reload
    page.click("#run-upstream")
    expect(page.locator("#live")).to_contain_text("run ")
    expect(page.locator("#status")).to_have_text("done", timeout=120_000)
    assert "rows in" in page.inner_text("#status-reason")
    expect(page.locator("#preview table tbody tr").first).to_be_visible()
    expect(page.locator("#preview table tbody tr")).to_have_count(100)
    expect(page.locator("#lineage-box svg .lcol").first).to_be_visible()
    expect(page.locator("#history tbody tr").first).to_contain_text("executed")
    expect(page.locator("#live")).to_contain_text("success")
    shot(page, "node", full=True)

    # the runs page: the run with a bar for the node in its timeline
    page.click('header nav a[data-nav="runs"]')
    page.wait_for_url("**/runs")
    bar = page.locator('#gantt .row[data-node="device_health_daily"] rect.bar')
    expect(bar).to_be_visible()
    assert float(bar.get_attribute("width") or 0) >= 2
    expect(page.locator("#timeline-title")).to_contain_text("success")
    expect(page.locator("#run-table tbody tr")).to_have_count(1)
    expect(page.locator("#gantt .row")).to_have_count(3)  # telemetry, stg_telemetry, the node
    shot(page, "runs")

    # back on the graph, what was built is fresh now
    page.goto(server)
    expect(page.locator('#dag .node[data-node="device_health_daily"]')).to_have_attribute(
        "data-status", "fresh")
    expect(page.locator('#dag .node[data-node="merchant_scorecard"]')).to_have_attribute(
        "data-status", "stale")
    shot(page, "graph-after")


def test_whole_project_run_from_the_graph_updates_live(page: Any, server: str) -> None:
    expect = sync_api.expect
    page.goto(server)
    expect(page.locator("#dag .node").first).to_be_visible()
    page.click("#run-all")
    # the graph turns fresh without reloading the page
    expect(page.locator('#dag .node[data-node="merchant_scorecard"]')).to_have_attribute(
        "data-status", "fresh", timeout=120_000)
    deadline = time.monotonic() + 30
    while page.locator('#dag .node:not([data-status="fresh"])').count():
        assert time.monotonic() < deadline, "some nodes stayed not fresh"
        page.wait_for_timeout(200)
    page.goto(server + "runs")
    expect(page.locator("#run-table tbody tr")).to_have_count(2)
    expect(page.locator("#gantt .row").first).to_be_visible()


def test_run_buttons_wait_for_the_run_in_progress(page: Any, server: str) -> None:
    expect = sync_api.expect
    page.goto(server + "nodes/stg_telemetry")
    expect(page.locator("#status")).to_have_text("fresh")
    page.check("#full-refresh")
    page.click("#run-downstream")
    expect(page.locator("#run-node")).to_be_disabled()  # no second run while one goes on
    expect(page.locator("#status")).to_have_text("done", timeout=60_000)
    expect(page.locator("#run-node")).to_be_enabled()
    expect(page.locator("#live")).to_contain_text("success")


def test_a_server_with_a_token_asks_once_then_works(browser: Any,
                                                    tmp_path_factory: pytest.TempPathFactory
                                                    ) -> None:
    """With a token, every page is the locked page (no project or node name) until the token
    is given; it is traded for a session cookie and then the graph and a node's data show;
    a wrong answer shows nothing."""
    expect = sync_api.expect
    token = "browser-token-5a4b3c2d1e"
    root = tmp_path_factory.mktemp("web-token") / "shop"
    proc, url = start_serve(root, rows=2000, token=token)
    try:
        for answer, works in (("wrong", False), (token, True)):
            context = browser.new_context()
            page = context.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d, seen=dialogs: (seen.append(d.message), d.dismiss()))
            page.set_default_timeout(30_000)
            page.goto(url + "nodes/stg_merchants")
            expect(page.locator("h1")).to_have_text("This server needs its token")
            assert "stg_merchants" not in page.content().split("<main>")[1]
            page.fill("#token", answer)
            page.click("#unlock button")
            if works:
                expect(page.locator("h1 .name")).to_have_text("stg_merchants")
                cookies = {c["name"]: c for c in context.cookies()}
                assert cookies["hw_session"]["httpOnly"] and token not in str(cookies)
                page.goto(url)  # the cookie carries on: no new question
                expect(page.locator("#dag .node").first).to_be_visible()
                assert page.locator("#dag .node").count() >= 15
            else:
                expect(page.locator("#unlock-error")).to_be_visible()
                assert page.locator("#dag .node").count() == 0
                assert "hw_session" not in {c["name"] for c in context.cookies()}
            assert dialogs == [], dialogs  # the form asks, never a prompt on top
            context.close()
    finally:
        assert token not in stop_serve(proc)
