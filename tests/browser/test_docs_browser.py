"""The docs site in a real browser: headless Chromium driven by Playwright, from file:// URLs.

Needs Debian's chromium (``apt-get install -y chromium``) and the ``playwright``
Python package; never ``playwright install`` (no browser download). Every
request any page makes is recorded: all must be file:// URLs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
if not CHROMIUM.exists():  # pragma: no cover - CI installs it, where a skip fails the build
    pytest.skip(f"{CHROMIUM} missing: apt-get install -y chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from headwater import Project
    from headwater.scaffold import init_project

    root = tmp_path_factory.mktemp("browser") / "shop"
    init_project(root, rows=3000)
    project = Project(root)
    assert project.run().ok
    return project.docs().parent


class Session:
    """One browser page that records every request and every console error."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda req: self.requests.append(req.url))
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def open(self, path: Path) -> None:
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def session(browser: Any) -> Iterator[Session]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    s = Session(context.new_page())
    try:
        yield s
    finally:
        context.close()
    offsite = [u for u in s.requests if not u.startswith("file://")]
    assert offsite == [], f"requests left the page: {offsite}"
    assert s.errors == [], f"console errors: {s.errors}"


def view_box(page: Any) -> list[float]:
    return [float(x) for x in page.get_attribute("#dag", "viewBox").split()]


def test_graph_renders_pans_zooms_and_opens_a_node(session: Session, site: Path) -> None:
    page = session.page
    session.open(site / "index.html")
    nodes = page.locator("#dag .node")
    assert nodes.count() == len(list((site / "nodes").glob("*.html")))
    assert page.locator("#dag .edge").count() > 10
    box = page.locator("#dag").bounding_box()
    assert box and box["width"] > 600 and box["height"] > 300
    rect = page.locator('#dag .node[data-node="device_health_daily"] rect').bounding_box()
    assert rect and rect["width"] > 20  # laid out and visible

    before = view_box(page)
    page.mouse.move(box["x"] + 300, box["y"] + 200)
    page.mouse.wheel(0, -400)
    page.wait_for_timeout(100)
    zoomed = view_box(page)
    assert zoomed[2] < before[2]  # zoomed in: a narrower view
    page.mouse.move(box["x"] + 200, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + 320, box["y"] + 120, steps=5)
    page.mouse.up()
    panned = view_box(page)
    assert panned[0] < zoomed[0] and panned[2] == zoomed[2]

    page.click("#fit")
    page.check("input[name=colour][value=status]")
    assert "by-status" in (page.get_attribute("#dag", "class") or "")
    fill = page.eval_on_selector('#dag .node[data-node="telemetry"] rect',
                                 "r => getComputedStyle(r).fill")
    assert fill == "rgb(45, 164, 78)"  # ok = green when coloured by status

    page.click('#dag .node[data-node="device_health_daily"]')
    page.wait_for_url("**/nodes/device_health_daily.html")
    assert page.inner_text("h1").startswith("device_health_daily")


def test_search_finds_a_column(session: Session, site: Path) -> None:
    page = session.page
    session.open(site / "index.html")
    page.fill("#search", "battery_ok")
    assert page.locator("#results li").first.inner_text().startswith("nothing matches")
    page.fill("#search", "health_score")
    results = page.locator("#results li a")
    texts = [results.nth(i).inner_text() for i in range(results.count())]
    assert any("device_health_daily.health_score" in t for t in texts)
    page.locator("#results li a", has_text="device_health_daily.health_score").first.click()
    page.wait_for_url("**/nodes/device_health_daily.html#col-health_score")
    row = page.locator("#col-health_score")
    assert row.is_visible()
    assert "hl" in (row.get_attribute("class") or "")  # the column is highlighted
    assert page.locator("#lineage .ledge.hl").count() >= 3  # and its lineage followed


def test_node_page_shows_its_column_lineage(session: Session, site: Path) -> None:
    page = session.page
    session.open(site / "nodes" / "merchant_device_health.html")
    svg = page.locator("#lineage")
    assert svg.is_visible()
    assert page.locator('#lineage .lcol[data-ref="device_health_daily.health_score"]').count() == 1
    assert page.locator("#lineage .ledge").count() >= 9
    page.hover('#lineage .lcol[data-ref="merchant_device_health.avg_health_score"] rect')
    lit = page.locator("#lineage .ledge.hl")
    assert lit.count() >= 2  # from health_score, and on to merchant_scorecard
    sources = {lit.nth(i).get_attribute("data-from") for i in range(lit.count())}
    assert "device_health_daily.health_score" in sources
    assert page.locator("pre.hl .k").count() > 5  # highlighted SQL
    page.click('a.ref[href="device_health_daily.html#col-health_score"] >> nth=0')
    page.wait_for_url("**/device_health_daily.html#col-health_score")


def test_every_page_loads_offline(session: Session, site: Path) -> None:
    for path in sorted((site / "nodes").glob("*.html")):
        session.open(path)
        assert session.page.locator("h1").count() == 1
    assert all(u.startswith("file://") for u in session.requests)
    assert len(session.requests) >= 5 * len(list((site / "nodes").glob("*.html")))


def test_no_request_even_with_a_network(session: Session, site: Path, tmp_path: Path) -> None:
    """A copy served from anywhere behaves the same: the site names no remote resource."""
    copy = tmp_path / "copy"
    shutil.copytree(site, copy)
    session.open(copy / "index.html")
    session.page.fill("#search", "merchant")
    assert session.page.locator("#results li").count() > 3
