"""headwater.core.quoting: the one implementation of identifier and literal quoting."""

from __future__ import annotations

import duckdb
import pytest

from headwater.core.quoting import quote_ident, quote_if_needed, quote_literal


@pytest.mark.parametrize(("name", "expected"), [
    ("orders", '"orders"'),
    ('a"b', '"a""b"'),
    ('""', '""""""'),
    ("", '""'),
    ("a`b", '"a`b"'),
    ("it's", '"it\'s"'),
    ("Ünïcødé 表", '"Ünïcødé 表"'),
    ("x; drop table y", '"x; drop table y"'),
])
def test_double_quoted_dialects(name: str, expected: str) -> None:
    assert quote_ident(name) == expected
    for dialect in ("duckdb", "postgres", "ansi"):
        assert quote_ident(name, dialect) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("orders", "`orders`"),
    ("a`b", "`a``b`"),
    ("``", "``````"),
    ("", "``"),
    ('a"b', '`a"b`'),
    ("Ünïcødé 表", "`Ünïcødé 表`"),
])
def test_backquoted_dialects(name: str, expected: str) -> None:
    for dialect in ("spark", "mysql"):
        assert quote_ident(name, dialect) == expected


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="no identifier quoting for dialect 'oracle'"):
        quote_ident("a", "oracle")


@pytest.mark.parametrize(("text", "expected"), [
    ("plain", "'plain'"),
    ("it's", "'it''s'"),
    ("''", "''''''"),
    ("", "''"),
    ('say "hi"', "'say \"hi\"'"),
    ("back\\slash", "'back\\slash'"),
    ("Ünïcødé 表", "'Ünïcødé 表'"),
])
def test_quote_literal(text: str, expected: str) -> None:
    assert quote_literal(text) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("orders", "orders"),
    ("_x9", "_x9"),
    ("select", "select"),  # keywords are not recognised
    ("9lives", '"9lives"'),
    ("order id", '"order id"'),
    ('a"b', '"a""b"'),
    ("", '""'),
    ("café", '"café"'),
])
def test_quote_if_needed(name: str, expected: str) -> None:
    assert quote_if_needed(name) == expected


def test_quote_if_needed_backquotes_for_spark() -> None:
    assert quote_if_needed("order id", "spark") == "`order id`"
    assert quote_if_needed("orders", "spark") == "orders"


@pytest.mark.parametrize("name", ['a"b', '"', "x'); drop table t; --", "Ünïcødé 表", " sp ace "])
def test_round_trip_through_duckdb(name: str) -> None:
    """What DuckDB reads back is the name and the text exactly, whatever they hold."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE {quote_ident(name)} AS SELECT {quote_literal(name)} AS v")
    assert con.execute(f"SELECT v FROM {quote_ident(name)}").fetchall() == [(name,)]
    assert con.execute("SELECT table_name FROM information_schema.tables").fetchall() == [(name,)]


def test_engines_base_reexports_the_core_functions() -> None:
    from headwater.engines import base

    assert base.quote_ident is quote_ident
    assert base.quote_literal is quote_literal
