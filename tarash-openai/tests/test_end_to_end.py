"""Through the public API, against the fake Images API: exact wire, exact counts, exact errors."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from tarash.tarash_gateway import (
    generate_image,
    generate_image_async,
    generate_video,
    list_jobs,
    resume,
    set_ledger,
)
from tarash.tarash_gateway.exceptions import (
    ContentModerationError,
    HTTPConnectionError,
    HTTPError,
    MissingCredentialsError,
    UnknownSubmissionError,
    UnsupportedModalityError,
    ValidationError,
)
from tarash.tarash_gateway.models import (
    ImageGenerationConfig,
    ImageGenerationRequest,
    MediaContent,
    VideoGenerationConfig,
    VideoGenerationRequest,
)
from tarash_openai.testing import REDACTED, FakeOpenAIServer, png


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_openai_generation(fake_openai: FakeOpenAIServer) -> None:
    config = fake_openai.config(provider_config={"organization": "org-1", "project": "proj_2"})
    request = ImageGenerationRequest(prompt="a lighthouse at dawn", n=2, size="1536x864", quality="high")
    response = generate_image(config, request)
    assert response.images == [f"data:image/png;base64,{b64(png(0))}", f"data:image/png;base64,{b64(png(1))}"]
    assert (response.provider, response.model, response.content_type) == (
        "openai",
        "gpt-image-2.5-flare",
        "image/png",
    )
    assert response.request_id.startswith("req_")
    assert response.raw_response["usage"]["output_tokens_details"] == {"text_tokens": 0, "image_tokens": 544}
    assert fake_openai.counts == {"generations": 1, "edits": 0, "file": 0}
    sent = fake_openai.last("generations")
    assert sent.path == "/v1/images/generations"
    assert sent.json == {
        "model": "gpt-image-2.5-flare",
        "prompt": "a lighthouse at dawn",
        "n": 2,
        "size": "1536x864",
        "quality": "high",
    }
    assert (
        sent.headers["authorization"],
        sent.headers["openai-organization"],
        sent.headers["openai-project"],
    ) == (
        REDACTED,
        "org-1",
        "proj_2",
    )


def test_key_from_openai_api_key(fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", fake_openai.api_key)
    config = ImageGenerationConfig(provider="openai", model="gpt-image-2", base_url=fake_openai.url)
    assert len(generate_image(config, ImageGenerationRequest(prompt="x")).images) == 1
    assert fake_openai.counts["generations"] == 1


def test_azure_generation(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.deployments["team-images"] = "gpt-image-2.5-sunburst"
    config = fake_openai.azure_config("gpt-image-2.5-sunburst", provider_config={"deployment": "team-images"})
    response = generate_image(
        config, ImageGenerationRequest(prompt="a fox", quality="max", output_format="webp")
    )
    assert response.images == [f"data:image/webp;base64,{b64(b'RIFF' + bytes(4) + b'WEBP fake webp 0')}"]
    assert (response.provider, response.content_type) == ("azure-openai", "image/webp")
    sent = fake_openai.last("generations")
    assert (sent.path, sent.query) == (
        "/openai/deployments/team-images/images/generations",
        {"api-version": ["2026-10-01"]},
    )
    assert sent.headers["api-key"] == REDACTED and "authorization" not in sent.headers
    assert sent.json == {
        "model": "team-images",
        "prompt": "a fox",
        "n": 1,
        "quality": "max",
        "output_format": "webp",
    }
    assert fake_openai.counts["generations"] == 1


def test_azure_with_the_openai_key_header_is_refused_by_the_fake(fake_openai: FakeOpenAIServer) -> None:
    config = fake_openai.azure_config(api_key="wrong")
    with pytest.raises(HTTPError) as caught:
        generate_image(config, ImageGenerationRequest(prompt="x"))
    assert caught.value.status_code == 401
    assert fake_openai.counts["generations"] == 1


def test_local_files_are_sent_as_multipart_parts(fake_openai: FakeOpenAIServer, tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(png(7))
    with (tmp_path / "photo.png").open("rb") as stream:
        request = ImageGenerationRequest(
            prompt="add a boat", image_list=[{"image": stream, "type": "reference"}], mask_image=png(8)
        )
    generate_image(fake_openai.config(), request)
    assert fake_openai.last("edits").files == (
        ("image", "image.png", "image/png", png(7)),
        ("mask", "mask.png", "image/png", png(8)),
    )


def test_edit_sends_the_exact_multipart_body(fake_openai: FakeOpenAIServer) -> None:
    request = ImageGenerationRequest(
        prompt="add a boat",
        image_list=[{"image": MediaContent(content=png(7), content_type="image/png"), "type": "reference"}],
        mask_image=MediaContent(content=png(8), content_type="image/png"),
        input_fidelity="low",
    )
    response = generate_image(fake_openai.config(), request)
    assert response.images == [f"data:image/png;base64,{b64(png(0))}"]
    sent = fake_openai.last("edits")
    assert sent.path == "/v1/images/edits"
    assert sent.form == {
        "model": "gpt-image-2.5-flare",
        "prompt": "add a boat",
        "n": "1",
        "input_fidelity": "low",
    }
    assert sent.files == (
        ("image", "image.png", "image/png", png(7)),
        ("mask", "mask.png", "image/png", png(8)),
    )
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert fake_openai.counts == {"generations": 0, "edits": 1, "file": 0}


def test_an_edit_of_several_images_sends_one_image_part_each_in_order(fake_openai: FakeOpenAIServer) -> None:
    url = fake_openai.add_file("in.jpg", b"\xff\xd8\xffJPEG", "image/jpeg")
    request = ImageGenerationRequest(
        prompt="put them in one room",
        image_list=[
            {"image": MediaContent(content=png(1), content_type="image/png"), "type": "reference"},
            {"image": url, "type": "reference"},
            {"image": f"data:image/png;base64,{b64(png(3))}", "type": "reference"},
        ],
        mask_image=MediaContent(content=png(8), content_type="image/png"),
    )
    response = generate_image(fake_openai.config(), request)
    assert response.images == [f"data:image/png;base64,{b64(png(0))}"]
    sent = fake_openai.last("edits")
    assert sent.form == {"model": "gpt-image-2.5-flare", "prompt": "put them in one room", "n": "1"}
    assert sent.files == (
        ("image[]", "image-0.png", "image/png", png(1)),
        ("image[]", "image-1.jpg", "image/jpeg", b"\xff\xd8\xffJPEG"),
        ("image[]", "image-2.png", "image/png", png(3)),
        ("mask", "mask.png", "image/png", png(8)),
    )
    assert fake_openai.counts == {"generations": 0, "edits": 1, "file": 1}
    assert response.raw_response["usage"]["input_tokens_details"]["image_tokens"] == 85 * 3


def test_edit_of_an_url_image_fetches_it_once_without_the_key(fake_openai: FakeOpenAIServer) -> None:
    url = fake_openai.add_file("in.jpg", b"\xff\xd8\xffJPEG", "image/jpeg")
    request = ImageGenerationRequest(prompt="x", image_list=[{"image": url, "type": "reference"}])
    generate_image(fake_openai.config(), request)
    assert fake_openai.counts == {"generations": 0, "edits": 1, "file": 1}
    assert "authorization" not in fake_openai.last("file").headers
    assert fake_openai.last("edits").files == (("image", "image.jpg", "image/jpeg", b"\xff\xd8\xffJPEG"),)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_lost_answer_is_unknown_submission_with_one_request(
    fake_openai: FakeOpenAIServer, mode: str
) -> None:
    fake_openai.inject("generations", "drop")
    config, request = fake_openai.config(), ImageGenerationRequest(prompt="a cat")
    with pytest.raises(UnknownSubmissionError) as caught:
        if mode == "sync":
            generate_image(config, request)
        else:
            await generate_image_async(config, request)
    assert caught.value.retryable is False
    assert "NOT resubmitted" in caught.value.message
    assert fake_openai.counts["generations"] == 1


def test_a_lost_answer_stays_unknown_for_resume_which_has_nothing_to_look_up(
    fake_openai: FakeOpenAIServer, tmp_path: Path
) -> None:
    """The answer of an image request is its output: nothing to find afterwards, no reconcile hook."""
    set_ledger(tmp_path / "jobs.db")
    try:
        fake_openai.inject("generations", "drop")
        with pytest.raises(UnknownSubmissionError):
            generate_image(fake_openai.config(), ImageGenerationRequest(prompt="a cat"))
        [record] = list_jobs()
        assert (record.state, record.finished, record.job_id) == ("unknown", True, None)
        assert resume() == [] and resume(record.key) == []
    finally:
        set_ledger(None)
    assert fake_openai.counts == {"generations": 1, "edits": 0, "file": 0}


def test_a_lost_edit_answer_is_unknown_submission_with_one_request(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.inject("edits", "drop")
    request = ImageGenerationRequest(
        prompt="x",
        image_list=[{"image": MediaContent(content=png(), content_type="image/png"), "type": "reference"}],
    )
    with pytest.raises(UnknownSubmissionError):
        generate_image(fake_openai.config(), request)
    assert fake_openai.counts["edits"] == 1


def test_no_answer_before_the_deadline_is_unknown_submission(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.inject("generations", "stall", delay=1.5)
    with pytest.raises(UnknownSubmissionError):
        generate_image(fake_openai.config(timeout=0.5), ImageGenerationRequest(prompt="x"))
    assert fake_openai.counts["generations"] == 1


def test_a_5xx_is_not_resent(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.inject("generations", status_code=503)
    with pytest.raises(HTTPError) as caught:
        generate_image(fake_openai.config(), ImageGenerationRequest(prompt="x"))
    assert caught.value.status_code == 503
    assert fake_openai.counts["generations"] == 1


def test_moderation_blocked(fake_openai: FakeOpenAIServer) -> None:
    with pytest.raises(ContentModerationError) as caught:
        generate_image(fake_openai.config(), ImageGenerationRequest(prompt="something forbidden"))
    assert (caught.value.provider, caught.value.model) == ("openai", "gpt-image-2.5-flare")
    assert caught.value.message == "Your request was rejected as a result of our safety system."
    assert fake_openai.counts["generations"] == 1


def test_invalid_value_names_param(fake_openai: FakeOpenAIServer) -> None:
    # The plugin's table accepts 256x256 on 2.5 (any multiple of 16); the fake's pixel limit does not.
    fake_openai.inject(
        "generations",
        status_code=400,
        body={
            "error": {
                "message": "Invalid value: '256x256'. Below the minimum pixel count.",
                "type": "invalid_request_error",
                "param": "size",
                "code": "invalid_value",
            }
        },
    )
    with pytest.raises(ValidationError) as caught:
        generate_image(fake_openai.config(), ImageGenerationRequest(prompt="x", size="256x256"))
    assert (caught.value.field, caught.value.phase) == ("size", "submit")
    assert fake_openai.counts["generations"] == 1


def test_429_reset_headers_become_retry_after(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.rate_limit(reset_requests="2s", reset_tokens="1m30s")
    with pytest.raises(HTTPError) as caught:
        generate_image(fake_openai.config(), ImageGenerationRequest(prompt="x"))
    assert (caught.value.status_code, caught.value.retry_after) == (429, 90.0)
    assert fake_openai.counts["generations"] == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"quality": "max", "model": "gpt-image-2"}, "quality"),
        ({"size": "1000x1000"}, "size"),
        ({"model": "gpt-image-1"}, "model"),
    ],
)
def test_impossible_requests_reach_nobody(
    fake_openai: FakeOpenAIServer, kwargs: dict[str, Any], field: str
) -> None:
    model = kwargs.pop("model", "gpt-image-2.5-flare")
    with pytest.raises(ValidationError) as caught:
        generate_image(fake_openai.config(model), ImageGenerationRequest(prompt="x", **kwargs))
    assert caught.value.field == field
    assert fake_openai.requests == []


def test_missing_key_sends_nothing(fake_openai: FakeOpenAIServer) -> None:
    config = ImageGenerationConfig(provider="openai", model="gpt-image-2", base_url=fake_openai.url)
    with pytest.raises(MissingCredentialsError) as caught:
        generate_image(config, ImageGenerationRequest(prompt="x"))
    assert caught.value.env_var == "OPENAI_API_KEY"
    assert fake_openai.requests == []


@pytest.mark.parametrize("provider", ["openai", "azure-openai"])
def test_video_is_unsupported(fake_openai: FakeOpenAIServer, provider: str) -> None:
    config = VideoGenerationConfig(provider=provider, model="sora-2", api_key="k", base_url=fake_openai.url)
    with pytest.raises(UnsupportedModalityError) as caught:
        generate_video(config, VideoGenerationRequest(prompt="x"))
    assert caught.value.message == (
        f"Provider {provider!r} does not support video generation: OpenAI retired the Sora video API on "
        "2026-09-24 (deprecated 2026-03-24); tarash-openai generates images only (the gpt-image-2.x models)"
    )
    assert fake_openai.requests == []


def test_a_lost_input_download_is_not_a_lost_submission(fake_openai: FakeOpenAIServer) -> None:
    url = fake_openai.add_file("in.png", png(), "image/png")
    fake_openai.inject("file", "drop")
    request = ImageGenerationRequest(prompt="x", image_list=[{"image": url, "type": "reference"}])
    with pytest.raises(HTTPConnectionError) as caught:
        generate_image(fake_openai.config(), request)
    assert type(caught.value) is HTTPConnectionError
    assert fake_openai.counts == {"generations": 0, "edits": 0, "file": 1}
