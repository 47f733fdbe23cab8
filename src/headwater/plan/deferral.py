"""Which nodes wait for a source's window: pure functions over a loaded project.

``plan`` and the scheduler ask the same two questions:

* :func:`closed_sources` -- which of the selected sources have a window that is
  closed now (and when it opens);
* :func:`deferred_nodes` -- which selected nodes need one of them, each with the
  source that holds it back.

A deferred node is simply not run: its previous data stays published.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from headwater.core.nodes import SourceNode
from headwater.core.windows import WindowStatus, window_status
from headwater.load.loader import LoadedProject


def source_window(project: LoadedProject, name: str) -> tuple[str, str] | None:
    """``(window, timezone)`` of source ``name``, or None if it is always available."""
    node = project.nodes.get(name)
    if not isinstance(node, SourceNode):
        return None
    window = node.config.window
    if not window:
        return None
    tz = node.config.window_timezone or project.config.timezone
    return window, tz


def closed_sources(
    project: LoadedProject, names: Iterable[str], now: datetime
) -> dict[str, WindowStatus]:
    """The sources among ``names`` whose window is closed at ``now`` (aware datetime)."""
    out: dict[str, WindowStatus] = {}
    for name in names:
        w = source_window(project, name)
        if w is None:
            continue
        status = window_status(w[0], w[1], now)
        if not status.open:
            out[name] = status
    return out


def deferred_nodes(
    project: LoadedProject, closed: Mapping[str, WindowStatus], selected: Iterable[str]
) -> dict[str, str]:
    """Selected nodes that need a closed source -> that source (the first in graph order)."""
    chosen = set(selected)
    out: dict[str, str] = {}
    for source in (n for n in project.graph.order() if n in closed):
        for n in ({source} | project.graph.descendants(source)) & chosen:
            out.setdefault(n, source)
    return out


def deferral_reason(source: str, status: WindowStatus) -> str:
    """``deferred: source vendor_feed opens at 02:00 America/Los_Angeles (in 5h12m)``."""
    return f"deferred: source {source} {status.describe()}"
