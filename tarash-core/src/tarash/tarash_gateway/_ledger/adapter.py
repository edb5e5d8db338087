"""The engine-facing :class:`LedgerAdapter`: serialises what the engine records (no secrets, no
media bytes) into a :class:`JobStore`, and never lets a store failure break a generation.

Every write goes through the adapter's :class:`~.writer.Writer` queue, first come, first served:
a job's writes reach the store in the order they were made, the writes found queued together are
stored in one transaction, and a database round trip never holds up an event loop. The writes a
caller must see done (the intent, before its submit; the job id; the end; a claim and its
release) are handed back as :class:`~tarash.tarash_gateway._runtime.Record` effects that both
drivers wait for (the sync one on its own thread, the async one without blocking the loop), as
are the reads of a job's flow (:meth:`LedgerAdapter.fetched`), which come after its queued
writes; status updates and cancel outcomes are queued without waiting, and reach the store
before the job's next waited-for write.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from .._plain import unstructure
from .._redact import get_logger
from .._runtime import Record
from ..exceptions import (
    CostLimitExceededError,
    JobCancelledError,
    LedgerError,
    ValidationError,
    error_summary,
)
from ..plugin import JobRef
from .owner import owner_alive, process_owner
from .records import (
    LEASE_SECONDS,
    MEDIA_TEXT_LIMIT,
    STATUS_REFRESH_SECONDS,
    BatchStore,
    BudgetCheck,
    FencedStore,
    JobRecord,
    JobStore,
    LoopStore,
    NeedsConnection,
    SpendStore,
)
from .writer import Writer

log = get_logger("tarash.ledger")

__all__ = ["LedgerAdapter"]

# ----------------------------------------------------------------------------------------------


class LedgerAdapter:
    """The engine's ``Ledger``: serialises records (no secrets, no media bytes) into a JobStore.

    A ledger must never break a generation: a store failure is logged (once per kind) and the
    generation goes on.
    """

    def __init__(self, store: JobStore) -> None:
        self.store = store
        #: The store when it keeps costs and budgets (a protocol check is slow: made once).
        self._spends: SpendStore | None = store if isinstance(store, SpendStore) else None
        #: The store when a live process can lose its claims there (a protocol check: made once).
        self._fenced: FencedStore | None = store if isinstance(store, FencedStore) else None
        self.active: set[str] = set()
        self._warned: set[str] = set()
        #: key -> (state, when) of the last status written: a poll that changes nothing is written
        #: (renewing the lease) at most every STATUS_REFRESH_SECONDS.
        self._written: dict[str, tuple[str, float]] = {}
        self._writer_of: tuple[int, Writer] | None = None  # (pid, this process's writer)
        self._writer_lock = threading.Lock()

    @property
    def writer(self) -> Writer:
        """The queue every write of this process goes through (a forked child makes its own):
        one is enough, as it stores the writes it finds queued together in one transaction
        (on a store that can, see ``BatchStore``)."""
        with self._writer_lock:
            if self._writer_of is None or self._writer_of[0] != os.getpid():
                batch = self.store.batch if isinstance(self.store, BatchStore) else None
                on_loop = self.store if isinstance(self.store, LoopStore) else None
                self._writer_of = (os.getpid(), Writer(batch, on_loop))
            return self._writer_of[1]

    def _record(self, write: Callable[[], Any]) -> Record:
        """``write`` (a store call) as an effect the drivers wait for."""
        return Record(write, self.writer)

    def _queue(self, write: Callable[[], Any]) -> None:
        """``write`` queued, not waited for."""
        self.writer.queue(write)

    def _guard(self, what: str, write: Callable[[], Any]) -> Any:
        """Run ``write`` (serialising and storing); a failure is logged, never raised (but the
        store's NeedsConnection, which hands it to the writer's thread)."""
        try:
            return write()
        except NeedsConnection:
            raise
        except Exception as exc:
            if what not in self._warned:
                self._warned.add(what)
                log.warning(
                    "Tarash job ledger %s failed on %r; continuing without it: %s: %s",
                    what,
                    self.store,
                    type(exc).__name__,
                    exc,
                )
            return None

    @staticmethod
    def _plain(obj: Any) -> dict[str, Any] | None:
        """``obj`` as JSON-safe data without media bytes (a record, or a dict of plain data);
        None (logged) when it cannot be."""
        try:
            data = unstructure(obj, media_limit=MEDIA_TEXT_LIMIT)
        except (ValidationError, RecursionError, ValueError, TypeError) as exc:
            log.warning(
                "Tarash job ledger: %s not recorded: %s: %s",
                type(obj).__name__,
                type(exc).__name__,
                exc,
            )
            return None
        return data if isinstance(data, dict) else None

    def intent(
        self,
        key: str,
        *,
        provider: str,
        model: str,
        modality: str,
        config: Any,
        request: Any,
        cost: Any,
        check: BudgetCheck,
    ) -> Record:
        """The write of the intent to submit, with its expected ``cost`` (a ``Cost`` or None),
        admitted by the budget ``check`` in the same transaction (on a store that keeps costs and
        budgets; another store records the intent alone). Fails closed: if it cannot be recorded
        (the config or request cannot be serialised: raised here; the store fails: raised by the
        write), LedgerError is raised and nothing is sent; the check's refusal is raised as it is."""
        if getattr(config, "fallback_configs", None):
            config = attrs.evolve(config, fallback_configs=None)
        plain_config = self._plain(config)
        plain_request = self._plain(request)
        if plain_config is None or plain_request is None:
            what = "config" if plain_config is None else "request"
            raise LedgerError(
                f"The job ledger cannot record this {what} (see the log), so nothing was submitted. "
                "Fix the value, or switch the ledger off (TARASH_LEDGER=off) to submit unrecorded.",
                provider=provider,
                model=model,
                phase="validate",
            )
        store, spends = self.store, self._spends
        fields: dict[str, Any] = {
            "provider": provider,
            "model": model,
            "modality": modality,
            "config": plain_config,
            "request": plain_request,
            "owner": process_owner(),
            "lease_seconds": LEASE_SECONDS,
        }
        plain_cost = self._plain(cost) if cost is not None else None

        def write() -> None:
            try:
                if spends is not None:
                    spends.record_budgeted_intent(key, check=check, cost=plain_cost, **fields)
                else:
                    store.record_intent(key, **fields)
            except (CostLimitExceededError, LedgerError, NeedsConnection):
                raise
            except Exception as exc:
                if self._recorded_by_us(key, fields["owner"]):
                    self.active.add(key)
                    return
                raise LedgerError(
                    f"The job ledger {store!r} could not record the submit intent "
                    f"({type(exc).__name__}: {exc}), so nothing was submitted. Switch the ledger off "
                    "(TARASH_LEDGER=off) to submit unrecorded.",
                    provider=provider,
                    model=model,
                    phase="validate",
                ) from exc
            self.active.add(key)

        return self._record(write)

    def _recorded_by_us(self, key: str, owner: str) -> bool:
        """Whether the intent ``key`` (a fresh uuid: no other write makes it) is already stored,
        by this process and not submitted since: a write made again after its answer was lost (a
        connection that failed once the database had committed it) is refused as a duplicate of
        itself, and that refusal means it is recorded.

        It vouches only for a committed row because the store's ``get`` reads committed rows once
        a write has failed: both SQL stores end a failed write's transaction before it raises (the
        SQLite one closes its connection if even the ROLLBACK fails), so the failed write's own
        uncommitted row is never read back as stored. Inside a store's batch, ``get`` sees the
        batch's uncommitted rows, but a batch in which a write raised never commits: the writer
        makes each of its writes again alone, and this answer is not used."""
        try:
            record = self.store.get(key)
        except Exception:
            return False
        return (
            record is not None
            and record.key == key
            and (record.state, record.owner, record.job_id) == ("submitting", owner, None)
        )

    def submitted(self, key: str, job: JobRef) -> Record:
        """The write of the provider's job for ``key``."""
        plain, owner = self._plain(job), process_owner()
        return self._record(
            lambda: self._guard(
                "submitted",
                lambda: self.store.record_submitted(
                    key, job_id=job.job_id, job=plain, owner=owner, lease_seconds=LEASE_SECONDS
                ),
            ),
        )

    def status(self, key: str, state: str, detail: Mapping[str, Any]) -> None:
        """Queue the write of a status; one that repeats the last one written less than
        STATUS_REFRESH_SECONDS ago is skipped."""
        now = time.monotonic()
        last = self._written.get(key)
        if last is not None and last[0] == state and now - last[1] < STATUS_REFRESH_SECONDS:
            return
        self._written[key] = (state, now)
        owner = process_owner()
        self._queue(
            lambda: self._guard(
                "status",
                lambda: self.store.record_status(
                    key,
                    state=state,
                    detail=self._plain(dict(detail)) or {},
                    owner=owner,
                    lease_seconds=LEASE_SECONDS,
                ),
            ),
        )

    def cancel(self, key: str, detail: Mapping[str, Any]) -> Record:
        """The write of a cancel's outcome (``reason``, ``outcome``)."""
        plain = self._plain(dict(detail)) or {}
        return self._record(
            lambda: self._guard("cancel", lambda: self.store.record_cancel(key, detail=plain))
        )

    def flush(self) -> None:
        """Write the queued status updates now (before reading the store)."""
        if self._writer_of is not None and self._writer_of[0] == os.getpid():
            self._writer_of[1].flush()

    def finished(self, key: str, state: str, *, result: Any = None, error: Any = None) -> Record:
        """The write of a job's end: its result (without media bytes) or its error."""
        if isinstance(error, JobCancelledError):
            state = "cancelled"
        self.active.discard(key)
        self._written.pop(key, None)
        plain_result = self._plain(result) if result is not None else None
        plain_error = self._plain(dict(error_summary(error))) if error is not None else None
        return self._record(
            lambda: self._guard(
                "finished",
                lambda: self.store.record_finished(key, state=state, result=plain_result, error=plain_error),
            ),
        )

    def event(self, key: str, kind: str, detail: Mapping[str, Any]) -> None:
        """Record a fact about a job in its history (its record is unchanged), after its queued writes."""
        plain = self._plain(dict(detail)) or {}
        self.writer.run(
            lambda: self._guard(kind, lambda: self.store.record_event(key, kind=kind, detail=plain))
        )

    def cost(self, key: str, cost: Any) -> None:
        """Queue the write of the job's cost (a ``Cost``); a store that keeps no costs is skipped."""
        spends = self._spends
        if spends is not None:
            plain = self._plain(cost) or {}
            self._queue(lambda: self._guard("cost", lambda: spends.record_cost(key, cost=plain)))

    def spend_store(self) -> SpendStore:
        """The store, when it keeps costs and budgets; LedgerError otherwise."""
        if self._spends is None:
            raise LedgerError(f"The job ledger {self.store!r} keeps no costs or budgets")
        return self._spends

    def fetched(self, key: str) -> Record:
        """The read of ``key``'s record (its key or provider job id; None if absent), after the
        writes queued before it, as an effect the drivers wait for (the async one off the event
        loop)."""
        return self._record(lambda: self.store.get(key))

    def claimed(self, record: JobRecord) -> Record:
        """The claim of ``record`` for collection by this process (never one it is collecting
        already), as an effect the drivers wait for; its outcome says whether it holds the job."""
        return self._record(lambda: self._claim(record))

    def _claim(self, record: JobRecord) -> bool:
        if record.key in self.active and self._holding(record.key):
            return False
        steal = record.owner if record.owner and owner_alive(record.owner) is False else None
        claimed = bool(
            self._guard(
                "claim",
                lambda: self.store.claim(
                    record.key,
                    owner=process_owner(),
                    lease_seconds=LEASE_SECONDS,
                    steal_from=steal,
                ),
            )
        )
        if claimed:
            self.active.add(record.key)
        return claimed

    def kept(self, key: str) -> Record | None:
        """Before this process collects ``key``'s result: the check, as an effect the drivers
        wait for, that the job is still its own (its outcome: False when another process took it;
        None when the store failed, and the job is collected as if it were). None when there is
        nothing to check: the store cannot take a live process's claim (``FencedStore``), or this
        process does not hold ``key``."""
        fenced = self._fenced
        if fenced is None or key not in self.active:
            return None
        owner = process_owner()
        return self._record(
            lambda: self._guard("claim", lambda: fenced.holds(key, owner=owner, lease_seconds=LEASE_SECONDS))
        )

    def _holding(self, key: str) -> bool:
        """Whether the store says this process holds ``key``: a key in :attr:`active` whose claim
        was in a batch that did not commit (the writer makes it again alone) is not held."""
        current = self.store.get(key)
        if current is None or current.owner != process_owner():
            self.active.discard(key)
            return False
        return True

    def released(self, key: str) -> Record:
        """The write that gives up this process's claim on ``key`` (after the job's queued
        writes), as an effect the drivers wait for (the async one off the event loop)."""
        self.active.discard(key)
        owner = process_owner()
        return self._record(lambda: self._guard("release", lambda: self.store.release(key, owner=owner)))


# ----------------------------------------------------------------------------------------------
# Which ledger is active
# ----------------------------------------------------------------------------------------------
