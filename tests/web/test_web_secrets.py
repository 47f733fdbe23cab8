"""No secret value in any response: every page, every API answer, the event stream.

The project reads an HTTP API whose key comes from the environment (``${VAR}``
in its source TOML); the API even echoes the key back inside its records, so the
value reaches the warehouse, previews, run history. The server is crawled after
a run it started itself, and no response may contain the value.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from headwater import Project
from headwater.web.server import Background

SECRET = "hw-S3CRET-0a1b2c3d4e5f<&>\"q"  # characters that JSON and HTML escape, too
API_KEY = "k3y-9988776655"
TOKEN = "tok-00112233445566778899"


class EchoApi(BaseHTTPRequestHandler):
    """Returns records only to the right bearer token, and echoes it back (a leaky API)."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        auth = self.headers.get("Authorization", "")
        if auth != f"Bearer {SECRET}":
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps({"data": [
            {"id": i, "name": f"order {i}", "echo": auth, "path": self.path} for i in range(5)
        ]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def secret_project(tmp_path: Path, api: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HW_WEB_SECRET", SECRET)
    monkeypatch.setenv("HW_WEB_API_KEY", API_KEY)
    root = tmp_path / "secretive"
    (root / "sources").mkdir(parents=True)
    (root / "transforms").mkdir()
    (root / "headwater.toml").write_text('name = "secretive"\n')
    (root / "sources" / "orders.toml").write_text(f'''
type = "http"
description = "Orders from the vendor API."
url = "{api}/orders"
records = "data"
headers = {{ Authorization = "Bearer ${{HW_WEB_SECRET}}" }}
params = {{ api_key = "${{HW_WEB_API_KEY}}" }}
''')
    (root / "sources" / "broken.toml").write_text(f'''
type = "http"
description = "The same API with a wrong key: fails, and its error is shown."
url = "{api}/orders"
records = "data"
headers = {{ Authorization = "Token ${{HW_WEB_API_KEY}}" }}
retries = 0
''')
    (root / "transforms" / "order_names.sql").write_text(
        "-- Names of orders.\nSELECT id, name, echo FROM orders\n")
    return root


def crawl(base: str, client: httpx.Client) -> dict[str, str]:
    """Every GET the UI can make: pages, assets, the whole API; url -> body."""
    seen: dict[str, str] = {}

    def get(path: str) -> Any:
        r = client.get(base + path)
        seen[path] = r.text
        return r

    spec = get("api/openapi.json").json()
    graph = get("api/graph").json()
    names = [n["name"] for n in graph["nodes"]]
    assert {"orders", "broken", "order_names"} <= set(names)
    runs = get("api/runs?limit=200").json()
    for template, op in spec["paths"].items():
        if "get" not in op or template == "/api/events":
            continue
        if "{name}" in template:
            for n in names:
                get(template.lstrip("/").replace("{name}", n))
        elif "{run_id}" in template:
            for r in runs:
                get(template.lstrip("/").replace("{run_id}", r["run_id"]))
        else:
            get(template.lstrip("/"))
    pages = ["", "runs", *[f"runs/{r['run_id']}" for r in runs], *[f"nodes/{n}" for n in names]]
    for page in pages:
        get(page)
    for asset in ["static/common.js", "static/graph.js", "static/node.js", "static/runs.js",
                  "static/app.css", "assets/pygments.css", "assets/shared.css",
                  "assets/shared.js"]:
        get(asset)
    get("api/nodes/nope")  # errors too
    get("api/runs/nope")
    return seen


def test_no_secret_in_any_response(secret_project: Path) -> None:
    events: list[str] = []
    with Background(Project(secret_project), token=TOKEN) as ui:
        ready = threading.Event()

        def listen() -> None:
            with httpx.stream("GET", ui.url + "api/events", timeout=60,
                              headers={"X-Headwater-Token": TOKEN}) as resp:
                last = False
                for line in resp.iter_lines():
                    events.append(line)
                    ready.set()
                    if line.startswith(("event: run_finished", "event: run_error")):
                        last = True
                    elif last and line.startswith("data:"):
                        return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert ready.wait(10)
        with httpx.Client(timeout=30, headers={"X-Headwater-Token": TOKEN}) as client:
            r = client.post(ui.url + "api/runs", json={})
            assert r.status_code == 202, r.text
            listener.join(60)
            assert not listener.is_alive()
            ui.app.state.web.manager.join(60)
            bodies = crawl(ui.url, client)
            # the run happened, with the secret, and the data got through
            preview = json.loads(bodies["api/nodes/order_names/preview"])
            assert len(preview["rows"]) == 5
            assert preview["rows"][0][2] == "Bearer ***"  # the echoed key, blanked out
            broken = json.loads(bodies["api/nodes/broken"])
            assert broken["status"] == "failed" and broken["history"][0]["error"]
            orders = json.loads(bodies["api/nodes/orders"])
            config = {c["key"]: c["value"] for c in orders["config"]}
            # a reference is shown as written, or the whole value hidden; never resolved
            assert config["headers.Authorization"] in ("Bearer ${HW_WEB_SECRET}",
                                                       "•••••• (hidden)")
            assert config["params.api_key"] == "${HW_WEB_API_KEY}"
    everything = {**bodies, "events": "\n".join(events)}
    assert any("run_finished" in line for line in events)
    needles = {SECRET, API_KEY, TOKEN, json.dumps(SECRET)[1:-1],
               SECRET.replace("<", "&lt;").replace(">", "&gt;").replace("&", "&amp;"),
               "S3CRET-0a1b2c3d4e5f"}
    leaks = [(url, n) for url, body in everything.items() for n in needles if n in body]
    assert leaks == []
    assert len(everything) > 20
