"""The ledger's data: :class:`JobRecord`, :class:`JobEvent`, the :class:`JobStore` protocol every
store implements, the limits they share and the row codec of the SQL stores.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from .._plain import to_json_text
from ..plugin import JobRef, Modality

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "BUDGET_SET_SECONDS",
    "BUSY_TIMEOUT_MS",
    "COLUMNS",
    "LEASE_SECONDS",
    "MEDIA_TEXT_LIMIT",
    "OFF_VALUES",
    "RETENTION_DAYS",
    "SCHEMA_VERSION",
    "STATUS_REFRESH_SECONDS",
    "Answer",
    "BatchStore",
    "BudgetCheck",
    "BudgetsFoundSet",
    "FencedStore",
    "JobEvent",
    "JobRecord",
    "JobStore",
    "LoopConnection",
    "LoopStore",
    "NeedsConnection",
    "SpendStore",
    "dumps",
    "record_from_row",
    "utc",
]

#: Seconds a claim on a job stays valid without a write from its owner (a status poll renews it).
LEASE_SECONDS = 600.0
STATUS_REFRESH_SECONDS = 60.0
#: Days a finished job is kept; older ones are pruned when a process opens the file.
RETENTION_DAYS = 30.0
BUSY_TIMEOUT_MS = 10_000
#: Seconds an event loop's writes naming a budget go to the writer's thread once a loop's batch
#: found it set (a loop's batch does not read whether one is: the store refuses the batch when one
#: is, and the thread makes its writes, checking the budget).
BUDGET_SET_SECONDS = 5.0
OFF_VALUES = frozenset({"off", "0", "false", "no", "none", "disabled"})
MEDIA_TEXT_LIMIT = 1024
SCHEMA_VERSION = 2


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


# ----------------------------------------------------------------------------------------------
# Records and the store protocol
# ----------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class JobRecord:
    """One submission as the ledger knows it.

    Attributes:
        key: Tarash's id for the submission (also the idempotency key sent with the submit).
        state: the last known state: ``submitting`` (intent written, no job id yet),
            ``submitted``, ``queued``, ``processing``, ``completed``, ``failed``, ``cancelled``, or
            ``unknown`` (the submit may have reached the provider but its answer was lost: it may
            have been billed, and it was never resubmitted).
        finished: whether the job's outcome was collected (result or error recorded). A job can be
            ``completed`` but not finished: its result was not fetched yet, ``resume`` fetches it.
        job_id: the provider's id for the job, once known.
        job: the provider's job (id and polling data), once known.
        config, request: as plain JSON (no API key; request media bytes replaced by their size).
        result: the response as plain JSON (media bytes replaced by their size), once finished.
        error: a summary of the error that ended the job.
        detail: the last status details (queue position, progress).
        cancel: the outcome of the last cancel, if one was sent.
        owner, lease_until: the process collecting the job and until when its claim holds.
        cost: what the job costs (a ``Cost`` as JSON): its estimate from the intent on, then
            what the attempt was charged when it ended.
        billed: what the provider's billing says it charged (``tarash costs reconcile``).
    """

    key: str
    provider: str
    model: str
    modality: Modality
    state: str
    finished: bool = False
    job_id: str | None = None
    job: JobRef | None = None
    config: dict[str, Any] | None = None
    request: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    detail: dict[str, Any] = attrs.field(factory=dict)
    cancel: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    owner: str | None = None
    lease_until: datetime | None = None
    cost: dict[str, Any] | None = None
    billed: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class JobEvent:
    """One entry of a job's history: intent, submitted, status, cancel, claim, finished, or a
    fact recorded with ``record_event`` (``download``: path, sha256 and size of a saved output)."""

    key: str
    at: datetime
    kind: str
    state: str | None = None
    detail: dict[str, Any] = attrs.field(factory=dict)


@runtime_checkable
class JobStore(Protocol):
    """Where the ledger keeps its records; everything passed in and out is plain JSON data.

    Writes must be atomic per call. ``claim`` must be a single atomic compare-and-set so that two
    processes never both collect one job.
    """

    def record_intent(
        self,
        key: str,
        *,
        provider: str,
        model: str,
        modality: str,
        config: Mapping[str, Any] | None,
        request: Mapping[str, Any] | None,
        owner: str | None,
        lease_seconds: float,
    ) -> None:
        """Add a submission before its submit request is sent."""

    def record_submitted(
        self,
        key: str,
        *,
        job_id: str,
        job: Mapping[str, Any] | None,
        owner: str | None,
        lease_seconds: float,
    ) -> None:
        """The provider accepted the submit and gave ``job_id`` (``job``: the JobRef as data)."""

    def record_status(
        self,
        key: str,
        *,
        state: str,
        detail: Mapping[str, Any],
        owner: str | None,
        lease_seconds: float,
    ) -> None:
        """A status observation (an event is kept when the state changes); renews owner's lease."""

    def record_cancel(self, key: str, *, detail: Mapping[str, Any]) -> None:
        """A cancel was sent (``detail`` holds the reason and the outcome)."""

    def record_finished(
        self,
        key: str,
        *,
        state: str,
        result: Mapping[str, Any] | None,
        error: Mapping[str, Any] | None,
    ) -> None:
        """The outcome was collected; releases any claim.

        The first outcome recorded stays (a job cancelled by the caller stays cancelled), except
        that a collected result is always recorded and ``unknown`` can be resolved.
        """

    def record_event(self, key: str, *, kind: str, detail: Mapping[str, Any]) -> None:
        """Add a fact to a job's history without changing its record (e.g. a ``download``)."""

    def claim(self, key: str, *, owner: str, lease_seconds: float, steal_from: str | None = None) -> bool:
        """Atomically become the collector of an unfinished job.

        Succeeds when nobody holds it, ``owner`` already does, the holder's lease expired, or the
        holder is ``steal_from`` (a process the caller found dead).
        """

    def release(self, key: str, *, owner: str) -> None:
        """Give up a claim held by ``owner``."""

    def get(self, key: str) -> JobRecord | None:
        """The record whose key, or provider job id, is ``key``."""

    def records(self, state: str | None = None) -> list[JobRecord]:
        """Records oldest first; ``state`` filters by state, ``"unfinished"`` by not finished."""

    def events(self, key: str) -> list[JobEvent]:
        """A job's history, oldest first."""


