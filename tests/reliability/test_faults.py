"""Faults in connectors, end to end through ``headwater run``.

The connector tests already inject faults at the connector level (see
docs/RELIABILITY.md for the list: tests/integration/test_postgres.py, test_mysql.py,
test_http_source.py, test_s3.py, test_files_connector.py, test_ingest.py). Here the
faults hit a whole run, and what must hold is what a user sees:

- the database down at start: only that source's branch fails (after its retries),
  with a clear message, the rest of the project is built; when the database is back
  the next run loads every row once;
- the connection killed mid-read: retried, every row loaded once; killed on every
  attempt: a clear error, the previous version stays published, the cursor is not
  advanced, and the next healthy run loads exactly what is missing;
- HTTP 500 / 429 / truncated bodies / timeouts: retried; forever 500: the previous
  version stays, the cursor is not advanced;
- S3 unreachable (source and sink);
- a sink that cannot write (disk full mid-file, a path whose folder is a file, the
  database down): the sink fails, the node it reads is still published, no partial
  file is left, the previous output is intact, and the next run retries the sink.
"""

from __future__ import annotations

import errno
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from headwater import Project
from headwater.testing import public_tables, write_project

from .helpers import TcpProxy, cli, free_port

pytestmark = pytest.mark.slow

FILES = {
    "data/devices.csv": "device_id,region\nd1,north\nd2,south\n",
    "sources/devices.toml": 'type = "files"\npath = "data/devices.csv"\n',
    "transforms/regions.sql": "SELECT region, count(*) AS n FROM devices GROUP BY region\n",
}


def statuses(out: str) -> dict[str, str]:
    return {n["name"]: n["status"] for n in json.loads(out)["nodes"]}


def published(root: Path) -> set[str]:
    return public_tables(root)


# -- PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture
def pg(pg_dsn: str) -> Iterator[tuple[Any, str]]:
    """An admin connection and a fresh schema holding ``orders`` (dropped afterwards)."""
    import psycopg

    con = psycopg.connect(pg_dsn, autocommit=True)
    schema = f"hw_fault_{uuid.uuid4().hex[:10]}"
    con.execute(f'CREATE SCHEMA "{schema}"')
    con.execute(f'CREATE TABLE "{schema}".orders (id BIGINT PRIMARY KEY, device_id TEXT,'
                " amount_cents BIGINT, note TEXT)")
    yield con, schema
    con.execute(f'DROP SCHEMA "{schema}" CASCADE')
    con.close()


def add_orders(con: Any, schema: str, first: int, n: int) -> None:
    con.execute(f'INSERT INTO "{schema}".orders SELECT i, \'d\' || (i %% 2 + 1), i * 7,'
                " repeat('x', 40) FROM generate_series(%s::bigint, %s::bigint) AS i",
                [first, first + n - 1])


def pg_project(tmp_path: Path, port: int, schema: str, extra: str = "") -> Path:
    return write_project(tmp_path / "p", {
        **FILES,
        "sources/orders.toml": f'type = "postgres"\n'
                               f'dsn = "postgresql://postgres@127.0.0.1:{port}/test"\n'
                               f'table = "{schema}.orders"\ncursor = "id"\n'
                               "retries = 2\nretry_delay = 0.1\nconnect_timeout = 3\n" + extra,
        "transforms/order_totals.sql": "SELECT device_id, count(*) AS n, sum(amount_cents) AS"
                                       " total FROM orders GROUP BY device_id\n",
    })


def loaded(root: Path) -> tuple[int, int]:
    row = Project(root).query("SELECT count(*) AS n, count(DISTINCT id) AS d FROM orders")
    r = row.to_pylist()[0]
    return int(r["n"]), int(r["d"])


