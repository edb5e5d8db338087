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
"""

from __future__ import annotations

import math
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs

from . import _caps as caps
from . import _runtime as rt
from . import _transport as transport
from ._budget import BudgetCheck
from ._cost import Cost
from ._errors import normalize
from ._handlers import Direct
from ._inbox import INBOX, local_response, sleep_or_event
from ._redact import get_logger, redact
from ._spend import attempt_cost, charged, guard_cost, record_usage
from ._wire import Request
from .exceptions import (
    CancelUnconfirmedError,
    CostLimitExceededError,
    GenerationFailedError,
    HTTPConnectionError,
    HTTPError,
    JobCancelledError,
    MissingCredentialsError,
    Phase,
    ResultNotCollectedError,
    TarashException,
    TimeoutError,
    UnknownSubmissionError,
    UnsupportedModalityError,
    ValidationError,
)
from .models import (
    AttemptMetadata,
    ExecutionMetadata,
    ImageGenerationConfig,
    ImageGenerationRequest,
    ImageGenerationResponse,
    ImageGenerationUpdate,
    MediaContent,
    StatusType,
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
    VideoGenerationUpdate,
    iter_fallback_chain,
)
from .plugin import CallContext, JobRef, JobStatus, Modality, ProviderSpec, SubmittedJob

if TYPE_CHECKING:
    from ._gateway import Gateway
    from .webhooks import WebhookEvent

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

log = get_logger("tarash.engine")
T = TypeVar("T")

MAX_SUBMIT_TRIES = 3
MAX_CONSECUTIVE_POLL_ERRORS = 10
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
CANCEL_GRACE_SECONDS = 10.0


class Ledger(Protocol):
    """Where core records a job's life (see ``tarash.tarash_gateway.jobs``): the writes a job
    must see done are returned as effects the drivers wait for, off the event loop for async
    callers; status updates are queued behind them, in order."""

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
        check: Any,
    ) -> rt.Record: ...
    def submitted(self, key: str, job: JobRef) -> rt.Record: ...
    def status(self, key: str, state: str, detail: Mapping[str, Any]) -> None: ...
    def cancel(self, key: str, detail: Mapping[str, Any]) -> rt.Record: ...
    def finished(self, key: str, state: str, *, result: Any = None, error: Any = None) -> rt.Record: ...
    def release(self, key: str) -> None: ...
    def cost(self, key: str, cost: Any) -> None: ...


def backoff(failures: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter; ``Retry-After`` wins when the provider gives one."""
    if retry_after is not None:
        return retry_after
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** max(failures - 1, 0)))
    return random.uniform(ceiling / 2, ceiling)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def modality_of(config: Any) -> Modality:
    if isinstance(config, VideoGenerationConfig):
        return "video"
    if isinstance(config, ImageGenerationConfig):
        return "image"
    raise ValidationError(
        f"config must be a VideoGenerationConfig or ImageGenerationConfig, got {type(config).__name__}",
        field="config",
        value=type(config).__name__,
    )


def check_pair(config: Any, request: Any, modality: Modality) -> None:
    expected = {
        "video": (VideoGenerationConfig, VideoGenerationRequest),
        "image": (ImageGenerationConfig, ImageGenerationRequest),
    }[modality]
    if not isinstance(config, expected[0]):
        raise ValidationError(
            f"{modality} generation needs a {expected[0].__name__}, got {type(config).__name__}",
            field="config",
            value=type(config).__name__,
        )
    if not isinstance(request, expected[1]):
        raise ValidationError(
            f"{modality} generation needs a {expected[1].__name__}, got {type(request).__name__}",
            field="request",
            value=type(request).__name__,
        )


