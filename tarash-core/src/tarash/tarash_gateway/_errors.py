"""Turn whatever a plugin raised into a typed Tarash exception, with phase and provenance."""

from __future__ import annotations

import builtins
from typing import Any

from ._redact import redact_text
from .exceptions import (
    GenerationFailedError,
    HTTPConnectionError,
    HTTPError,
    Phase,
    TarashException,
    TimeoutError,
)

__all__ = [
    "from_httpx",
    "normalize",
    "parse_retry_after",
    "scrub_chain",
]


def parse_retry_after(value: Any) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        from datetime import datetime, timezone
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if seconds != seconds or seconds < 0:
        return 0.0
    return min(seconds, 3600.0)


def from_httpx(exc: BaseException, **where: Any) -> TarashException | None:
    """Map an httpx exception, or None if ``exc`` is not one."""
    if not type(exc).__module__.startswith("httpx"):
        return None
    import httpx

    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, httpx.HTTPStatusError):
        response = exc.response
        return HTTPError(
            f"HTTP {response.status_code} from provider",
            status_code=response.status_code,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            raw_response=_body(response),
            **where,
        )
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol)):
        return HTTPConnectionError(text, request_sent=False, **where)
    if isinstance(exc, httpx.PoolTimeout):
        return HTTPConnectionError(text, request_sent=False, **where)
    if isinstance(exc, httpx.TransportError):
        return HTTPConnectionError(text, request_sent=True, **where)
    return None


def _body(response: Any) -> Any:
    try:
        return response.json()
    except Exception:
        try:
            return response.text
        except Exception:
            return None


def normalize(
    exc: BaseException, *, phase: Phase, provider: str, model: str, request_id: str | None = None
) -> TarashException:
    """A typed TarashException for ``exc`` with phase/provider/model filled in.

    Known secrets are scrubbed from the arguments of ``exc`` and of the exceptions chained to it,
    since they stay reachable (and printed in tracebacks) as the typed error's ``__cause__``.
    """
    scrub_chain(exc)
    if isinstance(exc, TarashException):
        exc.phase = exc.phase or phase
        exc.provider = exc.provider or provider
        exc.model = exc.model or model
        exc.request_id = exc.request_id or request_id
        return exc
    where: dict[str, Any] = {"phase": phase, "provider": provider, "model": model, "request_id": request_id}
    mapped = from_httpx(exc, **where)
    if mapped is not None:
        mapped.__cause__ = exc
        return mapped
    if isinstance(exc, builtins.TimeoutError):
        err: TarashException = TimeoutError(f"{provider} timed out in {phase}", **where)
    elif isinstance(exc, ConnectionError):
        err = HTTPConnectionError(
            f"{type(exc).__name__}: {exc}",
            request_sent=not isinstance(exc, ConnectionRefusedError),
            **where,
        )
    else:
        err = GenerationFailedError(
            f"{provider} plugin raised {type(exc).__name__} during {phase}: {exc}",
            retryable=False,
            **where,
        )
    err.__cause__ = exc
    return err


def scrub_chain(exc: BaseException) -> None:
    """Scrub secrets from the string arguments of ``exc`` and its ``__cause__``/``__context__``,
    and drop the provider's whole answer from every ``HTTPError`` among them (a plugin that
    translates one chains it: its ``response`` holds the body, headers and URL unredacted)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.args = tuple(redact_text(a) if isinstance(a, str) else a for a in current.args)
        if isinstance(current, HTTPError):
            current.response = None
        pending.extend((current.__cause__, current.__context__))
