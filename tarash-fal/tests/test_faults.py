"""Status, result and cancel under faults: retried where core should retry, typed otherwise."""

from __future__ import annotations

import time

import pytest

from tarash.tarash_gateway import (
    ContentModerationError,
    GenerationFailedError,
    HTTPError,
    ImageGenerationRequest,
    ResultNotCollectedError,
    TimeoutError,
    ValidationError,
    VideoGenerationRequest,
    generate_image,
    generate_video,
    generate_video_async,
)
from tarash_fal.testing import FakeFalServer

REQUEST = VideoGenerationRequest(prompt="a cat")


def _counts(submit: int = 1, status: int = 5, result: int = 1, cancel: int = 0) -> dict[str, int]:
    return {"submit": submit, "status": status, "result": result, "cancel": cancel}


def test_status_429_and_500_are_retried_and_the_job_completes(fake_fal: FakeFalServer) -> None:
    fake_fal.inject("status", status_code=429, body={"detail": "slow down"}, retry_after=0, times=2)
    fake_fal.inject("status", status_code=500)
    response = generate_video(fake_fal.video_config(), REQUEST)
    assert response.request_id == fake_fal.submissions[0]["request_id"]
    assert fake_fal.counts == _counts(status=8)


async def test_status_faults_are_retried_async(fake_fal: FakeFalServer) -> None:
    fake_fal.inject("status", status_code=503, body={"detail": "busy"}, retry_after=0)
    fake_fal.inject("status", "drop")
    fake_fal.inject("status", "truncate")
    await generate_video_async(fake_fal.video_config(), REQUEST)
    # The truncated answer was produced (that poll advanced the job), so 4 normal polls follow.
    assert fake_fal.counts == _counts(status=7)


def test_retry_after_is_honoured(fake_fal: FakeFalServer) -> None:
    fake_fal.inject("status", status_code=429, retry_after=0.4)
    started = time.monotonic()
    generate_video(fake_fal.video_config(), REQUEST)
    assert time.monotonic() - started >= 0.4
    assert fake_fal.counts == _counts(status=6)


def test_result_5xx_is_retried(fake_fal: FakeFalServer) -> None:
    fake_fal.inject("result", status_code=502, retry_after=0)
    fake_fal.inject("result", status_code=500)
    response = generate_video(fake_fal.video_config(), REQUEST)
    assert response.video.endswith(".mp4")
    assert fake_fal.counts == _counts(result=3)


def test_input_errors_are_validation_errors_with_fields(fake_fal: FakeFalServer) -> None:
    detail = [
        {"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"},
        {"loc": ["body", "image_url", 0], "msg": "invalid url", "type": "value_error.url"},
    ]
    fake_fal.inject("submit", status_code=422, body={"detail": detail})
    with pytest.raises(ValidationError) as caught:
        generate_video(fake_fal.video_config(), REQUEST)
    error = caught.value
    assert error.message == "fal rejected the input: prompt: field required; image_url.0: invalid url"
    assert (error.field, error.phase, error.retryable) == ("prompt", "submit", False)
    assert error.raw_response == {"detail": detail}
    assert fake_fal.counts == _counts(status=0, result=0)


def test_retryable_422_is_a_generation_failure(fake_fal: FakeFalServer) -> None:
    fake_fal.inject(
        "result",
        status_code=422,
        headers={"X-Fal-Retryable": "true"},
        body={"detail": [{"loc": ["body"], "msg": "GPU fell over", "type": "internal"}]},
    )
    with pytest.raises(GenerationFailedError) as caught:
        generate_video(fake_fal.video_config(), REQUEST)
    assert caught.value.message == "fal could not process the input (retryable): GPU fell over"
    assert caught.value.retryable is True


