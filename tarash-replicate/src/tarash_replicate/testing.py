"""A fake Replicate API speaking Replicate's HTTP wire protocol, and a pytest fixture for it.

Test Replicate code without the network or a token::

    # conftest.py
    pytest_plugins = ["tarash_replicate.testing"]

    # test_app.py
    def test_video(fake_replicate):
        config = fake_replicate.video_config("google/veo-3-fast")
        video = generate_video(config, VideoGenerationRequest(prompt="a cat"))
        assert fake_replicate.counts["submit"] == 1

A threaded HTTP server on ``http://127.0.0.1:<random port>`` implementing:

* ``POST /v1/models/{owner}/{name}/predictions`` and ``POST /v1/predictions`` (``version``):
  201 with the prediction, ``starting``. With ``Prefer: wait[=N]`` the answer already holds the
  finished prediction (``succeeded``), as for a model that runs within the wait;
* ``GET /v1/predictions/{id}``: ``starting`` ``starting_polls`` times, then ``processing`` (logs
  with a progress bar) ``processing_polls`` times, then ``succeeded`` with the output. A GET of a
  prediction the client has already seen finished is counted as ``result``, any other as
  ``status``;
* ``POST /v1/predictions/{id}/cancel``: the prediction, ``canceled`` (or unchanged if finished);
* ``GET /v1/predictions``: every prediction, most recent first, :attr:`FakeReplicateServer.page_size`
  a page with ``next``/``previous`` cursor URLs, narrowed by ``created_after`` (inclusive) and
  ``created_before`` (ISO 8601), without advancing any;
* ``POST /v1/files`` (multipart ``content``), ``GET /v1/models/{owner}/{name}`` (with the
  ``openapi_schema`` registered in :attr:`FakeReplicateServer.schemas`, else 404) and
  ``GET /v1/webhooks/default/secret``;
* webhooks: a create with ``webhook`` gets Standard-Webhooks-signed POSTs of the prediction for
  the events in ``webhook_events_filter`` (``start`` at creation, ``completed`` when it finishes),
  recorded in :attr:`FakeReplicateServer.deliveries`;
* ``GET /delivery/{id}/{name}``: output files put with :meth:`FakeReplicateServer.put_output`
  (no auth, like ``replicate.delivery``), 404 once the prediction expired.

Every other request needs ``Authorization: Bearer <api_token>``; errors are problem details
(``title``, ``detail``, ``status``). Faults: :meth:`FakeReplicateServer.inject` per request kind,
or a path prefix ``/_faults/<name>`` on the base URL (see :data:`PATH_FAULTS`), so a config whose
``base_url`` ends in ``/_faults/job-fails`` meets that fault on every call.
"""

from __future__ import annotations

import base64
import email.parser
import json
import re
import secrets
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import attrs
import pytest

from tarash.tarash_gateway.models import ImageGenerationConfig, VideoGenerationConfig

__all__ = ["FAULTS", "KINDS", "PATH_FAULTS", "FakeReplicateServer", "fake_replicate"]

#: Request kinds, as counted by :attr:`FakeReplicateServer.counts` and targeted by ``inject``.
KINDS = ("submit", "status", "result", "cancel", "list", "upload", "schema", "secret")
#: ``http``: answer ``status_code``/``body``/``headers``; ``drop``: close without answering (a
#: submit creates the prediction first, as when Replicate accepted it and the answer was lost);
#: ``lost``: close without answering or creating anything (the request never reached Replicate,
#: which the client cannot tell from ``drop``); ``stall``: wait ``delay`` seconds, then drop.
FAULTS = ("http", "drop", "lost", "stall")
REDACTED = "***REDACTED***"

_RATE_LIMITED = {"title": "Too Many Requests", "detail": "Request was throttled.", "status": 429}
#: ``/_faults/<name>`` prefixes: name -> (kind, fault) or a prediction behaviour.
PATH_FAULTS: dict[str, Any] = {
    "submit-422": (
        "submit",
        422,
        {
            "title": "Input validation failed",
            "detail": "- input.prompt: prompt is not accepted by this model\n",
            "status": 422,
            "invalid_fields": [
                {
                    "type": "invalid",
                    "field": "input.prompt",
                    "description": "prompt is not accepted by this model",
                }
            ],
        },
    ),
    "submit-500": (
        "submit",
        500,
        {"title": "Internal Server Error", "detail": "scheduler crashed", "status": 500},
    ),
    "status-429": ("status", 429, _RATE_LIMITED),
    "job-fails": "fails",
    "nsfw": "nsfw",
    "slow": "slow",
}
_PATH_FAULT = re.compile(r"^/_faults/([\w-]+)(/.*)$")
_IMAGE_HINTS = ("image", "flux", "recraft", "ideogram", "imagen", "sdxl", "diffusion")


