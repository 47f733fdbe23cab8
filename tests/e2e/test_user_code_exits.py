"""User code cannot end the run or fake success (issue 17, item 2): ``sys.exit()`` or any
``BaseException`` from a Python transform, in its function or at import, fails that node;
the run goes on, ends with the right status, and ``--json`` prints the summary. Under the
web UI's run manager the job ends too (a job left "running" refused every later run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from headwater.testing import write_project
from headwater.web.events import Broadcaster
from headwater.web.runs import RunManager, WarehouseGate


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    return subprocess.run([sys.executable, "-m", "headwater.cli", *args], env=env,
                          capture_output=True, text=True, timeout=180)

BASE = {
    "sources/raw.toml": 'type = "files"\npath = "data/a.csv"\n',
    "transforms/stg.sql": "SELECT id, v FROM raw\n",
    "transforms/fine.sql": "SELECT count(*) AS n FROM stg\n",
}
EXITS = {
    "in_function": "import pyarrow as pa\nimport sys\n\n\n"
                   "def quitter(stg: pa.Table) -> pa.Table:\n    sys.exit(0)\n",
    "at_import": "import sys\nsys.exit(0)\n\n\ndef quitter(stg):\n    return stg\n",
    "base_exception": "class Boom(BaseException):\n    pass\n\n\n"
                      "def quitter(stg):\n    raise Boom('stop everything')\n",
    "generator_exit": "def quitter(stg):\n    raise GeneratorExit()\n",
}


def make(root: Path, body: str) -> Path:
    write_project(root, {**BASE, "transforms/quitter.py": body,
                         "transforms/after.sql": "SELECT * FROM quitter\n"})
    (root / "data").mkdir()
    (root / "data/a.csv").write_text("id,v\n1,10\n")
    return root


@pytest.mark.parametrize("where", sorted(EXITS))
def test_exit_in_user_code_fails_only_its_node(tmp_path: Path, where: str) -> None:
    root = make(tmp_path / "p", EXITS[where])
    proc = cli("run", "--json", "--project", str(root))
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    out = json.loads(proc.stdout)
    nodes = {n["name"]: n for n in out["nodes"]}
    assert out["status"] == "failed"
    assert nodes["quitter"]["status"] == "failed"
    assert "quitter.py" in nodes["quitter"]["error"]
    assert nodes["after"]["status"] == "skipped" and nodes["after"]["reason"] == (
        "upstream quitter failed")
    assert nodes["fine"]["status"] == "executed" and nodes["stg"]["status"] == "executed"
    assert "Traceback" not in proc.stderr


def test_web_run_ends_when_user_code_exits(tmp_path: Path) -> None:
    root = make(tmp_path / "p", EXITS["in_function"])
    manager = RunManager(root, "prod", Broadcaster(), WarehouseGate())
    job = manager.start()
    assert manager.join(60)
    assert job.status == "failed" and not job.active
    job2 = manager.start()  # not refused: the first one is over
    assert manager.join(60) and job2.status == "failed"


def test_cli_run_survives_an_exit_in_the_main_thread_of_user_code(tmp_path: Path) -> None:
    """A transform that calls os._exit cannot be stopped short of a separate process; what
    can be done is that the next run still works (nothing half-published, lock free)."""
    root = make(tmp_path / "p", "import os\n\n\ndef quitter(stg):\n    os._exit(0)\n")
    cli("run", "--project", str(root))
    (root / "transforms/quitter.py").write_text("def quitter(stg):\n    return stg\n")
    t0 = time.monotonic()
    proc = cli("run", "--json", "--project", str(root))
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - t0 < 60
