"""OpenLineage run events from ``headwater run``, so Marquez, DataHub & co. see Headwater jobs.

Configured in ``headwater.toml``::

    [openlineage]
    url = "http://localhost:5000"        # POST {url}/{endpoint}; Marquez's default endpoint
    # endpoint = "api/v1/lineage"
    # api_key = "${OPENLINEAGE_API_KEY}" # sent as a Bearer token; only ever from the environment
    # file = "target/openlineage.ndjson" # and/or append one event per line to a file
    # namespace = "shop"                 # job namespace (default: the project name)

:class:`OpenLineageEmitter` is a run reporter (``on_start`` / ``on_node_start`` /
``on_node_end``, like :class:`headwater.run.runner.Reporter`). The whole run is a
parent job named after the project; every node that executes is a child job
(``START`` then ``COMPLETE`` or ``FAIL``) whose output dataset carries the
``schema``, ``columnLineage`` and ``outputStatistics`` facets, and whose inputs
are its upstream tables. Skipped nodes emit nothing.

Events are built and sent on a background thread, so a slow or absent
receiver never slows the run down, and a failure to deliver is a warning,
never a failed run. Call :meth:`OpenLineageEmitter.close` after the run.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.core.config import OpenLineageSettings
from headwater.core.nodes import SinkNode, SourceNode, SqlNode

if TYPE_CHECKING:
    from headwater.lineage.columns import ProjectLineage
    from headwater.load.loader import LoadedProject
    from headwater.plan.planner import Plan
    from headwater.run.runner import NodeResult
    from headwater.state.store import StateStore

log = logging.getLogger(__name__)

SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACETS = "https://openlineage.io/spec/facets"
SCHEMA_URLS = {
    "schema": f"{FACETS}/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "columnLineage": f"{FACETS}/1-2-0/ColumnLineageDatasetFacet.json"
                     "#/$defs/ColumnLineageDatasetFacet",
    "outputStatistics": f"{FACETS}/1-0-2/OutputStatisticsOutputDatasetFacet.json"
                        "#/$defs/OutputStatisticsOutputDatasetFacet",
    "parent": f"{FACETS}/1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet",
    "errorMessage": f"{FACETS}/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
    "processing_engine": f"{FACETS}/1-1-1/ProcessingEngineRunFacet.json"
                         "#/$defs/ProcessingEngineRunFacet",
    "jobType": f"{FACETS}/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
    "sql": f"{FACETS}/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet",
    "documentation": f"{FACETS}/1-1-0/DocumentationJobFacet.json#/$defs/DocumentationJobFacet",
    "documentation_dataset": f"{FACETS}/1-1-0/DocumentationDatasetFacet.json"
                             "#/$defs/DocumentationDatasetFacet",
}
RETRIES = 2  # per event and transport
GIVE_UP_AFTER = 3  # events in a row that could not be delivered
SUBTYPES = {"identity": "IDENTITY", "transformation": "TRANSFORMATION",
            "aggregation": "AGGREGATION"}
INDIRECT = {"filter": "FILTER", "join": "JOIN", "group_by": "GROUP_BY", "sort": "SORT"}


@functools.cache
def _version() -> str:
    try:
        from importlib.metadata import version

        return version("headwater")
    except Exception:  # pragma: no cover - running from a source tree
        return "0"


def producer() -> str:
    """The ``producer`` of every event (looked up on first use: importlib.metadata is slow)."""
    return f"https://github.com/headwater-data/headwater/tree/v{_version()}"


# -- transports ---------------------------------------------------------------------------


class FileTransport:
    """Appends one event per line (NDJSON)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, event: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(event, separators=(",", ":")) + "\n")

    def __repr__(self) -> str:
        return f"FileTransport({str(self.path)!r})"


