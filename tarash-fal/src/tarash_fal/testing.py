"""A fake fal queue server speaking fal's real wire protocol, and a pytest fixture for it.

Test your fal code without the network or a key::

    # conftest.py
    pytest_plugins = ["tarash_fal.testing"]

    # test_app.py
    from tarash.tarash_gateway import VideoGenerationRequest, generate_video

    def test_video(fake_fal):
        response = generate_video(fake_fal.video_config(), VideoGenerationRequest(prompt="a cat"))
        assert fake_fal.counts["submit"] == 1

The server listens on ``https://127.0.0.1:<port>`` with a certificate from a throwaway CA
(``trustme``, from the ``testing`` extra) and implements fal's queue API (landscape §4.1):

* ``POST /{owner}/{alias}[/{path}]`` submits (``?fal_webhook=`` is recorded);
* ``GET /{owner}/{alias}/requests/{id}/status?logs=1`` answers ``IN_QUEUE`` (202, decreasing
  ``queue_position``) ``queue_polls`` times, then ``IN_PROGRESS`` (202, with logs)
  ``processing_polls`` times, then ``COMPLETED`` (200, logs and metrics). Progress is counted per
  job on the server, so a job submitted by one process can be polled by another;
* ``GET /{owner}/{alias}/requests/{id}`` returns the result (400 ``Request is still in progress``
  before completion);
* ``PUT /{owner}/{alias}/requests/{id}/cancel`` answers 202 ``CANCELLATION_REQUESTED`` (or 400
  ``ALREADY_COMPLETED``).

The configs it hands out (:meth:`FakeFalServer.video_config`) point ``provider_config``'s
``platform_url`` at it too, so ``resume()`` looks lost submits up in its requests listing.

It also fakes the rest of fal's platform a client meets (see :mod:`tarash_fal._fake_platform`):
the webhook key set at ``/.well-known/jwks.json``, signed webhook deliveries to the submit's
``fal_webhook`` URL (:meth:`FakeFalServer.complete`, retries, duplicates), per-model OpenAPI at
``/api/openapi/queue/openapi.json?endpoint_id=...`` and the CDN storage token and uploads.

Status, result and cancel URLs accept only ``[namespace/]owner/alias``, as fal does: a client that
puts the model's sub-path there gets a 404. Every request needs ``Authorization: Key <api_key>``.
Faults are injected per request kind with :meth:`FakeFalServer.inject`.
"""

from __future__ import annotations

import asyncio
import http
import importlib
import json
import os
import shutil
import ssl
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import attrs
import pytest

from tarash.tarash_gateway.field_mappers import match_model_prefix
from tarash.tarash_gateway.models import ImageGenerationConfig, VideoGenerationConfig

from ._fake_platform import (
    FILES_PREFIX,
    OPENAPI_PATH,
    PLATFORM_KINDS,
    TOKEN_PATH,
    _Platform,
    openapi_document,
)

__all__ = [
    "FAULTS",
    "KINDS",
    "PLATFORM_FAULT_KINDS",
    "PLATFORM_KINDS",
    "FakeFalServer",
    "fake_fal",
    "openapi_document",
]

#: The request kinds faults are injected for and counted by.
KINDS = ("submit", "status", "result", "cancel")
#: Platform routes faults can be injected for: the storage token, a single-part upload, a schema.
PLATFORM_FAULT_KINDS = ("token", "upload", "openapi")
#: ``http``: answer ``status_code`` with ``body`` and ``headers``; ``drop``: close the connection
#: without answering; ``truncate``: send half the answer and close; ``stall``: answer nothing for
#: ``delay`` seconds (forever if None), then close; ``huge``: a 200 answer of ``size`` bytes.
#: On a submit, ``drop``, ``truncate``, ``stall`` and ``huge`` create the job first, as when fal
#: accepted it and the answer was lost; ``lost`` closes without creating anything (the request
#: never reached fal, which the client cannot tell from ``drop``).
FAULTS = ("http", "drop", "truncate", "stall", "huge", "lost")
NAMESPACES = ("workflows", "comfy")
MAX_BODY = 256 * 1024 * 1024
REDACTED = "***REDACTED***"
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-fal-key"})
_IMAGE_HINTS = ("image", "flux", "recraft", "ideogram", "imagen", "seedream", "banana")

