"""A transform's cached render template fills to the same SQL that sqlglot renders."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot

from headwater.errors import HeadwaterError
from headwater.load.sql import (
    SLOT,
    RenderTemplate,
    analyse_sql,
    make_template,
    render_for_engine,
    table_expr,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SQL_FILES = sorted(p for p in FIXTURES.rglob("*.sql") if "/bad/" not in str(p))

EXTRA = {
    "self_join.sql": "SELECT a.x, b.y FROM t AS a JOIN t AS b ON a.id = b.id",
    "cte_shadow.sql": "WITH t AS (SELECT 1 AS x) SELECT * FROM t JOIN u USING (x)",
    "subquery.sql": "SELECT * FROM (SELECT x FROM t) AS s WHERE x IN (SELECT x FROM u)",
    "quoted.sql": 'SELECT "Weird Name".x FROM "Weird Name"',
    "qualified.sql": "SELECT x FROM t JOIN ext.other AS o USING (x)",
    "many.sql": " UNION ALL ".join(f"SELECT x FROM t{i}" for i in range(14)),
    "window.sql": "SELECT x, sum(y) OVER (PARTITION BY x ORDER BY ts) FROM t QUALIFY x > 1",
}


def _parses(name: str, text: str) -> bool:
    try:
        analyse_sql(text, Path(name), "duckdb")
    except HeadwaterError:
        return False  # dbt's Jinja, a check: not a transform of its own
    return True


def cases() -> list[tuple[str, str]]:
    out = [(str(p.relative_to(FIXTURES)), p.read_text()) for p in SQL_FILES]
    kept = [c for c in out + sorted(EXTRA.items()) if _parses(*c)]
    assert len(kept) > 50
    return kept


def normal(sql: str) -> str:
    return sqlglot.parse_one(sql, dialect="duckdb").sql(dialect="duckdb")


@pytest.mark.parametrize(("name", "text"), cases(), ids=[c[0] for c in cases()])
def test_template_fills_to_what_sqlglot_renders(name: str, text: str) -> None:
    analysis = analyse_sql(text, Path(name), "duckdb")
    template = analysis.template
    assert template is not None and template.dialect == "duckdb"
    for shape in ("table", "query"):
        tables = {n: ('"_hw"."' + n.replace('"', '""') + '__0123"' if shape == "table" else
                      f'(SELECT * EXCLUDE ("_hw_file") FROM "_hw"."{n}__x" WHERE a > 1)')
                  for n in template.names}
        filled = template.fill(tables)
        assert filled is not None
        expected = render_for_engine(text, "duckdb", {n: table_expr(t, "duckdb")
                                                      for n, t in tables.items()}, "duckdb")
        assert normal(filled) == normal(expected)
        assert "__hw_ref_" not in filled


def test_a_missing_table_means_no_fill() -> None:
    template = make_template(sqlglot.parse_one("SELECT * FROM a JOIN b USING (x)"),
                             "SELECT * FROM a JOIN b USING (x)")
    assert template is not None and template.names == ("a", "b")
    assert template.fill({"a": '"_hw"."a1"'}) is None


def test_text_that_looks_like_a_slot_gets_no_template() -> None:
    text = f"SELECT '{SLOT.format(0)}' AS x FROM t"
    assert make_template(sqlglot.parse_one(text), text) is None


def test_round_trip_through_the_parse_cache() -> None:
    t = RenderTemplate("SELECT * FROM __hw_ref_0__ AS t", ("t",), "duckdb")
    assert RenderTemplate.from_json(t.to_json()) == t
