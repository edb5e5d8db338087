"""The records of the provider contract's wire: a :class:`Request` a plugin describes, the
:class:`Response` core hands back, and the :data:`Flow` generator type that joins them.

A plugin never sends anything itself. Each lifecycle hook returns a generator that *yields*
``Request`` records and *receives* ``Response`` records; core sends each request with its own pooled
sync or async httpx client (the API root, the auth header, the deadline and the mapping of every
transport failure are core's), so one generator serves the sync and the async API alike, the way
``httpx.Auth.auth_flow`` serves ``Client`` and ``AsyncClient``.

Loaded on first use (a generation, or an entry module importing these names at run time), never by
provider discovery.
"""

from __future__ import annotations

import json as _json
from collections.abc import Generator, Mapping, Sequence
from typing import Any, TypeVar

import attrs

__all__ = ["Flow", "Request", "Response"]

T = TypeVar("T")


def _mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value or {})


@attrs.frozen(kw_only=True)
class Request:
    """One HTTP request a plugin asks core to send.

    Attributes:
        method: ``"GET"``, ``"POST"``, ...
        url: a path below the API root in effect (``config.base_url``, else
            ``ProviderSpec.base_url``), e.g. ``"/v1/jobs"``; or an absolute URL the provider
            handed out (a status link). Paths are joined to the root, keeping its own path.
        params: query parameters.
        headers: extra headers. Never put a credential here: core adds the provider's auth header
            itself (see ``auth``) and refuses to send a request that carries the key anywhere else.
        json: a JSON body (any JSON-serialisable value), or ``None`` for none.
        content: a raw body (bytes), for uploads; exclusive with ``json`` and ``files``.
        files: multipart file parts, ``{name: (filename, bytes, content_type)}`` or a sequence of
            ``(name, (filename, bytes, content_type))`` pairs (a name may repeat); ``data`` holds
            the multipart form fields that go with them.
        data: multipart form fields (only with ``files``).
        auth: add the provider's auth header (``ProviderSpec.auth_header`` /
            ``auth_scheme``) with the key core resolved. ``False`` for pre-signed or public URLs.
        idempotent: the request creates nothing that is billed (an input upload, a schema read),
            so in a submit its lost answer is retried like one never sent, and it does not make the
            submit "possibly sent". Defaults to True for GET, HEAD and OPTIONS, else False.
        timeout: at most this many seconds for this request (a lookup that must not eat the
            generation's deadline); when they pass first, the flow receives ``HTTPConnectionError``
            (``request_sent`` unless idempotent). ``None``: the time left of the deadline.
    """

    method: str
    url: str
    params: Mapping[str, Any] = attrs.field(factory=dict, converter=_mapping)
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)
    json: Any = None
    content: bytes | None = None
    files: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None
    data: Mapping[str, Any] | None = None
    auth: bool = True
    idempotent: bool = attrs.field()
    timeout: float | None = None

    @idempotent.default
    def _safe_method(self) -> bool:
        return self.method.upper() in ("GET", "HEAD", "OPTIONS")

    def __attrs_post_init__(self) -> None:
        bodies = [name for name in ("json", "content", "files") if getattr(self, name) is not None]
        if len(bodies) > 1:
            raise TypeError(f"Request takes one body, got {' and '.join(bodies)}")
        if self.data is not None and self.files is None:
            raise TypeError("Request.data goes with files (multipart); use json= for a JSON body")


@attrs.frozen(kw_only=True)
class Response:
    """A provider's answer to a :class:`Request`, read in full (size-capped) by core.

    Core hands a 2xx or 3xx response back to the flow at its ``yield``. Any other status is
    *thrown* into the flow at the same point as an
    :class:`~tarash.tarash_gateway.exceptions.HTTPError` (``status_code``, ``retry_after``,
    ``raw_response``, and this record as ``response``), so the flow may translate a provider's
    error body and let everything else pass.
    """

    status_code: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    content: bytes = attrs.field(repr=False)
    url: str = ""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` if it is not JSON)."""
        return _json.loads(self.content)

    def header(self, name: str) -> str | None:
        """A header's value, case-insensitively (``None`` when absent)."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


#: What a lifecycle hook returns: a generator yielding requests, receiving responses, returning ``T``.
Flow = Generator[Request, Response, T]
