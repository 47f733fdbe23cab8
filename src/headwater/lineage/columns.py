"""Column-level lineage across the whole project graph.

For every node, each output column lists its *edges*: the upstream columns it
is made of, how (``identity``, ``transformation``, ``aggregation``) and whether
the edge is *exact* (resolved from the SQL, or declared by a Python transform)
or *coarse* (assumed: a Python transform's column depends on all its inputs).

>>> import headwater
>>> lineage = headwater.Project("shop").lineage()          # doctest: +SKIP
>>> lineage.column("device_health_daily", "health_score").inputs   # doctest: +SKIP
[Edge(node='stg_telemetry', column='app_latency_ms', transform='aggregation', exact=True), ...]
>>> lineage.upstream_tree("device_health_daily", "health_score")   # doctest: +SKIP

Schemas come from the state store when a node was built (the real column names
and types), else from what the SQL says, node by node in topological order, so
``SELECT *`` expands against the columns upstream really has. Results are
cached per node in ``.headwater/lineage-cache.json``, keyed by the node's code
and the columns of its inputs, so a warm docs build parses nothing.

The pure SQL pass is :mod:`headwater.lineage.sql`; Python declarations are
:mod:`headwater.lineage.python`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from headwater.core.nodes import Node, SourceNode, SqlNode
from headwater.errors import SelectionError, did_you_mean
from headwater.lineage.sql import IDENTITY, TRANSFORMATION, SqlLineage, sql_lineage

if TYPE_CHECKING:
    from headwater.load.loader import LoadedProject
    from headwater.state.store import StateStore

CACHE_VERSION = "1"
CACHE_FILE = "lineage-cache.json"
PARALLEL_MIN = 200  # uncached SQL nodes before analysis is spread over processes

Schema = list[tuple[str, str | None]]


class Edge(NamedTuple):
    """One input of a column: ``node.column``, how it is used, and whether it is certain."""

    node: str
    column: str  # "*" when the upstream's columns are unknown
    transform: str = IDENTITY
    exact: bool = True

    @property
    def ref(self) -> str:
        return f"{self.node}.{self.column}"


@dataclass
class Column:
    name: str
    type: str | None = None
    description: str = ""
    expression: str | None = None
    inputs: list[Edge] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return all(e.exact for e in self.inputs)


@dataclass
class NodeLineage:
    """The lineage of one node's columns, and every upstream column it reads."""

    node: str
    kind: str
    columns: list[Column]
    # columns that pick, join, group or order rows: (upstream, column, filter|join|group_by|sort)
    reads: list[tuple[str, str, str]] = field(default_factory=list)
    # upstreams read as a whole (an unexpanded *, a Python transform, a sink)
    reads_all: list[str] = field(default_factory=list)
    origin: str = "sql"  # sql | python | declared | source | sink
    built: bool = False  # column names and types come from the built table
    problems: list[str] = field(default_factory=list)

    def column(self, name: str) -> Column | None:
        for col in self.columns:
            if col.name == name:
                return col
        low = name.lower()
        return next((c for c in self.columns if c.name.lower() == low), None)

    @property
    def exact(self) -> bool:
        return all(c.exact for c in self.columns)

    @property
    def complete(self) -> bool:
        """Whether ``columns`` lists every column (not so for a * over unknown columns)."""
        if self.built or self.kind == "sink":
            return True
        if self.kind in ("source", "python"):
            return bool(self.columns)
        return not self.reads_all

    def consumed(self, upstream: str) -> set[str] | None:
        """The columns of ``upstream`` this node reads; None when it reads them all."""
        if upstream in self.reads_all:
            return None
        used = {e.column for c in self.columns for e in c.inputs if e.node == upstream}
        used |= {col for up, col, _ in self.reads if up == upstream}
        return None if "*" in used else used

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "kind": self.kind,
            "origin": self.origin,
            "built": self.built,
            "exact": self.exact,
            "columns": [
                {
                    "name": c.name,
                    "type": c.type,
                    "description": c.description,
                    "expression": c.expression,
                    "exact": c.exact,
                    "inputs": [
                        {"node": e.node, "column": e.column, "transform": e.transform,
                         "exact": e.exact}
                        for e in c.inputs
                    ],
                }
                for c in self.columns
            ],
            "reads": [{"node": n, "column": c, "how": h} for n, c, h in self.reads],
            "reads_all": list(self.reads_all),
            "problems": list(self.problems),
        }


