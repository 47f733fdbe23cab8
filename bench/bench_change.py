"""Change benchmark: what a rebuild costs after an edit, Headwater vs dbt vs SQLMesh.

One generated project (``bench/generate.py``) is rendered for each tool
(``bench/peers.py``; dbt and SQLMesh run in virtual environments of their own under
``bench/.work/``). For each model count, ``--repeat`` times, every tool goes through:

1. full build from empty state;
2. no-op rebuild (nothing changed);
3. ``identical``: one staging model gets a filter that filters nothing
   (``AND device_id >= 0``): new code, identical output;
4. ``changed``: the same model gets a filter that drops ~2% of devices instead:
   its output and its downstream change;
5. ``whitespace``: the file re-indented, trailing blanks added;
6. ``comment``: a comment line added;
7. ``revert``: the file as it was before step 3.

Commands, each timed as a subprocess (wall seconds, interpreter start included):

* headwater: ``headwater run --project P --json`` (executed = nodes with status
  "executed", sources counted apart);
* dbt: ``dbt run`` (plain: it re-runs every model) and
  ``dbt run -s state:modified+ --state <manifest of the previous run>`` (its
  change-aware mode), counted from ``target/run_results.json``;
* sqlmesh: ``sqlmesh plan --auto-apply --no-prompts`` (counted from its output);
* floor: ``bench/floor.py`` (the same SQL as CTAS on raw DuckDB) for the full
  build, and for the ``changed`` step the raw cost of re-running just the affected
  models (the edited one and everything downstream, in topological order, over the
  already-built upstream tables): ``python bench/peers.py floor-subset``.

Prints a table per model count (median wall seconds and models executed), Headwater
against its targets, and one JSON line per model count (every run's wall seconds,
models executed, CPU seconds and the CPU the rest of the machine used meanwhile).

``--paired K`` then times K more output-changing edits (each dropping another device,
so nothing can be reused) back to back with the floor's re-run of the same affected
models: the fairest ratio on a shared machine. ``--repeat 0 --paired K`` does only that
(on the state the last run left).

    python bench/bench_change.py [--models 200,1000] [--rows 2000000] [--repeat 3]
                                 [--tools headwater,dbt,sqlmesh] [--dbt-plain-edits]
                                 [--paired K]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_core import git_rev, headwater_cmd, wait_quiet  # noqa: E402
from generate import Model, ProjectSpec, generate_project  # noqa: E402
from peers import (  # noqa: E402
    Timed,
    Venv,
    clean,
    dbt_cmd,
    dbt_executed,
    dbt_venv,
    descendants,
    render_dbt,
    render_sqlmesh,
    replace_statements,
    run_cmd,
    sqlmesh_cmd,
    sqlmesh_plan_counts,
    sqlmesh_venv,
    write_dbt_model,
    write_sqlmesh_model,
)

SCENARIOS = ["full", "noop", "identical", "changed", "whitespace", "comment", "revert"]
LABELS = {
    "full": "full build",
    "noop": "no-op rebuild",
    "identical": "edit, same output",
    "changed": "edit, output changes",
    "whitespace": "whitespace-only edit",
    "comment": "comment-only edit",
    "revert": "revert the edits",
}


# --------------------------------------------------------------------------- the edits


def _final_where(template: str) -> int:
    lines = template.split("\n")
    idx = [i for i, line in enumerate(lines) if line.startswith("WHERE ")]
    if not idx:
        raise ValueError("the staging model has no top-level WHERE line")
    return idx[-1]


def add_filter(template: str, cond: str) -> str:
    lines = template.split("\n")
    i = _final_where(template)
    lines[i] = f"{lines[i]} AND {cond}"
    return "\n".join(lines)


def whitespace_edit(template: str) -> str:
    """Re-indent by two more spaces, trailing blanks, an extra blank line."""
    out = []
    for line in template.split("\n"):
        if line.startswith("    "):
            line = "  " + line
        out.append(line + ("   " if line.strip() else ""))
    return "\n".join(out) + "\n\n"


def comment_edit(template: str) -> str:
    lines = template.split("\n")
    i = _final_where(template)
    lines.insert(i, "-- Reviewed: keep only plausible rows (comment-only edit).")
    return "\n".join(lines) + "-- end of model\n"


def variants(model: Model) -> dict[str, str]:
    base = model.sql_template
    changed = add_filter(base, "device_id % 50 <> 7")
    ws = whitespace_edit(changed)
    return {
        "identical": add_filter(base, "device_id >= 0"),
        "changed": changed,
        "whitespace": ws,
        "comment": comment_edit(ws),
        "revert": base,
    }


def with_template(model: Model, template: str) -> Model:
    return Model(model.name, model.layer, model.template, model.shape, model.refs, template)


def pick_target(spec: ProjectSpec) -> Model:
    """The event-staging model with the most downstream models (ties: the first)."""
    stg = [m for m in spec.models if m.template == "stg_events"]
    return max(stg, key=lambda m: len(descendants(spec.models, m.name)))


# --------------------------------------------------------------------------- results


@dataclass
class Step:
    wall: float
    executed: int | None
    load: bool = False  # the raw load (source / telemetry model) ran too
    other_cores: float = 0.0
    ok: bool = True
    names: list[str] = field(default_factory=list)
    note: str = ""
    cpu: float = 0.0  # user+sys seconds of the command: less sensitive to a busy machine

    def cell(self) -> str:
        if not self.ok:
            return "FAILED"
        ex = "?" if self.executed is None else str(self.executed)
        return f"{self.wall:.2f}s ({ex}{'+load' if self.load else ''})"


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def median_step(steps: list[Step]) -> Step | None:
    good = [s for s in steps if s.ok]
    if not good:
        return steps[0] if steps else None
    exe = [s.executed for s in good if s.executed is not None]
    return Step(med([s.wall for s in good]),
                int(statistics.median(exe)) if exe else None,
                any(s.load for s in good), med([s.other_cores for s in good]), True,
                good[-1].names, good[-1].note, med([s.cpu for s in good]))


# --------------------------------------------------------------------------- tools


class Tool:
    name = ""
    label = ""

    def __init__(self, spec: ProjectSpec, root: Path, target: Model, args: argparse.Namespace):
        self.spec, self.root, self.target, self.args = spec, root, target, args

    def write(self, template: str) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Base SQL, empty state."""
        raise NotImplementedError

    def step(self, scenario: str) -> dict[str, Step]:
        """Run once; {label: Step} (dbt reports two modes)."""
        raise NotImplementedError


