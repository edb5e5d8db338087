"""Core's HTTP transport: every request a provider plugin describes is sent from here.

One pool of connections per (provider, API root, credentials, CA bundle), per event loop for async
clients, owned by a :class:`~tarash.tarash_gateway.Gateway`. What this module decides, once for
every plugin:

* where a request goes (``Request.url`` joined to the API root) and the auth header, with the key
  core resolved; a request that carries the key anywhere else is refused before it is sent;
* the deadline: the time left bounds the whole exchange, body included (sync: every socket
  operation waits at most the time left, see :class:`_BoundedBackend`; async: the wait for a
  connection and the exchange);
* whether a failed request may have reached the provider (:func:`connection_error`), on which
  "never submit twice" rests;
* the answer: read in full up to ``max_response_bytes``; a 4xx/5xx becomes an
  :class:`~tarash.tarash_gateway.exceptions.HTTPError` with ``retry_after`` (see :func:`http_error`).

HTTP/1.1 keep-alive: at most ``max_connections`` (100) per pool. An async pool is split into
``SHARDS`` small httpx clients, each behind a semaphore of its share of the connections (a
request takes the first shard with a free connection): httpcore scans every connection of a pool,
and its idle count, for each request it assigns (quadratic in the pool's size), which made one
100-connection pool spend most of a
1000-job run in that scan.
"""

from __future__ import annotations

import atexit
import contextvars
import functools
import hashlib
import itertools
import json
import os
import ssl
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs
import httpcore
import httpx

from ._errors import parse_retry_after
from ._redact import get_logger, redact_text
from ._runtime import running_loop
from ._wire import Request, Response
from .exceptions import GenerationFailedError, HTTPConnectionError, HTTPError, ValidationError

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "AnswerTooLarge",
    "DeadlineReached",
    "PoolKey",
    "Prepared",
    "Transport",
    "connection_error",
    "http_error",
]

MAX_CONNECTIONS = 100
SHARDS = 25
KEEPALIVE_EXPIRY = 30.0
CONNECT_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
CLOSE_TIMEOUT = 10.0
MAX_DETAIL_CHARS = 300
USER_AGENT = "tarash/0.1"

#: Transport failures after which the request provably never left this machine.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


@attrs.frozen
class PoolKey:
    """Which pool a request uses: one per provider, API root, credentials and CA bundle."""

    provider: str
    base_url: str
    credentials: str  # a digest of the key, never the key
    ca_bundle: str | None = None


@attrs.frozen
class Prepared:
    """A request ready to send: the httpx request, the pool it goes through, the answer's cap."""

    pool: PoolKey
    request: httpx.Request = attrs.field(repr=False)
    max_bytes: int = MAX_RESPONSE_BYTES


def options(config: Any) -> tuple[str | None, int]:
    """The transport options a config may set in ``provider_config`` (any provider), checked
    before anything is sent: ``ca_bundle`` (a PEM file to trust instead of the system's CAs) and
    ``max_response_bytes`` (the largest answer read, default 32 MiB). ``base_url`` must be an
    http(s) URL without a query string."""
    base_url = config.base_url
    if base_url is not None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValidationError(
                f"base_url must be an http(s) URL without a query string, got {base_url!r}",
                field="base_url",
                value=base_url,
            )
    settings = config.provider_config
    ca_bundle = settings.get("ca_bundle")
    if ca_bundle is not None and not (isinstance(ca_bundle, str) and os.path.isfile(ca_bundle)):
        raise ValidationError(
            f"provider_config.ca_bundle must be a PEM file path, got {ca_bundle!r}",
            field="provider_config.ca_bundle",
            value=ca_bundle,
        )
    max_bytes = settings.get("max_response_bytes", MAX_RESPONSE_BYTES)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1024:
        raise ValidationError(
            f"provider_config.max_response_bytes must be an integer >= 1024, got {max_bytes!r}",
            field="provider_config.max_response_bytes",
            value=max_bytes,
        )
    return ca_bundle, max_bytes


def fingerprint(api_key: str | None) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()[:16] if api_key else ""


def _join(base_url: str, url: str) -> str:
    if url.startswith(("http://", "https://")):
        return url
    if not base_url:
        raise ValidationError(
            f"No API root to send {url!r} to: set config.base_url", field="base_url", value=None
        )
    return base_url.rstrip("/") + "/" + url.lstrip("/")


def _carries(secret: str, values: Iterable[Any]) -> bool:
    return any(isinstance(v, str) and secret in v for v in values)


