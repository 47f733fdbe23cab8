"""Bookkeeping SQL as sqlglot trees: quoting and dialects come for free (STYLE.md 3).

The trees say what DuckDB means (``hash``, ``::HUGEINT``, ``strftime``; type names as
DuckDB reads them, so ``TIMESTAMP`` is a naive timestamp); an engine renders them in
its dialect (``Engine.execute_expr``) or runs them as they are (the Spark engine
translates the tree, it never re-parses text). Builders here are pure: values become
literals, names quoted identifiers::

    >>> delete(meta("windows"), eq("physical", "t")).sql("duckdb")
    'DELETE FROM "_hw_meta"."windows" WHERE "physical" = \\'t\\''

They make nodes directly (no parsing, no copies): bookkeeping runs a hundred
statements in an incremental run, and building them must stay cheap next to running
them. A tree given to a builder becomes part of the result; pass a copy to reuse it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlglot import exp

from headwater.engines.names import INTERNAL_SCHEMA, META_SCHEMA

_D = "duckdb"  # the semantics every tree here is written in
_TYPES: dict[str, exp.DataType] = {}


def table(physical: str) -> exp.Table:
    """A physical table of the internal schema."""
    return exp.Table(this=exp.to_identifier(physical, quoted=True),
                     db=exp.to_identifier(INTERNAL_SCHEMA, quoted=True))


def meta(name: str) -> exp.Table:
    """A bookkeeping table (``_hw_meta.windows``, ``partitions`` ...)."""
    return exp.Table(this=exp.to_identifier(name, quoted=True),
                     db=exp.to_identifier(META_SCHEMA, quoted=True))


def temp(name: str) -> exp.Table:
    """A temporary table of the session (a staging table)."""
    return exp.Table(this=exp.to_identifier(name, quoted=True))


def col(name: str, of: exp.Table | str | None = None) -> exp.Column:
    """A quoted column; ``of``: qualified by a table (its schema too) or an alias."""
    if isinstance(of, exp.Table):
        db = of.text("db")
        return exp.Column(this=exp.to_identifier(name, quoted=True),
                          table=exp.to_identifier(of.name, quoted=True),
                          db=exp.to_identifier(db, quoted=True) if db else None)
    return exp.Column(this=exp.to_identifier(name, quoted=True),
                      table=exp.to_identifier(of, quoted=True) if of else None)


def dtype(type_sql: str) -> exp.DataType:
    """A type as DuckDB names it (``DECIMAL(18,3)``, ``TIMESTAMP`` ...)."""
    found = _TYPES.get(type_sql)
    if found is None:
        found = _TYPES[type_sql] = exp.DataType.build(type_sql, dialect=_D, udt=True)
    return found.copy()


def cast(value: exp.Expr, type_sql: str) -> exp.Cast:
    """``CAST(value AS type)``, the type as the engine describes it."""
    return exp.Cast(this=value, to=dtype(type_sql))


def param() -> exp.Expr:
    """A value bound when the statement runs (``?``): statements of one shape are then
    built and rendered once (``Engine._prepared``)."""
    return exp.Placeholder()


def lit(value: Any) -> exp.Expr:
    """A Python value as a SQL literal: text, numbers, booleans, dates, timestamps, NULL
    (a tree, such as :func:`param`, is kept as it is)."""
    if isinstance(value, exp.Expr):
        return value
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int | float | Decimal):
        return exp.Literal.number(str(value) if isinstance(value, Decimal) else repr(value))
    if isinstance(value, dt.datetime):
        return cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
    if isinstance(value, dt.date):
        return cast(exp.Literal.string(value.isoformat()), "DATE")
    return exp.Literal.string(str(value))


def _operand(column: str | exp.Expr) -> exp.Expr:
    return col(column) if isinstance(column, str) else column


def eq(column: str | exp.Expr, value: Any) -> exp.Expr:
    return exp.EQ(this=_operand(column), expression=lit(value))


def is_in(column: str | exp.Expr, values: Iterable[Any]) -> exp.Expr:
    """``column IN (values)``; FALSE for none."""
    listed = [lit(v) for v in values]
    return exp.In(this=_operand(column), expressions=listed) if listed else exp.false()


def starts_with(column: str, prefix: Any) -> exp.Expr:
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


def select(*columns: exp.Expr | str, from_: exp.Expr | None = None,
           where: exp.Expr | None = None) -> exp.Select:
    """``SELECT columns [FROM from_] [WHERE where]`` (``"*"``: every column)."""
    query = exp.Select(expressions=[exp.Star() if c == "*" else c for c in columns])
    if from_ is not None:
        query = query.from_(from_, copy=False)
    if where is not None:
        query = query.where(where, copy=False)
    return query


def count_star() -> exp.Expr:
    return exp.Count(this=exp.Star())


def sum_of(value: exp.Expr) -> exp.Expr:
    return exp.Sum(this=value)


def coalesce(value: exp.Expr, otherwise: exp.Expr) -> exp.Expr:
    return exp.Coalesce(this=value, expressions=[otherwise])


def delete(target: exp.Table, where: exp.Expr | None = None) -> exp.Delete:
    tree = exp.Delete(this=target)
    if where is not None:
        tree.set("where", exp.Where(this=where))
    return tree


def insert_values(target: exp.Table, rows: Sequence[Sequence[Any]],
                  columns: Sequence[str] | None = None) -> exp.Insert:
    """``INSERT INTO target [(columns)] VALUES (...), (...)``."""
    values = exp.Values(expressions=[exp.Tuple(expressions=[lit(v) for v in row])
                                     for row in rows])
    into: exp.Expr = target if not columns else exp.Schema(
        this=target, expressions=[exp.to_identifier(c, quoted=True) for c in columns])
    return exp.Insert(this=into, expression=values)


def insert_query(target: exp.Table, query: exp.Query, *, by_name: bool = False) -> exp.Insert:
    """``INSERT INTO target [BY NAME] query``."""
    tree = exp.Insert(this=target, expression=query)
    if by_name:
        tree.set("by_name", True)
    return tree


def row_hash(columns: Iterable[str]) -> exp.Expr:
    """The hash of a row of ``columns``: ``hash(struct_pack(...))::HUGEINT``, equal to
    ``hash(t)`` of a row with exactly those columns."""
    packed = exp.Struct(expressions=[col(c) for c in columns])
    return cast(exp.Anonymous(this="hash", expressions=[packed]), "HUGEINT")


def table_hash(alias: str) -> exp.Expr:
    """The hash of a whole row of the table aliased ``alias``: ``hash(t)::HUGEINT``."""
    return cast(exp.Anonymous(this="hash", expressions=[exp.column(alias)]), "HUGEINT")


def fingerprint_text(hashed: exp.Expr) -> exp.Expr:
    """``count(*)::VARCHAR || ':' || coalesce(sum(hashed), 0)::VARCHAR``: a content
    fingerprint as text, as the state store keeps it."""
    total = cast(coalesce(sum_of(hashed), exp.Literal.number(0)), "VARCHAR")
    return exp.DPipe(this=exp.DPipe(this=cast(count_star(), "VARCHAR"),
                                    expression=exp.Literal.string(":")),
                     expression=total)


def group_by_all(query: exp.Select) -> exp.Select:
    """``query`` grouped by every column that is not an aggregate (``GROUP BY ALL``)."""
    query.set("group", exp.Group(all=True))
    return query


def group_by(query: exp.Select, *columns: exp.Expr) -> exp.Select:
    query.set("group", exp.Group(expressions=list(columns)))
    return query


def visible(source: exp.Table, hidden: Sequence[str],
            where: exp.Expr | None = None) -> exp.Expr:
    """A table as transforms read it: ``hidden`` columns left out, optionally filtered
    (a subquery), or the table itself."""
    if not hidden and where is None:
        return source
    star = exp.Star(except_=[exp.column(c, quoted=True) for c in hidden]) if hidden \
        else exp.Star()
    return exp.Subquery(this=select(star, from_=source, where=where))
