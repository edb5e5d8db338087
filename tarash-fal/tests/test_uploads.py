"""Local inputs on fal: large ones uploaded to the CDN once before the submit, small ones inline."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from tarash.tarash_gateway import (
    UnknownSubmissionError,
    ValidationError,
    VideoGenerationConfig,
    VideoGenerationRequest,
    generate_image,
    generate_video,
    generate_video_async,
)
from tarash.tarash_gateway.exceptions import InputUploadError
from tarash.tarash_gateway.models import ImageGenerationRequest
from tarash_fal import _uploads
from tarash_fal.testing import FakeFalServer

MODEL = "fal-ai/veo3.1/fast/image-to-video"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 1200  # 307,208 bytes: above the inline limit
SMALL_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 1000


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    _uploads.UPLOADS.clear()
    yield
    _uploads.UPLOADS.clear()


@pytest.fixture
def png(tmp_path: Path) -> Path:
    path = tmp_path / "frame.png"
    path.write_bytes(PNG)
    return path


def _request(image: object) -> VideoGenerationRequest:
    return VideoGenerationRequest(
        "a cat", duration_seconds=8, image_list=[{"image": image, "type": "first_frame"}]
    )


def _assert_uploaded_once(fake: FakeFalServer) -> str:
    assert (fake.platform_counts["token"], fake.platform_counts["upload"]) == (1, 1)
    [upload] = fake.uploads
    assert (upload["content_type"], upload["size"], upload["multipart"], upload["lifecycle"]) == (
        "image/png",
        len(PNG),
        False,
        None,
    )
    assert upload["file_name"].startswith("input-") and upload["file_name"].endswith(".png")
    assert fake.file(upload["access_url"]) == PNG
    return str(upload["access_url"])


def test_local_png_first_frame_is_uploaded_then_submitted_with_its_cdn_url(
    fake_fal: FakeFalServer, png: Path
) -> None:
    generate_video(fake_fal.video_config(MODEL), _request(png))
    url = _assert_uploaded_once(fake_fal)
    assert fake_fal.counts["submit"] == 1
    assert fake_fal.submissions[0]["payload"] == {"prompt": "a cat", "duration": "8s", "image_url": url}


async def test_local_png_first_frame_async(fake_fal: FakeFalServer, png: Path) -> None:
    with png.open("rb") as stream:
        request = _request(stream)
    await generate_video_async(fake_fal.video_config(MODEL), request)
    url = _assert_uploaded_once(fake_fal)
    assert fake_fal.counts["submit"] == 1
    assert fake_fal.submissions[0]["payload"]["image_url"] == url


def test_dropped_submit_answer_uploads_nothing_more(fake_fal: FakeFalServer, png: Path) -> None:
    fake_fal.inject("submit", "drop")
    with pytest.raises(UnknownSubmissionError):
        generate_video(fake_fal.video_config(MODEL), _request(png))
    _assert_uploaded_once(fake_fal)
    assert fake_fal.counts == {"submit": 1, "status": 0, "result": 0, "cancel": 0}


async def test_dropped_submit_answer_uploads_nothing_more_async(fake_fal: FakeFalServer, png: Path) -> None:
    fake_fal.inject("submit", "drop")
    with pytest.raises(UnknownSubmissionError):
        await generate_video_async(fake_fal.video_config(MODEL), _request(png))
    _assert_uploaded_once(fake_fal)
    assert fake_fal.counts == {"submit": 1, "status": 0, "result": 0, "cancel": 0}


def test_a_submit_sent_again_after_429_does_not_upload_again(fake_fal: FakeFalServer, png: Path) -> None:
    fake_fal.inject("submit", status_code=429, retry_after=0)
    generate_video(fake_fal.video_config(MODEL), _request(png))
    url = _assert_uploaded_once(fake_fal)
    assert fake_fal.counts["submit"] == 2
    assert [s["payload"]["image_url"] for s in fake_fal.submissions] == [url]


def test_a_fallback_to_another_fal_model_reuses_the_upload(fake_fal: FakeFalServer, png: Path) -> None:
    fake_fal.inject("submit", status_code=503, times=1)
    second = fake_fal.video_config("fal-ai/veo3.1/image-to-video")
    generate_video(fake_fal.video_config(MODEL, fallback_configs=[second]), _request(png))
    url = _assert_uploaded_once(fake_fal)
    assert fake_fal.counts["submit"] == 2
    assert [s["path"] for s in fake_fal.submissions] == ["fal-ai/veo3.1/image-to-video"]
    assert fake_fal.submissions[0]["payload"]["image_url"] == url


def test_small_inputs_go_inline_as_data_uris(fake_fal: FakeFalServer) -> None:
    generate_video(fake_fal.video_config(MODEL), _request(SMALL_PNG))
    assert (fake_fal.platform_counts["token"], fake_fal.platform_counts["upload"]) == (0, 0)
    uri = "data:image/png;base64," + base64.b64encode(SMALL_PNG).decode()
    assert fake_fal.submissions[0]["payload"] == {"prompt": "a cat", "duration": "8s", "image_url": uri}


def test_without_upload_settings_local_inputs_are_still_inlined_and_checked(fake_fal: FakeFalServer) -> None:
    """A config that sets no upload option (fal's CDN by default) loads the upload code only for a
    payload with a data URI: a small one still goes inline, a broken large one is still refused."""
    config = VideoGenerationConfig(
        model=MODEL,
        provider="fal",
        api_key=fake_fal.api_key,
        base_url=fake_fal.base_url,
        poll_interval=0.01,
        provider_config={"ca_bundle": fake_fal.ca_path},
    )
    generate_video(config, _request(SMALL_PNG))
    uri = "data:image/png;base64," + base64.b64encode(SMALL_PNG).decode()
    assert fake_fal.submissions[0]["payload"]["image_url"] == uri
    broken = "data:image/png;base64," + "!" * (400 * 1024)
    with pytest.raises(ValidationError) as caught:
        generate_video(config, VideoGenerationRequest("a cat", extra_params={"mask_url": broken}))
    assert caught.value.field == "mask_url"
    assert (fake_fal.platform_counts["token"], fake_fal.platform_counts["upload"]) == (0, 0)
    assert fake_fal.counts["submit"] == 1


def test_inline_limit_zero_and_lifecycle_upload_everything_with_its_lifetime(fake_fal: FakeFalServer) -> None:
    config = fake_fal.video_config(MODEL, provider_config={"inline_max_bytes": 0, "upload_lifecycle": "1h"})
    generate_video(config, _request(SMALL_PNG))
    [upload] = fake_fal.uploads
    assert upload["lifecycle"] == {"expiration_duration_seconds": 3600}
    assert fake_fal.submissions[0]["payload"]["image_url"] == upload["access_url"]


def test_mask_and_references_of_an_image_model(fake_fal: FakeFalServer, tmp_path: Path) -> None:
    config = fake_fal.image_config("fal-ai/unlisted-image-edit", provider_config={"inline_max_bytes": 0})
    request = ImageGenerationRequest(
        "a cat", mask_image=SMALL_PNG, image_list=[{"image": PNG, "type": "reference"}]
    )
    generate_image(config, request)
    assert fake_fal.platform_counts["token"] == 1
    urls = {u["size"]: u["access_url"] for u in fake_fal.uploads}
    payload = fake_fal.submissions[0]["payload"]
    assert (payload["mask_url"], payload["image_urls"]) == (urls[len(SMALL_PNG)], [urls[len(PNG)]])


@pytest.mark.parametrize(
    ("kind", "status", "retryable"),
    [("token", 401, False), ("token", 503, True), ("upload", 500, True), ("upload", 413, False)],
)
def test_upload_failures_are_typed_and_nothing_is_submitted(
    fake_fal: FakeFalServer, png: Path, kind: str, status: int, retryable: bool
) -> None:
    fake_fal.inject(kind, status_code=status, times=10)
    with pytest.raises(InputUploadError) as caught:
        generate_video(fake_fal.video_config(MODEL), _request(png))
    assert caught.value.retryable is retryable
    assert caught.value.phase == "submit"
    assert "nothing was submitted" in caught.value.message
    assert fake_fal.counts["submit"] == 0
    assert fake_fal.uploads == []


def test_a_lost_upload_answer_is_an_upload_error_not_an_unknown_submission(
    fake_fal: FakeFalServer, png: Path
) -> None:
    fake_fal.inject("upload", "drop", times=10)
    with pytest.raises(InputUploadError) as caught:
        generate_video(fake_fal.video_config(MODEL), _request(png))
    assert caught.value.retryable is True
    assert fake_fal.counts["submit"] == 0


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"upload_lifecycle": "2h"}, "provider_config.upload_lifecycle"),
        ({"upload_lifecycle": True}, "provider_config.upload_lifecycle"),
        ({"inline_max_bytes": -1}, "provider_config.inline_max_bytes"),
        ({"storage_url": "ftp://x"}, "provider_config.storage_url"),
    ],
)
def test_bad_upload_settings_are_refused_before_sending(
    fake_fal: FakeFalServer, png: Path, options: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        generate_video(fake_fal.video_config(MODEL, provider_config=options), _request(png))
    assert caught.value.field == field
    assert fake_fal.platform_counts["token"] == fake_fal.counts["submit"] == 0


def test_a_missing_file_is_refused_when_the_request_is_built(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        _request(tmp_path / "missing.png")
    assert caught.value.field == "image_list[0].image"
    assert "no such file" in caught.value.message
