"""Exceptions raised by Tarash.

The hierarchy::

    Exception
    └── TarashException                 provider, model, request_id, raw_response, phase
        ├── ValidationError             the request can never succeed as written (not retryable)
        │   ├── ProviderNotFoundError   no provider of that name is installed
        │   └── MissingCredentialsError the provider needs a key and none was found
        ├── ContentModerationError      the provider refused the content (not retryable)
        ├── HTTPError                   status_code; retryable for 408/409/429/5xx
        ├── HTTPConnectionError         the connection failed (retryable)
        ├── TimeoutError                timeout_seconds; the deadline passed (retryable)
        ├── GenerationFailedError       the provider ran the job and it failed (retryable)
        ├── JobCancelledError           the job was cancelled
        ├── UnknownSubmissionError      the submit may have reached the provider; nothing was resubmitted
        ├── UnsupportedModalityError    also a NotImplementedError, so seed-style code still catches it
        ├── ResultNotCollectedError     the job completed (it is billed) but its result was not read
        │   └── JobTakenOverError       ... here: another worker took over its collection
        ├── CancelUnconfirmedError      an abandoned job's cancel failed: no fallback was started
        ├── CostLimitExceededError      the expected cost exceeds max_cost: nothing was sent
        │   └── BudgetExceededError     ... or what is left of the gateway's budget for the period
        ├── LedgerError                 the job ledger is off, has no such job, or cannot record
        │   └── BudgetUnavailableError  a budget is set and cannot be checked: nothing was sent
        ├── JobNotFinishedError         JobHandle.result() before the job completed
        ├── ProviderConflictError       two distributions claim one provider name
        └── PluginLoadError             a plugin failed to import or to register

Every exception carries the :data:`Phase` it happened in (``"validate"``, ``"submit"``,
``"poll"``, ``"result"``, ``"cancel"``, or ``"download"`` for the media fetched after a result)
so retryability can be decided per phase, and its ``raw_response`` is
redacted and size-capped when the exception is built.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from ._redact import cap_raw_response, redact, redact_text

if TYPE_CHECKING:
    from .models import AttemptMetadata, ExecutionMetadata

__all__ = [
    "BudgetExceededError",
    "BudgetUnavailableError",
    "CancelUnconfirmedError",
    "ContentModerationError",
    "CostLimitExceededError",
    "GenerationFailedError",
    "HTTPConnectionError",
    "HTTPError",
    "InputUploadError",
    "JobCancelledError",
    "JobNotFinishedError",
    "JobTakenOverError",
    "LedgerError",
    "MissingCredentialsError",
    "OutputExpiredError",
    "Phase",
    "PluginLoadError",
    "ProviderConflictError",
    "ProviderNotFoundError",
    "ResultNotCollectedError",
    "TarashException",
    "TimeoutError",
    "UnknownSubmissionError",
    "UnsupportedModalityError",
    "ValidationError",
    "WebhookVerificationError",
    "is_retryable_error",
]

#: Where in a job's life an error happened. ``poll`` is every status call; ``download`` is
#: fetching the media of a result.
Phase = Literal["validate", "submit", "poll", "result", "cancel", "download"]

RETRYABLE_STATUS_CODES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class TarashException(Exception):
    """Base class of every error Tarash raises.

    Attributes:
        message: human readable description (secrets scrubbed).
        provider, model: the provider and model of the attempt that failed, when known.
        request_id: the provider's job id, when one exists.
        raw_response: the provider's answer, redacted and capped in size.
        phase: where it happened (a :data:`Phase`): validate, submit, poll, result, cancel or
            download.
        execution_metadata: set by core on the error that ends a generation: every attempt made.
    """

    retryable_default = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        request_id: str | None = None,
        raw_response: Any = None,
        phase: Phase | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.message = redact_text(str(message))
        self.provider = provider
        self.model = model
        self.request_id = request_id
        self.raw_response = cap_raw_response(raw_response)
        self.phase = phase
        self._retryable = retryable
        self.execution_metadata: ExecutionMetadata | None = None
        super().__init__(self.message)

    @property
    def retryable(self) -> bool:
        """Whether another attempt (the next fallback) may succeed where this one failed."""
        return self.retryable_default if self._retryable is None else self._retryable

    @property
    def attempts(self) -> Sequence[AttemptMetadata]:
        """Every attempt of the generation this error ended (empty when none was recorded)."""
        return () if self.execution_metadata is None else tuple(self.execution_metadata.attempts)

    def __str__(self) -> str:
        where = ", ".join(
            f"{k}={v}" for k, v in (("provider", self.provider), ("model", self.model)) if v is not None
        )
        return f"{self.message} ({where})" if where else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, provider={self.provider!r}, model={self.model!r})"

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[TarashException], state: dict[str, Any]) -> TarashException:
    exc = cls.__new__(cls)
    Exception.__init__(exc, state.get("message", ""))
    exc.__dict__.update(state)
    return exc


class ValidationError(TarashException):
    """The request or config is invalid; no attempt with the same input can succeed.

    ``field`` names the offending field (dotted path), ``value`` the value given (strings and
    containers redacted, like the message) and ``allowed`` the allowed values, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        value: Any = None,
        allowed: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.field = field
        self.value = redact(value) if isinstance(value, (str, Mapping, list, tuple)) else value
        self.allowed = tuple(allowed) if allowed is not None else None
        kwargs.setdefault("phase", "validate")
        super().__init__(message, **kwargs)