@attrs.define
class Attempt:
    """Mutable state of one attempt, turned into AttemptMetadata when it ends."""

    gateway: Gateway
    config: Any
    request: Any
    modality: Modality
    number: int
    provider: str
    on_progress: Callable[[Any], Any] | None
    ledger: Ledger | None = None
    api_key: str | None = attrs.field(default=None, repr=False)
    ca_bundle: str | None = None
    max_bytes: int = transport.MAX_RESPONSE_BYTES
    credentials_resolved: bool = False
    ledger_key: str = attrs.field(factory=lambda: uuid.uuid4().hex)
    started_at: datetime = attrs.field(factory=now_utc)
    started_mono: float = attrs.field(factory=time.monotonic)
    deadline: float = 0.0
    job: JobRef | None = None
    phase: Phase = "validate"
    cancel_status: str | None = None
    cancel_error: str | None = None
    intent_recorded: bool = False
    state: str | None = None
    seen_logs: list[str] = attrs.field(factory=list)
    last_signature: tuple[Any, ...] | None = None
    limit: Decimal | None = None
    spent: Decimal = Decimal(0)
    estimate: Cost | None = None
    billed: Cost | None = None

    def __attrs_post_init__(self) -> None:
        if not self.deadline:
            self.deadline = self.started_mono + float(self.config.timeout)

    @property
    def model(self) -> str:
        return str(self.config.model)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started_mono

    @property
    def spec(self) -> ProviderSpec:
        return self.gateway.host.entry_plugin(self.provider)[0]

    @property
    def base_url(self) -> str:
        return str(self.config.base_url or self.spec.base_url or "")

    def context(self, idempotency_key: str = "") -> CallContext:
        resolve_credentials(self)
        return CallContext(
            provider=self.provider,
            modality=self.modality,
            timeout=max(self.remaining(), 0.001),
            attempt=self.number,
            idempotency_key=idempotency_key,
            base_url=self.base_url,
            api_key=self.api_key,
            webhook_url=self.context_webhook_url(),
        )

    def context_webhook_url(self) -> str | None:
        """The webhook URL the job is submitted with: ``config.webhook_url``, else the older
        ``provider_config["webhook_url"]``."""
        url = self.config.webhook_url or self.config.provider_config.get("webhook_url")
        return str(url) if url else None

    def unknown_submission(self, detail: str, raw_response: Any = None) -> UnknownSubmissionError:
        return UnknownSubmissionError(
            f"The submit to {self.provider} may have reached it but its answer was lost ({detail}). "
            f"It was NOT resubmitted: the job may exist and may be billed. "
            f"Submission key: {self.ledger_key}.",
            provider=self.provider,
            model=self.model,
            raw_response=raw_response,
        )

    def timeout_error(self, detail: str) -> TimeoutError:
        return TimeoutError(
            f"Generation did not finish within {self.config.timeout:g}s ({detail})",
            timeout_seconds=float(self.config.timeout),
            provider=self.provider,
            model=self.model,
            request_id=self.job.job_id if self.job else None,
            phase=self.phase,
        )

    def metadata(self, status: str, error: BaseException | None) -> AttemptMetadata:
        return AttemptMetadata(
            provider=self.provider,
            model=self.model,
            attempt_number=self.number,
            started_at=self.started_at,
            ended_at=now_utc(),
            status=status,  # type: ignore[arg-type]
            error_type=type(error).__name__ if error else None,
            error_message=str(error) if error else None,
            is_retryable=(error.retryable if isinstance(error, TarashException) else False)
            if error
            else None,
            request_id=self.job.job_id if self.job else None,
            phase=self.phase,
            cancel_status=self.cancel_status,  # type: ignore[arg-type]
            cancel_error=self.cancel_error,
            cost=attempt_cost(self, status, error, submission_unknown(error)),
        )


