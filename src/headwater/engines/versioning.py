"""Versioned in-place tables: what an environment publishes never changes under it.

Tables that change in place (file and cursor sources, incremental transforms) are
shared by every environment that runs the same code. Each change of such a *base*
table makes a new version: rows it removes move to the base's archive, stamped with
the version that removed them (``_hw_vt``); rows it adds carry the version that added
them (``_hw_vf``). Version ``k`` of the base is then an immutable *snapshot*, a view:

    SELECT cols FROM base WHERE _hw_vf <= k
    UNION ALL SELECT cols FROM base__archive WHERE _hw_vf <= k AND _hw_vt > k

Environments publish snapshots, never the base. A dev run that loads new data into
the base makes version k+1 while prod keeps showing version k; a ``--select``ed load
does not change the views of the nodes downstream of it; promoting an environment is
a pointer swap; reverting is instant while the old snapshot is kept. Nothing is
copied: the base always holds the newest version (the head), so incremental
processing reads and writes it as before, and the archive holds only replaced rows,
which ``headwater gc`` removes once no published snapshot needs them. Rows, archive,
bookkeeping and the snapshot view commit in the one warehouse transaction of the
change, so a kill leaves either the old head or the new one, never a mix.

A snapshot lists its columns by name: a column the base gains later (schema
evolution) does not appear in it.

Engines without row versioning (``capabilities.versioned_rows`` False: Spark keeps
each table as a list of immutable Parquet segments) snapshot a table by copying its
segment list instead (``capabilities.snapshots``: ``Engine.snapshot_table``); the
statements here then reduce to plain DELETE and INSERT.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from headwater.engines.base import Engine
from headwater.engines.base import quote_ident as _q

if TYPE_CHECKING:
    from sqlglot import exp

VERSION_FROM = "_hw_vf"  # hidden: the version that added a row
VERSION_TO = "_hw_vt"  # archive only: the version that removed it
# versions are recorded in _hw_meta.versions (base, version, snapshot, made_at,
# left_out), which the engine keeps (Engine.record_version ...)
_SNAPSHOT = re.compile(r"^(?P<base>.+)__v(?P<version>\d+)$")


def snapshot_name(base: str, version: int) -> str:
    return f"{base}__v{version}"


def archive_name(base: str) -> str:
    return f"{base}__archive"


def parse_snapshot(name: str) -> tuple[str, int] | None:
    """(base, version) of a snapshot's name, or None for another name."""
    m = _SNAPSHOT.match(name)
    return (m.group("base"), int(m.group("version"))) if m else None


def supported(engine: Engine) -> bool:
    """Whether the engine can snapshot in-place tables (else they are shared as they are)."""
    caps = engine.capabilities
    return caps.versioned_rows or caps.snapshots


def rows_versioned(engine: Engine) -> bool:
    return engine.capabilities.versioned_rows


def head(engine: Engine, base: str) -> int | None:
    """The newest version of ``base`` (None: never versioned)."""
    heads = engine.version_heads
    if base in heads:
        return heads[base]
    found = engine.version_head(base)
    heads[base] = found
    return found


def resolve(engine: Engine, physical: str) -> tuple[str, bool]:
    """(the base a snapshot reads, whether it is that base's head); other tables: (itself,
    True). Per-window and per-file sums are kept for a base's head only."""
    parsed = parse_snapshot(physical)
    if parsed is None or not supported(engine):
        return physical, True
    base, version = parsed
    return base, head(engine, base) == version


def _stamped(query: str | exp.Query, column: str, version: int) -> str | exp.Query:
    """``query``'s rows with the hidden column ``column`` = ``version`` added."""
    if isinstance(query, str):  # a transform's SELECT, kept as its text
        return f"SELECT *, {int(version)}::BIGINT AS {_q(column)} FROM ({query})"
    from sqlglot import exp

    from headwater.engines import statements as st

    stamp = exp.alias_(_version(version), column, quoted=True, copy=False)
    return st.select("*", stamp, from_=exp.Subquery(this=query))


def _version(version: int) -> exp.Expr:
    from sqlglot import exp

    from headwater.engines import statements as st

    return st.cast(exp.Literal.number(int(version)), "BIGINT")


