"""Pooled fal-client clients and the transport that makes fal-client safe to submit with.

One ``fal_client.SyncClient`` per (API key, base URL, CA bundle), and one ``fal_client.AsyncClient``
per the same key *and event loop* (async connections belong to the loop that opened them). Each is
given our own pooled httpx client instead of the one fal-client would build, with explicit limits
so concurrent generations reuse connections instead of churning them.

A request event hook sends requests addressed to fal's queue host to ``config.base_url``, and
every request goes through a guard transport, which:

* caps every timeout at the deadline of the hook call that made the request;
* reads the answer (at most ``max_bytes``) before handing it to fal-client;
* turns transport failures and the statuses fal-client would retry (408/409/429/502/503/504)
  into Tarash exceptions. fal-client retries only ``httpx.HTTPError`` and its own HTTP error, so
  it never retries anything: a submit that may have reached fal is never sent twice, and core owns
  every retry (honouring ``Retry-After`` and the deadline).
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import ssl
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import httpx
from fal_client.client import (
    QUEUE_URL_FORMAT,
    USER_AGENT,
    AsyncBackupDomainTransport,
    AsyncClient,
    BackupDomainTransport,
    SyncClient,
)

from ._errors import (
    FAL_RETRIED_STATUSES,
    deadline_error,
    error_from_response,
    transport_error,
    unreadable_answer,
)

MAX_CONNECTIONS = 100
#: Async connections are spread over this many small httpcore pools (see ShardedAsyncTransport).
SHARDS = 50
KEEPALIVE_EXPIRY = 30.0
DEFAULT_TIMEOUT = 120.0
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
LIMITS = httpx.Limits(
    max_connections=MAX_CONNECTIONS,
    max_keepalive_connections=MAX_CONNECTIONS,
    keepalive_expiry=KEEPALIVE_EXPIRY,
)
SHARD_LIMITS = httpx.Limits(
    max_connections=MAX_CONNECTIONS // SHARDS,
    max_keepalive_connections=MAX_CONNECTIONS // SHARDS,
    keepalive_expiry=KEEPALIVE_EXPIRY,
)
_QUEUE = httpx.URL(QUEUE_URL_FORMAT)


@attrs.frozen
class Target:
    """Where and as whom to talk to fal: the key of the client pools."""

    api_key: str = attrs.field(repr=False)
    base_url: str | None = None
    ca_bundle: str | None = None


@attrs.define
class Exchange:
    """One hook call's HTTP traffic: its kind, its deadline, and the last answer received."""

    kind: str
    deadline: float
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    timeout: float | None = None
    response: httpx.Response | None = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


_CURRENT: contextvars.ContextVar[Exchange | None] = contextvars.ContextVar(
    "tarash_fal_exchange",
    default=None,
)


@contextmanager
def exchange(
    kind: str,
    seconds: float,
    *,
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    timeout: float | None = None,
) -> Iterator[Exchange]:
    """Mark the requests made inside the block as one ``kind`` call ending ``seconds`` from now."""
    record = Exchange(kind=kind, deadline=time.monotonic() + seconds, max_bytes=max_bytes, timeout=timeout)
    token = _CURRENT.set(record)
    try:
        yield record
    finally:
        _CURRENT.reset(token)


class Rebase:
    """A request event hook: requests addressed to fal's queue host go to ``base_url`` instead.

    fal-client builds queue URLs from a host fixed when it is imported; rewriting them before
    they are sent (and logged) points every request at ``config.base_url``.
    """

    def __init__(self, base_url: str) -> None:
        self._base = httpx.URL(base_url)

    def __call__(self, request: httpx.Request) -> None:
        if request.url.host == _QUEUE.host and request.url.scheme == _QUEUE.scheme:
            request.url = self._base.copy_with(
                raw_path=self._base.raw_path.rstrip(b"/") + request.url.raw_path
            )
            request.headers["Host"] = request.url.netloc.decode("ascii")


class AsyncRebase(Rebase):
    """:class:`Rebase` for async clients (their event hooks must be coroutines)."""

    async def __call__(self, request: httpx.Request) -> None:  # type: ignore[override]
        super().__call__(request)


