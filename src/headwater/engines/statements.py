"""Bookkeeping SQL as sqlglot trees: quoting and dialects come for free (STYLE.md 3).

The trees say what DuckDB means (``hash``, ``::HUGEINT``, ``strftime``); an engine
renders them in its dialect (``Engine.execute_expr``) or runs them as they are (the
Spark engine translates the tree, it never re-parses text). Builders here are pure:
values become literals, names quoted identifiers::

    >>> delete(meta("windows"), eq("physical", "t")).sql("duckdb")
    'DELETE FROM "_hw_meta"."windows" WHERE "physical" = \\'t\\''
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlglot import exp

from headwater.engines.names import INTERNAL_SCHEMA, META_SCHEMA

_D = "duckdb"  # the semantics every tree here is written in


def table(physical: str) -> exp.Table:
    """A physical table of the internal schema."""
    return exp.table_(physical, db=INTERNAL_SCHEMA, quoted=True)


def meta(name: str) -> exp.Table:
    """A bookkeeping table (``_hw_meta.windows``, ``partitions`` ...)."""
    return exp.table_(name, db=META_SCHEMA, quoted=True)


def temp(name: str) -> exp.Table:
    """A temporary table of the session (a staging table)."""
    return exp.table_(name, quoted=True)


def col(name: str, of: exp.Table | str | None = None) -> exp.Column:
    """A quoted column; ``of``: qualified by a table (its schema too) or an alias."""
    if isinstance(of, exp.Table):
        return exp.column(name, table=of.name, db=of.text("db") or None, quoted=True)
    return exp.column(name, table=of, quoted=True)


def lit(value: Any) -> exp.Expr:
    """A Python value as a SQL literal: text, numbers, booleans, dates, timestamps, NULL."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int | float | Decimal):
        return exp.Literal.number(str(value) if isinstance(value, Decimal) else repr(value))
    if isinstance(value, dt.datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    return exp.Literal.string(str(value))


def cast(value: exp.Expr, type_sql: str) -> exp.Expr:
    """``CAST(value AS type)`` for a type as the engine describes it (``DECIMAL(18,3)``)."""
    return exp.cast(value, exp.DataType.build(type_sql, dialect=_D, udt=True))


def eq(column: str | exp.Expr, value: Any) -> exp.Expr:
    left = col(column) if isinstance(column, str) else column
    return exp.EQ(this=left, expression=lit(value))


def is_in(column: str | exp.Expr, values: Iterable[Any]) -> exp.Expr:
    """``column IN (values)``; FALSE for none."""
    listed = [lit(v) for v in values]
    left = col(column) if isinstance(column, str) else column
    return left.isin(*listed) if listed else exp.false()


def starts_with(column: str, prefix: str) -> exp.Expr:
    return exp.StartsWith(this=col(column), expression=lit(prefix))


def all_of(*conditions: exp.Expr | None) -> exp.Expr | None:
    """The conjunction of the conditions given (None: no condition)."""
    given = [c for c in conditions if c is not None]
    return exp.and_(*given, copy=False) if given else None


def any_of(conditions: Sequence[exp.Expr]) -> exp.Expr:
    """The disjunction of ``conditions``, parenthesised (FALSE for none)."""
    if not conditions:
        return exp.false()
    return exp.paren(exp.or_(*conditions, copy=False), copy=False)


def select(*columns: exp.Expr | str) -> exp.Select:
    return exp.select(*columns)


def count_star() -> exp.Expr:
    return exp.Count(this=exp.Star())


def sum_of(value: exp.Expr) -> exp.Expr:
    return exp.Sum(this=value)


def delete(target: exp.Table, where: exp.Expr | None = None) -> exp.Delete:
    tree = exp.Delete(this=target.copy())
    if where is not None:
        tree.set("where", exp.Where(this=where.copy()))
    return tree


def insert_values(target: exp.Table, rows: Sequence[Sequence[Any]],
                  columns: Sequence[str] | None = None) -> exp.Insert:
    """``INSERT INTO target [(columns)] VALUES (...), (...)``."""
    values = exp.values([tuple(lit(v) for v in row) for row in rows])
    return exp.insert(values, target, columns=[exp.to_identifier(c, quoted=True)
                                               for c in columns] if columns else None)


def insert_query(target: exp.Table, query: exp.Query, *, by_name: bool = False) -> exp.Insert:
    """``INSERT INTO target [BY NAME] query``."""
    tree = exp.insert(query, target)
    if by_name:
        tree.set("by_name", True)
    return tree


def row_hash(columns: Iterable[str]) -> exp.Expr:
    """The hash of a row of ``columns``: ``hash(struct_pack(...))::HUGEINT``, equal to
    ``hash(t)`` of a row with exactly those columns."""
    packed = exp.func("struct_pack", *(col(c) for c in columns), dialect=_D)
    return exp.cast(exp.func("hash", packed, dialect=_D), "HUGEINT", dialect=_D)


def table_hash(alias: str) -> exp.Expr:
    """The hash of a whole row of the table aliased ``alias``: ``hash(t)::HUGEINT``."""
    return exp.cast(exp.func("hash", exp.column(alias), dialect=_D), "HUGEINT", dialect=_D)


def fingerprint_text(hashed: exp.Expr) -> exp.Expr:
    """``count(*)::VARCHAR || ':' || coalesce(sum(hashed), 0)::VARCHAR``: a content
    fingerprint as text, as the state store keeps it."""
    total = exp.cast(exp.func("coalesce", sum_of(hashed), exp.Literal.number(0)),
                     "VARCHAR")
    return exp.DPipe(this=exp.DPipe(this=exp.cast(count_star(), "VARCHAR"),
                                    expression=exp.Literal.string(":")),
                     expression=total)


def group_by_all(query: exp.Select) -> exp.Select:
    """``query`` grouped by every column that is not an aggregate (``GROUP BY ALL``)."""
    query.set("group", exp.Group(all=True))
    return query


def visible(source: exp.Table, hidden: Sequence[str],
            where: exp.Expr | None = None) -> exp.Expr:
    """A table as transforms read it: ``hidden`` columns left out, optionally filtered
    (a subquery), or the table itself."""
    if not hidden and where is None:
        return source
    star = exp.Star(except_=[exp.column(c, quoted=True) for c in hidden]) if hidden \
        else exp.Star()
    query = exp.select(star).from_(source)
    return (query.where(where) if where is not None else query).subquery()
