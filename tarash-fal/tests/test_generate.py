"""End to end: provider="fal" through tarash-core and the real fal-client, against the fake."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tarash.tarash_gateway import (
    ImageGenerationRequest,
    MediaContent,
    VideoGenerationRequest,
    generate_image,
    generate_image_async,
    generate_video,
    generate_video_async,
    get_provider,
)
from tarash_fal.testing import FakeFalServer

EXPECTED_PROGRESS = [
    ("queued", None, ()),
    ("queued", 1, ()),
    ("queued", 0, ()),
    ("processing", None, ("step 1/2",)),
    ("processing", None, ("step 2/2",)),
    ("completed", None, ()),
]
ONE_GENERATION = {"submit": 1, "status": 5, "result": 1, "cancel": 0}


def _progress(updates: list) -> list[tuple]:
    return [(u.status, u.queue_position, u.logs) for u in updates]


def test_fal_is_discovered_from_its_entry_point() -> None:
    info = get_provider("fal")
    assert (info.distribution, info.source, info.lifecycle) == ("tarash-fal", "entry-point", True)
    assert info.modalities == {"video", "image"}
    caps = info.spec.capabilities
    assert (caps.cancel, caps.queue_position, caps.logs, caps.webhooks, caps.resume) == (
        True,
        True,
        True,
        True,
        True,
    )
    assert info.spec.api_key_env == "FAL_KEY"


def test_entry_module_imports_neither_fal_client_nor_httpx_nor_records() -> None:
    code = (
        "import sys, tarash_fal._plugin as p; p.register_providers(); "
        "print(sorted(m for m in ('fal_client', 'httpx', 'tarash.tarash_gateway._records') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sync_video(fake_fal: FakeFalServer) -> None:
    updates: list = []
    response = generate_video(
        fake_fal.video_config(), VideoGenerationRequest(prompt="a cat"), on_progress=updates.append
    )
    [submission] = fake_fal.submissions
    job_id = submission["request_id"]
    assert submission["path"] == "fal-ai/veo3"
    assert submission["payload"] == {"prompt": "a cat"}
    assert submission["webhook_url"] is None
    assert response.request_id == job_id
    assert response.video == f"https://v3.fal.media/files/fake/{job_id}.mp4"
    assert (response.content_type, response.provider, response.model) == (
        "video/mp4",
        "fal",
        "fal-ai/veo3",
    )
    assert response.raw_response["video"]["file_size"] == 1048576
    assert _progress(updates) == EXPECTED_PROGRESS
    assert updates[-1].result is not None
    assert fake_fal.counts == ONE_GENERATION


async def test_async_video(fake_fal: FakeFalServer) -> None:
    updates: list = []

    async def on_progress(update: object) -> None:
        updates.append(update)

    response = await generate_video_async(
        fake_fal.video_config(),
        VideoGenerationRequest(prompt="a dog"),
        on_progress=on_progress,
    )
    [submission] = fake_fal.submissions
    assert response.request_id == submission["request_id"]
    assert response.video == f"https://v3.fal.media/files/fake/{submission['request_id']}.mp4"
    assert _progress(updates) == EXPECTED_PROGRESS
    assert fake_fal.counts == ONE_GENERATION


def test_sync_image(fake_fal: FakeFalServer) -> None:
    updates: list = []
    response = generate_image(
        fake_fal.image_config(),
        ImageGenerationRequest(prompt="a fox", n=2, seed=7),
        on_progress=updates.append,
    )
    [submission] = fake_fal.submissions
    job_id = submission["request_id"]
    assert submission["path"] == "fal-ai/flux/dev"
    assert submission["payload"] == {"prompt": "a fox", "num_images": 2, "seed": 7}
    assert response.images == [
        f"https://v3.fal.media/files/fake/{job_id}_0.png",
        f"https://v3.fal.media/files/fake/{job_id}_1.png",
    ]
    assert (response.request_id, response.content_type) == (job_id, "image/png")
    assert _progress(updates) == EXPECTED_PROGRESS
    assert fake_fal.counts == ONE_GENERATION


async def test_async_image(fake_fal: FakeFalServer) -> None:
    response = await generate_image_async(fake_fal.image_config(), ImageGenerationRequest(prompt="a fox"))
    [submission] = fake_fal.submissions
    assert response.images == [f"https://v3.fal.media/files/fake/{submission['request_id']}_0.png"]
    assert fake_fal.counts == ONE_GENERATION


def test_queue_free_job_polls_once(make_server) -> None:
    server = make_server(queue_polls=0, processing_polls=0)
    updates: list = []
    generate_video(server.video_config(), VideoGenerationRequest(prompt="fast"), on_progress=updates.append)
    assert _progress(updates) == [("queued", None, ()), ("completed", None, ())]
    assert server.counts == {"submit": 1, "status": 1, "result": 1, "cancel": 0}


def test_webhook_url_is_sent(fake_fal: FakeFalServer) -> None:
    hook = "https://hooks.example.com/fal?job=a&b=c d"
    config = fake_fal.video_config(provider_config={"webhook_url": hook})
    generate_video(config, VideoGenerationRequest(prompt="a cat"))
    assert fake_fal.submissions[0]["webhook_url"] == hook


def test_media_bytes_become_data_uris_and_urls_pass_through(fake_fal: FakeFalServer) -> None:
    frame = MediaContent(content=b"\x89PNG-first", content_type="image/png")
    request = VideoGenerationRequest(
        prompt="animate",
        image_list=[
            {"image": frame, "type": "first_frame"},
            {"image": "https://cdn.example.com/last.png", "type": "last_frame"},
        ],
        audio_url=MediaContent(content=b"RIFF", content_type="audio/wav"),
        steps=[MediaContent(content=b"a", content_type="text/plain"), 3],
    )
    generate_video(fake_fal.video_config("acme/unlisted-video-model"), request)
    assert fake_fal.submissions[0]["payload"] == {
        "prompt": "animate",
        "image_url": "data:image/png;base64,iVBORy1maXJzdA==",
        "end_image_url": "https://cdn.example.com/last.png",
        "audio_url": "data:audio/wav;base64,UklGRg==",
        "steps": ["data:text/plain;base64,YQ==", 3],
    }


def test_key_from_fal_key_env(fake_fal: FakeFalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", fake_fal.api_key)
    config = fake_fal.video_config(api_key=None)
    response = generate_video(config, VideoGenerationRequest(prompt="env"))
    assert response.request_id == fake_fal.submissions[0]["request_id"]
    assert fake_fal.submissions[0]["headers"]["authorization"] == "***REDACTED***"


def test_key_from_fal_key_id_and_secret(make_server, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server(api_key="key-id:key-secret")
    monkeypatch.setenv("FAL_KEY_ID", "key-id")
    monkeypatch.setenv("FAL_KEY_SECRET", "key-secret")
    generate_video(server.video_config(api_key=None), VideoGenerationRequest(prompt="pair"))
    assert server.counts == ONE_GENERATION


def test_namespaced_app_ids_use_namespace_owner_alias(fake_fal: FakeFalServer) -> None:
    response = generate_video(
        fake_fal.video_config("workflows/acme/pipeline/step-two"),
        VideoGenerationRequest(prompt="flow"),
    )
    assert fake_fal.submissions[0]["path"] == "workflows/acme/pipeline/step-two"
    assert response.request_id == fake_fal.submissions[0]["request_id"]
    assert fake_fal.counts == ONE_GENERATION


def test_a_generation_sends_nothing_through_fal_client(fake_fal: FakeFalServer) -> None:
    """fal-client's retries and its "trying backup domain" lines never touch a generation: with
    FAL_KEY set, a generation does not even import it (core sends fal's queue API)."""
    code = (
        "import sys; from tarash.tarash_gateway import VideoGenerationConfig as C, "
        "VideoGenerationRequest as R, generate_video\n"
        f"c = C(provider='fal', model='fal-ai/veo3', base_url={fake_fal.base_url!r}, poll_interval=0.01, "
        f"provider_config={{'ca_bundle': {fake_fal.ca_path!r}}})\n"
        "generate_video(c, R('x'))\n"
        "print(sorted(m for m in sys.modules if m.startswith('fal_client')))"
    )
    env = {**os.environ, "FAL_KEY": fake_fal.api_key}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "[]"
    assert done.stderr == ""
    assert fake_fal.counts["submit"] == 1


def test_a_plain_sync_generation_loads_only_what_it_needs(fake_fal: FakeFalServer) -> None:
    """A fresh process's one sync generation (ledger on) of a model in the table, with no local
    input and no upload settings, loads neither asyncio (~40 modules; the background loop starts
    only for coroutines), nor argparse (tarash-fal reads the user's model table from the module of
    ``tarash fal add-model``), nor the runtime-schema or upload code, nor the records of the
    ``reconcile`` hook (only ``resume()`` calls it); and the ledger writes its records without
    compiling cattrs hooks for them: the cold-start figure of benchmarks/fal_bench.py."""
    unneeded = (
        "asyncio",
        "argparse",
        "tarash_fal._runtime_schema",
        "tarash_fal._uploads",
        "tarash.tarash_gateway._lost_submissions",
    )
    code = (
        "import sys; from tarash.tarash_gateway import VideoGenerationConfig as C, "
        "VideoGenerationRequest as R, generate_video\n"
        f"c = C(provider='fal', model='fal-ai/veo3', base_url={fake_fal.base_url!r}, poll_interval=0.01, "
        f"api_key={fake_fal.api_key!r}, provider_config={{'ca_bundle': {fake_fal.ca_path!r}}})\n"
        "print(generate_video(c, R('x')).provider)\n"
        f"print(sorted(m for m in {unneeded!r} if m in sys.modules))\n"
        "import linecache; print([f for f in linecache.cache if f.startswith('<cattrs generated')])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n") == ["fal", "[]", "[]", ""]
    assert fake_fal.counts == ONE_GENERATION
