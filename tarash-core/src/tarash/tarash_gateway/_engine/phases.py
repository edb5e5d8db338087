"""The phases of an attempt: submit (never re-sent once it may have arrived), poll, result,
cancel (retried within its own grace), and blocking generation."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, NoReturn

import attrs

from .. import _runtime as rt
from .._errors import normalize
from .._inbox import INBOX, local_response, sleep_or_event
from .._spend import guard_cost
from ..exceptions import (
    GenerationFailedError,
    HTTPConnectionError,
    HTTPError,
    JobCancelledError,
    JobTakenOverError,
    Phase,
    TarashException,
    UnsupportedModalityError,
)
from ..models import (
    ImageGenerationResponse,
    VideoGenerationResponse,
)
from ..plugin import JobRef, JobStatus, SubmittedJob

if TYPE_CHECKING:
    from ..webhooks import WebhookEvent
from .attempt import (
    Attempt,
    CallerError,
    T,
    backoff,
    emit,
    emit_status,
    log,
    make_update,
    resolve_credentials,
)
from .checks import check_request, record_intent
from .flows import GATEWAY_ANSWERS, run_flow

__all__ = [
    "CANCEL_GRACE_SECONDS",
    "MAX_CONSECUTIVE_POLL_ERRORS",
    "MAX_SUBMIT_TRIES",
    "announce_completed",
    "blocking_phase",
    "cancel_job",
    "check_response",
    "expect_type",
    "fetch_result",
    "poll_status",
    "raise_for_state",
    "retrying",
    "submit_phase",
    "wait_phase",
    "webhook_outcome",
]

MAX_SUBMIT_TRIES = 3


MAX_CONSECUTIVE_POLL_ERRORS = 10


CANCEL_GRACE_SECONDS = 10.0


def cancel_job(attempt: Attempt, reason: str) -> rt.Flow[None]:
    """Cancel the attempt's job at the provider; records the outcome on the attempt and ledger.

    A cancel is idempotent, so it is retried on 429/5xx/connection errors (honouring
    ``Retry-After``) within its own budget of ``CANCEL_GRACE_SECONDS``, whatever the attempt's
    deadline. Outcomes: ``cancelled`` (the provider accepted), ``finished`` (the job had already
    ended: it may be billed), ``failed`` (unconfirmed after the retries), ``unsupported``.
    """
    if attempt.job is None or attempt.cancel_status is not None:
        return
    host = attempt.gateway.host
    if not attempt.spec.capabilities.cancel or not host.implements(attempt.provider, "cancel"):
        attempt.cancel_status = "unsupported"
        log.warning(
            "Job %s on %s abandoned (%s) and cannot be cancelled; it may still be billed",
            attempt.job.job_id,
            attempt.provider,
            reason,
        )
    else:
        cancel_attempt = attrs.evolve(
            attempt, deadline=time.monotonic() + CANCEL_GRACE_SECONDS, on_progress=None
        )
        try:
            accepted = yield from retrying(cancel_attempt, "cancel", "cancel")
        except Exception as exc:
            attempt.cancel_status = "failed"
            attempt.cancel_error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "Cancel of job %s on %s not confirmed: %s",
                attempt.job.job_id,
                attempt.provider,
                attempt.cancel_error,
            )
        else:
            attempt.cancel_status = "cancelled" if accepted is not False else "finished"
            log.info(
                "Cancel of job %s on %s (%s): %s",
                attempt.job.job_id,
                attempt.provider,
                reason,
                attempt.cancel_status,
            )
    if attempt.ledger is not None:
        yield attempt.ledger.cancel(attempt.ledger_key, {"reason": reason, "outcome": attempt.cancel_status})


def submit_phase(attempt: Attempt) -> rt.Flow[JobRef]:
    """Submit once (retrying only what provably never arrived, or was refused); returns the JobRef.

    A 429 answer means the provider did not accept the job: it is retried within the deadline,
    honouring ``Retry-After``. An answer that may have created a job is never re-sent.
    """
    if not attempt.gateway.host.implements(attempt.provider, "submit"):
        raise UnsupportedModalityError(attempt.provider, attempt.modality, "no submit hook")
    key = attempt.ledger_key
    check_request(attempt)
    resolve_credentials(attempt)
    yield from guard_cost(attempt, run_flow)
    yield from record_intent(attempt)
    idempotent = attempt.spec.capabilities.idempotency_key
    failures = 0
    # Why an earlier try may have created the job (a provider honouring idempotency keys is sent
    # the submit again, with the same key): however the submit then ends, its job is unknown.
    lost = ""
    while True:
        if attempt.remaining() <= 0:
            _raise_unknown_if(attempt, lost, attempt.timeout_error("deadline passed before submit"))
        try:
            submitted = yield from run_flow(
                attempt,
                "submit",
                "submit",
                config=attempt.config,
                request=attempt.request,
                context=attempt.context(idempotency_key=key),
            )
            break
        except HTTPConnectionError as exc:
            failures += 1
            if exc.request_sent and (not idempotent or failures >= MAX_SUBMIT_TRIES):
                raise attempt.unknown_submission(exc.message, exc.raw_response) from exc
            lost = lost or (exc.message if exc.request_sent else "")
            if failures >= MAX_SUBMIT_TRIES:
                _raise_unknown_if(attempt, lost, exc)
            yield from _wait_to_submit(attempt, min(backoff(failures), max(attempt.remaining(), 0)))
        except HTTPError as exc:
            failures += 1
            refused = exc.status_code == 429
            lost = lost or (exc.message if exc.status_code in GATEWAY_ANSWERS else "")
            if not (refused or (idempotent and exc.retryable)):
                _raise_unknown_if(attempt, lost, exc)
            delay = backoff(failures, exc.retry_after)
            if failures >= MAX_CONSECUTIVE_POLL_ERRORS or delay >= attempt.remaining():
                _raise_unknown_if(attempt, lost, exc)
            log.info("Submit to %s refused (%s); retrying in %.2fs", attempt.provider, exc.message, delay)
            yield from _wait_to_submit(attempt, delay)
        except TarashException as exc:
            _raise_unknown_if(attempt, lost, exc)
    submitted = expect_type(attempt, submitted, SubmittedJob, "submit", "submit ")
    attempt.job = JobRef(
        provider=attempt.provider,
        model=attempt.model,
        modality=attempt.modality,
        job_id=str(submitted.job_id),
        data=dict(submitted.data),
    )
    if attempt.ledger is not None:
        yield attempt.ledger.submitted(key, attempt.job)
    return attempt.job


def _wait_to_submit(attempt: Attempt, delay: float) -> rt.Flow[None]:
    """Wait ``delay`` seconds before the submit's next try, the claim on its intent renewed first
    (a status write): a wait longer than what is left of its lease would let ``resume()`` in
    another process take the intent for a lost submit and settle it while it is still to come."""
    if attempt.ledger is not None:
        attempt.ledger.status(attempt.ledger_key, "submitting", {"retry_in": round(delay, 3)})
    yield rt.Sleep(delay)


def _raise_unknown_if(attempt: Attempt, lost: str, error: TarashException) -> NoReturn:
    """Raise ``error``, the submit's end; UnknownSubmissionError instead when an earlier try may
    have created the job (``lost`` says why)."""
    if lost:
        raise attempt.unknown_submission(f"{lost}; sent again with its key, then {error.message}") from error
    raise error


def retrying(attempt: Attempt, hook: str, phase: Phase) -> rt.Flow[Any]:
    """A status/result flow for the attempt's job, retried on 429/5xx/connection errors until
    the deadline."""
    failures = 0
    while True:
        try:
            return (
                yield from run_flow(
                    attempt, hook, phase, config=attempt.config, job=attempt.job, context=attempt.context()
                )
            )
        except (HTTPError, HTTPConnectionError) as exc:
            if not exc.retryable:
                raise
            failures += 1
            retry_after = exc.retry_after if isinstance(exc, HTTPError) else None
            delay = backoff(failures, retry_after)
            if failures >= MAX_CONSECUTIVE_POLL_ERRORS:
                raise
            if delay >= attempt.remaining():
                if retry_after is not None:
                    # The provider asks for a wait past the deadline: fail fast with its answer
                    # (retryable, so a fallback can take over now).
                    raise
                raise attempt.timeout_error(f"{phase} still failing: {exc.message}") from exc
            log.info(
                "%s of job %s on %s failed (%s); retrying in %.2fs",
                phase,
                attempt.job.job_id if attempt.job else "?",
                attempt.provider,
                exc.message,
                delay,
            )
            yield rt.Sleep(delay)


def poll_status(attempt: Attempt) -> rt.Flow[JobStatus]:
    """One status call for the attempt's job (retried on transient errors), recorded in the ledger."""
    assert attempt.job is not None
    if not attempt.gateway.host.implements(attempt.provider, "status"):
        raise UnsupportedModalityError(attempt.provider, attempt.modality, "no status hook")
    status = yield from retrying(attempt, "status", "poll")
    status = expect_type(attempt, status, JobStatus, "poll", "status ")
    attempt.state = status.state
    if attempt.ledger is not None:
        attempt.ledger.status(
            attempt.ledger_key,
            status.state,
            {"queue_position": status.queue_position, "progress_percent": status.progress_percent},
        )
    return status


