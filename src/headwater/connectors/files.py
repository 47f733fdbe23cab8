"""Local files: a glob of CSV, Parquet or NDJSON in; Parquet or CSV out.

Reading goes through an in-memory DuckDB (its readers infer and unify schemas
across files and are fast); writing through pyarrow into a temporary file that
replaces the target only when complete.
"""

from __future__ import annotations

import glob as globmod
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pyarrow as pa

from headwater.connectors.base import (
    SinkConfig,
    SinkConnector,
    SinkInput,
    SinkResult,
    SourceConfig,
    SourceConnector,
)
from headwater.errors import ConnectorError

FORMATS = ("csv", "parquet", "ndjson")
_EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".ndjson": "ndjson",
               ".jsonl": "ndjson", ".json": "ndjson"}


class FilesSourceConfig(SourceConfig):
    type: Literal["files"] = "files"
    path: str
    format: Literal["csv", "parquet", "ndjson"] | None = None
    delimiter: str | None = None
    header: bool = True
    columns: dict[str, str] = {}


class FilesSource(SourceConnector):
    type = "files"
    Config = FilesSourceConfig
    config: FilesSourceConfig

    def files(self) -> list[Path]:
        pattern = self.config.path
        full = pattern if os.path.isabs(pattern) else str(self.root / pattern)
        found = sorted(Path(p) for p in globmod.glob(full, recursive=True) if os.path.isfile(p))
        if not found:
            raise self._no_files(pattern, full)
        return found

    def _no_files(self, pattern: str, full: str) -> ConnectorError:
        from headwater.config import value_position
        from headwater.errors import caret_snippet

        try:
            text = self.config_path.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
        line, col = value_position(text, "path") if text else (None, None)
        base = Path(full)
        while globmod.has_magic(str(base)) and base != base.parent:
            base = base.parent
        if base == Path(full):  # a plain file name: look at its folder
            base = base.parent
        if not base.exists():
            rel = base.relative_to(self.root) if base.is_relative_to(self.root) else base
            why = f"the folder {str(rel)!r} does not exist; "
        else:
            why = ""
        where = "relative to the project folder" if not os.path.isabs(pattern) else "absolute"
        return ConnectorError(
            f"source {self.name!r}: path {pattern!r} matches no files",
            path=self.config_path,
            line=line,
            column=col,
            snippet=caret_snippet(text, line, col) if line else None,
            hint=f"{why}fix the glob ({where}, e.g. \"data/*.csv\") or add the data files",
        )

    def format(self, files: list[Path]) -> str:
        if self.config.format:
            return self.config.format
        fmt = _EXTENSIONS.get(files[0].suffix.lower())
        if fmt is None:
            raise ConnectorError(
                f"source {self.name!r}: cannot tell the format of {files[0].name}",
                path=self.config_path,
                hint='set format = "csv" | "parquet" | "ndjson"',
            )
        return fmt

    def data_fingerprint(self) -> str:
        """Paths and content digests of every file, plus the config.

        A file's digest is recomputed only when its size or modification time
        changed (``hash_cache`` remembers the rest), so touching a file or
        re-delivering identical content is not a change.
        """
        h = hashlib.sha256(self.config.model_dump_json().encode())
        for rel, digest in self.partitions():
            h.update(f"{rel}\0{digest}\n".encode())
        return h.hexdigest()

    def partitions(self) -> list[tuple[str, str]]:
        """Each file (relative path) with its content digest."""
        out = []
        for f in self.files():
            st = f.stat()
            key = str(f)
            hit = self.hash_cache.get(key) if self.hash_cache is not None else None
            if hit is not None and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
                digest = hit[2]
            else:
                digest = _file_digest(f)
                if self.hash_cache is not None:
                    self.hash_cache[key] = (st.st_size, st.st_mtime_ns, digest)
            rel = str(f.relative_to(self.root)) if f.is_relative_to(self.root) else key
            out.append((rel, digest))
        return out

    def read(self, since: Any | None = None) -> pa.RecordBatchReader:
        import duckdb

        files = self.files()
        fmt = self.format(files)
        names = [str(f) for f in files]
        con = duckdb.connect()
        try:
            if fmt == "csv":
                kwargs: dict[str, Any] = {"header": self.config.header}
                if self.config.delimiter:
                    kwargs["sep"] = self.config.delimiter
                if self.config.columns:
                    kwargs["dtype"] = self.config.columns
                rel = con.read_csv(names, **kwargs)
            elif fmt == "parquet":
                rel = con.read_parquet(names)
            else:
                rel = con.read_json(names, format="newline_delimited")
            return _OwningReader(rel.to_arrow_reader(256_000), con).reader
        except duckdb.Error as exc:
            con.close()
            raise ConnectorError(
                f"source {self.name!r}: cannot read {fmt} files: {exc}",
                path=self.config_path,
            ) from None


def _file_digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "blake2b").hexdigest()[:32]


class _OwningReader:
    """Keeps the DuckDB connection alive for as long as the reader is used."""

    def __init__(self, reader: pa.RecordBatchReader, con: object) -> None:
        self._con = con

        def batches() -> object:
            try:
                yield from reader
            finally:
                self._con.close()  # type: ignore[attr-defined]

        import pyarrow as pa

        self.reader = pa.RecordBatchReader.from_batches(reader.schema, batches())


class FilesSinkConfig(SinkConfig):
    type: Literal["files"] = "files"
    path: str
    format: Literal["parquet", "csv"] | None = None


class FilesSink(SinkConnector):
    type = "files"
    Config = FilesSinkConfig
    config: FilesSinkConfig

    def target(self) -> Path:
        p = Path(self.config.path)
        return p if p.is_absolute() else self.root / p

    def write(self, data: SinkInput) -> SinkResult:
        return SinkResult(self._write(data.reader()))

    def _write(self, data: pa.RecordBatchReader) -> int:
        target = self.target()
        fmt = self.config.format or ("csv" if target.suffix.lower() == ".csv" else "parquet")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        rows = 0
        try:
            if fmt == "parquet":
                import pyarrow.parquet as pq

                with pq.ParquetWriter(tmp, data.schema) as writer:
                    for batch in data:
                        writer.write_batch(batch)
                        rows += batch.num_rows
            else:
                import pyarrow.csv as pacsv

                with pacsv.CSVWriter(tmp, data.schema) as writer:
                    for batch in data:
                        writer.write_batch(batch)
                        rows += batch.num_rows
            os.replace(tmp, target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ConnectorError(
                f"sink {self.name!r}: cannot write {target}: {exc.strerror or exc}",
                path=self.config_path,
            ) from None
        return rows
