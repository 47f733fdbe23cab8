"""The http source against a real HTTP server on 127.0.0.1: pagination, retries, secrets."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pytest

from headwater.connectors import http as http_mod
from headwater.connectors.http import HttpSource, HttpSourceConfig
from headwater.errors import ConnectorError

TOKEN = "s3cr3t-t0ken-value"

ORDERS = [
    {"id": i, "updated_at": f"2024-01-{i:02d}T00:00:00Z", "amount": i * 1.5,
     "customer": {"name": f"c{i}", "vip": i % 2 == 0}}
    for i in range(1, 8)
]


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # send a Content-Length larger than the body, then close the connection
    cut_short: bool = False


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


Route = Callable[[dict[str, str]], Reply]


class Api:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self.base = ""

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]


def _handler(api: Api) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            api.requests.append(Seen(parts.path, query, dict(self.headers.items())))
            route = api.routes.get(parts.path)
            reply = route(query) if route else Reply(404, {"error": "no such route"})
            body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            headers = {"Content-Type": "application/json", **reply.headers}
            for k, v in headers.items():
                self.send_header(k, v)
            if reply.cut_short:
                self.send_header("Content-Length", str(len(body) + 100))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True
                return
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def server() -> Iterator[Api]:
    api = Api()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    httpd.daemon_threads = True
    api.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield api
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def api(server: Api) -> Api:
    server.routes.clear()
    server.requests.clear()
    return server


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits, recorded instead of slept."""
    out: list[float] = []
    monkeypatch.setattr(http_mod, "_sleep", out.append)
    return out


def source(tmp_path: Path, **config: Any) -> HttpSource:
    config.setdefault("retry_delay", 0.01)
    cfg = HttpSourceConfig.model_validate({"type": "http", **config})
    toml = tmp_path / "sources" / "orders.toml"
    toml.parent.mkdir(parents=True, exist_ok=True)
    toml.write_text('type = "http"\n')
    return HttpSource("orders", cfg, tmp_path, toml)


def read(src: HttpSource, since: Any = None) -> pa.Table:
    return src.read(since).read_all()


def ids(table: pa.Table) -> list[int]:
    return sorted(table.column("id").to_pylist())


# -- pagination ---------------------------------------------------------------------------


def page_route(q: dict[str, str]) -> Reply:
    size = int(q.get("per_page", 100))
    page = int(q.get("page", 1))
    return Reply(body={"data": {"items": ORDERS[(page - 1) * size: page * size]}})


def offset_route(q: dict[str, str]) -> Reply:
    off, lim = int(q.get("offset", 0)), int(q.get("limit", 100))
    return Reply(body={"results": ORDERS[off: off + lim]})


def cursor_route(q: dict[str, str]) -> Reply:
    start = int(q.get("cursor", 0))
    chunk = ORDERS[start: start + 3]
    nxt = str(start + 3) if start + 3 < len(ORDERS) else None
    return Reply(body={"items": chunk, "meta": {"next_cursor": nxt}})


def link_body_route(q: dict[str, str]) -> Reply:
    start = int(q.get("after", 0))
    nxt = f"/links?after={start + 3}" if start + 3 < len(ORDERS) else None
    return Reply(body={"records": ORDERS[start: start + 3], "links": {"next": nxt}})


def make_link_header_route(api: Api) -> Route:
    def route(q: dict[str, str]) -> Reply:
        start = int(q.get("start", 0))
        headers = {}
        if start + 3 < len(ORDERS):
            headers["Link"] = (f'<{api.url("/linkhdr")}?start={start + 3}>; rel="next", '
                               f'<{api.url("/linkhdr")}?start=6>; rel="last"')
        return Reply(body=ORDERS[start: start + 3], headers=headers)

    return route


def test_page_pagination_sends_params_and_stops_on_an_empty_page(
    api: Api, tmp_path: Path
) -> None:
    api.routes["/page"] = page_route
    src = source(
        tmp_path, url=api.url("/page"), records="data.items", params={"status": "paid"},
        pagination={"type": "page", "param": "page", "start": 1, "size_param": "per_page",
                    "size": 3},
    )
    table = read(src)
    assert ids(table) == [1, 2, 3, 4, 5, 6, 7]
    hits = api.hits("/page")
    assert [h.query["page"] for h in hits] == ["1", "2", "3", "4"]
    assert all(h.query["per_page"] == "3" and h.query["status"] == "paid" for h in hits)
    # nested objects are structs, timestamps typed
    assert pa.types.is_struct(table.schema.field("customer").type)
    assert pa.types.is_timestamp(table.schema.field("updated_at").type)
    row = min(table.to_pylist(), key=lambda r: r["id"])
    assert row["customer"] == {"name": "c1", "vip": False}


