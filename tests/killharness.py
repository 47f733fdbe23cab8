"""Kill -9 a run at random moments and check the project stays consistent.

Used by ``tests/integration/test_kill.py`` (a short form in CI) and runnable
on its own for the long form::

    python tests/killharness.py --kills 50 --seed 1
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from headwater.testing import write_project


def make_project(root: Path, rows: int = 400_000, models: int = 24) -> Path:
    """A layered project big enough that a run takes a couple of seconds."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    for day in range(4):
        con.execute(
            f"COPY (SELECT 'dev-' || (i % 500) AS device_id, i AS seq, {day} AS day,"
            " (hash(i * 7 + ?) % 100)::INT AS battery_pct,"
            " (hash(i * 13 + ?) % 900)::INT AS latency_ms"
            f" FROM range({rows // 4}) t(i)) TO '{data}/day{day}.parquet' (FORMAT parquet)",
            [day, day],
        )
    con.close()
    files: dict[str, str] = {
        "sources/telemetry.toml": 'type = "files"\npath = "data/*.parquet"\n',
        "transforms/stg.sql": "SELECT device_id, seq, day, battery_pct, latency_ms,"
        " latency_ms > 500 AS slow FROM telemetry\n",
    }
    prev = ["stg"]
    for i in range(models):
        up = prev[i % len(prev)]
        if i % 3 == 0:
            sql = (f"SELECT device_id, day, avg(battery_pct) AS battery, count(*) AS n,"
                   f" sum(latency_ms) AS lat FROM {'stg' if i % 2 == 0 else 'stg'}"
                   f" WHERE seq % {i + 2} <> 0 GROUP BY ALL")
        elif i % 3 == 1:
            sql = (f"SELECT device_id, day, battery + {i} AS battery, n, lat,"
                   f" rank() OVER (PARTITION BY day ORDER BY lat DESC, device_id) AS r FROM {up}")
        else:
            sql = (f"SELECT a.device_id, a.day, a.battery, b.n FROM {up} a"
                   f" JOIN {prev[0]} b USING (device_id, day)")
        name = f"m{i:02d}"
        files[f"transforms/{name}.sql"] = sql + "\n"
        if i % 3 == 0:
            prev = [name]
        else:
            prev.append(name)
    return write_project(root, files, config="threads = 2\n")


def checksums(root: Path) -> dict[str, tuple[int, str]]:
    con = duckdb.connect(str(root / ".headwater/warehouse.duckdb"), read_only=True)
    try:
        views = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'main' AND table_type = 'VIEW'").fetchall()]
        out = {}
        for v in sorted(views):
            n, h = con.execute(
                f'SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM main."{v}" t'
            ).fetchall()[0]
            out[v] = (int(n), str(h))
        return out
    finally:
        con.close()


def check_consistent(root: Path) -> list[str]:
    """Problems found after a kill: state integrity, views resolving to complete tables."""
    problems: list[str] = []
    db = sqlite3.connect(str(root / ".headwater/state.db"))
    try:
        ok = db.execute("PRAGMA integrity_check").fetchall()
        if ok != [("ok",)]:
            problems.append(f"state integrity: {ok}")
        recorded = dict(db.execute("SELECT physical, rows FROM physical").fetchall())
        published = db.execute(
            "SELECT node, physical FROM env_nodes WHERE env = 'prod' AND physical IS NOT NULL"
        ).fetchall()
    finally:
        db.close()
    wh = root / ".headwater/warehouse.duckdb"
    if not wh.exists():
        return problems
    con = duckdb.connect(str(wh), read_only=True)
    try:
        for node, physical in published:
            try:
                n = con.execute(f'SELECT count(*) FROM main."{node}"').fetchall()[0][0]
            except duckdb.Error as exc:
                problems.append(f"view {node} broken: {exc}")
                continue
            if physical in recorded and recorded[physical] is not None and n != recorded[physical]:
                problems.append(f"view {node}: {n} rows, state says {recorded[physical]}")
    finally:
        con.close()
    return problems


def headwater(root: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "headwater.cli", "run", "--project", str(root), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def kill_test(work: Path, *, kills: int, seed: int, rows: int = 400_000) -> dict[str, object]:
    rng = random.Random(seed)
    shutil.rmtree(work, ignore_errors=True)
    reference = make_project(work / "reference", rows=rows)
    t0 = time.perf_counter()
    assert headwater(reference).wait() == 0
    full = time.perf_counter() - t0
    expected = checksums(reference)

    victim = work / "victim"
    shutil.copytree(reference, victim, ignore=shutil.ignore_patterns(".headwater"))
    problems: list[str] = []
    killed = 0
    for k in range(kills):
        if k % 4 == 0:  # sometimes start from a code change, so reuse and rebuild mix
            (victim / "transforms/stg.sql").write_text(
                "SELECT device_id, seq, day, battery_pct, latency_ms,"
                f" latency_ms > 500 AS slow FROM telemetry WHERE seq >= -{k}\n"
            )
        proc = headwater(victim, "--full-refresh") if k % 5 == 4 else headwater(victim)
        time.sleep(rng.uniform(0.0, full * 1.1))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait()
        problems += [f"after kill {k}: {p}" for p in check_consistent(victim)]
    (victim / "transforms/stg.sql").write_text(
        (reference / "transforms/stg.sql").read_text())
    final = headwater(victim)
    _, err = final.communicate()
    if final.returncode != 0:
        problems.append(f"final run failed: {err.decode()[-500:]}")
    got = checksums(victim)
    if got != expected:
        bad = [n for n in expected if got.get(n) != expected[n]]
        problems.append(f"final result differs from an uninterrupted build: {bad}")
    return {"kills": killed, "attempts": kills, "problems": problems, "full_run_s": full}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rows", type=int, default=400_000)
    ap.add_argument("--work", type=Path, default=Path("bench/.work/kill"))
    args = ap.parse_args()
    report = kill_test(args.work, kills=args.kills, seed=args.seed, rows=args.rows)
    print(report)
    sys.exit(1 if report["problems"] else 0)


if __name__ == "__main__":
    main()
