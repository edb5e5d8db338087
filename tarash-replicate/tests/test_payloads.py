"""Exact create requests per family, and requests refused before anything is sent."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import context, image_config, video_config

from tarash.tarash_gateway.exceptions import ValidationError
from tarash.tarash_gateway.models import ImageGenerationRequest, ImageType, VideoGenerationRequest
from tarash_replicate import _plugin

FIRST = "https://example.com/first.png"
LAST = "https://example.com/last.png"
REF = "https://example.com/ref.png"
SDXL = "7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"


def first_request(config: Any, request: Any, modality: str = "video", **ctx: Any) -> Any:
    return next(_plugin.submit(config, request, context(modality, **ctx)))


def refused(config: Any, request: Any, modality: str = "video") -> ValidationError:
    flow = _plugin.submit(config, request, context(modality))
    with pytest.raises(ValidationError) as caught:
        next(flow)
    return caught.value


@pytest.mark.parametrize(
    ("model", "request_fields", "expected_input"),
    [
        (
            "google/veo-3",
            {
                "prompt": "a lighthouse",
                "duration_seconds": 8,
                "aspect_ratio": "16:9",
                "resolution": "1080p",
                "generate_audio": True,
                "seed": 7,
                "negative_prompt": "fog",
                "image_list": [ImageType(image=FIRST, type="first_frame")],
            },
            {
                "prompt": "a lighthouse",
                "duration": 8,
                "aspect_ratio": "16:9",
                "resolution": "1080p",
                "image": FIRST,
                "seed": 7,
                "negative_prompt": "fog",
                "generate_audio": True,
            },
        ),
        (
            "google/veo-3.1-fast",
            {
                "prompt": "a lighthouse",
                "image_list": [
                    ImageType(image=FIRST, type="first_frame"),
                    ImageType(image=LAST, type="last_frame"),
                    ImageType(image=REF, type="reference"),
                ],
            },
            {"prompt": "a lighthouse", "image": FIRST, "last_frame": LAST, "reference_images": [REF]},
        ),
        (
            "kwaivgi/kling-v2.1",
            {
                "prompt": "waves",
                "duration_seconds": 10,
                "image_list": [ImageType(image=FIRST, type="first_frame")],
            },
            {"prompt": "waves", "duration": 10, "start_image": FIRST},
        ),
        (
            "kwaivgi/kling-v2.5-turbo-pro",
            {"prompt": "waves", "duration_seconds": 5, "aspect_ratio": "1:1", "negative_prompt": "blur"},
            {"prompt": "waves", "duration": 5, "aspect_ratio": "1:1", "negative_prompt": "blur"},
        ),
        (
            "minimax/hailuo-02",
            {"prompt": "a cat", "duration_seconds": 6, "resolution": "768p", "enhance_prompt": False},
            {"prompt": "a cat", "duration": 6, "resolution": "768p", "prompt_optimizer": False},
        ),
        (
            "wan-video/wan-2.5-i2v",
            {
                "prompt": "a cat",
                "duration_seconds": 5,
                "image_list": [ImageType(image=FIRST, type="first_frame")],
            },
            {"prompt": "a cat", "duration": 5, "image": FIRST},
        ),
        (
            "bytedance/seedance-1-lite",
            {
                "prompt": "a dancer",
                "duration_seconds": 12,
                "resolution": "480p",
                "aspect_ratio": "9:21",
                "image_list": [ImageType(image=LAST, type="last_frame")],
            },
            {
                "prompt": "a dancer",
                "duration": 12,
                "aspect_ratio": "9:21",
                "resolution": "480p",
                "last_frame_image": LAST,
            },
        ),
        (
            "luma/ray-2-720p",
            {
                "prompt": "a fox",
                "duration_seconds": 9,
                "aspect_ratio": "21:9",
                "extra_params": {"loop": True},
            },
            {"prompt": "a fox", "duration": 9, "aspect_ratio": "21:9", "loop": True},
        ),
    ],
)
def test_video_family_bodies(
    model: str, request_fields: dict[str, Any], expected_input: dict[str, Any]
) -> None:
    request = first_request(video_config(model), VideoGenerationRequest(**request_fields))
    assert request.method == "POST"
    assert request.url == f"/v1/models/{model}/predictions"
    assert request.json == {"input": expected_input}
    assert dict(request.headers) == {}
    assert request.auth is True


@pytest.mark.parametrize(
    ("model", "request_fields", "expected_input", "prefer"),
    [
        (
            "black-forest-labs/flux-schnell",
            {"prompt": "a fox", "aspect_ratio": "3:2", "n": 3, "seed": 1},
            {"prompt": "a fox", "aspect_ratio": "3:2", "num_outputs": 3, "seed": 1},
            "wait=29",
        ),
        (
            "black-forest-labs/flux-1.1-pro",
            {"prompt": "a fox", "extra_params": {"aspect_ratio": "custom", "width": 1024, "height": 640}},
            {"prompt": "a fox", "aspect_ratio": "custom", "width": 1024, "height": 640},
            "wait=29",
        ),
        (
            "ideogram-ai/ideogram-v3-turbo",
            {
                "prompt": "a poster",
                "aspect_ratio": "3:1",
                "style": "Design",
                "image_list": [ImageType(image=REF, type="reference")],
                "mask_image": "https://example.com/mask.png",
            },
            {
                "prompt": "a poster",
                "aspect_ratio": "3:1",
                "image": REF,
                "mask": "https://example.com/mask.png",
                "seed": None,
                "style_type": "Design",
            },
            None,
        ),
        (
            "recraft-ai/recraft-v3",
            {"prompt": "an icon", "size": "1365x1024", "style": "digital_illustration"},
            {"prompt": "an icon", "size": "1365x1024", "style": "digital_illustration"},
            None,
        ),
        (
            "google/imagen-4",
            {"prompt": "a fox", "aspect_ratio": "4:3"},
            {"prompt": "a fox", "aspect_ratio": "4:3"},
            None,
        ),
        ("google/imagen-4-fast", {"prompt": "a fox"}, {"prompt": "a fox"}, "wait=29"),
    ],
)
def test_image_family_bodies(
    model: str, request_fields: dict[str, Any], expected_input: dict[str, Any], prefer: str | None
) -> None:
    expected_input = {k: v for k, v in expected_input.items() if v is not None}
    request = first_request(image_config(model), ImageGenerationRequest(**request_fields), "image")
    assert request.url == f"/v1/models/{model}/predictions"
    assert request.json == {"input": expected_input}
    assert dict(request.headers) == ({"Prefer": prefer} if prefer else {})


def test_a_version_goes_to_v1_predictions_with_the_version_id() -> None:
    request = first_request(
        image_config(f"stability-ai/sdxl:{SDXL}"),
        ImageGenerationRequest(prompt="a fox", size="1344x768", n=2, negative_prompt="blur", seed=3),
        "image",
    )
    assert request.url == "/v1/predictions"
    assert request.json == {
        "version": SDXL,
        "input": {
            "prompt": "a fox",
            "width": 1344,
            "height": 768,
            "num_outputs": 2,
            "seed": 3,
            "negative_prompt": "blur",
        },
    }


def test_a_bare_version_id_sends_prompt_and_extra_params_as_given() -> None:
    request = first_request(
        video_config(SDXL), VideoGenerationRequest(prompt="x", extra_params={"fps": 24, "motion": "high"})
    )
    assert request.url == "/v1/predictions"
    assert request.json == {"version": SDXL, "input": {"prompt": "x", "fps": 24, "motion": "high"}}


def test_webhook_url_and_events_filter_go_in_the_body() -> None:
    config = video_config(
        "google/veo-3",
        provider_config={
            "webhook_url": "https://hooks.example.com/r",
            "webhook_events_filter": ["start", "completed"],
        },
    )
    request = first_request(config, VideoGenerationRequest(prompt="x"))
    assert request.json == {
        "input": {"prompt": "x"},
        "webhook": "https://hooks.example.com/r",
        "webhook_events_filter": ["start", "completed"],
    }


def test_the_context_webhook_url_wins_and_defaults_to_completed_only() -> None:
    request = first_request(
        video_config("google/veo-3"), VideoGenerationRequest(prompt="x"), webhook_url="https://a.example/h"
    )
    assert request.json["webhook"] == "https://a.example/h"
    assert request.json["webhook_events_filter"] == ["completed"]


def test_prefer_wait_is_capped_by_the_time_left_and_can_be_set_or_disabled() -> None:
    flux = image_config("black-forest-labs/flux-dev")
    short = first_request(flux, ImageGenerationRequest(prompt="x"), "image", timeout=10.5)
    assert dict(short.headers) == {"Prefer": "wait=9"}
    off = first_request(
        image_config("black-forest-labs/flux-dev", provider_config={"wait": False}),
        ImageGenerationRequest(prompt="x"),
        "image",
    )
    assert dict(off.headers) == {}
    on = first_request(
        video_config("google/veo-3", provider_config={"wait": 5}), VideoGenerationRequest(prompt="x")
    )
    assert dict(on.headers) == {"Prefer": "wait=5"}


@pytest.mark.parametrize(
    ("config", "unified", "modality", "field"),
    [
        (
            video_config("google/veo-3"),
            VideoGenerationRequest(prompt="x", duration_seconds=5),
            "video",
            "duration_seconds",
        ),
        (
            video_config("google/veo-3"),
            VideoGenerationRequest(prompt="x", aspect_ratio="1:1"),
            "video",
            "aspect_ratio",
        ),
        (
            video_config("minimax/hailuo-02"),
            VideoGenerationRequest(prompt="x", aspect_ratio="16:9"),
            "video",
            "aspect_ratio",
        ),
        (video_config("minimax/hailuo-02"), VideoGenerationRequest(prompt="x", seed=1), "video", "seed"),
        (
            video_config("google/veo-3"),
            VideoGenerationRequest(prompt="x", number_of_videos=2),
            "video",
            "number_of_videos",
        ),
        (
            video_config("google/veo-3"),
            VideoGenerationRequest(prompt="x", video="https://e.com/v.mp4"),
            "video",
            "video",
        ),
        (video_config("kwaivgi/kling-v2.1"), VideoGenerationRequest(prompt="x"), "video", "image_list"),
        (
            video_config("google/veo-3"),
            VideoGenerationRequest(prompt="x", image_list=[ImageType(image=LAST, type="last_frame")]),
            "video",
            "image_list",
        ),
        (image_config("google/imagen-4"), ImageGenerationRequest(prompt="x", n=2), "image", "n"),
        (
            image_config("black-forest-labs/flux-schnell"),
            ImageGenerationRequest(prompt="x", n=5),
            "image",
            "n",
        ),
        (
            image_config("recraft-ai/recraft-v3"),
            ImageGenerationRequest(prompt="x", size="1000x1000"),
            "image",
            "size",
        ),
        (
            image_config("google/imagen-4"),
            ImageGenerationRequest(prompt="x", style="anime"),
            "image",
            "style",
        ),
        (video_config("google/imagen-4"), VideoGenerationRequest(prompt="x"), "video", "model"),
        (video_config("not a model"), VideoGenerationRequest(prompt="x"), "video", "model"),
        (
            video_config("google/veo-3", provider_config={"webhook_url": "http://hooks.example.com/r"}),
            VideoGenerationRequest(prompt="x"),
            "video",
            "provider_config.webhook_url",
        ),
        (
            video_config("google/veo-3", provider_config={"webhook_events_filter": ["done"]}),
            VideoGenerationRequest(prompt="x"),
            "video",
            "provider_config.webhook_events_filter",
        ),
        (
            video_config("google/veo-3", provider_config={"wait": 61}),
            VideoGenerationRequest(prompt="x"),
            "video",
            "provider_config.wait",
        ),
        (
            video_config("google/veo-3", provider_config={"ca_bundle": "x"}),
            VideoGenerationRequest(prompt="x"),
            "video",
            "provider_config.ca_bundle",
        ),
        (
            video_config("google/veo-3"),
            VideoGenerationRequest(prompt="x", extra_params={"strength": float("nan")}),
            "video",
            "input.strength",
        ),
    ],
)
def test_impossible_requests_are_refused_before_any_request(
    config: Any, unified: Any, modality: str, field: str
) -> None:
    assert refused(config, unified, modality).field == field


def test_a_refusal_names_the_allowed_values() -> None:
    error = refused(video_config("google/veo-3"), VideoGenerationRequest(prompt="x", duration_seconds=5))
    assert error.allowed == (4, 6, 8)
    assert error.value == 5


def test_a_local_webhook_receiver_may_use_http() -> None:
    config = video_config("google/veo-3", provider_config={"webhook_url": "http://127.0.0.1:9/hook"})
    assert (
        first_request(config, VideoGenerationRequest(prompt="x")).json["webhook"] == "http://127.0.0.1:9/hook"
    )
