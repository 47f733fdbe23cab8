"""Typed configuration: headwater.toml and the common parts of sources and sinks.

Connector-specific settings live with their connector (``headwater.connectors``);
each connector declares a pydantic model chosen by the ``type`` key. All models
forbid unknown keys so a typo is an error that lists the allowed keys.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from headwater.core.cron import check_cron
from headwater.core.timeutil import check_timezone
from headwater.core.urls import check_http_url
from headwater.core.windows import check_window
from headwater.errors import ProjectError, caret_snippet, did_you_mean

_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")



class OpenLineageSettings(BaseModel):
    """``[openlineage]`` in headwater.toml: where run events go.
    """

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    endpoint: str = "api/v1/lineage"
    api_key: str | None = None  # "${VAR}": resolved when sending, never logged or stored
    file: str | None = None
    namespace: str | None = None
    timeout: float = Field(default=5.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        return check_http_url(v)

    @model_validator(mode="after")
    def _somewhere(self) -> OpenLineageSettings:
        if not self.url and not self.file:
            raise ValueError('[openlineage] sends events nowhere: set url = "http://..." (a'
                             ' Marquez or DataHub endpoint) or file = "target/openlineage.ndjson"')
        return self


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DuckDBSettings(StrictModel):
    path: str = ".headwater/warehouse.duckdb"
    memory_limit: str | None = None
    threads: int | None = None


class SparkSettings(StrictModel):
    """``[spark]``: where Spark runs and where it keeps the warehouse."""

    master: str = "local[*]"  # local[N], spark://host:7077, yarn, k8s://...
    remote: str | None = None  # Spark Connect, sc://host:15002 (instead of master)
    warehouse: str = ".headwater/spark-warehouse"  # relative to the project, or absolute
    conf: dict[str, str] = {}  # extra Spark settings, e.g. "spark.driver.memory" = "4g"


def _checked(check: Callable[[Any], Any], kind: str) -> Callable[[Any], Any]:
    """A pydantic validator from a ``check`` raising ValueError; the message is kept as is."""

    def validator(value: Any) -> Any:
        try:
            check(value)
        except ValueError as exc:
            raise PydanticCustomError(kind, "{reason}", {"reason": str(exc)}) from None
        return value

    return validator


def _seconds(value: Any) -> Any:
    from headwater.core.timeutil import parse_seconds

    if isinstance(value, str):
        try:
            return parse_seconds(value)
        except ValueError as exc:
            raise PydanticCustomError("duration", "{reason}", {"reason": str(exc)}) from None
    return value


CronText = Annotated[str, AfterValidator(_checked(check_cron, "cron"))]
TimeZoneName = Annotated[str, AfterValidator(_checked(check_timezone, "timezone"))]
WindowText = Annotated[str, AfterValidator(_checked(check_window, "window"))]
Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]
PositiveSeconds = Annotated[float, BeforeValidator(_seconds), Field(gt=0)]


class ScheduleConfig(StrictModel):
    """One ``[[schedules]]`` entry: when to run what (see ``headwater.schedule``)."""

    cron: CronText
    timezone: TimeZoneName | None = None  # default: the project's `timezone`
    name: str | None = None
    select: str | list[str] | None = None
    exclude: str | list[str] | None = None
    full_refresh: bool = False
    on_overlap: Literal["wait", "skip"] = "wait"
    retries: int | None = Field(default=None, ge=0)
    retry_delay: Seconds | None = None


class NotifyConfig(StrictModel):
    """``[notify]``: a webhook POSTed when a scheduled run fails after its retries."""

    url: Annotated[str, AfterValidator(_checked(check_http_url, "url"))]
    on: list[Literal["failure", "success"]] = ["failure"]
    timeout: Seconds = 10.0
    retries: int = Field(default=3, ge=0)


class RetryPolicy(StrictModel):
    """``[node_retries.NAME]``: one node's own retries, over the project's."""

    retries: int | None = Field(default=None, ge=0)
    retry_delay: Seconds | None = None


class ProjectConfig(StrictModel):
    """``headwater.toml``."""

    name: str
    engine: Literal["duckdb", "spark"] = "duckdb"
    dialect: str = "duckdb"
    threads: int | None = Field(default=None, ge=1)
    duckdb: DuckDBSettings = DuckDBSettings()
    spark: SparkSettings = SparkSettings()
    description: str = ""
    # scheduling (`headwater schedule`): see headwater.schedule for the TOML
    timezone: TimeZoneName = "UTC"  # default zone of schedules and source windows
    schedules: list[ScheduleConfig] = []
    notify: NotifyConfig | None = None
    retries: int = Field(default=0, ge=0)  # re-runs of a failed node (and its downstream)
    retry_delay: Seconds = 60.0  # before the first retry; doubles on each further one
    node_retries: dict[str, RetryPolicy] = {}
    # how long any one node may build ("30m"); a node's own @timeout / node_timeout wins
    node_timeout: PositiveSeconds | None = None
    # OpenLineage run events (Marquez, DataHub ...): see headwater.integrations.openlineage
    openlineage: OpenLineageSettings | None = None
    # environment variables whose values are secrets although neither their names nor
    # where they are used say so (see headwater.core.secrets), e.g. ["WAREHOUSE_DB"]
    secrets: list[str] = []


class NodeConfig(StrictModel):
    """Keys every source and sink TOML accepts besides its connector's own."""

    type: str
    description: str = ""
    tags: list[str] = []


