"""The parts of fal's platform :class:`~tarash_fal.testing.FakeFalServer` fakes besides the queue.

* ``GET /.well-known/jwks.json``: the key set (one ED25519 key) the fake signs webhooks with
  (fal: ``rest.fal.ai``). No key needed.
* Signed webhook deliveries: a job submitted with ``?fal_webhook=URL`` is delivered to ``URL``
  when it completes (:meth:`_Platform.complete`, or ``webhook_delay`` seconds after its submit),
  signed as fal signs (``X-Fal-Webhook-*`` headers), retried on a non-2xx answer or a failed
  connection, and duplicated on demand.
* ``GET /api/openapi/queue/openapi.json?endpoint_id=ID``: the model's OpenAPI document, as
  registered with :meth:`_Platform.add_openapi` (fal: ``fal.ai``). No key needed.
* ``GET /v1/models/requests/by-endpoint`` (fal: ``api.fal.ai``; ``Authorization: Key``): the
  finished requests of ``endpoint_id`` (required) whose end lies in ``start`` (default: 24 hours
  ago) .. ``end`` (default: now), latest end first, ``limit`` (1-100, default 50) a page, ``cursor``
  (the page number, base64), ``expand=payloads`` adding ``json_input``/``json_output``:
  ``{items: [{request_id, endpoint_id, sent_at, started_at, ended_at, status_code, duration}],
  next_cursor, has_more}``. A request still queued or running is not listed.
* Storage as fal-client 1.0.3 uses it: ``POST /storage/auth/token?storage_type=fal-cdn-v3``
  (``Authorization: Key``) answers ``{token, token_type, base_url, expires_at}``; with
  ``Authorization: <token_type> <token>``, ``POST /files/upload`` (raw bytes,
  ``X-Fal-File-Name``) answers ``{access_url}``, and the multipart upload is
  ``POST /files/upload/multipart`` -> ``{access_url, uploadId}``,
  ``PUT <access_url>/multipart/<uploadId>/<n>`` -> ``ETag``,
  ``POST <access_url>/multipart/<uploadId>/complete {"parts": [{partNumber, etag}]}``. Uploaded
  files are served at their ``access_url`` (``GET``, no key) until :meth:`_Platform.expire`.
* ``GET /v1/models/pricing`` and ``GET /v1/models/billing-events`` (see ``_fake_billing``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import attrs

from ._fake_billing import BILLING_EVENTS_PATH, PRICING_PATH, _Billing

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

JWKS_PATH = "/.well-known/jwks.json"
OPENAPI_PATH = "/api/openapi/queue/openapi.json"
TOKEN_PATH = "/storage/auth/token"
REQUESTS_PATH = "/v1/models/requests/by-endpoint"
FILES_PREFIX = "/files/"
USER_ID = "fake-fal-user"
KEY_ID = "fake-fal-webhook-key"

#: ``(url, headers, body) -> HTTP status`` (raise ``OSError`` for a failed connection).
WebhookSender = Callable[[str, Mapping[str, str], bytes], int]
PLATFORM_KINDS = (
    "jwks",
    "openapi",
    "requests",
    "token",
    "upload",
    "upload_part",
    "upload_complete",
    "file",
)


@attrs.frozen
class Answer:
    """What a platform route answers (status, JSON-able or bytes body, headers)."""

    status: int
    body: Any
    headers: Mapping[str, str] = attrs.field(factory=dict)


def openapi_document(
    endpoint_id: str,
    properties: Mapping[str, Any],
    *,
    required: tuple[str, ...] = ("prompt",),
    category: str = "text-to-video",
    schemas: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A fal-shaped per-model OpenAPI document (the shape ``fal.ai/api/openapi/queue/openapi.json``
    publishes: ``info.x-fal-metadata``, ``<Name>Input``/``<Name>Output`` in
    ``components.schemas``, the queue paths)."""
    name = "".join(part.capitalize() for part in endpoint_id.replace(".", "-").replace("/", "-").split("-"))
    components: dict[str, Any] = {
        "QueueStatus": {
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]},
                "request_id": {"type": "string"},
            },
            "required": ["status", "request_id"],
        },
        f"{name}Input": {
            "title": f"{name}Input",
            "type": "object",
            "properties": dict(properties),
            "required": list(required),
            "x-fal-order-properties": list(properties),
        },
        f"{name}Output": {
            "type": "object",
            "properties": {"video": {"$ref": "#/components/schemas/File"}},
            "required": ["video"],
        },
        "File": {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]},
        **dict(schemas or {}),
    }
    ref = {"$ref": f"#/components/schemas/{name}Input"}
    return {
        "openapi": "3.0.4",
        "info": {
            "title": "Queue OpenAPI for " + endpoint_id,
            "version": "1.0.0",
            "x-fal-metadata": {
                "endpointId": endpoint_id,
                "category": category,
                "thumbnailUrl": "https://fal.media/fake.png",
                "playgroundUrl": f"https://fal.ai/models/{endpoint_id}",
                "documentationUrl": f"https://fal.ai/models/{endpoint_id}/api",
            },
        },
        "components": {"schemas": components},
        "paths": {
            f"/{endpoint_id}": {
                "post": {
                    "requestBody": {"required": True, "content": {"application/json": {"schema": ref}}},
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/QueueStatus"}}
                            }
                        }
                    },
                }
            }
        },
        "servers": [{"url": "https://queue.fal.run"}],
    }


