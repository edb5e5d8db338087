"""Pooled httpx clients for provider plugins: one per (provider, credentials), reused, closed.

A plugin keeps one :class:`ClientPool` and asks it for a client per call::

    POOL = ClientPool(make_sync=lambda key: httpx.Client(base_url=key[0], headers=...),
                      make_async=lambda key: httpx.AsyncClient(base_url=key[0], headers=...))
    POOL.sync((base_url, api_key)).get("/jobs/1")
    (await POOL.async_((base_url, api_key))).get("/jobs/1")

Sync clients live until :meth:`ClientPool.close` (called at interpreter exit). An async client
is bound to its event loop, so async clients are pooled per loop and closed when that loop shuts
down its async generators (``asyncio.run`` and pytest-asyncio do), or by :meth:`close`.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Hashable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

__all__ = ["ClientPool"]

CLOSE_TIMEOUT = 10.0


class ClientPool:
    """Sync and async httpx clients keyed by any hashable (e.g. ``(base_url, api_key)``)."""

    def __init__(
        self,
        make_sync: Callable[[Hashable], httpx.Client],
        make_async: Callable[[Hashable], httpx.AsyncClient],
    ) -> None:
        self._make_sync = make_sync
        self._make_async = make_async
        self._lock = threading.Lock()
        self._sync: dict[Hashable, httpx.Client] = {}
        self._async: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[Hashable, httpx.AsyncClient]
        ] = weakref.WeakKeyDictionary()
        self._closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncIterator[None]] = (
            weakref.WeakKeyDictionary()
        )
        atexit.register(self.close)

    def sync(self, key: Hashable) -> httpx.Client:
        """The pooled sync client for ``key`` (made on first use, remade if it was closed)."""
        with self._lock:
            found = self._sync.get(key)
            if found is None or found.is_closed:
                found = self._sync[key] = self._make_sync(key)
        return found

    async def async_(self, key: Hashable) -> httpx.AsyncClient:
        """The pooled async client for ``key`` on the running event loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            pool = self._async.get(loop)
            fresh = pool is None
            if pool is None:
                pool = self._async[loop] = {}
            found = pool.get(key)
            if found is None or found.is_closed:
                found = pool[key] = self._make_async(key)
        if fresh:
            await self._close_at_loop_shutdown(loop, pool)
        return found

    async def _close_at_loop_shutdown(
        self, loop: asyncio.AbstractEventLoop, pool: dict[Hashable, httpx.AsyncClient]
    ) -> None:
        """Park an async generator whose ``finally`` closes ``pool`` when the loop shuts down."""

        async def closer() -> AsyncIterator[None]:
            try:
                yield
            finally:
                await _aclose(pool)

        generator = closer()
        self._closers[loop] = generator
        await generator.__anext__()

    def close(self) -> None:
        """Close every pooled client (safe to call more than once; registered with ``atexit``)."""
        with self._lock:
            clients = list(self._sync.values())
            self._sync.clear()
            pools = list(self._async.items())
        for each in clients:
            each.close()
        for loop, pool in pools:
            if not pool or loop.is_closed():
                continue
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(_aclose(pool), loop).result(timeout=CLOSE_TIMEOUT)
            else:
                loop.run_until_complete(_aclose(pool))


async def _aclose(pool: dict[Hashable, httpx.AsyncClient]) -> None:
    clients = list(pool.values())
    pool.clear()
    for each in clients:
        await each.aclose()
