"""Pure pieces of the web UI: node status, JSON cells, the warehouse gate, events."""

from __future__ import annotations

import asyncio
import threading
from datetime import date, datetime
from decimal import Decimal

import pytest

from headwater.web.events import Broadcaster
from headwater.web.runs import WarehouseBusy, WarehouseGate
from headwater.web.views import json_cell, node_status


@pytest.mark.parametrize("action,reason,last,live,expected", [
    ("skip", "up to date", None, None, "fresh"),
    ("run", "never built", None, None, "stale"),
    ("publish", "reusing the build of ...", None, None, "stale"),
    ("run", "code changed (transforms/x.sql)", {"status": "executed"}, None, "stale"),
    ("run", "error", {"status": "failed", "error": "boom\nmore"}, None, "failed"),
    ("skip", "up to date", {"status": "failed", "error": "boom"}, None, "fresh"),  # reverted
    ("run", "deferred: source vendor opens at 02:00", None, None, "deferred"),
    ("skip", "up to date", None, "running", "running"),
    ("run", "never built", None, "queued", "stale"),
    (None, "", None, None, "stale"),
])
def test_node_status(action: str | None, reason: str, last: dict[str, str] | None,
                     live: str | None, expected: str) -> None:
    status, why = node_status(action, reason, last, live)
    assert status == expected
    if expected == "failed":
        assert why == "boom"


def test_json_cell() -> None:
    assert json_cell(Decimal("1.50")) == "1.50"
    assert json_cell(datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02T03:04:05"
    assert json_cell(date(2024, 1, 2)) == "2024-01-02"
    assert json_cell(float("nan")) == "nan"
    assert json_cell(b"\x00\xff") == "0x00ff"
    assert json_cell({"a": [Decimal("1")]}) == {"a": ["1"]}
    assert json_cell(None) is None and json_cell(3) == 3


def test_gate_turns_readers_away_during_a_run_and_the_run_waits_for_readers() -> None:
    gate = WarehouseGate()
    reading = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def reader() -> None:
        with gate.reading():
            reading.set()
            release.wait(5)
            order.append("read done")

    def writer() -> None:
        with gate.writing():
            order.append("writing")

    r = threading.Thread(target=reader)
    r.start()
    assert reading.wait(5)
    w = threading.Thread(target=writer)
    w.start()
    w.join(0.2)
    assert w.is_alive() and gate.busy  # waits for the reader; new readers are refused
    with pytest.raises(WarehouseBusy, match="the warehouse is busy: a run is in progress"), \
            gate.reading():
        pass
    release.set()
    r.join(5)
    w.join(5)
    assert order == ["read done", "writing"]
    assert not gate.busy
    with gate.reading():
        pass


def test_broadcaster_delivers_across_threads_and_redacts() -> None:
    events = Broadcaster()
    events.redact = lambda text: text.replace("sekrit", "***")

    async def listen() -> list[str]:
        got: list[str] = []

        async def never() -> bool:
            return False

        stream = events.stream(events.format("hello", {}), never)
        async for chunk in stream:
            got.append(chunk)
            if len(got) == 1:
                threading.Thread(target=lambda: (
                    events.publish("node_started", {"name": "a", "x": "sekrit"}),
                    events.close())).start()
        return got

    got = asyncio.run(asyncio.wait_for(listen(), 10))
    assert got[0].startswith("retry: 2000\nid: 1\nevent: hello\n")
    assert "event: node_started" in got[1] and "sekrit" not in got[1] and "***" in got[1]
    assert len(got) == 2 and events.listeners == 0
