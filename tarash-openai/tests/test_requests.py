"""What the flow sends: exact JSON and multipart bodies, paths, headers; nothing for bad input."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from conftest import answer, context, run

from tarash.tarash_gateway.exceptions import ValidationError
from tarash.tarash_gateway.models import ImageGenerationConfig, ImageGenerationRequest, MediaContent
from tarash.tarash_gateway.plugin import Request
from tarash_openai import _flow, _models
from tarash_openai.testing import png

PNG = png(1, 2, 3)
ANSWER = {"created": 1, "data": [{"b64_json": base64.b64encode(PNG).decode()}]}
AZURE_ROOT = "https://res.openai.azure.com"


def config(model: str = "gpt-image-2.5-flare", **kwargs: Any) -> ImageGenerationConfig:
    return ImageGenerationConfig(provider=kwargs.pop("provider", "openai"), model=model, **kwargs)


def first_request(
    cfg: ImageGenerationConfig, request: ImageGenerationRequest, provider: str = "openai"
) -> Request:
    base_url = AZURE_ROOT if provider == "azure-openai" else "https://api.openai.com/v1"
    return next(_flow.generate_image(cfg, request, context(provider, base_url)))


def refused(
    cfg: ImageGenerationConfig,
    request: ImageGenerationRequest,
    provider: str = "openai",
    base_url: str = "https://api.openai.com/v1",
) -> ValidationError:
    """The ValidationError raised before the first request (so nothing was sent)."""
    flow = _flow.generate_image(cfg, request, context(provider, base_url))
    with pytest.raises(ValidationError) as caught:
        next(flow)
    return caught.value


def test_generation_sends_the_exact_json_body() -> None:
    request = ImageGenerationRequest(
        prompt="a lighthouse",
        n=2,
        size="1536x864",
        quality="xhigh",
        background="transparent",
        output_format="webp",
        output_compression=80,
        moderation="low",
        complexity="high",
        safety_identifier="user-hash",
    )
    sent = first_request(config(), request)
    assert (sent.method, sent.url, dict(sent.params), dict(sent.headers), sent.auth) == (
        "POST",
        "/images/generations",
        {},
        {},
        True,
    )
    assert sent.json == {
        "model": "gpt-image-2.5-flare",
        "prompt": "a lighthouse",
        "n": 2,
        "size": "1536x864",
        "quality": "xhigh",
        "background": "transparent",
        "output_format": "webp",
        "output_compression": 80,
        "moderation": "low",
        "complexity": "high",
        "safety_identifier": "user-hash",
    }
    assert sent.files is None and sent.data is None


def test_a_minimal_generation_sends_model_prompt_and_n() -> None:
    sent = first_request(config("gpt-image-2"), ImageGenerationRequest(prompt="a cat"))
    assert sent.json == {"model": "gpt-image-2", "prompt": "a cat", "n": 1}


@pytest.mark.parametrize(
    ("model", "aspect", "size"),
    [
        ("gpt-image-2.6-flare", "1:1", "1024x1024"),
        ("gpt-image-2.6-flare", "3:2", "1536x1024"),
        ("gpt-image-2.6-sunburst", "2:3", "1024x1536"),
        ("gpt-image-2", "auto", "auto"),
        ("gpt-image-2", "16:9", "1536x864"),
        ("gpt-image-2.5-sunburst", "9:21", "864x2016"),
    ],
)
def test_aspect_ratio_becomes_a_size(model: str, aspect: str, size: str) -> None:
    sent = first_request(config(model), ImageGenerationRequest(prompt="x", aspect_ratio=aspect))
    assert sent.json["size"] == size


def test_organisation_and_project_headers() -> None:
    cfg = config(provider_config={"organization": "org-1", "project": "proj_2"})
    sent = first_request(cfg, ImageGenerationRequest(prompt="x"))
    assert dict(sent.headers) == {"OpenAI-Organization": "org-1", "OpenAI-Project": "proj_2"}


def test_edit_sends_multipart_with_the_image_and_mask() -> None:
    mask = MediaContent(content=png(0, 0, 0), content_type="image/png")
    request = ImageGenerationRequest(
        prompt="add a boat",
        image_list=[{"image": MediaContent(content=PNG, content_type="image/png"), "type": "reference"}],
        mask_image=mask,
        quality="high",
        input_fidelity="high",
        n=3,
    )
    sent = first_request(config(), request)
    assert (sent.method, sent.url, sent.json) == ("POST", "/images/edits", None)
    assert sent.files == [
        ("image", ("image.png", PNG, "image/png")),
        ("mask", ("mask.png", png(0, 0, 0), "image/png")),
    ]
    assert sent.data == {
        "model": "gpt-image-2.5-flare",
        "prompt": "add a boat",
        "n": "3",
        "quality": "high",
        "input_fidelity": "high",
    }


def test_edit_decodes_a_data_uri_image() -> None:
    uri = MediaContent(content=b"JPEGDATA", content_type="image/jpeg").to_data_uri()
    request = ImageGenerationRequest(prompt="x", image_list=[{"image": uri, "type": "reference"}])
    sent = first_request(config(), request)
    assert sent.files == [("image", ("image.jpg", b"JPEGDATA", "image/jpeg"))]


def test_edit_fetches_an_url_image_through_core_without_auth_then_posts_it() -> None:
    request = ImageGenerationRequest(
        prompt="x", image_list=[{"image": "https://cdn.test/in.webp", "type": "reference"}]
    )
    flow = _flow.generate_image(config(), request, context())
    requests, response = run(
        flow,
        answer(b"WEBPDATA", headers={"Content-Type": "image/webp; charset=binary"}),
        answer(ANSWER),
    )
    assert [(r.method, r.url, r.auth) for r in requests] == [
        ("GET", "https://cdn.test/in.webp", False),
        ("POST", "/images/edits", True),
    ]
    assert requests[1].files == [("image", ("image.webp", b"WEBPDATA", "image/webp"))]
    assert response.images == [f"data:image/png;base64,{base64.b64encode(PNG).decode()}"]


def test_an_url_image_of_the_wrong_type_is_refused_before_the_post() -> None:
    request = ImageGenerationRequest(
        prompt="x", image_list=[{"image": "https://cdn.test/in.gif", "type": "reference"}]
    )
    flow = _flow.generate_image(config(), request, context())
    assert next(flow).method == "GET"
    with pytest.raises(ValidationError) as caught:
        flow.send(answer(b"GIF89a", headers={"content-type": "image/gif"}))
    assert caught.value.field == "image_list[0]"


def test_azure_puts_the_deployment_in_the_path_and_the_api_version_in_the_query() -> None:
    cfg = config(provider="azure-openai", api_version="2026-10-01", provider_config={"deployment": "imgs"})
    sent = first_request(cfg, ImageGenerationRequest(prompt="x", quality="max"), "azure-openai")
    assert (sent.url, dict(sent.params), dict(sent.headers)) == (
        "/openai/deployments/imgs/images/generations",
        {"api-version": "2026-10-01"},
        {},
    )
    assert sent.json == {"model": "imgs", "prompt": "x", "n": 1, "quality": "max"}


def test_azure_deployment_defaults_to_the_model_id() -> None:
    cfg = config("gpt-image-2", provider="azure-openai", api_version="v")
    sent = first_request(cfg, ImageGenerationRequest(prompt="x"), "azure-openai")
    assert sent.url == "/openai/deployments/gpt-image-2/images/generations"


def test_azure_without_endpoint_or_api_version_sends_nothing() -> None:
    no_version = refused(
        config(provider="azure-openai"), ImageGenerationRequest(prompt="x"), "azure-openai", AZURE_ROOT
    )
    assert no_version.field == "api_version"
    no_root = refused(
        config(provider="azure-openai", api_version="v"),
        ImageGenerationRequest(prompt="x"),
        "azure-openai",
        "",
    )
    assert no_root.field == "base_url"


@pytest.mark.parametrize(
    ("model", "field", "kwargs"),
    [
        ("gpt-image-2", "quality", {"quality": "xhigh"}),
        ("gpt-image-2.6-flare", "quality", {"quality": "max"}),
        ("gpt-image-2.5-flare", "quality", {"quality": "hd"}),
        ("gpt-image-2.6-flare", "size", {"size": "1536x864"}),
        ("gpt-image-2.5-flare", "size", {"size": "1000x1000"}),
        ("gpt-image-2.5-flare", "size", {"size": "3200x800"}),
        ("gpt-image-2.5-flare", "size", {"size": "4096x2160"}),
        ("gpt-image-2.6-flare", "size", {"size": "256x256"}),
        ("gpt-image-2.5-flare", "size", {"size": "big"}),
        ("gpt-image-2.6-flare", "aspect_ratio", {"aspect_ratio": "16:9"}),
        ("gpt-image-2.5-flare", "aspect_ratio", {"aspect_ratio": "1:1", "size": "1024x1024"}),
        ("gpt-image-2.5-flare", "n", {"n": 11}),
        ("gpt-image-2.5-flare", "negative_prompt", {"negative_prompt": "dogs"}),
        ("gpt-image-2.5-flare", "seed", {"seed": 7}),
        ("gpt-image-2.5-flare", "style", {"style": "vivid"}),
        ("gpt-image-2.5-flare", "prompt", {"prompt": " "}),
        ("gpt-image-2.5-flare", "prompt", {"prompt": "x" * 32_001}),
        ("gpt-image-2.5-flare", "background", {"background": "transparent", "output_format": "jpeg"}),
        ("gpt-image-2.5-flare", "background", {"background": "clear"}),
        ("gpt-image-2.5-flare", "output_format", {"output_format": "bmp"}),
        ("gpt-image-2.5-flare", "output_compression", {"output_compression": 50}),
        ("gpt-image-2.5-flare", "output_compression", {"output_format": "jpeg", "output_compression": 101}),
        ("gpt-image-2.5-flare", "frame_count", {"frame_count": 4}),
        ("gpt-image-2.5-flare", "frame_count", {"output_format": "gif", "frame_count": 17}),
        ("gpt-image-2.5-flare", "frame_duration_ms", {"output_format": "gif", "frame_duration_ms": 0}),
        ("gpt-image-2.5-flare", "n", {"output_format": "svg", "n": 2}),
        ("gpt-image-2.5-flare", "moderation", {"moderation": "off"}),
        ("gpt-image-2.5-flare", "complexity", {"complexity": "max"}),
        ("gpt-image-2.5-flare", "extra_params.input_fidelity", {"input_fidelity": "high"}),
        ("gpt-image-2.5-flare", "extra_params.stream", {"stream": True}),
        ("gpt-image-2.5-flare", "user", {"user": 42}),
        ("gpt-image-1", "model", {}),
        ("dall-e-3", "model", {}),
        ("gpt-image-1.5", "model", {}),
    ],
)
def test_impossible_requests_send_nothing(model: str, field: str, kwargs: dict[str, Any]) -> None:
    kwargs.setdefault("prompt", "a cat")
    error = refused(config(model), ImageGenerationRequest(**kwargs))
    assert error.field == field


def test_a_retired_model_names_its_successors() -> None:
    error = refused(config("gpt-image-1"), ImageGenerationRequest(prompt="x"))
    assert "shut down on October 23, 2026" in error.message
    assert "gpt-image-2.5-sunburst" in error.message
    assert error.allowed == tuple(_models.MODELS)


def edit(**kwargs: Any) -> ImageGenerationRequest:
    image = MediaContent(content=PNG, content_type="image/png")
    kwargs.setdefault("image_list", [{"image": image, "type": "reference"}])
    return ImageGenerationRequest(prompt="x", **kwargs)


@pytest.mark.parametrize(
    ("model", "field", "request_"),
    [
        ("gpt-image-2", "input_fidelity", edit(input_fidelity="high")),
        ("gpt-image-2.5-flare", "input_fidelity", edit(input_fidelity="max")),
        (
            "gpt-image-2.5-flare",
            "mask_image",
            edit(image_list=[], mask_image=MediaContent(content=PNG, content_type="image/png")),
        ),
        (
            "gpt-image-2.5-flare",
            "mask_image",
            edit(mask_image=MediaContent(content=b"J", content_type="image/jpeg")),
        ),
        (
            "gpt-image-2.5-flare",
            "mask_image",
            edit(mask_image=MediaContent(content=PNG, content_type="image/png"), output_format="gif"),
        ),
        (
            "gpt-image-2.5-flare",
            "image_list[0]",
            edit(
                image_list=[
                    {"image": MediaContent(content=b"G", content_type="image/gif"), "type": "reference"}
                ]
            ),
        ),
        (
            "gpt-image-2.5-flare",
            "image_list[0]",
            edit(image_list=[{"image": "file:///etc/hosts", "type": "reference"}]),
        ),
        (
            "gpt-image-2.5-flare",
            "image_list[0].type",
            edit(
                image_list=[
                    {"image": MediaContent(content=PNG, content_type="image/png"), "type": "first_frame"}
                ]
            ),
        ),
        (
            "gpt-image-2.5-flare",
            "image_list",
            edit(
                image_list=[
                    {"image": MediaContent(content=PNG, content_type="image/png"), "type": "reference"}
                ]
                * 17
            ),
        ),
    ],
)
def test_impossible_edits_send_nothing(model: str, field: str, request_: ImageGenerationRequest) -> None:
    assert refused(config(model), request_).field == field
