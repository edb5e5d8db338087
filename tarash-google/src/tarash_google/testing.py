"""Fake Google servers speaking the REST routes tarash-google uses, and a pytest fixture.

One threaded HTTP server on ``127.0.0.1`` (random port) serves every route at once; point
``config.base_url`` at :attr:`FakeGoogle.url`::

    # conftest.py
    pytest_plugins = ["tarash_google.testing"]

    def test_video(fake_google):
        config = VideoGenerationConfig(provider="google", model="veo-3.0-generate-001",
                                       base_url=fake_google.url, api_key=fake_google.api_key)

Routes (paths as Google's; ``{v}`` is ``v1beta`` on the Gemini API, ``v1beta1`` on Vertex):

* Gemini Developer API (``x-goog-api-key`` checked): ``POST /v1beta/models/{m}:predictLongRunning``,
  ``GET /v1beta/models/{m}/operations/{id}``, ``GET /v1beta/files/{id}:download?alt=media``
  (302 to a signed URL, as Google does), ``POST /v1beta/models/{m}:generateContent``,
  ``POST /v1beta/interactions``, ``GET /v1beta/interactions/{id}``,
  ``POST /v1beta/interactions/{id}/cancel``.
* Vertex AI (``Authorization: Bearer`` checked against tokens issued by ``/token``):
  ``POST /v1beta1/projects/{p}/locations/{l}/publishers/google/models/{m}:predictLongRunning``,
  ``...:fetchPredictOperation``, ``...:predict``, ``...:generateContent``,
  ``POST /v1beta1/{operation}:cancel``, and the interactions routes below
  ``/v1beta1/projects/{p}/locations/{l}/``.
* OAuth: ``POST /token`` (RFC 7523 JWT bearer assertions, RS256, checked against the key of
  :meth:`FakeGoogle.service_account_file`; refresh-token grants).

Outcomes are chosen by markers in the prompt: ``[blocked]`` (submit refused by Responsible-AI
filters: 400, or ``promptFeedback.blockReason`` on ``generateContent``), ``[filtered]`` (the job
finishes with its samples filtered: ``raiMediaFilteredCount``, ``raiFilteredReason``,
``finishReason: IMAGE_SAFETY``), ``[error]`` (the operation / interaction fails). Faults per
request kind (``submit``, ``status``, ``result``, ``cancel``, ``token``) come from
:meth:`FakeGoogle.inject` or from a path prefix ``/_faults/<name>`` on the base URL (see
:data:`PREFIX_FAULTS`). Errors are ``google.rpc.Status`` bodies; a 429 carries ``RetryInfo``.
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
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import pytest

__all__ = ["KINDS", "PREFIX_FAULTS", "FakeGoogle", "fake_google"]

KINDS = ("submit", "status", "result", "cancel", "token")
VIDEO_BYTES = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isomfake-video"
SAFETY_MESSAGE = (
    "The prompt could not be submitted. This prompt contains sensitive words that violate "
    "Google's Responsible AI practices. Try rephrasing the prompt."
)
IMAGEN_RAI_REASON = "39322892: This prompt may violate our policies about person generation."
RAI_REASON = (
    "Your current safety settings for person generation prevented some of the videos from being generated."
)


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


PNG_BYTES = _png()

#: ``/_faults/<name>`` prefixes: the fault applied to every matching request under them
#: (``status-429`` carries ``RetryInfo`` 60s). ``job-fails`` and ``slow`` set every job's outcome
#: instead: its operation / interaction fails, or never finishes.
PREFIX_FAULTS: Mapping[str, tuple[str, int]] = {
    "submit-400": ("submit", 400),
    "submit-500": ("submit", 500),
    "status-429": ("status", 429),
    "token-400": ("token", 400),
}
PREFIX_OUTCOMES: Mapping[str, str] = {"job-fails": "error", "slow": "slow"}


@attrs.define
class _Fault:
    status: int = 0
    times: int = 1
    drop: bool = False
    delay: float = 0.0
    retry_delay: str | None = "2s"


@attrs.define
class _Job:
    kind: str
    name: str
    model: str
    mode: str
    body: dict[str, Any]
    outcome: str
    polls_left: int
    cancelled: bool = False


def status_body(code: int, status: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    """A ``google.rpc.Status`` error body as Google sends it."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _outcome(prompt: str) -> str:
    for marker in ("blocked", "filtered", "error"):
        if f"[{marker}]" in prompt:
            return marker
    return "ok"


