"""Helpers for the Spark tests: order-independent content checksums, project copies.

Checksums of a project's published tables:
Engines differ in types (DECIMAL vs DOUBLE, BIGINT vs HUGEINT) and float noise,
never in content: values are normalised (numbers rounded to 6 decimals,
timestamps as ISO text) and the sorted rows hashed, per table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa


def normalise(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and abs(value) >= 2**53:
        return str(value)
    if isinstance(value, int | float | Decimal):
        number = round(float(value), 6)
        return f"{number + 0.0:.6f}"  # + 0.0: -0.0 and 0.0 are one value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ",".join(normalise(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{normalise(v)}" for k, v in sorted(value.items())) + "}"
    return str(value)


def table_checksum(table: pa.Table) -> str:
    names = sorted(table.column_names)
    rows = sorted(
        "\x1f".join(normalise(row[n]) for n in names) for row in table.to_pylist()
    )
    digest = hashlib.sha256("\x1e".join(names).encode())
    for row in rows:
        digest.update(b"\x1e" + row.encode())
    return f"{table.num_rows}:{digest.hexdigest()[:16]}"


def project_checksums(project: Any) -> dict[str, str]:
    """``{table: checksum}`` for every published table of a ``headwater.Project``."""
    out = {}
    for name, node in sorted(project.loaded.nodes.items()):
        if node.is_table:
            out[name] = table_checksum(project.table(name))
    return out


def copy_project(src: Path, dest: Path, *, engine: str | None = None) -> Path:
    """Copy a project (without its state); ``engine`` rewrites headwater.toml's engine."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".headwater"))
    if engine is not None:
        toml = dest / "headwater.toml"
        lines = [ln for ln in toml.read_text().splitlines() if not ln.startswith("engine")]
        toml.write_text("\n".join([lines[0], f'engine = "{engine}"', *lines[1:]]) + "\n")
    return dest


def _is_float(t: pa.DataType) -> bool:
    return pa.types.is_floating(t) or pa.types.is_decimal(t)


def _tie_flip(x: Any, y: Any) -> bool:
    """Two ROUND results one unit apart: the same value summed in another order, landing
    on either side of a rounding tie (floating-point addition is not associative)."""
    if x is None or y is None:
        return False
    a, b = float(x), float(y)
    for digits in range(0, 7):
        unit = 10.0 ** -digits
        if abs(abs(a - b) - unit) < unit * 1e-6 and round(a, digits) == a \
                and round(b, digits) == b:
            return True
    return False


def table_differences(a: pa.Table, b: pa.Table) -> list[str]:
    """How two tables' contents differ; [] when equal.

    Exact, except that a float column may differ by one rounding unit in a few rows:
    a float aggregate (SUM, AVG) adds its values in whatever order the engine meets
    them, and where ROUND lands exactly on a tie, that order picks the side.
    """
    if table_checksum(a) == table_checksum(b):
        return []
    names = sorted(a.column_names)
    if names != sorted(b.column_names) or a.num_rows != b.num_rows:
        return [f"columns {names} / {sorted(b.column_names)}, rows {a.num_rows} / {b.num_rows}"]
    floats = [n for n in names if _is_float(a.schema.field(n).type)
              or _is_float(b.schema.field(n).type)]
    keys = [n for n in names if n not in floats]

    def ordered(t: pa.Table) -> list[dict[str, Any]]:
        return sorted(t.to_pylist(), key=lambda r: ([normalise(r[k]) for k in keys],
                                                    [normalise(r[f]) for f in floats]))

    problems, flips = [], 0
    for ra, rb in zip(ordered(a), ordered(b), strict=True):
        if [normalise(ra[k]) for k in keys] != [normalise(rb[k]) for k in keys]:
            problems.append(f"row {ra} / {rb}")
            continue
        for f in floats:
            if normalise(ra[f]) != normalise(rb[f]):
                if _tie_flip(ra[f], rb[f]):
                    flips += 1
                else:
                    problems.append(f"{f}: {ra[f]} / {rb[f]} in {ra}")
    if flips > max(2, a.num_rows // 50):
        problems.append(f"{flips} rounding-tie differences in {a.num_rows} rows")
    return problems[:5]


def project_differences(a: Any, b: Any) -> dict[str, list[str]]:
    """``{table: differences}`` between two ``headwater.Project``s' published tables."""
    out = {}
    for name, node in sorted(a.loaded.nodes.items()):
        if node.is_table:
            problems = table_differences(a.table(name), b.table(name))
            if problems:
                out[name] = problems
    return out