class Headwater(Tool):
    name = label = "headwater"

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        self.project = self.spec.root

    def write(self, template: str) -> None:
        path = self.project / "transforms" / f"{self.target.name}.sql"
        path.write_text(with_template(self.target, template).sql)

    def reset(self) -> None:
        self.write(self.target.sql_template)
        clean(self.project / ".headwater")

    def step(self, scenario: str) -> dict[str, Step]:
        t = run_cmd([*headwater_cmd(), "run", "--project", str(self.project), "--json"])
        if not t.ok:
            return {self.label: Step(t.wall, None, ok=False, note=t.tail(1500))}
        out = json.loads(t.stdout)
        ran = [n for n in out["nodes"] if n["status"] == "executed"]
        models = [n for n in ran if n["kind"] != "source"]
        return {self.label: Step(
            t.wall, len(models), any(n["kind"] == "source" for n in ran), t.other_cores,
            out["status"] == "success", [n["name"] for n in models],
            note=json.dumps({n["name"]: f"{n['status']}: {n['reason']}" for n in out["nodes"]
                             if n["status"] != "skipped" or n["reason"] != "up to date"}),
            cpu=t.cpu)}


class Dbt(Tool):
    name = "dbt"
    label = "dbt run"
    state_label = "dbt state:modified+"

    def __init__(self, spec: ProjectSpec, root: Path, target: Model,
                 args: argparse.Namespace, venv: Venv):
        super().__init__(spec, root, target, args)
        self.venv = venv
        self.project = render_dbt(spec, root / "dbt", args.threads)
        self.state = self.project / ".prev_state"

    def write(self, template: str) -> None:
        write_dbt_model(self.project, self.target, template)

    def reset(self) -> None:
        self.write(self.target.sql_template)
        clean(self.project / "target", self.state, self.project / "warehouse.duckdb",
              self.project / "warehouse.duckdb.wal", self.project / "logs")

    def _run(self, *extra: str) -> tuple[Timed, Step]:
        t = run_cmd(dbt_cmd(self.venv, self.project, "run", *extra))
        ex = dbt_executed(self.project)
        ok = t.ok and ex["failed"] == 0
        return t, Step(t.wall, ex["executed"], ex["load"], t.other_cores, ok, ex["names"],
                       note="" if ok else t.tail(1500), cpu=t.cpu)

    def _save_state(self) -> None:
        clean(self.state)
        self.state.mkdir(parents=True)
        shutil.copy2(self.project / "target" / "manifest.json", self.state / "manifest.json")

    def step(self, scenario: str) -> dict[str, Step]:
        out: dict[str, Step] = {}
        if scenario == "full":
            _, s = self._run()
            out[self.label] = s
            if s.ok:
                self._save_state()
            return out
        if scenario == "noop" or self.args.dbt_plain_edits:
            _, out[self.label] = self._run()
        _, s = self._run("-s", "state:modified+", "--state", str(self.state))
        out[self.state_label] = s
        if s.ok:
            self._save_state()
        return out


