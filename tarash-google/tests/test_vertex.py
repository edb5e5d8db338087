"""Provider ``google-vertex``: OAuth through a service-account file against the fake token
endpoint, each route's exact body, operation polling through ``:fetchPredictOperation``, cancel."""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tarash.tarash_gateway.exceptions import ContentModerationError, ValidationError
from tarash.tarash_gateway.models import (
    ImageGenerationConfig,
    ImageGenerationRequest,
    MediaContent,
    VideoGenerationConfig,
    VideoGenerationRequest,
)
from tarash_google import _auth, _flows
from tarash_google.testing import PNG_BYTES, VIDEO_BYTES, FakeGoogle

from .conftest import context, drive, job_ref

SCOPE = "/v1beta1/projects/fake-project/locations/us-central1"


def vconfig(
    fake: FakeGoogle, tmp_path: Path, model: str = "veo-3.0-generate-001", **provider_config: object
) -> VideoGenerationConfig:
    provider_config = {
        "credentials_file": fake.service_account_file(tmp_path),
        "location": "us-central1",
        **provider_config,
    }
    return VideoGenerationConfig(
        provider="google-vertex", model=model, base_url=fake.url, provider_config=provider_config
    )


def test_veo_on_vertex_through_a_service_account_file(fake: FakeGoogle, tmp_path: Path) -> None:
    config = vconfig(fake, tmp_path, output_gcs_uri=None)
    request = VideoGenerationRequest(
        prompt="waves", duration_seconds=6, seed=11, generate_audio=True, enhance_prompt=False
    )
    ctx = context("google-vertex")
    job = drive(_flows.submit("vertex", config, request, ctx), fake.url)
    ref = job_ref(job, config.model, provider="google-vertex")
    states = [drive(_flows.status("vertex", config, ref, ctx), fake.url).state for _ in range(2)]
    response = drive(_flows.result("vertex", config, ref, ctx), fake.url)

    token_request = fake.requests[0]
    assert token_request["path"] == "/token" and token_request["kind"] == "token"
    assert token_request["body"]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert "authorization" not in {k.lower() for k in token_request["headers"]}
    submit = fake.requests[1]
    assert submit["path"] == f"{SCOPE}/publishers/google/models/veo-3.0-generate-001:predictLongRunning"
    assert submit["headers"]["Authorization"] == f"Bearer {next(iter(fake.tokens))}"
    assert submit["body"] == {
        "instances": [{"prompt": "waves"}],
        "parameters": {
            "sampleCount": 1,
            "durationSeconds": 6,
            "enhancePrompt": False,
            "seed": 11,
            "generateAudio": True,
        },
    }
    polls = [r for r in fake.requests if r["kind"] == "status"]
    assert [p["path"] for p in polls] == [
        f"{SCOPE}/publishers/google/models/veo-3.0-generate-001:fetchPredictOperation"
    ] * 3
    assert polls[0]["body"] == {"operationName": job.job_id}
    assert job.job_id.startswith(
        "projects/fake-project/locations/us-central1/publishers/google/models/veo-3.0-generate-001/operations/"
    )
    assert states == ["processing", "completed"]
    assert response.video == MediaContent(content=VIDEO_BYTES, content_type="video/mp4")
    assert fake.counts == {"submit": 1, "status": 3, "result": 0, "cancel": 0, "token": 1}


def test_gcs_output_is_returned_as_its_uri(fake: FakeGoogle, tmp_path: Path) -> None:
    config = vconfig(fake, tmp_path, output_gcs_uri="gs://bucket/out")
    ctx = context("google-vertex")
    job = drive(_flows.submit("vertex", config, VideoGenerationRequest(prompt="a"), ctx), fake.url)
    ref = job_ref(job, config.model, provider="google-vertex")
    drive(_flows.status("vertex", config, ref, ctx), fake.url)
    response = drive(_flows.result("vertex", config, ref, ctx), fake.url)
    assert fake.bodies("submit")[0]["parameters"] == {"sampleCount": 1, "storageUri": "gs://bucket/out"}
    assert response.video == f"gs://bucket/out/{job.job_id.rsplit('/', 1)[1]}/sample_0.mp4"