def prepare(
    request: Request,
    *,
    provider: str,
    base_url: str,
    api_key: str | None,
    auth_header: str,
    auth_scheme: str,
    ca_bundle: str | None = None,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> Prepared:
    """The httpx request for ``request``; refuses one that carries the key outside the auth header."""
    if not isinstance(request, Request):
        raise GenerationFailedError(
            f"{provider} plugin yielded {type(request).__name__}, expected a Request",
            retryable=False,
        )
    url = _join(base_url, request.url)
    content = None
    if request.json is not None:
        try:
            content = json.dumps(request.json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"The {provider} request body is not JSON: {exc}", field="request", value=None
            ) from None
    if api_key:
        places = [url, content, *request.headers.values(), *map(str, request.params.values())]
        places += [str(v) for v in (request.data or {}).values()]
        if _carries(api_key, places) or (request.content is not None and api_key.encode() in request.content):
            raise GenerationFailedError(
                f"The {provider} plugin put the API key into a request it described; core adds the key "
                "itself (Request.auth) and sends it nowhere else. Nothing was sent.",
                retryable=False,
            )
    headers = {"User-Agent": USER_AGENT, **request.headers}
    if content is not None:
        headers.setdefault("Content-Type", "application/json")
    if request.auth and api_key:
        headers[auth_header] = f"{auth_scheme} {api_key}" if auth_scheme else api_key
    try:
        built = httpx.Request(
            request.method.upper(),
            url,
            params=dict(request.params) or None,
            headers=headers,
            content=content.encode() if content is not None else request.content,
            files=request.files,
            data=request.data,
        )
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise GenerationFailedError(
            f"The {provider} plugin described an invalid request: {redact_text(str(exc))}",
            retryable=False,
        ) from None
    if request.auth and api_key and auth_header.lower() == "authorization" and built.url.userinfo:
        raise ValidationError(
            f"The {provider} API root (base_url) carries credentials (user:password@), which httpx "
            f"would send as the Authorization header in place of the {provider} API key. Nothing "
            "was sent; give a proxy its credentials through HTTPS_PROXY instead.",
            field="base_url",
            value=None,
        )
    pool = PoolKey(provider, base_url, fingerprint(api_key), ca_bundle)
    return Prepared(pool=pool, request=built, max_bytes=max_bytes)


class DeadlineReached(HTTPConnectionError):
    """The request was out but no complete answer came before the deadline (read/write timeouts
    are the time left, so any of them is the deadline)."""


def connection_error(exc: httpx.TransportError, provider: str) -> HTTPConnectionError:
    """A transport failure; ``request_sent`` is False only when the request never left."""
    kind = HTTPConnectionError
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, _NEVER_SENT):
        kind = DeadlineReached
    return kind(
        f"{provider} unreachable: {type(exc).__name__}: {redact_text(str(exc)) or 'no detail'}",
        request_sent=not isinstance(exc, _NEVER_SENT),
    )


def _tls_error(exc: ssl.SSLError, provider: str) -> HTTPConnectionError:
    """A TLS failure httpcore left unmapped: its async (anyio) backend maps TLS errors only while
    connecting, so a raw ``ssl.SSLError`` comes from a connection already in use, once the request
    may be out. It is a read error after sending, as httpcore's sync backend reports it."""
    return connection_error(httpx.ReadError(str(exc)), provider)


def _detail(body: Any) -> str:
    """A short human reading of an error body (common shapes: message, detail, error)."""
    found: Any = body
    if isinstance(body, Mapping):
        for key in ("message", "detail", "error", "title"):
            if body.get(key):
                found = body[key]
                break
        if isinstance(found, Mapping):
            found = found.get("message") or found
    text = found if isinstance(found, str) else json.dumps(found, default=str)
    return text if len(text) <= MAX_DETAIL_CHARS else text[:MAX_DETAIL_CHARS] + "..."


def body_of(response: Response) -> Any:
    """The answer's JSON, else its text."""
    try:
        return response.json()
    except ValueError:
        return response.text[:2000]


def http_error(response: Response, provider: str) -> HTTPError:
    """The HTTPError for a 4xx/5xx answer (thrown into the plugin's flow by core)."""
    body = body_of(response)
    detail = _detail(body) if body not in (None, "") else ""
    return HTTPError(
        f"{provider} answered HTTP {response.status_code}" + (f": {detail}" if detail else ""),
        status_code=response.status_code,
        retry_after=parse_retry_after(response.header("retry-after")),
        raw_response=body,
        response=response,
    )