@pytest.mark.parametrize("style", ["offset", "cursor", "next_link_body", "link_header"])
def test_every_pagination_style_reads_all_records(
    api: Api, tmp_path: Path, style: str
) -> None:
    api.routes.update({
        "/offset": offset_route, "/cursor": cursor_route, "/links": link_body_route,
        "/linkhdr": make_link_header_route(api),
    })
    config: dict[str, Any] = {
        "offset": {"url": api.url("/offset"), "records": "results",
                   "pagination": {"type": "offset", "param": "offset", "limit_param": "limit",
                                  "limit": 2}},
        "cursor": {"url": api.url("/cursor"), "records": "items",
                   "pagination": {"type": "cursor", "param": "cursor",
                                  "next": "meta.next_cursor"}},
        "next_link_body": {"url": api.url("/links"), "records": "records",
                           "pagination": {"type": "next_link", "next": "links.next"}},
        "link_header": {"url": api.url("/linkhdr"),
                        "pagination": {"type": "next_link"}},
    }[style]
    table = read(source(tmp_path, **config))
    assert ids(table) == [1, 2, 3, 4, 5, 6, 7]
    if style == "offset":
        assert [r.query["offset"] for r in api.hits("/offset")] == ["0", "2", "4", "6", "7"]
    if style == "cursor":
        assert [r.query.get("cursor") for r in api.hits("/cursor")] == [None, "3", "6"]


def test_schema_is_unified_across_pages(api: Api, tmp_path: Path) -> None:
    pages = {
        "1": [{"id": 1, "a": 1}],
        "2": [{"id": 2, "a": 2.5, "coupon": "X"}],
        "3": [{"id": 3, "coupon": None, "tags": ["p", "q"]}],
    }
    api.routes["/drift"] = lambda q: Reply(body={"items": pages.get(q["page"], [])})
    table = read(source(tmp_path, url=api.url("/drift"), records="items",
                        pagination={"type": "page"}))
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    assert [r["a"] for r in rows] == [1.0, 2.5, None]
    assert [r["coupon"] for r in rows] == [None, "X", None]
    assert rows[2]["tags"] == ["p", "q"]


def test_a_server_that_ignores_the_page_param_is_an_error_not_a_loop(
    api: Api, tmp_path: Path
) -> None:
    api.routes["/same"] = lambda q: Reply(body={"items": ORDERS[:2]})
    with pytest.raises(ConnectorError) as err:
        read(source(tmp_path, url=api.url("/same"), records="items",
                    pagination={"type": "page"}))
    assert "same records as page 1" in err.value.message
    assert not err.value.transient
    assert len(api.hits("/same")) == 2


def test_a_repeating_cursor_is_an_error_not_a_loop(api: Api, tmp_path: Path) -> None:
    api.routes["/stuck"] = lambda q: Reply(
        body={"items": [{"id": 1, "c": q.get("c")}], "next": "again"})
    with pytest.raises(ConnectorError, match="never end"):
        read(source(tmp_path, url=api.url("/stuck"), records="items",
                    pagination={"type": "cursor", "param": "c", "next": "next"}))


# -- retries ------------------------------------------------------------------------------


def flaky(failures: list[Reply], then: Reply) -> Route:
    left = list(failures)

    def route(q: dict[str, str]) -> Reply:
        return left.pop(0) if left else then

    return route


def test_429_with_retry_after_seconds_then_success(
    api: Api, tmp_path: Path, waits: list[float]
) -> None:
    api.routes["/busy"] = flaky([Reply(429, {"error": "slow down"}, {"Retry-After": "2"})],
                                Reply(body=ORDERS[:2]))
    table = read(source(tmp_path, url=api.url("/busy")))
    assert ids(table) == [1, 2]
    assert waits == [2.0]