@dataclass
class Change:
    """One new version of a base table, written inside a warehouse transaction."""

    engine: Engine
    base: str
    version: int
    fresh: bool = False  # the base is (re)created by this change
    active: bool = True  # False: the engine keeps no versions (plain DELETE and INSERT)
    synced: bool = False  # the archive has the base's columns (checked once per change)
    # columns the base keeps (older versions show them) that this version has not: no
    # current input has them any more (a column dropped from every file of a source)
    left_out: frozenset[str] = frozenset()

    @property
    def rows(self) -> bool:
        return self.active and rows_versioned(self.engine)

    def stamp(self, query: str | exp.Query) -> str | exp.Query:
        """``query`` with the hidden version column added (rows this change adds)."""
        return _stamped(query, VERSION_FROM, self.version) if self.rows else query

    def create(self, query: str | exp.Query) -> None:
        """Make the base afresh from a SELECT (a new base: a full build)."""
        from headwater.engines import statements as st

        self.engine.create_table_as(st.table(self.base), self.stamp(query))

    def insert(self, query: str | exp.Query) -> None:
        """Add the rows of a SELECT (matched by column name)."""
        from headwater.engines import statements as st

        self.engine.insert_by_name(st.table(self.base), self.stamp(query))

    def retire(self, condition: exp.Expr | None = None) -> None:
        """Remove the rows matching ``condition`` (None: every row) from the head; earlier
        snapshots keep them (they move to the archive)."""
        from sqlglot import exp

        from headwater.engines import statements as st

        base = st.table(self.base)
        if self.rows:
            self._sync_archive()
            stamp = exp.alias_(_version(self.version), VERSION_TO, quoted=True, copy=False)
            moved = st.select("*", stamp, from_=base.copy(),
                              where=condition.copy() if condition is not None else None)
            self.engine.insert_by_name(st.table(archive_name(self.base)), moved)
        self.engine.delete_rows(base, condition)

    def _sync_archive(self, again: bool = False) -> None:
        """The archive has every column of the base (the base may have gained some)."""
        from sqlglot import exp

        from headwater.engines import statements as st

        if self.synced and not again:
            return
        self.synced = True
        archive = archive_name(self.base)
        if not self.engine.exists(archive):
            empty = exp.alias_(st.cast(exp.null(), "BIGINT"), VERSION_TO, quoted=True,
                               copy=False)
            query = st.select("*", empty, from_=st.table(self.base))
            query.set("limit", exp.Limit(expression=exp.Literal.number(0)))
            self.engine.create_table_as(st.table(archive), query)
            return
        have = {c for c, _ in self.engine.columns(archive)}
        for col, typ in self.engine.columns(self.base):
            if col not in have:
                self.engine.add_column(st.table(archive), col, typ)

    def companion(self, suffix: str) -> Change:
        """The same version of a table kept beside the base (a source's quarantine), which
        changes in the same transaction."""
        return Change(self.engine, self.base + suffix, self.version, self.fresh, self.active)

    def commit_as(self, name: str) -> None:
        """Make a companion's snapshot ``name`` (no version record: its base's tells)."""
        if not self.active or not self.engine.exists(self.base):
            return
        if self.rows:
            self._sync_archive()
        make_snapshot(self.engine, self.base, self.version, name)

    def commit(self) -> str:
        """Record the version and make its snapshot; returns the snapshot's name (the
        base's own name on an engine that keeps no versions)."""
        from headwater.engines import statements as st

        if not self.active:
            return self.base
        name = snapshot_name(self.base, self.version)
        if self.fresh:  # what a killed run may have left of an earlier base of this name
            if self.rows:
                self.engine.drop_table(st.table(archive_name(self.base)))
            self.engine.forget_versions(self.base)
        if self.rows:
            self._sync_archive(again=True)  # the load may have added columns since
        make_snapshot(self.engine, self.base, self.version, name, self.left_out)
        self.engine.record_version(self.base, self.version, name,
                                   json.dumps(sorted(self.left_out)))
        self.engine.version_heads[self.base] = self.version
        return name


def begin(engine: Engine, base: str, *, fresh: bool) -> Change:
    """The next version of ``base`` (the first of a new one when ``fresh``)."""
    if not supported(engine):
        return Change(engine, base, 0, fresh=fresh, active=False)
    if fresh or not engine.exists(base):
        return Change(engine, base, 1, fresh=True)
    current = head(engine, base)
    if current is None:  # a table from before versioning: its rows become version 0
        adopt(engine, base)
        current = 0
    return Change(engine, base, current + 1)


def adopt(engine: Engine, base: str) -> None:
    """Make a table written by an older Headwater a versioned base (its rows: version 0)."""
    from headwater.engines import statements as st

    if rows_versioned(engine):
        cols = {c for c, _ in engine.columns(base)}
        if VERSION_FROM not in cols:
            engine.add_column(st.table(base), VERSION_FROM, "BIGINT", default=st.lit(0))
        Change(engine, base, 0)._sync_archive()
    make_snapshot(engine, base, 0, snapshot_name(base, 0))
    engine.record_version(base, 0, snapshot_name(base, 0))
    engine.version_heads[base] = 0


