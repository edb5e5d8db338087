"""Core orchestration: fallback chains, per-phase retries, deadlines that cancel, progress.

Written once as effect-yielding generators (see ``_runtime``) and shared by the sync and async
APIs and by job handles. The rules, per attempt:

* **submit** is retried only when the request provably never reached the provider
  (``HTTPConnectionError(request_sent=False)``), or when the provider honours idempotency keys.
  A submit whose answer was lost raises ``UnknownSubmissionError`` and is never resubmitted.
* **status** and **result** calls are retried on 429/5xx/connection errors with exponential
  backoff and full jitter, honouring ``Retry-After``; they resume the same job.
* **deadline**: ``config.timeout`` bounds the attempt (submit + wait + result). On expiry the
  remote job is cancelled (when the provider can), the cancel is recorded and ``TimeoutError``
  raised. A job abandoned for a fallback is cancelled first, too.
* **progress**: updates go to the caller's callback (sync or async) and to observer hooks. If the
  caller's callback raises, the remote job is cancelled and that exception propagates unchanged:
  it is never a provider failure and never triggers a fallback.

Its modules, bottom up: ``attempt``, ``flows``, ``checks``, ``phases``, ``chain``; each imports
only those before it.
"""

from __future__ import annotations

from .attempt import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    Attempt,
    CallerError,
    Ledger,
    backoff,
    check_pair,
    emit,
    emit_status,
    make_update,
    modality_of,
    now_utc,
    provider_for,
    resolve_credentials,
    submission_unknown,
)
from .chain import (
    cancel_unconfirmed,
    capped_attempt,
    holds_the_fallback,
    job_left_for_resume,
    ledger_finish,
    plan_attempts,
    result_not_collected,
    run_attempt,
    run_chain,
    submit_job,
)
from .checks import check_request, record_intent
from .flows import PHASES, hook_flow, run_flow, standalone_flow
from .phases import (
    CANCEL_GRACE_SECONDS,
    MAX_CONSECUTIVE_POLL_ERRORS,
    MAX_SUBMIT_TRIES,
    blocking_phase,
    cancel_job,
    check_response,
    expect_type,
    fetch_result,
    poll_status,
    raise_for_state,
    retrying,
    submit_phase,
    wait_phase,
    webhook_outcome,
)
from .phases import announce_completed as announce_completed

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "CANCEL_GRACE_SECONDS",
    "MAX_CONSECUTIVE_POLL_ERRORS",
    "MAX_SUBMIT_TRIES",
    "PHASES",
    "Attempt",
    "CallerError",
    "Ledger",
    "backoff",
    "blocking_phase",
    "cancel_job",
    "cancel_unconfirmed",
    "capped_attempt",
    "check_pair",
    "check_request",
    "check_response",
    "emit",
    "emit_status",
    "expect_type",
    "fetch_result",
    "holds_the_fallback",
    "hook_flow",
    "job_left_for_resume",
    "ledger_finish",
    "make_update",
    "modality_of",
    "now_utc",
    "plan_attempts",
    "poll_status",
    "provider_for",
    "raise_for_state",
    "record_intent",
    "resolve_credentials",
    "result_not_collected",
    "retrying",
    "run_attempt",
    "run_chain",
    "run_flow",
    "standalone_flow",
    "submission_unknown",
    "submit_job",
    "submit_phase",
    "wait_phase",
    "webhook_outcome",
]
