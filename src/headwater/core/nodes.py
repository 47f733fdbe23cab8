"""The typed nodes a project is made of: sources, SQL and Python transforms, sinks.

Immutable definitions (like Dagster's ``AssetSpec`` records): the loader makes them and
nothing changes them afterwards; a changed definition is a new record
(``dataclasses.replace``). Checks, incremental specs and connector configuration are
typed fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from headwater.core.checks import CheckSpec
from headwater.core.config import SinkConfig, SourceConfig
from headwater.core.incremental import IncrementalSpec

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


@dataclass(frozen=True)
class CustomCheck:
    """A ``checks/NAME.sql`` file: a SELECT returning failing rows."""

    name: str
    path: Path
    sql: str
    refs: tuple[str, ...]
    severity: str = "error"
    description: str = ""


@dataclass(frozen=True)
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
    checks: tuple[CheckSpec, ...] = ()
    # checks/*.sql files that run with this node (the last, in build order, they read)
    custom_checks: tuple[CustomCheck, ...] = ()
    incremental: IncrementalSpec | None = None
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


@dataclass(frozen=True)
class SourceNode(Node):
    # the connector's own pydantic model (its ``type`` names the connector class, which
    # ``LoadedProject.source_connector`` instantiates)
    config: SourceConfig = field(kw_only=True)


@dataclass(frozen=True)
class SqlNode(Node):
    sql: str = ""  # the SELECT as written (comments included)
    annotations: dict[str, Any] = field(default_factory=dict)  # ``-- @key: value`` lines
    template: RenderTemplate | None = None  # the SELECT in DuckDB's dialect, refs as slots


@dataclass(frozen=True)
class PythonNode(Node):
    function: str = ""
    params: tuple[str, ...] = ()
    param_types: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SinkNode(Node):
    config: SinkConfig = field(kw_only=True)


SLOT = "__hw_ref_{}__"


@dataclass(frozen=True)
class RenderTemplate:
    """A transform's SELECT rendered once (at parse time, cached with the analysis) with
    a slot where each node reference goes: a run fills the slots with physical table
    SQL by plain text substitution, without parsing the SQL again (or importing sqlglot)."""

    sql: str
    names: tuple[str, ...]  # slot i holds the reference to names[i]
    dialect: str  # of ``sql``

    def to_json(self) -> list[Any]:
        return [self.sql, list(self.names), self.dialect]

    @classmethod
    def from_json(cls, data: list[Any]) -> RenderTemplate:
        return cls(data[0], tuple(data[1]), data[2])

    def fill(self, tables: dict[str, str]) -> str | None:
        """The SQL with every slot replaced by ``tables[name]`` (SQL text); None when a
        name has no table (then render with :func:`render_for_engine`)."""
        if not set(self.names) <= set(tables):
            return None
        out = self.sql
        for i, name in enumerate(self.names):
            out = out.replace(SLOT.format(i), tables[name])
        return out
