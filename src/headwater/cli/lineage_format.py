"""Lineage for people (a rich tree) and for tools (JSON): what ``headwater lineage`` prints."""

from __future__ import annotations

from typing import Any

from headwater.lineage.columns import NodeLineage, ProjectLineage

KIND_STYLE = {"source": "blue", "sql": "green", "python": "dark_orange", "sink": "magenta"}


def column_json(
    lineage: ProjectLineage, node: str, column: str, downstream: bool
) -> dict[str, Any]:
    col = lineage.column(node, column)
    out: dict[str, Any] = {
        "node": node,
        "column": col.name,
        "type": col.type,
        "description": col.description,
        "expression": col.expression,
        "exact": col.exact,
    }
    if downstream:
        out["impact"] = lineage.impact(node, col.name)
        out["downstream"] = lineage.downstream_tree(node, col.name).get("downstream", [])
    else:
        out["sources"] = lineage.source_columns(node, col.name)
        out["upstream"] = lineage.upstream_tree(node, col.name).get("upstream", [])
    return out


def _label(item: dict[str, Any], root: bool = False) -> str:
    from rich.markup import escape

    kind = item["kind"]
    text = f"[bold]{escape(item['node'])}[/].{escape(item['column'])}"
    text = f"[{KIND_STYLE.get(kind, 'white')}]{text}[/]"
    if item.get("type"):
        text += f"  [dim]{escape(str(item['type']))}[/]"
    if not root:
        text += f"  {item.get('transform', '')}"
        text += "  [green]exact[/]" if item.get("exact", True) else "  [yellow]~coarse[/]"
    if kind in ("source", "sink", "python"):
        text += f"  [dim]({kind})[/]"
    if item.get("repeated"):
        text += "  [dim](see above)[/]"
    if root and item.get("description"):
        text += f"\n[italic]{escape(item['description'])}[/]"
    return text


def column_tree(lineage: ProjectLineage, node: str, column: str, downstream: bool) -> Any:
    """A rich renderable: the tree, then a one-line summary."""
    from rich.console import Group
    from rich.markup import escape
    from rich.text import Text
    from rich.tree import Tree

    data = (lineage.downstream_tree if downstream else lineage.upstream_tree)(node, column)
    col = lineage.column(node, column)
    root_item = dict(data, description=col.description)
    tree = Tree(_label(root_item, root=True), guide_style="dim")
    key = "downstream" if downstream else "upstream"
    stack = [(tree, data)]
    while stack:
        branch, item = stack.pop()
        for child in item.get(key, []):
            stack.append((branch.add(_label(child)), child))
        for r in item.get("rows", []):
            branch.add(f"[{KIND_STYLE.get(lineage.node(r['node']).kind, 'white')}]"
                       f"[bold]{escape(r['node'])}[/][/]  [dim]rows depend on it ({r['how']})[/]")
    parts: list[Any] = [tree]
    if downstream:
        impact = lineage.impact(node, col.name)
        parts.append(Text.from_markup(
            f"[bold]impact:[/] {len(impact)} node{'s' if len(impact) != 1 else ''}"
            + (f": {escape(', '.join(impact))}" if impact else " (nothing depends on it)")))
    else:
        sources = lineage.source_columns(node, col.name)
        parts.append(Text.from_markup(
            "[bold]source columns:[/] " + (escape(", ".join(sources)) if sources else
                                           "none (a constant or a row count)")))
    if not all_exact(data, key):
        parts.append(Text.from_markup(
            "[yellow]~coarse[/] edges are assumed: a Python transform's columns depend on all "
            "its inputs unless it declares LINEAGE"))
    return Group(*parts)


def all_exact(item: dict[str, Any], key: str) -> bool:
    stack = [item]
    while stack:
        cur = stack.pop()
        if cur.get("exact") is False:
            return False
        stack.extend(cur.get(key, []))
    return True


def node_table(lin: NodeLineage) -> Any:
    """Every column of a node with the upstream columns it is made of."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{lin.node} ({lin.kind})", title_justify="left")
    table.add_column("column", style="bold")
    table.add_column("type", style="dim")
    table.add_column("made of")
    for col in lin.columns:
        made = ", ".join(
            escape(e.ref) + ("" if e.exact else " [yellow]~[/]") + f" [dim]{e.transform}[/]"
            for e in col.inputs
        ) or "[dim]-[/]"
        table.add_row(escape(col.name), escape(col.type or ""), made)
    return table
