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

from headwater.engines.base import INTERNAL_SCHEMA, META_SCHEMA, Engine
from headwater.engines.base import quote_ident as _q

VERSION_FROM = "_hw_vf"  # hidden: the version that added a row
VERSION_TO = "_hw_vt"  # archive only: the version that removed it
VERSIONS = f"{_q(META_SCHEMA)}.versions"
DDL = (f"CREATE TABLE IF NOT EXISTS {VERSIONS}"
       " (base VARCHAR, version BIGINT, snapshot VARCHAR, made_at TIMESTAMP DEFAULT now(),"
       " left_out VARCHAR)")
_SNAPSHOT = re.compile(r"^(?P<base>.+)__v(?P<version>\d+)$")


def _fq(physical: str) -> str:
    return f"{_q(INTERNAL_SCHEMA)}.{_q(physical)}"


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
    heads = _heads(engine)
    if base in heads:
        return heads[base]
    rows = engine.fetch(f"SELECT max(CAST(version AS BIGINT)) FROM {VERSIONS} WHERE base = ?",
                        [base])
    found = int(rows[0][0]) if rows and rows[0][0] is not None else None
    heads[base] = found
    return found


def _heads(engine: Engine) -> dict[str, int | None]:
    return engine.version_heads


def resolve(engine: Engine, physical: str) -> tuple[str, bool]:
    """(the base a snapshot reads, whether it is that base's head); other tables: (itself,
    True). Per-window and per-file sums are kept for a base's head only."""
    parsed = parse_snapshot(physical)
    if parsed is None or not supported(engine):
        return physical, True
    base, version = parsed
    return base, head(engine, base) == version


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

    def stamp(self, select_sql: str) -> str:
        """``select_sql`` with the hidden version column added (rows this change adds)."""
        if not self.rows:
            return select_sql
        return f"SELECT *, {self.version}::BIGINT AS {_q(VERSION_FROM)} FROM ({select_sql})"

    def create(self, select_sql: str) -> None:
        """Make the base afresh from a SELECT (a new base: a full build)."""
        self.engine.execute(f"CREATE OR REPLACE TABLE {_fq(self.base)} AS {self.stamp(select_sql)}")

    def insert(self, select_sql: str) -> None:
        """Add the rows of a SELECT (matched by column name)."""
        self.engine.execute(f"INSERT INTO {_fq(self.base)} BY NAME {self.stamp(select_sql)}")

    def retire(self, condition: str | None = None) -> None:
        """Remove the rows matching ``condition`` (None: every row) from the head; earlier
        snapshots keep them (they move to the archive)."""
        where = f" WHERE {condition}" if condition is not None else ""
        if self.rows:
            self._sync_archive()
            self.engine.execute(
                f"INSERT INTO {_fq(archive_name(self.base))} BY NAME SELECT *,"
                f" {self.version}::BIGINT AS {_q(VERSION_TO)} FROM {_fq(self.base)}{where}")
        self.engine.execute(f"DELETE FROM {_fq(self.base)}{where}")

    def _sync_archive(self, again: bool = False) -> None:
        """The archive has every column of the base (the base may have gained some)."""
        if self.synced and not again:
            return
        self.synced = True
        archive = archive_name(self.base)
        if not self.engine.exists(archive):
            self.engine.execute(
                f"CREATE TABLE {_fq(archive)} AS SELECT *, NULL::BIGINT AS {_q(VERSION_TO)}"
                f" FROM {_fq(self.base)} LIMIT 0")
            return
        have = {c for c, _ in self.engine.columns(archive)}
        for col, typ in self.engine.columns(self.base):
            if col not in have:
                self.engine.execute(f"ALTER TABLE {_fq(archive)} ADD COLUMN {_q(col)} {typ}")

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
        if not self.active:
            return self.base
        name = snapshot_name(self.base, self.version)
        if self.fresh:  # what a killed run may have left of an earlier base of this name
            if self.rows:
                self.engine.execute(f"DROP TABLE IF EXISTS {_fq(archive_name(self.base))}")
            self.engine.execute(f"DELETE FROM {VERSIONS} WHERE base = ?", [self.base])
        if self.rows:
            self._sync_archive(again=True)  # the load may have added columns since
        make_snapshot(self.engine, self.base, self.version, name, self.left_out)
        self.engine.execute(f"DELETE FROM {VERSIONS} WHERE base = ? AND version = ?",
                            [self.base, self.version])
        self.engine.execute(
            f"INSERT INTO {VERSIONS} (base, version, snapshot, left_out) VALUES (?, ?, ?, ?)",
            [self.base, self.version, name, json.dumps(sorted(self.left_out))])
        _heads(self.engine)[self.base] = self.version
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
    if rows_versioned(engine):
        cols = {c for c, _ in engine.columns(base)}
        if VERSION_FROM not in cols:
            engine.execute(
                f"ALTER TABLE {_fq(base)} ADD COLUMN {_q(VERSION_FROM)} BIGINT DEFAULT 0")
        Change(engine, base, 0)._sync_archive()
    make_snapshot(engine, base, 0, snapshot_name(base, 0))
    engine.execute(f"INSERT INTO {VERSIONS} (base, version, snapshot) VALUES (?, 0, ?)",
                   [base, snapshot_name(base, 0)])
    _heads(engine)[base] = 0