class SQLMesh(Tool):
    name = "sqlmesh"
    label = "sqlmesh plan"

    def __init__(self, spec: ProjectSpec, root: Path, target: Model,
                 args: argparse.Namespace, venv: Venv):
        super().__init__(spec, root, target, args)
        self.venv = venv
        self.project = render_sqlmesh(spec, root / "sqlmesh", args.threads)

    def write(self, template: str) -> None:
        write_sqlmesh_model(self.project, self.target, template)

    def reset(self) -> None:
        self.write(self.target.sql_template)
        clean(self.project / "warehouse.duckdb", self.project / "warehouse.duckdb.wal",
              self.project / ".cache", self.project / "logs")

    def step(self, scenario: str) -> dict[str, Step]:
        t = run_cmd(sqlmesh_cmd(self.venv, self.project, "plan", "--auto-apply",
                                "--no-prompts"))
        c = sqlmesh_plan_counts(t.stdout)
        return {self.label: Step(t.wall, c["executed"], c["load"], t.other_cores, t.ok,
                                 c["names"], note="" if t.ok else t.tail(1500), cpu=t.cpu)}


# --------------------------------------------------------------------------- floor


def floor_full(spec: ProjectSpec, db: Path, threads: int | None) -> Step:
    clean(db, Path(str(db) + ".wal"))
    cmd = [sys.executable, str(HERE / "floor.py"), str(spec.root), "--db", str(db)]
    if threads:
        cmd += ["--threads", str(threads)]
    t = run_cmd(cmd)
    note = "" if t.ok else t.tail(1500)
    return Step(t.wall, len(spec.models) if t.ok else None, True, t.other_cores, t.ok, note=note,
                cpu=t.cpu)


def floor_subset(db: Path, models: list[Model], sql_of: Callable[[Model], str],
                 threads: int | None, scratch: Path) -> tuple[Step, float]:
    """Re-run ``models`` (CREATE OR REPLACE, in order) on the built floor database."""
    stmts = replace_statements(models, sql_of)
    scratch.write_text(json.dumps(stmts))
    cmd = [sys.executable, str(HERE / "peers.py"), "floor-subset", str(db), str(scratch)]
    if threads:
        cmd.append(str(threads))
    t = run_cmd(cmd)
    inner = json.loads(t.stdout.strip().splitlines()[-1])["seconds"] if t.ok else float("nan")
    return Step(t.wall, len(models) if t.ok else None, False, t.other_cores, t.ok,
                note="" if t.ok else t.tail(1500), cpu=t.cpu), inner