#: The provider plugins the Tarash project publishes, by provider name: the only distributions an
#: unknown-provider message names (a name made up from a typo could be anyone's package).
_PUBLISHED_PLUGINS = {"fal": "tarash-fal", "example": "tarash-example-provider"}


def _unknown_provider_message(provider: str, installed: Sequence[str]) -> str:
    import difflib

    head = f"Unknown provider {provider!r}."
    listed = f"Installed providers: {', '.join(sorted(installed)) or 'none'}."
    close = difflib.get_close_matches(provider.lower(), sorted(installed), n=1)
    if close:
        return f"{head} Did you mean {close[0]!r}? {listed}"
    missing = sorted(set(_PUBLISHED_PLUGINS) - set(installed))
    published = difflib.get_close_matches(provider.lower(), missing, n=1)
    if published:
        name = published[0]
        distribution = _PUBLISHED_PLUGINS[name]
        guess = "" if name == provider else f" Did you mean {name!r}?"
        return (
            f"{head}{guess} {listed} Provider {name!r} comes with the {distribution} plugin, which is not "
            f"installed (`pip install {distribution}`, or `pip install ./{distribution}` from a checkout)."
        )
    return f"{head} {listed} Install the plugin that provides it, or call register_provider()."


class ProviderNotFoundError(ValidationError):
    """No provider of the requested name is registered or installed.

    The message suggests the closest installed provider ("did you mean 'fal'?"), or the Tarash
    plugin to install when the name is one of the project's published providers.
    """

    def __init__(self, provider: str, installed: Sequence[str]) -> None:
        super().__init__(
            _unknown_provider_message(provider, installed),
            field="provider",
            value=provider,
            allowed=sorted(installed),
            provider=provider,
        )
        self.installed = tuple(sorted(installed))


class MissingCredentialsError(ValidationError):
    """The provider needs an API key and none was given or found (nothing was sent).

    In a fallback chain the attempt is recorded as ``skipped`` and the chain goes on.
    """

    def __init__(self, provider: str, env_var: str | None) -> None:
        where = f"set {env_var} or pass" if env_var else "pass"
        super().__init__(
            f"No API key for provider {provider!r}: {where} api_key=... in the config "
            "(--api-key on the command line)",
            field="api_key",
            provider=provider,
        )
        self.env_var = env_var


class ContentModerationError(TarashException):
    """The provider refused the prompt or inputs under its content policy."""