class SourceConfig(NodeConfig):
    """Base of every source connector's config: keys every source accepts."""

    on_schema_change: Literal["evolve", "fail", "ignore"] = "evolve"
    on_bad_rows: Literal["fail", "quarantine"] = "fail"
    retries: int = Field(default=3, ge=0)
    retry_delay: float = Field(default=1.0, ge=0)
    # data quality checks on what was read, e.g. ["not_null(id) on_fail=quarantine"]
    checks: list[str] = []
    # Scheduling (headwater.schedule). Excluded from dumps, hence from the source's
    # fingerprints: when a source may be read does not change what it holds.
    window: WindowText | None = Field(default=None, exclude=True)
    window_timezone: TimeZoneName | None = Field(default=None, exclude=True)
    trigger: Literal["new_data"] | None = Field(default=None, exclude=True)
    poll_interval: Seconds = Field(default=60.0, gt=0, exclude=True)
    # how long one read may take ("10m"); excluded from fingerprints like the window
    node_timeout: PositiveSeconds | None = Field(default=None, exclude=True)

    @property
    def cursor_column(self) -> str | None:
        """The column incremental reads go past (connectors that have one declare a
        ``cursor`` key); None: the source is read whole or by partition."""
        cursor = self.__dict__.get("cursor")
        return cursor if isinstance(cursor, str) else None

    @property
    def declared_columns(self) -> dict[str, str]:
        """Column types the config declares (files: ``columns = {...}``), else none."""
        return {}


class SinkConfig(NodeConfig):
    """Base of every sink connector's config; ``from`` names the node to write."""

    from_: str = Field(alias="from")
    retries: int = Field(default=2, ge=0)
    retry_delay: float = Field(default=1.0, ge=0)
    node_timeout: PositiveSeconds | None = Field(default=None, exclude=True)


def key_position(text: str, key: str) -> tuple[int, int] | tuple[None, None]:
    """1-based (line, column) where ``key = ...`` is set in a TOML text, if found."""
    pattern = re.compile(rf"^([ \t]*)[\"']?{re.escape(key)}[\"']?\s*=", re.MULTILINE)
    m = pattern.search(text)
    if not m:
        return None, None
    return text.count("\n", 0, m.start()) + 1, len(m.group(1)) + 1


def value_position(text: str, key: str) -> tuple[int, int] | tuple[None, None]:
    """1-based (line, column) of the value in ``key = value`` in a TOML text, if found."""
    pattern = re.compile(rf"^[ \t]*[\"']?{re.escape(key)}[\"']?[ \t]*=[ \t]*", re.MULTILINE)
    m = pattern.search(text)
    if not m:
        return None, None
    line_start = text.rfind("\n", 0, m.end()) + 1
    return text.count("\n", 0, m.start()) + 1, m.end() - line_start + 1


