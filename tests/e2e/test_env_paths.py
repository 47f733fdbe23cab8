"""``${VAR}`` in a files source's or sink's ``path`` is the variable's value (an unset one
is an error naming it); the fingerprint keeps the reference, so a new value with the same
files re-reads nothing it does not have to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from headwater.testing import write_project


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "headwater.cli", *args], env=full,
                          capture_output=True, text=True, timeout=180)


def test_env_vars_in_file_paths(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {
        "sources/orders.toml": 'type = "files"\npath = "${HW_LANDING}/orders-*.csv"\n',
        "transforms/totals.sql": "SELECT count(*) AS n, sum(amount) AS total FROM orders\n",
        "sinks/out.toml": 'type = "files"\nfrom = "totals"\npath = "${HW_EXPORTS}/totals.csv"\n',
    })
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "orders-1.csv").write_text("id,amount\n1,10\n2,20\n")
    env = {"HW_LANDING": str(landing), "HW_EXPORTS": str(tmp_path / "exports")}
    proc = cli("run", "--json", "--project", str(root), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "exports/totals.csv").read_text().splitlines() == ['"n","total"', "2,30"]
    assert not list(root.glob("$*")), "a folder named after the reference was created"

    missing = cli("plan", "--project", str(root), env={"HW_EXPORTS": "x"})
    assert missing.returncode == 2, missing.stdout + missing.stderr
    assert "HW_LANDING is not set" in missing.stderr and "orders.toml" in missing.stderr
    assert "Traceback" not in missing.stderr

    (landing / "orders-2.csv").write_text("id,amount\n3,5\n")
    again = json.loads(cli("run", "--json", "--project", str(root), env=env).stdout)
    assert {n["name"]: n["status"] for n in again["nodes"]}["orders"] == "executed"
    assert (tmp_path / "exports/totals.csv").read_text().splitlines()[1] == "3,35"
