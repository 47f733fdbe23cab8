"""What the pages show, as plain JSON-ready data, read through the public API.

Status of a node, as the graph colours it:

* ``running``  the server's own run is building it now;
* ``fresh``    the plan would skip it (what is published matches the code and data);
* ``deferred`` the plan holds it back (a source outside its availability window);
* ``failed``   its last run failed, and it still needs running;
* ``stale``    the plan would run or re-publish it (never built, code/data/upstream changed).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.errors import HeadwaterError, SelectionError, did_you_mean
from headwater.web.runs import Job, WarehouseGate

if TYPE_CHECKING:
    from headwater.api import Project
    from headwater.plan.planner import Plan

STATUSES = ("fresh", "stale", "running", "failed", "deferred")
PLAN_TTL = 2.0  # seconds a computed plan is reused by the graph and node pages
HISTORY_RUNS = 50  # runs read for each node's history and last status
PREVIEW_MAX = 100


class NotFound(HeadwaterError):
    """A node or run that does not exist."""


def node_status(
    action: str | None, reason: str, last: Mapping[str, Any] | None, live: str | None
) -> tuple[str, str]:
    """(status, why) of one node from its plan entry, its last run record and live state."""
    if live == "running":
        return "running", "being built now"
    if action is None:
        return "stale", "not planned"
    if action == "skip":
        return "fresh", reason or "up to date"
    if reason.startswith("deferred"):
        return "deferred", reason
    if last is not None and last.get("status") == "failed":
        error = (last.get("error") or "").strip().splitlines()
        return "failed", error[0][:300] if error else (last.get("reason") or "failed")
    return "stale", reason


def node_history(state: Any, env: str, runs: int = HISTORY_RUNS) -> dict[str, list[dict[str, Any]]]:
    """Every node's run records in ``env``, newest first."""
    out: dict[str, list[dict[str, Any]]] = {}
    for run in state.runs(limit=runs):
        if run.get("env") != env:
            continue
        for rec in state.run_nodes(run["run_id"]):
            out.setdefault(rec["node"], []).append(dict(rec, run_id=run["run_id"]))
    return out


