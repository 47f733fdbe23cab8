"""Checks: write-audit-publish. A failing error check keeps the previous version live."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater import Project
from headwater.errors import ProjectError
from headwater.testing import write_project

BASE = {
    "data/devices.csv": "device_id,merchant_id\nd1,m1\nd2,m1\nd3,m2\n",
    "data/merchants.csv": "merchant_id,name\nm1,Corner Coffee\nm2,Bakery\n",
    "data/readings.csv": "device_id,status,battery_pct,ts\n"
                         "d1,online,80,2026-11-01 10:00:00\n"
                         "d2,offline,5,2026-11-01 11:00:00\n"
                         "d3,degraded,50,2026-11-01 12:00:00\n",
    "sources/devices.toml": 'type = "files"\npath = "data/devices.csv"\n',
    "sources/merchants.toml": 'type = "files"\npath = "data/merchants.csv"\n',
    "sources/readings.toml": 'type = "files"\npath = "data/readings.csv"\n',
}

PASSING = {
    "not_null(device_id)": "",
    "unique(device_id)": "",
    "accepted_values(status, ['online', 'offline', 'degraded'])": "",
    "relationships(merchant_id, merchants.merchant_id)": "",
    "row_count(min=1, max=10)": "",
    "freshness(ts, 100000 days)": "",
    "range(battery_pct, 0, 100)": "",
    "expression(battery_pct between 0 and 100)": "",
}
FAILING = {
    "not_null(merchant_id)": "data/devices.csv:d1,m1:d1,",
    "unique(merchant_id)": "",
    "accepted_values(status, ['online', 'offline'])": "",
    "relationships(merchant_id, merchants.merchant_id)": "data/merchants.csv:m2,Bakery\n:",
    "row_count(min=5)": "",
    "freshness(ts, 1 day)": "",
    "range(battery_pct, 10, 100)": "",
    "expression(battery_pct > 20)": "",
}

SQL = """
-- Devices with their latest reading.
-- @check: {check}
SELECT r.device_id, d.merchant_id, r.status, r.battery_pct, CAST(r.ts AS TIMESTAMP) AS ts
FROM readings r JOIN devices d USING (device_id)
"""


def project_with(tmp_path: Path, check: str, tweak: str = "") -> Project:
    files = dict(BASE)
    if tweak:
        path, old, new = tweak.split(":", 2)
        files[path] = files[path].replace(old, new)
    files["transforms/health.sql"] = SQL.format(check=check)
    return Project(write_project(tmp_path / "p", files))


@pytest.mark.parametrize("check", list(PASSING))
def test_builtin_check_passes(tmp_path: Path, check: str) -> None:
    project = project_with(tmp_path, check)
    result = project.run()
    assert result.ok, [n.error for n in result.nodes]
    health = {n.name: n for n in result.nodes}["health"]
    assert [c["status"] for c in health.checks] == ["pass"]
    stored = project.state.latest_checks()["health"]
    assert stored[0]["status"] == "pass" and stored[0]["failing_rows"] == 0


@pytest.mark.parametrize("check,tweak", list(FAILING.items()))
def test_builtin_check_fails_and_keeps_previous_version(
    tmp_path: Path, check: str, tweak: str
) -> None:
    project = project_with(tmp_path, "not_null(device_id)")
    assert project.run().ok
    before = project.query("SELECT * FROM health ORDER BY device_id").to_pylist()
    # break the data (where the tweak says) and declare the check under test
    files = dict(BASE)
    if tweak:
        path, old, new = tweak.split(":", 2)
        (project.root / path).write_text(files[path].replace(old, new))
    (project.root / "transforms/health.sql").write_text(SQL.format(check=check))
    result = project.run()
    health = {n.name: n for n in result.nodes}["health"]
    assert not result.ok
    assert health.status == "failed" and health.reason == "check failed"
    failed = [c for c in health.checks if c["status"] == "fail"]
    assert failed and failed[0]["failing_rows"] > 0
    assert len(failed[0]["sample"]) <= 5
    # the previous version is still what consumers see
    assert project.query("SELECT * FROM health ORDER BY device_id").to_pylist() == before
    latest = {c["check"]: c for c in project.state.latest_checks()["health"]}
    assert latest[check]["status"] == "fail"


def test_warn_severity_publishes(tmp_path: Path) -> None:
    project = project_with(tmp_path, "range(battery_pct, 10, 100) severity=warn")
    result = project.run()
    assert result.ok
    health = {n.name: n for n in result.nodes}["health"]
    assert health.checks[0]["status"] == "warn"
    assert any("severity warn" in w for w in health.warnings)
    assert project.table("health").num_rows == 3


def test_failed_check_skips_downstream(tmp_path: Path) -> None:
    files = dict(BASE)
    files["transforms/health.sql"] = SQL.format(check="range(battery_pct, 10, 100)")
    files["transforms/report.sql"] = "SELECT count(*) AS n FROM health\n"
    project = Project(write_project(tmp_path / "p", files))
    result = project.run()
    st = {n.name: (n.status, n.reason) for n in result.nodes}
    assert st["report"] == ("skipped", "upstream health failed")


def test_malformed_check_is_a_clear_error(tmp_path: Path) -> None:
    project = project_with(tmp_path, "not_nul(device_id)")
    with pytest.raises(ProjectError) as info:
        project.plan()
    text = info.value.render()
    assert "transforms/health.sql:2:12" in text and "did you mean 'not_null'" in text


def test_incremental_checks_only_new_rows(tmp_path: Path) -> None:
    files = {
        "data/r/day1.csv": "device_id,battery_pct,ts\nd1,-5,2026-11-01 10:00:00\n",
        "sources/readings.toml": 'type = "files"\npath = "data/r/*.csv"\n',
        "transforms/clean.sql": "-- @incremental: by ts day\n"
                                "-- @check: range(battery_pct, 0, 100) severity=warn\n"
                                "SELECT device_id, battery_pct, CAST(ts AS TIMESTAMP) AS ts"
                                " FROM readings\n",
    }
    project = Project(write_project(tmp_path / "p", files))
    first = {n.name: n for n in project.run().nodes}["clean"]
    assert first.checks[0]["failing_rows"] == 1  # full build sees the bad old row
    (project.root / "data/r/day2.csv").write_text(
        "device_id,battery_pct,ts\nd1,50,2026-11-02 10:00:00\n")
    second = {n.name: n for n in project.run().nodes}["clean"]
    assert second.checks[0]["status"] == "pass"  # only the new window was checked


def test_source_checks_quarantine_rows_and_counts_add_up(tmp_path: Path) -> None:
    files = {
        "data/r.csv": "device_id,battery_pct\nd1,50\nd2,-3\nd3,150\n,40\nd5,99\n",
        "sources/readings.toml": 'type = "files"\npath = "data/r.csv"\nchecks = [\n'
                                 '  "range(battery_pct, 0, 100) on_fail=quarantine",\n'
                                 '  "not_null(device_id) on_fail=quarantine",\n'
                                 '  "row_count(min=1)",\n]\n',
        "transforms/ok.sql": "SELECT count(*) AS n FROM readings\n",
    }
    project = Project(write_project(tmp_path / "p", files))
    result = project.run()
    assert result.ok, [n.error for n in result.nodes]
    kept = project.table("readings").num_rows
    quarantined = project.query(
        "SELECT _check, count(*) AS n FROM readings__quarantine GROUP BY ALL ORDER BY 1"
    ).to_pylist()
    assert kept == 2
    assert quarantined == [{"_check": "not_null(device_id)", "n": 1},
                           {"_check": "range(battery_pct, 0, 100)", "n": 2}]
    assert kept + sum(q["n"] for q in quarantined) == 5
    node = {n.name: n for n in result.nodes}["readings"]
    assert {c["check"]: c["quarantined"] for c in node.checks}["range(battery_pct, 0, 100)"] == 2


def test_source_error_check_loads_nothing(tmp_path: Path) -> None:
    files = {
        "data/r.csv": "device_id\nd1\nd1\n",
        "sources/readings.toml": 'type = "files"\npath = "data/r.csv"\n'
                                 'checks = ["unique(device_id)"]\n',
    }
    project = Project(write_project(tmp_path / "p", files))
    result = project.run()
    node = {n.name: n for n in result.nodes}["readings"]
    assert node.status == "failed" and "unique(device_id)" in (node.error or "")
    assert "readings" not in project.state.published("prod")


def test_python_docstring_checks(tmp_path: Path) -> None:
    files = dict(BASE)
    files["transforms/low.py"] = '''
        """Low batteries.

        @check: range(battery_pct, 0, 20)
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        def low(readings: pa.Table) -> pa.Table:
            return readings.filter(pc.less(readings["battery_pct"], 60))
    '''
    project = Project(write_project(tmp_path / "p", files))
    result = project.run()
    low = {n.name: n for n in result.nodes}["low"]
    assert low.status == "failed" and low.checks[0]["failing_rows"] == 1
    assert project.loaded.nodes["low"].description == "Low batteries."


def test_custom_sql_check_file_and_headwater_test(tmp_path: Path) -> None:
    files = dict(BASE)
    files["transforms/health.sql"] = SQL.format(check="not_null(device_id)")
    files["checks/battery_not_too_low.sql"] = (
        "-- Every merchant keeps at least one charged terminal.\n-- @severity: warn\n"
        "SELECT merchant_id FROM health GROUP BY merchant_id HAVING max(battery_pct) < 10\n"
    )
    files["checks/devices_have_merchants.sql"] = (
        "SELECT h.device_id FROM health h LEFT JOIN merchants m USING (merchant_id)"
        " WHERE m.merchant_id IS NULL\n"
    )
    project = Project(write_project(tmp_path / "p", files))
    result = project.run()
    assert result.ok
    health = {n.name: n for n in result.nodes}["health"]
    names = {c["check"]: c["status"] for c in health.checks}
    assert names == {"not_null(device_id)": "pass",
                     "checks/battery_not_too_low.sql": "pass",
                     "checks/devices_have_merchants.sql": "pass"}
    # break the published data's merchants and run checks alone
    (project.root / "data/merchants.csv").write_text("merchant_id,name\nm1,Corner Coffee\n")
    project.run("merchants")
    results = project.test("health")
    status = {r.check: r.status for r in results}
    assert status["checks/devices_have_merchants.sql"] == "fail"
    from headwater.testing import invoke

    out = invoke(["test", "--select", "health", "--project", str(project.root)])
    assert out.exit_code == 1 and "devices_have_merchants" in out.output
