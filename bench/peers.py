"""Shared helpers for benchmarks that run Headwater side by side with its peers.

* ``ensure_venv(name, requirements)`` -- a virtual environment of its own for each
  peer under ``bench/.work/venv-<name>`` (dbt needs ``dbt-core<1.12``; SQLMesh needs
  ``duckdb<2`` while Headwater runs on DuckDB 2), made once and reused;
* ``render_dbt(spec, dest)`` / ``render_sqlmesh(spec, dest)`` -- the very same
  generated project (``bench/generate.py``) as a dbt-duckdb or a SQLMesh project;
* ``run_cmd(cmd)`` -- wall seconds of a command, its CPU seconds and how much CPU the
  rest of the machine used meanwhile (the noise);
* ``dbt_executed(project)`` / ``sqlmesh_plan_counts(output)`` -- how many models a
  peer executed;
* ``floor_subset`` (also ``python bench/peers.py floor-subset DB STATEMENTS.json``) --
  the raw DuckDB floor for re-running some models over already-built tables.

The raw telemetry is loaded into a table first by every tool (Headwater's files
source; a ``telemetry`` table model in dbt and SQLMesh; ``CREATE TABLE telemetry`` in
the floor), so all of them run the same SQL over the same table.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work"
sys.path.insert(0, str(HERE))

from bench_core import busy_seconds  # noqa: E402
from generate import SOURCE, Model, ProjectSpec  # noqa: E402

DBT_REQUIREMENTS = ["dbt-core<1.12", "dbt-duckdb"]
SQLMESH_REQUIREMENTS = ["sqlmesh", "duckdb<2"]
LOAD_MODEL = SOURCE  # the raw-load model every peer project starts with


# --------------------------------------------------------------------------- venvs


@dataclass
class Venv:
    name: str
    path: Path
    ok: bool
    error: str = ""
    versions: dict[str, str] = field(default_factory=dict)

    def bin(self, tool: str) -> Path:
        return self.path / "bin" / tool


def _pip_versions(path: Path, names: Sequence[str]) -> dict[str, str]:
    out = subprocess.run([str(path / "bin" / "python"), "-m", "pip", "list", "--format=json"],
                         capture_output=True, text=True)
    try:
        rows = json.loads(out.stdout)
    except json.JSONDecodeError:
        return {}
    wanted = {n.lower() for n in names}
    return {r["name"]: r["version"] for r in rows if r["name"].lower() in wanted}


def ensure_venv(name: str, requirements: Sequence[str], work: Path = WORK,
                probe: str | None = None) -> Venv:
    """``work/venv-<name>`` with ``requirements`` installed (once; a marker remembers).

    ``probe`` is an executable that must exist in the venv afterwards. Never raises:
    a failed install comes back with ``ok=False`` and the tail of pip's output.
    """
    path = work / f"venv-{name}"
    marker = path / ".bench-requirements.json"
    names = [re.split(r"[<>=!~ \[]", r)[0] for r in requirements] + ["duckdb", "sqlglot"]
    want = json.dumps(sorted(requirements))
    if marker.exists() and marker.read_text() == want and (
            probe is None or (path / "bin" / probe).exists()):
        return Venv(name, path, True, versions=_pip_versions(path, names))
    work.mkdir(parents=True, exist_ok=True)
    if not (path / "bin" / "python").exists():
        r = subprocess.run([sys.executable, "-m", "venv", str(path)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            return Venv(name, path, False, f"python -m venv failed: {r.stderr[-2000:]}")
    print(f"installing {' '.join(requirements)} into {path} ...", flush=True)
    r = subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "-q",
                        *requirements], capture_output=True, text=True)
    if r.returncode != 0 or (probe and not (path / "bin" / probe).exists()):
        tail = "\n".join(line for line in (r.stdout + r.stderr).splitlines()
                         if not line.startswith("WARNING: Location"))[-2000:]
        return Venv(name, path, False, f"pip install {' '.join(requirements)} failed: {tail}")
    marker.write_text(want)
    return Venv(name, path, True, versions=_pip_versions(path, names))


def dbt_venv(work: Path = WORK) -> Venv:
    return ensure_venv("dbt", DBT_REQUIREMENTS, work, probe="dbt")


def sqlmesh_venv(work: Path = WORK) -> Venv:
    return ensure_venv("sqlmesh", SQLMESH_REQUIREMENTS, work, probe="sqlmesh")


# --------------------------------------------------------------------------- timing


@dataclass
class Timed:
    wall: float
    cpu: float  # user+sys of the command and its children
    other_cpu: float  # CPU seconds the rest of the machine used meanwhile
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def other_cores(self) -> float:
        return self.other_cpu / max(self.wall, 1e-9)

    def tail(self, n: int = 3000) -> str:
        return (self.stdout[-n:] + "\n" + self.stderr[-n:]).strip()


def run_cmd(cmd: Sequence[str], cwd: Path | None = None,
            env: dict[str, str] | None = None) -> Timed:
    """Run ``cmd`` to completion; wall, CPU and the machine's other load. Never raises."""
    b0 = busy_seconds()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    other = max(0.0, busy_seconds() - b0 - cpu)
    return Timed(wall, cpu, other, proc.returncode, proc.stdout, proc.stderr)


