"""The Images API's error answers translated into Tarash's error types.

OpenAI answers an error with ``{"error": {"message", "type", "param", "code"}}``. Azure OpenAI uses
the same envelope, with its own codes for its content filter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tarash.tarash_gateway.exceptions import ContentModerationError, HTTPError, ValidationError
from tarash.tarash_gateway.utils import parse_retry_after

#: Error codes meaning the prompt or an input image was refused under the content policy:
#: OpenAI's ``moderation_blocked``, the DALL-E era ``content_policy_violation``, and Azure's
#: content-filter codes.
MODERATION_CODES = frozenset(
    {"moderation_blocked", "content_policy_violation", "content_filter", "contentFilter"}
)
AZURE_POLICY_CODE = "ResponsibleAIPolicyViolation"
#: 429 codes that waiting does not fix.
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
RESET_HEADERS = ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def error_body(exc: HTTPError) -> Mapping[str, Any]:
    """The ``error`` object of the answer (empty when the body is not the documented envelope)."""
    body: Any = exc.raw_response
    if exc.response is not None:
        try:
            body = exc.response.json()
        except ValueError:
            body = None
    error = body.get("error") if isinstance(body, Mapping) else None
    return error if isinstance(error, Mapping) else {}


def parse_reset(value: str | None) -> float | None:
    """Seconds from an ``x-ratelimit-reset-*`` header (``"1s"``, ``"6m0s"``, ``"20ms"``)."""
    if not value:
        return None
    text = value.strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def retry_after(exc: HTTPError) -> float | None:
    """When to try again: ``retry-after-ms``, ``Retry-After``, else the later of the reset headers."""
    response = exc.response
    if response is None:
        return exc.retry_after
    milliseconds = _number(response.header("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    seconds = parse_retry_after(response.header("retry-after"))
    if seconds is not None:
        return seconds
    resets = [parse_reset(response.header(name)) for name in RESET_HEADERS]
    known = [reset for reset in resets if reset is not None]
    return max(known) if known else exc.retry_after


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number < float("inf") else None


def _is_moderation(error: Mapping[str, Any]) -> bool:
    if error.get("code") in MODERATION_CODES:
        return True
    inner = error.get("innererror")
    return isinstance(inner, Mapping) and inner.get("code") == AZURE_POLICY_CODE


def translate(exc: HTTPError, *, provider: str, model: str) -> Exception:
    """The Tarash error for an Images API error answer (``exc`` itself when nothing fits better)."""
    error = error_body(exc)
    message = str(error.get("message") or exc.message)
    common: dict[str, Any] = {"provider": provider, "model": model, "raw_response": exc.raw_response}
    if exc.status_code == 400 and _is_moderation(error):
        return ContentModerationError(message, phase="submit", **common)
    param = error.get("param")
    if exc.status_code == 400 and isinstance(param, str) and param:
        return ValidationError(f"{param}: {message}", field=param, phase="submit", **common)
    if exc.status_code == 429:
        code = error.get("code")
        return HTTPError(
            f"rate limited ({code or 'rate_limit_exceeded'}): {message}",
            status_code=429,
            retry_after=retry_after(exc),
            response=exc.response,
            phase=exc.phase,
            retryable=False if code in QUOTA_CODES else None,
            **common,
        )
    return exc