class HttpTransport:
    """POSTs each event as JSON to ``url/endpoint`` (the OpenLineage HTTP transport)."""

    def __init__(self, url: str, endpoint: str = "api/v1/lineage", *, api_key: str | None = None,
                 timeout: float = 5.0) -> None:
        self.target = url.rstrip("/") + ("/" + endpoint.lstrip("/") if endpoint else "")
        self._api_key = api_key
        self.timeout = timeout

    def send(self, event: dict[str, Any]) -> None:
        import urllib.request

        headers = {"Content-Type": "application/json", "User-Agent": "headwater-openlineage"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        req = urllib.request.Request(self.target, data=json.dumps(event).encode(),
                                     headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
            if resp.status >= 300:
                raise OSError(f"HTTP {resp.status}")

    def __repr__(self) -> str:  # never shows the key
        return f"HttpTransport({self.target!r})"


def transports_from_settings(settings: OpenLineageSettings, root: Path) -> list[Any]:
    """The transports ``[openlineage]`` asks for; ``${VAR}`` in api_key resolved here."""
    from headwater.core.config import resolve_env

    out: list[Any] = []
    if settings.url:
        key = resolve_env(settings.api_key, key="openlineage.api_key") if settings.api_key \
            else None
        out.append(HttpTransport(resolve_env(settings.url, key="openlineage.url"),
                                 settings.endpoint, api_key=key, timeout=settings.timeout))
    if settings.file:
        path = Path(settings.file)
        out.append(FileTransport(path if path.is_absolute() else root / path))
    return out


# -- the emitter ------------------------------------------------------------------------------


@dataclass
class _Job:
    run_id: str
    started: bool = False


@dataclass
class _Parent:
    run_id: str
    expected: int = 0
    ended: int = 0
    failed: bool = False
    done: bool = False
    jobs: dict[str, _Job] = field(default_factory=dict)


class OpenLineageEmitter:
    """A run reporter that turns a Headwater run into OpenLineage run events.

    >>> out = [FileTransport(Path("ol.ndjson"))]
    >>> emitter = OpenLineageEmitter(loaded, state, transports=out)  # doctest: +SKIP
    >>> project.run(reporter=emitter); emitter.close()               # doctest: +SKIP
    """

    def __init__(
        self,
        project: LoadedProject,
        state: StateStore,
        *,
        env: str = "prod",
        transports: list[Any],
        namespace: str | None = None,
        dataset_namespace: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.project = project
        self.state = state
        self.env = env
        self.transports = transports
        self.namespace = namespace or project.config.name
        self.dataset_namespace = dataset_namespace or f"duckdb://{project.config.name}"
        self.clock = clock or (lambda: datetime.now(UTC))
        self.errors: list[str] = []
        self.sent = 0
        self._failures: dict[int, int] = {}
        self._parent: _Parent | None = None
        self._lineage: ProjectLineage | None = None
        self._queue: queue.Queue[tuple[Callable[..., dict[str, Any] | None], tuple[Any, ...]]
                                 | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: OpenLineageSettings, project: LoadedProject,
                      state: StateStore, env: str = "prod") -> OpenLineageEmitter:
        return cls(project, state, env=env,
                   transports=transports_from_settings(settings, project.root),
                   namespace=settings.namespace)

    # -- Reporter protocol ------------------------------------------------------

    def on_start(self, plan: Plan) -> None:
        self._parent = _Parent(_uuid7(), expected=len(plan.nodes))
        self._submit(self._parent_event, "START", self._now())
        if not plan.nodes:
            self._finish_parent()

    def on_node_start(self, name: str) -> None:
        parent = self._parent
        if parent is None:
            return
        job = parent.jobs.setdefault(name, _Job(_uuid7()))
        job.started = True
        self._submit(self._node_event, name, "START", job.run_id, self._now(), None)

    def on_node_end(self, result: NodeResult) -> None:
        parent = self._parent
        if parent is None:
            return
        parent.ended += 1
        job = parent.jobs.get(result.name)
        if result.status == "failed" or getattr(result, "blocked", False):
            parent.failed = True
        if job is not None and job.started:
            kind = "COMPLETE" if result.status == "executed" else "FAIL"
            self._submit(self._node_event, result.name, kind, job.run_id, self._now(), result)
        if parent.ended >= parent.expected:
            self._finish_parent()

    def close(self, timeout: float = 30.0) -> None:
        """Finish the run's parent job if the run stopped early; wait for events to go out."""
        if self._parent is not None and not self._parent.done:
            self._parent.failed = True
            self._finish_parent()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None
        if self._lineage is not None:
            try:
                self._lineage.save()
            except OSError as exc:
                log.warning("cannot write the lineage cache: %s", exc)

    def _finish_parent(self) -> None:
        parent = self._parent
        if parent is None or parent.done:
            return
        parent.done = True
        self._submit(self._parent_event, "FAIL" if parent.failed else "COMPLETE", self._now())

    # -- background work ------------------------------------------------------------

    def _now(self) -> str:
        return self.clock().isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _submit(self, build: Callable[..., dict[str, Any] | None], *args: Any) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="hw-openlineage",
                                            daemon=True)
            self._thread.start()
        self._queue.put((build, args))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            build, args = item
            try:
                event = build(*args)
            except Exception as exc:  # a bug in building one event must not stop the others
                self._error(f"cannot build an OpenLineage event: {type(exc).__name__}: {exc}")
                continue
            if event is not None:
                self._send(event)

    def _send(self, event: dict[str, Any]) -> None:
        from headwater.core.secrets import redact_value

        event = redact_value(event)  # a receiver never gets a secret in an event
        for i, transport in enumerate(self.transports):
            if self._failures.get(i, 0) >= GIVE_UP_AFTER:
                continue  # the receiver is down: do not slow every event down
            for attempt in range(RETRIES + 1):
                try:
                    transport.send(event)
                    self.sent += 1
                    self._failures[i] = 0
                    break
                except Exception as exc:
                    if attempt < RETRIES:
                        time.sleep(0.2 * (attempt + 1))
                        continue
                    self._failures[i] = self._failures.get(i, 0) + 1
                    gave_up = self._failures[i] >= GIVE_UP_AFTER
                    self._error(f"OpenLineage event not delivered to {transport!r}: "
                                f"{type(exc).__name__}: {exc}"
                                + ("; giving up on it for this run" if gave_up else ""))

    def _error(self, message: str) -> None:
        self.errors.append(message)
        log.warning(message)

    # -- events ---------------------------------------------------------------------

    def _base(self, kind: str, when: str, run_id: str, job: str,
              run_facets: dict[str, Any], job_facets: dict[str, Any]) -> dict[str, Any]:
        return {
            "eventType": kind,
            "eventTime": when,
            "producer": producer(),
            "schemaURL": SPEC,
            "run": {"runId": run_id, "facets": run_facets},
            "job": {"namespace": self.namespace, "name": job, "facets": job_facets},
            "inputs": [],
            "outputs": [],
        }

    def _parent_event(self, kind: str, when: str) -> dict[str, Any]:
        assert self._parent is not None
        facets = {"processing_engine": _facet("processing_engine", {
            "version": _version(), "name": "headwater", "openlineageAdapterVersion": _version()})}
        job_facets = {"jobType": _facet("jobType", {
            "processingType": "BATCH", "integration": "HEADWATER", "jobType": "DAG"})}
        if self.project.config.description:
            job_facets["documentation"] = _facet(
                "documentation", {"description": self.project.config.description})
        return self._base(kind, when, self._parent.run_id, self.project.config.name,
                          facets, job_facets)

    def _node_event(self, name: str, kind: str, run_id: str, when: str,
                    result: NodeResult | None) -> dict[str, Any]:
        assert self._parent is not None
        node = self.project.nodes[name]
        run_facets: dict[str, Any] = {"parent": _facet("parent", {
            "run": {"runId": self._parent.run_id},
            "job": {"namespace": self.namespace, "name": self.project.config.name},
        })}
        if kind == "FAIL" and result is not None:
            run_facets["errorMessage"] = _facet("errorMessage", {
                "message": (result.error or result.reason or "failed")[:4000],
                "programmingLanguage": "python" if node.kind == "python" else "sql",
            })
        job_facets: dict[str, Any] = {"jobType": _facet("jobType", {
            "processingType": "BATCH", "integration": "HEADWATER",
            "jobType": {"source": "INGESTION", "sink": "EXPORT"}.get(node.kind, "TASK")})}
        if isinstance(node, SqlNode):
            job_facets["sql"] = _facet("sql", {"query": node.sql,
                                               "dialect": self.project.config.dialect})
        if node.description:
            job_facets["documentation"] = _facet("documentation",
                                                 {"description": node.description})
        event = self._base(kind, when, run_id, name, run_facets, job_facets)
        lineage = self._lineage_now(name, refresh=kind == "COMPLETE")
        event["inputs"] = [self._dataset(u, lineage, with_schema=True)
                           for u in self.project.graph.upstream[name]]
        if node.kind == "source":
            event["inputs"] = [_external(node, self.project.root)]
        if node.kind == "sink":
            event["outputs"] = [_external(node, self.project.root)]
        else:
            out = self._dataset(name, lineage, with_schema=kind == "COMPLETE")
            if kind == "COMPLETE":
                out["facets"].update(self._column_lineage(name, lineage))
                if result is not None and result.rows is not None:
                    out["outputFacets"] = {"outputStatistics": _facet(
                        "outputStatistics", {"rowCount": int(result.rows)})}
            event["outputs"] = [out]
        return event

    def _dataset(self, name: str, lineage: ProjectLineage, with_schema: bool) -> dict[str, Any]:
        from headwater.engines.base import public_schema

        ds: dict[str, Any] = {"namespace": self.dataset_namespace,
                              "name": f"{public_schema(self.env)}.{name}", "facets": {}}
        if with_schema:
            cols = lineage.schema(name)
            if cols:
                ds["facets"]["schema"] = _facet("schema", {"fields": [
                    {"name": c, "type": t or "UNKNOWN"} for c, t in cols]})
        return ds

    def _column_lineage(self, name: str, lineage: ProjectLineage) -> dict[str, Any]:
        from headwater.engines.base import public_schema

        lin = lineage.node(name)
        schema = public_schema(self.env)
        fields: dict[str, Any] = {}
        for col in lin.columns:
            inputs = []
            for e in col.inputs:
                if e.column == "*":
                    continue
                tr = {"type": "DIRECT", "subtype": SUBTYPES.get(e.transform, "TRANSFORMATION"),
                      "description": "" if e.exact else "coarse: assumed, not read from code",
                      "masking": False}
                inputs.append({"namespace": self.dataset_namespace,
                               "name": f"{schema}.{e.node}", "field": e.column,
                               "transformations": [tr]})
            fields[col.name] = {"inputFields": inputs}
        indirect = [
            {"namespace": self.dataset_namespace, "name": f"{schema}.{up}", "field": c,
             "transformations": [{"type": "INDIRECT", "subtype": INDIRECT.get(how, "FILTER"),
                                  "description": "", "masking": False}]}
            for up, c, how in lin.reads
        ]
        if not fields:
            return {}
        body: dict[str, Any] = {"fields": fields}
        if indirect:
            body["dataset"] = indirect
        return {"columnLineage": _facet("columnLineage", body)}

    def _lineage_now(self, name: str, refresh: bool) -> ProjectLineage:
        """Lineage that knows the schemas built so far in this run (on this thread only)."""
        from headwater.lineage.columns import ProjectLineage

        if self._lineage is None:
            self._lineage = ProjectLineage.from_state(self.project, self.state, self.env,
                                                      self.project.root / ".headwater")
            self._lineage.autosave = False  # saved once, in close()
            return self._lineage
        if refresh:
            current = self._built_schema(name)
            if current is not None:
                self._lineage.set_built(name, current)
        return self._lineage

    def _built_schema(self, name: str) -> list[tuple[str, str | None]] | None:
        pub = self.state.published(self.env).get(name)
        if pub is None or not pub.physical:
            return None
        info = self.state.physical(pub.physical)
        return [(c[0], c[1]) for c in info.columns] if info and info.columns else None


def _external(node: Any, root: Path) -> dict[str, Any]:
    """The dataset outside the warehouse a source reads or a sink writes.

    Files are named by path (the OpenLineage convention for local files); other
    connectors by their type and the node name, never by a connection string,
    which could hold a secret.
    """
    from headwater.connectors.files.sink import FilesSinkConfig
    from headwater.connectors.files.source import FilesSourceConfig

    config = node.config if isinstance(node, SourceNode | SinkNode) else None
    kind = config.type if config is not None else "external"
    path = config.path if isinstance(config, FilesSourceConfig | FilesSinkConfig) else None
    if path is not None and "${" not in path:
        full = Path(path) if Path(path).is_absolute() else root / path
        return {"namespace": "file", "name": str(full), "facets": {}}
    return {"namespace": f"{kind}://{node.name}", "name": node.name, "facets": {}}


def _facet(name: str, body: dict[str, Any]) -> dict[str, Any]:
    url = SCHEMA_URLS["documentation_dataset" if name == "documentation_dataset" else name]
    return {"_producer": producer(), "_schemaURL": url, **body}


def _uuid7() -> str:
    """A UUIDv7 (time-ordered), as OpenLineage recommends for run ids."""
    ms = int(time.time() * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64 | (0b10 << 62) | (
        rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))
