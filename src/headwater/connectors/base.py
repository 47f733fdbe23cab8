"""The connector interface: sources give Arrow record batches, sinks take them.

A connector is a small class with a pydantic ``Config`` chosen by the ``type``
key of ``sources/NAME.toml`` or ``sinks/NAME.toml``. Built-in connectors are
registered here; third-party ones through the ``headwater.connectors`` entry
point group (see ``headwater.connectors.registry``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from headwater.core.config import SinkConfig, SourceConfig

__all__ = ["SinkConfig", "SinkConnector", "SourceConfig", "SourceConnector"]

if TYPE_CHECKING:
    import pyarrow as pa

    from headwater.connectors.filecache import FileDigests
    from headwater.engines.base import Engine


class SourceConnector(ABC):
    """Reads one source. Instances are cheap; nothing connects before ``read``."""

    Config: ClassVar[type[SourceConfig]]
    type: ClassVar[str]
    # partitioned connectors (files) list their partitions with content digests and can
    # read some of them, each row tagged with its partition: ingestion then touches only
    # new, changed and vanished partitions
    partitioned: ClassVar[bool] = False
    # connectors that retry each request themselves are not retried again as a whole
    retries_inside: ClassVar[bool] = False

    def __init__(self, name: str, config: SourceConfig, root: Path, config_path: Path) -> None:
        self.name = name
        self.config = config
        self.root = root
        self.config_path = config_path
        # file digests kept in the state store between runs (see connectors.filecache)
        self.hash_cache: FileDigests | None = None

    @abstractmethod
    def data_fingerprint(self) -> str:
        """A cheap marker that changes whenever the source's data changes."""

    @abstractmethod
    def read(self, since: Any | None = None) -> pa.RecordBatchReader:
        """The source's rows as a stream of Arrow record batches.

        With ``since`` (the last committed cursor value), only rows whose
        ``cursor_column`` is greater. Must stream: never the whole source in memory.
        A failure that may pass on a retry raises ``ConnectorError(transient=True)``.
        """

    @property
    def cursor_column(self) -> str | None:
        """The column that makes this source incremental, or None for full loads."""
        return self.config.cursor_column

    def partitions(self) -> list[tuple[str, str]]:
        """(partition key, content digest) pairs, for ``partitioned`` connectors."""
        raise NotImplementedError

    @property
    def keeps_vanished(self) -> bool:
        """Whether the rows of a partition that disappeared stay loaded (partitioned
        connectors; default: they go, as a clean build would have them)."""
        return False

    def rejects(self) -> pa.Table | None:
        """Rows the last ``read`` could not parse (``on_bad_rows = "quarantine"``).

        Columns: ``location`` (file:line, row number, URL ...), ``reason``, ``raw``.
        """
        return None

    def describe(self) -> dict[str, object]:
        """Configuration safe to show (no secrets): used by plan, docs, UI."""
        return self.config.model_dump(exclude={"description", "tags"})


class SinkConnector(ABC):
    """Writes one node's table somewhere outside the warehouse."""

    Config: ClassVar[type[SinkConfig]]
    type: ClassVar[str]

    def __init__(self, name: str, config: SinkConfig, root: Path, config_path: Path) -> None:
        self.name = name
        self.config = config
        self.root = root
        self.config_path = config_path

    @abstractmethod
    def write(self, data: SinkInput) -> SinkResult:
        """Write the node's table; all or nothing. A retryable failure raises
        ``ConnectorError(transient=True)``."""


@dataclass
class SinkResult:
    rows: int
    # for partition-wise (sync) sinks: partition value -> content fingerprint written
    partitions: dict[str, str] | None = None


@dataclass
class SinkInput:
    """What a sink gets: the built table, read through the engine, and its last write."""

    engine: Engine
    physical: str
    node: str
    previous_partitions: dict[str, str] = field(default_factory=dict)

    def reader(self) -> pa.RecordBatchReader:
        return self.engine.reader(self.physical)

    @property
    def schema(self) -> pa.Schema:
        return self.reader().schema

    def partition_fingerprints(self, column: str) -> dict[str, str]:
        """Every value of ``column`` (as text) with the content fingerprint of its rows."""
        return self.engine.partition_fingerprints(self.physical, column)

    def partition_reader(self, column: str, value: str) -> pa.RecordBatchReader:
        """The rows whose ``column`` (as text) equals ``value``."""
        return self.engine.reader(self.physical, where=(column, value))
