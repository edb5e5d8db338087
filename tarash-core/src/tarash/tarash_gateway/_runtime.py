"""One orchestration, two drivers.

Orchestration logic is written once as generators that *yield effects* (send an HTTP request, call
a function, sleep, report progress) and receive their results. :func:`drive_sync` and
:func:`drive_async` execute those effects with blocking or asyncio primitives. So the sync and async
APIs cannot drift apart, and the sync API never calls ``asyncio.run``: coroutines reached from sync
code (async callbacks, the escape hatch) run on the gateway's background event loop, which works
inside Jupyter or a running loop's thread pool.

Ledger writes nobody waits for (status updates) are run by the ledger writer's thread at once,
except in a sync flow: there they are held back until its next wait, request or awaited write. The
caller's own thread runs them before a wait (a sleep between polls, shortened by the time they
took) or with the awaited write; before a request they go to the writer's thread, to be written
while the request is under way. So a sync generation wakes no thread between two polls, and the
ledger is as current as before whenever it waits or sends.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs

if TYPE_CHECKING:
    import asyncio

    from ._transport import Prepared, Transport
    from ._wire import Response

__all__ = [
    "BackgroundLoop",
    "Call",
    "CallerCallbackError",
    "DeadlineExceeded",
    "Effect",
    "Emit",
    "Flow",
    "Record",
    "Send",
    "Sleep",
    "Writer",
    "deferral",
    "drive_async",
    "drive_sync",
    "is_async_fn",
    "running_loop",
    "settle",
    "settle_from_thread",
]

T = TypeVar("T")


@attrs.define
class Send:
    """Send a prepared HTTP request through core's transport; the answer is a ``Response``."""

    transport: Transport
    prepared: Prepared
    timeout: float


@attrs.define
class Call:
    """Call a function with keyword arguments: ``sync`` from the sync driver, ``async_`` from the
    async one; either may be missing, and the driver bridges to the other.

    Only core uses this (``register_provider`` handlers, the ``async_lifecycle`` escape hatch,
    concurrency slots). ``timeout`` bounds the wait where the driver can enforce it (coroutines,
    threads). ``undo`` gives back what ``sync`` returned when its caller has gone: the async driver
    runs ``sync`` in a worker thread, which a cancelled task cannot stop, so it waits for the
    thread and hands a result (not None) to ``undo`` before the cancellation goes on.
    """

    sync: Callable[..., Any] | None
    async_: Callable[..., Any] | None
    kwargs: dict[str, Any]
    timeout: float | None = None
    undo: Callable[[Any], Any] | None = None


@attrs.define
class Sleep:
    seconds: float


@attrs.define
class Emit:
    """Deliver a progress update to the caller's callback (sync or async)."""

    callback: Callable[[Any], Any]
    update: Any


class Writer(Protocol):
    """Runs blocking writes in order: ``run`` on the caller's thread, ``submit_from_loop`` on its
    own (the running loop's future gets the outcome); ``flush`` runs the queued ones now, on the
    caller's thread, and ``wake`` has its own thread run them."""

    def run(self, write: Callable[[], T]) -> T: ...
    def submit_from_loop(self, write: Callable[[], T]) -> asyncio.Future[T]: ...
    def flush(self) -> None: ...
    def wake(self) -> None: ...


class Deferral:
    """The writers a sync flow holds writes back in, to run on its own thread (see the module's
    docstring)."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.writers: list[Writer] = []

    def hold(self, writer: Writer) -> None:
        """``writer`` has a write held back for this flow."""
        if writer not in self.writers:
            self.writers.append(writer)

    def due(self, effect: Effect) -> bool:
        """Whether the held writes are to go before ``effect``: a request or a wait (a progress
        callback comes between a status and the wait after it; an awaited write runs them)."""
        return bool(self.writers) and isinstance(effect, (Send, Sleep, Call))

    def flush(self) -> None:
        """Run the held writes on this thread (one that fails is logged by its writer: nobody
        waits for it, and the flow it was held for goes on)."""
        writers, self.writers = self.writers, []
        for writer in writers:
            writer.flush()

    def hand_off(self) -> None:
        """Have the writers' threads run the held writes."""
        writers, self.writers = self.writers, []
        for writer in writers:
            writer.wake()


_DEFERRAL: ContextVar[Deferral | None] = ContextVar("tarash_deferral", default=None)