def make_snapshot(engine: Engine, base: str, version: int, name: str,
                  left_out: frozenset[str] = frozenset()) -> None:
    """Create the immutable snapshot ``name`` of ``base`` at ``version`` (its head now),
    without the columns ``left_out``."""
    if not rows_versioned(engine):
        engine.snapshot_table(base, name)  # supported() guards the callers
        return
    cols = ", ".join(_q(c) for c, _ in engine.columns(base)
                     if c != VERSION_FROM and c not in left_out)
    k = int(version)
    engine.execute(
        f"CREATE OR REPLACE VIEW {_fq(name)} AS SELECT {cols} FROM {_fq(base)}"
        f" WHERE {_q(VERSION_FROM)} <= {k} UNION ALL SELECT {cols}"
        f" FROM {_fq(archive_name(base))} WHERE {_q(VERSION_FROM)} <= {k}"
        f" AND {_q(VERSION_TO)} > {k}")


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
        rows = engine.fetch(f"SELECT left_out FROM {VERSIONS} WHERE base = ? AND"
                            " CAST(version AS BIGINT) = ?", [base, current])
        left_out = frozenset(json.loads(rows[0][0])) if rows and rows[0][0] else frozenset()
        with engine.transaction():
            make_snapshot(engine, base, current, name, left_out)
    return name


def same_projection(engine: Engine, base: str, old: int, new: int, columns: list[str],
                    where: str | None = None) -> bool:
    """Whether versions ``old`` and ``new`` of ``base`` hold the same rows of ``columns``
    (as a multiset; ``where``: among the rows matching it), from what changed between
    them only: the rows added after ``old`` and still there at ``new`` against the rows
    removed in between."""
    if not rows_versioned(engine):
        return False
    a, b = int(old), int(new)
    cols = ", ".join(_q(c) for c in columns)
    vf, vt = _q(VERSION_FROM), _q(VERSION_TO)
    base_t, archive = _fq(base), _fq(archive_name(base))
    also = f" AND ({where})" if where else ""
    summed = f"count(*), coalesce(sum(hash(struct_pack({cols}))::HUGEINT), 0)::VARCHAR"
    added = engine.fetch(
        f"SELECT {summed} FROM (SELECT {cols} FROM {base_t} WHERE {vf} > {a} AND {vf} <= {b}"
        f"{also} UNION ALL SELECT {cols} FROM {archive} WHERE {vf} > {a} AND {vf} <= {b}"
        f" AND {vt} > {b}{also})")
    removed = engine.fetch(f"SELECT {summed} FROM {archive} WHERE {vf} <= {a} AND {vt} > {a}"
                           f" AND {vt} <= {b}{also}")
    return bool(added == removed)


def vacuum(engine: Engine, base: str, keep: set[int]) -> int:
    """Remove archived rows that no kept version (nor the head) shows; returns how many."""
    if not rows_versioned(engine) or not engine.exists(archive_name(base)):
        return 0
    archive = _fq(archive_name(base))
    vf, vt = _q(VERSION_FROM), _q(VERSION_TO)
    wanted = " OR ".join(f"({vf} <= {int(k)} AND {vt} > {int(k)})" for k in sorted(keep))
    cond = f"NOT ({wanted})" if wanted else "TRUE"
    n = engine.fetch(f"SELECT count(*) FROM {archive} WHERE {cond}")[0][0]
    if n:
        engine.execute(f"DELETE FROM {archive} WHERE {cond}")
    return int(n)


def forget(engine: Engine, base: str) -> None:
    """Drop a base's archive and version records (the base itself is dropped by the caller)."""
    if rows_versioned(engine):
        engine.execute(f"DROP TABLE IF EXISTS {_fq(archive_name(base))}")
    engine.execute(f"DELETE FROM {VERSIONS} WHERE base = ?", [base])
    _heads(engine).pop(base, None)

