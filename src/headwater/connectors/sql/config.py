"""The config keys every database connector (``postgres``, ``mysql``) accepts.

- :class:`ConnectionKeys`: where the server is (``dsn`` and/or separate keys), the
  password only ever as a ``${VAR}`` reference;
- :class:`SourceKeys`: ``table`` or ``query``, ``cursor``, ``chunk_rows``;
- :class:`SinkKeys`: ``table``, ``mode``, ``key``, ``partition_by``;
- :class:`SqlSourceConfig` / :class:`SqlSinkConfig`: the whole config of a database
  source or sink; a dialect adds its own connection keys and names its ``dialect``,
  which decides how ``table`` is read (``"a.b"``, quoting with ``"`` or `````)::

      class PostgresSourceConfig(SqlSourceConfig, PostgresConnectionKeys):
          type: Literal["postgres"] = "postgres"
          dialect = "postgres"
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError
from pydantic_core.core_schema import ValidationInfo

from headwater.connectors.base import SinkConfig, SourceConfig
from headwater.connectors.sql.common import table_ref
from headwater.core.config import StrictModel


class ConnectionKeys(StrictModel):
    """Where the server is: a ``dsn`` and/or separate keys (keys win over the dsn).

    Every value may contain ``${ENV_VAR}`` references, resolved only when
    connecting; the password should always come from one.
    """

    dsn: str | None = None
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    user: str | None = None
    password: str | None = None
    database: str | None = None
    connect_timeout: int = Field(default=10, ge=1)

    @field_validator("password")
    @classmethod
    def _password_from_env(cls, v: str | None) -> str | None:
        if v and not _WHOLE_ENV_REF.fullmatch(v):
            raise PydanticCustomError(
                "secret", 'the password must name an environment variable, not hold the secret:'
                ' write password = "${DB_PASSWORD}" and export DB_PASSWORD; secrets never go in'
                " project files")
        return v

    @field_validator("dsn")
    @classmethod
    def _dsn_password_from_env(cls, v: str | None) -> str | None:
        pw = _dsn_password(v or "")
        if pw and not _WHOLE_ENV_REF.fullmatch(pw):
            raise PydanticCustomError(
                "secret", "the dsn holds a password: write it as ${VAR} (dsn ="
                ' "scheme://user:${DB_PASSWORD}@host/db") and export DB_PASSWORD; secrets never'
                " go in project files")
        return v


_WHOLE_ENV_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


def _dsn_password(dsn: str) -> str | None:
    """The password written in a dsn (URL user-info or ``password=``), as written."""
    m = re.match(r"\s*[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:([^@\s]*)@", dsn)
    if m:
        return m.group(1)
    m = re.search(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", dsn, re.IGNORECASE)
    return m.group(1).strip("'") if m else None


def check_table_name(value: str | None, dialect: str) -> str | None:
    """``value`` if it reads as ``[schema.]table`` in ``dialect``, else a ValueError
    that says how to quote it."""
    if value is None:
        return None
    if not value.strip():
        raise ValueError("the table name is empty")
    try:
        table_ref(value, dialect)
    except Exception:
        q = "`" if dialect == "mysql" else '"'
        raise ValueError(
            f"cannot read {value!r} as a table name; write schema.table and quote parts "
            f"that hold dots or quotes with {q} (e.g. {q}my.table{q})"
        ) from None
    return value


class SourceKeys(StrictModel):
    """``table`` or ``query`` (exactly one), optional ``cursor``, ``chunk_rows``."""

    table: str | None = None
    query: str | None = Field(default=None, validate_default=True)
    cursor: str | None = None
    chunk_rows: int = Field(default=100_000, ge=1)

    @field_validator("query")
    @classmethod
    def _one_of_table_or_query(cls, v: str | None, info: ValidationInfo) -> str | None:
        table = info.data.get("table")
        if v is not None and table is not None:
            raise ValueError("set either `table` or `query`, not both")
        if v is None and table is None and "table" in info.data:
            raise ValueError('set `table = "schema.name"` or `query = "SELECT ..."`')
        if v is not None and not v.strip().rstrip(";").strip():
            raise ValueError("the query is empty")
        return v


class SinkKeys(StrictModel):
    """``table``, ``mode``, ``key`` (upsert), ``partition_by`` (sync)."""

    table: str
    mode: Literal["replace", "append", "upsert", "sync"] = "replace"
    key: list[str] = Field(default=[], validate_default=True)
    partition_by: str | None = Field(default=None, validate_default=True)

    @field_validator("key", mode="before")
    @classmethod
    def _key_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("key")
    @classmethod
    def _key_for_upsert(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("mode") == "upsert" and not v:
            raise ValueError('mode = "upsert" needs the key columns: key = ["id"]')
        if len(set(v)) != len(v):
            raise ValueError("a key column is listed twice")
        return v

    @field_validator("partition_by")
    @classmethod
    def _partition_for_sync(cls, v: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("mode") == "sync" and not v:
            raise ValueError('mode = "sync" needs the partition column: partition_by = "day"')
        return v


class SqlSourceConfig(SourceConfig, ConnectionKeys, SourceKeys):
    """A database source's config; ``dialect`` (sqlglot's name) reads ``table``."""

    dialect: ClassVar[str]

    @field_validator("table")
    @classmethod
    def _table_name(cls, v: str | None) -> str | None:
        return check_table_name(v, cls.dialect)


class SqlSinkConfig(SinkConfig, ConnectionKeys, SinkKeys):
    """A database sink's config; ``dialect`` (sqlglot's name) reads ``table``."""

    dialect: ClassVar[str]

    @field_validator("table")
    @classmethod
    def _table_name(cls, v: str) -> str:
        check_table_name(v, cls.dialect)
        return v