def deferral() -> Deferral | None:
    """The running sync flow's :class:`Deferral`, when called on that flow's thread."""
    found = _DEFERRAL.get()
    return found if found is not None and found.thread == threading.get_ident() else None


@attrs.define
class Record:
    """A blocking call to the job ledger (a database round trip: a write, or a read or claim that
    must see the writes queued before it), through ``writer`` (the ledger's queue for the job) and
    waited for: on the caller's thread by the sync driver, in the writer's thread by the async
    one, so the event loop never waits on the database. Its outcome is the call's (a fail-closed
    write raises into the orchestration); a cancellation is delivered once it has finished."""

    write: Callable[[], Any]
    writer: Writer

    def run(self) -> Any:
        """Run the write on this thread (after the job's writes queued before it), outside a flow."""
        return self.writer.run(self.write)


class DeadlineExceeded(Exception):
    """Thrown into the orchestration when the async driver's wait for a call ran out."""


class CallerCallbackError(Exception):
    """Thrown into the orchestration when the caller's progress callback raised."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(repr(original))
        self.original = original


Effect = Send | Call | Sleep | Emit | Record
Flow = Generator[Effect, Any, T]


class BackgroundLoop:
    """A daemon thread running an event loop, for coroutines reached from sync code."""

    #: How long :meth:`stop` waits for the loop's tasks to end and the loop to close.
    STOP_SECONDS = 10.0

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        import asyncio  # lazy: a sync generation needs no event loop (asyncio is ~40 modules)

        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=_serve_loop, args=(loop,), name="tarash-loop", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def stop(self) -> None:
        """Stop the loop's thread, which cancels the loop's tasks and closes it, and wait for that
        (unless called on that thread); a later call starts a new one."""
        with self._lock:
            loop, self._loop = self._loop, None
            thread, self._thread = self._thread, None
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.STOP_SECONDS)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        import asyncio  # lazy: a sync generation needs no event loop

        future = asyncio.run_coroutine_threadsafe(coro, self._ensure())
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise DeadlineExceeded() from None


def _serve_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Run ``loop`` until it is stopped, then close it as ``asyncio.run`` does: its tasks
    cancelled and awaited, its async generators closed."""
    import asyncio  # lazy: loaded by then (the loop was made with it)

    try:
        loop.run_forever()
    finally:
        try:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, if any (without importing asyncio when no loop can
    be running: the sync API never loads it)."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    try:
        return asyncio.get_running_loop()  # type: ignore[no-any-return]
    except RuntimeError:
        return None


def is_async_fn(fn: Callable[..., Any]) -> bool:
    call = type(fn).__call__ if callable(fn) else None
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)


def _step_sync(effect: Effect, background: BackgroundLoop) -> Any:
    """Execute one effect with blocking primitives."""
    if isinstance(effect, Send):
        return effect.transport.send(effect.prepared, effect.timeout)
    if isinstance(effect, Sleep):
        if effect.seconds > 0:
            time.sleep(effect.seconds)
        return None
    if isinstance(effect, Record):
        return effect.run()
    if isinstance(effect, Emit):
        try:
            outcome = effect.callback(effect.update)
            if inspect.isawaitable(outcome):
                background.run(_await(outcome))
        except Exception as exc:
            raise CallerCallbackError(exc) from exc
        return None
    if effect.sync is not None:
        return effect.sync(**effect.kwargs)
    assert effect.async_ is not None
    return background.run(effect.async_(**effect.kwargs), effect.timeout)


async def _step_async(effect: Effect) -> Any:
    """Execute one effect on the running event loop."""
    import asyncio  # lazy: loaded by then (a loop runs this); the sync API never imports it

    if isinstance(effect, Send):
        response: Response = await effect.transport.send_async(effect.prepared, effect.timeout)
        return response
    if isinstance(effect, Sleep):
        if effect.seconds > 0:
            await asyncio.sleep(effect.seconds)
        return None
    if isinstance(effect, Record):
        return await _off_the_loop(effect.writer.submit_from_loop(effect.write))
    if isinstance(effect, Emit):
        try:
            if is_async_fn(effect.callback):
                await effect.callback(effect.update)
            else:
                outcome = await asyncio.to_thread(effect.callback, effect.update)
                if inspect.isawaitable(outcome):
                    await outcome
        except Exception as exc:
            raise CallerCallbackError(exc) from exc
        return None
    if effect.async_ is not None:
        awaitable: Awaitable[Any] = effect.async_(**effect.kwargs)
    else:
        assert effect.sync is not None
        awaitable = asyncio.to_thread(effect.sync, **effect.kwargs)
        if effect.undo is not None:
            awaitable = _off_the_loop(asyncio.ensure_future(awaitable), effect.undo)
    if effect.timeout is None:
        return await awaitable
    limit = max(effect.timeout, 0.001)
    started = time.monotonic()
    try:
        return await asyncio.wait_for(awaitable, limit)
    except asyncio.TimeoutError as exc:
        # wait_for's own timeout is raised from the cancellation it made (3.10 to 3.13); one the
        # call raised itself (its I/O timed out) comes before the limit and goes to the flow.
        if not isinstance(exc.__cause__, asyncio.CancelledError) and time.monotonic() - started < limit:
            raise
        raise DeadlineExceeded() from None


