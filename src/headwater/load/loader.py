"""Reading a project folder into typed nodes and a DAG.

The loader reads every file (cheap) and hashes it; SQL and Python analysis is
looked up in the parse cache by content hash, so a project whose files did not
change is loaded without importing sqlglot.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from headwater.core.config import (
    ProjectConfig,
    key_line,
    validate,
    value_position,
)
from headwater.core.nodes import (
    CustomCheck,
    Node,
    PythonNode,
    Ref,
    SinkNode,
    SourceNode,
    SqlNode,
)

if TYPE_CHECKING:
    from headwater.connectors.base import SourceConnector

from headwater.errors import (
    CycleError,
    ProjectError,
    UnknownReferenceError,
    caret_snippet,
    did_you_mean,
)
from headwater.graph.dag import Graph
from headwater.load.files import LoadWarning, case_clash, discover, name_key, read_text, read_toml

CONFIG_FILE = "headwater.toml"
PARSE_VERSION = "10"  # bump when the cached analysis changes shape or meaning

log = logging.getLogger(__name__)
_warned: set[LoadWarning] = set()  # each warning once per process (serve and schedule reload)


class ParseCache(Protocol):
    def get_many(self) -> dict[str, dict[str, Any]]: ...

    def put_many(self, entries: dict[str, dict[str, Any]]) -> None: ...


@dataclass
class LoadedProject:
    root: Path
    config: ProjectConfig
    config_path: Path
    nodes: dict[str, Node]
    graph: Graph
    custom_checks: list[CustomCheck] = field(default_factory=list)
    warnings: list[LoadWarning] = field(default_factory=list)  # files left out, and why

    def tags(self) -> dict[str, tuple[str, ...]]:
        return {n: node.tags for n, node in self.nodes.items()}

    def kinds(self) -> dict[str, str]:
        return {n: node.kind for n, node in self.nodes.items()}

    def source_connector(self, name: str) -> SourceConnector:
        """A connector reading source ``name`` (cheap: nothing connects before a read)."""
        from headwater.connectors.registry import source_connector

        node = self.nodes[name]
        assert isinstance(node, SourceNode), f"{name} is no source"
        return source_connector(node, self.root)

    def partitioned(self, name: str) -> bool:
        """Whether source ``name`` is read per partition (files): see SourceConnector."""
        from headwater.connectors.registry import source_types

        node = self.nodes[name]
        return isinstance(node, SourceNode) and source_types()[node.config.type].partitioned


def find_root(start: Path) -> Path:
    """The project folder: ``start`` or the nearest parent holding headwater.toml."""
    start = start.resolve()
    for d in (start, *start.parents):
        if (d / CONFIG_FILE).is_file():
            return d
    try:
        variant = next((p for p in start.iterdir() if p.name.lower() == CONFIG_FILE), None)
    except OSError:
        variant = None
    raise ProjectError(
        f"not a Headwater project: no {CONFIG_FILE} in {start} or its parents",
        path=variant,
        hint=f"rename {variant.name} to {CONFIG_FILE} (the name is lower-case)" if variant
        else "run `headwater init DIR` to create one, or pass --project DIR",
    )


def load_project(root: Path, cache: ParseCache | None = None) -> LoadedProject:
    root = find_root(root)
    config_path = root / CONFIG_FILE
    data, text = read_toml(config_path)
    config: ProjectConfig = validate(ProjectConfig, data, config_path, text)
    if config.secrets:
        from headwater.core import secrets

        secrets.mark(config.secrets)
        secrets.learn_config(data, config_path)

    files = discover(root)
    for warning in files.warnings:
        if warning not in _warned:
            _warned.add(warning)
            log.warning("warning: %s", warning.render())
    cached = cache.get_many() if cache is not None else {}
    fresh: dict[str, dict[str, Any]] = {}
    nodes: dict[str, Node] = {}
    _check_names([*files["sources"], *files["transforms"], *files["sinks"]], root)
    for node in (*(_load_source(p, root) for p in files["sources"]),
                 *(_load_transform(p, config.dialect, cached, fresh) for p in files["transforms"]),
                 *(_load_sink(p, root) for p in files["sinks"])):
        nodes[node.name] = node

    customs = [_load_custom_check(p, config.dialect, cached, fresh) for p in files["checks"]]
    if cache is not None and fresh:
        cache.put_many(fresh)
    _check_refs(nodes, root)
    _check_config_names(config, nodes, config_path, text)
    graph = Graph({n: node.upstream for n, node in nodes.items()})
    try:
        graph.order()
        _attach_custom_checks(customs, nodes, graph, root)
    except CycleError as exc:
        raise _cycle_error(exc.cycle, nodes, root) from None
    loaded = LoadedProject(root, config, config_path, nodes, graph, customs, files.warnings)
    _check_schedule_selections(loaded, text)
    return loaded


def _check_schedule_selections(loaded: LoadedProject, text: str) -> None:
    """Each [[schedules]] select/exclude names something: a typo would schedule nothing."""
    from headwater.errors import SelectionError

    for i, schedule in enumerate(loaded.config.schedules):
        if schedule.select is None and schedule.exclude is None:
            continue
        try:
            loaded.graph.select(schedule.select, schedule.exclude, tags=loaded.tags(),
                                kinds=loaded.kinds())
        except SelectionError as exc:
            what = schedule.select if schedule.select is not None else schedule.exclude
            needle = f"{what!r}"[1:-1] if isinstance(what, str) else None
            line = next((n for n, t in enumerate(text.splitlines(), 1)
                         if needle and needle in t and "select" in t), None)
            raise ProjectError(
                f"schedule {schedule.name or i + 1}: {exc.message}", path=loaded.config_path,
                line=line, snippet=caret_snippet(text, line, None) if line else None,
                hint=exc.hint) from None


def _check_names(paths: list[Path], root: Path) -> None:
    """Node names (file names) are unique, also ignoring case: before any file is parsed."""
    seen: dict[str, Path] = {}
    for path in paths:
        other = seen.setdefault(name_key(path.stem), path)
        if other == path:
            continue
        if other.stem != path.stem:
            raise case_clash(path.stem, other.stem, path, other, root)
        a, b = sorted([_rel(other, root), _rel(path, root)])
        raise ProjectError(
            f"two nodes are named {path.stem!r}: {a} and {b}",
            path=path,
            hint="node names come from file names and must be unique; rename one file",
        )


def _cycle_error(cycle: list[str], nodes: dict[str, Node], root: Path) -> CycleError:
    """A CycleError pointing at the reference that closes ``cycle`` and listing every edge.

    ``cycle`` runs in data-flow order: each node is read by the next, and the
    first node reads the last.
    """
    edges = []  # (reader, read)
    for i, read in enumerate(cycle):
        edges.append((cycle[(i + 1) % len(cycle)], read))
    first = nodes[cycle[0]]
    ref = next((r for r in first.refs if r.name == cycle[-1]), None)
    line = ref.line if ref else None
    col = ref.column if ref else None
    if len(cycle) == 1:
        hint = f"{cycle[0]} reads from itself; a transform cannot refer to its own table"
    else:
        listed = "; ".join(
            f"{reader} reads {read} ({_ref_location(nodes[reader], read, root)})"
            for reader, read in edges
        )
        hint = f"break the cycle by removing one of these references: {listed}"
    return CycleError(
        cycle,
        path=first.path,
        line=line,
        column=col,
        snippet=_snippet(first.path, line, col),
        hint=hint,
    )


def _ref_location(node: Node, name: str, root: Path) -> str:
    ref = next((r for r in node.refs if r.name == name), None)
    loc = _rel(node.path, root)
    if ref is not None and ref.line:
        loc += f":{ref.line}"
    return loc


def _snippet(path: Path, line: int | None, column: int | None) -> str | None:
    if not line:
        return None
    try:
        return caret_snippet(read_text(path)[1], line, column) or None
    except ProjectError:
        return None


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _load_source(path: Path, root: Path) -> SourceNode:
    from headwater.connectors.registry import source_types

    data, text = read_toml(path)
    connector_cls = _connector_class(data, source_types(), path, text, "source")
    config = validate(connector_cls.Config, data, path, text)
    fp = hashlib.sha256(("source\0" + config.model_dump_json()).encode()).hexdigest()
    checks = _source_checks(config.checks, path, text)
    return SourceNode(
        name=path.stem,
        kind="source",
        path=path,
        description=config.description,
        tags=tuple(config.tags),
        code_fp=fp,
        config=config,
        checks=checks,
        timeout=config.node_timeout,
    )


def _source_checks(decls: list[str], path: Path, text: str) -> tuple[Any, ...]:
    from headwater.core.checks import parse_check

    out = []
    for decl in decls:
        try:
            out.append(parse_check(decl))
        except ValueError as exc:
            line = _annotation_line(text, decl) or key_line(text, "checks")
            raise ProjectError(
                f"invalid check {decl!r}: {exc}",
                path=path,
                line=line,
                snippet=caret_snippet(text, line, None) if line else None,
                hint='e.g. checks = ["not_null(id)", "unique(id) on_fail=quarantine"]',
            ) from None
    return tuple(out)


def _load_sink(path: Path, root: Path) -> SinkNode:
    from headwater.connectors.registry import sink_types

    data, text = read_toml(path)
    connector_cls = _connector_class(data, sink_types(), path, text, "sink")
    config = validate(connector_cls.Config, data, path, text)
    fp = hashlib.sha256(("sink\0" + config.model_dump_json()).encode()).hexdigest()
    line, col = value_position(text, "from")
    return SinkNode(
        name=path.stem,
        kind="sink",
        path=path,
        description=config.description,
        tags=tuple(config.tags),
        refs=(Ref(config.from_, line, col),),
        code_fp=fp,
        config=config,
        timeout=config.node_timeout,
    )


def _connector_class(
    data: dict[str, Any], types: Mapping[str, Any], path: Path, text: str, what: str
) -> Any:
    kind = data.get("type")
    if kind is None:
        raise ProjectError(
            f"{what} has no `type`",
            path=path,
            hint=f"add e.g. type = \"files\" (known {what} types: {', '.join(sorted(types))})",
        )
    if kind not in types:
        hint = did_you_mean(str(kind), types)
        line, col = value_position(text, "type")
        raise ProjectError(
            f"unknown {what} type {kind!r}",
            path=path,
            line=line,
            column=col,
            snippet=caret_snippet(text, line, col) if line else None,
            hint=(hint + " " if hint else "")
            + f"known {what} types: {', '.join(sorted(types))}",
        )
    return types[kind]


def _load_transform(
    path: Path, dialect: str, cached: dict[str, dict[str, Any]], fresh: dict[str, dict[str, Any]]
) -> Node:
    raw, text = read_text(path)
    key = hashlib.sha256(
        raw + f"\0{path.suffix}\0{dialect}\0{PARSE_VERSION}\0{path.stem}".encode()
    ).hexdigest()
    entry = cached.get(key)
    if path.suffix == ".sql":
        from headwater.load.sql import SqlAnalysis, analyse_sql

        if entry is None:
            analysis = analyse_sql(text, path, dialect)
            fresh[key] = analysis.to_json()
        else:
            analysis = SqlAnalysis.from_json(entry)
        annotations = analysis.annotations
        checks, incremental = _checks_and_incremental(annotations)
        if annotations.get("lookback") is not None and incremental is None:
            line = _annotation_line(text, "@lookback")
            raise ProjectError(
                "@lookback applies to incremental transforms only", path=path, line=line,
                snippet=caret_snippet(text, line, None) if line else None,
                hint="add `-- @incremental: by day <day> from <ts>` (see README, Incremental"
                " transforms) or remove the @lookback line")
        refs = [Ref(*r) for r in analysis.refs]
        refs += [Ref(c.args[1].rsplit(".", 1)[0].strip(), _annotation_line(text, c.raw))
                 for c in checks if c.kind == "relationships"]
        return SqlNode(
            name=path.stem,
            kind="sql",
            path=path,
            description=analysis.description,
            tags=tuple(annotations.get("tags", ())),
            refs=tuple(refs),
            code_fp=analysis.code_fp,
            materialized=annotations.get("materialized", "table"),
            annotations=annotations,
            template=analysis.template,
            sql=text,
            checks=checks,
            incremental=incremental,
            lookback=annotations.get("lookback"),
            timeout=annotations.get("timeout"),
        )
    from headwater.load.python import PyAnalysis, analyse_python

    if entry is None:
        py = analyse_python(text, path)
        fresh[key] = py.to_json()
    else:
        py = PyAnalysis.from_json(entry)
    return PythonNode(
        name=path.stem,
        kind="python",
        path=path,
        description=py.description,
        refs=tuple(Ref(*r) for r in py.refs),
        code_fp=py.code_fp,
        function=path.stem,
        params=tuple(py.params),
        param_types=py.param_types,
        checks=_checks_and_incremental({"check": py.checks})[0],
        timeout=py.timeout,
    )


def _load_custom_check(
    path: Path, dialect: str, cached: dict[str, dict[str, Any]], fresh: dict[str, dict[str, Any]]
) -> CustomCheck:
    from headwater.load.sql import SqlAnalysis, analyse_sql

    text = read_text(path)[1]
    key = hashlib.sha256(f"check\0{text}\0{dialect}\0{PARSE_VERSION}".encode()).hexdigest()
    entry = cached.get(key)
    if entry is None:
        analysis = analyse_sql(text, path, dialect)
        fresh[key] = analysis.to_json()
    else:
        analysis = SqlAnalysis.from_json(entry)
    severity = analysis.annotations.get("severity", "error")
    if severity not in ("error", "warn"):
        raise ProjectError(f"@severity must be error or warn, got {severity!r}", path=path)
    return CustomCheck(path.stem, path, text, tuple(r[0] for r in analysis.refs), severity,
                       analysis.description)


def _attach_custom_checks(
    customs: list[CustomCheck], nodes: dict[str, Node], graph: Graph, root: Path
) -> None:
    """Each custom check runs with the last (topologically) of the tables it reads."""
    position = {n: i for i, n in enumerate(graph.order())}
    for check in customs:
        unknown = [r for r in check.refs if r not in nodes or not nodes[r].is_table]
        if unknown or not check.refs:
            tables = [n for n, x in nodes.items() if x.is_table]
            raise UnknownReferenceError(
                f"check reads unknown table {unknown[0]!r}" if unknown
                else "check reads no table of the project",
                path=check.path,
                hint=did_you_mean(unknown[0], tables) if unknown else
                "a check is a SELECT over project tables returning the failing rows",
            )
        owner = max(check.refs, key=lambda r: position[r])
        nodes[owner] = replace(nodes[owner],
                               custom_checks=(*nodes[owner].custom_checks, check))


def _check_config_names(config: ProjectConfig, nodes: dict[str, Node], path: Path,
                        text: str) -> None:
    """headwater.toml's [node_retries.NAME] must name nodes: a typo would silently give the
    node the project's policy."""
    for name in config.node_retries:
        if name not in nodes:
            line = next((i for i, t in enumerate(text.splitlines(), 1)
                         if t.strip().replace(" ", "").startswith(f"[node_retries.{name}]")
                         or t.strip().startswith(f'[node_retries."{name}"]')), None)
            raise ProjectError(
                f"[node_retries.{name}] names no node of the project", path=path, line=line,
                snippet=caret_snippet(text, line, None) if line else None,
                hint=did_you_mean(name, list(nodes)) or f"nodes: {', '.join(sorted(nodes)[:8])}")


