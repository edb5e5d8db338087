"""The exact JSON bodies fal receives, family by family, and the errors that stop a request."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tarash.tarash_gateway import get_provider_field_mapping, register_provider_field_mapping
from tarash.tarash_gateway._plugins import HOST
from tarash.tarash_gateway.exceptions import ValidationError
from tarash.tarash_gateway.field_mappers import (
    FieldMapper,
    extra_params_field_mapper,
    passthrough_field_mapper,
)
from tarash.tarash_gateway.models import (
    ImageGenerationRequest,
    MediaContent,
    VideoGenerationRequest,
)
from tarash.tarash_gateway.plugin import Modality
from tarash_fal._registry import (
    FAMILIES,
    IMAGE_MAPPINGS,
    VIDEO_MAPPINGS,
    build_payload,
    resolve_prefix,
)

MAPPINGS: dict[str, Mapping[str, FieldMapper]] = {**VIDEO_MAPPINGS, **IMAGE_MAPPINGS}

FIRST = "https://media.test/first.png"
LAST = "https://media.test/last.png"
REF_A = "https://media.test/ref-a.png"
REF_B = "https://media.test/ref-b.png"
STYLE = "https://media.test/style.png"
VIDEO = "https://media.test/input.mp4"
MASK = "https://media.test/mask.png"


def first(url: str = FIRST) -> dict[str, str]:
    return {"image": url, "type": "first_frame"}


def last(url: str = LAST) -> dict[str, str]:
    return {"image": url, "type": "last_frame"}


def ref(url: str = REF_A) -> dict[str, str]:
    return {"image": url, "type": "reference"}


def video_payload(model: str, **fields: Any) -> dict[str, Any]:
    return build_payload(model, VideoGenerationRequest(**fields), "video", MAPPINGS)


def image_payload(model: str, **fields: Any) -> dict[str, Any]:
    return build_payload(model, ImageGenerationRequest(**fields), "image", MAPPINGS)


VIDEO_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # Veo 3.1
    (
        "fal-ai/veo3.1",
        dict(
            prompt="a fox",
            duration_seconds=6,
            aspect_ratio="16:9",
            resolution="1080p",
            generate_audio=False,
            negative_prompt="blur",
            seed=7,
        ),
        {
            "prompt": "a fox",
            "duration": "6s",
            "aspect_ratio": "16:9",
            "resolution": "1080p",
            "generate_audio": False,
            "negative_prompt": "blur",
            "seed": 7,
        },
    ),
    (
        "fal-ai/veo3.1/fast/image-to-video",
        dict(prompt="a fox", duration_seconds=8, aspect_ratio="auto", image_list=[first()]),
        {"prompt": "a fox", "duration": "8s", "aspect_ratio": "auto", "image_url": FIRST},
    ),
    (
        "fal-ai/veo3.1/image-to-video",
        dict(prompt="a fox", resolution="4k", image_list=[ref()]),
        {"prompt": "a fox", "resolution": "4k", "image_url": REF_A},
    ),
    (
        "fal-ai/veo3.1/first-last-frame-to-video",
        dict(prompt="a fox", duration_seconds=4, aspect_ratio="9:16", image_list=[first(), last()]),
        {
            "prompt": "a fox",
            "duration": "4s",
            "aspect_ratio": "9:16",
            "first_frame_url": FIRST,
            "last_frame_url": LAST,
        },
    ),
    (
        "fal-ai/veo3.1/fast/first-last-frame-to-video",
        dict(prompt="a fox", image_list=[last(), first()]),
        {"prompt": "a fox", "first_frame_url": FIRST, "last_frame_url": LAST},
    ),
    (
        "fal-ai/veo3.1/fast/extend-video",
        dict(prompt="it snows", duration_seconds=7, resolution="720p", video=VIDEO, seed=1),
        {
            "prompt": "it snows",
            "duration": "7s",
            "resolution": "720p",
            "video_url": VIDEO,
            "seed": 1,
        },
    ),
    (
        "fal-ai/veo3.1/extend-video",
        dict(prompt="it snows", video=VIDEO),
        {"prompt": "it snows", "video_url": VIDEO},
    ),
    (
        "fal-ai/veo3.1/reference-to-video",
        dict(
            prompt="a fox",
            duration_seconds=8,
            aspect_ratio="9:16",
            generate_audio=True,
            image_list=[ref(), ref(REF_B)],
        ),
        {
            "prompt": "a fox",
            "duration": "8s",
            "aspect_ratio": "9:16",
            "generate_audio": True,
            "image_urls": [REF_A, REF_B],
        },
    ),
    # Veo 3
    (
        "fal-ai/veo3/fast",
        dict(prompt="a fox", duration_seconds=4, aspect_ratio="9:16", resolution="720p"),
        {"prompt": "a fox", "duration": "4s", "aspect_ratio": "9:16", "resolution": "720p"},
    ),
    (
        "fal-ai/veo3/image-to-video",
        dict(prompt="a fox", image_list=[first()], generate_audio=True),
        {"prompt": "a fox", "image_url": FIRST, "generate_audio": True},
    ),
    # Kling 2.6: text-to-video works (no image required)
    (
        "fal-ai/kling-video/v2.6/pro/text-to-video",
        dict(
            prompt="a fox",
            duration_seconds=10,
            aspect_ratio="9:16",
            generate_audio=True,
            negative_prompt="blur",
            cfg_scale=0.4,
        ),
        {
            "prompt": "a fox",
            "duration": "10",
            "aspect_ratio": "9:16",
            "generate_audio": True,
            "negative_prompt": "blur",
            "cfg_scale": 0.4,
        },
    ),
    (
        "fal-ai/kling-video/v2.6/pro/image-to-video",
        dict(prompt="a fox", duration_seconds=5, image_list=[first(), last()]),
        {"prompt": "a fox", "duration": "5", "start_image_url": FIRST, "end_image_url": LAST},
    ),
    (
        "fal-ai/kling-video/v2.6/pro/image-to-video",
        dict(prompt="a fox", image_list=[ref()]),
        {"prompt": "a fox", "start_image_url": REF_A},
    ),
    (
        "fal-ai/kling-video/v2.6/pro/motion-control",
        dict(prompt="", video=VIDEO, image_list=[first()], keep_original_sound=False),
        {"image_url": FIRST, "video_url": VIDEO, "keep_original_sound": False},
    ),
    (
        "fal-ai/kling-video/v2.6/standard/motion-control",
        dict(prompt="dancing", image_list=[ref()], video=VIDEO, character_orientation="video"),
        {
            "prompt": "dancing",
            "image_url": REF_A,
            "video_url": VIDEO,
            "character_orientation": "video",
        },
    ),
    # Kling O1
    (
        "fal-ai/kling-video/o1/reference-to-video",
        dict(
            prompt="@Image1 runs",
            duration_seconds=7,
            aspect_ratio="1:1",
            image_list=[first(), ref(), ref(REF_B)],
        ),
        {
            "prompt": "@Image1 runs",
            "duration": "7",
            "aspect_ratio": "1:1",
            "start_image_url": FIRST,
            "image_urls": [REF_A, REF_B],
        },
    ),
    (
        "fal-ai/kling-video/o1/image-to-video",
        dict(prompt="a fox", duration_seconds=10, image_list=[first(), last()]),
        {"prompt": "a fox", "duration": "10", "start_image_url": FIRST, "end_image_url": LAST},
    ),
    (
        "fal-ai/kling-video/o1/video-to-video/edit",
        dict(prompt="make it snow", video=VIDEO, image_list=[ref()]),
        {"prompt": "make it snow", "video_url": VIDEO, "image_urls": [REF_A]},
    ),
    # Kling O3 (the bare id resolves too)
    (
        "fal-ai/kling-video/o3",
        dict(prompt="a fox", duration_seconds=15, aspect_ratio="16:9", generate_audio=True),
        {"prompt": "a fox", "duration": "15", "aspect_ratio": "16:9", "generate_audio": True},
    ),
    (
        "fal-ai/kling-video/o3/pro/reference-to-video",
        dict(
            prompt="",
            duration_seconds=3,
            image_list=[first(), last(), ref()],
            multi_prompt=[{"prompt": "shot one", "duration": "3"}],
        ),
        {
            "duration": "3",
            "start_image_url": FIRST,
            "end_image_url": LAST,
            "image_urls": [REF_A],
            "multi_prompt": [{"prompt": "shot one", "duration": "3"}],
        },
    ),
    (
        "fal-ai/kling-video/o3/standard/image-to-video",
        dict(prompt="a fox", duration_seconds=12, image_list=[first(), last()]),
        {"prompt": "a fox", "duration": "12", "image_url": FIRST, "end_image_url": LAST},
    ),
    (
        "fal-ai/kling-video/o3/pro/image-to-video",
        dict(prompt="a fox", image_list=[ref()]),
        {"prompt": "a fox", "image_url": REF_A},
    ),
    # Kling 3.0
    (
        "fal-ai/kling-video/v3/pro/image-to-video",
        dict(prompt="a fox", duration_seconds=3, image_list=[first(), last()], negative_prompt="blur"),
        {
            "prompt": "a fox",
            "duration": "3",
            "start_image_url": FIRST,
            "end_image_url": LAST,
            "negative_prompt": "blur",
        },
    ),
    (
        "fal-ai/kling-video/v3/standard/text-to-video",
        dict(prompt="a fox", duration_seconds=15, aspect_ratio="1:1", generate_audio=False),
        {"prompt": "a fox", "duration": "15", "aspect_ratio": "1:1", "generate_audio": False},
    ),
    # MiniMax Hailuo: bare "6"/"10" durations, upper-case resolutions
    (
        "fal-ai/minimax/hailuo-02/standard/image-to-video",
        dict(
            prompt="a fox",
            duration_seconds=10,
            resolution="768p",
            enhance_prompt=False,
            image_list=[first(), last()],
        ),
        {
            "prompt": "a fox",
            "duration": "10",
            "resolution": "768P",
            "prompt_optimizer": False,
            "image_url": FIRST,
            "end_image_url": LAST,
        },
    ),
    (
        "fal-ai/minimax/hailuo-2.3/standard/text-to-video",
        dict(prompt="a fox", duration_seconds=6),
        {"prompt": "a fox", "duration": "6"},
    ),
    # Sora 2: integer durations
    (
        "fal-ai/sora-2/text-to-video",
        dict(prompt="a fox", duration_seconds=12, aspect_ratio="9:16", resolution="720p"),
        {"prompt": "a fox", "duration": 12, "aspect_ratio": "9:16", "resolution": "720p"},
    ),
    (
        "fal-ai/sora-2/image-to-video/pro",
        dict(prompt="a fox", duration_seconds=4, resolution="1080p", image_list=[first()]),
        {"prompt": "a fox", "duration": 4, "resolution": "1080p", "image_url": FIRST},
    ),
    (
        "fal-ai/sora-2/video-to-video/remix",
        dict(prompt="make it purple", video_id="video_123", delete_video=False),
        {"prompt": "make it purple", "video_id": "video_123", "delete_video": False},
    ),
    # Wan
    (
        "fal-ai/wan-25-preview/text-to-video",
        dict(
            prompt="a fox",
            duration_seconds=10,
            aspect_ratio="1:1",
            resolution="480p",
            negative_prompt="blur",
            seed=3,
            enhance_prompt=True,
        ),
        {
            "prompt": "a fox",
            "duration": "10",
            "aspect_ratio": "1:1",
            "resolution": "480p",
            "negative_prompt": "blur",
            "seed": 3,
            "enable_prompt_expansion": True,
        },
    ),
    (
        "wan/v2.6/image-to-video",
        dict(prompt="a fox", duration_seconds=15, resolution="1080p", image_list=[first()]),
        {"prompt": "a fox", "duration": "15", "resolution": "1080p", "image_url": FIRST},
    ),
    (
        "wan/v2.6/text-to-video",
        dict(prompt="a fox", aspect_ratio="3:4", multi_shots=True),
        {"prompt": "a fox", "aspect_ratio": "3:4", "multi_shots": True},
    ),
    (
        "fal-ai/wan/v2.2-a14b/image-to-video",
        dict(
            prompt="a fox",
            aspect_ratio="auto",
            resolution="580p",
            image_list=[first(), last()],
            num_frames=121,
        ),
        {
            "prompt": "a fox",
            "aspect_ratio": "auto",
            "resolution": "580p",
            "image_url": FIRST,
            "end_image_url": LAST,
            "num_frames": 121,
        },
    ),
    (
        "fal-ai/wan/v2.2-a14b/video-to-video",
        dict(prompt="a fox", video=VIDEO, strength=0.7),
        {"prompt": "a fox", "video_url": VIDEO, "strength": 0.7},
    ),
    (
        "fal-ai/wan/v2.2-14b/animate/move",
        dict(prompt="", video=VIDEO, image_list=[ref()], resolution="720p", seed=9),
        {"video_url": VIDEO, "image_url": REF_A, "resolution": "720p", "seed": 9},
    ),
    # Seedance
    (
        "fal-ai/bytedance/seedance/v1/pro/image-to-video",
        dict(
            prompt="a fox",
            duration_seconds=12,
            aspect_ratio="21:9",
            resolution="1080p",
            seed=5,
            image_list=[first(), last()],
            camera_fixed=True,
        ),
        {
            "prompt": "a fox",
            "duration": "12",
            "aspect_ratio": "21:9",
            "resolution": "1080p",
            "seed": 5,
            "image_url": FIRST,
            "end_image_url": LAST,
            "camera_fixed": True,
        },
    ),
    (
        "fal-ai/bytedance/seedance/v1/lite/reference-to-video",
        dict(prompt="two friends", duration_seconds=2, image_list=[ref(), ref(REF_B)]),
        {"prompt": "two friends", "duration": "2", "reference_image_urls": [REF_A, REF_B]},
    ),
    # Pixverse
    (
        "fal-ai/pixverse/v5/text-to-video",
        dict(
            prompt="a fox",
            duration_seconds=8,
            aspect_ratio="4:3",
            resolution="540p",
            negative_prompt="blur",
            generate_audio=True,
        ),
        {
            "prompt": "a fox",
            "duration": "8",
            "aspect_ratio": "4:3",
            "resolution": "540p",
            "negative_prompt": "blur",
        },
    ),
    (
        "fal-ai/pixverse/v5.5/image-to-video",
        dict(prompt="a fox", duration_seconds=10, generate_audio=True, image_list=[first()]),
        {"prompt": "a fox", "duration": "10", "generate_audio_switch": True, "image_url": FIRST},
    ),
    (
        "fal-ai/pixverse/v5.5/transition",
        dict(prompt="morph", image_list=[first(), last()], seed=2),
        {"prompt": "morph", "first_image_url": FIRST, "end_image_url": LAST, "seed": 2},
    ),
    (
        "fal-ai/pixverse/v5/transition",
        dict(prompt="morph", duration_seconds=5, image_list=[first()]),
        {"prompt": "morph", "duration": "5", "first_image_url": FIRST},
    ),
    (
        "fal-ai/pixverse/swap",
        dict(prompt="", video=VIDEO, image_list=[ref()], resolution="360p", mode="background"),
        {"video_url": VIDEO, "image_url": REF_A, "resolution": "360p", "mode": "background"},
    ),
    # Generic fallback: any other fal model id
    (
        "fal-ai/ltx-2/image-to-video",
        dict(
            prompt="a fox",
            duration_seconds=6,
            aspect_ratio="21:9",
            resolution="1440p",
            image_list=[first(), last(), ref(), ref(REF_B)],
            video=VIDEO,
            seed=4,
            negative_prompt="blur",
            generate_audio=True,
        ),
        {
            "prompt": "a fox",
            "duration": 6,
            "aspect_ratio": "21:9",
            "resolution": "1440p",
            "image_url": FIRST,
            "end_image_url": LAST,
            "image_urls": [REF_A, REF_B],
            "video_url": VIDEO,
            "seed": 4,
            "negative_prompt": "blur",
            "generate_audio": True,
        },
    ),
]


@pytest.mark.parametrize(("model", "fields", "expected"), VIDEO_CASES)
def test_video_payload(model: str, fields: dict[str, Any], expected: dict[str, Any]) -> None:
    assert video_payload(model, **fields) == expected


IMAGE_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # FLUX.1
    (
        "fal-ai/flux/dev",
        dict(prompt="a fox", aspect_ratio="9:16", n=2, seed=3, guidance_scale=3.5),
        {
            "prompt": "a fox",
            "image_size": "portrait_16_9",
            "num_images": 2,
            "seed": 3,
            "guidance_scale": 3.5,
        },
    ),
    (
        "fal-ai/flux/schnell",
        dict(prompt="a fox", size="1024x768"),
        {"prompt": "a fox", "image_size": {"width": 1024, "height": 768}, "num_images": 1},
    ),
    (
        "fal-ai/flux/dev",
        dict(prompt="a fox", size="landscape_4_3", aspect_ratio="9:16"),
        {"prompt": "a fox", "image_size": "landscape_4_3", "num_images": 1},
    ),
    (
        "fal-ai/flux/dev/image-to-image",
        dict(prompt="a fox", aspect_ratio="1:1", image_list=[ref()], strength=0.8),
        {
            "prompt": "a fox",
            "image_size": "square_hd",
            "num_images": 1,
            "image_url": REF_A,
            "strength": 0.8,
        },
    ),
    (
        "fal-ai/flux-lora",
        dict(prompt="a fox", aspect_ratio="4:3", loras=[{"path": "https://w.test/l.safetensors"}]),
        {
            "prompt": "a fox",
            "image_size": "landscape_4_3",
            "num_images": 1,
            "loras": [{"path": "https://w.test/l.safetensors"}],
        },
    ),
    (
        "fal-ai/flux-pro/v1.1",
        dict(prompt="a fox", aspect_ratio="3:4", n=3),
        {"prompt": "a fox", "image_size": "portrait_4_3", "num_images": 3},
    ),
    (
        "fal-ai/flux-pro/v1/fill",
        dict(prompt="a fox", image_list=[ref()], mask_image=MASK),
        {"prompt": "a fox", "num_images": 1, "image_url": REF_A, "mask_url": MASK},
    ),
    (
        "fal-ai/flux-pro/v1.1-ultra",
        dict(prompt="a fox", aspect_ratio="21:9", seed=8, raw=True),
        {"prompt": "a fox", "aspect_ratio": "21:9", "num_images": 1, "seed": 8, "raw": True},
    ),
    (
        "fal-ai/flux-pro/kontext",
        dict(prompt="make it night", aspect_ratio="16:9", image_list=[ref()]),
        {"prompt": "make it night", "aspect_ratio": "16:9", "num_images": 1, "image_url": REF_A},
    ),
    # FLUX.2
    (
        "fal-ai/flux-2/edit",
        dict(prompt="@image1 on @image2", size="1280x720", n=2, image_list=[ref(), ref(REF_B)]),
        {
            "prompt": "@image1 on @image2",
            "image_size": {"width": 1280, "height": 720},
            "num_images": 2,
            "image_urls": [REF_A, REF_B],
        },
    ),
    (
        "fal-ai/flux-2-pro",
        dict(prompt="a fox", aspect_ratio="3:4", seed=1, safety_tolerance="5"),
        {"prompt": "a fox", "image_size": "portrait_4_3", "seed": 1, "safety_tolerance": "5"},
    ),
    (
        "fal-ai/flux-2-max",
        dict(prompt="a fox", size="square"),
        {"prompt": "a fox", "image_size": "square"},
    ),
    (
        "fal-ai/flux-2-flex/edit",
        dict(prompt="recolor", image_list=[ref()]),
        {"prompt": "recolor", "image_urls": [REF_A]},
    ),
    # Z-Image Turbo: both spellings
    (
        "fal-ai/z-image/turbo",
        dict(prompt="a fox", aspect_ratio="4:3", n=4, seed=2, num_inference_steps=6),
        {
            "prompt": "a fox",
            "image_size": "landscape_4_3",
            "num_images": 4,
            "seed": 2,
            "num_inference_steps": 6,
        },
    ),
    (
        "fal-ai/z-image-turbo",
        dict(prompt="a fox", size="512x512"),
        {"prompt": "a fox", "image_size": {"width": 512, "height": 512}, "num_images": 1},
    ),
    # Recraft
    (
        "fal-ai/recraft/v3/text-to-image",
        dict(prompt="a fox logo", aspect_ratio="1:1", style="vector_illustration"),
        {"prompt": "a fox logo", "image_size": "square_hd", "style": "vector_illustration"},
    ),
    (
        "fal-ai/recraft-v3",
        dict(prompt="a fox", size="1024x1536", colors=[{"r": 255, "g": 0, "b": 0}]),
        {
            "prompt": "a fox",
            "image_size": {"width": 1024, "height": 1536},
            "colors": [{"r": 255, "g": 0, "b": 0}],
        },
    ),
    (
        "fal-ai/recraft/v3/image-to-image",
        dict(prompt="winter", image_list=[ref()]),
        {"prompt": "winter", "image_url": REF_A},
    ),
    # Ideogram
    (
        "fal-ai/ideogram/v3",
        dict(
            prompt="a poster",
            aspect_ratio="16:9",
            n=2,
            style="REALISTIC",
            negative_prompt="text",
            seed=6,
            image_list=[{"image": STYLE, "type": "style"}],
        ),
        {
            "prompt": "a poster",
            "image_size": "landscape_16_9",
            "num_images": 2,
            "style": "REALISTIC",
            "negative_prompt": "text",
            "seed": 6,
            "image_urls": [STYLE],
        },
    ),
    (
        "fal-ai/ideogram/v2",
        dict(prompt="a poster", aspect_ratio="10:16", style="design", expand_prompt=False),
        {"prompt": "a poster", "aspect_ratio": "10:16", "style": "design", "expand_prompt": False},
    ),
    # Generic fallback: keeps aspect_ratio and extra_params
    (
        "fal-ai/nano-banana/edit",
        dict(
            prompt="a fox",
            aspect_ratio="21:9",
            size="800x600",
            n=2,
            seed=1,
            negative_prompt="blur",
            image_list=[ref(), ref(REF_B)],
            mask_image=MASK,
            output_format="png",
        ),
        {
            "prompt": "a fox",
            "image_size": {"width": 800, "height": 600},
            "aspect_ratio": "21:9",
            "num_images": 2,
            "image_urls": [REF_A, REF_B],
            "mask_url": MASK,
            "seed": 1,
            "negative_prompt": "blur",
            "output_format": "png",
        },
    ),
]


@pytest.mark.parametrize(("model", "fields", "expected"), IMAGE_CASES)
def test_image_payload(model: str, fields: dict[str, Any], expected: dict[str, Any]) -> None:
    assert image_payload(model, **fields) == expected


def test_every_registered_prefix_has_a_payload_test() -> None:
    tested = {resolve_prefix(model, "video", MAPPINGS) for model, _, _ in VIDEO_CASES}
    tested |= {resolve_prefix(model, "image", MAPPINGS) for model, _, _ in IMAGE_CASES}
    assert tested == {*MAPPINGS, None}


def test_families_list_each_prefix_once_with_its_modality_and_allowed_values() -> None:
    assert [f.prefix for f in FAMILIES] == [*VIDEO_MAPPINGS, *IMAGE_MAPPINGS]
    by_prefix = {f.prefix: f for f in FAMILIES}
    veo = by_prefix["fal-ai/veo3.1"]
    assert (veo.modality, veo.name) == ("video", "Veo 3.1")
    assert veo.allowed == {
        "duration_seconds": (4, 6, 8),
        "aspect_ratio": ("auto", "16:9", "9:16"),
        "resolution": ("720p", "1080p", "4k"),
        "image_list": ("first_frame", "reference"),
    }
    assert by_prefix["fal-ai/kling-video/o1"].allowed["image_list"] == (
        "first_frame",
        "last_frame",
        "reference",
    )
    assert by_prefix["fal-ai/minimax"].allowed["resolution"] == ("512p", "768p", "1080p")
    flux2_pro = by_prefix["fal-ai/flux-2-pro"]
    assert (flux2_pro.modality, flux2_pro.allowed["n"]) == ("image", (1,))
    assert by_prefix["fal-ai/flux"].allowed == {
        "aspect_ratio": ("1:1", "4:3", "3:4", "16:9", "9:16"),
        "image_list": ("reference",),
    }
    assert all(f.description for f in FAMILIES)


# --------------------------------------------------------------------------------------------
# Prefix resolution
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "modality", "prefix"),
    [
        ("fal-ai/veo3.1", "video", "fal-ai/veo3.1"),
        ("fal-ai/veo3.1/fast", "video", "fal-ai/veo3.1/fast"),
        ("fal-ai/veo3.1/fast/image-to-video", "video", "fal-ai/veo3.1/fast"),
        (
            "fal-ai/veo3.1/fast/first-last-frame-to-video",
            "video",
            "fal-ai/veo3.1/fast/first-last-frame-to-video",
        ),
        ("fal-ai/veo3.10", "video", None),
        ("fal-ai/veo3/fast/image-to-video", "video", "fal-ai/veo3"),
        ("fal-ai/kling-video/o3", "video", "fal-ai/kling-video/o3"),
        ("fal-ai/kling-video/o3/", "video", "fal-ai/kling-video/o3"),
        (
            "fal-ai/kling-video/o3/pro/image-to-video",
            "video",
            "fal-ai/kling-video/o3/pro/image-to-video",
        ),
        ("fal-ai/kling-video/v2.1/master/text-to-video", "video", None),
        ("fal-ai/minimax/hailuo-02/pro/text-to-video", "video", "fal-ai/minimax"),
        ("fal-ai/minimax-music/v2", "video", None),
        ("fal-ai/pixverse/v4.5/text-to-video", "video", None),
        ("fal-ai/pixverse/v5.5/text-to-video", "video", "fal-ai/pixverse/v5.5"),
        ("wan/v2.6/reference-to-video", "video", "wan/v2.6"),
        ("fal-ai/flux/dev", "image", "fal-ai/flux"),
        ("fal-ai/flux-pro/v1.1-ultra", "image", "fal-ai/flux-pro/v1.1-ultra"),
        ("fal-ai/flux-pro/v1.1", "image", "fal-ai/flux-pro"),
        ("fal-ai/flux-2-pro/edit", "image", "fal-ai/flux-2-pro"),
        ("fal-ai/flux-krea", "image", None),
        ("fal-ai/z-image/turbo", "image", "fal-ai/z-image/turbo"),
        ("fal-ai/z-image-turbo", "image", "fal-ai/z-image-turbo"),
        ("fal-ai/z-image/base", "image", None),
        ("fal-ai/recraft/v3/text-to-image", "image", "fal-ai/recraft"),
        ("fal-ai/ideogram/v3/edit", "image", "fal-ai/ideogram/v3"),
        ("fal-ai/ideogram/v2/turbo", "image", "fal-ai/ideogram"),
        # A prefix of one modality's registry never serves the other.
        ("fal-ai/flux/dev", "video", None),
        ("fal-ai/veo3.1", "image", None),
        ("fal-ai/minimax/image-01", "image", None),
    ],
)
def test_resolve_prefix(model: str, modality: Modality, prefix: str | None) -> None:
    assert resolve_prefix(model, modality, MAPPINGS) == prefix


def test_generic_fallback_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tarash.fal")
    video_payload("fal-ai/veo3.10", prompt="a fox")
    image_payload("fal-ai/flux-krea", prompt="a fox")
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            "tarash.fal",
            logging.DEBUG,
            "No fal field mapping matches fal-ai/veo3.10; using the generic video mapping",
        ),
        (
            "tarash.fal",
            logging.DEBUG,
            "No fal field mapping matches fal-ai/flux-krea; using the generic image mapping",
        ),
    ]


def test_a_registered_family_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tarash.fal")
    video_payload("fal-ai/veo3.1", prompt="a fox")
    assert caplog.records == []


# --------------------------------------------------------------------------------------------
# Refusals: ValidationError naming the field, the value and the allowed values
# --------------------------------------------------------------------------------------------


REFUSALS: list[tuple[Modality, str, dict[str, Any], str, Any, tuple[Any, ...] | None, str]] = [
    (
        "video",
        "fal-ai/veo3.1",
        dict(duration_seconds=5),
        "duration_seconds",
        5,
        (4, 6, 8),
        "duration_seconds=5 is not allowed; allowed values: 4, 6, 8",
    ),
    (
        "video",
        "fal-ai/veo3.1/fast",
        dict(resolution="480p"),
        "resolution",
        "480p",
        ("720p", "1080p", "4k"),
        "resolution='480p' is not allowed; allowed values: 720p, 1080p, 4k",
    ),
    (
        "video",
        "fal-ai/veo3.1/fast/extend-video",
        dict(duration_seconds=8, video=VIDEO),
        "duration_seconds",
        8,
        (7,),
        "duration_seconds=8 is not allowed; allowed values: 7",
    ),
    (
        "video",
        "fal-ai/veo3.1/image-to-video",
        dict(image_list=[first(), last()]),
        "image_list",
        "last_frame",
        ("first_frame", "reference"),
        "image_list: this model takes no image with role 'last_frame'; "
        "accepted roles: first_frame, reference",
    ),
    (
        "video",
        "fal-ai/veo3.1/image-to-video",
        dict(image_list=[first(), ref()]),
        "image_list",
        ["first_frame", "reference"],
        ("first_frame", "reference"),
        "image_list: at most one image with role first_frame or reference is accepted, got 2",
    ),
    (
        "video",
        "fal-ai/veo3.1/first-last-frame-to-video",
        dict(image_list=[first()]),
        "image_list",
        ["first_frame"],
        ("last_frame",),
        "image_list: this model needs an image with role last_frame",
    ),
    (
        "video",
        "fal-ai/veo3.1/reference-to-video",
        dict(image_list=[first()]),
        "image_list",
        "first_frame",
        ("reference",),
        "image_list: this model takes no image with role 'first_frame'; accepted roles: reference",
    ),
    (
        "video",
        "fal-ai/veo3.1/reference-to-video",
        dict(),
        "image_list",
        [],
        ("reference",),
        "image_list: this model needs at least one image with role reference",
    ),
    (
        "video",
        "fal-ai/veo3/image-to-video",
        dict(aspect_ratio="21:9"),
        "aspect_ratio",
        "21:9",
        ("auto", "16:9", "9:16", "1:1"),
        "aspect_ratio='21:9' is not allowed; allowed values: auto, 16:9, 9:16, 1:1",
    ),
    (
        "video",
        "fal-ai/kling-video/v2.6/pro/text-to-video",
        dict(duration_seconds=6),
        "duration_seconds",
        6,
        (5, 10),
        "duration_seconds=6 is not allowed; allowed values: 5, 10",
    ),
    (
        "video",
        "fal-ai/kling-video/v2.6/pro/text-to-video",
        dict(resolution="1080p"),
        "resolution",
        "1080p",
        (),
        "resolution is not supported by fal-ai/kling-video/v2.6/pro/text-to-video: its fal mapping "
        "has no field for it (send the model's own field through extra_params instead)",
    ),
    (
        "video",
        "fal-ai/kling-video/v2.6/pro/motion-control",
        dict(image_list=[ref()]),
        "video",
        None,
        None,
        "video is required by fal-ai/kling-video/v2.6/pro/motion-control",
    ),
    (
        "video",
        "fal-ai/kling-video/o1/image-to-video",
        dict(duration_seconds=12),
        "duration_seconds",
        12,
        (3, 4, 5, 6, 7, 8, 9, 10),
        "duration_seconds=12 is not allowed; allowed values: 3, 4, 5, 6, 7, 8, 9, 10",
    ),
    (
        "video",
        "fal-ai/kling-video/o1/reference-to-video",
        dict(image_list=[{"image": REF_A, "type": "asset"}]),
        "image_list",
        "asset",
        ("first_frame", "last_frame", "reference"),
        "image_list: this model takes no image with role 'asset'; "
        "accepted roles: first_frame, last_frame, reference",
    ),
    (
        "video",
        "fal-ai/kling-video/o3/pro/text-to-video",
        dict(multi_prompt=[{"prompt": "shot", "duration": "5"}]),
        "prompt",
        "a fox",
        None,
        "prompt and extra_params['multi_prompt'] are mutually exclusive for this model; pass prompt=''",
    ),
    (
        "video",
        "fal-ai/kling-video/o3/standard/image-to-video",
        dict(aspect_ratio="16:9"),
        "aspect_ratio",
        "16:9",
        (),
        "aspect_ratio is not supported by fal-ai/kling-video/o3/standard/image-to-video: its fal "
        "mapping has no field for it (send the model's own field through extra_params instead)",
    ),
    (
        "video",
        "fal-ai/kling-video/v3/pro/text-to-video",
        dict(duration_seconds=2),
        "duration_seconds",
        2,
        tuple(range(3, 16)),
        "duration_seconds=2 is not allowed; allowed values: 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15",
    ),
    (
        "video",
        "fal-ai/minimax/hailuo-02/standard/text-to-video",
        dict(duration_seconds=5),
        "duration_seconds",
        5,
        (6, 10),
        "duration_seconds=5 is not allowed; allowed values: 6, 10",
    ),
    (
        "video",
        "fal-ai/minimax/hailuo-02/standard/text-to-video",
        dict(resolution="720p"),
        "resolution",
        "720p",
        ("512p", "768p", "1080p"),
        "resolution='720p' is not allowed; allowed values: 512p, 768p, 1080p",
    ),
    (
        "video",
        "fal-ai/minimax/hailuo-02/standard/text-to-video",
        dict(aspect_ratio="16:9"),
        "aspect_ratio",
        "16:9",
        (),
        "aspect_ratio is not supported by fal-ai/minimax/hailuo-02/standard/text-to-video: its fal "
        "mapping has no field for it (send the model's own field through extra_params instead)",
    ),
    (
        "video",
        "fal-ai/sora-2/text-to-video",
        dict(duration_seconds=5),
        "duration_seconds",
        5,
        (4, 8, 12, 16, 20),
        "duration_seconds=5 is not allowed; allowed values: 4, 8, 12, 16, 20",
    ),
    (
        "video",
        "fal-ai/sora-2/video-to-video/remix",
        dict(video=VIDEO),
        "video",
        VIDEO,
        (),
        "video is not supported by fal-ai/sora-2/video-to-video/remix: its fal mapping has no "
        "field for it (send the model's own field through extra_params instead)",
    ),
    (
        "video",
        "fal-ai/wan-25-preview/text-to-video",
        dict(duration_seconds=15),
        "duration_seconds",
        15,
        (5, 10),
        "duration_seconds=15 is not allowed; allowed values: 5, 10",
    ),
    (
        "video",
        "wan/v2.6/text-to-video",
        dict(resolution="480p"),
        "resolution",
        "480p",
        ("720p", "1080p"),
        "resolution='480p' is not allowed; allowed values: 720p, 1080p",
    ),
    (
        "video",
        "fal-ai/wan/v2.2-a14b/text-to-video",
        dict(duration_seconds=5),
        "duration_seconds",
        5,
        (),
        "duration_seconds is not supported by fal-ai/wan/v2.2-a14b/text-to-video: its fal mapping "
        "has no field for it (send the model's own field through extra_params instead)",
    ),
    (
        "video",
        "fal-ai/wan/v2.2-14b/animate/replace",
        dict(image_list=[ref()]),
        "video",
        None,
        None,
        "video is required by fal-ai/wan/v2.2-14b/animate/replace",
    ),
    (
        "video",
        "fal-ai/bytedance/seedance/v1/pro/text-to-video",
        dict(duration_seconds=1),
        "duration_seconds",
        1,
        tuple(range(2, 13)),
        "duration_seconds=1 is not allowed; allowed values: 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12",
    ),
    (
        "video",
        "fal-ai/pixverse/v5.5/text-to-video",
        dict(aspect_ratio="21:9"),
        "aspect_ratio",
        "21:9",
        ("16:9", "4:3", "1:1", "3:4", "9:16"),
        "aspect_ratio='21:9' is not allowed; allowed values: 16:9, 4:3, 1:1, 3:4, 9:16",
    ),
    (
        "video",
        "fal-ai/pixverse/v5/transition",
        dict(image_list=[last()]),
        "image_list",
        ["last_frame"],
        ("first_frame",),
        "image_list: this model needs an image with role first_frame",
    ),
    (
        "video",
        "fal-ai/pixverse/swap",
        dict(video=VIDEO),
        "image_list",
        [],
        ("first_frame", "reference"),
        "image_list: this model needs an image with role first_frame or reference",
    ),
    (
        "video",
        "fal-ai/ltx-2/image-to-video",
        dict(image_list=[{"image": STYLE, "type": "style"}]),
        "image_list",
        "style",
        ("first_frame", "last_frame", "reference"),
        "image_list: this model takes no image with role 'style'; "
        "accepted roles: first_frame, last_frame, reference",
    ),
    (
        "image",
        "fal-ai/flux/dev",
        dict(aspect_ratio="21:9"),
        "aspect_ratio",
        "21:9",
        ("1:1", "4:3", "3:4", "16:9", "9:16"),
        "aspect_ratio='21:9' is not allowed; allowed values: 1:1, 4:3, 3:4, 16:9, 9:16",
    ),
    (
        "image",
        "fal-ai/flux/dev",
        dict(size="huge"),
        "size",
        "huge",
        (
            "WIDTHxHEIGHT",
            "square_hd",
            "square",
            "portrait_4_3",
            "portrait_16_9",
            "landscape_4_3",
            "landscape_16_9",
        ),
        "size='huge' is not allowed; allowed values: WIDTHxHEIGHT, square_hd, square, "
        "portrait_4_3, portrait_16_9, landscape_4_3, landscape_16_9",
    ),
    (
        "image",
        "fal-ai/flux/dev",
        dict(mask_image=MASK),
        "mask_image",
        MASK,
        (),
        "mask_image is not supported by fal-ai/flux/dev: its fal mapping has no field for it "
        "(send the model's own field through extra_params instead)",
    ),
    (
        "image",
        "fal-ai/flux-pro/v1.1-ultra",
        dict(size="1024x1024"),
        "size",
        "1024x1024",
        (),
        "size is not supported by fal-ai/flux-pro/v1.1-ultra: its fal mapping has no field for it "
        "(send the model's own field through extra_params instead)",
    ),
    (
        "image",
        "fal-ai/flux-pro/v1.1-ultra",
        dict(aspect_ratio="5:4"),
        "aspect_ratio",
        "5:4",
        ("21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21"),
        "aspect_ratio='5:4' is not allowed; allowed values: 21:9, 16:9, 4:3, 3:2, 1:1, 2:3, 3:4, 9:16, 9:21",
    ),
    (
        "image",
        "fal-ai/flux-2-pro",
        dict(n=2),
        "n",
        2,
        (1,),
        "n is not supported by fal-ai/flux-2-pro: its fal mapping has no field for it "
        "(send the model's own field through extra_params instead)",
    ),
    (
        "image",
        "fal-ai/flux-2/edit",
        dict(image_list=[first()]),
        "image_list",
        "first_frame",
        ("reference",),
        "image_list: this model takes no image with role 'first_frame'; accepted roles: reference",
    ),
    (
        "image",
        "fal-ai/z-image/turbo",
        dict(image_list=[ref()]),
        "image_list",
        ["reference"],
        (),
        "image_list is not supported by fal-ai/z-image/turbo: its fal mapping has no field for it "
        "(send the model's own field through extra_params instead)",
    ),
    (
        "image",
        "fal-ai/recraft/v3/text-to-image",
        dict(n=3),
        "n",
        3,
        (1,),
        "n is not supported by fal-ai/recraft/v3/text-to-image: its fal mapping has no field "
        "for it (send the model's own field through extra_params instead)",
    ),
    (
        "image",
        "fal-ai/ideogram/v3",
        dict(image_list=[ref()]),
        "image_list",
        "reference",
        ("style",),
        "image_list: this model takes no image with role 'reference'; accepted roles: style",
    ),
    (
        "image",
        "fal-ai/ideogram/v2",
        dict(aspect_ratio="5:4"),
        "aspect_ratio",
        "5:4",
        ("10:16", "16:10", "9:16", "16:9", "4:3", "3:4", "1:1", "1:3", "3:1", "3:2", "2:3"),
        "aspect_ratio='5:4' is not allowed; allowed values: "
        "10:16, 16:10, 9:16, 16:9, 4:3, 3:4, 1:1, 1:3, 3:1, 3:2, 2:3",
    ),
    (
        "video",
        "fal-ai/veo3.1/extend-video",
        dict(resolution="1080p", video=VIDEO),
        "resolution",
        "1080p",
        ("720p",),
        "resolution='1080p' is not allowed; allowed values: 720p",
    ),
    (
        "video",
        "fal-ai/veo3.1/fast/first-last-frame-to-video",
        dict(image_list=[last()]),
        "image_list",
        ["last_frame"],
        ("first_frame",),
        "image_list: this model needs an image with role first_frame",
    ),
    (
        "video",
        "fal-ai/kling-video/v2.6/standard/motion-control",
        dict(video=VIDEO, duration_seconds=5, image_list=[ref()]),
        "duration_seconds",
        5,
        (),
        "duration_seconds is not supported by fal-ai/kling-video/v2.6/standard/motion-control: its "
        "fal mapping has no field for it (send the model's own field through extra_params instead)",
    ),
    (
        "video",
        "fal-ai/kling-video/o3",
        dict(aspect_ratio="4:3"),
        "aspect_ratio",
        "4:3",
        ("16:9", "9:16", "1:1"),
        "aspect_ratio='4:3' is not allowed; allowed values: 16:9, 9:16, 1:1",
    ),
    (
        "video",
        "fal-ai/kling-video/o3/pro/image-to-video",
        dict(duration_seconds=16),
        "duration_seconds",
        16,
        tuple(range(3, 16)),
        "duration_seconds=16 is not allowed; allowed values: 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15",
    ),
    (
        "video",
        "fal-ai/pixverse/v5/image-to-video",
        dict(resolution="4k"),
        "resolution",
        "4k",
        ("360p", "540p", "720p", "1080p"),
        "resolution='4k' is not allowed; allowed values: 360p, 540p, 720p, 1080p",
    ),
    (
        "video",
        "fal-ai/pixverse/v5.5/transition",
        dict(duration_seconds=6, image_list=[first()]),
        "duration_seconds",
        6,
        (5, 8, 10),
        "duration_seconds=6 is not allowed; allowed values: 5, 8, 10",
    ),
    (
        "image",
        "fal-ai/flux-lora",
        dict(aspect_ratio="2:3"),
        "aspect_ratio",
        "2:3",
        ("1:1", "4:3", "3:4", "16:9", "9:16"),
        "aspect_ratio='2:3' is not allowed; allowed values: 1:1, 4:3, 3:4, 16:9, 9:16",
    ),
    (
        "image",
        "fal-ai/flux-pro/v1.1",
        dict(image_list=[first()]),
        "image_list",
        "first_frame",
        ("reference",),
        "image_list: this model takes no image with role 'first_frame'; accepted roles: reference",
    ),
    (
        "image",
        "fal-ai/flux-pro/kontext/max",
        dict(size="1024x1024"),
        "size",
        "1024x1024",
        (),
        "size is not supported by fal-ai/flux-pro/kontext/max: its fal mapping has no field for it "
        "(send the model's own field through extra_params instead)",
    ),
    (
        "image",
        "fal-ai/flux-2-flex",
        dict(n=4),
        "n",
        4,
        (1,),
        "n is not supported by fal-ai/flux-2-flex: its fal mapping has no field for it "
        "(send the model's own field through extra_params instead)",
    ),
    (
        "image",
        "fal-ai/flux-2-max/edit",
        dict(mask_image=MASK),
        "mask_image",
        MASK,
        (),
        "mask_image is not supported by fal-ai/flux-2-max/edit: its fal mapping has no field "
        "for it (send the model's own field through extra_params instead)",
    ),
    (
        "image",
        "fal-ai/z-image-turbo",
        dict(aspect_ratio="3:2"),
        "aspect_ratio",
        "3:2",
        ("1:1", "4:3", "3:4", "16:9", "9:16"),
        "aspect_ratio='3:2' is not allowed; allowed values: 1:1, 4:3, 3:4, 16:9, 9:16",
    ),
    (
        "image",
        "fal-ai/recraft-v3",
        dict(size="1024"),
        "size",
        "1024",
        (
            "WIDTHxHEIGHT",
            "square_hd",
            "square",
            "portrait_4_3",
            "portrait_16_9",
            "landscape_4_3",
            "landscape_16_9",
        ),
        "size='1024' is not allowed; allowed values: WIDTHxHEIGHT, square_hd, square, "
        "portrait_4_3, portrait_16_9, landscape_4_3, landscape_16_9",
    ),
    (
        "image",
        "fal-ai/nano-banana",
        dict(size="1024*1024"),
        "size",
        "1024*1024",
        (
            "WIDTHxHEIGHT",
            "square_hd",
            "square",
            "portrait_4_3",
            "portrait_16_9",
            "landscape_4_3",
            "landscape_16_9",
        ),
        "size='1024*1024' is not allowed; allowed values: WIDTHxHEIGHT, square_hd, square, "
        "portrait_4_3, portrait_16_9, landscape_4_3, landscape_16_9",
    ),
]


@pytest.mark.parametrize(
    ("modality", "model", "fields", "field", "value", "allowed", "message"),
    REFUSALS,
)
def test_refusal(
    modality: Modality,
    model: str,
    fields: dict[str, Any],
    field: str,
    value: Any,
    allowed: tuple[Any, ...] | None,
    message: str,
) -> None:
    request_type = VideoGenerationRequest if modality == "video" else ImageGenerationRequest
    request = request_type(prompt="a fox", **fields)
    with pytest.raises(ValidationError) as caught:
        build_payload(model, request, modality, MAPPINGS)
    error = caught.value
    assert (error.field, error.value, error.allowed, error.message) == (
        field,
        value,
        allowed,
        message,
    )
    assert (error.phase, error.retryable) == ("validate", False)


def test_every_registered_prefix_has_a_refusal_test() -> None:
    refused = {resolve_prefix(model, kind, MAPPINGS) for kind, model, *_ in REFUSALS}
    assert refused == {*MAPPINGS, None}


def test_an_empty_prompt_is_not_sent() -> None:
    assert video_payload("fal-ai/kling-video/o3/pro/text-to-video", prompt="") == {}


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("fal-ai/veo3.1/image-to-video", "image_url"),
        ("fal-ai/kling-video/o3/pro/reference-to-video", "start_image_url"),
        ("fal-ai/pixverse/v5.5/image-to-video", "image_url"),
        ("fal-ai/bytedance/seedance/v1/pro/image-to-video", "image_url"),
    ],
)
def test_a_first_frame_goes_to_exactly_one_key(model: str, key: str) -> None:
    payload = video_payload(model, prompt="a fox", image_list=[first()])
    holding = [
        name for name, value in payload.items() if FIRST in (value if isinstance(value, list) else [value])
    ]
    assert holding == [key]


# --------------------------------------------------------------------------------------------
# extra_params, MediaContent
# --------------------------------------------------------------------------------------------


def test_extra_params_are_merged_last_and_override_mapped_fields() -> None:
    payload = video_payload(
        "fal-ai/veo3.1",
        prompt="a fox",
        duration_seconds=6,
        seed=1,
        extra_params={"duration": "8s", "auto_fix": True},
        safety_tolerance="2",
    )
    assert payload == {
        "prompt": "a fox",
        "duration": "8s",
        "seed": 1,
        "auto_fix": True,
        "safety_tolerance": "2",
    }


def test_image_requests_keep_extra_params() -> None:
    payload = image_payload("fal-ai/flux/dev", prompt="a fox", num_images=3, enable_safety_checker=False)
    assert payload == {"prompt": "a fox", "num_images": 3, "enable_safety_checker": False}


def test_media_content_becomes_a_data_uri() -> None:
    png = MediaContent(content=b"\x89PNG", content_type="image/png")
    clip = {"content": b"\x00\x00\x00\x18ftyp", "content_type": "video/mp4"}
    payload = video_payload(
        "fal-ai/kling-video/o1/video-to-video/edit",
        prompt="snow",
        image_list=[{"image": png, "type": "reference"}],
        video=clip,
    )
    assert payload == {
        "prompt": "snow",
        "image_urls": ["data:image/png;base64,iVBORw=="],
        "video_url": "data:video/mp4;base64,AAAAGGZ0eXA=",
    }
    assert image_payload("fal-ai/flux-pro/v1/fill", prompt="fill", mask_image=png) == {
        "prompt": "fill",
        "num_images": 1,
        "mask_url": "data:image/png;base64,iVBORw==",
    }


# --------------------------------------------------------------------------------------------
# User-registered mappings
# --------------------------------------------------------------------------------------------


CUSTOM: dict[str, Mapping[str, FieldMapper]] = {
    "fal-ai/acme-video/": {
        "text": passthrough_field_mapper("prompt"),
        "frames": extra_params_field_mapper("frames"),
    },
    "fal-ai/veo3.1/fast": {"prompt": passthrough_field_mapper("prompt")},
}


@pytest.fixture
def registered() -> Iterator[dict[str, Mapping[str, FieldMapper]]]:
    register_provider_field_mapping("fal", CUSTOM)
    yield {**VIDEO_MAPPINGS, **IMAGE_MAPPINGS, **CUSTOM}
    HOST.reset()


def test_registered_mapping_is_listed_by_get_provider_field_mapping(
    registered: dict[str, Mapping[str, FieldMapper]],
) -> None:
    table = get_provider_field_mapping("fal")
    assert table is not None
    assert {prefix: table[prefix] for prefix in CUSTOM} == CUSTOM


def test_registered_prefix_serves_both_modalities(
    registered: dict[str, Mapping[str, FieldMapper]],
) -> None:
    video = VideoGenerationRequest(prompt="a fox", frames=48)
    assert build_payload("fal-ai/acme-video/v2", video, "video", registered) == {
        "text": "a fox",
        "frames": 48,
    }
    image = ImageGenerationRequest(prompt="a fox")
    assert build_payload("fal-ai/acme-video", image, "image", registered) == {"text": "a fox"}


def test_registered_mapping_overrides_a_built_in_family(
    registered: dict[str, Mapping[str, FieldMapper]],
) -> None:
    request = VideoGenerationRequest(prompt="a fox", image_list=[ref()])
    assert build_payload(
        "fal-ai/veo3.1/fast/image-to-video",
        VideoGenerationRequest(prompt="a fox"),
        "video",
        registered,
    ) == {
        "prompt": "a fox",
    }
    with pytest.raises(ValidationError) as caught:
        build_payload("fal-ai/veo3.1/fast/image-to-video", request, "video", registered)
    assert (caught.value.field, caught.value.value, caught.value.allowed) == (
        "image_list",
        ["reference"],
        (),
    )
