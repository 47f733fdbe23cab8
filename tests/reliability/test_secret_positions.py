"""Secrets wherever ``${VAR}`` is written, not only in password fields (issue 17, item 4).

Canaries: a token inside an HTTP url's path, a password in a URL's user-info (sent as
``Authorization: Basic base64(user:password)``, which the server echoes), a database name
marked secret in headwater.toml, a folder name, all on error paths (the server says 404 or
500, the database does not exist, the folder is missing), so that the error text really
holds the value. Every output (stdout, stderr, ``--json``), the state store, the docs site
and the OpenLineage file is scanned for each canary in every form it can take: as is,
URL-encoded, JSON-escaped, and base64 at every alignment (the Basic header). The other way
round: a short password that is also an ordinary word does not mask that word, and a
literal password in a dsn is refused without being repeated.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from headwater.core import secrets
from headwater.testing import write_project

from .helpers import cli

TOKEN = "tok-Q7VW9canary-path"
BASIC_PW = "pw-K3MN8canary-basic"
DBNAME = "db_canary_x7r2q9"
FOLDER = "dir-canary-5LP2Q"
ENV = {"HW_API_TOKEN": TOKEN, "HW_API_PASSWORD": BASIC_PW, "WAREHOUSE_DB": DBNAME,
       "EXPORT_FOLDER": FOLDER}
CANARIES = [TOKEN, BASIC_PW, DBNAME, FOLDER]


def needles(secret: str) -> set[str]:
    """The canary's forms, and its base64 inside ``user:secret`` for every user length."""
    out = {secret, urllib.parse.quote(secret, safe=""), json.dumps(secret)[1:-1]}
    for user in ("a", "ab", "api"):
        b64 = base64.b64encode(f"{user}:{secret}".encode()).decode()
        out.add(b64[4:-4])  # the part of the header only the secret decides
    return out


def leaks(text: str) -> list[str]:
    found = [c for c in CANARIES for n in needles(c) if n in text]
    # any base64 run that decodes to something holding a canary
    for run in re.findall(r"[A-Za-z0-9+/=_-]{12,}", text):
        for pad in ("", "=", "=="):
            try:
                decoded = base64.b64decode(run + pad, validate=False).decode("utf-8", "ignore")
            except ValueError:
                continue
            found += [c for c in CANARIES if c in decoded]
    return found