def test_content_policy_violation_is_content_moderation(fake_fal: FakeFalServer) -> None:
    detail = [
        {
            "loc": ["body", "prompt"],
            "msg": "The content was flagged by a content checker.",
            "type": "content_policy_violation",
            "input": "...",
            "categories": ["violence", "hate"],
        }
    ]
    fake_fal.inject("result", status_code=422, body={"detail": detail})
    with pytest.raises(ContentModerationError) as caught:
        generate_video(fake_fal.video_config(), REQUEST)
    error = caught.value
    assert error.message == (
        "fal refused the content (hate, violence): prompt: The content was flagged by a content checker."
    )
    assert (error.phase, error.retryable) == ("result", False)
    assert error.request_id == fake_fal.submissions[0]["request_id"]
    assert fake_fal.counts == _counts(cancel=0)


def test_content_policy_error_type_header(fake_fal: FakeFalServer) -> None:
    fake_fal.inject(
        "submit",
        status_code=400,
        body={"detail": "Unsafe prompt"},
        headers={"X-Fal-Error-Type": "content_policy_violation"},
    )
    with pytest.raises(ContentModerationError) as caught:
        generate_image(fake_fal.image_config(), ImageGenerationRequest(prompt="x"))
    assert caught.value.message == "fal refused the content: Unsafe prompt"


def test_completed_with_error_is_a_generation_failure(fake_fal: FakeFalServer) -> None:
    fake_fal.inject(
        "status",
        status_code=200,
        body={
            "status": "COMPLETED",
            "logs": [{"message": "loading"}],
            "metrics": {},
            "error": "Runner disconnected",
            "error_type": "runner_disconnected",
        },
    )
    with pytest.raises(GenerationFailedError) as caught:
        generate_video(fake_fal.video_config(), REQUEST)
    job_id = fake_fal.submissions[0]["request_id"]
    assert caught.value.message == f"fal job {job_id} failed [runner_disconnected]: Runner disconnected"
    assert (caught.value.request_id, caught.value.phase) == (job_id, "poll")
    assert caught.value.raw_response["error_type"] == "runner_disconnected"
    assert fake_fal.counts == _counts(status=1, result=0, cancel=0)  # a failed job is not cancelled


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "JSONDecodeError"),
        ({"status": "PAUSED"}, "unexpected status 'PAUSED'"),
        ({"queue_position": 1}, "unexpected status None"),
        (["IN_QUEUE"], "the status is not a JSON object"),
    ],
)
def test_unusable_status_answers(fake_fal: FakeFalServer, body: object, reason: str) -> None:
    fake_fal.inject("status", status_code=202, body=body)
    with pytest.raises(GenerationFailedError) as caught:
        generate_video(fake_fal.video_config(), REQUEST)
    assert caught.value.message.startswith("fal sent an unusable answer to the status request (")
    assert reason in caught.value.message
    assert caught.value.request_id == fake_fal.submissions[0]["request_id"]
    assert fake_fal.counts == _counts(status=1, result=0, cancel=1)


def test_status_with_odd_cosmetic_fields_still_progresses(fake_fal: FakeFalServer) -> None:
    fake_fal.inject("status", status_code=202, body={"status": "IN_QUEUE", "queue_position": "3"})
    fake_fal.inject("status", status_code=202, body={"status": "IN_PROGRESS", "logs": "oops"})
    updates: list = []
    generate_video(fake_fal.video_config(), REQUEST, on_progress=updates.append)
    assert [(u.status, u.queue_position, u.logs, u.update) for u in updates[1:3]] == [
        ("queued", None, (), {"status": "IN_QUEUE", "queue_position": "3"}),
        ("processing", None, (), {"status": "IN_PROGRESS", "logs": "oops"}),
    ]
    assert fake_fal.counts == _counts(status=7)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"video": None, "seed": 1}, "finished without a video URL"),
        ({"video": {"url": ""}}, "finished without a video URL"),
        ({"video": 12}, "finished without a video URL"),
        (b"<html>", "unusable answer to the result request (JSONDecodeError"),
        (["a"], "unusable answer to the result request (the result is not a JSON object)"),
    ],
)
def test_unusable_video_results(fake_fal: FakeFalServer, body: object, message: str) -> None:
    fake_fal.inject("result", status_code=200, body=body)
    with pytest.raises(GenerationFailedError) as caught:
        generate_video(fake_fal.video_config(), REQUEST)
    assert message in caught.value.message
    assert (caught.value.phase, caught.value.request_id) == (
        "result",
        fake_fal.submissions[0]["request_id"],
    )
    assert fake_fal.counts == _counts()


