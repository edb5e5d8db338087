"""One attempt at one provider: its state, credentials, progress updates, backoff."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs

from .. import _runtime as rt
from .. import _transport as transport
from .._cost import Cost
from .._errors import scrub_chain
from .._redact import get_logger, redact
from .._spend import attempt_cost
from ..exceptions import (
    HTTPConnectionError,
    MissingCredentialsError,
    Phase,
    ResultNotCollectedError,
    TarashException,
    TimeoutError,
    UnknownSubmissionError,
    ValidationError,
)
from ..models import (
    AttemptMetadata,
    ImageGenerationConfig,
    ImageGenerationRequest,
    ImageGenerationUpdate,
    StatusType,
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationUpdate,
)
from ..plugin import CallContext, JobRef, JobStatus, Modality, ProviderSpec

if TYPE_CHECKING:
    from .._gateway import Gateway

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "Attempt",
    "CallerError",
    "Ledger",
    "backoff",
    "check_pair",
    "emit",
    "emit_status",
    "make_update",
    "modality_of",
    "now_utc",
    "provider_for",
    "resolve_credentials",
    "submission_unknown",
]

log = get_logger("tarash.engine")


T = TypeVar("T")


BACKOFF_BASE = 0.5


BACKOFF_CAP = 30.0


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
    def released(self, key: str) -> rt.Record: ...
    def kept(self, key: str) -> rt.Record | None: ...
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

    def not_collected(
        self, message: str, kind: type[ResultNotCollectedError] = ResultNotCollectedError
    ) -> ResultNotCollectedError:
        """The error for the attempt's completed job whose result was not read here (``kind``
        says why), carrying what ``JobHandle.result()`` needs to read it later."""
        assert self.job is not None
        return kind(
            f"{message} Ledger key: {self.ledger_key}.",
            ledger_key=self.ledger_key,
            job=self.job,
            config=attrs.evolve(self.config, fallback_configs=None),
            provider=self.provider,
            model=self.model,
            request_id=self.job.job_id,
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


def resolve_credentials(attempt: Attempt) -> None:
    """The key for the attempt's provider: the config's, else ``api_key_env``, else the
    ``resolve_api_key`` hook; registered as a secret. MissingCredentialsError when the provider
    needs one and none is found (nothing is sent), the chain's cue to try its next config: a hook
    that raises found none (logged, and chained to the error), so a broken plugin stops no
    fallback."""
    if attempt.credentials_resolved:
        return
    attempt.ca_bundle, attempt.max_bytes = transport.options(attempt.config)
    spec = attempt.spec
    names = (spec.api_key_env, *spec.api_key_env_fallbacks) if spec.api_key_env else ()
    key = attempt.config.api_key or next((os.environ[n] for n in names if os.environ.get(n)), None)
    host = attempt.gateway.host
    failure: Exception | None = None
    if not key and spec.api_key_env and host.implements(attempt.provider, "resolve_api_key"):
        try:
            key = host.call(attempt.provider, "resolve_api_key", provider=attempt.provider)
        except Exception as exc:
            scrub_chain(exc)
            log.warning(
                "The %s plugin's resolve_api_key hook raised %s: %s; no key found",
                attempt.provider,
                type(exc).__name__,
                exc,
            )
            failure = exc
    if not key and spec.api_key_env:
        raise MissingCredentialsError(attempt.provider, spec.api_key_env) from failure
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


def provider_for(config: Any) -> str:
    mock = getattr(config, "mock", None)
    return "mock" if mock is not None and mock.enabled else str(config.provider)


def submission_unknown(error: BaseException | None) -> bool:
    """Whether a submit that raised ``error`` may still have created (and billed) a job."""
    if isinstance(error, UnknownSubmissionError):
        return True
    if isinstance(error, HTTPConnectionError):
        return error.request_sent
    return isinstance(error, TimeoutError) and error.phase == "submit"
