"""Reading what an environment publishes, the clean build to compare it with, the diff.

Equality of two published tables: the same column names (in the same order) and the
same multiset of rows (row order never matters). Values are compared after
``normalise``: a float (or DECIMAL) is rounded to 9 significant digits (so sums added in
another order, ~1e-15 apart, agree; a real difference is far larger), NaN equals NaN,
ints and integral floats compare by value (Python's ``30 == 30.0``). Hidden ``_hw_*``
columns never appear: the public views leave them out, and so does this comparison.

What an environment publishes is read from the warehouse itself (the views of its
schema: ``main`` for prod, the env's name otherwise), opened read-only with DuckDB
directly, not through Headwater: the oracle must not trust the code it checks.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

SIGNIFICANT = 9
SAMPLE = 5  # rows of each side shown in a mismatch


def normalise(v: Any) -> Any:
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, Decimal):
        v = float(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return v
        return float(f"{v:.{SIGNIFICANT}g}")
    if isinstance(v, list | tuple):
        return tuple(normalise(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((str(k), normalise(x)) for k, x in v.items()))
    return v


@dataclass
class Table:
    columns: tuple[str, ...]
    rows: Counter[tuple[Any, ...]]

    @classmethod
    def of(cls, columns: list[str], rows: list[tuple[Any, ...]]) -> Table:
        return cls(tuple(columns), Counter(tuple(normalise(v) for v in r) for r in rows))

    def digest(self) -> str:
        h = hashlib.sha256(repr(self.columns).encode())
        for row in sorted(map(repr, self.rows.elements())):
            h.update(row.encode())
        return h.hexdigest()


Snapshot = dict[str, Table | str]  # node -> its table, or why it could not be read


def env_schema(env: str) -> str:
    return "main" if env == "prod" else env


def snapshot(root: Path, env: str) -> Snapshot:
    """Every view ``env`` publishes, read whole. Empty when nothing was built yet."""
    path = root / ".headwater/warehouse.duckdb"
    if not path.exists():
        return {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        schema = env_schema(env)
        names = [r[0] for r in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE schema_name = ? AND NOT internal"
            " AND database_name = current_database()", [schema]).fetchall()]
        out: Snapshot = {}
        for name in sorted(names):
            q = '"' + name.replace('"', '""') + '"'
            try:
                cur = con.execute(f'SELECT * FROM "{schema}".{q}')
                cols = [d[0] for d in cur.description]
                out[name] = Table.of(cols, cur.fetchall())
            except duckdb.Error as exc:
                out[name] = f"view broken: {str(exc).strip().splitlines()[0]}"
        return out
    finally:
        con.close()


def read_sink(path: Path) -> Table | str:
    """A files sink's output, read back (Parquet, or CSV with DuckDB's type detection)."""
    if not path.exists():
        return "missing"
    con = duckdb.connect()
    try:
        fn = "read_csv" if path.suffix == ".csv" else "read_parquet"
        cur = con.execute(f"SELECT * FROM {fn}(?)", [str(path)])
        return Table.of([d[0] for d in cur.description], cur.fetchall())
    except duckdb.Error as exc:
        return f"unreadable: {exc}"
    finally:
        con.close()


@dataclass
class Mismatch:
    """One broken rule: where, what differed, and the operations that led there."""

    rule: str  # clean_build | isolation | prod_only | select | sink | promote | run
    env: str
    node: str
    detail: str
    only_got: list[Any] = field(default_factory=list)  # rows only in what is published
    only_want: list[Any] = field(default_factory=list)  # rows only in the expected table
    ops: list[dict[str, Any]] = field(default_factory=list)
    seed: int | None = None
    step: int | None = None

    @property
    def signature(self) -> tuple[str, str, str]:
        return (self.rule, self.env, self.node)

    def render(self) -> str:
        lines = [f"MISMATCH [{self.rule}] env={self.env} node={self.node}: {self.detail}"]
        if self.only_got:
            lines.append(f"  rows only in the published table ({len(self.only_got)} shown):")
            lines += [f"    {r}" for r in self.only_got]
        if self.only_want:
            lines.append(f"  rows only in the expected table ({len(self.only_want)} shown):")
            lines += [f"    {r}" for r in self.only_want]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "env": self.env, "node": self.node, "detail": self.detail,
                "only_got": [repr(r) for r in self.only_got],
                "only_want": [repr(r) for r in self.only_want],
                "seed": self.seed, "step": self.step, "ops": self.ops}


def diff_table(rule: str, env: str, node: str, got: Table | str | None,
               want: Table | str | None, what: str = "the clean build") -> Mismatch | None:
    """None when equal; else the mismatch, with a few rows of each side."""
    if got is None and want is None:
        return None
    if got is None:
        return Mismatch(rule, env, node, f"not published, but {what} has it")
    if want is None:
        return Mismatch(rule, env, node, f"published, but {what} has no such table")
    if isinstance(got, str) or isinstance(want, str):
        if got == want:
            return None
        return Mismatch(rule, env, node, f"published: {_short(got)}; {what}: {_short(want)}")
    if got.columns != want.columns:
        return Mismatch(rule, env, node, f"columns {list(got.columns)} but {what} has"
                        f" {list(want.columns)}", _sample(got.rows), _sample(want.rows))
    if got.rows == want.rows:
        return None
    extra, missing = got.rows - want.rows, want.rows - got.rows
    return Mismatch(rule, env, node,
                    f"{sum(got.rows.values())} rows vs {sum(want.rows.values())} in {what}"
                    f" ({sum(extra.values())} only published, {sum(missing.values())} only"
                    f" in {what})", _sample(extra), _sample(missing))


def _short(x: Table | str) -> str:
    return x if isinstance(x, str) else f"{sum(x.rows.values())} rows"


def _sample(rows: Counter[tuple[Any, ...]]) -> list[Any]:
    return sorted(rows.elements(), key=repr)[:SAMPLE]


def diff_snapshots(rule: str, env: str, got: Snapshot, want: Snapshot,
                   what: str = "the clean build", only: set[str] | None = None
                   ) -> list[Mismatch]:
    names = sorted(set(got) | set(want))
    out = []
    for name in names:
        if only is not None and name not in only:
            continue
        m = diff_table(rule, env, name, got.get(name), want.get(name), what)
        if m is not None:
            out.append(m)
    return out


# -- the sources as their data says -------------------------------------------------------


def source_truth(root: Path, pg: Any, telemetry: str, types: dict[str, str]) -> Snapshot:
    """What each source must hold, read without Headwater: every telemetry CSV file (one
    read, columns matched by name, the source's declared types), the devices file, both
    PostgreSQL tables as they are now. A bug shared by incremental and clean builds (a row
    lost by both) shows here."""
    con = duckdb.connect()
    try:
        files = sorted(str(p) for p in (root / telemetry).glob("*.csv"))
        out: Snapshot = {}
        for name, sql, params in (
            ("telemetry", "SELECT * FROM read_csv(?, header = true, union_by_name = true,"
                          " types = ?)", [files, types]),
            ("devices", "SELECT * FROM read_csv(?, header = true)",
             [str(root / "data/devices.csv")]),
        ):
            cur = con.execute(sql, params)
            out[name] = Table.of([d[0] for d in cur.description], cur.fetchall())
    finally:
        con.close()
    for name, table in (("orders", pg.orders), ("payments", pg.payments)):
        cur = pg.con.execute(f"SELECT * FROM {table}")
        out[name] = Table.of([d.name for d in cur.description], cur.fetchall())
    return out


def by_name(table: Table | str | None, like: Table | str | None) -> Table | str | None:
    """``table`` with its columns in ``like``'s order when both have the same columns
    (the order of a source's columns is not what its data decides)."""
    if not isinstance(table, Table) or not isinstance(like, Table) \
            or set(table.columns) != set(like.columns) or table.columns == like.columns:
        return table
    index = [table.columns.index(c) for c in like.columns]
    rows: Counter[tuple[Any, ...]] = Counter()
    for row, n in table.rows.items():
        rows[tuple(row[i] for i in index)] += n
    return Table(like.columns, rows)


# -- the clean build --------------------------------------------------------------------

IGNORE = shutil.ignore_patterns(".headwater", "output", "__pycache__")


def files_key(root: Path) -> str:
    """A digest of every project file a clean build copies."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in (".headwater", "output") or "__pycache__" in rel.parts:
            continue
        if path.is_file():
            h.update(f"{rel}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()


@dataclass
class CleanBuild:
    """What a from-scratch build of the same files and data publishes (and its sinks)."""

    tables: Snapshot
    sinks: dict[str, Table | str]
    error: str | None = None
    seconds: float = 0.0
    truth_checked: bool = False  # its sources were compared with their data


def clean_build(root: Path, work: Path, sink_paths: list[str]) -> CleanBuild:
    """Copy the project without ``.headwater/`` and sink outputs, run it from empty
    state in this process, read what it publishes."""
    import time

    from headwater import Project

    t0 = time.perf_counter()
    ref = work / "clean"
    shutil.rmtree(ref, ignore_errors=True)
    shutil.copytree(root, ref, ignore=IGNORE)
    project = Project(ref)
    try:
        result = project.run()
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        return CleanBuild({}, {}, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0)
    finally:
        if "state" in project.__dict__:
            project.state.close()
    if not result.ok:
        errors = [f"{n.name}: {n.error or n.reason}" for n in result.nodes
                  if n.status == "failed" or n.blocked]
        return CleanBuild({}, {}, "; ".join(errors)[:2000], time.perf_counter() - t0)
    build = CleanBuild(snapshot(ref, "prod"), {p: read_sink(ref / p) for p in sink_paths},
                       seconds=time.perf_counter() - t0)
    shutil.rmtree(ref, ignore_errors=True)
    return build
