"""Build threads a run can give up on: the runner's pool, with a way to stop one task.

``concurrent.futures.ThreadPoolExecutor`` cannot stop a task, and its threads are
joined when the interpreter exits, so one endless loop in a Python transform would
keep ``headwater run`` alive forever. Here every worker is a daemon thread, and
``stop`` ends a task past its deadline:

* it raises ``NodeTimedOut`` inside the worker thread (``PyThreadState_SetAsyncExc``:
  Python code stops at its next bytecode, even in ``while True: pass``), after the
  ``on_stop`` hook has interrupted the engine's queries on that thread;
* the worker is retired (its task is no longer waited for) and a fresh one takes its
  place, so the rest of the run keeps its parallelism;
* a worker stuck in C code that never returns (``time.sleep(10**9)``) is left behind:
  being a daemon thread, it does not keep the process from exiting.

``NodeTimedOut`` derives from ``BaseException`` so that user code catching
``Exception`` cannot swallow it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class NodeTimedOut(BaseException):
    """Raised inside a build thread whose node ran past its timeout."""


_Task = tuple[Future[Any], Callable[[], Any]]


class _Worker(threading.Thread):
    def __init__(self, pool: Workers, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.pool = pool
        self.current: Future[Any] | None = None
        self.retired = False
        self.guard = threading.Lock()  # current and retired change together

    def run(self) -> None:
        while not self.retired:
            try:
                task = self.pool.tasks.get()
                if task is None:
                    return
                self._run(*task)
            except NodeTimedOut:
                continue  # a stop that landed just after its task ended
        self.pool.on_retire()

    def _run(self, fut: Future[Any], fn: Callable[[], Any]) -> None:
        if not fut.set_running_or_notify_cancel():
            return
        with self.guard:
            self.current = fut
        try:
            result = fn()
        except BaseException as exc:  # noqa: BLE001 - the future carries it to the runner
            with self.guard:
                self.current = None
            fut.set_exception(exc)
        else:
            with self.guard:
                self.current = None
            fut.set_result(result)


class Workers:
    """Up to ``size`` daemon threads taking tasks in order."""

    def __init__(self, size: int, name: str = "hw-build",
                 on_retire: Callable[[], None] | None = None) -> None:
        self.size = max(1, size)
        self.name = name
        self.tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._count = 0
        self._on_retire = on_retire

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        fut: Future[T] = Future()
        with self._lock:
            self._workers = [w for w in self._workers if w.is_alive() and not w.retired]
            if len(self._workers) < self.size:
                self._start()
        self.tasks.put((fut, fn))
        return fut

    def _start(self) -> None:
        self._count += 1
        worker = _Worker(self, f"{self.name}-{self._count}")
        self._workers.append(worker)
        worker.start()

    def on_retire(self) -> None:
        """Called in a retired worker's own thread as it ends (release what it holds)."""
        if self._on_retire is not None:
            self._on_retire()

    def stop(self, fut: Future[Any], on_stop: Callable[[int], None] | None = None) -> bool:
        """Stop the task of ``fut``: retire its worker, start a replacement, and raise
        ``NodeTimedOut`` in its thread. False when the task was no longer running."""
        with self._lock:
            worker = next((w for w in self._workers if w.current is fut), None)
            if worker is None:
                return False
            with worker.guard:
                if worker.current is not fut or worker.ident is None:
                    return False
                worker.retired = True
                if on_stop is not None:
                    on_stop(worker.ident)
                import ctypes

                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(worker.ident), ctypes.py_object(NodeTimedOut))
            self._workers.remove(worker)
            self._start()  # the run keeps its parallelism
        return True

    def shutdown(self) -> None:
        """Let idle workers end; a stuck one is a daemon and is simply left behind."""
        with self._lock:
            for _ in self._workers:
                self.tasks.put(None)
            self._workers = []


def call_with_timeout(fn: Callable[[], T], seconds: float | None) -> T:
    """``fn()``, stopped after ``seconds`` (None: no limit): raises ``TimeoutError`` then
    (its thread gets ``NodeTimedOut``, or is left behind when stuck in C code)."""
    if seconds is None:
        return fn()
    from concurrent.futures import TimeoutError as FutureTimeout

    pool = Workers(1, "hw-deadline")
    fut = pool.submit(fn)
    try:
        return fut.result(timeout=seconds)
    except FutureTimeout:
        pool.stop(fut)
        raise TimeoutError(f"timed out after {seconds:g}s") from None
    finally:
        pool.shutdown()
