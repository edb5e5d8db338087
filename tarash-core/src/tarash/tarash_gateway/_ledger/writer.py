"""A ledger writer: store calls run one at a time, in the order they were handed in.

A sync caller runs its own write on its thread (first running any write queued before it), so a
sync generation pays no thread hop; the writes a sync generation queues without waiting (status
updates) are held back for it (see :mod:`.._runtime`), run by its own thread before it waits and
by the writer's thread while it sends a request. Other writes queued without waiting, and writes
an async caller waits for, are run by the writer's thread, started on demand and ended when idle,
so the event loop never waits on the database. An event loop hears of the writes it waits for
(:meth:`Writer.submit_from_loop`) in one wake-up per batch, not one each: every cross-thread
wake-up hands the interpreter lock to the busy loop and makes the writer's thread wait to get it
back. Writes still queued when the interpreter exits are run before it does.

Given a store's ``batch`` (a :class:`~.records.BatchStore`), the writes found queued together,
up to :data:`BATCH_LIMIT`, are stored in one transaction: one commit instead of one each, and
fewer statements for the thread to hand the interpreter back and forth over while an event loop
keeps it busy. Their callers hear of them once that transaction has committed. When it does not
commit (one of them raised, or the commit failed), each write of the batch is run again alone,
so one write's failure is its own; a write must therefore only change the store.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .._redact import get_logger
from .._runtime import deferral, settle_from_thread

if TYPE_CHECKING:
    import asyncio

    from .._runtime import Settlement

__all__ = ["BATCH_LIMIT", "IDLE_SECONDS", "Writer"]

log = get_logger("tarash.ledger")

T = TypeVar("T")

#: How long a writer's thread waits for work before it ends (the next write starts a new one).
IDLE_SECONDS = 2.0
#: The most writes stored in one transaction (bounds how long it holds the store's write lock).
BATCH_LIMIT = 256

if TYPE_CHECKING:
    _Waiter = tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]] | None  # None: nobody waits
    _Item = tuple[Callable[[], Any], _Waiter]
    _Outcome = tuple[bool, Any]  # (True, what the write returned) or (False, what it raised)

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
        """Run ``write`` on this thread once the writes queued before it have run: in the same
        transaction as the last of them, on a store that batches (one commit, not two)."""
        with self._running:
            stored, value = self._drain(write)
        if not stored:
            raise value
        return value  # type: ignore[no-any-return]

    def submit_from_loop(self, write: Callable[[], T]) -> asyncio.Future[T]:
        """Queue ``write`` for the writer's thread; the running loop's future gets its outcome."""
        import asyncio  # lazy: only an event loop calls this, so asyncio is loaded already

        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._put(write, (loop, future))
        return future

    def queue(self, write: Callable[[], Any]) -> None:
        """Queue ``write`` without waiting for it (nobody hears of a failure: it is logged). In a
        sync flow it is held back for the flow's thread (see :func:`~.._runtime.deferral`);
        otherwise the writer's thread runs it."""
        held = deferral()
        if held is None:
            self._put(write, None)
            return
        with self._changed:
            self._queue.append((write, None))
        held.hold(self)

    def flush(self) -> None:
        """Run every queued write now."""
        with self._running:
            self._drain()

    def wake(self) -> None:
        """Have the writer's thread run the queued writes (ones held back for a sync flow)."""
        with self._changed:
            if self._queue:
                self._serve_queue()

    def _put(self, write: Callable[[], Any], future: _Waiter) -> None:
        with self._changed:
            self._queue.append((write, future))
            self._serve_queue()

    def _serve_queue(self) -> None:
        """Start the writer's thread, or wake it (``_changed`` is held)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="tarash-ledger", daemon=True)
            self._thread.start()
        else:
            self._changed.notify()

    @overload
    def _drain(self) -> None: ...
    @overload
    def _drain(self, own: Callable[[], Any]) -> _Outcome: ...

    def _drain(self, own: Callable[[], Any] | None = None) -> _Outcome | None:
        """Run the queued writes in order, then ``own`` with the last of them (``_running`` is
        held); ``own``'s outcome. A queued write that fails alone is logged here, the one place
        that hears of it (whoever drains, the thread or a caller, goes on); an interrupt raised
        in one is raised."""
        limit = BATCH_LIMIT if self._batch is not None else 1
        while True:
            with self._changed:
                items = [self._queue.popleft() for _ in range(min(len(self._queue), limit))]
                last = not self._queue
            mine = own is not None and last and len(items) < limit
            writes = [write for write, _ in items] + ([own] if mine and own is not None else [])
            if not writes:
                return None
            together = self._together(writes) if len(writes) > 1 else None
            outcomes = together if together is not None else [self._alone(write) for write in writes]
            outcome = outcomes.pop() if mine else None
            _deliver(items, outcomes)
            for (_, waiter), (stored, value) in zip(items, outcomes, strict=True):
                if waiter is None and not stored:
                    if not isinstance(value, Exception):
                        raise value
                    log.error("A queued ledger write failed", exc_info=value)
            if outcome is not None:
                return outcome

    def _together(self, writes: list[Callable[[], Any]]) -> list[_Outcome] | None:
        """Store ``writes`` in one transaction; their outcomes, or None when it did not commit
        (nothing of them is stored)."""
        assert self._batch is not None
        try:
            with self._batch():
                return [(True, write()) for write in writes]
        except BaseException:
            return None

    @staticmethod
    def _alone(write: Callable[[], Any]) -> _Outcome:
        try:
            return True, write()
        except BaseException as exc:
            return False, exc

    def _serve(self) -> None:
        while True:
            with self._changed:
                if not self._queue:
                    self._changed.wait(IDLE_SECONDS)
                    if not self._queue:
                        self._thread = None
                        return
            self.flush()


def _deliver(items: list[_Item], outcomes: list[_Outcome]) -> None:
    """Hand the waiters of ``items`` their ``outcomes``: each event loop's in one call on that loop
    (none for a loop that has closed: nobody waits for its writes any more)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Settlement]] = {}
    for (_, waiter), (ok, value) in zip(items, outcomes, strict=True):
        if waiter is not None:
            by_loop.setdefault(waiter[0], []).append((waiter[1], ok, value))
    for loop, settled in by_loop.items():
        settle_from_thread(loop, settled)


@atexit.register
def _flush_all() -> None:
    """Run the writes still queued (status updates) before the interpreter exits; a forked child
    leaves its parent's writers to the parent (one may have been mid-write at the fork, its lock
    held by a thread the child does not have)."""
    for writer in list(_LIVE):
        if writer._pid == os.getpid():
            writer.flush()
