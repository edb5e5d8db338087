"""An attempt from submit to result, and the fallback chain around attempts: which errors
hand over to the next provider and which jobs hold the fallback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import attrs

from .. import _caps as caps
from .. import _runtime as rt
from .._spend import attempt_cost, charged, record_usage
from ..exceptions import (
    CancelUnconfirmedError,
    CostLimitExceededError,
    HTTPConnectionError,
    HTTPError,
    JobCancelledError,
    MissingCredentialsError,
    ResultNotCollectedError,
    TarashException,
    TimeoutError,
    UnsupportedModalityError,
    ValidationError,
)
from ..models import (
    AttemptMetadata,
    ExecutionMetadata,
    iter_fallback_chain,
)
from ..plugin import Modality

if TYPE_CHECKING:
    from .._gateway import Gateway
from .attempt import (
    Attempt,
    CallerError,
    check_pair,
    emit,
    log,
    make_update,
    provider_for,
    submission_unknown,
)
from .checks import check_request
from .phases import announce_completed, blocking_phase, cancel_job, submit_phase, wait_phase

__all__ = [
    "cancel_unconfirmed",
    "capped_attempt",
    "holds_the_fallback",
    "job_left_for_resume",
    "ledger_finish",
    "plan_attempts",
    "result_not_collected",
    "run_attempt",
    "run_chain",
    "submit_job",
]


def run_attempt(attempt: Attempt) -> rt.Flow[Any]:
    """One attempt: validate provider/modality, then lifecycle or blocking path.

    A job that exists when the attempt fails is cancelled (unless it already ended); a job the
    provider reported completed whose result could not be read (5xx, connection, deadline) is
    paid for, so it is kept for collection (``ResultNotCollectedError``), never abandoned for a
    fallback. A result that says the job failed (no output, refused content) is that failure.
    """
    if attempt.modality not in attempt.spec.modalities:
        raise UnsupportedModalityError(
            attempt.provider, attempt.modality, attempt.spec.unsupported.get(attempt.modality)
        )
    if not attempt.gateway.host.implements(attempt.provider, "submit"):
        return (yield from blocking_phase(attempt))
    try:
        yield from submit_phase(attempt)
        yield from emit(attempt, make_update(attempt, "queued"))
        return (yield from wait_phase(attempt))
    except CallerError:
        yield from cancel_job(attempt, "the progress callback raised")
        raise
    except TarashException as exc:
        if attempt.job is None or isinstance(exc, JobCancelledError):
            raise
        if attempt.state == "completed" and _transient(exc):
            raise result_not_collected(attempt, exc) from exc
        if attempt.state not in ("completed", "failed", "cancelled"):  # nothing left to stop
            yield from cancel_job(attempt, f"{type(exc).__name__} in {exc.phase}")
        raise
    except GeneratorExit:
        raise
    except BaseException:
        # KeyboardInterrupt or task cancellation: stop the paid job before leaving; one whose
        # cancel is not confirmed is released for resume() (here or in another process).
        yield from cancel_job(attempt, "interrupted")
        if attempt.cancel_status == "cancelled":
            yield from ledger_finish(attempt, "cancelled")
        elif attempt.ledger is not None and attempt.job is not None:
            yield attempt.ledger.released(attempt.ledger_key)
        raise


def capped_attempt(attempt: Attempt) -> rt.Flow[Any]:
    """:func:`run_attempt` holding the attempt's concurrency slots (``_caps``); a request no
    provider should receive is refused first, without waiting for a slot."""
    gates = attempt.gateway.caps.gates(attempt.provider, attempt.model)
    if not gates:
        return (yield from run_attempt(attempt))
    check_request(attempt)
    return (yield from caps.holding(attempt, gates, run_attempt(attempt)))


def _transient(error: TarashException) -> bool:
    """A failure to read an answer (not an answer saying the job failed or is refused)."""
    if isinstance(error, HTTPError):
        return error.retryable
    return isinstance(error, (HTTPConnectionError, TimeoutError))


def result_not_collected(attempt: Attempt, cause: TarashException) -> ResultNotCollectedError:
    """The typed error for a completed job whose result could not be read; the ledger keeps it
    as completed and unfinished, for ``resume()`` and ``JobHandle.result()``."""
    assert attempt.job is not None
    if attempt.ledger is not None:
        attempt.ledger.status(attempt.ledger_key, "completed", {"result": "not collected"})
    return attempt.not_collected(
        f"Job {attempt.job.job_id} at {attempt.provider} completed (it is billed) but its result "
        f"could not be read ({cause.message}). It was NOT resubmitted and no fallback ran: collect "
        "it with error.handle.result() or resume()."
    )


def plan_attempts(
    gateway: Gateway,
    config: Any,
    request: Any,
    modality: Modality,
    on_progress: Callable[[Any], Any] | None,
) -> tuple[list[Any], Iterator[Attempt]]:
    """The fallback chain and a lazy iterator of its attempts (each starts its clock when made).
    Each attempt's cost limit is the stricter of the call's ``max_cost`` and its own config's."""
    check_pair(config, request, modality)
    chain = list(iter_fallback_chain(config))
    ledger = gateway.ledger()
    attempts = (
        Attempt(
            gateway=gateway,
            config=cfg,
            request=request,
            modality=modality,
            number=number,
            provider=provider_for(cfg),
            on_progress=on_progress,
            ledger=ledger,
            limit=min((cap for cap in (config.max_cost, cfg.max_cost) if cap is not None), default=None),
        )
        for number, cfg in enumerate(chain, start=1)
    )
    return chain, attempts