ResultFactory = Callable[[dict[str, Any]], Any]
_KEEP, _CLOSE, _ABORT = "keep", "close", "abort"


@attrs.define
class _Fault:
    fault: str
    status_code: int
    body: Any
    headers: dict[str, str]
    delay: float | None
    size: int


@attrs.define
class _Job:
    request_id: str
    app: str
    submission: dict[str, Any]
    polls: int = 0
    cancelled: bool = False
    logs: list[dict[str, Any]] = attrs.field(factory=list)
    sent_at: datetime = attrs.field(factory=lambda: datetime.now(timezone.utc))
    ended_at: datetime | None = None


@attrs.define
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@attrs.define
class _Answer:
    status: int
    body: Any
    headers: dict[str, str] = attrs.field(factory=dict)


class _BadRequest(Exception):
    """The bytes received are not an HTTP/1.1 request we can serve."""


def _platform_fault_kind(method: str, path: str) -> str | None:
    if path == TOKEN_PATH:
        return "token"
    if path == f"{FILES_PREFIX}upload" and method == "POST":
        return "upload"
    return "openapi" if path == OPENAPI_PATH else None


def _kind(method: str, path: str) -> str | None:
    if method == "POST":
        return "submit"
    if method == "PUT":
        return "cancel"
    if method == "GET":
        return "status" if path.rstrip("/").endswith("/status") else "result"
    return None


def _modality(path: str) -> str:
    from ._registry import FAMILIES

    prefix = match_model_prefix(path, [family.prefix for family in FAMILIES])
    if prefix is not None:
        return next(f.modality for f in FAMILIES if f.prefix == prefix)
    lowered = path.lower()
    if "video" not in lowered and any(hint in lowered for hint in _IMAGE_HINTS):
        return "image"
    return "video"


def default_result(submission: Mapping[str, Any]) -> dict[str, Any]:
    """A fal-shaped result for a submission: a video, or images for image models."""
    request_id = submission["request_id"]
    payload = submission["payload"] if isinstance(submission["payload"], dict) else {}
    if _modality(submission["path"]) == "video":
        return {
            "video": {
                "url": f"https://v3.fal.media/files/fake/{request_id}.mp4",
                "content_type": "video/mp4",
                "file_name": f"{request_id}.mp4",
                "file_size": 1048576,
            },
            "seed": 42,
        }
    count = payload.get("num_images", 1)
    count = count if isinstance(count, int) and 1 <= count <= 16 else 1
    return {
        "images": [
            {
                "url": f"https://v3.fal.media/files/fake/{request_id}_{i}.png",
                "width": 1024,
                "height": 768,
                "content_type": "image/png",
            }
            for i in range(count)
        ],
        "seed": 42,
        "has_nsfw_concepts": [False] * count,
        "timings": {"inference": 0.1},
        "prompt": payload.get("prompt"),
    }


