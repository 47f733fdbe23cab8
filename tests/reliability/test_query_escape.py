"""`headwater query` reaches the published tables and nothing else (issue 17).

A corpus of escape attempts, each refused with a clear error (exit 2 through the CLI),
leaving the file system, the state store and the warehouse as they were; and each tried
again on the bare read-only connection (the guard switched off) to show the second lock,
DuckDB's own ``enable_external_access = false`` / ``lock_configuration``, holds too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from headwater import Project
from headwater.engines.query_guard import QueryRefused, check_query
from headwater.testing import write_project

from .helpers import cli

FILES = {
    "sources/raw.toml": 'type = "files"\npath = "data/a.csv"\n',
    "transforms/stg.sql": "SELECT id, v FROM raw\n",
}

# {out}: a path that must never appear; {state}: the state store; {py}: a transform file
ESCAPES = [
    "COPY (SELECT 1) TO '{out}'",
    "COPY (SELECT 'import os' AS x) TO '{py}' (HEADER false, QUOTE '')",
    "COPY main.stg TO '{out}' (FORMAT parquet)",
    "COPY (SELECT 1) TO '{state}'",
    "EXPORT DATABASE '{out}'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_blob('/etc/passwd')",
    "SELECT * FROM read_json('/etc/passwd')",
    "SELECT * FROM read_parquet('{state}')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM glob('/*')",
    "SELECT * FROM sniff_csv('/etc/passwd')",
    "SELECT * FROM parquet_metadata('{state}')",
    "ATTACH '{out}' AS x",
    "ATTACH '{state}' AS s (TYPE sqlite)",
    "DETACH warehouse",
    "USE memory",
    "INSTALL httpfs",
    "LOAD httpfs",
    "LOAD '/tmp/evil.duckdb_extension'",
    "SET enable_external_access = true",
    "SET threads = 1",
    "RESET lock_configuration",
    "PRAGMA enable_profiling",
    "PRAGMA database_list",
    "CALL pragma_version()",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM duckdb_secrets()",
    "SELECT current_setting('temp_directory')",
    "SELECT getenv('HOME')",
    "SELECT * FROM query('SELECT 1')",
    "SELECT * FROM query_table('main.stg')",
    "SELECT * FROM _hw_meta.windows",
    "SELECT * FROM _hw.stg",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM pg_catalog.pg_class",
    "SELECT * FROM temp.main.t",
    "CREATE TABLE main.x AS SELECT 1",
    "CREATE TEMP TABLE t AS SELECT 1",
    "CREATE MACRO m() AS 1",
    "INSERT INTO main.stg VALUES (1, 2)",
    "DELETE FROM main.stg",
    "UPDATE main.stg SET v = 0",
    "DROP VIEW main.stg",
    "ALTER VIEW main.stg RENAME TO s2",
    "CHECKPOINT",
    "VACUUM",
    "SELECT 1; COPY (SELECT 1) TO '{out}'",
    "WITH x AS (SELECT 1) SELECT * FROM read_csv('/etc/passwd')",
    "SELECT (SELECT count(*) FROM read_text('/etc/passwd'))",
    "SELECT * FROM main.stg UNION ALL SELECT 1, content FROM read_text('/etc/passwd')",
    "SUMMARIZE main.stg",
    "DESCRIBE SELECT * FROM read_csv('/etc/passwd')",
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("escape") / "p"
    write_project(root, FILES)
    (root / "data").mkdir()
    (root / "data/a.csv").write_text("id,v\n1,10\n2,20\n")
    p = Project(root)
    assert p.run().ok
    return p


def fingerprint(root: Path) -> dict[str, str]:
    """Every file of the project (the warehouse and state store included) by content."""
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*"))
            if f.is_file() and not f.name.endswith(("-wal", "-shm"))}


def fill(sql: str, root: Path) -> str:
    return sql.format(out=root / "escaped.out", state=root / ".headwater/state.db",
                      py=root / "transforms/evil.py")


def test_the_corpus_is_large_enough() -> None:
    assert len(ESCAPES) >= 40


@pytest.mark.parametrize("sql", ESCAPES)
def test_escape_is_refused_and_changes_nothing(project: Project, sql: str) -> None:
    root = project.root
    before = fingerprint(root)
    with pytest.raises(QueryRefused):
        project.query(fill(sql, root))
    assert fingerprint(root) == before
    assert not (root / "escaped.out").exists() and not (root / "transforms/evil.py").exists()


@pytest.mark.parametrize("sql", [s for s in ESCAPES if s.split()[0] in (
    "COPY", "EXPORT", "ATTACH", "INSTALL", "LOAD", "SET", "RESET")
    or "read_" in s or "glob" in s or "FROM '/" in s or "profiling" in s])
def test_the_connection_refuses_it_too(project: Project, sql: str) -> None:
    """The second lock: the read-only connection itself, without the guard."""
    root = project.root
    refused = "(?i)permission|disabled|configuration|read-only|not supported|cannot|catalog"
    with project.reading() as engine, pytest.raises(Exception, match=refused + "|syntax|binder"):
        engine.query(fill(sql, root))
    assert not (root / "escaped.out").exists() and not (root / "transforms/evil.py").exists()


def test_published_tables_can_still_be_queried(project: Project) -> None:
    rows = project.query("WITH s AS (SELECT * FROM main.stg) SELECT sum(v) AS t FROM s"
                         " UNION ALL SELECT count(*) FROM range(3)").to_pylist()
    assert rows == [{"t": 30}, {"t": 3}]
    assert project.query("SELECT * FROM stg ORDER BY id").num_rows == 2


def test_guard_unit_cases() -> None:
    ok = ["SELECT 1", "SELECT * FROM main.t", "SELECT * FROM dev.t", "FROM t SELECT a",
          "SELECT a FROM t JOIN main.u USING (a) WHERE a IN (SELECT a FROM dev.t)",
          "SELECT * FROM unnest([1, 2])", "SELECT * FROM generate_series(1, 3)"]
    for sql in ok:
        check_query(sql, {"main", "dev"})
    with pytest.raises(QueryRefused, match="schema 'qa'"):
        check_query("SELECT * FROM qa.t", {"main", "dev"})
    with pytest.raises(QueryRefused, match="not a published table"):
        check_query("SELECT * FROM main.nope", {"main"}, tables={"main": {"t"}})
    check_query("SELECT * FROM T", {"main"}, tables={"main": {"t"}})


def test_cli_says_what_is_wrong(project: Project) -> None:
    proc = cli("query", "COPY (SELECT 1) TO 'x.csv'", "--project", str(project.root))
    assert proc.returncode == 2
    assert "only queries are allowed" in proc.stderr and "Traceback" not in proc.stderr
