"""One pooled fal client per key (and event loop), reused across calls; connections are reused."""

from __future__ import annotations

import asyncio

import pytest

from tarash.tarash_gateway import (
    HTTPError,
    VideoGenerationRequest,
    generate_video,
    generate_video_async,
)
from tarash_fal._clients import MAX_CONNECTIONS, POOLS
from tarash_fal._provider import settings
from tarash_fal.testing import FakeFalServer

REQUEST = VideoGenerationRequest(prompt="a cat")


def test_sync_generations_share_one_client_and_one_connection(fake_fal: FakeFalServer) -> None:
    config = fake_fal.video_config()
    target = settings(config).target
    for _ in range(3):
        generate_video(config, REQUEST)
    client = POOLS.sync_client(target)
    assert client is POOLS.sync_client(settings(fake_fal.video_config()).target)
    assert fake_fal.connections == 1
    assert fake_fal.counts == {"submit": 3, "status": 15, "result": 3, "cancel": 0}


def test_distinct_keys_get_distinct_clients(fake_fal: FakeFalServer) -> None:
    generate_video(fake_fal.video_config(), REQUEST)
    with pytest.raises(HTTPError):
        generate_video(fake_fal.video_config(api_key="fal-other-key-456"), REQUEST)
    mine = POOLS.sync_client(settings(fake_fal.video_config()).target)
    other = POOLS.sync_client(settings(fake_fal.video_config(api_key="fal-other-key-456")).target)
    assert mine is not other
    assert (mine.key, other.key) == (fake_fal.api_key, "fal-other-key-456")
    assert fake_fal.connections == 2


async def test_async_generations_share_one_connection(fake_fal: FakeFalServer) -> None:
    config = fake_fal.video_config()
    for _ in range(3):
        await generate_video_async(config, REQUEST)
    client = await POOLS.async_client(settings(config).target)
    assert client is await POOLS.async_client(settings(fake_fal.video_config()).target)
    assert fake_fal.connections == 1


async def test_concurrent_async_generations_stay_within_the_pool(make_server) -> None:
    server = make_server(latency=0.01)
    config = server.video_config()
    await asyncio.gather(*(generate_video_async(config, REQUEST) for _ in range(40)))
    assert server.counts == {"submit": 40, "status": 200, "result": 40, "cancel": 0}
    assert 1 <= server.connections <= 40


def test_async_clients_belong_to_their_loop_and_close_with_it(fake_fal: FakeFalServer) -> None:
    target = settings(fake_fal.video_config()).target

    async def run() -> tuple[object, object]:
        await generate_video_async(fake_fal.video_config(), REQUEST)
        client = await POOLS.async_client(target)
        return client, await client._client

    first, first_http = asyncio.run(run())
    second, second_http = asyncio.run(run())
    assert first is not second
    assert first_http.is_closed
    assert second_http.is_closed
    assert fake_fal.connections == 2


async def test_pool_caps_connections_at_the_limit(make_server) -> None:
    # Answers take 0.2 s, so every generation has asked for a connection before any is free.
    server = make_server(latency=0.2, queue_polls=1, processing_polls=1)
    config = server.video_config()
    await asyncio.gather(*(generate_video_async(config, REQUEST) for _ in range(MAX_CONNECTIONS + 30)))
    assert server.counts["submit"] == MAX_CONNECTIONS + 30
    assert server.connections == MAX_CONNECTIONS