def key_line(text: str, key: str) -> int | None:
    """The 1-based line where ``key = ...`` is set in a TOML text, if found."""
    return key_position(text, key)[0]


def validate(model: type[StrictModel], data: dict[str, Any], path: Path, text: str) -> Any:
    """Validate ``data`` against ``model``; turn the most telling problem into a ProjectError.

    An unknown key is reported before a missing one: ``pth = ...`` is a typo of
    ``path``, and "unknown key 'pth', did you mean 'path'?" says so.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
    raise validation_error(model, errors, path, text)


def validation_error(
    model: type[BaseModel], errors: list[Any], path: Path, text: str
) -> ProjectError:
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = [str(p) for p in err["loc"]]
    key = loc[-1] if loc else ""
    dotted = ".".join(loc)
    line, col = key_position(text, key) if key else (None, None)
    snippet = caret_snippet(text, line, col) if line else None
    owner = _owner_model(model, loc[:-1])
    if err["type"] == "extra_forbidden":
        allowed = sorted(f.alias or n for n, f in owner.model_fields.items())
        missing = [str(e["loc"][-1]) for e in errors if e["type"] == "missing" and e["loc"]]
        hint = did_you_mean(key, missing) or did_you_mean(key, allowed)
        hint = (hint + " " if hint else "") + "allowed keys: " + ", ".join(allowed)
        return ProjectError(
            f"unknown key {dotted!r}",
            path=path, line=line, column=col, snippet=snippet, hint=hint,
        )
    if err["type"] == "missing":
        required = sorted(f.alias or n for n, f in owner.model_fields.items() if f.is_required())
        table = f"the [{'.'.join(loc[:-1])}] table of " if len(loc) > 1 else ""
        return ProjectError(
            f"missing required key {dotted!r}",
            path=path,
            hint=f"add `{key} = ...` to {table}{path.name} (required keys: {', '.join(required)})",
        )
    line, col = value_position(text, key) if key else (None, None)
    got = err.get("input")
    # a value that may be a secret is not repeated, not even as the line of the file
    secret = err["type"] == "secret" or key in ("password", "dsn") or "secret" in key
    snippet = caret_snippet(text, line, col) if line and not secret else None
    return ProjectError(
        f"invalid value for {dotted!r}: {err['msg'].removeprefix('Value error, ')}",
        path=path,
        line=line,
        column=col,
        snippet=snippet,
        hint=f"got {got!r}" if "input" in err and not isinstance(got, dict) and not secret
        else None,
    )


def _owner_model(model: type[BaseModel], parents: list[str]) -> type[BaseModel]:
    """The (nested) model that owns the key at ``parents + [key]``."""
    owner = model
    for part in parents:
        field = next(
            (f for n, f in owner.model_fields.items() if part in (n, f.alias)), None
        )
        ann = getattr(field, "annotation", None) if field else None
        # list indices and dict keys have no field: stay on the element's model
        owner = _model_in(ann) or owner
    return owner


def _model_in(ann: Any) -> type[BaseModel] | None:
    """The model inside an annotation: ``M``, ``M | None``, ``list[M]``, ``dict[str, M]``."""
    import typing

    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def resolve_env(value: str, *, path: Path | None = None, key: str = "") -> str:
    """Replace ``${VAR}`` with the environment's value; a missing variable is an error.

    The resolved value is a secret as far as Headwater is concerned: callers must
    never log it or store it.
    """

    from headwater.core import secrets

    def sub(m: re.Match[str]) -> str:
        var = m.group(1)
        if var in os.environ and secrets.is_secret(var, key):
            secrets.learn(var, os.environ[var], where=path.name if path else "")
        if var not in os.environ:
            raise ProjectError(
                f"environment variable {var} is not set (needed by {key or 'a setting'})",
                path=path,
                hint=f"export {var}=... before running",
            )
        return os.environ[var]

    return _ENV_VAR.sub(sub, value)
