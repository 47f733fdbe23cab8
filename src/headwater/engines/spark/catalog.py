"""The Spark engine's own catalog: one JSON file beside the data, written atomically.

Spark's default catalog lives in memory and forgets everything at exit, so the
warehouse keeps its own: for every physical table, its Spark schema and the
Parquet *segments* (immutable folders) that make up its current version; for
every environment, which physical table each public name points at; and the
small bookkeeping tables (``_hw_meta.windows``, ``_hw_meta.partitions``).

A change never touches a segment in place: an append adds a segment, a delete
writes the surviving rows into a new one. A commit appends one line to
``_hw_catalog.log`` (and fsyncs it); every ``LOG_LIMIT`` commits the whole catalog
is written to ``_hw_catalog.json`` (temp file + ``os.replace``) and the log starts
over. So a new version becomes current in one small write, a crash at any moment
leaves the previous version complete and current (a torn last line is ignored),
and a commit costs the size of the change, not of the catalog. Transactions
collect changes per thread and commit them in one line; a rollback only deletes
the segments it wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = 1
LOG_LIMIT = 500  # commits appended to the log before the next snapshot
META_TABLES: dict[str, list[str]] = {
    "windows": ["physical", "label", "fp"],
    "partitions": ["physical", "part", "digest"],
    "versions": ["base", "version", "snapshot", "made_at", "left_out"],  # engines.versioning
    "part_columns": ["physical", "part", "cols"],  # ingest: the columns each file had
}
_DELETED = object()


@dataclass(frozen=True)
class Entry:
    """One version of a table: Parquet segments + schema, or a view's SQL."""

    kind: str  # table | view
    schema: dict[str, Any]  # Spark StructType JSON
    segments: tuple[str, ...] = ()  # folders relative to <warehouse>/_hw
    sql: str | None = None  # view: Spark SQL whose tables are `_hw`.`physical`
    # segment -> [rows, sums of the high and low halves of each row's xxhash64]: they add up
    metrics: dict[str, list[Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "schema": self.schema}
        if self.kind == "view":
            out["sql"] = self.sql
        else:
            out["segments"] = list(self.segments)
            out["metrics"] = {s: m for s, m in self.metrics.items() if s in self.segments}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        return cls(data["kind"], data["schema"], tuple(data.get("segments", ())),
                   data.get("sql"), dict(data.get("metrics", {})))

    def with_segments(self, segments: tuple[str, ...], metrics: dict[str, list[Any]],
                      schema: dict[str, Any] | None = None) -> Entry:
        """This table with other segments (``metrics`` adds to the known ones)."""
        known = {s: m for s, m in {**self.metrics, **metrics}.items() if s in segments}
        return Entry(self.kind, schema or self.schema, segments, self.sql, known)

    @property
    def columns(self) -> list[str]:
        return [f["name"] for f in self.schema["fields"]]


@dataclass
class _Txn:
    depth: int = 0
    tables: dict[str, Any] = field(default_factory=dict)  # physical -> Entry | _DELETED
    # per bookkeeping table: rows removed and rows added, applied to the committed rows
    # at commit (two transactions touching different tables' rows must not clobber)
    meta: dict[str, list[tuple[list[list[Any]], list[list[Any]]]]] = field(
        default_factory=dict)
    written: list[str] = field(default_factory=list)  # segments created in the transaction


class Catalog:
    """Tables, published names and bookkeeping of one warehouse folder."""

    def __init__(self, warehouse: Path) -> None:
        self.warehouse = warehouse
        self.data_dir = warehouse / "_hw"
        self.path = warehouse / "_hw_catalog.json"  # snapshot
        self.log_path = warehouse / "_hw_catalog.log"  # one line per commit since
        self._seq = 0
        self._log_lines = 0
        self._lock = threading.RLock()
        self._local = threading.local()
        self.tables: dict[str, Entry] = {}
        self.published: dict[str, dict[str, str]] = {}
        self.meta: dict[str, list[list[Any]]] = {t: [] for t in META_TABLES}
        # segments referenced outside the catalog (the engine's temporary tables)
        self.also_live: Callable[[], set[str]] = set

    # -- persistence ------------------------------------------------------

    def load(self) -> None:
        """Read the snapshot, then replay the log records written after it."""
        seq = 0
        if self.path.exists():
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise RuntimeError(
                    f"{self.path}: unknown catalog format {data.get('format')!r}")
            self.tables = {k: Entry.from_json(v) for k, v in data["tables"].items()}
            self.published = data.get("published", {})
            self.meta = {t: data.get("meta", {}).get(t, []) for t in META_TABLES}
            seq = int(data.get("seq", 0))
        self._log_lines = 0
        if self.log_path.exists():
            for line in self.log_path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # torn by a crash mid-commit: that commit never happened
                self._log_lines += 1
                if int(record.get("seq", 0)) > seq:
                    self._replay(record)
                    seq = int(record["seq"])
        self._seq = seq

    def _replay(self, record: dict[str, Any]) -> None:
        for name, entry in record.get("tables", {}).items():
            if entry is None:
                self.tables.pop(name, None)
            else:
                self.tables[name] = Entry.from_json(entry)
        for env, name, physical in record.get("published", []):
            names = self.published.setdefault(env, {})
            if physical is None:
                names.pop(name, None)
            else:
                names[name] = physical
        for table, ops in record.get("meta", {}).items():
            self.meta[table] = _apply(self.meta[table], [(r, a) for r, a in ops])

    def _record(self, *, tables: dict[str, Entry | None] | None = None,
                published: list[list[Any]] | None = None,
                meta: dict[str, list[Any]] | None = None) -> None:
        """Persist one change already made in memory: a line appended to the log (fsynced),
        so a commit costs the size of the change, not of the catalog. The caller holds
        the lock."""
        self._seq += 1
        record: dict[str, Any] = {"seq": self._seq}
        if tables:
            record["tables"] = {k: v.to_json() if v is not None else None
                                for k, v in tables.items()}
        if published:
            record["published"] = published
        if meta:
            record["meta"] = meta
        self.warehouse.mkdir(parents=True, exist_ok=True)
        if not self.path.exists() or self._log_lines >= LOG_LIMIT:
            self._snapshot()
            return
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with open(self.log_path, "a+b") as fh:
            if fh.tell() > 0:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":  # a line torn by a crash stays a line of its own
                    line = "\n" + line
            fh.write(line.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        self._log_lines += 1

    def _snapshot(self) -> None:
        """Write the whole catalog (atomically) and start an empty log."""
        data = {"format": FORMAT, "seq": self._seq,
                "tables": {k: v.to_json() for k, v in self.tables.items()},
                "published": self.published, "meta": self.meta}
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        # records up to seq are in the snapshot; a crash before this truncation only
        # leaves records that load() skips
        with open(self.log_path, "w", encoding="utf-8"):
            pass
        self._log_lines = 0

    # -- transactions -----------------------------------------------------

    @property
    def _txn(self) -> _Txn | None:
        txn: _Txn | None = getattr(self._local, "txn", None)
        return txn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Changes inside become visible (to other threads and processes) together."""
        txn = self._txn
        if txn is not None:  # nested: part of the outer transaction
            txn.depth += 1
            try:
                yield
            finally:
                txn.depth -= 1
            return
        txn = self._local.txn = _Txn(depth=1)
        try:
            yield
        except BaseException:
            self._local.txn = None
            self._discard(txn.written)
            raise
        self._local.txn = None
        self._commit(txn)

    def _commit(self, txn: _Txn) -> None:
        with self._lock:
            doomed: list[str] = []
            for name, entry in txn.tables.items():
                old = self.tables.get(name)
                if entry is _DELETED:
                    self.tables.pop(name, None)
                else:
                    self.tables[name] = entry
                if old is not None:
                    keep = set(entry.segments) if entry is not _DELETED else set()
                    doomed += [s for s in old.segments if s not in keep]
            for table, ops in txn.meta.items():
                self.meta[table] = _apply(self.meta[table], ops)
            self._record(tables={k: None if v is _DELETED else v for k, v in txn.tables.items()},
                         meta={t: [list(op) for op in ops] for t, ops in txn.meta.items()})
            live = self._live_segments()
            doomed += [s for s in txn.written if s not in live]
        self._discard([s for s in doomed if s not in live])

    def _live_segments(self) -> set[str]:
        return {s for e in self.tables.values() for s in e.segments} | self.also_live()

    def _discard(self, segments: list[str]) -> None:
        for seg in segments:
            shutil.rmtree(self.data_dir / seg, ignore_errors=True)

    # -- reading and changing tables ---------------------------------------

    def get(self, name: str) -> Entry | None:
        txn = self._txn
        if txn is not None and name in txn.tables:
            entry = txn.tables[name]
            return None if entry is _DELETED else entry
        with self._lock:
            return self.tables.get(name)

    def put(self, name: str, entry: Entry | None) -> None:
        """Set (or with None, drop) a table's current version."""
        with self.transaction():
            txn = self._txn
            assert txn is not None
            txn.tables[name] = _DELETED if entry is None else entry

    def new_segment(self, owner: str) -> tuple[str, Path]:
        """A fresh segment folder name (relative) and path; deleted on rollback."""
        rel = f"{owner}/{uuid.uuid4().hex}"
        txn = self._txn
        if txn is not None:
            txn.written.append(rel)
        return rel, self.data_dir / rel

    def forget_written(self, segment: str) -> None:
        """A segment handed over to a table outside of any transaction (auto-commit)."""
        txn = self._txn
        if txn is not None and segment in txn.written:
            txn.written.remove(segment)

    def names(self) -> set[str]:
        with self._lock:
            names = set(self.tables)
        txn = self._txn
        if txn is not None:
            for name, entry in txn.tables.items():
                if entry is _DELETED:
                    names.discard(name)
                else:
                    names.add(name)
        return names

    def drop(self, name: str) -> None:
        """Drop a table and delete its folder at once (garbage collection)."""
        with self._lock:
            entry = self.tables.pop(name, None)
            if entry is None:
                return
            self._record(tables={name: None})
        self._discard(list(entry.segments))
        shutil.rmtree(self.data_dir / name, ignore_errors=True)

    # -- bookkeeping tables -------------------------------------------------

    def meta_rows(self, table: str) -> list[list[Any]]:
        with self._lock:
            rows = list(self.meta[table])
        txn = self._txn
        if txn is not None and table in txn.meta:
            rows = _apply(rows, txn.meta[table])
        return rows

    def change_meta_rows(self, table: str, removed: list[list[Any]],
                         added: list[list[Any]]) -> None:
        with self.transaction():
            txn = self._txn
            assert txn is not None
            txn.meta.setdefault(table, []).append((removed, added))

    # -- environments --------------------------------------------------------

    def publish(self, env: str, name: str, physical: str | None) -> None:
        with self._lock:
            names = self.published.setdefault(env, {})
            if physical is None:
                names.pop(name, None)
            else:
                names[name] = physical
            self._record(published=[[env, name, physical]])

    def published_physical(self, env: str, name: str) -> str | None:
        with self._lock:
            return self.published.get(env, {}).get(name)

    def envs(self) -> list[str]:
        with self._lock:
            return list(self.published)


def _apply(rows: list[list[Any]], ops: list[tuple[list[list[Any]], list[list[Any]]]]
           ) -> list[list[Any]]:
    """Rows with each (removed, added) change applied in order (as multisets)."""
    from collections import Counter

    out = [list(r) for r in rows]
    for removed, added in ops:
        gone = Counter(tuple(r) for r in removed)
        kept = []
        for r in out:
            key = tuple(r)
            if gone[key] > 0:
                gone[key] -= 1
            else:
                kept.append(r)
        out = kept + [list(r) for r in added]
    return out
