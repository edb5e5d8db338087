"""A ledger writer: store calls run one at a time, in the order they were handed in.

A sync caller runs its own write on its thread (first running any write queued before it), so a
sync generation pays no thread hop. Writes queued without waiting (status updates) and writes an
async caller waits for are run by the writer's thread, started on demand and ended when idle,
so the event loop never waits on the database. Writes still queued when the interpreter exits
are run before it does.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["IDLE_SECONDS", "Writer"]

T = TypeVar("T")

#: How long a writer's thread waits for work before it ends (the next write starts a new one).
IDLE_SECONDS = 2.0

_LIVE: weakref.WeakSet[Writer] = weakref.WeakSet()


class Writer:
    """One queue of store calls, run in order (see the module's docstring)."""

    def __init__(self) -> None:
        self._running = threading.Lock()  # held while writes run, by a caller or the thread
        self._changed = threading.Condition()
        self._queue: deque[tuple[Callable[[], Any], concurrent.futures.Future[Any] | None]] = deque()
        self._thread: threading.Thread | None = None
        _LIVE.add(self)

    def run(self, write: Callable[[], T]) -> T:
        """Run ``write`` on this thread once the writes queued before it have run."""
        with self._running:
            self._drain()
            return write()

    def submit(self, write: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Queue ``write`` for the writer's thread; the future gets its outcome."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._put(write, future)
        return future

    def queue(self, write: Callable[[], Any]) -> None:
        """Queue ``write`` without waiting for it (it must not raise: nobody would hear)."""
        self._put(write, None)

    def flush(self) -> None:
        """Run every queued write now."""
        with self._running:
            self._drain()

    def _put(self, write: Callable[[], Any], future: concurrent.futures.Future[Any] | None) -> None:
        with self._changed:
            self._queue.append((write, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="tarash-ledger", daemon=True)
                self._thread.start()
            else:
                self._changed.notify()

    def _drain(self) -> None:
        """Run the queued writes in order (``_running`` is held)."""
        while True:
            with self._changed:
                if not self._queue:
                    return
                write, future = self._queue.popleft()
            if future is None:
                write()
            elif future.set_running_or_notify_cancel():
                try:
                    future.set_result(write())
                except BaseException as exc:
                    future.set_exception(exc)

    def _serve(self) -> None:
        while True:
            with self._changed:
                if not self._queue:
                    self._changed.wait(IDLE_SECONDS)
                    if not self._queue:
                        self._thread = None
                        return
            self.flush()


@atexit.register
def _flush_all() -> None:
    """Run the writes still queued (status updates) before the interpreter exits."""
    for writer in list(_LIVE):
        writer.flush()