def raise_for_state(attempt: Attempt, status: JobStatus) -> None:
    """Raise the typed error for a failed or cancelled job; return for any other state."""
    assert attempt.job is not None
    if status.state == "failed":
        error = status.error or GenerationFailedError(
            f"{attempt.provider} reported the job failed",
            raw_response=dict(status.raw),
        )
        raise normalize(
            error, phase="poll", provider=attempt.provider, model=attempt.model, request_id=attempt.job.job_id
        )
    if status.state == "cancelled":
        attempt.cancel_status = attempt.cancel_status or "cancelled"
        raise JobCancelledError(
            f"Job {attempt.job.job_id} was cancelled at {attempt.provider}",
            provider=attempt.provider,
            model=attempt.model,
            request_id=attempt.job.job_id,
            phase="poll",
        )


def fetch_result(attempt: Attempt) -> rt.Flow[Any]:
    """Fetch a completed job's response (retried on transient errors) and check its type."""
    if not attempt.gateway.host.implements(attempt.provider, "result"):
        raise UnsupportedModalityError(attempt.provider, attempt.modality, "no result hook")
    response = yield from retrying(attempt, "result", "result")
    return check_response(attempt, response)


def still_ours(attempt: Attempt) -> rt.Flow[None]:
    """Before a completed job's result is collected: the check that this process still holds
    the job in a ledger where a live process can lose it (a worker whose hold lapsed looks dead
    to the fleet, and another may have taken the job over). One it lost is left to the worker
    that took it, which collects it: JobTakenOverError, nothing fetched here."""
    if attempt.ledger is None:
        return
    check = attempt.ledger.kept(attempt.ledger_key)
    if check is None or (yield check) is not False:
        return
    assert attempt.job is not None
    raise attempt.not_collected(
        f"Job {attempt.job.job_id} at {attempt.provider} completed, but another worker took over "
        "its collection while this process's hold on it in the job ledger had lapsed, so its "
        "result was not fetched here: one worker collects each job. It was NOT resubmitted and "
        "no fallback ran: error.handle.result() reads the result.",
        JobTakenOverError,
    )


