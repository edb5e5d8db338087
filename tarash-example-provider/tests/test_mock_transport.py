"""The example plugin driven through core's sync and async APIs with ``httpx.MockTransport``: no
server, no socket. Shows what core sends for each flow step (URL, auth header) and that one flow
serves both APIs."""

from __future__ import annotations

import asyncio
import json

import attrs
import httpx
import pytest

import tarash_example_provider._plugin as example_plugin
from tarash.tarash_gateway import Gateway
from tarash.tarash_gateway._transport import Transport
from tarash.tarash_gateway.exceptions import TimeoutError, ValidationError
from tarash.tarash_gateway.models import VideoGenerationConfig, VideoGenerationRequest

KEY = "mock-transport-key-0001"
ROOT = "https://api.example.test/root"


class FakeApi:
    """The Example API as an httpx handler: each job is queued once, then completed."""

    def __init__(self, *, status: str = "completed", reject: bool = False) -> None:
        self.seen: list[tuple[str, str, str | None]] = []
        self.status, self.reject, self.polls = status, reject, 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, str(request.url), request.headers.get("Authorization")))
        path = request.url.path.removeprefix("/root")
        if path == "/v1/jobs" and self.reject:
            details = [{"field": "input.duration", "message": "value not allowed", "value": 8}]
            return httpx.Response(422, json={"error": {"message": "invalid", "details": details}})
        if path == "/v1/jobs":
            assert json.loads(request.content)["input"] == {"prompt": "a lighthouse", "duration": 8}
            links = {"status": "/v1/jobs/j1", "result": "/v1/jobs/j1/result", "cancel": "/v1/jobs/j1/cancel"}
            return httpx.Response(202, json={"id": "j1", "status": "queued", "links": links})
        if path == "/v1/jobs/j1":
            self.polls += 1
            return httpx.Response(200, json={"status": "queued" if self.polls == 1 else self.status})
        if path == "/v1/jobs/j1/result":
            return httpx.Response(200, json={"output": {"video": {"url": "https://cdn.test/j1.mp4"}}})
        if path == "/v1/jobs/j1/cancel":
            return httpx.Response(200, json={"id": "j1", "status": "cancelled"})
        return httpx.Response(404, json={"error": {"message": "no route"}})


# --8<-- [start:gateway]
def gateway_for(api: FakeApi) -> Gateway:
    transport = Transport(transport=httpx.MockTransport(api), async_transport=httpx.MockTransport(api))
    gateway = Gateway(ledger="off", discover=False, transport=transport)
    gateway.register_plugin(example_plugin, "example")
    return gateway


def generate(gateway: Gateway, api: str, config: VideoGenerationConfig) -> object:
    request = VideoGenerationRequest(prompt="a lighthouse", duration_seconds=8)
    if api == "sync":
        return gateway.generate_video(config, request)
    return asyncio.run(gateway.generate_video_async(config, request))


CONFIG = VideoGenerationConfig(
    provider="example", model="example-video-1", base_url=ROOT, api_key=KEY, poll_interval=0.01, timeout=5
)


@pytest.mark.parametrize("api", ["sync", "async"])
def test_one_flow_per_phase_serves_both_apis(api: str) -> None:
    fake = FakeApi()
    gateway = gateway_for(fake)
    response = generate(gateway, api, CONFIG)
    gateway.close()
    assert response.video == "https://cdn.test/j1.mp4"  # type: ignore[attr-defined]
    auth = f"Bearer {KEY}"
    assert fake.seen == [
        ("POST", f"{ROOT}/v1/jobs", auth),
        ("GET", f"{ROOT}/v1/jobs/j1", auth),
        ("GET", f"{ROOT}/v1/jobs/j1", auth),
        ("GET", f"{ROOT}/v1/jobs/j1/result", auth),
    ]


# --8<-- [end:gateway]


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_422_is_translated_by_the_flow_and_a_deadline_cancels_once(api: str) -> None:
    rejected = FakeApi(reject=True)
    with pytest.raises(ValidationError) as raised:
        generate(gateway_for(rejected), api, CONFIG)
    assert (raised.value.field, raised.value.phase, len(rejected.seen)) == ("duration_seconds", "submit", 1)
    slow = FakeApi(status="processing")
    with pytest.raises(TimeoutError):
        generate(gateway_for(slow), api, attrs.evolve(CONFIG, timeout=0.3))
    assert [seen[:2] for seen in slow.seen if seen[0] == "POST"] == [
        ("POST", f"{ROOT}/v1/jobs"),
        ("POST", f"{ROOT}/v1/jobs/j1/cancel"),
    ]
