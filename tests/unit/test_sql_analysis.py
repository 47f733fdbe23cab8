"""Reading transforms without running them: references, headers, fingerprints, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.errors import ParseError, ProjectError
from headwater.load.python import analyse_python
from headwater.load.sql import analyse_sql, locate_name, parse_header

SQL_PATH = Path("transforms/model.sql")
PY_PATH = Path("transforms/model.py")


def refs(sql: str) -> set[str]:
    return {r[0] for r in analyse_sql(sql, SQL_PATH, "duckdb").refs}


def sql_fp(sql: str) -> str:
    return analyse_sql(sql, SQL_PATH, "duckdb").code_fp


def py_fp(code: str) -> str:
    return analyse_python(code, PY_PATH).code_fp


# -- references ------------------------------------------------------------------


def test_plain_select() -> None:
    assert refs("SELECT * FROM orders") == {"orders"}


def test_refs_through_ctes_but_not_the_ctes_themselves() -> None:
    sql = """
        WITH recent AS (SELECT * FROM orders WHERE day > '2026-01-01'),
             totals AS (SELECT customer_id, sum(amount) AS total FROM recent GROUP BY 1)
        SELECT * FROM totals JOIN customers USING (customer_id)
    """
    assert refs(sql) == {"orders", "customers"}


def test_nested_cte_inside_a_cte() -> None:
    sql = """
        WITH outer_cte AS (
            WITH inner_cte AS (SELECT * FROM devices) SELECT * FROM inner_cte
        )
        SELECT * FROM outer_cte
    """
    assert refs(sql) == {"devices"}


def test_a_cte_shadows_a_node_of_the_same_name() -> None:
    assert refs("WITH orders AS (SELECT 1 AS id) SELECT * FROM orders") == set()


def test_refs_in_subqueries() -> None:
    sql = """
        SELECT o.*, (SELECT max(amount) FROM refunds r WHERE r.order_id = o.order_id) AS refund
        FROM (SELECT * FROM orders) AS o
        WHERE o.customer_id IN (SELECT customer_id FROM customers)
          AND EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.order_id)
    """
    assert refs(sql) == {"refunds", "orders", "customers", "payments"}


def test_refs_in_every_kind_of_join() -> None:
    sql = """
        SELECT * FROM a
        JOIN b ON a.id = b.id
        LEFT JOIN c USING (id)
        CROSS JOIN d
        FULL OUTER JOIN e ON e.id = a.id
        , f
    """
    assert refs(sql) == {"a", "b", "c", "d", "e", "f"}


def test_refs_in_union_intersect_except() -> None:
    sql = """
        SELECT id FROM a UNION ALL SELECT id FROM b
        UNION SELECT id FROM c EXCEPT SELECT id FROM d INTERSECT SELECT id FROM e
    """
    assert refs(sql) == {"a", "b", "c", "d", "e"}


def test_table_functions_are_not_refs() -> None:
    sql = """
        SELECT * FROM read_csv('data/x.csv')
        UNION ALL SELECT * FROM read_parquet('data/*.parquet')
        UNION ALL SELECT range AS x FROM range(10)
        UNION ALL SELECT * FROM generate_series(1, 3)
    """
    assert refs(sql) == set()


def test_schema_qualified_tables_are_not_refs() -> None:
    sql = """
        SELECT * FROM ext.orders
        JOIN other_db.main.customers USING (id)
        JOIN stg_orders USING (id)
    """
    assert refs(sql) == {"stg_orders"}


def test_main_dot_a_name_is_refused_with_the_bare_name() -> None:
    """``main.orders`` was left out of the DAG and failed at run time: a clear error now."""
    with pytest.raises(ParseError, match=r"main.orders: refer to a node by its bare name"):
        refs("SELECT *\nFROM main.orders")


def test_quoted_names_are_refs() -> None:
    assert refs('SELECT * FROM "Orders"') == {"Orders"}


def test_each_ref_once_with_where_its_name_starts() -> None:
    sql = (
        "-- header\nSELECT *\nFROM orders o\n"
        "  JOIN   customers c USING (id)\nJOIN orders o2 USING (id)"
    )
    analysis = analyse_sql(sql, SQL_PATH, "duckdb")
    assert analysis.refs == [("orders", 3, 6), ("customers", 4, 10)]


def test_ref_position_of_a_quoted_name_is_its_opening_quote() -> None:
    analysis = analyse_sql('SELECT * FROM "Orders"', SQL_PATH, "duckdb")
    assert analysis.refs == [("Orders", 1, 15)]


def test_locate_name_finds_a_column_for_engine_errors() -> None:
    sql = "SELECT customer_id,\n       max(discount) AS best\nFROM orders"
    assert locate_name(sql, "discount", "duckdb") == (2, 12)
    assert locate_name(sql, "DISCOUNT", "duckdb") == (2, 12)
    assert locate_name(sql, "nothing", "duckdb") == (None, None)
    assert locate_name("SELECT (", "x", "duckdb") == (None, None)


# -- header ----------------------------------------------------------------------


def test_header_description_and_annotations() -> None:
    sql = """-- Order totals per customer.
