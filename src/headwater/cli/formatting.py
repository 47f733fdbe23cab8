"""Query results as text: a terminal table, CSV or JSON, for every Arrow type.

Nested values keep their shape: in JSON, lists are arrays and structs and maps are
objects (map keys as text); in a table cell or a CSV field they are written as compact
JSON, so ``[1, 2]`` or ``{"a": 1}`` can be read back by a program. Decimals keep every
digit (JSON numbers, not floats); NaN and infinities, which JSON cannot hold, are
``null`` in JSON; blobs are shown as DuckDB shows them (``\\x00\\xFF``), intervals as
``1 month 2 days 03:04:05``. Columns with the same name stay apart (JSON renames the
later ones ``a_1``, ``a_2`` as DuckDB does).

For example ``SELECT [1, 2] AS l, MAP {'k': 1} AS m`` prints, with ``--format json``::

    [
      {"l": [1, 2], "m": {"k": 1}}
    ]
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from rich.console import Console


def plain(value: Any, kind: pa.DataType) -> Any:
    """``value`` (as pyarrow's ``to_pylist`` gives it for ``kind``) as JSON-able Python:
    None, bool, int, float, Decimal, str, list and dict (string keys)."""
    if value is None:
        return None
    t = pa.types
    if t.is_list(kind) or t.is_large_list(kind) or t.is_fixed_size_list(kind) or (
            hasattr(t, "is_list_view") and (t.is_list_view(kind) or t.is_large_list_view(kind))):
        return [plain(v, kind.value_type) for v in value]
    if t.is_map(kind):
        return {_key(k, kind.key_type): plain(v, kind.item_type) for k, v in value}
    if t.is_struct(kind):
        return {kind.field(i).name: plain(value.get(kind.field(i).name), kind.field(i).type)
                for i in range(kind.num_fields)}
    if t.is_dictionary(kind):
        return plain(value, kind.value_type)
    if t.is_union(kind):
        return _untyped(value)
    if t.is_floating(kind):
        return float(value) if math.isfinite(value) else None
    return _scalar(value)


def _key(value: Any, kind: pa.DataType) -> str:
    out = plain(value, kind)
    return out if isinstance(out, str) else json_text(out)


def _scalar(value: Any) -> Any:
    if isinstance(value, bool | int | str | Decimal):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes | bytearray | memoryview):
        return blob_text(bytes(value))
    if isinstance(value, datetime | date | time):
        return str(value)
    if isinstance(value, timedelta):
        return str(value)
    if type(value).__name__ == "MonthDayNano":
        return interval_text(value.months, value.days, value.nanoseconds)
    return str(value)


def _untyped(value: Any) -> Any:
    """A union member's value, whose type pyarrow does not give along."""
    if isinstance(value, dict):
        return {str(k): _untyped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untyped(v) for v in value]
    return _scalar(value)


def blob_text(raw: bytes) -> str:
    """DuckDB's text for a BLOB: printable ASCII as is, every other byte as ``\\xHH``."""
    return "".join(chr(b) if 32 <= b < 127 and b != 92 else f"\\x{b:02X}" for b in raw)


def interval_text(months: int, days: int, nanoseconds: int) -> str:
    """DuckDB's text for an INTERVAL: ``1 year 2 months 3 days 04:05:06.5``."""
    parts = []
    years, months = divmod(months, 12) if months >= 0 else (-((-months) // 12), -((-months) % 12))
    for n, unit in ((years, "year"), (months, "month"), (days, "day")):
        if n:
            parts.append(f"{n} {unit}{'' if abs(n) == 1 else 's'}")
    if nanoseconds or not parts:
        sign = "-" if nanoseconds < 0 else ""
        micros = abs(nanoseconds) // 1000
        secs, micro = divmod(micros, 1_000_000)
        hours, rest = divmod(secs, 3600)
        clock = f"{sign}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
        if micro:
            clock += f".{micro:06d}".rstrip("0")
        parts.append(clock)
    return " ".join(parts)


def json_text(value: Any) -> str:
    """Compact JSON of a :func:`plain` value; decimals keep every digit."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else "null"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(json_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)}: {json_text(v)}"
                               for k, v in value.items()) + "}"
    return json.dumps(str(value), ensure_ascii=False)


def columns(data: pa.Table) -> Iterator[tuple[pa.Field, list[Any]]]:
    """Each column's field and its values as :func:`plain` Python, duplicates kept."""
    for i, field in enumerate(data.schema):
        kind = field.type
        yield field, [plain(v, kind) for v in data.column(i).to_pylist()]


def unique_names(names: list[str]) -> list[str]:
    """``a, a, b`` -> ``a, a_1, b`` (as DuckDB names the columns of a relation)."""
    seen: set[str] = set()
    out = []
    for name in names:
        new, n = name, 0
        while new in seen:
            n += 1
            new = f"{name}_{n}"
        seen.add(new)
        out.append(new)
    return out


def to_json(data: pa.Table) -> str:
    """A JSON array with one object per row, one row per line."""
    names = [json.dumps(n, ensure_ascii=False)
             for n in unique_names([f.name for f in data.schema])]
    cols = [values for _, values in columns(data)]
    if not data.num_rows:
        return "[]"
    rows = ("{" + ", ".join(f"{n}: {json_text(c[r])}" for n, c in zip(names, cols, strict=True))
            + "}" for r in range(data.num_rows))
    return "[\n  " + ",\n  ".join(rows) + "\n]"


def cell_text(value: Any, *, null: str = "NULL") -> str:
    """A :func:`plain` value as one table cell or CSV field."""
    if value is None:
        return null
    if isinstance(value, list | dict):
        return json_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _needs_text(kind: pa.DataType) -> bool:
    t = pa.types
    return bool(t.is_nested(kind) or t.is_binary(kind) or t.is_large_binary(kind)
                or t.is_fixed_size_binary(kind) or t.is_interval(kind) or t.is_dictionary(kind)
                or t.is_duration(kind) or t.is_null(kind))


def to_csv(data: pa.Table) -> str:
    """CSV with a header line: strings quoted, NULL empty, nested values as JSON text."""
    import pyarrow.csv as pacsv

    arrays = []
    for i, field in enumerate(data.schema):
        col = data.column(i)
        if _needs_text(field.type):
            texts = [None if v is None else cell_text(plain(v, field.type))
                     for v in col.to_pylist()]
            arrays.append(pa.chunked_array([pa.array(texts, pa.string())]))
        else:
            arrays.append(col)
    text_table = pa.Table.from_arrays(arrays, names=[f.name for f in data.schema])
    buf = io.BytesIO()
    pacsv.write_csv(text_table, buf)
    return buf.getvalue().decode("utf-8").rstrip("\n")


def type_name(kind: pa.DataType) -> str:
    """A short name for a column type: ``int32[]``, ``map(string, int64)``, ``struct``."""
    t = pa.types
    if t.is_fixed_size_list(kind):
        return f"{type_name(kind.value_type)}[{kind.list_size}]"
    if t.is_list(kind) or t.is_large_list(kind):
        return f"{type_name(kind.value_type)}[]"
    if t.is_map(kind):
        return f"map({type_name(kind.key_type)}, {type_name(kind.item_type)})"
    if t.is_struct(kind):
        return "struct"
    if t.is_union(kind):
        return "union"
    if t.is_decimal(kind):
        return f"decimal({kind.precision},{kind.scale})"
    if t.is_date(kind):
        return "date"
    if t.is_time(kind):
        return "time"
    if t.is_interval(kind):
        return "interval"
    if t.is_dictionary(kind):
        return type_name(kind.value_type)
    return str(kind)


def print_table(console: Console, data: pa.Table, title: str | None = None) -> None:
    """A rich table: the column name over its type; cells as text, never as markup."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title) if title else None, title_justify="left")
    cols = list(columns(data))
    for field, _ in cols:
        header = Text(field.name)
        header.append("\n" + type_name(field.type), style="dim")
        table.add_column(header, overflow="fold")
    for r in range(data.num_rows):
        table.add_row(*(Text(cell_text(values[r])) for _, values in cols))
    console.print(table)
    console.print(Text(f"{data.num_rows} rows", style="dim"))
