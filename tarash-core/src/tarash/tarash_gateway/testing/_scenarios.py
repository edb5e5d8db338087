"""The fault scenarios of the conformance kit: what a provider's test double provokes, and the
error, phase and request counts Tarash users must then get."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ..exceptions import (
    GenerationFailedError,
    HTTPConnectionError,
    HTTPError,
    TarashException,
    UnknownSubmissionError,
    ValidationError,
)

__all__ = ["SCENARIOS", "Scenario"]


@attrs.frozen
class Scenario:
    """A fault the provider's test double can produce, and the error Tarash users must then get.

    Attributes:
        name: what ``make_config(modality, name)`` is asked for.
        provoke: what the config must make happen.
        error: the exception type the caller must receive.
        phases: accepted values of the exception's ``phase``.
        check: extra check of the exception; returns a problem or None.
        counts: exact number of requests of each kind the server must receive (needs
            ``server_counts``; a blocking provider counts its generation requests as ``submit``).
        lifecycle_only: the scenario needs a job (skipped for blocking providers).
    """

    name: str
    provoke: str
    error: type[TarashException]
    phases: tuple[str, ...]
    check: Callable[[Any], str | None]
    counts: Mapping[str, int] = attrs.field(factory=dict)
    lifecycle_only: bool = False


def _refused(exc: Any) -> str | None:
    if exc.request_sent is False:
        return None
    return (
        "HTTPConnectionError.request_sent must be False when the connection was refused: "
        "core may retry a submit only then"
    )


def _names_field(exc: Any) -> str | None:
    if isinstance(exc.field, str) and exc.field:
        return None
    return "ValidationError.field must name the offending field (from the provider's details)"


def _server_error(exc: Any) -> str | None:
    if isinstance(exc.status_code, int) and 500 <= exc.status_code < 600:
        return None
    return f"HTTPError.status_code must be the provider's 5xx status, got {exc.status_code!r}"


def _rate_limited(exc: Any) -> str | None:
    if exc.status_code != 429:
        return f"HTTPError.status_code must be 429, got {exc.status_code!r}"
    if not isinstance(exc.retry_after, (int, float)) or exc.retry_after <= 0:
        return f"HTTPError.retry_after must carry the Retry-After seconds, got {exc.retry_after!r}"
    return None


def _never_resent(exc: Any) -> str | None:
    return None


def _job_failed(exc: Any) -> str | None:
    if exc.request_id:
        return None
    return "GenerationFailedError.request_id must be the job id"


#: The error scenarios, by name. ``make_config(modality, name)`` returns None for any it cannot do.
SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "unreachable",
            "the provider's endpoint refuses connections (e.g. a closed port)",
            HTTPConnectionError,
            ("submit",),
            _refused,
        ),
        Scenario(
            "rejected",
            "the submit is answered with a 4xx validation error naming a field",
            ValidationError,
            ("validate", "submit"),
            _names_field,
            {"submit": 1, "status": 0},
        ),
        Scenario(
            "server_error",
            "the submit is answered with a 5xx error (no job is created)",
            HTTPError,
            ("submit",),
            _server_error,
            {"submit": 1, "status": 0},
        ),
        Scenario(
            "rate_limited",
            "status calls are answered 429 with Retry-After: 60",
            HTTPError,
            ("poll",),
            _rate_limited,
            {"submit": 1, "status": 1, "result": 0},
            lifecycle_only=True,
        ),
        Scenario(
            "job_failed",
            "the job is accepted and then fails at the provider",
            GenerationFailedError,
            ("poll",),
            _job_failed,
            {"submit": 1, "result": 0},
            lifecycle_only=True,
        ),
        Scenario(
            "lost_answer",
            "the submit (or blocking generation) reaches the server, which closes the connection "
            "without answering",
            UnknownSubmissionError,
            ("submit",),
            _never_resent,
            {"submit": 1, "status": 0},
        ),
    )
}
