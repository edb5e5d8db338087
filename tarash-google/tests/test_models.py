"""The model table: allowed values checked before anything is sent, routes per provider, deprecations."""

from __future__ import annotations

import pytest

from tarash.tarash_gateway.exceptions import ValidationError
from tarash.tarash_gateway.models import (
    ImageGenerationConfig,
    ImageGenerationRequest,
    MediaContent,
    VideoGenerationConfig,
    VideoGenerationRequest,
)
from tarash_google import _flows
from tarash_google._models import BY_ID, MODELS, families

from .conftest import context

PNG = MediaContent(content=b"\x89PNG", content_type="image/png")


def first_request(mode: str, model: str, request: object, modality: str = "video") -> None:
    """Start the submit flow: a refusal must come before the first request is yielded."""
    config_type = VideoGenerationConfig if modality == "video" else ImageGenerationConfig
    provider = "google" if mode == "gemini" else "google-vertex"
    config = config_type(provider=provider, model=model, api_key="k", base_url="http://127.0.0.1:9")
    next(_flows.submit(mode, config, request, context(provider, modality)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "model", "request_", "field", "message"),
    [
        (
            "gemini",
            "veo-9",
            VideoGenerationRequest(prompt="a"),
            "model",
            "Unknown video model 'veo-9' for provider 'google'",
        ),
        (
            "gemini",
            "imagen-4.0-generate-001",
            ImageGenerationRequest(prompt="a"),
            "model",
            "imagen-4.0-generate-001 is not served by 'google' (the Gemini Developer API); "
            "use provider='google-vertex'",
        ),
        (
            "vertex",
            "veo-3.1-generate-preview",
            VideoGenerationRequest(prompt="a"),
            "model",
            "veo-3.1-generate-preview is not served by 'google-vertex' (Vertex AI); use provider='google'",
        ),
        (
            "gemini",
            "veo-3.0-generate-001",
            VideoGenerationRequest(prompt="a", duration_seconds=5),
            "duration_seconds",
            "duration_seconds=5: veo-3.0-generate-001 accepts 4, 6, 8",
        ),
        (
            "gemini",
            "veo-2.0-generate-001",
            VideoGenerationRequest(prompt="a", resolution="1080p"),
            "resolution",
            "resolution='1080p': veo-2.0-generate-001 accepts 720p",
        ),
        (
            "gemini",
            "veo-3.0-generate-001",
            VideoGenerationRequest(prompt="a", number_of_videos=2),
            "number_of_videos",
            "number_of_videos=2: veo-3.0-generate-001 accepts 1",
        ),
        (
            "gemini",
            "veo-3.0-generate-001",
            VideoGenerationRequest(prompt="a", seed=1),
            "seed",
            "seed=1: not supported by veo-3.0-generate-001 on the Gemini Developer API",
        ),
        (
            "gemini",
            "veo-3.0-generate-001",
            VideoGenerationRequest(prompt="a", generate_audio=True),
            "generate_audio",
            "generate_audio=True: not supported by veo-3.0-generate-001 on the Gemini Developer API",
        ),
        (
            "gemini",
            "gemini-omni-1.2-flash",
            VideoGenerationRequest(prompt="a", negative_prompt="x"),
            "negative_prompt",
            "negative_prompt='x': not supported by gemini-omni-1.2-flash",
        ),
        (
            "gemini",
            "gemini-omni-1.2-flash",
            VideoGenerationRequest(prompt="a", duration_seconds=12),
            "duration_seconds",
            "duration_seconds=12: gemini-omni-1.2-flash accepts 3, 4, 5, 6, 7, 8, 9, 10",
        ),
        (
            "gemini",
            "veo-3.0-generate-001",
            VideoGenerationRequest(prompt="a", image_list=[{"image": PNG, "type": "last_frame"}]),
            "image_list",
            "image_list='last_frame': veo-3.0-generate-001 takes image roles: first_frame",
        ),
        (
            "gemini",
            "veo-3.1-generate-preview",
            VideoGenerationRequest(prompt="a", image_list=[{"image": PNG, "type": "reference"}] * 4),
            "image_list",
            "image_list=4: veo-3.1-generate-preview takes at most 3 images",
        ),
        (
            "gemini",
            "veo-2.0-generate-001",
            VideoGenerationRequest(prompt="a", image_list=[{"image": "gs://b/x.png", "type": "first_frame"}]),
            "image_list",
            "image_list='gs://b/x.png': gs:// URIs are read only by Vertex AI (google-vertex)",
        ),
        (
            "gemini",
            "veo-3.0-generate-001",
            VideoGenerationRequest(prompt="a", extra_params={"person_generation": "everyone"}),
            "extra_params.person_generation",
            "extra_params.person_generation='everyone': unknown value",
        ),
        (
            "gemini",
            "gemini-2.5-flash-image",
            ImageGenerationRequest(prompt="a", n=2),
            "n",
            "n=2: gemini-2.5-flash-image accepts 1",
        ),
        (
            "gemini",
            "gemini-2.5-flash-image",
            ImageGenerationRequest(prompt="a", size="2K"),
            "size",
            "size='2K': gemini-2.5-flash-image has no such setting",
        ),
        (
            "gemini",
            "gemini-3-pro-image-preview",
            ImageGenerationRequest(prompt="a", quality="hd"),
            "quality",
            "quality='hd': not supported",
        ),
        (
            "vertex",
            "imagen-4.0-ultra-generate-001",
            ImageGenerationRequest(prompt="a", n=4),
            "n",
            "n=4: imagen-4.0-ultra-generate-001 accepts 1",
        ),
    ],
)
def test_impossible_requests_are_refused_before_anything_is_sent(
    mode: str, model: str, request_: object, field: str, message: str
) -> None:
    modality = "image" if isinstance(request_, ImageGenerationRequest) else "video"
    with pytest.raises(ValidationError) as info:
        first_request(mode, model, request_, modality)
    assert info.value.field == field
    assert str(info.value).startswith(message)


