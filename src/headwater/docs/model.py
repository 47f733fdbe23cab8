"""What the documentation site shows, gathered from the project, its lineage and its state.

Everything here is plain data (dicts and dataclasses) so that rendering is a
pure function of it. Configuration of sources and sinks is read from the raw
TOML and masked (:func:`safe_config`): a ``${VAR}`` reference is shown as
written, a literal secret is never shown.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.core.nodes import Node, SourceNode, SqlNode

if TYPE_CHECKING:
    from headwater.lineage.columns import NodeLineage, ProjectLineage
    from headwater.load.loader import LoadedProject
    from headwater.state.store import StateStore

RUN_HISTORY = 50  # runs read to find each node's last status and last build

_SECRET_KEY = re.compile(
    r"(^|_)(pass|password|passwd|pwd|secret|token|api_?key|private_?key|credentials?|auth|"
    r"authorization|access_?key|secret_?key|session_?key|signature|cookie)(_|$)",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)(?=@)",
                           re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(?P<head>\b(password|pwd|secret|token)\s*=\s*)(?P<pw>[^\s;&]+)",
                          re.IGNORECASE)
HIDDEN = "•••••• (hidden)"


@dataclass
class NodeDoc:
    name: str
    kind: str
    description: str
    path: str  # relative to the project
    tags: list[str]
    code: str
    language: str  # sql | python | toml
    lineage: NodeLineage
    upstream: list[str]
    downstream: list[str]
    materialized: str | None = None
    owner: str | None = None
    status: str = "never"  # ok | failed | blocked | never
    status_reason: str = ""
    last_run: dict[str, Any] | None = None  # latest executed run record of this node
    last_seen: dict[str, Any] | None = None  # latest run record of any status
    table: dict[str, Any] | None = None  # the published physical table: rows, built_at
    checks: list[dict[str, Any]] = field(default_factory=list)
    config: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class SiteDoc:
    name: str
    description: str
    env: str
    generated_at: str
    nodes: dict[str, NodeDoc]  # topological order
    last_run: dict[str, Any] | None


def gather(
    project: LoadedProject,
    lineage: ProjectLineage,
    state: StateStore | None,
    env: str,
    generated_at: str,
) -> SiteDoc:
    """Collect everything the site shows; reads files and the state store, writes nothing."""
    lineages = lineage.all()
    runs = _run_records(state, env)
    tables = _tables(state, env)
    checks = _checks(state, env)
    nodes: dict[str, NodeDoc] = {}
    graph = project.graph
    for name in graph.order():
        node = project.nodes[name]
        rel = _rel(node.path, project.root)
        code, language = _code(node)
        doc = NodeDoc(
            name=name,
            kind=node.kind,
            description=node.description,
            path=rel,
            tags=list(node.tags),
            code=code,
            language=language,
            lineage=lineages[name],
            upstream=list(graph.upstream[name]),
            downstream=sorted(graph.downstream.get(name, [])),
            materialized=node.materialized if node.kind in ("sql", "python") else None,
            owner=node.annotations.get("owner") if isinstance(node, SqlNode) else None,
            table=tables.get(name),
            problems=list(lineages[name].problems),
        )
        seen, executed = runs.get(name, (None, None))
        doc.last_seen, doc.last_run = seen, executed
        doc.status, doc.status_reason = _status(seen, doc.table, node.kind)
        doc.checks = _node_checks(node, checks.get(name, []))
        if node.kind in ("source", "sink"):
            doc.config = safe_config(node.path)
        nodes[name] = doc
    last = None
    if state is not None:
        recent = [r for r in state.runs(limit=RUN_HISTORY) if r.get("env") == env]
        last = recent[0] if recent else None
    return SiteDoc(project.config.name, project.config.description, env,
                   generated_at, nodes, last)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return path.name


def _code(node: Any) -> tuple[str, str]:
    if isinstance(node, SqlNode):
        return node.sql, "sql"
    if node.kind == "python":
        try:
            return node.path.read_text("utf-8-sig"), "python"
        except (OSError, UnicodeDecodeError):
            return "", "python"
    return "", "toml"  # configuration is shown masked, never as raw text


def _run_records(
    state: StateStore | None, env: str
) -> dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]]:
    """Per node: its latest run record, and its latest record that executed."""
    out: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] = {}
    if state is None:
        return out
    for run in state.runs(limit=RUN_HISTORY):
        if run.get("env") != env:
            continue
        for rec in state.run_nodes(run["run_id"]):
            rec = dict(rec, run_id=run["run_id"])
            seen, executed = out.get(rec["node"], (None, None))
            if seen is None:
                seen = rec
            if executed is None and rec["status"] == "executed":
                executed = rec
            out[rec["node"]] = (seen, executed)
    return out


def _tables(state: StateStore | None, env: str) -> dict[str, dict[str, Any]]:
    if state is None:
        return {}
    physical = state.all_physical()
    out = {}
    for name, pub in state.published(env).items():
        info = physical.get(pub.physical or "")
        out[name] = {
            "physical": pub.physical,
            "published_at": pub.published_at,
            "rows": info.rows if info else None,
            "built_at": info.created_at if info else None,
        }
    return out


def _checks(state: StateStore | None, env: str) -> dict[str, list[dict[str, Any]]]:
    latest = getattr(state, "latest_checks", None)
    if latest is None:
        return {}
    try:
        result: dict[str, list[dict[str, Any]]] = latest(env)
        return result
    except Exception:  # an older state store: no check history yet
        return {}


def _node_checks(node: Node, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Declared checks with their latest result; results of undeclared checks too."""
    by_name = {r.get("check"): r for r in results}
    out = []
    declared = [(spec.name, spec.severity) for spec in node.checks]
    if isinstance(node, SourceNode):  # as written in its TOML too
        declared += [(text, "error") for text in node.config.checks]
    for name, severity in declared:
        r = by_name.pop(name, None)
        out.append(_check_row(name, severity, r))
    for other, r in by_name.items():
        out.append(_check_row(str(other), r.get("severity", "error"), r))
    return out


