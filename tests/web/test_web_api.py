"""The JSON API and pages of `headwater serve`, in process, against a built demo project."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
SVG_NS = "http://www.w3.org/2000/svg"
REMOTE = re.compile(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", re.IGNORECASE)  # any absolute URL


def statuses(client: TestClient) -> dict[str, str]:
    graph = client.get("/api/graph").json()
    return {n["name"]: n["status"] for n in graph["nodes"]}


def test_info_and_openapi(client: TestClient) -> None:
    info = client.get("/api/info").json()
    assert info["name"] == "shop" and info["env"] == "prod"
    assert info["token_required"] is False and info["run"] is None
    spec = client.get("/api/openapi.json").json()
    paths = set(spec["paths"])
    assert {"/api/graph", "/api/nodes/{name}", "/api/nodes/{name}/preview", "/api/runs",
            "/api/runs/{run_id}", "/api/events", "/api/info", "/api/plan"} <= paths
    assert "post" in spec["paths"]["/api/runs"]
    assert not any(p.startswith("/nodes") or p == "/" for p in paths)  # pages are not API


def test_graph_after_a_full_run_is_fresh_with_a_layout(client: TestClient) -> None:
    graph = client.get("/api/graph").json()
    names = [n["name"] for n in graph["nodes"]]
    assert "device_health_daily" in names and "slow_merchants" in names
    assert {n["status"] for n in graph["nodes"]} == {"fresh"}
    assert graph["counts"]["fresh"] == len(names)
    edges = {(e["from"], e["to"]) for e in graph["edges"]}
    assert ("stg_telemetry", "device_health_daily") in edges
    assert all(e["d"].startswith("M") for e in graph["edges"])
    telemetry = next(n for n in graph["nodes"] if n["name"] == "telemetry")
    assert telemetry["rows"] == 1000 and telemetry["last_run"]["status"] == "executed"
    assert telemetry["x"] < next(n for n in graph["nodes"]
                                 if n["name"] == "device_health_daily")["x"]


def test_edit_makes_a_node_and_its_downstream_stale(client: TestClient, demo: Path) -> None:
    sql = demo / "transforms" / "device_health_daily.sql"
    sql.write_text(sql.read_text().replace("SELECT", "SELECT 1 AS edited,", 1))
    client.app.state.web.view.invalidate()  # type: ignore[attr-defined]
    s = statuses(client)
    assert s["device_health_daily"] == "stale"
    assert s["merchant_device_health"] == "stale"
    assert s["stg_telemetry"] == "fresh"
    node = client.get("/api/nodes/device_health_daily").json()
    assert node["status"] == "stale" and "code changed" in node["reason"]


def test_failed_node_is_failed_and_says_why(client: TestClient, demo: Path,
                                            wait_idle: Any) -> None:
    (demo / "transforms" / "merchant_scorecard.sql").write_text(
        "-- Broken on purpose.\nSELECT CAST('x' AS INTEGER) AS boom FROM merchant_loyalty_stats\n")
    r = client.post("/api/runs", json={"select": "merchant_scorecard"})
    assert r.status_code == 202, r.text
    job = wait_idle(client)
    assert job["status"] == "failed"
    node = client.get("/api/nodes/merchant_scorecard").json()
    assert node["status"] == "failed"
    assert "Conversion Error" in node["reason"] or "convert" in node["reason"].lower()
    assert node["history"][0]["status"] == "failed"
    assert statuses(client)["merchant_scorecard"] == "failed"


def test_node_page_data(client: TestClient) -> None:
    node = client.get("/api/nodes/merchant_device_health").json()
    assert node["kind"] == "sql" and node["path"] == "transforms/merchant_device_health.sql"
    assert node["description"].startswith("Terminal fleet health")
    assert '<span class="k">SELECT</span>' in node["code"]["html"]  # highlighted by Pygments
    cols = {c["name"]: c for c in node["columns"]}
    assert {"node": "device_health_daily", "column": "health_score",
            "transform": "aggregation", "exact": True} in cols["avg_health_score"]["inputs"]
    assert node["lineage_svg"].startswith("<svg") and 'data-ref="device_health_daily.' \
        in node["lineage_svg"]
    assert node["upstream"] and node["downstream"] == ["merchant_scorecard"]
    assert node["history"][0]["status"] == "executed" and node["history"][0]["rows"] > 0
    assert node["history"][0]["seconds"] is not None
    assert node["table"]["rows"] == node["history"][0]["rows"]


def test_node_with_checks_shows_their_last_results(client: TestClient) -> None:
    checks = {c["name"]: c for c in client.get("/api/nodes/stg_merchants").json()["checks"]}
    assert set(checks) == {"not_null(merchant_id)", "unique(merchant_id)"}
    assert {c["status"] for c in checks.values()} == {"pass"}
    assert all(c["at"] and c["failing_rows"] == 0 for c in checks.values())


def test_source_shows_config_not_code(client: TestClient) -> None:
    node = client.get("/api/nodes/telemetry").json()
    assert node["kind"] == "source" and node["code"]["text"] == ""
    config = {c["key"]: c["value"] for c in node["config"]}
    assert config["type"] == "files" and config["path"].endswith(".ndjson")


def test_unknown_node_is_404_with_a_suggestion(client: TestClient) -> None:
    r = client.get("/api/nodes/device_health_dialy")
    assert r.status_code == 404
    assert "device_health_daily" in (r.json()["hint"] or "")
    page = client.get("/nodes/nope")
    assert page.status_code == 404 and "no node named" in page.text


def test_docs_page_names_resolve(client: TestClient) -> None:
    """The lineage picture links to docs-style page names (NAME.html); they resolve."""
    assert client.get("/api/nodes/device_health_daily.html").json()["name"] == \
        "device_health_daily"
    assert client.get("/nodes/device_health_daily.html").status_code == 200


def test_preview_first_rows(client: TestClient) -> None:
    p = client.get("/api/nodes/stg_merchants/preview").json()
    assert p["limit"] == 100 and len(p["rows"]) <= 100
    assert "merchant_id" in [c["name"] for c in p["columns"]]
    assert all(len(r) == len(p["columns"]) for r in p["rows"])
    small = client.get("/api/nodes/telemetry/preview", params={"limit": 5}).json()
    assert len(small["rows"]) == 5 and small["truncated"]
    assert client.get("/api/nodes/telemetry/preview", params={"limit": 500}).status_code == 422
    json.dumps(small)  # every cell JSON-encodable (dates, decimals ...)


def test_preview_of_a_sink_or_unbuilt_node(client: TestClient, demo: Path) -> None:
    r = client.get("/api/nodes/device_health_export/preview")
    assert r.status_code == 404 and "sink" in r.json()["error"]
    (demo / "transforms" / "new_node.sql").write_text("SELECT 1 AS x FROM stg_merchants\n")
    client.app.state.web.view.invalidate()  # type: ignore[attr-defined]
    r = client.get("/api/nodes/new_node/preview")
    assert r.status_code == 404 and "has not been built" in r.json()["error"]


def test_run_a_node_with_upstream_then_see_it_in_history(client: TestClient,
                                                         wait_idle: Any) -> None:
    r = client.post("/api/runs", json={"select": "+stg_merchants", "full_refresh": True})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["run_id"] and job["select"] == "+stg_merchants"
    assert {n["name"] for n in job["nodes"]} == {"merchants", "devices", "stg_merchants"}
    done = wait_idle(client)
    assert done["status"] == "success"
    assert {n["state"] for n in done["nodes"]} <= {"done", "skipped"}
    runs = client.get("/api/runs").json()
    assert runs[0]["run_id"] == job["run_id"] and runs[0]["selection"] == "--select +stg_merchants"
    detail = client.get(f"/api/runs/{job['run_id']}").json()
    built = [n for n in detail["nodes"] if n["status"] == "executed"]
    assert built and all(n["started_at"] and n["ended_at"] for n in built)
    assert client.get("/api/runs/current").json()["run_id"] == job["run_id"]
    assert client.get("/api/runs/nope").status_code == 404


def test_bad_selection_is_refused_at_once(client: TestClient) -> None:
    r = client.post("/api/runs", json={"select": "no_such_node"})
    assert r.status_code == 404
    assert "no_such_node" in r.json()["error"]
    assert client.post("/api/runs", json={"select": 3}).status_code == 422
    assert client.post("/api/runs", json={"bogus": True}).status_code == 422


def test_second_run_and_previews_while_a_run_goes_on(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, wait_idle: Any
) -> None:
    monkeypatch.setenv("HW_TEST_SLOW", "3")
    r = client.post("/api/runs", json={"select": "slow_merchants", "full_refresh": True})
    assert r.status_code == 202
    again = client.post("/api/runs", json={})
    assert again.status_code == 409
    assert "already in progress" in again.json()["error"]
    t0 = time.monotonic()
    busy = client.get("/api/nodes/telemetry/preview")
    assert busy.status_code == 409 and time.monotonic() - t0 < 2  # refused, not waiting
    assert busy.json()["error"] == "the warehouse is busy: a run is in progress"
    assert busy.headers["retry-after"]
    g = client.get("/api/graph").json()  # reading the state store is fine meanwhile
    assert {n["name"]: n["status"] for n in g["nodes"]}["slow_merchants"] == "running"
    assert g["run"]["status"] == "running"
    wait_idle(client)
    assert client.get("/api/nodes/telemetry/preview").status_code == 200


def test_another_process_holding_the_project_gives_409(client: TestClient, demo: Path) -> None:
    from headwater.run.lock import ProjectLock

    lock = ProjectLock(demo / ".headwater" / "run.lock")
    lock.acquire()
    try:
        r = client.post("/api/runs", json={})
        assert r.status_code == 409
        assert "another run is in progress" in r.json()["error"]
    finally:
        lock.release()


def test_pages_are_served_with_their_own_assets(client: TestClient) -> None:
    for path in ("/", "/nodes/device_health_daily", "/runs", "/runs/abc"):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in r.headers["content-security-policy"]
        for ref in ("/assets/shared.js", "/static/common.js", "/assets/shared.css",
                    "/static/app.css"):
            assert ref in r.text
        # the shared files first: the UI's own build on them
        assert r.text.index("/assets/shared.css") < r.text.index("/static/app.css")
        assert r.text.index("/assets/shared.js") < r.text.index("/static/common.js")
        assert not REMOTE.search(r.text.replace(SVG_NS, "")), path
    for asset in ("common.js", "graph.js", "node.js", "runs.js", "app.css", "favicon.svg",
                  "missing.js"):
        r = client.get(f"/static/{asset}")
        assert r.status_code == 200, asset
        assert not REMOTE.search(r.text.replace(SVG_NS, "")), asset
    assert "pre.hl" in client.get("/assets/pygments.css").text
    assert client.get("/docs").status_code == 404  # Swagger UI would load a CDN


def test_the_files_shared_with_the_docs_site_are_served_as_they_are(client: TestClient) -> None:
    """/assets/shared.* are the docs site's own files, byte for byte, under the same rules
    (CSP, nosniff, a type a browser runs) as /static/; the docs-only files are not served."""
    from headwater.docs import ASSETS

    for name, kind in (("shared.css", "text/css"), ("shared.js", "text/javascript")):
        r = client.get(f"/assets/{name}")
        assert r.status_code == 200, name
        assert r.headers["content-type"].startswith(kind)
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.content == (ASSETS / name).read_bytes()
        assert int(r.headers["content-length"]) == len(r.content)
    for name in ("style.css", "app.js"):
        assert client.get(f"/assets/{name}").status_code == 404


def test_event_stream_follows_a_run(live_server: Any) -> None:
    """Live progress over a real connection: hello, run_started, node events, run_finished."""
    events: list[tuple[str, dict[str, Any]]] = []
    connected = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", live_server.url + "api/events", timeout=30) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            kind = None
            for line in resp.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind:
                    events.append((kind, json.loads(line[6:])))
                    if kind == "hello":
                        connected.set()
                    if kind in ("run_finished", "run_error"):
                        return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    assert connected.wait(10)
    r = httpx.post(live_server.url + "api/runs", json={"select": "+stg_merchants",
                                                        "full_refresh": True}, timeout=30)
    assert r.status_code == 202, r.text
    t.join(30)
    kinds = [k for k, _ in events]
    assert kinds[0] == "hello" and "run_started" in kinds and kinds[-1] == "run_finished"
    started = [d["name"] for k, d in events if k == "node_started"]
    finished = {d["name"]: d for k, d in events if k == "node_finished"}
    assert "merchants" in started and finished["merchants"]["state"] == "done"
    assert finished["merchants"]["rows"] > 0
    assert events[-1][1]["status"] == "success"


def test_preview_while_another_process_writes_says_busy(client: TestClient, demo: Path) -> None:
    """A CLI run elsewhere holds the DuckDB file: the preview says so at once."""
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time\n"
         f"c = duckdb.connect({str(demo / '.headwater' / 'warehouse.duckdb')!r})\n"
         "print('holding', flush=True)\ntime.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        t0 = time.monotonic()
        r = client.get("/api/nodes/stg_merchants/preview")
        assert r.status_code == 409 and time.monotonic() - t0 < 5
        assert r.json()["error"].startswith("the warehouse is busy: a run is in progress")
        assert client.get("/api/graph").status_code == 200  # the rest still works
    finally:
        holder.kill()
        holder.communicate()
