"""Concurrency caps: at most N jobs in flight per provider (and per model), callers queued FIFO.

A :class:`Gate` is a counting semaphore shared by threads and event loops: sync callers block
their thread, async callers await a future of their own loop, and both wait in one first-in,
first-out queue. A slot freed is handed straight to the longest-waiting caller, so a late caller
never overtakes a queued one. A caller that stops waiting (its task cancelled, an interrupt, its
deadline) leaves the queue at once; a slot handed to it meanwhile goes to the next caller.

:class:`ConcurrencyCaps` holds a gateway's gates, keyed ``"provider"`` or ``"provider/model"``
(the first ``/`` ends the provider's name; model names may hold more). The engine holds a job's
slots from before its submit intent is recorded until the attempt ends: the job was collected,
cancelled (confirmed or not) or left in the ledger for ``resume()``. Cancels never take a slot, so a
full cap never delays one. ``TARASH_CONCURRENCY="fal=3,fal/fal-ai/veo3=1"`` sets the caps of a
gateway built without ``concurrency=``. With a shared ledger (PostgreSQL, or one SQLite file
for processes on one machine) a cap holds fleet-wide: see ``_fleet``.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import _fleet
from . import _runtime as rt
from .exceptions import ValidationError

if TYPE_CHECKING:
    import asyncio

    from ._engine import Attempt

__all__ = ["ENVIRONMENT_VARIABLE", "ConcurrencyCaps", "Gate", "holding", "parse_caps"]

ENVIRONMENT_VARIABLE = "TARASH_CONCURRENCY"

#: The limit of a gate whose cap was lifted while callers held or awaited it (no fleet slots then).
_LIFTED = 1 << 62


class _Waiter:
    """A queued caller: a thread's event or a loop's future; ``granted`` once a slot is its."""

    __slots__ = ("event", "future", "granted", "loop")

    def __init__(
        self,
        event: threading.Event | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        future: asyncio.Future[None] | None = None,
    ) -> None:
        self.event, self.loop, self.future = event, loop, future
        self.granted = False

    def wake(self) -> bool:
        """Tell the caller its slot is ready; False when it can no longer hear (its loop closed)."""
        if self.event is not None:
            self.event.set()
            return True
        assert self.loop is not None and self.future is not None
        return rt.settle_from_thread(self.loop, [(self.future, True, None)])


class Gate:
    """At most ``limit`` holders at once; waiters served first come, first served."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self._limit = limit
        self._held = 0
        self._queue: deque[_Waiter] = deque()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Gate({self.name!r}, limit={self._limit}, held={self._held}, waiting={len(self._queue)})"

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def held(self) -> int:
        """Slots taken now."""
        return self._held

    @property
    def waiting(self) -> int:
        """Callers queued now."""
        return len(self._queue)

    def set_limit(self, limit: int) -> None:
        """Change the limit; a raise lets queued callers in at once (a cut waits for releases)."""
        with self._lock:
            self._limit = limit
            self._grant()

    def _take_or_queue(self, waiter: _Waiter) -> bool:
        with self._lock:
            if not self._queue and self._held < self._limit:
                self._held += 1
                return True
            self._queue.append(waiter)
            return False

    def _grant(self) -> None:
        """Hand free slots to the queue's head (the lock is held)."""
        while self._queue and self._held < self._limit:
            waiter = self._queue.popleft()
            self._held += 1
            waiter.granted = True
            if not waiter.wake():
                waiter.granted = False
                self._held -= 1

    def _withdraw(self, waiter: _Waiter) -> bool:
        """The caller stopped waiting: leave the queue. True when a slot was granted meanwhile
        (the caller then holds it and must release it)."""
        with self._lock:
            if waiter.granted:
                return True
            self._queue.remove(waiter)
            return False

    def acquire(self, timeout: float | None = None) -> bool:
        """Take a slot, blocking this thread; False when ``timeout`` seconds passed first."""
        waiter = _Waiter(event=threading.Event())
        if self._take_or_queue(waiter):
            return True
        try:
            waiter.event.wait(timeout)  # type: ignore[union-attr]
        except BaseException:
            if self._withdraw(waiter):
                self.release()
            raise
        return self._withdraw(waiter)

    async def acquire_async(self, timeout: float | None = None) -> bool:
        """Take a slot, awaiting it on the running loop; False when ``timeout`` seconds passed first."""
        import asyncio  # lazy: loaded by then (a loop runs this); a sync generation never imports it

        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop=loop, future=loop.create_future())
        if self._take_or_queue(waiter):
            return True
        assert waiter.future is not None
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
        except asyncio.TimeoutError:
            return self._withdraw(waiter)
        except BaseException:
            if self._withdraw(waiter):
                self.release()
            raise
        return True

    def release(self) -> None:
        """Give a slot back (to the longest-waiting caller, if any)."""
        with self._lock:
            self._held -= 1
            self._grant()