class CallerError(Exception):
    """Internal: the caller's callback raised; carries the original exception."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(repr(original))
        self.original = original


# ----------------------------------------------------------------------------------------------
# Helpers that yield effects
# ----------------------------------------------------------------------------------------------


def resolve_credentials(attempt: Attempt) -> None:
    """The key for the attempt's provider: the config's, else ``api_key_env``, else the
    ``resolve_api_key`` hook; registered as a secret. MissingCredentialsError when the provider
    needs one and none is found (nothing is sent)."""
    if attempt.credentials_resolved:
        return
    attempt.ca_bundle, attempt.max_bytes = transport.options(attempt.config)
    spec = attempt.spec
    names = (spec.api_key_env, *spec.api_key_env_fallbacks) if spec.api_key_env else ()
    key = attempt.config.api_key or next((os.environ[n] for n in names if os.environ.get(n)), None)
    host = attempt.gateway.host
    if not key and spec.api_key_env and host.implements(attempt.provider, "resolve_api_key"):
        key = host.call(attempt.provider, "resolve_api_key", provider=attempt.provider)
    if not key and spec.api_key_env:
        raise MissingCredentialsError(attempt.provider, spec.api_key_env)
    attempt.gateway.register_secret(key)
    attempt.api_key = key or None
    attempt.credentials_resolved = True


def make_update(attempt: Attempt, status: StatusType, **fields: Any) -> Any:
    cls = VideoGenerationUpdate if attempt.modality == "video" else ImageGenerationUpdate
    return cls(
        request_id=attempt.job.job_id if attempt.job else attempt.ledger_key,
        status=status,
        attempt=attempt.number,
        provider=attempt.provider,
        model=attempt.model,
        elapsed_seconds=round(attempt.elapsed(), 3),
        **fields,
    )


def emit(attempt: Attempt, update: Any) -> rt.Flow[None]:
    """Deliver ``update`` to observers and to the caller's callback."""
    attempt.gateway.host.notify("progress_reported", update=update)
    if attempt.on_progress is None:
        return
    try:
        yield rt.Emit(attempt.on_progress, update)
    except rt.CallerCallbackError as exc:
        raise CallerError(exc.original) from None


def emit_status(attempt: Attempt, status: JobStatus) -> rt.Flow[None]:
    if attempt.on_progress is None and not attempt.gateway.host.observed("progress_reported"):
        return  # nobody listens: no update to build (nor a raw answer to redact)
    logs = list(status.logs)
    if logs[: len(attempt.seen_logs)] == attempt.seen_logs and attempt.seen_logs:
        new_logs = logs[len(attempt.seen_logs) :]
        attempt.seen_logs = logs
    else:
        new_logs = logs
        attempt.seen_logs = attempt.seen_logs + logs
    states: dict[str, StatusType] = {"queued": "queued", "processing": "processing", "completed": "completed"}
    state = states.get(status.state, "failed")
    signature = (state, status.queue_position, status.progress_percent)
    if signature == attempt.last_signature and not new_logs:
        return
    attempt.last_signature = signature
    percent = _percent(status.progress_percent)
    position = status.queue_position
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        position = None
    yield from emit(
        attempt,
        make_update(
            attempt,
            state,
            progress_percent=percent,
            queue_position=position,
            logs=tuple(new_logs),
            update=redact(dict(status.raw)),
        ),
    )


