"""A submit whose answer was lost: ``resume()`` finds the request in fal's platform API (requests
by endpoint) and collects it with no new submit; anything less certain stays ``unknown``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tarash.tarash_gateway import (
    UnknownSubmissionError,
    VideoGenerationRequest,
    generate_video,
    set_ledger,
)
from tarash.tarash_gateway.jobs import get_job, list_jobs, resume, resume_async
from tarash_fal.testing import FakeFalServer


@pytest.fixture(autouse=True)
def _ledger(tmp_path: Path) -> Iterator[None]:
    set_ledger(tmp_path / "jobs.db")
    yield
    set_ledger(None)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeFalServer]:
    from tarash.tarash_gateway import default_gateway

    with FakeFalServer(queue_polls=1, processing_polls=1) as server:
        # The ledger keeps no API key: resume() finds the key where a new process would.
        monkeypatch.setenv("FAL_KEY", server.api_key)
        yield server
    default_gateway().transport.close()


def lose_the_submit(fake: FakeFalServer, fault: str = "drop", prompt: str = "a lighthouse") -> str:
    """A generate whose submit answer is lost; returns the ledger key of the unknown submission."""
    fake.inject("submit", fault)
    with pytest.raises(UnknownSubmissionError):
        generate_video(fake.video_config(), VideoGenerationRequest(prompt=prompt))
    [record] = [r for r in list_jobs() if r.state == "unknown"]
    assert (record.job_id, record.finished) == (None, True)
    return record.key


def test_resume_finds_the_lost_request_and_collects_it_without_a_new_submit(fake: FakeFalServer) -> None:
    key = lose_the_submit(fake)
    [submission] = fake.submissions
    fake.complete(submission["request_id"])

    [outcome] = resume()

    assert (outcome.key, outcome.state, outcome.job_id) == (key, "completed", submission["request_id"])
    assert outcome.response is not None and outcome.response.request_id == submission["request_id"]
    assert fake.counts["submit"] == 1 and fake.counts["result"] == 1
    assert fake.platform_counts["requests"] == 1
    record = get_job(key)
    assert record is not None
    assert (record.state, record.finished, record.job_id) == ("completed", True, submission["request_id"])
    assert resume() == []
    assert fake.platform_counts["requests"] == 1


async def test_resume_async_finds_the_lost_request(fake: FakeFalServer) -> None:
    key = lose_the_submit(fake)
    [submission] = fake.submissions
    fake.complete(submission["request_id"])

    [outcome] = await resume_async()

    assert (outcome.key, outcome.state, outcome.job_id) == (key, "completed", submission["request_id"])
    assert fake.counts["submit"] == 1 and fake.platform_counts["requests"] == 1


def test_a_request_still_queued_is_not_listed_so_resume_cannot_tell_yet(fake: FakeFalServer) -> None:
    key = lose_the_submit(fake)
    [submission] = fake.submissions

    [first] = resume()

    assert (first.key, first.state, first.job_id) == (key, "unknown", None)
    assert isinstance(first.error, UnknownSubmissionError)
    assert "fal lists a request once it has ended" in first.error.message
    record = get_job(key)
    assert record is not None and (record.state, record.finished) == ("unknown", True)
    fake.complete(submission["request_id"])
    [second] = resume()
    assert (second.state, second.job_id) == ("completed", submission["request_id"])
    assert fake.counts["submit"] == 1 and fake.platform_counts["requests"] == 2


def test_a_submit_that_never_arrived_stays_unknown_never_resubmitted(fake: FakeFalServer) -> None:
    key = lose_the_submit(fake, fault="lost")
    assert fake.submissions == []

    [outcome] = resume()

    assert (outcome.key, outcome.state) == (key, "unknown")
    assert fake.counts == {"submit": 1, "status": 0, "result": 0, "cancel": 0}
    assert fake.platform_counts["requests"] == 1


def test_two_finished_requests_with_the_same_prompt_cannot_be_told_apart(fake: FakeFalServer) -> None:
    generate_video(fake.video_config(), VideoGenerationRequest(prompt="a lighthouse"))
    key = lose_the_submit(fake)
    first, second = fake.submissions
    fake.complete(second["request_id"])

    [outcome] = resume()

    assert (outcome.key, outcome.state) == (key, "unknown")
    assert outcome.error is not None
    assert "2 requests have the same prompt" in outcome.error.message
    assert first["request_id"] in outcome.error.message and second["request_id"] in outcome.error.message
    assert fake.counts["submit"] == 2
