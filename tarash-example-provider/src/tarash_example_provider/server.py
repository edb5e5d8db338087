"""The reference server of the Example API: a small job-style generation service on loopback.

No public service speaks the Example API, so this distribution ships its reference
implementation. It "generates" real media: a playable MP4 (one of tarash-core's bundled test
clips, chosen by aspect ratio and duration) and PNG test patterns drawn on the fly.

Run it with ``python -m tarash_example_provider.server [--port 8765]``; it only ever binds
127.0.0.1. The wire protocol (all bodies JSON, ``Authorization: Bearer <key>`` on ``/v1/jobs``):

* ``POST /v1/jobs`` ``{"model": ..., "input": {...}}`` -> 202 ``{"id", "status", "queue_position",
  "links": {"status", "result", "cancel"}}``; 422 with field details for invalid input; 429 with
  ``Retry-After`` when the key already has ``max_active_jobs`` unfinished jobs.
* ``GET /v1/jobs/{id}`` -> ``{"id", "status", "queue_position", "progress", "logs", "error"}``;
  status is queued, processing, completed, failed or cancelled.
* ``GET /v1/jobs/{id}/result`` -> ``{"id", "model", "output"}`` where output is
  ``{"video": {...}}`` or ``{"images": [...]}``; 409 until the job completed.
* ``POST /v1/jobs/{id}/cancel`` -> ``{"id", "status": "cancelled"}``; 409 if the job had finished.
* ``GET /v1/files/{name}`` -> the media bytes (unguessable names, no key needed, like signed URLs).
* ``GET /_admin/stats`` -> request counters (by route and by error status), jobs by state, TCP
  connections accepted and the last submit body, for tests.

Jobs run on ``workers`` simulated workers: a job waits at least ``queue_seconds``, then for a free
worker (its queue position counts down as earlier jobs start), then renders for ``work_seconds``
(scaled by the video duration) while its progress rises from 0 to 100.

Faults for tests: prefix any path with ``/_faults/<name>`` (so a client whose base URL is
``http://127.0.0.1:PORT/_faults/job-fails`` meets that fault on every call). See :data:`FAULTS`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tarash.tarash_gateway.mock import MEDIA_DIR, find_best_clip, render_png

__all__ = ["DEFAULT_PORT", "FAULTS", "MODELS", "ExampleServer", "main"]

DEFAULT_PORT = 8765
MAX_PROMPT_CHARS = 2000

#: Models the server knows: kind and the values each input field accepts.
MODELS: dict[str, dict[str, Any]] = {
    "example-video-1": {
        "kind": "video",
        "allowed": {
            "duration": (4, 8),
            "aspect_ratio": ("16:9", "9:16", "1:1", "4:3", "21:9"),
            "resolution": ("180p", "240p"),
        },
    },
    "example-image-1": {
        "kind": "image",
        "allowed": {"num_images": (1, 2, 3, 4), "aspect_ratio": ("1:1", "16:9", "9:16", "4:3")},
    },
}
_INPUT_FIELDS = {
    "video": {
        "prompt",
        "negative_prompt",
        "duration",
        "aspect_ratio",
        "resolution",
        "seed",
        "audio",
        "image_url",
    },
    "image": {"prompt", "negative_prompt", "num_images", "aspect_ratio", "seed", "width", "height"},
}


@dataclasses.dataclass(frozen=True)
class Fault:
    """A fault injected on one route: an error answer, a dropped answer or a job behaviour.

    Attributes:
        route: ``submit``, ``status``, ``result`` or ``job`` (the job itself misbehaves).
        status: HTTP status to answer with (0: close the connection without answering).
        times: how many calls per job meet the fault (0: every call).
        retry_after: ``Retry-After`` header value, if any.
        body: the error body.
    """

    route: str
    status: int = 0
    times: int = 0
    retry_after: str | None = None
    body: Mapping[str, Any] = dataclasses.field(default_factory=dict)


# --8<-- [start:faults]
#: Fault names usable as ``/_faults/<name>`` path prefixes.
FAULTS: dict[str, Fault] = {
    "submit-500": Fault(
        "submit",
        500,
        body={"error": {"type": "internal_error", "message": "the scheduler crashed"}},
    ),
    "submit-422": Fault(
        "submit",
        422,
        body={
            "error": {
                "type": "validation_error",
                "message": "input is not accepted by this deployment",
                "details": [
                    {
                        "field": "input.prompt",
                        "message": "prompt is not accepted by this deployment",
                    }
                ],
            }
        },
    ),
    "submit-drop": Fault("submit", 0),
    "status-429": Fault(
        "status",
        429,
        retry_after="60",
        body={"error": {"type": "rate_limited", "message": "slow down"}},
    ),
    "status-429-once": Fault(
        "status",
        429,
        times=1,
        retry_after="1",
        body={"error": {"type": "rate_limited", "message": "slow down"}},
    ),
    "result-500-once": Fault(
        "result",
        500,
        times=1,
        body={"error": {"type": "internal_error", "message": "storage hiccup"}},
    ),
    "job-fails": Fault("job"),
    "slow": Fault("job"),
}
# --8<-- [end:faults]


@dataclasses.dataclass
class Job:
    """One generation job and its simulated timeline (monotonic seconds)."""

    id: str
    key: str
    model: str
    kind: str
    input: dict[str, Any]
    created: float
    start: float
    work: float
    fault: str | None = None
    cancelled_at: float | None = None
    created_at: str = dataclasses.field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    def state(self, now: float) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        if now < self.start:
            return "queued"
        if now < self.start + self.work:
            return "processing"
        return "failed" if self.fault == "job-fails" else "completed"

    def end(self) -> float:
        return self.cancelled_at if self.cancelled_at is not None else self.start + self.work


class _ApiError(Exception):
    def __init__(
        self,
        status: int,
        kind: str,
        message: str,
        details: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"error": {"type": kind, "message": message}}
        if details:
            self.body["error"]["details"] = list(details)
        self.headers = dict(headers or {})


class _Dropped(Exception):
    """Close the connection without an answer (the client cannot know what happened)."""


class ExampleService:
    """The service state: jobs, simulated workers, files and counters (thread-safe)."""

    def __init__(
        self,
        *,
        workers: int = 2,
        queue_seconds: float = 1.0,
        work_seconds: float = 4.0,
        image_work_seconds: float = 1.5,
        max_active_jobs: int = 16,
        api_key: str | None = None,
    ) -> None:
        self.queue_seconds = queue_seconds
        self.work_seconds = work_seconds
        self.image_work_seconds = image_work_seconds
        self.max_active_jobs = max_active_jobs
        self.api_key = api_key
        self.jobs: dict[str, Job] = {}
        self.files: dict[str, tuple[str, Callable[[], bytes]]] = {}
        self.worker_free_at = [0.0] * workers
        self.requests: Counter[str] = Counter()
        self.responses: Counter[str] = Counter()
        self.fault_hits: Counter[tuple[str, str]] = Counter()
        self.last_submit: dict[str, Any] | None = None
        #: Jobs open from the client's side: submitted, and neither collected (result served),
        #: cancelled, nor reported failed; and the most that were ever open at once.
        self.open_jobs: set[str] = set()
        self.max_open_jobs = 0
        self.connections = 0
        self.lock = threading.Lock()

    # -- routes ------------------------------------------------------------------------------

    def submit(self, key: str, body: Any, fault: str | None) -> tuple[int, dict[str, Any]]:
        self.last_submit = body if isinstance(body, dict) else {"<invalid>": repr(body)}
        model, kind, payload = _validate(body)
        now = time.monotonic()
        active = [j for j in self.jobs.values() if j.key == key and j.state(now) in ("queued", "processing")]
        if len(active) >= self.max_active_jobs:
            wait = max(min(j.end() for j in active) - now, 0.0)
            raise _ApiError(
                429,
                "rate_limited",
                f"at most {self.max_active_jobs} unfinished jobs per key",
                headers={"Retry-After": str(int(wait) + 1)},
            )
        job = self._schedule(key, model, kind, payload, now, fault)
        self.jobs[job.id] = job
        self.open_jobs.add(job.id)
        self.max_open_jobs = max(self.max_open_jobs, len(self.open_jobs))
        return 202, {
            "id": job.id,
            "status": job.state(now),
            "model": model,
            "queue_position": self._queue_position(job, now),
            "created_at": job.created_at,
            "links": {
                "status": f"/v1/jobs/{job.id}",
                "result": f"/v1/jobs/{job.id}/result",
                "cancel": f"/v1/jobs/{job.id}/cancel",
            },
        }

    def status(self, key: str, job_id: str) -> tuple[int, dict[str, Any]]:
        job = self._job(key, job_id)
        now = time.monotonic()
        state = job.state(now)
        progress: float | None = None
        if state == "processing":
            progress = round(100.0 * (now - job.start) / job.work, 1)
        elif state in ("completed", "failed"):
            progress = 100.0
        error = None
        if state in ("failed", "cancelled"):
            self.open_jobs.discard(job.id)
        if state == "failed":
            error = {
                "type": "generation_failed",
                "message": "the model could not render this prompt",
            }
        return 200, {
            "id": job.id,
            "status": state,
            "queue_position": self._queue_position(job, now),
            "progress": progress,
            "logs": _logs(job, state, progress),
            "error": error,
        }

    def result(self, key: str, job_id: str, host: str) -> tuple[int, dict[str, Any]]:
        job = self._job(key, job_id)
        state = job.state(time.monotonic())
        if state != "completed":
            raise _ApiError(409, "not_ready", f"job {job.id} is {state}, not completed")
        self.open_jobs.discard(job.id)
        base = f"http://{host}/v1/files"
        if job.kind == "video":
            clip = find_best_clip(job.input.get("aspect_ratio"), job.input.get("duration"))
            name = f"{job.id}.mp4"
            path = MEDIA_DIR / clip["file"]
            self.files[name] = ("video/mp4", path.read_bytes)
            output: dict[str, Any] = {
                "video": {
                    "url": f"{base}/{name}",
                    "content_type": "video/mp4",
                    "width": clip["width"],
                    "height": clip["height"],
                    "duration_seconds": clip["duration_seconds"],
                    "aspect_ratio": clip["aspect_ratio"],
                }
            }
        else:
            width, height = int(job.input["width"]), int(job.input["height"])
            seed = int(job.input.get("seed") or 0)
            images = []
            for index in range(int(job.input.get("num_images", 1))):
                name = f"{job.id}_{index}.png"
                self.files[name] = ("image/png", _png(width, height, seed + index))
                images.append(
                    {
                        "url": f"{base}/{name}",
                        "content_type": "image/png",
                        "width": width,
                        "height": height,
                    }
                )
            output = {"images": images}
        return 200, {"id": job.id, "model": job.model, "output": output}

    def cancel(self, key: str, job_id: str) -> tuple[int, dict[str, Any]]:
        job = self._job(key, job_id)
        now = time.monotonic()
        state = job.state(now)
        if state not in ("queued", "processing"):
            raise _ApiError(409, "conflict", f"job {job.id} already {state}")
        job.cancelled_at = now
        self.open_jobs.discard(job.id)
        return 200, {"id": job.id, "status": "cancelled"}

    def stats(self) -> dict[str, Any]:
        now = time.monotonic()
        states = Counter(job.state(now) for job in self.jobs.values())
        return {
            "requests": dict(self.requests),
            "responses": dict(self.responses),
            "jobs": dict(states),
            "connections": self.connections,
            "open_jobs": len(self.open_jobs),
            "max_open_jobs": self.max_open_jobs,
            "last_submit": self.last_submit,
        }

    # -- helpers -----------------------------------------------------------------------------

    def _schedule(
        self,
        key: str,
        model: str,
        kind: str,
        payload: dict[str, Any],
        now: float,
        fault: str | None,
    ) -> Job:
        base = (
            self.work_seconds * int(payload.get("duration", 4)) / 4
            if kind == "video"
            else self.image_work_seconds
        )
        eligible = now + self.queue_seconds
        if fault == "slow":
            return Job(
                id=_new_id(),
                key=key,
                model=model,
                kind=kind,
                input=payload,
                created=now,
                start=eligible,
                work=3600.0,
                fault=fault,
            )
        worker = min(range(len(self.worker_free_at)), key=self.worker_free_at.__getitem__)
        start = max(eligible, self.worker_free_at[worker])
        self.worker_free_at[worker] = start + base
        return Job(
            id=_new_id(),
            key=key,
            model=model,
            kind=kind,
            input=payload,
            created=now,
            start=start,
            work=base,
            fault=fault,
        )

    def _queue_position(self, job: Job, now: float) -> int | None:
        if job.state(now) != "queued":
            return None
        return sum(
            1 for other in self.jobs.values() if other.state(now) == "queued" and other.start < job.start
        )

    def _job(self, key: str, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None or job.key != key:
            raise _ApiError(404, "not_found", f"no job {job_id}")
        return job


def _new_id() -> str:
    return f"job_{secrets.token_hex(8)}"


def _png(width: int, height: int, seed: int) -> Callable[[], bytes]:
    return lambda: render_png(width, height, seed)


def _logs(job: Job, state: str, progress: float | None) -> list[str]:
    """The job's log so far (append-only, as a real service's log)."""
    lines = [f"accepted {job.model} job"]
    if state == "queued":
        return lines
    lines.append("started on a worker")
    done = 100.0 if state in ("completed", "failed") else progress or 0.0
    lines.extend(f"rendered {quarter}%" for quarter in (25, 50, 75) if done >= quarter)
    if state != "processing":
        lines.append(state)
    return lines


def _validate(body: Any) -> tuple[str, str, dict[str, Any]]:
    """The model, its kind and the input, or a 422 naming every offending field."""
    if not isinstance(body, dict):
        raise _ApiError(400, "bad_request", "the body must be a JSON object")
    details: list[dict[str, Any]] = []
    model = body.get("model")
    spec = MODELS.get(model) if isinstance(model, str) else None
    if spec is None:
        details.append(
            {
                "field": "model",
                "message": "unknown model",
                "value": model,
                "allowed": sorted(MODELS),
            }
        )
    payload = body.get("input")
    if not isinstance(payload, dict):
        details.append({"field": "input", "message": "must be an object"})
        raise _ApiError(422, "validation_error", "invalid request", details)
    if spec is None:
        raise _ApiError(422, "validation_error", "invalid request", details)
    kind = spec["kind"]
    prompt = payload.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        details.append({"field": "input.prompt", "message": "must be a non-empty string"})
    elif len(prompt) > MAX_PROMPT_CHARS:
        details.append(
            {
                "field": "input.prompt",
                "message": f"must be at most {MAX_PROMPT_CHARS} characters",
                "value": len(prompt),
            }
        )
    for name in sorted(set(payload) - _INPUT_FIELDS[kind]):
        details.append({"field": f"input.{name}", "message": "unknown field"})
    for name, allowed in spec["allowed"].items():
        if name in payload and payload[name] not in allowed:
            details.append(
                {
                    "field": f"input.{name}",
                    "message": "value not allowed",
                    "value": payload[name],
                    "allowed": list(allowed),
                }
            )
    for name in ("seed", "width", "height"):
        value = payload.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            details.append({"field": f"input.{name}", "message": "must be an integer", "value": value})
    if kind == "image":
        for name in ("width", "height"):
            value = payload.get(name)
            if not isinstance(value, int) or not 16 <= value <= 1024:
                details.append({"field": f"input.{name}", "message": "must be 16..1024", "value": value})
    if details:
        raise _ApiError(422, "validation_error", "invalid request", details)
    return str(model), kind, dict(payload)


_JOB_PATH = re.compile(r"^/v1/jobs/(?P<id>[\w-]+)(?P<action>/result|/cancel)?$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.service.lock:
            self.server.service.connections += 1

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the server must not print request lines (they would clutter test output)."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        service = self.server.service
        path, fault_name = self._split_fault(self.path.split("?", 1)[0])
        body = self._read_body()
        try:
            if path == "/_admin/stats" and method == "GET":
                with service.lock:
                    self._send(200, service.stats())
                return
            if path.startswith("/v1/files/") and method == "GET":
                self._send_file(path.rsplit("/", 1)[1])
                return
            route, job_id = self._route(method, path)
            with service.lock:
                service.requests[route] += 1
                key = self._authorize(service)
                drop = self._apply_fault(route, fault_name, job_id)
                status, answer = self._call(route, key, job_id, body, fault_name)
            if drop:
                raise _Dropped()
            self._send(status, answer)
        except _Dropped:
            self.close_connection = True
        except _ApiError as exc:
            with service.lock:
                service.responses[str(exc.status)] += 1
            self._send(exc.status, exc.body, exc.headers)

    def _split_fault(self, path: str) -> tuple[str, str | None]:
        match = re.match(r"^/_faults/([\w-]+)(/.*)$", path)
        if match is None:
            return path, None
        return match.group(2), match.group(1)

    def _route(self, method: str, path: str) -> tuple[str, str]:
        if path == "/v1/jobs" and method == "POST":
            return "submit", ""
        match = _JOB_PATH.match(path)
        if match is not None:
            action = match.group("action")
            route = {None: "status", "/result": "result", "/cancel": "cancel"}[action]
            if (route == "cancel") == (method == "POST"):
                return route, match.group("id")
        raise _ApiError(404, "not_found", f"no route {method} {path}")

    def _authorize(self, service: ExampleService) -> str:
        header = self.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme != "Bearer" or not key.strip():
            raise _ApiError(401, "unauthorized", "missing bearer API key")
        if service.api_key is not None and not secrets.compare_digest(key, service.api_key):
            raise _ApiError(401, "unauthorized", "invalid API key")
        return key

    def _apply_fault(self, route: str, name: str | None, job_id: str) -> bool:
        """Raise the fault's error answer; True if the answer must be dropped after processing."""
        if name is None:
            return False
        fault = FAULTS.get(name)
        if fault is None:
            raise _ApiError(404, "not_found", f"unknown fault {name!r}")
        if fault.route != route:
            return False
        hits = self.server.service.fault_hits
        hits[(name, job_id)] += 1
        if fault.times and hits[(name, job_id)] > fault.times:
            return False
        if fault.status == 0:
            return True
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
        error = fault.body["error"]
        raise _ApiError(fault.status, error["type"], error["message"], error.get("details", ()), headers)

    def _call(
        self, route: str, key: str, job_id: str, body: Any, fault: str | None
    ) -> tuple[int, dict[str, Any]]:
        service = self.server.service
        if route == "submit":
            job_fault = fault if fault in FAULTS and FAULTS[fault].route == "job" else None
            return service.submit(key, body, job_fault)
        if route == "status":
            return service.status(key, job_id)
        if route == "result":
            return service.result(key, job_id, self.headers.get("Host", "127.0.0.1"))
        return service.cancel(key, job_id)

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_file(self, name: str) -> None:
        service = self.server.service
        with service.lock:
            service.requests["file"] += 1
            entry = service.files.get(name)
        if entry is None:
            raise _ApiError(404, "not_found", f"no file {name}")
        content_type, load = entry
        data = load()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    service: ExampleService


