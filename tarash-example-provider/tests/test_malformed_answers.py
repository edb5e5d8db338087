"""Garbage from the Example API (non-JSON, wrong types, missing fields, unknown states, huge or
truncated bodies, stalls) always reaches the caller as a typed Tarash error, within the deadline,
and never makes core resubmit."""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tarash.tarash_gateway import generate_video
from tarash.tarash_gateway.exceptions import TarashException, TimeoutError
from tarash.tarash_gateway.models import VideoGenerationConfig, VideoGenerationRequest

GOOD_SUBMIT = {"id": "j1", "links": {"status": "/s", "result": "/r", "cancel": "/c"}}
GOOD_STATUS = {"status": "succeeded"}


class GarbageServer:
    """Answers each route with a fixed body (bytes sent as is); ``stall`` routes never answer."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.counts: collections.Counter[str] = collections.Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _reply(self) -> None:
                route = self.path.split("?")[0]
                server.counts[route] += 1
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                body = server.answers.get(route, {})
                if body == "stall":
                    time.sleep(5)
                    return
                if body == "truncate":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "500")
                    self.end_headers()
                    self.wfile.write(b'{"id": "j1", "li')
                    return
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = _reply
            do_POST = _reply

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def garbage() -> Iterator[Any]:
    servers: list[GarbageServer] = []

    def start(answers: dict[str, Any]) -> GarbageServer:
        server = GarbageServer(answers)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


CASES = {
    "submit not JSON": {"/v1/jobs": b"<html>502 Bad Gateway</html>"},
    "submit JSON list": {"/v1/jobs": [1, 2, 3]},
    "submit without links": {"/v1/jobs": {"id": "j1"}},
    "submit truncated": {"/v1/jobs": "truncate"},
    "status wrong type": {"/v1/jobs": GOOD_SUBMIT, "/s": ["succeeded"]},
    "status never seen before": {"/v1/jobs": GOOD_SUBMIT, "/s": {"status": "exploded"}},
    "status huge": {"/v1/jobs": GOOD_SUBMIT, "/s": {"status": "x" * 3_000_000}},
    "result without video": {"/v1/jobs": GOOD_SUBMIT, "/s": GOOD_STATUS, "/r": {"output": {}}},
    "result video wrong type": {"/v1/jobs": GOOD_SUBMIT, "/s": GOOD_STATUS, "/r": {"output": {"video": 7}}},
    "result not JSON": {"/v1/jobs": GOOD_SUBMIT, "/s": GOOD_STATUS, "/r": b"\x00\xff garbage"},
}


@pytest.mark.parametrize("answers", CASES.values(), ids=CASES.keys())
def test_malformed_answers_are_typed_errors(garbage: Any, answers: dict[str, Any]) -> None:
    server = garbage(answers)
    config = VideoGenerationConfig(
        provider="example",
        model="example-video-1",
        base_url=server.url,
        api_key="ex-key-123456",
        poll_interval=0.01,
        timeout=5,
    )
    started = time.monotonic()
    with pytest.raises(TarashException) as raised:
        generate_video(config, VideoGenerationRequest(prompt="x"))
    assert time.monotonic() - started < 5 + 1
    assert server.counts["/v1/jobs"] == 1
    assert not isinstance(raised.value, TimeoutError)
    assert "ex-key-123456" not in repr(raised.value) + str(raised.value.raw_response)
    assert len(json.dumps(raised.value.raw_response, default=str)) < 100_000


def test_a_stalled_status_ends_at_the_deadline(garbage: Any) -> None:
    server = garbage({"/v1/jobs": GOOD_SUBMIT, "/s": "stall"})
    config = VideoGenerationConfig(
        provider="example",
        model="example-video-1",
        base_url=server.url,
        api_key="ex-key-123456",
        poll_interval=0.01,
        timeout=0.5,
    )
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        generate_video(config, VideoGenerationRequest(prompt="x"))
    assert time.monotonic() - started < 0.5 + 1
    assert server.counts["/v1/jobs"] == 1
