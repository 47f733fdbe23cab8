"""SQL quoting, written once: identifiers per dialect and string literals.

Where a statement is built from parts, a sqlglot tree quotes for free (STYLE.md 3); these
helpers are for the places that paste a name or a value into SQL text::

    >>> quote_ident('a"b')
    '"a""b"'
    >>> quote_ident("a`b", dialect="spark")
    '`a``b`'
    >>> quote_literal("it's")
    "'it''s'"
"""

from __future__ import annotations

import re

# sqlglot dialect names; a dialect outside both sets is a programming error, not a guess
_DOUBLE_QUOTE_DIALECTS = frozenset({"duckdb", "postgres", "ansi"})
_BACKQUOTE_DIALECTS = frozenset({"spark", "mysql"})

_PLAIN_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote_ident(name: str, dialect: str = "duckdb") -> str:
    """``name`` as one SQL identifier of ``dialect``, taken literally (case kept).

    Double quotes for DuckDB, Postgres and ANSI SQL, backquotes for Spark and MySQL; the
    quote character inside the name is doubled. Raises ValueError for another dialect.
    """
    if dialect in _DOUBLE_QUOTE_DIALECTS:
        return '"' + name.replace('"', '""') + '"'
    if dialect in _BACKQUOTE_DIALECTS:
        return "`" + name.replace("`", "``") + "`"
    known = ", ".join(sorted(_DOUBLE_QUOTE_DIALECTS | _BACKQUOTE_DIALECTS))
    raise ValueError(f"no identifier quoting for dialect {dialect!r} (known: {known})")


def quote_literal(text: str) -> str:
    """``text`` as one SQL string literal (single quotes, embedded quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def quote_if_needed(name: str, dialect: str = "duckdb") -> str:
    """``name`` as written when it is a plain identifier (``[A-Za-z_][A-Za-z0-9_]*``),
    else quoted: for SQL that people read, such as the files an importer writes.

    Keywords are not recognised: ``select`` stays unquoted.
    """
    return name if _PLAIN_IDENT.match(name) else quote_ident(name, dialect)