class _Guard:
    """What the sync and async guard transports share."""

    def prepare(self, request: httpx.Request) -> Exchange:
        record = _CURRENT.get() or Exchange(kind=_kind_of(request), deadline=float("inf"))
        remaining = record.remaining()
        if remaining <= 0:
            raise deadline_error(kind=record.kind, timeout=record.timeout)
        if remaining != float("inf"):
            timeouts = request.extensions.get("timeout", {})
            request.extensions["timeout"] = {
                name: remaining if timeouts.get(name) is None else min(timeouts[name], remaining)
                for name in ("connect", "read", "write", "pool")
            }
        return record

    @staticmethod
    def failure(exc: httpx.HTTPError, record: Exchange) -> Exception:
        return transport_error(
            exc, kind=record.kind, deadline_passed=record.remaining() <= 0, timeout=record.timeout
        )

    @staticmethod
    def check(size: int, record: Exchange) -> bool:
        """Whether an answer of ``size`` bytes so far is still within bounds (and time)."""
        if record.remaining() <= 0:
            raise transport_error(
                httpx.ReadTimeout("the deadline passed while reading the answer"),
                kind=record.kind,
                deadline_passed=True,
                timeout=record.timeout,
            )
        return size <= record.max_bytes

    @staticmethod
    def finish(
        request: httpx.Request,
        response: httpx.Response,
        chunks: list[bytes],
        oversize: bool,
        record: Exchange,
    ) -> httpx.Response:
        answer = httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=httpx.ByteStream(b"".join(chunks)),
            extensions=response.extensions,
            request=request,
        )
        record.response = answer
        success = answer.status_code < 400
        if oversize and success:
            raise unreadable_answer(kind=record.kind, reason=f"the answer exceeded {record.max_bytes} bytes")
        if answer.status_code in FAL_RETRIED_STATUSES or (oversize and not success):
            answer.read()
            raise error_from_response(answer, kind=record.kind)
        return answer


def _kind_of(request: httpx.Request) -> str:
    if request.method == "POST":
        return "submit"
    if request.method == "PUT":
        return "cancel"
    return "status" if request.url.path.endswith("/status") else "result"


