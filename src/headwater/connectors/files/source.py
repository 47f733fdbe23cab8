"""Files, local or on S3: a glob of CSV/TSV, Parquet or (ND)JSON in (the sink, Parquet,
CSV or NDJSON out, is ``headwater.connectors.files.sink``).

Reading goes through an in-memory DuckDB (its readers infer and unify schemas
across files, decompress gzip/zstd and are fast). ``s3://`` objects are first
downloaded to a temporary folder with boto3 (see ``headwater.connectors.s3``);
DuckDB's httpfs extension is never needed.

Bad rows (``on_bad_rows``): with ``"fail"`` the first unparsable CSV or NDJSON
line is an error naming the file and line; with ``"quarantine"`` bad lines are
skipped and :meth:`FilesSource.rejects` returns them (location ``file:line``,
reason, raw text). For CSV that is DuckDB's ``store_rejects``; NDJSON lines are
checked in Python before DuckDB reads the good ones.
"""

from __future__ import annotations

import codecs
import functools
import glob as globmod
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    import pyarrow as pa

    from headwater.connectors.s3 import S3, S3Object

from headwater.connectors.base import (
    SourceConfig,
    SourceConnector,
)
from headwater.connectors.s3 import S3Settings, is_s3, mask_credentials, split_url
from headwater.core.quoting import quote_ident as _q
from headwater.engines.base import PARTITION_COLUMN
from headwater.errors import ConnectorError

FORMATS = ("csv", "tsv", "parquet", "ndjson", "json")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet",
               ".pq": "parquet", ".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "json"}
_COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
# encodings DuckDB's CSV reader handles itself; anything else is transcoded in Python
_DUCKDB_ENCODINGS = {"utf-8": "utf-8", "utf-16": "utf-16", "iso8859-1": "latin-1"}
_TYPE_TEXT = re.compile(r"^[A-Za-z][A-Za-z0-9_ ,()\[\]]*$")
_BATCH_ROWS = 256_000
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def _split_compression(name: str) -> tuple[str, str | None]:
    """``a.csv.gz`` -> (``a.csv``, ``gzip``)."""
    lower = name.lower()
    for ext, comp in _COMPRESSIONS.items():
        if lower.endswith(ext):
            return name[: -len(ext)], comp
    return name, None


def _file_format(name: str) -> str | None:
    base, _ = _split_compression(name)
    return _EXTENSIONS.get(os.path.splitext(base)[1].lower())


def _read_text(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def key_error(
    message: str, config_path: Path, key: str, hint: str | None = None
) -> ConnectorError:
    """A ConnectorError pointing at ``key = ...`` in the connector's TOML file."""
    from headwater.core.config import value_position
    from headwater.errors import caret_snippet

    text = _read_text(config_path)
    line, col = value_position(text, key) if text else (None, None)
    return ConnectorError(
        message,
        path=config_path,
        line=line,
        column=col,
        snippet=caret_snippet(text, line, col) if line else None,
        hint=hint,
    )


class Scratch:
    """A temporary folder made on first use, removed by ``cleanup``."""

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._n = 0

    def path(self, name: str) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="headwater-files-"))
        self._n += 1
        sub = self._dir / str(self._n)
        sub.mkdir()
        return sub / name

    def cleanup(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


# -- source -------------------------------------------------------------------------------


PATH_COLUMN = "__hw_path"


class FilesSourceConfig(SourceConfig, S3Settings):
    type: Literal["files"] = "files"
    path: str
    format: Literal["csv", "tsv", "parquet", "ndjson", "json"] | None = None
    compression: Literal["auto", "none", "gzip", "zstd"] = "auto"
    delimiter: str | None = None
    header: bool = True
    encoding: str = "utf-8"
    date_format: str | None = None
    timestamp_format: str | None = None
    columns: dict[str, str] = {}
    # a file that disappears: its rows go too ("remove"), or stay loaded ("keep": a
    # landing folder that is cleaned up after files were read)
    deleted_files: Literal["remove", "keep"] = "remove"

    @property
    def declared_columns(self) -> dict[str, str]:
        return dict(self.columns)


class FilesSource(SourceConnector):
    type = "files"
    partitioned = True
    Config = FilesSourceConfig
    config: FilesSourceConfig

    @property
    def keeps_vanished(self) -> bool:
        return self.config.deleted_files == "keep"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config = with_env_path(self.config, self.config_path)
        self._rejects: pa.Table | None = None
        self._s3: S3 | None = None
        # an error raised while the reader was consumed (see _stream_failed)
        self.stream_error: ConnectorError | None = None
        # set by ingestion: read only these partitions, and tag each row with its own
        self.only_partitions: set[str] | None = None
        self.tag_partitions = False
        # after read(): the columns each file (by its partition name) has, where the
        # format says so without a scan (a CSV header, a Parquet schema)
        self.part_columns: dict[str, list[str]] = {}

    # -- which files ----------------------------------------------------------------------

    @property
    def on_s3(self) -> bool:
        return is_s3(self.config.path)

    def s3(self) -> S3:
        if self._s3 is None:
            from headwater.connectors.s3 import S3

            self._s3 = S3(self.config, who=f"source {self.name!r}", config_path=self.config_path)
        return self._s3

    def describe(self) -> dict[str, object]:
        return mask_credentials(super().describe())

    def files(self) -> list[Path]:
        """The local files the glob matches (sorted); an error when there are none."""
        pattern = self.config.path
        full = pattern if os.path.isabs(pattern) else str(self.root / pattern)
        found = sorted(Path(p) for p in globmod.glob(full, recursive=True) if os.path.isfile(p))
        if not found:
            raise self._no_files(pattern, full)
        return found

    def objects(self) -> list[S3Object]:
        """The S3 objects the ``s3://`` glob matches (sorted by key); an error when none."""
        s3 = self.s3()
        url = self.config.path
        found = s3.glob(url)
        if not found:
            bucket, key = split_url(url)
            cut = min([key.index(c) for c in "*?[" if c in key] or [len(key)])
            prefix = key[:cut].rsplit("/", 1)[0] + "/" if "/" in key[:cut] else ""
            near = [o.key for _, o in zip(range(5), s3.list_prefix(bucket, prefix), strict=False)]
            seen = (
                f"objects under s3://{bucket}/{prefix} include: {', '.join(near)}"
                if near else f"there is nothing under s3://{bucket}/{prefix}"
            )
            raise key_error(
                f"source {self.name!r}: path {url!r} matches no objects",
                self.config_path,
                "path",
                hint=f"{seen}; fix the glob (e.g. \"s3://bucket/data/*.csv\") or upload the data",
            )
        return found

    def _no_files(self, pattern: str, full: str) -> ConnectorError:
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
        return key_error(
            f"source {self.name!r}: path {pattern!r} matches no files",
            self.config_path,
            "path",
            hint=f"{why}fix the glob ({where}, e.g. \"data/*.csv\") or add the data files",
        )

    def _display(self, f: Path) -> str:
        return str(f.relative_to(self.root)) if f.is_relative_to(self.root) else str(f)

    def format(self, name: str) -> str:
        """The configured format, or the one ``name``'s extension says."""
        if self.config.format:
            return self.config.format
        fmt = _file_format(name)
        if fmt is None:
            raise key_error(
                f"source {self.name!r}: cannot tell the format of {name}",
                self.config_path,
                "path",
                hint='set format = "csv" | "tsv" | "parquet" | "ndjson" | "json"',
            )
        return fmt

    def data_fingerprint(self) -> str:
        """Paths and content digests of every file, plus the config.

        A local file's digest is recomputed only when its stat changed (size,
        modification and change time, inode: see ``headwater.connectors.filecache``),
        so touching a file or re-delivering identical content is not a change, and an
        edit in place with its modification time restored is. An S3 object's digest
        is its ETag, from one listing.
        """
        h = hashlib.sha256(self.config.model_dump_json().encode())
        for rel, digest in self.partitions():
            h.update(f"{rel}\0{digest}\n".encode())
        return h.hexdigest()

    def partitions(self) -> list[tuple[str, str]]:
        """Each file (relative path, or ``s3://`` URL) with its content digest (or ETag)."""
        if self.on_s3:
            return [(o.url, o.etag) for o in self.objects()]
        from headwater.connectors.filecache import FileDigests

        cache = self.hash_cache if self.hash_cache is not None else FileDigests()
        out = []
        for f in self.files():
            digest = cache.digest(str(f), f.stat(), functools.partial(_file_digest, f))
            out.append((self._display(f), digest))
        return out

    def rejects(self) -> pa.Table | None:
        """Lines the last ``read`` skipped (``on_bad_rows = "quarantine"``), once it is consumed."""
        return self._rejects

    # -- reading --------------------------------------------------------------------------

    def read(self, since: Any | None = None) -> pa.RecordBatchReader:
        """All rows of all matched files (``since`` is ignored: files sources are full loads)."""
        import duckdb
        import pyarrow as pa

        self._rejects = None
        self.stream_error = None
        scratch = Scratch()
        con: Any = None
        try:
            inputs = self._inputs(scratch)
            fmt = self.format(inputs[0][1])
            if fmt == "parquet" and self.config.compression not in ("auto", "none"):
                raise key_error(
                    f"source {self.name!r}: compression does not apply to Parquet files",
                    self.config_path, "compression",
                    hint="Parquet compresses inside the file; remove the compression key",
                )
            types = self._types()
            inputs, compression, encoding, early_rejects = self._prepare(inputs, fmt, scratch)
            self.part_columns = self._columns_of(inputs, fmt)
            quarantine = self.config.on_bad_rows == "quarantine"
            # DuckDB's reject store also makes its CSV sniffer tolerate a few bad lines
            # (without it one over-long line can turn the file into a single column),
            # so it is on in both modes; "fail" raises on the first stored reject.
            store_rejects = fmt in ("csv", "tsv")
            shown = {str(p): d for p, d in inputs}
            sql, params = self._query(fmt, [str(p) for p, _ in inputs], compression, encoding,
                                      types, store_rejects=store_rejects)
            if self.tag_partitions:
                # the partition (file) each row came from, as shown in partitions()
                params = {**params, "hw_paths": [str(p) for p, _ in inputs],
                          "hw_labels": [d for _, d in inputs]}
                sql = (f"SELECT * EXCLUDE ({_q(PATH_COLUMN)}), ($hw_labels)"
                       f"[list_position($hw_paths, {_q(PATH_COLUMN)})] AS {_q(PARTITION_COLUMN)}"
                       f" FROM ({sql})")
            con = duckdb.connect()
            con.execute("SET enable_progress_bar = false")  # stdout belongs to the CLI (--json)
            try:
                rel = con.sql(sql, params=params)
                empty = [d for p, d in inputs if p.stat().st_size == 0]
                if len(empty) == len(inputs) or not [
                        c for c in rel.columns if c not in (PATH_COLUMN, PARTITION_COLUMN)]:
                    raise ConnectorError(
                        f"source {self.name!r}: the files hold no columns"
                        + (f" ({', '.join(empty[:3])} {'is' if len(empty) == 1 else 'are'}"
                           " empty)" if empty else ""),
                        path=self.config_path,
                        hint="a CSV needs at least a header line; deliver the file again, or"
                        " move the empty file away")
                if types:
                    missing = [c for c in types if c not in rel.columns]
                    if missing:
                        raise key_error(
                            f"source {self.name!r}: columns: no column {', '.join(missing)} "
                            "in the data",
                            self.config_path, "columns",
                            hint=f"the files have: {', '.join(rel.columns)}",
                        )
                    if fmt not in ("csv", "tsv"):  # the CSV reader applies them itself
                        casts = ", ".join(f"CAST({_q(c)} AS {t}) AS {_q(c)}"
                                          for c, t in types.items())
                        rel = con.sql(f"SELECT * REPLACE ({casts}) FROM ({sql})", params=params)
                reader = rel.to_arrow_reader(_BATCH_ROWS)
                # a header read differently from DuckDB (quoting, spaces) tells nothing:
                # those files' columns are then found from the data
                read = set(reader.schema.names)
                self.part_columns = {k: v for k, v in self.part_columns.items()
                                     if set(v) <= read}
            except duckdb.Error as exc:
                raise self._read_error(exc, fmt, inputs, compression) from None
        except BaseException:
            if con is not None:
                con.close()
            scratch.cleanup()
            raise

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                try:
                    yield from reader
                except (duckdb.Error, pa.ArrowException, OSError) as exc:
                    raise self._stream_failed(
                        self._read_error(exc, fmt, inputs, compression)
                    ) from None
                rows = early_rejects + (_duckdb_rejects(con, shown) if store_rejects else [])
                if quarantine:
                    self._rejects = _rejects_table(rows)
                elif rows:
                    raise self._stream_failed(self._bad_row_error(*rows[0]))
            finally:
                con.close()
                scratch.cleanup()

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def _columns_of(self, inputs: list[tuple[Path, str]], fmt: str) -> dict[str, list[str]]:
        """Each file's own columns: a clean read of all files has the union of them."""
        out: dict[str, list[str]] = {}
        for path, shown in inputs:
            cols: set[str] | None = None
            if fmt in ("csv", "tsv") and self.config.header:
                cols = _header_columns(str(path), self.config.delimiter or (
                    "\t" if fmt == "tsv" else ","))
            elif fmt == "parquet":
                try:
                    import pyarrow.parquet as pq

                    cols = set(pq.read_schema(path).names)
                except Exception:  # noqa: BLE001 - DuckDB's read reports a bad file
                    cols = None
            if cols is not None:
                out[shown] = sorted(cols)
        return out

    def _inputs(self, scratch: Scratch) -> list[tuple[Path, str]]:
        """(local file, name to show) for every file to read; S3 objects are downloaded."""
        only = self.only_partitions
        if not self.on_s3:
            return [(f, self._display(f)) for f in self.files()
                    if only is None or self._display(f) in only]
        s3 = self.s3()
        out = []
        for obj in self.objects():
            if only is not None and obj.url not in only:
                continue
            dest = scratch.path(obj.key.rsplit("/", 1)[-1] or "object")
            s3.download(obj, dest)
            out.append((dest, obj.url))
        return out

    def _types(self) -> dict[str, str]:
        """``columns`` with every type checked (and spelled the way DuckDB spells it)."""
        import duckdb

        out = {}
        for col, typ in self.config.columns.items():
            try:
                if not _TYPE_TEXT.match(typ):
                    raise ValueError(typ)
                out[col] = str(duckdb.sqltype(typ))
            except (ValueError, duckdb.Error):
                raise key_error(
                    f"source {self.name!r}: columns.{col}: {typ!r} is not a type",
                    self.config_path, "columns",
                    hint="use a DuckDB type: VARCHAR, BIGINT, DOUBLE, DECIMAL(18,2), DATE, "
                    "TIMESTAMP, BOOLEAN ...",
                ) from None
        return out

    def _compression_of(self, name: str) -> str | None:
        c = self.config.compression
        if c == "auto":
            return _split_compression(name)[1]
        return None if c == "none" else c

    def _prepare(
        self, inputs: list[tuple[Path, str]], fmt: str, scratch: Scratch
    ) -> tuple[list[tuple[Path, str]], str, str | None, list[tuple[str, str, str]]]:
        """Transcode or line-check files in Python where DuckDB alone cannot.

        Returns the files DuckDB reads, the compression and encoding to tell it
        (None: UTF-8), and the lines already rejected (NDJSON in quarantine mode).
        """
        if fmt == "parquet":
            return inputs, "auto", None, []
        try:
            encoding = codecs.lookup(self.config.encoding).name
        except LookupError:
            raise key_error(
                f"source {self.name!r}: unknown encoding {self.config.encoding!r}",
                self.config_path, "encoding",
                hint='e.g. "utf-8", "latin-1", "cp1252", "utf-16"',
            ) from None
        transcode = encoding != "utf-8" and (
            fmt not in ("csv", "tsv") or encoding not in _DUCKDB_ENCODINGS
        )
        check_lines = fmt == "ndjson" and self.config.on_bad_rows == "quarantine"
        if not (transcode or check_lines):
            native = _DUCKDB_ENCODINGS.get(encoding)
            return inputs, self.config.compression, None if native == "utf-8" else native, []
        out: list[tuple[Path, str]] = []
        rejects: list[tuple[str, str, str]] = []
        for src, shown in inputs:
            base = _split_compression(src.name)[0] if self._compression_of(src.name) else src.name
            dest = scratch.path(base)
            with _open_text(src, self._compression_of(src.name), encoding, shown, self) as text, \
                    open(dest, "w", encoding="utf-8", newline="") as sink:
                if check_lines:
                    for n, line in enumerate(text, 1):
                        problem = _json_line_problem(line)
                        if problem:
                            rejects.append((f"{shown}:{n}", problem, line.rstrip("\r\n")))
                        else:
                            sink.write(line)
                else:
                    shutil.copyfileobj(text, sink, 1 << 20)
            out.append((dest, shown))
        return out, "none", None, rejects

    def _query(
        self,
        fmt: str,
        names: list[str],
        compression: str,
        encoding: str | None,
        types: dict[str, str],
        *,
        store_rejects: bool,
    ) -> tuple[str, dict[str, Any]]:
        """DuckDB SQL reading ``names``; every config value is a bound parameter."""
        cfg = self.config
        opts: dict[str, Any] = {}
        if fmt in ("csv", "tsv"):
            func = "read_csv"
            opts["header"] = cfg.header
            delimiter = cfg.delimiter or ("\t" if fmt == "tsv" else None)
            if delimiter:
                opts["delim"] = delimiter
            if types:
                opts["types"] = types
            if encoding:
                opts["encoding"] = encoding
            if store_rejects:
                opts["store_rejects"] = True
        elif fmt == "parquet":
            func = "read_parquet"
            opts["union_by_name"] = True
        else:
            func = "read_json"
            opts["format"] = "newline_delimited" if fmt == "ndjson" else "auto"
            # every line an object: a stray array or number is a bad row, never a reason to
            # read the whole source as one column of raw JSON
            opts["records"] = True
            opts["union_by_name"] = True  # files may differ in their keys (schema drift)
        if fmt != "parquet":
            if cfg.date_format:
                opts["dateformat"] = cfg.date_format
            if cfg.timestamp_format:
                opts["timestampformat"] = cfg.timestamp_format
            if compression in ("none", "gzip", "zstd"):
                opts["compression"] = compression
        if self.tag_partitions:
            opts["filename"] = PATH_COLUMN
        groups = _by_header(names) if func == "read_csv" and cfg.header else [names]
        if len(groups) == 1:
            args = "".join(f", {k} = ${k}" for k in opts)
            return f"SELECT * FROM {func}($files{args})", {"files": names, **opts}
        # CSV files whose headers differ (a column added or dropped from some day on): one
        # read per header, matched by column name, as union_by_name does for the other
        # formats (DuckDB's CSV reader cannot keep rejects and union by name at once)
        params: dict[str, Any] = {}
        parts = []
        for i, group in enumerate(groups):
            header = _header_columns(group[0], delimiter or ",")
            mine = dict(opts)
            if types and header is not None:
                mine["types"] = {c: t for c, t in types.items() if c in header}
                if not mine["types"]:
                    del mine["types"]
            args = "".join(f", {k} = ${k}_{i}" for k in mine)
            parts.append(f"SELECT * FROM {func}($files_{i}{args})")
            params.update({f"files_{i}": group, **{f"{k}_{i}": v for k, v in mine.items()}})
        return " UNION ALL BY NAME ".join(parts), params

    # -- errors ---------------------------------------------------------------------------

    def _stream_failed(self, err: ConnectorError) -> ConnectorError:
        """Remember an error raised while the reader is consumed.

        The consumer (a DuckDB scan of the Arrow stream) reports only a text
        version of it; the caller can re-raise :attr:`stream_error` instead.
        """
        self.stream_error = err
        return err

    def _bad_row_error(self, location: str, reason: str, raw: str) -> ConnectorError:
        where, _, n = location.rpartition(":")
        line = int(n)
        # the original file (what is read may be a downloaded or transcoded copy)
        local = None if self.on_s3 else (
            Path(where) if Path(where).is_absolute() else self.root / where)
        col = re.search(r'converting column "([^"]+)"', reason)
        if col:
            fix = f'set columns = {{ {col.group(1)} = "VARCHAR" }} to read it as text, '
        elif "unicode" in reason.lower() or "utf-8" in reason.lower():
            fix = 'set encoding = "..." to the file\'s encoding (e.g. "cp1252", "latin-1"), '
        else:
            fix = ""
        return ConnectorError(
            f"source {self.name!r}: bad row in {where} line {line}: {reason}",
            path=local,
            line=line if local else None,
            snippet=f"{line:>4} | {raw[:300]}",
            hint=f"{fix}fix the line, or set on_bad_rows = \"quarantine\" in "
            f"{self.config_path.name} to load the good rows and keep the bad ones in "
            f"{self.name}__rejected",
        )

    def _read_error(
        self, exc: Exception, fmt: str, inputs: list[tuple[Path, str]], compression: str
    ) -> ConnectorError:
        """The most useful error for a failed read: the first bad line when one is to blame."""
        if fmt in ("ndjson", "json"):
            bad = self._first_bad_json_line(inputs, compression)
            if bad is not None:
                return self._bad_row_error(*bad)
        text = str(exc).strip()
        msg = text.splitlines()[0] if text else type(exc).__name__
        for p, d in {str(p): d for p, d in inputs}.items():
            msg = msg.replace(p, d)
        if "Error when sniffing file" in msg:
            hint = ("check format, delimiter, encoding and compression (set them if they "
                    "cannot be guessed from the file name)")
        elif "COLUMN_TYPES" in msg:
            hint = "every column named in `columns` must exist in the files"
        elif "Could not convert" in msg or "Conversion Error" in msg:
            hint = "fix the data, or change the type given in `columns`"
        else:
            hint = None
        return ConnectorError(
            f"source {self.name!r}: cannot read {fmt} files: {msg}",
            path=self.config_path,
            hint=hint,
        )

    def _first_bad_json_line(
        self, inputs: list[tuple[Path, str]], compression: str
    ) -> tuple[str, str, str] | None:
        """(file:line, reason, raw) of the first line of NDJSON that is not a JSON object."""
        for path, shown in inputs:
            comp = _split_compression(path.name)[1] if compression == "auto" else (
                None if compression == "none" else compression)
            with _open_text(path, comp, "utf-8", shown, self) as text:
                started = False
                for n, line in enumerate(text, 1):
                    if not started and line.strip():
                        started = True
                        if line.lstrip().startswith("["):  # one JSON document, not lines
                            break
                    problem = _json_line_problem(line)
                    if problem:
                        return f"{shown}:{n}", problem, line.rstrip("\r\n")
        return None


def _json_line_problem(line: str) -> str | None:
    """Why an NDJSON line is not a record, or None (blank lines are fine)."""
    if not line.strip():
        return None
    try:
        value = json.loads(line)
    except ValueError as exc:
        return f"invalid JSON: {exc}"
    if not isinstance(value, dict):
        return f"not a JSON object (a {type(value).__name__})"
    return None


class _open_text:  # noqa: N801 - used like open()
    """A (decompressed, decoded) text stream over a file, errors as ConnectorErrors."""

    def __init__(
        self, path: Path, compression: str | None, encoding: str, shown: str, owner: FilesSource
    ) -> None:
        self.path, self.compression, self.encoding = path, compression, encoding
        self.shown, self.owner = shown, owner
        self._open: list[BinaryIO] = []

    def __enter__(self) -> Any:
        import io

        raw: Any = open(self.path, "rb")  # noqa: SIM115 - closed in __exit__
        self._open.append(raw)
        if self.compression == "gzip":
            import gzip

            raw = gzip.GzipFile(fileobj=raw, mode="rb")
        elif self.compression == "zstd":
            try:
                import zstandard
            except ImportError:
                self.__exit__()
                raise ConnectorError(
                    f"source {self.owner.name!r}: decompressing {self.shown} in Python needs "
                    "the zstandard package (for this encoding or on_bad_rows setting)",
                    path=self.owner.config_path,
                    hint="pip install zstandard",
                ) from None
            raw = zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
        self._open.append(raw)
        return _ErrorsAsConnector(
            io.TextIOWrapper(raw, encoding=self.encoding, newline=""), self.shown, self.owner
        )

    def __exit__(self, *exc: object) -> None:
        while self._open:  # the (de)compressor first, then the file under it
            self._open.pop().close()


class _ErrorsAsConnector:
    """Wraps a text stream so decoding/decompression errors name the file."""

    def __init__(self, stream: Any, shown: str, owner: FilesSource) -> None:
        self.stream, self.shown, self.owner = stream, shown, owner

    def _fail(self, exc: Exception) -> ConnectorError:
        return ConnectorError(
            f"source {self.owner.name!r}: cannot read {self.shown}: {exc}",
            path=self.owner.config_path,
            hint="check the encoding and compression settings",
        )

    def read(self, n: int = -1) -> str:
        try:
            return str(self.stream.read(n))
        except (UnicodeDecodeError, OSError, EOFError, ValueError) as exc:
            raise self._fail(exc) from None

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self.stream
        except (UnicodeDecodeError, OSError, EOFError, ValueError) as exc:
            raise self._fail(exc) from None


def _duckdb_rejects(
    con: Any, shown: dict[str, str], limit: int | None = None
) -> list[tuple[str, str, str]]:
    """(file:line, reason, raw line) of DuckDB's ``store_rejects`` tables, one per bad line."""
    sql = """
        SELECT s.file_path, e.line,
               string_agg(e.error_message, '; ' ORDER BY e.column_idx) AS reason,
               any_value(e.csv_line) AS raw
        FROM reject_errors e
        JOIN reject_scans s ON e.scan_id = s.scan_id AND e.file_id = s.file_id
        GROUP BY s.file_path, e.file_id, e.line
        ORDER BY e.file_id, e.line
    """
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    rows = con.execute(sql).fetchall()
    return [(f"{shown.get(f, f)}:{line}", str(reason), str(raw or "")) for f, line, reason, raw
            in rows]


def _rejects_table(rows: list[tuple[str, str, str]]) -> pa.Table:
    import pyarrow as pa

    return pa.table({
        "location": pa.array([r[0] for r in rows], pa.string()),
        "reason": pa.array([r[1] for r in rows], pa.string()),
        "raw": pa.array([r[2] for r in rows], pa.string()),
    })


def _first_line(path: str) -> bytes | None:
    """The first line of a (possibly gzip or zstd compressed) file, or None if unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
        if head[:2] == b"\x1f\x8b":
            import zlib

            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head)
        elif head[:4] == b"\x28\xb5\x2f\xfd":
            import zstandard

            head = zstandard.ZstdDecompressor().decompressobj().decompress(head)
    except Exception:  # noqa: BLE001 - a header that cannot be read groups on its own
        return None
    return head.split(b"\n", 1)[0].rstrip(b"\r")


def _by_header(names: list[str]) -> list[list[str]]:
    """CSV files grouped by their header line (in order of first appearance)."""
    groups: dict[bytes | None, list[str]] = {}
    for name in names:
        groups.setdefault(_first_line(name), []).append(name)
    if None in groups and len(groups) > 1:
        return [names]  # a header we cannot read: one read, DuckDB says what is wrong
    return list(groups.values())


def _header_columns(path: str, delimiter: str) -> set[str] | None:
    import csv

    line = _first_line(path)
    if line is None:
        return None
    try:
        row = next(csv.reader([line.decode("utf-8", "replace")], delimiter=delimiter[:1]))
    except (csv.Error, StopIteration):
        return None
    return {c.strip() for c in row}


def _file_digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "blake2b").hexdigest()[:32]


class _HasPath(Protocol):
    path: str

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Any: ...


C = TypeVar("C", bound=_HasPath)


def with_env_path(config: C, config_path: Path) -> C:
    """``config`` with the ``${VAR}``s of its ``path`` replaced by their values (an unset
    one is an error naming it). The fingerprints keep the reference, not the value."""
    if "${" not in config.path:
        return config
    from headwater.core.config import resolve_env

    copy: C = config.model_copy(update={"path": resolve_env(config.path, path=config_path,
                                                             key="path")})
    return copy

