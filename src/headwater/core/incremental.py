"""Incremental transforms: the annotation syntax and what each run must process.

A SQL transform declares itself incremental in its leading comment:

``-- @incremental: by day day from ts``
    Time windows. The output column ``day`` is cut into ``day`` windows (grain:
    ``hour``, ``day``, ``month``); each upstream that has the column ``ts`` (the
    ``from`` part; default: the output column's name) is read only for the
    windows being processed; upstreams without it (dimension tables) are read
    whole. A window is processed when the content of its input rows changed
    (a new file, a re-delivered file, late rows) or vanished; its old output
    rows are replaced. Results equal a full rebuild for any window-local query.

``-- @incremental: append by id``
    Rows whose ``id`` is past the largest ``id`` already in the output are
    computed and appended (inputs that have ``id`` are filtered by it).

``-- @incremental: merge order_id by updated_at``
    Rows past the largest ``updated_at`` are computed and merged on the key
    (``order_id``; several keys separated by commas): existing rows with the
    same key are replaced.

``-- @lookback: 2 day`` (or ``-- @lookback: 2`` windows) also reprocesses the
last windows (``by``) or the last span before the cursor (``append``/``merge``)
on every run, for late data.

A change of the node's code, or of any upstream's code, rebuilds it from
scratch into a new physical table; ``--full-refresh`` does too.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

GRAINS = ("hour", "day", "month")

_BY = re.compile(r"^by\s+(\w+)\s+(\w+)(?:\s+from\s+(\w+))?$", re.IGNORECASE)
_APPEND = re.compile(r"^append\s+by\s+(\w+)$", re.IGNORECASE)
_MERGE = re.compile(r"^merge\s+([\w\s,]+?)\s+by\s+(\w+)$", re.IGNORECASE)
_LOOKBACK = re.compile(r"^(\d+)(?:\s+(hour|day|month)s?)?$", re.IGNORECASE)

SYNTAX = ("by <column> <hour|day|month> [from <input column>] | append by <column> | "
          "merge <key>[, <key>] by <column>")


@dataclass(frozen=True)
class IncrementalSpec:
    strategy: str  # window | append | merge
    column: str
    grain: str | None = None
    source_column: str | None = None
    key: tuple[str, ...] = ()

    @property
    def input_column(self) -> str:
        return self.source_column or self.column

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["key"] = list(self.key)
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IncrementalSpec:
        return cls(**{**data, "key": tuple(data.get("key", ()))})

    def describe(self) -> str:
        if self.strategy == "window":
            src = f" from {self.source_column}" if self.source_column else ""
            return f"by {self.column} {self.grain}{src}"
        if self.strategy == "append":
            return f"append by {self.column}"
        return f"merge {', '.join(self.key)} by {self.column}"


def parse_incremental(value: str) -> IncrementalSpec:
    """Parse the text after ``@incremental:``; ValueError with the accepted syntax."""
    text = " ".join(value.split())
    m = _BY.match(text)
    if m:
        col, grain, src = m.groups()
        if grain.lower() not in GRAINS:
            raise ValueError(f"unknown grain {grain!r}: use one of {', '.join(GRAINS)}")
        return IncrementalSpec("window", col, grain.lower(), src)
    m = _APPEND.match(text)
    if m:
        return IncrementalSpec("append", m.group(1))
    m = _MERGE.match(text)
    if m:
        keys = tuple(k.strip() for k in m.group(1).split(",") if k.strip())
        return IncrementalSpec("merge", m.group(2), key=keys)
    raise ValueError(f"cannot read @incremental: {value!r}; expected {SYNTAX}")


def parse_lookback(value: str) -> dict[str, Any]:
    """``2 day`` -> {"n": 2, "grain": "day"}; ``3`` -> {"n": 3, "grain": None} (windows)."""
    m = _LOOKBACK.match(" ".join(value.split()))
    if not m:
        raise ValueError(f"cannot read @lookback: {value!r}; expected e.g. '2 day' or '3'")
    return {"n": int(m.group(1)), "grain": (m.group(2) or "").lower() or None}


def window_label_sql(column_sql: str, grain: str) -> str:
    """SQL giving a window's canonical label (text) for a column value."""
    fmt = {"hour": "%Y-%m-%dT%H", "day": "%Y-%m-%d", "month": "%Y-%m"}[grain]
    return f"strftime(date_trunc('{grain}', {column_sql})::TIMESTAMP, '{fmt}')"


def interval_sql(n: int, grain: str) -> str:
    return f"INTERVAL {int(n)} {grain.upper()}"
