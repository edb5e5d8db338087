"""An exchange through core's transport is freed when it ends (reference counting), not left for
the cyclic garbage collector: httpx 0.28 links a response and its stream both ways, and core
unlinks them once it has read the answer."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import httpx
import pytest

from tarash.tarash_gateway._transport import Transport, prepare
from tarash.tarash_gateway._wire import Request


def answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"status": "IN_QUEUE"})


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _prepared() -> tuple[object, weakref.ref[httpx.Request]]:
    prepared = prepare(
        Request(method="GET", url="/jobs/1/status"),
        provider="acme",
        base_url="https://api.acme.invalid",
        api_key="sk-test",
        auth_header="Authorization",
        auth_scheme="Bearer",
    )
    return prepared, weakref.ref(prepared.request)


@pytest.mark.usefixtures("no_cyclic_gc")
def test_a_sync_exchange_is_freed_when_it_ends() -> None:
    transport = Transport(transport=httpx.MockTransport(answer))
    prepared, request = _prepared()
    response = transport.send(prepared, 5)  # type: ignore[arg-type]
    assert (response.status_code, response.content) == (200, b'{"status":"IN_QUEUE"}')
    del prepared
    assert request() is None
    transport.close()


@pytest.mark.usefixtures("no_cyclic_gc")
async def test_an_async_exchange_is_freed_when_it_ends() -> None:
    transport = Transport(async_transport=httpx.MockTransport(answer))
    prepared, request = _prepared()
    response = await transport.send_async(prepared, 5)  # type: ignore[arg-type]
    assert (response.status_code, response.content) == (200, b'{"status":"IN_QUEUE"}')
    del prepared
    assert request() is None


async def _send(transport: Transport) -> weakref.ref[asyncio.AbstractEventLoop]:
    prepared, _ = _prepared()
    response = await transport.send_async(prepared, 5)  # type: ignore[arg-type]
    assert response.status_code == 200
    return weakref.ref(asyncio.get_running_loop())


@pytest.mark.usefixtures("no_cyclic_gc")
def test_the_loop_of_asyncio_run_is_freed_when_it_ends() -> None:
    """The pools of a loop close when ``asyncio.run`` ends it, and nothing of core keeps the loop
    (its closer, an async generator, refers to it: it was kept, and so was every loop)."""
    transport = Transport(async_transport=httpx.MockTransport(answer))
    loops = [asyncio.run(_send(transport)) for _ in range(3)]
    assert [loop() for loop in loops] == [None, None, None]
    assert len(transport._closers) == len(transport._async) == 0
    transport.close()


@pytest.mark.usefixtures("no_cyclic_gc")
def test_a_loop_closed_by_hand_is_freed_once_another_loop_sends() -> None:
    """A loop closed without closing its async generators keeps its closer until the next loop
    makes its pool: then it is freed."""
    transport = Transport(async_transport=httpx.MockTransport(answer))
    loop = asyncio.new_event_loop()
    by_hand = loop.run_until_complete(_send(transport))
    loop.close()
    del loop
    assert by_hand() is not None
    asyncio.run(_send(transport))
    assert by_hand() is None
    transport.close()