def wait_phase(attempt: Attempt, sleep_first: float | None = None) -> rt.Flow[Any]:
    """Poll the attempt's job to a terminal state and fetch its result."""
    assert attempt.job is not None
    host = attempt.gateway.host
    if not (host.implements(attempt.provider, "status") and host.implements(attempt.provider, "result")):
        raise UnsupportedModalityError(attempt.provider, attempt.modality, "no status/result hooks")
    polls = 0
    wait = sleep_first
    job = attempt.job
    listen = attempt.context_webhook_url() is not None
    while True:
        if wait:
            remaining = attempt.remaining()
            if remaining <= 0:
                raise attempt.timeout_error(f"job still running after {polls} status checks")
            if listen:
                yield from sleep_or_event(job.provider, job.job_id, min(wait, remaining))
            else:
                yield rt.Sleep(min(wait, remaining))
        event = INBOX.get(job.provider, job.job_id) if listen else None
        if event is not None:
            return (yield from webhook_outcome(attempt, event))
        if attempt.remaining() <= 0:
            raise attempt.timeout_error(f"job still running after {polls} status checks")
        if polls >= attempt.config.max_poll_attempts:
            raise attempt.timeout_error(f"max_poll_attempts={attempt.config.max_poll_attempts} reached")
        status = yield from poll_status(attempt)
        polls += 1
        if status.state != "completed":
            yield from emit_status(attempt, status)
        raise_for_state(attempt, status)
        if status.state == "completed":
            break
        wait = status.poll_after if status.poll_after is not None else attempt.config.poll_interval
    yield from still_ours(attempt)
    return (yield from fetch_result(attempt))


