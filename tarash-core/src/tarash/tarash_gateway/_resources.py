"""What a :class:`~tarash.tarash_gateway.Gateway` owns: its plugin host, the transport's
connection pools, the concurrency caps, the background event loop, the job ledger and the secrets
it resolved. :class:`GatewayResources` builds each one on first use, under one lock (so discovery
loads none of the transport, the loop or the ledger), and :meth:`GatewayResources.close` releases
them together; ``Gateway`` adds what is done with them (generating, flows, costs, providers).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar

from ._plugins import PluginHost
from ._redact import register_secret

if TYPE_CHECKING:
    from . import _runtime as rt
    from ._caps import ConcurrencyCaps
    from ._ledger import JobStore, LedgerAdapter
    from ._transport import Transport

__all__ = ["GatewayResources"]

_FROM_ENVIRONMENT = "environment"

R = TypeVar("R", bound="GatewayResources")


class GatewayResources:
    """The resources of one gateway, each built on first use (see :class:`~tarash.tarash_gateway.Gateway`
    for the arguments)."""

    def __init__(
        self,
        *,
        ledger: JobStore | str | os.PathLike[str] = _FROM_ENVIRONMENT,
        discover: bool = True,
        transport: Transport | None = None,
        concurrency: Mapping[str, int] | None = None,
        _host: PluginHost | None = None,
    ) -> None:
        self.host = _host if _host is not None else PluginHost()
        if not discover:
            self.host.search_path = []
        self._transport = transport
        self._concurrency = concurrency
        self._caps: ConcurrencyCaps | None = None
        self._background: rt.BackgroundLoop | None = None
        self._ledger_choice = ledger
        self._ledger: LedgerAdapter | None = None
        self._ledger_ready = False
        self._lock = threading.Lock()
        self.secrets: set[str] = set()

    @property
    def transport(self) -> Transport:
        """The connection pools (built on the first request)."""
        if self._transport is None:
            with self._lock:
                if self._transport is None:
                    # lazy: loaded at the first generation, not at discovery
                    from ._transport import Transport

                    self._transport = Transport()
        return self._transport

    @property
    def background(self) -> rt.BackgroundLoop:
        """The event loop on which sync calls run coroutines (started on first use)."""
        if self._background is None:
            with self._lock:
                if self._background is None:
                    # lazy: loaded at the first generation, not at discovery
                    from ._runtime import BackgroundLoop

                    self._background = BackgroundLoop()
        return self._background

    @property
    def caps(self) -> ConcurrencyCaps:
        """The concurrency caps (read from ``concurrency=`` or the environment on first use)."""
        if self._caps is None:
            with self._lock:
                if self._caps is None:
                    # lazy: loaded at the first generation, not at discovery
                    from ._caps import ConcurrencyCaps

                    self._caps = ConcurrencyCaps(self._concurrency)
        return self._caps

    def set_concurrency(self, provider: str, limit: int | None, *, model: str | None = None) -> None:
        """Allow at most ``limit`` jobs of ``provider`` (or of its ``model``) in flight at once;
        None lifts the cap. A job holds its slot from before its submit until it is collected,
        cancelled or left for ``resume()``; callers beyond the cap wait, first come first served,
        within their deadline. Cancels never wait for a slot."""
        self.caps.set(provider, limit, model=model)

    def ledger(self) -> LedgerAdapter | None:
        """The job ledger in effect, or None when it is off."""
        if self._ledger_choice == _FROM_ENVIRONMENT:
            from ._ledger import active_ledger  # lazy: sqlite3 and the stores load at first use

            return active_ledger()
        if not self._ledger_ready:
            with self._lock:
                if not self._ledger_ready:
                    from ._ledger import open_ledger  # lazy: sqlite3 and the stores load at first use

                    self._ledger = open_ledger(self._ledger_choice)
                    self._ledger_ready = True
        return self._ledger

    def register_secret(self, value: str | None) -> None:
        """Remember a credential this gateway resolved; it is scrubbed from all Tarash output."""
        if value:
            self.secrets.add(value)
            register_secret(value)

    def __enter__(self: R) -> R:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self: R) -> R:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """:meth:`close` from async code, without blocking the event loop: it runs in a worker
        thread, and the pools of the caller's loop are closed on it meanwhile."""
        import asyncio  # lazy: a loop is running, so asyncio is loaded already

        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Close the connection pools, stop the background loop, and write the ledger's queued
        status updates; a ledger this gateway opened from a path or URL is closed too (a store
        object passed in stays open: its owner closes it). The gateway stays usable: what it
        needs again is made again. Also ``with Gateway() as gateway:`` (``async with`` closes
        through :meth:`aclose`)."""
        if self._transport is not None:
            self._transport.close()
        if self._background is not None:
            self._background.stop()
        ledger = self._ledger
        if ledger is not None:
            ledger.flush()
            close = getattr(ledger.store, "close", None)
            if isinstance(self._ledger_choice, (str, os.PathLike)) and callable(close):
                close()
                self._ledger, self._ledger_ready = None, False
