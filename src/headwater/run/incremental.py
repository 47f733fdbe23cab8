"""Running an incremental SQL transform: decide the windows, then replace them in place.

The physical table of an incremental node is updated in place; the bookkeeping
(which input content each window was built from) lives in the warehouse
(``_hw_meta.windows``) and is written in the same transaction as the rows, so a
crash leaves both as they were and the next run redoes exactly what is missing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from headwater.core.incremental import IncrementalSpec
from headwater.core.nodes import SqlNode
from headwater.engines import statements as st
from headwater.engines import versioning
from headwater.engines import window_stats as wstats
from headwater.engines.base import HIDDEN_PREFIX, Engine
from headwater.errors import TransformError

if TYPE_CHECKING:
    from sqlglot import exp

NULL_LABEL = wstats.NULL_LABEL
DIMENSIONS = "(dimensions)"
# which rows of each windowed upstream a build reads (None: all)
Condition = Callable[[str], "exp.Expr"]
# each upstream as DuckDB SQL text for the transform, keeping the rows ``condition`` keeps
Refs = Callable[[Condition | None], dict[str, str]]


@dataclass
class IncrementalOutcome:
    summary: str
    processed: list[str]
    snapshot: str | None = None  # the version of the table this build left (to publish)


def build_incremental(
    node: SqlNode,
    engine: Engine,
    physical: str,
    upstream_physical: Mapping[str, str],
    upstream_identity: Mapping[str, str],
    render: Callable[[Mapping[str, str]], str],
    *,
    rebuild: bool,
    verify: Callable[[str | None], None] | None = None,
    backfill: tuple[str, str] | None = None,
    preview: bool = False,
) -> IncrementalOutcome:
    """Process what changed for ``node``; ``render(refs)`` gives its SQL with upstream refs.

    With ``preview``, only say which windows a run would process (reads, never writes).

    ``verify(scope)`` runs inside the transaction after the rows changed (``scope``: a
    condition selecting the rows just written, or None for all); raising rolls back.
    """
    spec = node.incremental
    assert spec is not None, f"{node.name} is not incremental"
    in_col = spec.input_column
    described = {u: dict(engine.columns(p)) for u, p in upstream_physical.items()}
    columns = {u: list(cols) for u, cols in described.items()}
    windowed = {u: upstream_physical[u] for u, cols in columns.items() if in_col in cols}
    in_types = {u: described[u][in_col] for u in windowed}
    if not windowed:
        raise TransformError(
            f"{node.name}: no upstream has the column {in_col!r} named by @incremental",
            path=node.path,
            hint=f"upstreams: {', '.join(columns) or 'none'}; use `from <input column>` "
            "to name the input column when it differs from the output column",
        )
    dims = sorted(u for u in upstream_physical if u not in windowed)
    dim_fp = hashlib.sha256(
        "|".join(f"{u}={upstream_identity.get(u, '')}" for u in dims).encode()
    ).hexdigest()

    def source(u: str, condition: Condition | None = None) -> exp.Expr:
        """An upstream as the transform reads it: its table, or a query leaving out
        hidden columns and (``condition``) keeping only the windows being processed."""
        hidden = [c for c in columns[u] if c.startswith(HIDDEN_PREFIX)]
        where = condition(u) if u in windowed and condition is not None else None
        return st.visible(st.table(upstream_physical[u]), hidden, where)

    def refs(condition: Condition | None) -> dict[str, str]:
        return {u: source(u, condition).sql(dialect="duckdb") for u in upstream_physical}

    if preview:
        if spec.strategy != "window":
            return IncrementalOutcome(f"rows past the largest {spec.column}", [])
        fresh = not engine.exists(physical)
        _, todo, vanished, why = decide_windows(node, engine, physical, windowed, dim_fp,
                                                source, fresh, backfill, preview=True)
        return IncrementalOutcome(describe_windows(todo, vanished, why, fresh), sorted(todo))
    fresh = rebuild or not engine.exists(physical)
    check = verify or (lambda _scope: None)
    if spec.strategy == "window":
        return _windows(node, engine, physical, spec, windowed, in_types, dim_fp, source, refs,
                        render, fresh, check, backfill)
    inputs = _Inputs(dict(upstream_physical), dict(upstream_identity), set(windowed))
    return _cursor(node, engine, physical, spec, refs, render, fresh, check, inputs)


def decide_windows(
    node: SqlNode,
    engine: Engine,
    physical: str,
    windowed: Mapping[str, str],
    dim_fp: str,
    source: Callable[[str], exp.Expr],
    fresh: bool,
    backfill: tuple[str, str] | None = None,
    *,
    preview: bool = False,
) -> tuple[dict[str, str], set[str], set[str], str]:
    """(input fingerprint per window, windows to process, windows gone, why) — reads only
    the warehouse (``preview``: never writes, not even what it counted)."""
    spec = node.incremental
    assert spec is not None, f"{node.name} is not incremental"
    grain = spec.grain or "day"
    current: dict[str, str] = {}
    for u in sorted(windowed):
        for w, fp in _input_windows(engine, source(u), windowed[u], spec.input_column, grain,
                                    save=not preview).items():
            current[w] = hashlib.sha256(f"{current.get(w, '')}|{u}:{fp}".encode()).hexdigest()
    stored = {} if fresh else engine.window_marks(physical)
    # windows built before whose input is gone: their rows go (whatever else changed)
    vanished = set() if fresh else {w for w in stored if w not in current and w != DIMENSIONS}
    if fresh or stored.get(DIMENSIONS) != dim_fp:
        todo = set(current)
        reason = "full build" if fresh else "a dimension upstream changed: all windows"
    else:
        todo = {w for w, fp in current.items() if stored.get(w) != fp}
        reason = ""
    labels = sorted(w for w in current if w != NULL_LABEL)
    if not fresh and node.lookback:
        # like SQLMesh: the latest window and the N before it, every run
        todo |= set(labels[-(int(node.lookback["n"]) + 1):])
    if not fresh and backfill is not None:
        start, end = backfill
        todo |= {w for w in labels if start <= w < end}
        reason = reason or "backfill"
    return current, todo, vanished, reason


def _input_windows(
    engine: Engine,
    upstream: exp.Expr,
    physical: str,
    column: str,
    grain: str,
    *,
    save: bool,
) -> dict[str, str]:
    """Fingerprint of each window of an upstream's rows (as the transform sees them).

    From the upstream's own bookkeeping when it keeps some (a window node, a file
    source): then the cost follows what changed. Else a scan of the whole upstream.
    """
    sums = wstats.node_windows(engine, physical, column, grain)
    if sums is None:
        sums = wstats.part_windows(engine, physical, column, grain, save=save)
    if sums is not None:
        return wstats.fingerprints(sums)
    from sqlglot import exp

    query = st.select(exp.alias_(wstats.label_expr(column, grain), "w", copy=False),
                      st.fingerprint_text(st.table_hash("t")),
                      from_=exp.alias_(upstream, "t", copy=False))
    return dict(engine.fetch_expr(st.group_by(query, st.col("w"))))


def _windows(
    node: SqlNode,
    engine: Engine,
    physical: str,
    spec: IncrementalSpec,
    windowed: Mapping[str, str],
    in_types: Mapping[str, str],
    dim_fp: str,
    source: Callable[[str], exp.Expr],
    refs: Refs,
    render: Callable[[Mapping[str, str]], str],
    fresh: bool,
    verify: Callable[[str | None], None],
    backfill: tuple[str, str] | None = None,
) -> IncrementalOutcome:
    grain = spec.grain or "day"
    current, todo, vanished, reason = decide_windows(
        node, engine, physical, windowed, dim_fp, source, fresh, backfill)
    if not fresh and not todo and not vanished:
        return IncrementalOutcome("no window changed", [], versioning.current(engine, physical))

    def condition(u: str) -> exp.Expr:
        return wstats.window_condition(spec.input_column, grain, todo, in_types.get(u))

    keep_stats = wstats.supported(engine)
    out_type = None if fresh else dict(engine.columns(physical)).get(spec.column)
    with engine.transaction():
        change = versioning.begin(engine, physical, fresh=fresh)
        if fresh:
            change.create(render(refs(None)))
            engine.forget_window_marks(physical)
        else:
            gone = sorted(todo | vanished)
            change.retire(wstats.window_condition(spec.column, grain, gone, out_type))
            if todo:
                change.insert(render(refs(condition)))
            engine.forget_window_marks(physical, [*gone, DIMENSIONS])
        marks = [(w, current[w]) for w in sorted(todo) if w in current]
        engine.record_window_marks(physical, [*marks, (DIMENSIONS, dim_fp)])
        if keep_stats:
            wstats.record_windows(engine, physical, spec.column, grain,
                                  None if fresh else todo | vanished)
        verify(None if fresh else wstats.window_predicate(spec.column, grain, todo, out_type))
        snapshot = change.commit()
    return IncrementalOutcome(describe_windows(todo, vanished, reason, fresh), sorted(todo),
                              snapshot)


def describe_windows(todo: set[str], vanished: set[str], reason: str, fresh: bool) -> str:
    done = sorted(todo)
    if fresh:
        return f"{reason}: {len(done)} window(s)"
    if not done and not vanished:
        return "no window changed"
    shown = ", ".join(done[:5]) + (f" and {len(done) - 5} more" if len(done) > 5 else "")
    parts = [f"{len(done)} window(s) {reason or 'changed'}: {shown}" if done else ""]
    if vanished:
        parts.append(f"{len(vanished)} window(s) removed")
    return "; ".join(p for p in parts if p)


def window_label(value: str, grain: str) -> str:
    """The label of the window holding a date or timestamp given as text (``--start``)."""
    import datetime as dt

    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD) or timestamp") from None
    fmt = {"hour": "%Y-%m-%dT%H", "day": "%Y-%m-%d", "month": "%Y-%m"}[grain]
    return t.strftime(fmt)


def _cursor(
    node: SqlNode,
    engine: Engine,
    physical: str,
    spec: IncrementalSpec,
    refs: Refs,
    render: Callable[[Mapping[str, str]], str],
    fresh: bool,
    verify: Callable[[str | None], None],
    inputs: _Inputs,
) -> IncrementalOutcome:
    if fresh:
        with engine.transaction():
            change = versioning.begin(engine, physical, fresh=True)
            change.create(render(refs(None)))
            verify(None)
            inputs.record(engine, physical)
            snapshot = change.commit()
        return IncrementalOutcome("full build", [], snapshot)
    cutoff = engine.max_value(physical, spec.column)
    bound = _bound(cutoff, node.lookback)

    def condition(_u: str) -> exp.Expr:
        return st.col(spec.input_column) > bound.copy()

    moved = None if cutoff is None else inputs.moved(
        engine, physical, st.col(spec.input_column) <= bound.copy())
    if moved is not None:  # what was consumed changed: start again (as a new version)
        with engine.transaction():
            change = versioning.begin(engine, physical, fresh=False)
            change.retire(None)
            change.insert(render(refs(None)))
            verify(None)
            inputs.record(engine, physical)
            snapshot = change.commit()
        return IncrementalOutcome(f"rebuilt from scratch: {moved}", [], snapshot)
    select = render(refs(condition if cutoff is not None else None))
    with engine.transaction():
        change = versioning.begin(engine, physical, fresh=False)
        past = st.col(spec.column) > bound.copy()
        if spec.strategy == "append":
            if node.lookback and cutoff is not None:
                change.retire(past)
            change.insert(select)
        else:  # merge: the new rows replace the rows with their keys
            stage = st.temp("__hw_stage_" + physical)
            engine.create_table_as(stage, select, temp=True)
            change.retire(_matching_keys(stage, st.table(physical), spec.key))
            change.insert(st.select("*", from_=stage.copy()))
            engine.drop_table(stage, if_exists=False)
        verify(past.sql(dialect="duckdb") if cutoff is not None else None)
        inputs.record(engine, physical)
        snapshot = change.commit()
    what = "appended" if spec.strategy == "append" else "merged"
    return IncrementalOutcome(f"{what} rows past {spec.column} = {cutoff}", [], snapshot)


@dataclass
class _Inputs:
    """What an append or merge node reads, and whether what it consumed stayed the same.

    Such a node processes only input rows past its cursor, which equals a full build
    only while the rows at or before the cursor do not change and its other inputs
    (dimensions, read whole) do not change at all. Each build records its inputs
    (``_hw_meta.windows``, labels ``input:NAME``, in the build's transaction); the next
    checks them (for two versions of one table from the rows that changed in between)
    and rebuilds from scratch when they moved, saying why.
    """

    physical: dict[str, str]
    identity: dict[str, str]
    windowed: set[str]

    def record(self, engine: Engine, physical: str) -> None:
        engine.forget_window_marks(physical, prefix=INPUT)
        engine.record_window_marks(physical, [
            (INPUT + u, json.dumps({"physical": self.physical[u],
                                    "identity": self.identity.get(u, "")}))
            for u in sorted(self.physical)])

    def moved(self, engine: Engine, physical: str, consumed: exp.Expr) -> str | None:
        """None while the input rows matching ``consumed`` are as the last build saw them;
        else why not."""
        stored = engine.window_marks(physical, prefix=INPUT)
        if not stored:
            return "it has no record of the inputs it was built from"
        for u, phys in sorted(self.physical.items()):
            if INPUT + u not in stored:
                return f"{u} is a new input"
            prev = json.loads(stored[INPUT + u])
            if u not in self.windowed:
                if prev["identity"] != self.identity.get(u, ""):
                    return f"{u} (read whole) changed"
                continue
            if prev["physical"] != phys and not _same_rows(engine, prev["physical"], phys,
                                                           consumed):
                return f"rows of {u} at or before the cursor changed"
        return None


INPUT = "input:"


def _same_rows(engine: Engine, old: str, new: str, where: exp.Expr) -> bool:
    """Whether two tables hold the same visible rows among those matching ``where``."""
    cols = [c for c, _ in engine.columns(new) if not c.startswith(HIDDEN_PREFIX)]
    was, now = versioning.parse_snapshot(old), versioning.parse_snapshot(new)
    if was and now and was[0] == now[0] and was[1] <= now[1] and versioning.rows_versioned(
            engine):
        return versioning.same_projection(engine, was[0], was[1], now[1], cols, where)
    if not engine.exists(old) or {c for c, _ in engine.columns(old)} < set(cols):
        return False

    def summed(table: str) -> list[tuple[Any, ...]]:
        total = st.coalesce(st.sum_of(st.row_hash(cols)), st.lit(0))
        return engine.fetch_expr(st.select(st.count_star(), st.cast(total, "VARCHAR"),
                                           from_=st.table(table), where=where.copy()))

    return summed(old) == summed(new)


def _bound(cutoff: Any, lookback: Mapping[str, Any] | None) -> exp.Expr:
    """The cursor value past which rows are (re)processed: the largest one built, less
    the lookback (``n`` values, or ``n`` units of ``grain`` of a time)."""
    from sqlglot import exp

    bound = st.lit(cutoff)
    if lookback and lookback.get("grain"):
        step = exp.Interval(this=exp.Literal.number(int(lookback["n"])),
                            unit=exp.Var(this=str(lookback["grain"]).upper()))
        return exp.Sub(this=st.cast(bound, "TIMESTAMP"), expression=step)
    if lookback:
        return exp.Sub(this=bound, expression=st.lit(int(lookback["n"])))
    return bound


def _matching_keys(stage: exp.Table, target: exp.Table, keys: Sequence[str]) -> exp.Expr:
    """``EXISTS (SELECT 1 FROM stage AS s WHERE s.k = target.k ...)``: the rows of
    ``target`` whose keys are among the staged rows."""
    from sqlglot import exp

    same = [exp.EQ(this=st.col(k, "s"), expression=st.col(k, target)) for k in keys]
    match = st.select(exp.Literal.number(1), from_=exp.alias_(stage.copy(), "s", copy=False),
                      where=exp.and_(*same, copy=False))
    return exp.Exists(this=match)
