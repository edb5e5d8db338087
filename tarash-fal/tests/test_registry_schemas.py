"""The built-in registry against fal's published schemas kept in tests/fixtures/schemas.

Each fixture names its source and date. Only fal's schema-generated model pages were reachable
(the raw per-model OpenAPI could not be fetched here), so fixtures transcribe their input fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tarash.tarash_gateway.models import VideoGenerationRequest
from tarash_fal._registry import FAMILIES, VIDEO_MAPPINGS, build_payload
from tarash_fal._schema import _enum, derive_spec, input_schema

FIXTURES = Path(__file__).parent / "fixtures" / "schemas"


def test_every_fixture_names_its_source_and_date() -> None:
    for path in sorted(FIXTURES.glob("*.json")):
        document = json.loads(path.read_text())
        assert document["_source"].startswith("https://fal.ai/"), path.name
        assert document["_retrieved"].startswith("2026-"), path.name


def test_kling_2_6_image_to_video_keys_agree_with_fal() -> None:
    endpoint = "fal-ai/kling-video/v2.6/pro/image-to-video"
    spec = derive_spec(
        json.loads((FIXTURES / "kling-video-v2.6-pro-image-to-video.json").read_text()), endpoint
    )
    assert spec["images"] == {
        "frames": {"start_image_url": ["first_frame", "reference"], "end_image_url": ["last_frame"]},
        "lists": {},
    }
    assert spec["duration"] == {"field": "duration", "format": "string", "allowed": [5, 10]}
    request = VideoGenerationRequest(
        prompt="a king walks",
        duration_seconds=10,
        negative_prompt="blur",
        generate_audio=False,
        image_list=[
            {"image": "https://x/start.png", "type": "first_frame"},
            {"image": "https://x/end.png", "type": "last_frame"},
        ],
    )
    payload = build_payload(endpoint, request, "video", VIDEO_MAPPINGS)
    schema_fields = {
        "prompt",
        "start_image_url",
        "end_image_url",
        "duration",
        "negative_prompt",
        "generate_audio",
    }
    assert payload == {
        "prompt": "a king walks",
        "duration": "10",
        "start_image_url": "https://x/start.png",
        "end_image_url": "https://x/end.png",
        "generate_audio": False,
        "negative_prompt": "blur",
    }
    assert set(payload) <= schema_fields


def _schema(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    document = json.loads((FIXTURES / name).read_text())
    return document, dict(input_schema(document, document["info"]["x-fal-metadata"]["endpointId"]))


def _family(endpoint: str) -> Any:
    return next(f for f in FAMILIES if f.prefix == endpoint)


def _named(document: dict[str, Any], schema: dict[str, Any], field: str) -> tuple[Any, ...]:
    """The values the schema names for ``field``: its enum, else its default alone."""
    node = schema["properties"][field]
    values = _enum(document, node)
    return tuple(values) if values else (node["default"],)


@pytest.mark.parametrize(
    ("fixture", "request_fields"),
    [
        (
            "veo3.1-fast-extend-video.json",
            {"video": "https://x/in.mp4", "duration_seconds": 7, "resolution": "720p"},
        ),
        (
            "veo3.1-fast-first-last-frame-to-video.json",
            {
                "image_list": [
                    {"image": "https://x/a.png", "type": "first_frame"},
                    {"image": "https://x/b.png", "type": "last_frame"},
                ],
                "duration_seconds": 6,
                "resolution": "4k",
            },
        ),
        (
            "veo3.1-reference-to-video.json",
            {"image_list": [{"image": "https://x/a.png", "type": "reference"}], "duration_seconds": 8},
        ),
    ],
)
def test_veo_3_1_families_agree_with_fal(fixture: str, request_fields: dict[str, Any]) -> None:
    document, schema = _schema(fixture)
    endpoint = document["info"]["x-fal-metadata"]["endpointId"]
    allowed = _family(endpoint).allowed
    assert allowed["aspect_ratio"] == _named(document, schema, "aspect_ratio")
    assert allowed["resolution"] == _named(document, schema, "resolution")
    assert tuple(f"{s}s" for s in allowed["duration_seconds"]) == _named(document, schema, "duration")
    request = VideoGenerationRequest(
        prompt="go on", aspect_ratio=allowed["aspect_ratio"][-1], **request_fields
    )
    payload = build_payload(endpoint, request, "video", VIDEO_MAPPINGS)
    assert set(payload) <= set(schema["properties"])
    assert set(schema["required"]) <= set(payload)