# --------------------------------------------------------------------------- one size


def bench_size(n: int, args: argparse.Namespace, venvs: dict[str, Venv | None],
               problems: list[str]) -> dict[str, Any]:
    root = args.work / f"change_{n}m_{args.rows}r_s{args.seed}"
    t0 = time.perf_counter()
    spec = generate_project(root / "headwater", n, args.rows, args.seed,
                            threads=args.threads, duckdb_threads=args.threads)
    target = pick_target(spec)
    affected = descendants(spec.models, target.name)
    edits = variants(target)
    summ = spec.summary()
    print(f"\n== {n} models ({summ['layers']} layers, {summ['edges']} edges), "
          f"{args.rows:,} rows in {summ['files']} files; generated in "
          f"{time.perf_counter() - t0:.1f}s; project {root}", flush=True)
    print(f"edited model: {target.name} ({len(affected) - 1} models downstream of it)",
          flush=True)

    tools: list[Tool] = []
    for name in args.tools:
        if name == "headwater":
            tools.append(Headwater(spec, root, target, args))
        elif name == "dbt" and venvs.get("dbt"):
            tools.append(Dbt(spec, root, target, args, venvs["dbt"]))  # type: ignore[arg-type]
        elif name == "sqlmesh" and venvs.get("sqlmesh"):
            tools.append(SQLMesh(spec, root, target, args,
                                 venvs["sqlmesh"]))  # type: ignore[arg-type]

    results: dict[str, dict[str, list[Step]]] = {}  # label -> scenario -> steps
    floors: dict[str, list[Step]] = {"full": [], "identical": [], "changed": []}
    floor_inner: dict[str, list[float]] = {"identical": [], "changed": []}
    floor_db = root / "floor" / "warehouse.duckdb"
    changed_model = with_template(target, edits["changed"])
    identical_model = with_template(target, edits["identical"])

    def sql_changed(m: Model) -> str:
        return changed_model.sql if m.name == target.name else m.sql

    for rep in range(args.repeat):
        order: list[Any] = ["floor", *tools] if args.floor else list(tools)
        k = rep % len(order)
        order = order[k:] + order[:k]
        for tool in order:
            if tool == "floor":
                if args.quiet_wait > 0:
                    wait_quiet(0.3, args.quiet_wait)
                s = floor_full(spec, floor_db, args.threads)
                floors["full"].append(s)
                line = f"  [{rep + 1}/{args.repeat}] floor       full {s.cell()}"
                if s.ok:
                    s1, i1 = floor_subset(floor_db, [identical_model], lambda m: m.sql,
                                          args.threads, root / "floor" / "identical.json")
                    s2, i2 = floor_subset(floor_db, affected, sql_changed, args.threads,
                                          root / "floor" / "changed.json")
                    floors["identical"].append(s1)
                    floors["changed"].append(s2)
                    floor_inner["identical"].append(i1)
                    floor_inner["changed"].append(i2)
                    line += (f"; re-run {target.name} alone {s1.cell()}, inside {i1:.2f}s"
                             f"; re-run the {len(affected)} affected {s2.cell()}, "
                             f"inside {i2:.2f}s")
                else:
                    problems.append(f"floor failed: {s.note}")
                print(line, flush=True)
                continue
            tool.reset()
            cells = []
            for scenario in SCENARIOS:
                if scenario in edits:
                    tool.write(edits[scenario])
                if scenario == "full" and args.quiet_wait > 0:
                    wait_quiet(0.3, args.quiet_wait)
                for label, s in tool.step(scenario).items():
                    results.setdefault(label, {}).setdefault(scenario, []).append(s)
                    cells.append(f"{scenario}{'' if label == tool.label else '/state'} "
                                 f"{s.cell()}")
                    if not s.ok:
                        problems.append(f"{n} models, {label}, {scenario}: {s.note[-800:]}")
                    if isinstance(tool, Headwater):
                        check_headwater(scenario, s, target, affected, problems, n, rep)
            print(f"  [{rep + 1}/{args.repeat}] {tool.name:<11} " + "; ".join(cells), flush=True)
            tool.write(target.sql_template)

    med_steps = {label: {sc: median_step(v) for sc, v in by.items()}
                 for label, by in results.items()}
    floor_med = {k: median_step(v) for k, v in floors.items()}
    out = report(n, args, spec, target, affected, med_steps, floor_med,
                 {k: med(v) for k, v in floor_inner.items()}, results)
    if args.paired:
        out["paired"] = paired(spec, target, affected, args, root)
    return out


