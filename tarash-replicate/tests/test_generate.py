"""End to end through the public API (core's engine and transport) against the fake Replicate API."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tarash.tarash_gateway import (
    ContentModerationError,
    GenerationFailedError,
    ImageGenerationRequest,
    ImageType,
    MediaContent,
    TimeoutError,
    UnknownSubmissionError,
    ValidationError,
    VideoGenerationRequest,
    generate_image,
    generate_video,
    set_ledger,
)
from tarash_replicate import expires_at
from tarash_replicate.testing import FakeReplicateServer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


@pytest.fixture(autouse=True)
def _ledger_off() -> Iterator[None]:
    set_ledger("off")
    yield
    set_ledger(None)


@pytest.fixture
def fake() -> Iterator[FakeReplicateServer]:
    with FakeReplicateServer(starting_polls=1, processing_polls=2) as server:
        yield server


def test_video_from_submit_to_output_with_progress_from_the_logs(fake: FakeReplicateServer) -> None:
    updates: list[Any] = []
    config = fake.video_config("google/veo-3.1-fast")
    request = VideoGenerationRequest(prompt="a lighthouse", duration_seconds=6, resolution="720p")

    video = generate_video(config, request, on_progress=updates.append)

    [submission] = fake.submissions
    assert submission["path"] == "/v1/models/google/veo-3.1-fast/predictions"
    assert submission["body"] == {"input": {"prompt": "a lighthouse", "duration": 6, "resolution": "720p"}}
    assert submission["headers"]["authorization"] == "***REDACTED***"
    assert "prefer" not in submission["headers"]
    assert fake.counts == {
        "submit": 1,
        "status": 4,
        "result": 1,
        "cancel": 0,
        "list": 0,
        "upload": 0,
        "schema": 0,
        "secret": 0,
    }
    assert video.request_id == submission["id"]
    assert video.video == f"https://replicate.delivery/xezq/{submission['id']}/output.mp4"
    assert video.content_type == "video/mp4"
    assert [(u.status, u.progress_percent) for u in updates] == [
        ("queued", None),
        ("queued", None),
        ("processing", 50.0),
        ("processing", 100.0),
        ("completed", 100.0),
    ]
    assert updates[2].logs == (" 50%|#####     | 1/2 [00:01<00:00,  1.00it/s]",)
    assert updates[3].logs == ("100%|##########| 2/2 [00:02<00:00,  1.00it/s]",)
    created = datetime.fromisoformat(video.raw_response["created_at"].replace("Z", "+00:00"))
    assert expires_at(video) == created + timedelta(hours=1)


def test_a_fast_image_model_answers_within_prefer_wait_with_no_poll(fake: FakeReplicateServer) -> None:
    images = generate_image(
        fake.image_config("black-forest-labs/flux-schnell", timeout=100),
        ImageGenerationRequest(prompt="a fox", n=2),
    )
    [submission] = fake.submissions
    assert submission["headers"]["prefer"] == "wait=60"
    assert submission["body"] == {"input": {"prompt": "a fox", "num_outputs": 2}}
    assert fake.counts["submit"] == 1 and fake.counts["status"] == 0 and fake.counts["result"] == 0
    assert images.images == [
        f"https://replicate.delivery/xezq/{submission['id']}/out-0.webp",
        f"https://replicate.delivery/xezq/{submission['id']}/out-1.webp",
    ]
    assert images.content_type == "image/webp"


def test_a_lost_create_answer_is_never_resubmitted(fake: FakeReplicateServer) -> None:
    fake.inject("submit", "drop")
    with pytest.raises(UnknownSubmissionError) as caught:
        generate_video(fake.video_config("google/veo-3"), VideoGenerationRequest(prompt="x"))
    assert caught.value.phase == "submit"
    assert fake.counts["submit"] == 1
    assert len(fake.submissions) == 1  # the prediction exists (and may be billed): exactly one


def test_the_deadline_cancels_the_prediction_exactly_once(fake: FakeReplicateServer) -> None:
    config = fake.video_config(
        "google/veo-3", base_url=fake.url + "/_faults/slow", timeout=1.0, poll_interval=0.05
    )
    with pytest.raises(TimeoutError) as caught:
        generate_video(config, VideoGenerationRequest(prompt="x"))
    [submission] = fake.submissions
    assert fake.counts["cancel"] == 1
    assert fake.prediction(submission["id"])["status"] == "canceled"
    assert caught.value.attempts[0].cancel_status == "cancelled"


def test_a_422_names_the_unified_field_the_input_came_from(fake: FakeReplicateServer) -> None:
    fake.schemas["google/veo-3"] = {
        "components": {
            "schemas": {
                "Input": {"properties": {"prompt": {"type": "string"}, "duration": {"enum": [4, 6, 8]}}},
            }
        }
    }
    with pytest.raises(ValidationError) as caught:
        generate_video(
            fake.video_config("google/veo-3"),
            VideoGenerationRequest(prompt="x", extra_params={"duration": 5}),
        )
    assert caught.value.field == "duration_seconds"
    assert caught.value.phase == "submit"
    assert fake.counts["submit"] == 1 and fake.counts["status"] == 0


def test_a_safety_refusal_is_a_content_moderation_error(fake: FakeReplicateServer) -> None:
    config = fake.video_config("google/veo-3", base_url=fake.url + "/_faults/nsfw")
    with pytest.raises(ContentModerationError) as caught:
        generate_video(config, VideoGenerationRequest(prompt="x"))
    [submission] = fake.submissions
    assert caught.value.request_id == submission["id"]
    assert caught.value.phase == "poll"
    assert fake.counts["result"] == 0


def test_a_failed_prediction_is_a_generation_failed_error_with_its_id(fake: FakeReplicateServer) -> None:
    config = fake.video_config("google/veo-3", base_url=fake.url + "/_faults/job-fails")
    with pytest.raises(GenerationFailedError, match="CUDA out of memory") as caught:
        generate_video(config, VideoGenerationRequest(prompt="x"))
    assert caught.value.request_id == fake.submissions[0]["id"]


def test_an_impossible_request_sends_nothing(fake: FakeReplicateServer) -> None:
    with pytest.raises(ValidationError) as caught:
        generate_video(
            fake.video_config("google/veo-3"), VideoGenerationRequest(prompt="x", duration_seconds=7)
        )
    assert caught.value.field == "duration_seconds"
    assert sum(fake.counts.values()) == 0


def test_a_small_local_image_goes_inline_as_a_data_uri(fake: FakeReplicateServer) -> None:
    image = MediaContent(content=PNG, content_type="image/png")
    request = VideoGenerationRequest(prompt="x", image_list=[ImageType(image=image, type="first_frame")])
    generate_video(fake.video_config("wan-video/wan-2.5-i2v"), request)
    assert fake.counts["upload"] == 0
    assert (
        fake.submissions[0]["body"]["input"]["image"]
        == "data:image/png;base64," + base64.b64encode(PNG).decode()
    )


def test_a_local_file_and_local_bytes_are_read_into_the_same_inputs(
    fake: FakeReplicateServer, tmp_path: Path
) -> None:
    (tmp_path / "first.png").write_bytes(PNG)
    big = PNG + b"\x01" * (256 * 1024)
    request = VideoGenerationRequest(
        prompt="x",
        image_list=[
            {"image": tmp_path / "first.png", "type": "first_frame"},
            {"image": big, "type": "last_frame"},
        ],
    )
    generate_video(fake.video_config("kwaivgi/kling-v2.5-turbo-pro"), request)
    [upload] = fake.uploads
    assert (upload["content"], upload["content_type"]) == (big, "image/png")
    sent = fake.submissions[0]["body"]["input"]
    assert sent["start_image"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert sent["end_image"] == f"{fake.url}/v1/files/{upload['id']}"


def test_a_large_local_image_is_uploaded_once_then_referenced(fake: FakeReplicateServer) -> None:
    big = PNG + b"\x01" * (256 * 1024)
    request = VideoGenerationRequest(
        prompt="x",
        image_list=[ImageType(image=MediaContent(content=big, content_type="image/png"), type="first_frame")],
    )
    fake.inject("submit", "drop")
    with pytest.raises(UnknownSubmissionError):
        generate_video(fake.video_config("wan-video/wan-2.5-i2v"), request)
    [upload] = fake.uploads
    assert (
        upload["content"] == big
        and upload["content_type"] == "image/png"
        and upload["filename"] == "input.png"
    )
    assert fake.counts["upload"] == 1 and fake.counts["submit"] == 1
    assert fake.submissions[0]["body"]["input"]["image"] == f"{fake.url}/v1/files/{upload['id']}"


def test_a_model_in_no_table_is_checked_against_its_published_schema(fake: FakeReplicateServer) -> None:
    fake.schemas["acme/clipmaker"] = {
        "components": {
            "schemas": {
                "Input": {
                    "required": ["prompt", "style"],
                    "properties": {
                        "prompt": {"type": "string"},
                        "duration": {"allOf": [{"$ref": "#/components/schemas/duration"}]},
                        "start_image": {"type": "string"},
                        "style": {"enum": ["film", "anime"]},
                    },
                },
                "duration": {"type": "integer", "enum": [5, 10]},
            }
        }
    }
    config = fake.video_config("acme/clipmaker")
    with pytest.raises(ValidationError) as caught:
        generate_video(
            config, VideoGenerationRequest(prompt="x", duration_seconds=7, extra_params={"style": "film"})
        )
    assert (caught.value.field, caught.value.allowed) == ("duration_seconds", (5, 10))
    assert fake.counts["schema"] == 1 and fake.counts["submit"] == 0

    request = VideoGenerationRequest(
        prompt="x",
        duration_seconds=10,
        image_list=[ImageType(image="https://e.com/a.png", type="first_frame")],
        extra_params={"style": "anime"},
    )
    generate_video(config, request)
    assert fake.counts["schema"] == 1, "the schema is cached per process"
    assert fake.submissions[0]["body"] == {
        "input": {"prompt": "x", "duration": 10, "start_image": "https://e.com/a.png", "style": "anime"}
    }


def test_a_model_without_a_schema_sends_the_prompt_and_extra_params(fake: FakeReplicateServer) -> None:
    generate_video(
        fake.video_config("acme/unknown-video"), VideoGenerationRequest(prompt="x", extra_params={"fps": 8})
    )
    assert fake.counts["schema"] == 1
    assert fake.submissions[0]["body"] == {"input": {"prompt": "x", "fps": 8}}


def test_an_output_deleted_after_the_retention_hour_is_a_typed_error(fake: FakeReplicateServer) -> None:
    from tarash.tarash_gateway import submit_video

    handle = submit_video(fake.video_config("google/veo-3"), VideoGenerationRequest(prompt="x"))
    fake.finish(handle.job_id)
    fake.expire(handle.job_id)
    with pytest.raises(GenerationFailedError, match="one hour") as caught:
        handle.wait()
    assert caught.value.retryable is False


CHILD_GENERATE = """
import os
from tarash.tarash_gateway import VideoGenerationConfig, VideoGenerationRequest, generate_video
config = VideoGenerationConfig(model="google/veo-3", provider="replicate",
                               base_url=os.environ["FAKE_REPLICATE_URL"], poll_interval=0.01, timeout=60)
