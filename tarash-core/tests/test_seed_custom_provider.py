"""The original "Custom Providers" page's code, run verbatim against a loopback server.

``SEED_HANDLER`` and ``SEED_USAGE`` are the page's code blocks character for character, except that
``https://my-provider.example.com`` is replaced by the address of the test's local server.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from jobapi import JobServer

from tarash.tarash_gateway import unregister_provider
from tarash.tarash_gateway.exceptions import UnsupportedModalityError

SEED_HANDLER = '''
from tarash.tarash_gateway.models import (
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
    ImageGenerationConfig,
    ImageGenerationRequest,
    ImageGenerationResponse,
    ProgressCallback,
    ImageProgressCallback,
)
from tarash.tarash_gateway.utils import generate_unique_id


class MyProviderHandler:
    """Custom provider that calls my-provider.example.com."""

    def generate_video(
        self,
        config: VideoGenerationConfig,
        request: VideoGenerationRequest,
        on_progress: ProgressCallback | None = None,
    ) -> VideoGenerationResponse:
        import httpx

        response = httpx.post(
            "https://my-provider.example.com/v1/generate",
            json={"prompt": request.prompt},
            headers={"Authorization": f"Bearer {config.api_key}"},
            timeout=config.timeout,
        )
        response.raise_for_status()
        data = response.json()

        return VideoGenerationResponse(
            request_id=generate_unique_id(),
            video=data["video_url"],
            status="completed",
            raw_response=data,
        )

    async def generate_video_async(
        self,
        config: VideoGenerationConfig,
        request: VideoGenerationRequest,
        on_progress: ProgressCallback | None = None,
    ) -> VideoGenerationResponse:
        import httpx

        async with httpx.AsyncClient() as client:
            response = await client.post(
                "https://my-provider.example.com/v1/generate",
                json={"prompt": request.prompt},
                headers={"Authorization": f"Bearer {config.api_key}"},
                timeout=config.timeout,
            )
            response.raise_for_status()
            data = response.json()

        return VideoGenerationResponse(
            request_id=generate_unique_id(),
            video=data["video_url"],
            status="completed",
            raw_response=data,
        )

    def generate_image(self, config, request, on_progress=None):
        raise NotImplementedError("my-provider does not support image generation")

    async def generate_image_async(self, config, request, on_progress=None):
        raise NotImplementedError("my-provider does not support image generation")
'''

SEED_REGISTER = """
from tarash.tarash_gateway import register_provider

register_provider("my-provider", MyProviderHandler())
"""

SEED_USAGE = """
from tarash.tarash_gateway import generate_video
from tarash.tarash_gateway.models import VideoGenerationConfig, VideoGenerationRequest

config = VideoGenerationConfig(
    provider="my-provider",   # matches the name you registered
    model="my-model-v1",
    api_key="...",
)

response = generate_video(config, request)
"""


@pytest.fixture
def seed(job_server: JobServer) -> Any:
    namespace: dict[str, Any] = {}
    for block in (SEED_HANDLER, SEED_REGISTER):
        exec(block.replace("https://my-provider.example.com", job_server.url), namespace)
    yield namespace
    unregister_provider("my-provider")


def test_seed_sync_generate_returns_the_servers_video_url(
    seed: dict[str, Any], job_server: JobServer
) -> None:
    from tarash.tarash_gateway.models import VideoGenerationRequest

    seed["request"] = VideoGenerationRequest(prompt="a cat on a skateboard")
    exec(SEED_USAGE, seed)
    response = seed["response"]
    assert response.video == f"{job_server.url}/media/seed.mp4"
    assert response.raw_response == {
        "video_url": f"{job_server.url}/media/seed.mp4",
        "prompt": "a cat on a skateboard",
    }
    assert response.status == "completed" and len(response.request_id) == 32
    assert response.execution_metadata.attempts[0].provider == "my-provider"
    assert job_server.counts["generate"] == 1
    assert job_server.auth_headers == ["Bearer ..."]


def test_seed_async_generate_returns_the_servers_video_url(
    seed: dict[str, Any], job_server: JobServer
) -> None:
    from tarash.tarash_gateway import generate_video_async
    from tarash.tarash_gateway.models import VideoGenerationConfig, VideoGenerationRequest

    config = VideoGenerationConfig(provider="my-provider", model="my-model-v1", api_key="...")
    response = asyncio.run(generate_video_async(config, VideoGenerationRequest(prompt="async")))
    assert response.video == f"{job_server.url}/media/seed.mp4"
    assert response.raw_response["prompt"] == "async"
    assert job_server.counts["generate"] == 1


@pytest.mark.parametrize("use_async", [False, True])
def test_seed_image_gives_the_typed_unsupported_modality_error(seed: dict[str, Any], use_async: bool) -> None:
    from tarash.tarash_gateway import generate_image, generate_image_async
    from tarash.tarash_gateway.models import ImageGenerationConfig, ImageGenerationRequest

    config = ImageGenerationConfig(provider="my-provider", model="my-model-v1", api_key="...")
    request = ImageGenerationRequest(prompt="a cat")
    with pytest.raises(UnsupportedModalityError) as raised:
        if use_async:
            asyncio.run(generate_image_async(config, request))
        else:
            generate_image(config, request)
    assert isinstance(raised.value, NotImplementedError)
    assert raised.value.provider == "my-provider" and raised.value.modality == "image"
    assert str(raised.value) == (
        "Provider 'my-provider' does not support image generation: "
        "my-provider does not support image generation (provider=my-provider, model=my-model-v1)"
    )


def test_register_provider_overrides_a_builtin_and_unregister_restores_it(job_server: JobServer) -> None:
    from tarash.tarash_gateway import generate_video, register_provider
    from tarash.tarash_gateway.models import (
        VideoGenerationConfig,
        VideoGenerationRequest,
        VideoGenerationResponse,
    )

    class Fixed:
        def generate_video(self, config: Any, request: Any, on_progress: Any = None) -> Any:
            return VideoGenerationResponse(request_id="r1", video="https://cdn.test/v.mp4")

    register_provider("mock", Fixed())
    config = VideoGenerationConfig(provider="mock", model="m", provider_config={"delay": 0.001})
    try:
        assert generate_video(config, VideoGenerationRequest(prompt="x")).video == "https://cdn.test/v.mp4"
    finally:
        unregister_provider("mock")
    assert generate_video(config, VideoGenerationRequest(prompt="x")).is_mock


def test_blocking_handler_progress_is_relayed_with_attempt_info() -> None:
    from tarash.tarash_gateway import generate_video, register_provider
    from tarash.tarash_gateway.models import (
        VideoGenerationConfig,
        VideoGenerationRequest,
        VideoGenerationResponse,
        VideoGenerationUpdate,
    )

    class Reporting:
        def generate_video(self, config: Any, request: Any, on_progress: Any = None) -> Any:
            on_progress(VideoGenerationUpdate(request_id="r9", status="processing", progress_percent=50))
            return VideoGenerationResponse(request_id="r9", video="https://cdn.test/v.mp4")

    seen: list[Any] = []
    register_provider("reporting", Reporting())
    try:
        generate_video(
            VideoGenerationConfig(provider="reporting", model="m"),
            VideoGenerationRequest(prompt="x"),
            on_progress=seen.append,
        )
    finally:
        unregister_provider("reporting")
    assert [(u.status, u.progress_percent, u.provider, u.attempt) for u in seen] == [
        ("processing", 50, "reporting", 1),
    ]