def clean(*paths: Path) -> None:
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


# --------------------------------------------------------------------------- dbt


def _yaml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid YAML scalar


def _parquet_list(spec: ProjectSpec) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'"
                           for p in spec.source_files()) + "]"


def dbt_model_sql(model: Model, template: str | None = None) -> str:
    m = model if template is None else Model(model.name, model.layer, model.template,
                                             model.shape, model.refs, template)
    return ("{{ config(materialized='table') }}\n"
            + m.render(ref=lambda n: "{{ ref('" + n + "') }}",
                       source=lambda n: "{{ ref('" + n + "') }}"))


def render_dbt(spec: ProjectSpec, dest: Path, threads: int | None = None) -> Path:
    """Write ``spec`` as a dbt-duckdb project in ``dest``; returns ``dest``.

    ``models/telemetry.sql`` loads the Parquet files into a table (as Headwater's
    files source and the floor do); every generated model is a ``table`` model
    referring to the others with ``ref()``. The profile lives in the project folder
    (``--profiles-dir``) and the warehouse is ``dest/warehouse.duckdb``.
    """
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    threads = threads or os.cpu_count() or 1
    (dest / "dbt_project.yml").write_text(
        "name: bench\nversion: '1.0'\nconfig-version: 2\nprofile: bench\n"
        "model-paths: ['models']\n"
        "models:\n  bench:\n    +materialized: table\n")
    (dest / "profiles.yml").write_text(
        "bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {_yaml_str(str(dest / 'warehouse.duckdb'))}\n"
        f"      threads: {threads}\n")
    models = dest / "models"
    clean(models)
    models.mkdir()
    (models / f"{LOAD_MODEL}.sql").write_text(
        "{{ config(materialized='table') }}\n"
        f"SELECT * FROM read_parquet({_parquet_list(spec)})\n")
    for m in spec.models:
        (models / f"{m.name}.sql").write_text(dbt_model_sql(m))
    return dest


def write_dbt_model(dest: Path, model: Model, template: str) -> None:
    (Path(dest) / "models" / f"{model.name}.sql").write_text(dbt_model_sql(model, template))


def dbt_cmd(venv: Venv, project: Path, *args: str) -> list[str]:
    return [str(venv.bin("dbt")), *args, "--project-dir", str(project),
            "--profiles-dir", str(project)]


def dbt_executed(project: Path, exclude: Sequence[str] = (LOAD_MODEL,)) -> dict[str, Any]:
    """Models in ``target/run_results.json`` by status (the load model counted apart)."""
    path = Path(project) / "target" / "run_results.json"
    if not path.exists():
        return {"executed": 0, "load": False, "failed": 0, "names": []}
    results = json.loads(path.read_text()).get("results", [])
    names, failed, load = [], 0, False
    for r in results:
        name = r["unique_id"].split(".")[-1]
        if r["status"] in ("success", "pass"):
            if name in exclude:
                load = True
            else:
                names.append(name)
        elif r["status"] in ("error", "fail"):
            failed += 1
    return {"executed": len(names), "load": load, "failed": failed, "names": names}


# --------------------------------------------------------------------------- SQLMesh

SQLMESH_SCHEMA = "bench"


def sqlmesh_model_sql(model: Model, template: str | None = None) -> str:
    m = model if template is None else Model(model.name, model.layer, model.template,
                                             model.shape, model.refs, template)
    body = m.render(ref=lambda n: f"{SQLMESH_SCHEMA}.{n}",
                    source=lambda n: f"{SQLMESH_SCHEMA}.{n}")
    return f"MODEL (\n  name {SQLMESH_SCHEMA}.{m.name},\n  kind FULL\n);\n\n{body}"


