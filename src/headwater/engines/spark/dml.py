"""Statements on the Spark engine: what Spark SQL cannot do on Parquet, from sqlglot trees.

``CREATE TABLE ... AS`` writes a new segment; ``INSERT ... [BY NAME]`` appends one;
``DELETE`` writes the surviving rows of only the segments that hold matching rows
(found with ``input_file_name()``); ``ALTER TABLE ... ADD COLUMN`` changes only the
schema (Parquet readers fill a missing column with NULL); ``DROP TABLE`` forgets a
table. Inside ``engine.transaction()`` all of it becomes visible at commit.

The engine's own methods (``delete_rows``, ``insert_by_name`` ...) call the functions
here with trees that are already built (headwater.engines.statements): nothing is
parsed. :func:`run_statement` serves ``engine.execute`` of DuckDB-dialect text (custom
checks, tests): it parses the text once and goes the same way. Bookkeeping is kept as
catalog rows (:mod:`headwater.engines.spark.meta`); only text statements that name the
``_hw_meta`` tables run on a copy in an in-memory DuckDB.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from headwater.core.quoting import quote_ident
from headwater.core.quoting import quote_ident as _dq  # the in-memory DuckDB
from headwater.engines.base import INTERNAL_SCHEMA, META_SCHEMA
from headwater.engines.spark.catalog import META_TABLES, Entry
from headwater.engines.spark.session import SparkEngineError

if TYPE_CHECKING:
    from sqlglot import exp

    from headwater.engines.spark.engine import SparkEngine


def _bq(name: str) -> str:
    return quote_ident(name, "spark")


def _error(message: str) -> Exception:
    return SparkEngineError(message)


def run_statement(engine: SparkEngine, sql: str, params: list[Any] | None, *, fetch: bool
                  ) -> list[tuple[Any, ...]] | None:
    """Carry out one statement given as DuckDB-dialect text; the rows of a query."""
    tree = engine._parse(sql, params)
    if _meta_only(tree):
        return _meta_statement(engine, sql, params, fetch=fetch)
    return _run(engine, tree)


def run_tree(engine: SparkEngine, tree: exp.Expr) -> list[tuple[Any, ...]] | None:
    """Carry out one statement built as a tree with DuckDB's semantics (not translated
    yet: it is translated here, on a copy); the rows of a query."""
    from headwater.engines.spark.sql import to_spark

    if _meta_only(tree):
        return _meta_statement(engine, tree.sql(dialect="duckdb"), None, fetch=True)
    return _run(engine, to_spark(tree.copy(), "duckdb"))


def _meta_only(tree: exp.Expr) -> bool:
    from sqlglot import exp

    tables = list(tree.find_all(exp.Table))
    return bool(tables) and all(t.text("db") == META_SCHEMA for t in tables)


def _run(engine: SparkEngine, tree: exp.Expr) -> list[tuple[Any, ...]] | None:
    """Carry out a statement already translated for Spark."""
    from sqlglot import exp

    if isinstance(tree, exp.Create):
        if (tree.args.get("kind") or "").upper() == "VIEW":
            raise _error("CREATE VIEW is not supported by the Spark engine")
        create_as(engine, tree.this, tree.expression, temp=_is_temp(tree))
        return None
    if isinstance(tree, exp.Insert):
        insert(engine, tree.this, tree.expression, by_name=bool(tree.args.get("by_name")))
        return None
    if isinstance(tree, exp.Delete):
        where = tree.args.get("where")
        delete_where(engine, tree.this, where.this if where is not None else None)
        return None
    if isinstance(tree, exp.Drop):
        drop(engine, tree.args.get("tables") or [tree.this],
             if_exists=bool(tree.args.get("exists")))
        return None
    if isinstance(tree, exp.Alter):
        _alter(engine, tree)
        return None
    rows = engine._df(tree).collect()
    return [tuple(r) for r in rows]


def create_as(engine: SparkEngine, table: exp.Expr, query: exp.Expr | None, *,
              temp: bool) -> None:
    """``CREATE OR REPLACE [TEMP] TABLE table AS query`` (``query`` translated)."""
    from sqlglot import exp

    target = _target(engine, table, temp=temp)
    if not isinstance(query, exp.Query):
        raise _error("CREATE TABLE needs AS SELECT on the Spark engine")
    with engine.transaction():
        rel, schema, metrics = engine._write_df(engine._df(query), _owner(target))
        engine._set(target, Entry("table", schema, (rel,), metrics=metrics))


def drop(engine: SparkEngine, tables: list[exp.Expr], *, if_exists: bool) -> None:
    for table in tables:
        target = _target(engine, table, temp=False)
        if engine._current(target) is None:
            if if_exists:
                continue
            raise _error(f"table {target[1]} does not exist")
        engine._set(target, None)


def _target(engine: SparkEngine, table: exp.Expr, *, temp: bool) -> tuple[str, str]:
    from sqlglot import exp

    if isinstance(table, exp.Schema):
        table = table.this
    assert isinstance(table, exp.Table)
    db = table.text("db")
    if db == INTERNAL_SCHEMA:
        return ("table", table.name)
    if not db and (temp or table.name in engine._temps):
        return ("temp", table.name)
    raise _error(
        f"cannot write {table.sql(dialect='duckdb')}: the Spark engine writes only "
        f"{INTERNAL_SCHEMA}.* tables and temporary tables")


def insert(engine: SparkEngine, table: exp.Expr, query: exp.Expr, *, by_name: bool) -> None:
    """``INSERT INTO table [BY NAME] query`` (``query`` translated): a new segment."""
    from sqlglot import exp

    target = _target(engine, table, temp=False)
    entry = engine._current(target)
    if entry is None:
        raise _error(f"table {target[1]} does not exist")
    df = engine._df(query) if isinstance(query, exp.Query) else engine.spark.sql(
        "SELECT * FROM " + query.sql(dialect="spark"))
    names = [f["name"] for f in entry.schema["fields"]]
    types = {f["name"]: _simple(f["type"]) for f in entry.schema["fields"]}
    given = list(df.columns)
    if by_name:
        lower = {c.lower(): c for c in given}
        extra = [c for c in given if c.lower() not in {n.lower() for n in names}]
        if extra:
            raise _error(f"table {target[1]} has no column {extra[0]!r}")
        exprs = [f"CAST({_bq(lower[n.lower()])} AS {types[n]}) AS {_bq(n)}"
                 if n.lower() in lower else f"CAST(NULL AS {types[n]}) AS {_bq(n)}"
                 for n in names]
    else:
        cols = ([c.name for c in table.expressions]
                if isinstance(table, exp.Schema) else names)
        if len(cols) != len(given):
            raise _error(
                f"table {target[1]} takes {len(cols)} values, {len(given)} given")
        source = dict(zip(cols, given, strict=True))
        exprs = [f"CAST({_bq(source[n])} AS {types[n]}) AS {_bq(n)}" if n in source
                 else f"CAST(NULL AS {types[n]}) AS {_bq(n)}" for n in names]
    with engine.transaction():
        rel, _, metrics = engine._write_df(df.selectExpr(*exprs), _owner(target))
        engine._set(target, entry.with_segments(entry.segments + (rel,), metrics))


def delete_where(engine: SparkEngine, table: exp.Expr, cond: exp.Expr | None) -> None:
    """``DELETE FROM table [WHERE cond]`` (``cond`` translated): only the segments holding
    matching rows are rewritten."""
    from sqlglot import exp

    target = _target(engine, table, temp=False)
    entry = engine._current(target)
    if entry is None:
        raise _error(f"table {target[1]} does not exist")
    if cond is None:
        engine._set(target, entry.with_segments((), {}))
        return
    hit = exp.func("coalesce", exp.paren(cond.copy()), exp.false())
    keep = exp.not_(hit.copy())
    ref = table.copy()
    key = (ref.text("db"), ref.name)
    # only the segments holding rows to delete are rewritten
    files = engine._df(exp.select(exp.func("input_file_name")).distinct()
                     .from_(ref.copy()).where(hit), overrides={key: entry}).collect()
    touched = {seg for (f,) in files for seg in entry.segments
               if _in_segment(str(f), engine.catalog.data_dir / seg)}
    if not touched:
        return
    segments, metrics = [], {}
    with engine.transaction():
        for seg in entry.segments:
            if seg not in touched:
                segments.append(seg)
                continue
            one = entry.with_segments((seg,), {})
            df = engine._df(exp.select("*").from_(ref.copy()).where(keep.copy()),
                          overrides={key: one})
            rel, _, new = engine._write_df(df, _owner(target))
            segments.append(rel)
            metrics.update(new)
        engine._set(target, entry.with_segments(tuple(segments), metrics))


def _alter(engine: SparkEngine, tree: exp.Alter) -> None:
    from sqlglot import exp

    target = _target(engine, tree.this, temp=False)
    entry = engine._current(target)
    if entry is None:
        raise _error(f"table {target[1]} does not exist")
    fields = list(entry.schema["fields"])
    for action in tree.args.get("actions") or []:
        if not isinstance(action, exp.ColumnDef):
            raise _error(
                f"unsupported ALTER TABLE on the Spark engine: {action.sql('duckdb')}")
        kind = action.args.get("kind")
        spark_type = kind.sql(dialect="spark") if kind is not None else "STRING"
        field = json.loads(engine.spark.sql(
            f"SELECT CAST(NULL AS {spark_type}) AS c").schema.json())["fields"][0]
        fields.append({**field, "name": action.name, "nullable": True})
    engine._set(target, Entry(entry.kind, {"type": "struct", "fields": fields},
                            entry.segments, entry.sql))


def _meta_statement(engine: SparkEngine, sql: str, params: list[Any] | None, *, fetch: bool
                    ) -> list[tuple[Any, ...]] | None:
    """Bookkeeping tables are tiny: an in-memory DuckDB runs the statement on a copy."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"CREATE SCHEMA {_dq(META_SCHEMA)}")
        loaded: dict[str, list[list[Any]]] = {}
        for table, cols in META_TABLES.items():
            rows = loaded[table] = engine.catalog.meta_rows(table)
            data = pa.table({c: pa.array([r[i] for r in rows], pa.string())
                             for i, c in enumerate(cols)})
            con.register("__hw_rows", data)
            con.execute(f"CREATE TABLE {_dq(META_SCHEMA)}.{_dq(table)} AS"
                        " SELECT * FROM __hw_rows")
            con.unregister("__hw_rows")
        result = con.execute(sql, params or [])
        rows_out = result.fetchall() if fetch or result.description else None
        import sqlglot
        from sqlglot import exp

        tree = sqlglot.parse_one(sql, dialect="duckdb")
        if isinstance(tree, exp.Insert | exp.Delete | exp.Update):
            table = (tree.this.this if isinstance(tree.this, exp.Schema)
                     else tree.this).name
            after = [list(r) for r in con.execute(
                f"SELECT * FROM {_dq(META_SCHEMA)}.{_dq(table)}").fetchall()]
            before = loaded[table]  # the snapshot the statement ran on
            engine.catalog.change_meta_rows(table, _minus(before, after),
                                          _minus(after, before))
        return rows_out
    finally:
        con.close()


def _in_segment(uri: str, folder: Path) -> bool:
    from urllib.parse import unquote, urlparse

    path = Path(unquote(urlparse(uri).path)) if uri.startswith("file:") else Path(uri)
    return path.parent == folder


def _minus(a: list[list[Any]], b: list[list[Any]]) -> list[list[Any]]:
    """Rows of ``a`` not in ``b`` (as multisets)."""
    from collections import Counter

    left = Counter(tuple(r) for r in a)
    left.subtract(Counter(tuple(r) for r in b))
    return [list(k) for k, n in left.items() for _ in range(n) if n > 0]


def _simple(spark_type: Any) -> str:
    from pyspark.sql.types import _parse_datatype_json_value

    return str(_parse_datatype_json_value(spark_type).simpleString())


def _owner(target: tuple[str, str]) -> str:
    return ".tmp" if target[0] == "temp" else target[1]


def _is_temp(tree: exp.Create) -> bool:
    from sqlglot import exp

    props = tree.args.get("properties")
    return bool(props and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions))
