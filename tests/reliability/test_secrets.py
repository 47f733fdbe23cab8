"""Secrets: a recognisable secret in the environment, used everywhere a secret can be,
must appear nowhere Headwater writes or shows anything.

The project uses ``${HW_SECRET}`` (and ``${HW_SECRET2}``, with characters URLs and
JSON escape) as an HTTP API's bearer token, as the password in Postgres dsns (one for
a role that does not exist: an error path), as a MySQL password (wrong: an error
path), as an S3 secret key (the endpoint is down: an error path), in the notify
webhook's URL and as the OpenLineage API key. Then every command is run — run (text
and JSON), plan, docs, lineage, test, dag, show, schedule --dry-run, a scheduled run
whose failure is notified, serve (every page and API answer, the event stream) — and
everything is scanned: captured stdout/stderr and logs, every table of the state
store (as text), every file under .headwater/ (the warehouse included) and target/
(the docs site, the OpenLineage events), the webhook bodies and the events the
OpenLineage receiver got. The expected count is zero.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from headwater import Project
from headwater.core.clock import FakeClock
from headwater.schedule.scheduler import Scheduler
from headwater.testing import write_project

from .helpers import PG_DSN, cli, finish, free_port, pg_reachable, start

pytestmark = pytest.mark.slow

SECRET = "s3cr3t-ZXQ-canary"
SECRET2 = "p@ss/w:rd&ZXQ\"canary2<>"
ENV = {"HW_SECRET": SECRET, "HW_SECRET2": SECRET2, "AWS_ACCESS_KEY_ID": "hwsecretskey",
       "AWS_DEFAULT_REGION": "us-east-1"}


def forms(secret: str) -> set[str]:
    """The ways a secret can be written down: as is, URL-quoted, JSON- and HTML-escaped."""
    import html

    return {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote(secret),
            urllib.parse.quote_plus(secret), json.dumps(secret)[1:-1], html.escape(secret)}


NEEDLES = sorted(forms(SECRET) | forms(SECRET2) | {"ZXQ-canary", "ZXQ\\\"canary", "ZXQ\"canary"})


class Receiver(BaseHTTPRequestHandler):
    """The project's HTTP API (wants the bearer token, leaks it in its error pages), the
    notify webhook and the OpenLineage endpoint, all in one; it records what it got."""

    got: list[tuple[str, str, bytes]] = []

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        auth = self.headers.get("Authorization", "")
        if self.path.startswith("/leaky"):  # an error page that echoes the credentials
            body = f"internal error while checking {auth} for {self.path}".encode()
            self.send_response(500)
        elif auth != f"Bearer {SECRET}":
            body = b"unauthorized"
            self.send_response(401)
        else:
            body = json.dumps({"data": [{"id": i, "amount": i * 5} for i in range(1, 4)]}
                              ).encode()
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        # webhooks and OpenLineage events: the URL or Authorization legitimately holds
        # the secret (that is where it is sent); the body must not
        type(self).got.append((self.path, self.headers.get("Authorization", ""), self._body()))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[type[Receiver], int]]:
    handler = type("R", (Receiver,), {"got": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield handler, server.server_address[1]
    server.shutdown()
    server.server_close()


def secret_project(root: Path, port: int, *, refused: bool = False) -> Path:
    """The project; with ``refused``, also the sources whose server refuses the credentials
    (a role that does not exist, a wrong MySQL password): those stop planning at once."""
    mysql_port, dead = 3306, free_port()
    api = f"http://127.0.0.1:{port}"
    files = {
        "sources/orders.toml": f'type = "http"\nurl = "{api}/orders"\nrecords = "data"\n'
                               'headers = { Authorization = "Bearer ${HW_SECRET}" }\n'
                               "retries = 1\nretry_delay = 0.01\n",
        "sources/leaky.toml": f'type = "http"\nurl = "{api}/leaky?token=${{HW_SECRET}}"\n'
                              'headers = { Authorization = "Bearer ${HW_SECRET}",'
                              ' X-Api-Key = "${HW_SECRET2}" }\nretries = 0\n',
        "sources/ghost.toml": None if not refused else 'type = "postgres"\n'
                              'dsn = "postgresql://hw_no_such_role:${HW_SECRET}@127.0.0.1:5432/test"\n'
                              'table = "public.nothing"\nretries = 0\n',
        "sources/pg_ok.toml": 'type = "postgres"\nhost = "127.0.0.1"\nuser = "postgres"\n'
                              'password = "${HW_SECRET2}"\ndatabase = "test"\n'
                              'query = "SELECT 1 AS one"\n',
        "sources/customers.toml": None if not refused else (
            f'type = "mysql"\nhost = "127.0.0.1"\nport = {mysql_port}\nuser = "root"\n'
            'password = "${HW_SECRET2}"\ndatabase = "test"\ntable = "customers"\nretries = 0\n'),
        "sources/bucket.toml": 'type = "files"\npath = "s3://hw-secret/data/*.csv"\n'
                               f'endpoint_url = "http://127.0.0.1:{dead}"\n'
                               'secret_access_key = "${HW_SECRET}"\n'
                               'access_key_id = "${AWS_ACCESS_KEY_ID}"\nretries = 0\n',
        "transforms/order_totals.sql": "-- Totals.\n-- @check: not_null(n)\n"
                                       "SELECT count(*) AS n, sum(amount) AS total FROM orders\n",
        "transforms/ones.sql": "SELECT one FROM pg_ok\n",
        "sinks/totals_out.toml": 'type = "files"\nfrom = "order_totals"\n'
                                 'path = "target/out/totals.csv"\n',
    }
    config = (f'\n[notify]\nurl = "{api}/hook/${{HW_SECRET}}"\non = ["failure", "success"]\n'
              f'\n[openlineage]\nurl = "{api}"\napi_key = "${{HW_SECRET}}"\n'
              'file = "target/openlineage.ndjson"\n'
              '\n[[schedules]]\nname = "hourly"\ncron = "0 * * * *"\n')
    return write_project(root, {k: v for k, v in files.items() if v is not None},
                         config=config)


def scan(where: str, data: str | bytes, found: list[str]) -> None:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "replace")
    for needle in NEEDLES:
        if needle in text or needle.encode() in raw:
            found.append(f"{where}: {needle!r}")


def state_dump(db: Path) -> str:
    con = sqlite3.connect(str(db))
    try:
        return "\n".join(con.iterdump())
    finally:
        con.close()


@pytest.fixture(scope="module")
def artefacts(receiver: tuple[type[Receiver], int], tmp_path_factory: pytest.TempPathFactory,
              ) -> dict[str, str | bytes]:
    """Run everything with the secrets set; return every output, file and request body."""
    handler, port = receiver
    problem = pg_reachable(PG_DSN)
    if problem:
        pytest.skip(f"PostgreSQL is not reachable at {PG_DSN}: {problem}")
    root = secret_project(tmp_path_factory.mktemp("secrets") / "p", port)
    out: dict[str, str | bytes] = {}

    def run(*args: str) -> None:
        proc = cli(*args, "--project", str(root), env=ENV)
        out[f"$ headwater {' '.join(args)} (stdout)"] = proc.stdout
        out[f"$ headwater {' '.join(args)} (stderr)"] = proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr

    refused = secret_project(tmp_path_factory.mktemp("refused") / "p", port, refused=True)
    for args in (["run"], ["run", "--json"], ["plan"], ["docs"], ["test"]):
        proc = cli(*args, "--project", str(refused), env=ENV)
        out[f"$ headwater {' '.join(args)} (refused credentials, stdout)"] = proc.stdout
        out[f"$ headwater {' '.join(args)} (refused credentials, stderr)"] = proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr

    run("run", "--json")
    run("run")
    run("run", "--full-refresh", "--select", "order_totals")
    run("plan")
    run("plan", "--json")
    run("docs")
    run("lineage", "order_totals.total")
    run("lineage", "order_totals", "--format", "json")
    run("test")
    run("dag", "--format", "json")
    run("show", "order_totals")
    run("query", "SELECT * FROM order_totals", "--format", "json")
    run("schedule", "--dry-run")
    run("schedule", "--dry-run", "--json")
    run("gc", "--dry-run")

    # a scheduled run with failures (ghost, leaky, customers, bucket): notified
    log = io.StringIO()
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    try:
        clock = FakeClock(datetime(2026, 1, 1, 9, 30, tzinfo=UTC))
        scheduler = Scheduler(Project(root), clock, stream=log, log_format="json")
        scheduler.tick()
        clock.set(datetime(2026, 1, 1, 10, 0, tzinfo=UTC))
        scheduler.tick()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    out["scheduler log (json lines)"] = log.getvalue()
    # the secrets really were used: in the webhook's URL, the OpenLineage Authorization
    assert any(p == f"/hook/{SECRET}" for p, _, _ in handler.got), "no webhook was sent"
    assert any(auth == f"Bearer {SECRET}" for p, auth, _ in handler.got
               if not p.startswith("/hook/")), "no OpenLineage event carried the key"

    # the web UI, every page and API answer
    web_port = free_port()
    server = start("serve", "--port", str(web_port), "--project", str(root), env=ENV)
    base = f"http://127.0.0.1:{web_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/api/info", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "serve failed"
                time.sleep(0.1)
        paths = ["/", "/runs", "/api/info", "/api/graph", "/api/plan", "/api/runs",
                 "/api/runs/current", "/api/openapi.json", "/assets/pygments.css"]
        graph = httpx.get(base + "/api/graph", timeout=30).json()
        assert "nodes" in graph, graph
        for node in graph["nodes"]:
            name = urllib.parse.quote(node["name"])
            paths += [f"/nodes/{name}", f"/api/nodes/{name}", f"/api/nodes/{name}/preview"]
        for r in httpx.get(base + "/api/runs", timeout=30).json():
            paths += [f"/runs/{r['run_id']}", f"/api/runs/{r['run_id']}"]
        started = httpx.post(base + "/api/runs", json={}, headers={"Origin": base}, timeout=60)
        out["POST /api/runs"] = started.text
        with httpx.stream("GET", base + "/api/events", timeout=30) as events:
            chunks = []
            end = time.monotonic() + 20
            for chunk in events.iter_text():
                chunks.append(chunk)
                if "run_finished" in chunk or time.monotonic() > end:
                    break
            out["GET /api/events"] = "".join(chunks)
        for path in paths:
            r = httpx.get(base + path, timeout=60)
            out[f"GET {path} ({r.status_code})"] = r.content
            assert r.status_code < 500, (path, r.text[:300])
    finally:
        server.terminate()
        _, sout, serr = finish(server, timeout=60)
        out["$ headwater serve (stdout)"], out["$ headwater serve (stderr)"] = sout, serr

    for name, project in (("", root), ("refused: ", refused)):
        out[f"{name}state.db (every table, as SQL text)"] = state_dump(
            project / ".headwater/state.db")
        for folder in (".headwater", "target"):
            for f in sorted((project / folder).rglob("*")):
                if f.is_file():
                    out[name + str(f.relative_to(project))] = f.read_bytes()
    for path, _auth, body in handler.got:
        kind = "webhook" if path.startswith("/hook/") else "openlineage event"
        out[f"{kind} body POSTed to {path.split('/')[1]}"] = body
    assert (root / "target/openlineage.ndjson").is_file()
    assert (root / "target/docs/index.html").is_file()
    return out


def test_no_secret_anywhere(artefacts: dict[str, str | bytes]) -> None:
    found: list[str] = []
    for where, data in artefacts.items():
        scan(where, data, found)
    out = os.environ.get("HW_RELIABILITY_OUT")  # tests/reliability/report.py reads it
    if out:
        Path(out).write_text(json.dumps({
            "artefacts": len(artefacts), "bytes": sum(len(v) for v in artefacts.values()),
            "needles": len(NEEDLES), "occurrences": len(found), "where": found}))
    assert found == [], "secret found in:\n" + "\n".join(found)
    assert len(artefacts) > 60  # what was scanned: outputs, files, pages, requests


def test_the_error_paths_really_ran(artefacts: dict[str, str | bytes]) -> None:
    """The scan means something only if the secrets were used and the errors happened."""
    err = str(artefacts["$ headwater run --json (stdout)"])
    nodes = {n["name"]: n for n in json.loads(err)["nodes"]}
    assert nodes["orders"]["status"] == "executed"  # the bearer token worked
    assert nodes["pg_ok"]["status"] == "executed"  # the password was sent
    assert "500" in nodes["leaky"]["error"]  # the leaky error page was read
    assert nodes["bucket"]["status"] == "failed"  # the S3 endpoint is down
    refused = str(artefacts["$ headwater run (refused credentials, stderr)"])
    assert "hw_no_such_role" in refused or "Access denied" in refused, refused
    log = str(artefacts["scheduler log (json lines)"])
    assert "notif" in log.lower() or "webhook" in log.lower()


def test_masked_not_missing(artefacts: dict[str, str | bytes]) -> None:
    """Where a secret would be, the reference or a mask is shown instead."""
    page = artefacts["target/docs/index.html"]
    docs_text = b"".join(v for k, v in artefacts.items()
                         if k.startswith("target/docs") and isinstance(v, bytes))
    assert b"${HW_SECRET}" in docs_text or b"HW_SECRET" in docs_text, "config not documented"
    assert page
