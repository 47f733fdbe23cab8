"""Query results as table, CSV and JSON: nested types keep their shape, nothing crashes."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest
from rich.console import Console

from headwater.cli import formatting

EVERY_TYPE = r"""
SELECT [1, 2, 3] AS l, {'a': 1, 'b': [1.5, NULL]} AS s, MAP {'k': 1, 'z': 2} AS m,
       [{'x': 'y'}] AS ls, NULL::INT[] AS n, 'a,b"c' AS t, DATE '2024-01-02' AS d,
       TIMESTAMPTZ '2024-01-02 03:04:05+00' AS tz,
       12345678901234567890123456789.123::DECIMAL(38,3) AS dec,
       '\x00\xff'::BLOB AS b, INTERVAL '1 year 2 months 3 days 04:05:06.5' AS i,
       [MAP {1: 'a'}] AS lm, UNION_VALUE(num := 2)::UNION(num INT, str VARCHAR) AS u,
       'nan'::DOUBLE AS f, 'inf'::DOUBLE AS inf, 1 AS a, 2 AS a, [[1, 2], [3]] AS ll,
       ARRAY_VALUE(1, 2)::INT[2] AS arr, {'k': MAP {'a': [1]}} AS deep, '[red]x' AS mk,
       true AS bo, TIME '12:00' AS tm, 'é'::VARCHAR AS e, NULL AS nothing,
       'b'::ENUM('a', 'b') AS en, 9007199254740993::BIGINT AS big
"""


@pytest.fixture(scope="module")
def every_type() -> pa.Table:
    return duckdb.connect().sql(EVERY_TYPE).to_arrow_table()


def test_json_keeps_nested_shapes_and_every_digit(every_type: pa.Table) -> None:
    text = formatting.to_json(every_type)
    rows = json.loads(text, parse_float=Decimal)
    assert len(rows) == 1
    row = rows[0]
    assert row["l"] == [1, 2, 3]
    assert row["s"] == {"a": 1, "b": [Decimal("1.5"), None]}
    assert row["m"] == {"k": 1, "z": 2}
    assert row["ls"] == [{"x": "y"}]
    assert row["n"] is None
    assert row["t"] == 'a,b"c'
    assert row["d"] == "2024-01-02"
    assert row["tz"].startswith("2024-01-02 03:04:05")
    assert row["dec"] == Decimal("12345678901234567890123456789.123")
    assert row["b"] == "\\x00\\xFF"
    assert row["i"] == "1 year 2 months 3 days 04:05:06.5"
    assert row["lm"] == [{"1": "a"}]
    assert row["u"] == 2
    assert row["f"] is None and row["inf"] is None  # JSON has no NaN or Infinity
    assert (row["a"], row["a_1"]) == (1, 2)  # a duplicate name is not lost
    assert row["ll"] == [[1, 2], [3]]
    assert row["arr"] == [1, 2]
    assert row["deep"] == {"k": {"a": [1]}}
    assert row["bo"] is True
    assert row["tm"] == "12:00:00"
    assert row["e"] == "é"
    assert row["nothing"] is None
    assert row["en"] == "b"
    assert row["big"] == 9007199254740993
    assert list(row)[:3] == ["l", "s", "m"]  # column order kept
    assert "NaN" not in text and "Infinity" not in text


def test_csv_writes_nested_values_as_json_text(every_type: pa.Table) -> None:
    text = formatting.to_csv(every_type)
    header, row = list(csv.reader(io.StringIO(text)))
    assert header.count("a") == 2
    cells = dict(zip(header, row, strict=False))
    assert json.loads(cells["l"]) == [1, 2, 3]
    assert json.loads(cells["s"]) == {"a": 1, "b": [1.5, None]}
    assert json.loads(cells["m"]) == {"k": 1, "z": 2}
    assert json.loads(cells["deep"]) == {"k": {"a": [1]}}
    assert cells["t"] == 'a,b"c'
    assert cells["n"] == ""
    assert cells["b"] == "\\x00\\xFF"
    assert cells["i"] == "1 year 2 months 3 days 04:05:06.5"
    assert cells["dec"] == "12345678901234567890123456789.123"
    assert cells["en"] == "b"


def test_table_shows_every_column_and_no_markup(every_type: pa.Table) -> None:
    console = Console(record=True, width=400, color_system=None)
    formatting.print_table(console, every_type, title="[bold]t")
    out = console.export_text()
    assert "[red]x" in out  # data is never taken for rich markup
    assert "[bold]t" in out
    assert '{"a": 1, "b": [1.5, null]}' in out
    assert '{"k": 1, "z": 2}' in out
    assert "int32[]" in out and "map(string, int32)" in out and "decimal(38,3)" in out
    assert "1 rows" in out
    # both columns named a are shown with their own values
    line = next(ln for ln in out.splitlines() if "[1, 2, 3]" in ln)
    cells = [c.strip() for c in line.split("│")]
    assert cells.count("1") >= 1 and "2" in cells


def test_empty_results() -> None:
    empty = pa.table({"a": pa.array([], pa.list_(pa.int64()))})
    assert formatting.to_json(empty) == "[]"
    assert formatting.to_csv(empty) == '"a"'


@pytest.mark.parametrize(("months", "days", "nanos", "text"), [
    (0, 0, 0, "00:00:00"),
    (1, 0, 0, "1 month"),
    (14, 1, 0, "1 year 2 months 1 day"),
    (0, 0, 3_600_000_000_000 + 1_000, "01:00:00.000001"),
    (0, -2, -1_000_000_000, "-2 days -00:00:01"),
])
def test_interval_text(months: int, days: int, nanos: int, text: str) -> None:
    assert formatting.interval_text(months, days, nanos) == text


def test_blob_text_escapes_backslashes_and_bytes() -> None:
    assert formatting.blob_text(b"ab\\\x00\x7f") == "ab\\x5C\\x00\\x7F"


def test_unique_names() -> None:
    assert formatting.unique_names(["a", "a", "a_1", "b", "a"]) == ["a", "a_1", "a_1_1", "b",
                                                                    "a_2"]
