"""The engine interface the runner talks to.

An engine stores physical tables in an internal schema, builds them from SQL
(already rewritten to point at physical upstreams and transpiled to the
engine's dialect) or from Arrow, publishes them under public names as views,
and answers read-only queries. Arrow is the interchange with connectors and
Python transforms.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

# re-exported: connectors and third-party engines import quoting from here
from headwater.core.quoting import quote_ident as quote_ident
from headwater.core.quoting import quote_literal as quote_literal

if TYPE_CHECKING:
    import pyarrow as pa

    from headwater.core.nodes import SqlNode

INTERNAL_SCHEMA = "_hw"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # partition key of rows whose value is NULL
HIDDEN_PREFIX = "_hw_"  # bookkeeping columns transforms and views do not see
PARTITION_COLUMN = "_hw_file"  # hidden: the file (partition) a source row came from
META_SCHEMA = "_hw_meta"  # bookkeeping that must commit with the data (windows, partitions)
DEFAULT_ENV = "prod"


def public_schema(env: str) -> str:
    """The schema an environment publishes its views in: ``main`` for prod."""
    return "main" if env == DEFAULT_ENV else env


@dataclass
class TableStats:
    rows: int
    content_fp: str
    columns: list[tuple[str, str]]


@dataclass(frozen=True)
class Capabilities:
    """What an engine does beyond the abstract interface: callers ask this record, never
    probe for attributes. Each flag names the base method it enables, whose default
    otherwise does nothing or raises.

    >>> DuckDBEngine.capabilities.versioned_rows  # doctest: +SKIP
    True
    """

    # in-place tables keep row versions: each row is stamped with the version that added
    # it, replaced rows move to an archive, snapshots are views (headwater.engines.versioning)
    versioned_rows: bool = False
    # ``snapshot_table`` freezes a table's current version cheaply (Spark: a copy of its
    # segment list): in-place tables are versioned that way instead
    snapshots: bool = False
    # keeps additive per-window/per-file sums in ``_hw_meta.window_stats``
    # (headwater.engines.window_stats); may depend on the warehouse (an older one has none)
    window_stats: bool = False
    # ``interrupt`` stops the queries in progress from another thread
    interrupt: bool = False
    # the frame type (headwater.run.frames kind) Python transforms get from ``frame``
    # without a round trip through Arrow: "duckdb" (a relation), "spark" (a DataFrame)
    frame: str | None = None
    # ``build_frame`` takes such a frame back as a transform's result
    builds_frames: bool = False


class Engine(ABC):
    """One warehouse. Methods may be called from worker threads."""

    name: ClassVar[str]
    dialect: ClassVar[str]  # sqlglot dialect the engine executes
    # what it can do (an engine may set its own per instance, e.g. after ``open``)
    capabilities: Capabilities = Capabilities()
    # the file (or catalog file) the warehouse lives in; None: not on this machine
    path: Path | None = None

    @abstractmethod
    def open(self, *, read_only: bool = False) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def interrupt_thread(self, ident: int) -> None:  # noqa: B027 - optional, no-op default
        """Stop the queries thread ``ident`` is running (its node ran past its timeout)."""

    def interrupt(self) -> None:  # noqa: B027 - optional (capabilities.interrupt)
        """Stop the queries in progress on every connection (called from another thread)."""

    def snapshot_table(self, physical: str, name: str) -> None:
        """Make ``name`` an immutable copy of ``physical``'s current version
        (``capabilities.snapshots``)."""
        raise NotImplementedError(f"the {self.name} engine cannot snapshot tables")

    def frame(self, physical: str) -> Any:
        """A physical table as the engine's own frame type (``capabilities.frame``)."""
        raise NotImplementedError(f"the {self.name} engine has no native frames")

    def build_frame(self, physical: str, frame: Any) -> None:
        """Create ``physical`` from a native frame (``capabilities.builds_frames``)."""
        raise NotImplementedError(f"the {self.name} engine cannot build from frames")

    @cached_property
    def version_heads(self) -> dict[str, int | None]:
        """Newest version of each base table this engine (one writing process) has read or
        written (headwater.engines.versioning): asked for again and again within a run,
        changed only by this process's commits."""
        return {}

    def preflight(self, nodes: Sequence[SqlNode], dialect: str) -> None:  # noqa: B027
        """Before a run: raise a ProjectError (file, line, construct) for SQL this engine
        cannot run, so nothing runs. Default: every engine runs what DuckDB runs."""

    def release_thread(self) -> None:  # noqa: B027 - optional, no-op default
        """Close the calling thread's connections: the thread will not be used again."""

    @abstractmethod
    def physical_tables(self) -> set[str]:
        """Names of every physical table/view in the internal schema."""

    def physical_ref_sql(self, physical: str) -> str | None:
        """:meth:`physical_ref` as SQL text in the engine's dialect, for filling a
        :class:`~headwater.load.sql.RenderTemplate`; None: render with sqlglot."""
        return None

    @abstractmethod
    def physical_ref(self, physical: str) -> Any:
        """A sqlglot expression (table or subquery) reading a physical table as transforms
        see it: without hidden ``_hw_*`` bookkeeping columns."""

    @abstractmethod
    def build_sql(self, physical: str, select_sql: str, *, view: bool = False) -> None:
        """Create ``physical`` from a SELECT, atomically: complete or absent."""

    @abstractmethod
    def build_arrow(self, physical: str, data: pa.RecordBatchReader | pa.Table) -> None:
        """Create ``physical`` from Arrow data, atomically."""

    @abstractmethod
    def load_arrow(
        self,
        physical: str,
        data: pa.RecordBatchReader,
        projection: list[tuple[str, str | None, str]],
        *,
        append: bool,
        stage_hook: Callable[[str], None] | None = None,
        before: Callable[[], None] | None = None,
        after: Callable[[], None] | None = None,
        version: int | None = None,
    ) -> None:
        """Create (or, with ``append``, insert into) ``physical`` from Arrow data in one
        transaction. ``projection`` lists (column, input column or None for NULL, type);
        appends add columns the table lacks. ``stage_hook(staging_table)`` runs inside
        the transaction on the incoming rows before they are written (checks);
        ``before``/``after`` run inside it too (partition bookkeeping). ``version``:
        the rows are stamped with it (``headwater.engines.versioning``)."""

    @abstractmethod
    def exists(self, physical: str) -> bool: ...

    @abstractmethod
    def columns(self, physical: str) -> list[tuple[str, str]]:
        """(name, engine type) of each column."""

    @abstractmethod
    def arrow_columns(self, schema: pa.Schema) -> list[tuple[str, str]]:
        """(name, engine type) that an Arrow schema becomes in this engine."""

    @abstractmethod
    def max_value(self, physical: str, column: str) -> Any:
        """``max(column)`` of a physical table (the committed cursor of a source)."""

    @abstractmethod
    def stats(self, physical: str) -> TableStats:
        """Row count, order-independent content fingerprint and columns."""

    @abstractmethod
    def read(self, physical: str) -> pa.Table:
        """A physical table's rows as Arrow."""

    @abstractmethod
    def reader(
        self, physical: str, where: tuple[str, str] | None = None
    ) -> pa.RecordBatchReader:
        """A physical table's rows as a stream of Arrow batches; ``where`` =
        (column, value as text) keeps one partition."""

    @abstractmethod
    def partition_fingerprints(self, physical: str, column: str) -> dict[str, str]:
        """Each distinct value of ``column`` (as text) -> content fingerprint of its rows."""

    @abstractmethod
    def publish(self, env: str, name: str, physical: str) -> None:
        """Point the public name at ``physical`` (an atomic view swap)."""

    @abstractmethod
    def unpublish(self, env: str, name: str) -> None: ...

    def shown(self, env: str) -> dict[str, str] | None:
        """Public name -> the physical table it shows now, for ``env`` (None: unknown)."""
        return None

    @abstractmethod
    def drop_physical(self, physical: str) -> None: ...

    @abstractmethod
    def swap_in(self, staging: str, physical: str) -> None:
        """Replace ``physical`` by ``staging`` (renamed to it) in one transaction."""

    @abstractmethod
    def query(self, sql: str, limit: int | None = None) -> pa.Table:
        """Run a read-only query against the published tables."""

    @abstractmethod
    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        """Run one statement written in DuckDB's dialect (transpiled if the engine differs)."""

    @abstractmethod
    def fetch(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of one query written in DuckDB's dialect."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """Everything inside commits together or not at all."""

    def native(self) -> Any:
        """The engine's own handle (a DuckDB connection, a SparkSession), for Python transforms."""
        return None
