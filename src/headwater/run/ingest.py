"""Ingesting a source into the warehouse: full loads, cursor appends, schema drift, rejects.

Full loads build a new physical table (content-addressed like any node).
Incremental sources (a ``cursor`` column) append to their physical table; the
cursor is ``max(cursor)`` of that very table, so rows and cursor are committed
together by one warehouse transaction: a crash or a failed read leaves both as
they were, and the next run resumes from the last committed cursor.

Schema drift against the previous version (``on_schema_change``):

* ``evolve`` (default): new columns are added; a column that disappeared is kept
  as NULL, with a warning; a type that can be cast safely is cast to the old type.
* ``fail``: any added or removed column is an error.
* ``ignore``: new columns are dropped; removed ones become NULL.

An incompatible type change (text where a number was) is always an error naming
the column and both types.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.core.nodes import SourceNode
from headwater.engines import versioning
from headwater.engines import window_stats as wstats
from headwater.engines.base import HIDDEN_PREFIX, Engine
from headwater.engines.base import PARTITION_COLUMN as HIDDEN_PARTITION
from headwater.errors import ConnectorError, HeadwaterError

if TYPE_CHECKING:
    from headwater.connectors.filecache import FileDigests

# the bookkeeping statements are sqlglot trees (headwater.engines.statements), imported
# where they are built: importing this module (quarantine names) stays cheap

log = logging.getLogger(__name__)


_INTS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
         "UINTEGER", "UBIGINT", "UHUGEINT")
_NUMS = (*_INTS, "FLOAT", "DOUBLE")


@dataclass
class IngestResult:
    warnings: list[str] = field(default_factory=list)
    rejected: int = 0
    appended: bool = False
    checks: list[Any] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)  # loaded (new or changed)
    vanished: list[str] = field(default_factory=list)  # removed
    snapshot: str | None = None  # the version of an in-place table this load left

    def describe(self) -> str:
        if not self.partitions and not self.vanished:
            return ""
        parts = []
        if self.partitions:
            shown = ", ".join(self.partitions[:3]) + (
                f" and {len(self.partitions) - 3} more" if len(self.partitions) > 3 else "")
            parts.append(f"loaded {len(self.partitions)} partition(s): {shown}")
        if self.vanished:
            parts.append(f"removed {len(self.vanished)} partition(s)")
        return "; ".join(parts)


QUARANTINE = "__quarantine"


def quarantine_table(physical: str) -> str:
    return f"{physical}{QUARANTINE}"


def _commit(change: versioning.Change) -> str:
    """The new version of an in-place source, and of its quarantine, as snapshots."""
    snapshot = change.commit()
    if snapshot != change.base:
        change.companion(QUARANTINE).commit_as(quarantine_table(snapshot))
    return snapshot


def _left_out(engine: Engine, physical: str) -> frozenset[str]:
    """Columns of a file source's table that none of its current files has."""
    rows = engine.partition_columns(physical)
    if not rows or any(cols is None for _, cols in rows):
        return frozenset()  # files loaded by an older Headwater: their columns are unknown
    have = {c for _, cols in rows if cols is not None for c in json.loads(cols)}
    return frozenset(c for c, _ in engine.columns(physical)
                     if not c.startswith(HIDDEN_PREFIX) and c not in have)


def _forget_quarantine(engine: Engine, physical: str) -> None:
    """What a killed run may have left of the quarantine of a source loaded afresh."""
    from headwater.engines import statements as st

    for table in (quarantine_table(physical), versioning.archive_name(quarantine_table(physical))):
        if engine.exists(table):
            engine.drop_table(st.table(table), if_exists=False)


