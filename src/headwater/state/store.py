"""The state store: one SQLite file, ``.headwater/state.db``, in WAL mode.

It holds everything other processes need while a run goes on (the warehouse
file is locked by its single writer): which physical table each environment
publishes for each node, the fingerprints behind them, the parse cache and the
run history. Every write is one transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.errors import DiskFullError, StateError, disk_full

if TYPE_CHECKING:
    from headwater.connectors.filecache import FileDigests

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS parse_cache (key TEXT PRIMARY KEY, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS physical (
    physical TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    kind TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    content_fp TEXT,
    rows INTEGER,
    columns TEXT,
    seconds REAL,
    created_at TEXT NOT NULL,
    meta TEXT
);
CREATE INDEX IF NOT EXISTS physical_node ON physical (node, created_at);
CREATE TABLE IF NOT EXISTS env_nodes (
    env TEXT NOT NULL,
    node TEXT NOT NULL,
    kind TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    physical TEXT,
    code_fp TEXT,
    data_fp TEXT,
    upstream TEXT,
    published_at TEXT NOT NULL,
    PRIMARY KEY (env, node)
);
CREATE TABLE IF NOT EXISTS pending_publish (
    env TEXT NOT NULL,
    node TEXT NOT NULL,
    kind TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    physical TEXT,
    code_fp TEXT,
    data_fp TEXT,
    upstream TEXT,
    published_at TEXT NOT NULL,
    PRIMARY KEY (env, node)
);
CREATE TABLE IF NOT EXISTS warehouse_users (
    token TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    role TEXT NOT NULL,
    what TEXT NOT NULL,
    since TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS file_digests (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    stamp TEXT NOT NULL,
    digest TEXT NOT NULL
);
DROP TABLE IF EXISTS file_hashes;
CREATE TABLE IF NOT EXISTS sink_partitions (
    env TEXT NOT NULL,
    sink TEXT NOT NULL,
    partition TEXT NOT NULL,
    fp TEXT NOT NULL,
    PRIMARY KEY (env, sink, partition)
);
CREATE TABLE IF NOT EXISTS check_results (
    run_id TEXT NOT NULL,
    env TEXT NOT NULL,
    node TEXT NOT NULL,
    check_name TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    failing INTEGER NOT NULL,
    sample TEXT,
    error TEXT,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS check_results_node ON check_results (node, at);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    status TEXT NOT NULL,
    selection TEXT,
    pid INTEGER
);
CREATE TABLE IF NOT EXISTS run_nodes (
    run_id TEXT NOT NULL,
    node TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    rows INTEGER,
    seconds REAL,
    started_at TEXT,
    ended_at TEXT,
    error TEXT,
    PRIMARY KEY (run_id, node)
);
"""


def _migrate(db: sqlite3.Connection) -> None:
    """Columns later versions added to tables an older Headwater made."""
    have = {r[1] for r in db.execute("PRAGMA table_info(physical)").fetchall()}
    if "meta" not in have:
        db.execute("ALTER TABLE physical ADD COLUMN meta TEXT")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Published:
    """What an environment currently shows for one node."""

    node: str
    kind: str
    fingerprint: str
    physical: str | None
    code_fp: str | None
    data_fp: str | None
    upstream: dict[str, str]
    published_at: str


@dataclass
class PhysicalInfo:
    physical: str
    node: str
    fingerprint: str
    content_fp: str | None
    rows: int | None
    columns: list[tuple[str, str]]
    created_at: str
    # what the table was made from and of: {"base": in-place table a snapshot shows,
    # "version", "data_fp": source data it holds, "inputs": upstream identities it was
    # built from, "reads": physical tables a view reads, "role": "base"}
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def reads(self) -> list[str]:
        """Physical tables this one needs to exist (a snapshot its base, a view its inputs)."""
        out = list(self.meta.get("reads", []))
        if self.meta.get("base"):
            out.append(self.meta["base"])
        return out


@lru_cache(maxsize=8192)
def _decoded(text: str) -> Any:
    """JSON of a physical record's columns or meta: the versions of a node mostly share
    them, so each distinct text is decoded once (the results are never mutated)."""
    return json.loads(text)


def _physical_info(r: tuple[Any, ...]) -> PhysicalInfo:
    return PhysicalInfo(r[0], r[1], r[2], r[3], r[4], _decoded(r[5] or "[]"), r[6],
                        _decoded(r[7]) if r[7] else {})


