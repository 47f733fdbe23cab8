"""Incremental transforms: only changed windows are processed; results equal a full rebuild."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from headwater import Project
from headwater.connectors.filecache import FINE_NS
from headwater.testing import write_project

CHECKSUM = "SELECT count(*) AS n, coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR AS h FROM {} AS t"


def day_file(root: Path, day: int, rows: int = 4, bump: int = 0) -> None:
    lines = ["device_id,ts,latency_ms"]
    for i in range(rows):
        lines.append(f"d{i % 2},2026-11-{day:02d} {i:02d}:00:00,{10 * i + bump}")
    path = root / f"data/t/2026-11-{day:02d}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


FILES = {
    "sources/telemetry.toml": 'type = "files"\npath = "data/t/*.csv"\n',
    "sources/devices.csv.toml": "",
    "transforms/stg.sql": """
        -- @incremental: by ts day
        SELECT device_id, CAST(ts AS TIMESTAMP) AS ts, latency_ms FROM telemetry
    """,
    "transforms/daily.sql": """
        -- Daily latency per device.
        -- @incremental: by day day from ts
        SELECT device_id, CAST(ts AS DATE) AS day, avg(latency_ms) AS avg_latency,
               count(*) AS n
        FROM stg GROUP BY ALL
    """,
    "transforms/overall.sql": "SELECT device_id, sum(n) AS n FROM daily GROUP BY ALL\n",
}


def make(tmp_path: Path, name: str = "p") -> Project:
    files = {k: v for k, v in FILES.items() if v}
    root = write_project(tmp_path / name, files)
    return Project(root)


def checksums(project: Project) -> dict[str, tuple[int, str]]:
    out = {}
    for t in ("stg", "daily", "overall"):
        row = project.query(CHECKSUM.format(t)).to_pylist()[0]
        out[t] = (row["n"], row["h"])
    return out


def full_rebuild(project: Project, tmp_path: Path) -> dict[str, tuple[int, str]]:
    ref = tmp_path / "reference"
    shutil.rmtree(ref, ignore_errors=True)
    shutil.copytree(project.root, ref, ignore=shutil.ignore_patterns(".headwater"))
    other = Project(ref)
    assert other.run().ok
    return checksums(other)


def reasons(result) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {n.name: n.reason for n in result.nodes}


def test_new_day_processes_one_window(tmp_path: Path) -> None:
    project = make(tmp_path)
    for d in (1, 2, 3):
        day_file(project.root, d)
    assert project.run().ok
    day_file(project.root, 4)
    result = project.run()
    assert result.ok
    r = reasons(result)
    assert "1 window(s) changed: 2026-11-04" in r["stg"]
    assert "1 window(s) changed: 2026-11-04" in r["daily"]
    assert checksums(project) == full_rebuild(project, tmp_path)


def test_adding_a_day_reads_only_the_new_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    """No statement of an add-a-day run hashes or filters the history by computing window
    labels of every row: each incremental node learns which windows changed from its
    upstream's bookkeeping, and content fingerprints are sums of kept pieces."""
    from headwater.engines.duckdb import DuckDBEngine

    project = make(tmp_path)
    for d in range(1, 8):
        day_file(project.root, d)
    # a file hashed within moments of its last write is hashed again by the next run
    # (its timestamps could not show a write in the same clock tick): not this history
    time.sleep(FINE_NS / 1e9)
    assert project.run().ok
    seen: list[str] = []
    for name in ("execute", "fetch"):
        original = getattr(DuckDBEngine, name)

        def spy(self, sql, params=None, _original=original):  # type: ignore[no-untyped-def]
            seen.append(" ".join(sql.split()))
            return _original(self, sql, params)

        monkeypatch.setattr(DuckDBEngine, name, spy)
    scans: list[str] = []
    original_stats = DuckDBEngine.stats
    monkeypatch.setattr(DuckDBEngine, "stats",
                        lambda self, physical: scans.append(physical) or original_stats(
                            self, physical))
    import headwater.connectors.files.source as files_mod

    hashed: list[str] = []
    digest = files_mod._file_digest
    monkeypatch.setattr(files_mod, "_file_digest",
                        lambda path: hashed.append(path.name) or digest(path))
    day_file(project.root, 8)
    result = project.run()
    assert result.ok
    assert hashed == ["2026-11-08.csv"]  # once, by planning; the load reuses it
    assert "1 window(s) changed: 2026-11-08" in reasons(result)["daily"]
    hashing = [q for q in seen if "hash(" in q.lower()]
    assert hashing, "the new rows are counted"
    # the day as a typed literal, whichever way the statement spells one
    day = ("TIMESTAMP '2026-11-08 00:00:00'", "CAST('2026-11-08 00:00:00' AS TIMESTAMP)",
           "DATE '2026-11-08'", "CAST('2026-11-08' AS DATE)")
    for q in hashing:  # only the new file, a range of days around the new one, or the
        # rows one version of a table added or removed (engines.versioning)
        delta = '"_hw_vf" > ' in q or '"_hw_vt" > ' in q
        assert "_hw_file\" IN ('data/t/2026-11-08.csv')" in q or delta or any(
            d in q for d in day), q
    for q in seen:
        if q.startswith("DELETE FROM \"_hw\"") and "_hw_file" not in q:
            assert "2026-11-08" in q and ">=" in q, q  # pruned to the window, not a scan
    # full-table content scans only for the small non-incremental table built anew
    phys = {n.name: n for n in result.nodes}
    assert all(p.startswith("overall__") for p in scans), scans
    assert phys["overall"].status == "executed"
    assert checksums(project) == full_rebuild(project, tmp_path)