def paired(spec: ProjectSpec, target: Model, affected: list[Model], args: argparse.Namespace,
           root: Path) -> dict[str, Any]:
    """Output-changing edits timed back to back: Headwater, then the raw floor re-run.

    Each pair uses a new filter (``device_id % 50 <> k``) so that Headwater cannot reuse
    a table it built before; the floor re-runs the same SQL for the edited model and
    everything downstream over its already-built tables. Needs both to be built.
    """
    hw = Headwater(spec, root, target, args)
    floor_db = root / "floor" / "warehouse.duckdb"
    if not (spec.root / ".headwater").exists():
        hw.reset()
        hw.step("full")
    if not floor_db.exists():
        floor_full(spec, floor_db, args.threads)
    pairs: list[tuple[Step, Step, float]] = []
    devices = spec.source.devices  # drop one device, never the same: outputs never built before
    salts = random.Random().sample(range(devices), min(args.paired, devices))
    for salt in salts:
        k = len(pairs)
        template = add_filter(target.sql_template, f"device_id <> {salt}")
        edited = with_template(target, template)
        hw.write(template)
        h = hw.step("changed")["headwater"]
        def sql_of(m: Model, e: Model = edited) -> str:
            return e.sql if m.name == target.name else m.sql

        f, inner = floor_subset(floor_db, affected, sql_of, args.threads,
                                root / "floor" / "paired.json")
        pairs.append((h, f, inner))
        print(f"  paired {k + 1}/{args.paired}: headwater {h.cell()} cpu {h.cpu:.2f}s; floor "
              f"{f.cell()} cpu {f.cpu:.2f}s (inside {inner:.2f}s); wall ratio "
              f"{h.wall / f.wall:.2f}, cpu ratio {h.cpu / max(f.cpu, 1e-9):.2f}", flush=True)
    hw.write(target.sql_template)
    wall_r = med([h.wall / f.wall for h, f, _ in pairs])
    cpu_r = med([h.cpu / max(f.cpu, 1e-9) for h, f, _ in pairs])
    print(f"paired output-changing edits ({len(pairs)}): median wall ratio {wall_r:.2f}, "
          f"median cpu ratio {cpu_r:.2f} (target <= 1.1); headwater executed "
          f"{[h.executed for h, _, _ in pairs]} of {len(affected)} affected", flush=True)
    return {"wall_ratio": round(wall_r, 3), "cpu_ratio": round(cpu_r, 3),
            "pairs": [{"headwater_wall": round(h.wall, 3), "headwater_cpu": round(h.cpu, 2),
                       "executed": h.executed, "floor_wall": round(f.wall, 3),
                       "floor_cpu": round(f.cpu, 2), "floor_inside": inner,
                       "other_cores": round((h.other_cores + f.other_cores) / 2, 2)}
                      for h, f, inner in pairs]}


