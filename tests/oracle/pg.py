"""The two PostgreSQL tables the project reads, on one connection (the full-load
``orders`` gets inserts, updates and deletes; the cursor table ``payments`` inserts with
increasing ``updated_at``). Tables are named ``oracle_<pid>_<n>_...`` and dropped at the
end; those of a process that died are swept by the next one."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from .project import DEVICES

EPOCH = dt.datetime(2026, 1, 1)


class Pg:
    """The two tables the project reads, on one connection (autocommit)."""

    def __init__(self, dsn: str, prefix: str) -> None:
        import psycopg

        self.prefix = prefix
        self.con: Any = psycopg.connect(dsn, autocommit=True)
        self.orders = f'public."{prefix}_orders"'
        self.payments = f'public."{prefix}_payments"'

    def create(self) -> None:
        self.sweep()
        for table in (self.orders, self.payments):
            self.con.execute(f"DROP TABLE IF EXISTS {table}")
            self.con.execute(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, device_id TEXT"
                             " NOT NULL, amount BIGINT NOT NULL, updated_at TIMESTAMP NOT NULL)")

    def sweep(self) -> None:
        """Drop the tables of oracle processes that died without dropping theirs
        (``oracle_<pid>_<n>_...`` whose pid is gone)."""
        import os

        rows = self.con.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename LIKE 'oracle\\_%'").fetchall()
        for (name,) in rows:
            pid = name.split("_")[1]
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                self.con.execute(f'DROP TABLE IF EXISTS public."{name}"')
            except PermissionError:
                pass  # alive, someone else's

    def drop(self) -> None:
        for table in (self.orders, self.payments):
            self.con.execute(f"DROP TABLE IF EXISTS {table}")
        self.con.close()

    def ids(self, table: str) -> list[int]:
        return [r[0] for r in self.con.execute(f"SELECT id FROM {table} ORDER BY id").fetchall()]

    def max_updated(self) -> dt.datetime:
        row = self.con.execute(
            f"SELECT greatest((SELECT max(updated_at) FROM {self.orders}),"
            f" (SELECT max(updated_at) FROM {self.payments}))").fetchone()
        return row[0] if row and row[0] else EPOCH

    def insert(self, table: str, n: int, seed: int) -> list[int]:
        rng = random.Random(f"insert:{seed}")
        ids = self.ids(table)
        start = (ids[-1] if ids else 0) + 1
        at = self.max_updated()
        rows = [(start + i, rng.choice(DEVICES), rng.randrange(1, 500),
                 at + dt.timedelta(seconds=i + 1)) for i in range(n)]
        with self.con.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s, %s)", rows)
        return [r[0] for r in rows]

    def update(self, picks: list[int], seed: int, table: str | None = None) -> list[int]:
        """Change the amount of some rows (orders by default); their updated_at moves past
        every other."""
        table = table or self.orders
        ids = self.ids(table)
        if not ids:
            return []
        chosen = sorted({ids[p % len(ids)] for p in picks})
        at = self.max_updated()
        for i, key in enumerate(chosen):
            self.con.execute(f"UPDATE {table} SET amount = %s, updated_at = %s"
                             " WHERE id = %s", [1000 + (seed * 7 + i) % 500,
                                                at + dt.timedelta(seconds=i + 1), key])
        return chosen

    def delete(self, picks: list[int], table: str | None = None) -> list[int]:
        table = table or self.orders
        ids = self.ids(table)
        if len(ids) <= 1:
            return []
        chosen = sorted({ids[p % len(ids)] for p in picks})[: len(ids) - 1]
        self.con.execute(f"DELETE FROM {table} WHERE id = ANY(%s)", [chosen])
        return chosen

    def content(self) -> str:
        """Both tables, as text (a clean build's cache key)."""
        parts = []
        for table in (self.orders, self.payments):
            rows = self.con.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
            parts.append(repr(rows))
        return "\n".join(parts)
