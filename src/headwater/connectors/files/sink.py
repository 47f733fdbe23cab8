"""Files out, local or on S3: Parquet, CSV or NDJSON (``sinks/NAME.toml``, ``type = "files"``).

Writing goes through pyarrow (Parquet, CSV) or DuckDB (NDJSON) into a temporary
file that replaces the target only when complete (an S3 upload is atomic per
object). ``partition_by`` writes one file per value, Hive style
(``path/column=value/part.parquet``); ``mode = "sync"`` rewrites only the
partitions whose content changed since the last write and deletes the ones
that vanished.
"""

from __future__ import annotations

import contextlib
import glob as globmod
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, unquote

from pydantic import field_validator

if TYPE_CHECKING:
    import pyarrow as pa

    from headwater.connectors.s3 import S3

from headwater.connectors.base import SinkConfig, SinkConnector, SinkInput, SinkResult
from headwater.connectors.files.source import HIVE_NULL, Scratch, key_error
from headwater.connectors.s3 import S3Settings, is_s3, mask_credentials, split_url
from headwater.engines.base import NULL_PARTITION
from headwater.errors import ConnectorError

_SINK_EXTENSIONS = {"parquet": "parquet", "csv": "csv", "ndjson": "ndjson"}


class FilesSinkConfig(SinkConfig, S3Settings):
    type: Literal["files"] = "files"
    path: str
    format: Literal["parquet", "csv", "ndjson"] | None = None
    partition_by: str | None = None
    mode: Literal["overwrite", "sync"] = "overwrite"

    @field_validator("mode")
    @classmethod
    def _sync_needs_partitions(cls, mode: str, info: Any) -> str:
        if mode == "sync" and not info.data.get("partition_by"):
            raise ValueError('mode = "sync" needs partition_by = "column"')
        return mode


