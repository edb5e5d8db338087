"""A fake of the OpenAI Images API (and its Azure OpenAI form) on 127.0.0.1, and a pytest fixture.

Test code that calls ``provider="openai"`` or ``"azure-openai"`` without the network or a key::

    # conftest.py
    pytest_plugins = ["tarash_openai.testing"]

    # test_app.py
    from tarash.tarash_gateway import ImageGenerationRequest, generate_image

    def test_image(fake_openai):
        response = generate_image(fake_openai.config(), ImageGenerationRequest(prompt="a cat"))
        assert fake_openai.counts["generations"] == 1

Routes, as the API documents them:

* ``POST /v1/images/generations`` (JSON) and ``POST /v1/images/edits`` (multipart: ``image`` or
  repeated ``image[]`` parts, ``mask``), with ``Authorization: Bearer <api_key>``;
* ``POST /openai/deployments/{deployment}/images/{generations,edits}?api-version=...`` with an
  ``api-key: <azure_key>`` header (Azure OpenAI); the deployment must be known;
* ``GET /files/{name}`` serves the files added with :meth:`FakeOpenAIServer.add_file` (input
  images given as URLs; no auth, like a public bucket).

An answer is ``{"created", "data": [{"b64_json"}...], "background", "output_format", "quality",
"size", "usage"}`` with an ``x-request-id`` header. Errors use the API's envelope
``{"error": {"message", "type", "param", "code"}}``: 401 ``invalid_api_key``, 400
``invalid_value`` naming ``param``, 400 ``moderation_blocked`` for a prompt containing
``blocked_word``. Faults are queued per route kind with :meth:`FakeOpenAIServer.inject`.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Iterator, Mapping
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import pytest

from tarash.tarash_gateway.models import ImageGenerationConfig

from ._models import MODELS, STANDARD_SIZES

__all__ = ["FAULTS", "KINDS", "FakeOpenAIServer", "RecordedRequest", "fake_openai", "png"]

#: Request kinds counted, recorded and open to faults.
KINDS = ("generations", "edits", "file")
#: ``http``: answer ``status_code`` with ``body`` and ``headers``; ``drop``: read the request,
#: then close the connection without answering (the images may have been made and billed);
#: ``stall``: wait ``delay`` seconds, then answer normally.
FAULTS = ("http", "drop", "stall")
REDACTED = "***REDACTED***"
_SECRET_HEADERS = frozenset({"authorization", "api-key"})
_AZURE_PATH = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/images/(?P<kind>generations|edits)$")
_OPENAI_PATH = re.compile(r"^/v1/images/(?P<kind>generations|edits)$")
_MAGIC = {"jpeg": b"\xff\xd8\xff\xe0", "webp": b"RIFF\x00\x00\x00\x00WEBP", "gif": b"GIF89a", "svg": b"<svg"}


def png(red: int = 0, green: int = 0, blue: int = 0) -> bytes:
    """A valid one-pixel PNG of that colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes((0, red, green, blue)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def fake_image(output_format: str, index: int) -> bytes:
    """The bytes the fake returns for image ``index``: a PNG, or the format's magic and a marker."""
    if output_format == "png":
        return png(index % 256)
    return _MAGIC[output_format] + f" fake {output_format} {index}".encode()


@attrs.frozen
class RecordedRequest:
    """A request the fake received: credentials redacted; the JSON body or the multipart parts."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    json: Any = None
    form: Mapping[str, str] = attrs.field(factory=dict)
    #: multipart file parts in order: ``(field name, filename, content type, bytes)``.
    files: tuple[tuple[str, str, str, bytes], ...] = ()


@attrs.define
class _Fault:
    fault: str
    status_code: int
    body: Any
    headers: dict[str, str]
    delay: float


class _Invalid(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str = "invalid_value",
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _error(status: int, message: str, param: str | None = None, code: str = "invalid_value") -> _Invalid:
    return _Invalid(status, message, param=param, code=code)


class FakeOpenAIServer:
    """A fake Images API on 127.0.0.1 (a context manager; or ``start``/``stop``).

    Args:
        api_key: the key OpenAI requests must carry as ``Authorization: Bearer <api_key>``.
        azure_key: the key Azure requests must carry as ``api-key: <azure_key>``.
        deployments: Azure deployment name -> model id (default: each gpt-image-2.x id names its
            own deployment).
        blocked_word: a prompt containing it is refused with 400 ``moderation_blocked``.
        latency: seconds to wait before every answer.
        usage: whether answers carry the ``usage`` block (the gpt-image models' token counts:
            one per prompt word, 85 per input image, 272 per output image); ``False`` answers
            without it, as the DALL-E models did.

    Attributes:
        url: the OpenAI API root, ``http://127.0.0.1:<port>/v1`` (give it as ``config.base_url``).
        endpoint: the Azure resource endpoint, ``http://127.0.0.1:<port>``.
        counts: requests received per kind (``generations``, ``edits``, ``file``).
        requests: every request received, in order (:class:`RecordedRequest`).
    """

    def __init__(
        self,
        *,
        api_key: str = "sk-test-openai",
        azure_key: str = "azure-test-key",
        deployments: Mapping[str, str] | None = None,
        blocked_word: str = "forbidden",
        latency: float = 0.0,
        usage: bool = True,
    ) -> None:
        self.api_key = api_key
        self.azure_key = azure_key
        self.deployments = dict(deployments if deployments is not None else {m: m for m in MODELS})
        self.blocked_word = blocked_word
        self.latency = latency
        self.usage = usage
        self.counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.requests: list[RecordedRequest] = []
        self._files: dict[str, tuple[bytes, str]] = {}
        self._faults: dict[str, deque[_Fault]] = {kind: deque() for kind in KINDS}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeOpenAIServer is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.endpoint}/v1"

    # -- test helpers ----------------------------------------------------------------------

    def config(self, model: str = "gpt-image-2.5-flare", **kwargs: Any) -> ImageGenerationConfig:
        """An ``openai`` config aimed at this server."""
        kwargs.setdefault("api_key", self.api_key)
        kwargs.setdefault("base_url", self.url)
        return ImageGenerationConfig(provider="openai", model=model, **kwargs)

    def azure_config(
        self, model: str = "gpt-image-2.5-flare", api_version: str = "2026-10-01", **kwargs: Any
    ) -> ImageGenerationConfig:
        """An ``azure-openai`` config aimed at this server."""
        kwargs.setdefault("api_key", self.azure_key)
        kwargs.setdefault("base_url", self.endpoint)
        return ImageGenerationConfig(provider="azure-openai", model=model, api_version=api_version, **kwargs)

    def add_file(self, name: str, content: bytes, content_type: str) -> str:
        """Serve ``content`` at ``GET /files/{name}``; returns its URL."""
        self._files[name] = (content, content_type)
        return f"{self.endpoint}/files/{name}"

    def inject(
        self,
        kind: str,
        fault: str = "http",
        *,
        status_code: int = 500,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests of ``kind`` with ``fault`` (see :data:`FAULTS`)."""
        if kind not in KINDS or fault not in FAULTS:
            raise ValueError(f"kind must be one of {KINDS} and fault one of {FAULTS}")
        if body is None and fault == "http":
            body = {
                "error": {
                    "message": "The server had an error",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
        with self._lock:
            for _ in range(times):
                self._faults[kind].append(_Fault(fault, status_code, body, dict(headers or {}), delay))

    def rate_limit(
        self,
        kind: str = "generations",
        *,
        reset_requests: str = "1s",
        reset_tokens: str = "6m0s",
        code: str = "rate_limit_exceeded",
    ) -> None:
        """Answer the next request of ``kind`` with 429 and the ``x-ratelimit-reset-*`` headers."""
        self.inject(
            kind,
            status_code=429,
            body={
                "error": {
                    "message": "Rate limit reached for images per minute",
                    "type": "requests",
                    "param": None,
                    "code": code,
                }
            },
            headers={"x-ratelimit-reset-requests": reset_requests, "x-ratelimit-reset-tokens": reset_tokens},
        )

    def last(self, kind: str) -> RecordedRequest:
        """The last request of ``kind`` (``generations``/``edits`` by path, ``file``)."""
        wanted = {"generations": "/images/generations", "edits": "/images/edits", "file": "/files/"}[kind]
        return next(r for r in reversed(self.requests) if wanted in r.path)

    # -- serving ---------------------------------------------------------------------------

    def _count(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] += 1

    def _take_fault(self, kind: str) -> _Fault | None:
        with self._lock:
            return self._faults[kind].popleft() if self._faults[kind] else None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def answer_images(
        self, kind: str, model: str, body: Mapping[str, Any], files: tuple[Any, ...]
    ) -> dict[str, Any]:
        """Check a generation or edit as the API does and make its answer."""
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise _Invalid(
                400,
                "Missing required parameter: 'prompt'.",
                param="prompt",
                code="missing_required_parameter",
            )
        if model not in MODELS:
            raise _error(400, f"Invalid value: '{model}'. Value must be a gpt-image model.", "model")
        n = _integer(body.get("n", 1), "n")
        if not 1 <= n <= 10:
            raise _error(400, f"Invalid value: {n}. 'n' must be between 1 and 10.", "n")
        size = body.get("size", "auto")
        if size not in STANDARD_SIZES and not (MODELS[model].custom_sizes and _custom_size(str(size))):
            raise _error(
                400, f"Invalid value: '{size}'. Supported sizes are {', '.join(STANDARD_SIZES)}.", "size"
            )
        quality = body.get("quality", "auto")
        if quality not in MODELS[model].qualities:
            raise _error(400, f"Invalid value: '{quality}'.", "quality")
        output_format = body.get("output_format", "png")
        if output_format not in _MAGIC and output_format != "png":
            raise _error(400, f"Invalid value: '{output_format}'.", "output_format")
        if kind == "edits" and not any(name in ("image", "image[]") for name, *_ in files):
            raise _Invalid(
                400, "Missing required parameter: 'image'.", param="image", code="missing_required_parameter"
            )
        if self.blocked_word and self.blocked_word in prompt.lower():
            raise _Invalid(
                400,
                "Your request was rejected as a result of our safety system.",
                code="moderation_blocked",
                kind="image_generation_user_error",
            )
        text_tokens = len(prompt.split())
        image_inputs = sum(1 for name, *_ in files if name in ("image", "image[]"))
        answer: dict[str, Any] = {
            "created": int(time.time()),
            "data": [{"b64_json": base64.b64encode(fake_image(output_format, i)).decode()} for i in range(n)],
            "background": "transparent" if body.get("background") == "transparent" else "opaque",
            "output_format": output_format,
            "quality": "medium" if quality == "auto" else quality,
            "size": "1024x1024" if size == "auto" else size,
            "usage": {
                "input_tokens": text_tokens + 85 * image_inputs,
                "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": 85 * image_inputs},
                "output_tokens": 272 * n,
                "output_tokens_details": {"text_tokens": 0, "image_tokens": 272 * n},
                "total_tokens": text_tokens + 85 * image_inputs + 272 * n,
            },
        }
        if not self.usage:
            del answer["usage"]
        return answer


def _custom_size(size: str) -> bool:
    """A ``WIDTHxHEIGHT`` the 2 and 2.5 models take: multiples of 16, 1:3 to 3:1, up to 3840x2160."""
    match = re.fullmatch(r"(\d+)x(\d+)", size)
    if match is None:
        return False
    width, height = int(match[1]), int(match[2])
    return (
        width > 0
        and height > 0
        and width % 16 == 0
        and height % 16 == 0
        and width <= 3 * height
        and height <= 3 * width
        and max(width, height) <= 3840
        and width * height <= 3840 * 2160
    )


def _integer(value: Any, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _error(400, f"Invalid type for '{param}': expected an integer.", param) from None


def _multipart(
    content_type: str, body: bytes
) -> tuple[dict[str, str], tuple[tuple[str, str, str, bytes], ...]]:
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise _error(400, "Invalid multipart body.", None, "invalid_request")
    form: dict[str, str] = {}
    files: list[tuple[str, str, str, bytes]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        decoded = part.get_payload(decode=True)
        payload = decoded if isinstance(decoded, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            form[str(name)] = payload.decode()
        else:
            files.append((str(name), filename, part.get_content_type(), payload))
    return form, tuple(files)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``requests`` instead."""

    def _send(
        self,
        status: int,
        body: Any,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _read(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        name = split.path.removeprefix("/files/")
        self._read()
        self.fake._record(RecordedRequest("GET", split.path, parse_qs(split.query), self._headers()))
        if not split.path.startswith("/files/") or name not in self.fake._files:
            self._send(
                404,
                {
                    "error": {
                        "message": "Not found",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "not_found",
                    }
                },
            )
            return
        self.fake._count("file")
        if self._fault("file"):
            return
        content, content_type = self.fake._files[name]
        self._send(200, content, content_type=content_type)

    def do_POST(self) -> None:
        split = urlsplit(self.path)
        query = parse_qs(split.query)
        body = self._read()
        azure = _AZURE_PATH.match(split.path)
        route = azure or _OPENAI_PATH.match(split.path)
        if route is None:
            self._send(
                404,
                {
                    "error": {
                        "message": f"Invalid URL (POST {split.path})",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": None,
                    }
                },
            )
            return
        kind = route["kind"]
        self.fake._count(kind)
        try:
            recorded = self._parse(split.path, query, body)
            self.fake._record(recorded)
            self._authorise(azure is not None, query)
            if self._fault(kind):
                return
            model = self._model(azure, recorded)
            answer = self.fake.answer_images(kind, model, recorded.json or recorded.form, recorded.files)
        except _Invalid as exc:
            self._send(exc.status, exc.body)
            return
        if self.fake.latency:
            time.sleep(self.fake.latency)
        self._send(
            200, answer, {"x-request-id": f"req_{uuid.uuid4().hex}", "x-ratelimit-remaining-requests": "49"}
        )

    def _headers(self) -> dict[str, str]:
        return {k.lower(): REDACTED if k.lower() in _SECRET_HEADERS else v for k, v in self.headers.items()}

    def _parse(self, path: str, query: Mapping[str, list[str]], body: bytes) -> RecordedRequest:
        content_type = self.headers.get("Content-Type", "")
        headers = self._headers()
        if path.endswith("/edits"):
            if not content_type.startswith("multipart/form-data"):
                raise _error(400, "Edits take multipart/form-data.", None, "invalid_request")
            form, files = _multipart(content_type, body)
            return RecordedRequest("POST", path, query, headers, form=form, files=files)
        if not content_type.startswith("application/json"):
            raise _error(400, "Generations take a JSON body.", None, "invalid_request")
        try:
            payload = json.loads(body)
        except ValueError:
            raise _error(
                400, "We could not parse the JSON body of your request.", None, "invalid_json"
            ) from None
        return RecordedRequest("POST", path, query, headers, json=payload)

    def _authorise(self, azure: bool, query: Mapping[str, list[str]]) -> None:
        if azure:
            if self.headers.get("api-key") != self.fake.azure_key:
                raise _Invalid(
                    401, "Access denied due to invalid subscription key or wrong API endpoint.", code="401"
                )
            if not query.get("api-version"):
                raise _Invalid(404, "Resource not found", code="404")
        elif self.headers.get("Authorization") != f"Bearer {self.fake.api_key}":
            raise _Invalid(401, "Incorrect API key provided.", code="invalid_api_key")

    def _model(self, azure: re.Match[str] | None, recorded: RecordedRequest) -> str:
        if azure is None:
            return str((recorded.json or recorded.form).get("model", ""))
        deployment = azure["deployment"]
        if deployment not in self.fake.deployments:
            raise _Invalid(
                404, "The API deployment for this resource does not exist.", code="DeploymentNotFound"
            )
        return self.fake.deployments[deployment]

    def _fault(self, kind: str) -> bool:
        """Apply the next queued fault of ``kind``; True when it answered (or dropped) the request."""
        fault = self.fake._take_fault(kind)
        if fault is None:
            return False
        if fault.fault == "stall":
            time.sleep(fault.delay)
            return False
        if fault.fault == "drop":
            self.close_connection = True
            return True
        self._send(fault.status_code, fault.body, fault.headers)
        return True


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A started :class:`FakeOpenAIServer` for one test."""
    with FakeOpenAIServer() as server:
        yield server
