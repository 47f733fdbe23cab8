"""Executing one node on an engine: ingest a source, build a transform, write a sink.

These functions run in worker threads. They touch only the engine and the
node's own files; the runner records results and publishes.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from headwater.core.nodes import Node, PythonNode, SinkNode, SourceNode, SqlNode
from headwater.core.retry import with_retries
from headwater.engines import window_stats as wstats
from headwater.engines.base import Engine, TableStats
from headwater.engines.base import quote_ident as _q
from headwater.errors import ConnectorError, HeadwaterError, TransformError
from headwater.run.frames import frame_kind, to_arrow, to_frame

if TYPE_CHECKING:
    from headwater.connectors.base import SinkResult
    from headwater.connectors.filecache import FileDigests

log = logging.getLogger(__name__)


@dataclass
class BuildOutcome:
    rows: int | None
    stats: TableStats | None
    seconds: float
    warnings: list[str] = field(default_factory=list)
    partitions: dict[str, str] | None = None  # what a partition-wise sink wrote
    detail: str = ""  # what an incremental build processed
    checks: list[Any] = field(default_factory=list)  # headwater.core.checks.CheckResult
    # an in-place table's version this build left: what the environment publishes
    snapshot: str | None = None


def build_node(
    node: Node,
    engine: Engine,
    *,
    physical: str | None,
    upstream_physical: Mapping[str, str],
    root: Path,
    dialect: str,
    need_stats: bool = True,
    previous_columns: list[tuple[str, str]] | None = None,
    previous_partitions: dict[str, str] | None = None,
    rebuild: bool = False,
    may_exist: bool = True,
    hash_cache: FileDigests | None = None,
    upstream_identity: Mapping[str, str] | None = None,
    resolve: Callable[[str], str] | None = None,
    backfill: tuple[str, str] | None = None,
) -> BuildOutcome:
    """Build ``node`` into ``physical`` (or write the sink); raise a HeadwaterError on failure."""
    t0 = time.perf_counter()
    if isinstance(node, SinkNode):
        written = _write_sink(node, engine, upstream_physical, root, previous_partitions or {})
        return BuildOutcome(written.rows, None, time.perf_counter() - t0,
                            partitions=written.partitions)
    assert physical is not None
    if isinstance(node, SourceNode):
        from headwater.run.ingest import ingest

        # a rebuild replaces the table in one transaction (never drop-then-create:
        # a crash in between would leave the published view pointing at nothing)
        res = ingest(node, engine, physical, root, previous_columns,
                     lambda f: with_retries(f, retries=node.config.retries,
                                            delay=node.config.retry_delay),
                     fresh=rebuild, hash_cache=hash_cache)
        # sums per file or cursor range when it keeps them (new parts only), else a scan
        src_stats = wstats.part_content(engine, physical) or engine.stats(
            res.snapshot or physical)
        return BuildOutcome(src_stats.rows, src_stats, time.perf_counter() - t0,
                            warnings=res.warnings, checks=res.checks, detail=res.describe(),
                            snapshot=res.snapshot)
    if isinstance(node, SqlNode) and node.incremental is not None:
        from headwater.load.sql import render_sql
        from headwater.run.incremental import build_incremental

        def render(refs: Mapping[str, str]) -> str:
            # embedded in statements written in DuckDB's dialect (engine.execute)
            return render_sql(node, dialect, dict(refs), "duckdb")

        results: list[Any] = []

        def verify(scope: str | None) -> None:
            results[:] = verify_checks(node, engine, physical, resolve, scope=scope)

        try:
            inc = build_incremental(node, engine, physical, upstream_physical,
                                    upstream_identity or {}, render, rebuild=rebuild,
                                    verify=verify, backfill=backfill)
        except HeadwaterError:
            raise
        except Exception as exc:
            raise _sql_error(node, exc, dialect) from None
        spec = node.incremental
        inc_stats = (spec.strategy == "window" and wstats.node_content(
            engine, physical, spec.column, spec.grain or "day")) or engine.stats(
            inc.snapshot or physical)
        return BuildOutcome(inc_stats.rows, inc_stats, time.perf_counter() - t0,
                            detail=inc.summary, checks=results, snapshot=inc.snapshot)
    # A forced rebuild of a table that may be published builds beside it and swaps
    # only after its checks passed: readers never see an unchecked or missing table.
    # (``may_exist`` False: the caller knows no published table has this name.)
    replacing = may_exist and engine.exists(physical)
    target = f"{physical}__rebuild" if replacing else physical
    if isinstance(node, SqlNode):
        _build_sql(node, engine, target, upstream_physical, dialect)
    elif isinstance(node, PythonNode):
        _build_python(node, engine, target, upstream_physical)
    else:  # pragma: no cover - loader only makes the kinds above
        raise TypeError(node)
    try:
        checked = verify_checks(node, engine, target, resolve)
    except HeadwaterError:
        engine.drop_physical(target)  # never reused: the next run rebuilds and rechecks
        raise
    if replacing:
        engine.swap_in(target, physical)
    stats = engine.stats(physical) if need_stats or node.materialized == "table" else None
    return BuildOutcome(stats.rows if stats else None, stats, time.perf_counter() - t0,
                        checks=checked)


def verify_checks(
    node: Node,
    engine: Engine,
    physical: str,
    resolve: Callable[[str], str] | None,
    *,
    scope: str | None = None,
) -> list[Any]:
    """Run the node's checks on its new physical table; raise CheckFailedError if an
    error-severity check fails (warnings pass through in the returned results)."""
    customs = node.custom_checks
    if not node.checks and not customs:
        return []
    from headwater.core.checks import CheckSpec
    from headwater.engines.base import INTERNAL_SCHEMA
    from headwater.errors import CheckFailedError
    from headwater.run.checks import run_checks

    table = f'"{INTERNAL_SCHEMA}".{_q(physical)}'
    specs = list(node.checks)
    for custom in customs:
        specs.append(CheckSpec("sql", (render_custom_check(custom, node.name, table, resolve),),
                               custom.severity, raw=f"checks/{custom.path.name}"))
    results = run_checks(engine, node.name, tuple(specs), table, resolve=resolve, scope=scope)
    blocking = [r for r in results if r.blocking]
    if blocking:
        first = blocking[0]
        what = first.error or f"{first.failing} failing row(s)"
        more = f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else ""
        raise CheckFailedError(
            f"check {first.check} failed on {node.name}: {what}{more}",
            path=node.path,
            results=results,
            hint="the previous version stays published; fix the data or the check "
            "(severity=warn publishes despite failures)",
        )
    return results


def _build_sql(
    node: SqlNode, engine: Engine, physical: str, up: Mapping[str, str], dialect: str
) -> None:
    from headwater.load.sql import render_for_engine, render_sql

    texts = {name: engine.physical_ref_sql(phys) for name, phys in up.items()}
    if all(t is not None for t in texts.values()):
        sql = render_sql(node, dialect, texts, engine.dialect)  # type: ignore[arg-type]
    else:
        tables = {name: engine.physical_ref(phys) for name, phys in up.items()}
        sql = render_for_engine(node.sql, dialect, tables, engine.dialect)
    try:
        engine.build_sql(physical, sql, view=node.materialized == "view")
    except Exception as exc:
        raise _sql_error(node, exc, dialect) from None


def render_custom_check(
    custom: Any, owner: str, owner_table: str, resolve: Callable[[str], str] | None
) -> str:
    """A custom check's SELECT with its tables pointed at the builds being checked."""
    from sqlglot import exp

    from headwater.load.sql import render_for_engine

    tables = {}
    for ref in custom.refs:
        quoted = owner_table if ref == owner or resolve is None else resolve(ref)
        tables[ref] = exp.to_table(quoted, dialect="duckdb")
    return render_for_engine(custom.sql, "duckdb", tables, "duckdb")


