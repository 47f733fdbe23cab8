"""What every engine's bookkeeping and row statements must do alike, as plain functions.

``tests/unit/test_engine_bookkeeping.py`` holds DuckDB to it, ``tests/spark`` the Spark
engine: DuckDB runs the statements as SQL, Spark keeps the bookkeeping as catalog rows
and runs the row statements on Parquet segments, and the answers must not differ.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from sqlglot import exp

from headwater.engines import statements as st
from headwater.engines.base import Engine


def check_bookkeeping(engine: Engine) -> None:
    # window marks: labels of a node, and its inputs under a prefix
    with engine.transaction():
        engine.record_window_marks("t", [("2024-01-01", "f1"), ("2024-01-02", "f2"),
                                         ("input:a", '{"physical": "a"}')])
        engine.record_window_marks("other", [("2024-01-01", "o1")])
    assert engine.window_marks("t") == {"2024-01-01": "f1", "2024-01-02": "f2",
                                        "input:a": '{"physical": "a"}'}
    assert engine.window_marks("t", prefix="input:") == {"input:a": '{"physical": "a"}'}
    engine.forget_window_marks("t", ["2024-01-01", "(dimensions)"])
    assert engine.window_marks("t") == {"2024-01-02": "f2", "input:a": '{"physical": "a"}'}
    engine.forget_window_marks("t", prefix="input:")
    assert engine.window_marks("t") == {"2024-01-02": "f2"}
    with pytest.raises(RuntimeError), engine.transaction():  # commits with the rows or not
        engine.record_window_marks("t", [("2024-01-03", "f3")])
        engine.forget_window_marks("t")
        raise RuntimeError("rolled back")
    assert engine.window_marks("t") == {"2024-01-02": "f2"}
    engine.forget_window_marks("t")
    assert engine.window_marks("t") == {}
    assert engine.window_marks("other") == {"2024-01-01": "o1"}

    # partitions: digests, and the columns of the parts whose columns are known
    engine.record_partitions("s", [("a.csv", "d1", '["x"]'), ("b'c.csv", "d2", None)])
    engine.record_partitions("s2", [("a.csv", "z", '["y"]')])
    assert engine.partitions("s") == {"a.csv": "d1", "b'c.csv": "d2"}
    assert sorted(engine.partition_columns("s"), key=lambda r: r[0]) == [
        ("a.csv", '["x"]'), ("b'c.csv", None)]
    engine.forget_partitions("s", [])
    engine.forget_partitions("s", ["a.csv"])
    assert engine.partitions("s") == {"b'c.csv": "d2"}
    assert engine.partition_columns("s") == [("b'c.csv", None)]
    engine.forget_partitions("s")
    assert engine.partitions("s") == {} and engine.partition_columns("s") == []
    assert engine.partitions("s2") == {"a.csv": "z"}

    # versions of an in-place table
    assert engine.version_head("b") is None
    engine.record_version("b", 1, "b__v1", '["gone"]')
    engine.record_version("b", 2, "b__v2")
    engine.record_version("b", 2, "b__v2", "[]")  # recorded again: replaced, not doubled
    assert engine.version_head("b") == 2
    assert engine.version_left_out("b", 1) == '["gone"]'
    assert engine.version_left_out("b", 2) == "[]"
    assert engine.version_left_out("b", 3) is None
    engine.forget_versions("b")
    assert engine.version_head("b") is None


def rows(engine: Engine, physical: str) -> list[tuple[Any, ...]]:
    return sorted((tuple(r.values()) for r in engine.read(physical).to_pylist()), key=str)


def check_row_statements(engine: Engine) -> None:
    engine.build_arrow("r", pa.table({"k": [1, 2, 3, 4], "v": ["a", "b", "c", None]}))
    r = st.table("r")
    engine.delete_rows(r, st.is_in("k", [1, 2]))
    engine.insert_by_name(r, st.select(exp.alias_(st.lit("n"), "v", copy=False),
                                       exp.alias_(st.lit(9), "k", copy=False)))
    engine.insert_by_name(r, "SELECT 10 AS k, 'x' AS v")  # a transform's text
    assert rows(engine, "r") == [(10, "x"), (3, "c"), (4, None), (9, "n")]
    assert engine.count_rows(r, st.eq("k", 9)) == 1
    assert engine.count_rows(r) == 4

    # a staging table and a correlated condition (a merge by key)
    stage = st.temp("__hw_stage_r")
    engine.create_table_as(stage, "SELECT 3 AS k UNION ALL SELECT 10", temp=True)
    same = exp.EQ(this=st.col("k", "s"), expression=st.col("k", r))
    engine.delete_rows(r, exp.Exists(this=st.select(
        exp.Literal.number(1), from_=exp.alias_(stage.copy(), "s", copy=False), where=same)))
    engine.drop_table(stage, if_exists=False)
    assert rows(engine, "r") == [(4, None), (9, "n")]

    engine.create_table_as(st.table("c"), st.select("*", from_=st.table("r"),
                                                    where=st.eq("k", 4)))
    assert rows(engine, "c") == [(4, None)]
    engine.delete_rows(st.table("c"))
    assert rows(engine, "c") == []
    engine.drop_table(st.table("c"))
    engine.drop_table(st.table("c"))  # IF EXISTS
    assert not engine.exists("c")
