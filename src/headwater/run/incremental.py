"""Running an incremental SQL transform: decide the windows, then replace them in place.

The physical table of an incremental node is updated in place; the bookkeeping
(which input content each window was built from) lives in the warehouse
(``_hw_meta.windows``) and is written in the same transaction as the rows, so a
crash leaves both as they were and the next run redoes exactly what is missing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from headwater.core.incremental import IncrementalSpec, interval_sql
from headwater.core.nodes import SqlNode
from headwater.engines import versioning
from headwater.engines import window_stats as wstats
from headwater.engines.base import HIDDEN_PREFIX, INTERNAL_SCHEMA, META_SCHEMA, Engine
from headwater.engines.base import quote_ident as _q
from headwater.engines.base import quote_literal as _lit
from headwater.errors import TransformError

NULL_LABEL = wstats.NULL_LABEL
DIMENSIONS = "(dimensions)"


@dataclass
class IncrementalOutcome:
    summary: str
    processed: list[str]
    snapshot: str | None = None  # the version of the table this build left (to publish)


def _fq(physical: str) -> str:
    return f"{_q(INTERNAL_SCHEMA)}.{_q(physical)}"


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

    def refs(condition: Callable[[str], str] | None) -> dict[str, str]:
        """Each upstream as DuckDB SQL text: its table, or a query leaving out hidden
        columns and (``condition``) keeping only the windows being processed."""
        out: dict[str, str] = {}
        for u, phys in upstream_physical.items():
            hidden = [c for c in columns[u] if c.startswith(HIDDEN_PREFIX)]
            if u in windowed and condition is not None or hidden:
                sel = "* EXCLUDE (" + ", ".join(_q(c) for c in hidden) + ")" if hidden else "*"
                where = f" WHERE {condition(u)}" if u in windowed and condition else ""
                out[u] = f"(SELECT {sel} FROM {_fq(phys)}{where})"
            else:
                out[u] = _fq(phys)
        return out

    if preview:
        if spec.strategy != "window":
            return IncrementalOutcome(f"rows past the largest {spec.column}", [])
        fresh = not engine.exists(physical)
        _, todo, vanished, why = decide_windows(node, engine, physical, windowed, dim_fp, refs,
                                                fresh, backfill, preview=True)
        return IncrementalOutcome(describe_windows(todo, vanished, why, fresh), sorted(todo))
    fresh = rebuild or not engine.exists(physical)
    check = verify or (lambda _scope: None)
    if spec.strategy == "window":
        return _windows(node, engine, physical, spec, windowed, in_types, dim_fp, refs, render,
                        fresh, check, backfill)
    inputs = _Inputs(dict(upstream_physical), dict(upstream_identity), set(windowed))
    return _cursor(node, engine, physical, spec, refs, render, fresh, check, inputs)


def decide_windows(
    node: SqlNode,
    engine: Engine,
    physical: str,
    windowed: Mapping[str, str],
    dim_fp: str,
    refs: Callable[[Callable[[str], str] | None], dict[str, str]],
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
        for w, fp in _input_windows(engine, u, windowed[u], spec.input_column, grain, refs,
                                    save=not preview).items():
            current[w] = hashlib.sha256(f"{current.get(w, '')}|{u}:{fp}".encode()).hexdigest()
    meta = f"{_q(META_SCHEMA)}.windows"
    stored = {} if fresh else dict(
        engine.fetch(f"SELECT label, fp FROM {meta} WHERE physical = ?", [physical]))
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
    upstream: str,
    physical: str,
    column: str,
    grain: str,
    refs: Callable[[Callable[[str], str] | None], dict[str, str]],
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
    source = refs(None)[upstream]
    rows = engine.fetch(
        f"SELECT {wstats.label_sql(column, grain)} AS w, count(*)::VARCHAR || ':' ||"
        f" coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM {source} AS t GROUP BY w"
    )
    return dict(rows)


def _windows(
    node: SqlNode,
    engine: Engine,
    physical: str,
    spec: IncrementalSpec,
    windowed: Mapping[str, str],
    in_types: Mapping[str, str],
    dim_fp: str,
    refs: Callable[[Callable[[str], str] | None], dict[str, str]],
    render: Callable[[Mapping[str, str]], str],
    fresh: bool,
    verify: Callable[[str | None], None],
    backfill: tuple[str, str] | None = None,
) -> IncrementalOutcome:
    grain = spec.grain or "day"
    meta = f"{_q(META_SCHEMA)}.windows"
    current, todo, vanished, reason = decide_windows(
        node, engine, physical, windowed, dim_fp, refs, fresh, backfill)
    if not fresh and not todo and not vanished:
        return IncrementalOutcome("no window changed", [], versioning.current(engine, physical))

    def condition(u: str) -> str:
        return wstats.window_predicate(spec.input_column, grain, todo, in_types.get(u))

    keep_stats = wstats.supported(engine)
    out_type = None if fresh else dict(engine.columns(physical)).get(spec.column)
    with engine.transaction():
        change = versioning.begin(engine, physical, fresh=fresh)
        if fresh:
            change.create(render(refs(None)))
            engine.execute(f"DELETE FROM {meta} WHERE physical = ?", [physical])
        else:
            gone = sorted(todo | vanished)
            change.retire(wstats.window_predicate(spec.column, grain, gone, out_type))
            if todo:
                change.insert(render(refs(condition)))
            engine.execute(
                f"DELETE FROM {meta} WHERE physical = ? AND label IN"
                f" ({', '.join(_lit(w) for w in [*gone, DIMENSIONS])})",
                [physical],
            )
        marks: list[list[Any]] = [[physical, w, current[w]] for w in sorted(todo) if w in current]
        marks.append([physical, DIMENSIONS, dim_fp])
        for mark in marks:
            engine.execute(f"INSERT INTO {meta} VALUES (?, ?, ?)", mark)
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
    refs: Callable[[Callable[[str], str] | None], dict[str, str]],
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
    col = _q(spec.column)
    cutoff = engine.fetch(f"SELECT max({col}) FROM {_fq(physical)}")[0][0]
    lb = node.lookback
    bound = _value_sql(cutoff)
    if lb and lb.get("grain"):
        bound = f"CAST({bound} AS TIMESTAMP) - {interval_sql(lb['n'], lb['grain'])}"
    elif lb:
        bound = f"{bound} - {int(lb['n'])}"
    in_col = _q(spec.input_column)

    def condition(_u: str) -> str:
        return f"{in_col} > {bound}"

    moved = None if cutoff is None else inputs.moved(engine, physical, f"{in_col} <= {bound}")
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
        if spec.strategy == "append":
            if lb and cutoff is not None:
                change.retire(f"{col} > {bound}")
            change.insert(select)
        else:
            stage = _q("__hw_stage_" + physical)
            engine.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS {select}")
            keys = " AND ".join(f"s.{_q(k)} = {_fq(physical)}.{_q(k)}" for k in spec.key)
            change.retire(f"EXISTS (SELECT 1 FROM {stage} AS s WHERE {keys})")
            change.insert(f"SELECT * FROM {stage}")
            engine.execute(f"DROP TABLE {stage}")
        verify(f"{col} > {bound}" if cutoff is not None else None)
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
        meta = f"{_q(META_SCHEMA)}.windows"
        engine.execute(f"DELETE FROM {meta} WHERE physical = ? AND starts_with(label, ?)",
                       [physical, INPUT])
        for u in sorted(self.physical):
            engine.execute(f"INSERT INTO {meta} VALUES (?, ?, ?)", [
                physical, INPUT + u,
                json.dumps({"physical": self.physical[u], "identity": self.identity.get(u, "")})])

    def moved(self, engine: Engine, physical: str, consumed: str) -> str | None:
        """None while the input rows matching ``consumed`` are as the last build saw them;
        else why not."""
        meta = f"{_q(META_SCHEMA)}.windows"
        stored = dict(engine.fetch(f"SELECT label, fp FROM {meta} WHERE physical = ? AND"
                                   " starts_with(label, ?)", [physical, INPUT]))
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


def _same_rows(engine: Engine, old: str, new: str, where: str) -> bool:
    """Whether two tables hold the same visible rows among those matching ``where``."""
    cols = [c for c, _ in engine.columns(new) if not c.startswith(HIDDEN_PREFIX)]
    was, now = versioning.parse_snapshot(old), versioning.parse_snapshot(new)
    if was and now and was[0] == now[0] and was[1] <= now[1] and versioning.rows_versioned(
            engine):
        return versioning.same_projection(engine, was[0], was[1], now[1], cols, where)
    if not engine.exists(old) or {c for c, _ in engine.columns(old)} < set(cols):
        return False
    listed = ", ".join(_q(c) for c in cols)

    def summed(table: str) -> list[tuple[Any, ...]]:
        return engine.fetch(
            f"SELECT count(*), coalesce(sum(hash(struct_pack({listed}))::HUGEINT), 0)::VARCHAR"
            f" FROM {_fq(table)} WHERE {where}")

    return summed(old) == summed(new)


def _value_sql(value: Any) -> str:
    """A SQL literal for a cursor value read back from the warehouse."""
    import datetime as dt
    from decimal import Decimal

    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | Decimal):
        return repr(value) if not isinstance(value, Decimal) else str(value)
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP {_lit(value.isoformat(sep=' '))}"
    if isinstance(value, dt.date):
        return f"DATE {_lit(value.isoformat())}"
    return _lit(str(value))
