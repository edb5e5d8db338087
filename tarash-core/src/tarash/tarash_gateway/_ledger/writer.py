"""A ledger writer: store calls run one at a time, in the order they were handed in.

A sync caller runs its own write on its thread (first running any write queued before it), so a
sync generation pays no thread hop. Writes queued without waiting (status updates) and writes an
async caller waits for are run by the writer's thread, started on demand and ended when idle,
so the event loop never waits on the database. Writes still queued when the interpreter exits
are run before it does.

Given a store's ``batch`` (a :class:`~.records.BatchStore`), the writes found queued together,
up to :data:`BATCH_LIMIT`, are stored in one transaction: one commit instead of one each, and
fewer statements for the thread to hand the interpreter back and forth over while an event loop
keeps it busy. Their callers hear of them once that transaction has committed. When it does not
commit (one of them raised, or the commit failed), each write of the batch is run again alone,
so one write's failure is its own; a write must therefore only change the store.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

__all__ = ["BATCH_LIMIT", "IDLE_SECONDS", "Writer"]

T = TypeVar("T")

#: How long a writer's thread waits for work before it ends (the next write starts a new one).
IDLE_SECONDS = 2.0
#: The most writes stored in one transaction (bounds how long it holds the store's write lock).
BATCH_LIMIT = 256

_Item = tuple[Callable[[], Any], "concurrent.futures.Future[Any] | None"]

_LIVE: weakref.WeakSet[Writer] = weakref.WeakSet()


class Writer:
    """One queue of store calls, run in order (see the module's docstring)."""

    def __init__(self, batch: Callable[[], AbstractContextManager[Any]] | None = None) -> None:
        self._batch = batch
        self._pid = os.getpid()  # a forked child makes writers of its own
        self._running = threading.Lock()  # held while writes run, by a caller or the thread
        self._changed = threading.Condition()
        self._queue: deque[_Item] = deque()
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
                count = min(len(self._queue), BATCH_LIMIT) if self._batch is not None else 1
                taken = [self._queue.popleft() for _ in range(count)]
            items = [
                (write, future)
                for write, future in taken
                if future is None or future.set_running_or_notify_cancel()
            ]
            if len(items) > 1 and self._together(items):
                continue
            for write, future in items:
                self._alone(write, future)

    def _together(self, items: list[_Item]) -> bool:
        """Store ``items`` in one transaction and hand out their outcomes; False when it did not
        commit (nothing of them is stored, no outcome handed out)."""
        assert self._batch is not None
        try:
            with self._batch():
                outcomes = [write() for write, _ in items]
        except BaseException:
            return False
        for (_, future), outcome in zip(items, outcomes, strict=True):
            if future is not None:
                future.set_result(outcome)
        return True

    @staticmethod
    def _alone(write: Callable[[], Any], future: concurrent.futures.Future[Any] | None) -> None:
        if future is None:
            write()
            return
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
    """Run the writes still queued (status updates) before the interpreter exits; a forked child
    leaves its parent's writers to the parent (one may have been mid-write at the fork, its lock
    held by a thread the child does not have)."""
    for writer in list(_LIVE):
        if writer._pid == os.getpid():
            writer.flush()