def test_two_nodes_reading_one_source_count_its_files_once(tmp_path: Path) -> None:
    files = {k: v for k, v in FILES.items() if v}
    files["transforms/stg2.sql"] = """
        -- @incremental: by ts day
        SELECT device_id, CAST(ts AS TIMESTAMP) AS ts, latency_ms * 2 AS double FROM telemetry
    """
    files["headwater.toml"] = 'name = "p"\nthreads = 4\n'
    root = write_project(tmp_path / "p", files)
    project = Project(root)
    for d in (1, 2, 3):
        day_file(root, d)
    assert project.run().ok
    day_file(root, 4)
    result = project.run()
    assert result.ok
    assert "2026-11-04" in reasons(result)["stg2"] and "2026-11-04" in reasons(result)["stg"]
    with project.reading() as engine:  # bookkeeping: not reachable by `headwater query`
        dup = engine.query(
            "SELECT count(*) AS n FROM (SELECT physical, key, part, label FROM"
            " _hw_meta.window_stats GROUP BY ALL HAVING count(*) > 1)").to_pylist()
    assert dup == [{"n": 0}]
    assert checksums(project) == full_rebuild(project, tmp_path)


def test_redelivered_day_replaces_its_rows(tmp_path: Path) -> None:
    project = make(tmp_path)
    for d in (1, 2, 3):
        day_file(project.root, d)
    project.run()
    day_file(project.root, 2, rows=6, bump=5)
    result = project.run()
    assert "2026-11-02" in reasons(result)["daily"]
    assert checksums(project) == full_rebuild(project, tmp_path)


def test_deleted_day_is_removed(tmp_path: Path) -> None:
    project = make(tmp_path)
    for d in (1, 2, 3):
        day_file(project.root, d)
    project.run()
    (project.root / "data/t/2026-11-01.csv").unlink()
    result = project.run()
    assert "1 window(s) removed" in reasons(result)["stg"]
    assert checksums(project) == full_rebuild(project, tmp_path)


def test_deleted_files_can_be_kept(tmp_path: Path) -> None:
    project = make(tmp_path)
    toml = project.root / "sources/telemetry.toml"
    toml.write_text(toml.read_text() + 'deleted_files = "keep"\n')
    for d in (1, 2, 3):
        day_file(project.root, d)
    assert project.run().ok
    before = checksums(project)
    (project.root / "data/t/2026-11-01.csv").unlink()  # the landing folder is cleaned up
    result = project.run()
    assert result.ok and "removed" not in reasons(result)["stg"]
    assert checksums(project) == before
    again = project.run()  # and it stays that way: nothing to do
    assert again.ok and not [n.name for n in again.nodes if n.status == "executed"]
    day_file(project.root, 1, rows=6, bump=3)  # the file comes back, changed: reloaded
    result = project.run()
    assert "2026-11-01" in reasons(result)["daily"]
    assert checksums(project) == full_rebuild(project, tmp_path)


