"""The scale-out engine: Apache Spark, in local mode, on a cluster, or over Spark Connect.

Storage is a warehouse folder (``.headwater/spark-warehouse`` by default) that
the Spark driver (or Connect server) and Headwater both see: every physical
table is a set of immutable Parquet segments under ``_hw/<physical>/``, and the
warehouse's own catalog (``_hw_catalog.json`` and its log of commits) says which
segments make up each table's current version and which table every environment
publishes under each name (see :mod:`headwater.engines.spark.catalog`). Nothing
depends on Spark's own catalog, so a new process (or another Spark session) sees
everything as soon as it reads those files; tables become Spark temporary views
lazily, when a query first refers to them.

SQL reaches this engine in DuckDB's dialect (transforms, the runner's own
statements, checks, incremental updates); :mod:`headwater.engines.spark.sql`
translates it to Spark SQL in one step, and :mod:`headwater.engines.spark.dml`
does what Spark SQL cannot do on Parquet files: ``DELETE`` rewrites only the
segments holding matching rows, ``INSERT ... BY NAME`` appends a segment,
``ALTER TABLE ... ADD COLUMN`` changes only the schema, and a transaction becomes
visible in one catalog commit.

Arrow from connectors and Python transforms is written to Parquet directly by
this process (no round trip through the JVM); reads for sinks and Arrow-typed
Python transforms come straight from those files. Python transforms annotated
with ``pyspark.sql.DataFrame`` get Spark DataFrames instead and never leave Spark.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from headwater.core.quoting import quote_ident
from headwater.core.quoting import quote_ident as _dq  # DuckDB, which runs the bookkeeping
from headwater.engines.base import (
    DEFAULT_ENV,
    HIDDEN_PREFIX,
    INTERNAL_SCHEMA,
    Capabilities,
    Engine,
    TableStats,
)
from headwater.engines.spark import meta
from headwater.engines.spark.catalog import Catalog, Entry
from headwater.engines.spark.session import SparkEngineError, make_session
from headwater.engines.spark.types import (
    arrow_schema,
    duck_for_spark,
    duck_name,
    schema_json,
    spark_compatible,
)
from headwater.errors import ProjectError

if TYPE_CHECKING:
    from sqlglot import exp

    from headwater.core.nodes import SqlNode

log = logging.getLogger(__name__)



def _bq(name: str) -> str:
    """Quote an identifier for Spark SQL."""
    return quote_ident(name, "spark")


def env_of_schema(schema: str) -> str:
    """The environment whose views live in ``schema`` (``main`` is prod)."""
    return DEFAULT_ENV if schema == "main" else schema


class SparkEngine(Engine):
    name = "spark"
    # The engine takes SQL in DuckDB's dialect, transforms included, and translates it
    # to Spark SQL itself (spark_sql.to_spark): one translation from the tree that
    # still says what DuckDB means (percentiles, rounding, row hashes, ranges).
    dialect = "duckdb"
    capabilities = Capabilities(snapshots=True, frame="spark", builds_frames=True)

    def __init__(
        self,
        warehouse: Path,
        *,
        master: str = "local[*]",
        remote: str | None = None,
        conf: dict[str, str] | None = None,
        read_dialect: str = "duckdb",  # the project's dialect (transforms, before a run)
        session: Any = None,
    ) -> None:
        self.warehouse = Path(warehouse).absolute()
        self.master = master
        self.remote = remote
        self.conf = dict(conf or {})
        self.read_dialect = read_dialect
        self.catalog = Catalog(self.warehouse)
        self.path = self.catalog.path  # `api` asks whether anything was built by this path
        self._session = session
        self._lock = threading.RLock()
        self._views: set[str] = set()
        self._temps: dict[str, Entry] = {}
        self._functions: set[str] | None = None
        self._duck_local = threading.local()
        self._read_only = False

    # -- session ----------------------------------------------------------

    def open(self, *, read_only: bool = False) -> None:
        self._read_only = read_only
        self.catalog = Catalog(self.warehouse)
        self.catalog.also_live = self._temp_segments
        self.path = self.catalog.path
        self.catalog.load()
        if not read_only:
            self.catalog.data_dir.mkdir(parents=True, exist_ok=True)
            self._sweep()

    def close(self) -> None:
        # the session stays up: starting a JVM costs seconds, and tests share one
        if self._session is not None and self._views:
            for view in list(self._views):
                try:
                    self._session.catalog.dropTempView(view)
                except Exception:  # pragma: no cover - session already gone
                    break
        self._views.clear()
        self._temps.clear()

    @property
    def spark(self) -> Any:
        """The SparkSession, started on first use (reads of Parquet files need none)."""
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = make_session(master=self.master, remote=self.remote,
                                                 conf=self.conf)
        return self._session

    def native(self) -> Any:
        return self.spark

    def _sweep(self) -> None:
        """Delete segment folders no table refers to (left by a crash mid-build)."""
        live = {s for e in self.catalog.tables.values() for s in e.segments}
        for owner in self.catalog.data_dir.iterdir() if self.catalog.data_dir.exists() else ():
            if not owner.is_dir():
                continue
            for seg in owner.iterdir():
                if f"{owner.name}/{seg.name}" not in live:
                    shutil.rmtree(seg, ignore_errors=True)

    # -- names and relations ------------------------------------------------

    def physical_tables(self) -> set[str]:
        return self.catalog.names()

    def physical_ref(self, physical: str) -> exp.Expr:
        """How transforms read a physical table: hidden bookkeeping columns left out."""
        from sqlglot import exp

        table = exp.table_(physical, db=INTERNAL_SCHEMA, quoted=True)
        entry = self.catalog.get(physical)
        hidden = _hidden(entry.columns) if entry is not None else []
        if not hidden:
            return table
        star = exp.Star(except_=[exp.column(c, quoted=True) for c in hidden])
        return exp.Subquery(this=exp.select(star).from_(table))

    def _entry(self, physical: str) -> Entry:
        entry = self.catalog.get(physical)
        if entry is None:
            raise SparkEngineError(f"table {INTERNAL_SCHEMA}.{physical} does not exist",
                                   hint="run `headwater run` to build it")
        return entry

    def _files(self, entry: Entry) -> list[str]:
        return [str(p) for seg in entry.segments
                for p in sorted((self.catalog.data_dir / seg).glob("*.parquet"))]

    def _view_name(self, entry: Entry) -> str:
        """A Spark temporary view over one table version (registered once per session)."""
        key = hashlib.sha1(json.dumps([entry.segments, entry.schema]).encode()).hexdigest()
        name = f"__hw_{key[:20]}"
        if name not in self._views:
            with self._lock:
                if name not in self._views:
                    from pyspark.sql.types import StructType

                    st = StructType.fromJson(entry.schema)
                    paths = [str(self.catalog.data_dir / s) for s in entry.segments]
                    reader = self.spark.read.schema(st)
                    df = reader.parquet(*paths) if paths else self.spark.createDataFrame([], st)
                    df.createOrReplaceTempView(name)
                    self._views.add(name)
        return name

    def _relation(self, entry: Entry, *, visible: bool = False) -> exp.Expr:
        """A table version as Spark reads it; ``visible`` leaves out ``_hw_*`` columns."""
        import sqlglot
        from sqlglot import exp

        from headwater.engines.spark.sql import resolve_tables

        if entry.kind == "view":
            # a Spark temporary view over the view's SQL as of its upstreams' versions
            assert entry.sql is not None
            tree = sqlglot.parse_one(entry.sql, dialect="spark")
            sql = resolve_tables(tree, self._lookup(None)).sql(dialect="spark")
            name = f"__hw_q_{hashlib.sha1(sql.encode()).hexdigest()[:20]}"
            if name not in self._views:
                with self._lock:
                    self.spark.sql(sql).createOrReplaceTempView(name)
                    self._views.add(name)
            return exp.Table(this=exp.to_identifier(name, quoted=True))
        table = exp.Table(this=exp.to_identifier(self._view_name(entry), quoted=True))
        hidden = _hidden(entry.columns) if visible else []
        if not hidden:
            return table
        star = exp.Star(except_=[exp.column(c, quoted=True) for c in hidden])
        return exp.Subquery(this=exp.select(star).from_(table))

    def _lookup(
        self, default_env: str | None, overrides: dict[tuple[str, str], Entry] | None = None
    ) -> Callable[[exp.Table], exp.Expr | None]:
        def lookup(table: exp.Table) -> exp.Expr | None:
            if table.args.get("catalog"):
                return None
            db, name = table.text("db"), table.name
            if overrides and (db, name) in overrides:
                return self._relation(overrides[(db, name)])
            if db == INTERNAL_SCHEMA:
                return self._relation(self._entry(name))
            if not db:
                if name in self._temps:
                    return self._relation(self._temps[name])
                if default_env is None:
                    return None
                db = "main" if default_env == DEFAULT_ENV else default_env
            physical = self.catalog.published_physical(env_of_schema(db), name)
            if physical is None:
                return None
            return self._relation(self._entry(physical), visible=True)
        return lookup

    # -- parsing --------------------------------------------------------------

    def _parse(self, sql: str, params: list[Any] | None = None) -> exp.Expr:
        """Parse DuckDB-dialect ``sql`` (Spark's as a fallback) and translate it for Spark."""
        import sqlglot
        from sqlglot.errors import ParseError, TokenError

        from headwater.engines.spark.sql import bind, to_spark

        read = "duckdb"
        try:
            tree = sqlglot.parse_one(sql, dialect=read)
        except (ParseError, TokenError):
            tree, read = sqlglot.parse_one(sql, dialect="spark"), "spark"
        bind(tree, params)
        return to_spark(tree, read)

    def _spark_sql(self, tree: exp.Expr, default_env: str | None = None,
                   overrides: dict[tuple[str, str], Entry] | None = None) -> str:
        from headwater.engines.spark.sql import resolve_tables

        lookup = self._lookup(default_env, overrides)
        return resolve_tables(tree, lookup).sql(dialect="spark")

    def _df(self, tree: exp.Expr, default_env: str | None = None,
            overrides: dict[tuple[str, str], Entry] | None = None) -> Any:
        return self.spark.sql(self._spark_sql(tree, default_env, overrides))

    # -- writing ----------------------------------------------------------------

    def _write_df(self, df: Any, owner: str
                  ) -> tuple[str, dict[str, Any], dict[str, list[Any]]]:
        """Write a new segment; its row count and content hash are observed on the way
        (no second pass over the data)."""
        from pyspark.sql import Observation
        from pyspark.sql import functions as F

        rel, path = self.catalog.new_segment(owner)
        schema = json.loads(df.schema.json())
        for f in schema["fields"]:
            f["nullable"] = True
        cols = [df[c] for c in _hash_columns(schema)]
        obs = Observation(f"hw_{rel.replace('/', '_')}")
        # two 64-bit sums (high and low halves of each row's hash): exact, and far
        # cheaper than a DECIMAL(38) sum
        h = F.xxhash64(*cols) if cols else F.lit(0).cast("long")
        observed = df.observe(
            obs, F.count(F.lit(1)).alias("rows"),
            F.coalesce(F.sum(F.shiftright(h, 32)), F.lit(0)).alias("hi"),
            F.coalesce(F.sum(h.bitwiseAND(0xFFFFFFFF)), F.lit(0)).alias("lo"))
        observed.write.mode("overwrite").parquet(str(path))
        m = obs.get
        return rel, schema, {rel: [int(m["rows"]), int(m["hi"]), int(m["lo"])]}

    def _set(self, target: tuple[str, str], entry: Entry | None) -> None:
        kind, name = target
        if kind == "temp":
            with self._lock:
                old = self._temps.pop(name, None)
                if entry is not None:
                    self._temps[name] = entry
            if old is not None:
                live = self._live_segments() | (set(entry.segments) if entry else set())
                for seg in old.segments:
                    if seg not in live:
                        shutil.rmtree(self.catalog.data_dir / seg, ignore_errors=True)
        else:
            self.catalog.put(name, entry)

    def _live_segments(self) -> set[str]:
        out = {s for n in self.catalog.names() for s in (self.catalog.get(n) or Entry(
            "table", {"fields": []})).segments}
        return out | self._temp_segments()

    def _temp_segments(self) -> set[str]:
        with self._lock:
            return {s for e in self._temps.values() for s in e.segments}

    def _current(self, target: tuple[str, str]) -> Entry | None:
        kind, name = target
        if kind == "temp":
            return self._temps.get(name)
        return self.catalog.get(name)

    def build_sql(self, physical: str, select_sql: str, *, view: bool = False) -> None:
        tree = self._parse(select_sql)
        with self.transaction():
            if view:
                df = self._df(tree.copy())
                schema = json.loads(df.schema.json())
                self.catalog.put(physical, Entry(
                    "view", schema, sql=tree.sql(dialect="spark", comments=False)))
            else:
                rel, schema, metrics = self._write_df(self._df(tree), physical)
                self.catalog.put(physical, Entry("table", schema, (rel,), metrics=metrics))

    def snapshot_table(self, physical: str, name: str) -> None:
        """``name``: the current version of ``physical``, frozen (its segment list, copied;
        segments are immutable files, kept while any table lists them)."""
        entry = self.catalog.get(physical)
        if entry is None:
            raise SparkEngineError(f"table {physical} does not exist")
        with self.transaction():
            self.catalog.put(name, entry)

    def build_frame(self, physical: str, df: Any) -> None:
        """Create ``physical`` from a Spark DataFrame (a Python transform's result)."""
        with self.transaction():
            rel, schema, metrics = self._write_df(df, physical)
            self.catalog.put(physical, Entry("table", schema, (rel,), metrics=metrics))

    def build_arrow(self, physical: str, data: pa.RecordBatchReader | pa.Table) -> None:
        import pyarrow.parquet as pq

        with self.transaction():
            rel, path = self.catalog.new_segment(physical)
            path.mkdir(parents=True, exist_ok=True)
            table = data.read_all() if isinstance(data, pa.RecordBatchReader) else data
            table = spark_compatible(table)
            pq.write_table(table, path / "part-0.parquet")
            self.catalog.put(physical, Entry("table", schema_json(table.schema), (rel,)))

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
        version: int | None = None,  # Spark snapshots copy segment lists: no row stamps
    ) -> None:
        import pyarrow.parquet as pq

        # DuckDB casts exactly as the DuckDB engine would, and writes the Parquet
        select = ", ".join(
            f"CAST({_dq(src) if src else 'NULL'} AS {duck_for_spark(typ)}) AS {_dq(col)}"
            for col, src, typ in projection
        )
        con = self._duck()
        with self.transaction():
            if before is not None:
                before()
            rel, path = self.catalog.new_segment(physical)
            path.mkdir(parents=True, exist_ok=True)
            target = str(path / "part-0.parquet").replace("'", "''")
            view = f"__hw_arrow_{threading.get_ident()}"
            con.register(view, data)
            try:
                con.execute(f"COPY (SELECT {select} FROM {_dq(view)}) TO '{target}'"
                            " (FORMAT parquet)")
            finally:
                con.unregister(view)
            entry = Entry("table", schema_json(pq.read_schema(target)), (rel,))
            if stage_hook is not None:
                stage = f"__hw_stage_{threading.get_ident()}"
                self._temps[stage] = entry
                try:
                    stage_hook(_dq(stage))
                    entry = self._temps[stage]
                finally:
                    self._temps.pop(stage, None)
            old = self.catalog.get(physical) if append else None
            if old is not None:
                have = set(old.columns)
                fields = old.schema["fields"] + [f for f in entry.schema["fields"]
                                                 if f["name"] not in have]
                entry = old.with_segments(old.segments + entry.segments, entry.metrics,
                                          {"type": "struct", "fields": fields})
            self.catalog.put(physical, entry)
            if after is not None:
                after()

    # -- statements in DuckDB's dialect ---------------------------------------------

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        from headwater.engines.spark.dml import run_statement

        run_statement(self, sql, params, fetch=False)

    def fetch(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        from headwater.engines.spark.dml import run_statement

        return run_statement(self, sql, params, fetch=True) or []

    # -- statements as trees (headwater.engines.statements): translated, never parsed ----

    def execute_expr(self, statement: exp.Expr) -> None:
        from headwater.engines.spark.dml import run_tree

        run_tree(self, statement)

    def fetch_expr(self, query: exp.Expr) -> list[tuple[Any, ...]]:
        from headwater.engines.spark.dml import run_tree

        return run_tree(self, query) or []

    def _query(self, query: str | exp.Query) -> exp.Expr:
        """A query for Spark: a transform's text parsed (once), a tree translated."""
        if isinstance(query, str):
            return self._parse(query)
        from headwater.engines.spark.sql import to_spark

        return to_spark(query.copy(), "duckdb")

    def create_table_as(self, target: exp.Table, query: str | exp.Query, *,
                        temp: bool = False) -> None:
        from headwater.engines.spark import dml

        dml.create_as(self, target, self._query(query), temp=temp)

    def insert_by_name(self, target: exp.Table, query: str | exp.Query) -> None:
        from headwater.engines.spark import dml

        dml.insert(self, target, self._query(query), by_name=True)

    def delete_rows(self, target: exp.Table, where: exp.Expr | None = None) -> None:
        from headwater.engines.spark import dml
        from headwater.engines.spark.sql import to_spark

        dml.delete_where(self, target, None if where is None else to_spark(where.copy(),
                                                                           "duckdb"))

    def drop_table(self, target: exp.Table, *, if_exists: bool = True) -> None:
        from headwater.engines.spark import dml

        dml.drop(self, [target], if_exists=if_exists)

    # -- bookkeeping: rows of the catalog (headwater.engines.spark.meta) ------------------

    def window_marks(self, physical: str, prefix: str = "") -> dict[str, str]:
        return meta.window_marks(self.catalog, physical, prefix)

    def forget_window_marks(self, physical: str, labels: Iterable[str] | None = None, *,
                            prefix: str = "") -> None:
        meta.forget_window_marks(self.catalog, physical, labels, prefix)

    def record_window_marks(self, physical: str, marks: Iterable[tuple[str, str]]) -> None:
        meta.add(self.catalog, "windows", ([physical, label, fp] for label, fp in marks))

    def partitions(self, physical: str) -> dict[str, str]:
        return meta.partitions(self.catalog, physical)

    def partition_columns(self, physical: str) -> list[tuple[str, str | None]]:
        return meta.partition_columns(self.catalog, physical)

    def forget_partitions(self, physical: str, parts: Iterable[str] | None = None) -> None:
        meta.forget_partitions(self.catalog, physical, parts)

    def record_partitions(self, physical: str,
                          parts: Iterable[tuple[str, str, str | None]]) -> None:
        listed = list(parts)
        with self.transaction():
            meta.add(self.catalog, "partitions", ([physical, p, d] for p, d, _ in listed))
            meta.add(self.catalog, "part_columns",
                     ([physical, p, c] for p, _, c in listed if c is not None))

    def version_head(self, base: str) -> int | None:
        return meta.version_head(self.catalog, base)

    def version_left_out(self, base: str, version: int) -> str | None:
        return meta.version_left_out(self.catalog, base, version)

    def record_version(self, base: str, version: int, snapshot: str,
                       left_out: str | None = None) -> None:
        meta.record_version(self.catalog, base, version, snapshot, left_out)

    def forget_versions(self, base: str) -> None:
        meta.remove(self.catalog, "versions", lambda r: r[0] == base)


    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.catalog.transaction():
            yield

    # -- reading ---------------------------------------------------------------------

    def exists(self, physical: str) -> bool:
        return self.catalog.get(physical) is not None

    def columns(self, physical: str) -> list[tuple[str, str]]:
        return [(f["name"], duck_name(f["type"])) for f in self._entry(physical).schema["fields"]]

    def arrow_columns(self, schema: pa.Schema) -> list[tuple[str, str]]:
        rel = self._duck().from_arrow(schema.empty_table())
        return [(str(n), duck_for_spark(str(t)))
                for n, t in zip(rel.columns, rel.types, strict=True)]

    def max_value(self, physical: str, column: str) -> Any:
        sql = f"SELECT max({_bq(column)}) FROM {_bq(self._view_or_sub(physical))}"
        return self.spark.sql(sql).collect()[0][0]

    def _view_or_sub(self, physical: str) -> str:
        entry = self._entry(physical)
        if entry.kind == "view":
            return str(self._relation(entry).name)
        return self._view_name(entry)

    def stats(self, physical: str) -> TableStats:
        """Rows and content fingerprint: the sums over segments of the row count and of
        ``xxhash64`` of every row (high and low halves), observed when each segment was
        written."""
        columns = [c for c in self.columns(physical) if not c[0].startswith(HIDDEN_PREFIX)]
        entry = self._entry(physical)
        if entry.kind == "view":
            rows, hi, lo = self._measure(entry)
        else:
            missing = {s: list(self._measure(entry.with_segments((s,), {})))
                       for s in entry.segments if len(entry.metrics.get(s, ())) != 3}
            if missing:  # written from Arrow: measured once, then kept in the catalog
                entry = entry.with_segments(entry.segments, missing)
                if self.catalog.get(physical) is not None:
                    self.catalog.put(physical, entry)
            rows, hi, lo = (sum(int(entry.metrics[s][i]) for s in entry.segments)
                            for i in range(3))
        total = f"{hi}.{lo}"
        schema_sig = ",".join(f"{n}:{t}" for n, t in columns)
        return TableStats(rows, f"{rows}:{total}:{schema_sig}", columns)

    def _measure(self, entry: Entry) -> tuple[int, int, int]:
        """(rows, sum of high halves, sum of low halves of xxhash64) of a table version."""
        rel = self._relation(entry)
        cols = ", ".join(_bq(c) for c in _hash_columns(entry.schema))
        h = f"xxhash64({cols})" if cols else "CAST(0 AS BIGINT)"
        sql = (f"SELECT count(*), coalesce(sum(shiftright({h}, 32)), 0),"
               f" coalesce(sum({h} & 4294967295), 0) FROM {rel.sql(dialect='spark')} AS t")
        row = self.spark.sql(sql).collect()[0]
        return int(row[0]), int(row[1]), int(row[2])

    def frame(self, physical: str) -> Any:
        return self.dataframe(physical)

    def dataframe(self, physical: str) -> Any:
        """A physical table as a Spark DataFrame (Python transforms that ask for one)."""
        df = self.spark.table(_bq(self._view_or_sub(physical)))
        hidden = _hidden(df.columns)
        return df.drop(*hidden) if hidden else df

    def _dataset(self, entry: Entry, *, visible: bool = True) -> Any:
        import pyarrow.dataset as ds

        schema = arrow_schema(entry.schema)
        if visible:
            schema = pa.schema([f for f in schema if not f.name.startswith(HIDDEN_PREFIX)])
        return ds.dataset(self._files(entry), schema=schema, format="parquet")

    def read(self, physical: str) -> pa.Table:
        entry = self._entry(physical)
        if entry.kind == "view":
            table = self._to_arrow(self.spark.table(self._relation(entry).sql("spark")))
            return table.drop_columns(_hidden(table.column_names))
        return self._dataset(entry).to_table()

    def _to_arrow(self, df: Any) -> pa.Table:
        table: pa.Table = df.toArrow()
        return table

    def _duck(self) -> Any:
        """A DuckDB cursor of this thread over an in-memory database (reads, casts)."""
        import duckdb

        cur = getattr(self._duck_local, "cur", None)
        if cur is None:
            with self._lock:
                if getattr(self, "_duck_con", None) is None:
                    self._duck_con = duckdb.connect()
                cur = self._duck_con.cursor()
            self._duck_local.cur = cur
        return cur

    def _duck_relation(self, physical: str) -> Any:
        entry = self._entry(physical)
        con = self._duck_con_new()
        data = self._dataset(entry) if entry.kind == "table" else self.read(physical)
        return con.from_arrow(data)

    def _duck_con_new(self) -> Any:
        if getattr(self, "_duck_con", None) is None:
            self._duck()
        return self._duck_con.cursor()

    def reader(
        self, physical: str, where: tuple[str, str] | None = None
    ) -> pa.RecordBatchReader:
        from headwater.engines.duckdb import duckdb_column_equals

        rel = self._duck_relation(physical)
        if where is not None:
            column, value = where
            rel = rel.filter(duckdb_column_equals(column, value))
        return rel.to_arrow_reader(100_000)

    def partition_fingerprints(self, physical: str, column: str) -> dict[str, str]:
        rel = self._duck_relation(physical)
        rows = rel.query(
            "t", f"SELECT {_dq(column)}::VARCHAR AS p, count(*),"
            f" coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM t GROUP BY p").fetchall()
        return {str(p): f"{n}:{h}" for p, n, h in rows}

    # -- publishing --------------------------------------------------------------------

    def publish(self, env: str, name: str, physical: str) -> None:
        self._entry(physical)
        self.catalog.publish(env, name, physical)

    def shown(self, env: str) -> dict[str, str] | None:
        return dict(self.catalog.published.get(env, {}))

    def unpublish(self, env: str, name: str) -> None:
        self.catalog.publish(env, name, None)

    def drop_physical(self, physical: str) -> None:
        self.catalog.drop(physical)

    def swap_in(self, staging: str, physical: str) -> None:
        with self.transaction():
            self.catalog.put(physical, self._entry(staging))
            self.catalog.put(staging, None)

    # -- queries ------------------------------------------------------------------------

    def query(self, sql: str, limit: int | None = None) -> pa.Table:
        tree = self._parse(sql)
        fast = self._plain_table(tree)
        if fast is not None:
            data = self._dataset(fast)
            return data.head(limit) if limit is not None else data.to_table()
        df = self._df(tree, default_env=DEFAULT_ENV)
        if limit is not None:
            df = df.limit(limit)
        return self._to_arrow(df)

    def _plain_table(self, tree: exp.Expr) -> Entry | None:
        """``SELECT * FROM published_table``: read from Parquet, no Spark job."""
        from sqlglot import exp

        if not isinstance(tree, exp.Select) or len(tree.expressions) != 1 or not isinstance(
                tree.expressions[0], exp.Star):
            return None
        if any(tree.args.get(k) for k in ("where", "group", "having", "order", "joins",
                                          "limit", "offset", "distinct", "with_", "with",
                                          "qualify")):
            return None
        src = tree.args.get("from_") or tree.args.get("from")
        table = src.this if src is not None else None
        if not isinstance(table, exp.Table) or table.args.get("catalog"):
            return None
        db = table.text("db")
        if db == INTERNAL_SCHEMA:
            entry = self.catalog.get(table.name)
        else:
            physical = self.catalog.published_physical(env_of_schema(db or "main"), table.name)
            entry = self.catalog.get(physical) if physical else None
        return entry if entry is not None and entry.kind == "table" else None

    # -- before a run ------------------------------------------------------------------

    def preflight(self, nodes: Sequence[SqlNode], dialect: str) -> None:
        """Raise a ProjectError naming file, line and construct for SQL Spark cannot run."""
        from headwater.engines.spark.sql import untranslatable
        from headwater.errors import caret_snippet

        if not nodes:
            return
        known = self.functions()
        for node in nodes:
            problem = untranslatable(node.sql, dialect, known)
            if problem is None:
                continue
            raise ProjectError(
                f"{problem.construct} cannot run on Spark: {problem.why}",
                path=node.path, line=problem.line, column=problem.column,
                snippet=caret_snippet(node.sql, problem.line, problem.column)
                if problem.line else None,
                hint="rewrite it with constructs both engines share, or run this project "
                "on DuckDB (engine = \"duckdb\"); nothing was run",
            )

    def functions(self) -> set[str]:
        """Names of the functions the Spark session knows (lower case)."""
        if self._functions is None:
            rows = self.spark.sql("SHOW FUNCTIONS").collect()
            self._functions = {str(r[0]).lower().split(".")[-1] for r in rows}
        return self._functions


def _hash_columns(schema: dict[str, Any]) -> list[str]:
    """Columns a content hash covers: all but maps (Spark cannot hash them)."""
    return [f["name"] for f in schema["fields"]
            if not (isinstance(f["type"], dict) and f["type"].get("type") == "map")]


def _hidden(columns: list[str]) -> list[str]:
    return [c for c in columns if c.startswith(HIDDEN_PREFIX)]
