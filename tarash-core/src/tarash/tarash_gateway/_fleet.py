"""Fleet-wide concurrency caps: a cap's slots held in the shared ledger, not only in this process.

When the gateway's ledger is shared, a job holds, besides its process's :class:`~._caps.Gate`
slot, one of the cap's ``limit`` fleet slots, named ``(scope, n)`` for ``n < limit``. A slot is a
lock its holder's connection or file keeps, so two workers never hold the same slot and a dead
worker's slots are free the moment its process is gone:

- PostgreSQL (``_ledger.pg_slots``): a session advisory lock, on a connection of its own per held
  slot; the database drops it when the connection ends (the process died or lost the database).
- SQLite (POSIX only): an ``flock`` on ``<ledger file>.slots/<scope>.<n>``; the kernel drops it
  when the process ends.

A caller whose cap has no fleet slot free polls again, with backoff, within its deadline: across
processes the order is not first come, first served (within a process the gate's queue still is).
A job that has no cap makes no store call here.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from . import _runtime as rt
from .exceptions import LedgerError

if TYPE_CHECKING:
    from ._engine import Attempt

__all__ = ["FileSlots", "FleetSlotStore", "Slots", "slots_of", "take_slot"]

#: First and longest pause between two polls for a fleet slot, in seconds.
POLL_FIRST, POLL_MOST = 0.05, 1.0


class Slots(Protocol):
    """A shared store's slots: ``take`` one of ``limit`` for ``scope`` or None; ``give`` it back."""

    def take(self, scope: str, limit: int) -> Any | None: ...

    def give(self, slot: Any) -> None: ...


@runtime_checkable
class FleetSlotStore(Protocol):
    """A job store that can hold fleet-wide concurrency slots."""

    def fleet_slots(self) -> Slots | None: ...


def slots_of(ledger: Any) -> Slots | None:
    """The fleet slots of a gateway's ledger (a ``LedgerAdapter``), None when it has none."""
    store = getattr(ledger, "store", None)
    return store.fleet_slots() if isinstance(store, FleetSlotStore) else None


def take_slot(attempt: Attempt, slots: Slots, scope: str, limit: int) -> rt.Flow[Any]:
    """A fleet slot of ``scope`` (capped at ``limit``), polled for with backoff within the
    attempt's deadline (TimeoutError, nothing sent, when it passes first; LedgerError, nothing
    sent, when the store fails)."""
    pause = POLL_FIRST
    while True:
        try:
            slot = yield rt.Call(slots.take, None, {"scope": scope, "limit": limit}, undo=slots.give)
        except Exception as exc:
            raise LedgerError(
                f"The job ledger could not take a fleet-wide slot of the concurrency cap {scope!r} "
                f"({type(exc).__name__}: {exc}), so nothing was submitted.",
                provider=attempt.provider,
                model=attempt.model,
                phase="validate",
            ) from exc
        if slot is not None:
            return slot
        remaining = attempt.remaining()
        if remaining <= 0:
            raise attempt.timeout_error(
                f"still waiting for a fleet-wide slot of the concurrency cap {scope!r}"
            )
        yield rt.Sleep(min(pause, remaining))
        pause = min(pause * 2, POLL_MOST)


def slot_name(scope: str, number: int) -> str:
    """A slot's name, the same in every process: ``tarash-slot:<scope>:<n>``."""
    return f"tarash-slot:{scope}:{number}"


class FileSlots:
    """Fleet slots of processes sharing one SQLite ledger file: ``flock`` on one file per slot."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __repr__(self) -> str:
        return f"FileSlots({str(self.directory)!r})"

    def take(self, scope: str, limit: int) -> int | None:
        """The descriptor holding a free slot of ``scope``'s ``limit``, None when all are held."""
        import fcntl

        self.directory.mkdir(parents=True, exist_ok=True)
        for number in range(limit):
            digest = hashlib.sha256(slot_name(scope, number).encode()).hexdigest()[:24]
            fd = os.open(self.directory / digest, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            return fd
        return None

    def give(self, slot: int) -> None:
        """Free the slot (closing its descriptor drops the lock)."""
        os.close(slot)


def file_slots(ledger_path: Path) -> FileSlots | None:
    """The SQLite ledger's slots beside its file; None where ``flock`` is missing (Windows)."""
    if sys.platform == "win32":
        return None
    return FileSlots(ledger_path.with_name(ledger_path.name + ".slots"))
