"""Google's google.rpc.Status bodies: RetryInfo delays and what each error becomes."""

from __future__ import annotations

import pytest

from tarash.tarash_gateway.exceptions import ContentModerationError, HTTPError, ValidationError
from tarash_google._errors import retry_delay, translate


def status(code: int, name: str, message: str, *details: dict[str, object]) -> dict[str, object]:
    return {"error": {"code": code, "status": name, "message": message, "details": list(details)}}


@pytest.mark.parametrize(
    ("delay", "seconds"), [("37s", 37.0), ("1.5s", 1.5), (" 0s ", 0.0), ("37", None), ("", None)]
)
def test_retry_delay(delay: str, seconds: float | None) -> None:
    body = status(
        429,
        "RESOURCE_EXHAUSTED",
        "quota",
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
    )
    assert retry_delay(body) == seconds


def test_retry_after_header_wins_over_retry_info() -> None:
    body = status(
        429,
        "RESOURCE_EXHAUSTED",
        "q",
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "9s"},
    )
    original = HTTPError("HTTP 429", status_code=429, retry_after=3.0, raw_response=body)
    with pytest.raises(HTTPError) as info:
        translate(original, "poll")
    assert info.value is original and info.value.retry_after == 3.0


def test_only_submit_400s_are_translated() -> None:
    original = HTTPError("HTTP 400", status_code=400, raw_response=status(400, "INVALID_ARGUMENT", "bad"))
    with pytest.raises(HTTPError) as info:
        translate(original, "poll")
    assert info.value is original
    with pytest.raises(ValidationError, match="Google rejected the request: bad") as refused:
        translate(original, "submit")
    assert refused.value.field is None and refused.value.phase == "submit"


def test_field_violation_names_the_field_and_safety_text_is_moderation() -> None:
    violation = {
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{"field": "parameters.seed"}],
    }
    body = status(400, "INVALID_ARGUMENT", "seed out of range", violation)
    with pytest.raises(ValidationError) as info:
        translate(HTTPError("HTTP 400", status_code=400, raw_response=body), "submit")
    assert info.value.field == "parameters.seed"
    unsafe = status(400, "INVALID_ARGUMENT", "The input image violates Google's Responsible AI practices.")
    with pytest.raises(ContentModerationError, match="Google refused the request: The input image violates"):
        translate(HTTPError("HTTP 400", status_code=400, raw_response=unsafe), "submit")
