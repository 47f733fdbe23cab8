"""Who may use the server: the bind rule, the token, cross-site requests, the Host header."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from headwater.web.security import (
    AccessDenied,
    ServeError,
    check_bind,
    check_write,
    host_allowed,
    is_loopback,
    trusted_hosts_for,
)

TOKEN = "tok-9f8e7d6c5b4a39281706"
RUN = {"select": "stg_merchants"}


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_needs_no_token(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.com", "10.0.0.1"])
def test_anything_else_needs_a_token(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ServeError, match="without a token") as err:
        check_bind(host, None)
    assert "HEADWATER_TOKEN" in (err.value.hint or "")
    check_bind(host, TOKEN)  # with one it may
    with pytest.raises(ServeError, match="15-character token"):
        check_bind(host, "x" * 15)  # a guessable one is refused
    check_bind(host, "x" * 16)


def test_a_short_token_is_fine_on_the_loopback() -> None:
    check_bind("127.0.0.1", "short")


def test_trusted_hosts() -> None:
    assert trusted_hosts_for("0.0.0.0") is None  # names unknown: the token protects it
    loop = trusted_hosts_for("127.0.0.1")
    assert loop is not None
    for ok in ("127.0.0.1:8580", "localhost:8580", "[::1]:8580", "localhost"):
        assert host_allowed(ok, loop), ok
    for bad in ("evil.example:8580", "127.0.0.1.evil.example", "", None, "attacker:80"):
        assert not host_allowed(bad, loop), bad


def test_serve_refuses_a_public_address_without_a_token(demo: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HEADWATER_TOKEN"}
    proc = subprocess.run(
        [sys.executable, "-m", "headwater.cli", "serve", "--host", "0.0.0.0", "--port", "0",
         "--project", str(demo)], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2
    assert "refusing to listen on 0.0.0.0 without a token" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_starts_on_the_loopback_and_stops_on_sigint(demo: Path) -> None:
    import signal

    proc = subprocess.Popen(
        [sys.executable, "-m", "headwater.cli", "serve", "--port", "0", "--project", str(demo)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "http://127.0.0.1:" in line, line
        url = line.split(" at ", 1)[1].split()[0]
        deadline = time.monotonic() + 20
        while True:
            try:
                info = httpx.get(url + "api/info", timeout=5).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert info["name"] == "shop" and info["token_required"] is False
        page = httpx.get(url, timeout=5)
        assert page.status_code == 200 and "/static/graph.js" in page.text
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


# -- the token ------------------------------------------------------------------------


def test_post_needs_the_token_when_one_is_set(demo: Path, make_client: Any,
                                             wait_idle: Any) -> None:
    client = make_client(demo, token=TOKEN)
    info = client.get("/api/info", headers={"X-Headwater-Token": TOKEN}).json()
    assert info["token_required"] is True
    r = client.post("/api/runs", json=RUN)
    assert r.status_code == 401 and "token" in r.json()["error"]
    assert client.post("/api/runs", json=RUN,
                       headers={"X-Headwater-Token": "wrong"}).status_code == 401
    assert client.post("/api/runs", json=RUN,
                       headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/api/runs", json=RUN,
                       headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 202
    wait_idle(client)
    assert client.post("/api/runs", json=RUN,
                       headers={"X-Headwater-Token": TOKEN}).status_code == 202
    wait_idle(client)
    # without it a page is the locked page: no project name, no node names, no 404
    # suggestions that would let anyone list the nodes; static files load
    for path in ("/", "/runs", "/nodes/stg_merchants", "/nodes/stg_merchnts", "/runs/abc"):
        r = client.get(path)
        assert r.status_code == 401, path
        assert "needs its token" in r.text and TOKEN not in r.text
        assert "stg_merchants" not in r.text and "shop" not in r.text, path
        assert "did you mean" not in r.text
    assert client.get("/static/common.js").status_code == 200
    for path in ("/", "/nodes/stg_merchants"):
        r = client.get(path, headers={"X-Headwater-Token": TOKEN})
        assert r.status_code == 200 and "shop" in r.text and TOKEN not in r.text
    for path in ("/api/info", "/api/graph", "/api/runs/current", "/api/nodes/stg_merchants",
                 "/api/nodes/stg_merchants/preview", "/api/runs", "/api/events"):
        r = client.get(path)
        assert r.status_code == 401, path
        assert "token" in r.json()["error"] and TOKEN not in r.text
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    for path in ("/api/info", "/api/graph", "/api/runs/current",
                 "/api/nodes/stg_merchants/preview"):
        r = client.get(path, headers={"X-Headwater-Token": TOKEN})
        assert r.status_code == 200 and TOKEN not in r.text


def test_the_browser_trades_the_token_for_a_session_cookie(demo: Path, make_client: Any,
                                                           wait_idle: Any) -> None:
    from headwater.web.security import SESSION_COOKIE

    client = make_client(demo, token=TOKEN)
    r = client.post("/api/session", json={"token": "wrong"})
    assert r.status_code == 401 and SESSION_COOKIE not in r.cookies
    # from another site: refused before the token is even looked at
    r = client.post("/api/session", json={"token": TOKEN},
                    headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = client.post("/api/session", json={"token": TOKEN})
    assert r.status_code == 200 and r.json() == {"token_required": True}
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert TOKEN not in cookie  # an HMAC of it, not the token
    # the cookie now opens reads and (from the UI's own origin) writes
    assert client.get("/api/graph").status_code == 200
    assert client.get("/nodes/stg_merchants").status_code == 200  # pages too
    assert client.post("/api/runs", json=RUN).status_code == 202
    wait_idle(client)
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, "forged")
    assert client.get("/api/graph").status_code == 401


def test_without_a_token_the_session_is_a_no_op(demo: Path, make_client: Any) -> None:
    client = make_client(demo)
    r = client.post("/api/session", json={"token": "anything"})
    assert r.status_code == 200 and r.json() == {"token_required": False}
    assert "set-cookie" not in r.headers


# -- cross-site requests -------------------------------------------------------------


def headers_for(**extra: str) -> dict[str, str]:
    return {"host": "127.0.0.1:8580", "content-type": "application/json", **extra}


def test_same_origin_post_passes() -> None:
    check_write(headers_for(origin="http://127.0.0.1:8580", **{"sec-fetch-site": "same-origin"}),
                scheme="http", token=None)
    check_write(headers_for(), scheme="http", token=None)  # curl: no Origin at all


@pytest.mark.parametrize("extra,status", [
    ({"origin": "http://evil.example"}, 403),
    ({"origin": "null"}, 403),
    ({"origin": "http://127.0.0.1:9999"}, 403),
    ({"sec-fetch-site": "cross-site"}, 403),
    ({"sec-fetch-site": "same-site"}, 403),
    ({"content-type": "application/x-www-form-urlencoded"}, 415),
    ({"content-type": "text/plain"}, 415),
    ({"content-type": "multipart/form-data; boundary=x"}, 415),
])
def test_cross_site_posts_are_refused(extra: dict[str, str], status: int) -> None:
    with pytest.raises(AccessDenied) as err:
        check_write(headers_for(**extra), scheme="http", token=None)
    assert err.value.status == status


def test_cross_site_refused_even_with_the_right_token() -> None:
    with pytest.raises(AccessDenied):
        check_write(headers_for(origin="http://evil.example", **{"x-headwater-token": TOKEN}),
                    scheme="http", token=TOKEN)


def test_cross_site_post_over_http(client: Any) -> None:
    """What a hostile page can send: a form post, or a fetch from its own origin."""
    form = client.post("/api/runs", data={"select": "stg_merchants"})
    assert form.status_code == 415
    text = client.post("/api/runs", content='{"select": "stg_merchants"}',
                       headers={"Content-Type": "text/plain"})
    assert text.status_code == 415
    other = client.post("/api/runs", json=RUN, headers={"Origin": "http://evil.example"})
    assert other.status_code == 403
    fetch = client.post("/api/runs", json=RUN, headers={"Sec-Fetch-Site": "cross-site"})
    assert fetch.status_code == 403
    assert client.get("/api/runs").json() == client.get("/api/runs").json()  # nothing started
    assert client.app.state.web.manager.current() is None
    # and no CORS grant for a preflight
    pre = client.options("/api/runs", headers={"Origin": "http://evil.example",
                                               "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in pre.headers


def test_dns_rebinding_is_refused(demo: Path, make_client: Any) -> None:
    client = make_client(demo, trusted_hosts=trusted_hosts_for("127.0.0.1"))
    client.base_url = "http://127.0.0.1:8580"
    assert client.get("/api/info").status_code == 200
    assert client.get("/api/info", headers={"Host": "localhost:8580"}).status_code == 200
    r = client.get("/api/info", headers={"Host": "rebound.evil.example:8580"})
    assert r.status_code == 403 and "Host" in r.json()["error"]
    assert client.post("/api/runs", json=RUN,
                       headers={"Host": "rebound.evil.example:8580",
                                "Origin": "http://rebound.evil.example:8580"}).status_code == 403


def test_security_headers(client: Any) -> None:
    r = client.get("/")
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert client.get("/api/graph").headers["cache-control"] == "no-store"
