"""Read fal's error bodies and unusable answers into typed Tarash exceptions.

fal reports errors in two shapes (landscape §4.1.5): infrastructure errors as
``{"detail": "<text>", "error_type": "<type>"}`` and model input errors as HTTP 422 with ``detail``
a list of ``{"loc", "msg", "type", ...}`` items; a ``content_policy_violation`` item means the
content was refused.
"""

from __future__ import annotations

import json
from typing import Any

from tarash.tarash_gateway.exceptions import (
    ContentModerationError,
    GenerationFailedError,
    HTTPError,
    Phase,
    TarashException,
    UnknownSubmissionError,
    ValidationError,
)

#: Core's phase name for each kind of fal request.
PHASES: dict[str, Phase] = {"submit": "submit", "status": "poll", "result": "result", "cancel": "cancel"}
CONTENT_POLICY = "content_policy_violation"
MAX_DETAIL_CHARS = 500


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
    error: HTTPError,
    *,
    kind: str,
    request_id: str | None = None,
) -> TarashException | None:
    """What fal's error body says beyond the status: content refused, input rejected (a 422 naming
    the field), or None to let core's HTTPError stand."""
    body = error.raw_response
    response = error.response
    header = response.header if response is not None else (lambda name: None)
    phase = PHASES.get(kind, kind)
    detail = body.get("detail") if isinstance(body, dict) else None
    items = [d for d in detail if isinstance(d, dict)] if isinstance(detail, list) else []
    error_type = body.get("error_type") if isinstance(body, dict) else None
    error_type = error_type or header("x-fal-error-type")
    where: dict[str, Any] = {"raw_response": body, "request_id": request_id, "phase": phase}
    flagged = [d for d in items if d.get("type") == CONTENT_POLICY]
    if flagged or error_type == CONTENT_POLICY:
        categories = sorted({str(c) for d in flagged for c in (d.get("categories") or ())})
        label = f" ({', '.join(categories)})" if categories else ""
        text = _flatten(flagged) if flagged else _describe(detail, body)
        return ContentModerationError(f"fal refused the content{label}: {text}", **where)
    if error.status_code == 422:
        text = _flatten(items) if items else _describe(detail, body)
        if (header("x-fal-retryable") or "").strip().lower() == "true":
            return GenerationFailedError(f"fal could not process the input (retryable): {text}", **where)
        field = _field(items[0].get("loc")) if items else None
        return ValidationError(f"fal rejected the input: {text}", field=field, **where)
    return None


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
        phase=PHASES[kind],
    )
