"""HTTP plumbing: pooled httpx clients, and answers and transport errors mapped to Tarash errors.

One ``httpx.Client`` per (base URL, API key) serves every sync call; one ``httpx.AsyncClient`` per
(base URL, API key) and event loop serves async calls (an async client cannot outlive its loop).
Sync clients are closed at interpreter exit; async clients when their loop shuts down
(``asyncio.run`` and pytest-asyncio do that) or at exit if their loop still runs.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from tarash.tarash_gateway.exceptions import HTTPConnectionError, HTTPError, ValidationError
from tarash.tarash_gateway.utils import parse_retry_after

from ._fields import API_KEY_ENV, DEFAULT_BASE_URL

__all__ = ["close_clients", "send", "send_async"]

USER_AGENT = "tarash-example-provider/0.1.0"
CONNECT_TIMEOUT = 10.0

Pool = dict[tuple[str, str], httpx.AsyncClient]

_lock = threading.Lock()
_clients: dict[tuple[str, str], httpx.Client] = {}
_async_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pool] = weakref.WeakKeyDictionary()
_closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncIterator[None]] = (
    weakref.WeakKeyDictionary()
)


def endpoint(config: Any) -> tuple[str, str]:
    """(base URL, API key) for a config; the key comes from ``config.api_key`` or the env var."""
    key = config.api_key or os.environ.get(API_KEY_ENV)
    if not key:
        raise ValidationError(
            f"No API key for the example provider: pass api_key=... or set {API_KEY_ENV}",
            field="api_key",
        )
    return (config.base_url or DEFAULT_BASE_URL).rstrip("/"), key


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "User-Agent": USER_AGENT}


def _timeout(seconds: float) -> httpx.Timeout:
    return httpx.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT))


# --8<-- [start:pool]
def client(config: Any) -> httpx.Client:
    """The pooled sync client for this config's base URL and key."""
    base_url, key = endpoint(config)
    with _lock:
        found = _clients.get((base_url, key))
        if found is None or found.is_closed:
            found = _clients[(base_url, key)] = httpx.Client(base_url=base_url, headers=_headers(key))
    return found


async def async_client(config: Any) -> httpx.AsyncClient:
    """The pooled async client for this config's base URL and key, on the running loop."""
    base_url, key = endpoint(config)
    loop = asyncio.get_running_loop()
    with _lock:
        pool = _async_pools.get(loop)
        fresh = pool is None
        if pool is None:
            pool = _async_pools[loop] = {}
        found = pool.get((base_url, key))
        if found is None or found.is_closed:
            found = pool[(base_url, key)] = httpx.AsyncClient(base_url=base_url, headers=_headers(key))
    if fresh:
        await _close_at_loop_shutdown(loop, pool)
    return found


async def _close_at_loop_shutdown(loop: asyncio.AbstractEventLoop, pool: Pool) -> None:
    """Start an async generator whose ``finally`` closes ``pool``.

    The loop finalises live async generators in ``loop.shutdown_asyncgens()``, which
    ``asyncio.run`` (and pytest-asyncio) call before closing the loop.
    """

    async def closer() -> AsyncIterator[None]:
        try:
            yield
        finally:
            await _aclose(pool)

    generator = closer()
    _closers[loop] = generator
    await generator.__anext__()


# --8<-- [end:pool]


async def _aclose(pool: Pool) -> None:
    with _lock:
        clients = list(pool.values())
        pool.clear()
    for each in clients:
        await each.aclose()


def close_clients() -> None:
    """Close every pooled client (registered with ``atexit``; safe to call more than once)."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
        pools = list(_async_pools.items())
    for each in clients:
        each.close()
    for loop, pool in pools:
        if not pool or loop.is_closed():
            continue
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(_aclose(pool), loop).result(timeout=CONNECT_TIMEOUT)
        else:
            loop.run_until_complete(_aclose(pool))


atexit.register(close_clients)


# --8<-- [start:send]
def send(
    config: Any,
    method: str,
    path: str,
    *,
    phase: str,
    timeout: float,
    body: Any = None,
    fields: Mapping[str, str] | None = None,
) -> Any:
    """One API call with the pooled sync client: the JSON answer, or a Tarash exception."""
    try:
        response = client(config).request(method, path, json=body, timeout=_timeout(timeout))
    except httpx.TransportError as exc:
        raise connection_error(exc, phase) from exc
    return answer(response, phase, fields)


async def send_async(
    config: Any,
    method: str,
    path: str,
    *,
    phase: str,
    timeout: float,
    body: Any = None,
    fields: Mapping[str, str] | None = None,
) -> Any:
    """Async :func:`send`."""
    try:
        http = await async_client(config)
        response = await http.request(method, path, json=body, timeout=_timeout(timeout))
    except httpx.TransportError as exc:
        raise connection_error(exc, phase) from exc
    return answer(response, phase, fields)


def connection_error(exc: httpx.TransportError, phase: str) -> HTTPConnectionError:
    """Map a transport failure; ``request_sent`` is False only if the request never left."""
    never_sent = isinstance(
        exc,
        (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol),
    )
    return HTTPConnectionError(
        f"Example API unreachable during {phase}: {type(exc).__name__}: {exc}",
        request_sent=not never_sent,
        phase=phase,
    )


def answer(response: httpx.Response, phase: str, fields: Mapping[str, str] | None = None) -> Any:
    """The JSON body of a 2xx answer; otherwise the matching Tarash exception.

    ``fields`` maps API field paths (``"input.duration"``) to unified request fields
    (``"duration_seconds"``), so a 422 names the field the caller actually set.
    """
    try:
        data = response.json()
    except ValueError:
        data = {"text": response.text[:500]}
    if response.is_success:
        return data
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    message = (
        f"Example API answered {response.status_code} during {phase}: "
        f"{error.get('message') or response.reason_phrase}"
    )
    details = error.get("details") or []
    if response.status_code in (400, 422) and details:
        first = details[0]
        api_field = str(first.get("field", ""))
        field = (fields or {}).get(api_field, api_field.removeprefix("input."))
        raise ValidationError(
            f"{message} ({api_field}: {first.get('message')})",
            field=field,
            value=first.get("value"),
            allowed=first.get("allowed"),
            phase=phase,
            raw_response=data,
        )
    raise HTTPError(
        message,
        status_code=response.status_code,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        phase=phase,
        raw_response=data,
    )


# --8<-- [end:send]