def _percent(value: Any) -> float | None:
    """A provider's percentage clamped to 0-100; anything that is not a finite number is dropped."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return min(max(float(value), 0.0), 100.0)


def run_flow(attempt: Attempt, hook: str, phase: Phase, **kwargs: Any) -> rt.Flow[Any]:
    """Run the provider's ``hook`` flow: send each request it yields through core's transport,
    throw each error answer into it, and map whatever it raises to a typed TarashException."""
    attempt.phase = phase
    context = kwargs["context"]
    sent = False
    flow = None
    try:
        flow = attempt.gateway.host.flow(attempt.provider, hook, **kwargs)
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(reply)
            except StopIteration as stop:
                return stop.value
            reply, error = None, None
            if isinstance(step, Direct):
                try:
                    reply = yield from _direct(attempt, step, phase)
                except (CallerError, TarashException):
                    raise
                except Exception as exc:
                    error = exc
                continue
            prepared = _prepare(attempt, step, context)
            if attempt.remaining() <= 0:
                raise _deadline(attempt, phase, sent)
            budget = attempt.remaining()
            limit = budget if step.timeout is None else min(step.timeout, budget)
            try:
                response = yield rt.Send(attempt.gateway.transport, prepared, limit)
            except transport.DeadlineReached:
                if limit >= budget:
                    raise _deadline(attempt, phase, sent or not step.idempotent) from None
                sent = sent or not step.idempotent
                error = HTTPConnectionError(
                    f"no answer within the request's {limit:g}s", request_sent=not step.idempotent
                )
                continue
            except transport.AnswerTooLarge as exc:
                if phase == "submit" and not step.idempotent:
                    raise attempt.unknown_submission(exc.message) from None
                raise
            except HTTPConnectionError as exc:
                if step.idempotent and exc.request_sent:
                    exc = HTTPConnectionError(
                        f"{exc.message} (a request that creates nothing: safe to send again)",
                        request_sent=False,
                    )
                sent = sent or exc.request_sent
                error = exc
                continue
            except TarashException:
                raise
            except Exception:
                sent = sent or not step.idempotent  # failed mid-exchange; the transport did not map it
                raise
            sent = sent or not step.idempotent
            if response.status_code >= 400:
                error = transport.http_error(response, attempt.provider)
            else:
                reply = response
    except (CallerError, GeneratorExit):
        raise
    except TarashException as exc:
        if isinstance(exc, HTTPError):
            exc.response = None
        # Re-raised as it is: a plugin's own TarashException keeps the cause the plugin gave it.
        raise _located(attempt, exc, phase)  # noqa: B904
    except Exception as exc:
        if phase == "submit" and sent:
            raise attempt.unknown_submission(
                f"its answer could not be read: {type(exc).__name__}: {exc}"
            ) from exc
        # normalize() makes ``exc`` the typed error's __cause__ (scrubbed of secrets).
        raise _located(attempt, exc, phase)  # noqa: B904
    finally:
        if flow is not None:
            flow.close()


#: The phase each flow hook runs in.
#: The phase of each hook (the status hook runs in the poll phase).
PHASES: dict[str, Phase] = {
    "submit": "submit",
    "status": "poll",
    "result": "result",
    "cancel": "cancel",
    "generate_video": "submit",
    "generate_image": "submit",
}


def hook_flow(
    gateway: Gateway,
    hook: str,
    config: Any,
    *,
    modality: Modality,
    request: Any = None,
    job: JobRef | None = None,
) -> rt.Flow[Any]:
    """One hook's flow, alone: no polling, retries, ledger or fallbacks (tests and tools)."""
    attempt = Attempt(
        gateway=gateway,
        config=config,
        request=request,
        modality=modality,
        number=1,
        provider=provider_for(config),
        on_progress=None,
        job=job,
    )
    subject = {"job": job} if job is not None else {"request": request}
    return (
        yield from run_flow(attempt, hook, PHASES[hook], config=config, context=attempt.context(), **subject)
    )


def standalone_flow(
    gateway: Gateway, flow: Any, label: str, *, timeout: float, ca_bundle: str | None = None
) -> rt.Flow[Any]:
    """A flow that belongs to no generation (a webhook key fetch, a schema download): its
    requests go to absolute URLs without a key, through the gateway's transport, within
    ``timeout``; error answers are thrown into it as ``HTTPError``."""
    deadline = time.monotonic() + timeout
    reply: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(reply)
            except StopIteration as stop:
                return stop.value
            reply, error = None, None
            prepared = transport.prepare(
                step,
                provider=label,
                base_url="",
                api_key=None,
                auth_header="",
                auth_scheme="",
                ca_bundle=ca_bundle,
            )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{label} did not answer within {timeout:g}s", timeout_seconds=timeout)
            try:
                response = yield rt.Send(gateway.transport, prepared, remaining)
            except HTTPConnectionError as exc:
                error = exc
                continue
            if response.status_code >= 400:
                error = transport.http_error(response, label)
            else:
                reply = response
    finally:
        flow.close()


