"""HTML for the documentation site: the index (search, DAG, node list) and one page per node.

Pure functions from :mod:`headwater.docs.model` data to strings. Every dynamic
text goes through ``html.escape``; scripts and styles are local files, so the
pages work from a file:// URL without any network.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from html import escape
from typing import Any

from headwater.docs.layout import curve, dag_svg
from headwater.docs.model import NodeDoc, SiteDoc
from headwater.lineage.columns import ProjectLineage

KIND_LABEL = {"source": "source", "sql": "SQL", "python": "Python", "sink": "sink"}
STATUS_LABEL = {"ok": "ok", "failed": "failed", "blocked": "skipped (upstream failed)",
                "never": "not built"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; base-uri 'none'; form-action 'none'")


def page_file(name: str) -> str:
    """The file name of a node's page: safe on every file system, unique per node."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    if safe != name:
        import hashlib

        safe += "-" + hashlib.sha1(name.encode()).hexdigest()[:6]
    return safe + ".html"


def anchor(column: str) -> str:
    return "col-" + re.sub(r"[^A-Za-z0-9_-]", "_", column)


def _time(value: str | None) -> str:
    if not value:
        return "—"
    return f'<time datetime="{escape(value)}" title="{escape(value)}">{escape(value)}</time>'


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f} s" if value < 60 else f"{value / 60:.1f} min"


