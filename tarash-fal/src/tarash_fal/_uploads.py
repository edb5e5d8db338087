"""Local inputs to fal: small ones inline as data URIs, the rest uploaded to fal's CDN first.

Core reads a local input (path, bytes, binary file) into ``MediaContent`` when the request is
built; the payload carries it as a ``data:`` URI. Before the submit, :func:`upload_inputs` walks
the payload: a data URI whose bytes exceed ``inline_max_bytes`` (:data:`INLINE_MAX_BYTES` unless
``provider_config["inline_max_bytes"]`` says otherwise; 0 uploads every one) is uploaded and
replaced by its CDN URL. The requests follow fal-client 1.0.3's storage protocol (``client.py``):

* ``POST {storage_url}/storage/auth/token?storage_type=fal-cdn-v3`` with ``{}`` and the fal key
  answers ``{token, token_type, base_url, expires_at}`` (one per submit that uploads);
* ``POST {base_url}/files/upload`` with the raw bytes, ``Authorization: {token_type} {token}``,
  ``Content-Type`` and ``X-Fal-File-Name`` answers ``{access_url}``. With
  ``provider_config["upload_lifecycle"]`` (``"never"``, ``"immediate"``, ``"1h"``, ``"1d"``,
  ``"7d"``, ``"30d"``, ``"1y"`` or seconds) the lifecycle JSON
  ``{"expiration_duration_seconds": N}`` goes in ``X-Fal-Object-Lifecycle`` and
  ``X-Fal-Object-Lifecycle-Preference``, as fal-client sends it.

Inputs are at most 100 MiB (core's cap), fal's single-request limit, so multipart is never needed.
Both requests are marked idempotent (they create nothing billed): a lost answer is not a possibly
sent submit. Any failure raises :class:`InputUploadError` before the submit is sent. Each finished
upload is remembered in-process (:data:`UPLOADS`, by storage root, content hash, type and
lifecycle) for half its lifetime, at most a day: a submit core sends again (a 429, a connection
that never carried it) or a fallback to another fal model reuses the URL instead of uploading again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import mimetypes
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes, urlsplit

import attrs

from tarash.tarash_gateway.exceptions import (
    HTTPConnectionError,
    HTTPError,
    InputUploadError,
    ValidationError,
)
from tarash.tarash_gateway.plugin import Request

if TYPE_CHECKING:
    from tarash.tarash_gateway.plugin import Flow, Response

__all__ = [
    "INLINE_MAX_BYTES",
    "LIFECYCLES",
    "STORAGE_URL",
    "UPLOADS",
    "UploadCache",
    "UploadOptions",
    "upload_inputs",
    "upload_options",
]

#: Inputs up to this many bytes go inline as data URIs (256 KiB: a thumbnail or a mask; about
#: 342 KiB of base64 in the submit body); larger ones are uploaded.
INLINE_MAX_BYTES = 256 * 1024
STORAGE_URL = "https://rest.fal.ai"
TOKEN_PATH = "/storage/auth/token"
#: fal-client's named lifetimes, in seconds (None: fal's default retention, no header sent).
LIFECYCLES: Mapping[str, int | None] = {
    "never": None,
    "immediate": 60,
    "1h": 3600,
    "1d": 86400,
    "7d": 604800,
    "30d": 2592000,
    "1y": 31536000,
}
#: How long an uploaded URL is reused: half its lifetime, at most this.
MAX_REUSE_SECONDS = 86400.0
_PROVIDER = "fal"


@attrs.frozen
class UploadOptions:
    """The upload settings of one call (from ``provider_config``)."""

    storage_url: str = STORAGE_URL
    inline_max_bytes: int = INLINE_MAX_BYTES
    lifecycle_seconds: int | None = None


def _lifecycle(value: Any) -> int | None:
    if isinstance(value, str) and value in LIFECYCLES:
        return LIFECYCLES[value]
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise ValidationError(
        f"provider_config.upload_lifecycle must be one of {', '.join(LIFECYCLES)} or seconds > 0, "
        f"got {value!r}",
        field="provider_config.upload_lifecycle",
        value=value,
        allowed=tuple(LIFECYCLES),
        provider=_PROVIDER,
    )


def upload_options(provider_config: Mapping[str, Any]) -> UploadOptions:
    """The checked upload settings (ValidationError before anything is sent)."""
    limit = provider_config.get("inline_max_bytes", INLINE_MAX_BYTES)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise ValidationError(
            f"provider_config.inline_max_bytes must be an integer >= 0, got {limit!r}",
            field="provider_config.inline_max_bytes",
            value=limit,
            provider=_PROVIDER,
        )
    root = provider_config.get("storage_url", STORAGE_URL)
    parts = urlsplit(root) if isinstance(root, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            f"provider_config.storage_url must be an http(s) URL, got {root!r}",
            field="provider_config.storage_url",
            value=root,
            provider=_PROVIDER,
        )
    given = provider_config.get("upload_lifecycle")
    return UploadOptions(
        storage_url=root.rstrip("/"),
        inline_max_bytes=limit,
        lifecycle_seconds=None if given is None else _lifecycle(given),
    )


class UploadCache:
    """Finished uploads: (storage root, sha256, type, lifecycle) -> (URL, reuse until), bounded."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[Any, ...], tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[1] <= time.monotonic():
                self._entries.pop(key, None)
                return None
            return entry[0]

    def put(self, key: tuple[Any, ...], url: str, lifecycle_seconds: int | None) -> None:
        reuse = MAX_REUSE_SECONDS if lifecycle_seconds is None else lifecycle_seconds / 2
        with self._lock:
            self._entries[key] = (url, time.monotonic() + min(reuse, MAX_REUSE_SECONDS))
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


