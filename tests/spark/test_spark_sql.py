"""DuckDB-dialect SQL to Spark SQL (no Spark needed): the rewrites and what cannot run."""

from __future__ import annotations

import pytest
import sqlglot

from headwater.engines.spark.sql import spark_datetime_format, to_spark, untranslatable


def spark_sql(sql: str) -> str:
    return to_spark(sqlglot.parse_one(sql, read="duckdb"), "duckdb").sql(dialect="spark")


@pytest.mark.parametrize("fmt,expected", [
    ("%Y-%m-%d", "yyyy-MM-dd"),
    ("%Y-%m-%dT%H", "yyyy-MM-dd'T'HH"),
    ("%Y-%m", "yyyy-MM"),
    ("week %W", "'week %W'"),
    ("%H:%M:%S.%f", "HH:mm:ss.SSSSSS"),
])
def test_strftime_formats(fmt: str, expected: str) -> None:
    assert spark_datetime_format(fmt) == expected


def test_row_hash_and_hugeint() -> None:
    out = spark_sql("SELECT sum(hash(t)::HUGEINT) FROM x AS t")
    assert "XXHASH64(t.*)" in out and "DECIMAL(38, 0)" in out


def test_division_is_double_as_in_duckdb() -> None:
    assert spark_sql("SELECT a / b FROM t") == \
        "SELECT CAST(a AS DOUBLE) / CAST(b AS DOUBLE) FROM t"


def test_range_column_is_named_range() -> None:
    assert spark_sql("SELECT range FROM range(3)") == \
        "SELECT range FROM (SELECT EXPLODE(SEQUENCE(0, 2)) AS `range`) AS range"


def test_exclude_becomes_except() -> None:
    assert spark_sql('SELECT * EXCLUDE ("_hw_file") FROM t') == \
        "SELECT * EXCEPT (`_hw_file`) FROM t"


@pytest.mark.parametrize("sql,construct,line", [
    ("SELECT a\nFROM t\nASOF JOIN u ON t.ts >= u.ts", "ASOF JOIN", 3),
    ("SELECT a,\n  jaro_winkler_similarity(a, b) AS s\nFROM t", "jaro_winkler_similarity()", 2),
    ("SELECT COLUMNS('a.*')\nFROM t", "COLUMNS(...)", 1),
])
def test_untranslatable(sql: str, construct: str, line: int) -> None:
    problem = untranslatable(sql, "duckdb", {"max", "sum", "count"})
    assert problem is not None
    assert problem.construct.lower() == construct.lower()
    assert problem.line == line


def test_translatable() -> None:
    sql = "SELECT max(a) FROM t GROUP BY ALL QUALIFY row_number() OVER (ORDER BY a) = 1"
    assert untranslatable(sql, "duckdb", {"max", "row_number"}) is None
