"""The additive bookkeeping behind incremental runs (headwater.engines.window_stats)."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.engines import window_stats as ws
from headwater.engines.duckdb import DuckDBEngine


@pytest.fixture
def engine(tmp_path: Path) -> DuckDBEngine:
    e = DuckDBEngine(tmp_path / "wh.duckdb")
    e.open()
    yield e
    e.close()


TYPES = ["TIMESTAMP", "DATE", "TIMESTAMPTZ", "TIMESTAMP_NS"]


# 6,000 rows 37 minutes apart from 2023-12-30: across a year end, a leap day, DST changes
@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "America/Adak"])
@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize("grain", ["hour", "day", "month"])
def test_window_predicate_selects_exactly_the_windows(
    engine: DuckDBEngine, kind: str, grain: str, zone: str
) -> None:
    con = engine.con
    con.execute(f"SET TimeZone = '{zone}'")
    con.execute(
        f"CREATE OR REPLACE TABLE _hw.t AS SELECT CASE WHEN i % 97 = 0 THEN NULL ELSE"
        f" (TIMESTAMP '2023-12-30 00:00:00' + i * INTERVAL 37 MINUTE)::{kind} END AS ts"
        f" FROM range(6000) AS r(i)")
    label = ws.label_sql("ts", grain)
    labels = [w for (w,) in con.execute(
        f"SELECT DISTINCT {label} FROM _hw.t ORDER BY 1").fetchall()]
    picks = [labels[:1], labels[-1:], labels[3:5], [labels[0], labels[-2]],
             ["(null)"], [labels[2], "(null)"]]
    for chosen in picks:
        pred = ws.window_predicate("ts", grain, chosen, kind)
        exact = f"{label} IN ({', '.join(repr(w) for w in chosen)})"
        got = con.execute(f"SELECT count(*) FROM _hw.t WHERE {pred}").fetchall()[0][0]
        want = con.execute(f"SELECT count(*) FROM _hw.t WHERE {exact}").fetchall()[0][0]
        assert got == want, (kind, grain, zone, chosen, pred)
        assert want > 0


def test_window_predicate_without_labels_selects_nothing() -> None:
    assert ws.window_predicate("ts", "day", []) == "FALSE"


def test_window_sums_add_up_to_a_scan_and_follow_rewrites(engine: DuckDBEngine) -> None:
    con = engine.con
    con.execute("CREATE TABLE _hw.n AS SELECT (TIMESTAMP '2024-01-01' + i * INTERVAL 1 HOUR)"
                " AS ts, i % 5 AS k FROM range(24 * 40) AS r(i)")
    ws.record_windows(engine, "n", "ts", "hour", None)

    def scan(grain: str) -> dict[str, str]:
        return dict(con.execute(
            f"SELECT {ws.label_sql('ts', grain)} AS w, count(*)::VARCHAR || ':' ||"
            " coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM _hw.n AS t GROUP BY w"
        ).fetchall())

    for grain in ("hour", "day", "month"):  # coarser windows are sums of finer ones
        sums = ws.node_windows(engine, "n", "ts", grain)
        assert sums is not None and ws.fingerprints(sums) == scan(grain)
    assert ws.node_windows(engine, "n", "k", "day") is None  # nothing kept for that column
    # rewrite some hours (as an incremental run does) and recount only those
    con.execute("DELETE FROM _hw.n WHERE ts >= TIMESTAMP '2024-01-03 05:00:00'"
                " AND ts < TIMESTAMP '2024-01-03 07:00:00'")
    con.execute("INSERT INTO _hw.n VALUES (TIMESTAMP '2024-01-03 05:30:00', 99)")
    ws.record_windows(engine, "n", "ts", "hour", {"2024-01-03T05", "2024-01-03T06"})
    sums = ws.node_windows(engine, "n", "ts", "hour")
    assert sums is not None and ws.fingerprints(sums) == scan("hour")
    stats = ws.node_content(engine, "n", "ts", "hour")
    assert stats is not None and stats.content_fp == engine.stats("n").content_fp


def test_a_table_without_bookkeeping_is_counted_whole_once(engine: DuckDBEngine) -> None:
    engine.con.execute("CREATE TABLE _hw.old AS SELECT DATE '2024-01-01' + i::INTEGER AS d"
                       " FROM range(10) AS r(i)")
    assert ws.node_windows(engine, "old", "d", "day") is None
    ws.record_windows(engine, "old", "d", "day", {"2024-01-02"})  # an older table: all of it
    sums = ws.node_windows(engine, "old", "d", "day")
    assert sums is not None and len(sums) == 10


def _load_part(engine: DuckDBEngine, part: str, rows: str) -> None:
    engine.execute("DELETE FROM _hw.src WHERE _hw_file = ?", [part])
    engine.execute("DELETE FROM _hw_meta.partitions WHERE physical = 'src' AND part = ?", [part])
    ws.forget_parts(engine, "src", [part])
    engine.execute(f"INSERT INTO _hw.src SELECT *, '{part}' FROM ({rows})")
    engine.execute("INSERT INTO _hw_meta.partitions VALUES ('src', ?, 'x')", [part])


def test_file_sums_count_new_files_only_and_survive_a_new_column(engine: DuckDBEngine) -> None:
    con = engine.con
    con.execute("CREATE TABLE _hw.src (ts TIMESTAMP, v INTEGER, _hw_file VARCHAR)")
    for day in range(1, 4):
        _load_part(engine, f"d{day}.csv", f"SELECT TIMESTAMP '2024-01-0{day} 10:00' + i *"
                   " INTERVAL 1 HOUR, i FROM range(20) AS r(i)")

    def scan() -> dict[str, str]:
        return dict(con.execute(
            f"SELECT {ws.label_sql('ts', 'day')} AS w, count(*)::VARCHAR || ':' ||"
            " coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM (SELECT * EXCLUDE (_hw_file)"
            " FROM _hw.src) AS t GROUP BY w").fetchall())

    sums = ws.part_windows(engine, "src", "ts", "day")
    assert sums is not None and ws.fingerprints(sums) == scan()
    kept = con.execute("SELECT count(DISTINCT part) FROM _hw_meta.window_stats"
                       " WHERE physical = 'src'").fetchall()[0][0]
    assert kept == 3
    # a re-delivered file: only it is counted again
    _load_part(engine, "d2.csv", "SELECT TIMESTAMP '2024-01-02 01:00', 7")
    assert ws.fingerprints(ws.part_windows(engine, "src", "ts", "day") or {}) == scan()
    stats = ws.part_content(engine, "src")
    assert stats is not None and stats.content_fp == engine.stats("src").content_fp
    # schema drift: a new column changes every row's hash; nothing stale is used
    con.execute("ALTER TABLE _hw.src ADD COLUMN extra VARCHAR")
    assert ws.fingerprints(ws.part_windows(engine, "src", "ts", "day") or {}) == scan()
    stats = ws.part_content(engine, "src")
    assert stats is not None and stats.content_fp == engine.stats("src").content_fp
    keys = {k for (k,) in con.execute(
        "SELECT DISTINCT key FROM _hw_meta.window_stats WHERE physical = 'src'").fetchall()}
    assert len(keys) == 2  # the window key and the content key, each under the new columns


def test_a_preview_counts_without_writing(engine: DuckDBEngine) -> None:
    engine.con.execute("CREATE TABLE _hw.src (ts TIMESTAMP, _hw_file VARCHAR)")
    _load_part(engine, "a", "SELECT TIMESTAMP '2024-01-01'")
    sums = ws.part_windows(engine, "src", "ts", "day", save=False)
    assert sums is not None and list(sums) == ["2024-01-01"] and sums["2024-01-01"][0] == 1
    assert engine.fetch("SELECT count(*) FROM _hw_meta.window_stats")[0][0] == 0


def test_dropping_or_replacing_a_table_forgets_its_sums(engine: DuckDBEngine) -> None:
    engine.con.execute("CREATE TABLE _hw.n AS SELECT TIMESTAMP '2024-01-01' AS ts")
    ws.record_windows(engine, "n", "ts", "day", None)
    engine.con.execute("CREATE TABLE _hw.n2 AS SELECT TIMESTAMP '2024-01-02' AS ts")
    engine.swap_in("n2", "n")
    assert ws.node_windows(engine, "n", "ts", "day") is None
    ws.record_windows(engine, "n", "ts", "day", None)
    engine.drop_physical("n")
    assert engine.fetch("SELECT count(*) FROM _hw_meta.window_stats")[0][0] == 0


def test_cursor_ranges_count_each_load_once(engine: DuckDBEngine) -> None:
    """A cursor source's loads are ranges of the cursor; their sums add up to a scan."""
    import pyarrow as pa

    from headwater.run.ingest import _cursor_bookkeeping

    def load(rows: list[tuple[int | None, str]], append: bool) -> None:
        t = pa.table({"id": [r[0] for r in rows], "ts": [r[1] for r in rows]})
        _since, before, after = _cursor_bookkeeping(engine, "orders", "id", append)
        engine.load_arrow("orders", pa.RecordBatchReader.from_batches(t.schema, t.to_batches()),
                          [("id", "id", "BIGINT"), ("ts", "ts", "TIMESTAMP")],
                          append=append, before=before, after=after)

    def scan(grain: str = "day") -> dict[str, str]:
        return dict(engine.fetch(
            f"SELECT {ws.label_sql('ts', grain)} AS w, count(*)::VARCHAR || ':' ||"
            " coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM _hw.orders AS t GROUP BY w"))

    load([(1, "2024-01-01 10:00"), (2, "2024-01-01 11:00"), (None, "2024-01-02 09:00")], False)
    load([(3, "2024-01-02 10:00"), (4, "2024-01-03 10:00")], True)
    load([], True)  # nothing new: no empty range
    parts = [p for (p,) in engine.fetch("SELECT part FROM _hw_meta.partitions")]
    assert len(parts) == 2 and all(p.startswith(ws.CURSOR_PART) for p in parts)
    sums = ws.part_windows(engine, "orders", "ts", "day")
    assert sums is not None and ws.fingerprints(sums) == scan()
    stats = ws.part_content(engine, "orders")
    assert stats is not None and stats.content_fp == engine.stats("orders").content_fp
    # the next load is counted alone; the earlier ranges' sums are reused
    load([(5, "2024-01-03 12:00")], True)
    computed: list[str] = []
    original = engine.fetch

    def spy(sql: str, params: list | None = None):  # type: ignore[no-untyped-def]
        computed.append(sql)
        return original(sql, params)

    engine.fetch = spy  # type: ignore[method-assign]
    try:
        got = ws.part_windows(engine, "orders", "ts", "day")
    finally:
        del engine.fetch
    assert ws.fingerprints(got or {}) == scan()
    counting = [q for q in computed if "hash(" in q.lower()]
    assert len(counting) == 1 and "CAST('4' AS BIGINT)" in counting[0]
    # a full reload starts over
    load([(9, "2024-02-01 00:00")], False)
    assert len(engine.fetch("SELECT part FROM _hw_meta.partitions")) == 1
    assert ws.fingerprints(ws.part_windows(engine, "orders", "ts", "day") or {}) == scan()


def test_rows_no_part_accounts_for_mean_a_scan(engine: DuckDBEngine) -> None:
    engine.con.execute("CREATE TABLE _hw.src (ts TIMESTAMP, _hw_file VARCHAR)")
    _load_part(engine, "a", "SELECT TIMESTAMP '2024-01-01'")
    engine.execute("INSERT INTO _hw.src VALUES (TIMESTAMP '2024-01-02', 'stray')")
    assert ws.part_windows(engine, "src", "ts", "day") is None
    assert ws.part_content(engine, "src") is None