#: The process's upload cache.
UPLOADS = UploadCache()


@attrs.frozen
class _Input:
    path: str
    content_type: str
    data: bytes
    digest: str = attrs.field(init=False)

    @digest.default
    def _sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _decode(uri: str, path: str) -> _Input:
    head, comma, body = uri.partition(",")
    if not comma:
        raise ValidationError(f"{path} is not a data URI (no comma)", field=path, provider=_PROVIDER)
    meta = head[5:].split(";")
    content_type = meta[0] or "text/plain"
    try:
        data = base64.b64decode(body, validate=True) if "base64" in meta[1:] else unquote_to_bytes(body)
    except (binascii.Error, ValueError):
        raise ValidationError(
            f"{path} is a data URI whose base64 content is invalid", field=path, provider=_PROVIDER
        ) from None
    return _Input(path=path, content_type=content_type, data=data)


def _large_inputs(value: Any, path: str, limit: int, found: list[_Input]) -> None:
    if isinstance(value, str):
        # Base64 needs 4 characters per 3 bytes: a shorter URI cannot hold more than ``limit``.
        if value[:5].lower() == "data:" and len(value) > limit * 4 // 3:
            item = _decode(value, path)
            if len(item.data) > limit:
                found.append(item)
    elif isinstance(value, Mapping):
        for key, entry in value.items():
            _large_inputs(entry, f"{path}.{key}" if path else str(key), limit, found)
    elif isinstance(value, list):
        for index, entry in enumerate(value):
            _large_inputs(entry, f"{path}[{index}]", limit, found)


def _replace(value: Any, path: str, urls: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return urls.get(path, value)
    if isinstance(value, Mapping):
        return {k: _replace(v, f"{path}.{k}" if path else str(k), urls) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, f"{path}[{i}]", urls) for i, v in enumerate(value)]
    return value


def _failed(what: str, exc: Exception) -> InputUploadError:
    detail = exc.message if isinstance(exc, (HTTPError, HTTPConnectionError)) else str(exc)
    return InputUploadError(
        f"fal upload failed ({what}): {detail}; nothing was submitted",
        provider=_PROVIDER,
        phase="submit",
        raw_response=getattr(exc, "raw_response", None),
        retryable=getattr(exc, "retryable", False),
    )


def _answer(response: Response, key: str, what: str) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise InputUploadError(
            f"fal upload failed ({what}): the answer has no {key!r}; nothing was submitted",
            provider=_PROVIDER,
            phase="submit",
            raw_response=body,
        )
    return body


def _token(options: UploadOptions) -> Flow[tuple[str, str]]:
    """A storage token: (Authorization header value, upload base URL)."""
    try:
        response = yield Request(
            method="POST",
            url=f"{options.storage_url}{TOKEN_PATH}",
            params={"storage_type": "fal-cdn-v3"},
            json={},
            idempotent=True,
        )
    except (HTTPError, HTTPConnectionError) as exc:
        raise _failed("storage token", exc) from None
    body = _answer(response, "token", "storage token")
    base = body.get("base_url")
    if not isinstance(base, str) or urlsplit(base).scheme not in ("http", "https"):
        raise InputUploadError(
            "fal upload failed (storage token): the answer has no base_url; nothing was submitted",
            provider=_PROVIDER,
            phase="submit",
        )
    return f"{body.get('token_type') or 'Bearer'} {body['token']}", base.rstrip("/")


def _headers(item: _Input, options: UploadOptions) -> dict[str, str]:
    extension = mimetypes.guess_extension(item.content_type) or ".bin"
    headers = {"Content-Type": item.content_type, "X-Fal-File-Name": f"input-{item.digest[:16]}{extension}"}
    if options.lifecycle_seconds is not None:
        lifecycle = json.dumps({"expiration_duration_seconds": options.lifecycle_seconds})
        headers["X-Fal-Object-Lifecycle"] = lifecycle
        headers["X-Fal-Object-Lifecycle-Preference"] = lifecycle
    return headers


def upload_inputs(body: dict[str, Any], options: UploadOptions) -> Flow[dict[str, Any]]:
    """``body`` with every data URI above the inline limit replaced by its CDN URL (0 requests
    when there is none, or when every one was uploaded already)."""
    found: list[_Input] = []
    _large_inputs(body, "", options.inline_max_bytes, found)
    if not found:
        return body
    urls: dict[str, str] = {}
    pending: dict[tuple[Any, ...], list[_Input]] = {}
    for item in found:
        key = (options.storage_url, item.digest, item.content_type, options.lifecycle_seconds)
        cached = UPLOADS.get(key)
        if cached is not None:
            urls[item.path] = cached
        else:
            pending.setdefault(key, []).append(item)
    if pending:
        authorization, base = yield from _token(options)
        for key, items in pending.items():
            first = items[0]
            try:
                response = yield Request(
                    method="POST",
                    url=f"{base}/files/upload",
                    headers={**_headers(first, options), "Authorization": authorization},
                    content=first.data,
                    auth=False,
                    idempotent=True,
                )
            except (HTTPError, HTTPConnectionError) as exc:
                raise _failed(first.path, exc) from None
            url = _answer(response, "access_url", first.path)["access_url"]
            UPLOADS.put(key, url, options.lifecycle_seconds)
            urls.update((item.path, url) for item in items)
    replaced: dict[str, Any] = _replace(body, "", urls)
    return replaced