def _annotation_line(text: str, needle: str) -> int | None:
    for i, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return i
    return None


def _checks_and_incremental(annotations: dict[str, Any]) -> tuple[tuple[Any, ...], Any]:
    checks: tuple[Any, ...] = ()
    incremental = None
    if annotations.get("check"):
        from headwater.core.checks import CheckSpec

        checks = tuple(CheckSpec.from_json(c) for c in annotations["check"])
    if annotations.get("incremental"):
        from headwater.core.incremental import IncrementalSpec

        incremental = IncrementalSpec.from_json(annotations["incremental"])
    return checks, incremental


def _check_refs(nodes: dict[str, Node], root: Path) -> None:
    tables = sorted(n for n, node in nodes.items() if node.is_table)
    for node in nodes.values():
        for ref in node.refs:
            target = nodes.get(ref.name)
            if target is not None and target.is_table:
                continue
            hint = did_you_mean(ref.name, tables)
            known = f"known tables: {', '.join(tables[:20])}" + (" ..." if len(tables) > 20 else "")
            snippet = _snippet(node.path, ref.line, ref.column)
            if node.kind == "python":
                msg = f"parameter {ref.name!r} of {node.name}() names no node of the project"
                fix = "parameters of a Python transform must be names of upstream tables"
            elif node.kind == "sink":
                msg = f"sink reads from {ref.name!r}, which is not a table of the project"
                fix = "set `from` to a source or transform name"
            else:
                msg = f"unknown table {ref.name!r}"
                fix = "refer to sources and transforms by their bare names"
            raise UnknownReferenceError(
                msg,
                path=node.path,
                line=ref.line,
                column=ref.column,
                snippet=snippet,
                hint=f"{hint} ({fix})" if hint else f"{fix}; {known}",
            )
