"""Server-sent events: run progress pushed from the run's thread to every open page.

The run executes in a worker thread; pages listen on ``/api/events`` inside the
server's event loop. :class:`Broadcaster` bridges the two with
``loop.call_soon_threadsafe``, so publishing never blocks the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

HEARTBEAT = 15.0  # seconds between keep-alive comments
POLL = 1.0  # seconds between checks that the page is still there and the server still up
QUEUE_SIZE = 1000  # events a slow page may fall behind before it is dropped


class Broadcaster:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[str | None]]] = set()
        self._ids = itertools.count(1)
        self.redact: Callable[[str], str] = lambda text: text

    def publish(self, event: str, data: dict[str, Any]) -> None:
        """Send ``data`` as an ``event`` to every subscriber; callable from any thread."""
        message = self.format(event, data)
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            try:
                loop.call_soon_threadsafe(_offer, queue, message)
            except RuntimeError:  # the loop is closed: the page went away
                self._discard((loop, queue))

    def format(self, event: str, data: dict[str, Any]) -> str:
        body = self.redact(json.dumps(data, default=str))
        return f"id: {next(self._ids)}\nevent: {event}\ndata: {body}\n\n"

    def close(self) -> None:
        """End every stream (server shutdown)."""
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            with contextlib.suppress(RuntimeError):  # that loop is already closed
                loop.call_soon_threadsafe(_offer, queue, None)

    async def stream(
        self,
        first: str,
        disconnected: Callable[[], Any],
        closing: Callable[[], bool] = lambda: False,
    ) -> AsyncIterator[str]:
        """The text of one page's event stream: ``first``, then every event published.

        Ends when the page goes away, when :meth:`close` is called or when
        ``closing()`` turns true (the server is shutting down).
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_SIZE)
        entry = (loop, queue)
        with self._lock:
            self._subscribers.add(entry)
        try:
            yield "retry: 2000\n" + first
            idle = 0.0
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), POLL)
                except TimeoutError:
                    idle += POLL
                    if closing() or await disconnected():
                        return
                    if idle >= HEARTBEAT:
                        idle = 0.0
                        yield ": keep-alive\n\n"
                    continue
                idle = 0.0
                if message is None:
                    return
                yield message
        finally:
            self._discard(entry)

    def _discard(self, entry: tuple[asyncio.AbstractEventLoop, asyncio.Queue[str | None]]) -> None:
        with self._lock:
            self._subscribers.discard(entry)

    @property
    def listeners(self) -> int:
        with self._lock:
            return len(self._subscribers)


def _offer(queue: asyncio.Queue[str | None], message: str | None) -> None:
    # a page this far behind reloads its state on the next event it does get
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(message)
