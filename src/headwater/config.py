"""Typed configuration: headwater.toml and the common parts of sources and sinks.

Connector-specific settings live with their connector (``headwater.connectors``);
each connector declares a pydantic model chosen by the ``type`` key. All models
forbid unknown keys so a typo is an error that lists the allowed keys.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from headwater.errors import ProjectError, caret_snippet, did_you_mean

_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DuckDBSettings(StrictModel):
    path: str = ".headwater/warehouse.duckdb"
    memory_limit: str | None = None
    threads: int | None = None


class ProjectConfig(StrictModel):
    """``headwater.toml``."""

    name: str
    engine: Literal["duckdb"] = "duckdb"
    dialect: str = "duckdb"
    threads: int | None = Field(default=None, ge=1)
    duckdb: DuckDBSettings = DuckDBSettings()
    description: str = ""


class NodeConfig(StrictModel):
    """Keys every source and sink TOML accepts besides its connector's own."""

    type: str
    description: str = ""
    tags: list[str] = []


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    """Parse a TOML file; a syntax error becomes a ProjectError with line and caret."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProjectError(f"cannot read file: {exc.strerror}", path=path) from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = int(m.group(1)) if m else None
        col = int(m.group(2)) if m else None
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ProjectError(
            f"invalid TOML: {msg}",
            path=path,
            line=line,
            column=col,
            snippet=caret_snippet(text, line, col) if line else None,
            hint="fix the TOML syntax (strings need quotes, tables [name], arrays [a, b])",
        ) from None


def key_line(text: str, key: str) -> int | None:
    """The 1-based line where ``key = ...`` is set in a TOML text, if found."""
    pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=", re.MULTILINE)
    m = pattern.search(text)
    if not m:
        return None
    return text.count("\n", 0, m.start()) + 1


def validate(model: type[StrictModel], data: dict[str, Any], path: Path, text: str) -> Any:
    """Validate ``data`` against ``model``; turn the first problem into a ProjectError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        key = loc[-1] if loc else ""
        dotted = ".".join(loc)
        line = key_line(text, key) if key else None
        if err["type"] == "extra_forbidden":
            owner: type[BaseModel] = model
            for part in loc[:-1]:
                field = owner.model_fields.get(part)
                ann = getattr(field, "annotation", None) if field else None
                if isinstance(ann, type) and issubclass(ann, BaseModel):
                    owner = ann
            allowed = sorted(f.alias or n for n, f in owner.model_fields.items())
            hint = did_you_mean(key, allowed)
            hint = (hint + " " if hint else "") + "allowed keys: " + ", ".join(allowed)
            raise ProjectError(
                f"unknown key {dotted!r}", path=path, line=line, hint=hint
            ) from None
        if err["type"] == "missing":
            raise ProjectError(
                f"missing required key {dotted!r}",
                path=path,
                hint=f"add `{key} = ...` to {path.name}",
            ) from None
        raise ProjectError(
            f"invalid value for {dotted!r}: {err['msg']}",
            path=path,
            line=line,
            hint=f"got {err.get('input')!r}" if "input" in err else None,
        ) from None


def resolve_env(value: str, *, path: Path | None = None, key: str = "") -> str:
    """Replace ``${VAR}`` with the environment's value; a missing variable is an error.

    The resolved value is a secret as far as Headwater is concerned: callers must
    never log it or store it.
    """

    def sub(m: re.Match[str]) -> str:
        var = m.group(1)
        if var not in os.environ:
            raise ProjectError(
                f"environment variable {var} is not set (needed by {key or 'a setting'})",
                path=path,
                hint=f"export {var}=... before running",
            )
        return os.environ[var]

    return _ENV_VAR.sub(sub, value)
