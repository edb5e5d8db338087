"""Provider ``google`` (Gemini Developer API): each route's exact body and answer, against the fake."""

from __future__ import annotations

import base64

import pytest

from tarash.tarash_gateway.exceptions import (
    ContentModerationError,
    GenerationFailedError,
    HTTPError,
    ValidationError,
)
from tarash.tarash_gateway.models import (
    ImageGenerationConfig,
    ImageGenerationRequest,
    MediaContent,
    VideoGenerationConfig,
    VideoGenerationRequest,
)
from tarash_google import _flows
from tarash_google.testing import PNG_BYTES, VIDEO_BYTES, FakeGoogle

from .conftest import context, drive, job_ref

PNG_B64 = base64.b64encode(PNG_BYTES).decode()


def video_config(fake: FakeGoogle, model: str = "veo-3.0-generate-001") -> VideoGenerationConfig:
    return VideoGenerationConfig(provider="google", model=model, base_url=fake.url, api_key=fake.api_key)


def run_video(
    fake: FakeGoogle, config: VideoGenerationConfig, request: VideoGenerationRequest
) -> tuple[object, object]:
    job = drive(_flows.submit("gemini", config, request, context()), fake.url, fake.api_key)
    ref = job_ref(job, config.model)
    states = []
    while True:
        status = drive(_flows.status("gemini", config, ref, context()), fake.url, fake.api_key)
        states.append(status.state)
        if status.state != "processing":
            break
    if status.state != "completed":
        return states, status
    return states, drive(_flows.result("gemini", config, ref, context()), fake.url, fake.api_key)


def test_veo_text_to_video_body_poll_and_download(fake: FakeGoogle) -> None:
    request = VideoGenerationRequest(
        prompt="a lighthouse at dawn",
        duration_seconds=8,
        aspect_ratio="16:9",
        resolution="1080p",
        negative_prompt="fog",
        extra_params={"person_generation": "allow_adult"},
    )
    states, response = run_video(fake, video_config(fake), request)
    assert fake.bodies("submit") == [
        {
            "instances": [{"prompt": "a lighthouse at dawn"}],
            "parameters": {
                "sampleCount": 1,
                "durationSeconds": 8,
                "aspectRatio": "16:9",
                "resolution": "1080p",
                "negativePrompt": "fog",
                "personGeneration": "allow_adult",
            },
        }
    ]
    submit = fake.requests[0]
    assert submit["method"] == "POST"
    assert submit["path"] == "/v1beta/models/veo-3.0-generate-001:predictLongRunning"
    assert submit["headers"]["x-goog-api-key"] == fake.api_key
    assert states == ["processing", "completed"]
    assert fake.counts == {"submit": 1, "status": 3, "result": 2, "cancel": 0, "token": 0}
    assert response.video == MediaContent(content=VIDEO_BYTES, content_type="video/mp4")
    assert response.request_id.startswith("models/veo-3.0-generate-001/operations/")
    download = [r for r in fake.requests if r["kind"] == "result"]
    assert download[0]["path"].endswith(":download") and download[0]["query"] == "alt=media"
    assert download[0]["headers"]["x-goog-api-key"] == fake.api_key
    assert "x-goog-api-key" not in {k.lower() for k in download[1]["headers"]}


def test_veo_first_and_last_frame_body(fake: FakeGoogle) -> None:
    request = VideoGenerationRequest(
        prompt="the door opens",
        image_list=[
            {"image": MediaContent(content=PNG_BYTES, content_type="image/png"), "type": "first_frame"},
            {"image": f"data:image/png;base64,{PNG_B64}", "type": "last_frame"},
        ],
    )
    drive(
        _flows.submit("gemini", video_config(fake, "veo-2.0-generate-001"), request, context()),
        fake.url,
        fake.api_key,
    )
    assert fake.bodies("submit") == [
        {
            "instances": [
                {
                    "prompt": "the door opens",
                    "image": {"bytesBase64Encoded": PNG_B64, "mimeType": "image/png"},
                    "lastFrame": {"bytesBase64Encoded": PNG_B64, "mimeType": "image/png"},
                }
            ],
            "parameters": {"sampleCount": 1},
        }
    ]


