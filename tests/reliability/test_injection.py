"""Injection: identifiers and values from config, data, the CLI and the web API never
change the SQL Headwater runs.

Hostile names and values are used where they can reach SQL: a Postgres and a MySQL
table named ``x"; DROP TABLE y; --`` (and the unquoted version of it), a sink table
named the same way, text cursor values holding quotes and statements, CSV column
names and values with quotes, a file name with a quote, node names with quotes,
check arguments with quotes and statements, a selection holding SQL, and web API
paths, query parameters and bodies holding SQL. Each either works on exactly the
named object or fails with a clear error; a canary table must survive every attempt.
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from headwater import Project
from headwater.testing import public_tables, write_project

from .helpers import cli

pytestmark = pytest.mark.slow

HOSTILE = 'x"; DROP TABLE canary; --'
HOSTILE_COLUMNS = ['a"b', "c'); DROP TABLE orders; --", "select"]


# -- files, checks, node names, selections ------------------------------------------------


@pytest.fixture
def hostile_files(tmp_path: Path) -> Path:
    cols = ",".join('"' + c.replace('"', '""') + '"' for c in HOSTILE_COLUMNS)
    return write_project(tmp_path / "p", {
        "data/o'rders.csv": f"id,status,{cols}\n1,ok,1,2,3\n2,o'k,4,5,6\n"
                            "3,\"x') OR 1=1 --\",7,8,9\n",
        "data/canary.csv": "id\n1\n",
        "sources/orders.toml": "type = \"files\"\npath = \"data/o'rders.csv\"\n",
        "sources/canary.toml": 'type = "files"\npath = "data/canary.csv"\n',
        "transforms/we\"ird.sql": '-- @check: not_null(a"b)\n'
                                  "-- @check: accepted_values(status, ['ok', 'o''k',"
                                  " 'x'') OR 1=1 --'])\n"
                                  '-- @check: range("select", 0, 100)\n'
                                  'SELECT id, status, "a""b", "c\'); DROP TABLE orders; --",'
                                  ' "select" FROM orders\n',
        "transforms/o'hare.sql": 'SELECT count(*) AS n, sum("a""b") AS s FROM "we""ird"\n',
    })


def tables(root: Path) -> set[str]:
    return public_tables(root)


def test_hostile_names_and_values_in_files_checks_and_nodes(hostile_files: Path) -> None:
    root = hostile_files
    run = cli("run", "--json", "--project", str(root))
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout)
    checks = [c for n in result["nodes"] for c in n["checks"]]
    assert {c["check"]: c["status"] for c in checks} == {
        'not_null(a"b)': "pass",
        "accepted_values(status, ['ok', 'o''k', 'x'') OR 1=1 --'])": "pass",
        'range("select", 0, 100)': "pass",
    }
    assert {"orders", "canary", 'we"ird', "o'hare"} <= tables(root)
    project = Project(root)
    assert project.table('we"ird').column_names == ["id", "status", *HOSTILE_COLUMNS]
    assert project.table("o'hare").to_pylist() == [{"n": 3, "s": 12}]
    statuses = project.table('we"ird').column("status").to_pylist()
    assert sorted(statuses) == sorted(["ok", "o'k", "x') OR 1=1 --"])
    shown = cli("show", 'we"ird', "--project", str(root))
    assert shown.returncode == 0 and "DROP TABLE orders" in shown.stdout
    lineage = cli("lineage", "o'hare.s", "--project", str(root))
    assert lineage.returncode == 0, lineage.stderr
    assert 'a"b' in lineage.stdout


def test_a_failing_check_with_quotes_blocks_only_its_node(hostile_files: Path) -> None:
    root = hostile_files
    sql = root / 'transforms/we"ird.sql'
    sql.write_text(sql.read_text().replace(" 'x'') OR 1=1 --'", " 'nope'"))
    run = cli("run", "--json", "--project", str(root))
    assert run.returncode == 1
    nodes = {n["name"]: n for n in json.loads(run.stdout)["nodes"]}
    assert nodes['we"ird']["status"] == "failed"
    assert "check accepted_values(status" in nodes['we"ird']["error"]
    assert "1 failing row(s)" in nodes['we"ird']["error"]
    assert nodes["o'hare"]["status"] == "skipped"
    assert {"orders", "canary"} <= tables(root)
    assert not {'we"ird', "o'hare"} & tables(root)


SELECTIONS = ["orders; DROP TABLE canary", "orders' OR '1'='1", 'canary"; DROP TABLE canary; --',
              "tag:x; DROP TABLE canary", "+orders+; DELETE FROM canary"]


def test_selections_holding_sql_select_nothing_and_change_nothing(hostile_files: Path) -> None:
    root = hostile_files
    assert cli("run", "--project", str(root)).returncode == 0
    for i, selection in enumerate(SELECTIONS):
        for command in (["run"], ["plan"], ["test"])[: 3 if i == 0 else 1]:
            proc = cli(*command, "--select", selection, "--project", str(root))
            assert proc.returncode == 2, (command, selection, proc.stdout, proc.stderr)
            assert "Traceback" not in proc.stdout + proc.stderr
    assert Project(root).query("SELECT count(*) AS n FROM canary").to_pylist() == [{"n": 1}]
    assert Project(root).query("SELECT count(*) AS n FROM orders").to_pylist() == [{"n": 3}]


def test_check_arguments_cannot_smuggle_statements(tmp_path: Path) -> None:
    for check in ["expression(id > 0); DROP TABLE canary; --",
                  "accepted_values(id, ['1'';DROP TABLE canary;--'])",
                  "expression(id > 0) ; DELETE FROM canary",
                  "not_null(id); DROP TABLE canary",
                  "range(id, 0, 1; DROP TABLE canary)",
                  "accepted_values(id, [1); DROP TABLE canary; --])"]:
        root = write_project(tmp_path / uuid.uuid4().hex[:8], {
            "data/canary.csv": "id\n1\n",
            "sources/canary.toml": 'type = "files"\npath = "data/canary.csv"\n',
            "transforms/t.sql": f"-- @check: {check}\nSELECT id FROM canary\n",
        })
        proc = cli("run", "--project", str(root))
        assert proc.returncode in (1, 2), (check, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stdout + proc.stderr
        assert "transforms/t.sql" in proc.stderr, (check, proc.stderr)
        if (root / ".headwater/warehouse.duckdb").exists():
            rows = Project(root).query("SELECT count(*) AS n FROM canary").to_pylist()
            assert rows == [{"n": 1}], check


# -- the web API ------------------------------------------------------------------------------


def test_web_api_parameters_holding_sql(hostile_files: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from headwater.web.app import create_app

    root = hostile_files
    assert cli("run", "--project", str(root)).returncode == 0
    client = TestClient(create_app(Project(root)), raise_server_exceptions=True)
    for name in ["orders; DROP TABLE canary", "canary' OR '1'='1", 'x"; DROP TABLE canary; --',
                 "../../etc/passwd", "orders%00", "*"]:
        quoted = urllib.parse.quote(name, safe="")
        for path in (f"/api/nodes/{quoted}", f"/api/nodes/{quoted}/preview", f"/nodes/{quoted}"):
            r = client.get(path)
            assert r.status_code == 404, (path, r.status_code, r.text[:300])
    for limit in ["1; DROP TABLE canary", "1 OR 1=1", "-1", "10000000000"]:
        r = client.get(f"/api/nodes/orders/preview?limit={urllib.parse.quote(limit)}")
        assert r.status_code == 422, (limit, r.text[:300])
    assert client.get('/api/nodes/we"ird/preview?limit=5').status_code == 200
    for body in ({"select": "orders; DROP TABLE canary"}, {"select": "canary' OR '1'='1"},
                 {"exclude": "x; DELETE FROM canary"}, {"select": 1},
                 {"select": "orders", "sql": "DROP TABLE canary"}):
        r = client.post("/api/runs", json=body, headers={"Origin": "http://testserver"})
        assert r.status_code in (400, 404, 422), (body, r.status_code, r.text[:300])
    for run_id in ["x' OR '1'='1", "1; DROP TABLE runs"]:
        r = client.get(f"/api/runs/{urllib.parse.quote(run_id, safe='')}")
        assert r.status_code == 404, (run_id, r.text[:300])
    assert Project(root).query("SELECT count(*) AS n FROM canary").to_pylist() == [{"n": 1}]
    assert len(Project(root).state.runs()) == 1


# -- databases --------------------------------------------------------------------------------


@pytest.fixture
def pg(pg_dsn: str) -> Iterator[tuple[Any, str]]:
    import psycopg

    con = psycopg.connect(pg_dsn, autocommit=True)
    schema = f"hw_inj_{uuid.uuid4().hex[:10]}"
    q = HOSTILE.replace('"', '""')
    con.execute(f'CREATE SCHEMA "{schema}"')
    con.execute(f'CREATE TABLE "{schema}".canary (id int)')
    con.execute(f'INSERT INTO "{schema}".canary VALUES (1)')
    con.execute(f'CREATE TABLE "{schema}"."{q}" (id int, note text)')
    con.execute(f'INSERT INTO "{schema}"."{q}" VALUES (1, \'a\'), (2, \'b\')')
    con.execute(f'CREATE TABLE "{schema}".notes (note text PRIMARY KEY, v int)')
    con.execute(f'INSERT INTO "{schema}".notes VALUES (\'a\', 1), (%s, 2)',
                ["b'); DROP TABLE canary; --"])
    yield con, schema
    con.execute(f'DROP SCHEMA "{schema}" CASCADE')
    con.close()


def canary(con: Any, schema: str) -> list[tuple[Any, ...]]:
    return list(con.execute(f'SELECT id FROM "{schema}".canary').fetchall())


def test_postgres_hostile_table_names_cursor_values_and_sink(
        pg: tuple[Any, str], pg_dsn: str, tmp_path: Path) -> None:
    con, schema = pg
    quoted_table = '"' + HOSTILE.replace('"', '""') + '"'
    quoted_out = '"' + (HOSTILE + "_out").replace('"', '""') + '"'
    root = write_project(tmp_path / "p", {
        # a table named like an attack, quoted as the config asks: read exactly
        "sources/odd.toml": f'type = "postgres"\ndsn = "{pg_dsn}"\n'
                            f"table = {json.dumps(f'{schema}.{quoted_table}')}\n",
        # text cursor values holding quotes and statements
        "sources/notes.toml": f'type = "postgres"\ndsn = "{pg_dsn}"\n'
                              f'table = "{schema}.notes"\ncursor = "note"\n',
        "transforms/both.sql": "SELECT (SELECT count(*) FROM odd) AS odd_rows,"
                               " (SELECT count(*) FROM notes) AS notes_rows\n",
        # a sink whose table name is an attack too
        "sinks/out.toml": f'type = "postgres"\nfrom = "both"\ndsn = "{pg_dsn}"\n'
                          f"table = {json.dumps(f'{schema}.{quoted_out}')}\n",
    })
    run = cli("run", "--json", "--project", str(root))
    assert run.returncode == 0, run.stdout + run.stderr
    assert Project(root).table("both").to_pylist() == [{"odd_rows": 2, "notes_rows": 2}]
    con.execute(f'INSERT INTO "{schema}".notes VALUES (%s, 3), (%s, 4)',
                ["c' || (SELECT 1); --", "d\"; DROP TABLE canary; --"])
    again = cli("run", "--json", "--project", str(root))
    assert again.returncode == 0, again.stdout + again.stderr
    assert Project(root).table("notes").num_rows == 4  # appended past a hostile cursor
    q_out = (HOSTILE + "_out").replace('"', '""')
    assert con.execute(f'SELECT odd_rows, notes_rows FROM "{schema}"."{q_out}"').fetchall() \
        == [(2, 4)]
    assert canary(con, schema) == [(1,)]

    # unquoted, the same text is one odd name that does not exist: a clear error
    bad = write_project(tmp_path / "q", {
        "sources/odd.toml": f'type = "postgres"\ndsn = "{pg_dsn}"\n'
                            f'table = "{schema}.canary; DROP TABLE {schema}.canary"\n',
    })
    proc = cli("run", "--project", str(bad))
    assert proc.returncode in (1, 2), proc.stdout + proc.stderr
    assert "sources/odd.toml" in proc.stderr and "Traceback" not in proc.stderr
    assert canary(con, schema) == [(1,)]


def test_mysql_hostile_table_name(tmp_path: Path) -> None:
    pymysql = pytest.importorskip("pymysql")
    from .helpers import cli as run_cli

    try:
        con = pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test",
                              autocommit=True, connect_timeout=3)
    except pymysql.err.OperationalError as exc:
        pytest.skip(f"MariaDB is not reachable at 127.0.0.1:3306: {exc}")
    name = f"hw_inj_{uuid.uuid4().hex[:8]}"
    hostile = f"{name}`; DROP TABLE {name}_canary; --"
    cur = con.cursor()
    try:
        cur.execute(f"CREATE TABLE `{name}_canary` (id int)")
        cur.execute(f"INSERT INTO `{name}_canary` VALUES (1)")
        cur.execute(f"CREATE TABLE `{hostile.replace('`', '``')}` (id int)")
        cur.execute(f"INSERT INTO `{hostile.replace('`', '``')}` VALUES (5), (6)")
        table = "test.`" + hostile.replace("`", "``") + "`"
        root = write_project(tmp_path / "p", {
            "sources/odd.toml": 'type = "mysql"\nhost = "127.0.0.1"\nuser = "root"\n'
                                f'database = "test"\ntable = {json.dumps(table)}\n',
        })
        run = run_cli("run", "--project", str(root))
        assert run.returncode == 0, run.stdout + run.stderr
        assert sorted(Project(root).table("odd").column("id").to_pylist()) == [5, 6]
        cur.execute(f"SELECT count(*) FROM `{name}_canary`")
        assert cur.fetchall() == ((1,),)
    finally:
        cur.execute(f"DROP TABLE IF EXISTS `{hostile.replace('`', '``')}`")
        cur.execute(f"DROP TABLE IF EXISTS `{name}_canary`")
        con.close()