def test_503_with_retry_after_http_date_then_success(
    api: Api, tmp_path: Path, waits: list[float]
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    api.routes["/maint"] = flaky([Reply(503, b"", {"Retry-After": when})],
                                 Reply(body=ORDERS[:1]))
    assert ids(read(source(tmp_path, url=api.url("/maint")))) == [1]
    assert len(waits) == 1 and 20 < waits[0] <= 30


def test_500s_then_success_backs_off_exponentially(
    api: Api, tmp_path: Path, waits: list[float]
) -> None:
    api.routes["/wobbly"] = flaky([Reply(500, {"e": 1}), Reply(502, b"bad gateway")],
                                  Reply(body=ORDERS[:3]))
    assert ids(read(source(tmp_path, url=api.url("/wobbly"), retries=3))) == [1, 2, 3]
    assert waits == [0.01, 0.02]


def test_500_forever_gives_up_with_a_transient_error_and_no_secret(
    api: Api, tmp_path: Path, waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VENDOR_TOKEN", TOKEN)
    api.routes["/down"] = lambda q: Reply(500, {"error": f"boom for {TOKEN}"})
    src = source(
        tmp_path, url=api.url("/down"), retries=2,
        headers={"Authorization": "Bearer ${VENDOR_TOKEN}"},
        params={"api_key": "${VENDOR_TOKEN}", "status": "paid"},
    )
    with pytest.raises(ConnectorError) as err:
        read(src)
    assert err.value.transient
    text = err.value.render()
    assert "source 'orders'" in text and api.url("/down") in text
    assert "500" in text and "3 attempts" in text
    assert TOKEN not in text and "api_key" not in text and "status=paid" not in text
    assert len(api.hits("/down")) == 3
    assert waits == [0.01, 0.02]
    # the server did get the secrets
    assert api.hits("/down")[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert api.hits("/down")[0].query["api_key"] == TOKEN


def test_a_4xx_fails_at_once_and_masks_secrets_echoed_by_the_server(
    api: Api, tmp_path: Path, waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VENDOR_TOKEN", TOKEN)
    api.routes["/denied"] = lambda q: Reply(401, {"error": f"token {TOKEN} is expired"})
    src = source(tmp_path, url=api.url("/denied"),
                 headers={"Authorization": "Bearer ${VENDOR_TOKEN}"})
    with pytest.raises(ConnectorError) as err:
        read(src)
    text = err.value.render()
    assert not err.value.transient
    assert "401" in text and "is expired" in text and "VENDOR_TOKEN" in text
    assert TOKEN not in text
    assert len(api.hits("/denied")) == 1 and waits == []


def test_auth_header_reaches_the_server_but_not_describe(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VENDOR_TOKEN", TOKEN)
    api.routes["/me"] = lambda q: Reply(body=ORDERS[:1])
    src = source(tmp_path, url=api.url("/me"),
                 headers={"Authorization": "Bearer ${VENDOR_TOKEN}", "X-Api-Key": "literal-key"})
    read(src)
    assert api.hits("/me")[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert api.hits("/me")[0].headers["X-Api-Key"] == "literal-key"
    shown = json.dumps(src.describe())
    assert TOKEN not in shown and "literal-key" not in shown
    assert "${VENDOR_TOKEN}" in shown


def test_missing_env_var_is_a_clear_error(api: Api, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_TOKEN", raising=False)
    src = source(tmp_path, url=api.url("/x"), headers={"Authorization": "${NOT_SET_TOKEN}"})
    with pytest.raises(Exception, match="NOT_SET_TOKEN is not set"):
        read(src)
    assert api.requests == []


def test_truncated_body_is_retried_then_reported(
    api: Api, tmp_path: Path, waits: list[float]
) -> None:
    body = json.dumps(ORDERS).encode()
    api.routes["/cut"] = lambda q: Reply(body=body, cut_short=True)
    with pytest.raises(ConnectorError) as err:
        read(source(tmp_path, url=api.url("/cut"), retries=1))
    assert err.value.transient
    assert "cut off" in err.value.message and api.url("/cut") in err.value.message
    assert len(api.hits("/cut")) == 2


def test_invalid_json_is_retried_and_can_recover(
    api: Api, tmp_path: Path, waits: list[float]
) -> None:
    good = json.dumps(ORDERS[:2]).encode()
    api.routes["/half"] = flaky([Reply(body=good[: len(good) // 2])], Reply(body=good))
    assert ids(read(source(tmp_path, url=api.url("/half")))) == [1, 2]
    assert len(waits) == 1

    api.routes["/broken"] = lambda q: Reply(body=b'{"items": [1, 2')
    with pytest.raises(ConnectorError) as err:
        read(source(tmp_path, url=api.url("/broken"), records="items", retries=1))
    assert err.value.transient
    assert "invalid JSON" in err.value.message and "/broken" in err.value.message


def test_connection_refused_is_transient(tmp_path: Path, waits: list[float]) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectorError) as err:
        read(source(tmp_path, url=f"http://127.0.0.1:{port}/v1", retries=1))
    assert err.value.transient and "connection failed" in err.value.message


# -- records, incremental, rejects, fingerprint -------------------------------------------


def test_incremental_by_cursor_field(api: Api, tmp_path: Path) -> None:
    api.routes["/inc"] = lambda q: Reply(body={"items": ORDERS})  # ignores updated_since
    src = source(tmp_path, url=api.url("/inc"), records="items", cursor="updated_at",
                 cursor_param="updated_since")
    assert src.cursor_column == "updated_at"
    assert ids(read(src)) == [1, 2, 3, 4, 5, 6, 7]
    assert "updated_since" not in api.hits("/inc")[0].query
    since = datetime(2024, 1, 4, tzinfo=UTC)
    assert ids(read(src, since)) == [5, 6, 7]
    assert api.hits("/inc")[1].query["updated_since"] == "2024-01-04T00:00:00+00:00"
    # records without the field are not "new"
    api.routes["/inc"] = lambda q: Reply(body={"items": [*ORDERS, {"id": 99}]})
    assert ids(read(src, since)) == [5, 6, 7]


def test_records_path_that_matches_nothing(api: Api, tmp_path: Path) -> None:
    api.routes["/wrap"] = lambda q: Reply(body={"data": {"items": ORDERS, "total": 7}})
    with pytest.raises(ConnectorError) as err:
        read(source(tmp_path, url=api.url("/wrap"), records="data.itemz"))
    assert "data.itemz" in err.value.message
    assert "items, total" in (err.value.hint or "")
    with pytest.raises(ConnectorError) as err:
        read(source(tmp_path, url=api.url("/wrap")))
    assert "not a list" in err.value.message


def test_non_object_records_fail_or_are_quarantined(api: Api, tmp_path: Path) -> None:
    api.routes["/mixed"] = lambda q: Reply(body=[{"id": 1}, 42, {"id": 2}])
    with pytest.raises(ConnectorError, match="record 2 is not a JSON object"):
        read(source(tmp_path, url=api.url("/mixed")))
    src = source(tmp_path, url=api.url("/mixed"), on_bad_rows="quarantine")
    assert ids(read(src)) == [1, 2]
    rejects = src.rejects()
    assert rejects is not None
    assert rejects.to_pylist() == [{
        "location": f"{api.url('/mixed')} page 1 record 2",
        "reason": "record 2 is not a JSON object (a int)",
        "raw": "42",
    }]


def test_no_records_gives_an_empty_reader(api: Api, tmp_path: Path) -> None:
    api.routes["/empty"] = lambda q: Reply(body={"items": []})
    reader = source(tmp_path, url=api.url("/empty"), records="items").read()
    assert reader.read_all().num_rows == 0


def test_fingerprint_is_volatile_without_a_change_marker(api: Api, tmp_path: Path) -> None:
    src = source(tmp_path, url=api.url("/x"))
    assert src.data_fingerprint() != src.data_fingerprint()
    assert api.requests == []


def test_fingerprint_follows_the_change_marker(api: Api, tmp_path: Path) -> None:
    marker = {"v": "2024-01-01"}
    api.routes["/marker"] = lambda q: Reply(body=marker)
    src = source(tmp_path, url=api.url("/x"), change_marker_url=api.url("/marker"))
    first = src.data_fingerprint()
    assert src.data_fingerprint() == first
    marker["v"] = "2024-01-02"
    assert src.data_fingerprint() != first
    api.routes["/marker"] = lambda q: Reply(500, b"")
    assert src.data_fingerprint().startswith("volatile:")


def test_registered_and_config_errors(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from headwater.connectors.registry import source_types

    assert source_types()["http"] is HttpSource
    with pytest.raises(ValidationError):
        HttpSourceConfig.model_validate({"type": "http", "url": "x", "cursor_param": "since"})
    with pytest.raises(ValidationError):
        HttpSourceConfig.model_validate({"type": "http", "url": "x",
                                         "pagination": {"type": "pages"}})


# -- end to end through `headwater run` ---------------------------------------------------


def test_run_appends_new_records_by_cursor(api: Api, tmp_path: Path) -> None:
    from headwater import Project
    from headwater.testing import write_project

    served = list(ORDERS[:4])
    api.routes["/orders"] = lambda q: Reply(body={"data": {"items": [
        r for r in served if r["updated_at"] > q.get("updated_since", "")]}})
    root = write_project(tmp_path / "p", {
        "sources/orders.toml": f"""
            type = "http"
            url = "{api.url('/orders')}"
            records = "data.items"
            cursor = "updated_at"
            cursor_param = "updated_since"
            retry_delay = 0.01
        """,
        "transforms/total.sql": "SELECT count(*) AS n, sum(amount) AS s FROM orders\n",
    })
    project = Project(root)
    first = project.run()
    assert first.ok, [(n.name, n.error) for n in first.nodes]
    assert project.table("total").to_pylist() == [{"n": 4, "s": 15.0}]
    served.extend(ORDERS[4:])
    second = project.run()
    assert second.ok, [(n.name, n.error) for n in second.nodes]
    assert project.table("total").to_pylist() == [{"n": 7, "s": 42.0}]
    assert api.hits("/orders")[-1].query["updated_since"].startswith("2024-01-04")
    # nothing new: the API returns no record at all
    third = project.run()
    assert third.ok, [(n.name, n.error) for n in third.nodes]
    assert project.table("total").to_pylist() == [{"n": 7, "s": 42.0}]