def _located(attempt: Attempt, exc: BaseException, phase: Phase) -> TarashException:
    """``exc`` as a typed error with phase, provider, model and job id (keeping a plugin's own
    cause; a foreign exception becomes the typed error's ``__cause__``)."""
    return normalize(
        exc,
        phase=phase,
        provider=attempt.provider,
        model=attempt.model,
        request_id=attempt.job.job_id if attempt.job else None,
    )


def _deadline(attempt: Attempt, phase: Phase, sent: bool) -> TarashException:
    if phase == "submit" and sent:
        return attempt.unknown_submission(f"no answer within the {attempt.config.timeout:g}s deadline")
    return attempt.timeout_error(f"no answer to {phase} before the deadline")


def _prepare(attempt: Attempt, step: Any, context: CallContext) -> transport.Prepared:
    if not isinstance(step, Request):
        raise GenerationFailedError(
            f"{attempt.provider} plugin's flow yielded {type(step).__name__}, expected a Request",
            retryable=False,
        )
    spec = attempt.spec
    return transport.prepare(
        step,
        provider=attempt.provider,
        base_url=context.base_url,
        api_key=attempt.api_key,
        auth_header=spec.auth_header,
        auth_scheme=spec.auth_scheme,
        ca_bundle=attempt.ca_bundle,
        max_bytes=attempt.max_bytes,
    )


def _direct(attempt: Attempt, step: Direct, phase: Phase) -> rt.Flow[Any]:
    """A call into code that does its own I/O (seed handlers, the escape hatch)."""
    kwargs = dict(step.kwargs)
    relay = _ProgressRelay(attempt) if step.progress else None
    if step.progress:
        kwargs["on_progress"] = relay if attempt.on_progress else None
    try:
        result = yield rt.Call(step.sync, step.async_, kwargs, timeout=attempt.remaining())
    except rt.DeadlineExceeded:
        if relay is not None and relay.raised is not None:
            raise CallerError(relay.raised) from None
        raise _deadline(attempt, phase, True) from None
    except Exception:
        if relay is not None and relay.raised is not None:
            raise CallerError(relay.raised) from None
        raise
    if relay is not None and relay.raised is not None:
        raise CallerError(relay.raised)
    return result


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


# ----------------------------------------------------------------------------------------------
# Phases
# ----------------------------------------------------------------------------------------------


def check_request(attempt: Attempt) -> None:
    """Refuse, before anything is recorded or sent, a request no provider should receive.

    * a prompt of only white space, or an empty prompt with no image or video to work from;
    * ``extra_params`` that would override a unified field (``prompt``) or the provider field a
      set unified field is mapped to (``duration`` for ``duration_seconds``), or that hold a value
      no provider can be sent (not JSON, not a finite number);
    * text that cannot be sent as UTF-8 JSON (a lone surrogate).
    """
    request = attempt.request
    prompt = request.prompt
    media = bool(request.image_list) or getattr(request, "video", None) is not None
    if prompt.strip() == "" and (prompt != "" or not media):
        raise ValidationError(
            "prompt is empty"
            + (" (only white space)" if prompt else "")
            + ": give a prompt, or an image or video for the model to work from",
            field="prompt",
            value=prompt,
        )
    extras = dict(request.extra_params)
    unified = {a.name for a in attrs.fields(type(request))} - {"extra_params"}
    clash = sorted(unified & set(extras))
    if clash:
        raise ValidationError(
            f"extra_params[{clash[0]!r}] would override the unified field {clash[0]}: set "
            f"{clash[0]}=... on the request instead",
            field=f"extra_params.{clash[0]}",
            value=extras[clash[0]],
        )
    _prefix, mappers = attempt.gateway.host.resolve_field_mappers(attempt.provider, attempt.model)
    for api_field, mapper in sorted((mappers or {}).items()):
        source = getattr(mapper, "source_field", None)
        if api_field in extras and source and getattr(request, source, None) not in (None, [], ()):
            raise ValidationError(
                f"extra_params[{api_field!r}] would override {source}, which {attempt.provider} "
                f"sends as {api_field!r}: set one of them, not both",
                field=f"extra_params.{api_field}",
                value=extras[api_field],
            )
    _plain_json(extras, "extra_params")
    _utf8(request, "request")


