"""A submit that may have reached fal is never sent again, whatever fal-client would do.

fal-client 1.0.3 retries every request, the submit POST included, up to 10 times on transport
errors, read timeouts and 408/409/429/502/503/504. Each case below would create extra (billed)
jobs on the fake server if that retry loop were reachable.
"""

from __future__ import annotations

import socket
import time

import pytest

from tarash.tarash_gateway import (
    HTTPConnectionError,
    HTTPError,
    UnknownSubmissionError,
    VideoGenerationRequest,
    generate_video,
    generate_video_async,
    get_job,
)
from tarash_fal.testing import FakeFalServer

NOTHING_AFTER_SUBMIT = {"submit": 1, "status": 0, "result": 0, "cancel": 0}
REQUEST = VideoGenerationRequest(prompt="a cat")


def _assert_one_job(server: FakeFalServer) -> None:
    assert server.counts == NOTHING_AFTER_SUBMIT
    assert len(server.submissions) == 1
    assert len(server.jobs) == 1


@pytest.mark.parametrize("fault", ["drop", "truncate"])
def test_lost_submit_answer_is_unknown_submission_sync(fake_fal: FakeFalServer, fault: str) -> None:
    fake_fal.inject("submit", fault)
    with pytest.raises(UnknownSubmissionError) as caught:
        generate_video(fake_fal.video_config(), REQUEST)
    assert "It was NOT resubmitted" in caught.value.message
    assert (caught.value.provider, caught.value.retryable) == ("fal", False)
    _assert_one_job(fake_fal)


@pytest.mark.parametrize("fault", ["drop", "truncate"])
async def test_lost_submit_answer_is_unknown_submission_async(fake_fal: FakeFalServer, fault: str) -> None:
    fake_fal.inject("submit", fault)
    with pytest.raises(UnknownSubmissionError):
        await generate_video_async(fake_fal.video_config(), REQUEST)
    _assert_one_job(fake_fal)


def test_stalled_submit_is_unknown_submission_at_the_deadline(fake_fal: FakeFalServer) -> None:
    fake_fal.inject("submit", "stall")
    with pytest.raises(UnknownSubmissionError) as caught:
        generate_video(fake_fal.video_config(timeout=1), REQUEST)
    assert "(no answer within the 1s deadline)" in caught.value.message
    assert "It was NOT resubmitted: the job may exist and may be billed" in caught.value.message
    _assert_one_job(fake_fal)


async def test_stalled_submit_async_is_unknown_submission_at_the_deadline(fake_fal: FakeFalServer) -> None:
    fake_fal.inject("submit", "stall")
    backup = fake_fal.video_config(model="fal-ai/veo3/fast")
    config = fake_fal.video_config(timeout=1, fallback_configs=[backup])
    started = time.monotonic()
    with pytest.raises(UnknownSubmissionError) as caught:
        await generate_video_async(config, REQUEST)
    assert time.monotonic() - started < 1.5
    assert caught.value.message.startswith(
        "The submit to fal may have reached it but its answer was lost "
        "(no answer within the 1s deadline). It was NOT resubmitted: the job may exist and may be "
        "billed. Submission key: "
    )
    assert (caught.value.phase, caught.value.retryable) == ("submit", False)
    assert [a.status for a in caught.value.attempts] == ["failed"]
    record = get_job(caught.value.message.rsplit("Submission key: ", 1)[1].rstrip("."))
    assert record is not None
    assert (record.state, record.job_id) == ("unknown", None)
    _assert_one_job(fake_fal)


