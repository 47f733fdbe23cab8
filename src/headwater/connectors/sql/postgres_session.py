"""PostgreSQL sessions: reading a query as Arrow batches through ADBC (binary COPY) or
psycopg (CSV COPY into ``pyarrow.csv``), and the type mapping between the two
(see ``headwater.connectors.sql.postgres``)."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from headwater.connectors.sql.common import PARAM, ident
from headwater.connectors.sql.postgres_conn import DIALECT, PgTarget
from headwater.errors import ConnectorError

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass
class PgColumn:
    name: str
    typname: str
    precision: int | None = None
    scale: int | None = None


def numeric_type(precision: int | None, scale: int | None) -> pa.DataType:
    import pyarrow as pa

    if precision is not None and 0 < precision <= 38:
        return pa.decimal128(precision, scale or 0)
    return pa.float64()


def _typmod_numeric(typmod: int) -> tuple[int | None, int | None]:
    if typmod < 4:
        return None, None
    return ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF


class PgSession:
    """One connection in a transaction; SQL uses ``PARAM`` for bound parameters."""

    driver: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def columns(self, select_sql: str) -> list[PgColumn]:
        raise NotImplementedError

    def stream(self, sql: str) -> tuple[pa.Schema, Iterator[pa.RecordBatch],
                                        Callable[[pa.RecordBatch], pa.RecordBatch] | None]:
        raise NotImplementedError

    def ingest(self, schema: str, table: str, reader: pa.RecordBatchReader) -> None:
        raise NotImplementedError

    con: Any  # the driver's DB-API connection (ADBC or psycopg): both commit alike

    def commit(self) -> None:
        self.con.commit()

    def rollback(self) -> None:
        self.con.rollback()

    def close(self) -> None:
        self.con.close()


class AdbcSession(PgSession):
    driver = "adbc"

    def __init__(self, conninfo: str) -> None:
        import adbc_driver_postgresql.dbapi as adbc

        self.con = adbc.connect(conninfo)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        parts = sql.split(PARAM)
        text = parts[0] + "".join(f"${i}{p}" for i, p in enumerate(parts[1:], 1))
        cur = self.con.cursor()
        try:
            cur.execute(text, parameters=tuple(params) if params else None)
            return list(cur.fetchall()) if cur.description else []
        finally:
            cur.close()

    def columns(self, select_sql: str) -> list[PgColumn]:
        cur = self.con.cursor()
        try:
            schema = cur.adbc_execute_schema(select_sql)
        finally:
            cur.close()
        out = []
        for f in schema:
            meta = f.metadata or {}
            typname = meta.get(b"POSTGRESQL:type", b"").decode()
            typmod = int(meta.get(b"POSTGRESQL:typmod", b"-1") or -1)
            p, s = _typmod_numeric(typmod) if typname == "numeric" else (None, None)
            out.append(PgColumn(f.name, typname, p, s))
        return out

    def stream(self, sql: str) -> tuple[pa.Schema, Iterator[pa.RecordBatch],
                                        Callable[[pa.RecordBatch], pa.RecordBatch] | None]:
        import pyarrow as pa

        cur = self.con.cursor()
        cur.execute(sql)
        reader = cur.fetch_record_batch()
        fields, casts = [], {}
        for i, f in enumerate(reader.schema):
            t = f.type
            if isinstance(t, pa.BaseExtensionType) and t.extension_name == "arrow.opaque":
                if getattr(t, "type_name", "") == "numeric":
                    typmod = int((f.metadata or {}).get(b"POSTGRESQL:typmod", b"-1") or -1)
                    target = numeric_type(*_typmod_numeric(typmod))
                else:
                    target = t.storage_type
                casts[i] = target
                fields.append(pa.field(f.name, target))
            else:
                fields.append(f)
        schema = pa.schema(fields)

        def convert(batch: pa.RecordBatch) -> pa.RecordBatch:
            cols = list(batch.columns)
            for i, target in casts.items():
                storage = cols[i].storage
                cols[i] = storage if storage.type == target else _cast(storage, target,
                                                                        schema.field(i).name)
            return pa.RecordBatch.from_arrays(cols, schema=schema)

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            finally:
                cur.close()

        return schema, batches(), convert if casts else None

    def ingest(self, schema: str, table: str, reader: pa.RecordBatchReader) -> None:
        cur = self.con.cursor()
        try:
            cur.adbc_ingest(table, reader, mode="append", db_schema_name=schema)
        finally:
            cur.close()


def _cast(arr: pa.Array, target: pa.DataType, column: str) -> pa.Array:
    import pyarrow as pa

    try:
        return arr.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ConnectorError(
            f"column {column!r}: cannot convert its values to {target}: {exc}",
            hint="cast the column in a query source (e.g. amount::float8 or ::text)",
        ) from None


# psycopg fallback: type names -> Arrow (text for everything else)
def _arrow_for(col: PgColumn) -> pa.DataType:
    import pyarrow as pa

    simple = {
        "bool": pa.bool_(), "int2": pa.int16(), "int4": pa.int32(), "int8": pa.int64(),
        "oid": pa.int64(), "float4": pa.float32(), "float8": pa.float64(),
        "date": pa.date32(), "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", "UTC"), "time": pa.time64("us"),
        "bytea": pa.binary(),
    }
    if col.typname == "numeric":
        return numeric_type(col.precision, col.scale)
    return simple.get(col.typname, pa.string())


class _CopyFile(io.RawIOBase):
    """A read-only file over psycopg's COPY TO STDOUT chunks (for pyarrow.csv)."""

    def __init__(self, chunks: Iterator[Any]) -> None:
        self._chunks = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        want = len(b)
        parts, have = [self._buf], len(self._buf)
        while have < want:
            try:
                chunk = bytes(next(self._chunks))
            except StopIteration:
                break
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        n = min(want, len(data))
        b[:n] = data[:n]
        self._buf = data[n:]
        return n