def _plain_json(value: Any, path: str) -> None:
    """Raise ValidationError naming the first value in ``extra_params`` no provider can be sent:
    a number that is not finite, or an object that is not JSON, media or a URL."""
    pending: list[tuple[Any, str]] = [(value, path)]
    while pending:
        item, where = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValidationError(f"{where} must be a finite number, got {item!r}", field=where, value=item)
        if isinstance(item, Mapping):
            pending.extend((entry, f"{where}.{key}") for key, entry in item.items())
        elif isinstance(item, (list, tuple)):
            pending.extend((entry, f"{where}[{index}]") for index, entry in enumerate(item))
        elif not (item is None or isinstance(item, (str, bool, int, float, MediaContent))):
            raise ValidationError(
                f"{where} cannot be sent: {type(item).__name__} is not JSON (use a URL, MediaContent "
                "or plain JSON values)",
                field=where,
                value=type(item).__name__,
            )


def _utf8(value: Any, path: str) -> None:
    """Raise ValidationError naming the first text in ``value`` that UTF-8 cannot encode (walked
    without recursion: values may nest deeply)."""
    pending: list[tuple[Any, str]] = [(value, path)]
    seen: set[int] = set()
    while pending:
        item, where = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValidationError(
                    f"{where} cannot be sent: {exc.reason} at position {exc.start}",
                    field=where.removeprefix("request."),
                    value=None,
                ) from None
            continue
        if id(item) in seen:
            continue
        seen.add(id(item))
        if attrs.has(type(item)):
            pending.extend((getattr(item, f.name), f"{where}.{f.name}") for f in attrs.fields(type(item)))
        elif isinstance(item, Mapping):
            for key, entry in item.items():
                pending.extend(((key, f"{where}.{key}"), (entry, f"{where}.{key}")))
        elif isinstance(item, (list, tuple)):
            pending.extend((entry, f"{where}[{index}]") for index, entry in enumerate(item))


def record_intent(attempt: Attempt) -> rt.Flow[None]:
    """Write the submit intent to the ledger (before anything is sent; fails closed)."""
    if attempt.ledger is not None:
        yield attempt.ledger.intent(
            attempt.ledger_key,
            provider=attempt.provider,
            model=attempt.model,
            modality=attempt.modality,
            config=attempt.config,
            request=attempt.request,
            cost=attempt.estimate,
            check=BudgetCheck(attempt, attempt.estimate),
        )
        attempt.intent_recorded = True


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
    while True:
        if attempt.remaining() <= 0:
            raise attempt.timeout_error("deadline passed before submit")
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
            if exc.request_sent and not idempotent:
                raise attempt.unknown_submission(exc.message, exc.raw_response) from exc
            if failures >= MAX_SUBMIT_TRIES:
                raise
            yield rt.Sleep(min(backoff(failures), max(attempt.remaining(), 0)))
        except HTTPError as exc:
            failures += 1
            refused = exc.status_code == 429
            if not (refused or (idempotent and exc.retryable)):
                raise
            delay = backoff(failures, exc.retry_after)
            if failures >= MAX_CONSECUTIVE_POLL_ERRORS or delay >= attempt.remaining():
                raise
            log.info("Submit to %s refused (%s); retrying in %.2fs", attempt.provider, exc.message, delay)
            yield rt.Sleep(delay)
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


class _ProgressRelay:
    """The on_progress handed to blocking hooks: annotates updates and tracks caller errors."""

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt
        self.raised: BaseException | None = None

    def __call__(self, update: Any) -> Any:
        attempt = self.attempt
        try:
            update = attrs.evolve(
                update, attempt=attempt.number, provider=attempt.provider, model=attempt.model
            )
        except (TypeError, AttributeError):
            pass
        attempt.gateway.host.notify("progress_reported", update=update)
        callback = attempt.on_progress
        assert callback is not None
        if rt.is_async_fn(callback):
            return self._guard_async(callback(update))
        try:
            callback(update)
        except BaseException as exc:
            self.raised = exc
            raise
        return _Done()

    async def _guard_async(self, awaitable: Any) -> None:
        try:
            await awaitable
        except BaseException as exc:
            self.raised = exc
            raise


