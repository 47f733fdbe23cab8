"""What an import converted and what needs a person: counts, issues, IMPORT_REPORT.md.

An :class:`Issue` says where (file and line in the imported project), what (the
node), why, and how severe:

- ``skipped``: not converted; the file was left out of the Headwater project
  (kept under ``needs_attention/`` where there is something to keep);
- ``attention``: converted, but check it (a placeholder, a setting dropped,
  a semantics that differs);
- ``info``: worth knowing, nothing to do.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["skipped", "attention", "info"]
SEVERITIES: tuple[Severity, ...] = ("skipped", "attention", "info")
KINDS = ("models", "sources", "seeds", "tests")


@dataclass(frozen=True)
class Issue:
    severity: Severity
    kind: str  # one of KINDS, or "project"
    node: str
    reason: str
    file: str | None = None  # relative to the imported project
    line: int | None = None

    @property
    def location(self) -> str:
        if not self.file:
            return ""
        return f"{self.file}:{self.line}" if self.line else self.file

    def to_json(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "kind": self.kind,
            "node": self.node,
            "reason": self.reason,
            "file": self.file,
            "line": self.line,
        }


@dataclass
class ImportReport:
    """Counts per kind (found / converted) and every issue, in the order found."""

    tool: str
    source_dir: str
    out_dir: str
    found: Counter[str] = field(default_factory=Counter)
    converted: Counter[str] = field(default_factory=Counter)
    issues: list[Issue] = field(default_factory=list)
    written: list[str] = field(default_factory=list)  # files written, relative to out_dir
    notes: list[str] = field(default_factory=list)  # how things were mapped, for the reader
    mapping: list[tuple[str, str]] = field(default_factory=list)  # (imported file, written file)

    def add(
        self,
        severity: Severity,
        kind: str,
        node: str,
        reason: str,
        file: str | None = None,
        line: int | None = None,
    ) -> Issue:
        issue = Issue(severity, kind, node, reason, file, line)
        if issue not in self.issues:
            self.issues.append(issue)
        return issue

    def count(self, kind: str, *, converted: bool) -> None:
        self.found[kind] += 1
        if converted:
            self.converted[kind] += 1

    def of(self, *severities: Severity) -> list[Issue]:
        return [i for i in self.issues if i.severity in severities]

    @property
    def needs_attention(self) -> list[Issue]:
        return self.of("skipped", "attention")

    def summary_rows(self) -> list[tuple[str, int, int]]:
        """(kind, converted, not converted) for models, sources, seeds and tests."""
        return [(k, self.converted[k], self.found[k] - self.converted[k]) for k in KINDS]

    def to_json(self) -> dict[str, object]:
        return {
            "tool": self.tool,
            "source": self.source_dir,
            "out": self.out_dir,
            "summary": {
                k: {"converted": c, "not_converted": n} for k, c, n in self.summary_rows()
            },
            "issues": [i.to_json() for i in self.issues],
        }

    def to_markdown(self) -> str:
        lines = [
            f"# Import report: {self.tool}",
            "",
            f"Imported `{self.source_dir}` into `{self.out_dir}`.",
            "",
            "| | converted | not converted |",
            "| --- | ---: | ---: |",
        ]
        lines += [f"| {k} | {c} | {n} |" for k, c, n in self.summary_rows()]
        lines.append("")
        titles = {
            "skipped": "Not converted",
            "attention": "Converted, please review",
            "info": "For information",
        }
        for severity in SEVERITIES:
            items = self.of(severity)
            if not items:
                continue
            lines += [f"## {titles[severity]} ({len(items)})", ""]
            lines += ["| where | node | why |", "| --- | --- | --- |"]
            for i in items:
                where = f"`{i.location}`" if i.location else ""
                lines.append(f"| {where} | {i.node} | {_cell(i.reason)} |")
            lines.append("")
        if not self.needs_attention:
            lines += ["Nothing needs attention.", ""]
        if self.notes:
            lines += ["## How the project was mapped", ""]
            lines += [f"- {n}" for n in self.notes]
            lines.append("")
        if self.mapping:
            lines += ["## Files", "", "| imported | written |", "| --- | --- |"]
            lines += [f"| `{a}` | `{b}` |" for a, b in self.mapping]
            lines.append("")
        return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def print_summary(console: Any, report: ImportReport, *, limit: int = 25) -> None:
    """The end-of-import summary for a terminal: counts, then what needs attention."""
    from rich.table import Table

    table = Table(title=f"headwater import {report.tool}", title_justify="left")
    table.add_column("")
    table.add_column("converted", justify="right", style="green")
    table.add_column("not converted", justify="right")
    for kind, converted, missing in report.summary_rows():
        table.add_row(kind, str(converted), f"[yellow]{missing}[/]" if missing else "0")
    console.print(table)
    todo = report.needs_attention
    if todo:
        console.print(f"[bold yellow]needs attention ({len(todo)}):[/]")
        for issue in todo[:limit]:
            mark = "[red]not converted[/]" if issue.severity == "skipped" else "[yellow]review[/]"
            where = f"{issue.location}: " if issue.location else ""
            console.print(f"  {mark} {where}[bold]{issue.node}[/]: {issue.reason}",
                          markup=True, highlight=False, soft_wrap=True)
        if len(todo) > limit:
            console.print(f"  ... and {len(todo) - limit} more in IMPORT_REPORT.md")
    else:
        console.print("[green]nothing needs attention[/]")
    console.print(f"wrote {len(report.written)} files to {report.out_dir}; "
                  f"report: {report.out_dir}/IMPORT_REPORT.md")
