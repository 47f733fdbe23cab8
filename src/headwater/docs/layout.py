"""A layered drawing of the DAG as SVG: longest-path layers, barycentre ordering.

Sugiyama-style, kept small: each node's layer is the length of the longest
path reaching it (sources left, sinks right); within a layer, nodes are
ordered by the mean position of their neighbours in a few down and up sweeps,
which removes most edge crossings. Edges are cubic curves. Pure functions: a
graph in, positions and SVG text out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

NODE_H = 30
GAP_X = 70
GAP_Y = 14
CHAR_W = 7.6  # average glyph width of the bold 12px label font
MIN_W = 90
MAX_W = 260
SWEEPS = 4


@dataclass
class Box:
    name: str
    layer: int
    x: float
    y: float
    w: float
    h: float = NODE_H


def layout(order: Sequence[str], upstream: Mapping[str, Sequence[str]]) -> dict[str, Box]:
    """Positions for every node; ``order`` is topological."""
    layer: dict[str, int] = {}
    for n in order:
        layer[n] = 1 + max((layer[u] for u in upstream.get(n, ()) if u in layer), default=-1)
    downstream: dict[str, list[str]] = {n: [] for n in order}
    for n in order:
        for u in upstream.get(n, ()):
            if u in downstream:
                downstream[u].append(n)
    layers: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for n in order:
        layers[layer[n]].append(n)
    pos = {n: float(i) for lay in layers for i, n in enumerate(lay)}
    for sweep in range(SWEEPS):
        down = sweep % 2 == 0
        seq = layers[1:] if down else list(reversed(layers[:-1]))
        for lay in seq:
            for n in lay:
                near = upstream.get(n, ()) if down else downstream[n]
                ps = [pos[m] for m in near if m in pos]
                if ps:
                    pos[n] = sum(ps) / len(ps)
            lay.sort(key=lambda n: pos[n])
            for i, n in enumerate(lay):
                pos[n] = float(i)
    widths = [max((_width(n) for n in lay), default=MIN_W) for lay in layers]
    tallest = max((len(lay) for lay in layers), default=0)
    boxes: dict[str, Box] = {}
    x = 0.0
    for i, lay in enumerate(layers):
        offset = (tallest - len(lay)) * (NODE_H + GAP_Y) / 2
        for j, n in enumerate(lay):
            boxes[n] = Box(n, i, x, offset + j * (NODE_H + GAP_Y), widths[i])
        x += widths[i] + GAP_X
    return boxes


def _width(name: str) -> float:
    return min(MAX_W, max(MIN_W, len(name) * CHAR_W + 24))


def curve(x1: float, y1: float, x2: float, y2: float) -> str:
    """An SVG path from (x1, y1) to (x2, y2), leaving and arriving horizontally."""
    dx = max(30.0, (x2 - x1) / 2)
    return (f"M{x1:.1f},{y1:.1f} C{x1 + dx:.1f},{y1:.1f} {x2 - dx:.1f},{y2:.1f} "
            f"{x2:.1f},{y2:.1f}")


def dag_svg(
    order: Sequence[str],
    upstream: Mapping[str, Sequence[str]],
    kinds: Mapping[str, str],
    statuses: Mapping[str, str],
    href: Mapping[str, str],
) -> str:
    """The whole DAG as an ``<svg>`` element; every node links to its page."""
    boxes = layout(order, upstream)
    width = max((b.x + b.w for b in boxes.values()), default=0) + 20
    height = max((b.y + b.h for b in boxes.values()), default=0) + 20
    parts = [
        f'<svg id="dag" class="dag by-kind" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="-10 -10 {width:.0f} {height:.0f}" data-width="{width:.0f}" '
        f'data-height="{height:.0f}" role="img" aria-label="project DAG">',
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="6" '
        'markerHeight="6" orient="auto"><path d="M0,0 L8,4 L0,8 z" class="arrowhead"/>'
        "</marker></defs>",
        '<g class="viewport">',
        '<g class="edges">',
    ]
    for n in order:
        b = boxes[n]
        for u in upstream.get(n, ()):
            a = boxes.get(u)
            if a is None:
                continue
            d = curve(a.x + a.w, a.y + a.h / 2, b.x, b.y + b.h / 2)
            parts.append(f'<path class="edge" d="{d}" data-from="{escape(u)}" '
                         f'data-to="{escape(n)}" marker-end="url(#arrow)"/>')
    parts.append("</g><g class=\"nodes\">")
    for n in order:
        b = boxes[n]
        label = n if len(n) * CHAR_W + 24 <= MAX_W else n[: int((MAX_W - 30) / CHAR_W)] + "…"
        parts.append(
            f'<a href="{escape(href[n])}" class="node kind-{kinds[n]} '
            f'status-{statuses.get(n, "never")}" data-node="{escape(n)}">'
            f"<title>{escape(n)} ({kinds[n]}, {statuses.get(n, 'never')})</title>"
            f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" height="{b.h}" rx="6"/>'
            f'<text x="{b.x + 10:.1f}" y="{b.y + b.h / 2 + 4:.1f}">{escape(label)}</text></a>'
        )
    parts.append("</g></g></svg>")
    return "".join(parts)