class _Done:
    """An already-finished awaitable, so handlers may ``await on_progress(u)`` or not."""

    def __await__(self) -> Any:
        return iter(())


# ----------------------------------------------------------------------------------------------
# Attempts and chains
# ----------------------------------------------------------------------------------------------


def provider_for(config: Any) -> str:
    mock = getattr(config, "mock", None)
    return "mock" if mock is not None and mock.enabled else str(config.provider)


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
        # KeyboardInterrupt or task cancellation: stop the paid job before leaving.
        yield from cancel_job(attempt, "interrupted")
        if attempt.cancel_status == "cancelled":
            yield from ledger_finish(attempt, "cancelled")
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
    return ResultNotCollectedError(
        f"Job {attempt.job.job_id} at {attempt.provider} completed (it is billed) but its result "
        f"could not be read ({cause.message}). It was NOT resubmitted and no fallback ran: collect "
        f"it with error.handle.result() or resume(). Ledger key: {attempt.ledger_key}.",
        ledger_key=attempt.ledger_key,
        job=attempt.job,
        config=attrs.evolve(attempt.config, fallback_configs=None),
        provider=attempt.provider,
        model=attempt.model,
        request_id=attempt.job.job_id,
    )


def plan_attempts(
    gateway: Gateway,
    config: Any,
    request: Any,
    modality: Modality,
    on_progress: Callable[[Any], Any] | None,
) -> tuple[list[Any], Iterator[Attempt]]:
    """The fallback chain and a lazy iterator of its attempts (each starts its clock when made)."""
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
            limit=config.max_cost,
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
            if not job_left_for_resume(attempt, exc.original):
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
            if not job_left_for_resume(attempt, exc):
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


def job_left_for_resume(attempt: Attempt, error: BaseException) -> bool:
    """A job that may still run or hold a paid result stays unfinished in the ledger, released
    for ``resume()`` (here or in another process): a completed job whose result was not read, or
    one whose cancel is unconfirmed."""
    left = isinstance(error, ResultNotCollectedError) or attempt.cancel_status == "failed"
    if left and attempt.ledger is not None:
        attempt.ledger.release(attempt.ledger_key)
    return left


def holds_the_fallback(attempt: Attempt) -> bool:
    """The attempt's job may still run (its cancel is unconfirmed) and the config does not allow
    paying for a second job meanwhile."""
    return attempt.cancel_status == "failed" and not attempt.config.fallback_on_unconfirmed_cancel


def cancel_unconfirmed(attempt: Attempt, cause: TarashException) -> CancelUnconfirmedError:
    assert attempt.job is not None
    return CancelUnconfirmedError(
        f"Job {attempt.job.job_id} at {attempt.provider} was abandoned ({type(cause).__name__}: "
        f"{cause.message}) but its cancel was not confirmed ({attempt.cancel_error}), so the "
        "fallback was NOT started: two jobs would be billed. resume() retries the cancel, or collects "
        "the result if the job completed; fallback_on_unconfirmed_cancel=True falls back anyway. "
        f"Ledger key: {attempt.ledger_key}.",
        provider=attempt.provider,
        model=attempt.model,
        request_id=attempt.job.job_id,
        phase="cancel",
    )


def submission_unknown(error: BaseException | None) -> bool:
    """Whether a submit that raised ``error`` may still have created (and billed) a job."""
    if isinstance(error, UnknownSubmissionError):
        return True
    if isinstance(error, HTTPConnectionError):
        return error.request_sent
    return isinstance(error, TimeoutError) and error.phase == "submit"


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
    if cost is not None:
        attempt.ledger.cost(attempt.ledger_key, cost)
    yield attempt.ledger.finished(attempt.ledger_key, state, result=result, error=error)