def test_database_down_at_start_fails_only_its_branch_then_loads_once(
        pg: tuple[Any, str], tmp_path: Path) -> None:
    con, schema = pg
    add_orders(con, schema, 1, 500)
    with TcpProxy("127.0.0.1", 5432) as proxy:  # not up: connections are refused
        root = pg_project(tmp_path, proxy.port, schema)
        t0 = time.monotonic()
        down = cli("run", "--json", "--project", str(root))
        assert down.returncode == 1, down.stdout + down.stderr
        assert time.monotonic() - t0 < 90
        nodes = {n["name"]: n for n in json.loads(down.stdout)["nodes"]}
        assert nodes["orders"]["status"] == "failed"
        error = nodes["orders"]["error"]
        assert f"connecting to postgres at 127.0.0.1:{proxy.port}/test failed" in error
        assert "Connection refused" in error or "connection refused" in error
        assert "gave up after 3 attempts" in error
        assert nodes["order_totals"]["status"] == "skipped"
        assert nodes["order_totals"]["reason"] == "upstream orders failed"
        assert nodes["regions"]["status"] == "executed"  # the rest of the project is built
        assert "Traceback" not in down.stdout + down.stderr
        assert "sources/orders.toml" in down.stderr
        assert {"regions", "devices"} <= published(root)
        assert not {"orders", "order_totals"} & published(root)

        proxy.up()  # the database is back
        back = cli("run", "--json", "--project", str(root))
        assert back.returncode == 0, back.stderr
        assert statuses(back.stdout)["orders"] == "executed"
        assert loaded(root) == (500, 500)
        again = cli("run", "--json", "--project", str(root))
        assert again.returncode == 0, again.stderr
        assert set(statuses(again.stdout).values()) == {"skipped"}
        assert loaded(root) == (500, 500)


def test_connection_killed_mid_read_is_retried_and_loads_every_row_once(
        pg: tuple[Any, str], tmp_path: Path) -> None:
    con, schema = pg
    add_orders(con, schema, 1, 200_000)
    with TcpProxy("127.0.0.1", 5432) as proxy:
        proxy.up()
        root = pg_project(tmp_path, proxy.port, schema)
        proxy.cut(after=3_000_000, times=1)  # the read, well into the stream
        run = cli("run", "--json", "--project", str(root))
        assert run.returncode == 0, run.stdout + run.stderr
        assert proxy.cuts == 1, "the fault was not injected"
        assert loaded(root) == (200_000, 200_000)
        assert "retrying" in run.stderr  # the retry is logged
        total = Project(root).query("SELECT sum(n) AS n FROM order_totals").to_pylist()
        assert total == [{"n": 200_000}]


def test_connection_killed_on_every_attempt_keeps_the_previous_version_and_cursor(
        pg: tuple[Any, str], tmp_path: Path) -> None:
    con, schema = pg
    add_orders(con, schema, 1, 1_000)
    with TcpProxy("127.0.0.1", 5432) as proxy:
        proxy.up()
        root = pg_project(tmp_path, proxy.port, schema)
        assert cli("run", "--project", str(root)).returncode == 0
        before = Project(root).query("SELECT * FROM order_totals ORDER BY 1").to_pylist()
        add_orders(con, schema, 1_001, 200_000)
        proxy.cut(after=3_000_000, times=-1)  # every read dies well into its stream
        run = cli("run", "--json", "--project", str(root))
        assert run.returncode == 1
        nodes = {n["name"]: n for n in json.loads(run.stdout)["nodes"]}
        assert nodes["orders"]["status"] == "failed"
        assert "(transient, may pass on a retry)" in nodes["orders"]["error"]
        assert "gave up after 3 attempts" in nodes["orders"]["error"]
        assert proxy.cuts == 3
        assert "Traceback" not in run.stdout + run.stderr
        # the previous version stays published, and the cursor did not move
        assert loaded(root) == (1_000, 1_000)
        assert Project(root).query("SELECT max(id) AS m FROM orders").to_pylist() == [{"m": 1000}]
        assert Project(root).query("SELECT * FROM order_totals ORDER BY 1").to_pylist() == before
        proxy.cut(after=0, times=0)  # healthy again
        healed = cli("run", "--json", "--project", str(root))
        assert healed.returncode == 0, healed.stderr
        assert loaded(root) == (201_000, 201_000)


def test_postgres_sink_with_the_database_down_publishes_the_node_and_retries_later(
        pg: tuple[Any, str], tmp_path: Path) -> None:
    con, schema = pg
    with TcpProxy("127.0.0.1", 5432) as proxy:
        root = write_project(tmp_path / "p", {
            **FILES,
            "sinks/regions_out.toml": f'type = "postgres"\nfrom = "regions"\n'
            f'dsn = "postgresql://postgres@127.0.0.1:{proxy.port}/test"\n'
            f'table = "{schema}.regions"\nretries = 1\nretry_delay = 0.1\nconnect_timeout = 3\n',
        })
        down = cli("run", "--json", "--project", str(root))
        assert down.returncode == 1
        nodes = {n["name"]: n for n in json.loads(down.stdout)["nodes"]}
        assert nodes["regions"]["status"] == "executed"
        assert nodes["regions_out"]["status"] == "failed"
        assert "gave up after 2 attempts" in nodes["regions_out"]["error"]
        assert "regions" in published(root)
        assert con.execute("SELECT to_regclass(%s)", [f"{schema}.regions"]).fetchone() == (None,)
        proxy.up()
        back = cli("run", "--json", "--project", str(root))
        assert back.returncode == 0, back.stderr
        assert statuses(back.stdout) == {"devices": "skipped", "regions": "skipped",
                                         "regions_out": "executed"}
        rows = con.execute(f'SELECT region, n FROM "{schema}".regions ORDER BY 1').fetchall()
        assert rows == [("north", 1), ("south", 1)]