# -- the cache ------------------------------------------------------------------------


class LineageCache:
    """Analysed nodes by key, in one JSON file; written atomically, only when it changed."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        self.used: set[str] = set()
        self.dirty = False
        if path is not None and path.is_file():
            try:
                data = json.loads(path.read_text("utf-8"))
                if data.get("version") == CACHE_VERSION:
                    self.entries = data.get("entries", {})
            except (OSError, ValueError):
                self.entries = {}  # a broken cache is rebuilt, never an error

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self.entries.get(key)
        if entry is not None:
            self.used.add(key)
        return entry

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.entries[key] = value
        self.used.add(key)
        self.dirty = True

    def save(self, keep: int = 5000) -> None:
        if self.path is None or not self.dirty:
            return
        # entries used now first; older ones kept (other environments) up to ``keep``
        kept = {k: self.entries[k] for k in self.used if k in self.entries}
        for k, v in reversed(list(self.entries.items())):
            if len(kept) >= max(keep, len(self.used)):
                break
            kept.setdefault(k, v)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".lineage-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"version": CACHE_VERSION, "entries": kept}, fh,
                          separators=(",", ":"))
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.dirty = False


def _sql_to_json(lin: SqlLineage) -> dict[str, Any]:
    return {
        "columns": [[c.name, [list(i) for i in c.inputs], c.description, c.expression]
                    for c in lin.columns],
        "reads": [list(r) for r in lin.reads],
        "reads_all": lin.reads_all,
        "problems": lin.problems,
    }


_Job = tuple[str, str, dict[str, list[str] | None], list[str] | None]


def _analyse(args: _Job) -> dict[str, Any]:
    """One SQL node's analysis as JSON (top level, so a process pool can run it)."""
    sql, dialect, schemas, output = args
    return _sql_to_json(sql_lineage(sql, dialect, schemas, output))


# -- the project graph ------------------------------------------------------------------


