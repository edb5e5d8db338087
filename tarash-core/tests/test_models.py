"""The models keep the original Tarash Gateway names, fields and keyword construction."""

from __future__ import annotations

import attrs
import pytest

from tarash.tarash_gateway.exceptions import ValidationError
from tarash.tarash_gateway.models import (
    ImageGenerationConfig,
    ImageGenerationRequest,
    ImageType,
    MediaContent,
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
    iter_fallback_chain,
)


def test_config_defaults_match_the_original() -> None:
    video = VideoGenerationConfig(provider="fal", model="fal-ai/veo3")
    image = ImageGenerationConfig(provider="fal", model="fal-ai/flux/dev")
    assert (video.timeout, video.max_poll_attempts, video.poll_interval) == (600, 120, 5)
    assert (image.timeout, image.max_poll_attempts, image.poll_interval) == (120, 60, 2)
    assert video.api_key is None and video.fallback_configs is None and video.provider_config == {}


def test_configs_and_responses_are_frozen_requests_are_not() -> None:
    config = VideoGenerationConfig(provider="fal", model="m")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.timeout = 5  # type: ignore[misc]
    response = VideoGenerationResponse(request_id="r", video="https://cdn.test/v.mp4")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        response.video = "x"  # type: ignore[misc]
    request = VideoGenerationRequest(prompt="a")
    request.prompt = "b"
    assert request.prompt == "b"


def test_api_key_never_in_repr_even_nested() -> None:
    inner = VideoGenerationConfig(provider="b", model="m", api_key="sk-nested-secret-77")
    outer = VideoGenerationConfig(
        provider="a", model="m", api_key="sk-outer-secret-88", fallback_configs=[inner]
    )
    text = repr(outer) + str(outer)
    assert "sk-nested-secret-77" not in text and "sk-outer-secret-88" not in text
    assert outer.fallback_configs == (inner,)


def test_unknown_keywords_land_in_extra_params_without_mutating_the_caller() -> None:
    extras = {"cfg_scale": 0.5}
    request = VideoGenerationRequest(prompt="p", extra_params=extras, cfg_scale=0.7, loras=["a"])
    assert request.extra_params == {"cfg_scale": 0.7, "loras": ["a"]}
    assert extras == {"cfg_scale": 0.5}
    image = ImageGenerationRequest(prompt="p", guidance_scale=3)
    assert image.extra_params == {"guidance_scale": 3}


def test_image_roles_and_media_forms() -> None:
    request = VideoGenerationRequest(
        prompt="p",
        image_list=[
            {"image": "https://cdn.test/a.png", "type": "first_frame"},
            {"image": {"content": b"\x89PNG", "content_type": "image/png"}, "type": "last_frame"},
            ImageType(image="https://cdn.test/s.png", type="style"),
        ],
    )
    first, last, style = request.image_list
    assert (first["type"], first["image"]) == ("first_frame", "https://cdn.test/a.png")
    assert last.image == MediaContent(content=b"\x89PNG", content_type="image/png")
    assert last.image.to_data_uri() == "data:image/png;base64,iVBORw=="
    assert repr(last.image) == "MediaContent(<4 bytes>, content_type='image/png')"
    assert style.type == "style"


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        (
            {"image_list": [{"image": "https://x", "type": "hero"}]},
            "image_list[0].type",
            "image_list[0]: ImageType.type: expected one of the allowed values, got 'hero' "
            "(allowed: reference, first_frame, last_frame, asset, style)",
        ),
        (
            {"duration_seconds": "five"},
            "duration_seconds",
            "VideoGenerationRequest.duration_seconds: expected an integer, got 'five'",
        ),
        (
            {"aspect_ratio": "wide"},
            "aspect_ratio",
            "VideoGenerationRequest.aspect_ratio: expected an aspect ratio like '16:9' or 'auto', got 'wide'",
        ),
        (
            {"extra_params": ["x"]},
            "extra_params",
            "VideoGenerationRequest.extra_params: expected a mapping, got list",
        ),
    ],
)
def test_bad_request_values_name_the_field(kwargs: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        VideoGenerationRequest(prompt="p", **kwargs)
    assert raised.value.field == field
    assert raised.value.message == message


def test_numeric_strings_are_accepted_like_the_original() -> None:
    assert VideoGenerationRequest(prompt="p", duration_seconds="8").duration_seconds == 8


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"poll_interval": float("nan")}, "poll_interval"),
        ({"poll_interval": -0.5}, "poll_interval"),
        ({"max_poll_attempts": 0}, "max_poll_attempts"),
        ({"provider": ""}, "provider"),
        ({"fallback_configs": [ImageGenerationConfig(provider="x", model="y")]}, "fallback_configs"),
    ],
)
def test_bad_config_values_name_the_field(kwargs: dict[str, object], field: str) -> None:
    values: dict[str, object] = {"provider": "fal", "model": "m", **kwargs}
    with pytest.raises(ValidationError) as raised:
        VideoGenerationConfig(**values)  # type: ignore[arg-type]
    assert raised.value.field == field


def test_poll_interval_zero_means_poll_again_at_once() -> None:
    from tarash.tarash_gateway import generate_video
    from tarash.tarash_gateway.mock import MockConfig, MockPollingConfig

    polling = MockPollingConfig(
        status_sequence=("queued", "processing", "completed"), delay_between_updates=0
    )
    config = VideoGenerationConfig(
        provider="mock", model="mock", poll_interval=0, mock=MockConfig(polling=polling)
    )
    assert config.poll_interval == 0
    assert ImageGenerationConfig(provider="mock", model="mock-image", poll_interval=0).poll_interval == 0
    statuses: list[str] = []
    generate_video(
        config, VideoGenerationRequest(prompt="p"), on_progress=lambda u: statuses.append(u.status)
    )
    assert statuses == ["queued", "queued", "processing", "completed"]
    with pytest.raises(ValidationError) as raised:
        VideoGenerationConfig(provider="mock", model="mock", poll_interval=-1)
    assert raised.value.message == "VideoGenerationConfig.poll_interval: expected a number >= 0, got -1"


def test_fallback_chain_is_depth_first() -> None:
    def cfg(name: str, *children: VideoGenerationConfig) -> VideoGenerationConfig:
        return VideoGenerationConfig(provider=name, model=name, fallback_configs=list(children) or None)

    root = cfg("a", cfg("b", cfg("c")), cfg("d"))
    assert [c.provider for c in iter_fallback_chain(root)] == ["a", "b", "c", "d"]


def test_updates_print_as_one_short_line() -> None:
    from tarash.tarash_gateway import generate_video
    from tarash.tarash_gateway.models import ImageGenerationUpdate, VideoGenerationUpdate

    queued = VideoGenerationUpdate(request_id="r", status="queued", progress_percent=0, queue_position=2)
    assert str(queued) == "queued 0% (queue position 2)"
    assert str(VideoGenerationUpdate(request_id="r", status="processing", progress_percent=40.5)) == (
        "processing 40.5%"
    )
    failed = ImageGenerationUpdate(request_id="r", status="failed", error="boom")
    assert str(failed) == "failed: boom"
    lines: list[str] = []
    config = VideoGenerationConfig(provider="mock", model="mock", provider_config={"delay": 0})
    generate_video(config, VideoGenerationRequest(prompt="p"), on_progress=lambda u: lines.append(str(u)))
    assert lines == [
        "queued",
        "queued 0% (queue position 1)",
        "queued 0% (queue position 0)",
        "processing 15%",
        "processing 40%",
        "processing 65%",
        "processing 90%",
        "completed 100%",
    ]