def _check_incoming(
    node: SourceNode, engine: Engine, physical: str, stage: str, result: IngestResult
) -> None:
    """Quarantine rows failing ``on_fail=quarantine`` checks, then run the rest.

    The quarantine of an in-place source is versioned with it (rows carry the version
    stamp of the stage; see ``finish_quarantine``)."""
    from sqlglot import exp

    from headwater.engines import statements as st
    from headwater.errors import CheckFailedError
    from headwater.run.checks import failing_condition, run_checks

    quarantined: dict[str, int] = {}
    target = st.table(quarantine_table(physical))
    staged = exp.to_table(stage, dialect="duckdb")  # the engine names it as SQL text
    for spec in node.checks:
        if spec.on_fail != "quarantine":
            continue
        cond = failing_condition(spec, dialect="duckdb")
        if cond is None:
            raise CheckFailedError(
                f"check {spec.name} cannot quarantine rows (it is not a row-level check)",
                path=node.path, results=[],
                hint="on_fail=quarantine works with not_null, accepted_values, range, "
                "expression and relationships",
            )
        failing = exp.condition(cond, dialect="duckdb")
        n = engine.count_rows(staged, failing)
        aside = st.select("*", exp.alias_(st.lit(spec.name), "_check", quoted=True, copy=False),
                          from_=staged.copy(), where=failing.copy())
        if engine.exists(quarantine_table(physical)):
            engine.insert_by_name(target, aside)
        else:
            engine.create_table_as(target, aside)
        engine.delete_rows(staged, failing)
        quarantined[spec.name] = n
    results = run_checks(engine, node.name, node.checks, stage)
    for r in results:
        r.quarantined = quarantined.get(r.check, 0)
        if r.check in quarantined:  # what is left passed: the failing rows moved aside
            r.failing, r.passed, r.sample = 0, True, []
    result.checks = results
    moved = sum(quarantined.values())
    if moved:
        result.warnings.append(
            f"source {node.name!r}: {moved} row(s) failing checks moved to {node.name}__quarantine")
    blocking = [r for r in results if r.blocking]
    if blocking:
        raise CheckFailedError(
            f"check {blocking[0].check} failed on source {node.name}:"
            f" {blocking[0].error or f'{blocking[0].failing} failing row(s)'}",
            path=node.path, results=results,
            hint="nothing was loaded; fix the source data, or add on_fail=quarantine",
        )


def rejected_table(physical: str) -> str:
    return f"{physical}__rejected"


def compatible(new: str, old: str) -> bool:
    """Whether values of DuckDB type ``new`` can be stored in a column of type ``old``."""
    if new == old or new == '"NULL"' or new == "NULL":
        return True
    if old == "VARCHAR":
        return True
    if new in _INTS and (old in _NUMS or old.startswith("DECIMAL")):
        return True
    if new == "FLOAT" and old == "DOUBLE":
        return True
    if new.startswith("DECIMAL") and (old == "DOUBLE" or old.startswith("DECIMAL")):
        return True
    if new == "DATE" and old.startswith("TIMESTAMP"):
        return True
    return new.startswith("TIMESTAMP") and old.startswith("TIMESTAMP")


def reconcile(
    node: SourceNode,
    new_cols: list[tuple[str, str]],
    old_cols: list[tuple[str, str]] | None,
) -> tuple[list[tuple[str, str | None, str]], list[str]]:
    """The projection that maps new data onto the previous schema, and warnings.

    Returns ``[(output column, input column or None for NULL, type)]``.
    """
    mode = node.config.on_schema_change
    hidden: list[tuple[str, str | None, str]] = [
        (n, n, t) for n, t in new_cols if n.startswith(HIDDEN_PREFIX)]
    new_cols = [(n, t) for n, t in new_cols if not n.startswith(HIDDEN_PREFIX)]
    old_cols = [(n, t) for n, t in old_cols or [] if not n.startswith(HIDDEN_PREFIX)]
    if not old_cols:
        return [(n, n, t) for n, t in new_cols] + hidden, []
    new, old = dict(new_cols), dict(old_cols)
    added = [c for c in new if c not in old]
    removed = [c for c in old if c not in new]
    where = f"source {node.name!r}"
    for c in old:
        if c in new and not compatible(new[c], old[c]):
            raise ConnectorError(
                f"{where}: column {c!r} changed type from {old[c]} to {new[c]}",
                path=node.path,
                hint="fix the source, or rebuild it from scratch with "
                f"`headwater run --full-refresh --select {node.name}+`",
            )
    if mode == "fail" and (added or removed):
        parts = ([f"new column(s) {', '.join(added)}"] if added else []) + (
            [f"missing column(s) {', '.join(removed)}"] if removed else [])
        raise ConnectorError(
            f"{where}: schema changed: {'; '.join(parts)}",
            path=node.path,
            hint='set on_schema_change = "evolve" to accept it, or fix the source',
        )
    warnings = [f"{where}: column {c!r} is missing from the new data; kept as NULL"
                for c in removed]
    out: list[tuple[str, str | None, str]] = [
        (c, c if c in new else None, old[c]) for c in old
    ]
    if mode == "evolve":
        out += [(c, c, new[c]) for c in added]
        warnings += [f"{where}: new column {c!r} ({new[c]}) added" for c in added]
    elif added:
        warnings.append(f"{where}: ignored new column(s) {', '.join(added)}")
    return out + hidden, warnings


