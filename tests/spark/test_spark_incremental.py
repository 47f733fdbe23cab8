"""Incremental windows, quarantining source checks and transform checks: Spark matches
DuckDB step by step, and processes only the windows that changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spark_helpers import project_differences

from headwater import Project
from headwater.testing import write_project

FILES = {
    "sources/telemetry.toml": """
        type = "files"
        path = "data/t/*.csv"
        checks = ["not_null(device_id) on_fail=quarantine", "range(latency_ms, 0, 10000)"]
    """,
    "transforms/stg.sql": """
        -- @incremental: by ts day
        SELECT device_id, CAST(ts AS TIMESTAMP) AS ts, latency_ms FROM telemetry
    """,
    "transforms/daily.sql": """
        -- Daily latency per device.
        -- @incremental: by day day from ts
        -- @check: not_null(device_id)
        -- @check: unique(device_id, day)
        -- @check: accepted_values(device_id, ['d0', 'd1', 'd2'])
        -- @check: range(avg_latency, 0, 1000)
        SELECT device_id, CAST(ts AS DATE) AS day, avg(latency_ms) AS avg_latency,
               quantile_cont(latency_ms, 0.9) AS p90, count(*) AS n
        FROM stg GROUP BY ALL
    """,
    "transforms/hourly.sql": """
        -- @incremental: by hour hour from ts
        SELECT date_trunc('hour', ts) AS hour, count(*) AS n FROM stg GROUP BY ALL
    """,
    "transforms/overall.sql": """
        -- @check: row_count(min=1)
        -- @check: relationships(device_id, daily.device_id)
        SELECT device_id, sum(n) AS n, round(avg(avg_latency), 2) AS latency
        FROM daily GROUP BY ALL
    """,
}


def day_file(root: Path, day: int, rows: int = 6, bump: int = 0) -> None:
    lines = ["device_id,ts,latency_ms"]
    for i in range(rows):
        device = "" if i == 5 else f"d{i % 3}"  # one row without a device: quarantined
        lines.append(f"{device},2026-11-{day:02d} {i:02d}:30:00,{10 * i + bump + day}")
    path = root / f"data/t/2026-11-{day:02d}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def checks(result: Any) -> list[tuple[str, str, str, int]]:
    return sorted((c["node"], c["check"], c["status"], c["failing_rows"])
                  for n in result.nodes for c in n.checks)


def both(duck: Project, on_spark: Project) -> tuple[Any, Any]:
    a, b = duck.run(), on_spark.run()
    assert a.ok, [(n.name, n.error) for n in a.nodes if n.error]
    assert b.ok, [(n.name, n.error) for n in b.nodes if n.error]
    assert checks(b) == checks(a)
    assert project_differences(duck, on_spark) == {}
    return a, b


def test_incremental_windows_and_checks_match_duckdb(spark: Any, tmp_path: Path) -> None:
    duck = Project(write_project(tmp_path / "duck", FILES))
    on_spark = Project(write_project(tmp_path / "spark", FILES,
                                     config='engine = "spark"\n'))
    for project in (duck, on_spark):
        for d in (1, 2, 3):
            day_file(project.root, d)
    _, first = both(duck, on_spark)
    assert any(c[2] == "pass" for c in checks(first))
    quarantined = "SELECT count(*) AS n FROM telemetry__quarantine"
    assert duck.query(quarantined).to_pylist() == [{"n": 3}]
    assert on_spark.query(quarantined).to_pylist() == [{"n": 3}]

    # a new day and a re-delivered one: only their windows are recomputed
    for project in (duck, on_spark):
        day_file(project.root, 4)
        day_file(project.root, 2, bump=7)
    _, second = both(duck, on_spark)
    reasons = {n.name: n.reason for n in second.nodes}
    assert "2 window(s) changed: 2026-11-02, 2026-11-04" in reasons["daily"], reasons

    # nothing new: nothing runs
    again = on_spark.run()
    assert {n.name for n in again.nodes if n.status == "executed"} == set()

    # a file disappears: its windows vanish on both engines
    for project in (duck, on_spark):
        (project.root / "data/t/2026-11-01.csv").unlink()
    both(duck, on_spark)


def test_failing_check_blocks_on_spark_as_on_duckdb(spark: Any, tmp_path: Path) -> None:
    files = dict(FILES)
    files["transforms/overall.sql"] = files["transforms/overall.sql"].replace(
        "row_count(min=1)", "row_count(max=1)")
    duck = Project(write_project(tmp_path / "duck", files))
    on_spark = Project(write_project(tmp_path / "spark", files, config='engine = "spark"\n'))
    for project in (duck, on_spark):
        day_file(project.root, 1)
    a, b = duck.run(), on_spark.run()
    assert not a.ok and not b.ok
    status = {n.name: n.status for n in b.nodes}
    assert status["overall"] == "failed"
    assert {n.name: n.status for n in a.nodes} == status
    assert checks(b) == checks(a)