def check_headwater(scenario: str, s: Step, target: Model, affected: list[Model],
                    problems: list[str], n: int, rep: int) -> None:
    """Flag Headwater behaviour that contradicts its README."""
    if not s.ok:
        return
    where = f"{n} models, run {rep + 1}, headwater {scenario}"
    if scenario in ("noop", "whitespace", "comment", "revert") and (s.executed or s.load):
        problems.append(f"{where}: executed {s.executed} (+load {s.load}), expected 0: "
                        f"{s.names[:8]}; reasons {s.note[:600]}")
    if scenario == "identical" and s.names != [target.name]:
        problems.append(f"{where}: executed {s.names[:8]}, expected only {target.name}; "
                        f"reasons {s.note[:600]}")
    if scenario == "changed":
        extra = set(s.names) - {m.name for m in affected}
        if extra or target.name not in s.names:
            problems.append(f"{where}: executed outside the affected set {sorted(extra)[:8]} "
                            f"or not the edited model")
    if scenario == "full" and s.executed != n:
        problems.append(f"{where}: full build executed {s.executed} of {n}")


# --------------------------------------------------------------------------- report


def report(n: int, args: argparse.Namespace, spec: ProjectSpec, target: Model,
           affected: list[Model], med_steps: dict[str, dict[str, Step | None]],
           floor_med: dict[str, Step | None], floor_inner: dict[str, float],
           raw: dict[str, dict[str, list[Step]]]) -> dict[str, Any]:
    labels = [lb for lb in ("headwater", "dbt run", "dbt state:modified+", "sqlmesh plan")
              if lb in med_steps]
    cols = (["raw DuckDB floor"] if args.floor else []) + labels
    width = max(18, *(len(c) + 2 for c in cols))
    print()
    print(f"{n} models, {args.rows:,} rows; edited {target.name} "
          f"({len(affected) - 1} downstream); medians of {args.repeat}; "
          "wall seconds (models executed)")
    head = f"{'':<22}" + "".join(f"{c:>{width}}" for c in cols)
    print(head)
    print("-" * len(head))
    floor_cells = {
        "full": floor_med.get("full"),
        "identical": floor_med.get("identical"),
        "changed": floor_med.get("changed"),
    }
    table_rows = []
    for sc in SCENARIOS:
        row = [LABELS[sc]]
        if args.floor:
            f = floor_cells.get(sc)
            row.append(f.cell() if f else "")
        for lb in labels:
            s = med_steps[lb].get(sc)
            if s is None and lb == "dbt run" and sc not in ("full", "noop"):
                row.append("(= no-op)")
            else:
                row.append(s.cell() if s else "")
        table_rows.append(row)
        print(f"{row[0]:<22}" + "".join(f"{c:>{width}}" for c in row[1:]))

    hw = med_steps.get("headwater", {})
    checks: list[tuple[str, str, bool | None]] = []
    if hw:
        noop, ws, cm, ident, ch = (hw.get(k) for k in
                                   ("noop", "whitespace", "comment", "identical", "changed"))

        def ok(cond: bool) -> bool:
            return cond

        if noop:
            checks.append((f"no-op < 1 s on {n} models", f"{noop.wall:.2f}s (cpu {noop.cpu:.2f}s), "
                           f"{noop.executed} executed", ok(noop.wall < 1 and noop.executed == 0)))
        for name, s in (("whitespace", ws), ("comment", cm)):
            if s:
                checks.append((f"{name} edit: 0 models, < 1 s",
                               f"{s.wall:.2f}s (cpu {s.cpu:.2f}s), {s.executed} executed",
                               ok(s.wall < 1 and s.executed == 0)))
        if ident:
            checks.append(("same-output edit: that model only" + (", < 2 s" if n <= 200 else ""),
                           f"{ident.wall:.2f}s (cpu {ident.cpu:.2f}s), "
                           f"{ident.executed} executed",
                           ok(ident.executed == 1 and (n > 200 or ident.wall < 2))))
        fl = floor_med.get("changed")
        if ch and fl:
            ratio = ch.wall / fl.wall
            inner = floor_inner.get("changed", float("nan"))
            checks.append(("output-changing edit <= 1.1x raw re-run of the affected",
                           f"{ch.wall:.2f}s vs floor {fl.wall:.2f}s (inside {inner:.2f}s): "
                           f"{ratio:.2f}x; executed {ch.executed} of {len(affected)} affected",
                           ok(ratio <= 1.1)))
        print()
        print("headwater targets:")
        for what, got, good in checks:
            print(f"  {what:<58} {got:<62} {'ok' if good else 'MISSED'}")
    loads = [s.other_cores for by in raw.values() for v in by.values() for s in v]
    if loads:
        print(f"other processes' CPU during timed commands: {min(loads):.2f} .. "
              f"{max(loads):.2f} cores (median {med(loads):.2f})"
              + ("; the machine was shared, timings are noisy" if max(loads) > 0.3 else ""))

    return {
        "bench": "change",
        "headwater_rev": git_rev(),
        "models": n,
        "rows": args.rows,
        "repeat": args.repeat,
        "seed": args.seed,
        "threads": args.threads,
        "cores": os.cpu_count(),
        "edited_model": target.name,
        "downstream": len(affected) - 1,
        "table": {"columns": ["scenario", *cols], "rows": table_rows},
        "medians": {lb: {sc: (None if s is None else
                              {"wall": round(s.wall, 3), "executed": s.executed, "load": s.load,
                               "cpu": round(s.cpu, 2)})
                         for sc, s in by.items()} for lb, by in med_steps.items()},
        "floor": {k: (None if v is None else round(v.wall, 3)) for k, v in floor_med.items()},
        "floor_inner": {k: round(v, 3) for k, v in floor_inner.items()},
        "runs": {lb: {sc: [[round(s.wall, 3), s.executed, round(s.other_cores, 2),
                            round(s.cpu, 2)]
                           for s in v] for sc, v in by.items()} for lb, by in raw.items()},
        "targets": [{"what": w, "got": g, "ok": o} for w, g, o in checks],
        "headwater_reasons": {sc: v[-1].note for sc, v in raw.get("headwater", {}).items()
                              if sc != "full"},
        "other_cores_median": round(med(loads), 2) if loads else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="200,1000", help="comma-separated model counts")
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tools", default="headwater,dbt,sqlmesh")
    ap.add_argument("--no-floor", dest="floor", action="store_false",
                    help="skip the raw DuckDB floor")
    ap.add_argument("--dbt-plain-edits", action="store_true",
                    help="also time a plain `dbt run` after every edit (it re-runs all)")
    ap.add_argument("--threads", type=int, default=None,
                    help="cap threads for every tool (default: cores)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=HERE / ".work")
    ap.add_argument("--quiet-wait", type=float, default=20.0,
                    help="before each full build wait up to this many seconds for the "
                         "machine to be idle (other processes < 0.3 cores); 0 disables")
    ap.add_argument("--paired", type=int, default=0,
                    help="after the table, time K output-changing edits back to back with the "
                         "floor's re-run of the affected models (CPU and wall ratios)")
    ap.add_argument("--json-out", type=Path, default=None,
                    help="also write the results (a JSON list) to this file")
    args = ap.parse_args(argv)
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    sizes = [int(x) for x in re.split(r"[,\s]+", args.models) if x]

    print(f"headwater {git_rev()} ({' '.join(headwater_cmd())}), cores {os.cpu_count()}, "
          f"threads {args.threads or 'default'}, tools {','.join(args.tools)}", flush=True)
    venvs: dict[str, Venv | None] = {}
    problems: list[str] = []
    for name, make in (("dbt", dbt_venv), ("sqlmesh", sqlmesh_venv)):
        if name in args.tools:
            v = make(args.work)
            venvs[name] = v if v.ok else None
            print(f"{name}: {v.versions if v.ok else 'NOT AVAILABLE: ' + v.error}", flush=True)
            if not v.ok:
                problems.append(f"{name} could not be installed: {v.error}")

    results = []
    for n in sizes:
        r = bench_size(n, args, venvs, problems)
        results.append(r)
        if args.json_out:
            args.json_out.write_text(json.dumps(results, indent=1))
    if problems:
        print("\nPROBLEMS:")
        for p in problems:
            print("  - " + p)
    for r in results:
        print(json.dumps({**r, "problems": problems}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