class GuardTransport(httpx.BaseTransport):
    """The sync guard (see the module docstring), wrapping fal-client's backup-domain transport."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner
        self._guard = _Guard()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        record = self._guard.prepare(request)
        chunks: list[bytes] = []
        oversize = False
        try:
            response = self._inner.handle_request(request)
            try:
                size = 0
                for chunk in response.iter_raw():
                    size += len(chunk)
                    if not self._guard.check(size, record):
                        oversize = True
                        break
                    chunks.append(chunk)
            finally:
                response.close()
        except httpx.TransportError as exc:
            raise self._guard.failure(exc, record) from None
        return self._guard.finish(request, response, chunks, oversize, record)

    def close(self) -> None:
        self._inner.close()


class AsyncGuardTransport(httpx.AsyncBaseTransport):
    """The async guard (see the module docstring)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self._guard = _Guard()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        record = self._guard.prepare(request)
        chunks: list[bytes] = []
        oversize = False
        try:
            response = await self._inner.handle_async_request(request)
            try:
                size = 0
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    if not self._guard.check(size, record):
                        oversize = True
                        break
                    chunks.append(chunk)
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            raise self._guard.failure(exc, record) from None
        return self._guard.finish(request, response, chunks, oversize, record)

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Releasing(httpx.AsyncByteStream):
    """A response stream that frees its connection slot when closed."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class ShardedAsyncTransport(httpx.AsyncBaseTransport):
    """At most ``MAX_CONNECTIONS`` connections, spread over ``SHARDS`` small httpcore pools.

    httpcore's pool does work quadratic in its number of connections on every request (with a
    socket readability check per idle connection), so one pool of 100 busy connections spends
    milliseconds per request; pools of two spend almost nothing. Requests wait here, on a
    semaphore, for a free connection slot (bounded by the request's pool timeout), then go to the
    least busy pool, so httpcore never queues.
    """

    def __init__(self, verify: ssl.SSLContext) -> None:
        self._shards = [httpx.AsyncHTTPTransport(verify=verify, limits=SHARD_LIMITS) for _ in range(SHARDS)]
        self._busy = [0] * SHARDS
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._slots.locked():
            wait = request.extensions.get("timeout", {}).get("pool")
            try:
                await asyncio.wait_for(self._slots.acquire(), wait)
            except asyncio.TimeoutError:
                raise httpx.PoolTimeout("no free connection before the pool timeout") from None
        else:
            await self._slots.acquire()
        index = min(range(SHARDS), key=self._busy.__getitem__)
        self._busy[index] += 1

        def release() -> None:
            self._busy[index] -= 1
            self._slots.release()

        try:
            response = await self._shards[index].handle_async_request(request)
        except BaseException:
            release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Releasing(response.stream, release),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()


def _headers(api_key: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("tarash-fal")
    except PackageNotFoundError:
        ours = "0"
    return {"Authorization": f"Key {api_key}", "User-Agent": f"{USER_AGENT} tarash-fal/{ours}"}


def _install(client: Any, http: Any) -> None:
    """Make ``client`` use ``http``: seed fal-client's lazily built ``_client`` attribute.

    fal-client builds its httpx client on first use in a cached property named ``_client`` (a
    ``functools.cached_property`` on ``SyncClient``; an awaitable ``asyncstdlib`` one on
    ``AsyncClient``); both read the instance ``__dict__`` first, so seeding it injects ours.
    """
    if "_client" not in dir(type(client)):
        raise RuntimeError(
            f"This fal-client version ({type(client).__module__}) builds its HTTP client "
            "differently; tarash-fal cannot inject its pooled client"
        )
    client.__dict__["_client"] = http


class _LoopPools:
    """The async clients of one event loop, closed when the loop shuts down."""

    def __init__(self) -> None:
        self.clients: dict[Target, tuple[AsyncClient, httpx.AsyncClient]] = {}
        self.closer: AsyncGenerator[None, None] | None = None

    async def aclose(self) -> None:
        clients, self.clients = self.clients, {}
        for _client, http in clients.values():
            await http.aclose()


async def _close_at_shutdown(pools: _LoopPools) -> AsyncGenerator[None, None]:
    """An async generator left suspended: ``loop.shutdown_asyncgens()`` finalises it."""
    try:
        yield
    finally:
        await pools.aclose()


class Pools:
    """The process-wide client pools."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: dict[Target, tuple[SyncClient, httpx.Client]] = {}
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPools] = (
            weakref.WeakKeyDictionary()
        )
        self._ssl: dict[str | None, ssl.SSLContext] = {}

    def _ssl_context(self, ca_bundle: str | None) -> ssl.SSLContext:
        context = self._ssl.get(ca_bundle)
        if context is None:
            if ca_bundle is None:
                context = httpx.create_ssl_context(trust_env=True)
            else:
                context = ssl.create_default_context(cafile=ca_bundle)
            self._ssl[ca_bundle] = context
        return context

    def sync_client(self, target: Target) -> SyncClient:
        """The shared ``fal_client.SyncClient`` for ``target``."""
        entry = self._sync.get(target)
        if entry is not None:
            return entry[0]
        with self._lock:
            entry = self._sync.get(target)
            if entry is None:
                inner = httpx.HTTPTransport(verify=self._ssl_context(target.ca_bundle), limits=LIMITS)
                hooks: list[Callable[[httpx.Request], Any]] = (
                    [Rebase(target.base_url)] if target.base_url else []
                )
                http = httpx.Client(
                    transport=GuardTransport(BackupDomainTransport(transport=inner)),
                    headers=_headers(target.api_key),
                    timeout=DEFAULT_TIMEOUT,
                    follow_redirects=True,
                    trust_env=False,
                    event_hooks={"request": hooks},
                )
                client = SyncClient(key=target.api_key, default_timeout=DEFAULT_TIMEOUT)
                _install(client, http)
                entry = self._sync[target] = (client, http)
        return entry[0]

    async def async_client(self, target: Target) -> AsyncClient:
        """The shared ``fal_client.AsyncClient`` for ``target`` on the running event loop."""
        loop = asyncio.get_running_loop()
        pools = self._loops.get(loop)
        entry = pools.clients.get(target) if pools is not None else None
        if entry is not None:
            return entry[0]
        with self._lock:
            pools = self._loops.get(loop)
            if pools is None:
                pools = self._loops[loop] = _LoopPools()
            entry = pools.clients.get(target)
            if entry is None:
                inner = ShardedAsyncTransport(self._ssl_context(target.ca_bundle))
                async_hooks: list[Callable[[httpx.Request], Any]] = (
                    [AsyncRebase(target.base_url)] if target.base_url else []
                )
                http = httpx.AsyncClient(
                    transport=AsyncGuardTransport(AsyncBackupDomainTransport(transport=inner)),
                    headers=_headers(target.api_key),
                    timeout=DEFAULT_TIMEOUT,
                    trust_env=False,
                    event_hooks={"request": async_hooks},
                )
                client = AsyncClient(key=target.api_key, default_timeout=DEFAULT_TIMEOUT)
                ready: asyncio.Future[httpx.AsyncClient] = loop.create_future()
                ready.set_result(http)
                _install(client, ready)
                entry = pools.clients[target] = (client, http)
            closer = None
            if pools.closer is None:
                closer = pools.closer = _close_at_shutdown(pools)
        if closer is not None:
            await closer.__anext__()
        return entry[0]

    def close(self) -> None:
        """Close every sync client's connections (async ones close with their event loop)."""
        with self._lock:
            entries, self._sync = self._sync, {}
        for _client, http in entries.values():
            http.close()


POOLS = Pools()
atexit.register(POOLS.close)
