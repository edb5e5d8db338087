"""The fake Images API itself, spoken to with plain httpx (no Tarash in between)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tarash_openai.testing import REDACTED, FakeOpenAIServer, png

BEARER = {"Authorization": "Bearer sk-test-openai"}


def test_generation_answers_base64_images_with_usage(fake_openai: FakeOpenAIServer) -> None:
    answer = httpx.post(
        f"{fake_openai.url}/images/generations",
        headers=BEARER,
        json={"model": "gpt-image-2.5-flare", "prompt": "a red cat", "n": 2, "quality": "xhigh"},
    )
    assert answer.status_code == 200
    assert answer.headers["x-request-id"].startswith("req_")
    body = answer.json()
    assert [base64.b64decode(item["b64_json"]) for item in body["data"]] == [png(0), png(1)]
    assert (body["output_format"], body["quality"], body["size"]) == ("png", "xhigh", "1024x1024")
    assert body["usage"] == {
        "input_tokens": 3,
        "input_tokens_details": {"text_tokens": 3, "image_tokens": 0},
        "output_tokens": 544,
        "output_tokens_details": {"text_tokens": 0, "image_tokens": 544},
        "total_tokens": 547,
    }
    assert fake_openai.counts == {"generations": 1, "edits": 0, "file": 0}
    recorded = fake_openai.last("generations")
    assert recorded.json == {
        "model": "gpt-image-2.5-flare",
        "prompt": "a red cat",
        "n": 2,
        "quality": "xhigh",
    }
    assert recorded.headers["authorization"] == REDACTED


def test_edit_parses_multipart_parts(fake_openai: FakeOpenAIServer) -> None:
    files = [
        ("image[]", ("a.png", png(1), "image/png")),
        ("image[]", ("b.png", png(2), "image/png")),
        ("mask", ("m.png", png(3), "image/png")),
    ]
    answer = httpx.post(
        f"{fake_openai.url}/images/edits",
        headers=BEARER,
        files=files,
        data={"model": "gpt-image-2", "prompt": "x", "n": "1"},
    )
    assert answer.status_code == 200
    assert answer.json()["usage"]["input_tokens_details"] == {"text_tokens": 1, "image_tokens": 170}
    recorded = fake_openai.last("edits")
    assert recorded.form == {"model": "gpt-image-2", "prompt": "x", "n": "1"}
    assert recorded.files == (
        ("image[]", "a.png", "image/png", png(1)),
        ("image[]", "b.png", "image/png", png(2)),
        ("mask", "m.png", "image/png", png(3)),
    )


@pytest.mark.parametrize(
    ("headers", "body", "status", "error"),
    [
        (
            {},
            {"model": "gpt-image-2", "prompt": "x"},
            401,
            {
                "message": "Incorrect API key provided.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            },
        ),
        (
            BEARER,
            {"model": "gpt-image-2"},
            400,
            {
                "message": "Missing required parameter: 'prompt'.",
                "type": "invalid_request_error",
                "param": "prompt",
                "code": "missing_required_parameter",
            },
        ),
        (
            BEARER,
            {"model": "gpt-image-2", "prompt": "x", "size": "1x1"},
            400,
            {
                "message": "Invalid value: '1x1'. Supported sizes are auto, 1024x1024, 1536x1024, 1024x1536.",
                "type": "invalid_request_error",
                "param": "size",
                "code": "invalid_value",
            },
        ),
        (
            BEARER,
            {"model": "gpt-image-2", "prompt": "something forbidden"},
            400,
            {
                "message": "Your request was rejected as a result of our safety system.",
                "type": "image_generation_user_error",
                "param": None,
                "code": "moderation_blocked",
            },
        ),
    ],
)
def test_errors_use_the_documented_envelope(
    fake_openai: FakeOpenAIServer,
    headers: dict[str, str],
    body: dict[str, str],
    status: int,
    error: dict[str, str],
) -> None:
    answer = httpx.post(f"{fake_openai.url}/images/generations", headers=headers, json=body)
    assert (answer.status_code, answer.json()) == (status, {"error": error})
    assert fake_openai.counts["generations"] == 1


def test_azure_route_checks_key_api_version_and_deployment(fake_openai: FakeOpenAIServer) -> None:
    url = f"{fake_openai.endpoint}/openai/deployments/gpt-image-2/images/generations"
    body = {"prompt": "x"}
    assert httpx.post(url, json=body, params={"api-version": "v"}, headers=BEARER).status_code == 401
    assert httpx.post(url, json=body, headers={"api-key": "azure-test-key"}).status_code == 404
    ok = httpx.post(url, json=body, params={"api-version": "v"}, headers={"api-key": "azure-test-key"})
    assert ok.status_code == 200 and len(ok.json()["data"]) == 1
    missing = httpx.post(
        url.replace("gpt-image-2", "nope"),
        json=body,
        params={"api-version": "v"},
        headers={"api-key": "azure-test-key"},
    )
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "DeploymentNotFound")
    assert fake_openai.counts["generations"] == 4
    assert fake_openai.last("generations").query == {"api-version": ["v"]}


def test_rate_limit_fault_sends_the_reset_headers_once(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.rate_limit(reset_requests="2s", reset_tokens="1m0s")
    body = {"model": "gpt-image-2", "prompt": "x"}
    limited = httpx.post(f"{fake_openai.url}/images/generations", headers=BEARER, json=body)
    assert limited.status_code == 429
    assert (limited.headers["x-ratelimit-reset-requests"], limited.headers["x-ratelimit-reset-tokens"]) == (
        "2s",
        "1m0s",
    )
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert httpx.post(f"{fake_openai.url}/images/generations", headers=BEARER, json=body).status_code == 200


def test_drop_reads_the_request_and_closes_without_answering(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.inject("generations", "drop")
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(
            f"{fake_openai.url}/images/generations",
            headers=BEARER,
            json={"model": "gpt-image-2", "prompt": "x"},
        )
    assert fake_openai.counts["generations"] == 1
    assert fake_openai.last("generations").json == {"model": "gpt-image-2", "prompt": "x"}


def test_files_are_served_without_auth(fake_openai: FakeOpenAIServer) -> None:
    url = fake_openai.add_file("in.png", png(9), "image/png")
    answer = httpx.get(url)
    assert (answer.status_code, answer.content, answer.headers["content-type"]) == (200, png(9), "image/png")
    assert httpx.get(f"{fake_openai.endpoint}/files/missing.png").status_code == 404
    assert fake_openai.counts["file"] == 1


def test_unknown_paths_are_404(fake_openai: FakeOpenAIServer) -> None:
    answer = httpx.post(f"{fake_openai.endpoint}/v1/videos", headers=BEARER, json={})
    assert answer.status_code == 404
    assert json.loads(answer.content)["error"]["message"] == "Invalid URL (POST /v1/videos)"