class HTTPError(TarashException):
    """The provider answered with an HTTP error status.

    Core throws it into a plugin's flow at the ``yield`` of the request that got the answer, with
    the whole answer as ``response`` (a :class:`~tarash.tarash_gateway.plugin.Response`) so the
    plugin can read the provider's error body. ``response`` is not kept on errors that leave core.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        response: Any = None,
        **kwargs: Any,
    ) -> None:
        self.status_code = status_code
        self.retry_after = retry_after
        self.response = response
        super().__init__(message, **kwargs)

    @property
    def retryable(self) -> bool:
        if self._retryable is not None:
            return self._retryable
        return self.status_code in RETRYABLE_STATUS_CODES


class OutputExpiredError(HTTPError):
    """A generated output can no longer be downloaded: past the response's ``expires_at``
    (refused before any request; ``status_code`` None), or its URL answered 403, 404 or 410
    (the provider deleted it). Never retryable: generate again, or download sooner next time.
    """

    def __init__(self, message: str, *, url: str, expires_at: Any = None, **kwargs: Any) -> None:
        self.url = url
        self.expires_at = expires_at
        kwargs.setdefault("phase", "download")
        super().__init__(message, **kwargs)

    @property
    def retryable(self) -> bool:
        return False


class HTTPConnectionError(TarashException):
    """The provider could not be reached, or the connection broke.

    ``request_sent`` is False only when the request provably never reached the provider
    (connection refused, DNS failure, connect timeout): only then may a submit be retried.
    """

    retryable_default = True

    def __init__(self, message: str, *, request_sent: bool = True, **kwargs: Any) -> None:
        self.request_sent = request_sent
        super().__init__(message, **kwargs)


class InputUploadError(TarashException):
    """A local input could not be uploaded to the provider's storage. Raised before the submit:
    nothing billed was sent. ``retryable`` follows the cause (a 5xx or a lost connection is; a
    refused key is not)."""


class TimeoutError(TarashException):
    """The generation did not finish before its deadline (``config.timeout``)."""

    retryable_default = True

    def __init__(self, message: str, *, timeout_seconds: float | None = None, **kwargs: Any) -> None:
        self.timeout_seconds = timeout_seconds
        super().__init__(message, **kwargs)


class GenerationFailedError(TarashException):
    """The provider accepted the job but it failed, or returned no usable output."""

    retryable_default = True


class JobCancelledError(TarashException):
    """The job was cancelled (by the caller, by a deadline, or at the provider)."""


class UnknownSubmissionError(TarashException):
    """A submit may have reached the provider but its answer was lost.

    Core never resubmits in this case: the job may exist and may be billed. The ledger records
    it as ``unknown``; see the durable-jobs guide for what to do per provider.
    """

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("phase", "submit")
        kwargs.setdefault("retryable", False)
        super().__init__(message, **kwargs)


class ResultNotCollectedError(TarashException):
    """The provider reported the job completed, so it is paid for, but its result could not be
    fetched before the deadline. No fallback ran and nothing was resubmitted; the job stays in the
    ledger as completed-not-collected. ``handle`` (a ``JobHandle``, set by the gateway) collects
    it: ``error.handle.result()``; ``resume()`` does too. ``__cause__`` is the last fetch error."""

    def __init__(self, message: str, *, ledger_key: str, job: Any, config: Any, **kwargs: Any) -> None:
        kwargs.setdefault("phase", "result")
        kwargs.setdefault("retryable", False)
        super().__init__(message, **kwargs)
        self.ledger_key = ledger_key
        self.job = job
        self.config = config
        self.handle: Any = None


class JobTakenOverError(ResultNotCollectedError):
    """The job completed, but this process's hold on it in a fleet's job ledger had lapsed (its
    connection to the ledger dropped, or its lease ran out) and another worker took over its
    collection: that worker collects it, so it was not fetched here (one worker collects each
    job). Nothing was resubmitted and no fallback ran; ``handle.result()`` reads the result."""


class CancelUnconfirmedError(TarashException):
    """An attempt failed after its job existed, and that job may still run or hold a paid result:
    the cancel sent to stop it was not confirmed (it failed after its retries), the provider has no
    cancel, or it answered that the job had already ended (it may have completed). The fallback
    was not started, so two jobs are not billed; the job stays in the ledger, and ``resume()``
    retries an unconfirmed cancel or collects the result of a job that completed. ``__cause__`` is
    the attempt's own error; ``fallback_on_unconfirmed_cancel=True`` on the config falls back
    anyway."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("retryable", False)
        super().__init__(message, **kwargs)


