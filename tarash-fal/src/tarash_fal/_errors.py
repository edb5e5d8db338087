"""Turn fal's answers and transport failures into typed Tarash exceptions.

fal reports errors in two shapes (landscape §4.1.5): infrastructure errors as
``{"detail": "<text>", "error_type": "<type>"}`` and model input errors as HTTP 422 with ``detail``
a list of ``{"loc", "msg", "type", ...}`` items; a ``content_policy_violation`` item means the
content was refused.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from tarash.tarash_gateway.exceptions import (
    ContentModerationError,
    GenerationFailedError,
    HTTPConnectionError,
    HTTPError,
    TarashException,
    TimeoutError,
    UnknownSubmissionError,
    ValidationError,
)
from tarash.tarash_gateway.utils import parse_retry_after

#: Status codes fal-client would retry by itself; the transport turns them into errors first.
FAL_RETRIED_STATUSES = frozenset({408, 409, 429, 502, 503, 504})
#: Core's phase name for each kind of fal request.
PHASES = {"submit": "submit", "status": "poll", "result": "result", "cancel": "cancel"}
CONTENT_POLICY = "content_policy_violation"
MAX_DETAIL_CHARS = 500

_NEVER_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)


def response_body(response: httpx.Response) -> Any:
    """The response's JSON, else its text (capped), else None."""
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        pass
    try:
        return _clip(response.text)
    except (UnicodeDecodeError, LookupError):
        return f"<{len(response.content)} undecodable bytes>"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_DETAIL_CHARS else text[:MAX_DETAIL_CHARS] + "..."


def _field(loc: Any) -> str | None:
    if not isinstance(loc, (list, tuple)):
        return None
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or None


def _flatten(items: list[dict[str, Any]]) -> str:
    messages = []
    for item in items:
        msg = str(item.get("msg") or item.get("message") or item.get("type") or "invalid value")
        field = _field(item.get("loc"))
        messages.append(f"{field}: {msg}" if field else msg)
    return "; ".join(messages)


def _describe(detail: Any, body: Any) -> str:
    if isinstance(detail, str):
        return _clip(detail)
    if detail is not None:
        return _clip(json.dumps(detail, default=str))
    if isinstance(body, str):
        return body
    return _clip(json.dumps(body, default=str)) if body is not None else ""


def error_from_response(
    response: httpx.Response,
    *,
    kind: str,
    request_id: str | None = None,
) -> TarashException:
    """The exception for a non-2xx answer from fal to a ``kind`` request."""
    code = response.status_code
    body = response_body(response)
    phase = PHASES.get(kind, kind)
    detail = body.get("detail") if isinstance(body, dict) else None
    items = [d for d in detail if isinstance(d, dict)] if isinstance(detail, list) else []
    error_type = body.get("error_type") if isinstance(body, dict) else None
    error_type = error_type or response.headers.get("x-fal-error-type")
    where: dict[str, Any] = {"raw_response": body, "request_id": request_id, "phase": phase}
    flagged = [d for d in items if d.get("type") == CONTENT_POLICY]
    if flagged or error_type == CONTENT_POLICY:
        categories = sorted({str(c) for d in flagged for c in (d.get("categories") or ())})
        label = f" ({', '.join(categories)})" if categories else ""
        text = _flatten(flagged) if flagged else _describe(detail, body)
        return ContentModerationError(f"fal refused the content{label}: {text}", **where)
    if code == 422:
        text = _flatten(items) if items else _describe(detail, body)
        if response.headers.get("x-fal-retryable", "").strip().lower() == "true":
            return GenerationFailedError(f"fal could not process the input (retryable): {text}", **where)
        field = _field(items[0].get("loc")) if items else None
        return ValidationError(f"fal rejected the input: {text}", field=field, **where)
    text = _describe(detail, body)
    suffix = f": {text}" if text else ""
    return HTTPError(
        f"fal answered HTTP {code} to the {kind} request{suffix}",
        status_code=code,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
        **where,
    )


def transport_error(
    exc: httpx.HTTPError,
    *,
    kind: str,
    deadline_passed: bool,
    timeout: float | None,
) -> TarashException:
    """The exception for a request that got no (complete) answer.

    Connection failures before the request left (refused, DNS, connect timeout, no free pooled
    connection) have ``request_sent=False``; anything later may have reached fal. A submit that may
    have arrived is never reported as a timeout: core turns it into ``UnknownSubmissionError``.
    """
    phase = PHASES.get(kind, kind)
    never_sent = isinstance(exc, _NEVER_SENT)
    if deadline_passed and (never_sent or kind != "submit"):
        return TimeoutError(
            f"fal did not answer the {kind} request before the deadline",
            timeout_seconds=timeout,
            phase=phase,
        )
    text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    if never_sent:
        return HTTPConnectionError(
            f"Could not reach fal; the {kind} request was not sent ({text})",
            request_sent=False,
            phase=phase,
        )
    return HTTPConnectionError(
        f"The connection to fal failed during the {kind} request ({text})",
        request_sent=True,
        phase=phase,
    )


def deadline_error(*, kind: str, timeout: float | None) -> TimeoutError:
    """The deadline passed before a ``kind`` request could be sent."""
    return TimeoutError(
        f"The deadline passed before the {kind} request to fal",
        timeout_seconds=timeout,
        phase=PHASES.get(kind, kind),
    )


def unreadable_answer(
    *, kind: str, reason: str, raw: Any = None, request_id: str | None = None
) -> TarashException:
    """A 2xx answer we cannot use. For a submit the job may exist, so it is never resubmitted."""
    if kind == "submit":
        return UnknownSubmissionError(
            f"fal accepted the submit but its answer was unusable ({reason}). It was NOT "
            "resubmitted: the job may exist and may be billed.",
            raw_response=raw,
        )
    return GenerationFailedError(
        f"fal sent an unusable answer to the {kind} request ({reason})",
        raw_response=raw,
        request_id=request_id,
        phase=PHASES.get(kind, kind),
    )
