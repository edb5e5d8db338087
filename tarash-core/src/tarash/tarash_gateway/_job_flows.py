"""Driving a job that was already submitted: its status, result, wait and cancel as flows, and
finding the job of a submit whose answer was lost (``reconcile``).

The engine layer: what :class:`~tarash.tarash_gateway.jobs.JobHandle` and ``jobs.resume`` run.
May import the engine, the runtime, the ledger, models and exceptions; never the gateway or
``jobs`` (they call this, passing the gateway to run on).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import attrs

from . import _runtime as rt
from ._engine import (
    Attempt,
    CallerError,
    announce_completed,
    cancel_job,
    expect_type,
    fetch_result,
    ledger_finish,
    poll_status,
    raise_for_state,
    run_flow,
    wait_phase,
)
from ._ledger import JobRecord, LedgerAdapter
from ._lost_submissions import Reconciliation, SubmissionIntent
from ._records import JobRef
from ._redact import get_logger, redact
from .exceptions import JobCancelledError, JobNotFinishedError, ResultNotCollectedError, TarashException
from .models import ImageGenerationConfig, VideoGenerationConfig

if TYPE_CHECKING:
    from ._gateway import Gateway, JobHandle
    from .plugin import JobStatus

__all__ = [
    "attempt_for",
    "cancel_flow",
    "collect",
    "ended_state",
    "reconcilable",
    "reconcile_flow",
    "released_after",
    "result_flow",
    "status_flow",
    "wait_flow",
    "waited",
]

log = get_logger("tarash.jobs")
T = TypeVar("T")
OnProgress = Callable[[Any], Any]


def ended_state(attempt: Attempt, error: TarashException) -> Literal["failed", "cancelled"] | None:
    """How ``error`` ends the job for good (failed, cancelled); None if a later try may work."""
    if isinstance(error, ResultNotCollectedError):
        return None
    if isinstance(error, JobCancelledError) or attempt.state == "cancelled":
        return "cancelled"
    if attempt.state == "failed":
        return "failed"
    if attempt.state == "completed" and error.phase == "result" and not error.retryable:
        return "failed"
    return None


def collect(attempt: Attempt, flow: rt.Flow[Any]) -> rt.Flow[Any]:
    """Run a flow that ends with the job's response; record its end in the ledger."""
    try:
        response = yield from flow
    except CallerError as exc:
        raise exc.original from None
    except TarashException as exc:
        ended = ended_state(attempt, exc)
        if ended is not None:
            yield from ledger_finish(attempt, ended, error=exc)
        raise
    response = attrs.evolve(
        response,
        provider=response.provider or attempt.provider,
        model=response.model or attempt.model,
    )
    yield from ledger_finish(attempt, "completed", result=response)
    return response


def attempt_for(
    handle: JobHandle,
    gateway: Gateway,
    on_progress: OnProgress | None = None,
    timeout: float | None = None,
    ledger: LedgerAdapter | None = None,
) -> Attempt:
    config = handle.config if timeout is None else attrs.evolve(handle.config, timeout=timeout)
    return Attempt(
        gateway=gateway,
        config=config,
        request=None,
        modality=handle.job.modality,
        number=1,
        provider=handle.job.provider,
        on_progress=on_progress,
        ledger=ledger if ledger is not None else gateway.ledger(),
        ledger_key=handle.key,
        job=handle.job,
        intent_recorded=True,
    )


def status_flow(handle: JobHandle, gateway: Gateway) -> rt.Flow[JobStatus]:
    status = yield from poll_status(attempt_for(handle, gateway))
    return attrs.evolve(status, raw=redact(dict(status.raw)))


def result_flow(handle: JobHandle, gateway: Gateway) -> rt.Flow[Any]:
    attempt = attempt_for(handle, gateway)

    def fetch() -> rt.Flow[Any]:
        status = yield from poll_status(attempt)
        raise_for_state(attempt, status)
        if status.state != "completed":
            raise JobNotFinishedError(
                f"Job {handle.job_id} at {handle.provider} is {status.state}, not completed",
                state=status.state,
                provider=handle.provider,
                model=handle.model,
                request_id=handle.job_id,
            )
        return (yield from fetch_result(attempt))

    return (yield from collect(attempt, fetch()))


def waited(attempt: Attempt) -> rt.Flow[Any]:
    """Wait for the attempt's job and collect it; the caller's callback hears the response last."""
    response = yield from collect(attempt, wait_phase(attempt))
    yield from announce_completed(attempt, response)
    return response


