"""Connector lookup by ``type``: built-ins first, then the entry point group.

A third-party package registers a connector class in its ``pyproject.toml``::

    [project.entry-points."headwater.connectors"]
    my_api = "my_package.connector:MyApiSource"
"""

from __future__ import annotations

from importlib.metadata import entry_points

from headwater.connectors.base import SinkConnector, SourceConnector
from headwater.errors import HeadwaterError

ENTRY_POINT_GROUP = "headwater.connectors"

_SOURCES: dict[str, type[SourceConnector]] = {}
_SINKS: dict[str, type[SinkConnector]] = {}
_loaded_entry_points = False


def register(cls: type[SourceConnector] | type[SinkConnector]) -> None:
    if issubclass(cls, SourceConnector):
        _SOURCES[cls.type] = cls
    elif issubclass(cls, SinkConnector):
        _SINKS[cls.type] = cls
    else:  # pragma: no cover - defensive
        raise TypeError(f"{cls!r} is not a connector")


def _load_builtins_and_plugins() -> None:
    global _loaded_entry_points
    if _loaded_entry_points:
        return
    from headwater.connectors import files, http

    register(files.FilesSource)
    register(files.FilesSink)
    # the database connectors import their drivers only when they connect
    from headwater.connectors import mysql, postgres

    register(postgres.PostgresSource)
    register(postgres.PostgresSink)
    register(mysql.MySQLSource)
    register(mysql.MySQLSink)
    register(http.HttpSource)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            register(ep.load())
        except Exception as exc:  # a broken plugin must not break every project
            raise HeadwaterError(
                f"connector plugin {ep.name!r} ({ep.value}) failed to load: {exc}",
                hint="fix or uninstall the package that provides it",
            ) from exc
    _loaded_entry_points = True


def source_types() -> dict[str, type[SourceConnector]]:
    _load_builtins_and_plugins()
    return dict(_SOURCES)


def sink_types() -> dict[str, type[SinkConnector]]:
    _load_builtins_and_plugins()
    return dict(_SINKS)
