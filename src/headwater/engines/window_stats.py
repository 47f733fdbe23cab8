"""Additive fingerprints kept beside in-place tables, so incremental runs read only new data.

A table's content fingerprint is ``count(*)`` and the sum of every row's hash: both
add up, so the fingerprint of a table (or of one of its time windows) is the sum
of the fingerprints of its pieces. ``_hw_meta.window_stats`` keeps those pieces
for the tables that change in place:

* a window-incremental node keeps one row per output window (``part`` empty, ``key``
  ``column/grain``), rewritten for the windows it processed in the same transaction
  as their rows;
* a file-partitioned source keeps, per file, its content (``key`` ``*``) and its rows
  per time window for each ``column/grain`` a downstream node asked for. Ingest
  forgets a file's rows in the transaction that replaces or removes the file; what
  is missing is computed for the missing files only, the next time it is needed;
* a ``cursor`` source does the same per load: each load appends the rows of one range
  of the cursor, recorded in ``_hw_meta.partitions`` in the load's transaction.

Sums are trusted only when their parts account for every row of the table.

A downstream window node then knows which windows of its input changed from these
numbers instead of hashing its whole input, and a run's content fingerprint of an
in-place table is a sum instead of a scan: the cost of a run follows the new data,
not the history.

Only engines whose ``capabilities.window_stats`` is set keep them (DuckDB); the others, and
tables without complete bookkeeping (made by an older Headwater), fall back to
scanning, which gives the same numbers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from headwater.engines import versioning
from headwater.engines.base import HIDDEN_PREFIX, PARTITION_COLUMN, Engine, TableStats

if TYPE_CHECKING:
    from sqlglot import exp

# sqlglot is imported when a statement is built, never on the no-op path; the table
# (physical, key, part, label, rows, total) is made by the engine (DuckDBEngine.open)
CONTENT = "*"  # key of a partition's whole-row content (hidden columns included)
MARK = ""  # label of the row saying a (physical, key, part) is complete
NULL_LABEL = "(null)"
_FINER = {"day": ("hour",), "month": ("day", "hour")}
_LABEL_LEN = {"hour": 13, "day": 10, "month": 7}
_LABEL_FMT = {"hour": "%Y-%m-%dT%H", "day": "%Y-%m-%d", "month": "%Y-%m"}

Sums = dict[str, tuple[int, int]]  # label -> (rows, sum of row hashes)
_COUNTING = threading.Lock()


def supported(engine: Engine) -> bool:
    return engine.capabilities.window_stats


def key_of(column: str, grain: str) -> str:
    return f"{column}/{grain}"


def label_expr(column: str, grain: str) -> exp.Expr:
    """A row's window label for ``column`` (NULL values: ``(null)``):
    ``coalesce(strftime(date_trunc(grain, column)::TIMESTAMP, fmt), '(null)')``."""
    from sqlglot import exp

    from headwater.engines import statements as st

    trunc = exp.TimestampTrunc(this=st.col(column), unit=exp.Var(this=grain.upper()))
    text = exp.TimeToStr(this=st.cast(trunc, "TIMESTAMP"),
                         format=exp.Literal.string(_LABEL_FMT[grain]))
    return st.coalesce(text, exp.Literal.string(NULL_LABEL))


def label_sql(column: str, grain: str) -> str:
    """:func:`label_expr` as DuckDB SQL text."""
    return label_expr(column, grain).sql(dialect="duckdb")


def window_condition(column: str, grain: str, labels: Iterable[str],
                     column_type: str | None = None) -> exp.Expr:
    """A condition selecting the rows of some windows of ``column``.

    The label test alone is exact; the range around it lets the engine skip the row
    groups that hold other times without computing any label. For a column with a
    time zone (or of unknown type) the range is widened by a day on each side, so
    that the session's time zone cannot move a row out of it.
    """
    from sqlglot import exp

    from headwater.engines import statements as st

    labels = sorted(set(labels))
    if not labels:
        return exp.false()
    exact = st.is_in(label_expr(column, grain), labels)
    starts: list[dt.datetime] = []
    for w in labels:
        if w == NULL_LABEL:
            continue
        try:
            starts.append(dt.datetime.strptime(w, _LABEL_FMT[grain]))
        except ValueError:
            return exact
    col = st.col(column)
    parts: list[exp.Expr] = []
    if starts:
        lo, hi = min(starts), _next(max(starts), grain)
        kind = (column_type or "").upper()
        if not kind or "TIME ZONE" in kind or "TZ" in kind:
            lo, hi = lo - dt.timedelta(days=1), hi + dt.timedelta(days=1)
        if kind == "DATE":  # compared as dates, or the column would be cast per row
            end = hi.date() + dt.timedelta(days=1 if hi.hour else 0)
            bounds = (st.lit(lo.date()), st.lit(end))
        else:
            bounds = (st.lit(lo), st.lit(hi))
        parts.append(exp.paren(exp.and_(
            exp.GTE(this=col, expression=bounds[0]),
            exp.LT(this=col.copy(), expression=bounds[1]), exact, copy=False), copy=False))
    if NULL_LABEL in labels:
        parts.append(exp.Is(this=col.copy(), expression=exp.null()))
    return st.any_of(parts)


def window_predicate(column: str, grain: str, labels: Iterable[str],
                     column_type: str | None = None) -> str:
    """:func:`window_condition` as DuckDB SQL text."""
    return window_condition(column, grain, labels, column_type).sql(dialect="duckdb")


def _next(start: dt.datetime, grain: str) -> dt.datetime:
    """The start of the window after the one starting at ``start``."""
    if grain == "hour":
        return start + dt.timedelta(hours=1)
    if grain == "day":
        return start.replace(hour=0) + dt.timedelta(days=1)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.replace(year=year, month=month, day=1, hour=0)


def row_hash_sql(columns: Iterable[str]) -> str:
    """The hash of a row of ``columns`` as DuckDB SQL text (equal to ``hash(t)`` of a row
    with exactly those columns; headwater.engines.statements.row_hash)."""
    from headwater.engines import statements as st

    return st.row_hash(columns).sql(dialect="duckdb")


def _sums(rows: Iterable[tuple[Any, ...]]) -> Sums:
    out: Sums = {}
    for label, n, total in rows:
        r, t = out.get(label, (0, 0))
        out[label] = (r + int(n), t + int(total))
    return out


def fingerprints(sums: Sums) -> dict[str, str]:
    """Window label -> fingerprint text, as a scan of the rows would give it."""
    return {w: f"{n}:{t}" for w, (n, t) in sums.items()}


# -- window nodes ------------------------------------------------------------


def record_windows(engine: Engine, physical: str, column: str, grain: str,
                   labels: Iterable[str] | None) -> None:
    """Recount the windows ``labels`` of ``physical`` (None: the whole table, afresh).

    Call inside the transaction that rewrote those windows.
    """
    key = key_of(column, grain)
    described = engine.columns(physical)
    cols = [c for c, _ in described if not c.startswith(HIDDEN_PREFIX)]
    if labels is not None and _read(engine, physical, key, "") is None:
        labels = None  # a table counted by an older Headwater (or never): count it all once
    if labels is None:
        engine.forget_window_sums(physical)
        where = None
    else:
        labels = sorted(set(labels))
        if not labels:
            return
        engine.forget_window_sums(physical, key=key, parts=[""], labels=labels)
        where = window_condition(column, grain, labels, dict(described).get(column))
    engine.count_window_sums(physical, key, label_expr(column, grain), cols, where)
    if labels is None:
        engine.record_window_sums(physical, [(key, "", MARK, 0, 0)])


def node_windows(engine: Engine, physical: str, column: str, grain: str) -> Sums | None:
    """Per-window sums of a window node's table read as ``column``/``grain`` windows, or
    None when it keeps none for that column (or a finer grain of it)."""
    if not supported(engine):
        return None
    physical, is_head = versioning.resolve(engine, physical)
    if not is_head:
        return None  # sums describe a base's newest version: an older one is scanned
    for have in (grain, *_FINER.get(grain, ())):
        rows = _read(engine, physical, key_of(column, have), "")
        if rows is None:
            continue
        sums = _sums((w, n, t) for w, n, t in rows if w != MARK)
        if have == grain:
            return sums
        cut = _LABEL_LEN[grain]
        return _sums((w if w == NULL_LABEL else w[:cut], n, t) for w, (n, t) in sums.items())
    return None


def _read(engine: Engine, physical: str, key: str, part: str
          ) -> list[tuple[str, int, int]] | None:
    rows = [(w, n, t) for _, w, n, t in engine.window_sums(physical, key, part)]
    return rows if any(w == MARK for w, _, _ in rows) else None


def node_content(engine: Engine, physical: str, column: str, grain: str) -> TableStats | None:
    """The content stats of a window node's table from its window sums (no scan)."""
    cols = _unversioned(engine.columns(physical))
    if any(c.startswith(HIDDEN_PREFIX) for c, _ in cols):
        return None
    sums = node_windows(engine, physical, column, grain)
    if sums is None:
        return None
    return _table_stats(sums.values(), cols)


def _table_stats(pieces: Iterable[tuple[int, int]], cols: list[tuple[str, str]]) -> TableStats:
    rows = total = 0
    for n, t in pieces:
        rows, total = rows + n, total + t
    visible = [(c, t) for c, t in cols if not c.startswith(HIDDEN_PREFIX)]
    sig = ",".join(f"{n}:{t}" for n, t in visible)
    return TableStats(rows, f"{rows}:{total}:{sig}", visible)


# -- file-partitioned sources ------------------------------------------------


def forget_parts(engine: Engine, physical: str, parts: list[str] | None) -> None:
    """Drop what is kept for some files (None: all) — in the transaction changing them."""
    if not supported(engine):
        return
    if parts is None:
        engine.forget_window_sums(physical)
    elif parts:
        engine.forget_window_sums(physical, parts=parts)


def signature(cols: Iterable[tuple[str, str]]) -> str:
    """Short id of a column list: a new column changes every row's hash, so what was
    counted under other columns is counted again."""
    return hashlib.sha256(",".join(f"{c}:{t}" for c, t in cols).encode()).hexdigest()[:12]


# -- cursor sources: each load appends the rows of one cursor range -----------------------

CURSOR_PART = "cursor:"  # prefix of a cursor range's part name (then JSON)


def cursor_range_start(engine: Engine, physical: str, column: str) -> tuple[Any, str | None]:
    """The cursor's largest loaded value: as a value (the next load reads past it) and as
    DuckDB writes it (the next range starts past it)."""
    from sqlglot import exp

    from headwater.engines import statements as st

    top = exp.Max(this=st.col(column))
    rows = engine.fetch_expr(st.select(top, st.cast(top.copy(), "VARCHAR"),
                                       from_=st.table(physical)))
    return (rows[0][0], rows[0][1]) if rows else (None, None)


def record_cursor_range(engine: Engine, physical: str, column: str,
                        start: str | None) -> None:
    """Record the rows just appended past ``start`` as one part; call in their transaction.

    A cursor source only ever appends rows past the largest cursor it holds, so each
    load's rows are the range ``(start, new largest]`` (the first load also holds rows
    without a cursor value) and never change afterwards.
    """
    from sqlglot import exp

    from headwater.engines import statements as st

    if not supported(engine):
        return
    kind = dict(engine.columns(physical)).get(column)
    if kind is None:
        return
    after = None if start is None else exp.GT(this=st.col(column),
                                              expression=st.cast(st.lit(start), kind))
    query = st.select(st.cast(exp.Max(this=st.col(column)), "VARCHAR"), st.count_star(),
                      from_=st.table(physical), where=after)
    end, n = engine.fetch_expr(query)[0]
    if not n:
        return
    part = CURSOR_PART + json.dumps([column, kind, start, end])
    engine.record_partitions(physical, [(part, "cursor", None)])


def forget_cursor_ranges(engine: Engine, physical: str) -> None:
    """A cursor source reloaded from scratch: its ranges and sums go (in that transaction)."""
    if not supported(engine):
        return
    engine.forget_partitions(physical)
    forget_parts(engine, physical, None)


def part_condition(part: str) -> exp.Expr:
    """A condition selecting the rows of one part: a file (``_hw_file``) or a cursor range."""
    from sqlglot import exp

    from headwater.engines import statements as st

    if not part.startswith(CURSOR_PART):
        return st.eq(PARTITION_COLUMN, part)
    column, kind, start, end = json.loads(part[len(CURSOR_PART):])
    col = st.col(column)
    upto: exp.Expr = exp.LTE(this=col, expression=st.cast(st.lit(end), kind)) \
        if end is not None else exp.Is(this=col, expression=exp.null())
    if start is None:  # the first load: also the rows without a cursor value
        return exp.paren(exp.or_(upto, exp.Is(this=col.copy(), expression=exp.null()),
                                 copy=False), copy=False)
    return exp.paren(exp.and_(exp.GT(this=col.copy(), expression=st.cast(st.lit(start), kind)),
                              upto, copy=False), copy=False)


def part_filter(part: str) -> str:
    """:func:`part_condition` as DuckDB SQL text."""
    return part_condition(part).sql(dialect="duckdb")


def _assign(parts: list[str]) -> tuple[exp.Expr, exp.Expr]:
    """(expression naming each row's part, condition keeping the rows of ``parts``)."""
    from sqlglot import exp

    from headwater.engines import statements as st

    if all(not p.startswith(CURSOR_PART) for p in parts):
        return st.col(PARTITION_COLUMN), st.is_in(PARTITION_COLUMN, parts)
    filters = [(p, part_condition(p)) for p in parts]
    case = exp.Case()
    for p, f in filters:
        case = case.when(f, st.lit(p), copy=False)
    return case, st.any_of([f.copy() for _, f in filters])


def _per_part(engine: Engine, physical: str, key: str, label: exp.Expr, hashed: list[str],
              *, save: bool) -> dict[str, Sums] | None:
    """Sums per (part, label) under ``key``; parts not counted yet are counted now.

    ``key`` ends with ``@`` and the column signature; sums kept under the same key with
    another signature are dropped when new ones are saved. ``label``: a row's label;
    ``hashed``: the columns in a row's hash. None when the parts do not account
    for every row of the table (bookkeeping from an older Headwater): scan instead.
    """
    with _COUNTING:  # two nodes reading one source in parallel count its new parts once
        return _per_part_locked(engine, physical, key, label, hashed, save=save)


def _per_part_locked(engine: Engine, physical: str, key: str, label: exp.Expr,
                     hashed: list[str], *, save: bool) -> dict[str, Sums] | None:
    from sqlglot import exp

    from headwater.engines import statements as st

    kept: dict[str, Sums] = {}
    marked: set[str] = set()
    for part, w, n, t in engine.window_sums(physical, key):
        if w == MARK:
            marked.add(part)
        else:
            kept.setdefault(part, {})[w] = (n, t)
    loaded = list(engine.partitions(physical))
    if not loaded:
        return None
    missing = [p for p in loaded if p not in marked]
    if missing:
        which, keep = _assign(missing)
        query = st.select(exp.alias_(which, "p", copy=False),
                          exp.alias_(label.copy(), "w", copy=False), st.count_star(),
                          st.sum_of(st.row_hash(hashed)), from_=st.table(physical), where=keep)
        fresh: dict[str, Sums] = {p: {} for p in missing}
        for part, w, n, t in engine.fetch_expr(st.group_by_all(query)):
            fresh.setdefault(part, {})[w] = (int(n), int(t))
        if save:
            with engine.transaction():
                rows: list[tuple[str, str, str, int, int]] = []
                for part, sums in fresh.items():
                    rows += [(key, part, w, n, t) for w, (n, t) in sums.items()]
                    rows.append((key, part, MARK, 0, 0))
                engine.forget_window_sums(physical, key=key, parts=missing)
                engine.forget_superseded_sums(physical, key)
                engine.record_window_sums(physical, rows)
        kept.update(fresh)
    per = {p: kept.get(p, {}) for p in loaded}
    counted = sum(n for sums in per.values() for n, _ in sums.values())
    if counted != engine.count_rows(st.table(physical)):
        return None  # rows no part accounts for: never trust partial sums
    return per


def _parted(engine: Engine, physical: str) -> list[tuple[str, str]] | None:
    """The columns of a source whose rows are kept in parts (files or cursor ranges)."""
    if not supported(engine):
        return None
    return _unversioned(engine.columns(physical))


def _unversioned(cols: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A table's columns but the version stamp (which is not part of its content)."""
    return [(c, t) for c, t in cols if c != versioning.VERSION_FROM]


def part_windows(engine: Engine, physical: str, column: str, grain: str, *,
                 save: bool = True) -> Sums | None:
    """Per-window sums of a source kept in parts (files, cursor ranges) read as
    ``column``/``grain`` windows (visible columns only, as transforms see them), or
    None if it is not one."""
    physical, is_head = versioning.resolve(engine, physical)
    if not is_head:
        return None
    described = _parted(engine, physical)
    if described is None or column not in {c for c, _ in described}:
        return None
    visible = [c for c, _ in described if not c.startswith(HIDDEN_PREFIX)]
    key = f"{key_of(column, grain)}@{signature(described)}"
    per = _per_part(engine, physical, key, label_expr(column, grain), visible, save=save)
    if per is None:
        return None
    return _sums((w, n, t) for sums in per.values() for w, (n, t) in sums.items())


def part_content(engine: Engine, physical: str) -> TableStats | None:
    """The content stats of a source kept in parts from its per-part sums (the same
    numbers as a scan of the whole table), counting only parts not counted before."""
    from sqlglot import exp

    cols = _parted(engine, physical)
    if cols is None:
        return None
    per = _per_part(engine, physical, f"{CONTENT}@{signature(cols)}",
                    exp.Literal.string(CONTENT), [c for c, _ in cols], save=True)
    if per is None:
        return None
    return _table_stats((piece for sums in per.values() for piece in sums.values()), cols)
