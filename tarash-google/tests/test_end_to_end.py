"""Through Tarash's public API with ``config.base_url`` pointed at the fakes: core sends every
request the flows describe (auth header, deadline, retries, cancel-on-timeout, ledger)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from tarash.tarash_gateway import (
    ContentModerationError,
    GenerationFailedError,
    HTTPError,
    ImageGenerationConfig,
    ImageGenerationRequest,
    JobHandle,
    MediaContent,
    TimeoutError,
    UnknownSubmissionError,
    ValidationError,
    VideoGenerationConfig,
    VideoGenerationRequest,
    generate_image,
    generate_video,
    generate_video_async,
    list_jobs,
    resume,
    set_ledger,
    submit_video,
)
from tarash_google.testing import PNG_BYTES, VIDEO_BYTES, FakeGoogle

PNG_B64 = base64.b64encode(PNG_BYTES).decode()
NOTHING_AFTER_SUBMIT = {"submit": 1, "status": 0, "result": 0, "cancel": 0, "token": 0}


@pytest.fixture(autouse=True)
def _no_ledger() -> Iterator[None]:
    set_ledger("off")
    yield
    set_ledger(None)


def gemini(fake: FakeGoogle, model: str = "veo-3.0-generate-001", **kwargs: object) -> VideoGenerationConfig:
    fields = {"poll_interval": 0.02, "timeout": 20, **kwargs}
    return VideoGenerationConfig(
        provider="google", model=model, base_url=fake.url, api_key=fake.api_key, **fields
    )  # type: ignore[arg-type]


def vertex(
    fake: FakeGoogle, tmp_path: Path, model: str = "veo-3.0-generate-001", **kwargs: object
) -> VideoGenerationConfig:
    fields = {"poll_interval": 0.02, "timeout": 20, **kwargs}
    return VideoGenerationConfig(
        provider="google-vertex",
        model=model,
        base_url=fake.url,
        provider_config={"credentials_file": fake.service_account_file(tmp_path), "location": "us-central1"},
        **fields,  # type: ignore[arg-type]
    )


def test_text_to_video_on_the_gemini_api(fake: FakeGoogle) -> None:
    response = generate_video(gemini(fake), VideoGenerationRequest(prompt="a lighthouse", duration_seconds=4))
    assert fake.bodies("submit") == [
        {"instances": [{"prompt": "a lighthouse"}], "parameters": {"sampleCount": 1, "durationSeconds": 4}}
    ]
    assert fake.requests[0]["headers"]["x-goog-api-key"] == fake.api_key
    assert response.video == MediaContent(content=VIDEO_BYTES, content_type="video/mp4")
    assert (response.provider, response.model) == ("google", "veo-3.0-generate-001")
    assert fake.counts == {"submit": 1, "status": 3, "result": 2, "cancel": 0, "token": 0}


def test_a_local_first_frame_is_sent_as_inline_bytes(fake: FakeGoogle, tmp_path: Path) -> None:
    (tmp_path / "first.png").write_bytes(PNG_BYTES)
    request = VideoGenerationRequest(
        prompt="it moves", image_list=[{"image": tmp_path / "first.png", "type": "first_frame"}]
    )
    generate_video(gemini(fake, "veo-3.0-fast-generate-001"), request)
    assert fake.bodies("submit")[0]["instances"][0]["image"] == {
        "bytesBase64Encoded": PNG_B64,
        "mimeType": "image/png",
    }


async def test_first_frame_video_async(fake: FakeGoogle) -> None:
    request = VideoGenerationRequest(
        prompt="it moves",
        image_list=[
            {"image": MediaContent(content=PNG_BYTES, content_type="image/png"), "type": "first_frame"}
        ],
    )
    response = await generate_video_async(gemini(fake, "veo-3.0-fast-generate-001"), request)
    assert fake.bodies("submit") == [
        {
            "instances": [
                {"prompt": "it moves", "image": {"bytesBase64Encoded": PNG_B64, "mimeType": "image/png"}}
            ],
            "parameters": {"sampleCount": 1},
        }
    ]
    assert response.video.content == VIDEO_BYTES


def test_reference_images_on_omni_through_vertex(fake: FakeGoogle, tmp_path: Path) -> None:
    request = VideoGenerationRequest(
        prompt="<IMAGE_REF_1> walks",
        aspect_ratio="16:9",
        image_list=[{"image": f"data:image/png;base64,{PNG_B64}", "type": "reference"}],
    )
    response = generate_video(vertex(fake, tmp_path, "gemini-omni-1.2-flash"), request)
    assert fake.requests[1]["path"] == "/v1beta1/projects/fake-project/locations/us-central1/interactions"
    assert fake.bodies("submit") == [
        {
            "model": "gemini-omni-1.2-flash",
            "input": [
                {"type": "text", "text": "<IMAGE_REF_1> walks"},
                {"type": "image", "mime_type": "image/png", "data": PNG_B64},
            ],
            "background": True,
            "generation_config": {"video_config": {"task": "reference_to_video"}},
            "response_format": {"type": "video", "aspect_ratio": "16:9"},
        }
    ]
    assert response.video.content == VIDEO_BYTES
    assert fake.counts == {"submit": 1, "status": 3, "result": 0, "cancel": 0, "token": 1}


def test_vertex_veo_authenticated_through_a_service_account_file(fake: FakeGoogle, tmp_path: Path) -> None:
    config = vertex(fake, tmp_path)
    first = generate_video(config, VideoGenerationRequest(prompt="waves"))
    second = generate_video(config, VideoGenerationRequest(prompt="more waves"))
    assert first.video.content == second.video.content == VIDEO_BYTES
    assert fake.counts["token"] == 1
    assert [r["headers"]["Authorization"].startswith("Bearer ya29.fake-") for r in fake.requests[1:]] == [
        True
    ] * 8


def test_image_generation_on_both_apis(fake: FakeGoogle, tmp_path: Path) -> None:
    imagen = ImageGenerationConfig(
        provider="google-vertex",
        model="imagen-4.0-fast-generate-001",
        base_url=fake.url,
        poll_interval=0.02,
        provider_config={"credentials_file": fake.service_account_file(tmp_path)},
    )
    images = generate_image(imagen, ImageGenerationRequest(prompt="a fox", n=3, aspect_ratio="16:9"))
    assert fake.bodies("submit") == [
        {
            "instances": [{"prompt": "a fox"}],
            "parameters": {"sampleCount": 3, "includeRaiReason": True, "aspectRatio": "16:9"},
        }
    ]
    assert images.images == [f"data:image/png;base64,{PNG_B64}"] * 3
    gemini_image = ImageGenerationConfig(
        provider="google",
        model="gemini-3-pro-image-preview",
        base_url=fake.url,
        api_key=fake.api_key,
        poll_interval=0.02,
    )
    picture = generate_image(gemini_image, ImageGenerationRequest(prompt="a fox", size="4K"))
    assert fake.bodies("submit")[1] == {
        "contents": [{"role": "user", "parts": [{"text": "a fox"}]}],
        "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"imageSize": "4K"}},
    }
    assert picture.images == [f"data:image/png;base64,{PNG_B64}"]
    assert fake.counts == {"submit": 2, "status": 0, "result": 0, "cancel": 0, "token": 1}


def test_an_operation_that_errors(fake: FakeGoogle) -> None:
    with pytest.raises(
        GenerationFailedError, match="Video generation failed due to an internal error"
    ) as info:
        generate_video(gemini(fake), VideoGenerationRequest(prompt="[error] a cat"))
    assert info.value.provider == "google" and info.value.request_id.startswith(
        "models/veo-3.0-generate-001/operations/"
    )
    assert fake.counts == {"submit": 1, "status": 2, "result": 0, "cancel": 0, "token": 0}


def test_a_filtered_sample(fake: FakeGoogle, tmp_path: Path) -> None:
    with pytest.raises(ContentModerationError, match="Google filtered 1 generated sample") as info:
        generate_video(vertex(fake, tmp_path), VideoGenerationRequest(prompt="[filtered] a crowd"))
    # A job Google reported failed (filtered) is not cancelled: there is nothing left to stop.
    assert info.value.request_id == next(iter(fake.jobs))
    assert fake.counts["cancel"] == 0 and not next(iter(fake.jobs.values())).cancelled
    with pytest.raises(ContentModerationError, match="violate Google's Responsible AI practices"):
        generate_video(gemini(fake), VideoGenerationRequest(prompt="[blocked]"))
    assert fake.counts["submit"] == 2


def test_invalid_values_send_nothing(fake: FakeGoogle) -> None:
    with pytest.raises(ValidationError, match=r"duration_seconds=7: veo-3\.0-generate-001 accepts 4, 6, 8"):
        generate_video(gemini(fake), VideoGenerationRequest(prompt="a", duration_seconds=7))
    assert fake.requests == []


def test_quota_retry_info_is_honoured(fake: FakeGoogle) -> None:
    fake.inject("status", 429, retry_delay="0.2s")
    response = generate_video(gemini(fake), VideoGenerationRequest(prompt="a"))
    assert response.video.content == VIDEO_BYTES
    polls = [r for r in fake.requests if r["kind"] == "status"]
    assert len(polls) == 4


# -- billing safety twins ---------------------------------------------------------------------


def test_lost_submit_answer_is_unknown_and_never_resubmitted(fake: FakeGoogle) -> None:
    fake.inject("submit", drop=True)
    with pytest.raises(UnknownSubmissionError) as info:
        generate_video(gemini(fake), VideoGenerationRequest(prompt="a"))
    assert "NOT resubmitted" in info.value.message
    assert fake.counts == NOTHING_AFTER_SUBMIT


def test_a_lost_submit_stays_unknown_for_resume_which_has_nothing_to_look_up(
    fake: FakeGoogle, tmp_path: Path
) -> None:
    """google-genai reads an operation only by the name the submit returned: no reconcile hook."""
    set_ledger(tmp_path / "jobs.db")
    fake.inject("submit", drop=True)
    with pytest.raises(UnknownSubmissionError):
        generate_video(gemini(fake), VideoGenerationRequest(prompt="a"))
    [record] = list_jobs()
    assert (record.state, record.finished, record.job_id) == ("unknown", True, None)
    assert resume() == [] and resume(record.key) == []
    assert fake.counts == NOTHING_AFTER_SUBMIT


def test_submit_5xx_is_not_resent(fake: FakeGoogle) -> None:
    fake.inject("submit", 503, times=5)
    with pytest.raises(HTTPError) as info:
        generate_video(gemini(fake), VideoGenerationRequest(prompt="a"))
    assert (info.value.status_code, info.value.phase) == (503, "submit")
    assert "injected UNAVAILABLE" in info.value.message
    assert fake.counts == NOTHING_AFTER_SUBMIT


def test_deadline_cancels_the_vertex_operation(tmp_path: Path) -> None:
    with FakeGoogle(processing_polls=10_000) as fake:
        with pytest.raises(TimeoutError) as info:
            generate_video(
                vertex(fake, tmp_path, timeout=1.0, poll_interval=0.1), VideoGenerationRequest(prompt="a")
            )
        attempt = info.value.execution_metadata.attempts[-1]
        assert attempt.cancel_status == "cancelled"
        assert fake.counts["cancel"] == 1 and fake.counts["submit"] == 1
        assert next(iter(fake.jobs.values())).cancelled is True


def test_deadline_on_the_gemini_api_records_cancel_unsupported() -> None:
    with FakeGoogle(processing_polls=10_000) as fake:
        with pytest.raises(TimeoutError) as info:
            generate_video(gemini(fake, timeout=1.0, poll_interval=0.1), VideoGenerationRequest(prompt="a"))
        attempt = info.value.execution_metadata.attempts[-1]
        assert attempt.cancel_status == "unsupported"
        assert fake.counts["cancel"] == 0 and fake.counts["submit"] == 1


def test_a_handle_resumes_from_the_operation_name(fake: FakeGoogle, tmp_path: Path) -> None:
    set_ledger(tmp_path / "jobs.db")
    handle = submit_video(gemini(fake), VideoGenerationRequest(prompt="a"))
    text = handle.to_json()
    assert fake.api_key not in text
    loaded = JobHandle.from_json(text, api_key=fake.api_key)
    assert loaded.job_id.startswith("models/veo-3.0-generate-001/operations/")
    response = loaded.wait()
    assert response.video.content == VIDEO_BYTES
    assert fake.counts["submit"] == 1


def test_cancel_through_a_handle_on_vertex(fake: FakeGoogle, tmp_path: Path) -> None:
    set_ledger(tmp_path / "jobs.db")
    handle = submit_video(vertex(fake, tmp_path), VideoGenerationRequest(prompt="a"))
    assert handle.cancel() is True
    assert fake.counts["cancel"] == 1
    assert [r["path"] for r in fake.requests if r["kind"] == "cancel"] == [f"/v1beta1/{handle.job_id}:cancel"]
