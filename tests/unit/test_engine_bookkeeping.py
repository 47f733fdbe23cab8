"""The engine's declared capabilities, its bookkeeping methods and the statement builders."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlglot

from headwater.core.incremental import window_label_sql
from headwater.engines import statements as st
from headwater.engines import window_stats as ws
from headwater.engines.base import Capabilities, Engine
from headwater.engines.duckdb import DuckDBEngine
from headwater.engines.spark.sql import to_spark

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine_contract import check_bookkeeping, check_row_statements  # noqa: E402


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[DuckDBEngine]:
    e = DuckDBEngine(tmp_path / "wh.duckdb")
    e.open()
    yield e
    e.close()


def test_engines_declare_what_they_can_do() -> None:
    from headwater.engines.spark.engine import SparkEngine

    assert Engine.capabilities == Capabilities()  # the base promises nothing extra
    duck, spark = DuckDBEngine.capabilities, SparkEngine.capabilities
    assert duck.versioned_rows and duck.window_stats and duck.interrupt and not duck.snapshots
    assert duck.frame == "duckdb" and not duck.builds_frames
    assert spark.snapshots and not spark.versioned_rows and not spark.window_stats
    assert spark.frame == "spark" and spark.builds_frames
    with pytest.raises(NotImplementedError, match="cannot snapshot"):
        Engine.snapshot_table(DuckDBEngine(Path("unused.duckdb")), "a", "b")


def test_a_warehouse_without_window_stats_says_so_when_read(tmp_path: Path) -> None:
    import duckdb

    duckdb.connect(str(tmp_path / "old.duckdb")).close()  # made before the table existed
    old = DuckDBEngine(tmp_path / "old.duckdb")
    old.open(read_only=True)
    try:
        assert not old.capabilities.window_stats and old.capabilities.versioned_rows
        assert DuckDBEngine.capabilities.window_stats  # the class keeps its own
    finally:
        old.close()


def test_duckdb_bookkeeping(engine: DuckDBEngine) -> None:
    check_bookkeeping(engine)


def test_duckdb_row_statements(engine: DuckDBEngine) -> None:
    check_row_statements(engine)


def test_window_sums_round_trip(engine: DuckDBEngine) -> None:
    engine.record_window_sums("n", [("ts/day", "", "2024-01-01", 2, 10**25),
                                    ("ts/day", "", ws.MARK, 0, 0),
                                    ("ts/day@old", "f.csv", "2024-01-01", 1, 5),
                                    ("ts/day@new", "f.csv", "2024-01-01", 1, 6)])
    assert engine.window_sums("n", "ts/day", "") == [("", "2024-01-01", 2, 10**25),
                                                       ("", "", 0, 0)]
    engine.forget_superseded_sums("n", "ts/day@new")  # counted under other columns
    assert engine.window_sums("n", "ts/day@old") == []
    assert engine.window_sums("n", "ts/day@new") == [("f.csv", "2024-01-01", 1, 6)]
    engine.forget_window_sums("n", key="ts/day", parts=[""], labels=["2024-01-01"])
    assert engine.window_sums("n", "ts/day") == [("", "", 0, 0)]
    engine.forget_window_sums("n")
    assert engine.window_sums("n", "ts/day@new") == []


def test_builders_quote_names_and_values() -> None:
    tree = st.delete(st.meta("windows"), st.all_of(
        st.eq("physical", 'a"b'), st.is_in("label", ["it's", "x"])))
    assert tree.sql("duckdb") == ('DELETE FROM "_hw_meta"."windows" WHERE "physical" = \'a"b\''
                                  " AND \"label\" IN ('it''s', 'x')")
    assert st.is_in("label", []).sql("duckdb") == "FALSE"
    assert st.insert_values(st.table("t"), [(1, None, True, "x")], columns=["a", "b", "c", "d"]
                            ).sql("duckdb") == (
        'INSERT INTO "_hw"."t" ("a", "b", "c", "d") VALUES (1, NULL, TRUE, \'x\')')


@pytest.mark.parametrize(("built", "text"), [
    (ws.label_expr("ts", "day"), "coalesce(" + window_label_sql('"ts"', "day") + ", '(null)')"),
    (ws.label_expr("ts", "hour"), "coalesce(" + window_label_sql('"ts"', "hour") + ", '(null)')"),
    (st.row_hash(["a", "b"]), 'hash(struct_pack("a", "b"))::HUGEINT'),
    (st.fingerprint_text(st.table_hash("t")),
     "count(*)::VARCHAR || ':' || coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR"),
    (st.lit(dt.datetime(2024, 1, 2, 3)), "TIMESTAMP '2024-01-02 03:00:00'"),
    (st.lit(dt.date(2024, 1, 2)), "DATE '2024-01-02'"),
])
def test_trees_say_what_the_duckdb_text_said(built: sqlglot.exp.Expr, text: str) -> None:
    """Built trees are the trees DuckDB's text parses to, so both engines read them alike
    (Spark: a naive TIMESTAMP stays TIMESTAMP_NTZ, hash(t) becomes xxhash64)."""
    parsed = sqlglot.parse_one(text, dialect="duckdb")
    assert built.sql("duckdb").lower() == parsed.sql("duckdb").lower()
    assert to_spark(built.copy(), "duckdb").sql("spark") == to_spark(parsed, "duckdb").sql(
        "spark")