def _post(url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> int:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@attrs.define
class _Upload:
    access_url: str
    file_name: str
    content_type: str
    lifecycle: Any
    parts: dict[int, bytes] = attrs.field(factory=dict)


class _Platform(_Billing):
    """JWKS, webhooks, OpenAPI, storage, prices and billing events for
    :class:`~tarash_fal.testing.FakeFalServer`."""

    base_url: str
    api_key: str
    _lock: threading.Lock

    def _init_platform(
        self,
        *,
        webhook_delay: float | None,
        webhook_retries: int,
        webhook_retry_interval: float,
        webhook_timeout: float,
        token_ttl: float,
        admin_key: str,
    ) -> None:
        self._init_billing(admin_key)
        self.webhook_delay = webhook_delay
        self.webhook_retries = webhook_retries
        self.webhook_retry_interval = webhook_retry_interval
        self.webhook_timeout = webhook_timeout
        self.token_ttl = token_ttl
        self.webhook_sender: WebhookSender | None = None
        self._signing_key: Ed25519PrivateKey | None = None
        self._platform_counts = dict.fromkeys(PLATFORM_KINDS, 0)
        self._openapi: dict[str, Any] = {}
        self._tokens: dict[str, datetime] = {}
        self._files: dict[str, tuple[bytes, str]] = {}
        self._uploads: list[dict[str, Any]] = []
        self._multipart: dict[str, _Upload] = {}
        self._deliveries: list[dict[str, Any]] = []
        self._duplicates_next = 0
        self._timers: set[threading.Timer] = set()
        self._delivering: set[threading.Thread] = set()

    # -- observation and control -------------------------------------------------------------

    @property
    def platform_counts(self) -> dict[str, int]:
        """Requests received per platform route (see ``PLATFORM_KINDS``): a copy."""
        with self._lock:
            return dict(self._platform_counts)

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}{JWKS_PATH}"

    @property
    def jwks(self) -> dict[str, Any]:
        """The key set served at :attr:`jwks_url`: the public half of the webhook signing key."""
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        raw = self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return {
            "keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": KEY_ID, "use": "sig", "alg": "EdDSA"}]
        }

    @property
    def signing_key(self) -> Ed25519PrivateKey:
        """The ED25519 key webhook deliveries are signed with (made on first use)."""
        with self._lock:
            if self._signing_key is None:
                try:
                    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
                except ModuleNotFoundError:
                    raise ModuleNotFoundError(
                        "The fake's webhooks need cryptography: pip install 'tarash-fal[testing]'"
                    ) from None
                self._signing_key = Ed25519PrivateKey.generate()
            return self._signing_key

    def add_openapi(self, endpoint_id: str, document: Mapping[str, Any]) -> None:
        """Serve ``document`` as the OpenAPI of ``endpoint_id``."""
        with self._lock:
            self._openapi[endpoint_id] = dict(document)

    @property
    def uploads(self) -> list[dict[str, Any]]:
        """Every finished upload: ``access_url``, ``file_name``, ``content_type``, ``size``,
        ``lifecycle`` (the parsed ``X-Fal-Object-Lifecycle`` header or None), ``multipart``."""
        with self._lock:
            return [dict(u) for u in self._uploads]

    def file(self, access_url: str) -> bytes | None:
        """The bytes stored at ``access_url`` (None if never uploaded or expired)."""
        with self._lock:
            stored = self._files.get(_path(access_url))
        return None if stored is None else stored[0]

    def put_file(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Store a file as if fal had produced it; returns its URL on this server."""
        url = f"{self.base_url}{FILES_PREFIX}fake/{uuid.uuid4().hex}_{name}"
        with self._lock:
            self._files[_path(url)] = (data, content_type)
        return url

    def expire(self, access_url: str) -> None:
        """Delete a stored file, as fal does when its lifetime ends (then ``GET`` answers 404)."""
        with self._lock:
            self._files.pop(_path(access_url), None)

    @property
    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """Every delivery attempt: ``request_id``, ``url``, ``attempt`` (1 = first try),
        ``duplicate``, ``status`` (None when the connection failed), ``headers``, ``body``."""
        with self._lock:
            return [dict(d) for d in self._deliveries]

    @property
    def webhook_counts(self) -> dict[str, int]:
        """``attempts``, ``delivered`` (2xx), ``failed`` (other answers and failed connections),
        ``retries`` and ``duplicates`` sent so far."""
        with self._lock:
            attempts = list(self._deliveries)
        ok = [d for d in attempts if d["status"] is not None and 200 <= d["status"] < 300]
        return {
            "attempts": len(attempts),
            "delivered": len(ok),
            "failed": len(attempts) - len(ok),
            "retries": sum(1 for d in attempts if d["attempt"] > 1),
            "duplicates": sum(1 for d in attempts if d["duplicate"]),
        }

    def duplicate_webhooks(self, times: int = 1) -> None:
        """Send the next delivered webhook ``times`` more times after it was accepted."""
        with self._lock:
            self._duplicates_next += times

    def wait_webhooks(self, timeout: float = 10.0) -> None:
        """Wait until every scheduled and running delivery has ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                busy = [t for t in (*self._timers, *self._delivering) if t.is_alive()]
            if not busy:
                return
            busy[0].join(max(deadline - time.monotonic(), 0))
        raise TimeoutError("webhook deliveries still running")

    # -- jobs and webhooks -------------------------------------------------------------------

    def _job_completed(self, request_id: str) -> tuple[str | None, dict[str, Any]]:
        raise NotImplementedError

    def _finished_requests(self, endpoint_id: str, payloads: bool) -> list[dict[str, Any]]:
        """The finished requests of ``endpoint_id`` as the platform API lists them (``ended_at``
        a datetime)."""
        raise NotImplementedError

    def complete(
        self, request_id: str, *, error: str | None = None, detail: Any = None
    ) -> list[dict[str, Any]]:
        """Finish a job now (status answers ``COMPLETED`` from then on) and, if it was submitted
        with a webhook URL, deliver the signed webhook (with retries); returns the attempts made.

        ``error`` delivers fal's error envelope instead (``"status": "ERROR"``, ``error``,
        ``payload.detail`` = ``detail``).
        """
        url, result = self._job_completed(request_id)
        if url is None:
            return []
        if error is None:
            envelope = {
                "request_id": request_id,
                "gateway_request_id": request_id,
                "status": "OK",
                "payload": result,
            }
        else:
            envelope = {
                "request_id": request_id,
                "gateway_request_id": request_id,
                "status": "ERROR",
                "error": error,
                "payload": {"detail": detail if detail is not None else []},
            }
        return self.deliver(request_id, url, json.dumps(envelope).encode())

    def signed_headers(self, request_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """fal's webhook headers for ``body``, signed with :attr:`signing_key`."""
        sent_at = str(int(time.time()) if timestamp is None else timestamp)
        message = "\n".join((request_id, USER_ID, sent_at, hashlib.sha256(body).hexdigest())).encode()
        return {
            "Content-Type": "application/json",
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": USER_ID,
            "X-Fal-Webhook-Timestamp": sent_at,
            "X-Fal-Webhook-Signature": self.signing_key.sign(message).hex(),
        }

    def deliver(self, request_id: str, url: str, body: bytes) -> list[dict[str, Any]]:
        """POST ``body`` signed to ``url``: retried up to ``webhook_retries`` times
        ``webhook_retry_interval`` apart until answered 2xx, then duplicated as asked."""
        made: list[dict[str, Any]] = []
        for attempt in range(1, self.webhook_retries + 2):
            made.append(self._attempt(request_id, url, body, attempt=attempt, duplicate=False))
            status = made[-1]["status"]
            if status is not None and 200 <= status < 300:
                break
            if attempt <= self.webhook_retries:
                time.sleep(self.webhook_retry_interval)
        else:
            return made
        with self._lock:
            extra, self._duplicates_next = self._duplicates_next, 0
        made.extend(self._attempt(request_id, url, body, attempt=1, duplicate=True) for _ in range(extra))
        return made

    def _attempt(
        self, request_id: str, url: str, body: bytes, *, attempt: int, duplicate: bool
    ) -> dict[str, Any]:
        headers = self.signed_headers(request_id, body)
        sender = self.webhook_sender or (lambda u, h, b: _post(u, h, b, self.webhook_timeout))
        status: int | None
        try:
            status = sender(url, headers, body)
        except OSError:
            status = None
        record = {
            "request_id": request_id,
            "url": url,
            "attempt": attempt,
            "duplicate": duplicate,
            "status": status,
            "headers": headers,
            "body": body,
        }
        with self._lock:
            self._deliveries.append(record)
        return dict(record)

    def _schedule_webhook(self, request_id: str) -> None:
        """Called at a submit carrying ``fal_webhook``: complete and deliver after the delay."""
        if self.webhook_delay is None:
            return

        def fire() -> None:
            with self._lock:
                self._timers.discard(timer)
                self._delivering.add(threading.current_thread())
            try:
                self.complete(request_id)
            finally:
                with self._lock:
                    self._delivering.discard(threading.current_thread())

        timer = threading.Timer(self.webhook_delay, fire)
        timer.daemon = True
        with self._lock:
            self._timers.add(timer)
        timer.start()

    def _stop_platform(self) -> None:
        with self._lock:
            timers = list(self._timers)
        for timer in timers:
            timer.cancel()

    # -- routes ------------------------------------------------------------------------------

    def _platform_route(
        self, method: str, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str], body: bytes
    ) -> Answer | None:
        """The answer of a platform route, or None when ``path`` is a queue route."""
        if path == JWKS_PATH and method == "GET":
            self._count("jwks")
            return Answer(200, self.jwks)
        if path == OPENAPI_PATH and method == "GET":
            self._count("openapi")
            endpoint = query.get("endpoint_id", [""])[-1]
            with self._lock:
                document = self._openapi.get(endpoint)
            if document is None:
                return Answer(404, {"detail": f"Endpoint {endpoint!r} not found"})
            return Answer(200, document)
        if path == REQUESTS_PATH and method == "GET":
            return self._requests(query, headers)
        if path in (PRICING_PATH, BILLING_EVENTS_PATH):
            return self._billing_route(method, path, query, headers)
        if path == TOKEN_PATH:
            return self._token(method, query, headers)
        if path.startswith(FILES_PREFIX):
            return self._files_route(method, path, headers, body)
        return None

    def _count(self, kind: str) -> None:
        with self._lock:
            self._platform_counts[kind] += 1

    def _requests(self, query: Mapping[str, list[str]], headers: Mapping[str, str]) -> Answer:
        self._count("requests")
        if headers.get("authorization") != f"Key {self.api_key}":
            return Answer(401, {"error": {"type": "authorization_error", "message": "Invalid API key"}})

        def invalid(message: str) -> Answer:
            return Answer(422, {"error": {"type": "validation_error", "message": message}})

        endpoint = query.get("endpoint_id", [""])[-1]
        if not endpoint:
            return invalid("endpoint_id is required")
        now = datetime.now(timezone.utc)
        try:
            start = _moment(query["start"][-1]) if "start" in query else now - timedelta(days=1)
            end = _moment(query["end"][-1]) if "end" in query else now
            limit = int(query.get("limit", ["50"])[-1])
            page = int(base64.b64decode(query.get("cursor", ["MQ=="])[-1]).decode())
        except ValueError:
            return invalid("start, end, limit or cursor is malformed")
        if not 1 <= limit <= 100 or page < 1:
            return invalid("limit must be 1-100 and cursor a page")
        payloads = "payloads" in query.get("expand", [])
        chosen = [r for r in self._finished_requests(endpoint, payloads) if start <= r["ended_at"] < end]
        chosen.sort(key=lambda r: r["ended_at"], reverse=True)
        items = [
            {**r, "ended_at": r["ended_at"].isoformat().replace("+00:00", "Z")}
            for r in chosen[(page - 1) * limit : page * limit]
        ]
        more = page * limit < len(chosen)
        cursor = base64.b64encode(str(page + 1).encode()).decode() if more else None
        return Answer(200, {"items": items, "next_cursor": cursor, "has_more": more})

    def _token(self, method: str, query: Mapping[str, list[str]], headers: Mapping[str, str]) -> Answer:
        self._count("token")
        if method != "POST":
            return Answer(405, {"detail": "Method Not Allowed"})
        if headers.get("authorization") != f"Key {self.api_key}":
            return Answer(401, {"detail": "Authentication is required"})
        if query.get("storage_type", [""])[-1] != "fal-cdn-v3":
            return Answer(400, {"detail": "Unsupported storage_type"})
        token = uuid.uuid4().hex
        expires = datetime.now(timezone.utc) + timedelta(seconds=self.token_ttl)
        with self._lock:
            self._tokens[token] = expires
        return Answer(
            200,
            {
                "token": token,
                "token_type": "Bearer",
                "base_url": self.base_url,
                "expires_at": expires.isoformat(),
            },
        )

    def _authorised(self, headers: Mapping[str, str]) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        with self._lock:
            expires = self._tokens.get(token)
        return scheme == "Bearer" and expires is not None and datetime.now(timezone.utc) < expires

    def _files_route(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        if method == "GET":
            self._count("file")
            with self._lock:
                stored = self._files.get(path)
            if stored is None:
                return Answer(404, {"detail": "File not found"})
            return Answer(200, stored[0], {"Content-Type": stored[1]})
        kind = {"/files/upload": "upload", "/files/upload/multipart": "upload"}.get(path)
        parts = path.split("/multipart/")
        if kind is None and len(parts) == 2:
            kind = "upload_complete" if parts[1].endswith("/complete") else "upload_part"
        self._count(kind or "upload")
        if not self._authorised(headers):
            return Answer(401, {"detail": "Invalid or expired token"})
        if kind == "upload" and method == "POST":
            return self._start_upload(path, headers, body)
        if kind == "upload_part" and method == "PUT":
            return self._upload_part(parts[0], parts[1], body)
        if kind == "upload_complete" and method == "POST":
            return self._complete_upload(parts[0], parts[1].removesuffix("/complete"), body)
        return Answer(404, {"detail": "Not Found"})

    def _start_upload(self, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        name = headers.get("x-fal-file-name") or "file"
        lifecycle_header = headers.get("x-fal-object-lifecycle")
        upload = _Upload(
            access_url=f"{self.base_url}{FILES_PREFIX}fake/{uuid.uuid4().hex}_{name}",
            file_name=name,
            content_type=headers.get("content-type", "application/octet-stream"),
            lifecycle=json.loads(lifecycle_header) if lifecycle_header else None,
        )
        if path.endswith("/multipart"):
            upload_id = uuid.uuid4().hex
            with self._lock:
                self._multipart[upload_id] = upload
            return Answer(200, {"access_url": upload.access_url, "uploadId": upload_id})
        self._store(upload, body, multipart=False)
        return Answer(200, {"access_url": upload.access_url})

    def _upload_part(self, file_path: str, rest: str, body: bytes) -> Answer:
        upload_id, _, number = rest.partition("/")
        with self._lock:
            upload = self._multipart.get(upload_id)
        if upload is None or _path(upload.access_url) != file_path or not number.isdigit():
            return Answer(404, {"detail": "Upload not found"})
        with self._lock:
            upload.parts[int(number)] = body
        return Answer(200, b"", {"ETag": f'"{hashlib.md5(body).hexdigest()}"'})

    def _complete_upload(self, file_path: str, upload_id: str, body: bytes) -> Answer:
        with self._lock:
            upload = self._multipart.get(upload_id)
        if upload is None or _path(upload.access_url) != file_path:
            return Answer(404, {"detail": "Upload not found"})
        listed = json.loads(body or b"{}").get("parts", [])
        numbers = sorted(upload.parts)
        expected = [
            {"partNumber": n, "etag": f'"{hashlib.md5(upload.parts[n]).hexdigest()}"'} for n in numbers
        ]
        if sorted(listed, key=lambda p: p.get("partNumber", 0)) != expected:
            return Answer(400, {"detail": "Parts do not match the uploaded parts"})
        with self._lock:
            self._multipart.pop(upload_id, None)
        self._store(upload, b"".join(upload.parts[n] for n in numbers), multipart=True)
        return Answer(200, {"access_url": upload.access_url})

    def _store(self, upload: _Upload, data: bytes, *, multipart: bool) -> None:
        with self._lock:
            self._files[_path(upload.access_url)] = (data, upload.content_type)
            self._uploads.append(
                {
                    "access_url": upload.access_url,
                    "file_name": upload.file_name,
                    "content_type": upload.content_type,
                    "size": len(data),
                    "lifecycle": upload.lifecycle,
                    "multipart": multipart,
                }
            )


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _path(url: str) -> str:
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(url).path)
