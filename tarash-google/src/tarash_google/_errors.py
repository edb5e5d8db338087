"""Google's error bodies (``google.rpc.Status``) turned into Tarash's typed errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NoReturn

from tarash.tarash_gateway.exceptions import (
    ContentModerationError,
    HTTPError,
    Phase,
    ValidationError,
)

RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"

#: Phrases Google uses when Responsible-AI filters refuse a prompt or an input image (Veo's
#: "violates Google's Responsible AI practices" / "usage guidelines", Gemini's block reasons).
_SAFETY = re.compile(
    r"responsible ai|usage guidelines|sensitive words|safety filter|prohibited content|"
    r"blocked by (?:our |the )?safety|raimediafiltered",
    re.IGNORECASE,
)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def status_of(body: Any) -> Mapping[str, Any]:
    """The ``google.rpc.Status`` in an error body (``{"error": {...}}``) or an operation error."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            return inner
    return {}


def _details(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [d for d in status.get("details") or () if isinstance(d, Mapping)]


def retry_delay(body: Any) -> float | None:
    """Seconds from a ``RetryInfo`` detail (``"retryDelay": "37s"``), if there is one."""
    for detail in _details(status_of(body)):
        if detail.get("@type") == RETRY_INFO:
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def is_safety_message(text: str) -> bool:
    return bool(_SAFETY.search(text))


def describe(status: Mapping[str, Any]) -> str:
    words = [str(status[k]) for k in ("status", "message") if status.get(k)]
    return ": ".join(words) or "no reason given"


def translate(exc: HTTPError, phase: Phase) -> NoReturn:
    """Re-raise ``exc`` as the error Google's body means; anything unrecognised unchanged.

    * 429 with ``RetryInfo`` and no ``Retry-After`` -> the same HTTPError with ``retry_after``;
    * a 400 on submit naming Responsible-AI filters -> ContentModerationError with Google's text;
    * another 400 ``INVALID_ARGUMENT`` on submit -> ValidationError (the field from ``BadRequest``).
    """
    body = exc.raw_response
    status = status_of(body)
    if exc.status_code == 429 and exc.retry_after is None:
        delay = retry_delay(body)
        if delay is not None:
            raise HTTPError(
                f"Google quota exceeded ({describe(status)}); retry in {delay:g}s",
                status_code=429,
                retry_after=delay,
                response=exc.response,
                raw_response=body,
                phase=phase,
            ) from exc
    if exc.status_code == 400 and phase == "submit":
        message = str(status.get("message") or "")
        if is_safety_message(message):
            raise ContentModerationError(
                f"Google refused the request: {message}", raw_response=body, phase=phase
            ) from exc
        if status.get("status") == "INVALID_ARGUMENT":
            field = next(
                (
                    str(violation.get("field"))
                    for detail in _details(status)
                    if detail.get("@type") == BAD_REQUEST
                    for violation in detail.get("fieldViolations") or ()
                    if isinstance(violation, Mapping) and violation.get("field")
                ),
                None,
            )
            raise ValidationError(
                f"Google rejected the request: {message or 'INVALID_ARGUMENT'}",
                field=field,
                raw_response=body,
                phase=phase,
            ) from exc
    raise exc
