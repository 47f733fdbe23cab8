"""Converting between Arrow and the frame types Python transforms ask for.

The parameter annotation (as written in the source) chooses the type:
``pyarrow.Table`` (also the default), ``polars.DataFrame``, ``pandas.DataFrame``
or a DuckDB relation. A transform may return any of these.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa


def frame_kind(annotation: str | None) -> str:
    a = (annotation or "").replace(" ", "")
    if not a:
        return "arrow"
    if "polars" in a or a.startswith("pl."):
        return "polars"
    if "pandas" in a or a.startswith("pd."):
        return "pandas"
    if "DuckDBPyRelation" in a or a.startswith("duckdb."):
        return "duckdb"
    if "pyspark" in a or "SparkDataFrame" in a:
        return "spark"
    return "arrow"


def to_frame(table: pa.Table, kind: str) -> Any:
    if kind == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if kind == "pandas":
        return table.to_pandas()
    return table


def to_arrow(value: Any) -> pa.Table | pa.RecordBatchReader | None:
    """Arrow from whatever a transform returned; None when the type is not supported."""
    if isinstance(value, pa.Table | pa.RecordBatchReader):
        return value
    if isinstance(value, pa.RecordBatch):
        return pa.Table.from_batches([value])
    module = type(value).__module__.split(".")[0]
    if module == "polars":
        if type(value).__name__ == "LazyFrame":
            value = value.collect()
        return value.to_arrow()  # type: ignore[no-any-return,unused-ignore]
    if module == "pandas":
        return pa.Table.from_pandas(value, preserve_index=False)
    if module in ("duckdb", "_duckdb"):
        return value.to_arrow_table()  # type: ignore[no-any-return,unused-ignore]
    if hasattr(value, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(value)
    return None
