"""A counting job-style HTTP server on 127.0.0.1 and an in-test lifecycle plugin that talks to it.

The server speaks a small queue API (POST /jobs, GET /jobs/{id}, GET /jobs/{id}/result,
POST /jobs/{id}/cancel) plus the seed page's POST /v1/generate, counts every request by kind and
can inject faults: status codes with Retry-After, and a dropped connection after the request was
received and processed (the lost-answer case that must never lead to a second job).
"""

from __future__ import annotations

import collections
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tarash.tarash_gateway._plugins import HOST
from tarash.tarash_gateway.exceptions import GenerationFailedError, HTTPError, ValidationError
from tarash.tarash_gateway.models import ImageGenerationResponse, VideoGenerationResponse
from tarash.tarash_gateway.plugin import (
    Capabilities,
    Flow,
    JobStatus,
    ProviderSpec,
    Request,
    SubmittedJob,
    hookimpl,
)


class JobServer:
    """Threaded HTTP server with per-kind counters and programmable faults."""

    def __init__(self, *, queue_polls: int = 2, processing_polls: int = 2) -> None:
        self.queue_polls = queue_polls
        self.processing_polls = processing_polls
        self.counts: collections.Counter[str] = collections.Counter()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.faults: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        self.cancelled: list[str] = []
        self.submissions: list[dict[str, Any]] = []
        self.auth_headers: list[str | None] = []
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> JobServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def inject(
        self,
        kind: str,
        *,
        status: int = 500,
        times: int = 1,
        retry_after: str | None = None,
        drop: bool = False,
        lost: bool = False,
        body: Any = None,
        delay: float = 0.0,
    ) -> None:
        """Make the next ``times`` requests of ``kind`` fail (processed first when ``drop``; closed
        unprocessed when ``lost``, as a request that never reached the provider)."""
        with self.lock:
            for _ in range(times):
                self.faults[kind].append(
                    {
                        "status": status,
                        "retry_after": retry_after,
                        "drop": drop or lost,
                        "lost": lost,
                        "body": body,
                        "delay": delay,
                    }
                )

    def _take_fault(self, kind: str) -> dict[str, Any] | None:
        with self.lock:
            queue = self.faults.get(kind)
            return queue.pop(0) if queue else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                body = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _dispatch(self, method: str) -> None:
                parts = [p for p in self.path.split("?")[0].split("/") if p]
                kind = _kind(method, parts)
                with server.lock:
                    server.counts[kind] += 1
                    server.events.append((kind, self.path))
                    server.auth_headers.append(self.headers.get("Authorization"))
                body = self._body() if method == "POST" else None
                fault = server._take_fault(kind)
                if fault and fault["delay"]:
                    time.sleep(fault["delay"])
                if fault and not fault["drop"]:
                    headers = {"Retry-After": fault["retry_after"]} if fault["retry_after"] else {}
                    self._send(fault["status"], fault["body"] or {"error": "injected"}, headers)
                    return
                if fault and fault["lost"]:
                    self.close_connection = True
                    self.connection.close()
                    return
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                code, payload = server._answer(kind, parts, body, query)
                if fault and fault["drop"]:
                    self.close_connection = True
                    self.connection.close()
                    return
                self._send(code, payload)

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

        return Handler

    def _answer(self, kind: str, parts: list[str], body: Any, query: dict[str, list[str]]) -> tuple[int, Any]:
        with self.lock:
            if kind == "lookup":
                key = query.get("key", [""])[-1]
                return 200, {"ids": [i for i, job in self.jobs.items() if job["payload"].get("key") == key]}
            if kind == "generate":
                return 200, {"video_url": f"{self.url}/media/seed.mp4", "prompt": body.get("prompt")}
            if kind == "submit":
                job_id = f"job-{len(self.jobs) + 1}"
                self.jobs[job_id] = {"polls": 0, "state": "queued", "payload": body}
                self.submissions.append(body)
                return 201, {"id": job_id}
            job = self.jobs.get(parts[1]) if len(parts) > 1 else None
            if job is None:
                return 404, {"error": "no such job"}
            if kind == "cancel":
                self.cancelled.append(parts[1])
                done = job["state"] == "completed"
                job["state"] = job["state"] if done else "cancelled"
                return 200, {"cancelled": not done}
            if kind == "status":
                if job["state"] in ("cancelled", "completed"):
                    return 200, {"state": job["state"]}
                job["polls"] += 1
                polls = job["polls"]
                if polls <= self.queue_polls:
                    return 200, {"state": "queued", "position": self.queue_polls - polls}
                if polls <= self.queue_polls + self.processing_polls:
                    done = polls - self.queue_polls
                    return 200, {
                        "state": "processing",
                        "progress": round(100 * done / (self.processing_polls + 1)),
                        "logs": [f"step {i}" for i in range(1, done + 1)],
                    }
                job["state"] = "completed"
                return 200, {"state": "completed"}
            if kind == "result":
                if job["state"] != "completed":
                    return 409, {"error": "not completed"}
                return 200, {"url": f"{self.url}/media/{parts[1]}.mp4"}
        return 404, {"error": "unknown route"}