class FakeFalServer(_Platform):
    """An HTTPS fake of fal's queue API on 127.0.0.1 (a context manager; or ``start``/``stop``).

    Args:
        queue_polls: status answers per job reporting ``IN_QUEUE`` (positions count down to 0).
        processing_polls: then ``IN_PROGRESS`` answers, each adding a log line.
        latency: seconds to wait before every answer.
        api_key: the key every request must carry as ``Authorization: Key <api_key>``.
        result_factory: ``(submission) -> result body``; default: a video, or images for image
            models (see :func:`default_result`).
        webhook_delay: if set, a job submitted with ``fal_webhook`` completes and is delivered
            this many seconds after its submit (else only :meth:`complete` completes it early).
        webhook_retries: redeliveries after a non-2xx answer or failed connection (fal: 10).
        webhook_retry_interval: seconds between them (fal spreads them over 2 hours).
        webhook_timeout: seconds a delivery may take (fal: 15).
        token_ttl: lifetime of the storage tokens handed out, in seconds.
        admin_key: the admin key the billing-events route requires (the pricing route takes it
            or ``api_key``); prices come from :meth:`set_price`, billing events from :meth:`bill`.

    Attributes:
        base_url: ``https://127.0.0.1:<port>`` once started.
        ca_path: PEM file of the CA that signed the server's certificate.
    """

    def __init__(
        self,
        *,
        queue_polls: int = 2,
        processing_polls: int = 2,
        latency: float = 0.0,
        api_key: str = "fal-test-key",
        result_factory: ResultFactory | None = None,
        webhook_delay: float | None = None,
        webhook_retries: int = 10,
        webhook_retry_interval: float = 0.05,
        webhook_timeout: float = 15.0,
        token_ttl: float = 3600.0,
        admin_key: str = "fal-admin-key",
    ) -> None:
        self.queue_polls = queue_polls
        self.processing_polls = processing_polls
        self.latency = latency
        self.api_key = api_key
        self.result_factory = result_factory or default_result
        self.base_url = ""
        self.ca_path = ""
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(KINDS, 0)
        self._connections = 0
        self._jobs: dict[str, _Job] = {}
        self._submissions: list[dict[str, Any]] = []
        self._faults: dict[str, deque[_Fault]] = {kind: deque() for kind in (*KINDS, *PLATFORM_FAULT_KINDS)}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._dir: str | None = None
        self._init_platform(
            webhook_delay=webhook_delay,
            webhook_retries=webhook_retries,
            webhook_retry_interval=webhook_retry_interval,
            webhook_timeout=webhook_timeout,
            token_ttl=token_ttl,
            admin_key=admin_key,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeFalServer:
        """Start listening (idempotent); returns the server."""
        if self._thread is not None:
            return self
        try:
            trustme = importlib.import_module("trustme")
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                "FakeFalServer needs trustme: pip install 'tarash-fal[testing]'"
            ) from None
        authority = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self._dir = tempfile.mkdtemp(prefix="tarash-fake-fal-")
        self.ca_path = os.path.join(self._dir, "ca.pem")
        authority.cert_pem.write_to_path(self.ca_path)
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="fake-fal", daemon=True)
        self._thread.start()
        port = asyncio.run_coroutine_threadsafe(self._listen(context), loop).result(30)
        self.base_url = f"https://127.0.0.1:{port}"
        return self

    async def _listen(self, context: ssl.SSLContext) -> int:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0, ssl=context, backlog=2048)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def stop(self) -> None:
        """Close every connection and stop listening (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._stop_platform()
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
        self._loop = self._thread = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def __enter__(self) -> FakeFalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- observation and control -------------------------------------------------------------

    @property
    def counts(self) -> dict[str, int]:
        """Requests received per kind (``submit``, ``status``, ``result``, ``cancel``): a copy."""
        with self._lock:
            return dict(self._counts)

    @property
    def connections(self) -> int:
        """TCP (TLS) connections accepted so far."""
        with self._lock:
            return self._connections

    @property
    def submissions(self) -> list[dict[str, Any]]:
        """Every submit received: ``path``, ``payload``, ``request_id``, ``headers`` (secrets
        redacted) and ``webhook_url``."""
        with self._lock:
            return [dict(s) for s in self._submissions]

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        """request id -> ``{"path", "polls", "cancelled", "completed"}`` for every job."""
        with self._lock:
            return {
                rid: {
                    "path": job.submission["path"],
                    "polls": job.polls,
                    "cancelled": job.cancelled,
                    "completed": self._completed(job),
                }
                for rid, job in self._jobs.items()
            }

    def inject(
        self,
        kind: str,
        fault: str = "http",
        *,
        times: int = 1,
        status_code: int = 500,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        retry_after: float | str | None = None,
        delay: float | None = None,
        size: int = 64 * 1024 * 1024,
    ) -> None:
        """Make the next ``times`` requests of ``kind`` fail with ``fault`` (see :data:`FAULTS`).

        ``kind`` is a queue kind (:data:`KINDS`) or one of :data:`PLATFORM_FAULT_KINDS`
        (``"token"``, ``"upload"``, ``"openapi"``: ``http``, ``drop`` or ``stall``, counted in
        ``platform_counts``).

        ``body`` may be JSON-able (sent as JSON) or ``bytes``/``str`` (sent as is, e.g. a
        malformed answer); ``retry_after`` sets the ``Retry-After`` header.
        """
        if kind not in (*KINDS, *PLATFORM_FAULT_KINDS):
            raise ValueError(f"kind must be one of {(*KINDS, *PLATFORM_FAULT_KINDS)}, got {kind!r}")
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, got {fault!r}")
        extra = dict(headers or {})
        if retry_after is not None:
            extra["Retry-After"] = str(retry_after)
        if body is None:
            body = {"detail": f"Injected HTTP {status_code}"}
        entry = _Fault(fault=fault, status_code=status_code, body=body, headers=extra, delay=delay, size=size)
        with self._lock:
            self._faults[kind].extend(entry for _ in range(times))

    def video_config(self, model: str = "fal-ai/veo3", **kwargs: Any) -> VideoGenerationConfig:
        """A ``VideoGenerationConfig`` for ``provider="fal"`` pointing at this server (queue,
        storage and schemas)."""
        return VideoGenerationConfig(**self._config_fields(model, kwargs))

    def image_config(self, model: str = "fal-ai/flux/dev", **kwargs: Any) -> ImageGenerationConfig:
        """An ``ImageGenerationConfig`` for ``provider="fal"`` pointing at this server."""
        return ImageGenerationConfig(**self._config_fields(model, kwargs))

    def _config_fields(self, model: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        if not self.base_url:
            raise RuntimeError("FakeFalServer is not started")
        options = {
            "ca_bundle": self.ca_path,
            "storage_url": self.base_url,
            "schema_url": f"{self.base_url}{OPENAPI_PATH}",
            "platform_url": f"{self.base_url}/v1",
            **kwargs.pop("provider_config", {}),
        }
        fields: dict[str, Any] = {
            "model": model,
            "provider": "fal",
            "api_key": self.api_key,
            "base_url": self.base_url,
            "poll_interval": 0.01,
            "timeout": 30,
        }
        fields.update(kwargs)
        fields["provider_config"] = options
        return fields

    # -- protocol ----------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        with self._lock:
            self._connections += 1
        ending = _KEEP
        try:
            while ending == _KEEP:
                request = await _read_request(reader)
                ending = _CLOSE if request is None else await self._serve(request, writer)
        except (
            _BadRequest,
            ConnectionError,
            ssl.SSLError,
            asyncio.IncompleteReadError,
            OSError,
            asyncio.CancelledError,
        ):
            ending = _ABORT
        finally:
            try:
                await _end(writer, ending)
            finally:
                self._tasks.discard(task)

    async def _serve(self, request: _Request, writer: asyncio.StreamWriter) -> str:
        platform_kind = _platform_fault_kind(request.method, unquote(request.path))
        if platform_kind is not None:
            with self._lock:
                queue = self._faults[platform_kind]
                fault = queue.popleft() if queue else None
            if fault is not None:
                self._count(platform_kind)
                if fault.fault == "http":
                    await _write(writer, _Answer(fault.status_code, fault.body, dict(fault.headers)))
                    return _KEEP
                return await _misbehave(fault, writer, None)
        platform = self._platform_route(
            request.method, unquote(request.path), request.query, request.headers, request.body
        )
        if platform is not None:
            await _write(writer, _Answer(platform.status, platform.body, dict(platform.headers)))
            return _CLOSE if request.headers.get("connection", "").lower() == "close" else _KEEP
        kind = _kind(request.method, request.path)
        with self._lock:
            if kind is not None:
                self._counts[kind] += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        if request.headers.get("authorization") != f"Key {self.api_key}":
            await _write(writer, _Answer(401, {"detail": "Authentication is required"}))
            return _KEEP
        fault = None
        if kind is not None:
            with self._lock:
                queue = self._faults[kind]
                fault = queue.popleft() if queue else None
        if fault is not None and fault.fault == "http":
            await _write(writer, _Answer(fault.status_code, fault.body, dict(fault.headers)))
            return _KEEP
        unsent = fault is not None and fault.fault in ("drop", "stall") and kind != "submit"
        if fault is not None and (fault.fault == "lost" or unsent):
            return await _misbehave(fault, writer, None)
        answer = self._route(request)
        if fault is not None:
            return await _misbehave(fault, writer, answer)
        await _write(writer, answer)
        return _CLOSE if request.headers.get("connection", "").lower() == "close" else _KEEP

    def _route(self, request: _Request) -> _Answer:
        segments = [unquote(s) for s in request.path.strip("/").split("/") if s]
        size = 3 if segments and segments[0] in NAMESPACES else 2
        if len(segments) < size:
            return _Answer(404, {"detail": "Not Found"})
        app, rest = "/".join(segments[:size]), segments[size:]
        if not rest or rest[0] != "requests":
            if request.method != "POST":
                return _Answer(405, {"detail": "Method Not Allowed"})
            return self._submit(request, "/".join(segments), app)
        shapes = {("GET", 2): "result", ("GET", 3): "status", ("PUT", 3): "cancel"}
        route = shapes.get((request.method, len(rest)))
        if route is None or (len(rest) == 3 and rest[2] != route):
            return _Answer(404, {"detail": "Not Found"})
        with self._lock:
            job = self._jobs.get(rest[1])
        if job is None or job.app != app:
            return _Answer(404, {"detail": f"Request {rest[1]} not found"})
        if route == "status":
            logs = request.query.get("logs", ["0"])[-1] in ("1", "true", "True")
            return self._status(job, logs)
        if route == "result":
            return self._result(job)
        return self._cancel(job)

    def _urls(self, app: str, request_id: str) -> dict[str, str]:
        base = f"{self.base_url}/{app}/requests/{request_id}"
        return {
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }

    def _submit(self, request: _Request, path: str, app: str) -> _Answer:
        try:
            payload = json.loads(request.body or b"null")
        except ValueError:
            return _Answer(
                422,
                {
                    "detail": [
                        {
                            "loc": ["body"],
                            "msg": "Invalid JSON body",
                            "type": "value_error.jsondecode",
                        }
                    ]
                },
            )
        request_id = str(uuid.uuid4())
        headers = {k: (REDACTED if k in _SECRET_HEADERS else v) for k, v in request.headers.items()}
        webhook = request.query.get("fal_webhook", [None])[-1]
        submission = {
            "path": path,
            "payload": payload,
            "request_id": request_id,
            "headers": headers,
            "webhook_url": webhook,
        }
        with self._lock:
            self._jobs[request_id] = _Job(request_id=request_id, app=app, submission=submission)
            self._submissions.append(submission)
        if webhook:
            self._schedule_webhook(request_id)
        body = {
            "request_id": request_id,
            **self._urls(app, request_id),
            "status": "IN_QUEUE",
            "queue_position": max(self.queue_polls - 1, 0),
        }
        return _Answer(200, body, {"x-fal-request-id": request_id})

    def _job_completed(self, request_id: str) -> tuple[str | None, dict[str, Any]]:
        with self._lock:
            job = self._jobs[request_id]
            job.polls = max(job.polls, self.queue_polls + self.processing_polls + 1)
            job.ended_at = job.ended_at or datetime.now(timezone.utc)
            submission = dict(job.submission)
        return submission["webhook_url"], self.result_factory(submission)

    def _finished_requests(self, endpoint_id: str, payloads: bool) -> list[dict[str, Any]]:
        with self._lock:
            jobs = [
                job
                for job in self._jobs.values()
                if job.ended_at is not None and job.submission["path"] == endpoint_id
            ]
        listed = []
        for job in jobs:
            assert job.ended_at is not None
            item: dict[str, Any] = {
                "request_id": job.request_id,
                "endpoint_id": endpoint_id,
                "sent_at": job.sent_at.isoformat().replace("+00:00", "Z"),
                "started_at": job.sent_at.isoformat().replace("+00:00", "Z"),
                "ended_at": job.ended_at,
                "status_code": 499 if job.cancelled else 200,
                "duration": (job.ended_at - job.sent_at).total_seconds(),
            }
            if payloads:
                item["json_input"] = job.submission["payload"]
                item["json_output"] = None if job.cancelled else self.result_factory(dict(job.submission))
            listed.append(item)
        return listed

    def _completed(self, job: _Job) -> bool:
        return job.polls > self.queue_polls + self.processing_polls

    def _status(self, job: _Job, with_logs: bool) -> _Answer:
        urls = {"response_url": self._urls(job.app, job.request_id)["response_url"]}
        with self._lock:
            if job.cancelled:
                return _Answer(
                    200,
                    {
                        "status": "COMPLETED",
                        "logs": job.logs if with_logs else None,
                        "metrics": {},
                        "error": "Request was cancelled",
                        "error_type": "request_cancelled",
                        **urls,
                    },
                )
            step = job.polls
            job.polls += 1
            if step < self.queue_polls:
                return _Answer(
                    202,
                    {"status": "IN_QUEUE", "queue_position": self.queue_polls - 1 - step, **urls},
                )
            if step < self.queue_polls + self.processing_polls:
                done = step - self.queue_polls + 1
                job.logs.append(
                    {
                        "message": f"step {done}/{self.processing_polls}",
                        "level": "INFO",
                        "source": "user",
                        "timestamp": datetime.now(timezone.utc).isoformat(),
                    }
                )
                return _Answer(
                    202,
                    {
                        "status": "IN_PROGRESS",
                        "logs": list(job.logs) if with_logs else None,
                        **urls,
                    },
                )
            job.ended_at = job.ended_at or datetime.now(timezone.utc)
            return _Answer(
                200,
                {
                    "status": "COMPLETED",
                    "logs": list(job.logs) if with_logs else None,
                    "metrics": {"inference_time": 0.1},
                    **urls,
                },
            )

    def _result(self, job: _Job) -> _Answer:
        with self._lock:
            cancelled, completed = job.cancelled, self._completed(job)
        if cancelled:
            return _Answer(400, {"detail": "Request was cancelled"})
        if not completed:
            return _Answer(400, {"detail": "Request is still in progress"})
        return _Answer(200, self.result_factory(dict(job.submission)))

    def _cancel(self, job: _Job) -> _Answer:
        with self._lock:
            if self._completed(job):
                return _Answer(400, {"status": "ALREADY_COMPLETED"})
            job.cancelled = True
            job.ended_at = datetime.now(timezone.utc)
        return _Answer(202, {"status": "CANCELLATION_REQUESTED"})


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    line = await reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(line[:100])
    headers: dict[str, str] = {}
    while True:
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
        if len(headers) > 200:
            raise _BadRequest("too many headers")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise _BadRequest("chunked request bodies are not supported")
    length = int(headers.get("content-length") or 0)
    if not 0 <= length <= MAX_BODY:
        raise _BadRequest("request body too large")
    body = await reader.readexactly(length) if length else b""
    target = urlsplit(parts[1])
    return _Request(
        method=parts[0], path=target.path, query=parse_qs(target.query), headers=headers, body=body
    )


def _encode(answer: _Answer) -> bytes:
    body = answer.body
    if isinstance(body, (bytes, bytearray)):
        data = bytes(body)
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = json.dumps(body).encode()
    try:
        reason = http.HTTPStatus(answer.status).phrase
    except ValueError:
        reason = "Unknown"
    headers = {
        "Content-Type": "application/json",
        "Content-Length": str(len(data)),
        **answer.headers,
    }
    head = f"HTTP/1.1 {answer.status} {reason}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()
    )
    return head.encode("latin-1") + b"\r\n" + data


async def _write(writer: asyncio.StreamWriter, answer: _Answer) -> None:
    writer.write(_encode(answer))
    await writer.drain()


async def _misbehave(fault: _Fault, writer: asyncio.StreamWriter, answer: _Answer | None) -> str:
    """Act out a non-HTTP fault; returns how to end the connection."""
    if fault.fault == "truncate" and answer is not None:
        data = _encode(answer)
        split = data.index(b"\r\n\r\n") + 4
        writer.write(data[: split + (len(data) - split) // 2])
        await writer.drain()
        return _CLOSE
    if fault.fault == "huge":
        writer.write(
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {fault.size}\r\n\r\n".encode()
        )
        chunk = b" " * 65536
        sent = 0
        while sent < fault.size:
            piece = chunk[: fault.size - sent]
            writer.write(piece)
            sent += len(piece)
            await writer.drain()
        return _CLOSE
    if fault.fault == "stall":
        await asyncio.sleep(fault.delay if fault.delay is not None else 10**9)
    return _ABORT


async def _end(writer: asyncio.StreamWriter, ending: str) -> None:
    """Close gracefully (flushing what was written) or abort the connection."""
    if ending == _ABORT:
        writer.transport.abort()
        return
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 5)
    except (asyncio.TimeoutError, asyncio.CancelledError, ConnectionError, ssl.SSLError, OSError):
        writer.transport.abort()


@pytest.fixture
def fake_fal() -> Iterator[FakeFalServer]:
    """A started :class:`FakeFalServer`; afterwards it is stopped and core's pooled
    connections are closed, so nothing outlives the test."""
    from tarash.tarash_gateway import default_gateway

    server = FakeFalServer().start()
    try:
        yield server
    finally:
        server.stop()
        default_gateway().transport.close()
