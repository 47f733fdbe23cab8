"""OpenLineage run events from a real run, received by a local HTTP server that checks them."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from headwater import Project
from headwater.integrations.openlineage import (
    FileTransport,
    HttpTransport,
    OpenLineageEmitter,
    OpenLineageSettings,
    transports_from_settings,
)
from headwater.testing import write_project

FILES = {
    "data/a.csv": "id,v,k\n1,10,x\n2,20,y\n3,30,x\n",
    "sources/raw.toml": 'type = "files"\npath = "data/a.csv"\n',
    "transforms/stg.sql": "-- Doubled.\nSELECT id, v * 2 AS v2, k FROM raw WHERE id > 0\n",
    "transforms/by_k.sql": "SELECT k, SUM(v2) AS total FROM stg GROUP BY k\n",
    "transforms/py_copy.py": "def py_copy(by_k):\n    return by_k\n",
    "sinks/out.toml": 'type = "files"\nfrom = "by_k"\npath = "out/by_k.csv"\n',
}
EVENT_TYPES = {"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"}


def problems(event: dict[str, Any]) -> list[str]:
    """What is wrong with a RunEvent, per the OpenLineage 2-0-2 spec (empty when valid)."""
    out = []
    for key in ("eventType", "eventTime", "run", "job", "producer", "schemaURL"):
        if key not in event:
            out.append(f"missing {key}")
    if out:
        return out
    if event["eventType"] not in EVENT_TYPES:
        out.append(f"bad eventType {event['eventType']}")
    when = datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00"))
    if when.tzinfo is None:
        out.append("eventTime without a time zone")
    try:
        uuid.UUID(event["run"]["runId"])
    except (KeyError, ValueError):
        out.append("run.runId is not a UUID")
    for key in ("producer", "schemaURL"):
        if not str(event[key]).startswith("https://"):
            out.append(f"{key} is not a URI")
    if not (isinstance(event["job"].get("namespace"), str)
            and isinstance(event["job"].get("name"), str)):
        out.append("job needs namespace and name")
    facets = [*event["run"].get("facets", {}).values(), *event["job"].get("facets", {}).values()]
    for ds in event.get("inputs", []) + event.get("outputs", []):
        if not (isinstance(ds.get("namespace"), str) and isinstance(ds.get("name"), str)):
            out.append("dataset needs namespace and name")
        facets += ds.get("facets", {}).values()
        facets += ds.get("outputFacets", {}).values()
        schema = ds.get("facets", {}).get("schema")
        if schema and not all({"name", "type"} <= set(f) for f in schema["fields"]):
            out.append("schema fields need name and type")
        lineage = ds.get("facets", {}).get("columnLineage")
        for col, spec in (lineage or {}).get("fields", {}).items():
            for inp in spec["inputFields"]:
                if not {"namespace", "name", "field"} <= set(inp):
                    out.append(f"columnLineage input of {col} incomplete")
                for tr in inp.get("transformations", []):
                    if tr["type"] not in ("DIRECT", "INDIRECT"):
                        out.append(f"bad transformation type {tr['type']}")
    for facet in facets:
        if not (str(facet.get("_producer", "")).startswith("https://")
                and str(facet.get("_schemaURL", "")).startswith("https://")):
            out.append("facet without _producer/_schemaURL")
    return out


class Receiver:
    """A local OpenLineage endpoint: keeps valid events, answers 400 to invalid ones."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.invalid: list[tuple[list[str], dict[str, Any]]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.paths.append(self.path)
                receiver.headers.append(dict(self.headers))
                wrong = problems(body)
                if wrong:
                    receiver.invalid.append((wrong, body))
                else:
                    receiver.events.append(body)
                self.send_response(400 if wrong else 201)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(write_project(tmp_path / "p", FILES))


def run_with(project: Project, transports: list[Any]) -> OpenLineageEmitter:
    emitter = OpenLineageEmitter(project.loaded, project.state, transports=transports)
    try:
        project.run(reporter=emitter)
    finally:
        emitter.close()
    return emitter


