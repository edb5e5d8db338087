"""A job service on 127.0.0.1 and a correct provider plugin whose hooks are flows talking to it.

One HTTP server per planted provider, started on first use in the process running the kit. A job
advances one step per status call (queued at position 1, queued at position 0, processing 30 %,
processing 70 %, completed); requests are counted by kind like a test server's counters. The
config's API root ``{server}/s/{scenario}`` selects a conformance-kit scenario. The planted broken
providers in :mod:`kitplanted.providers` subclass :class:`GoodProvider` and override one piece each.

Routes (below ``/s/{scenario}``): ``POST /jobs``, ``GET /jobs/{id}``, ``GET /jobs/{id}/result``,
``POST /jobs/{id}/cancel``, and ``POST /generate`` (blocking providers; counted as a submit).
"""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from collections.abc import Callable, Generator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tarash.tarash_gateway import get_provider
from tarash.tarash_gateway.exceptions import GenerationFailedError, HTTPError, ValidationError
from tarash.tarash_gateway.models import (
    ImageGenerationConfig,
    ImageGenerationResponse,
    VideoGenerationConfig,
    VideoGenerationResponse,
)
from tarash.tarash_gateway.plugin import (
    CallContext,
    Capabilities,
    JobRef,
    JobStatus,
    ProviderSpec,
    Request,
    SubmittedJob,
    hookimpl,
)

#: (state, queue_position, progress_percent) per status call.
STEPS: tuple[tuple[str, int | None, float | None], ...] = (
    ("queued", 1, None),
    ("queued", 0, None),
    ("processing", None, 30.0),
    ("processing", None, 70.0),
    ("completed", None, 100.0),
)

PROVIDERS: dict[str, GoodProvider] = {}
Flow = Generator[Request, Any, Any]


class Service:
    """Jobs and request counters of one provider, served over HTTP on a loopback port."""

    def __init__(self, steps: tuple[tuple[str, int | None, float | None], ...]) -> None:
        self.steps = steps
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.jobs: dict[str, dict[str, Any]] = {}
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        with self.lock:
            if self._server is None:
                self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
                self._server.daemon_threads = True
                threading.Thread(target=self._server.serve_forever, daemon=True).start()
            return f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer(self, method: str, path: str) -> tuple[int, Any, dict[str, str]] | None:
        """(status, body, headers) for a request, or None to drop the connection unanswered."""
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "s":
            return 404, {"error": "no route"}, {}
        scenario, route = parts[1], parts[2:]
        kind = _kind(method, route)
        with self.lock:
            self.counts[kind] += 1
            if kind == "submit":
                if scenario == "rejected":
                    return 422, {"error": {"field": "prompt", "message": "prompt is not accepted"}}, {}
                if scenario == "server_error":
                    return 503, {"error": {"message": "the scheduler crashed"}}, {}
                job_id = f"job-{len(self.jobs) + 1}"
                self.jobs[job_id] = {"scenario": scenario, "step": 0, "cancelled": False}
                if scenario == "lost_answer":
                    return None
                if route == ["generate"]:
                    return 200, {"id": job_id, "url": f"https://media.kit.invalid/{job_id}"}, {}
                return 201, {"id": job_id}, {}
            job = self.jobs.get(route[1]) if len(route) > 1 else None
            if job is None:
                return 404, {"error": {"message": "no such job"}}, {}
            if kind == "cancel":
                done = job["cancelled"] or job["step"] >= len(self.steps)
                job["cancelled"] = True
                return (409, {"error": {"message": "already finished"}}, {}) if done else (200, {}, {})
            if kind == "result":
                return 200, {"url": f"https://media.kit.invalid/{route[1]}"}, {}
            if scenario == "rate_limited":
                return 429, {"error": {"message": "slow down"}}, {"Retry-After": "60"}
            if job["cancelled"]:
                return 200, {"state": "cancelled"}, {}
            if scenario == "slow":
                return 200, {"state": "processing", "progress": 10.0, "logs": ["step 0"]}, {}
            step = job["step"]
            job["step"] = step + 1
            state, position, percent = self.steps[min(step, len(self.steps) - 1)]
            if state == "completed" and scenario == "job_failed":
                return 200, {"state": "failed", "error": "the render crashed"}, {}
            logs = [f"step {n}" for n in range(step + 1)]
            return 200, {"state": state, "position": position, "progress": percent, "logs": logs}, {}


def _kind(method: str, route: list[str]) -> str:
    if method == "POST" and route in (["jobs"], ["generate"]):
        return "submit"
    if method == "POST" and route[-1:] == ["cancel"]:
        return "cancel"
    if route[-1:] == ["result"]:
        return "result"
    return "status" if method == "GET" else "other"