# -- HTTP -----------------------------------------------------------------------------------


class Flaky(BaseHTTPRequestHandler):
    """Serves ``records`` after playing ``faults`` (one per request) in order."""

    records: list[dict[str, Any]] = []
    faults: list[str] = []
    forever: str | None = None
    served: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        cls = type(self)
        fault = cls.forever or (cls.faults.pop(0) if cls.faults else "ok")
        cls.served.append(fault)
        body = json.dumps({"data": cls.records}).encode()
        if fault == "500":
            self.send_response(500)
            self.end_headers()
            return
        if fault == "429":
            self.send_response(429)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        if fault == "slow":
            time.sleep(1.5)  # past the source's timeout
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if fault == "truncated" else body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[tuple[type[Flaky], str]]:
    handler = type("Handler", (Flaky,), {"records": [], "faults": [], "forever": None,
                                          "served": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/orders"
    server.shutdown()
    server.server_close()


def test_http_faults_are_retried_and_the_cursor_only_moves_on_success(
        flaky: tuple[type[Flaky], str], tmp_path: Path) -> None:
    api, url = flaky
    api.records = [{"id": i, "amount": i * 10} for i in range(1, 6)]
    api.faults = ["500", "429", "truncated", "slow", "500"]
    root = write_project(tmp_path / "p", {
        "sources/orders.toml": f'type = "http"\nurl = "{url}"\nrecords = "data"\n'
                               'cursor = "id"\nretries = 6\nretry_delay = 0.05\ntimeout = 0.5\n',
        "transforms/total.sql": "SELECT count(*) AS n, sum(amount) AS s FROM orders\n",
    })
    run = cli("run", "--json", "--project", str(root))
    assert run.returncode == 0, run.stdout + run.stderr
    assert api.served == ["500", "429", "truncated", "slow", "500", "ok"]
    assert Project(root).query("SELECT * FROM total").to_pylist() == [{"n": 5, "s": 150}]

    api.records += [{"id": i, "amount": i * 10} for i in range(6, 9)]
    api.forever = "500"
    down = cli("run", "--json", "--project", str(root))
    assert down.returncode == 1
    error = {n["name"]: n for n in json.loads(down.stdout)["nodes"]}["orders"]["error"]
    assert "500" in error and "Traceback" not in down.stdout + down.stderr
    assert Project(root).query("SELECT * FROM total").to_pylist() == [{"n": 5, "s": 150}]
    assert Project(root).query("SELECT max(id) AS m FROM orders").to_pylist() == [{"m": 5}]

    api.forever = None
    healed = cli("run", "--json", "--project", str(root))
    assert healed.returncode == 0, healed.stderr
    counts = Project(root).query("SELECT count(*) AS n, count(DISTINCT id) AS d FROM orders")
    assert counts.to_pylist() == [{"n": 8, "d": 8}]
    assert Project(root).query("SELECT * FROM total").to_pylist() == [{"n": 8, "s": 360}]


# -- S3 -------------------------------------------------------------------------------------


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": "hwfaultkey", "AWS_SECRET_ACCESS_KEY": "hw-fault-secret",
            "AWS_DEFAULT_REGION": "us-east-1"}


def test_s3_unreachable_fails_only_its_branch(s3_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()  # nobody listens there
    root = write_project(tmp_path / "p", {
        **FILES,
        "sources/events.toml": f'type = "files"\npath = "s3://bucket/events/*.csv"\n'
                               f'endpoint_url = "http://127.0.0.1:{port}"\n'
                               "retries = 1\nretry_delay = 0.1\n",
        "transforms/event_count.sql": "SELECT count(*) AS n FROM events\n",
    })
    run = cli("run", "--json", "--project", str(root), env=s3_env)
    assert run.returncode == 1, run.stdout + run.stderr
    nodes = {n["name"]: n for n in json.loads(run.stdout)["nodes"]}
    assert nodes["events"]["status"] == "failed"
    assert f"127.0.0.1:{port}" in nodes["events"]["error"]
    assert nodes["event_count"]["status"] == "skipped"
    assert nodes["regions"]["status"] == "executed"
    assert "hw-fault-secret" not in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_s3_sink_down_then_back(s3_env: dict[str, str], tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    for k, v in s3_env.items():
        monkeypatch.setenv(k, v)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = boto3.client("s3", endpoint_url=f"http://{host}:{port}",
                              region_name="us-east-1")
        client.create_bucket(Bucket="exports")
        with TcpProxy(host, port) as proxy:
            root = write_project(tmp_path / "p", {
                **FILES,
                "sinks/regions_out.toml": 'type = "files"\nfrom = "regions"\n'
                'path = "s3://exports/regions.parquet"\n'
                f'endpoint_url = "http://127.0.0.1:{proxy.port}"\nretries = 1\n'
                "retry_delay = 0.1\n",
            })
            down = cli("run", "--json", "--project", str(root), env=s3_env)
            assert down.returncode == 1, down.stdout + down.stderr
            nodes = {n["name"]: n for n in json.loads(down.stdout)["nodes"]}
            assert nodes["regions"]["status"] == "executed"
            assert nodes["regions_out"]["status"] == "failed"
            assert "regions" in published(root)
            assert "Contents" not in client.list_objects_v2(Bucket="exports")
            proxy.up()
            back = cli("run", "--json", "--project", str(root), env=s3_env)
            assert back.returncode == 0, back.stdout + back.stderr
            assert statuses(back.stdout)["regions_out"] == "executed"
            keys = [o["Key"] for o in client.list_objects_v2(Bucket="exports")["Contents"]]
            assert keys == ["regions.parquet"]
    finally:
        server.stop()


# -- sinks on a local disk ------------------------------------------------------------------


def sink_project(tmp_path: Path, path: str) -> Project:
    root = write_project(tmp_path / "p", {
        **FILES,
        "sinks/export.toml": f'type = "files"\nfrom = "regions"\npath = "{path}"\n'
                             "retries = 0\n",
    })
    return Project(root)


def add_device(project: Project, n: int) -> None:
    rows = "".join(f"d{i},r{i % 3}\n" for i in range(3, 3 + n))
    (project.root / "data/devices.csv").write_text("device_id,region\nd1,north\nd2,south\n" + rows)


def test_disk_full_mid_file_keeps_the_previous_output_and_retries_next_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from headwater.connectors.files import sink as files

    project = sink_project(tmp_path, "out/regions.parquet")
    assert project.run().ok
    target = project.root / "out/regions.parquet"
    first = pq.read_table(target)
    real: Callable[..., int] = files._write_file

    def disk_full(data: Any, dest: Path, fmt: str, drop: str | None) -> int:
        real(data, dest, fmt, drop)  # the bytes went out ...
        with open(dest, "r+b") as f:  # ... but only half of them reached the disk
            f.truncate(dest.stat().st_size // 2)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "_write_file", disk_full)
    add_device(project, 4)
    result = project.run()
    status = {n.name: n for n in result.nodes}
    assert status["regions"].status == "executed"
    assert status["export"].status == "failed"
    assert "No space left on device" in (status["export"].error or "")
    assert "out/regions.parquet" in (status["export"].error or "")
    assert pq.read_table(target).equals(first)  # the previous file, whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["regions.parquet"]  # no temp
    assert {r["region"] for r in project.table("regions").to_pylist()} == {
        "north", "south", "r0", "r1", "r2"}

    monkeypatch.setattr(files, "_write_file", real)  # space again
    again = project.run()
    assert {n.name: n.status for n in again.nodes}["export"] == "executed"
    assert pq.read_table(target).num_rows == 5


def test_sink_folder_that_is_a_file_fails_then_is_retried_when_fixed(tmp_path: Path) -> None:
    project = sink_project(tmp_path, "blocked/regions.parquet")
    (project.root / "blocked").write_text("a file where the sink wants a folder\n")
    run = cli("run", "--json", "--project", str(project.root))
    assert run.returncode == 1
    nodes = {n["name"]: n for n in json.loads(run.stdout)["nodes"]}
    assert nodes["regions"]["status"] == "executed"
    assert nodes["export"]["status"] == "failed"
    assert "cannot write" in nodes["export"]["error"]
    assert "blocked/regions.parquet" in nodes["export"]["error"]
    assert "Traceback" not in run.stdout + run.stderr
    (project.root / "blocked").unlink()
    again = cli("run", "--json", "--project", str(project.root))
    assert again.returncode == 0, again.stderr
    assert statuses(again.stdout) == {"devices": "skipped", "regions": "skipped",
                                      "export": "executed"}
    assert pq.read_table(project.root / "blocked/regions.parquet").num_rows == 2