def test_deprecated_models_carry_date_and_successor_in_tarash_models() -> None:
    rows = {family.prefix: family for family in families("gemini")}
    assert rows["veo-3.1-generate-preview"].description == (
        "veo route on Gemini Developer API; DEPRECATED 2026-10-22, successor gemini-omni-1.2-flash"
    )
    vertex = {family.prefix: family for family in families("vertex")}
    assert (
        vertex["veo-3.1-generate-001"].description
        == "veo route on Vertex AI; DEPRECATED 2026-11-17, no successor named"
    )
    assert vertex["veo-3.0-generate-001"].description == "veo route on Gemini Developer API and Vertex AI"
    assert "imagen-4.0-generate-001" not in rows and "imagen-4.0-generate-001" in vertex


def test_every_model_is_served_somewhere_and_ids_are_unique() -> None:
    assert len(BY_ID) == len(MODELS)
    assert all(model.modes <= {"gemini", "vertex"} and model.modes for model in MODELS)
    assert sorted(m.id for m in MODELS if m.deprecated) == [
        "veo-3.1-fast-generate-001",
        "veo-3.1-fast-generate-preview",
        "veo-3.1-generate-001",
        "veo-3.1-generate-preview",
    ]


def test_deprecated_model_warning_names_the_successor(caplog: pytest.LogCaptureFixture) -> None:
    from tarash_google._models import lookup

    with caplog.at_level("WARNING", logger="tarash_google"):
        lookup("veo-3.1-fast-generate-preview", "video", "gemini")
        lookup("veo-3.0-generate-001", "video", "gemini")
    assert [r.getMessage() for r in caplog.records] == [
        "Google deprecated veo-3.1-fast-generate-preview on 2026-10-22; use gemini-omni-1.2-flash instead"
    ]