def _kind(method: str, parts: list[str]) -> str:
    if method == "POST" and parts == ["v1", "generate"]:
        return "generate"
    if method == "POST" and parts == ["jobs"]:
        return "submit"
    if method == "POST" and len(parts) == 3 and parts[2] == "cancel":
        return "cancel"
    if method == "GET" and parts == ["jobs"]:
        return "lookup"
    if method == "GET" and len(parts) == 3 and parts[2] == "result":
        return "result"
    if method == "GET" and len(parts) == 2:
        return "status"
    return "other"


@contextmanager
def running(**kwargs: Any) -> Iterator[JobServer]:
    server = JobServer(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()


class JobApiPlugin:
    """A plugin object holding hookimpls as attributes (hashable, as pluggy needs)."""


def _translated(exc: HTTPError) -> ValidationError | HTTPError:
    if exc.status_code == 422:
        return ValidationError("rejected by jobapi", field="prompt", raw_response=exc.raw_response)
    return exc


def make_plugin(
    name: str,
    *,
    cancel: bool = True,
    idempotency: bool = False,
    resume: bool = True,
    modalities: tuple[str, ...] = ("video", "image"),
) -> JobApiPlugin:
    """A lifecycle plugin for provider ``name`` talking to ``config.base_url`` through core."""

    @hookimpl
    def register_providers() -> list[ProviderSpec]:
        return [
            ProviderSpec(
                name=name,
                modalities=set(modalities),
                capabilities=Capabilities(
                    cancel=cancel,
                    queue_position=True,
                    progress_percent=True,
                    logs=True,
                    idempotency_key=idempotency,
                    resume=resume,
                ),
            )
        ]

    @hookimpl
    def submit(config: Any, request: Any, context: Any) -> Flow[SubmittedJob]:
        if context.provider != name:
            raise AssertionError("called for another provider")
        body = {"prompt": request.prompt, "modality": context.modality, "key": context.idempotency_key}
        try:
            answer = yield Request(method="POST", url="/jobs", json=body)
        except HTTPError as exc:
            raise _translated(exc) from None
        return SubmittedJob(job_id=answer.json()["id"])

    @hookimpl
    def status(config: Any, job: Any, context: Any) -> Flow[JobStatus]:
        data = (yield Request(method="GET", url=f"/jobs/{job.job_id}")).json()
        if data["state"] == "failed":
            return JobStatus(state="failed", error=GenerationFailedError("job failed"), raw=data)
        return JobStatus(
            state=data["state"],
            queue_position=data.get("position"),
            progress_percent=data.get("progress"),
            logs=data.get("logs", ()),
            raw=data,
        )

    @hookimpl
    def result(config: Any, job: Any, context: Any) -> Flow[Any]:
        data = (yield Request(method="GET", url=f"/jobs/{job.job_id}/result")).json()
        if job.modality == "image":
            return ImageGenerationResponse(request_id=job.job_id, images=[data["url"]], raw_response=data)
        return VideoGenerationResponse(request_id=job.job_id, video=data["url"], raw_response=data)

    hooks = {"register_providers": register_providers, "submit": submit, "status": status, "result": result}
    if cancel:

        @hookimpl
        def cancel_hook(config: Any, job: Any, context: Any) -> Flow[bool]:
            data = (yield Request(method="POST", url=f"/jobs/{job.job_id}/cancel")).json()
            return bool(data["cancelled"])

        hooks["cancel"] = cancel_hook
    plugin = JobApiPlugin()
    for hook_name, fn in hooks.items():
        fn.__name__ = hook_name
        setattr(plugin, hook_name, fn)
    return plugin


@contextmanager
def installed(plugin: Any, name: str) -> Iterator[Any]:
    HOST.register_plugin_object(plugin, name)
    try:
        yield plugin
    finally:
        HOST.unregister_plugin_object(plugin)