-- One row per customer.
--
-- Refunds are not subtracted.
-- @tags: finance, daily  core
-- @materialized: view
-- @owner: data-team
SELECT 1 AS one
-- a trailing comment is not part of the description
"""
    analysis = analyse_sql(sql, SQL_PATH, "duckdb")
    assert analysis.description == (
        "Order totals per customer.\nOne row per customer.\n\nRefunds are not subtracted."
    )
    assert analysis.annotations == {
        "tags": ["finance", "daily", "core"],
        "materialized": "view",
        "owner": "data-team",
    }


def test_header_stops_at_the_first_sql_line() -> None:
    header = parse_header("SELECT 1\n-- @tags: late\n", SQL_PATH)
    assert header.description == "" and header.annotations == {}


def test_header_blank_lines_and_line_numbers() -> None:
    header = parse_header("\n-- Title.\n\n-- @tags: a\nSELECT 1", SQL_PATH)
    assert header.description == "Title."
    assert header.lines == {"tags": 4}


def test_no_header_means_no_description_and_table() -> None:
    analysis = analyse_sql("SELECT 1 AS one", SQL_PATH, "duckdb")
    assert analysis.description == "" and analysis.annotations == {}


def test_unknown_annotation_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(ProjectError, match=r"unknown annotation @tag") as info:
        analyse_sql("-- x\n-- @tag: a\nSELECT 1", SQL_PATH, "duckdb")
    err = info.value
    assert (err.line, err.column) == (2, 4)
    assert "did you mean '@tags'" in (err.hint or "")
    assert "@materialized" in (err.hint or "")


def test_bad_materialized_value() -> None:
    with pytest.raises(ProjectError, match=r"'table' or 'view', got 'tabel'") as info:
        analyse_sql("-- @materialized: tabel\nSELECT 1", SQL_PATH, "duckdb")
    assert info.value.line == 1
    assert "did you mean 'table'" in (info.value.hint or "")


# -- fingerprints ----------------------------------------------------------------

BASE_SQL = """-- Totals.
SELECT customer_id, sum(amount) AS total
FROM orders
WHERE amount > 0
GROUP BY customer_id
"""


@pytest.mark.parametrize(
    "edited",
    [
        # whitespace and layout
        "SELECT customer_id,sum(amount) AS total FROM orders WHERE amount>0 GROUP BY customer_id",
        "\n\n  SELECT\n\tcustomer_id,\n\tsum(amount)   AS total\nFROM orders\n"
        "WHERE amount > 0\nGROUP BY customer_id\n\n",
        # comments, including the description
        "-- A different description.\n-- @owner: someone\n" + BASE_SQL.split("\n", 1)[1],
        BASE_SQL.replace("FROM orders", "FROM orders -- the source\n/* block */"),
        # keyword case
        "select customer_id, SUM(amount) as total from orders where amount > 0 "
        "group by customer_id",
        # a trailing semicolon
        BASE_SQL.rstrip() + ";\n",
    ],
)
def test_sql_fingerprint_ignores_formatting(edited: str) -> None:
    assert sql_fp(edited) == sql_fp(BASE_SQL)


@pytest.mark.parametrize(
    "edited",
    [
        BASE_SQL.replace("amount > 0", "amount >= 0"),
        BASE_SQL.replace("sum(amount)", "avg(amount)"),
        BASE_SQL.replace("AS total", "AS total_amount"),
        BASE_SQL.replace("FROM orders", "FROM stg_orders"),
        BASE_SQL.replace("'", "").replace("amount > 0", "amount > 1"),
        "-- @materialized: view\n" + BASE_SQL,
    ],
)
def test_sql_fingerprint_changes_with_a_real_edit(edited: str) -> None:
    assert sql_fp(edited) != sql_fp(BASE_SQL)


def test_sql_fingerprint_string_literals_are_case_sensitive() -> None:
    assert sql_fp("SELECT 'A' AS x") != sql_fp("SELECT 'a' AS x")


BASE_PY = '''"""Module docstring."""

import pyarrow as pa


def model(orders: pa.Table, customers):
    """Join orders to customers."""
    # keep only positive amounts
    return orders.filter(pa.compute.greater(orders["amount"], 0))
'''


@pytest.mark.parametrize(
    "edited",
    [
        BASE_PY.replace("# keep only positive amounts", "# a different comment"),
        BASE_PY.replace("    # keep only positive amounts\n", ""),
        BASE_PY.replace('"""Join orders to customers."""', '"""Something else entirely."""'),
        BASE_PY.replace('    """Join orders to customers."""\n', ""),
        BASE_PY.replace('"""Module docstring."""', '"""Another module docstring."""'),
        BASE_PY.replace("pa.compute.greater(orders", "pa.compute.greater( orders"),
        "# leading comment\n" + BASE_PY + "\n\n# trailing comment\n",
    ],
)
def test_python_fingerprint_ignores_comments_and_docstrings(edited: str) -> None:
    assert py_fp(edited) == py_fp(BASE_PY)


@pytest.mark.parametrize(
    "edited",
    [
        BASE_PY.replace('orders["amount"], 0', 'orders["amount"], 1'),
        BASE_PY.replace("customers)", "customers, devices)"),
        BASE_PY + "\n\ndef helper():\n    return 1\n",
    ],
)
def test_python_fingerprint_changes_with_a_real_edit(edited: str) -> None:
    assert py_fp(edited) != py_fp(BASE_PY)


def test_python_analysis() -> None:
    py = analyse_python(BASE_PY, PY_PATH)
    assert py.params == ["orders", "customers"]
    assert py.param_types == {"orders": "pa.Table"}
    assert py.refs == [("orders", 6, 11), ("customers", 6, 29)]
    assert py.description == "Join orders to customers."


# -- errors ----------------------------------------------------------------------


def test_syntax_error_has_line_column_caret_and_hint() -> None:
    sql = "-- x\nSELECT a\nFROM orders WHERE amount > GROUP BY a\n"
    with pytest.raises(ParseError) as info:
        analyse_sql(sql, SQL_PATH, "duckdb")
    err = info.value
    assert (err.line, err.column) == (3, 28)
    assert "'>' is missing its right-hand side" in err.message
    assert "<class" not in err.message and "sqlglot" not in err.message
    assert err.snippet == (
        "   3 | FROM orders WHERE amount > GROUP BY a\n" + " " * 34 + "^"
    )
    assert err.hint


@pytest.mark.parametrize(
    ("sql", "line", "col", "words"),
    [
        ("SELECT * FROM orders WHERE", 1, 22, "incomplete WHERE clause"),
        ("SELECT (1 FROM orders", 1, 11, "expecting )"),
        ("SELECT a b c FROM orders", 1, 12, "unexpected 'c'"),
        ("SELECT 1,\n  'abc AS x\nFROM orders", 2, 3, "unterminated string"),
        ('SELECT "abc FROM orders', 1, 8, "unterminated quoted name"),
        ("SELECT 1 /* never closed", 1, 10, "unterminated comment"),
    ],
)
def test_syntax_errors_read_like_sql(sql: str, line: int, col: int, words: str) -> None:
    with pytest.raises(ParseError) as info:
        analyse_sql(sql, SQL_PATH, "duckdb")
    err = info.value
    assert words in err.message
    assert (err.line, err.column) == (line, col)
    assert err.snippet and err.snippet.endswith("^")
    assert "Token" not in err.message


@pytest.mark.parametrize(
    ("sql", "found", "line"),
    [
        ("-- x\nDROP TABLE orders", "found a DROP statement", 2),
        ("INSERT INTO orders SELECT * FROM orders", "found an INSERT statement", 1),
        ("CREATE TABLE t AS SELECT 1", "found a CREATE statement", 1),
        ("UPDATE orders SET amount = 0", "found an UPDATE statement", 1),
        ("SELECT 1;\n\n  SELECT 2;", "found 2 statements", 3),
    ],
)
def test_not_a_single_select(sql: str, found: str, line: int) -> None:
    with pytest.raises(ParseError, match="exactly one SELECT") as info:
        analyse_sql(sql, SQL_PATH, "duckdb")
    assert found in info.value.message
    assert info.value.line == line
    assert info.value.hint


@pytest.mark.parametrize("sql", ["", "\n\n", "-- only a comment\n", "/* block */\n-- x"])
def test_empty_transform(sql: str) -> None:
    with pytest.raises(ParseError, match="no SQL statement"):
        analyse_sql(sql, SQL_PATH, "duckdb")


def test_python_syntax_error() -> None:
    with pytest.raises(ParseError, match="Python syntax error") as info:
        analyse_python("def model(orders)\n    return orders\n", PY_PATH)
    assert (info.value.line, info.value.column) == (1, 18)
    assert info.value.snippet and info.value.hint


def test_python_missing_function_points_at_the_near_miss() -> None:
    with pytest.raises(ParseError, match="function named 'model'") as info:
        analyse_python("import x\n\n\ndef modle(orders):\n    return orders\n", PY_PATH)
    assert info.value.line == 4
    assert "rename `def modle` to `def model`" in (info.value.hint or "")


def test_python_missing_function_without_any_function() -> None:
    with pytest.raises(ParseError) as info:
        analyse_python("x = 1\n", PY_PATH)
    assert info.value.line is None
    assert "def model(" in (info.value.hint or "")


def test_python_star_args_are_rejected() -> None:
    with pytest.raises(ParseError, match="plain names"):
        analyse_python("def model(*tables):\n    return tables[0]\n", PY_PATH)