class AnswerTooLarge(GenerationFailedError):
    """The answer was larger than ``max_response_bytes``; it was not read (not retryable: the next
    answer would be as large)."""


def _too_large(limit: int) -> AnswerTooLarge:
    return AnswerTooLarge(f"the answer exceeded {limit} bytes and was not read", retryable=False)


@functools.lru_cache(maxsize=32)
def _tls(ca_bundle: str | None) -> ssl.SSLContext:
    """TLS verification, built once per CA bundle and shared by every client: httpx's default
    trust store, or only the CA bundle a config names."""
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else httpx.create_ssl_context()


def _pool_error(exc: Exception, key: PoolKey) -> GenerationFailedError:
    return GenerationFailedError(
        f"Could not open connections to {key.provider}: {type(exc).__name__}: {exc}. Nothing was sent.",
        retryable=False,
    )


def _timeout(seconds: float) -> dict[str, float]:
    seconds = max(seconds, 0.001)
    return httpx.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT)).as_dict()  # type: ignore[return-value]


#: The deadline (``time.monotonic()``) of the sync exchange this thread is running, read by the
#: sockets of the sync pools; None outside :meth:`Transport.send`.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("tarash_deadline", default=None)


def _left(timeout: float | None, expired: type[httpcore.TimeoutException]) -> float | None:
    """A socket operation's timeout cut to the time left before the exchange's deadline; past the
    deadline nothing more is read or written (``expired`` is raised, as httpcore raises a timeout,
    so httpx maps it the same way)."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the deadline passed")
    return left if timeout is None else min(timeout, left)


class _BoundedStream(httpcore.NetworkStream):
    """A connection whose every read and write waits at most the time left (:func:`_left`)."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _BoundedBackend(httpcore.NetworkBackend):
    """The sockets of a sync pool, bounded by the deadline of the exchange using them.

    httpx applies a timeout to each socket operation, not to the exchange: every read waits the
    full read timeout again, so a provider trickling its status line and headers kept a sync call
    alive for as long as it liked. Each operation here waits at most the time left, and none
    starts after the deadline; an answer read in full by then is returned, even if the deadline
    passes before core has taken it from httpcore's buffers. (Async runs the exchange under
    ``asyncio.wait_for`` instead.)"""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(self._backend.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _bound_by_deadline(client: httpx.Client) -> None:
    """Put :class:`_BoundedBackend` under the connection pools of ``client``: its own and those of
    the proxies httpx mounted from the environment. httpx has no public way to give a pool its
    network backend, so every private name is looked up with a default: a transport without an
    httpcore pool (a mounted test transport), or an httpx that names them otherwise, is left as it
    is (``test_transport_limits`` then fails, rather than the generations)."""
    mounts: Any = getattr(client, "_mounts", {})
    for transport in (getattr(client, "_transport", None), *mounts.values()):
        pool: Any = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.NetworkBackend) and not isinstance(backend, _BoundedBackend):
            pool._network_backend = _BoundedBackend(backend)


#: The loggers of the HTTP stack core sends through: httpx logs each request's URL (INFO), httpcore
#: each answer's headers (DEBUG). Their records are redacted like core's own, so a user who turns
#: them on to debug sees no key a provider echoed and no credentials in a URL.
_HTTP_LOGGERS = [
    get_logger(name)
    for name in (
        "httpx",
        "httpcore.connection",
        "httpcore.http11",
        "httpcore.http2",
        "httpcore.proxy",
        "httpcore.socks",
    )
]


#: What a closed response's stream is replaced with (nothing more is read from it).
_READ = httpx.ByteStream(b"")


def _release(response: httpx.Response) -> None:
    """Unlink a closed response from its stream, which links back to it (httpx 0.28's
    ``BoundSyncStream``/``BoundAsyncStream``, encode/httpx#3733): the two and the request, the
    connection pool's records and the parsed URL they hold (about 36 objects an exchange) are then
    freed when the exchange ends, not left for the cyclic garbage collector, whose runs over a
    busy process's objects take milliseconds each."""
    response.stream = _READ


def _record(response: httpx.Response, content: bytes) -> Response:
    return Response(
        status_code=response.status_code,
        headers=dict(response.headers.items()),
        content=content,
        url=str(response.url),
    )


