"""The typed nodes a project is made of: sources, SQL and Python transforms, sinks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

NodeKind = Literal["source", "sql", "python", "sink"]

# Annotations a transform may set in its leading comment (`-- @key: value`).
ANNOTATION_KEYS = (
    "tags", "materialized", "owner", "incremental", "lookback", "check", "severity", "timeout",
)
REPEATABLE_KEYS = ("check",)


@dataclass(frozen=True)
class Ref:
    """A table reference inside a transform, with where it was written."""

    name: str
    line: int | None = None
    column: int | None = None


@dataclass
class Node:
    """One vertex of the project graph.

    ``code_fp`` fingerprints what the node does (normalised code plus config) and
    ignores formatting and comments; upstream and data fingerprints are combined
    with it during planning.
    """

    name: str
    kind: NodeKind
    path: Path
    description: str = ""
    tags: tuple[str, ...] = ()
    refs: tuple[Ref, ...] = ()
    code_fp: str = ""
    materialized: Literal["table", "view"] = "table"
    meta: dict[str, Any] = field(default_factory=dict)
    checks: tuple[Any, ...] = ()  # headwater.core.checks.CheckSpec
    incremental: Any = None  # headwater.core.incremental.IncrementalSpec
    lookback: dict[str, Any] | None = None
    # seconds a build may take before it is stopped (@timeout, node_timeout); None: no limit
    timeout: float | None = None

    @property
    def upstream(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.name for r in self.refs))

    @property
    def is_table(self) -> bool:
        """Sources and transforms produce a table; sinks do not."""
        return self.kind != "sink"


@dataclass
class SourceNode(Node):
    config: Any = None  # the connector's pydantic model


@dataclass
class SqlNode(Node):
    sql: str = ""  # the SELECT as written (comments included)


@dataclass
class PythonNode(Node):
    function: str = ""
    params: tuple[str, ...] = ()
    param_types: dict[str, str] = field(default_factory=dict)


@dataclass
class SinkNode(Node):
    config: Any = None


@dataclass
class CustomCheck:
    """A ``checks/NAME.sql`` file: a SELECT returning failing rows."""

    name: str
    path: Path
    sql: str
    refs: tuple[str, ...]
    severity: str = "error"
    description: str = ""
