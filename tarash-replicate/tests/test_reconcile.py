"""A create whose answer was lost: ``resume()`` finds the prediction in ``GET /v1/predictions``
and collects it with no new create, or records that none was created, or says it cannot tell."""

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
from tarash_replicate.testing import FakeReplicateServer


@pytest.fixture(autouse=True)
def _ledger(tmp_path: Path) -> Iterator[None]:
    set_ledger(tmp_path / "jobs.db")
    yield
    set_ledger(None)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeReplicateServer]:
    with FakeReplicateServer(starting_polls=1, processing_polls=1) as server:
        # The ledger keeps no API key: resume() finds the token where a new process would.
        monkeypatch.setenv("REPLICATE_API_TOKEN", str(server.api_token))
        yield server


def lose_the_create(fake: FakeReplicateServer, fault: str = "drop", prompt: str = "a lighthouse") -> str:
    """A generate whose create answer is lost; returns the ledger key of the unknown submission."""
    fake.inject("submit", fault)
    with pytest.raises(UnknownSubmissionError):
        generate_video(fake.video_config("google/veo-3"), VideoGenerationRequest(prompt=prompt))
    [record] = [r for r in list_jobs() if r.state == "unknown"]
    assert (record.job_id, record.finished) == (None, True)
    return record.key


def test_resume_finds_the_lost_prediction_and_collects_it_without_a_new_create(
    fake: FakeReplicateServer,
) -> None:
    key = lose_the_create(fake)
    [submission] = fake.submissions
    assert fake.counts["submit"] == 1

    [outcome] = resume()

    assert (outcome.key, outcome.state, outcome.job_id) == (key, "completed", submission["id"])
    assert outcome.response is not None
    assert outcome.response.video == f"https://replicate.delivery/xezq/{submission['id']}/output.mp4"
    assert fake.counts["submit"] == 1 and fake.counts["list"] == 1
    record = get_job(key)
    assert record is not None
    assert (record.state, record.finished, record.job_id) == ("completed", True, submission["id"])
    assert resume() == []
    assert fake.counts["list"] == 1


async def test_resume_async_finds_the_lost_prediction(fake: FakeReplicateServer) -> None:
    key = lose_the_create(fake)
    [submission] = fake.submissions

    [outcome] = await resume_async()

    assert (outcome.key, outcome.state, outcome.job_id) == (key, "completed", submission["id"])
    assert fake.counts["submit"] == 1 and fake.counts["list"] == 1


def test_a_create_that_never_arrived_is_recorded_not_found(fake: FakeReplicateServer) -> None:
    key = lose_the_create(fake, fault="lost")
    assert fake.submissions == [] and fake.counts["submit"] == 1

    [outcome] = resume()

    assert (outcome.key, outcome.state, outcome.job_id, outcome.response) == (key, "not_found", None, None)
    assert outcome.error is not None
    assert "created no job" in outcome.error.message
    assert "none of the google/veo-3 predictions created" in outcome.error.message
    record = get_job(key)
    assert record is not None and (record.state, record.finished) == ("not_found", True)
    assert fake.counts == {**dict.fromkeys(fake.counts, 0), "submit": 1, "list": 1}
    assert resume() == []


def test_two_predictions_with_the_same_prompt_cannot_be_told_apart(fake: FakeReplicateServer) -> None:
    generate_video(fake.video_config("google/veo-3"), VideoGenerationRequest(prompt="a lighthouse"))
    key = lose_the_create(fake)
    first, second = fake.submissions

    [outcome] = resume()

    assert (outcome.key, outcome.state, outcome.job_id) == (key, "unknown", None)
    assert isinstance(outcome.error, UnknownSubmissionError)
    assert f"2 predictions have the same prompt: {second['id']}, {first['id']}" in outcome.error.message
    record = get_job(key)
    assert record is not None and (record.state, record.finished) == ("unknown", True)
    assert fake.counts["submit"] == 2
    [again] = resume()
    assert again.state == "unknown" and fake.counts["list"] == 2 and fake.counts["submit"] == 2


def test_a_prediction_whose_input_was_removed_cannot_be_matched(fake: FakeReplicateServer) -> None:
    key = lose_the_create(fake)
    [submission] = fake.submissions
    fake.expire(submission["id"])

    [outcome] = resume(key)

    assert (outcome.state, outcome.job_id) == ("unknown", None)
    assert outcome.error is not None and "had their input removed" in outcome.error.message
    assert fake.counts["submit"] == 1


def test_other_prompts_and_models_in_the_window_are_not_matches(fake: FakeReplicateServer) -> None:
    generate_video(fake.video_config("google/veo-3"), VideoGenerationRequest(prompt="a harbour"))
    generate_video(fake.video_config("google/veo-3-fast"), VideoGenerationRequest(prompt="a lighthouse"))
    key = lose_the_create(fake, fault="lost")
    fake.page_size = 1

    [outcome] = resume()

    assert (outcome.key, outcome.state) == (key, "not_found")
    assert fake.counts["list"] == 2 and fake.counts["submit"] == 3