@runtime_checkable
class BatchStore(Protocol):
    """What a store adds to commit several writes together (both SQL stores do): the ledger's
    writer thread then stores every write queued while the previous batch ran in one transaction,
    instead of one transaction each."""

    def batch(self) -> AbstractContextManager[None]:
        """One transaction around the store calls this thread makes inside it: they commit
        together when it exits, or none of them is stored and it raises (a write that raised, a
        statement that failed inside a write that swallowed the error, or the commit). Another
        thread's calls wait for it to end."""


@runtime_checkable
class FencedStore(Protocol):
    """What a store adds when a live process can lose its claim on a job to another (PostgreSQL:
    a worker whose liveness connection dropped looks dead to the fleet for a moment): the process
    then asks, before it collects a job's result, whether the job is still its own."""

    def holds(self, key: str, *, owner: str, lease_seconds: float) -> bool | Answer:
        """Whether ``owner`` still holds its claim on ``key``; if so, the claim is renewed for
        ``lease_seconds`` and, from this call on, another process cannot take it while ``owner``
        lives (its liveness is checked, and restored if it had lapsed, first). A job that has
        ended is still held by its owner unless another process claimed it last (its end may have
        been recorded by a webhook receiver on any worker, which claims nothing). While a
        :class:`LoopStore` collects: an :class:`Answer`, set once the collected writes are made."""


class Answer:
    """What a write collected by a :class:`LoopStore` returns when it asks the database a
    question (``FencedStore.holds``): its :attr:`value` is set when the loop's connection makes
    the collected writes, and the write's caller is given the value."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: Any = None


class BudgetsFoundSet:
    """The budgets an event loop's batch found set (its store refused the batch, storing nothing),
    each remembered for :data:`BUDGET_SET_SECONDS`: meanwhile the loop's intents naming one raise
    :class:`NeedsConnection` as they are collected, and the writer's thread checks them, instead of
    their going into batches the store would refuse again."""

    def __init__(self) -> None:
        self._found: dict[str, float] = {}

    def note(self, names: Iterable[str | None]) -> None:
        """Note that the budgets ``names`` (None: an intent naming none) are set."""
        now = time.monotonic()
        for name in names:
            if name is not None:
                self._found[name] = now

    def recent(self, name: str) -> bool:
        """Whether ``name`` was found set less than :data:`BUDGET_SET_SECONDS` ago."""
        found = self._found.get(name)
        return found is not None and time.monotonic() - found < BUDGET_SET_SECONDS


class NeedsConnection(Exception):
    """Raised by a write made while a :class:`LoopStore` collects when it needs the database at
    once (a read, a lock, a connection not yet set up): nothing of it was collected, and it is
    made by the ledger's writer thread instead."""