class ProjectLineage:
    """Column lineage of every node of a loaded project, computed lazily.

    ``built`` maps node names to the columns of their built tables (name, type);
    nodes missing from it get the columns their SQL implies.
    """

    def __init__(
        self,
        project: LoadedProject,
        built: Mapping[str, Sequence[tuple[str, str | None]]] | None = None,
        *,
        cache: LineageCache | None = None,
        workers: int | None = None,
    ) -> None:
        self.project = project
        self.built: dict[str, Schema] = {
            n: [(c[0], c[1]) for c in cols] for n, cols in (built or {}).items()
        }
        self.cache = cache or LineageCache(None)
        self.autosave = True  # write the cache after each computation (off: call save())
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self._nodes: dict[str, NodeLineage] = {}
        self._consumers: dict[tuple[str, str], list[tuple[str, str, Edge]]] | None = None
        self._readers: dict[str, list[tuple[str, str, str]]] | None = None

    @classmethod
    def from_state(
        cls, project: LoadedProject, state: StateStore | None, env: str = "prod",
        cache_dir: Path | None = None,
    ) -> ProjectLineage:
        """Lineage using the schemas ``env`` publishes, cached under ``cache_dir``."""
        built: dict[str, Schema] = {}
        if state is not None:
            physical = state.all_physical()
            for name, pub in state.published(env).items():
                info = physical.get(pub.physical or "")
                if info is not None and info.columns and name in project.nodes:
                    built[name] = [(c[0], c[1]) for c in info.columns]
        cache = LineageCache(cache_dir / CACHE_FILE if cache_dir is not None else None)
        return cls(project, built, cache=cache)

    # -- per node -------------------------------------------------------------

    def node(self, name: str) -> NodeLineage:
        """The lineage of one node (and of its ancestors, which it needs)."""
        if name not in self._nodes:
            if name not in self.project.nodes:
                raise _unknown_node(name, self.project.nodes)
            needed = self.project.graph.ancestors(name) | {name}
            self._compute([n for n in self.project.graph.order() if n in needed])
            if self.autosave:
                self.cache.save()
        return self._nodes[name]

    def all(self) -> dict[str, NodeLineage]:
        """Every node's lineage, in topological order."""
        order = self.project.graph.order()
        self._compute(order)
        if self.autosave:
            self.cache.save()
        return {n: self._nodes[n] for n in order}

    def save(self) -> None:
        """Write the lineage cache (when something new was analysed)."""
        self.cache.save()

    def set_built(self, name: str, columns: Sequence[tuple[str, str | None]]) -> None:
        """Record a node's freshly built columns; forget what depended on the old ones."""
        cols: Schema = [(c, t) for c, t in columns]
        if self.built.get(name) == cols:
            return
        self.built[name] = cols
        for n in {name} | self.project.graph.descendants(name):
            self._nodes.pop(n, None)
        self._consumers = self._readers = None

    def schema(self, name: str) -> Schema | None:
        """A node's columns (name, type or None); None when they are unknown."""
        if name in self.built:
            return self.built[name]
        lin = self.node(name)
        return [(c.name, c.type) for c in lin.columns] if lin.complete else None

    def column(self, node: str, column: str) -> Column:
        """One column's lineage; SelectionError with a did-you-mean when it does not exist."""
        lin = self.node(node)
        col = lin.column(column)
        if col is None:
            names = [c.name for c in lin.columns]
            hint = did_you_mean(column, names)
            if not names:
                hint = hint or f"the columns of {node} are unknown until it is built: " \
                    "run `headwater run` first"
            raise SelectionError(
                f"{node} has no column {column!r}",
                hint=hint or f"columns of {node}: {', '.join(names)}",
            )
        return col

    def _compute(self, names: Sequence[str]) -> None:
        """Analyse ``names`` (topological order) in waves.

        A node is ready once every upstream it needs is known (built, or analysed
        already). Ready SQL nodes missing from the cache are analysed together, in
        parallel when there are many (after a run every schema is known, so that
        is one wave); the rest is cheap and done in place.
        """
        todo = [n for n in names if n not in self._nodes]
        while todo:
            jobs: dict[str, tuple[str, _Job]] = {}
            deferred: list[str] = []
            for name in todo:
                node = self.project.nodes[name]
                if any(u not in self.built and u not in self._nodes for u in node.upstream):
                    deferred.append(name)
                    continue
                entry = None
                if node.kind == "sql":
                    key, args = self._sql_job(name)
                    entry = self.cache.get(key)
                    if entry is None:
                        jobs[name] = (key, args)
                        continue
                self._nodes[name] = self._build(name, entry)
            results = self._run_jobs([args for _, args in jobs.values()])
            for (name, (key, _)), result in zip(jobs.items(), results, strict=True):
                self.cache.put(key, result)
                self._nodes[name] = self._build(name, result)
            if len(deferred) == len(todo):  # pragma: no cover - the graph is acyclic
                raise RuntimeError(f"lineage cannot order {deferred[:3]}")
            todo = deferred

    def _run_jobs(self, jobs: list[_Job]) -> list[dict[str, Any]]:
        if len(jobs) < PARALLEL_MIN or self.workers < 2:
            return [_analyse(j) for j in jobs]
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("forkserver")
        workers = min(self.workers, 8)
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            return list(pool.map(_analyse, jobs, chunksize=max(1, len(jobs) // (workers * 4))))

    def _input_schemas(self, name: str) -> dict[str, list[str] | None]:
        out: dict[str, list[str] | None] = {}
        for up in self.project.nodes[name].upstream:
            if up in self.built:
                out[up] = [c for c, _ in self.built[up]]
            else:
                lin = self._nodes.get(up)
                out[up] = [c.name for c in lin.columns] if lin is not None and lin.complete \
                    else None
        return out

    def _sql_job(self, name: str) -> tuple[str, _Job]:
        node = self.project.nodes[name]
        sql = node.sql if isinstance(node, SqlNode) else ""
        dialect = self.project.config.dialect
        schemas = self._input_schemas(name)
        output = [c for c, _ in self.built[name]] if name in self.built else None
        key = _key("sql", CACHE_VERSION, dialect, sql, schemas, output)
        return key, (sql, dialect, schemas, output)

    def _build(self, name: str, entry: dict[str, Any] | None = None) -> NodeLineage:
        node = self.project.nodes[name]
        types = dict(self.built.get(name, []))
        built = name in self.built
        if node.kind == "source":
            cols = self.built.get(name) or _configured_columns(node)
            return NodeLineage(name, "source", [Column(c, t) for c, t in cols],
                               origin="source", built=built)
        if node.kind == "sink":
            up = node.upstream[0]
            cols = self.schema(up) or []
            return NodeLineage(name, "sink", [
                Column(c, t, inputs=[Edge(up, c, IDENTITY, True)]) for c, t in cols
            ], reads_all=[up], origin="sink", built=bool(cols))
        if node.kind == "python":
            return self._python(name, types)
        if entry is None:
            key, args = self._sql_job(name)
            entry = self.cache.get(key)
            if entry is None:
                entry = _analyse(args)
                self.cache.put(key, entry)
        make = Edge._make
        columns = [
            Column(n, types.get(n), d, e, list(map(make, inputs)))
            for n, inputs, d, e in entry["columns"]
        ]
        reads = [(r[0], r[1], r[2]) for r in entry["reads"]]
        return NodeLineage(name, "sql", columns, reads, list(entry["reads_all"]), "sql", built,
                           list(entry["problems"]))

    def _python(self, name: str, types: dict[str, str | None]) -> NodeLineage:
        from headwater.lineage.python import read_declaration

        node = self.project.nodes[name]
        params = tuple(node.upstream)
        try:
            text = node.path.read_text("utf-8-sig")
        except (OSError, UnicodeDecodeError):
            text = ""
        declared = read_declaration(text, node.path, params) or {}
        names = [c for c, _ in self.built[name]] if name in self.built else list(declared)
        coarse: list[Edge] = []
        for up in params:
            cols = self.schema(up)
            coarse += [Edge(up, c, TRANSFORMATION, False) for c, _ in cols] if cols else [
                Edge(up, "*", TRANSFORMATION, False)]
        columns = []
        for col in names:
            if col in declared:
                inputs = [Edge(up, self._actual(up, c), TRANSFORMATION, True)
                          for up, c in declared[col]]
            else:
                inputs = list(coarse)
            columns.append(Column(col, types.get(col), inputs=inputs))
        problems = [] if names else [
            f"the columns of {name} are unknown until it is built (or declared in LINEAGE)"]
        return NodeLineage(name, "python", columns, reads_all=list(params),
                           origin="declared" if declared else "python",
                           built=name in self.built, problems=problems)

    def _actual(self, node: str, column: str) -> str:
        cols = self.schema(node) or []
        low = column.lower()
        return next((c for c, _ in cols if c.lower() == low), column)

    # -- graph-wide questions ---------------------------------------------------------

    def consumers(self, node: str, column: str) -> list[tuple[str, str, Edge]]:
        """(downstream node, its column, the edge) for every column made from node.column."""
        if self._consumers is None:
            index: dict[tuple[str, str], list[tuple[str, str, Edge]]] = {}
            readers: dict[str, list[tuple[str, str, str]]] = {}
            for name, lin in self.all().items():
                for col in lin.columns:
                    for e in col.inputs:
                        index.setdefault((e.node, e.column), []).append((name, col.name, e))
                for up, c, how in lin.reads:
                    readers.setdefault(up, []).append((name, c, how))
            self._consumers, self._readers = index, readers
        direct = self._consumers.get((node, column), [])
        star = [x for x in self._consumers.get((node, "*"), [])]
        return direct + star

    def readers(self, node: str, column: str) -> list[tuple[str, str]]:
        """(downstream node, how) for nodes whose rows depend on node.column (WHERE, JOIN ...)."""
        self.consumers(node, column)
        assert self._readers is not None
        return sorted({(n, how) for n, c, how in self._readers.get(node, []) if c == column})

    def source_index(self) -> dict[tuple[str, str], frozenset[str]]:
        """For every (node, column): the ``source.column`` names it is ultimately made of.

        One pass in topological order, so it costs as much as the edges, not the paths.
        """
        out: dict[tuple[str, str], frozenset[str]] = {}
        every: dict[str, frozenset[str]] = {}  # node -> the sources of all its columns
        for name, lin in self.all().items():
            if lin.kind == "source":
                for col in lin.columns:
                    out[(name, col.name)] = frozenset()
                every[name] = frozenset(f"{name}.{c.name}" for c in lin.columns) or \
                    frozenset({f"{name}.*"})
                continue
            acc: set[str] = set()
            for col in lin.columns:
                found: set[str] = set()
                for e in col.inputs:
                    up = self._nodes[e.node]
                    if e.column == "*":
                        found |= every.get(e.node, frozenset())
                    elif up.kind == "source":
                        found.add(f"{e.node}.{e.column}")
                    else:
                        found |= out.get((e.node, e.column), frozenset())
                out[(name, col.name)] = frozenset(found)
                acc |= found
            every[name] = frozenset(acc)
        return out

    def upstream_tree(self, node: str, column: str) -> dict[str, Any]:
        """node.column and, recursively, the columns it is made of, down to source columns.

        A column met a second time is listed with ``"repeated": true`` and not expanded.
        """
        root = self.column(node, column)
        seen: set[tuple[str, str]] = set()

        def expand(n: str, col: Column | None, c: str, edge: Edge | None) -> dict[str, Any]:
            lin = self.node(n)
            item = _tree_item(n, lin.kind, col.name if col else c,
                              col.type if col else None, edge)
            if col is not None and col.description:
                item["description"] = col.description
            if (n, item["column"]) in seen:
                item["repeated"] = True
                return item
            seen.add((n, item["column"]))
            children = []
            for e in col.inputs if col else ():
                up = self.node(e.node)
                children.append(expand(e.node, up.column(e.column), e.column, e))
            item["upstream"] = children
            return item

        return expand(node, root, column, None)

    def downstream_tree(self, node: str, column: str) -> dict[str, Any]:
        """node.column and everything made from it, recursively (impact analysis).

        Nodes whose rows (not values) depend on the column, through a WHERE, JOIN,
        GROUP BY or ORDER BY, are listed under ``"rows"`` of the column they read.
        """
        col = self.column(node, column)
        seen: set[tuple[str, str]] = set()

        def expand(n: str, c: str, ctype: str | None, edge: Edge | None) -> dict[str, Any]:
            item = _tree_item(n, self.node(n).kind, c, ctype, edge)
            if (n, c) in seen:
                item["repeated"] = True
                return item
            seen.add((n, c))
            children = []
            for down, dcol, e in sorted(self.consumers(n, c), key=lambda x: (x[0], x[1])):
                dlin = self.node(down)
                dc = dlin.column(dcol)
                children.append(expand(down, dcol, dc.type if dc else None, e))
            item["downstream"] = children
            rows = self.readers(n, c)
            if rows:
                item["rows"] = [{"node": r, "how": how} for r, how in rows]
            return item

        return expand(node, col.name, col.type, None)

    def impact(self, node: str, column: str) -> list[str]:
        """Every node affected by a change of node.column: through values or rows."""
        tree = self.downstream_tree(node, column)
        hit: set[str] = set()
        stack = [tree]
        while stack:
            item = stack.pop()
            for child in item.get("downstream", []):
                hit.add(child["node"])
                stack.append(child)
            for r in item.get("rows", []):
                hit.add(r["node"])
                hit |= self.project.graph.descendants(r["node"])
        hit.discard(node)
        return [n for n in self.project.graph.order() if n in hit]

    def source_columns(self, node: str, column: str) -> list[str]:
        """The source columns node.column is ultimately made of, as ``source.column``."""
        out: list[str] = []
        stack = [self.upstream_tree(node, column)]
        while stack:
            item = stack.pop()
            if item["kind"] == "source" and item["node"] != node:
                out.append(f"{item['node']}.{item['column']}")
            stack.extend(item.get("upstream", []))
        return sorted(set(out))


def _tree_item(node: str, kind: str, column: str, ctype: str | None,
               edge: Edge | None) -> dict[str, Any]:
    item: dict[str, Any] = {"node": node, "column": column, "kind": kind, "type": ctype}
    if edge is not None:
        item["transform"] = edge.transform
        item["exact"] = edge.exact
    return item


def _configured_columns(node: Node) -> Schema:
    """Column types a source's config declares (a CSV's ``columns = {...}``)."""
    if not isinstance(node, SourceNode):
        return []
    return [(str(k), str(v)) for k, v in node.config.declared_columns.items()]


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()[:32]


def _unknown_node(name: str, nodes: Mapping[str, Any]) -> SelectionError:
    return SelectionError(
        f"no node named {name!r}",
        hint=did_you_mean(name, nodes) or "run `headwater dag` to list the nodes",
    )


def parse_target(text: str, nodes: Iterable[str]) -> tuple[str, str | None]:
    """Split ``NODE.COLUMN`` (or ``NODE``); node names may themselves contain dots."""
    names = set(nodes)
    if text in names:
        return text, None
    head, dot, tail = text.rpartition(".")
    while dot:
        if head in names:
            return head, text[len(head) + 1:]
        head, dot, _ = head.rpartition(".")
    node = text.split(".", 1)[0]
    raise _unknown_node(node, dict.fromkeys(names))


# -- change impact ------------------------------------------------------------------------


def changed_columns(
    old_columns: Sequence[Sequence[str]], new_columns: Sequence[Sequence[str]]
) -> set[str]:
    """Columns added, removed or retyped between two schemas [(name, type), ...]."""
    old = {c[0]: (c[1] if len(c) > 1 else None) for c in old_columns}
    new = {c[0]: (c[1] if len(c) > 1 else None) for c in new_columns}
    return {n for n in old.keys() | new.keys() if old.get(n, "\0") != new.get(n, "\0")}


def consumed_columns(lineage: ProjectLineage, node: str, upstream: str) -> list[str] | None:
    """The columns of ``upstream`` that ``node`` reads (values or rows), sorted; None = all.

    For exact change impact, fingerprint ``upstream``'s old and new tables projected on
    these columns (the multiset of their row tuples): when equal, ``node``'s result
    cannot change, whatever else changed upstream.
    """
    used = lineage.node(node).consumed(upstream)
    return None if used is None else sorted(used)


def unchanged_consumption(
    lineage: ProjectLineage,
    node: str,
    changed_upstream: str,
    old_columns: Sequence[Sequence[str]],
    new_columns: Sequence[Sequence[str]],
    changed_values: Iterable[str] | None = None,
) -> bool:
    """True when ``node`` reads none of the columns of ``changed_upstream`` that changed.

    A column changed when it was added, removed or retyped (``old_columns`` vs
    ``new_columns``, lists of (name, type)) or is listed in ``changed_values``
    (columns whose values differ, e.g. from per-column content fingerprints).
    ``changed_values=None`` means "values unknown": every column that exists in
    both may have changed, so only a node reading no column at all is unaffected.

    Conservative: a node that reads its input as a whole (``SELECT *`` over
    unknown columns, a Python transform, a sink) or whose reads are coarse is
    affected by any change. Lineage for ``node`` must reflect the schema it was
    built against (``old_columns``).
    """
    lin = lineage.node(node)
    if changed_upstream not in lineage.project.graph.upstream.get(node, ()):
        return True
    consumed = lin.consumed(changed_upstream)
    if consumed is None:
        return False
    if any(not e.exact for c in lin.columns for e in c.inputs if e.node == changed_upstream):
        return False
    changed = changed_columns(old_columns, new_columns)
    if changed_values is None:
        changed |= {c[0] for c in old_columns} | {c[0] for c in new_columns}
    else:
        changed |= set(changed_values)
    low = {c.lower() for c in changed}
    return not any(c.lower() in low for c in consumed)