def drive_sync(flow: Flow[T], background: BackgroundLoop) -> T:
    """Run an orchestration generator with blocking I/O.

    Coroutines reached from sync code (async callbacks, the escape hatch) run on ``background``.
    Whatever an effect raises is thrown back into the orchestration, KeyboardInterrupt included
    (during a call, a sleep or a callback), so it can cancel the remote job before leaving.
    """
    held = Deferral()
    token = _DEFERRAL.set(held)
    try:
        send: Any = None
        throw: BaseException | None = None
        while True:
            try:
                effect = flow.throw(throw) if throw is not None else flow.send(send)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            send, throw = None, None
            try:
                if held.due(effect):
                    effect = _after_flush(held, effect)
                send = _step_sync(effect, background)
            except (Exception, KeyboardInterrupt) as exc:
                throw = exc
    finally:
        _DEFERRAL.reset(token)
        held.flush()


def _after_flush(held: Deferral, effect: Effect) -> Effect:
    """Let the writes ``held`` back go before ``effect``: to the writers' threads before a request
    (written while it is under way), else run here; ``effect``, a sleep shortened by the time
    they took."""
    if isinstance(effect, Send):
        held.hand_off()
        return effect
    started = time.monotonic()
    held.flush()
    if isinstance(effect, Sleep):
        return Sleep(effect.seconds - (time.monotonic() - started))
    return effect


async def drive_async(flow: Flow[T]) -> T:
    """Run an orchestration generator on the running event loop.

    Whatever an effect raises is thrown back into the orchestration, task cancellation included
    (during a call, a sleep or a callback), so it can cancel the remote job before leaving; and a
    KeyboardInterrupt, as :func:`drive_sync` does (a sync progress callback, run in a worker
    thread, that raises it).
    """
    import asyncio  # lazy: loaded by then (a loop runs this); the sync API never imports it

    send: Any = None
    throw: BaseException | None = None
    while True:
        try:
            effect = flow.throw(throw) if throw is not None else flow.send(send)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        send, throw = None, None
        try:
            send = await _step_async(effect)
        except (Exception, KeyboardInterrupt, asyncio.CancelledError) as exc:
            throw = exc


async def _off_the_loop(future: asyncio.Future[T], undo: Callable[[T], Any] | None = None) -> T:
    """Await work running in another thread (a write, a call); a cancellation waits for it to
    finish and, with ``undo``, gives back what it returned (not None; in a thread too) before the
    cancellation goes on."""
    import asyncio  # lazy: loaded by then (a loop runs this); the sync API never imports it

    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        given = None if future.cancelled() or future.exception() is not None else future.result()
        if undo is not None and given is not None:
            await asyncio.to_thread(undo, given)
        raise


#: A future of an event loop and its outcome: (future, True, result) or (future, False, exception).
Settlement = tuple["asyncio.Future[Any]", bool, Any]


def settle_from_thread(loop: asyncio.AbstractEventLoop, settlements: list[Settlement]) -> bool:
    """From another thread, hand futures of ``loop`` their outcomes in one call on that loop (a
    future settled or cancelled meanwhile is left as it is); False when the loop has closed, so
    nobody can hear them any more."""
    try:
        loop.call_soon_threadsafe(settle, settlements)
    except RuntimeError:
        return False
    return True


def settle(settlements: list[Settlement]) -> None:
    """Hand futures their outcomes, on their loop (a future settled or cancelled meanwhile is
    left as it is)."""
    for future, ok, value in settlements:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable
