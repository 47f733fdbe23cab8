"""Connector lookup by ``type``: built-ins first, then the entry point group.

A third-party package registers a connector class in its ``pyproject.toml``::

    [project.entry-points."headwater.connectors"]
    my_api = "my_package.connector:MyApiSource"
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.connectors.base import SinkConnector, SourceConnector
from headwater.errors import HeadwaterError

if TYPE_CHECKING:
    from headwater.core.nodes import SinkNode, SourceNode

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


# built-ins are imported when a project uses them (a project of files never loads the
# database connectors); a plugin cannot take a built-in's type name
_BUILTIN_SOURCES = {
    "files": ("headwater.connectors.files.source", "FilesSource"),
    "http": ("headwater.connectors.http", "HttpSource"),
    "postgres": ("headwater.connectors.sql.postgres", "PostgresSource"),
    "mysql": ("headwater.connectors.sql.mysql", "MySQLSource"),
}
_BUILTIN_SINKS = {
    "files": ("headwater.connectors.files.sink", "FilesSink"),
    "postgres": ("headwater.connectors.sql.postgres", "PostgresSink"),
    "mysql": ("headwater.connectors.sql.mysql", "MySQLSink"),
}


def _load_plugins() -> None:
    global _loaded_entry_points
    if _loaded_entry_points:
        return
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _BUILTIN_SOURCES or ep.name in _BUILTIN_SINKS:
            continue
        try:
            register(ep.load())
        except Exception as exc:  # a broken plugin must not break every project
            raise HeadwaterError(
                f"connector plugin {ep.name!r} ({ep.value}) failed to load: {exc}",
                hint="fix or uninstall the package that provides it",
            ) from exc
    _loaded_entry_points = True


class _Types(Mapping[str, Any]):
    """Connector classes by type name, imported on first use."""

    def __init__(self, builtins: dict[str, tuple[str, str]], registered: dict[str, Any]):
        self._builtins = builtins
        self._registered = registered

    def __getitem__(self, kind: str) -> Any:
        if kind in self._builtins:
            module, name = self._builtins[kind]
            if kind not in self._registered:
                register(getattr(importlib.import_module(module), name))
            return self._registered[kind]
        if kind not in self._registered:
            _load_plugins()
        return self._registered[kind]

    def __contains__(self, kind: object) -> bool:
        if kind in self._builtins or kind in self._registered:
            return True
        _load_plugins()
        return kind in self._registered

    def __iter__(self) -> Iterator[str]:
        _load_plugins()
        return iter(sorted({*self._builtins, *self._registered}))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def source_types() -> Mapping[str, type[SourceConnector]]:
    return _Types(_BUILTIN_SOURCES, _SOURCES)


def sink_types() -> Mapping[str, type[SinkConnector]]:
    return _Types(_BUILTIN_SINKS, _SINKS)


def source_connector(node: SourceNode, root: Path) -> SourceConnector:
    """A connector reading source ``node`` (cheap: nothing connects before a read)."""
    return source_types()[node.config.type](node.name, node.config, root, node.path)


def sink_connector(node: SinkNode, root: Path) -> SinkConnector:
    """A connector writing sink ``node``."""
    return sink_types()[node.config.type](node.name, node.config, root, node.path)