class Echo(BaseHTTPRequestHandler):
    """An API that echoes what it was sent in its error pages."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        body = (f"no such page {self.path}; you sent Authorization:"
                f" {self.headers.get('Authorization', '')}").encode()
        self.send_response(404 if "items" in self.path else 500)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def project(root: Path, port: int, pg: str) -> Path:
    base = pg.rsplit("/", 1)[0]
    return write_project(root, {
        "sources/items.toml": f'type = "http"\nurl = "http://127.0.0.1:{port}/v1/${{HW_API_TOKEN}}'
                              '/items"\nretries = 0\n',
        "sources/basic.toml": f'type = "http"\nurl = "http://api:${{HW_API_PASSWORD}}@127.0.0.1:'
                              f'{port}/v1/basic"\nretries = 0\n',
        "sources/warehouse.toml": f'type = "postgres"\ndsn = "{base}/${{WAREHOUSE_DB}}"\n'
                                  'table = "public.orders"\nretries = 0\n',
        "sources/exports.toml": 'type = "files"\npath = "data/${EXPORT_FOLDER}/*.csv"\n',
        "sources/fine.toml": 'type = "files"\npath = "data/fine.csv"\n',
        "data/fine.csv": "id\n1\n",
        "transforms/uses_items.sql": "SELECT * FROM items\n",
    }, config='secrets = ["WAREHOUSE_DB", "EXPORT_FOLDER"]\n'
              '\n[openlineage]\nfile = "target/openlineage.ndjson"\n')


def test_secrets_outside_password_fields_are_masked_everywhere(
        tmp_path: Path, echo_port: int, pg_dsn: str) -> None:
    root = project(tmp_path / "p", echo_port, pg_dsn)
    outputs: dict[str, str] = {}
    for args in (["run", "--json"], ["run"], ["plan"], ["plan", "--json"], ["docs"],
                 ["dag", "--format", "json"]):
        proc = cli(*args, "--project", str(root), env=ENV)
        assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
        outputs[" ".join(args)] = proc.stdout + proc.stderr
    run = json.loads(outputs["run --json"].splitlines()[0])
    nodes = {n["name"]: n for n in run["nodes"]}
    # the error paths really ran, and the errors are still useful
    assert nodes["fine"]["status"] == "executed"
    assert "404" in nodes["items"]["error"] and "***" in nodes["items"]["error"]
    assert "500" in nodes["basic"]["error"]
    assert nodes["warehouse"]["status"] == "failed"
    assert "does not exist" in nodes["warehouse"]["error"]
    assert "matches no files" in nodes["exports"]["error"]
    assert "data/***/*.csv" in nodes["exports"]["error"], nodes["exports"]["error"]
    assert nodes["uses_items"]["status"] == "skipped"
    con = sqlite3.connect(root / ".headwater/state.db")
    outputs["state.db"] = "\n".join(con.iterdump())
    con.close()
    for folder in ("target",):
        for f in (root / folder).rglob("*"):
            if f.is_file():
                outputs[str(f.relative_to(root))] = f.read_text("utf-8", "replace")
    assert any(k.startswith("target/docs") for k in outputs)
    assert "target/openlineage.ndjson" in outputs
    found = {where: leaks(text) for where, text in outputs.items()}
    assert not any(found.values()), {k: v for k, v in found.items() if v}


def test_a_short_password_that_is_a_word_masks_nothing_else(tmp_path: Path) -> None:
    """A password 'test' for the database 'test': the database name stays readable, and a
    warning says the password is too short to mask in free text."""
    root = write_project(tmp_path / "p", {
        "sources/pg.toml": 'type = "postgres"\nhost = "127.0.0.1"\nport = 1\nuser = "postgres"\n'
                           'password = "${HW_SHORT_PASSWORD}"\ndatabase = "test"\n'
                           'table = "public.test_orders"\nretries = 0\nconnect_timeout = 1\n',
    })
    proc = cli("run", "--project", str(root), env={"HW_SHORT_PASSWORD": "test"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "127.0.0.1:1/test" in out, out  # not 127.0.0.1:1/***
    assert "public.test_orders" in out or "test_orders" in out or "/test" in out
    assert "has only 4 characters" in out and "HW_SHORT_PASSWORD" in out, out


@pytest.mark.parametrize("line", [
    'dsn = "postgresql://postgres:hunter2-literal@127.0.0.1/test"',
    'dsn = "host=127.0.0.1 user=postgres password=hunter2-literal dbname=test"',
    'host = "127.0.0.1"\npassword = "hunter2-literal"',
])
def test_a_literal_password_is_refused_without_repeating_it(tmp_path: Path, line: str) -> None:
    root = write_project(tmp_path / "p", {
        "sources/pg.toml": f'type = "postgres"\n{line}\ntable = "public.t"\n'})
    for args in (["plan"], ["run", "--json"]):
        proc = cli(*args, "--project", str(root))
        out = proc.stdout + proc.stderr
        assert proc.returncode == 2, out
        assert "sources/pg.toml:" in out or '"path": "sources/pg.toml"' in out, out
        assert "environment variable" in out or "${VAR}" in out, out
        assert "hunter2" not in out, out


def test_every_form_of_a_secret_is_masked_and_nothing_else() -> None:
    secrets.forget()
    try:
        secrets.learn("HW_T", "p@ss/w:rd&canary")
        value = "p@ss/w:rd&canary"
        for user in ("", "a", "ab", "abc", "user"):
            header = base64.b64encode(f"{user}:{value}".encode()).decode()
            masked = secrets.redact(f"Authorization: Basic {header}")
            assert not leaks_value(masked, value), (user, masked)
        for form in (urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value),
                     json.dumps(value)[1:-1], base64.urlsafe_b64encode(value.encode()).decode()):
            assert secrets.redact(f"x {form} y") == "x *** y" or value not in \
                secrets.redact(f"x {form} y"), form
        plain = "the database test at 127.0.0.1 and the path data/p/ok.csv"
        assert secrets.redact(plain) == plain
    finally:
        secrets.forget()


def leaks_value(text: str, value: str) -> bool:
    for run in re.findall(r"[A-Za-z0-9+/=]{8,}", text):
        for pad in ("", "=", "=="):
            try:
                if value[2:-2] in base64.b64decode(run + pad).decode("utf-8", "ignore"):
                    return True
            except ValueError:
                continue
    return value in text


def test_is_secret_by_name_position_or_list() -> None:
    assert secrets.is_secret("PGPASSWORD")
    assert secrets.is_secret("SLACK_TOKEN")
    assert secrets.is_secret("HOST", "headers.X-Custom")
    assert secrets.is_secret("ANYTHING", "dsn (password)")
    assert secrets.is_secret("WEBHOOK", "notify.url")
    assert not secrets.is_secret("DB_HOST", "host")
    assert not secrets.is_secret("REGION", "url")
    secrets.mark(["REGION"])
    try:
        assert secrets.is_secret("REGION", "url")
    finally:
        secrets.forget()

