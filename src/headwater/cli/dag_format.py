"""The DAG as text, Mermaid, Graphviz dot or JSON (pictures for people and tools)."""

from __future__ import annotations

import json

from headwater.load.loader import LoadedProject

SHAPES = {"source": ("[(", ")]"), "sql": ("[", "]"), "python": ("[[", "]]"), "sink": ("[/", "/]")}
DOT_SHAPES = {"source": "cylinder", "sql": "box", "python": "component", "sink": "parallelogram"}
COLOURS = {"source": "#4e79a7", "sql": "#59a14f", "python": "#f28e2b", "sink": "#b07aa1"}


def to_json(project: LoadedProject) -> str:
    nodes = [
        {
            "name": n,
            "kind": project.nodes[n].kind,
            "upstream": list(project.graph.upstream[n]),
            "tags": list(project.nodes[n].tags),
            "path": str(project.nodes[n].path.relative_to(project.root)),
            "description": project.nodes[n].description,
        }
        for n in project.graph.order()
    ]
    return json.dumps({"nodes": nodes}, indent=2)


def to_text(project: LoadedProject) -> str:
    lines = []
    for n in project.graph.order():
        node = project.nodes[n]
        ups = project.graph.upstream[n]
        arrow = f" <- {', '.join(ups)}" if ups else ""
        lines.append(f"{node.kind:<7} {n}{arrow}")
    return "\n".join(lines)


def _mid(name: str) -> str:
    return "n_" + "".join(c if c.isalnum() else "_" for c in name)


def to_mermaid(project: LoadedProject) -> str:
    lines = ["flowchart LR"]
    for n in project.graph.order():
        left, right = SHAPES[project.nodes[n].kind]
        lines.append(f'  {_mid(n)}{left}"{n}"{right}')
    for n in project.graph.order():
        for u in project.graph.upstream[n]:
            lines.append(f"  {_mid(u)} --> {_mid(n)}")
    for kind, colour in COLOURS.items():
        members = [_mid(n) for n in project.graph.order() if project.nodes[n].kind == kind]
        if members:
            lines.append(f"  classDef {kind} fill:{colour},color:#fff")
            lines.append(f"  class {','.join(members)} {kind}")
    return "\n".join(lines)


def to_dot(project: LoadedProject) -> str:
    lines = ["digraph headwater {", "  rankdir=LR;", '  node [style=filled, fontcolor="#ffffff"];']
    for n in project.graph.order():
        kind = project.nodes[n].kind
        lines.append(
            f'  {json.dumps(n)} [shape={DOT_SHAPES[kind]}, fillcolor="{COLOURS[kind]}"];'
        )
    for n in project.graph.order():
        for u in project.graph.upstream[n]:
            lines.append(f"  {json.dumps(u)} -> {json.dumps(n)};")
    lines.append("}")
    return "\n".join(lines)


FORMATS = {"text": to_text, "mermaid": to_mermaid, "dot": to_dot, "json": to_json}