class Transport:
    """Pooled sync and async httpx clients, and the sending of prepared requests."""

    def __init__(
        self,
        *,
        max_connections: int = MAX_CONNECTIONS,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.max_connections = max_connections
        self._mounted = transport
        self._mounted_async = async_transport
        self._lock = threading.Lock()
        self._sync: dict[PoolKey, httpx.Client] = {}
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[PoolKey, _Shards]] = (
            weakref.WeakKeyDictionary()
        )
        self._closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncIterator[None]] = (
            weakref.WeakKeyDictionary()
        )
        self._at_exit = False  # close is registered to run at exit (while it has pools)
        self._closing: set[asyncio.Task[None]] = set()  # closes scheduled on the caller's own loop

    def _limits(self, connections: int) -> httpx.Limits:
        return httpx.Limits(
            max_connections=connections,
            max_keepalive_connections=connections,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        )

    def _client(self, key: PoolKey) -> httpx.Client:
        with self._lock:
            found = self._sync.get(key)
            if found is None or found.is_closed:
                self._close_at_exit()
                found = self._sync[key] = httpx.Client(
                    limits=self._limits(self.max_connections),
                    verify=_tls(key.ca_bundle),
                    transport=self._mounted,
                    follow_redirects=False,
                )
                _bound_by_deadline(found)
        return found

    async def _async_client(self, key: PoolKey) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        """The next shard of the running loop's pool for ``key``."""
        import asyncio  # lazy: loaded by then (a loop runs this); a sync generation never imports it

        loop = asyncio.get_running_loop()
        with self._lock:
            pool = self._async.get(loop)
            fresh = pool is None
            if pool is None:
                self._close_at_exit()
                self._forget_closed_loops()
                pool = self._async[loop] = {}
            shards = pool.get(key)
            if shards is None or shards.closed():
                shards = pool[key] = _Shards(
                    lambda size: httpx.AsyncClient(
                        limits=self._limits(size),
                        verify=_tls(key.ca_bundle),
                        transport=self._mounted_async,
                        follow_redirects=False,
                    ),
                    _split(self.max_connections, SHARDS),
                )
        if fresh:
            await self._close_at_loop_shutdown(loop, pool)
        return shards.next()

    async def _close_at_loop_shutdown(
        self, loop: asyncio.AbstractEventLoop, pool: dict[PoolKey, Any]
    ) -> None:
        """Park an async generator whose ``finally`` closes ``pool`` when the loop shuts down
        (``asyncio.run`` closes a loop's async generators before the loop), and then forgets it:
        the generator refers to its loop, so keeping it would keep the loop alive."""
        closers = self._closers

        async def closer() -> AsyncIterator[None]:
            try:
                yield
            finally:
                closers.pop(loop, None)
                await _aclose(pool)

        generator = closer()
        self._closers[loop] = generator
        await generator.__anext__()

    def _close_at_exit(self) -> None:
        """Have the interpreter's exit close the pools (``_lock`` is held). Only while there are
        pools: the registration keeps the transport alive, and :meth:`close` takes it back."""
        if not self._at_exit:
            atexit.register(self.close)
            self._at_exit = True

    def _forget_closed_loops(self) -> None:
        """Drop the closers of loops closed without closing their async generators (by hand, not
        by ``asyncio.run``), which would keep those loops alive; their pools go with the loops
        (``_lock`` is held)."""
        for loop in [loop for loop in self._closers if loop.is_closed()]:
            del self._closers[loop]

    def send(self, prepared: Prepared, timeout: float) -> Response:
        """Send with the pooled sync client; the whole exchange is bounded by ``timeout`` (each
        socket operation waits at most the time left: :class:`_BoundedBackend`)."""
        request = prepared.request
        request.extensions["timeout"] = _timeout(timeout)
        provider = prepared.pool.provider
        try:
            client = self._client(prepared.pool)
        except (OSError, ValueError) as exc:
            raise _pool_error(exc, prepared.pool) from None
        bounded = _DEADLINE.set(time.monotonic() + timeout)
        try:
            response = client.send(request, stream=True)
            try:
                chunks = bytearray()
                for chunk in response.iter_bytes():
                    chunks += chunk
                    if len(chunks) > prepared.max_bytes:
                        raise _too_large(prepared.max_bytes)
            finally:
                response.close()
                _release(response)
        except httpx.TransportError as exc:
            raise connection_error(exc, provider) from None
        except ssl.SSLError as exc:
            raise _tls_error(exc, provider) from None
        finally:
            _DEADLINE.reset(bounded)
        return _record(response, bytes(chunks))

    async def send_async(self, prepared: Prepared, timeout: float) -> Response:
        """Async :meth:`send` on the running loop's pool. The wait for a connection of the shard
        (its semaphore) and the exchange after it share ``timeout``: a request that got no
        connection in time was never sent (as httpx's ``PoolTimeout``), one that got it gets only
        the time left."""
        import asyncio  # lazy: loaded by then (a loop runs this); a sync generation never imports it

        deadline = time.monotonic() + timeout
        request = prepared.request
        provider = prepared.pool.provider
        try:
            client, gate = await self._async_client(prepared.pool)
        except (OSError, ValueError) as exc:
            raise _pool_error(exc, prepared.pool) from None
        if gate.locked():
            try:
                await asyncio.wait_for(gate.acquire(), max(deadline - time.monotonic(), 0.001))
            except asyncio.TimeoutError:
                raise connection_error(
                    httpx.PoolTimeout("no connection free before the deadline"), provider
                ) from None
        else:
            await gate.acquire()  # a free connection: taken at once
        try:
            left = deadline - time.monotonic()
            if left <= 0:
                raise httpx.PoolTimeout("no connection free before the deadline")
            request.extensions["timeout"] = _timeout(left)
            return await asyncio.wait_for(self._exchange(client, request, prepared.max_bytes), left)
        except asyncio.TimeoutError:
            raise connection_error(
                httpx.ReadTimeout("no complete answer before the deadline"), provider
            ) from None
        except httpx.TransportError as exc:
            raise connection_error(exc, provider) from None
        except ssl.SSLError as exc:
            raise _tls_error(exc, provider) from None
        finally:
            gate.release()

    async def _exchange(self, client: httpx.AsyncClient, request: httpx.Request, max_bytes: int) -> Response:
        response = await client.send(request, stream=True)
        try:
            chunks = bytearray()
            async for chunk in response.aiter_bytes():
                chunks += chunk
                if len(chunks) > max_bytes:
                    raise _too_large(max_bytes)
        finally:
            await response.aclose()
            _release(response)
        return _record(response, bytes(chunks))

    def connections(self) -> int:
        """Pools currently open (sync clients plus async clients over all loops)."""
        with self._lock:
            return len(self._sync) + sum(len(p) for p in self._async.values())

    def close(self) -> None:
        """Close every pooled client (safe to call more than once; run at exit while there are
        pools)."""
        with self._lock:
            if self._at_exit:
                atexit.unregister(self.close)
                self._at_exit = False
            clients = list(self._sync.values())
            self._sync.clear()
            pools = list(self._async.items())
        for each in clients:
            each.close()
        here = running_loop()
        for loop, pool in pools:
            if not pool or loop.is_closed():
                continue
            if loop is here:
                # Called on the pool's own loop, which cannot run the close while this waits: it
                # runs as soon as the caller awaits.
                task = loop.create_task(_aclose(pool))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
            elif loop.is_running():
                import asyncio  # lazy: loaded by then (this loop made the pool)

                try:
                    asyncio.run_coroutine_threadsafe(_aclose(pool), loop).result(timeout=CLOSE_TIMEOUT)
                except Exception:
                    pass
            else:
                loop.run_until_complete(_aclose(pool))