def _sql_error(node: SqlNode, exc: Exception, dialect: str) -> TransformError:
    """An engine error pointed back at the line of the transform that caused it."""
    from headwater.errors import caret_snippet
    from headwater.load.sql import locate_name

    text = str(exc).strip()
    msg = text.splitlines()[0] if text else type(exc).__name__
    line = col = None
    quoted = re.search(r'"([^"]+)"', msg)
    if quoted:
        line, col = locate_name(node.sql, quoted.group(1), dialect)
    hint = "fix the SQL and run again; what already succeeded is not rebuilt"
    candidates = re.search(r"Candidate bindings: (.+)", text)
    if candidates:
        names = re.findall(r'"([^"]+)"', candidates.group(1))
        if names:
            hint = f"did you mean {' or '.join(repr(n.split('.')[-1]) for n in names[:3])}? " + hint
    return TransformError(
        f"{node.name} failed: {msg}",
        path=node.path,
        line=line,
        column=col,
        snippet=caret_snippet(node.sql, line, col) if line else None,
        hint=hint,
    )


def _build_python(node: PythonNode, engine: Engine, physical: str, up: Mapping[str, str]) -> None:
    module = _load_module(node)
    func = getattr(module, node.function)
    kwargs: dict[str, Any] = {}
    for param in node.params:
        kind = frame_kind(node.param_types.get(param))
        if kind == engine.capabilities.frame:  # "duckdb" or "spark": no trip through Arrow
            kwargs[param] = engine.frame(up[param])
        else:
            kwargs[param] = to_frame(engine.read(up[param]), kind)
    try:
        result = func(**kwargs)
    except BaseException as exc:  # sys.exit() too: user code can fail its node, never the run
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise _user_code_error(node, exc, f"{node.function}() raised") from None
    if engine.capabilities.builds_frames and type(result).__module__.startswith("pyspark."):
        engine.build_frame(physical, result)  # a Spark DataFrame stays in Spark
        return
    data = to_arrow(result)
    if data is None:
        raise TransformError(
            f"{node.function}() returned {type(result).__name__}",
            path=node.path,
            hint="return a pyarrow.Table, a polars or pandas DataFrame, or a duckdb relation",
        )
    engine.build_arrow(physical, data)


