"""The engine-facing :class:`LedgerAdapter`: serialises what the engine records (no secrets, no
media bytes) into a :class:`JobStore`, and never lets a store failure break a generation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .._redact import get_logger
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
    BudgetCheck,
    JobRecord,
    JobStore,
    SpendStore,
)

if TYPE_CHECKING:
    pass

log = get_logger("tarash.ledger")

__all__ = ["LedgerAdapter"]

# ----------------------------------------------------------------------------------------------


def _strip_media(value: Any) -> Any:
    """Plain data with media bytes (base64 objects, long data URIs) replaced by their size."""
    if isinstance(value, dict):
        content = value.get("content")
        if set(value) == {"content", "content_type"} and isinstance(content, str):
            size = len(content) * 3 // 4 - content[-2:].count("=")
            return {"content_type": value["content_type"], "size": size, "stored": False}
        return {key: _strip_media(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strip_media(item) for item in value]
    if isinstance(value, str) and value.startswith("data:") and len(value) > MEDIA_TEXT_LIMIT:
        head, _, payload = value.partition(",")
        size = len(payload)
        if head.endswith(";base64"):
            size = size * 3 // 4 - payload[-2:].count("=")
        return f"{head},<{size} bytes not stored>"
    return value


class LedgerAdapter:
    """The engine's ``Ledger``: serialises records (no secrets, no media bytes) into a JobStore.

    A ledger must never break a generation: a store failure is logged (once per kind) and the
    generation goes on.
    """

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.active: set[str] = set()
        self._warned: set[str] = set()
        #: key -> (state, when) of the last status written: a poll that changes nothing is written
        #: (renewing the lease) at most every STATUS_REFRESH_SECONDS.
        self._written: dict[str, tuple[str, float]] = {}

    def _guard(self, what: str, write: Callable[[], Any]) -> Any:
        """Run ``write`` (serialising and storing); a failure is logged, never raised."""
        try:
            return write()
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
        """``obj`` as JSON-safe data without media bytes; None (logged) when it cannot be."""
        # lazy: cattrs loads at the first write or read, not at import
        from .._converters import to_json_text, unstructure

        try:
            data = _strip_media(unstructure(obj) if attrs.has(type(obj)) else obj)
            to_json_text(data)
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
    ) -> None:
        """Record the intent to submit, with its expected ``cost`` (a ``Cost`` or None), admitted
        by the budget ``check`` in the same transaction (on a store that keeps costs and budgets;
        another store records the intent alone). Fails closed: if
        it cannot be recorded (the store fails, or the config or request cannot be serialised),
        LedgerError is raised and nothing is sent; the check's refusal is raised as it is."""
        plain_config = self._plain(attrs.evolve(config, fallback_configs=None))
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
        store = self.store
        fields: dict[str, Any] = {
            "provider": provider,
            "model": model,
            "modality": modality,
            "config": plain_config,
            "request": plain_request,
            "owner": process_owner(),
            "lease_seconds": LEASE_SECONDS,
        }
        try:
            if isinstance(store, SpendStore):
                plain_cost = self._plain(cost) if cost is not None else None
                store.record_budgeted_intent(key, check=check, cost=plain_cost, **fields)
            else:
                store.record_intent(key, **fields)
        except (CostLimitExceededError, LedgerError):
            raise
        except Exception as exc:
            raise LedgerError(
                f"The job ledger {self.store!r} could not record the submit intent "
                f"({type(exc).__name__}: {exc}), so nothing was submitted. Switch the ledger off "
                "(TARASH_LEDGER=off) to submit unrecorded.",
                provider=provider,
                model=model,
                phase="validate",
            ) from exc
        self.active.add(key)

    def submitted(self, key: str, job: JobRef) -> None:
        self._guard(
            "submitted",
            lambda: self.store.record_submitted(
                key,
                job_id=job.job_id,
                job=self._plain(job),
                owner=process_owner(),
                lease_seconds=LEASE_SECONDS,
            ),
        )

    def status(self, key: str, state: str, detail: Mapping[str, Any]) -> None:
        if state == "cancel":
            self._guard(
                "cancel",
                lambda: self.store.record_cancel(
                    key,
                    detail=self._plain(dict(detail)) or {},
                ),
            )
            return
        now = time.monotonic()
        last = self._written.get(key)
        if last is not None and last[0] == state and now - last[1] < STATUS_REFRESH_SECONDS:
            return
        self._written[key] = (state, now)
        self._guard(
            "status",
            lambda: self.store.record_status(
                key,
                state=state,
                detail=self._plain(dict(detail)) or {},
                owner=process_owner(),
                lease_seconds=LEASE_SECONDS,
            ),
        )

    def finished(self, key: str, state: str, *, result: Any = None, error: Any = None) -> None:
        if isinstance(error, JobCancelledError):
            state = "cancelled"
        self.active.discard(key)
        self._written.pop(key, None)
        self._guard(
            "finished",
            lambda: self.store.record_finished(
                key,
                state=state,
                result=self._plain(result) if result is not None else None,
                error=self._plain(dict(error_summary(error))) if error is not None else None,
            ),
        )

    def event(self, key: str, kind: str, detail: Mapping[str, Any]) -> None:
        """Record a fact about a job in its history (its record is unchanged)."""
        self._guard(
            kind, lambda: self.store.record_event(key, kind=kind, detail=self._plain(dict(detail)) or {})
        )

    def cost(self, key: str, cost: Any) -> None:
        """Record the job's cost (a ``Cost``); a store that keeps no costs is skipped."""
        store = self.store
        if isinstance(store, SpendStore):
            self._guard("cost", lambda: store.record_cost(key, cost=self._plain(cost) or {}))

    def spend_store(self) -> SpendStore:
        """The store, when it keeps costs and budgets; LedgerError otherwise."""
        if not isinstance(self.store, SpendStore):
            raise LedgerError(f"The job ledger {self.store!r} keeps no costs or budgets")
        return self.store

    def claim(self, record: JobRecord) -> bool:
        """Claim ``record`` for collection by this process (never one it is collecting already)."""
        if record.key in self.active:
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

    def release(self, key: str) -> None:
        self.active.discard(key)
        self._guard("release", lambda: self.store.release(key, owner=process_owner()))


# ----------------------------------------------------------------------------------------------
# Which ledger is active
# ----------------------------------------------------------------------------------------------
