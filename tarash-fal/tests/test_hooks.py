"""The hooks directly: validation before any request, cancel outcomes, status details, resume."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from tarash.tarash_gateway import (
    ValidationError,
    VideoGenerationRequest,
    default_gateway,
    generate_video,
)
from tarash.tarash_gateway.plugin import JobRef
from tarash_fal.testing import FakeFalServer

NOTHING = {"submit": 0, "status": 0, "result": 0, "cancel": 0}


def run(hook: str, config: Any, **subject: Any) -> Any:
    """One hook's flow through core's transport (no polling, no retries)."""
    return default_gateway().run_hook(hook, config, **subject)


def _job(server: FakeFalServer, model: str = "fal-ai/veo3") -> JobRef:
    handle = run("submit", server.video_config(model), request=VideoGenerationRequest(prompt="x"))
    return JobRef(provider="fal", model=model, modality="video", job_id=handle.job_id)


@pytest.mark.parametrize(
    ("overrides", "message", "field"),
    [
        (
            {"api_key": None},
            "No API key for provider 'fal': set FAL_KEY or pass api_key=... in the config "
            "(--api-key on the command line)",
            "api_key",
        ),
        (
            {"model": "veo3"},
            "'veo3' is not a fal model id: expected owner/alias[/path], e.g. 'fal-ai/veo3'",
            "model",
        ),
        (
            {"model": "workflows/acme"},
            "'workflows/acme' is not a fal model id: expected owner/alias[/path], e.g. 'fal-ai/veo3'",
            "model",
        ),
        (
            {"provider_config": {"webhook": "https://x"}},
            "Unknown fal provider_config keys: webhook",
            "provider_config.webhook",
        ),
        (
            {"base_url": "ftp://127.0.0.1"},
            "base_url must be an http(s) URL without a query string, got 'ftp://127.0.0.1'",
            "base_url",
        ),
        (
            {"provider_config": {"webhook_url": "hooks.example.com"}},
            "provider_config.webhook_url must be an http(s) URL, got 'hooks.example.com'",
            "provider_config.webhook_url",
        ),
        (
            {"provider_config": {"platform_url": "api.fal.ai/v1"}},
            "provider_config.platform_url must be an http(s) URL, got 'api.fal.ai/v1'",
            "provider_config.platform_url",
        ),
        (
            {"provider_config": {"ca_bundle": "/nonexistent/ca.pem"}},
            "provider_config.ca_bundle must be a PEM file path, got '/nonexistent/ca.pem'",
            "provider_config.ca_bundle",
        ),
        (
            {"provider_config": {"max_response_bytes": 10}},
            "provider_config.max_response_bytes must be an integer >= 1024, got 10",
            "provider_config.max_response_bytes",
        ),
    ],
)
def test_invalid_configs_fail_before_any_request(
    fake_fal: FakeFalServer, overrides: dict, message: str, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        generate_video(fake_fal.video_config(**overrides), VideoGenerationRequest(prompt="x"))
    assert (caught.value.message, caught.value.field) == (message, field)
    assert fake_fal.counts == NOTHING


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"guidance": float("nan")}, "extra_params.guidance must be a finite number, got nan"),
        (
            {"loras": [{"path": object()}]},
            "extra_params.loras[0].path cannot be sent: object is not JSON (use a URL, MediaContent "
            "or plain JSON values)",
        ),
    ],
)
def test_unsendable_extra_params_fail_before_any_request(
    fake_fal: FakeFalServer, extra: dict, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        generate_video(fake_fal.video_config(), VideoGenerationRequest(prompt="x", **extra))
    assert caught.value.message == message
    assert fake_fal.counts == NOTHING


def test_registry_refusals_fail_before_any_request(fake_fal: FakeFalServer) -> None:
    with pytest.raises(ValidationError) as caught:
        generate_video(fake_fal.video_config(), VideoGenerationRequest(prompt="x", duration_seconds=5))
    assert caught.value.field == "duration_seconds"
    assert fake_fal.counts == NOTHING


def test_status_reports_position_logs_and_completion(fake_fal: FakeFalServer) -> None:
    job = _job(fake_fal)
    config = fake_fal.video_config()
    states = [run("status", config, job=job) for _ in range(5)]
    assert [(s.state, s.queue_position, s.logs) for s in states] == [
        ("queued", 1, ()),
        ("queued", 0, ()),
        ("processing", None, ("step 1/2",)),
        ("processing", None, ("step 1/2", "step 2/2")),
        ("completed", None, ("step 1/2", "step 2/2")),
    ]
    assert states[-1].raw["metrics"] == {"inference_time": 0.1}
    assert states[0].raw["status"] == "IN_QUEUE"


async def test_status_poll_hint_from_retry_after(fake_fal: FakeFalServer) -> None:
    job = _job(fake_fal)
    fake_fal.inject(
        "status",
        status_code=202,
        headers={"Retry-After": "3"},
        body={"status": "IN_QUEUE", "queue_position": 9},
    )
    status = run("status", fake_fal.video_config(), job=job)
    assert (status.state, status.queue_position, status.poll_after) == ("queued", 9, 3.0)


async def test_cancel_before_and_after_completion(make_server) -> None:
    server = make_server(queue_polls=0, processing_polls=0)
    config = server.video_config()
    queued, done = _job(server), _job(server)
    assert run("cancel", config, job=queued) is True
    assert run("status", config, job=done).state == "completed"
    assert run("cancel", config, job=done) is False
    cancelled = run("status", config, job=queued)
    assert cancelled.state == "failed"
    assert cancelled.error is not None
    assert "request_cancelled" in cancelled.error.message
    assert server.counts == {"submit": 2, "status": 2, "result": 0, "cancel": 2}


def test_cancel_errors_are_typed(fake_fal: FakeFalServer) -> None:
    job = _job(fake_fal)
    fake_fal.inject("cancel", status_code=404, body={"status": "NOT_FOUND"})
    with pytest.raises(Exception) as caught:
        run("cancel", fake_fal.video_config(), job=job)
    assert type(caught.value).__name__ == "HTTPError"
    assert caught.value.status_code == 404


def test_a_job_submitted_by_one_process_resumes_in_another(fake_fal: FakeFalServer) -> None:
    script = textwrap.dedent(f"""
        from tarash.tarash_gateway import VideoGenerationConfig, VideoGenerationRequest, default_gateway
        from tarash.tarash_gateway.plugin import JobRef
        config = VideoGenerationConfig(
            model="fal-ai/veo3", provider="fal", api_key={fake_fal.api_key!r},
            base_url={fake_fal.base_url!r}, provider_config={{"ca_bundle": {fake_fal.ca_path!r}}})
        gateway = default_gateway()
        job = gateway.run_hook("submit", config, request=VideoGenerationRequest(prompt="resume me"))
        gateway.run_hook("status", config, job=JobRef(provider="fal", model="fal-ai/veo3",
                         modality="video", job_id=job.job_id))
        print(job.job_id)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    job_id = out.stdout.strip()
    assert fake_fal.jobs[job_id]["polls"] == 1
    job = JobRef(provider="fal", model="fal-ai/veo3", modality="video", job_id=job_id)
    config = fake_fal.video_config()
    states = [run("status", config, job=job).state for _ in range(4)]
    assert states == ["queued", "processing", "processing", "completed"]
    response = run("result", config, job=job)
    assert response.video == f"https://v3.fal.media/files/fake/{job_id}.mp4"
    assert json.loads(json.dumps(response.raw_response))["seed"] == 42
    assert fake_fal.counts == {"submit": 1, "status": 5, "result": 1, "cancel": 0}


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            "fal-ai/flux/dev",
            "'fal-ai/flux/dev' is a fal image model (fal-ai/flux); it cannot generate video: use "
            "generate_image, or a video model",
        ),
        (
            "fal-ai/flux",
            "'fal-ai/flux' is a fal image model (fal-ai/flux); it cannot generate video: use "
            "generate_image, or a video model",
        ),
    ],
)
def test_an_image_model_asked_for_video_sends_nothing(
    fake_fal: FakeFalServer, model: str, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        generate_video(fake_fal.video_config(model), VideoGenerationRequest(prompt="x"))
    assert (caught.value.message, caught.value.field) == (message, "model")
    assert fake_fal.counts == NOTHING
