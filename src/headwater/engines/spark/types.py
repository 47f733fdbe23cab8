"""Type names between Spark schemas (their JSON form), Arrow and DuckDB.

The Spark engine stores each table's Spark schema as JSON in its catalog. The rest
of Headwater speaks DuckDB type names (schema drift on ingest, the column lists
kept in the state store), so the engine reports Spark types under DuckDB names;
Arrow is how Parquet is written and read outside the JVM.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa

_SIMPLE_TO_DUCK = {
    "long": "BIGINT", "integer": "INTEGER", "short": "SMALLINT", "byte": "TINYINT",
    "double": "DOUBLE", "float": "FLOAT", "string": "VARCHAR", "boolean": "BOOLEAN",
    "date": "DATE", "timestamp_ntz": "TIMESTAMP", "timestamp": "TIMESTAMP WITH TIME ZONE",
    "binary": "BLOB", "void": '"NULL"', "null": '"NULL"',
}
_SIMPLE_TO_ARROW: dict[str, pa.DataType] = {
    "long": pa.int64(), "integer": pa.int32(), "short": pa.int16(), "byte": pa.int8(),
    "double": pa.float64(), "float": pa.float32(), "string": pa.string(),
    "boolean": pa.bool_(), "date": pa.date32(), "timestamp_ntz": pa.timestamp("us"),
    "timestamp": pa.timestamp("us", tz="UTC"), "binary": pa.binary(), "void": pa.null(),
}
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_CHARS = re.compile(r"^(var)?char\(\d+\)$")

# DuckDB types Spark's Parquet reader cannot take, and what they are loaded as instead
_DUCK_FOR_SPARK = {
    "HUGEINT": "DECIMAL(38,0)", "UHUGEINT": "DECIMAL(38,0)", "UBIGINT": "DECIMAL(20,0)",
    "UINTEGER": "BIGINT", "USMALLINT": "INTEGER", "UTINYINT": "SMALLINT",
    "TIMESTAMP_NS": "TIMESTAMP", "TIMESTAMP_MS": "TIMESTAMP", "TIMESTAMP_S": "TIMESTAMP",
    "TIME": "VARCHAR", "TIME WITH TIME ZONE": "VARCHAR", "INTERVAL": "VARCHAR",
    "UUID": "VARCHAR", "JSON": "VARCHAR", "BIT": "VARCHAR", '"NULL"': "VARCHAR",
    "NULL": "VARCHAR",
}


def duck_name(spark_type: Any) -> str:
    """A DuckDB type name for a Spark type in its JSON form (``"long"``, ``{"type": ...}``)."""
    if isinstance(spark_type, str):
        if spark_type in _SIMPLE_TO_DUCK:
            return _SIMPLE_TO_DUCK[spark_type]
        m = _DECIMAL.match(spark_type)
        if m:
            return f"DECIMAL({m.group(1)},{m.group(2)})"
        if _CHARS.match(spark_type):
            return "VARCHAR"
        return spark_type.upper()
    kind = spark_type.get("type")
    if kind == "array":
        return duck_name(spark_type["elementType"]) + "[]"
    if kind == "map":
        return f"MAP({duck_name(spark_type['keyType'])}, {duck_name(spark_type['valueType'])})"
    if kind == "struct":
        inner = ", ".join(f'"{f["name"]}" {duck_name(f["type"])}' for f in spark_type["fields"])
        return f"STRUCT({inner})"
    return str(kind).upper()


def arrow_type(spark_type: Any) -> pa.DataType:
    """The Arrow type a Spark type (JSON form) is read as from Parquet."""
    if isinstance(spark_type, str):
        if spark_type in _SIMPLE_TO_ARROW:
            return _SIMPLE_TO_ARROW[spark_type]
        m = _DECIMAL.match(spark_type)
        if m:
            return pa.decimal128(int(m.group(1)), int(m.group(2)))
        if _CHARS.match(spark_type):
            return pa.string()
        raise TypeError(f"no Arrow type for Spark type {spark_type!r}")
    kind = spark_type.get("type")
    if kind == "array":
        return pa.list_(arrow_type(spark_type["elementType"]))
    if kind == "map":
        return pa.map_(arrow_type(spark_type["keyType"]), arrow_type(spark_type["valueType"]))
    if kind == "struct":
        return pa.struct([pa.field(f["name"], arrow_type(f["type"]))
                          for f in spark_type["fields"]])
    raise TypeError(f"no Arrow type for Spark type {kind!r}")


def arrow_schema(schema_json: dict[str, Any]) -> pa.Schema:
    return pa.schema([pa.field(f["name"], arrow_type(f["type"])) for f in schema_json["fields"]])


def spark_type(t: pa.DataType) -> Any:
    """The Spark type (JSON form) of an Arrow type as written to Parquet by Headwater."""
    if pa.types.is_dictionary(t):
        return spark_type(t.value_type)
    simple = [
        (pa.types.is_boolean, "boolean"), (pa.types.is_int8, "byte"),
        (pa.types.is_int16, "short"), (pa.types.is_int32, "integer"),
        (pa.types.is_int64, "long"), (pa.types.is_uint8, "short"),
        (pa.types.is_uint16, "integer"), (pa.types.is_uint32, "long"),
        (pa.types.is_float16, "float"), (pa.types.is_float32, "float"),
        (pa.types.is_float64, "double"), (pa.types.is_date, "date"),
        (pa.types.is_null, "string"),
    ]
    for test, name in simple:
        if test(t):
            return name
    if pa.types.is_uint64(t):
        return "decimal(20,0)"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary"
    if pa.types.is_timestamp(t):
        return "timestamp" if t.tz else "timestamp_ntz"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return {"type": "array", "elementType": spark_type(t.value_type), "containsNull": True}
    if pa.types.is_map(t):
        return {"type": "map", "keyType": spark_type(t.key_type),
                "valueType": spark_type(t.item_type), "valueContainsNull": True}
    if pa.types.is_struct(t):
        return {"type": "struct", "fields": [_field(t.field(i).name, t.field(i).type)
                                              for i in range(t.num_fields)]}
    return "string"  # time, duration, intervals: carried as text


def _field(name: str, t: pa.DataType) -> dict[str, Any]:
    return {"name": name, "type": spark_type(t), "nullable": True, "metadata": {}}


def schema_json(schema: pa.Schema) -> dict[str, Any]:
    """A Spark schema (JSON form) for an Arrow schema."""
    return {"type": "struct", "fields": [_field(f.name, f.type) for f in schema]}


def spark_compatible(table: pa.Table) -> pa.Table:
    """Cast an Arrow table to types Spark's Parquet reader takes (micros, no unsigned...)."""
    target = arrow_schema(schema_json(table.schema))
    if target == table.schema:
        return table
    columns = []
    for col, field in zip(table.columns, target, strict=True):
        if col.type == field.type:
            columns.append(col)
        elif pa.types.is_dictionary(col.type):
            columns.append(col.cast(col.type.value_type).cast(field.type))
        elif field.type == pa.string() and not pa.types.is_string(col.type) and not (
                pa.types.is_large_string(col.type) or pa.types.is_null(col.type)):
            columns.append(pa.array([None if v is None else str(v) for v in col.to_pylist()],
                                    pa.string()))
        else:
            columns.append(col.cast(field.type, safe=False))
    return pa.Table.from_arrays(columns, schema=target)


def duck_for_spark(duck_type: str) -> str:
    """The DuckDB type a column is loaded as so that Spark can read it from Parquet."""
    upper = duck_type.upper()
    if upper in _DUCK_FOR_SPARK:
        return _DUCK_FOR_SPARK[upper]
    if upper.startswith("ENUM("):
        return "VARCHAR"
    return duck_type