def released_after(ledger: LedgerAdapter, key: str, flow: rt.Flow[T]) -> rt.Flow[T]:
    """Run ``flow``, then give up this process's claim on ``key``, whatever ``flow`` raised. A flow
    closed unfinished (its driver gone) cannot wait for the write: the claim's lease runs out."""
    try:
        result = yield from flow
    except GeneratorExit:
        raise
    except BaseException:
        yield ledger.released(key)
        raise
    yield ledger.released(key)
    return result


def wait_flow(
    handle: JobHandle, gateway: Gateway, on_progress: OnProgress | None, timeout: float | None
) -> rt.Flow[Any]:
    ledger = gateway.ledger()
    attempt = attempt_for(handle, gateway, on_progress, timeout, ledger)
    if ledger is None:
        return (yield from waited(attempt))
    record = yield ledger.fetched(handle.key)
    if record is None or record.finished:
        return (yield from waited(attempt))
    if not (yield ledger.claimed(record)):
        log.info(
            "Job %s is being collected by another process (%s); waiting too", handle.job_id, record.owner
        )
        return (yield from waited(attempt))
    return (yield from released_after(ledger, handle.key, waited(attempt)))


def cancel_flow(handle: JobHandle, gateway: Gateway) -> rt.Flow[bool]:
    attempt = attempt_for(handle, gateway)
    yield from cancel_job(attempt, "cancelled by the caller")
    if attempt.cancel_status == "failed":
        raise TarashException(
            f"Cancel of job {handle.job_id} failed: {attempt.cancel_error}",
            provider=handle.provider,
            model=handle.model,
            request_id=handle.job_id,
            phase="cancel",
        )
    if attempt.cancel_status == "cancelled":
        yield from ledger_finish(attempt, "cancelled")
        return True
    return False


# ----------------------------------------------------------------------------------------------
# Reconciling a submission whose answer was lost
# ----------------------------------------------------------------------------------------------


def reconcilable(gateway: Gateway, provider: str) -> bool:
    """Whether ``provider`` is installed and its plugin implements the ``reconcile`` hook."""
    try:
        return gateway.host.implements(provider, "reconcile")
    except TarashException:
        return False


def reconcile_flow(
    record: JobRecord, gateway: Gateway, ledger: LedgerAdapter, timeout: float | None
) -> rt.Flow[tuple[Reconciliation, TarashException | None]]:
    """Ask the provider's ``reconcile`` hook whether the lost submit of ``record`` created a job.

    ``found`` is recorded in the ledger as the job's submit (the record is then unfinished and
    collectable); every other verdict is left to the caller to record. A lookup that fails is
    ``cannot_tell``, with the error.
    """
    # lazy: cattrs loads at the first (de)serialisation, not at import
    from .serialization import from_dict

    if record.config is None:
        return Reconciliation(verdict="cannot_tell", detail="the ledger holds no config for it"), None
    try:
        config_type = ImageGenerationConfig if record.modality == "image" else VideoGenerationConfig
        config: Any = from_dict(config_type, record.config)
    except TarashException as exc:
        return Reconciliation(verdict="cannot_tell", detail="its recorded config no longer loads"), exc
    if timeout is not None:
        config = attrs.evolve(config, timeout=timeout)
    attempt = Attempt(
        gateway=gateway,
        config=config,
        request=None,
        modality=record.modality,
        number=1,
        provider=record.provider,
        on_progress=None,
        ledger_key=record.key,
    )
    intent = SubmissionIntent(
        key=record.key,
        provider=record.provider,
        model=record.model,
        modality=record.modality,
        created_at=record.created_at,
        timeout=float(config.timeout),
        request=record.request or {},
    )
    try:
        answer = yield from run_flow(
            attempt, "reconcile", "poll", config=config, intent=intent, context=attempt.context(record.key)
        )
        answer = expect_type(attempt, answer, Reconciliation, "poll", "reconcile ")
    except TarashException as exc:
        return Reconciliation(verdict="cannot_tell", detail=f"the lookup failed: {exc.message}"), exc
    if answer.verdict == "found":
        assert answer.job is not None
        job = JobRef(
            provider=record.provider,
            model=record.model,
            modality=record.modality,
            job_id=str(answer.job.job_id),
            data=dict(answer.job.data),
            submitted_at=record.created_at,
        )
        yield ledger.submitted(record.key, job)
    return answer, None
