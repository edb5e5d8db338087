"""A Gateway is the composition root: two gateways in one process share no state."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from pathlib import Path
from typing import Any

import httpx
import pytest

from tarash.tarash_gateway import (
    Gateway,
    ProviderNotFoundError,
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
    default_gateway,
)
from tarash.tarash_gateway._ledger import SQLiteJobStore
from tarash.tarash_gateway._transport import Transport
from tarash.tarash_gateway.models import MockConfig, MockPollingConfig
from tarash.tarash_gateway.plugin import Capabilities, ProviderSpec, Request, SubmittedJob, hookimpl


class Handler:
    def __init__(self, url: str) -> None:
        self.url = url

    def generate_video(self, config: Any, request: Any, on_progress: Any = None) -> VideoGenerationResponse:
        return VideoGenerationResponse(request_id="h-1", video=self.url)


class EchoPlugin:
    """A one-request blocking provider (no submit): POST /generate answers the video URL; the key
    goes in ``auth_header``."""

    auth_header = "Authorization"

    @hookimpl
    def register_providers(self) -> list[ProviderSpec]:
        return [
            ProviderSpec(
                name="echo",
                modalities={"video"},
                capabilities=Capabilities(resume=False),
                api_key_env="ECHO_KEY",
                base_url="https://echo.invalid/api",
                auth_header=self.auth_header,
            )
        ]

    @hookimpl
    def generate_video(self, config: Any, request: Any, context: Any) -> Any:
        answer = yield Request(method="POST", url="/generate", json={"prompt": request.prompt})
        return VideoGenerationResponse(request_id=answer.json()["id"], video=answer.json()["url"])


def mock_gateway(log: list[httpx.Request], **kwargs: Any) -> Gateway:
    def answer(request: httpx.Request) -> httpx.Response:
        log.append(request)
        return httpx.Response(200, json={"id": f"e-{len(log)}", "url": f"https://cdn.invalid/{len(log)}.mp4"})

    transport = Transport(transport=httpx.MockTransport(answer), async_transport=httpx.MockTransport(answer))
    return Gateway(discover=False, transport=transport, **kwargs)


def echo_config(**kwargs: Any) -> VideoGenerationConfig:
    return VideoGenerationConfig(provider="echo", model="e1", **kwargs)


def test_providers_registered_on_one_gateway_are_unknown_to_another() -> None:
    first, second = Gateway(discover=False, ledger="off"), Gateway(discover=False, ledger="off")
    first.register_provider("mine", Handler("https://cdn.invalid/a.mp4"))
    config = VideoGenerationConfig(provider="mine", model="m")
    assert first.generate_video(config, VideoGenerationRequest("x")).video == "https://cdn.invalid/a.mp4"
    assert "mine" not in [p.name for p in second.list_providers()]
    with pytest.raises(ProviderNotFoundError):
        second.generate_video(config, VideoGenerationRequest("x"))
    with pytest.raises(ProviderNotFoundError):
        default_gateway().get_provider("mine")


def test_pools_loops_ledgers_and_secrets_are_each_gateways_own(tmp_path: Path) -> None:
    first_log: list[httpx.Request] = []
    second_log: list[httpx.Request] = []
    first = mock_gateway(first_log, ledger=tmp_path / "first.db")
    second = mock_gateway(second_log, ledger=tmp_path / "second.db")
    for gateway in (first, second):
        gateway.register_plugin(EchoPlugin(), "echo-plugin")
    first.generate_video(echo_config(api_key="first-key-000001"), VideoGenerationRequest("a"))
    second.generate_video(echo_config(api_key="second-key-00002"), VideoGenerationRequest("b"))
    assert [r.headers["authorization"] for r in first_log] == ["Bearer first-key-000001"]
    assert [r.headers["authorization"] for r in second_log] == ["Bearer second-key-00002"]
    assert first.transport is not second.transport and first.background is not second.background
    assert first.secrets == {"first-key-000001"} and second.secrets == {"second-key-00002"}
    with SQLiteJobStore(tmp_path / "first.db") as store:
        assert [(r.provider, r.state) for r in store.open().records()] == [("echo", "completed")]
    with SQLiteJobStore(tmp_path / "second.db") as store:
        assert len(store.open().records()) == 1
    first.close()
    second.close()


def test_close_closes_the_ledger_it_opened_and_leaves_a_given_store_open(tmp_path: Path) -> None:
    opened = mock_gateway([], ledger=tmp_path / "opened.db")
    given_store = SQLiteJobStore(tmp_path / "given.db").open()
    given = mock_gateway([], ledger=given_store)
    for gateway in (opened, given):
        gateway.register_plugin(EchoPlugin(), "echo-plugin")
        gateway.generate_video(echo_config(api_key="k-000001"), VideoGenerationRequest("a"))
    opened_store = opened.ledger().store  # type: ignore[union-attr]
    opened.close()
    given.close()
    assert opened_store._conn is None  # type: ignore[attr-defined]
    assert given_store._conn is not None
    assert [r.state for r in given_store.records()] == ["completed"]
    opened.generate_video(echo_config(api_key="k-000001"), VideoGenerationRequest("b"))
    reopened = opened.ledger().store  # type: ignore[union-attr]
    assert [r.state for r in reopened.records()] == ["completed", "completed"]
    opened.close()
    given_store.close()


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_blocking_flow_through_core_with_a_mock_transport(
    api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    log: list[httpx.Request] = []
    gateway = mock_gateway(log, ledger="off")
    gateway.register_plugin(EchoPlugin(), "echo-plugin")
    monkeypatch.setenv("ECHO_KEY", "env-echo-key-0001")
    request = VideoGenerationRequest("a lighthouse")
    if api == "sync":
        response = gateway.generate_video(echo_config(), request)
    else:
        import asyncio

        response = asyncio.run(gateway.generate_video_async(echo_config(), request))
    [sent] = log
    assert (sent.method, str(sent.url), sent.content) == (
        "POST",
        "https://echo.invalid/api/generate",
        b'{"prompt":"a lighthouse"}',
    )
    assert sent.headers["authorization"] == "Bearer env-echo-key-0001"
    assert (response.request_id, response.video) == ("e-1", "https://cdn.invalid/1.mp4")


def test_a_plugin_that_puts_the_key_in_a_request_sends_nothing() -> None:
    class Leaky(EchoPlugin):
        @hookimpl
        def generate_video(self, config: Any, request: Any, context: Any) -> Any:
            yield Request(method="POST", url="/generate", headers={"X-Key": context.api_key})
            return None

    log: list[httpx.Request] = []
    gateway = mock_gateway(log, ledger="off")
    gateway.register_plugin(Leaky(), "leaky-plugin")
    with pytest.raises(Exception) as raised:
        gateway.generate_video(echo_config(api_key="leaky-key-000001"), VideoGenerationRequest("x"))
    assert type(raised.value).__name__ == "GenerationFailedError"
    assert "put the API key into a request it described" in str(raised.value)
    assert log == []


def test_run_hook_runs_one_flow_alone() -> None:
    class Jobs(EchoPlugin):
        @hookimpl
        def submit(self, config: Any, request: Any, context: Any) -> Any:
            answer = yield Request(method="POST", url="/jobs", json={"prompt": request.prompt})
            return SubmittedJob(job_id=answer.json()["id"])

    log: list[httpx.Request] = []
    gateway = mock_gateway(log, ledger="off")
    gateway.register_plugin(Jobs(), "jobs-plugin")
    job = gateway.run_hook(
        "submit", echo_config(api_key="k-000000000001"), request=VideoGenerationRequest("x")
    )
    assert job == SubmittedJob(job_id="e-1")
    assert [str(r.url) for r in log] == ["https://echo.invalid/api/jobs"]


def test_a_closed_gateway_is_freed() -> None:
    """Nothing global keeps a closed gateway or its transport (the exit hook that closes a
    transport's pools kept every transport: a program making a gateway per request kept them all).
    An open transport is kept while it has pools, for that hook."""
    gateway = mock_gateway([], ledger="off")
    gateway.register_plugin(EchoPlugin(), "echo-plugin")
    gateway.generate_video(echo_config(api_key="k-000001"), VideoGenerationRequest("a"))
    asyncio.run(gateway.generate_video_async(echo_config(api_key="k-000001"), VideoGenerationRequest("b")))
    kept = weakref.ref(gateway), weakref.ref(gateway.transport)
    del gateway
    gc.collect()
    transport = kept[1]()
    assert kept[0]() is None and transport is not None
    transport.close()
    del transport
    gc.collect()
    assert kept[1]() is None

    closed = mock_gateway([], ledger="off")
    closed.register_plugin(EchoPlugin(), "echo-plugin")
    closed.generate_video(echo_config(api_key="k-000001"), VideoGenerationRequest("c"))
    closed.close()
    freed = weakref.ref(closed), weakref.ref(closed.transport)
    del closed
    gc.collect()
    assert [ref() for ref in freed] == [None, None]


def test_close_closes_the_background_loop() -> None:
    """A sync generation's async callback runs on the gateway's background loop; closing the
    gateway cancels what still runs there and closes the loop (it was stopped, never closed)."""
    gateway = Gateway(discover=False, ledger="off")
    polling = MockPollingConfig(status_sequence=("queued", "completed"), delay_between_updates=0.01)
    left: list[asyncio.Task[None]] = []

    async def callback(update: Any) -> None:
        left.append(asyncio.get_running_loop().create_task(asyncio.sleep(60)))

    config = VideoGenerationConfig(provider="mock", model="mock", mock=MockConfig(polling=polling))
    gateway.generate_video(config, VideoGenerationRequest("a"), on_progress=callback)
    assert left and not any(task.done() for task in left)
    gateway.close()
    assert all(task.cancelled() for task in left)
    assert left[0].get_loop().is_closed()


def test_closing_a_gateway_on_its_own_event_loop_does_not_block_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """``close()`` called in async code, on the loop whose pools it closes, schedules their close
    there (it waited on that loop for the close timeout, which the loop could not run meanwhile)."""
    from tarash.tarash_gateway import _transport

    monkeypatch.setattr(_transport, "CLOSE_TIMEOUT", 30.0)

    async def main() -> tuple[float, list[bool], list[bool]]:
        gateway = mock_gateway([], ledger="off")
        gateway.register_plugin(EchoPlugin(), "echo-plugin")
        await gateway.generate_video_async(echo_config(api_key="k-000001"), VideoGenerationRequest("a"))
        clients = _async_clients(gateway)
        started = time.monotonic()
        gateway.close()
        waited = time.monotonic() - started
        open_at_return = [not client.is_closed for client in clients]
        await asyncio.sleep(0.05)
        return waited, open_at_return, [client.is_closed for client in clients]

    waited, open_at_return, closed = asyncio.run(main())
    assert waited < _transport.CLOSE_TIMEOUT / 2
    assert open_at_return and all(open_at_return) and all(closed)


def _async_clients(gateway: Gateway) -> list[httpx.AsyncClient]:
    return [
        client
        for pool in gateway.transport._async.values()
        for shards in pool.values()
        for client in shards.clients
        if client is not None
    ]


def test_a_gateway_closes_as_a_context_manager_sync_and_async() -> None:
    with mock_gateway([], ledger="off") as gateway:
        gateway.register_plugin(EchoPlugin(), "echo-plugin")
        gateway.generate_video(echo_config(api_key="k-000001"), VideoGenerationRequest("a"))
        clients = list(gateway.transport._sync.values())
    assert clients and all(client.is_closed for client in clients)

    async def main() -> list[bool]:
        async with mock_gateway([], ledger="off") as gateway:
            gateway.register_plugin(EchoPlugin(), "echo-plugin")
            await gateway.generate_video_async(echo_config(api_key="k-000001"), VideoGenerationRequest("b"))
            clients = _async_clients(gateway)
        return [client.is_closed for client in clients]  # closed by aclose, on this loop

    closed = asyncio.run(main())
    assert closed and all(closed)
