"""Durable jobs: submit now, collect later, survive a crash without paying twice.

:func:`submit_video` and :func:`submit_image` submit a generation and return a :class:`JobHandle`
at once. A handle knows everything needed to poll the job again: provider, model, the provider's
job id and polling data, and the config without its API key. It serialises to JSON
(:meth:`JobHandle.to_json`) and loads in another process (:meth:`JobHandle.from_json`). Waiting uses
the very functions ``generate_video`` is made of (``generate_video`` is submit + wait): retries of
status and result calls, the deadline, progress updates.

Every submission, by ``generate_*`` or by a handle, is recorded in the job ledger (a SQLite file by
default; see the durable-jobs guide for where it lives and how to switch it off). After a crash,
:func:`resume` collects every unfinished job without resubmitting it. A submit whose answer was
lost is reported as ``unknown`` (it may have been billed), never sent again; where the provider
lets core look it up (the ``reconcile`` hook), :func:`resume` finds its job and collects it, or
records that none was created (``not_found``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import attrs

from . import _engine as engine
from . import _job_flows as flows
from . import _runtime as rt
from ._gateway import JobHandle, default_gateway
from ._ledger import (
    JobEvent,
    JobRecord,
    JobStore,
    LedgerAdapter,
    SQLiteJobStore,
    active_ledger,
    active_store,
    set_ledger,
)
from ._redact import get_logger
from .exceptions import (
    JobNotFinishedError,
    JobTakenOverError,
    LedgerError,
    TarashException,
    UnknownSubmissionError,
)
from .models import (
    ImageGenerationConfig,
    ImageGenerationRequest,
    ImageGenerationResponse,
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
)
from .plugin import Modality

__all__ = [
    "JobEvent",
    "JobHandle",
    "JobNotFinishedError",
    "JobOutcome",
    "JobRecord",
    "JobStore",
    "LedgerError",
    "SQLiteJobStore",
    "get_job",
    "get_ledger",
    "list_jobs",
    "resume",
    "resume_async",
    "set_ledger",
    "submit_image",
    "submit_image_async",
    "submit_video",
    "submit_video_async",
]

log = get_logger("tarash.jobs")


def __getattr__(name: str) -> Any:
    """``PostgresJobStore`` is imported when first asked for: it needs the ``postgres`` extra."""
    if name == "PostgresJobStore":
        # lazy: PostgreSQL needs the optional postgres extra
        from ._ledger.postgres import PostgresJobStore

        return PostgresJobStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Jobs :func:`resume` collects at the same time.
RESUME_CONCURRENCY = 8

AnyConfig = VideoGenerationConfig | ImageGenerationConfig
OnProgress = Callable[[Any], Any]
OutcomeState = Literal["completed", "failed", "cancelled", "unknown", "not_found", "unfinished", "claimed"]


@attrs.frozen(kw_only=True)
class JobOutcome:
    """What :func:`resume` did with one job of the ledger.

    ``state``: ``completed`` (``response`` holds the result), ``failed`` or ``cancelled`` (``error``
    says why), ``unknown`` (the submit's answer was lost, or the provider cannot resume jobs from
    a new process: it may have been billed, was not resubmitted, and ``error`` says what to check),
    ``not_found`` (the submit's answer was lost and the provider's records show it created no
    job: submitting again does not pay twice; ``error`` says what was checked),
    ``unfinished`` (not collected this time, e.g. still running at the timeout or the
    provider unreachable: a later resume tries again) or ``claimed`` (another live process is
    collecting it).
    """

    key: str
    provider: str
    model: str
    modality: Modality
    job_id: str | None
    state: OutcomeState
    response: VideoGenerationResponse | ImageGenerationResponse | None = None
    error: TarashException | None = None


# ----------------------------------------------------------------------------------------------
# Handles
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# Submitting
# ----------------------------------------------------------------------------------------------


def _submit_flow(config: Any, request: Any, modality: Modality) -> rt.Flow[JobHandle]:
    gateway = default_gateway()
    ledger = gateway.ledger()
    attempt = yield from engine.submit_job(gateway, config, request, modality)
    assert attempt.job is not None
    if ledger is not None:
        yield ledger.released(attempt.ledger_key)
    return JobHandle(
        key=attempt.ledger_key,
        job=attempt.job,
        config=attrs.evolve(attempt.config, fallback_configs=None),
    )


def submit_video(config: VideoGenerationConfig, request: VideoGenerationRequest) -> JobHandle:
    """Submit a video generation and return its handle without waiting.

    The same submit rules as ``generate_video``: a submit whose answer was lost raises
    UnknownSubmissionError and is never resent; a retryable submit failure moves on to the next
    fallback config. Raises UnsupportedModalityError for providers without lifecycle hooks.
    """
    return rt.drive_sync(_submit_flow(config, request, "video"), default_gateway().background)


async def submit_video_async(config: VideoGenerationConfig, request: VideoGenerationRequest) -> JobHandle:
    """Async :func:`submit_video`."""
    return await rt.drive_async(_submit_flow(config, request, "video"))


def submit_image(config: ImageGenerationConfig, request: ImageGenerationRequest) -> JobHandle:
    """Submit an image generation and return its handle (see :func:`submit_video`)."""
    return rt.drive_sync(_submit_flow(config, request, "image"), default_gateway().background)


async def submit_image_async(config: ImageGenerationConfig, request: ImageGenerationRequest) -> JobHandle:
    """Async :func:`submit_image`."""
    return await rt.drive_async(_submit_flow(config, request, "image"))


# ----------------------------------------------------------------------------------------------
# The ledger: list, get, resume
# ----------------------------------------------------------------------------------------------


def get_ledger() -> JobStore | None:
    """The job store in effect (opened on first use), or None when the ledger is off; the
    status updates still queued are written first."""
    ledger = active_ledger()
    if ledger is not None:
        ledger.flush()
    return active_store()


def _require_ledger() -> LedgerAdapter:
    ledger = active_ledger()
    if ledger is None:
        raise LedgerError(
            "The job ledger is off (TARASH_LEDGER=off, set_ledger('off'), or its "
            "file cannot be written); no jobs are recorded"
        )
    ledger.flush()
    return ledger


def list_jobs(state: str | None = None) -> list[JobRecord]:
    """Every job in the ledger, oldest first; ``state`` filters (``"unfinished"``: uncollected)."""
    return _require_ledger().store.records(state)


def get_job(key: str) -> JobRecord | None:
    """The ledger record whose key, or provider job id, is ``key``; None when there is none."""
    return _require_ledger().store.get(key)


def _unknown_message(record: JobRecord) -> str:
    when = record.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    if record.provider == "mock":
        advice = "Mock jobs are never billed: nothing to do."
    else:
        advice = (
            f"Look for a {record.model} job created around {when} in {record.provider}'s "
            "dashboard or job list, and cancel or use it there (see the durable-jobs guide)."
        )
    return (
        f"The submit to {record.provider} at {when} was interrupted before its job id was "
        f"recorded: unknown, may have been billed. It was not resubmitted. {advice} "
        f"Ledger key: {record.key}."
    )


def _reconcile(
    ledger: LedgerAdapter, record: JobRecord, timeout: float | None
) -> rt.Flow[JobRecord | JobOutcome]:
    """A submission whose answer was lost: its record once the provider's ``reconcile`` hook found
    its job (claimed for collection), else the outcome to report (``unknown`` or ``not_found``)."""
    gateway = default_gateway()

    def ended(state: OutcomeState, error: TarashException) -> rt.Flow[JobOutcome]:
        yield ledger.finished(record.key, state, error=error)
        return JobOutcome(
            key=record.key,
            provider=record.provider,
            model=record.model,
            modality=record.modality,
            job_id=None,
            state=state,
            error=error,
        )

    if not flows.reconcilable(gateway, record.provider):
        message = _unknown_message(record)
        unknown = UnknownSubmissionError(message, provider=record.provider, model=record.model)
        return (yield from ended("unknown", unknown))
    answer, failure = yield from flows.reconcile_flow(record, gateway, ledger, timeout)
    if answer.verdict == "not_found":
        not_found = TarashException(
            f"The submit to {record.provider} whose answer was lost created no job: "
            f"{answer.detail or 'the provider has no matching request'}. Nothing was billed; "
            f"submitting again does not pay twice. Ledger key: {record.key}.",
            provider=record.provider,
            model=record.model,
            phase="submit",
        )
        return (yield from ended("not_found", not_found))
    if answer.verdict == "cannot_tell":
        message = (
            f"{_unknown_message(record)} {record.provider} could not tell whether it created a job "
            f"({answer.detail or 'no conclusive answer'}); a later resume() asks again."
        )
        error = UnknownSubmissionError(message, provider=record.provider, model=record.model)
        error.__cause__ = failure
        return (yield from ended("unknown", error))
    found: JobRecord | None = yield ledger.fetched(record.key)
    if found is None or found.job is None:
        unrecorded = LedgerError(
            f"{record.provider} found job {answer.job.job_id if answer.job else '?'} for ledger key "
            f"{record.key}, but the ledger could not record it",
            provider=record.provider,
            model=record.model,
        )
        return (yield from ended("unknown", unrecorded))
    if record.finished and not (yield ledger.claimed(found)):
        return JobOutcome(
            key=record.key,
            provider=record.provider,
            model=record.model,
            modality=record.modality,
            job_id=found.job_id,
            state="claimed",
        )
    log.info("Found job %s of ledger key %s at %s; collecting it", found.job_id, record.key, record.provider)
    return found


def _resume_flow(
    ledger: LedgerAdapter, record: JobRecord, timeout: float | None, on_progress: OnProgress | None
) -> rt.Flow[JobOutcome]:
    def outcome(state: OutcomeState, **fields: Any) -> JobOutcome:
        return JobOutcome(
            key=record.key,
            provider=record.provider,
            model=record.model,
            modality=record.modality,
            job_id=record.job_id,
            state=state,
            **fields,
        )

    if not record.finished:
        if not (yield ledger.claimed(record)):
            return outcome("claimed")
        # The record was listed before the claim, maybe long before (resume works through the
        # list a few jobs at a time): read it again, so a job id recorded since is used.
        record = (yield ledger.fetched(record.key)) or record
    if record.job_id is None:
        found = yield from _reconcile(ledger, record, timeout)
        if isinstance(found, JobOutcome):
            return found
        record = found
    if not _resumable(record.provider):
        not_polled = TarashException(
            f"{record.provider} cannot continue job {record.job_id} from a new process (its plugin "
            "declares Capabilities(resume=False)), so it was not polled. It may still run and be "
            f"billed: look for it in {record.provider}'s dashboard or job list. "
            f"Ledger key: {record.key}.",
            provider=record.provider,
            model=record.model,
            request_id=record.job_id,
            phase="poll",
        )
        yield ledger.finished(record.key, "unknown", error=not_polled)
        return outcome("unknown", error=not_polled)
    try:
        handle = JobHandle.from_record(record)
    except TarashException as exc:
        yield ledger.released(record.key)
        return outcome("unfinished", error=exc)
    attempt = flows.attempt_for(handle, default_gateway(), on_progress, timeout, ledger)
    if (record.cancel or {}).get("outcome") == "failed":
        # Abandoned with an unconfirmed cancel: the caller did not want this job. Cancel it
        # now; collect it only if it had finished meanwhile (then it is paid for).
        yield from engine.cancel_job(attempt, "resume: the earlier cancel was not confirmed")
        if attempt.cancel_status == "cancelled":
            yield from engine.ledger_finish(attempt, "cancelled")
            return outcome("cancelled")
        if attempt.cancel_status == "failed":
            yield ledger.released(record.key)
            error = TarashException(
                f"Cancel of job {record.job_id} at {record.provider} still not confirmed: "
                f"{attempt.cancel_error}",
                provider=record.provider,
                model=record.model,
                request_id=record.job_id,
                phase="cancel",
            )
            return outcome("unfinished", error=error)
    try:
        response = yield from flows.released_after(ledger, record.key, flows.waited(attempt))
    except JobTakenOverError:
        return outcome("claimed")
    except TarashException as exc:
        ended = flows.ended_state(attempt, exc)
        return outcome(ended if ended is not None else "unfinished", error=exc)
    return outcome("completed", response=response)


def _resumable(provider: str) -> bool:
    """False only when the installed provider declares it cannot resume jobs."""
    try:
        spec, _ = default_gateway().host.entry_plugin(provider)
    except TarashException:
        return True
    return spec.capabilities.resume


def _to_resume(job_id: str | None) -> tuple[LedgerAdapter, list[JobRecord]]:
    """The unfinished records, plus the lost submits (``unknown``, no job id) whose provider can
    reconcile them."""
    ledger = _require_ledger()
    gateway = default_gateway()

    def wanted(record: JobRecord) -> bool:
        if not record.finished:
            return True
        lost = record.state == "unknown" and record.job_id is None
        return lost and flows.reconcilable(gateway, record.provider)

    if job_id is None:
        unknown = [r for r in ledger.store.records("unknown") if wanted(r)]
        records = ledger.store.records("unfinished") + unknown
        return ledger, sorted(records, key=lambda r: (r.created_at, r.key))
    record = ledger.store.get(job_id)
    if record is None:
        raise LedgerError(f"No job {job_id!r} in the ledger ({ledger.store!r})")
    return ledger, [record] if wanted(record) else []


def resume(
    job_id: str | None = None,
    *,
    timeout: float | None = None,
    on_progress: OnProgress | None = None,
) -> list[JobOutcome]:
    """Collect every unfinished job in the ledger (or the one whose key or job id is ``job_id``).

    Nothing is ever resubmitted. Jobs are polled again from their recorded job id, several at a
    time, each for ``timeout`` seconds from now (default: its config's timeout); a job that is
    still running then is left ``unfinished``, not cancelled. A submission interrupted before its
    job id was recorded (its answer lost) is looked up at the provider when its plugin implements
    the ``reconcile`` hook: a job found is collected (no new submit), one the provider shows was
    never created is reported ``not_found``; otherwise it is reported ``unknown`` (it may have been
    billed), as is a job of a provider declaring ``Capabilities(resume=False)`` (not polled).
    ``unknown`` records of a provider with the hook are asked about again by every ``resume()``.
    Jobs another live process is collecting are reported ``claimed`` and left alone.
    """
    ledger, records = _to_resume(job_id)
    if not records:
        return []

    def run(record: JobRecord) -> JobOutcome:
        return rt.drive_sync(_resume_flow(ledger, record, timeout, on_progress), default_gateway().background)

    workers = min(RESUME_CONCURRENCY, len(records))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tarash-resume") as pool:
        return list(pool.map(run, records))


async def resume_async(
    job_id: str | None = None,
    *,
    timeout: float | None = None,
    on_progress: OnProgress | None = None,
) -> list[JobOutcome]:
    """Async :func:`resume`."""
    ledger, records = await asyncio.to_thread(_to_resume, job_id)
    limit = asyncio.Semaphore(RESUME_CONCURRENCY)

    async def run(record: JobRecord) -> JobOutcome:
        async with limit:
            return await rt.drive_async(_resume_flow(ledger, record, timeout, on_progress))

    return list(await asyncio.gather(*(run(record) for record in records)))