def test_run_emits_valid_events_with_schema_and_column_lineage(
        project: Project, receiver: Receiver) -> None:
    emitter = run_with(project, [HttpTransport(receiver.url)])
    assert emitter.errors == []
    assert receiver.invalid == []
    assert set(receiver.paths) == {"/api/v1/lineage"}
    events = receiver.events
    parent = events[0]
    assert (parent["eventType"], parent["job"]["name"]) == ("START", "test")
    assert (events[-1]["eventType"], events[-1]["job"]["name"]) == ("COMPLETE", "test")
    nodes = [e for e in events if e["job"]["name"] != "test"]
    assert {e["job"]["name"] for e in nodes} == {"raw", "stg", "by_k", "py_copy", "out"}
    for name in ("raw", "stg", "by_k", "py_copy", "out"):
        mine = [e for e in nodes if e["job"]["name"] == name]
        assert [e["eventType"] for e in mine] == ["START", "COMPLETE"]
        assert mine[0]["run"]["runId"] == mine[1]["run"]["runId"]
        assert mine[1]["run"]["facets"]["parent"]["run"]["runId"] == parent["run"]["runId"]

    (stg,) = [e for e in nodes if e["job"]["name"] == "stg" and e["eventType"] == "COMPLETE"]
    assert stg["job"]["facets"]["sql"]["query"].startswith("-- Doubled.")
    assert [i["name"] for i in stg["inputs"]] == ["main.raw"]
    out = stg["outputs"][0]
    assert out["name"] == "main.stg"
    assert [f["name"] for f in out["facets"]["schema"]["fields"]] == ["id", "v2", "k"]
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 3
    fields = out["facets"]["columnLineage"]["fields"]
    (v2,) = fields["v2"]["inputFields"]
    assert (v2["name"], v2["field"]) == ("main.raw", "v")
    assert v2["transformations"][0] == {"type": "DIRECT", "subtype": "TRANSFORMATION",
                                        "description": "", "masking": False}
    indirect = out["facets"]["columnLineage"]["dataset"]
    assert {(d["field"], d["transformations"][0]["subtype"]) for d in indirect} == {
        ("id", "FILTER")}

    (by_k,) = [e for e in nodes if e["job"]["name"] == "by_k" and e["eventType"] == "COMPLETE"]
    total = by_k["outputs"][0]["facets"]["columnLineage"]["fields"]["total"]["inputFields"]
    assert [(i["field"], i["transformations"][0]["subtype"]) for i in total] == [
        ("v2", "AGGREGATION")]

    (py,) = [e for e in nodes if e["job"]["name"] == "py_copy" and e["eventType"] == "COMPLETE"]
    k = py["outputs"][0]["facets"]["columnLineage"]["fields"]["k"]["inputFields"]
    assert all(i["transformations"][0]["description"].startswith("coarse") for i in k)

    (raw,) = [e for e in nodes if e["job"]["name"] == "raw" and e["eventType"] == "START"]
    assert raw["inputs"][0]["namespace"] == "file"
    assert raw["inputs"][0]["name"].endswith("data/a.csv")
    (sink,) = [e for e in nodes if e["job"]["name"] == "out" and e["eventType"] == "COMPLETE"]
    assert sink["outputs"][0]["name"].endswith("out/by_k.csv")


def test_failed_node_emits_fail_and_the_run_fails(project: Project, receiver: Receiver) -> None:
    (project.root / "transforms/by_k.sql").write_text("SELECT nope FROM stg\n")
    project.reload()
    run_with(project, [HttpTransport(receiver.url)])
    assert receiver.invalid == []
    kinds = {(e["job"]["name"], e["eventType"]) for e in receiver.events}
    assert ("by_k", "FAIL") in kinds
    assert not any(name == "py_copy" for name, _ in kinds)  # skipped: never started
    (fail,) = [e for e in receiver.events
               if e["eventType"] == "FAIL" and e["job"]["name"] == "by_k"]
    assert "nope" in fail["run"]["facets"]["errorMessage"]["message"]
    assert receiver.events[-1]["job"]["name"] == "test"
    assert receiver.events[-1]["eventType"] == "FAIL"


def test_nothing_to_do_still_opens_and_closes_the_run(project: Project, tmp_path: Path) -> None:
    project.run()
    path = tmp_path / "ol.ndjson"
    run_with(project, [FileTransport(path)])
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("test", "START"), ("test", "COMPLETE")]
    assert all(problems(e) == [] for e in events)


def test_api_key_from_the_environment_is_sent_and_never_shown(
        project: Project, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HW_OL_KEY", "k-123-secret")
    settings = OpenLineageSettings(url=receiver.url, api_key="${HW_OL_KEY}",
                                   file="target/ol.ndjson")
    transports = transports_from_settings(settings, project.root)
    assert "k-123-secret" not in repr(transports)
    run_with(project, transports)
    assert {h["Authorization"] for h in receiver.headers} == {"Bearer k-123-secret"}
    assert (project.root / "target/ol.ndjson").read_text().count("\n") == len(receiver.events)
    assert "k-123-secret" not in (project.root / "target/ol.ndjson").read_text()


def test_an_unreachable_endpoint_does_not_fail_the_run(project: Project) -> None:
    emitter = OpenLineageEmitter(project.loaded, project.state,
                                 transports=[HttpTransport("http://127.0.0.1:9", timeout=0.5)])
    result = project.run(reporter=emitter)
    emitter.close()
    assert result.ok
    assert emitter.errors and "not delivered" in emitter.errors[0]