def test_imagen_predict_body_and_images(fake: FakeGoogle, tmp_path: Path) -> None:
    config = ImageGenerationConfig(
        provider="google-vertex",
        model="imagen-4.0-generate-001",
        base_url=fake.url,
        provider_config={
            "credentials_file": fake.service_account_file(tmp_path),
            "project": "other",
            "location": "europe-west4",
        },
    )
    request = ImageGenerationRequest(
        prompt="a fox",
        n=2,
        aspect_ratio="3:4",
        size="2K",
        seed=3,
        extra_params={"person_generation": "dont_allow", "addWatermark": False},
    )
    ctx = context("google-vertex", "image")
    job = drive(_flows.submit("vertex", config, request, ctx), fake.url)
    response = drive(
        _flows.result("vertex", config, job_ref(job, config.model, "google-vertex", "image"), ctx), fake.url
    )
    submit = fake.requests[1]
    assert (
        submit["path"] == "/v1beta1/projects/other/locations/europe-west4/publishers/google/models/"
        "imagen-4.0-generate-001:predict"
    )
    assert submit["body"] == {
        "instances": [{"prompt": "a fox"}],
        "parameters": {
            "sampleCount": 2,
            "includeRaiReason": True,
            "aspectRatio": "3:4",
            "seed": 3,
            "personGeneration": "dont_allow",
            "sampleImageSize": "2K",
            "addWatermark": False,
        },
    }
    assert response.images == [f"data:image/png;base64,{base64.b64encode(PNG_BYTES).decode()}"] * 2


def test_imagen_filtered_prompt_is_moderation_with_the_rai_reason(fake: FakeGoogle, tmp_path: Path) -> None:
    config = ImageGenerationConfig(
        provider="google-vertex",
        model="imagen-3.0-generate-002",
        base_url=fake.url,
        provider_config={"credentials_file": fake.service_account_file(tmp_path)},
    )
    with pytest.raises(
        ContentModerationError, match="39322892: This prompt may violate our policies about person generation"
    ):
        drive(
            _flows.submit(
                "vertex",
                config,
                ImageGenerationRequest(prompt="[filtered]"),
                context("google-vertex", "image"),
            ),
            fake.url,
        )


def test_token_is_cached_across_calls_until_expiry(fake: FakeGoogle, tmp_path: Path) -> None:
    config = vconfig(fake, tmp_path)
    ctx = context("google-vertex")
    for _ in range(3):
        drive(_flows.submit("vertex", config, VideoGenerationRequest(prompt="a"), ctx), fake.url)
    assert fake.counts["token"] == 1 and fake.counts["submit"] == 3
    credentials = _auth.load(config.provider_config["credentials_file"])
    assert _auth.cached_token(credentials, now=time.time() + 3599 - 61) is not None
    assert _auth.cached_token(credentials, now=time.time() + 3599 - 59) is None


def test_a_refused_assertion_is_a_credentials_error(fake: FakeGoogle, tmp_path: Path) -> None:
    config = vconfig(fake, tmp_path)
    path = Path(config.provider_config["credentials_file"])
    info = json.loads(path.read_text())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info["private_key"] = other_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path.write_text(json.dumps(info))
    with pytest.raises(
        ValidationError, match=r"was refused by .*/token \(HTTP 400: invalid_grant: Invalid JWT Signature"
    ) as info_:
        drive(
            _flows.submit("vertex", config, VideoGenerationRequest(prompt="a"), context("google-vertex")),
            fake.url,
        )
    assert info_.value.field == "provider_config.credentials_file"
    assert fake.counts == {"submit": 0, "status": 0, "result": 0, "cancel": 0, "token": 1}


def test_authorized_user_credentials_use_the_refresh_grant(fake: FakeGoogle, tmp_path: Path) -> None:
    path = tmp_path / "adc.json"
    path.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "cid",
                "client_secret": "cs",
                "refresh_token": "rt",
                "token_uri": fake.token_uri,
                "quota_project_id": "billing",
            }
        )
    )
    config = VideoGenerationConfig(
        provider="google-vertex",
        model="veo-3.0-generate-001",
        base_url=fake.url,
        provider_config={"credentials_file": str(path), "project": "p1", "location": "global"},
    )
    drive(
        _flows.submit("vertex", config, VideoGenerationRequest(prompt="a"), context("google-vertex")),
        fake.url,
    )
    assert fake.bodies("token") == [
        {"grant_type": "refresh_token", "client_id": "cid", "client_secret": "cs", "refresh_token": "rt"}
    ]
    submit = fake.requests[1]
    assert (
        submit["path"] == "/v1beta1/projects/p1/locations/global/publishers/google/models/"
        "veo-3.0-generate-001:predictLongRunning"
    )
    assert submit["headers"]["x-goog-user-project"] == "billing"


