"""The driver: a World (a project on disk, its PostgreSQL tables, what the oracle knows
about both) applies operations one at a time and checks the rules after each:

- ``clean_build``: after a completed successful full ``headwater run`` in env E, every
  view E publishes equals what a from-scratch build of the same files and data publishes
  (``compare.clean_build``), node by node; nothing more, nothing less;
- ``isolation``: a run (or a killed run) in one env never changes what another env
  shows; ``prod_only``: ``gc`` changes no env (prod changes only by a prod run or
  ``promote``);
- ``select``: a ``--select``ed (or ``--exclude``d, or ``backfill``) run leaves the
  published tables of every node outside the selection as they were;
- ``promote``: after ``promote dev`` (or ``qa``) prod shows exactly dev's tables (dev
  and the other envs unchanged);
- ``sink``: after a successful full prod run each files sink's output equals its node's
  published table;
- ``source_truth``: the clean build's sources equal their data read without Headwater (the
  CSV files in one read, columns matched by name; the PostgreSQL tables as they are), so
  a bug incremental and clean builds share is caught for the sources;
- ``crash``: a run raises something other than a HeadwaterError;
- ``orphan``: a node removed from the project is still published (reported once per env
  and node; it does not disturb the other comparisons, so no reset follows).

A failed run is not compared with a clean build (the rule is about completed successful
runs), but the isolation and selection rules hold for it too. In-process runs use the
Python API (fast); ``kill`` runs the CLI in a subprocess and ``kill -9``s it.

Replaying and shrinking a logged sequence: ``shrink.py``.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import compare as C
from . import ops as O
from . import project as P
from .pg import Pg

ENVS = ("prod", "dev", "qa")
_COUNTER = itertools.count()


def _tests_dir() -> Path:
    return Path(__file__).resolve().parents[1]


@dataclass
class Figures:
    ops: Counter[str] = field(default_factory=Counter)
    applied: int = 0  # operations that changed something or ran
    comparisons: int = 0  # clean-build comparisons made
    tables_compared: int = 0
    rule_checks: int = 0  # isolation / select / promote / sink / gc checks made
    runs_ok: int = 0
    runs_failed: int = 0
    kill_attempts: int = 0
    kills: int = 0  # landed while the process still ran
    clean_builds: int = 0
    clean_cache_hits: int = 0
    mismatches: list[C.Mismatch] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "ops": sum(self.ops.values()), "applied": self.applied,
            "ops_per_kind": dict(sorted(self.ops.items())),
            "comparisons": self.comparisons, "tables_compared": self.tables_compared,
            "rule_checks": self.rule_checks, "runs_ok": self.runs_ok,
            "runs_failed": self.runs_failed, "kill_attempts": self.kill_attempts,
            "kills": self.kills, "clean_builds": self.clean_builds,
            "clean_cache_hits": self.clean_cache_hits,
            "mismatches": len(self.mismatches),
            "distinct_mismatches": len({m.signature for m in self.mismatches}),
            "seconds": round(self.seconds, 1),
        }


class World:
    """One project under test. ``step(op)`` applies an operation and returns the rules
    it found broken."""

    def __init__(self, work: Path, dsn: str, *, seed: int | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.work = work
        self.root = work / "project"
        self.dsn = dsn
        self.seed = seed
        self.say = log or (lambda _m: None)
        self.prefix = f"oracle_{os.getpid()}_{next(_COUNTER)}"
        self.pg = Pg(dsn, self.prefix)
        self.code = dict(P.CODE)
        self.note = False  # telemetry files carry the extra column `note`
        self.model = False  # devices.csv carries the extra column `model`
        self.history: list[O.Op] = []
        self.figures = Figures()
        self._snaps: dict[str, C.Snapshot] = {}  # per env, until the warehouse changes
        self._clean: dict[str, C.CleanBuild] = {}
        self._run_seconds = 1.0  # how long a run takes once started (aims the kills)
        self._orphans: set[tuple[str, str]] = set()  # (env, node) reported once each
        self._env_before = os.environ.get(P.PG_ENV)
        os.environ[P.PG_ENV] = dsn

    # -- set-up ----------------------------------------------------------------------
    def setup(self) -> World:
        from headwater.testing import write_project

        shutil.rmtree(self.work, ignore_errors=True)
        write_project(self.root, {**P.static_files(self.prefix), **P.render_code(self.code)})
        (self.root / P.TELEMETRY).mkdir(parents=True, exist_ok=True)
        for day in (1, 2, 3):
            (self.root / P.TELEMETRY / f"2026-11-{day:02d}.csv").write_text(
                P.telemetry_csv(day, 0, 8, False))
        (self.root / "data/devices.csv").write_text(P.devices_csv(0, False))
        self.pg.create()
        self.pg.insert(self.pg.orders, 6, 0)
        self.pg.insert(self.pg.payments, 4, 0)
        return self

    def close(self) -> None:
        try:
            self.pg.drop()
        finally:
            if self._env_before is None:
                os.environ.pop(P.PG_ENV, None)
            else:
                os.environ[P.PG_ENV] = self._env_before

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- stepping --------------------------------------------------------------------
    def step(self, op: O.Op) -> list[C.Mismatch]:
        n = len(self.history)
        self.history.append(op)
        self.figures.ops[O.kind_of(op)] += 1
        t0 = time.perf_counter()
        kind = op["op"]
        if kind not in O.RUN_OPS:
            did = O.apply_change(op, self)
            found: list[C.Mismatch] = []
        else:
            did, found = getattr(self, f"_{kind}")(op)
        if did:
            self.figures.applied += 1
        self.say(f"[{self.seed}:{n}] {O.describe(op)} -> {did or 'nothing to do'}"
                 f" ({time.perf_counter() - t0:.2f}s)")
        for m in found:
            m.ops, m.seed, m.step = list(self.history), self.seed, n
            self.say(m.render())
        self.figures.mismatches += found
        return found

    def snap(self, env: str) -> C.Snapshot:
        if env not in self._snaps:
            self._snaps[env] = C.snapshot(self.root, env)
        return self._snaps[env]

    def _changed(self) -> None:
        self._snaps.clear()

    def _unchanged(self, rule: str, before: dict[str, C.Snapshot], why: str,
                   outside: set[str] | None = None) -> list[C.Mismatch]:
        """Each env in ``before`` still shows what it showed (only the nodes in
        ``outside``, when given)."""
        found = []
        for env, snap in before.items():
            self.figures.rule_checks += 1
            found += C.diff_snapshots(rule, env, self.snap(env), snap, why, only=outside)
        return found

    # -- runs --------------------------------------------------------------------------
    def _project(self, env: str = "prod") -> Any:
        from headwater import Project

        return Project(self.root, env=env)

    def _run(self, op: O.Op) -> tuple[str, list[C.Mismatch]]:
        from headwater.errors import HeadwaterError

        env, select, exclude = op["env"], op.get("select"), op.get("exclude")
        backfill = op["node"] if op["op"] == "backfill" else None
        partial = bool(select or exclude or backfill)
        before = {e: self.snap(e) for e in ENVS if e != env}
        chosen: set[str] = set()
        if partial:
            project = self._project(env)
            try:
                chosen = set(project.select(f"{backfill}+" if backfill else select,
                                            exclude=exclude))
            except HeadwaterError:
                pass  # the run fails the same way: then nothing may change
            finally:
                _close(project)
            before_env = self.snap(env)
        project = self._project(env)
        t0 = time.perf_counter()
        found: list[C.Mismatch] = []
        result = None
        try:
            if backfill:
                result = project.backfill(backfill, op["start"], op["end"], env=env)
            else:
                result = project.run(select=select, exclude=exclude,
                                     full_refresh=bool(op.get("full_refresh")))
            error = "" if result.ok else "; ".join(
                f"{n.name}: {(n.error or n.reason).splitlines()[0]}" for n in result.nodes
                if n.status == "failed")
        except HeadwaterError as exc:
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        except Exception as exc:  # noqa: BLE001 - the finding
            error = f"{type(exc).__name__}: {exc}"
            found.append(C.Mismatch("crash", env, "-", f"the run raised {error}"))
        finally:
            _close(project)
        took = time.perf_counter() - t0
        self._changed()
        if result is not None and result.ok:
            self.figures.runs_ok += 1
            self._run_seconds = 0.7 * self._run_seconds + 0.3 * took
        else:
            self.figures.runs_failed += 1
        found += self._unchanged("isolation", before, f"what it showed before a run in {env!r}")
        if partial:
            outside = {n for n in set(before_env) | set(self.snap(env)) if n not in chosen}
            found += self._unchanged("select", {env: before_env}, "what it showed before the"
                                     f" partial run ({O.describe(op)})", outside)
        elif result is not None and result.ok:
            found += self._compare(env)
        counts = result.counts() if result is not None else {}
        what = (f"ok ({counts.get('executed', 0)} executed)" if not error
                else f"failed: {error[:300]}")
        return what, found

    def _compare(self, env: str) -> list[C.Mismatch]:
        """``env`` against a clean build of the current files and data; sinks (prod)."""
        key = C.files_key(self.root) + self.pg.content()
        build = self._clean.get(key)
        if build is None:
            build = C.clean_build(self.root, self.work, [p for _, p in P.SINKS.values()])
            self.figures.clean_builds += 1
            if len(self._clean) > 16:
                self._clean.clear()
            self._clean[key] = build
        else:
            self.figures.clean_cache_hits += 1
        self.figures.comparisons += 1
        got = self.snap(env)
        if build.error:
            return [C.Mismatch("clean_build", env, "-", "the run succeeded but a clean build"
                               f" of the same files and data failed: {build.error}")]
        self.figures.tables_compared += len(set(got) | set(build.tables))
        found = self._truth(build)
        nodes = self.node_names()
        for m in C.diff_snapshots("clean_build", env, got, build.tables):
            if m.node in build.tables or m.node in nodes:
                found.append(m)
            elif (env, m.node) not in self._orphans:  # a node that no longer exists
                self._orphans.add((env, m.node))
                m.rule = "orphan"
                m.detail += " (the project has no such node any more)"
                found.append(m)
        if env == "prod":
            for _sink, (node, path) in sorted(P.SINKS.items()):
                self.figures.rule_checks += 1
                out = C.read_sink(self.root / path)
                m = C.diff_table("sink", env, f"{node} -> {path}", out, got.get(node),
                                 f"the published {node}")
                if m is not None:
                    found.append(m)
        return found

    def _truth(self, build: C.CleanBuild) -> list[C.Mismatch]:
        """The clean build's sources against their files and tables read directly (once
        per clean build)."""
        if build.truth_checked:
            return []
        build.truth_checked = True
        truth = C.source_truth(self.root, self.pg, P.TELEMETRY, P.TELEMETRY_TYPES)
        found = []
        for name, want in truth.items():
            self.figures.rule_checks += 1
            got = build.tables.get(name)
            m = C.diff_table("source_truth", "clean build", name, got, C.by_name(want, got),
                             "the source's data read directly")
            if m is not None:
                found.append(m)
        return found

    def _kill(self, op: O.Op) -> tuple[str, list[C.Mismatch]]:
        from reliability.helpers import cli_env, runs  # tests/ is on sys.path

        env = op["env"]
        before = {e: self.snap(e) for e in ENVS if e != env}
        args = ["run", "--project", str(self.root), "--env", env] + (
            ["--full-refresh"] if op.get("full_refresh") else [])
        if op.get("point"):  # kill -9 exactly there (tests/oracle/killpoint.py)
            args = [sys.executable, str(Path(__file__).with_name("killpoint.py")),
                    f"{op['point']}:{op['node']}", "--", *args]
        else:
            args = [sys.executable, "-m", "headwater.cli", *args]
        proc = subprocess.Popen(args, env=cli_env({P.PG_ENV: self.dsn}),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.figures.kill_attempts += 1
        delay = op.get("at", 0.0) * self._run_seconds
        err = b""
        try:
            if op.get("point"):  # it kills itself there, or ends normally
                _, err = proc.communicate(timeout=300)
                landed = proc.returncode == -signal.SIGKILL
            else:
                end = time.monotonic() + 120
                while proc.poll() is None and time.monotonic() < end:
                    if any(r["pid"] == proc.pid for r in runs(self.root)):
                        break  # its run started: aim at a moment of the run itself
                    time.sleep(0.01)
                end = time.monotonic() + delay
                while proc.poll() is None and time.monotonic() < end:
                    time.sleep(0.005)
                landed = proc.poll() is None
                if landed:
                    os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.returncode is None or not err:
                if proc.poll() is None:
                    proc.kill()
                _, err = proc.communicate()
        self.figures.kills += landed
        self._changed()
        found = self._unchanged("isolation", before, f"what it showed before a killed run in"
                                f" {env!r}")
        found += self._stats_problems(env)
        if landed:
            where = (f"at {op['point']} of {op['node']}" if op.get("point")
                     else f"{delay:.2f}s into the run")
            return f"killed {where}", found
        tail = (err or b"").decode(errors="replace").strip().splitlines()[-1:] \
            if proc.returncode else []
        return f"finished before the kill (exit {proc.returncode}) {' '.join(tail)}", found

    def _stats_problems(self, env: str) -> list[C.Mismatch]:
        """The window/file sums kept beside the tables agree with their rows
        (``killharness.stats_problems``)."""
        import duckdb

        from killharness import stats_problems

        path = self.root / ".headwater/warehouse.duckdb"
        if not path.exists():
            return []
        con = duckdb.connect(str(path), read_only=True)
        try:
            return [C.Mismatch("kill", env, "-", p) for p in stats_problems(con)]
        finally:
            con.close()

    def _promote(self, op: O.Op) -> tuple[str, list[C.Mismatch]]:
        from headwater.errors import HeadwaterError

        src = op.get("from", "dev")
        before = {e: self.snap(e) for e in ENVS}
        project = self._project()
        try:
            moved = project.promote(src)
        except HeadwaterError as exc:
            return f"refused: {str(exc).splitlines()[0]}", []
        finally:
            _close(project)
        self._changed()
        self.figures.rule_checks += 1
        found = self._unchanged("isolation", {e: b for e, b in before.items() if e != "prod"},
                                f"what it showed before promote {src}")
        expect = dict(before["prod"])
        expect.update(before[src])
        found += C.diff_snapshots("promote", "prod", self.snap("prod"), expect,
                                  f"{src}'s tables before promote (prod's for the rest)")
        return f"promoted {len(moved)} tables", found

    def _backfill(self, op: O.Op) -> tuple[str, list[C.Mismatch]]:
        return self._run(op)  # a partial run: NODE and what depends on it

    def _gc(self, op: O.Op) -> tuple[str, list[C.Mismatch]]:
        before = {e: self.snap(e) for e in ENVS}
        project = self._project()
        try:
            dropped = project.gc(keep_versions=op.get("keep", 1))
        finally:
            _close(project)
        self._changed()
        return f"dropped {len(dropped)} tables", self._unchanged(
            "prod_only", before, "what it showed before gc")

    def _reset(self, op: O.Op) -> tuple[str, list[C.Mismatch]]:
        """Forget every build (after a mismatch, so that later checks find new ones)."""
        shutil.rmtree(self.root / ".headwater", ignore_errors=True)
        shutil.rmtree(self.root / "output", ignore_errors=True)
        self._changed()
        return "state and warehouse removed", []

    def telemetry_mixed(self) -> bool:
        """Some telemetry files have the column note and some do not."""
        heads = {p.read_text().split("\n", 1)[0] for p in O.telemetry_files(self.root)}
        return len(heads) > 1

    def node_names(self) -> set[str]:
        """The sources and transforms the project has now."""
        return {p.stem for folder in ("sources", "transforms")
                for p in (self.root / folder).iterdir() if p.suffix in (".toml", ".sql", ".py")}

    def fix_broken(self) -> list[O.Op]:
        """Operations that undo every setting that makes runs fail."""
        return [{"op": "code", "key": k, "value": P.CODE[k] if (k, P.CODE[k]) not in P.BROKEN
                 else P.CHOICES[k][0][0], "kind": "fix"}
                for k, v in sorted(self.code.items()) if (k, v) in P.BROKEN]


def _close(project: Any) -> None:
    if "state" in project.__dict__:
        project.state.close()


FINAL_RUN: O.Op = {"op": "run", "env": "prod", "select": None, "full_refresh": False}


def drive(world: World, rng: random.Random, n_ops: int, *, stop_at_first: bool = False,
          deadline: float | None = None) -> Figures:
    """Apply about ``n_ops`` random operations (then fix what is broken and run prod once
    more, so every sequence ends with a comparison). After a mismatch the warehouse is
    reset (``reset``) so the rest of the sequence can find other bugs."""
    t0 = time.perf_counter()
    world.step(dict(FINAL_RUN))
    while len(world.history) < n_ops and (deadline is None or time.monotonic() < deadline):
        for op in O.random_ops(rng, world):
            found = world.step(op)
            if found and stop_at_first:
                world.figures.seconds = time.perf_counter() - t0
                return world.figures
            if any(m.rule != "orphan" for m in found):  # orphans are reported once, kept
                world.step({"op": "reset"})
    for op in [*world.fix_broken(), dict(FINAL_RUN)]:
        if world.step(op) and stop_at_first:
            break
    world.figures.seconds = time.perf_counter() - t0
    return world.figures


def _ensure_path() -> None:
    """tests/ on sys.path: the reliability helpers and the kill harness live there."""
    tests = str(_tests_dir())
    if tests not in sys.path:
        sys.path.insert(0, tests)


_ensure_path()