generate_video(config, VideoGenerationRequest(prompt="survive me"))
"""
CHILD_RESUME = """
import json
from tarash.tarash_gateway import resume
print(json.dumps([{"state": o.state, "job_id": o.job_id,
                   "video": o.response.video if o.response is not None else None} for o in resume()]))
"""


def test_killed_mid_poll_the_job_is_resumed_without_a_second_create(tmp_path: Path) -> None:
    with FakeReplicateServer(starting_polls=1, processing_polls=50) as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REPLICATE_", "TARASH_"))}
        env.update(
            REPLICATE_API_TOKEN=fake.api_token or "",
            FAKE_REPLICATE_URL=fake.url,
            TARASH_LEDGER=str(tmp_path / "ledger.db"),
            TARASH_HOME=str(tmp_path),
        )
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD_GENERATE], env=env, stderr=subprocess.PIPE, text=True
        )
        try:
            deadline = time.monotonic() + 20
            while fake.counts["status"] < 3:
                assert time.monotonic() < deadline, "the child never polled"
                time.sleep(0.005)
        finally:
            child.send_signal(signal.SIGKILL)
            child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL
        [submission] = fake.submissions
        fake.finish(submission["id"])

        done = subprocess.run(
            [sys.executable, "-c", CHILD_RESUME],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        outcomes = json.loads(done.stdout)
        assert outcomes == [
            {
                "state": "completed",
                "job_id": submission["id"],
                "video": f"https://replicate.delivery/xezq/{submission['id']}/output.mp4",
            }
        ]
        assert fake.counts["submit"] == 1, "resume must never create a prediction"
