"""Fuzz the JSON API from its own OpenAPI document (schemathesis, in process over ASGI).

Every operation gets a bounded number of generated requests, valid and invalid;
no answer may be a server error, and every answer must match the document
(status codes, content types, bodies). The event stream never ends, so it is
left out; POST /api/runs really starts runs (with the token), which is fine.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from headwater import Project  # noqa: E402
from headwater.web.app import create_app  # noqa: E402

TOKEN = "fuzz-token-0123456789"
EXAMPLES = 12  # per operation: the whole fuzz takes seconds, not minutes


def test_api_conforms_and_never_fails(demo: Path) -> None:
    app = create_app(Project(demo), token=TOKEN)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app).exclude(
        path="/api/events")
    operations = [op.ok() for op in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"GET /api/graph", "GET /api/nodes/{name}", "POST /api/runs"} <= labels
    calls: list[tuple[str, int]] = []
    try:
        for operation, mode in itertools.product(operations, GenerationMode):
            if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
                continue  # nothing to make invalid

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def fuzz(case: Any) -> None:
                response = case.call_and_validate(headers={"X-Headwater-Token": TOKEN})
                calls.append((case.operation.label, response.status_code))

            fuzz()
    finally:
        assert app.state.web.manager.join(60)
    statuses = {code for _, code in calls}
    assert len(calls) > 5 * len(operations)
    assert {200, 404, 422} <= statuses  # found things, missed things, refused bad input
    assert all(code < 500 for code in statuses)


def _has_inputs(operation: Any) -> bool:
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))
