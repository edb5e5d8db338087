"""_schema (mapping derived from a model's OpenAPI) and `tarash fal add-model` (_commands)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from tarash.tarash_gateway import Gateway
from tarash.tarash_gateway.exceptions import ValidationError
from tarash.tarash_gateway.models import ImageGenerationRequest, VideoGenerationRequest
from tarash.tarash_gateway.plugin import Request, Response
from tarash_fal._commands import (
    add_commands,
    add_model,
    fetch_schema_flow,
    load_user_models,
    user_models_path,
)
from tarash_fal._registry import build_payload
from tarash_fal._schema import derive_spec, family_from_spec, input_schema
from tarash_fal.testing import FakeFalServer, openapi_document

VIDEO_ID = "acme/clipper/image-to-video"
VIDEO_PROPERTIES: dict[str, Any] = {
    "prompt": {"type": "string"},
    "duration": {"anyOf": [{"$ref": "#/components/schemas/DurationEnum"}, {"type": "null"}], "default": "8s"},
    "aspect_ratio": {"allOf": [{"$ref": "#/components/schemas/AspectRatio"}]},
    "resolution": {"type": "string"},
    "image_url": {"type": "string"},
    "end_image_url": {"type": "string"},
    "generate_audio_switch": {"type": "boolean"},
    "seed": {"type": "integer"},
    "negative_prompt": {"type": "string"},
    "loras": {"type": "array"},
}
VIDEO_DOC = openapi_document(
    VIDEO_ID,
    VIDEO_PROPERTIES,
    required=("prompt", "image_url"),
    category="image-to-video",
    schemas={
        "DurationEnum": {"type": "string", "enum": ["4s", "6s", "8s"]},
        "AspectRatio": {"type": "string", "enum": ["16:9", "9:16", "1:1"]},
    },
)
VIDEO_SPEC = {
    "version": 1,
    "endpoint_id": VIDEO_ID,
    "modality": "video",
    "category": "image-to-video",
    "prompt": "prompt",
    "required": ["image_url", "prompt"],
    "duration": {"field": "duration", "format": "seconds_suffix", "allowed": [4, 6, 8]},
    "aspect_ratio": {"field": "aspect_ratio", "allowed": ["16:9", "9:16", "1:1"]},
    "resolution": {"field": "resolution", "allowed": None},
    "image_size": False,
    "num_images": False,
    "generate_audio": "generate_audio_switch",
    "seed": "seed",
    "negative_prompt": "negative_prompt",
    "images": {
        "frames": {"image_url": ["first_frame", "reference"], "end_image_url": ["last_frame"]},
        "lists": {},
    },
    "video": None,
}


def test_a_video_model_is_derived_exactly_and_deterministically() -> None:
    spec = derive_spec(VIDEO_DOC, VIDEO_ID)
    assert spec == VIDEO_SPEC
    reordered = json.loads(json.dumps(VIDEO_DOC, sort_keys=True))
    assert json.dumps(derive_spec(reordered, VIDEO_ID)) == json.dumps(spec)


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        (
            {"type": "string", "enum": ["5", "10"]},
            {"field": "duration", "format": "string", "allowed": [5, 10]},
        ),
        (
            {"type": "integer", "enum": [4, 8, 12]},
            {"field": "duration", "format": "integer", "allowed": [4, 8, 12]},
        ),
        (
            {"type": "integer", "minimum": 3, "maximum": 6},
            {"field": "duration", "format": "integer", "allowed": [3, 4, 5, 6]},
        ),
        ({"type": "integer", "minimum": 1, "maximum": 1000}, None),
        ({"type": "number"}, None),
    ],
)
def test_duration_units_and_allowed_values(duration: dict[str, Any], expected: dict[str, Any] | None) -> None:
    document = openapi_document("a/b", {"prompt": {"type": "string"}, "duration": duration})
    assert derive_spec(document, "a/b")["duration"] == expected


def test_reference_lists_video_inputs_and_first_frame_names() -> None:
    document = openapi_document(
        "a/ref",
        {
            "prompt": {"type": "string"},
            "start_image_url": {"type": "string"},
            "image_url": {"type": "string"},
            "tail_image_url": {"type": "string"},
            "image_urls": {"type": "array"},
            "video_url": {"type": "string"},
        },
        required=("prompt", "video_url"),
    )
    spec = derive_spec(document, "a/ref")
    assert spec["images"] == {
        "frames": {"start_image_url": ["first_frame"], "tail_image_url": ["last_frame"]},
        "lists": {"image_urls": ["reference"]},
    }
    assert (spec["video"], spec["required"]) == ("video_url", ["prompt", "video_url"])


def test_an_image_model() -> None:
    document = openapi_document(
        "acme/painter",
        {
            "prompt": {"type": "string"},
            "image_size": {"anyOf": [{"$ref": "#/components/schemas/ImageSize"}, {"enum": ["square_hd"]}]},
            "num_images": {"type": "integer"},
            "seed": {"type": "integer"},
            "duration": {"type": "integer", "enum": [5]},
        },
        category="text-to-image",
        schemas={"ImageSize": {"type": "object"}},
    )
    spec = derive_spec(document, "acme/painter")
    assert {
        k: spec[k] for k in ("modality", "image_size", "num_images", "aspect_ratio", "duration", "seed")
    } == {
        "modality": "image",
        "image_size": True,
        "num_images": True,
        "aspect_ratio": None,
        "duration": None,
        "seed": "seed",
    }
    family = family_from_spec(spec)
    payload = build_payload(
        "acme/painter",
        ImageGenerationRequest(prompt="a fox", aspect_ratio="16:9", n=2, seed=7),
        "image",
        {"acme/painter": family.mapping},
    )
    assert payload == {"prompt": "a fox", "image_size": "landscape_16_9", "num_images": 2, "seed": 7}


def test_the_input_schema_is_found_by_path_or_by_name() -> None:
    assert input_schema(VIDEO_DOC, VIDEO_ID)["title"] == "AcmeClipperImageToVideoInput"
    bare: dict[str, Any] = {
        "components": {"schemas": {"XInput": {"properties": {"prompt": {}}}, "XOutput": {}}}
    }
    assert list(input_schema(bare, "x/y")["properties"]) == ["prompt"]
    with pytest.raises(ValidationError, match="no input schema for 'x/y'"):
        input_schema({"components": {"schemas": {}}}, "x/y")


def test_the_derived_family_builds_and_checks_the_payload() -> None:
    family = family_from_spec(VIDEO_SPEC)
    mappings = {VIDEO_ID: family.mapping}
    request = VideoGenerationRequest(
        prompt="a lighthouse",
        duration_seconds=6,
        aspect_ratio="9:16",
        resolution="720p",
        generate_audio=True,
        seed=3,
        negative_prompt="blur",
        image_list=[
            {"image": "https://x/first.png", "type": "first_frame"},
            {"image": "https://x/last.png", "type": "last_frame"},
        ],
    )
    assert build_payload(VIDEO_ID, request, "video", mappings) == {
        "prompt": "a lighthouse",
        "duration": "6s",
        "aspect_ratio": "9:16",
        "image_url": "https://x/first.png",
        "end_image_url": "https://x/last.png",
        "generate_audio_switch": True,
        "seed": 3,
        "negative_prompt": "blur",
        "resolution": "720p",
    }
    assert family.record.allowed == {
        "duration_seconds": (4, 6, 8),
        "aspect_ratio": ("16:9", "9:16", "1:1"),
        "image_list": ("first_frame", "last_frame", "reference"),
    }
    with pytest.raises(ValidationError) as caught:
        build_payload(VIDEO_ID, VideoGenerationRequest(prompt="x", duration_seconds=5), "video", mappings)
    assert (caught.value.field, caught.value.allowed) == ("duration_seconds", (4, 6, 8))
    with pytest.raises(ValidationError) as caught:
        build_payload(VIDEO_ID, VideoGenerationRequest(prompt="x"), "video", mappings)
    assert caught.value.field == "image_list"


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="tarash")
    subparsers = parser.add_subparsers()
    add_commands(subparsers)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_add_model_from_a_file_saves_to_the_user_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TARASH_HOME", str(tmp_path / "home"))
    source = tmp_path / "schema.json"
    source.write_text(json.dumps(VIDEO_DOC))
    assert _cli("fal", "add-model", VIDEO_ID, "--from", str(source)) == 0
    assert json.loads(capsys.readouterr().out) == VIDEO_SPEC
    assert user_models_path() == tmp_path / "home" / "fal" / "models.json"
    assert json.loads(user_models_path().read_text()) == {"version": 1, "models": {VIDEO_ID: VIDEO_SPEC}}
    other = openapi_document("acme/a", {"prompt": {"type": "string"}})
    add_model("acme/a", other)
    assert list(load_user_models()) == ["acme/a", VIDEO_ID]
    assert [p.name for p in user_models_path().parent.iterdir()] == ["models.json"]


def test_add_model_errors_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TARASH_HOME", str(tmp_path))
    assert _cli("fal", "add-model", "acme/x", "--from", str(tmp_path / "missing.json")) == 2
    assert "cannot read" in capsys.readouterr().err
    assert _cli("fal", "add-model", "acme/x", "--url", "http://127.0.0.1:9/openapi.json") == 2
    assert "fal unreachable: ConnectError" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text(json.dumps({"openapi": "3.0.4"}))
    assert _cli("fal", "add-model", "acme/x", "--from", str(tmp_path / "bad.json")) == 2
    assert "no input schema for 'acme/x'" in capsys.readouterr().err
    assert not user_models_path().exists()


def test_the_fetch_flow_is_one_public_get() -> None:
    flow = fetch_schema_flow(VIDEO_ID)
    assert next(flow) == Request(
        method="GET",
        url="https://fal.ai/api/openapi/queue/openapi.json",
        params={"endpoint_id": VIDEO_ID},
        auth=False,
    )
    with pytest.raises(StopIteration) as done:
        flow.send(Response(status_code=200, headers={}, content=json.dumps(VIDEO_DOC).encode()))
    assert done.value.value == VIDEO_DOC
    flow = fetch_schema_flow(VIDEO_ID)
    next(flow)
    with pytest.raises(ValidationError):
        flow.send(Response(status_code=200, headers={}, content=b"[]"))


def test_add_model_against_the_fake_then_generate_with_exactly_the_mapped_payload(
    fake_fal: FakeFalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARASH_HOME", str(tmp_path))
    fake_fal.add_openapi(VIDEO_ID, VIDEO_DOC)
    url = f"{fake_fal.base_url}/api/openapi/queue/openapi.json"
    assert _cli("fal", "add-model", VIDEO_ID, "--url", url, "--ca-bundle", fake_fal.ca_path) == 0
    assert fake_fal.platform_counts["openapi"] == 1
    request = VideoGenerationRequest(
        prompt="waves", duration_seconds=4, image_list=[{"image": "https://x/a.png", "type": "reference"}]
    )
    gateway = Gateway(ledger="off")  # discovers tarash-fal afresh: its tables now hold the saved model
    assert VIDEO_ID in [family.prefix for family in gateway.get_provider("fal").spec.models]
    response = gateway.generate_video(fake_fal.video_config(VIDEO_ID), request)
    assert [s["payload"] for s in fake_fal.submissions] == [
        {"prompt": "waves", "duration": "4s", "image_url": "https://x/a.png"}
    ]
    assert response.request_id == fake_fal.submissions[0]["request_id"]
    with pytest.raises(ValidationError) as refused:
        gateway.generate_video(
            fake_fal.video_config(VIDEO_ID), VideoGenerationRequest("w", duration_seconds=7)
        )
    assert refused.value.field == "duration_seconds"
    assert fake_fal.counts["submit"] == 1
    gateway.close()