def _ingest_partitions(
    node: SourceNode,
    connector: Any,
    engine: Engine,
    physical: str,
    exists: bool,
    previous_columns: list[tuple[str, str]] | None,
    hook: Callable[[str], None] | None,
    result: IngestResult,
    change: versioning.Change,
) -> list[str]:
    """Load only new and changed partitions (files); drop the rows of vanished ones.

    Each row carries its partition in the hidden ``_hw_file`` column; which
    partitions (and digests) the table holds is kept in ``_hw_meta.partitions``,
    written in the same transaction as the rows. With ``change`` (a versioned
    table) the replaced rows stay visible in earlier snapshots and the load ends
    with a new one (``result.snapshot``).
    """
    from headwater.engines import statements as st

    current = dict(connector.partitions())
    stored = engine.partitions(physical) if exists else {}
    changed = sorted(p for p, d in current.items() if stored.get(p) != d)
    keep = connector.keeps_vanished
    vanished = [] if keep else sorted(p for p in stored if p not in current)
    redo = changed + vanished

    def before() -> None:
        if not exists:
            engine.forget_partitions(physical)
            wstats.forget_parts(engine, physical, None)
            _forget_quarantine(engine, physical)
        elif redo:
            # only files loaded before have rows to replace (rows and bookkeeping commit
            # together): a new file's rows cannot be there
            held = [p for p in redo if p in stored]
            if held:
                which = st.is_in(HIDDEN_PARTITION, held)
                change.retire(which)
                quarantine = change.companion(QUARANTINE)
                if engine.exists(quarantine.base):  # its rows of those files go with them
                    quarantine.retire(which)
            engine.forget_partitions(physical, redo)
            wstats.forget_parts(engine, physical, redo)

    def after() -> None:
        engine.record_partitions(physical, [
            (part, current[part], json.dumps(columns_of(part))) for part in changed])
        change.left_out = _left_out(engine, physical)
        result.snapshot = _commit(change)

    result.partitions = changed
    result.vanished = vanished
    if not changed:
        with engine.transaction():
            before()
            if vanished or not exists:
                change.left_out = _left_out(engine, physical)
                result.snapshot = _commit(change)
        if result.snapshot is None:
            result.snapshot = versioning.current(engine, physical)
        return []
    connector.only_partitions = set(changed) if exists else None
    connector.tag_partitions = True
    reader = connector.read(None)
    old_cols = engine.columns(physical) if exists else previous_columns
    projection, warnings = reconcile(node, engine.arrow_columns(reader.schema), old_cols)
    # the columns these files have (kept per file: a column no current file has any more
    # is left out of the table's new version, as a clean load of the files would)
    read_cols = sorted(c for c, src, _ in projection if src is not None
                       and not c.startswith(HIDDEN_PREFIX))

    def columns_of(part: str) -> list[str]:
        """A file's own columns: from its header or schema, else those it has values in."""
        own = getattr(connector, "part_columns", {}).get(part)
        if own is not None:
            return sorted(c for c in own if c in read_cols)
        if len(changed) == 1:
            return read_cols
        from sqlglot import exp

        counts = engine.fetch_expr(
            st.select(*(exp.Count(this=st.col(c)) for c in read_cols), from_=st.table(physical),
                      where=st.eq(HIDDEN_PARTITION, part))
        ) if read_cols else [()]
        return [c for c, n in zip(read_cols, counts[0], strict=True) if n]
    engine.load_arrow(physical, reader, projection, append=exists, stage_hook=hook,
                      before=before, after=after,
                      version=change.version if change.rows else None)
    return warnings


