"""One bad source fails its branch, not the project (issue 17, item 7), on a real
PostgreSQL server: a missing table, a bad query, an unknown role or database, an
invalid option. The rest builds, the run exits non-zero, ``--json`` prints a document
for every failure (configuration errors included), and permanent errors are not called
transient."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from headwater.testing import write_project

DSN = os.environ.get("HEADWATER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")

BAD = {
    "missing_table": 'dsn = "{dsn}"\ntable = "public.hw_no_such_table_xyz"\n',
    "bad_query": 'dsn = "{dsn}"\nquery = "SELEC 1"\n',
    "unknown_role": 'dsn = "{role_dsn}"\nquery = "SELECT 1 AS x"\n',
    "unknown_database": 'dsn = "{db_dsn}"\nquery = "SELECT 1 AS x"\n',
    "bogus_sslmode": 'dsn = "{dsn}?sslmode=bogus"\nquery = "SELECT 1 AS x"\n',
}


def pg_up() -> str | None:
    try:
        import psycopg

        psycopg.connect(DSN, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - any failure means: no server here
        return str(exc)
    return None


pytestmark = pytest.mark.skipif(pg_up() is not None, reason=f"no PostgreSQL at {DSN}")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    return subprocess.run([sys.executable, "-m", "headwater.cli", *args], env=env,
                          capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_permanently_broken_source_fails_only_its_branch(tmp_path: Path, case: str) -> None:
    root = tmp_path / "p"
    base, _, _ = DSN.rpartition("/")
    body = BAD[case].format(dsn=DSN, role_dsn=DSN.replace("postgres@", "hw_no_role@"),
                            db_dsn=f"{base}/hw_no_such_db")
    write_project(root, {
        "sources/good.toml": 'type = "files"\npath = "data/a.csv"\n',
        "sources/orders.toml": 'type = "postgres"\nretries = 0\n' + body,
        "transforms/fine.sql": "SELECT count(*) AS n FROM good\n",
        "transforms/uses_orders.sql": "SELECT * FROM orders\n",
    })
    (root / "data").mkdir()
    (root / "data/a.csv").write_text("id\n1\n")
    proc = cli("run", "--json", "--project", str(root))
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    nodes = {n["name"]: n for n in out["nodes"]}
    assert nodes["fine"]["status"] == "executed" and nodes["good"]["status"] == "executed"
    assert nodes["orders"]["status"] == "failed"
    assert nodes["uses_orders"]["status"] == "skipped"
    assert "orders.toml" in nodes["orders"]["error"]
    assert "transient" not in nodes["orders"]["error"], nodes["orders"]["error"]
    assert "Traceback" not in proc.stderr
    # plan shows the error and exits 1; its JSON names the source
    plan = cli("plan", "--json", "--project", str(root))
    assert plan.returncode == 1, plan.stdout + plan.stderr
    assert "orders.toml" in plan.stderr and "Traceback" not in plan.stderr
    assert set(json.loads(plan.stdout)["source_errors"]) == {"orders"}


def test_json_is_printed_for_a_configuration_error(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write_project(root, {"transforms/a.sql": "SELECT * FROM nowhere_at_all\n"})
    proc = cli("run", "--json", "--project", str(root))
    assert proc.returncode != 0
    out = json.loads(proc.stdout)
    assert out["status"] == "error" and "nowhere_at_all" in out["error"]["message"]
    assert out["error"]["path"].endswith("a.sql")


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_a_source_query_cannot_change_the_database(tmp_path: Path, kind: str) -> None:
    """A source's session is read-only on the server: a `query` that writes (through a
    function: a plain DELETE does not even parse inside the read) fails its source and
    changes nothing."""
    setup = ["DROP TABLE IF EXISTS hw_ro_canary", "CREATE TABLE hw_ro_canary (id int)",
             "INSERT INTO hw_ro_canary VALUES (1), (2)", "DROP FUNCTION IF EXISTS hw_ro_wipe"]
    if kind == "postgres":
        import psycopg

        con: Any = psycopg.connect(DSN, autocommit=True)
        dsn = DSN
        run = con.execute
        setup.append("CREATE FUNCTION hw_ro_wipe() RETURNS int AS $$ BEGIN DELETE FROM"
                     " hw_ro_canary; RETURN 1; END $$ LANGUAGE plpgsql")
    else:
        import pymysql

        con = pymysql.connect(host="127.0.0.1", user="root", database="test", autocommit=True)
        dsn = "mysql://root@127.0.0.1:3306/test"
        cur = con.cursor()
        run = cur.execute
        setup.append("CREATE FUNCTION hw_ro_wipe() RETURNS INT MODIFIES SQL DATA BEGIN"
                     " DELETE FROM hw_ro_canary; RETURN 1; END")
    for sql in setup:
        run(sql)
    try:
        root = tmp_path / "p"
        write_project(root, {"sources/sneaky.toml": f'type = "{kind}"\ndsn = "{dsn}"\n'
                             'query = "SELECT hw_ro_wipe() AS x"\nretries = 0\n'})
        proc = cli("run", "--json", "--project", str(root))
        assert proc.returncode == 1, proc.stdout + proc.stderr
        nodes = {n["name"]: n for n in json.loads(proc.stdout)["nodes"]}
        assert nodes["sneaky"]["status"] == "failed"
        error = nodes["sneaky"]["error"].lower()
        assert "read-only" in error or "read only" in error, error
        if kind == "postgres":
            assert con.execute("SELECT count(*) FROM hw_ro_canary").fetchone()[0] == 2
        else:
            cur.execute("SELECT count(*) FROM hw_ro_canary")
            assert cur.fetchone()[0] == 2
    finally:
        run("DROP FUNCTION IF EXISTS hw_ro_wipe")
        run("DROP TABLE IF EXISTS hw_ro_canary")
        con.close()
