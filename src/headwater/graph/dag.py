"""The DAG: topological order, cycle detection and node selection.

Selection syntax (dbt-like), space- or comma-separated terms, unioned:

* ``name``       the node itself
* ``+name``      the node and everything upstream of it
* ``name+``      the node and everything downstream of it
* ``+name+``     both
* ``tag:x``      every node tagged ``x`` (``+tag:x`` / ``tag:x+`` work too)
* ``kind:sql``   every node of a kind (source, sql, python, sink)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from graphlib import CycleError as _GraphlibCycle
from graphlib import TopologicalSorter

from headwater.errors import CycleError, SelectionError, did_you_mean


class Graph:
    """Directed acyclic graph of node names; edges point from upstream to downstream."""

    def __init__(self, upstream: Mapping[str, Iterable[str]]) -> None:
        self.upstream: dict[str, tuple[str, ...]] = {n: tuple(u) for n, u in upstream.items()}
        self.downstream: dict[str, list[str]] = {n: [] for n in self.upstream}
        for node, ups in self.upstream.items():
            for up in ups:
                self.downstream.setdefault(up, []).append(node)
        self._order: list[str] | None = None

    def __contains__(self, name: object) -> bool:
        return name in self.upstream

    def __len__(self) -> int:
        return len(self.upstream)

    def order(self) -> list[str]:
        """Topological order, deterministic (ties broken by name)."""
        if self._order is None:
            sorter: TopologicalSorter[str] = TopologicalSorter()
            for node in sorted(self.upstream):
                sorter.add(node, *sorted(self.upstream[node]))
            try:
                sorter.prepare()
            except _GraphlibCycle as exc:
                cycle = list(exc.args[1])[:-1]
                raise CycleError(_rotate(cycle)) from None
            order: list[str] = []
            while sorter.is_active():
                ready = sorted(sorter.get_ready())
                order.extend(ready)
                sorter.done(*ready)
            self._order = order
        return self._order

    def ancestors(self, name: str) -> set[str]:
        return self._walk(name, self.upstream)

    def descendants(self, name: str) -> set[str]:
        return self._walk(name, self.downstream)

    @staticmethod
    def _walk(start: str, edges: Mapping[str, Iterable[str]]) -> set[str]:
        seen: set[str] = set()
        stack = list(edges.get(start, ()))
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(edges.get(n, ()))
        return seen

    def select(
        self,
        select: str | Iterable[str] | None,
        exclude: str | Iterable[str] | None = None,
        *,
        tags: Mapping[str, Iterable[str]] | None = None,
        kinds: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Names matching ``select`` minus ``exclude``, in topological order."""
        chosen = set(self.upstream) if not select else self._match(select, tags, kinds)
        if exclude:
            chosen -= self._match(exclude, tags, kinds)
        return [n for n in self.order() if n in chosen]

    def _match(
        self,
        expr: str | Iterable[str],
        tags: Mapping[str, Iterable[str]] | None,
        kinds: Mapping[str, str] | None,
    ) -> set[str]:
        terms = _split_terms(expr)
        if not terms:
            raise SelectionError(
                "empty selection", hint="name nodes, e.g. --select orders+ or tag:finance"
            )
        out: set[str] = set()
        for term in terms:
            m = re.fullmatch(r"(\+?)([^+]+?)(\+?)", term)
            if not m:
                raise SelectionError(f"cannot read selection term {term!r}")
            up, core, down = m.groups()
            base = self._base(core, tags, kinds)
            out |= base
            for n in base:
                if up:
                    out |= self.ancestors(n)
                if down:
                    out |= self.descendants(n)
        return out

    def _base(
        self,
        core: str,
        tags: Mapping[str, Iterable[str]] | None,
        kinds: Mapping[str, str] | None,
    ) -> set[str]:
        if core.startswith("tag:"):
            tag = core[4:]
            found = {n for n, t in (tags or {}).items() if tag in t}
            if not found:
                known = sorted({t for ts in (tags or {}).values() for t in ts})
                raise SelectionError(
                    f"no node is tagged {tag!r}",
                    hint=did_you_mean(tag, known) or f"known tags: {', '.join(known) or 'none'}",
                )
            return found
        if core.startswith("kind:"):
            kind = core[5:]
            found = {n for n, k in (kinds or {}).items() if k == kind}
            if not found:
                known = sorted(set((kinds or {}).values()))
                raise SelectionError(
                    f"no node is of kind {kind!r}",
                    hint=did_you_mean(kind, known) or f"kinds in this project: "
                    f"{', '.join(known) or 'none'} (kinds are source, sql, python, sink)",
                )
            return found
        if core not in self.upstream:
            raise SelectionError(
                f"no node named {core!r}",
                hint=did_you_mean(core, self.upstream) or "run `headwater dag` to list nodes",
            )
        return {core}


def _split_terms(expr: str | Iterable[str]) -> list[str]:
    parts = [expr] if isinstance(expr, str) else list(expr)
    return [t for p in parts for t in re.split(r"[,\s]+", p) if t]


def _rotate(cycle: list[str]) -> list[str]:
    """Start a cycle at its smallest name so messages are stable; keep edge direction.

    graphlib lists the cycle so that each node is an immediate predecessor
    (upstream) of the next one, which is the direction data flows: keep it.
    """
    i = cycle.index(min(cycle))
    return cycle[i:] + cycle[:i]