def _handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _reply(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = service.answer(self.command, self.path.split("?")[0])
            if answer is None:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            status, body, headers = answer
            raw = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = _reply

    return Handler


class GoodProvider:
    """A provider that satisfies the whole conformance kit (hooks are methods of an instance)."""

    modalities: tuple[str, ...] = ("video", "image")
    steps = STEPS

    def __init__(self, name: str) -> None:
        self.name = name
        self.service = Service(self.steps)
        PROVIDERS[name] = self

    # -- pieces the planted breaks override ----------------------------------------------------

    def capabilities(self) -> Capabilities:
        return Capabilities(cancel=True, queue_position=True, progress_percent=True, logs=True)

    def check_modality(self, modality: str) -> None:
        """Raise if this provider cannot generate ``modality``."""

    def log_submit(self, context: CallContext) -> None:
        """Log the submit (a good provider never logs the key)."""

    def submit_request(self, context: CallContext) -> Request:
        return Request(method="POST", url="/jobs", json={"modality": context.modality})

    def on_submit_error(self, exc: Exception, context: CallContext) -> Any:
        """Translate what core threw into the submit flow: a 422 names the field, the rest passes."""
        if isinstance(exc, HTTPError) and exc.status_code == 422:
            raise ValidationError("prompt is not accepted", field="prompt", raw_response=exc.raw_response)
        raise exc

    def on_status_error(self, exc: Exception) -> Any:
        raise exc

    def job_data(self, context: CallContext, job_id: str) -> dict[str, Any]:
        return {"status_path": f"/jobs/{job_id}"}

    def job_status(self, answer: dict[str, Any]) -> Any:
        if answer["state"] == "failed":
            return JobStatus(state="failed", error=GenerationFailedError(answer["error"]), raw=answer)
        return JobStatus(
            state=answer["state"],
            queue_position=answer.get("position"),
            progress_percent=answer.get("progress"),
            logs=answer.get("logs", ()),
            raw=answer,
        )

    def status_answer(self, job: JobRef, context: CallContext) -> Flow:
        return (yield Request(method="GET", url=job.data["status_path"])).json()

    def response(self, modality: str, job_id: str, url: str) -> Any:
        if modality == "video":
            return VideoGenerationResponse(
                request_id=job_id, video=f"{url}.mp4", content_type="video/mp4", raw_response={"id": job_id}
            )
        return ImageGenerationResponse(request_id=job_id, images=[f"{url}.png"], raw_response={"id": job_id})

    # -- hooks ---------------------------------------------------------------------------------

    @hookimpl
    def register_providers(self) -> list[ProviderSpec]:
        return [
            ProviderSpec(
                name=self.name,
                modalities=set(self.modalities),
                capabilities=self.capabilities(),
                api_key_env=f"{self.name.upper()}_API_KEY",
            )
        ]

    @hookimpl
    def submit(self, config: Any, request: Any, context: CallContext) -> Flow:
        self.check_modality(context.modality)
        self.log_submit(context)
        try:
            answer = yield self.submit_request(context)
        except Exception as exc:
            return self.on_submit_error(exc, context)
        job_id = answer.json()["id"]
        return SubmittedJob(job_id=job_id, data=self.job_data(context, job_id))

    @hookimpl
    def status(self, config: Any, job: JobRef, context: CallContext) -> Flow:
        try:
            answer = yield from self.status_answer(job, context)
        except Exception as exc:
            return self.on_status_error(exc)
        return self.job_status(answer)

    @hookimpl
    def result(self, config: Any, job: JobRef, context: CallContext) -> Flow:
        answer = yield Request(method="GET", url=f"{job.data['status_path']}/result")
        return self.response(job.modality, job.job_id, answer.json()["url"])

    @hookimpl
    def cancel(self, config: Any, job: JobRef, context: CallContext) -> Any:
        try:
            yield Request(method="POST", url=f"{job.data['status_path']}/cancel")
        except HTTPError as exc:
            if exc.status_code == 409:
                return False
            raise
        return True


class BlockingProvider(GoodProvider):
    """A correct blocking provider: one request answers with the finished output (no job)."""

    submit = status = result = cancel = None  # type: ignore[assignment]

    def capabilities(self) -> Capabilities:
        return Capabilities(resume=False)

    def generate(self, context: CallContext) -> Flow:
        try:
            answer = yield Request(method="POST", url="/generate", json={"modality": context.modality})
        except Exception as exc:
            return self.on_submit_error(exc, context)
        data = answer.json()
        return self.response(context.modality, data["id"], data["url"])

    @hookimpl
    def generate_video(self, config: Any, request: Any, context: CallContext) -> Flow:
        return (yield from self.generate(context))

    @hookimpl
    def generate_image(self, config: Any, request: Any, context: CallContext) -> Flow:
        return (yield from self.generate(context))


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_config_factory(name: str, modalities: tuple[str, ...] | None = None) -> Callable[[str, str], Any]:
    """The kit's ``make_config`` for a planted provider (its declared modalities by default)."""
    allowed = get_provider(name).spec.modalities if modalities is None else modalities

    def make(modality: str, scenario: str) -> Any:
        if modality not in allowed:
            return None
        service = PROVIDERS[name].service
        root = f"http://127.0.0.1:{_closed_port()}" if scenario == "unreachable" else service.url
        config = VideoGenerationConfig if modality == "video" else ImageGenerationConfig
        return config(
            provider=name,
            model=f"{name}-{modality}",
            poll_interval=0.01,
            timeout=10,
            base_url=f"{root}/s/{scenario}",
        )

    return make


def counts(name: str) -> dict[str, int]:
    service = PROVIDERS[name].service
    with service.lock:
        return dict(service.counts)
