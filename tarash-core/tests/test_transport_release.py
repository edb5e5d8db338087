"""An exchange through core's transport is freed when it ends (reference counting), not left for
the cyclic garbage collector: httpx 0.28 links a response and its stream both ways, and core
unlinks them once it has read the answer."""

from __future__ import annotations

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
