"""What SQL a user types may do: read the published tables, nothing else.

``headwater query`` (and anything else that runs SQL a person typed) must not reach
the file system, extensions, other databases or settings: a ``COPY ... TO`` once
wrote a Python file into ``transforms/`` that the next run executed. Two locks, each
enough on its own:

1. this allow-list, checked on the sqlglot tree before DuckDB sees the text: one
   statement, a query (``SELECT``, ``WITH``, ``UNION`` ...; no ``COPY``, ``ATTACH``,
   ``INSTALL``, ``SET``, ``PRAGMA``, DDL or DML); tables only from the schemas of
   published environments (``main`` for prod, ``dev`` ...), never the internal
   ``_hw``/``_hw_meta`` schemas, DuckDB's catalog views or another database; no table
   function but a few that only compute (``range``, ``generate_series``, ``unnest``);
   no function that reads files, settings, the environment or the catalog;
2. the connection itself (``DuckDBEngine.open(read_only=True)``):
   ``enable_external_access = false`` (no file, no network, no extension loading) and
   ``lock_configuration = true`` (no setting can be changed back).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from headwater.errors import HeadwaterError

# table functions that only compute rows (no file, catalog or setting behind them)
SAFE_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
# name prefixes and names of functions that read what a query must not see
_DENIED_PREFIXES = ("read_", "duckdb_", "pragma_", "parquet_", "sniff_", "json_execute",
                    "iceberg_", "delta_", "sqlite_", "postgres_", "mysql_", "which_secret")
_DENIED = frozenset({
    "glob", "getenv", "current_setting", "query", "query_table", "load_extension",
    "install_extension", "force_checkpoint", "checkpoint", "enable_profiling",
    "disable_profiling", "copy_database", "export_database", "import_database",
    "read_blob", "read_text", "current_database", "current_schemas", "current_catalog",
    "has_table_privilege", "has_schema_privilege", "pg_get_viewdef", "test_all_types",
})


class QueryRefused(HeadwaterError):
    """A query that would reach something other than the published tables."""

    exit_code = 2


def check_query(sql: str, schemas: Iterable[str], catalog: str = "warehouse",
                tables: Mapping[str, set[str]] | None = None) -> str:
    """``sql`` if it only reads tables of ``schemas`` (in the database ``catalog``; with
    ``tables``, only those names of each schema); else :class:`QueryRefused`."""
    import logging

    import sqlglot
    from sqlglot import exp

    allowed = {s.lower() for s in schemas}
    hint = ("`headwater query` reads the published tables only: one SELECT (WITH, UNION"
            " ...) over main.<node> (prod) or <env>.<node>")
    quiet = logging.getLogger("sqlglot")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "falling back to parsing as a Command": refused anyway
    try:
        trees = [t for t in sqlglot.parse(sql, dialect="duckdb") if t is not None]
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        line, col = first.get("line"), first.get("col")
        where = f" at line {line}, column {col}" if line and col else ""
        from headwater.errors import caret_snippet

        raise QueryRefused(f"cannot read the query: invalid SQL{where}",
                           snippet=caret_snippet(sql, line, col) if line else None,
                           hint=hint) from None
    finally:
        quiet.setLevel(level)
    if len(trees) != 1:
        raise QueryRefused(f"one statement at a time ({len(trees)} given)", hint=hint)
    tree = trees[0]
    if not isinstance(tree, exp.Query):
        raise QueryRefused(f"only queries are allowed, not {_kind(tree)}", hint=hint)
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    for node in tree.walk():
        if isinstance(node, exp.Table):
            _check_table(node, ctes, allowed, catalog.lower(), hint, tables)
        elif isinstance(node, exp.Func):
            name = _func_name(node)
            if name in _DENIED or name.startswith(_DENIED_PREFIXES):
                raise QueryRefused(f"function {name}() is not allowed in a query", hint=hint)
        elif isinstance(node, exp.Command | exp.Pragma | exp.Set | exp.Copy | exp.Attach
                        | exp.Detach | exp.Install | exp.Use | exp.Create | exp.Insert
                        | exp.Update | exp.Delete | exp.Drop | exp.Alter | exp.Merge):
            raise QueryRefused(f"only queries are allowed, not {_kind(node)}", hint=hint)
    return sql


def _check_table(table: object, ctes: set[str], allowed: set[str], catalog: str,
                 hint: str, tables: Mapping[str, set[str]] | None) -> None:
    from sqlglot import exp

    assert isinstance(table, exp.Table)
    if isinstance(table.this, exp.Func):  # FROM read_csv(...), FROM range(3)
        name = _func_name(table.this)
        if name not in SAFE_TABLE_FUNCTIONS:
            raise QueryRefused(f"table function {name}() is not allowed in a query", hint=hint)
        return
    if not isinstance(table.this, exp.Identifier):  # FROM 'file.csv', FROM ($var)
        raise QueryRefused(f"{table.sql(dialect='duckdb')} is not a published table",
                           hint=hint)
    name = table.name.lower()
    db = table.db.lower()
    if not db and not table.catalog and name in ctes:
        return
    if table.catalog and table.catalog.lower() != catalog:
        raise QueryRefused(f"{table.sql(dialect='duckdb')}: other databases are not"
                           " reachable from a query", hint=hint)
    schema = db or "main"
    if schema not in allowed:
        raise QueryRefused(f"{table.sql(dialect='duckdb')} is not a published table"
                           f" (schema {schema!r} is not an environment's)", hint=hint)
    if tables is not None and name not in {t.lower() for t in tables.get(schema, set())}:
        from headwater.errors import did_you_mean

        known = sorted(tables.get(schema, set()))
        raise QueryRefused(f"{table.sql(dialect='duckdb')} is not a published table",
                           hint=did_you_mean(table.name, known) or hint)


def _func_name(func: object) -> str:
    from sqlglot import exp

    assert isinstance(func, exp.Func)
    if isinstance(func, exp.Anonymous):
        return str(func.this).lower()
    return func.sql_name().lower()


def _kind(tree: object) -> str:
    from sqlglot import exp

    if isinstance(tree, exp.Command):
        return str(tree.this).upper()
    return type(tree).__name__.upper()