class ExampleServer:
    """The reference server on 127.0.0.1, served from a background thread.

    ``ExampleServer(port=0)`` picks a free port; use it as a context manager or call
    :meth:`start` / :meth:`stop`. Keyword arguments go to :class:`ExampleService`.
    """

    def __init__(self, port: int = DEFAULT_PORT, **service_options: Any) -> None:
        self.service = ExampleService(**service_options)
        self._httpd = _Server(("127.0.0.1", port), _Handler)
        self._httpd.service = self.service
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8765``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ExampleServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="example-api", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` or KeyboardInterrupt."""
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> ExampleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tarash_example_provider.server``: serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m tarash_example_provider.server",
        description="Reference server of the Example API (loopback only).",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (0: any free port)")
    parser.add_argument("--workers", type=int, default=2, help="simulated workers")
    parser.add_argument("--queue-seconds", type=float, default=1.0, help="minimum time in queue")
    parser.add_argument(
        "--work-seconds",
        type=float,
        default=4.0,
        help="render time of a 4 s video (scales with duration)",
    )
    parser.add_argument("--api-key", default=None, help="accept only this key (default: any)")
    args = parser.parse_args(argv)
    server = ExampleServer(
        args.port,
        workers=args.workers,
        queue_seconds=args.queue_seconds,
        work_seconds=args.work_seconds,
        api_key=args.api_key,
    )
    print(f"Example API listening on {server.url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