def submit_job(gateway: Gateway, config: Any, request: Any, modality: Modality) -> rt.Flow[Attempt]:
    """Submit only, walking the fallback chain until a submit is accepted; the attempt holds the job.

    The same submit rules as :func:`run_chain` (a submit whose answer was lost is never resent); a
    retryable submit failure moves on to the next config. Providers without lifecycle hooks cannot
    hand out a job and are skipped.
    """
    chain, attempts = plan_attempts(gateway, config, request, modality, None)
    for number, attempt in enumerate(attempts, start=1):
        try:
            if modality not in attempt.spec.modalities:
                raise UnsupportedModalityError(attempt.provider, modality)
            if not gateway.host.implements(attempt.provider, "submit"):
                raise UnsupportedModalityError(
                    attempt.provider, modality, "no submit hook: it cannot hand out a job"
                )
            yield from submit_phase(attempt)
        except (UnsupportedModalityError, MissingCredentialsError):
            if number == len(chain):
                raise
            continue
        except TarashException as exc:
            yield from ledger_finish(attempt, "failed", error=exc)
            if not exc.retryable or number == len(chain):
                raise
            log.info("Submit %d (%s/%s) failed: %s", number, attempt.provider, attempt.model, exc)
            continue
        return attempt
    raise AssertionError("unreachable: the chain has at least one config")


def run_chain(
    gateway: Gateway,
    config: Any,
    request: Any,
    modality: Modality,
    on_progress: Callable[[Any], Any] | None,
) -> rt.Flow[Any]:
    """Depth-first fallback chain with ExecutionMetadata on the response or the final error."""
    if on_progress is not None and not callable(on_progress):
        raise ValidationError(
            f"on_progress must be a function or coroutine function, got {type(on_progress).__name__}",
            field="on_progress",
            value=type(on_progress).__name__,
        )
    chain, attempts = plan_attempts(gateway, config, request, modality, on_progress)
    records: list[AttemptMetadata] = []

    def finish(successful: int | None) -> ExecutionMetadata:
        return ExecutionMetadata(
            total_attempts=len(records),
            successful_attempt=successful,
            attempts=tuple(records),
            fallback_triggered=len(records) > 1,
            configs_in_chain=len(chain),
        )

    for number, attempt in enumerate(attempts, start=1):
        gateway.host.notify(
            "attempt_started",
            provider=attempt.provider,
            model=attempt.model,
            modality=modality,
            attempt=number,
        )
        attempt.spent = charged(records)
        try:
            response = yield from capped_attempt(attempt)
        except CallerError as exc:
            meta = attempt.metadata("failed", exc.original)
            records.append(meta)
            gateway.host.notify("attempt_finished", metadata=meta, error=exc.original)
            if not (yield from job_left_for_resume(attempt, exc.original)):
                yield from ledger_finish(attempt, "failed", error=exc.original)
            raise exc.original from None
        except (UnsupportedModalityError, MissingCredentialsError, CostLimitExceededError) as exc:
            meta = attempt.metadata("skipped", exc)
            records.append(meta)
            gateway.host.notify("attempt_finished", metadata=meta, error=exc)
            if number == len(chain):
                exc.execution_metadata = finish(None)
                raise
            continue
        except TarashException as exc:
            meta = attempt.metadata("failed", exc)
            records.append(meta)
            gateway.host.notify("attempt_finished", metadata=meta, error=exc)
            if not (yield from job_left_for_resume(attempt, exc)):
                yield from ledger_finish(attempt, "failed", error=exc)
            log.info("Attempt %d (%s/%s) failed: %s", number, attempt.provider, attempt.model, exc)
            if exc.retryable and number < len(chain) and holds_the_fallback(attempt):
                stopped = cancel_unconfirmed(attempt, exc)
                stopped.execution_metadata = finish(None)
                raise stopped from exc
            if not exc.retryable or number == len(chain):
                exc.execution_metadata = finish(None)
                raise
            continue
        record_usage(attempt, response)
        meta = attempt.metadata("success", None)
        records.append(meta)
        response = attrs.evolve(
            response,
            execution_metadata=finish(number),
            provider=response.provider or attempt.provider,
            model=response.model or attempt.model,
        )
        yield from ledger_finish(attempt, "completed", result=response)
        if attempt.job is not None:
            yield from announce_completed(attempt, response)
        gateway.host.notify("attempt_finished", metadata=meta, error=None)
        return response
    raise AssertionError("unreachable: the chain has at least one config")