def _load_module(node: PythonNode) -> ModuleType:
    mod_name = f"headwater_transforms.{node.name}"
    spec = importlib.util.spec_from_file_location(mod_name, node.path)
    if spec is None or spec.loader is None:  # pragma: no cover
        raise TransformError(f"cannot import {node.path}", path=node.path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # a sys.exit() at import fails the node, not the run
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise _user_code_error(node, exc, "importing the module raised") from None
    sys.modules.pop(mod_name, None)
    return module


def _user_code_error(node: PythonNode, exc: BaseException, what: str) -> TransformError:
    """A TransformError showing only the frames of the user's own file."""
    # frames of the project's own files (the transform and any helper module beside it)
    project_dir = node.path.resolve().parent.parent
    own = [
        f for f in traceback.extract_tb(exc.__traceback__)
        if Path(f.filename).resolve().is_relative_to(project_dir)
    ]
    frames = "".join(traceback.format_list(own)).rstrip()
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return TransformError(
        f"{what} {type(exc).__name__}: {exc}",
        path=node.path,
        line=own[-1].lineno if own and Path(own[-1].filename).resolve() == node.path.resolve()
        else None,
        snippet=(frames + "\n" + detail) if frames else detail,
        hint=f"fix {node.path.name} and run again; what already succeeded is not rebuilt",
    )


def _write_sink(
    node: SinkNode, engine: Engine, up: Mapping[str, str], root: Path, previous: dict[str, str]
) -> SinkResult:
    from headwater.connectors.base import SinkInput
    from headwater.connectors.registry import sink_connector

    connector = sink_connector(node, root)
    data = SinkInput(engine, up[node.config.from_], node.config.from_, dict(previous))

    def attempt() -> SinkResult:
        try:
            return connector.write(data)
        except HeadwaterError:
            raise
        except Exception as exc:
            raise ConnectorError(
                f"sink {node.name!r} failed: {type(exc).__name__}: {exc}", path=node.path
            ) from exc

    result: SinkResult = with_retries(
        attempt, retries=node.config.retries, delay=node.config.retry_delay
    )
    return result
