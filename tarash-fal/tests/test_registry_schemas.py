"""The built-in registry against fal's published schemas kept in tests/fixtures/schemas.

Each fixture names its source and date. Only fal's schema-generated model pages were reachable
(the raw per-model OpenAPI could not be fetched here), so fixtures transcribe their input fields.
"""

from __future__ import annotations

import json
from pathlib import Path

from tarash.tarash_gateway.models import VideoGenerationRequest
from tarash_fal._registry import VIDEO_MAPPINGS, build_payload
from tarash_fal._schema import derive_spec

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
