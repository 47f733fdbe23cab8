"""Property: after any sequence of data and code changes, the incremental result equals a
full rebuild from scratch of the same inputs (order-independent content checksums)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headwater import Project
from headwater.testing import write_project

TABLES = ("stg", "daily", "per_device", "labelled", "overall")
CHECKSUM = "SELECT count(*) AS n, coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR AS h FROM {} AS t"

FILES = {
    "sources/telemetry.toml": (
        'type = "files"\npath = "data/*.csv"\n'
        'columns = { device_id = "VARCHAR", ts = "TIMESTAMP", v = "BIGINT" }\n'
    ),
    "transforms/stg.sql": "-- @incremental: by ts day\n"
                          "SELECT device_id, ts, v, v % 7 AS bucket FROM telemetry WHERE v >= 0\n",
    "transforms/daily.sql": "-- @incremental: by day day from ts\n"
                            "SELECT CAST(ts AS DATE) AS day, device_id, sum(v) AS total,"
                            " count(*) AS n FROM stg GROUP BY ALL\n",
    "transforms/per_device.sql": "-- @incremental: by day day\n"
                                 "SELECT day, device_id, total * 2 AS doubled FROM daily\n",
    # a dimension (read whole): when it changes every window of `labelled` is redone
    "sources/labels.toml": 'type = "files"\npath = "dims/labels.csv"\n',
    "transforms/labelled.sql": "-- @incremental: by day day\n"
                               "SELECT d.day, d.device_id, l.label, d.total FROM daily AS d"
                               " LEFT JOIN labels AS l ON l.device_id = d.device_id\n",
    "transforms/overall.sql": "SELECT device_id, sum(n) AS n, sum(total) AS total"
                              " FROM daily GROUP BY ALL\n",
}

ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(1, 9), st.integers(0, 50)),
        st.tuples(st.just("redeliver"), st.integers(1, 9), st.integers(0, 50)),
        st.tuples(st.just("delete"), st.integers(1, 9), st.just(0)),
        st.tuples(st.just("late"), st.integers(1, 9), st.integers(0, 50)),
        st.tuples(st.just("edit"), st.integers(0, 3), st.just(0)),
        st.tuples(st.just("dim"), st.just(0), st.integers(0, 50)),
        st.tuples(st.just("run"), st.just(0), st.just(0)),
    ),
    min_size=1,
    max_size=7,
)


def write_day(root: Path, day: int, seed: int, name: str | None = None, rows: int = 3) -> None:
    lines = ["device_id,ts,v"]
    for i in range(rows):
        lines.append(f"d{(i + seed) % 3},2026-11-{day:02d} {(i * 5 + seed) % 24:02d}:00:00,"
                     f"{(seed * 31 + i * 17) % 100}")
    (root / "data" / (name or f"day{day}.csv")).write_text("\n".join(lines) + "\n")


def write_labels(root: Path, seed: int) -> None:
    (root / "dims").mkdir(exist_ok=True)
    rows = [f"d{i},label{(i + seed) % 4}" for i in range(3) if (i + seed) % 5 != 4]
    (root / "dims/labels.csv").write_text("device_id,label\n" + "\n".join(rows) + "\n")


def checksums(project: Project) -> dict[str, object]:
    return {t: project.query(CHECKSUM.format(t)).to_pylist()[0] for t in TABLES}


def assert_equals_full_rebuild(project: Project, work: Path) -> None:
    ref = work / "ref"
    shutil.rmtree(ref, ignore_errors=True)
    shutil.copytree(project.root, ref, ignore=shutil.ignore_patterns(".headwater"))
    reference = Project(ref)
    assert reference.run().ok
    assert checksums(project) == checksums(reference)


# HW_PROPERTY_EXAMPLES=80 for a longer search than CI's
@settings(max_examples=int(os.environ.get("HW_PROPERTY_EXAMPLES", "12")), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(ops)
def test_incremental_equals_full_rebuild(sequence: list[tuple[str, int, int]]) -> None:
    work = Path(tempfile.mkdtemp())
    try:
        root = write_project(work / "p", FILES)
        (root / "data").mkdir(exist_ok=True)
        write_labels(root, 0)
        write_day(root, 1, 0)
        project = Project(root)
        assert project.run().ok
        for op, day, seed in [*sequence, ("run", 0, 0)]:
            path = root / "data" / f"day{day}.csv"
            if op == "add" and not path.exists():
                write_day(root, day, seed)
            elif op == "redeliver" and path.exists():
                write_day(root, day, seed, rows=2 + seed % 3)
            elif op == "delete" and path.exists() and len(list((root / "data").glob("*.csv"))) > 1:
                path.unlink()
            elif op == "late":
                write_day(root, day, seed, name=f"late{day}_{seed}.csv", rows=1)
            elif op == "edit":
                stg = root / "transforms/stg.sql"
                stg.write_text(FILES["transforms/stg.sql"].replace("v % 7", f"v % {7 + day}"))
            elif op == "dim":
                write_labels(root, seed)
            elif op == "run":
                result = project.run()
                assert result.ok, [n.error for n in result.nodes if n.error]
                assert_equals_full_rebuild(project, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