def parse_caps(text: str, source: str = ENVIRONMENT_VARIABLE) -> dict[str, int]:
    """``"fal=3,fal/fal-ai/veo3=1"`` as ``{"fal": 3, "fal/fal-ai/veo3": 1}`` (ValidationError naming
    ``source`` for anything else)."""
    caps: dict[str, int] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.rpartition("=")
        try:
            limit = int(value) if sep and key.strip() else 0
        except ValueError:
            limit = 0
        if limit < 1:
            raise ValidationError(
                f"{source}: {item!r} is not provider=N or provider/model=N with N >= 1",
                field=source,
                value=item,
            )
        caps[key.strip()] = limit
    return caps


class ConcurrencyCaps:
    """A gateway's caps: one :class:`Gate` per ``"provider"`` or ``"provider/model"`` key."""

    def __init__(self, caps: Mapping[str, int] | None = None) -> None:
        self._gates: dict[str, Gate] = {}
        self._lock = threading.Lock()
        if caps is None:
            caps = parse_caps(os.environ.get(ENVIRONMENT_VARIABLE, ""))
        for key, limit in caps.items():
            provider, _, model = key.partition("/")
            self.set(provider, limit, model=model or None)

    def __bool__(self) -> bool:
        return bool(self._gates)

    def set(self, provider: str, limit: int | None, *, model: str | None = None) -> None:
        """Cap ``provider`` (or one of its models) at ``limit`` jobs in flight; None lifts the cap
        (queued callers go at once)."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValidationError(
                f"a concurrency cap must be an int >= 1 or None, got {limit!r}", field="limit", value=limit
            )
        key = f"{provider}/{model}" if model else provider
        with self._lock:
            gate = self._gates.get(key)
            if limit is None:
                self._gates.pop(key, None)
                if gate is not None:
                    gate.set_limit(_LIFTED)
            elif gate is None:
                self._gates[key] = Gate(key, limit)
            else:
                gate.set_limit(limit)

    def get(self, provider: str, *, model: str | None = None) -> Gate | None:
        """The gate of ``provider`` (or of one of its models), None when uncapped."""
        return self._gates.get(f"{provider}/{model}" if model else provider)

    def as_dict(self) -> dict[str, int]:
        """The caps in effect, as ``{"provider" or "provider/model": limit}``."""
        return {key: gate.limit for key, gate in self._gates.items()}

    def gates(self, provider: str, model: str) -> list[Gate]:
        """The gates a job of ``provider``/``model`` passes, the model's first: every job takes them
        in that order, so two caps never deadlock."""
        if not self._gates:
            return []
        found = (self._gates.get(f"{provider}/{model}"), self._gates.get(provider))
        return [gate for gate in found if gate is not None]


def holding(attempt: Attempt, gates: list[Gate], flow: rt.Flow[Any]) -> rt.Flow[Any]:
    """Run ``flow`` (the attempt) holding a slot of each gate, taken in order within the
    attempt's deadline (TimeoutError, nothing sent, when it passes first). With a shared ledger
    each gate's slot is also a fleet-wide one (``_fleet``), taken after the process's own."""
    held: list[Gate] = []
    shared: list[tuple[_fleet.Slots, Any]] = []
    slots = _fleet.slots_of(attempt.ledger)
    try:
        for gate in gates:
            remaining = max(attempt.remaining(), 0.0)
            taken = yield rt.Call(gate.acquire, gate.acquire_async, {"timeout": remaining})
            if not taken:
                raise attempt.timeout_error(f"still waiting for a slot of the concurrency cap {gate.name!r}")
            held.append(gate)
            if slots is not None and gate.limit < _LIFTED:
                shared.append((slots, (yield from _fleet.take_slot(attempt, slots, gate.name, gate.limit))))
        return (yield from flow)
    finally:
        flow.close()
        for owner, slot in shared:
            owner.give(slot)
        for gate in held:
            gate.release()