def make_snapshot(engine: Engine, base: str, version: int, name: str,
                  left_out: frozenset[str] = frozenset()) -> None:
    """Create the immutable snapshot ``name`` of ``base`` at ``version`` (its head now),
    without the columns ``left_out``."""
    from sqlglot import exp

    from headwater.engines import statements as st

    if not rows_versioned(engine):
        engine.snapshot_table(base, name)  # supported() guards the callers
        return
    cols = [c for c, _ in engine.columns(base) if c != VERSION_FROM and c not in left_out]
    k = st.lit(int(version))
    vf, vt = st.col(VERSION_FROM), st.col(VERSION_TO)
    current = st.select(*(st.col(c) for c in cols), from_=st.table(base),
                        where=exp.LTE(this=vf, expression=k))
    replaced = st.select(*(st.col(c) for c in cols), from_=st.table(archive_name(base)),
                         where=exp.and_(exp.LTE(this=vf.copy(), expression=k.copy()),
                                        exp.GT(this=vt, expression=k.copy()), copy=False))
    engine.execute_expr(exp.Create(this=st.table(name), kind="VIEW", replace=True,
                                   expression=exp.union(current, replaced, distinct=False)))


def current(engine: Engine, base: str) -> str:
    """What to publish for ``base`` as it is now: its head's snapshot (its own name on an
    engine that keeps no versions)."""
    return head_snapshot(engine, base) if supported(engine) else base


def head_snapshot(engine: Engine, base: str) -> str:
    """The snapshot of ``base``'s head, made if it is missing (say, dropped by ``gc``)."""
    current = head(engine, base)
    if current is None:
        with engine.transaction():
            adopt(engine, base)
        return snapshot_name(base, 0)
    name = snapshot_name(base, current)
    if not engine.exists(name):
        kept = engine.version_left_out(base, current)
        left_out = frozenset(json.loads(kept)) if kept else frozenset()
        with engine.transaction():
            make_snapshot(engine, base, current, name, left_out)
    return name


def same_projection(engine: Engine, base: str, old: int, new: int, columns: list[str],
                    where: exp.Expr | None = None) -> bool:
    """Whether versions ``old`` and ``new`` of ``base`` hold the same rows of ``columns``
    (as a multiset; ``where``: among the rows matching it), from what changed between
    them only: the rows added after ``old`` and still there at ``new`` against the rows
    removed in between."""
    from sqlglot import exp

    from headwater.engines import statements as st

    if not rows_versioned(engine):
        return False
    a, b = st.lit(int(old)), st.lit(int(new))
    vf, vt = st.col(VERSION_FROM), st.col(VERSION_TO)
    base_t, archive = st.table(base), st.table(archive_name(base))

    def rows(source: exp.Table, *conditions: exp.Expr) -> exp.Select:
        found = st.all_of(*(c.copy() for c in conditions),
                          exp.paren(where.copy()) if where is not None else None)
        return st.select(*(st.col(c) for c in columns), from_=source.copy(), where=found)

    def summed(source: exp.Expr) -> exp.Select:
        total = st.coalesce(st.sum_of(st.row_hash(columns)), st.lit(0))
        return st.select(st.count_star(), st.cast(total, "VARCHAR"), from_=source)

    def gt(x: exp.Expr, y: exp.Expr) -> exp.Expr:
        return exp.GT(this=x.copy(), expression=y.copy())

    def lte(x: exp.Expr, y: exp.Expr) -> exp.Expr:
        return exp.LTE(this=x.copy(), expression=y.copy())

    added = exp.union(rows(base_t, gt(vf, a), lte(vf, b)),
                      rows(archive, gt(vf, a), lte(vf, b), gt(vt, b)), distinct=False)
    removed = rows(archive, lte(vf, a), gt(vt, a), lte(vt, b))
    return bool(engine.fetch_expr(summed(added.subquery())) == engine.fetch_expr(
        summed(removed.subquery())))


def vacuum(engine: Engine, base: str, keep: set[int]) -> int:
    """Remove archived rows that no kept version (nor the head) shows; returns how many."""
    from sqlglot import exp

    from headwater.engines import statements as st

    if not rows_versioned(engine) or not engine.exists(archive_name(base)):
        return 0
    archive = st.table(archive_name(base))
    vf, vt = st.col(VERSION_FROM), st.col(VERSION_TO)
    wanted = [exp.paren(exp.and_(exp.LTE(this=vf.copy(), expression=st.lit(int(k))),
                                 exp.GT(this=vt.copy(), expression=st.lit(int(k))),
                                 copy=False), copy=False) for k in sorted(keep)]
    cond: exp.Expr = exp.not_(st.any_of(wanted)) if wanted else exp.true()
    n = engine.count_rows(archive, cond)
    if n:
        engine.delete_rows(archive, cond)
    return n


def forget(engine: Engine, base: str) -> None:
    """Drop a base's archive and version records (the base itself is dropped by the caller)."""
    from headwater.engines import statements as st

    if rows_versioned(engine):
        engine.drop_table(st.table(archive_name(base)))
    engine.forget_versions(base)
    engine.version_heads.pop(base, None)
