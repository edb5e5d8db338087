"""An event loop's ledger writes, made from that loop through a :class:`~.records.LoopStore`.

Handing writes to the ledger's writer thread costs a busy event loop more than the writes do: each
time that thread takes the interpreter lock back, the loop waits for it, and on a machine whose
idle CPUs sleep (most virtual machines) every hand-over wakes one. A store that can be written
from the loop without a thread of this process (PostgreSQL, through psycopg's asynchronous driver;
SQLite, through a helper process) takes a loop's writes there instead: the writes found queued on
it are run while the store collects (no I/O: each adds what it changes to a list), and the list is
made by one call of the loop's own connection, awaited like any other I/O. The loop never waits on
the database. A store says how big a batch must be to open that connection
(``loop_batch_from``): until one is open, smaller batches go to the writer's thread.

Order and the thread: a loop's writes are collected and made in the order they were queued, one
batch after another. A write that needs the database at once (a budget that is set, a liveness
check due, a store not yet opened) raises :class:`~.records.NeedsConnection`: the batch's writes
before it are made first, then it and the rest go to the writer's thread, and the loop waits for
them before its next batch. So does a batch whose call fails. A sync call on the loop's thread
(:meth:`~.writer.Writer.run`, :meth:`~.writer.Writer.flush`) first takes the loop's writes not yet
sent, and so does the writer's exit flush for a loop that has stopped; a loop that is cancelled
(the end of ``asyncio.run``) hands its writes to the thread. The loop's connection is closed once
it has been idle :data:`~.writer.IDLE_SECONDS` (a timer, not a waiting task), when a batch is
cancelled with its loop, or else when the loop is freed (at once after ``asyncio.run``).
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._redact import get_logger
from .._runtime import settle
from .records import Answer, LoopConnection, LoopStore, NeedsConnection

if TYPE_CHECKING:
    from .writer import Writer

__all__ = ["LoopQueue"]

log = get_logger("tarash.ledger")

#: A write and the future of the caller waiting for it (None: nobody waits).
_Item = tuple[Callable[[], Any], "asyncio.Future[Any] | None"]
_Outcome = tuple[bool, Any]  # (True, what the write returned) or (False, what it raised)


class LoopQueue:
    """The writes one event loop queued for a writer whose store is a :class:`LoopStore`; all of
    it but :meth:`take` runs on that loop."""

    def __init__(
        self,
        writer: Writer,
        store: LoopStore,
        loop: asyncio.AbstractEventLoop,
        *,
        limit: int,
        idle_seconds: float,
    ) -> None:
        self._writer = writer
        self._store = store
        self.loop = loop
        self._limit = limit
        self._idle_seconds = idle_seconds
        self._items: deque[_Item] = deque()
        #: The batch being made: its writes neither settled nor handed to the thread yet.
        self._unsettled: list[_Item] = []
        self._task: asyncio.Task[None] | None = None
        self._connection: LoopConnection | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        #: The timer that closes the connection when no write comes. Held weakly: the loop holds
        #: it, and it holds the queue, until the loop closes; a strong reference back would keep
        #: the queue and its loop alive after that, and the connection open, until a collection.
        self._idle: weakref.ref[asyncio.TimerHandle] | None = None
        self._failing = False  # the connection failed last time (logged once)

    def put(self, write: Callable[[], Any], future: asyncio.Future[Any] | None) -> None:
        """Queue ``write`` (``future`` gets its outcome); the batches start on the loop's next turn."""
        self._items.append((write, future))
        idle = self._idle() if self._idle is not None else None
        if idle is not None:
            idle.cancel()
        self._idle = None
        if self._task is None:
            self._start()

    def take(self) -> list[_Item]:
        """The writes not yet sent, taken out (by a sync call on the loop's thread, or at exit
        once the loop has stopped)."""
        items = list(self._items)
        self._items.clear()
        return items

    def _start(self) -> None:
        """Start the task that makes the queued writes (it hands over to :meth:`_served`)."""
        self._task = self.loop.create_task(self._serve(), name="tarash-ledger")
        self._task.add_done_callback(self._served)

    async def _serve(self) -> None:
        """Make the queued writes, batch after batch."""
        while self._items:
            self._unsettled = [self._items.popleft() for _ in range(min(len(self._items), self._limit))]
            await self._make_batch()

    def _served(self, task: asyncio.Task[None]) -> None:
        """When the loop ends (``asyncio.run`` cancels every task, maybe before this one has
        begun), or the task failed, the thread makes the writes left (the batch being sent too:
        it may be made twice, as after a failed connection), and the connection is closed at
        once. Else, with no write left, the connection is closed unless one comes within
        ``idle_seconds`` (a timer, not a task waiting: a loop closed without ``asyncio.run``,
        its tasks not cancelled, would log each pending one as destroyed)."""
        self._task = None
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            log.error(
                "The ledger's queue on the event loop failed; the thread makes its writes", exc_info=failure
            )
        if task.cancelled() or failure is not None:
            self._writer.adopt(self._unsettled + self.take(), self.loop)
            self._unsettled = []
            self._drop_connection()
        elif self._items:  # queued after the task's last look
            self._start()
        elif self._connection is not None:
            self._idle = weakref.ref(self.loop.call_later(self._idle_seconds, self._close_idle))

    def _close_idle(self) -> None:
        """No write came for ``idle_seconds``: close the loop's connection."""
        self._idle = None
        self._drop_connection()

    async def _make_batch(self) -> None:
        """Make the batch: collected and sent on the loop up to a write that needs the database,
        the rest by the writer's thread, which hands their callers the outcomes itself. With no
        connection open, a batch too small to open one (``loop_batch_from``) all goes to the
        thread."""
        batch = self._unsettled
        outcomes: list[_Outcome] = []
        collected: list[Any] = []
        if await self._connected(len(batch)):
            try:
                with self._store.collecting() as collected:
                    for write, _ in batch:
                        mark = len(collected)
                        try:
                            outcomes.append((True, write()))
                        except NeedsConnection:
                            del collected[mark:]
                            break
                        except Exception as exc:  # the write's own failure (it collected nothing)
                            del collected[mark:]
                            outcomes.append((False, exc))
            except NeedsConnection:
                outcomes, collected = [], []
            if collected and not await self._apply(collected):
                outcomes = []
        outcomes = [(ok, value.value if isinstance(value, Answer) else value) for ok, value in outcomes]
        made = [(future, ok, value) for (_, future), (ok, value) in zip(batch, outcomes, strict=False)]
        settle([(future, ok, value) for future, ok, value in made if future is not None])
        for future, ok, value in made:
            if future is None and not ok:  # nobody waits for it: here is the one place it is heard
                log.error("A queued ledger write failed", exc_info=value)
        self._unsettled = rest = batch[len(outcomes) :]
        if rest:
            await self._by_thread(rest)
        self._unsettled = []

    async def _connected(self, size: int) -> bool:
        """Whether the loop's connection is open, opening it for a batch of ``size`` writes when
        that is enough; False when the thread must make the batch."""
        if self._connection is None:
            if size < self._store.loop_batch_from:
                return False
            try:
                self._connection = connection = await self._store.connect_loop()
            except NeedsConnection:
                return False
            except Exception as exc:
                self._failed(exc)
                return False
            self._finalizer = weakref.finalize(self.loop, connection.discard)
        return True

    async def _apply(self, collected: list[Any]) -> bool:
        """Make ``collected`` on the loop's connection; False when the thread must make them."""
        assert self._connection is not None
        try:
            await self._connection.apply(collected)
        except NeedsConnection:
            return False
        except Exception as exc:
            self._failed(exc)
            return False
        self._failing = False
        return True

    def _failed(self, exc: Exception) -> None:
        """The loop's connection failed (or could not open): logged once until it works again
        (the database may be down a while), and closed."""
        if not self._failing:
            log.warning(
                "The ledger's connection on the event loop failed (%s: %s); its writes go to "
                "the writer's thread",
                type(exc).__name__,
                exc,
            )
        self._failing = True
        self._drop_connection()

    async def _by_thread(self, items: list[_Item]) -> None:
        """Hand ``items`` to the writer's thread (it settles their futures) and wait until it has
        made them, so that the loop's next batch comes after them."""
        done: asyncio.Future[Any] = self.loop.create_future()
        self._writer.adopt([*items, (_nothing, done)], self.loop)
        self._unsettled = []
        await asyncio.wait([done])

    def _drop_connection(self) -> None:
        """Close the loop's connection at once, without waiting (it failed, was idle, or the
        loop ends)."""
        connection, self._connection = self._connection, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if connection is not None:
            connection.discard()


def _nothing() -> None:
    """A write that makes nothing: its outcome says that the writes before it are made."""