def json_cell(value: Any) -> Any:
    """A value from a table, as JSON can carry it (and a person can read it)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date | dtime):
        return value.isoformat()
    if isinstance(value, Decimal | timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        return "0x" + raw[:64].hex() + ("…" if len(raw) > 64 else "")
    if isinstance(value, dict):
        return {str(k): json_cell(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_cell(v) for v in value]
    return str(value)


@lru_cache(maxsize=512)
def highlight(code: str, language: str) -> str:
    """Pygments HTML for ``code`` (spans only; the page wraps it in ``pre.hl``)."""
    from pygments import highlight as pyg
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        lexer = get_lexer_by_name(language)
    except ClassNotFound:
        lexer = get_lexer_by_name("text")
    html: str = pyg(code, lexer, HtmlFormatter(nowrap=True))
    return html


def pygments_css() -> str:
    from pygments.formatters import HtmlFormatter

    css: str = HtmlFormatter(style="friendly").get_style_defs("pre.hl")
    return css + "\n"


class ProjectView:
    """Read-side of the server: one Project, its plan cached briefly, serialised access."""

    def __init__(
        self,
        project: Project,
        gate: WarehouseGate,
        live: Callable[[], Job | None],
    ) -> None:
        self.project = project
        self.env = project.env
        self.gate = gate
        self.live = live
        self.lock = threading.RLock()
        self._plan: tuple[float, Plan] | None = None

    # -- shared pieces ------------------------------------------------------

    def invalidate(self) -> None:
        with self.lock:
            self._plan = None

    def plan(self) -> Plan:
        with self.lock:
            if self._plan is not None and time.monotonic() - self._plan[0] < PLAN_TTL:
                return self._plan[1]
            plan = self.project.plan()
            self._plan = (time.monotonic(), plan)
            return plan

    def loaded(self) -> Any:
        """The project as its files are now (re-read with the plan, at most PLAN_TTL old)."""
        with self.lock:
            self.plan()
            return self.project.loaded

    def _live_states(self) -> tuple[dict[str, str], dict[str, Any] | None]:
        job = self.live()
        if job is None:
            return {}, None
        snapshot = job.to_json()
        if not job.active:
            return {}, snapshot
        return {n["name"]: n.get("state", "") for n in snapshot["nodes"]}, snapshot

    def info(self, token_required: bool) -> dict[str, Any]:
        from headwater import __version__ as version

        with self.lock:
            name = self.loaded().config.name
        job = self.live()
        return {"name": name, "env": self.env, "version": version,
                "token_required": token_required,
                "run": job.to_json() if job is not None else None}

    # -- the graph ------------------------------------------------------------

    def graph(self) -> dict[str, Any]:
        from headwater.docs.layout import curve, layout

        with self.lock:
            plan = self.plan()
            loaded = self.project.loaded
            history = node_history(self.project.state, self.env, runs=10)
            tables = self._tables()
        live, job = self._live_states()
        actions = {n.name: n for n in plan.nodes}
        order = loaded.graph.order()
        upstream = {n: list(loaded.graph.upstream[n]) for n in order}
        boxes = layout(order, upstream)
        nodes = []
        for n in order:
            node = loaded.nodes[n]
            np = actions.get(n)
            records = history.get(n)
            last = records[0] if records else None
            status, why = node_status(np.action if np else None, np.reason if np else "",
                                      last, live.get(n))
            b = boxes[n]
            nodes.append({
                "name": n, "kind": node.kind, "status": status, "reason": why,
                "action": np.action if np else None,
                "description": node.description.strip().splitlines()[0]
                if node.description.strip() else "",
                "tags": list(node.tags), "upstream": upstream[n],
                "rows": (tables.get(n) or {}).get("rows"),
                "last_run": _brief(last),
                "x": round(b.x, 1), "y": round(b.y, 1), "w": round(b.w, 1), "h": b.h,
            })
        edges = []
        for n in order:
            b = boxes[n]
            for u in upstream[n]:
                a = boxes[u]
                edges.append({"from": u, "to": n,
                              "d": curve(a.x + a.w, a.y + a.h / 2, b.x, b.y + b.h / 2)})
        width = max((b.x + b.w for b in boxes.values()), default=0) + 20
        height = max((b.y + b.h for b in boxes.values()), default=0) + 20
        counts = {s: sum(1 for x in nodes if x["status"] == s) for s in STATUSES}
        return {"name": loaded.config.name, "env": self.env, "nodes": nodes, "edges": edges,
                "width": round(width, 1), "height": round(height, 1), "counts": counts,
                "run": job}

    def _tables(self) -> dict[str, dict[str, Any]]:
        state = self.project.state
        physical = state.all_physical()
        out = {}
        for name, pub in state.published(self.env).items():
            info = physical.get(pub.physical or "")
            out[name] = {"physical": pub.physical, "published_at": pub.published_at,
                         "rows": info.rows if info else None,
                         "built_at": info.created_at if info else None}
        return out

    # -- one node -------------------------------------------------------------

    def node(self, name: str) -> dict[str, Any]:
        from datetime import UTC

        from headwater.docs.model import gather
        from headwater.docs.render import lineage_svg

        with self.lock:
            plan = self.plan()
            loaded = self.project.loaded
            if name not in loaded.nodes:
                raise self._unknown(name)
            lineage = self.project.lineage()
            site = gather(loaded, lineage, self.project.state, self.env,
                          datetime.now(UTC).isoformat(timespec="seconds"))
            doc = site.nodes[name]
            history = node_history(self.project.state, self.env).get(name, [])
            svg = lineage_svg(doc, lineage) if doc.lineage.columns else ""
        live, _ = self._live_states()
        np = next((n for n in plan.nodes if n.name == name), None)
        status, why = node_status(np.action if np else None, np.reason if np else "",
                                  history[0] if history else None, live.get(name))
        return {
            "name": name, "kind": doc.kind, "status": status, "reason": why,
            "action": np.action if np else None,
            "description": doc.description, "path": doc.path, "tags": doc.tags,
            "owner": doc.owner, "materialized": doc.materialized,
            "upstream": doc.upstream, "downstream": doc.downstream,
            "code": {"language": doc.language, "text": doc.code,
                     "html": highlight(doc.code, doc.language) if doc.code else ""},
            "config": [{"key": k, "value": v} for k, v in doc.config],
            "columns": doc.lineage.to_json()["columns"],
            "lineage_svg": svg,
            "lineage_notes": list(doc.problems),
            "checks": [{k: c.get(k) for k in ("name", "severity", "status", "failing_rows",
                                              "at", "error")} for c in doc.checks],
            "table": doc.table,
            "history": [_brief(r) for r in history[:30]],
        }

    def _unknown(self, name: str) -> NotFound:
        nodes = list(self.project.loaded.nodes)
        return NotFound(f"no node named {name!r}",
                        hint=did_you_mean(name, nodes) or "the graph page lists every node")

    def resolve(self, key: str) -> str:
        """A node name from a URL part: the name itself or the docs' page file name."""
        from headwater.docs.render import page_file

        with self.lock:
            nodes: dict[str, Any] = self.loaded().nodes
            if key in nodes:
                return key
            for n in nodes:
                if page_file(n) == key:
                    return n
            raise self._unknown(key)

    def preview(self, name: str, limit: int = PREVIEW_MAX) -> dict[str, Any]:
        """The first rows of a published table, read-only; refused while a run writes."""
        limit = max(1, min(limit, PREVIEW_MAX))
        with self.lock:
            loaded = self.loaded()
            node = loaded.nodes.get(name)
            if node is None:
                raise self._unknown(name)
            if not node.is_table:
                raise NotFound(f"{name} is a sink: it has no table to preview")
            pub = self.project.state.published(self.env).get(name)
        if pub is None or pub.physical is None:
            raise NotFound(f"{name} has not been built in env {self.env!r}",
                           hint=f"run it: select +{name}")
        with self.gate.reading():
            table = self.project.table(name, limit=limit)
        columns = [{"name": f.name, "type": str(f.type)} for f in table.schema]
        rows = [[json_cell(v) for v in row.values()] for row in table.to_pylist()]
        return {"name": name, "env": self.env, "columns": columns, "rows": rows,
                "limit": limit, "truncated": len(rows) >= limit}

    # -- runs -------------------------------------------------------------------

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        with self.lock:
            state = self.project.state
            out = []
            for run in state.runs(limit=limit):
                nodes = state.run_nodes(run["run_id"])
                out.append(dict(_run_summary(run, nodes)))
        return out

    def run(self, run_id: str) -> dict[str, Any]:
        with self.lock:
            state = self.project.state
            match = [r for r in state.runs(limit=1000) if r["run_id"] == run_id]
            if not match:
                raise NotFound(f"no run {run_id!r}", hint="the runs page lists recent runs")
            nodes = state.run_nodes(run_id)
        out = _run_summary(match[0], nodes)
        out["nodes"] = [_brief(r) for r in nodes]
        return out

    def plan_json(self) -> dict[str, Any]:
        return self.plan().to_json()

    def root(self) -> Path:
        return self.project.root


def _brief(rec: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if rec is None:
        return None
    keys = ("run_id", "node", "kind", "status", "reason", "rows", "seconds", "started_at",
            "ended_at", "error")
    return {k: rec.get(k) for k in keys}


def _run_summary(run: Mapping[str, Any], nodes: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {"executed": 0, "skipped": 0, "failed": 0}
    for n in nodes:
        counts[n["status"]] = counts.get(n["status"], 0) + 1
    seconds = None
    if run.get("ended_at"):
        try:
            seconds = round((datetime.fromisoformat(run["ended_at"])
                             - datetime.fromisoformat(run["started_at"])).total_seconds(), 3)
        except (TypeError, ValueError):
            seconds = None
    return {"run_id": run["run_id"], "env": run["env"], "status": run["status"],
            "started_at": run["started_at"], "ended_at": run.get("ended_at"),
            "selection": run.get("selection"), "seconds": seconds, "counts": counts}


__all__ = ["NotFound", "ProjectView", "SelectionError", "STATUSES", "node_status"]
