"""ClientPool: one client per key, reused; async clients per loop, closed when the loop shuts down."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

import httpx

from tarash.tarash_gateway.http import ClientPool

made: list[Hashable] = []


def make_pool() -> ClientPool:
    def sync(key: Hashable) -> httpx.Client:
        made.append(("sync", key))
        return httpx.Client()

    def async_(key: Hashable) -> httpx.AsyncClient:
        made.append(("async", key))
        return httpx.AsyncClient()

    return ClientPool(make_sync=sync, make_async=async_)


def test_sync_clients_are_reused_per_key_and_closed() -> None:
    made.clear()
    pool = make_pool()
    first = pool.sync(("https://a", "k1"))
    assert pool.sync(("https://a", "k1")) is first
    other = pool.sync(("https://a", "k2"))
    assert other is not first
    assert made == [("sync", ("https://a", "k1")), ("sync", ("https://a", "k2"))]
    pool.close()
    assert first.is_closed and other.is_closed
    assert pool.sync(("https://a", "k1")) is not first
    pool.close()


def test_async_clients_are_per_loop_and_closed_at_loop_shutdown() -> None:
    made.clear()
    pool = make_pool()

    async def twice() -> httpx.AsyncClient:
        one = await pool.async_("k")
        assert await pool.async_("k") is one
        return one

    first = asyncio.run(twice())
    assert first.is_closed
    second = asyncio.run(twice())
    assert second is not first and second.is_closed
    assert made == [("async", "k"), ("async", "k")]