@pytest.mark.parametrize(
    ("status_code", "body", "retry_after"),
    [
        (503, "<html><body>503 Service Unavailable<hr>nginx</body></html>", None),
        (408, {"detail": "Request timeout"}, None),
        (500, {"detail": "Internal error"}, None),
    ],
)
def test_fal_client_retry_statuses_are_sent_once(
    fake_fal: FakeFalServer, status_code: int, body: object, retry_after: float | None
) -> None:
    fake_fal.inject("submit", status_code=status_code, body=body, retry_after=retry_after)
    with pytest.raises(HTTPError) as caught:
        generate_video(fake_fal.video_config(), REQUEST)
    assert (caught.value.status_code, caught.value.retry_after) == (status_code, retry_after)
    assert caught.value.phase == "submit"
    assert fake_fal.counts == NOTHING_AFTER_SUBMIT
    assert fake_fal.submissions == []


def test_429_past_the_deadline_fails_fast_with_fals_answer(fake_fal: FakeFalServer) -> None:
    fake_fal.inject("submit", status_code=429, body={"detail": "Rate limit exceeded"}, retry_after="2")
    started = time.monotonic()
    with pytest.raises(HTTPError) as caught:
        generate_video(fake_fal.video_config(timeout=1), REQUEST)
    assert time.monotonic() - started < 0.5
    assert caught.value.message == "fal answered HTTP 429: Rate limit exceeded"
    assert (caught.value.raw_response, caught.value.retry_after) == ({"detail": "Rate limit exceeded"}, 2.0)
    assert caught.value.retryable is True
    assert fake_fal.counts == NOTHING_AFTER_SUBMIT


def test_429_at_submit_was_not_accepted_so_it_is_sent_again_after_retry_after(
    fake_fal: FakeFalServer,
) -> None:
    fake_fal.inject("submit", status_code=429, body={"detail": "Rate limit exceeded"}, retry_after="0.3")
    started = time.monotonic()
    response = generate_video(fake_fal.video_config(), REQUEST)
    assert time.monotonic() - started >= 0.3
    assert fake_fal.counts["submit"] == 2
    assert [s["request_id"] for s in fake_fal.submissions] == [response.request_id]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_refused_connection_was_never_sent(fake_fal: FakeFalServer) -> None:
    config = fake_fal.video_config(base_url=f"https://127.0.0.1:{_closed_port()}")
    with pytest.raises(HTTPConnectionError) as caught:
        generate_video(config, REQUEST)
    assert caught.value.request_sent is False
    assert caught.value.message.startswith("fal unreachable: ConnectError: ")
    assert [a.error_type for a in caught.value.attempts] == ["HTTPConnectionError"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>gateway</html>", "JSONDecodeError"),
        ({"status": "IN_QUEUE"}, "request_id None is not an id"),
        (["not", "an", "object"], "request_id None is not an id"),
    ],
)
def test_unusable_submit_answer_is_unknown_submission(
    fake_fal: FakeFalServer, body: object, reason: str
) -> None:
    fake_fal.inject("submit", status_code=200, body=body)
    with pytest.raises(UnknownSubmissionError) as caught:
        generate_video(fake_fal.video_config(), REQUEST)
    assert reason in caught.value.message
    assert fake_fal.counts == NOTHING_AFTER_SUBMIT


def test_submit_answer_with_an_unsafe_request_id(fake_fal: FakeFalServer) -> None:
    fake_fal.inject(
        "submit",
        status_code=200,
        body={
            "request_id": "../../admin",
            "response_url": "x",
            "status_url": "x",
            "cancel_url": "x",
        },
    )
    with pytest.raises(UnknownSubmissionError) as caught:
        generate_video(fake_fal.video_config(), REQUEST)
    assert "request_id '../../admin' is not an id" in caught.value.message
    assert fake_fal.counts == NOTHING_AFTER_SUBMIT


def test_oversized_submit_answer(fake_fal: FakeFalServer) -> None:
    fake_fal.inject("submit", "huge", size=1024 * 1024)
    config = fake_fal.video_config(provider_config={"max_response_bytes": 64 * 1024})
    with pytest.raises(UnknownSubmissionError) as caught:
        generate_video(config, REQUEST)
    assert "the answer exceeded 65536 bytes" in caught.value.message
    _assert_one_job(fake_fal)