def test_veo_reference_images_fetched_from_url_then_sent_inline(
    fake: FakeGoogle, caplog: pytest.LogCaptureFixture
) -> None:
    request = VideoGenerationRequest(
        prompt="the same cat, running",
        image_list=[
            {"image": f"{fake.url}/_media/cat.png", "type": "reference"},
            {"image": MediaContent(content=PNG_BYTES, content_type="image/png"), "type": "style"},
        ],
    )
    with caplog.at_level("WARNING", logger="tarash_google"):
        drive(
            _flows.submit("gemini", video_config(fake, "veo-3.1-generate-preview"), request, context()),
            fake.url,
            fake.api_key,
        )
    image = {"bytesBase64Encoded": PNG_B64, "mimeType": "image/png"}
    assert fake.bodies("submit") == [
        {
            "instances": [
                {
                    "prompt": "the same cat, running",
                    "referenceImages": [
                        {"image": image, "referenceType": "asset"},
                        {"image": image, "referenceType": "style"},
                    ],
                }
            ],
            "parameters": {"sampleCount": 1},
        }
    ]
    fetch = fake.requests[0]
    assert fetch["path"] == "/_media/cat.png" and "x-goog-api-key" not in {
        k.lower() for k in fetch["headers"]
    }
    assert [r.getMessage() for r in caplog.records] == [
        "Google deprecated veo-3.1-generate-preview on 2026-10-22; use gemini-omni-1.2-flash instead"
    ]


def test_omni_interaction_body_poll_and_inline_video(fake: FakeGoogle) -> None:
    request = VideoGenerationRequest(
        prompt="a paper boat", duration_seconds=6, aspect_ratio="9:16", resolution="720p", seed=7
    )
    states, response = run_video(fake, video_config(fake, "gemini-omni-1.2-flash"), request)
    assert fake.requests[0]["path"] == "/v1beta/interactions"
    assert fake.bodies("submit") == [
        {
            "model": "gemini-omni-1.2-flash",
            "input": "a paper boat",
            "background": True,
            "generation_config": {"video_config": {"task": "text_to_video"}, "seed": 7},
            "response_format": {
                "type": "video",
                "aspect_ratio": "9:16",
                "duration": "6s",
                "resolution": "720p",
            },
        }
    ]
    assert states == ["processing", "completed"]
    assert response.video == MediaContent(content=VIDEO_BYTES, content_type="video/mp4")
    assert (
        response.raw_response["steps"][1]["content"][0]["data"]
        == f"<{len(base64.b64encode(VIDEO_BYTES))} base64 chars>"
    )
    assert fake.counts["status"] == 3 and fake.counts["submit"] == 1


def test_omni_first_frame_body(fake: FakeGoogle) -> None:
    request = VideoGenerationRequest(
        prompt="<FIRST_FRAME> comes alive",
        image_list=[
            {"image": MediaContent(content=PNG_BYTES, content_type="image/png"), "type": "first_frame"}
        ],
    )
    drive(
        _flows.submit("gemini", video_config(fake, "gemini-omni-1.2-flash"), request, context()),
        fake.url,
        fake.api_key,
    )
    assert fake.bodies("submit")[0]["input"] == [
        {"type": "text", "text": "<FIRST_FRAME> comes alive"},
        {"type": "image", "mime_type": "image/png", "data": PNG_B64},
    ]
    assert fake.bodies("submit")[0]["generation_config"] == {"video_config": {"task": "image_to_video"}}


def test_gemini_image_body_and_data_uri(fake: FakeGoogle) -> None:
    config = ImageGenerationConfig(
        provider="google", model="gemini-2.5-flash-image", base_url=fake.url, api_key=fake.api_key
    )
    request = ImageGenerationRequest(
        prompt="a red square",
        aspect_ratio="4:5",
        image_list=[
            {"image": MediaContent(content=PNG_BYTES, content_type="image/png"), "type": "reference"}
        ],
    )
    job = drive(_flows.submit("gemini", config, request, context(modality="image")), fake.url, fake.api_key)
    assert fake.requests[0]["path"] == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert fake.bodies("submit") == [
        {
            "contents": [
                {
                    "role": "user",
                    "parts": [
                        {"text": "a red square"},
                        {"inlineData": {"mimeType": "image/png", "data": PNG_B64}},
                    ],
                }
            ],
            "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "4:5"}},
        }
    ]
    ref = job_ref(job, config.model, modality="image")
    status = drive(_flows.status("gemini", config, ref, context(modality="image")), fake.url, fake.api_key)
    response = drive(_flows.result("gemini", config, ref, context(modality="image")), fake.url, fake.api_key)
    assert status.state == "completed"
    assert response.images == [f"data:image/png;base64,{PNG_B64}"] and response.content_type == "image/png"
    assert len(fake.requests) == 1
    with pytest.raises(GenerationFailedError, match="no longer held"):
        drive(_flows.result("gemini", config, ref, context(modality="image")), fake.url, fake.api_key)


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("[blocked] x", "Google blocked the prompt: PROHIBITED_CONTENT"),
        ("[filtered] x", "Google blocked the image: IMAGE_SAFETY: Unable to show the generated image."),
    ],
)
def test_gemini_image_safety_blocks(fake: FakeGoogle, prompt: str, message: str) -> None:
    config = ImageGenerationConfig(
        provider="google", model="gemini-2.5-flash-image", base_url=fake.url, api_key=fake.api_key
    )
    with pytest.raises(ContentModerationError) as info:
        drive(
            _flows.submit("gemini", config, ImageGenerationRequest(prompt=prompt), context(modality="image")),
            fake.url,
            fake.api_key,
        )
    assert str(info.value).startswith(message)
    assert fake.counts["submit"] == 1


