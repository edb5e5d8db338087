"""What the flow makes of the Images API's answers: images, usage, and typed errors."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from conftest import answer, context

from tarash.tarash_gateway.exceptions import (
    ContentModerationError,
    GenerationFailedError,
    HTTPError,
    ValidationError,
)
from tarash.tarash_gateway.models import ImageGenerationConfig, ImageGenerationRequest
from tarash.tarash_gateway.plugin import Response
from tarash_openai import _errors, _flow
from tarash_openai.testing import png

B64 = [base64.b64encode(png(i)).decode() for i in range(2)]
USAGE = {
    "input_tokens": 12,
    "input_tokens_details": {"text_tokens": 12, "image_tokens": 0},
    "output_tokens": 544,
    "output_tokens_details": {"text_tokens": 0, "image_tokens": 544},
    "total_tokens": 556,
}


def start(provider: str = "openai", **kwargs: Any) -> Any:
    cfg = ImageGenerationConfig(provider=provider, model="gpt-image-2.5-flare", api_version="v")
    request = ImageGenerationRequest(prompt="a cat", **kwargs)
    flow = _flow.generate_image(cfg, request, context(provider, "https://root.test"))
    next(flow)
    return flow


def finish(flow: Any, reply: Response) -> Any:
    with pytest.raises(StopIteration) as stop:
        flow.send(reply)
    return stop.value.value


def fail(flow: Any, status: int, body: Any, headers: dict[str, str] | None = None) -> BaseException:
    reply = answer(body, status, headers)
    error = HTTPError(f"HTTP {status}", status_code=status, raw_response=body, response=reply, phase="submit")
    with pytest.raises(Exception) as caught:
        flow.throw(error)
    return caught.value


def test_base64_images_come_back_as_data_uris_with_usage_recorded() -> None:
    body = {
        "created": 1764600000,
        "data": [{"b64_json": B64[0]}, {"b64_json": B64[1]}],
        "output_format": "png",
        "quality": "high",
        "size": "1024x1024",
        "background": "opaque",
        "usage": USAGE,
    }
    response = finish(start(n=2), answer(body, headers={"x-request-id": "req_123"}))
    assert response.request_id == "req_123"
    assert response.images == [f"data:image/png;base64,{B64[0]}", f"data:image/png;base64,{B64[1]}"]
    assert (response.content_type, response.provider, response.model, response.revised_prompt) == (
        "image/png",
        "openai",
        "gpt-image-2.5-flare",
        None,
    )
    assert response.raw_response == {
        **body,
        "data": [
            {"b64_json": f"<{len(B64[0])} base64 characters>"},
            {"b64_json": f"<{len(B64[1])} base64 characters>"},
        ],
    }
    assert response.raw_response["usage"] == USAGE


def test_content_type_follows_the_output_format_and_revised_prompt_is_kept() -> None:
    body = {
        "created": 5,
        "data": [{"b64_json": B64[0], "revised_prompt": "a fluffy cat"}],
        "output_format": "webp",
    }
    response = finish(start(output_format="webp"), answer(body))
    assert response.content_type == "image/webp"
    assert response.images[0].startswith("data:image/webp;base64,")
    assert response.revised_prompt == "a fluffy cat"
    assert response.request_id == "openai-5"


def test_azure_request_id_comes_from_apim_request_id() -> None:
    response = finish(
        start("azure-openai"),
        answer({"created": 1, "data": [{"b64_json": B64[0]}]}, headers={"apim-request-id": "abc-1"}),
    )
    assert response.request_id == "abc-1"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"<html>", "not JSON"),
        (json.dumps({"created": 1, "data": []}).encode(), "without images"),
        (json.dumps({"created": 1}).encode(), "without images"),
        (json.dumps({"created": 1, "data": [{"url": "https://x"}]}).encode(), "no b64_json"),
        (json.dumps({"created": 1, "data": [{"b64_json": "%%%"}]}).encode(), "not valid base64"),
    ],
)
def test_an_unusable_answer_is_generation_failed(content: bytes, problem: str) -> None:
    flow = start()
    with pytest.raises(GenerationFailedError, match=problem):
        flow.send(answer(content))


def test_moderation_blocked_is_content_moderation_error() -> None:
    body = {
        "error": {
            "message": "Your request was rejected as a result of our safety system.",
            "type": "image_generation_user_error",
            "param": None,
            "code": "moderation_blocked",
        }
    }
    error = fail(start(), 400, body)
    assert type(error) is ContentModerationError
    assert (error.message, error.provider, error.model, error.phase) == (
        "Your request was rejected as a result of our safety system.",
        "openai",
        "gpt-image-2.5-flare",
        "submit",
    )
    assert isinstance(error.__cause__, HTTPError)


def test_azure_content_filter_is_content_moderation_error() -> None:
    body = {
        "error": {
            "code": "content_policy_violation",
            "message": "filtered",
            "innererror": {"code": "ResponsibleAIPolicyViolation"},
        }
    }
    assert type(fail(start("azure-openai"), 400, body)) is ContentModerationError
    inner_only = {
        "error": {
            "code": "BadRequest",
            "message": "m",
            "innererror": {"code": "ResponsibleAIPolicyViolation"},
        }
    }
    assert type(fail(start("azure-openai"), 400, inner_only)) is ContentModerationError


def test_an_invalid_value_names_the_param() -> None:
    body = {
        "error": {
            "message": "Invalid size '1536x864'.",
            "type": "invalid_request_error",
            "param": "size",
            "code": "invalid_value",
        }
    }
    error = fail(start(), 400, body)
    assert type(error) is ValidationError
    assert (error.field, error.message, error.phase) == ("size", "size: Invalid size '1536x864'.", "submit")


def test_a_400_without_param_stays_http_error() -> None:
    body = {"error": {"message": "bad", "type": "invalid_request_error", "param": None, "code": None}}
    error = fail(start(), 400, body)
    assert type(error) is HTTPError and error.status_code == 400


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s"}, 360.0),
        ({"x-ratelimit-reset-requests": "20ms"}, 0.02),
        ({"x-ratelimit-reset-tokens": "1h2m3.5s"}, 3723.5),
        ({"Retry-After": "7", "x-ratelimit-reset-tokens": "6m0s"}, 7.0),
        ({"retry-after-ms": "5000", "Retry-After": "7"}, 5.0),
        ({"x-ratelimit-reset-requests": "soon"}, None),
        ({}, None),
    ],
)
def test_429_retry_after_from_the_reset_headers(headers: dict[str, str], seconds: float | None) -> None:
    body = {
        "error": {
            "message": "Rate limit reached",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    error = fail(start(), 429, body, headers)
    assert type(error) is HTTPError
    assert (error.status_code, error.retry_after, error.retryable) == (429, seconds, True)


def test_429_insufficient_quota_is_not_retryable() -> None:
    body = {
        "error": {
            "message": "You exceeded your current quota",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
    }
    error = fail(start(), 429, body, {"x-ratelimit-reset-requests": "1s"})
    assert (type(error), error.retryable, error.retry_after) == (HTTPError, False, 1.0)


def test_a_5xx_passes_through_untouched() -> None:
    flow = start()
    original = HTTPError("HTTP 500", status_code=500, response=answer({"error": {}}, 500))
    with pytest.raises(HTTPError) as caught:
        flow.throw(original)
    assert caught.value is original


@pytest.mark.parametrize(
    ("value", "seconds"), [("0s", 0.0), ("1m", 60.0), ("1.5s", 1.5), ("", None), ("5", None), ("1sx", None)]
)
def test_parse_reset(value: str, seconds: float | None) -> None:
    assert _errors.parse_reset(value) == seconds