def test_image_result_without_urls(fake_fal: FakeFalServer) -> None:
    fake_fal.inject("result", status_code=200, body={"images": [{"url": "https://x/1.png"}, {}]})
    with pytest.raises(GenerationFailedError) as caught:
        generate_image(fake_fal.image_config(), ImageGenerationRequest(prompt="x"))
    assert caught.value.message.endswith("finished without image URLs")


def test_video_result_alternatives(make_server) -> None:
    server = make_server(
        result_factory=lambda s: {
            "video_url": "https://cdn.example.com/v.mp4",
            "audio": {"url": "https://cdn.example.com/a.wav"},
        }
    )
    response = generate_video(server.video_config(), REQUEST)
    assert (response.video, response.audio_url, response.content_type) == (
        "https://cdn.example.com/v.mp4",
        "https://cdn.example.com/a.wav",
        None,
    )


def test_oversized_status_answer_at_the_default_cap(fake_fal: FakeFalServer) -> None:
    fake_fal.inject("status", "huge", size=48 * 1024 * 1024)
    with pytest.raises(GenerationFailedError) as caught:
        generate_video(fake_fal.video_config(), REQUEST)
    assert "the answer exceeded 33554432 bytes" in caught.value.message


def test_stalled_status_times_out_and_cancels_once(fake_fal: FakeFalServer) -> None:
    fake_fal.inject("status", "stall")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        generate_video(fake_fal.video_config(timeout=1), REQUEST)
    assert time.monotonic() - started < 5
    assert fake_fal.counts == _counts(status=1, result=0, cancel=1)


async def test_a_stalled_result_keeps_the_completed_job_for_collection(fake_fal: FakeFalServer) -> None:
    fake_fal.inject("result", "stall")
    with pytest.raises(ResultNotCollectedError) as caught:
        await generate_video_async(fake_fal.video_config(timeout=1), REQUEST)
    assert type(caught.value.__cause__) is TimeoutError
    assert fake_fal.counts == _counts(cancel=0)
    response = await caught.value.handle.result_async()
    assert response.request_id == fake_fal.submissions[0]["request_id"]
    assert fake_fal.counts["submit"] == 1


def _assert_cancelled_once(server: FakeFalServer, error: TimeoutError) -> None:
    job_id = server.submissions[0]["request_id"]
    assert error.request_id == job_id
    assert error.attempts[0].cancel_status == "cancelled"
    assert server.counts["submit"] == 1
    assert server.counts["cancel"] == 1
    assert server.jobs[job_id]["cancelled"] is True


def test_deadline_while_queued_cancels_exactly_once(make_server) -> None:
    server = make_server(queue_polls=10_000)
    with pytest.raises(TimeoutError) as caught:
        generate_video(server.video_config(timeout=1, poll_interval=0.05), REQUEST)
    _assert_cancelled_once(server, caught.value)


async def test_deadline_while_queued_cancels_exactly_once_async(make_server) -> None:
    server = make_server(queue_polls=10_000)
    with pytest.raises(TimeoutError) as caught:
        await generate_video_async(server.video_config(timeout=1, poll_interval=0.05), REQUEST)
    _assert_cancelled_once(server, caught.value)


def test_wrong_key_is_a_401(fake_fal: FakeFalServer) -> None:
    with pytest.raises(HTTPError) as caught:
        generate_video(fake_fal.video_config(api_key="fal-wrong-key-123"), REQUEST)
    assert caught.value.status_code == 401
    assert caught.value.retryable is False
    assert caught.value.message == "fal answered HTTP 401: Authentication is required"
    assert fake_fal.submissions == []


def test_unknown_job_is_a_404(fake_fal: FakeFalServer) -> None:
    fake_fal.inject("status", status_code=404, body={"detail": "Request not found"})
    with pytest.raises(HTTPError) as caught:
        generate_video(fake_fal.video_config(), REQUEST)
    assert (caught.value.status_code, caught.value.phase) == (404, "poll")