def _rows(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _paragraphs(text: str, kind: str = "sql") -> str:
    if not text.strip():
        how = {"sql": "as the leading comment of the file", "python": "as its docstring"}.get(
            kind, 'with description = "..." in its TOML')
        return f'<p class="muted">No description. Write one {how}.</p>'
    return "".join(f"<p>{escape(p).replace(chr(10), '<br>')}</p>"
                   for p in re.split(r"\n\s*\n", text.strip()))


def _shell(title: str, body: str, root: str, site: SiteDoc, page: str) -> str:
    # only the index says when it was generated: node pages stay byte-identical between
    # builds unless what they show changed, so a rebuild rewrites only those
    stamp = f" · generated {_time(site.generated_at)}" if page == "index" else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="stylesheet" href="{root}assets/shared.css">
<link rel="stylesheet" href="{root}assets/style.css">
<link rel="stylesheet" href="{root}assets/pygments.css">
</head>
<body data-root="{root}" data-page="{page}">
<header class="top">
  <a class="brand" href="{root}index.html">{escape(site.name)}</a>
  <div class="search">
    <input id="search" type="search" placeholder="Search nodes and columns  ( / )"
           autocomplete="off" aria-label="search nodes and columns">
    <ol id="results" hidden></ol>
  </div>
  <span class="muted small">env {escape(site.env)}{stamp}</span>
</header>
<main>
{body}
</main>
<script src="{root}data.js"></script>
<script src="{root}assets/shared.js"></script>
<script src="{root}assets/app.js"></script>
</body>
</html>
"""


# -- index ----------------------------------------------------------------------------------


def index_page(site: SiteDoc, graph_upstream: Mapping[str, Any]) -> str:
    order = list(site.nodes)
    kinds = {n: d.kind for n, d in site.nodes.items()}
    statuses = {n: d.status for n, d in site.nodes.items()}
    hrefs = {n: "nodes/" + page_file(n) for n in order}
    svg = dag_svg(order, graph_upstream, kinds, statuses, hrefs)
    counts: dict[str, int] = {}
    for d in site.nodes.values():
        counts[d.kind] = counts.get(d.kind, 0) + 1
    summary = ", ".join(f"{v} {KIND_LABEL.get(k, k)}" for k, v in sorted(counts.items()))
    last = site.last_run
    run = "never run"
    if last:
        badge = "ok" if last["status"] == "success" else "failed"
        run = (f'last run <span class="badge status-{badge}">{escape(last["status"])}</span> '
               f'{_time(last.get("ended_at") or last["started_at"])}')
    rows = "".join(
        f'<tr><td><a href="{escape(hrefs[n])}">{escape(n)}</a></td>'
        f'<td><span class="badge kind-{d.kind}">{KIND_LABEL.get(d.kind, d.kind)}</span></td>'
        f'<td><span class="badge status-{d.status}">{STATUS_LABEL[d.status]}</span></td>'
        f'<td class="num">{_rows((d.table or {}).get("rows"))}</td>'
        f'<td>{_time((d.last_run or {}).get("ended_at") or (d.table or {}).get("built_at"))}</td>'
        f"<td>{escape(d.description.splitlines()[0] if d.description else '')}</td></tr>"
        for n, d in site.nodes.items()
    )
    body = f"""
<section class="intro">
  <h1>{escape(site.name)}</h1>
  {_paragraphs(site.description) if site.description else ""}
  <p class="muted">{len(order)} nodes: {escape(summary)} · {run}</p>
</section>
<section class="panel">
  <div class="toolbar">
    <span>colour by</span>
    <label><input type="radio" name="colour" value="kind" checked> kind</label>
    <label><input type="radio" name="colour" value="status"> status</label>
    <button type="button" id="zoom-in" title="zoom in">+</button>
    <button type="button" id="zoom-out" title="zoom out">−</button>
    <button type="button" id="fit" title="fit the whole graph">fit</button>
    <span class="legend legend-kind">
      <i class="kind-source"></i>source <i class="kind-sql"></i>SQL
      <i class="kind-python"></i>Python <i class="kind-sink"></i>sink</span>
    <span class="legend legend-status">
      <i class="status-ok"></i>ok <i class="status-failed"></i>failed
      <i class="status-blocked"></i>skipped <i class="status-never"></i>not built</span>
    <span class="muted small">drag to pan · wheel to zoom · click a node to open it</span>
  </div>
  <div id="dag-box" class="dag-box">{svg}</div>
</section>
<section>
  <h2>Nodes</h2>
  <table class="grid nodes">
    <thead><tr><th>name</th><th>kind</th><th>status</th><th>rows</th><th>last built</th>
    <th>description</th></tr></thead>
    <tbody>{rows}</tbody>
  </table>
</section>"""
    return _shell(site.name, body, "", site, "index")


# -- node pages -------------------------------------------------------------------------------


def node_page(
    site: SiteDoc,
    doc: NodeDoc,
    lineage: ProjectLineage,
    sources_of: Mapping[tuple[str, str], frozenset[str]],
    highlight: Callable[[str, str], str],
) -> str:
    link = _linker(site)
    facts = _facts(doc)
    ups = "".join(f"<li>{link(u)}</li>" for u in doc.upstream) or '<li class="muted">none</li>'
    downs = "".join(f"<li>{link(d)}</li>" for d in doc.downstream) or \
        '<li class="muted">none</li>'
    body = [f"""
<nav class="crumbs"><a href="../index.html">{escape(site.name)}</a> ›
  {escape(KIND_LABEL.get(doc.kind, doc.kind))}</nav>
<h1 id="node" data-node="{escape(doc.name)}">{escape(doc.name)}
  <span class="badge kind-{doc.kind}">{KIND_LABEL.get(doc.kind, doc.kind)}</span>
  <span class="badge status-{doc.status}" title="{escape(doc.status_reason)}">
  {STATUS_LABEL[doc.status]}</span></h1>
<section class="description">{_paragraphs(doc.description, doc.kind)}</section>
<section class="facts">{facts}</section>
<section class="neighbours">
  <div><h2>Upstream</h2><ul>{ups}</ul></div>
  <div><h2>Downstream</h2><ul>{downs}</ul></div>
</section>"""]
    if doc.lineage.columns:
        body.append(f"""
<section>
  <h2>Column lineage</h2>
  <p class="muted small">Hover a column to follow it, click to pin it. Solid lines are exact
  (read from the SQL or declared); dashed lines are coarse (a Python transform: every output
  depends on every input unless it declares <code>LINEAGE</code>); dotted lines go to the
  node itself from columns that choose its rows (filter, join, group by, sort).</p>
  <div class="lineage-box">{lineage_svg(doc, lineage)}</div>
</section>""")
    body.append(_columns_table(doc, lineage, sources_of, link))
    if doc.checks or doc.kind in ("sql", "python"):
        body.append(_checks_table(doc))
    if doc.config:
        rows = "".join(f"<tr><th>{escape(k)}</th><td><code>{escape(v)}</code></td></tr>"
                       for k, v in doc.config)
        body.append(f"""
<section><h2>Configuration</h2>
<p class="muted small">From {escape(doc.path)}. Secrets are never shown: settings that come from
the environment appear as their <code>${{VAR}}</code> reference.</p>
<table class="grid config">{rows}</table></section>""")
    if doc.problems:
        items = "".join(f"<li>{escape(p)}</li>" for p in doc.problems)
        body.append(f'<section class="problems"><h2>Lineage notes</h2><ul>{items}</ul></section>')
    if doc.code:
        body.append(f"""
<section><h2>Code <span class="muted small">{escape(doc.path)}</span></h2>
<pre class="hl"><code>{highlight(doc.code, doc.language)}</code></pre></section>""")
    return _shell(f"{doc.name} · {site.name}", "".join(body), "../", site, "node")


def _linker(site: SiteDoc) -> Callable[..., str]:
    def link(node: str, column: str | None = None, text: str | None = None) -> str:
        if node not in site.nodes:
            return escape(text or (f"{node}.{column}" if column else node))
        href = page_file(node) + (f"#{anchor(column)}" if column else "")
        label = text or (f"{node}.{column}" if column else node)
        kind = site.nodes[node].kind
        return f'<a class="ref kind-{kind}" href="{escape(href)}">{escape(label)}</a>'

    return link


def _facts(doc: NodeDoc) -> str:
    items: list[tuple[str, str]] = [("file", f"<code>{escape(doc.path)}</code>")]
    if doc.materialized:
        items.append(("materialized", escape(doc.materialized)))
    if doc.tags:
        items.append(("tags", " ".join(f'<span class="tag">{escape(t)}</span>'
                                       for t in doc.tags)))
    if doc.owner:
        items.append(("owner", escape(str(doc.owner))))
    run = doc.last_run
    if run:
        items.append(("last run", f"{_time(run.get('ended_at'))} · "
                      f"{_seconds(run.get('seconds'))} · {_rows(run.get('rows'))} rows"
                      f' <span class="muted">({escape(run.get("reason") or "")})</span>'))
    seen = doc.last_seen
    if seen and seen is not run:
        items.append(("latest run", f"{escape(seen['status'])}: "
                      f"{escape(seen.get('reason') or '')} · {_time(seen.get('ended_at'))}"))
    if doc.table and doc.table.get("physical"):
        items.append(("table", f"{_rows(doc.table.get('rows'))} rows, built "
                      f"{_time(doc.table.get('built_at'))}"))
    if doc.kind == "source":
        loaded = (run or {}).get("ended_at") or (doc.table or {}).get("built_at")
        checked = (seen or {}).get("ended_at")
        items.append(("freshness", f'<span class="fresh" data-time="{escape(loaded or "")}">'
                      f"data last loaded {_time(loaded)}</span>"
                      + (f"; last checked for new data {_time(checked)}" if checked else "")))
    if doc.status in ("failed", "blocked"):
        items.append(("problem", f'<span class="bad">{escape(doc.status_reason)}</span>'))
    return "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _columns_table(doc: NodeDoc, lineage: ProjectLineage,
                   sources_of: Mapping[tuple[str, str], frozenset[str]],
                   link: Callable[..., str]) -> str:
    if not doc.lineage.columns:
        why = "; ".join(doc.problems) or "the columns are known once the node is built"
        return f'<section><h2>Columns</h2><p class="muted">{escape(why)}</p></section>'
    rows = []
    is_source = doc.kind == "source"
    for col in doc.lineage.columns:
        made = _made_of(col.inputs, lineage, link)
        srcs = sorted(sources_of.get((doc.name, col.name), frozenset()))
        src_html = ", ".join(link(*s.split(".", 1)) for s in srcs[:12]) + (
            f" … (+{len(srcs) - 12})" if len(srcs) > 12 else "")
        used = lineage.consumers(doc.name, col.name)
        used_html = ", ".join(link(n, c) for n, c, _ in used[:12]) + (
            f" … (+{len(used) - 12})" if len(used) > 12 else "")
        expr = f"<code>{escape(col.expression)}</code>" if col.expression and not re.fullmatch(
            r"(\w+\.)?" + re.escape(col.name), col.expression) else ""
        origin = "" if is_source else (
            f"<td>{made}</td><td>{src_html or '<span class=muted>—</span>'}</td>")
        rows.append(
            f'<tr id="{anchor(col.name)}" data-col="{escape(col.name)}">'
            f"<td><b>{escape(col.name)}</b></td><td><code>{escape(col.type or '')}</code></td>"
            f"<td>{escape(col.description)}{'<br>' if col.description and expr else ''}"
            f"{expr}</td>{origin}"
            f"<td>{used_html or '<span class=muted>—</span>'}</td></tr>")
    heads = "" if is_source else "<th>made of</th><th>source columns</th>"
    return f"""
<section><h2>Columns</h2>
<table class="grid columns"><thead><tr><th>column</th><th>type</th><th>description</th>
{heads}<th>used by</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table></section>"""


def _made_of(inputs: list[Any], lineage: ProjectLineage, link: Callable[..., str]) -> str:
    """The inputs of a column; coarse edges to every column of a node are said once."""
    coarse = '<span class="coarse" title="coarse: assumed, not read from code">~coarse</span>'
    parts = []
    by_node: dict[str, list[Any]] = {}
    for e in inputs:
        by_node.setdefault(e.node, []).append(e)
    for node, edges in by_node.items():
        upstream = lineage.node(node).columns
        if all(not e.exact for e in edges) and (
                any(e.column == "*" for e in edges) or len(edges) >= max(2, len(upstream))):
            parts.append(f"every column of {link(node)} {coarse}")
            continue
        parts += [link(e.node, e.column, f"{e.node}.{e.column}")
                  + f' <span class="tr">{e.transform}</span>' + ("" if e.exact else " " + coarse)
                  for e in edges]
    return ", ".join(parts) or '<span class="muted">—</span>'


def _checks_table(doc: NodeDoc) -> str:
    if not doc.checks:
        return ('<section><h2>Checks</h2><p class="muted">No checks declared. Add one to the '
                "leading comment, e.g. <code>-- @check: not_null(id)</code>.</p></section>")
    rows = "".join(
        f"<tr><td><code>{escape(c['name'])}</code></td><td>{escape(c['severity'])}</td>"
        f'<td><span class="badge check-{escape(str(c["status"]).replace(" ", "-"))}">'
        f"{escape(str(c['status']))}</span></td>"
        f"<td class=num>{_rows(c.get('failing_rows'))}</td><td>{_time(c.get('at'))}</td>"
        f"<td>{escape(c.get('error') or '')}</td></tr>"
        for c in doc.checks)
    return f"""
<section><h2>Checks</h2><table class="grid checks"><thead><tr><th>check</th><th>severity</th>
<th>last result</th><th>failing rows</th><th>at</th><th></th></tr></thead>
<tbody>{rows}</tbody></table></section>"""


# -- the column lineage picture ----------------------------------------------------------------

ROW_H = 20
HEAD_H = 24
BOX_W = 230
COL_GAP = 150
MAX_COLS = 200  # columns listed per box before the rest is summarised


def lineage_svg(doc: NodeDoc, lineage: ProjectLineage) -> str:
    """Upstream columns | this node's columns | downstream columns, with edges between."""
    me = doc.name
    cols = doc.lineage.columns[:MAX_COLS]
    # upstream boxes: the columns this node reads, in upstream column order
    up_cols: dict[str, list[str]] = {}
    coarse_nodes: set[tuple[str, str]] = set()  # (upstream, my column) drawn from the header
    for col in cols:
        for e in col.inputs:
            if (doc.kind == "python" and not e.exact) or e.column == "*":
                coarse_nodes.add((e.node, col.name))
                up_cols.setdefault(e.node, [])
            else:
                lst = up_cols.setdefault(e.node, [])
                if e.column not in lst:
                    lst.append(e.column)
    row_reads: dict[tuple[str, str], list[str]] = {}  # (upstream, column) -> how
    for up, c, how in doc.lineage.reads:
        row_reads.setdefault((up, c), []).append(how)
        lst = up_cols.setdefault(up, [])
        if c not in lst:
            lst.append(c)
    for up, lst in up_cols.items():
        order = [c.name for c in lineage.node(up).columns]
        lst.sort(key=lambda c: order.index(c) if c in order else len(order))
    down_cols: dict[str, list[str]] = {}
    edges_out: list[tuple[str, str, str, str, bool]] = []  # my col, down node, down col, tr, exact
    for col in cols:
        for n, c, e in lineage.consumers(me, col.name):
            lst = down_cols.setdefault(n, [])
            if c not in lst:
                lst.append(c)
            edges_out.append((col.name, n, c, e.transform, e.exact))
    ys: dict[tuple[str, str], float] = {}
    heads: dict[str, float] = {}
    parts: list[str] = []

    def box(node: str, names: list[str], x: float, y: float, side: str) -> float:
        shown = names[:MAX_COLS]
        h = HEAD_H + ROW_H * max(1, len(shown))
        kind = lineage.node(node).kind
        href = "#" if node == me else page_file(node)
        parts.append(
            f'<g class="lbox {side} kind-{kind}"><rect class="frame" x="{x}" y="{y}" '
            f'width="{BOX_W}" height="{h}" rx="6"/>'
            f'<a href="{escape(href)}"><rect class="head" x="{x}" y="{y}" width="{BOX_W}" '
            f'height="{HEAD_H}" rx="6"/><text class="htext" x="{x + 8}" y="{y + 16}">'
            f"{escape(_clip(node, 30))}</text></a>")
        heads[node] = y + HEAD_H / 2
        if not shown:
            label = "every column (coarse)" if side == "up" else "no columns known yet"
            parts.append(f'<text class="how" x="{x + 10}" y="{y + HEAD_H + 14}">{label}</text>')
        for i, c in enumerate(shown):
            cy = y + HEAD_H + i * ROW_H
            ys[(node, c)] = cy + ROW_H / 2
            target = "" if node == me else f"{page_file(node)}#{anchor(c)}"
            hows = row_reads.get((node, c), []) if side == "up" else []
            note = (f'<text class="how" x="{x + BOX_W - 8}" y="{cy + 14}" text-anchor="end">'
                    f"{escape(', '.join(sorted(set(hows))))}</text>") if hows else ""
            parts.append(
                f'<g class="lcol" data-ref="{escape(node)}.{escape(c)}" data-side="{side}">'
                f'<rect x="{x + 1}" y="{cy}" width="{BOX_W - 2}" height="{ROW_H}"/>'
                + (f'<a href="{escape(target)}">' if target else "")
                + f'<text x="{x + 10}" y="{cy + 14}">{escape(_clip(c, 26 if hows else 32))}</text>'
                + ("</a>" if target else "") + note + "</g>")
        parts.append("</g>")
        return y + h + 16

    x_up, x_me, x_down = 0, BOX_W + COL_GAP, 2 * (BOX_W + COL_GAP)
    y = 0.0
    for up, names in up_cols.items():
        y = box(up, names, x_up, y, "up")
    h_up = y
    h_me = box(me, [c.name for c in cols], x_me if up_cols else 0, 0, "me")
    x_me_real = x_me if up_cols else 0
    x_down_real = x_down if up_cols else x_me
    y = 0.0
    for down, names in sorted(down_cols.items()):
        y = box(down, names, x_down_real, y, "down")
    h_down = y
    edges: list[str] = []
    drawn: set[tuple[str, str]] = set()
    for col in cols:
        for e in col.inputs:
            from_head = (e.node, col.name) in coarse_nodes
            if from_head:
                if (e.node, col.name) in drawn:
                    continue  # one edge from the upstream's header per column
                drawn.add((e.node, col.name))
            y1 = heads.get(e.node) if from_head else ys.get((e.node, e.column))
            y2 = ys.get((me, col.name))
            if y1 is None or y2 is None:
                continue
            cls = "ledge" + ("" if e.exact else " coarse")
            edges.append(
                f'<path class="{cls}" d="{curve(x_up + BOX_W, y1, x_me_real, y2)}" '
                f'data-from="{escape(e.node)}.{escape(e.column)}" '
                f'data-to="{escape(me)}.{escape(col.name)}"><title>{escape(e.transform)}'
                f'{"" if e.exact else " (coarse)"}</title></path>')
    for (up, c), hows in sorted(row_reads.items()):
        y1, y2 = ys.get((up, c)), heads.get(me)
        if y1 is None or y2 is None:
            continue
        how = ", ".join(sorted(set(hows)))
        edges.append(
            f'<path class="ledge rows" d="{curve(x_up + BOX_W, y1, x_me_real, y2)}" '
            f'data-from="{escape(up)}.{escape(c)}" data-to="{escape(me)}">'
            f"<title>chooses rows ({escape(how)})</title></path>")
    for mine, n, c, tr, exact in edges_out:
        y1, y2 = ys.get((me, mine)), ys.get((n, c))
        if y1 is None or y2 is None:
            continue
        cls = "ledge" + ("" if exact else " coarse")
        edges.append(
            f'<path class="{cls}" d="{curve(x_me_real + BOX_W, y1, x_down_real, y2)}" '
            f'data-from="{escape(me)}.{escape(mine)}" data-to="{escape(n)}.{escape(c)}">'
            f'<title>{escape(tr)}{"" if exact else " (coarse)"}</title></path>')
    width = x_down_real + BOX_W + 10 if down_cols else x_me_real + BOX_W + 10
    height = max(h_up, h_me, h_down) + 10
    return (f'<svg id="lineage" class="lineage" xmlns="http://www.w3.org/2000/svg" '
            f'viewBox="-5 -5 {width:.0f} {height:.0f}" width="{width:.0f}" '
            f'height="{height:.0f}" role="img" aria-label="column lineage of {escape(me)}">'
            f'<g class="ledges">{"".join(edges)}</g>{"".join(parts)}</svg>')


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# -- search data ---------------------------------------------------------------------------


def data_js(site: SiteDoc) -> str:
    """The search index and node list, as a script (fetch() of local JSON fails on file://)."""
    nodes = []
    for n, d in site.nodes.items():
        nodes.append({
            "n": n,
            "k": d.kind,
            "s": d.status,
            "u": "nodes/" + page_file(n),
            "d": (d.description.splitlines()[0] if d.description else "")[:160],
            "t": d.tags,
            "c": [[c.name, c.type or "", c.description[:160], anchor(c.name)]
                  for c in d.lineage.columns],
        })
    payload = {"project": site.name, "env": site.env, "generated": site.generated_at,
               "nodes": nodes}
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    # "</" cannot end a script element from inside a string, but keep the file inert anyway
    return "window.HEADWATER = " + text.replace("</", "<\\/") + ";\n"
