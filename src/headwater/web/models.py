"""The JSON API's shapes: FastAPI turns these into the OpenAPI document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["fresh", "stale", "running", "failed", "deferred"]


class ErrorBody(BaseModel):
    error: str = Field(description="What went wrong, in one line.")
    hint: str | None = Field(default=None, description="What to do about it.")
    detail: list[dict[str, Any]] | None = Field(
        default=None, description="For invalid requests: every problem, where it is.")


class RunNode(BaseModel):
    """One node of a recorded run."""

    run_id: str | None = None
    node: str | None = None
    kind: str | None = None
    status: str | None = Field(default=None, description="executed | skipped | failed")
    reason: str | None = None
    rows: int | None = None
    seconds: float | None = None
    started_at: str | None = None
    ended_at: str | None = None
    error: str | None = None


class LiveNode(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    kind: str | None = None
    action: str | None = None
    reason: str | None = None
    state: str | None = Field(default=None,
                              description="pending | queued | running | done | skipped | failed")
    started_at: str | None = None
    ended_at: str | None = None
    rows: int | None = None
    seconds: float | None = None
    error: str | None = None


class LiveRun(BaseModel):
    """A run this server started: in progress, or the last one."""

    run_id: str | None
    env: str
    status: str = Field(description="planning | running | success | failed | error")
    select: str | None
    exclude: str | None
    full_refresh: bool
    requested_at: str
    error: str | None
    hint: str | None
    nodes: list[LiveNode]


class Info(BaseModel):
    name: str
    env: str
    version: str
    token_required: bool = Field(description="API requests need the server's token.")
    run: LiveRun | None


class GraphNode(BaseModel):
    name: str
    kind: str
    status: Status
    reason: str
    action: str | None
    description: str
    tags: list[str]
    upstream: list[str]
    rows: int | None
    last_run: RunNode | None
    x: float
    y: float
    w: float
    h: float


class GraphEdge(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    d: str = Field(description="SVG path of the edge.")


class Graph(BaseModel):
    name: str
    env: str
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    width: float
    height: float
    counts: dict[str, int]
    run: LiveRun | None


class Code(BaseModel):
    language: str
    text: str
    html: str = Field(description="The code highlighted by Pygments (HTML spans).")


class ConfigItem(BaseModel):
    key: str
    value: str = Field(description="As written in the TOML: ${VAR} references unresolved.")


class ColumnInput(BaseModel):
    node: str
    column: str
    transform: str
    exact: bool


class ColumnInfo(BaseModel):
    name: str
    type: str | None
    description: str
    expression: str | None
    exact: bool
    inputs: list[ColumnInput]


class CheckInfo(BaseModel):
    name: str | None
    severity: str | None
    status: str | None
    failing_rows: int | None
    at: str | None
    error: str | None


class TableInfo(BaseModel):
    physical: str | None
    published_at: str | None
    rows: int | None
    built_at: str | None


class NodeDetail(BaseModel):
    name: str
    kind: str
    status: Status
    reason: str
    action: str | None
    description: str
    path: str
    tags: list[str]
    owner: str | None
    materialized: str | None
    upstream: list[str]
    downstream: list[str]
    code: Code
    config: list[ConfigItem]
    columns: list[ColumnInfo]
    lineage_svg: str = Field(description="The column lineage picture (SVG), empty when unknown.")
    lineage_notes: list[str]
    checks: list[CheckInfo]
    table: TableInfo | None
    history: list[RunNode]


class PreviewColumn(BaseModel):
    name: str
    type: str


class Preview(BaseModel):
    name: str
    env: str
    columns: list[PreviewColumn]
    rows: list[list[Any]]
    limit: int
    truncated: bool


class RunSummary(BaseModel):
    run_id: str
    env: str
    status: str
    started_at: str
    ended_at: str | None
    selection: str | None
    seconds: float | None
    counts: dict[str, int]


class RunDetail(RunSummary):
    nodes: list[RunNode]


class PlanNode(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    kind: str
    action: str
    reason: str


class PlanBody(BaseModel):
    env: str
    nodes: list[PlanNode]


class SessionRequest(BaseModel):
    """The server's token, traded for a session cookie (the browser UI's way in)."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=500, description="The server's token.")


class Session(BaseModel):
    token_required: bool = Field(description="Whether this server has a token at all.")


class RunRequest(BaseModel):
    """What to run; nothing selected runs the whole project."""

    model_config = ConfigDict(extra="forbid")

    select: str | None = Field(default=None, max_length=2000,
                               description="Selection, as `headwater run --select`: NAME, +NAME, "
                               "NAME+, tag:T, kind:K, several separated by spaces or commas.",
                               examples=["+device_health_daily"])
    exclude: str | None = Field(default=None, max_length=2000,
                                description="Nodes to leave out (same syntax).")
    full_refresh: bool = Field(default=False, description="Rebuild even if unchanged.")
