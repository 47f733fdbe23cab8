"""The Python API, Headwater's spine: the CLI, scheduler and web UI call this.

>>> import headwater
>>> project = headwater.Project("shop")
>>> result = project.run()                  # doctest: +SKIP
>>> project.table("device_health_daily")    # doctest: +SKIP
pyarrow.Table ...
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa

    from headwater.lineage.columns import ProjectLineage

from headwater.engines.base import DEFAULT_ENV, Engine, public_schema
from headwater.engines.base import quote_ident as _q
from headwater.state import environments
from headwater.state.environments import NodeDiff

if TYPE_CHECKING:
    from headwater.run.checks import CheckResult
from headwater.core.nodes import SqlNode
from headwater.errors import HeadwaterError, SelectionError, did_you_mean
from headwater.graph.dag import Graph
from headwater.load.loader import LoadedProject, find_root, load_project
from headwater.plan.planner import NodePlan, Plan, build_plan, source_data_fps
from headwater.run.lock import ProjectLock
from headwater.run.runner import Reporter, Runner, RunResult
from headwater.state.store import StateStore

log = logging.getLogger(__name__)

STATE_DIR = ".headwater"

Selection = str | Iterable[str] | None


class Project:
    """A Headwater project on disk.

    ``Project(path)`` finds ``headwater.toml`` in ``path`` or a parent folder.
    Loading is lazy: nothing is read until a method needs it.
    """

    def __init__(
        self, path: str | os.PathLike[str] = ".", *, env: str = DEFAULT_ENV,
        engine: str | None = None,
    ) -> None:
        self.root = find_root(Path(path))
        self.env = env
        self.engine = engine  # overrides headwater.toml's `engine` ("duckdb" or "spark")

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r})"

    # -- pieces -----------------------------------------------------------

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @cached_property
    def state(self) -> StateStore:
        return StateStore(self.state_dir / "state.db")

    @cached_property
    def loaded(self) -> LoadedProject:
        return load_project(self.root, cache=self.state)

    def reload(self) -> LoadedProject:
        """Re-read the project's files (after an edit)."""
        self.__dict__.pop("loaded", None)
        return self.loaded

    @property
    def graph(self) -> Graph:
        return self.loaded.graph

    @property
    def nodes(self) -> dict[str, object]:
        return dict(self.loaded.nodes)

    def make_engine(self) -> Engine:
        from headwater.engines.duckdb import DuckDBEngine

        kind = self.engine or self.loaded.config.engine
        if kind == "spark":
            return self._spark_engine()
        if kind != "duckdb":
            raise HeadwaterError(f"unknown engine {kind!r}", hint="use duckdb or spark")
        cfg = self.loaded.config.duckdb
        path = Path(cfg.path)
        return DuckDBEngine(
            path if path.is_absolute() else self.root / path,
            memory_limit=cfg.memory_limit,
            threads=cfg.threads,
        )

    def _spark_engine(self) -> Engine:
        try:
            from headwater.engines.spark.engine import SparkEngine
        except ImportError:  # pragma: no cover - the extra is missing
            raise HeadwaterError(
                "the Spark engine needs pyspark", hint="pip install 'headwater[spark]'"
            ) from None
        config = self.loaded.config
        cfg = config.spark
        warehouse = Path(cfg.warehouse)
        return SparkEngine(
            warehouse if warehouse.is_absolute() else self.root / warehouse,
            master=cfg.master, remote=cfg.remote, conf=dict(cfg.conf),
            read_dialect=config.dialect,
        )

    def select(self, select: Selection = None, exclude: Selection = None) -> list[str]:
        loaded = self.loaded
        return loaded.graph.select(select, exclude, tags=loaded.tags(), kinds=loaded.kinds())

    # -- planning and running -------------------------------------------

    def plan(
        self,
        select: Selection = None,
        *,
        exclude: Selection = None,
        full_refresh: bool = False,
        env: str | None = None,
        now: datetime | None = None,
        ignore_windows: bool = False,
        backfill: Mapping[str, tuple[str, str]] | None = None,
        preview: bool = False,
        reload: bool = True,
    ) -> Plan:
        """What a run would do, and why, without doing it.

        With ``preview``, incremental nodes also say which windows they would process
        (this reads the warehouse, read-only).

        Sources whose availability window is closed at ``now`` are not touched; the
        nodes that need them are deferred (their previous data stays published).
        """
        from headwater.plan.deferral import closed_sources, deferral_reason, deferred_nodes

        env = env or self.env
        if reload:
            self.reload()
        chosen = self.select(select, exclude)
        closed = {} if ignore_windows else closed_sources(
            self.loaded, chosen, now or datetime.now(UTC))
        held = deferred_nodes(self.loaded, closed, chosen)
        deferred = {n: deferral_reason(src, closed[src]) for n, src in held.items()}
        before = self.state.file_hashes()
        cache = before.copy()
        errors: dict[str, str] = {}
        data_fps = source_data_fps(self.loaded, [n for n in chosen if n not in closed], cache,
                                   errors)
        self.state.save_file_hashes(cache, before)
        plan = build_plan(
            self.loaded,
            env=env,
            selected=chosen,
            published=self.state.published(env),
            physical=self.state.all_physical(),
            force=chosen if full_refresh else (),
            data_fps=data_fps,
            deferred=deferred,
            backfill=backfill,
            shared_data_fps={
                p.physical: p.data_fp
                for other in self.state.environments() if other != env
                for p in self.state.published(other).values() if p.physical and p.data_fp
            },
            file_digests=cache,
            source_errors=errors,
        )
        return self._preview_windows(plan, env) if preview else plan

    def _preview_partitions(self, n: NodePlan, engine: Engine) -> str:
        from headwater.engines.base import META_SCHEMA
        from headwater.run.ingest import IngestResult

        connector = self.loaded.source_connector(n.name)
        connector.hash_cache = self.state.file_hashes()
        current = dict(connector.partitions())
        stored = dict(engine.fetch(
            f'SELECT part, digest FROM "{META_SCHEMA}".partitions WHERE physical = ?',
            [n.physical])) if n.physical and engine.exists(n.physical) else {}
        res = IngestResult(partitions=sorted(p for p, d in current.items()
                                             if stored.get(p) != d),
                           vanished=sorted(p for p in stored if p not in current))
        return res.describe().replace("loaded", "load").replace("removed", "remove") or \
            "find no changed partition"

    def _preview_windows(self, plan: Plan, env: str) -> Plan:
        """The plan with each incremental node's reason saying the windows it would
        process (and each partitioned source's, the files it would read)."""
        from headwater.engines.duckdb import WarehouseBusyError
        from headwater.run.incremental import build_incremental

        todo = [n for n in plan.nodes if n.incremental and n.action == "run" and not n.rebuild]
        sources = [n for n in plan.nodes if n.kind == "source" and n.action == "run"
                   and not n.rebuild and self.loaded.partitioned(n.name)]
        if not todo and not sources:
            return plan
        notes: dict[str, str] = {}
        for n in todo:
            if n.pending:
                notes[n.name] = " (its windows are known once its upstreams are built)"
        ready = [n for n in todo if not n.pending]
        if (ready or sources) and _warehouse_exists(self.make_engine()):
            published = self.state.published(env)
            try:
                with self.reading() as engine:
                    for n in sources:
                        notes[n.name] = f": would {self._preview_partitions(n, engine)}"
                    for n in ready:
                        node = self.loaded.nodes[n.name]
                        ups = {u: published[u].physical for u in self.graph.upstream[n.name]
                               if u in published and published[u].physical}
                        if not n.physical or not engine.exists(n.physical):
                            continue
                        out = build_incremental(
                            node, engine, n.physical, ups,  # type: ignore[arg-type]
                            n.upstream, lambda refs: "", rebuild=False, backfill=n.backfill,
                            preview=True)
                        notes[n.name] = f": would process {out.summary}"
            except WarehouseBusyError:
                for n in ready:
                    notes[n.name] = " (windows unknown: a run is in progress)"
        return plan.but(nodes=tuple(n.but(reason=n.reason + notes[n.name]) if n.name in notes
                                    else n for n in plan.nodes))

    def run(
        self,
        select: Selection = None,
        *,
        exclude: Selection = None,
        full_refresh: bool = False,
        env: str | None = None,
        threads: int | None = None,
        reporter: Reporter | None = None,
        wait: bool = True,
        on_wait: Callable[[str], None] | None = None,
        now: datetime | None = None,
        ignore_windows: bool = False,
        backfill: Mapping[str, tuple[str, str]] | None = None,
        wait_timeout: float | None = None,
    ) -> RunResult:
        """Run the selected nodes that need it; publish each only after it succeeded.

        With ``wait``, a run queues behind a run in progress (and behind readers of the
        warehouse) for at most ``wait_timeout`` seconds (None: as long as it takes for
        the lock; two minutes for a process that keeps the warehouse file open).
        """
        env = env or self.env
        lock = ProjectLock(self.state_dir / "run.lock")
        started = time.monotonic()
        lock.acquire(wait=wait, timeout=wait_timeout, on_wait=None if on_wait is None else (
            lambda holder: on_wait(f"waiting for the run in progress ({holder}) to finish")))
        emitter = None
        try:
            self.reload()
            settings = self.loaded.config.openlineage
            if settings is not None and (settings.url or settings.file):
                from headwater.integrations.openlineage import OpenLineageEmitter
                from headwater.run.runner import FanOut

                emitter = OpenLineageEmitter.from_settings(settings, self.loaded, self.state,
                                                           env)
                reporter = FanOut(reporter, emitter)
            plan = self.plan(select, exclude=exclude, full_refresh=full_refresh, env=env,
                             now=now, ignore_windows=ignore_windows, backfill=backfill,
                             reload=False)
            engine = self.make_engine()
            gone = select is None and exclude is None and any(
                n not in self.loaded.nodes for n in self.state.published(env))
            if plan.to_run or gone or not _warehouse_exists(engine):
                from headwater.state.warehouse_users import open_for_writing

                open_for_writing(self.state, engine, on_wait=on_wait, timeout=None
                                 if wait_timeout is None else
                                 max(0.0, wait_timeout - (time.monotonic() - started)))
                try:
                    environments.reconcile_views(self.state, engine, env)
                    if self._reconcile(engine):
                        plan = self.plan(select, exclude=exclude, full_refresh=full_refresh,
                                         env=env, now=now, ignore_windows=ignore_windows,
                                         backfill=backfill, reload=False)
                    # SQL the engine cannot run fails here, before anything runs
                    engine.preflight([n for p in plan.to_run
                                      if isinstance(n := self.loaded.nodes[p.name], SqlNode)],
                                     self.loaded.config.dialect)
                    runner = Runner(self.loaded, engine, self.state, env=env,
                                    threads=threads or self.threads(), reporter=reporter)
                    return runner.run(plan, selection=_selection_text(select, exclude))
                finally:
                    engine.close()
            runner = Runner(self.loaded, engine, self.state, env=env, threads=1,
                            reporter=reporter)
            return runner.run(plan, selection=_selection_text(select, exclude))
        finally:
            if emitter is not None:
                emitter.close()
                for problem in emitter.errors:
                    log.warning("openlineage: %s", problem)
            lock.release()

    def backfill(
        self, node: str, start: str, end: str, *, env: str | None = None,
        reporter: Reporter | None = None, downstream: bool = True,
    ) -> RunResult:
        """Recompute the windows of ``node`` from ``start`` up to (not including) ``end``.

        Only for ``@incremental: by ...`` nodes; downstream nodes follow as usual (an
        incremental one processes the windows whose input changed).
        """
        from headwater.run.incremental import window_label

        self.reload()
        target = self.loaded.nodes.get(node)
        if target is None:
            from headwater.errors import did_you_mean

            raise SelectionError(f"no node named {node!r}",
                                 hint=did_you_mean(node, list(self.loaded.nodes))
                                 or "`headwater dag` lists the nodes")
        spec = getattr(target, "incremental", None)
        if spec is None or spec.strategy != "window":
            raise SelectionError(
                f"{node!r} is not a time-window incremental transform",
                hint="backfill works on `-- @incremental: by <column> <grain>` nodes; "
                f"use `headwater run --full-refresh --select {node}` for others",
            )
        try:
            labels = (window_label(start, spec.grain), window_label(end, spec.grain))
        except ValueError as exc:
            raise SelectionError(str(exc), hint="dates look like 2026-11-01") from None
        if labels[0] >= labels[1]:
            raise SelectionError(f"--start {start} is not before --end {end}")
        return self.run(f"{node}+" if downstream else node, env=env, reporter=reporter,
                        backfill={node: labels})

    def threads(self) -> int:
        return self.loaded.config.threads or os.cpu_count() or 1

    def _reconcile(self, engine: Engine) -> bool:
        """Forget physical tables the warehouse no longer has; True if any were forgotten."""
        present = engine.physical_tables()
        missing = [p for p in self.state.all_physical() if p not in present]
        for p in missing:
            self.state.forget_physical(p)
        return bool(missing)

    # -- checks -------------------------------------------------------------

    def test(
        self, select: Selection = None, *, exclude: Selection = None, env: str | None = None
    ) -> list[CheckResult]:
        """Run the selected nodes' checks against what is published now."""
        import uuid

        from headwater.engines.base import INTERNAL_SCHEMA
        from headwater.errors import CheckFailedError
        from headwater.run.build import verify_checks

        env = env or self.env
        self.reload()
        published = self.state.published(env)

        def resolve(name: str) -> str:
            pub = published.get(name)
            if pub is None or pub.physical is None:
                raise HeadwaterError(f"{name} has not been built in env {env!r}")
            return f'"{INTERNAL_SCHEMA}".{_q(pub.physical)}'

        results: list[CheckResult] = []
        with self.reading() as engine:
            for name in self.select(select, exclude):
                node = self.loaded.nodes[name]
                pub = published.get(name)
                if pub is None or pub.physical is None:
                    continue
                try:
                    results += verify_checks(node, engine, pub.physical, resolve)
                except CheckFailedError as exc:
                    results += exc.results
        self.state.record_checks(f"test-{uuid.uuid4().hex[:8]}", env,
                                 [r.to_json() for r in results])
        return results

    # -- environments -----------------------------------------------------

    def diff(self, env_a: str, env_b: str = DEFAULT_ENV) -> list[NodeDiff]:
        """Schema and row-count differences per node between two environments."""
        return environments.diff(self.state, env_a, env_b)

    def promote(self, source_env: str, *, to: str = DEFAULT_ENV, wait: bool = True) -> list[str]:
        """Point ``to`` at ``source_env``'s tables without recomputing anything."""
        with self._writing(wait) as engine:
            return environments.promote(self.state, engine, source_env, to)

    def gc(self, *, keep_versions: int = 1, dry_run: bool = False, wait: bool = True) -> list[str]:
        """Drop physical tables that no environment uses, keeping N old versions per node."""
        with self._writing(wait) as engine:
            return environments.collect_garbage(
                self.state, engine, keep_versions=keep_versions, dry_run=dry_run
            )

    @contextmanager
    def _writing(self, wait: bool) -> Iterator[Engine]:
        lock = ProjectLock(self.state_dir / "run.lock")
        lock.acquire(wait=wait)
        engine = self.make_engine()
        try:
            from headwater.state.warehouse_users import open_for_writing

            open_for_writing(self.state, engine)
            for env in self.state.environments():
                environments.reconcile_views(self.state, engine, env)
            self._reconcile(engine)
            yield engine
        finally:
            engine.close()
            lock.release()

    # -- reading ----------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[Engine]:
        """A read-only engine; raises WarehouseBusyError while a run writes. A run that
        waits for it stops its query after a few seconds (``headwater.state.warehouse_users``)."""
        from headwater.engines.duckdb import WarehouseBusyError

        engine = self.make_engine()
        if not _warehouse_exists(engine):
            raise HeadwaterError(
                "nothing has been built yet", hint="run `headwater run` first"
            )
        try:
            engine.open(read_only=True)
        except WarehouseBusyError as exc:
            running = [r for r in self.state.runs(limit=5) if r["status"] == "running"]
            if running:  # say which run: what really holds the file
                r = running[0]
                raise WarehouseBusyError(
                    f"the warehouse is busy: a headwater run ({r['run_id']}, env"
                    f" {r['env']}, started {r['started_at'][:19].replace('T', ' ')} UTC) is"
                    " writing to it", path=exc.path, hint=exc.hint,
                    holder_pid=exc.holder_pid) from None
            raise
        try:
            from headwater.state.warehouse_users import InterruptedForRun, command_name, reader

            with reader(self.state, engine, f"headwater {command_name()}") as stopped:
                try:
                    yield engine
                except Exception:
                    if stopped.is_set():
                        raise InterruptedForRun(
                            "the query was stopped: a run is waiting for the warehouse",
                            hint="run it again once the run is done") from None
                    raise
        finally:
            engine.close()

    def table(self, name: str, *, env: str | None = None, limit: int | None = None) -> pa.Table:
        """A published table's rows as Arrow."""
        env = env or self.env
        loaded = self.loaded
        node = loaded.nodes.get(name)
        if node is None or not node.is_table:
            tables = [n for n, x in loaded.nodes.items() if x.is_table]
            raise SelectionError(
                f"no table named {name!r}",
                hint=did_you_mean(name, tables) or "run `headwater dag` to list tables",
            )
        pub = self.state.published(env).get(name)
        if pub is None or pub.physical is None:
            raise HeadwaterError(
                f"{name} has not been built in env {env!r}",
                hint=f"run `headwater run --select +{name}`",
            )
        from sqlglot import exp

        ref = exp.table_(name, db=public_schema(env), quoted=True).sql(dialect="duckdb")
        with self.reading() as engine:
            return engine.query(f"SELECT * FROM {ref}", limit=limit)

    def query(self, sql: str, *, limit: int | None = None) -> pa.Table:
        """A read-only query against the published tables (prod views are in ``main``).

        Only a query over the environments' published tables is run: no file, extension,
        setting or other database can be reached (``headwater.engines.query_guard``)."""
        from headwater.engines.query_guard import check_query

        tables: dict[str, set[str]] = {"main": set()}
        for env in self.state.environments():
            names = tables.setdefault(public_schema(env), set())
            for name, pub in self.state.published(env).items():
                if pub.physical is not None:  # a source's rejects and quarantine too
                    names |= {name, f"{name}__rejected", f"{name}__quarantine"}
        catalog = Path(getattr(self.make_engine(), "path", "warehouse")).stem
        check_query(sql, tables, catalog, tables)
        with self.reading() as engine:
            try:
                return engine.query(sql, limit=limit)
            except HeadwaterError:
                raise
            except Exception as exc:
                raise HeadwaterError(f"query failed: {str(exc).strip()}") from None

    # -- lineage and documentation -----------------------------------------

    def lineage(self, *, env: str | None = None) -> ProjectLineage:
        """Column-level lineage of the whole project (schemas of ``env``'s built tables)."""
        from headwater.lineage.columns import ProjectLineage

        return ProjectLineage.from_state(self.loaded, self.state, env or self.env,
                                         self.state_dir)

    def docs(self, out: str | os.PathLike[str] | None = None, *, env: str | None = None) -> Path:
        """Write the static documentation site; returns the path of its index.html."""
        from headwater.docs import build_docs

        return build_docs(self.loaded, self.state, self.state_dir,
                          Path(out) if out is not None else None, env=env or self.env)


def _warehouse_exists(engine: Engine) -> bool:
    path = engine.path
    return path is None or Path(path).exists()


def _selection_text(select: Selection, exclude: Selection) -> str | None:
    def text(s: Selection) -> str:
        return s if isinstance(s, str) else " ".join(s or [])

    parts = []
    if select:
        parts.append(f"--select {text(select)}")
    if exclude:
        parts.append(f"--exclude {text(exclude)}")
    return " ".join(parts) or None
