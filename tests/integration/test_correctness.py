"""Regression tests for correctness bugs already known (issue 16), on the example project
(``headwater init --rows 2000``). Each asserts the correct behaviour: what a run leaves
published equals a clean build of the same files (tests/oracle/compare.py: same columns,
same multiset of rows, floats to 9 significant digits), and an env shows only what its
own runs published.

1. Renaming a merchant in data/merchants.csv reaches every table that shows the name
   (merchant_loyalty_stats, merchant_device_health, merchant_scorecard), and
   ``--full-refresh`` repairs a table left stale.
2. ``headwater run --env dev`` after a source change does not change what prod shows.
3. A file edited in place, same size, its modification time put back, is noticed by the
   next run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from headwater import Project  # noqa: E402
from headwater.scaffold import init_project  # noqa: E402
from oracle.compare import Snapshot, clean_build, diff_snapshots, snapshot  # noqa: E402

MERCHANT_TABLES = ("merchant_loyalty_stats", "merchant_device_health", "merchant_scorecard")


def example(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    init_project(root, rows=2000)
    run(root)
    return root


def run(root: Path, *, full_refresh: bool = False) -> None:
    project = Project(root)
    try:
        result = project.run(full_refresh=full_refresh)
    finally:
        project.state.close()
    assert result.ok, [f"{n.name}: {n.error}" for n in result.nodes if n.error]


def assert_equals_clean_build(root: Path, tmp_path: Path, only: set[str] | None = None) -> None:
    build = clean_build(root, tmp_path / "clean-work", [])
    assert build.error is None, build.error
    problems = diff_snapshots("clean_build", "prod", snapshot(root, "prod"), build.tables,
                              only=only)
    assert not problems, "\n".join(m.render() for m in problems)


def names(root: Path, merchant: str) -> dict[str, set[str]]:
    """The merchant names each merchant table shows for one merchant id."""
    snap = snapshot(root, "prod")
    out: dict[str, set[str]] = {}
    for table in MERCHANT_TABLES:
        t = snap[table]
        assert not isinstance(t, str), t
        i, j = t.columns.index("merchant_id"), t.columns.index("merchant_name")
        out[table] = {row[j] for row in t.rows if row[i] == merchant}
    return out


def rename_merchant(root: Path) -> tuple[str, str]:
    path = root / "data/merchants.csv"
    lines = path.read_text().splitlines()
    fields = lines[1].split(",")  # merchant_id,name,category,city,loyalty_tier
    merchant, new = fields[0], fields[1] + " Renamed"
    fields[1] = new
    lines[1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    return merchant, new


def test_renamed_merchant_reaches_every_merchant_table(tmp_path: Path) -> None:
    root = example(tmp_path)
    merchant, new = rename_merchant(root)
    run(root)
    assert names(root, merchant) == {t: {new} for t in MERCHANT_TABLES}
    assert_equals_clean_build(root, tmp_path)


def test_full_refresh_repairs_a_stale_table(tmp_path: Path) -> None:
    root = example(tmp_path)
    rename_merchant(root)
    run(root)
    # whatever the run left, make one table certainly stale: its physical table holds a
    # name no input has (a crash, a bug, a hand edit)
    project = Project(root)
    try:
        physical = project.state.published("prod")["merchant_loyalty_stats"].physical
    finally:
        project.state.close()
    con = duckdb.connect(str(root / ".headwater/warehouse.duckdb"))
    try:
        con.execute(f'UPDATE "_hw"."{physical}" SET merchant_name = \'stale\'')
    finally:
        con.close()
    run(root, full_refresh=True)
    assert_equals_clean_build(root, tmp_path)


def prod_everything(root: Path) -> Snapshot:
    """Every source, view and table prod shows."""
    snap = snapshot(root, "prod")
    assert snap, "prod publishes nothing"
    return snap


@pytest.mark.parametrize("change", ["rename_merchant", "new_telemetry_day", "transactions"])
def test_dev_run_after_a_source_change_leaves_prod_as_it_was(tmp_path: Path, change: str) -> None:
    root = example(tmp_path)
    before = prod_everything(root)
    if change == "rename_merchant":
        rename_merchant(root)
    elif change == "new_telemetry_day":
        days = sorted((root / "data/telemetry").glob("*.ndjson"))
        text = days[-1].read_text().replace(days[-1].stem, "2026-12-31")
        (root / "data/telemetry/2026-12-31.ndjson").write_text(text)
    else:
        path = root / "data/transactions.csv"
        lines = path.read_text().splitlines()
        last = lines[-1].split(",")
        last[0] = str(int(last[0]) + 1)
        path.write_text("\n".join([*lines, ",".join(last)]) + "\n")
    project = Project(root, env="dev")
    try:
        result = project.run(env="dev")
    finally:
        project.state.close()
    assert result.ok, [f"{n.name}: {n.error}" for n in result.nodes if n.error]
    problems = diff_snapshots("isolation", "prod", prod_everything(root), before,
                              "what prod showed before the dev run")
    assert not problems, "\n".join(m.render() for m in problems)


def test_in_place_edit_with_the_same_size_and_mtime_is_noticed(tmp_path: Path) -> None:
    root = example(tmp_path)
    path = root / "data/transactions.csv"
    st = path.stat()
    lines = path.read_text().splitlines()
    fields = lines[1].split(",")  # txn_id,merchant_id,customer_id,amount_cents,...
    digit = fields[3][-1]
    fields[3] = fields[3][:-1] + str((int(digit) + 1) % 10)
    lines[1] = ",".join(fields)
    with open(path, "r+") as f:  # the same file, the same size
        f.write("\n".join(lines) + "\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    run(root)
    # the tables reading the amounts (not the merchant names: see the first test)
    assert_equals_clean_build(root, tmp_path, only={
        "transactions", "stg_transactions", "merchant_daily_revenue",
        "customer_points_balance", "customer_segments"})