def render_sqlmesh(spec: ProjectSpec, dest: Path, threads: int | None = None) -> Path:
    """Write ``spec`` as a SQLMesh project (DuckDB gateway) in ``dest``.

    Every model is ``kind FULL`` named ``bench.<name>``; ``bench.telemetry`` loads the
    Parquet files. State lives in the same DuckDB file (``dest/warehouse.duckdb``).
    Changes are categorised automatically so that ``plan --auto-apply`` never prompts.
    """
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    threads = threads or os.cpu_count() or 1
    (dest / "config.yaml").write_text(
        "gateways:\n  local:\n    connection:\n      type: duckdb\n"
        f"      database: {_yaml_str(str(dest / 'warehouse.duckdb'))}\n"
        f"      concurrent_tasks: {threads}\n"
        "default_gateway: local\n"
        "model_defaults:\n  dialect: duckdb\n"
        "plan:\n  auto_categorize_changes:\n    external: full\n    python: full\n"
        "    sql: full\n    seed: full\n")
    models = dest / "models"
    clean(models)
    models.mkdir()
    (models / f"{LOAD_MODEL}.sql").write_text(
        f"MODEL (\n  name {SQLMESH_SCHEMA}.{LOAD_MODEL},\n  kind FULL\n);\n\n"
        f"SELECT * FROM read_parquet({_parquet_list(spec)})\n")
    for m in spec.models:
        (models / f"{m.name}.sql").write_text(sqlmesh_model_sql(m))
    return dest


def write_sqlmesh_model(dest: Path, model: Model, template: str) -> None:
    (Path(dest) / "models" / f"{model.name}.sql").write_text(sqlmesh_model_sql(model, template))


def sqlmesh_cmd(venv: Venv, project: Path, *args: str) -> list[str]:
    return [str(venv.bin("sqlmesh")), "--paths", str(project), *args]


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def sqlmesh_plan_counts(output: str) -> dict[str, Any]:
    """What ``sqlmesh plan --auto-apply`` executed, read from its console output.

    Each executed model batch prints ``[1/1] bench.NAME  [full refresh]  0.12s``;
    the progress line ``Executing model batches ... N/N`` gives the batch total.
    """
    text = _ANSI.sub("", output)
    seen: dict[str, None] = {}
    for m in re.finditer(r"^\s*\[\d+/\d+\]\s+\"?" + SQLMESH_SCHEMA + r"\"?\.\"?(\w+)",
                         text, re.MULTILINE):
        seen[m.group(1)] = None
    batches = [int(b) for _a, b in re.findall(r"(\d+)/(\d+)\s*•", text)]
    names = [n for n in seen if n != LOAD_MODEL]
    return {"executed": len(names), "load": LOAD_MODEL in seen, "names": names,
            "batches": max(batches) if batches else 0,
            "no_changes": "No changes to plan" in text}


# --------------------------------------------------------------------------- floor


def floor_subset(db: Path, statements: list[tuple[str, str]],
                 threads: int | None = None) -> dict[str, Any]:
    """Run ``CREATE OR REPLACE TABLE`` statements in order on an existing DuckDB file."""
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect(str(db), config={"threads": threads} if threads else {})
    per: dict[str, float] = {}
    try:
        for name, stmt in statements:
            t = time.perf_counter()
            con.execute(stmt)
            per[name] = round(time.perf_counter() - t, 4)
    finally:
        con.close()
    return {"seconds": round(time.perf_counter() - t0, 3), "tables": per}


def replace_statements(models: Sequence[Model], sql_of: Callable[[Model], str]
                       ) -> list[tuple[str, str]]:
    return [(m.name, f'CREATE OR REPLACE TABLE "{m.name}" AS\n{sql_of(m)}') for m in models]


def descendants(models: Sequence[Model], root: str) -> list[Model]:
    """``root`` and every model downstream of it, in the (topological) order given."""
    hit = {root}
    out = []
    for m in models:
        if m.name == root or any(r in hit for r in m.model_refs):
            hit.add(m.name)
            out.append(m)
    return out


def _main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "floor-subset":
        stmts = [tuple(x) for x in json.loads(Path(argv[2]).read_text())]
        threads = int(argv[3]) if len(argv) > 3 else None
        print(json.dumps(floor_subset(Path(argv[1]), stmts, threads)))
        return 0
    if argv[:1] == ["venvs"]:
        for v in (dbt_venv(), sqlmesh_venv()):
            print(v.name, "ok" if v.ok else "FAILED", v.versions, v.error)
        return 0
    print("usage: python bench/peers.py venvs | floor-subset DB STATEMENTS.json [THREADS]")
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