class PsycopgSession(PgSession):
    driver = "psycopg"

    def __init__(self, conninfo: str) -> None:
        import psycopg

        self.con = psycopg.connect(conninfo)

    @staticmethod
    def _sql(sql: str, params: Sequence[Any]) -> str:
        return sql.replace("%", "%%").replace(PARAM, "%s") if params else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.con.cursor() as cur:
            cur.execute(self._sql(sql, params), list(params) if params else None)
            return list(cur.fetchall()) if cur.description else []

    def columns(self, select_sql: str) -> list[PgColumn]:
        with self.con.cursor() as cur:
            cur.execute(f"SELECT * FROM ({select_sql}) AS _hw_d LIMIT 0")
            desc = list(cur.description or [])
            oids = sorted({d.type_code for d in desc})
            cur.execute("SELECT oid::int8, typname FROM pg_type WHERE oid = ANY(%s)", [oids])
            names = {int(o): str(n) for o, n in cur.fetchall()}
        return [PgColumn(d.name, names.get(d.type_code, "text"), d.precision, d.scale)
                for d in desc]

    def stream(self, sql: str) -> tuple[pa.Schema, Iterator[pa.RecordBatch],
                                        Callable[[pa.RecordBatch], pa.RecordBatch] | None]:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        cols = self.columns(sql)
        schema = pa.schema([pa.field(c.name, _arrow_for(c)) for c in cols])
        positional = [f"c{i}" for i in range(len(cols))]
        csv_types = {p: (pa.string() if f.type == pa.binary() else f.type)
                     for p, f in zip(positional, schema, strict=True)}
        binary_cols = [i for i, f in enumerate(schema) if f.type == pa.binary()]

        def batches() -> Iterator[pa.RecordBatch]:
            with self.con.cursor() as cur, cur.copy(
                f"COPY ({sql}) TO STDOUT (FORMAT csv)"
            ) as copy:
                chunks: Iterator[Any] = iter(copy)
                head = next(chunks, None)
                if head is None:  # no rows: pyarrow.csv refuses an empty input
                    return
                reader = pacsv.open_csv(
                    _CopyFile(itertools.chain([head], chunks)),
                    read_options=pacsv.ReadOptions(column_names=positional,
                                                   block_size=8 << 20),
                    parse_options=pacsv.ParseOptions(newlines_in_values=True),
                    convert_options=pacsv.ConvertOptions(
                        column_types=csv_types, null_values=[""], strings_can_be_null=True,
                        quoted_strings_can_be_null=False, true_values=["t"],
                        false_values=["f"],
                    ),
                )
                for batch in reader:
                    arrays = list(batch.columns)
                    for i in binary_cols:
                        arrays[i] = pa.array(
                            [None if v is None else bytes.fromhex(v[2:])
                             for v in arrays[i].to_pylist()], pa.binary())
                    yield pa.RecordBatch.from_arrays(arrays, schema=schema)

        return schema, batches(), None

    def ingest(self, schema: str, table: str, reader: pa.RecordBatchReader) -> None:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        for f in reader.schema:
            t = f.type
            if pa.types.is_nested(t) or pa.types.is_interval(t) or pa.types.is_duration(t):
                raise ConnectorError(
                    f"column {f.name!r} ({t}) cannot be written without the ADBC driver",
                    hint="pip install adbc-driver-postgresql, or cast the column to text",
                )
        cols = ", ".join(ident(f.name, DIALECT) for f in reader.schema)
        target = f"{ident(schema, DIALECT)}.{ident(table, DIALECT)}"
        binary = [i for i, f in enumerate(reader.schema) if pa.types.is_binary(f.type)]
        with self.con.cursor() as cur, cur.copy(
            f"COPY {target} ({cols}) FROM STDIN (FORMAT csv)"
        ) as copy:
            for batch in reader:
                if binary:
                    arrays = list(batch.columns)
                    for i in binary:
                        arrays[i] = pa.array(
                            [None if v is None else "\\x" + v.hex()
                             for v in arrays[i].to_pylist()], pa.string())
                    batch = pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
                buf = io.BytesIO()
                pacsv.write_csv(batch, buf, pacsv.WriteOptions(include_header=False))
                copy.write(buf.getvalue())


def open_session(driver: str, target: PgTarget) -> PgSession:
    """Connect with ADBC when it is installed (or asked for), else psycopg."""
    if driver in ("auto", "adbc"):
        try:
            import adbc_driver_postgresql.dbapi  # noqa: F401
        except ImportError:
            if driver == "adbc":
                raise ConnectorError(
                    "the ADBC Postgres driver is not installed",
                    hint="pip install 'headwater[postgres]'",
                ) from None
        else:
            return AdbcSession(target.conninfo)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ConnectorError(
            "no Postgres driver is installed",
            hint="pip install 'headwater[postgres]' (adbc-driver-postgresql and psycopg)",
        ) from None
    return PsycopgSession(target.conninfo)
