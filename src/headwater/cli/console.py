"""What people see: progress while a run goes on, summaries and tables after.

User output is not logging: this module renders with rich; diagnostics go to
``logging``.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from headwater.plan.planner import Plan
from headwater.run.runner import NodeResult, RunResult

STATUS_STYLE = {"executed": "green", "skipped": "dim", "failed": "bold red",
                "deferred": "magenta"}
ACTION_STYLE = {"run": "yellow", "publish": "cyan", "skip": "dim", "defer": "magenta"}


class RichReporter:
    """Progress bar plus one line per finished node."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task: Any = None
        self.running: set[str] = set()

    def on_start(self, plan: Plan) -> None:
        self.progress.start()
        self.task = self.progress.add_task("running", total=len(plan.nodes))

    def on_node_start(self, name: str) -> None:
        self.running.add(name)
        self._describe()

    def on_node_end(self, result: NodeResult) -> None:
        self.running.discard(result.name)
        if result.status != "skipped" or result.blocked:
            style = STATUS_STYLE.get(result.status, "")
            rows = f"{result.rows:,} rows" if result.rows is not None else ""
            self.progress.console.print(
                f"  [{style}]{result.status:<8}[/] {result.name:<32} {rows:>14} "
                f"{result.seconds:6.2f}s  [dim]{result.reason}[/]",
                overflow="ellipsis", no_wrap=True,
            )
        self.progress.advance(self.task)
        self._describe()

    def _describe(self) -> None:
        names = sorted(self.running)
        text = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
        self.progress.update(self.task, description=f"running {text}" if text else "running")

    def stop(self) -> None:
        self.progress.stop()


def print_summary(console: Console, result: RunResult) -> None:
    table = Table(title=f"run {result.run_id} ({result.env})", title_justify="left")
    for col, kw in (("node", {"no_wrap": True}), ("kind", {}), ("status", {}),
                    ("rows", {"justify": "right", "no_wrap": True}),
                    ("seconds", {"justify": "right"}), ("reason", {"ratio": 1})):
        table.add_column(col, **kw)
    for n in result.nodes:
        style = STATUS_STYLE.get(n.status, "")
        table.add_row(n.name, n.kind, f"[{style}]{n.status}[/]",
                      "" if n.rows is None else f"{n.rows:,}", f"{n.seconds:.2f}", n.reason)
    console.print(table)
    c = result.counts()
    colour = "green" if result.ok else "red"
    console.print(
        f"[{colour}]{result.status}[/]: {c['executed']} executed, {c['skipped']} skipped, "
        f"{c['failed']} failed" + (f", {c['deferred']} deferred" if c["deferred"] else "")
        + f" in {result.seconds:.2f}s"
    )
    if result.removed:
        console.print("unpublished (no longer in the project): " + ", ".join(result.removed))
    if result.behind:
        shown = ", ".join(result.behind[:8]) + (" ..." if len(result.behind) > 8 else "")
        console.print(f"[yellow]behind[/] (not selected, downstream of what changed): {shown}"
                      " — a run that includes them catches up")
    checks = [ch for n in result.nodes for ch in n.checks]
    if checks:
        passed = sum(1 for ch in checks if ch["status"] == "pass")
        console.print(f"checks: {passed} of {len(checks)} passed")


def check_lines(result: RunResult) -> list[str]:
    """One line per check that did not simply pass."""
    lines = []
    for n in result.nodes:
        for c in n.checks:
            if c["status"] != "pass":
                lines.append(f"{n.name}: {c['check']} {c['status']}"
                             f" ({c['failing_rows']} failing rows)")
    return lines


def print_failures(console: Console, result: RunResult) -> None:
    """Warnings, then each failed node's error, for stderr."""
    for n in result.nodes:
        for w in n.warnings:
            console.print(f"[yellow]warning:[/] {w}", markup=True, highlight=False)
    for n in result.nodes:
        if n.error:
            console.print(f"[bold red]error:[/] {n.name} failed")
            console.print(n.error, markup=False, highlight=False, soft_wrap=True)


CHECK_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "error": "bold red"}


def print_checks(console: Console, results: list[Any]) -> None:
    table = Table(title="checks", title_justify="left")
    for col in ("node", "check", "severity", "status", "failing rows"):
        table.add_column(col)
    for r in results:
        style = CHECK_STYLE.get(r.status, "")
        table.add_row(r.node, r.check, r.severity, f"[{style}]{r.status}[/]", str(r.failing))
    console.print(table)
    for r in results:
        if r.error:
            console.print(f"[red]{r.node}: {r.check}: {r.error}[/]")
        elif r.sample and not r.passed:
            console.print(f"[dim]{r.node}: {r.check}: e.g. {r.sample[0]}[/]", markup=True)
    failed = sum(1 for r in results if r.status in ("fail", "error"))
    console.print(f"{len(results)} checks: {len(results) - failed} passed or warned, "
                  f"{failed} failed")


def print_plan(console: Console, plan: Plan) -> None:
    table = Table(title=f"plan ({plan.env})", title_justify="left")
    for col in ("#", "node", "kind", "action", "reason"):
        table.add_column(col)
    for i, n in enumerate(plan.nodes, start=1):
        style = ACTION_STYLE.get(n.action, "")
        table.add_row(str(i), n.name, n.kind, f"[{style}]{n.action}[/]", n.reason)
    console.print(table)
    runs = sum(1 for n in plan.nodes if n.action == "run")
    deferred = sum(1 for n in plan.nodes if n.action == "defer")
    console.print(f"{runs} to run, {len(plan.nodes) - runs - deferred} up to date or reused"
                  + (f", {deferred} deferred" if deferred else ""))


def print_diff(console: Console, diffs: list[Any], env_a: str, env_b: str) -> None:
    table = Table(title=f"{env_a} vs {env_b}", title_justify="left")
    for col in ("node", "status", f"rows {env_a}", f"rows {env_b}", "schema"):
        table.add_column(col)
    for d in diffs:
        schema = "; ".join(
            [f"+{c}" for c in d.added_columns] + [f"-{c}" for c in d.removed_columns]
            + d.retyped_columns
        )
        style = "dim" if d.status == "same" else "yellow"
        table.add_row(d.node, f"[{style}]{d.status}[/]",
                      "" if d.rows_a is None else f"{d.rows_a:,}",
                      "" if d.rows_b is None else f"{d.rows_b:,}", schema)
    console.print(table)


def elapsed(t0: float) -> str:
    return f"{time.perf_counter() - t0:.2f}s"