class FakeGoogle:
    """The fake server (a context manager; also the ``fake_google`` fixture).

    Attributes:
        api_key: the Gemini Developer API key it accepts.
        processing_polls: status reads answered "not done" before a job finishes.
        latency: seconds every answer is delayed.
    """

    def __init__(
        self, api_key: str = "fake-gemini-key", processing_polls: int = 1, latency: float = 0.0
    ) -> None:
        self.api_key = api_key
        self.processing_polls = processing_polls
        self.latency = latency
        self.counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.requests: list[dict[str, Any]] = []
        self.jobs: dict[str, _Job] = {}
        self.tokens: set[str] = set()
        self._faults: dict[str, list[_Fault]] = {kind: [] for kind in KINDS}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._public_pem: str | None = None
        self._private_pem: str | None = None
        self._request_local = threading.local()  # the /_faults/ outcome of the request being served

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeGoogle:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGoogle:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    # -- test helpers ---------------------------------------------------------------------------

    def inject(
        self,
        kind: str,
        status: int = 0,
        *,
        times: int = 1,
        drop: bool = False,
        delay: float = 0.0,
        retry_delay: str | None = "2s",
    ) -> None:
        """The next ``times`` requests of ``kind`` answer ``status`` (a Status body; 429 with
        ``RetryInfo`` ``retry_delay``), or drop the connection after reading the request, or wait."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        with self._lock:
            self._faults[kind].append(_Fault(status, times, drop, delay, retry_delay))

    def bodies(self, kind: str) -> list[Any]:
        """The JSON (or form) bodies received for ``kind``, in order."""
        return [r["body"] for r in self.requests if r["kind"] == kind]

    def service_account_file(self, directory: str | Path, project: str = "fake-project") -> str:
        """Write a service-account JSON whose ``token_uri`` is this fake; return its path."""
        if self._private_pem is None:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa

            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self._private_pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode()
            self._public_pem = (
                key.public_key()
                .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
                .decode()
            )
        info = {
            "type": "service_account",
            "project_id": project,
            "private_key_id": "fake-key-1",
            "private_key": self._private_pem,
            "client_email": f"tarash@{project}.iam.gserviceaccount.com",
            "client_id": "1234567890",
            "token_uri": self.token_uri,
        }
        path = Path(directory) / "service-account.json"
        path.write_text(json.dumps(info), encoding="utf-8")
        return str(path)

    # -- dispatch -------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        path = split.path
        prefix_fault = outcome = None
        match = re.match(r"^/_faults/([^/]+)(/.*)$", path)
        if match:
            prefix_fault, outcome = PREFIX_FAULTS.get(match.group(1)), PREFIX_OUTCOMES.get(match.group(1))
            path = match.group(2)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        kind = self._kind(method, path)
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        with self._lock:
            self.requests.append(
                {
                    "kind": kind,
                    "method": method,
                    "path": path,
                    "headers": dict(handler.headers),
                    "query": split.query,
                    "body": body,
                }
            )
            if kind in self.counts:
                self.counts[kind] += 1
            fault = self._take_fault(kind)
        if prefix_fault is not None and prefix_fault[0] == kind:
            fault = _Fault(status=prefix_fault[1], retry_delay="60s")
        time.sleep(self.latency + (fault.delay if fault else 0.0))
        if fault is not None and fault.drop:
            handler.close_connection = True
            handler.connection.close()
            return
        if fault is not None and fault.status:
            details: list[Any] | None = None
            if fault.status == 429 and fault.retry_delay:
                details = [
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": fault.retry_delay}
                ]
            elif fault.status == 400:
                violation = {"field": "instances[0].prompt", "description": "injected"}
                details = [
                    {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}
                ]
            name = _STATUS_NAMES.get(fault.status, "UNKNOWN")
            self._send(handler, fault.status, status_body(fault.status, name, f"injected {name}", details))
            return
        self._request_local.outcome = outcome
        code, answer, headers = self._route(method, path, split.query, dict(handler.headers), body)
        self._send(handler, code, answer, headers)

    def _take_fault(self, kind: str | None) -> _Fault | None:
        queue = self._faults.get(kind or "")
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        return fault

    @staticmethod
    def _kind(method: str, path: str) -> str | None:
        if path == "/token":
            return "token"
        if path.endswith(("/cancel", ":cancel")):
            return "cancel"
        if path.endswith((":predictLongRunning", ":predict", ":generateContent")) or (
            method == "POST" and path.endswith("/interactions")
        ):
            return "submit"
        if path.endswith(":fetchPredictOperation") or "/operations/" in path or "/interactions/" in path:
            return "status"
        if ":download" in path or path.startswith("/_signed/"):
            return "result"
        return None

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, code: int, answer: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        if isinstance(answer, bytes):
            payload, content_type = answer, (headers or {}).get("Content-Type", "application/octet-stream")
        else:
            payload, content_type = json.dumps(answer).encode(), "application/json; charset=UTF-8"
        handler.send_response(code)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            if key != "Content-Type":
                handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _route(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if path == "/token" and method == "POST":
            return (*self._token(body or {}), {})
        if path.startswith("/_signed/"):
            return 200, VIDEO_BYTES, {"Content-Type": "video/mp4"}
        if path.startswith("/_media/"):
            return 200, PNG_BYTES, {"Content-Type": "image/png"}
        if path.startswith("/v1beta/"):
            mode, rest = "gemini", path[len("/v1beta/") :]
            denied = self._check_key(headers)
        elif path.startswith("/v1beta1/"):
            mode, rest = "vertex", path[len("/v1beta1/") :]
            denied = self._check_bearer(headers)
        else:
            return 404, status_body(404, "NOT_FOUND", f"no route {path}"), {}
        if denied is not None:
            return denied[0], denied[1], {}
        return (
            (*self._api(mode, method, rest, query, body), {})
            if ":download" not in rest
            else self._download(rest, query)
        )

    # -- auth -----------------------------------------------------------------------------------

    def _check_key(self, headers: Mapping[str, str]) -> tuple[int, Any] | None:
        given = {k.lower(): v for k, v in headers.items()}.get("x-goog-api-key")
        if not given:
            return 403, status_body(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        if given != self.api_key:
            return 400, status_body(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
            )
        return None

    def _check_bearer(self, headers: Mapping[str, str]) -> tuple[int, Any] | None:
        value = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if not value.startswith("Bearer ") or value[7:] not in self.tokens:
            return 401, status_body(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            )
        return None

    def _token(self, form: Mapping[str, str]) -> tuple[int, Any]:
        grant = form.get("grant_type")
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            from google.auth import jwt

            try:
                claims = jwt.decode(  # type: ignore[no-untyped-call]
                    form.get("assertion", ""), certs=self._public_pem, audience=self.token_uri
                )
            except (ValueError, TypeError) as exc:
                return 400, {"error": "invalid_grant", "error_description": f"Invalid JWT Signature. ({exc})"}
            if claims.get("scope") != "https://www.googleapis.com/auth/cloud-platform":
                return 400, {"error": "invalid_scope", "error_description": "Invalid OAuth scope."}
        elif grant != "refresh_token" or not form.get("refresh_token"):
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."}
        token = f"ya29.fake-{uuid.uuid4().hex}"
        with self._lock:
            self.tokens.add(token)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    # -- API ------------------------------------------------------------------------------------

    def _api(self, mode: str, method: str, rest: str, query: str, body: Any) -> tuple[int, Any]:
        scope = ""
        if mode == "vertex":
            match = re.match(r"^(projects/[^/]+/locations/[^/]+)/(.*)$", rest)
            if not match:
                return 404, status_body(404, "NOT_FOUND", f"no resource {rest}")
            scope, rest = match.group(1), match.group(2)
        model_path = r"^publishers/google/models/([^/:]+)" if mode == "vertex" else r"^models/([^/:]+)"
        if method == "POST" and (
            m := re.match(
                model_path + r":(predictLongRunning|predict|generateContent|fetchPredictOperation)$", rest
            )
        ):
            model, verb = m.groups()
            if verb == "fetchPredictOperation":
                return self._operation(str((body or {}).get("operationName", "")))
            verbs = {
                "predictLongRunning": self._predict_long_running,
                "predict": self._predict,
                "generateContent": self._generate_content,
            }
            return verbs[verb](mode, scope, model, body or {})
        if method == "GET" and mode == "gemini" and re.match(r"^models/[^/]+/operations/[^/]+$", rest):
            return self._operation(rest)
        if method == "POST" and rest.endswith(":cancel") and "/operations/" in rest:
            return self._cancel_operation(f"{scope}/{rest}".strip("/").removesuffix(":cancel"))
        if method == "POST" and rest == "interactions":
            return self._interaction_create(mode, body or {})
        if m := re.match(r"^interactions/([^/]+)(/cancel)?$", rest):
            return self._interaction(m.group(1), cancel=bool(m.group(2)) and method == "POST")
        return 404, status_body(404, "NOT_FOUND", f"no route {rest}")

    def _new_job(
        self, kind: str, name: str, model: str, mode: str, body: dict[str, Any], prompt: str
    ) -> _Job:
        outcome = getattr(self._request_local, "outcome", None) or _outcome(prompt)
        polls = 10**9 if outcome == "slow" else self.processing_polls
        job = _Job(kind, name, model, mode, body, outcome, polls)
        with self._lock:
            self.jobs[name] = job
        return job

    @staticmethod
    def _prompt(body: Mapping[str, Any]) -> str:
        try:
            return str(body["instances"][0]["prompt"])
        except (KeyError, IndexError, TypeError):
            return ""

    def _predict_long_running(
        self, mode: str, scope: str, model: str, body: dict[str, Any]
    ) -> tuple[int, Any]:
        prompt = self._prompt(body)
        if not prompt and not (body.get("instances") or [{}])[0].get("image"):
            return 400, status_body(400, "INVALID_ARGUMENT", "Either a prompt or an image is required.")
        if _outcome(prompt) == "blocked":
            return 400, status_body(400, "INVALID_ARGUMENT", SAFETY_MESSAGE)
        op_id = uuid.uuid4().hex[:12]
        prefix = f"{scope}/publishers/google/models/{model}" if mode == "vertex" else f"models/{model}"
        job = self._new_job("veo", f"{prefix}/operations/{op_id}", model, mode, body, prompt)
        return 200, {"name": job.name}

    def _operation(self, name: str) -> tuple[int, Any]:
        job = self.jobs.get(name)
        if job is None or job.kind != "veo":
            return 404, status_body(404, "NOT_FOUND", f"Operation {name} not found")
        if job.cancelled:
            return 200, {"name": name, "done": True, "error": {"code": 1, "message": "CANCELLED"}}
        if job.polls_left > 0:
            job.polls_left -= 1
            return 200, {
                "name": name,
                "metadata": {
                    "@type": "type.googleapis.com/google.cloud.aiplatform.v1beta1."
                    "GenerateVideoOperationMetadata"
                },
            }
        answer: dict[str, Any] = {"name": name, "done": True}
        if job.outcome == "error":
            answer["error"] = {"code": 13, "message": "Video generation failed due to an internal error."}
            return 200, answer
        if job.outcome == "filtered":
            output: dict[str, Any] = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [RAI_REASON]}
        elif job.mode == "gemini":
            file_id = name.rsplit("/", 1)[1]
            output = {
                "generatedSamples": [
                    {"video": {"uri": f"{self.url}/v1beta/files/{file_id}:download?alt=media"}}
                ]
            }
        elif storage := job.body.get("parameters", {}).get("storageUri"):
            output = {
                "videos": [
                    {
                        "gcsUri": f"{storage.rstrip('/')}/{name.rsplit('/', 1)[1]}/sample_0.mp4",
                        "mimeType": "video/mp4",
                    }
                ]
            }
        else:
            output = {
                "videos": [
                    {"bytesBase64Encoded": base64.b64encode(VIDEO_BYTES).decode(), "mimeType": "video/mp4"}
                ]
            }
        if job.mode == "gemini":
            answer["response"] = {
                "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                "generateVideoResponse": output,
            }
        else:
            answer["response"] = {
                "@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse",
                **output,
            }
        return 200, answer

    def _download(self, rest: str, query: str) -> tuple[int, Any, dict[str, str]]:
        file_id = rest.removeprefix("files/").split(":")[0]
        if "alt=media" not in query or not any(n.endswith(f"/{file_id}") for n in self.jobs):
            return 404, status_body(404, "NOT_FOUND", f"File {file_id} not found"), {}
        return 302, b"", {"Location": f"{self.url}/_signed/{file_id}.mp4", "Content-Type": "text/html"}

    def _cancel_operation(self, name: str) -> tuple[int, Any]:
        job = self.jobs.get(name)
        if job is None:
            return 404, status_body(404, "NOT_FOUND", f"Operation {name} not found")
        if job.polls_left <= 0 or job.cancelled:
            return 400, status_body(400, "FAILED_PRECONDITION", "Operation has already completed.")
        job.cancelled = True
        return 200, {}

    def _predict(self, mode: str, scope: str, model: str, body: dict[str, Any]) -> tuple[int, Any]:
        if mode != "vertex":
            return 404, status_body(404, "NOT_FOUND", "GenerateImages is not supported by the Gemini API")
        outcome = _outcome(self._prompt(body))
        if outcome == "blocked":
            return 400, status_body(400, "INVALID_ARGUMENT", SAFETY_MESSAGE)
        if outcome == "filtered":
            return 200, {"predictions": [{"raiFilteredReason": IMAGEN_RAI_REASON}]}
        count = int(body.get("parameters", {}).get("sampleCount", 1))
        encoded = base64.b64encode(PNG_BYTES).decode()
        return 200, {
            "predictions": [{"bytesBase64Encoded": encoded, "mimeType": "image/png"} for _ in range(count)]
        }

    def _generate_content(self, mode: str, scope: str, model: str, body: dict[str, Any]) -> tuple[int, Any]:
        try:
            prompt = str(body["contents"][0]["parts"][0]["text"])
        except (KeyError, IndexError, TypeError):
            return 400, status_body(
                400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified"
            )
        outcome = _outcome(prompt)
        answer: dict[str, Any] = {"responseId": f"resp-{uuid.uuid4().hex[:10]}", "modelVersion": model}
        if outcome == "blocked":
            answer["promptFeedback"] = {"blockReason": "PROHIBITED_CONTENT"}
        elif outcome == "filtered":
            answer["candidates"] = [
                {"finishReason": "IMAGE_SAFETY", "finishMessage": "Unable to show the generated image."}
            ]
        else:
            data = base64.b64encode(PNG_BYTES).decode()
            answer["candidates"] = [
                {
                    "content": {
                        "role": "model",
                        "parts": [{"inlineData": {"mimeType": "image/png", "data": data}}],
                    },
                    "finishReason": "STOP",
                }
            ]
        return 200, answer

    def _interaction_create(self, mode: str, body: dict[str, Any]) -> tuple[int, Any]:
        content = body.get("input")
        prompt = (
            content
            if isinstance(content, str)
            else next(
                (c.get("text", "") for c in content or () if isinstance(c, dict) and c.get("type") == "text"),
                "",
            )
        )
        if not body.get("model") or not prompt:
            return 400, status_body(400, "INVALID_ARGUMENT", "model and input are required")
        if _outcome(prompt) == "blocked":
            return 400, status_body(400, "INVALID_ARGUMENT", SAFETY_MESSAGE)
        job = self._new_job("omni", f"v1_{uuid.uuid4().hex[:16]}", str(body["model"]), mode, body, prompt)
        return 200, {"id": job.name, "object": "interaction", "model": job.model, "status": "in_progress"}

    def _interaction(self, interaction_id: str, cancel: bool) -> tuple[int, Any]:
        job = self.jobs.get(interaction_id)
        if job is None or job.kind != "omni":
            return 404, status_body(404, "NOT_FOUND", f"Interaction {interaction_id} not found")
        base = {"id": job.name, "object": "interaction", "model": job.model}
        if cancel:
            if job.polls_left <= 0 or job.cancelled:
                return 400, status_body(
                    400, "FAILED_PRECONDITION", "Only running background interactions can be cancelled."
                )
            job.cancelled = True
            return 200, {**base, "status": "cancelled"}
        if job.cancelled:
            return 200, {**base, "status": "cancelled"}
        if job.polls_left > 0:
            job.polls_left -= 1
            return 200, {**base, "status": "in_progress"}
        if job.outcome == "error":
            return 200, {
                **base,
                "status": "failed",
                "errors": [{"code": "internal", "message": "Video generation failed."}],
            }
        if job.outcome == "filtered":
            return 200, {
                **base,
                "status": "failed",
                "errors": [{"code": "safety", "message": "The output was blocked by safety filters."}],
            }
        video = {"type": "video", "mime_type": "video/mp4", "data": base64.b64encode(VIDEO_BYTES).decode()}
        steps = [
            {"type": "user_input", "content": [{"type": "text", "text": "..."}]},
            {"type": "model_output", "content": [video]},
        ]
        return 200, {
            **base,
            "status": "completed",
            "steps": steps,
            "usage": {"output_tokens_by_modality": [{"modality": "video", "tokens": 58000}]},
        }


@pytest.fixture
def fake_google() -> Iterator[FakeGoogle]:
    """A started :class:`FakeGoogle` (stopped after the test)."""
    with FakeGoogle() as fake:
        yield fake
