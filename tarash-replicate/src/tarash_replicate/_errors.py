"""Replicate's error answers as Tarash's typed errors.

Replicate answers API errors as RFC 7807 problem details (``title``, ``detail``, ``status``; the
replicate-python SDK's ``ReplicateError``); a 422 on create also lists ``invalid_fields``
(``type``, ``field``, ``description``). A prediction that ran and failed carries a plain-text
``error``; safety filters say so in it ("NSFW", "flagged as sensitive", code ``E005``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tarash.tarash_gateway.exceptions import (
    ContentModerationError,
    GenerationFailedError,
    HTTPError,
    Phase,
    TarashException,
    ValidationError,
)

from ._spec import PROVIDER

__all__ = ["create_error", "failure", "is_moderation", "problem"]

_MODERATION = re.compile(
    r"nsfw|flagged as sensitive|\bE005\b|content polic|safety (?:filter|system|check)|sensitive content",
    re.IGNORECASE,
)
_DETAIL_FIELD = re.compile(r"(?:^|\s|-\s)input\.([A-Za-z0-9_]+)")


def problem(exc: HTTPError) -> dict[str, Any]:
    """The problem-details body of an error answer (``{}`` when it is not a JSON object)."""
    body = exc.raw_response
    if exc.response is not None:
        try:
            body = exc.response.json()
        except ValueError:
            body = None
    return dict(body) if isinstance(body, Mapping) else {}


def is_moderation(text: Any) -> bool:
    return isinstance(text, str) and _MODERATION.search(text) is not None


def _message(body: Mapping[str, Any], fallback: str) -> str:
    parts = [str(body[key]).strip() for key in ("title", "detail") if body.get(key)]
    return ": ".join(parts) or fallback


def _invalid_field(body: Mapping[str, Any]) -> str | None:
    fields = body.get("invalid_fields")
    if isinstance(fields, list):
        for entry in fields:
            if isinstance(entry, Mapping) and isinstance(entry.get("field"), str) and entry["field"]:
                return str(entry["field"])
    match = _DETAIL_FIELD.search(str(body.get("detail") or ""))
    return f"input.{match.group(1)}" if match else None


def create_error(exc: HTTPError, *, model: str, sources: Mapping[str, str]) -> TarashException | None:
    """The typed error for a create answered 4xx, or ``None`` to let ``exc`` propagate.

    ``sources`` maps input names to the unified field they came from, so a 422 names the field
    the caller set (``duration_seconds``) rather than the model's input (``input.duration``).
    """
    body = problem(exc)
    text = _message(body, str(exc))
    if is_moderation(text):
        return ContentModerationError(
            f"Replicate refused the content: {text}",
            provider=PROVIDER,
            model=model,
            raw_response=body,
            phase="submit",
        )
    if exc.status_code == 422:
        field = _invalid_field(body)
        name = field[len("input.") :] if field and field.startswith("input.") else field
        return ValidationError(
            f"Replicate refused the input: {text}",
            field=sources.get(name or "", field) or "input",
            provider=PROVIDER,
            model=model,
            raw_response=body,
            phase="submit",
        )
    if exc.status_code == 404:
        return ValidationError(
            f"Replicate has no model {model!r} to run by name ({text}); community models are run "
            "as owner/name:<version>",
            field="model",
            value=model,
            provider=PROVIDER,
            model=model,
            raw_response=body,
            phase="submit",
        )
    return None


def failure(prediction: Mapping[str, Any], job_id: str, model: str, phase: Phase) -> TarashException:
    """The error of a prediction that ended ``failed``."""
    error = prediction.get("error")
    text = error if isinstance(error, str) and error else "no error message given"
    if is_moderation(text):
        return ContentModerationError(
            f"Replicate prediction {job_id} was refused by a safety filter: {text}",
            provider=PROVIDER,
            model=model,
            request_id=job_id,
            raw_response=dict(prediction),
            phase=phase,
        )
    return GenerationFailedError(
        f"Replicate prediction {job_id} failed: {text}",
        provider=PROVIDER,
        model=model,
        request_id=job_id,
        raw_response=dict(prediction),
        phase=phase,
    )