def webhook_outcome(attempt: Attempt, event: WebhookEvent) -> rt.Flow[Any]:
    """End a wait on the job's terminal webhook event: its response read from the delivery
    (else one result call), or its typed error; no status poll."""
    assert attempt.job is not None
    attempt.state = event.state
    if attempt.ledger is not None:
        attempt.ledger.status(attempt.ledger_key, event.state, {"source": "webhook"})
    if event.state in ("failed", "cancelled"):
        error = GenerationFailedError(event.error or f"{attempt.provider} reported the job failed")
        raise_for_state(attempt, JobStatus(state=event.state, error=error, raw=dict(event.raw)))
    yield from still_ours(attempt)
    response = local_response(attempt.gateway.host, attempt.config, attempt.job, event)
    if response is None:
        return (yield from fetch_result(attempt))
    return check_response(attempt, response)


def announce_completed(attempt: Attempt, response: Any) -> rt.Flow[None]:
    """The last progress update, carrying the response the caller gets (provider, model and, from
    a generation, its execution metadata); the caller's callback raising here propagates as is."""
    try:
        yield from emit(attempt, make_update(attempt, "completed", progress_percent=100.0, result=response))
    except CallerError as exc:
        raise exc.original from None


def expect_type(attempt: Attempt, value: Any, expected: type[T], phase: Phase, hook: str = "") -> T:
    """A plugin returned the wrong type: a non-retryable GenerationFailedError naming both."""
    if not isinstance(value, expected):
        raise GenerationFailedError(
            f"{attempt.provider} {hook}returned {type(value).__name__}, expected {expected.__name__}",
            provider=attempt.provider,
            model=attempt.model,
            phase=phase,
            retryable=False,
            request_id=attempt.job.job_id if attempt.job else None,
        )
    return value


def check_response(attempt: Attempt, response: Any) -> Any:
    expected = VideoGenerationResponse if attempt.modality == "video" else ImageGenerationResponse
    return expect_type(attempt, response, expected, "result")


def blocking_phase(attempt: Attempt) -> rt.Flow[Any]:
    """A provider whose generation is one blocking call (``generate_*`` hooks, seed handlers).

    Its requests are a submit: once one may have reached the provider it is never re-sent.
    """
    hook = "generate_video" if attempt.modality == "video" else "generate_image"
    if not attempt.gateway.host.implements(attempt.provider, hook):
        raise UnsupportedModalityError(attempt.provider, attempt.modality)
    check_request(attempt)
    resolve_credentials(attempt)
    yield from guard_cost(attempt, run_flow)
    yield from record_intent(attempt)
    try:
        response = yield from run_flow(
            attempt, hook, "submit", config=attempt.config, request=attempt.request, context=attempt.context()
        )
    except HTTPConnectionError as exc:
        if exc.request_sent:
            raise attempt.unknown_submission(exc.message, exc.raw_response) from exc
        raise
    return check_response(attempt, response)