class StateStore:
    """Thread-safe access to ``state.db``; one connection guarded by a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                str(path), timeout=30, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            _migrate(self._db)
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        except sqlite3.Error as exc:
            if _no_space(path.parent) or disk_full(exc) is not None:
                raise DiskFullError(
                    f"the disk is full: cannot write the state store {path}",
                    hint="free some space (`headwater gc` drops tables no environment uses)"
                    " and run again; what was published before stays as it was") from None
            raise StateError(
                f"cannot open the state store: {exc}",
                path=path,
                hint="if the file is corrupt, move it away; the next run rebuilds what it needs",
            ) from None
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection, in a transaction; what is written never holds a secret."""
        from headwater.core import secrets

        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield _Redacting(self._db) if secrets.active() else self._db  # type: ignore[misc]
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # -- parse cache ---------------------------------------------------------

    def get_many(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self._query("SELECT key, payload FROM parse_cache")}

    def put_many(self, entries: dict[str, dict[str, Any]]) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO parse_cache VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in entries.items()],
            )

    # -- file content digests ---------------------------------------------

    def file_hashes(self) -> FileDigests:
        """The file digests kept between runs (see ``headwater.connectors.filecache``)."""
        from headwater.connectors.filecache import FileDigests

        rows = self._query("SELECT path, size, stamp, digest FROM file_digests")
        return FileDigests({r[0]: (r[1], r[2], r[3]) for r in rows})

    def save_file_hashes(self, cache: FileDigests, before: FileDigests) -> None:
        """Write back what ``cache`` learnt since it was read as ``before``."""
        entries = cache.changed(before.stored)
        if not entries:
            return
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO file_digests VALUES (?, ?, ?, ?)",
                [(k, *v) for k, v in entries.items()],
            )

    # -- environments and physical tables ------------------------------------

    def published(self, env: str) -> dict[str, Published]:
        rows = self._query(
            "SELECT node, kind, fingerprint, physical, code_fp, data_fp, upstream, published_at"
            " FROM env_nodes WHERE env = ?",
            (env,),
        )
        return {
            r[0]: Published(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6] or "{}"), r[7])
            for r in rows
        }

    def environments(self) -> list[str]:
        return [r[0] for r in self._query(
            "SELECT env FROM env_nodes UNION SELECT env FROM pending_publish ORDER BY env")]

    def physical(self, name: str) -> PhysicalInfo | None:
        rows = self._query(
            "SELECT physical, node, fingerprint, content_fp, rows, columns, created_at, meta"
            " FROM physical WHERE physical = ?",
            (name,),
        )
        return _physical_info(rows[0]) if rows else None

    def all_physical(self) -> dict[str, PhysicalInfo]:
        rows = self._query(
            "SELECT physical, node, fingerprint, content_fp, rows, columns, created_at, meta"
            " FROM physical"
        )
        return {r[0]: _physical_info(r) for r in rows}

    def record_physical(
        self,
        *,
        physical: str,
        node: str,
        kind: str,
        fingerprint: str,
        content_fp: str | None,
        rows: int | None,
        columns: list[tuple[str, str]],
        seconds: float,
        meta: dict[str, Any] | None = None,
    ) -> str:
        """Record a physical table; returns the time it is recorded as created."""
        at = now()
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO physical (physical, node, kind, fingerprint, content_fp,"
                " rows, columns, seconds, created_at, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (physical, node, kind, fingerprint, content_fp, rows, json.dumps(columns),
                 seconds, at, json.dumps(meta) if meta else None),
            )
        return at

    def forget_physical(self, physical: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM physical WHERE physical = ?", (physical,))

    def publish(
        self,
        env: str,
        *,
        node: str,
        kind: str,
        fingerprint: str,
        physical: str | None,
        code_fp: str,
        data_fp: str | None = None,
        upstream: dict[str, str] | None = None,
        staged: bool = False,
    ) -> None:
        """Record what ``env`` publishes for ``node``. With ``staged``, only note the intent
        (``pending_publish``) before the public view is swapped: a kill between the swap and
        the record then leaves a note that ``settle_pending`` completes or drops."""
        row = (env, node, kind, fingerprint, physical, code_fp, data_fp,
               json.dumps(upstream or {}), now())
        with self.transaction() as db:
            if staged:
                db.execute("INSERT OR REPLACE INTO pending_publish VALUES"
                           " (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
                return
            db.execute("INSERT OR REPLACE INTO env_nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
            db.execute("DELETE FROM pending_publish WHERE env = ? AND node = ?", (env, node))

    def pending(self, env: str) -> dict[str, Published]:
        """Publications noted (``publish(staged=True)``) but never recorded."""
        rows = self._query(
            "SELECT node, kind, fingerprint, physical, code_fp, data_fp, upstream, published_at"
            " FROM pending_publish WHERE env = ?", (env,))
        return {r[0]: Published(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6] or "{}"),
                                r[7]) for r in rows}

    def settle_pending(self, env: str, shown: dict[str, str]) -> list[str]:
        """Complete the noted publications whose view was swapped (``shown``: public name ->
        physical table it shows), drop the others; returns the nodes completed."""
        done = []
        with self.transaction() as db:
            for name, pub in self.pending(env).items():
                if pub.physical is not None and shown.get(name) == pub.physical:
                    db.execute("INSERT OR REPLACE INTO env_nodes VALUES"
                               " (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (env, name, pub.kind, pub.fingerprint, pub.physical, pub.code_fp,
                                pub.data_fp, json.dumps(pub.upstream), now()))
                    done.append(name)
            db.execute("DELETE FROM pending_publish WHERE env = ?", (env,))
        return done

    def unpublish(self, env: str, node: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM env_nodes WHERE env = ? AND node = ?", (env, node))

    def sink_partitions(self, env: str, sink: str) -> dict[str, str]:
        rows = self._query(
            "SELECT partition, fp FROM sink_partitions WHERE env = ? AND sink = ?", (env, sink)
        )
        return {r[0]: r[1] for r in rows}

    def set_sink_partitions(self, env: str, sink: str, partitions: dict[str, str]) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM sink_partitions WHERE env = ? AND sink = ?", (env, sink))
            db.executemany(
                "INSERT INTO sink_partitions VALUES (?, ?, ?, ?)",
                [(env, sink, p, fp) for p, fp in partitions.items()],
            )

    # -- who has the warehouse open (headwater.state.warehouse_users) ---------------

    def warehouse_users(self) -> list[tuple[Any, ...]]:
        return self._query("SELECT token, pid, role, what, since FROM warehouse_users")

    def enter_warehouse(self, token: str, pid: int, role: str, what: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO warehouse_users VALUES (?, ?, ?, ?, ?)",
                       (token, pid, role, what, now()))

    def leave_warehouse(self, token: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM warehouse_users WHERE token = ?", (token,))

    # -- runs ----------------------------------------------------------------

    def start_run(self, run_id: str, env: str, selection: str | None, pid: int) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, NULL, 'running', ?, ?)",
                (run_id, env, now(), selection, pid),
            )

    def record_node(
        self,
        run_id: str,
        *,
        node: str,
        kind: str,
        status: str,
        reason: str | None,
        rows: int | None = None,
        seconds: float | None = None,
        started_at: str | None = None,
        error: str | None = None,
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO run_nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, node, kind, status, reason, rows, seconds, started_at, now(), error),
            )

    def record_nodes(self, run_id: str, records: list[dict[str, Any]]) -> None:
        """Several node results in one transaction (skips are recorded in bulk)."""
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO run_nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, r["node"], r["kind"], r["status"], r.get("reason"), r.get("rows"),
                  r.get("seconds"), r.get("started_at"), r.get("ended_at") or now(),
                  r.get("error")) for r in records],
            )

    def record_checks(self, run_id: str, env: str, results: list[dict[str, Any]]) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO check_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, env, r["node"], r["check"], r["severity"], r["status"],
                  r["failing_rows"], json.dumps(r["sample"]), r["error"], now())
                 for r in results],
            )

    def latest_checks(self, env: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """The most recent result of every check, per node."""
        rows = self._query(
            "SELECT node, check_name, severity, status, failing, sample, error, at, run_id"
            " FROM check_results c WHERE at = (SELECT max(at) FROM check_results d"
            " WHERE d.node = c.node AND d.check_name = c.check_name"
            + (" AND d.env = ?)" if env else ")")
            + " ORDER BY node, check_name",
            (env,) if env else (),
        )
        out: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            out.setdefault(r[0], []).append({
                "check": r[1], "severity": r[2], "status": r[3], "failing_rows": r[4],
                "sample": json.loads(r[5] or "[]"), "error": r[6], "at": r[7], "run_id": r[8],
            })
        return out

    def finish_run(self, run_id: str, status: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET ended_at = ?, status = ? WHERE run_id = ?",
                (now(), status, run_id),
            )

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT run_id, env, started_at, ended_at, status, selection FROM runs"
            " ORDER BY started_at DESC LIMIT ?",
            (limit,),
        )
        keys = ("run_id", "env", "started_at", "ended_at", "status", "selection")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def run_nodes(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT node, kind, status, reason, rows, seconds, started_at, ended_at, error"
            " FROM run_nodes WHERE run_id = ? ORDER BY started_at",
            (run_id,),
        )
        keys = ("node", "kind", "status", "reason", "rows", "seconds", "started_at",
                "ended_at", "error")
        return [dict(zip(keys, r, strict=True)) for r in rows]


class _Redacting:
    """A connection whose writes have every secret masked (see headwater.core.secrets)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, _masked(params))

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        return self._db.executemany(sql, (_masked(r) for r in rows))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def _masked(params: Any) -> Any:
    from headwater.core.secrets import redact

    if isinstance(params, dict):
        return {k: redact(v) if isinstance(v, str) else v for k, v in params.items()}
    return tuple(redact(v) if isinstance(v, str) else v for v in params)


def _no_space(folder: Path) -> bool:
    """Whether the file system holding ``folder`` has no byte left for us."""
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False

