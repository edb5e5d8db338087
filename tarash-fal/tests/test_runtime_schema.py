"""A fal model in no table works from its published schema, read at runtime through core."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from tarash.tarash_gateway import (
    ValidationError,
    VideoGenerationRequest,
    generate_video,
    generate_video_async,
)
from tarash_fal import _runtime_schema
from tarash_fal.testing import FakeFalServer, openapi_document

MODEL = "acme/new-video-model/image-to-video"
PROPERTIES = {
    "prompt": {"type": "string"},
    "duration": {"type": "string", "enum": ["5", "10"], "default": "5"},
    "aspect_ratio": {"type": "string", "enum": ["16:9", "9:16"]},
    "motion": {"type": "string", "enum": ["low", "high"]},
    "image_url": {"type": "string"},
    "seed": {"type": "integer"},
}


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    _runtime_schema.SCHEMAS.clear()
    yield
    _runtime_schema.SCHEMAS.clear()


@pytest.fixture
def fake(fake_fal: FakeFalServer) -> FakeFalServer:
    fake_fal.add_openapi(
        MODEL,
        openapi_document(MODEL, PROPERTIES, required=("prompt", "image_url"), category="image-to-video"),
    )
    return fake_fal


def _request(**fields: object) -> VideoGenerationRequest:
    image = {"image": "https://example.com/a.png", "type": "first_frame"}
    return VideoGenerationRequest("a cat", image_list=[image], **fields)  # type: ignore[arg-type]


def test_a_model_in_no_table_is_mapped_from_its_schema_read_once(fake: FakeFalServer) -> None:
    config = fake.video_config(MODEL)
    generate_video(config, _request(duration_seconds=10, aspect_ratio="9:16", seed=7))
    generate_video(config, _request(duration_seconds=5))
    assert fake.platform_counts["openapi"] == 1
    assert fake.counts["submit"] == 2
    assert [s["payload"] for s in fake.submissions] == [
        {
            "prompt": "a cat",
            "duration": "10",
            "aspect_ratio": "9:16",
            "image_url": "https://example.com/a.png",
            "seed": 7,
        },
        {"prompt": "a cat", "duration": "5", "image_url": "https://example.com/a.png"},
    ]


async def test_the_schema_is_read_through_the_async_transport_too(fake: FakeFalServer) -> None:
    await generate_video_async(fake.video_config(MODEL), _request(duration_seconds=10))
    assert (fake.platform_counts["openapi"], fake.counts["submit"]) == (1, 1)
    assert fake.submissions[0]["payload"]["duration"] == "10"


def test_a_unified_value_outside_the_schema_is_refused_before_the_submit(fake: FakeFalServer) -> None:
    with pytest.raises(ValidationError) as caught:
        generate_video(fake.video_config(MODEL), _request(duration_seconds=7))
    assert (caught.value.field, caught.value.value) == ("duration_seconds", 7)
    assert (fake.platform_counts["openapi"], fake.counts["submit"]) == (1, 0)


def test_a_missing_required_field_is_refused_before_the_submit(fake: FakeFalServer) -> None:
    with pytest.raises(ValidationError) as caught:
        generate_video(fake.video_config(MODEL), VideoGenerationRequest("a cat"))
    assert caught.value.field == "image_list"  # the required image, named as the request has it
    other = "acme/other-video-model"
    fake.add_openapi(other, openapi_document(other, PROPERTIES, required=("prompt", "motion")))
    with pytest.raises(ValidationError) as caught:
        generate_video(fake.video_config(other), VideoGenerationRequest("a cat"))
    assert caught.value.field == "motion"
    assert "requires motion (its published schema)" in caught.value.message
    assert (fake.platform_counts["openapi"], fake.counts["submit"]) == (2, 0)
    generate_video(fake.video_config(other), VideoGenerationRequest("a cat", motion="low"))
    assert fake.submissions[0]["payload"] == {"prompt": "a cat", "motion": "low"}


def test_extra_values_outside_the_schema_are_warned_about_and_sent(
    fake: FakeFalServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tarash.fal"):
        generate_video(fake.video_config(MODEL), _request(extra_params={"motion": "wild", "style": "noir"}))
    assert fake.submissions[0]["payload"] == {
        "prompt": "a cat",
        "image_url": "https://example.com/a.png",
        "motion": "wild",
        "style": "noir",
    }
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"{MODEL}: motion='wild' is not among its published values ['low', 'high']; sent as given",
        f"{MODEL}: 'style' is not in {MODEL}'s published schema; sent as given",
    ]


def test_without_a_schema_the_generic_mapping_is_used_with_a_warning(
    fake_fal: FakeFalServer, caplog: pytest.LogCaptureFixture
) -> None:
    config = fake_fal.video_config(MODEL)
    with caplog.at_level(logging.WARNING, logger="tarash.fal"):
        generate_video(config, _request(duration_seconds=7))
        generate_video(config, _request(duration_seconds=7))
    assert fake_fal.platform_counts["openapi"] == 1  # the failure is cached too
    assert [s["payload"] for s in fake_fal.submissions] == [
        {"prompt": "a cat", "duration": 7, "image_url": "https://example.com/a.png"}
    ] * 2
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(f"fal model {MODEL} is in no model table and its schema could not be read")


def test_a_stalled_schema_read_gives_up_after_its_own_timeout(
    fake: FakeFalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_runtime_schema, "SCHEMA_TIMEOUT", 0.5)
    fake.inject("openapi", "stall", delay=5)
    started = time.monotonic()
    generate_video(fake.video_config(MODEL, timeout=20), _request(duration_seconds=7))
    assert time.monotonic() - started < 4
    assert fake.counts["submit"] == 1
    assert fake.submissions[0]["payload"]["duration"] == 7  # the generic mapping


async def test_a_stalled_schema_read_gives_up_after_its_own_timeout_async(
    fake: FakeFalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_runtime_schema, "SCHEMA_TIMEOUT", 0.5)
    fake.inject("openapi", "stall", delay=5)
    started = time.monotonic()
    await generate_video_async(fake.video_config(MODEL, timeout=20), _request(duration_seconds=7))
    assert time.monotonic() - started < 4
    assert fake.submissions[0]["payload"]["duration"] == 7


def test_models_in_a_table_do_not_read_schemas(fake_fal: FakeFalServer) -> None:
    generate_video(fake_fal.video_config("fal-ai/veo3"), VideoGenerationRequest("a cat"))
    assert fake_fal.platform_counts["openapi"] == 0


def test_a_bad_schema_url_is_refused_before_sending(fake_fal: FakeFalServer) -> None:
    with pytest.raises(ValidationError) as caught:
        generate_video(fake_fal.video_config(MODEL, provider_config={"schema_url": "file:///x"}), _request())
    assert caught.value.field == "provider_config.schema_url"
    assert fake_fal.platform_counts["openapi"] == fake_fal.counts["submit"] == 0


def test_a_schema_of_the_other_modality_gives_the_generic_mapping_with_a_warning(
    fake_fal: FakeFalServer, caplog: pytest.LogCaptureFixture
) -> None:
    model = "acme/still-maker"
    document = openapi_document(model, {"prompt": {"type": "string"}}, category="text-to-image")
    fake_fal.add_openapi(model, document)
    with caplog.at_level(logging.WARNING, logger="tarash.fal"):
        generate_video(fake_fal.video_config(model), VideoGenerationRequest("a cat", duration_seconds=5))
    assert fake_fal.submissions[0]["payload"] == {"prompt": "a cat", "duration": 5}
    assert [r.getMessage() for r in caplog.records] == [
        f"fal's schema files {model} under 'text-to-image'; generating video with the generic mapping",
        f"{model}: 'duration' is not in {model}'s published schema; sent as given",
    ]