class FilesSink(SinkConnector):
    """Writes a node to one file, or one file per partition value (Hive style)."""

    type = "files"
    Config = FilesSinkConfig
    config: FilesSinkConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from headwater.connectors.files.source import with_env_path

        super().__init__(*args, **kwargs)
        self.config = with_env_path(self.config, self.config_path)
        self._s3: S3 | None = None

    @property
    def on_s3(self) -> bool:
        return is_s3(self.config.path)

    def s3(self) -> S3:
        if self._s3 is None:
            from headwater.connectors.s3 import S3

            self._s3 = S3(self.config, who=f"sink {self.name!r}", config_path=self.config_path)
        return self._s3

    def describe(self) -> dict[str, object]:
        """Configuration safe to show (credentials only as ``${VAR}`` references)."""
        return mask_credentials(self.config.model_dump(exclude={"description", "tags"}))

    def target(self) -> Path:
        p = Path(self.config.path)
        return p if p.is_absolute() else self.root / p

    def fmt(self) -> str:
        if self.config.format:
            return self.config.format
        if self.config.partition_by:
            return "parquet"
        name = self.config.path.lower()
        if name.endswith(".csv"):
            return "csv"
        if name.endswith((".ndjson", ".jsonl", ".json")):
            return "ndjson"
        return "parquet"

    def write(self, data: SinkInput) -> SinkResult:
        if self.config.partition_by:
            return self._write_partitions(data, self.config.partition_by)
        if self.on_s3:
            return SinkResult(self._upload(data.reader(), self.config.path))
        return SinkResult(self._write_local(data.reader(), self.target()))

    # -- one file -------------------------------------------------------------------------

    def _write_local(
        self, data: pa.RecordBatchReader, target: Path, drop: str | None = None
    ) -> int:
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            rows = _write_file(data, tmp, self.fmt(), drop)
            os.replace(tmp, target)
        except OSError as exc:
            _remove(tmp)
            raise ConnectorError(
                f"sink {self.name!r}: cannot write {target}: {exc.strerror or exc}",
                path=self.config_path,
            ) from None
        except BaseException:
            _remove(tmp)
            raise
        return rows

    def _upload(self, data: pa.RecordBatchReader, url: str, drop: str | None = None) -> int:
        scratch = Scratch()
        try:
            tmp = scratch.path(url.rsplit("/", 1)[-1] or "part")
            try:
                rows = _write_file(data, tmp, self.fmt(), drop)
            except OSError as exc:
                raise ConnectorError(
                    f"sink {self.name!r}: cannot write a temporary file for {url}: "
                    f"{exc.strerror or exc}",
                    path=self.config_path,
                ) from None
            self.s3().upload(tmp, url)
            return rows
        finally:
            scratch.cleanup()

    # -- partitions -----------------------------------------------------------------------

    def _part_name(self, column: str, value: str) -> str:
        folder = HIVE_NULL if value == NULL_PARTITION else quote(value, safe=" -_.~+,@")
        return f"{column}={folder}/part.{_SINK_EXTENSIONS[self.fmt()]}"

    def _existing(self, column: str) -> dict[str, str]:
        """Partition value -> file (path or URL) of the partitions already written."""
        suffix = f"/part.{_SINK_EXTENSIONS[self.fmt()]}"
        found: dict[str, str] = {}
        if self.on_s3:
            base = self.config.path.rstrip("/")
            bucket, key = split_url(base)
            prefix = f"{key}/{column}=" if key else f"{column}="
            for obj in self.s3().list_prefix(bucket, prefix):
                rest = obj.key[len(prefix):]
                if rest.endswith(suffix) and "/" not in rest[: -len(suffix)]:
                    found[_value_of(rest[: -len(suffix)])] = obj.url
        else:
            base_dir = self.target()
            if base_dir.is_dir():
                for d in base_dir.glob(f"{globmod.escape(column)}=*"):
                    f = d / suffix[1:]
                    if f.is_file():
                        found[_value_of(d.name.split("=", 1)[1])] = str(f)
        return found

    def _write_partitions(self, data: SinkInput, column: str) -> SinkResult:
        if column not in data.schema.names:
            raise key_error(
                f"sink {self.name!r}: partition_by column {column!r} is not in "
                f"{data.node} (columns: {', '.join(data.schema.names)})",
                self.config_path, "partition_by",
            )
        fps = data.partition_fingerprints(column)
        existing = self._existing(column)
        previous = data.previous_partitions if self.config.mode == "sync" else {}
        rows = 0
        base = self.config.path.rstrip("/")
        for value, fp in sorted(fps.items()):
            if previous.get(value) == fp and value in existing:
                continue  # unchanged since the last write, and still there
            reader = self._partition_rows(data, column, value)
            name = self._part_name(column, value)
            if self.on_s3:
                rows += self._upload(reader, f"{base}/{name}", drop=column)
            else:
                rows += self._write_local(reader, self.target() / name, drop=column)
        stale = [where for value, where in existing.items() if value not in fps]
        if stale:
            self._delete(stale)
        return SinkResult(rows, partitions=dict(fps))

    def _partition_rows(self, data: SinkInput, column: str, value: str) -> pa.RecordBatchReader:
        """The rows of one partition (NULL_PARTITION selects the NULL rows)."""
        return data.partition_reader(column, value)

    def _delete(self, where: list[str]) -> None:
        if self.on_s3:
            self.s3().delete(where)
            return
        for f in where:
            p = Path(f)
            try:
                p.unlink(missing_ok=True)
                p.parent.rmdir()  # only when empty
            except OSError:
                pass


def _remove(tmp: Path) -> None:
    """Remove a temporary file if it is there; never mask the error being handled
    (its folder may be missing or be a file: that is often the error itself)."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


def _value_of(folder: str) -> str:
    return NULL_PARTITION if folder == HIVE_NULL else unquote(folder)


def _write_file(data: pa.RecordBatchReader, dest: Path, fmt: str, drop: str | None) -> int:
    """Write ``data`` (less the column ``drop``) to ``dest``; the number of rows."""
    import pyarrow as pa

    schema = data.schema
    if drop is not None:
        schema = schema.remove(schema.get_field_index(drop))

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in data:
            yield batch.drop_columns([drop]) if drop is not None else batch

    rows = 0
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetWriter(dest, schema) as writer:
            for batch in batches():
                writer.write_batch(batch)
                rows += batch.num_rows
    elif fmt == "csv":
        import pyarrow.csv as pacsv

        with pacsv.CSVWriter(dest, schema) as writer:
            for batch in batches():
                writer.write_batch(batch)
                rows += batch.num_rows
    else:  # ndjson, through DuckDB: it writes every Arrow type as sensible JSON
        import duckdb

        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")  # stdout belongs to the CLI (--json)
        try:
            con.register("__hw_sink", pa.RecordBatchReader.from_batches(schema, batches()))
            row = con.execute("COPY __hw_sink TO $path (FORMAT json)", {"path": str(dest)})
            result = row.fetchone()
            rows = int(result[0]) if result else 0
        finally:
            con.close()
    return rows
