"""The Spark engine's bookkeeping (``_hw_meta.*``): rows of its catalog, changed in Python.

The bookkeeping tables are tiny and live in the warehouse catalog
(:mod:`headwater.engines.spark.catalog`), as lists of text values (NULL as None), so
the engine's bookkeeping methods read and change those rows directly: no SQL, no
Spark job. Changes made inside ``engine.transaction()`` commit with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from headwater.engines.spark.catalog import Catalog

Row = list[Any]


def rows(catalog: Catalog, table: str, keep: Callable[[Row], bool]) -> list[Row]:
    return [r for r in catalog.meta_rows(table) if keep(r)]


def remove(catalog: Catalog, table: str, gone: Callable[[Row], bool]) -> None:
    """Delete the rows ``gone`` selects."""
    doomed = rows(catalog, table, gone)
    if doomed:
        catalog.change_meta_rows(table, doomed, [])


def add(catalog: Catalog, table: str, new: Iterable[Iterable[Any]]) -> None:
    """Insert rows; values are kept as text, as the tables' columns are."""
    added = [[None if v is None else str(v) for v in row] for row in new]
    if added:
        catalog.change_meta_rows(table, [], added)


def window_marks(catalog: Catalog, physical: str, prefix: str) -> dict[str, str]:
    return {str(r[1]): str(r[2]) for r in rows(
        catalog, "windows", lambda r: r[0] == physical and str(r[1]).startswith(prefix))}


def forget_window_marks(catalog: Catalog, physical: str, labels: Iterable[str] | None,
                        prefix: str) -> None:
    chosen = None if labels is None else set(labels)
    remove(catalog, "windows", lambda r: r[0] == physical
           and (chosen is None or r[1] in chosen) and str(r[1]).startswith(prefix))


def partitions(catalog: Catalog, physical: str) -> dict[str, str]:
    return {str(r[1]): str(r[2]) for r in rows(catalog, "partitions",
                                                lambda r: r[0] == physical)}


def partition_columns(catalog: Catalog, physical: str) -> list[tuple[str, str | None]]:
    """Each part with its columns (a LEFT JOIN of ``partitions`` and ``part_columns``)."""
    columns: dict[str, list[str | None]] = {}
    for r in rows(catalog, "part_columns", lambda r: r[0] == physical):
        columns.setdefault(str(r[1]), []).append(r[2])
    return [(str(r[1]), cols) for r in rows(catalog, "partitions", lambda r: r[0] == physical)
            for cols in columns.get(str(r[1]), [None])]


def forget_partitions(catalog: Catalog, physical: str, parts: Iterable[str] | None) -> None:
    chosen = None if parts is None else set(parts)
    for table in ("partitions", "part_columns"):
        remove(catalog, table, lambda r: r[0] == physical and (chosen is None or r[1] in chosen))


def version_head(catalog: Catalog, base: str) -> int | None:
    found = [int(r[1]) for r in rows(catalog, "versions", lambda r: r[0] == base)
             if r[1] is not None]
    return max(found) if found else None


def version_left_out(catalog: Catalog, base: str, version: int) -> str | None:
    for r in rows(catalog, "versions", lambda r: r[0] == base and r[1] is not None
                  and int(r[1]) == int(version)):
        return str(r[4]) if r[4] else None
    return None


def record_version(catalog: Catalog, base: str, version: int, snapshot: str,
                   left_out: str | None) -> None:
    with catalog.transaction():
        remove(catalog, "versions", lambda r: r[0] == base and r[1] is not None
               and int(r[1]) == int(version))
        add(catalog, "versions", [[base, int(version), snapshot, None, left_out]])
