"""The connector interface: sources give Arrow record batches, sinks take them.

A connector is a small class with a pydantic ``Config`` chosen by the ``type``
key of ``sources/NAME.toml`` or ``sinks/NAME.toml``. Built-in connectors are
registered here; third-party ones through the ``headwater.connectors`` entry
point group (see ``headwater.connectors.registry``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from headwater.config import NodeConfig

if TYPE_CHECKING:
    import pyarrow as pa


class SourceConfig(NodeConfig):
    """Base of every source connector's config."""


class SinkConfig(NodeConfig):
    """Base of every sink connector's config; ``from`` names the node to write."""

    from_: str = Field(alias="from")


class SourceConnector(ABC):
    """Reads one source. Instances are cheap; nothing connects before ``read``."""

    Config: ClassVar[type[SourceConfig]]
    type: ClassVar[str]

    def __init__(self, name: str, config: SourceConfig, root: Path, config_path: Path) -> None:
        self.name = name
        self.config = config
        self.root = root
        self.config_path = config_path
        # path -> (size, mtime_ns, digest), kept in the state store between runs
        self.hash_cache: dict[str, tuple[int, int, str]] | None = None

    @abstractmethod
    def data_fingerprint(self) -> str:
        """A cheap marker that changes whenever the source's data changes."""

    @abstractmethod
    def read(self) -> pa.RecordBatchReader:
        """All of the source's rows as a stream of Arrow record batches."""

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
    def write(self, data: pa.RecordBatchReader) -> int:
        """Write every batch; return the number of rows written. All or nothing."""
