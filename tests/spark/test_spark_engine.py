"""The Spark engine's storage: versions, transactions, DML on Parquet, persistence."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from headwater.engines.spark.catalog import Catalog
from headwater.engines.spark.engine import SparkEngine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine_contract import check_bookkeeping, check_row_statements  # noqa: E402


@pytest.fixture
def engine(spark: Any, tmp_path: Path) -> SparkEngine:
    e = SparkEngine(tmp_path / "wh")
    e.open()
    e.build_arrow("t", pa.table({"k": [1, 2, 3, 4], "v": ["a", "b", "c", None]}))
    return e


def rows(engine: SparkEngine, physical: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r.values()) for r in engine.read(physical).to_pylist())


def test_a_new_process_sees_tables_and_names(engine: SparkEngine, tmp_path: Path) -> None:
    engine.build_sql("u", 'SELECT k * 10 AS k10 FROM "_hw"."t" WHERE v IS NOT NULL')
    engine.build_sql("w", 'SELECT k10 + 1 AS k11 FROM "_hw"."u"', view=True)
    engine.publish("prod", "u_public", "u")
    engine.publish("dev", "w_public", "w")
    engine.close()
    other = SparkEngine(tmp_path / "wh")  # what another process would open
    other.open(read_only=True)
    assert other.physical_tables() == {"t", "u", "w"}
    assert rows(other, "w") == [(11,), (21,), (31,)]
    assert other.query("SELECT sum(k10) AS s FROM u_public").to_pylist() == [{"s": 60}]
    assert other.query("SELECT max(k11) AS m FROM dev.w_public").to_pylist() == [{"m": 31}]
    assert other.columns("u") == [("k10", "BIGINT")]


def test_delete_insert_alter_in_a_transaction(engine: SparkEngine) -> None:
    with engine.transaction():
        engine.execute('DELETE FROM "_hw"."t" WHERE k IN (?, ?)', [1, 2])
        engine.execute('INSERT INTO "_hw"."t" BY NAME SELECT 9 AS k')
        engine.execute('ALTER TABLE "_hw"."t" ADD COLUMN extra VARCHAR')
        assert rows(engine, "t") == [(3, "c", None), (4, None, None), (9, None, None)]
    assert rows(engine, "t") == [(3, "c", None), (4, None, None), (9, None, None)]
    assert engine.columns("t")[-1] == ("extra", "VARCHAR")


def test_rollback_keeps_the_previous_version(engine: SparkEngine, tmp_path: Path) -> None:
    def catalog() -> tuple[str, str]:
        log = tmp_path / "wh/_hw_catalog.log"
        return ((tmp_path / "wh/_hw_catalog.json").read_text(),
                log.read_text() if log.exists() else "")

    before_catalog = catalog()
    before = {p for p in (tmp_path / "wh/_hw").rglob("*") if p.is_dir()}
    with pytest.raises(RuntimeError), engine.transaction():
        engine.execute('DELETE FROM "_hw"."t" WHERE k > 1')
        engine.execute('INSERT INTO "_hw"."t" BY NAME SELECT 7 AS k, \'x\' AS v')
        raise RuntimeError("crash")
    assert rows(engine, "t") == [(1, "a"), (2, "b"), (3, "c"), (4, None)]
    assert catalog() == before_catalog
    after = {p for p in (tmp_path / "wh/_hw").rglob("*") if p.is_dir()}
    assert after <= before  # the segments the transaction wrote are gone


def test_segments_a_crash_left_are_swept(engine: SparkEngine, tmp_path: Path) -> None:
    orphan = tmp_path / "wh/_hw/t/0123456789abcdef"
    orphan.mkdir()
    (orphan / "part-0.parquet").write_bytes(b"half written")
    other = SparkEngine(tmp_path / "wh")
    other.open()
    assert not orphan.exists()
    assert rows(other, "t") == [(1, "a"), (2, "b"), (3, "c"), (4, None)]


def test_correlated_delete_on_the_target(engine: SparkEngine) -> None:
    engine.execute('CREATE OR REPLACE TEMP TABLE "s" AS SELECT 2 AS k UNION ALL SELECT 4')
    engine.execute('DELETE FROM "_hw"."t" WHERE EXISTS (SELECT 1 FROM "s" AS s'
                   ' WHERE s."k" = "_hw"."t"."k")')
    engine.execute('DROP TABLE "s"')
    assert rows(engine, "t") == [(1, "a"), (3, "c")]


def test_fingerprint_is_order_independent_and_content_sensitive(engine: SparkEngine) -> None:
    engine.build_arrow("t2", pa.table({"k": [4, 3, 2, 1], "v": [None, "c", "b", "a"]}))
    engine.build_sql("t3", 'SELECT * FROM "_hw"."t" ORDER BY k DESC')
    engine.build_arrow("t4", pa.table({"k": [1, 2, 3, 4], "v": ["a", "b", "c", "d"]}))
    fps = {p: engine.stats(p).content_fp for p in ("t", "t2", "t3", "t4")}
    assert fps["t"] == fps["t2"] == fps["t3"]
    assert fps["t4"] != fps["t"]
    # appending and deleting keep the sums right
    with engine.transaction():
        engine.execute('INSERT INTO "_hw"."t4" BY NAME SELECT 5 AS k, \'e\' AS v')
        engine.execute('DELETE FROM "_hw"."t4" WHERE k = 5')
    assert engine.stats("t4").content_fp == fps["t4"]


def test_bookkeeping_tables(engine: SparkEngine, tmp_path: Path) -> None:
    with engine.transaction():
        engine.execute('INSERT INTO "_hw_meta".windows VALUES (?, ?, ?)', ["t", "w1", "f1"])
        engine.execute('INSERT INTO "_hw_meta".windows VALUES (?, ?, ?)', ["t", "w2", "f2"])
    engine.execute('DELETE FROM "_hw_meta".windows WHERE physical = ? AND label IN (\'w1\')',
                   ["t"])
    assert engine.fetch('SELECT label, fp FROM "_hw_meta".windows WHERE physical = ?',
                        ["t"]) == [("w2", "f2")]
    saved = Catalog(tmp_path / "wh")  # as another process reads it
    saved.load()
    assert saved.meta["windows"] == [["t", "w2", "f2"]]


def test_bookkeeping_methods_keep_catalog_rows(engine: SparkEngine, tmp_path: Path) -> None:
    """The engine's bookkeeping methods answer as DuckDB's SQL does (tests/engine_contract.py),
    from catalog rows that another process reads back as text."""
    check_bookkeeping(engine)
    engine.record_version("b", 3, "b__v3")
    saved = Catalog(tmp_path / "wh")
    saved.load()
    assert saved.meta["versions"] == [["b", "3", "b__v3", None, None]]
    assert saved.meta["windows"] == [["other", "2024-01-01", "o1"]]


def test_row_statements_from_trees(engine: SparkEngine) -> None:
    check_row_statements(engine)


def test_a_torn_log_line_is_ignored(engine: SparkEngine, tmp_path: Path) -> None:
    engine.build_arrow("t5", pa.table({"k": [1]}))
    with (tmp_path / "wh/_hw_catalog.log").open("a") as log:
        log.write('{"seq": 99, "tables": {"t": nu')  # a crash in the middle of a commit
    other = SparkEngine(tmp_path / "wh")
    other.open()
    assert {"t", "t5"} <= other.physical_tables()
    other.build_arrow("t6", pa.table({"k": [2]}))  # the next commit is a line of its own
    third = SparkEngine(tmp_path / "wh")
    third.open(read_only=True)
    assert {"t", "t5", "t6"} <= third.physical_tables()


def test_partition_reads_for_sinks(engine: SparkEngine) -> None:
    fps = engine.partition_fingerprints("t", "v")
    assert set(fps) == {"a", "b", "c", "None"} or set(fps) >= {"a", "b", "c"}
    part = engine.reader("t", where=("v", "b")).read_all()
    assert part.to_pylist() == [{"k": 2, "v": "b"}]
