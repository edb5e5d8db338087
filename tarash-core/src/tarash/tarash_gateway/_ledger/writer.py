"""A ledger writer: store calls run one at a time, in the order they were handed in.

A sync caller runs its own write on its thread (first running any write queued before it), so a
sync generation pays no thread hop; the writes a sync generation queues without waiting (status
updates) are held back for it (see :mod:`.._runtime`), run by its own thread before it waits and
by the writer's thread while it sends a request. Other writes queued without waiting, and writes
an async caller waits for, are run by the writer's thread, started on demand and ended when idle,
so the event loop never waits on the database; on a store that can make them from the loop itself
(a :class:`~.records.LoopStore`: PostgreSQL, and SQLite through a helper process), an event loop's
writes go to that loop's
:class:`~.loop_queue.LoopQueue` instead, which hands the thread only those that need it (a sync
call on the loop's thread first takes that loop's writes not yet sent, see :meth:`Writer.flush`).
An event loop hears of the thread's writes it waits for (:meth:`Writer.submit_from_loop`) in one
wake-up per batch, not one each, and wakes the thread once for the writes its ready callbacks put,
not at each: every cross-thread wake-up hands the interpreter lock between the thread and the busy
loop, and a thread woken at a loop's first write would store it alone while the loop puts more.
Writes still queued when the interpreter exits are run before it does.

Given a store's ``batch`` (a :class:`~.records.BatchStore`), the writes found queued together,
up to :data:`BATCH_LIMIT`, are stored in one transaction: one commit instead of one each, and
fewer statements for the thread to hand the interpreter back and forth over while an event loop
keeps it busy. Their callers hear of them once that transaction has committed. When it does not
commit (one of them raised, or the commit failed), each write of the batch is run again alone,
so one write's failure is its own; a write must therefore only change the store.

Under load the thread lets writes gather: after a batch of at least :data:`GATHER_FROM` writes, it
sleeps :data:`GATHER_SECONDS` before taking the next one (not when a full batch is queued already).
Each batch costs a busy event loop about the same, whatever its size: the thread takes the
interpreter lock back when it wakes and when its statement returns, and while it waits for the lock
every system call the loop makes (the loop lets the lock go around each) wakes it again, until it
wins the lock (1 to 1.5 ms of the loop's CPU time per batch at 1000 concurrent generations on a
2-vCPU virtual machine, ``benchmarks/core_load.py``). Fewer, larger batches cost the loop less, and
a waited-for write may wait up to :data:`GATHER_SECONDS` more. A smaller batch (a lone job's
writes) is followed by no wait: the next write is stored at once.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .._redact import get_logger
from .._runtime import deferral, running_loop, settle_from_thread

if TYPE_CHECKING:
    import asyncio

    from .._runtime import Settlement
    from .loop_queue import LoopQueue
    from .records import LoopStore

__all__ = ["BATCH_LIMIT", "GATHER_FROM", "GATHER_SECONDS", "IDLE_SECONDS", "Writer"]

log = get_logger("tarash.ledger")

T = TypeVar("T")

#: How long a writer's thread waits for work before it ends (the next write starts a new one).
IDLE_SECONDS = 2.0
#: The most writes stored in one transaction (bounds how long it holds the store's write lock).
BATCH_LIMIT = 256
#: How long the writer's thread lets writes gather after a batch of GATHER_FROM writes or more.
GATHER_SECONDS = 0.05
GATHER_FROM = 8

if TYPE_CHECKING:
    _Waiter = tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]] | None  # None: nobody waits
    _Item = tuple[Callable[[], Any], _Waiter]
    _Outcome = tuple[bool, Any]  # (True, what the write returned) or (False, what it raised)

_LIVE: weakref.WeakSet[Writer] = weakref.WeakSet()


class Writer:
    """One queue of store calls, run in order (see the module's docstring)."""

    def __init__(
        self,
        batch: Callable[[], AbstractContextManager[Any]] | None = None,
        loop_store: LoopStore | None = None,
    ) -> None:
        self._batch = batch
        #: The store, when it makes an event loop's writes on that loop (see :mod:`.loop_queue`).
        self._loop_store = loop_store
        #: id(loop) -> its queue, while the loop holds it (through its task): a loop that is
        #: freed takes its queue with it.
        self._loops: weakref.WeakValueDictionary[int, LoopQueue] = weakref.WeakValueDictionary()
        self._pid = os.getpid()  # a forked child makes writers of its own
        self._running = threading.Lock()  # held while writes run, by a caller or the thread
        self._changed = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._thread: threading.Thread | None = None
        #: The loops that will wake the thread for writes they put (see :meth:`_put`).
        self._wakes: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
        _LIVE.add(self)

    def run(self, write: Callable[[], T]) -> T:
        """Run ``write`` on this thread once the writes queued before it have run: in the same
        transaction as the last of them, on a store that batches (one commit, not two)."""
        self._adopt_stalled()
        with self._running:
            stored, value = self._drain(write)
        if not stored:
            raise value
        return value  # type: ignore[no-any-return]

    def submit_from_loop(self, write: Callable[[], T]) -> asyncio.Future[T]:
        """Queue ``write`` for the running loop's own connection (on a store that has one) or
        the writer's thread; the running loop's future gets its outcome."""
        import asyncio  # lazy: only an event loop calls this, so asyncio is loaded already

        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        on_loop = self._loop_queue(loop)
        if on_loop is not None:
            on_loop.put(write, future)
        else:
            self._put(write, (loop, future), loop)
        return future

    def queue(self, write: Callable[[], Any]) -> None:
        """Queue ``write`` without waiting for it (nobody hears of a failure: it is logged). In a
        sync flow it is held back for the flow's thread (see :func:`~.._runtime.deferral`);
        otherwise the writer's thread runs it."""
        held = deferral()
        if held is None:
            loop = running_loop()
            on_loop = self._loop_queue(loop) if self._loop_store is not None else None
            if on_loop is not None:
                on_loop.put(write, None)
            else:
                self._put(write, None, loop)
            return
        with self._changed:
            self._queue.append((write, None))
        held.hold(self)

    def flush(self) -> None:
        """Run every queued write now (an event loop's too, when it runs on this thread or has
        stopped; the batch it is sending is its own to finish)."""
        self._adopt_stalled()
        with self._running:
            self._drain()

    def adopt(
        self,
        items: list[tuple[Callable[[], Any], asyncio.Future[Any] | None]],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """Queue an event loop's writes for the writer's thread, which hands their futures (of
        ``loop``) the outcomes."""
        with self._changed:
            self._queue.extend(_waiting(items, loop))
            if items:
                self._serve_queue()

    def _loop_queue(self, loop: asyncio.AbstractEventLoop | None) -> LoopQueue | None:
        """The queue of ``loop``'s writes, on a store that makes them on the loop (None: the
        thread makes them)."""
        store = self._loop_store
        if store is None or loop is None or not store.runs_on(loop):
            return None
        with self._changed:
            queue = self._loops.get(id(loop))
            if queue is None or queue.loop is not loop:
                from .loop_queue import LoopQueue  # lazy: it imports asyncio, which the sync API never needs

                queue = LoopQueue(self, store, loop, limit=BATCH_LIMIT, idle_seconds=IDLE_SECONDS)
                self._loops[id(loop)] = queue
            return queue

    def _adopt_stalled(self) -> None:
        """Take into the thread's queue the writes of the loops that will not send them soon: this
        thread's own running loop (it is busy with the caller) and the loops that have stopped."""
        if self._loop_store is None:
            return
        here = running_loop()
        with self._changed:
            queues = list(self._loops.values())
        for queue in queues:
            if queue.loop is here or not queue.loop.is_running():
                items = queue.take()
                if items:
                    with self._changed:
                        self._queue.extend(_waiting(items, queue.loop))

    def wake(self) -> None:
        """Have the writer's thread run the queued writes (ones held back for a sync flow)."""
        with self._changed:
            if self._queue:
                self._serve_queue()

    def _put(
        self, write: Callable[[], Any], future: _Waiter, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        """Queue ``write`` for the writer's thread. Put by an event loop (``loop``, running on this
        thread) while the thread is up, the thread is woken once the loop has run the callbacks
        that were ready, so the writes they put are stored together; should the loop stop first,
        the thread finds them when its idle wait ends."""
        with self._changed:
            self._queue.append((write, future))
            if loop is None or self._thread is None:
                self._serve_queue()
            elif loop not in self._wakes:
                try:
                    loop.call_soon(self._wake, loop)
                except RuntimeError:  # the loop has closed
                    self._serve_queue()
                else:
                    self._wakes.add(loop)

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake the writer's thread for the writes ``loop`` has put (see :meth:`_put`)."""
        with self._changed:
            self._wakes.discard(loop)
            if self._queue:
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
        held); ``own``'s outcome."""
        while True:
            size, outcome = self._next_batch(own)
            if outcome is not None or not size:
                return outcome

    def _next_batch(self, own: Callable[[], Any] | None = None) -> tuple[int, _Outcome | None]:
        """Run the next batch of queued writes, with ``own`` after them when it fits (``_running``
        is held); how many writes ran, and ``own``'s outcome if it ran. A queued write that fails
        alone is logged here, the one place that hears of it (whoever drains, the thread or a
        caller, goes on); an interrupt raised in one is raised."""
        limit = BATCH_LIMIT if self._batch is not None else 1
        with self._changed:
            items = [self._queue.popleft() for _ in range(min(len(self._queue), limit))]
            last = not self._queue
        mine = own is not None and last and len(items) < limit
        writes = [write for write, _ in items] + ([own] if mine and own is not None else [])
        if not writes:
            return 0, None
        together = self._together(writes) if len(writes) > 1 else None
        outcomes = together if together is not None else [self._alone(write) for write in writes]
        outcome = outcomes.pop() if mine else None
        _deliver(items, outcomes)
        for (_, waiter), (stored, value) in zip(items, outcomes, strict=True):
            if waiter is None and not stored:
                if not isinstance(value, Exception):
                    raise value
                log.error("A queued ledger write failed", exc_info=value)
        return len(writes), outcome

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
            self._adopt_stalled()
            with self._running:
                size, _ = self._next_batch()
            if size >= GATHER_FROM and len(self._queue) < BATCH_LIMIT:
                time.sleep(GATHER_SECONDS)


def _waiting(
    items: list[tuple[Callable[[], Any], asyncio.Future[Any] | None]], loop: asyncio.AbstractEventLoop
) -> list[_Item]:
    """An event loop's writes as the thread's queue holds them."""
    return [(write, None if future is None else (loop, future)) for write, future in items]


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