def _check_row(name: str, severity: str, result: dict[str, Any] | None) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name, "severity": severity, "status": "not run yet"}
    if result is not None:
        row.update(status=result.get("status", ""), failing_rows=result.get("failing_rows"),
                   at=result.get("at"), error=_first_line(result.get("error")))
    return row


def _first_line(text: str | None) -> str | None:
    return text.strip().splitlines()[0][:300] if text and text.strip() else None


def _status(seen: dict[str, Any] | None, table: dict[str, Any] | None,
            kind: str) -> tuple[str, str]:
    if seen is None:
        return ("ok", "built") if table else ("never", "not built yet")
    reason = seen.get("reason") or ""
    if seen["status"] == "failed":
        return "failed", _first_line(seen.get("error")) or "failed"
    if seen["status"] == "skipped" and "failed" in reason and reason.startswith("upstream"):
        return "blocked", reason
    if table is None and kind != "sink" and seen["status"] != "executed":
        return "never", reason or "not built yet"
    return "ok", reason or seen["status"]


# -- configuration without secrets -------------------------------------------------------


def safe_config(path: Path) -> list[tuple[str, str]]:
    """(key, value) rows of a source or sink TOML, safe to publish.

    Values are the raw text of the file, so ``${VAR}`` references stay references
    (nothing is resolved). Literal values of secret-looking keys are hidden, and
    so are passwords inside URLs or ``key=value`` connection strings.
    """
    try:
        data = tomllib.loads(path.read_text("utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    rows: list[tuple[str, str]] = []
    _flatten(data, "", rows)
    return rows


def _flatten(value: Any, key: str, rows: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{key}.{k}" if key else str(k), rows)
        return
    rows.append((key, mask(key, value)))


def mask(key: str, value: Any) -> str:
    """The text to show for ``key = value``; secrets become ``HIDDEN``."""
    if isinstance(value, list):
        return "[" + ", ".join(mask(key, v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {mask(str(k), v)}" for k, v in value.items()) + "}"
    if not isinstance(value, str):
        return "true" if value is True else "false" if value is False else str(value)
    last = key.rsplit(".", 1)[-1].replace("-", "_")
    if _SECRET_KEY.search(last) and not _only_references(value):
        return HIDDEN
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + _hide(m.group("pw")), value)
    text = _KV_PASSWORD.sub(lambda m: m.group("head") + _hide(m.group("pw")), text)
    return text


def _hide(secret: str) -> str:
    return secret if _only_references(secret) else "••••••"


def _only_references(value: str) -> bool:
    """True when every non-blank part of ``value`` is a ``${VAR}`` reference."""
    return bool(value.strip()) and not re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", "", value).strip()