@attrs.define
class _Fault:
    fault: str
    status_code: int
    body: Any
    headers: dict[str, str]
    delay: float | None


@attrs.define
class _Prediction:
    id: str
    model: str
    version: str
    input: dict[str, Any]
    webhook: str | None
    events: list[str]
    behaviour: str | None
    created_at: str
    polls: int = 0
    status: str = "starting"
    logs: list[str] = attrs.field(factory=list)
    output: Any = None
    error: str | None = None
    seen_final: bool = False
    data_removed: bool = False


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _problem(status: int, title: str, detail: str) -> dict[str, Any]:
    return {"title": title, "detail": detail, "status": status}


class FakeReplicateServer:
    """A fake of Replicate's HTTP API on 127.0.0.1 (a context manager; or ``start``/``stop``).

    Args:
        api_token: the token every request must carry as ``Authorization: Bearer <token>``
            (``None``: any non-empty bearer token is accepted).
        starting_polls: GETs answering ``starting`` before the prediction runs.
        processing_polls: then GETs answering ``processing``, each adding a progress-bar log line.
        latency: seconds to wait before every answer.
        webhook_secret: the ``whsec_`` signing secret (a random one by default).
        output_factory: ``(prediction dict) -> output``; default: a video URL for video models,
            a list of ``num_outputs`` image URLs for image models.

    Attributes:
        url: ``http://127.0.0.1:<port>`` once started.
        schemas: ``owner/name`` -> the ``openapi_schema`` served by ``GET /v1/models/{owner}/{name}``;
            a create for such a model is validated against its ``Input`` (required, enums) as
            Replicate does.
    """

    def __init__(
        self,
        *,
        api_token: str | None = "r8_fake_token",
        starting_polls: int = 1,
        processing_polls: int = 2,
        latency: float = 0.0,
        webhook_secret: str | None = None,
        output_factory: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        self.api_token = api_token
        self.starting_polls = starting_polls
        self.processing_polls = processing_polls
        self.latency = latency
        self.webhook_secret = webhook_secret or "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self.output_factory = output_factory
        self.schemas: dict[str, Any] = {}
        #: Predictions per page of ``GET /v1/predictions`` (Replicate: 100).
        self.page_size = 100
        self.url = ""
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(KINDS, 0)
        self._predictions: dict[str, _Prediction] = {}
        self._submissions: list[dict[str, Any]] = []
        self._uploads: list[dict[str, Any]] = []
        self._deliveries: list[dict[str, Any]] = []
        self._faults: dict[str, deque[_Fault]] = {kind: deque() for kind in KINDS}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._senders: list[threading.Thread] = []
        # Its own lock: put_output is called from an output_factory, under self._lock.
        self._files_lock = threading.Lock()
        self._files: dict[str, tuple[str, bytes, str]] = {}
        self.file_gets = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeReplicateServer:
        """Start listening (idempotent); returns the server."""
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-replicate", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and wait for webhook deliveries in flight (idempotent)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)
        for sender in list(self._senders):
            sender.join(10)
        self._server = self._thread = None

    def __enter__(self) -> FakeReplicateServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- observation and control -------------------------------------------------------------

    @property
    def counts(self) -> dict[str, int]:
        """Requests received per kind (see :data:`KINDS`): a copy."""
        with self._lock:
            return dict(self._counts)

    @property
    def submissions(self) -> list[dict[str, Any]]:
        """Every create received: ``path``, ``body``, ``headers`` (token redacted) and ``id``."""
        with self._lock:
            return [dict(s) for s in self._submissions]

    @property
    def uploads(self) -> list[dict[str, Any]]:
        """Every file uploaded: ``filename``, ``content_type``, ``content`` and ``id``."""
        with self._lock:
            return [dict(u) for u in self._uploads]

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """Every webhook POST made: ``url``, ``event``, ``headers``, ``body`` and the receiver's
        ``status_code`` (``None`` when it could not be reached)."""
        with self._lock:
            return [dict(d) for d in self._deliveries]

    def prediction(self, prediction_id: str) -> dict[str, Any]:
        """The prediction as ``GET /v1/predictions/{id}`` would answer it (without advancing it)."""
        with self._lock:
            return self._json(self._predictions[prediction_id])

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
    ) -> None:
        """Make the next ``times`` requests of ``kind`` meet ``fault`` (see :data:`FAULTS`)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, got {fault!r}")
        extra = dict(headers or {})
        if retry_after is not None:
            extra["Retry-After"] = str(retry_after)
        if body is None:
            body = _problem(status_code, "Injected error", f"injected HTTP {status_code}")
        entry = _Fault(fault=fault, status_code=status_code, body=body, headers=extra, delay=delay)
        with self._lock:
            self._faults[kind].extend(entry for _ in range(times))

    def finish(self, prediction_id: str, status: str = "succeeded", error: str | None = None) -> None:
        """End a prediction now (``succeeded``, ``failed`` or ``canceled``), delivering webhooks."""
        with self._lock:
            prediction = self._predictions[prediction_id]
            self._end(prediction, status, error)

    def expire(self, prediction_id: str) -> None:
        """Act out the one-hour retention: the prediction's input, output and logs are removed,
        and its output files (:meth:`put_output`) answer 404."""
        with self._lock:
            prediction = self._predictions[prediction_id]
            prediction.data_removed = True
            prediction.input, prediction.output, prediction.logs = {}, None, []
        with self._files_lock:
            for path in [p for p, (owner, _, _) in self._files.items() if owner == prediction_id]:
                del self._files[path]

    def put_output(self, prediction_id: str, name: str, data: bytes, content_type: str) -> str:
        """Serve ``data`` as an output file of a prediction (no auth, as replicate.delivery does)
        at ``GET /delivery/{prediction_id}/{name}``; returns its URL. Gone after :meth:`expire`."""
        path = f"/delivery/{prediction_id}/{name}"
        with self._files_lock:
            self._files[path] = (prediction_id, data, content_type)
        return f"{self.url}{path}"

    def sign(
        self, body: bytes, *, msg_id: str | None = None, timestamp: float | None = None
    ) -> dict[str, str]:
        """Standard Webhooks headers for ``body``, signed with :attr:`webhook_secret`."""
        from standardwebhooks.webhooks import Webhook

        msg_id = msg_id or f"msg_{secrets.token_hex(12)}"
        moment = datetime.fromtimestamp(time.time() if timestamp is None else timestamp, tz=timezone.utc)
        signature = Webhook(self.webhook_secret).sign(msg_id, moment, body.decode())
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": signature,
        }

    def video_config(self, model: str = "google/veo-3-fast", **kwargs: Any) -> VideoGenerationConfig:
        """A ``VideoGenerationConfig`` for ``provider="replicate"`` pointing at this server."""
        return VideoGenerationConfig(**self._config_fields(model, kwargs))

    def image_config(self, model: str = "google/imagen-4", **kwargs: Any) -> ImageGenerationConfig:
        """An ``ImageGenerationConfig`` for ``provider="replicate"`` pointing at this server."""
        return ImageGenerationConfig(**self._config_fields(model, kwargs))

    def _config_fields(self, model: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        if not self.url:
            raise RuntimeError("FakeReplicateServer is not started")
        fields: dict[str, Any] = {
            "model": model,
            "provider": "replicate",
            "api_key": self.api_token,
            "base_url": self.url,
            "poll_interval": 0.01,
            "timeout": 30,
        }
        fields.update(kwargs)
        return fields

    # -- the protocol (called by the handler under no lock) ----------------------------------

    def authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        return scheme == "Bearer" and bool(token) and (self.api_token is None or token == self.api_token)

    def _take_fault(self, kind: str, path_fault: str | None) -> _Fault | None:
        spec = PATH_FAULTS.get(path_fault or "")
        if isinstance(spec, tuple) and spec[0] == kind:
            headers = {"Retry-After": "60"} if spec[1] == 429 else {}
            return _Fault(fault="http", status_code=spec[1], body=spec[2], headers=headers, delay=None)
        with self._lock:
            queue = self._faults[kind]
            return queue.popleft() if queue else None

    def _count(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] += 1

    def _json(self, p: _Prediction) -> dict[str, Any]:
        base = f"{self.url}/v1/predictions/{p.id}"
        finished = p.status in ("succeeded", "failed", "canceled")
        return {
            "id": p.id,
            "model": p.model,
            "version": p.version,
            "input": dict(p.input),
            "logs": "\n".join(p.logs),
            "output": p.output,
            "data_removed": p.data_removed,
            "error": p.error,
            "status": p.status,
            "source": "api",
            "created_at": p.created_at,
            "started_at": p.created_at if p.status != "starting" else None,
            "completed_at": _now() if finished else None,
            "urls": {"get": base, "cancel": f"{base}/cancel", "web": f"https://replicate.com/p/{p.id}"},
            "metrics": {"predict_time": 0.1} if p.status == "succeeded" else {},
        }

    def _modality(self, p: _Prediction) -> str:
        from ._families import family_for

        family = family_for(p.model)
        if family is not None:
            return family.modality
        lowered = p.model.lower()
        return "image" if "video" not in lowered and any(h in lowered for h in _IMAGE_HINTS) else "video"

    def _output(self, p: _Prediction) -> Any:
        if self.output_factory is not None:
            return self.output_factory(self._json(p))
        if self._modality(p) == "video":
            return f"https://replicate.delivery/xezq/{p.id}/output.mp4"
        count = p.input.get("num_outputs", 1)
        count = count if isinstance(count, int) and 1 <= count <= 8 else 1
        return [f"https://replicate.delivery/xezq/{p.id}/out-{i}.webp" for i in range(count)]

    def _end(self, p: _Prediction, status: str, error: str | None = None) -> None:
        if p.status in ("succeeded", "failed", "canceled"):
            return
        p.status = status
        if status == "succeeded":
            p.output = self._output(p)
        p.error = error
        self._deliver(p, "completed")

    def _advance(self, p: _Prediction) -> None:
        if p.status in ("succeeded", "failed", "canceled"):
            return
        if p.behaviour == "slow":
            p.status = "processing" if p.polls > 0 else "starting"
            p.polls += 1
            return
        step = p.polls
        p.polls += 1
        if step < self.starting_polls:
            return
        if step < self.starting_polls + self.processing_polls:
            done = step - self.starting_polls + 1
            total = self.processing_polls
            percent = done * 100 // total
            bar = "#" * (percent // 10)
            p.status = "processing"
            p.logs.append(f"{percent:3d}%|{bar:<10}| {done}/{total} [00:0{done}<00:00,  1.00it/s]")
            return
        if p.behaviour == "fails":
            self._end(p, "failed", "CUDA out of memory: the model crashed")
        elif p.behaviour == "nsfw":
            self._end(p, "failed", "NSFW content detected. Try running it again, or try a different prompt.")
        else:
            self._end(p, "succeeded")

    def _deliver(self, p: _Prediction, event: str) -> None:
        """POST the prediction to its webhook (called under the lock; sends from a thread)."""
        if p.webhook is None or event not in p.events:
            return
        body = json.dumps(self._json(p)).encode()
        headers = self.sign(body)
        record: dict[str, Any] = {"url": p.webhook, "event": event, "headers": headers, "body": body}
        self._deliveries.append(record)
        sender = threading.Thread(target=_post, args=(record, self._lock), daemon=True)
        self._senders.append(sender)
        sender.start()

    def create(
        self, path: str, body: Any, headers: Mapping[str, str], behaviour: str | None
    ) -> tuple[int, Any]:
        match = re.fullmatch(r"/v1/models/([^/]+)/([^/]+)/predictions", path)
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return 422, {
                **_problem(422, "Input validation failed", "- input: input is required\n"),
                "invalid_fields": [
                    {"type": "required", "field": "input", "description": "input is required"}
                ],
            }
        if match is None and not isinstance(body.get("version"), str):
            return 422, {
                **_problem(422, "Input validation failed", "- version: version is required\n"),
                "invalid_fields": [
                    {"type": "required", "field": "version", "description": "version is required"}
                ],
            }
        slug = f"{match[1]}/{match[2]}" if match else "community/model"
        problem = self._validate(slug, body["input"])
        if problem is not None:
            return 422, problem
        with self._lock:
            pid = secrets.token_hex(13)
            prediction = _Prediction(
                id=pid,
                model=slug,
                version=body.get("version") or "official",
                input=body["input"],
                webhook=body.get("webhook"),
                events=list(body.get("webhook_events_filter") or ["start", "output", "logs", "completed"]),
                behaviour=behaviour,
                created_at=_now(),
            )
            self._predictions[pid] = prediction
            redacted = {k: (REDACTED if k == "authorization" else v) for k, v in headers.items()}
            self._submissions.append({"path": path, "body": body, "headers": redacted, "id": pid})
            self._deliver(prediction, "start")
            if "prefer" in headers and headers["prefer"].startswith("wait") and behaviour != "slow":
                while prediction.status not in ("succeeded", "failed", "canceled"):
                    self._advance(prediction)
                prediction.seen_final = True
            return 201, self._json(prediction)

    def _validate(self, slug: str, given: dict[str, Any]) -> dict[str, Any] | None:
        from ._payload import input_schema

        schema = input_schema(self.schemas.get(slug))
        if schema is None:
            return None
        invalid = [
            {"type": "required", "field": f"input.{name}", "description": f"{name} is required"}
            for name in schema["required"]
            if name not in given
        ]
        for name, value in given.items():
            prop = schema["properties"].get(name, {})
            enum = prop.get("enum")
            if isinstance(enum, list) and value not in enum:
                invalid.append(
                    {"type": "enum", "field": f"input.{name}", "description": f"{name} must be one of {enum}"}
                )
        if not invalid:
            return None
        detail = "".join(f"- {entry['field']}: {entry['description']}\n" for entry in invalid)
        return {**_problem(422, "Input validation failed", detail), "invalid_fields": invalid}

    def get(self, pid: str) -> tuple[int, Any]:
        with self._lock:
            prediction = self._predictions.get(pid)
            if prediction is None:
                return 404, _problem(404, "Not found", "The requested resource could not be found.")
            self._advance(prediction)
            if prediction.status in ("succeeded", "failed", "canceled"):
                prediction.seen_final = True
            return 200, self._json(prediction)

    def list_predictions(self, query: Mapping[str, str]) -> tuple[int, Any]:
        bounds: dict[str, datetime] = {}
        for name in ("created_after", "created_before"):
            if name in query:
                try:
                    bounds[name] = _moment(query[name])
                except ValueError:
                    return 400, _problem(400, "Bad request", f"{name} is not an ISO 8601 date-time")
        try:
            offset = int(base64.urlsafe_b64decode(query.get("cursor", "MA==")).decode())
        except ValueError:
            return 400, _problem(400, "Bad request", "invalid cursor")
        with self._lock:
            chosen = [
                p
                for p in self._predictions.values()
                if _moment(p.created_at) >= bounds.get("created_after", _moment(p.created_at))
                and ("created_before" not in bounds or _moment(p.created_at) < bounds["created_before"])
            ]
            chosen.sort(key=lambda p: p.created_at, reverse=True)
            results = [self._json(p) for p in chosen[offset : offset + self.page_size]]

        def link(at: int) -> str:
            cursor = base64.urlsafe_b64encode(str(at).encode()).decode()
            filters = {k: v for k, v in query.items() if k != "cursor"}
            return f"{self.url}/v1/predictions?{urlencode({**filters, 'cursor': cursor})}"

        more = offset + self.page_size < len(chosen)
        return 200, {
            "next": link(offset + self.page_size) if more else None,
            "previous": link(max(offset - self.page_size, 0)) if offset else None,
            "results": results,
        }

    def cancel(self, pid: str) -> tuple[int, Any]:
        with self._lock:
            prediction = self._predictions.get(pid)
            if prediction is None:
                return 404, _problem(404, "Not found", "The requested resource could not be found.")
            self._end(prediction, "canceled")
            return 200, self._json(prediction)

    def upload(self, content_type: str, body: bytes) -> tuple[int, Any]:
        message = email.parser.BytesParser().parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body
        )
        part = next(
            (p for p in message.walk() if p.get_param("name", header="content-disposition") == "content"),
            None,
        )
        if part is None:
            return 400, _problem(400, "Bad request", "missing multipart field 'content'")
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        with self._lock:
            fid = secrets.token_hex(12)
            self._uploads.append(
                {
                    "id": fid,
                    "filename": part.get_filename(),
                    "content_type": part.get_content_type(),
                    "content": content,
                }
            )
        return 201, {
            "id": fid,
            "name": part.get_filename(),
            "content_type": part.get_content_type(),
            "size": len(content),
            "etag": fid,
            "checksums": {},
            "metadata": {},
            "created_at": _now(),
            "expires_at": None,
            "urls": {"get": f"{self.url}/v1/files/{fid}"},
        }

    def model(self, slug: str) -> tuple[int, Any]:
        schema = self.schemas.get(slug)
        if schema is None:
            return 404, _problem(404, "Not found", "The requested resource could not be found.")
        owner, name = slug.split("/")
        return 200, {
            "owner": owner,
            "name": name,
            "latest_version": {"id": "f" * 64, "created_at": _now(), "openapi_schema": schema},
        }


def _post(record: dict[str, Any], lock: threading.Lock) -> None:
    request = urllib.request.Request(
        record["url"],
        data=record["body"],
        headers={**record["headers"], "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            status: int | None = answer.status
    except OSError as exc:
        status = getattr(exc, "code", None)
    with lock:
        record["status_code"] = status


class _Handler(BaseHTTPRequestHandler):
    fake: FakeReplicateServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        fake = self.fake
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        if method == "GET" and path.startswith("/delivery/"):
            self._file(path)
            return
        match = _PATH_FAULT.match(path)
        path_fault, path = (match[1], match[2]) if match else (None, path)
        kind = _kind(method, path)
        if fake.latency:
            time.sleep(fake.latency)
        if kind is None:
            self._send(404, _problem(404, "Not found", "The requested resource could not be found."))
            return
        counted = _peek_kind(fake, path) if kind == "status" else kind
        fake._count(counted)
        if not fake.authorized(self.headers.get("authorization") or ""):
            self._send(401, _problem(401, "Unauthenticated", "You did not pass a valid authentication token"))
            return
        fault = fake._take_fault(counted, path_fault)
        if fault is not None and fault.fault == "http":
            self._send(fault.status_code, fault.body, fault.headers)
            return
        if fault is not None and (kind != "submit" or fault.fault == "lost"):
            self._drop(fault)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, body = self._route(kind, path, raw, headers, path_fault)
        if fault is not None:
            self._drop(fault)
            return
        self._send(status, body)

    def _route(
        self, kind: str, path: str, raw: bytes, headers: Mapping[str, str], path_fault: str | None
    ) -> tuple[int, Any]:
        fake = self.fake
        parts = path.strip("/").split("/")
        if kind == "submit":
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                return 400, _problem(400, "Bad request", "the body is not JSON")
            behaviour = PATH_FAULTS.get(path_fault or "")
            return fake.create(path, body, headers, behaviour if isinstance(behaviour, str) else None)
        if kind == "status":
            return fake.get(parts[2])
        if kind == "list":
            return fake.list_predictions(dict(parse_qsl(urlsplit(self.path).query)))
        if kind == "cancel":
            return fake.cancel(parts[2])
        if kind == "upload":
            return fake.upload(headers.get("content-type", ""), raw)
        if kind == "schema":
            return fake.model(f"{parts[2]}/{parts[3]}")
        return 200, {"key": fake.webhook_secret}

    def _file(self, path: str) -> None:
        fake = self.fake
        with fake._files_lock:
            fake.file_gets += 1
            stored = fake._files.get(path)
        if stored is None:
            self._send(404, _problem(404, "Not found", "The requested resource could not be found."))
            return
        _, data, content_type = stored
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _drop(self, fault: _Fault) -> None:
        if fault.fault == "stall" and fault.delay:
            time.sleep(fault.delay)
        self.close_connection = True

    def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _kind(method: str, path: str) -> str | None:
    routes = (
        ("POST", r"/v1/models/[^/]+/[^/]+/predictions", "submit"),
        ("POST", r"/v1/predictions", "submit"),
        ("GET", r"/v1/predictions", "list"),
        ("GET", r"/v1/predictions/[^/]+", "status"),
        ("POST", r"/v1/predictions/[^/]+/cancel", "cancel"),
        ("POST", r"/v1/files", "upload"),
        ("GET", r"/v1/models/[^/]+/[^/]+", "schema"),
        ("GET", r"/v1/webhooks/default/secret", "secret"),
    )
    return next((kind for m, pattern, kind in routes if m == method and re.fullmatch(pattern, path)), None)


def _peek_kind(fake: FakeReplicateServer, path: str) -> str:
    """``result`` for a GET of a prediction the client has already seen finished."""
    with fake._lock:
        prediction = fake._predictions.get(path.rstrip("/").rsplit("/", 1)[-1])
        return "result" if prediction is not None and prediction.seen_final else "status"


@pytest.fixture
def fake_replicate() -> Iterator[FakeReplicateServer]:
    """A started :class:`FakeReplicateServer`, stopped after the test."""
    with FakeReplicateServer() as server:
        yield server