def _split(total: int, parts: int) -> list[int]:
    """``total`` connections over at most ``parts`` shards, each of at least one."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class _Shards:
    """An async pool: small httpx clients, made on first use, each behind a semaphore of its
    connection count."""

    def __init__(self, make: Callable[[int], httpx.AsyncClient], sizes: list[int]) -> None:
        import asyncio  # lazy: loaded by then (a loop runs this); a sync generation never imports it

        self._make = make
        self._sizes = sizes
        self.clients: list[httpx.AsyncClient | None] = [None] * len(sizes)
        self._gates = [asyncio.Semaphore(size) for size in sizes]
        self._turn = itertools.cycle(range(len(sizes)))

    def next(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        """The first shard with a free connection (so light traffic reuses one connection), else
        the next in turn."""
        index = next((i for i, gate in enumerate(self._gates) if not gate.locked()), None)
        if index is None:
            index = next(self._turn)
        client = self.clients[index]
        if client is None:
            client = self.clients[index] = self._make(self._sizes[index])
        return client, self._gates[index]

    def closed(self) -> bool:
        return any(client is not None and client.is_closed for client in self.clients)


async def _aclose(pool: dict[PoolKey, _Shards]) -> None:
    entries = list(pool.values())
    pool.clear()
    for shards in entries:
        for client in shards.clients:
            if client is not None:
                await client.aclose()