@pytest.mark.parametrize(
    ("provider_config", "message"),
    [
        ({}, "google-vertex needs credentials"),
        ({"credentials_file": "/nonexistent.json"}, "cannot be read"),
    ],
)
def test_missing_credentials_send_nothing(
    fake: FakeGoogle, monkeypatch: pytest.MonkeyPatch, provider_config: dict[str, str], message: str
) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    config = VideoGenerationConfig(
        provider="google-vertex",
        model="veo-3.0-generate-001",
        base_url=fake.url,
        provider_config=provider_config,
    )
    flow = _flows.submit("vertex", config, VideoGenerationRequest(prompt="a"), context("google-vertex"))
    with pytest.raises(ValidationError, match=message):
        next(flow)
    assert fake.requests == []


def test_credentials_from_google_application_credentials(
    fake: FakeGoogle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", fake.service_account_file(tmp_path))
    config = VideoGenerationConfig(provider="google-vertex", model="veo-3.0-generate-001", base_url=fake.url)
    drive(
        _flows.submit("vertex", config, VideoGenerationRequest(prompt="a"), context("google-vertex")),
        fake.url,
    )
    assert (
        fake.requests[1]["path"]
        == "/v1beta1/projects/fake-project/locations/global/publishers/google/models/"
        "veo-3.0-generate-001:predictLongRunning"
    )


def test_cancel_a_running_operation_then_a_finished_one(fake: FakeGoogle, tmp_path: Path) -> None:
    config = vconfig(fake, tmp_path)
    ctx = context("google-vertex")
    running = drive(_flows.submit("vertex", config, VideoGenerationRequest(prompt="a"), ctx), fake.url)
    ref = job_ref(running, config.model, provider="google-vertex")
    assert drive(_flows.cancel("vertex", config, ref, ctx), fake.url) is True
    cancel = next(r for r in fake.requests if r["kind"] == "cancel")
    assert cancel["path"] == f"/v1beta1/{running.job_id}:cancel" and cancel["body"] == {}
    assert drive(_flows.status("vertex", config, ref, ctx), fake.url).state == "failed"
    assert drive(_flows.cancel("vertex", config, ref, ctx), fake.url) is False


def test_cancel_an_omni_interaction(fake: FakeGoogle, tmp_path: Path) -> None:
    config = vconfig(fake, tmp_path, model="gemini-omni-1.2-flash")
    ctx = context("google-vertex")
    job = drive(_flows.submit("vertex", config, VideoGenerationRequest(prompt="a"), ctx), fake.url)
    ref = job_ref(job, config.model, provider="google-vertex")
    assert fake.requests[1]["path"] == f"{SCOPE}/interactions"
    assert drive(_flows.cancel("vertex", config, ref, ctx), fake.url) is True
    assert [r["path"] for r in fake.requests if r["kind"] == "cancel"] == [
        f"{SCOPE}/interactions/{job.job_id}/cancel"
    ]
    assert drive(_flows.status("vertex", config, ref, ctx), fake.url).state == "cancelled"


@pytest.mark.parametrize(
    ("location", "root"),
    [
        ("global", "https://aiplatform.googleapis.com"),
        ("us", "https://aiplatform.us.rep.googleapis.com"),
        ("us-central1", "https://us-central1-aiplatform.googleapis.com"),
    ],
)
def test_without_base_url_the_regional_host_is_used(tmp_path: Path, location: str, root: str) -> None:
    with FakeGoogle() as fake:
        credentials_file = fake.service_account_file(tmp_path)
    config = VideoGenerationConfig(
        provider="google-vertex",
        model="veo-3.0-generate-001",
        provider_config={"credentials_file": credentials_file, "location": location},
    )
    site = _flows.site("vertex", config)
    assert site.model("veo-3.0-generate-001") == (
        f"{root}/v1beta1/projects/fake-project/locations/{location}/publishers/google/models/veo-3.0-generate-001"
    )


def test_without_the_vertex_extra_a_service_account_is_refused_before_sending(
    fake: FakeGoogle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "google.auth", None)
    flow = _flows.submit(
        "vertex", vconfig(fake, tmp_path), VideoGenerationRequest(prompt="a"), context("google-vertex")
    )
    with pytest.raises(ValidationError, match=r"need google-auth: pip install 'tarash-google\[vertex\]'"):
        next(flow)
    assert fake.requests == []