def _cursor_bookkeeping(
    engine: Engine, physical: str, cursor: str | None, appending: bool
) -> tuple[Any, Callable[[], None] | None, Callable[[], None] | None]:
    """(the cursor value to read past, hooks recording the load as one range of rows in
    its transaction): see ``headwater.engines.window_stats``, sums per range make later runs read
    only new rows."""
    if not cursor:
        return None, None, None
    if not wstats.supported(engine):
        return (engine.max_value(physical, cursor) if appending else None), None, None
    if not appending:
        return (None, lambda: wstats.forget_cursor_ranges(engine, physical),
                lambda: wstats.record_cursor_range(engine, physical, cursor, None))
    since, start = wstats.cursor_range_start(engine, physical, cursor)
    return since, None, lambda: wstats.record_cursor_range(engine, physical, cursor, start)


def ingest(
    node: SourceNode,
    engine: Engine,
    physical: str,
    root: Path,
    previous_columns: list[tuple[str, str]] | None,
    retry: Callable[[Callable[[], Any]], Any],
    *,
    fresh: bool = False,
    hash_cache: FileDigests | None = None,
) -> IngestResult:
    """Read the source and write ``physical``; appends when the source has a cursor.

    ``hash_cache``: file digests by path, as planning left them, so
    that only new or touched files are read to be hashed again.
    """
    from headwater.connectors.registry import source_connector

    connector = source_connector(node, root)
    connector.hash_cache = hash_cache
    cursor = connector.cursor_column
    result = IngestResult()

    hook = (lambda stage: _check_incoming(node, engine, physical, stage, result)
            ) if node.checks else None

    in_place = bool(cursor) or connector.partitioned

    def attempt() -> None:
        exists = engine.exists(physical) and not fresh
        appending = bool(cursor) and exists
        change = versioning.begin(engine, physical, fresh=not exists) if in_place else None
        since, before, after = _cursor_bookkeeping(engine, physical, cursor, appending)
        try:
            if change is not None and connector.partitioned and not cursor:
                warnings = _ingest_partitions(node, connector, engine, physical, exists,
                                              previous_columns, hook, result, change)
            else:
                old_cols = engine.columns(physical) if appending else previous_columns
                reader = connector.read(since)
                projection, warnings = reconcile(
                    node, engine.arrow_columns(reader.schema), old_cols)

                def finish() -> None:
                    if after is not None:
                        after()
                    if change is not None:
                        result.snapshot = _commit(change)

                engine.load_arrow(physical, reader, projection, append=appending,
                                  stage_hook=hook, before=before, after=finish,
                                  version=change.version if change is not None and change.rows
                                  else None)
        except HeadwaterError:
            raise
        except Exception as exc:
            for attr in ("stream_error", "last_error"):
                streamed = getattr(connector, attr, None)
                if isinstance(streamed, HeadwaterError):
                    # raised inside the Arrow stream: DuckDB wrapped it (losing whether it
                    # is worth a retry); use the original
                    raise streamed from None
            raise ConnectorError(
                f"source {node.name!r} failed: {type(exc).__name__}: {exc}", path=node.path
            ) from exc
        result.warnings += warnings
        result.appended = appending

    if connector.retries_inside:
        attempt()
    else:
        retry(attempt)
    if node.config.on_bad_rows == "quarantine":
        import pyarrow as pa

        rejects = connector.rejects()
        if rejects is None:
            rejects = pa.table({"location": pa.array([], pa.string()),
                                "reason": pa.array([], pa.string()),
                                "raw": pa.array([], pa.string())})
        # always (re)built, so NAME__rejected shows the rejects of the latest load
        # one per version: what each snapshot's NAME__rejected shows stays as it was
        engine.build_arrow(rejected_table(result.snapshot or physical), rejects)
        result.rejected = rejects.num_rows
        if rejects.num_rows:
            result.warnings.append(
                f"source {node.name!r}: {rejects.num_rows} bad row(s) quarantined in "
                f"{node.name}__rejected"
            )
    for w in result.warnings:
        log.warning(w)
    return result