def test_a_dimension_change_and_a_deleted_day_in_one_run(tmp_path: Path) -> None:
    """Every window is redone when a dimension changes; a window whose input vanished in
    the same run must still lose its rows (as a full rebuild would)."""
    files = {k: v for k, v in FILES.items() if v and k != "transforms/overall.sql"}
    files["sources/names.toml"] = 'type = "files"\npath = "data/names.csv"\n'
    files["transforms/daily.sql"] = """
        -- @incremental: by day day from ts
        SELECT s.device_id, n.label, CAST(s.ts AS DATE) AS day, count(*) AS n
        FROM stg AS s LEFT JOIN names AS n ON n.device_id = s.device_id GROUP BY ALL
    """
    root = write_project(tmp_path / "p", files)
    (root / "data").mkdir(exist_ok=True)
    (root / "data/names.csv").write_text("device_id,label\nd0,zero\nd1,one\n")
    project = Project(root)
    for d in (1, 2, 3):
        day_file(root, d)
    assert project.run().ok
    (root / "data/names.csv").write_text("device_id,label\nd0,ZERO\nd1,one\n")
    (root / "data/t/2026-11-01.csv").unlink()
    result = project.run()
    assert result.ok, [n.error for n in result.nodes if n.error]
    assert "a dimension upstream changed" in reasons(result)["daily"]
    days = project.query("SELECT DISTINCT day::VARCHAR AS d FROM daily ORDER BY 1").to_pylist()
    assert [r["d"] for r in days] == ["2026-11-02", "2026-11-03"]
    ref = tmp_path / "reference"
    shutil.copytree(root, ref, ignore=shutil.ignore_patterns(".headwater"))
    other = Project(ref)
    assert other.run().ok
    for t in ("stg", "daily"):
        assert project.query(CHECKSUM.format(t)).to_pylist() == other.query(
            CHECKSUM.format(t)).to_pylist(), t


def test_code_change_rebuilds_from_scratch_and_lookback(tmp_path: Path) -> None:
    project = make(tmp_path)
    for d in (1, 2, 3):
        day_file(project.root, d)
    project.run()
    daily = project.root / "transforms/daily.sql"
    text = daily.read_text()
    daily.write_text(text.replace("-- @incremental", "-- @lookback: 2\n-- @incremental"))
    result = project.run()
    assert "full build" in reasons(result)["daily"]
    day_file(project.root, 4)
    result = project.run()
    # the new window plus the last 2 by lookback
    assert "3 window(s)" in reasons(result)["daily"]
    assert checksums(project) == full_rebuild(project, tmp_path)


def test_nothing_new_runs_nothing(tmp_path: Path) -> None:
    project = make(tmp_path)
    day_file(project.root, 1)
    project.run()
    assert all(n.status == "skipped" for n in project.run().nodes)


def test_full_refresh_rebuilds_incremental(tmp_path: Path) -> None:
    project = make(tmp_path)
    day_file(project.root, 1)
    project.run()
    result = project.run("daily", full_refresh=True)
    assert "forced" in reasons(result)["daily"]
    assert checksums(project) == full_rebuild(project, tmp_path)


@pytest.mark.parametrize("strategy", ["append by seq", "merge device_id by seq"])
def test_append_and_merge(tmp_path: Path, strategy: str) -> None:
    root = write_project(tmp_path / "a", {
        "data/e.csv": "device_id,seq,v\nd1,1,10\nd2,2,20\n",
        "sources/events.toml": 'type = "files"\npath = "data/e.csv"\n',
        "transforms/latest.sql": f"-- @incremental: {strategy}\n"
                                 "SELECT device_id, seq, v FROM events\n",
    })
    project = Project(root)
    project.run()
    (root / "data/e.csv").write_text("device_id,seq,v\nd1,1,10\nd2,2,20\nd1,3,30\n")
    result = project.run()
    assert result.ok, [n.error for n in result.nodes]
    rows = project.query("SELECT device_id, seq, v FROM latest ORDER BY seq").to_pylist()
    if strategy.startswith("append"):
        assert [r["seq"] for r in rows] == [1, 2, 3]
    else:
        assert rows == [{"device_id": "d2", "seq": 2, "v": 20},
                        {"device_id": "d1", "seq": 3, "v": 30}]


def test_plan_shows_windows_and_backfill_recomputes_a_range(tmp_path: Path) -> None:
    project = make(tmp_path)
    for d in (1, 2, 3, 4):
        day_file(project.root, d)
    project.run()
    day_file(project.root, 5)
    plan = {n.name: n.reason for n in project.plan(preview=True).nodes}
    assert plan["telemetry"].endswith("would load 1 partition(s): data/t/2026-11-05.csv")
    assert "known once its upstreams are built" in plan["daily"]
    project.run("telemetry")
    plan = {n.name: n.reason for n in project.plan(preview=True).nodes}
    assert "would process 1 window(s) changed: 2026-11-05" in plan["stg"]
    project.run()
    result = project.backfill("daily", "2026-11-02", "2026-11-04")
    reasons_ = reasons(result)
    assert "backfill 2026-11-02 .. 2026-11-04" in reasons_["daily"]
    assert "2 window(s) backfill: 2026-11-02, 2026-11-03" in reasons_["daily"]
    assert checksums(project) == full_rebuild(project, tmp_path)
    from headwater.errors import SelectionError

    with pytest.raises(SelectionError, match="not a time-window incremental"):
        project.backfill("overall", "2026-11-01", "2026-11-02")
