"""HTTP plumbing: pooled httpx clients, and answers and transport errors mapped to Tarash errors.

Clients come from tarash-core's :class:`~tarash.tarash_gateway.http.ClientPool`: one
``httpx.Client`` per (base URL, API key) for sync calls, one ``httpx.AsyncClient`` per (base URL,
API key) and event loop for async calls, closed at exit or when their loop shuts down.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from typing import Any, cast

import httpx

from tarash.tarash_gateway.exceptions import HTTPConnectionError, HTTPError, ValidationError
from tarash.tarash_gateway.http import ClientPool
from tarash.tarash_gateway.utils import parse_retry_after

from ._fields import API_KEY_ENV, DEFAULT_BASE_URL

__all__ = ["close_clients", "send", "send_async"]

USER_AGENT = "tarash-example-provider/0.1.0"
CONNECT_TIMEOUT = 10.0


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
def _endpoint_key(key: Hashable) -> tuple[str, str]:
    base_url, api_key = cast("tuple[str, str]", key)
    return base_url, api_key


POOL = ClientPool(
    make_sync=lambda key: httpx.Client(
        base_url=_endpoint_key(key)[0], headers=_headers(_endpoint_key(key)[1])
    ),
    make_async=lambda key: httpx.AsyncClient(
        base_url=_endpoint_key(key)[0], headers=_headers(_endpoint_key(key)[1])
    ),
)


def client(config: Any) -> httpx.Client:
    """The pooled sync client for this config's base URL and key."""
    return POOL.sync(endpoint(config))


async def async_client(config: Any) -> httpx.AsyncClient:
    """The pooled async client for this config's base URL and key, on the running loop."""
    return await POOL.async_(endpoint(config))


# --8<-- [end:pool]


def close_clients() -> None:
    """Close every pooled client (also done at interpreter exit)."""
    POOL.close()


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