def test_veo_blocked_prompt_is_moderation_with_googles_reason(fake: FakeGoogle) -> None:
    with pytest.raises(ContentModerationError, match="violate Google's Responsible AI practices") as info:
        drive(
            _flows.submit(
                "gemini", video_config(fake), VideoGenerationRequest(prompt="[blocked]"), context()
            ),
            fake.url,
            fake.api_key,
        )
    assert info.value.phase == "submit"


def test_veo_filtered_sample_fails_the_job_as_moderation(fake: FakeGoogle) -> None:
    states, status = run_video(fake, video_config(fake), VideoGenerationRequest(prompt="[filtered] a crowd"))
    assert states == ["processing", "failed"]
    assert isinstance(status.error, ContentModerationError)
    assert "Google filtered 1 generated sample(s): Your current safety settings" in str(status.error)


def test_veo_operation_error_fails_the_job(fake: FakeGoogle) -> None:
    states, status = run_video(fake, video_config(fake), VideoGenerationRequest(prompt="[error]"))
    assert states == ["processing", "failed"]
    assert type(status.error) is GenerationFailedError
    assert "failed: Video generation failed due to an internal error." in str(status.error)


def test_omni_failure_and_filter(fake: FakeGoogle) -> None:
    _, failed = run_video(
        fake, video_config(fake, "gemini-omni-1.2-flash"), VideoGenerationRequest(prompt="[error]")
    )
    _, filtered = run_video(
        fake, video_config(fake, "gemini-omni-1.2-flash"), VideoGenerationRequest(prompt="[filtered]")
    )
    assert type(failed.error) is GenerationFailedError and "ended failed: Video generation failed." in str(
        failed.error
    )
    assert type(filtered.error) is ContentModerationError and "blocked by safety filters" in str(
        filtered.error
    )


def test_quota_429_retry_info_becomes_retry_after(fake: FakeGoogle) -> None:
    config = video_config(fake)
    job = drive(
        _flows.submit("gemini", config, VideoGenerationRequest(prompt="a"), context()), fake.url, fake.api_key
    )
    fake.inject("status", 429, retry_delay="37s")
    with pytest.raises(HTTPError) as info:
        drive(_flows.status("gemini", config, job_ref(job, config.model), context()), fake.url, fake.api_key)
    assert (info.value.status_code, info.value.retry_after) == (429, 37.0)
    assert "RESOURCE_EXHAUSTED: injected RESOURCE_EXHAUSTED" in str(info.value)


def test_invalid_argument_on_submit_is_validation_error(fake: FakeGoogle) -> None:
    fake.inject("submit", 400)
    with pytest.raises(ValidationError, match="Google rejected the request: injected INVALID_ARGUMENT"):
        drive(
            _flows.submit("gemini", video_config(fake), VideoGenerationRequest(prompt="a"), context()),
            fake.url,
            fake.api_key,
        )


def test_resume_from_the_operation_name_alone(fake: FakeGoogle) -> None:
    config = video_config(fake)
    job = drive(
        _flows.submit("gemini", config, VideoGenerationRequest(prompt="a"), context()), fake.url, fake.api_key
    )
    bare = job_ref(job, config.model)
    bare = type(bare)(provider="google", model=config.model, modality="video", job_id=job.job_id)
    statuses = [
        drive(_flows.status("gemini", config, bare, context()), fake.url, fake.api_key).state
        for _ in range(2)
    ]
    assert statuses == ["processing", "completed"]
    response = drive(_flows.result("gemini", config, bare, context()), fake.url, fake.api_key)
    assert response.video.content == VIDEO_BYTES