#: The outcomes of a cancel after which the abandoned job may still run (``failed``: the cancel
#: was not confirmed; ``unsupported``: the provider has none) or may hold a paid result
#: (``finished``: it had ended, perhaps completed).
_UNSETTLED = frozenset({"failed", "unsupported", "finished"})


def job_left_for_resume(attempt: Attempt, error: BaseException) -> rt.Flow[bool]:
    """A job that may still run or hold a paid result stays unfinished in the ledger, released
    for ``resume()`` (here or in another process): a completed job whose result was not read, or
    one abandoned without a confirmed cancel (``_UNSETTLED``)."""
    left = isinstance(error, ResultNotCollectedError) or attempt.cancel_status in _UNSETTLED
    if left and attempt.ledger is not None:
        yield attempt.ledger.released(attempt.ledger_key)
    return left


def holds_the_fallback(attempt: Attempt) -> bool:
    """The attempt's job may still run or hold a paid result (``_UNSETTLED``) and the config
    does not allow paying for a second job meanwhile."""
    return attempt.cancel_status in _UNSETTLED and not attempt.config.fallback_on_unconfirmed_cancel


#: Why an abandoned job's cancel left it unsettled, by the cancel's outcome.
_UNSETTLED_BECAUSE = {
    "failed": "its cancel was not confirmed ({error}); resume() retries the cancel, or collects "
    "the result if the job completed",
    "unsupported": "the provider has no cancel, so it may run to completion and be billed; resume() "
    "collects its result",
    "finished": "the provider answered the cancel that the job had already ended: it may have "
    "completed and be billed; resume() collects its result",
}


def cancel_unconfirmed(attempt: Attempt, cause: TarashException) -> CancelUnconfirmedError:
    assert attempt.job is not None and attempt.cancel_status in _UNSETTLED
    because = _UNSETTLED_BECAUSE[attempt.cancel_status].format(error=attempt.cancel_error)
    return CancelUnconfirmedError(
        f"Job {attempt.job.job_id} at {attempt.provider} was abandoned ({type(cause).__name__}: "
        f"{cause.message}) but {because}. The fallback was NOT started: two jobs would be billed; "
        "fallback_on_unconfirmed_cancel=True falls back anyway. "
        f"Ledger key: {attempt.ledger_key}.",
        provider=attempt.provider,
        model=attempt.model,
        request_id=attempt.job.job_id,
        phase="cancel",
    )


def ledger_finish(attempt: Attempt, state: str, *, result: Any = None, error: Any = None) -> rt.Flow[None]:
    """Record the end of an attempt whose submit intent is in the ledger.

    An attempt that never learnt its job id ends ``unknown`` when the submit may have reached the
    provider (it may have been billed), ``failed`` when it provably did not.
    """
    if attempt.ledger is None or not attempt.intent_recorded:
        return
    if attempt.job is None and submission_unknown(error):
        state = "unknown"
    cost = attempt_cost(attempt, "success" if result is not None else "failed", error, state == "unknown")
    if cost is not None and cost is not attempt.estimate:  # the estimate came with the intent
        attempt.ledger.cost(attempt.ledger_key, cost)
    yield attempt.ledger.finished(attempt.ledger_key, state, result=result, error=error)