class CostLimitExceededError(TarashException):
    """The call's expected cost exceeds ``config.max_cost``: refused before submit, nothing sent.

    Attributes:
        estimate: the expected cost of the refused attempt (a ``Cost``).
        limit: the limit it exceeds (``Decimal``).
        spent: what earlier attempts of the same call were charged (``Decimal``), counted
            against the limit.
    """

    def __init__(self, message: str, *, estimate: Any, limit: Any, spent: Any = 0, **kwargs: Any) -> None:
        self.estimate = estimate
        self.limit = limit
        self.spent = spent
        kwargs.setdefault("phase", "validate")
        kwargs.setdefault("retryable", False)
        super().__init__(message, **kwargs)


class BudgetExceededError(CostLimitExceededError):
    """The expected cost exceeds what is left of the gateway's budget for the period (``spent``
    is what the ledger recorded in the period, across every process sharing it)."""


class LedgerError(TarashException):
    """The job ledger is off, has no such job, or cannot record a submit intent (then nothing was
    submitted: with the ledger on, no submit goes out unrecorded)."""


class BudgetUnavailableError(LedgerError):
    """A budget is set and the call cannot be checked against it (its currency is not the
    estimate's, or a recorded cost or the budget cannot be read): nothing was sent. A budget set
    with ``fail_open=True`` lets such calls through instead."""


class JobNotFinishedError(TarashException):
    """``JobHandle.result()`` was called before the job completed (``state`` says where it is)."""

    def __init__(self, message: str, *, state: str, **kwargs: Any) -> None:
        self.state = state
        kwargs.setdefault("phase", "result")
        kwargs.setdefault("retryable", False)
        super().__init__(message, **kwargs)


class UnsupportedModalityError(TarashException, NotImplementedError):
    """The provider does not generate this modality (video or image)."""

    def __init__(self, provider: str, modality: str, detail: str | None = None) -> None:
        text = f"Provider {provider!r} does not support {modality} generation"
        if detail and detail != text:
            text = f"{text}: {detail}"
        super().__init__(text, provider=provider, phase="validate")
        self.modality = modality


class ProviderConflictError(TarashException):
    """Two installed distributions claim the same provider name."""

    def __init__(self, provider: str, claimants: Sequence[str]) -> None:
        super().__init__(
            f"Provider name {provider!r} is claimed by several plugins: {', '.join(claimants)}. "
            "Uninstall one, or choose with TARASH_PLUGINS / TARASH_DISABLE_PLUGINS.",
            provider=provider,
        )
        self.claimants = tuple(claimants)


class PluginLoadError(TarashException):
    """A plugin failed to import or to register its providers."""

    def __init__(
        self,
        message: str,
        *,
        plugin: str,
        distribution: str | None,
        version: str | None,
    ) -> None:
        super().__init__(message)
        self.plugin = plugin
        self.distribution = distribution
        self.version = version


def is_retryable_error(error: BaseException) -> bool:
    """Whether ``error`` lets the next fallback be tried."""
    if isinstance(error, TarashException):
        return error.retryable
    return isinstance(error, (builtins.TimeoutError, ConnectionError))


def error_summary(error: BaseException) -> Mapping[str, Any]:
    """A JSON-friendly summary of an error, for ledgers and CLI output."""
    data: dict[str, Any] = {"type": type(error).__name__, "message": redact_text(str(error))}
    if isinstance(error, TarashException):
        data.update(
            provider=error.provider,
            model=error.model,
            request_id=error.request_id,
            phase=error.phase,
            retryable=error.retryable,
        )
        if isinstance(error, HTTPError):
            data["status_code"] = error.status_code
        if isinstance(error, ValidationError) and error.field:
            data["field"] = error.field
    return data


class WebhookVerificationError(TarashException):
    """A webhook delivery failed verification: a missing header, a stale timestamp, a signature no
    published key verifies, no usable key, or a body that is not the provider's event.

    ``reason`` says which: ``"missing_header"``, ``"stale_timestamp"``, ``"bad_signature"`` (no
    published key verifies it), ``"unknown_key"`` (no usable key is published) or ``"malformed"``.
    Receivers answer it with 401 and apply nothing.
    """

    def __init__(self, message: str, *, reason: str, **kwargs: Any) -> None:
        self.reason = reason
        super().__init__(message, **kwargs)
