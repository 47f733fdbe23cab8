"""Through the CLI: state persists across processes; untranslatable SQL fails first;
Python transforms get Spark DataFrames when they ask for them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from headwater import Project
from headwater.testing import invoke, write_project

FILES = {
    "data/orders.csv": """
        order_id,customer,amount,ts
        1,ann,10.5,2026-11-01 10:00:00
        2,bob,20.0,2026-11-01 11:00:00
        3,ann,7.25,2026-11-02 09:30:00
    """,
    "sources/orders.toml": 'type = "files"\npath = "data/orders.csv"\n',
    "transforms/per_customer.sql": """
        -- @check: unique(customer)
        SELECT customer, sum(amount) AS total, count(*) AS orders,
               strftime(max(CAST(ts AS TIMESTAMP)), '%Y-%m-%d') AS last_day
        FROM orders GROUP BY customer
    """,
    "transforms/recent.sql": """
        -- @materialized: view
        SELECT * FROM orders WHERE CAST(ts AS TIMESTAMP) >= TIMESTAMP '2026-11-02'
    """,
    "transforms/ranked.py": '''
        """Customers by total, ranked in Spark."""
        import pyspark.sql
        from pyspark.sql import Window
        from pyspark.sql import functions as F


        def ranked(per_customer: pyspark.sql.DataFrame) -> pyspark.sql.DataFrame:
            assert isinstance(per_customer, pyspark.sql.DataFrame)
            w = Window.orderBy(F.col("total").desc())
            return per_customer.withColumn("rank", F.row_number().over(w))
    ''',
    "transforms/as_pandas.py": '''
        import pandas as pd


        def as_pandas(recent: pd.DataFrame) -> pd.DataFrame:
            return recent.assign(doubled=recent["amount"] * 2)
    ''',
}


def hw(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    return subprocess.run([sys.executable, "-m", "headwater.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_state_persists_across_processes(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", FILES, config='engine = "spark"\n')
    first = hw("run", "--json", cwd=root)
    assert first.returncode == 0, first.stdout + first.stderr
    summary = json.loads(first.stdout)
    assert summary["counts"]["executed"] == 5
    second = hw("run", "--json", cwd=root)  # a new process: Spark's catalog is empty
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["counts"]["executed"] == 0
    show = hw("show", "ranked", cwd=root)
    assert show.returncode == 0, show.stderr
    assert "ann" in show.stdout and "bob" in show.stdout


def test_engine_option_and_python_frames(spark: Any, tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", FILES)  # headwater.toml says duckdb
    result = invoke(["run", "--project", str(root), "--engine", "spark", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["counts"]["executed"] == 5
    assert (root / ".headwater/spark-warehouse/_hw_catalog.json").is_file()
    assert not (root / ".headwater/warehouse.duckdb").exists()
    project = Project(root, engine="spark")
    ranked = {r["customer"]: r["rank"] for r in project.table("ranked").to_pylist()}
    assert ranked == {"bob": 1, "ann": 2}
    assert project.table("as_pandas").column("doubled").to_pylist() == [14.5]
    days = {r["customer"]: r["last_day"] for r in project.table("per_customer").to_pylist()}
    assert days == {"ann": "2026-11-02", "bob": "2026-11-01"}


def test_untranslatable_sql_fails_before_anything_runs(spark: Any, tmp_path: Path) -> None:
    files = dict(FILES)
    files["transforms/closest.sql"] = """
        -- Each order with the customer's previous one.
        SELECT o.order_id, p.order_id AS previous
        FROM orders AS o
        ASOF JOIN orders AS p ON o.customer = p.customer AND o.ts > p.ts
    """
    root = write_project(tmp_path / "p", files, config='engine = "spark"\n')
    result = invoke(["run", "--project", str(root)])
    assert result.exit_code != 0
    assert "transforms/closest.sql:4" in result.output
    assert "ASOF JOIN cannot run on Spark" in result.output
    # nothing ran: not even the source was loaded
    assert not (root / ".headwater/spark-warehouse/_hw_catalog.json").exists()