@runtime_checkable
class LoopStore(Protocol):
    """What a store adds to make an event loop's writes from that loop, awaited like any other
    I/O (PostgreSQL: psycopg's ``AsyncConnection``; SQLite: a helper process, see
    :mod:`.sqlite_process`), instead of on the ledger's writer thread: no second thread then
    shares the interpreter with the busy loop. The writes found queued on a loop are run while the
    store collects (:meth:`collecting`), and what they collected is made by one call of the loop's
    connection (:meth:`connect_loop`)."""

    #: The fewest writes a loop's batch must hold to open the loop's connection; smaller ones go
    #: to the writer's thread while it is not open (1: the first batch opens it).
    loop_batch_from: int

    def runs_on(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether the store can make writes on ``loop`` (else its writes go to the thread)."""

    def collecting(self) -> AbstractContextManager[list[Any]]:
        """Within it, this thread's writes are collected in the list it gives, in order, and not
        made; one that needs the database at once raises :class:`NeedsConnection`. It raises
        :class:`NeedsConnection` on entry when the store is not yet ready (first use, a fork)."""

    async def connect_loop(self) -> LoopConnection:
        """A connection of the running loop's own, to make collected writes on."""


class LoopConnection(Protocol):
    """An event loop's connection to a :class:`LoopStore`."""

    async def apply(self, collected: list[Any]) -> None:
        """Make ``collected`` writes, in one transaction (the :class:`Answer` of a question among
        them set after it). Raises :class:`NeedsConnection` when
        they must be made another way (nothing of them is stored), another exception when the
        connection failed (then it is closed, and they may or may not be stored)."""

    def discard(self) -> None:
        """Close the connection at once, without waiting (it was idle, failed, or its loop is
        ending)."""


class BudgetCheck(Protocol):
    """Decides, inside the transaction that records an intent, whether the budget ``name``
    admits it: called with the budget (None when none is set) and a function giving the costs of
    the jobs created since an epoch time; raising refuses the intent (nothing is written)."""

    name: str

    def __call__(
        self,
        budget: Mapping[str, Any] | None,
        costs_since: Callable[[float], list[dict[str, Any]]],
    ) -> None: ...


@runtime_checkable
class SpendStore(Protocol):
    """What a store adds to keep costs and budgets (both SQL stores do; a store without these
    methods keeps no costs, and a budget cannot be set on it)."""

    def record_budgeted_intent(
        self,
        key: str,
        *,
        check: BudgetCheck,
        cost: Mapping[str, Any] | None,
        provider: str,
        model: str,
        modality: str,
        config: Mapping[str, Any] | None,
        request: Mapping[str, Any] | None,
        owner: str | None,
        lease_seconds: float,
    ) -> None:
        """``record_intent`` with the job's expected ``cost``, admitted by ``check`` in the same
        transaction, serialised per budget: two writers never both pass the check on the same
        spend (what one admits, the next one's check counts)."""

    def record_cost(self, key: str, *, cost: Mapping[str, Any]) -> None:
        """The job's cost (a ``Cost`` as JSON), replacing the one recorded before."""

    def record_billed(self, key: str, *, billed: Mapping[str, Any]) -> bool:
        """What the provider billed for the job whose key or provider job id is ``key``."""

    def costs_since(self, since: float) -> list[dict[str, Any]]:
        """The costs of the jobs created at or after ``since`` (epoch seconds)."""

    def set_budget(self, name: str, budget: Mapping[str, Any] | None) -> None:
        """Keep (or with None, remove) the budget ``name``: ``{amount, currency, period}``."""

    def get_budget(self, name: str) -> dict[str, Any] | None:
        """The budget ``name``, or None."""


# ----------------------------------------------------------------------------------------------
# SQLite store

#: The columns of a record's row, in the order record_from_row reads them.
COLUMNS = (
    "key, provider, model, modality, state, job_id, job, config, request, result, error,"
    " detail, cancel, created_at, updated_at, finished_at, owner, lease_until, cost, billed"
)


def dumps(data: Mapping[str, Any] | None) -> str | None:
    if data is None:
        return None
    return to_json_text(data)


def record_from_row(row: tuple[Any, ...]) -> JobRecord:
    # lazy: cattrs loads at the first read, not at import
    from .._codec import structure

    (
        key,
        provider,
        model,
        modality,
        state,
        job_id,
        job,
        config,
        request,
        result,
        error,
        detail,
        cancel,
        created_at,
        updated_at,
        finished_at,
        owner,
        lease_until,
        cost,
        billed,
    ) = row

    def load(text: str | None) -> Any:
        return json.loads(text) if text else None

    return JobRecord(
        key=key,
        provider=provider,
        model=model,
        modality=modality,
        state=state,
        finished=finished_at is not None,
        job_id=job_id,
        job=structure(json.loads(job), JobRef) if job else None,
        config=load(config),
        request=load(request),
        result=load(result),
        error=load(error),
        detail=load(detail) or {},
        cancel=load(cancel),
        created_at=utc(created_at),
        updated_at=utc(updated_at),
        finished_at=utc(finished_at) if finished_at else None,
        owner=owner,
        lease_until=utc(lease_until) if lease_until else None,
        cost=load(cost),
        billed=load(billed),
    )
