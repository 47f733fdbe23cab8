"""The engine interface the runner talks to.

An engine stores physical tables in an internal schema, builds them from SQL
(already rewritten to point at physical upstreams and transpiled to the
engine's dialect) or from Arrow, publishes them under public names as views,
and answers read-only queries. Arrow is the interchange with connectors and
Python transforms.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

# re-exported: connectors and third-party engines import quoting from here
from headwater.core.quoting import quote_ident as quote_ident
from headwater.core.quoting import quote_literal as quote_literal
from headwater.engines.names import DEFAULT_ENV as DEFAULT_ENV
from headwater.engines.names import HIDDEN_PREFIX as HIDDEN_PREFIX
from headwater.engines.names import INTERNAL_SCHEMA as INTERNAL_SCHEMA
from headwater.engines.names import META_SCHEMA as META_SCHEMA
from headwater.engines.names import NULL_PARTITION as NULL_PARTITION
from headwater.engines.names import PARTITION_COLUMN as PARTITION_COLUMN

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

    from headwater.core.nodes import SqlNode

# the shared names (headwater.engines.names) are re-exported from here for every caller


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

    def warm_up(self) -> None:  # noqa: B027 - optional, no-op default
        """A run is about to build nodes: prepare what builds need (imports, caches) in
        the background. Not called for runs that build nothing."""

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

    # -- statements built as sqlglot trees ---------------------------------------------
    # The trees say what DuckDB means (headwater.engines.statements); the defaults below
    # render them in the engine's dialect and run the text; an engine may run the trees
    # themselves (Spark) or keep its bookkeeping another way. Methods copy the trees
    # they are given (callers reuse conditions); execute_expr/fetch_expr take theirs.

    def execute_expr(self, statement: exp.Expr) -> None:
        """Run one statement built as a sqlglot tree (the engine may change the tree)."""
        self.execute(statement.sql(dialect=self.dialect, copy=False))

    def fetch_expr(self, query: exp.Expr) -> list[tuple[Any, ...]]:
        """Rows of one query built as a sqlglot tree (the engine may change the tree)."""
        return self.fetch(query.sql(dialect=self.dialect, copy=False))

    def create_table_as(self, target: exp.Table, query: str | exp.Query, *,
                        temp: bool = False) -> None:
        """``CREATE OR REPLACE [TEMP] TABLE target AS query``; ``query`` as text is a
        transform's SELECT in DuckDB's dialect, used as it is."""
        if isinstance(query, str):
            kind = "TEMP TABLE" if temp else "TABLE"
            self.execute(f"CREATE OR REPLACE {kind} {target.sql(dialect=self.dialect)} AS {query}")
            return
        from sqlglot import exp

        props = exp.Properties(expressions=[exp.TemporaryProperty()]) if temp else None
        self.execute_expr(exp.Create(this=target.copy(), kind="TABLE", replace=True,
                                     expression=query.copy(), properties=props))

    def insert_by_name(self, target: exp.Table, query: str | exp.Query) -> None:
        """Append the rows of ``query`` to ``target``, columns matched by name."""
        if isinstance(query, str):
            self.execute(f"INSERT INTO {target.sql(dialect=self.dialect)} BY NAME {query}")
            return
        from headwater.engines import statements as st

        self.execute_expr(st.insert_query(target.copy(), query.copy(), by_name=True))

    def delete_rows(self, target: exp.Table, where: exp.Expr | None = None) -> None:
        """Delete the rows of ``target`` matching ``where`` (None: every row)."""
        from headwater.engines import statements as st

        self.execute_expr(st.delete(target.copy(), where.copy() if where is not None else None))

    def drop_table(self, target: exp.Table, *, if_exists: bool = True) -> None:
        from sqlglot import exp

        self.execute_expr(exp.Drop(tables=[target.copy()], kind="TABLE", exists=if_exists))

    def add_column(self, target: exp.Table, column: str, type_sql: str, *,
                   default: exp.Expr | None = None) -> None:
        """Add a column of type ``type_sql`` (as :meth:`columns` writes types)."""
        from sqlglot import exp

        from headwater.engines import statements as st

        constraints = [exp.ColumnConstraint(kind=exp.DefaultColumnConstraint(
            this=default.copy()))] if default is not None else []
        definition = exp.ColumnDef(this=exp.to_identifier(column, quoted=True),
                                   kind=st.dtype(type_sql), constraints=constraints)
        self.execute_expr(exp.Alter(this=target.copy(), kind="TABLE", actions=[definition]))

    def count_rows(self, source: exp.Expr, where: exp.Expr | None = None) -> int:
        """``count(*)`` of a table (or subquery) among the rows matching ``where``."""
        from headwater.engines import statements as st

        query = st.select(st.count_star(), from_=source.copy(),
                          where=where.copy() if where is not None else None)
        return int(self.fetch_expr(query)[0][0])

    # -- bookkeeping in _hw_meta, committed with the rows it describes --------------------
    # ``windows``: per incremental node, a fingerprint per label (a window it built, or
    # an input it read); ``partitions`` (+ ``part_columns``): per in-place source, the
    # parts it holds (files, cursor ranges) with their digests (and columns);
    # ``versions``: the versions of in-place tables (headwater.engines.versioning);
    # ``window_stats``: additive sums (headwater.engines.window_stats).
    # Each statement of these has a fixed shape: its tree is built and rendered once per
    # engine, values bound as parameters (a run makes about a hundred of them).

    @cached_property
    def _statements(self) -> dict[tuple[Any, ...], str]:
        return {}

    def _prepared(self, shape: tuple[Any, ...], build: Callable[[], exp.Expr]) -> str:
        """The SQL text of the statement of ``shape`` (values as ``?``), rendered once."""
        sql = self._statements.get(shape)
        if sql is None:
            sql = self._statements[shape] = build().sql(dialect=self.dialect, copy=False)
        return sql

    def _insert_rows(self, table: str, rows: Sequence[Sequence[Any]],
                     columns: Sequence[str] | None = None) -> None:
        from headwater.engines import statements as st

        def build(n: int, width: int) -> exp.Expr:
            return st.insert_values(st.meta(table), [[st.param() for _ in range(width)]
                                                     for _ in range(n)], columns)

        for i in range(0, len(rows), 1000):
            chunk = rows[i:i + 1000]
            n, width = len(chunk), len(chunk[0])
            sql = self._prepared(("insert", table, n, width, tuple(columns or ())),
                                 lambda: build(n, width))  # noqa: B023 - called right here
            self.execute(sql, [v for row in chunk for v in row])

    def window_marks(self, physical: str, prefix: str = "") -> dict[str, str]:
        """Label -> fingerprint kept for ``physical`` (labels starting with ``prefix``)."""
        from headwater.engines import statements as st

        sql = self._prepared(("window_marks", bool(prefix)), lambda: st.select(
            st.col("label"), st.col("fp"), from_=st.meta("windows"), where=st.all_of(
                st.eq("physical", st.param()),
                st.starts_with("label", st.param()) if prefix else None)))
        return dict(self.fetch(sql, [physical, prefix] if prefix else [physical]))

    def forget_window_marks(self, physical: str, labels: Iterable[str] | None = None, *,
                            prefix: str = "") -> None:
        """Drop the marks of ``physical``: those of ``labels`` / starting with ``prefix``
        (neither: all)."""
        from headwater.engines import statements as st

        listed = None if labels is None else list(labels)
        sql = self._prepared(
            ("forget_window_marks", None if listed is None else len(listed), bool(prefix)),
            lambda: st.delete(st.meta("windows"), st.all_of(
                st.eq("physical", st.param()),
                st.is_in("label", _params(len(listed))) if listed is not None else None,
                st.starts_with("label", st.param()) if prefix else None)))
        self.execute(sql, [physical, *(listed or ()), *([prefix] if prefix else [])])

    def record_window_marks(self, physical: str, marks: Iterable[tuple[str, str]]) -> None:
        """Add (label, fingerprint) marks of ``physical``."""
        rows = [(physical, label, fp) for label, fp in marks]
        if rows:
            self._insert_rows("windows", rows)

    def partitions(self, physical: str) -> dict[str, str]:
        """Part -> digest of each part (file, cursor range) an in-place source holds."""
        from headwater.engines import statements as st

        sql = self._prepared(("partitions",), lambda: st.select(
            st.col("part"), st.col("digest"), from_=st.meta("partitions"),
            where=st.eq("physical", st.param())))
        return dict(self.fetch(sql, [physical]))

    def partition_columns(self, physical: str) -> list[tuple[str, str | None]]:
        """Each part of ``physical`` with the columns it has (JSON; None: not known)."""
        def build() -> exp.Expr:
            from sqlglot import exp

            from headwater.engines import statements as st

            p = exp.alias_(st.meta("partitions"), "p", copy=False)
            c = exp.alias_(st.meta("part_columns"), "c", copy=False)
            on = exp.and_(
                exp.EQ(this=st.col("physical", "c"), expression=st.col("physical", "p")),
                exp.EQ(this=st.col("part", "c"), expression=st.col("part", "p")), copy=False)
            query = st.select(st.col("part", "p"), st.col("cols", "c"), from_=p,
                              where=st.eq(st.col("physical", "p"), st.param()))
            return query.join(c, on=on, join_type="LEFT", copy=False)

        rows = self.fetch(self._prepared(("partition_columns",), build), [physical])
        return [(str(part), cols) for part, cols in rows]

    def forget_partitions(self, physical: str, parts: Iterable[str] | None = None) -> None:
        """Drop what is kept of some parts of ``physical`` (None: all of them)."""
        from headwater.engines import statements as st

        listed = None if parts is None else list(parts)
        if listed is not None and not listed:
            return
        for name in ("partitions", "part_columns"):
            def build(name: str = name) -> exp.Expr:
                return st.delete(st.meta(name), st.all_of(
                    st.eq("physical", st.param()),
                    st.is_in("part", _params(len(listed))) if listed is not None else None))

            sql = self._prepared(
                ("forget_partitions", name, None if listed is None else len(listed)), build)
            self.execute(sql, [physical, *(listed or ())])

    def record_partitions(self, physical: str,
                          parts: Iterable[tuple[str, str, str | None]]) -> None:
        """Add (part, digest, columns as JSON or None) records of ``physical``."""
        listed = list(parts)
        if listed:
            self._insert_rows("partitions", [(physical, part, digest)
                                             for part, digest, _ in listed])
        known = [(physical, part, cols) for part, _, cols in listed if cols is not None]
        if known:
            self._insert_rows("part_columns", known)

    def version_head(self, base: str) -> int | None:
        """The newest recorded version of ``base`` (None: never versioned)."""
        def build() -> exp.Expr:
            from sqlglot import exp

            from headwater.engines import statements as st

            newest = exp.Max(this=st.cast(st.col("version"), "BIGINT"))
            return st.select(newest, from_=st.meta("versions"),
                             where=st.eq("base", st.param()))

        rows = self.fetch(self._prepared(("version_head",), build), [base])
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def version_left_out(self, base: str, version: int) -> str | None:
        """The columns (JSON) version ``version`` of ``base`` leaves out, if recorded."""
        from headwater.engines import statements as st

        sql = self._prepared(("version_left_out",), lambda: st.select(
            st.col("left_out"), from_=st.meta("versions"), where=st.all_of(
                st.eq("base", st.param()),
                st.eq(st.cast(st.col("version"), "BIGINT"), st.param()))))
        rows = self.fetch(sql, [base, int(version)])
        return str(rows[0][0]) if rows and rows[0][0] else None

    def record_version(self, base: str, version: int, snapshot: str,
                       left_out: str | None = None) -> None:
        """Record (or re-record) version ``version`` of ``base`` and its snapshot."""
        from headwater.engines import statements as st

        sql = self._prepared(("forget_version",), lambda: st.delete(
            st.meta("versions"), st.all_of(st.eq("base", st.param()),
                                           st.eq("version", st.param()))))
        self.execute(sql, [base, int(version)])
        self._insert_rows("versions", [(base, int(version), snapshot, left_out)],
                          columns=["base", "version", "snapshot", "left_out"])

    def forget_versions(self, base: str) -> None:
        from headwater.engines import statements as st

        sql = self._prepared(("forget_versions",), lambda: st.delete(
            st.meta("versions"), st.eq("base", st.param())))
        self.execute(sql, [base])

    def window_sums(self, physical: str, key: str,
                    part: str | None = None) -> list[tuple[str, str, int, int]]:
        """(part, label, rows, sum of row hashes) kept under ``key`` (of one ``part``)."""
        from headwater.engines import statements as st

        sql = self._prepared(("window_sums", part is None), lambda: st.select(
            *(st.col(c) for c in ("part", "label", "rows", "total")),
            from_=st.meta("window_stats"), where=st.all_of(
                st.eq("physical", st.param()), st.eq("key", st.param()),
                st.eq("part", st.param()) if part is not None else None)))
        rows = self.fetch(sql, [physical, key] + ([part] if part is not None else []))
        return [(str(p), str(w), int(n), int(t)) for p, w, n, t in rows]

    def forget_window_sums(self, physical: str, *, key: str | None = None,
                           parts: Iterable[str] | None = None,
                           labels: Iterable[str] | None = None) -> None:
        """Drop the sums of ``physical`` matching every filter given (none: all)."""
        from headwater.engines import statements as st

        in_parts = None if parts is None else list(parts)
        in_labels = None if labels is None else list(labels)
        shape = ("forget_window_sums", key is not None,
                 None if in_parts is None else len(in_parts),
                 None if in_labels is None else len(in_labels))

        def build() -> exp.Expr:
            return st.delete(st.meta("window_stats"), st.all_of(
                st.eq("physical", st.param()),
                st.eq("key", st.param()) if key is not None else None,
                st.is_in("part", _params(len(in_parts))) if in_parts is not None else None,
                st.is_in("label", _params(len(in_labels))) if in_labels is not None else None))

        self.execute(self._prepared(shape, build), [
            physical, *([key] if key is not None else []), *(in_parts or ()),
            *(in_labels or ())])

    def forget_superseded_sums(self, physical: str, key: str) -> None:
        """Drop the sums kept under ``key``'s name with another column signature (the
        part after ``@``): the table's columns changed since they were counted."""
        def build() -> exp.Expr:
            from sqlglot import exp

            from headwater.engines import statements as st

            return st.delete(st.meta("window_stats"), st.all_of(
                st.eq("physical", st.param()), st.starts_with("key", st.param()),
                exp.NEQ(this=st.col("key"), expression=st.param())))

        stem = key.rsplit("@", 1)[0] + "@"
        self.execute(self._prepared(("forget_superseded_sums",), build), [physical, stem, key])

    def record_window_sums(self, physical: str,
                           rows: Iterable[tuple[str, str, str, int, int]]) -> None:
        """Add (key, part, label, rows, sum of row hashes) sums of ``physical``."""
        listed = [(physical, *row) for row in rows]
        if listed:
            self._insert_rows("window_stats", listed)

    def count_window_sums(self, physical: str, key: str, label: exp.Expr,
                          hashed: Sequence[str], where: exp.Expr | None = None) -> None:
        """Count and keep, under ``key``, the sums of ``physical``'s rows (matching
        ``where``) per ``label``, the row hash over ``hashed``: in the engine, one pass."""
        from sqlglot import exp

        from headwater.engines import statements as st

        query = st.select(st.lit(physical), st.lit(key), st.lit(""),
                          exp.alias_(label.copy(), "w", copy=False), st.count_star(),
                          st.sum_of(st.row_hash(hashed)), from_=st.table(physical),
                          where=where.copy() if where is not None else None)
        self.execute_expr(st.insert_query(st.meta("window_stats"),
                                          st.group_by(query, exp.column("w"))))


def _params(n: int) -> list[exp.Expr]:
    """``n`` placeholders (``?``), each its own node."""
    from headwater.engines import statements as st

    return [st.param() for _ in range(n)]
