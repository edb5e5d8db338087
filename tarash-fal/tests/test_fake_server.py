"""The fake server speaks fal's queue protocol: URL shapes, auth, states, errors, faults."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import httpx
import pytest

from tarash_fal.testing import FakeFalServer


@pytest.fixture
def http(fake_fal: FakeFalServer) -> Iterator[httpx.Client]:
    context = ssl.create_default_context(cafile=fake_fal.ca_path)
    with httpx.Client(
        base_url=fake_fal.base_url,
        verify=context,
        headers={"Authorization": f"Key {fake_fal.api_key}"},
    ) as client:
        yield client


def _submit(http: httpx.Client, path: str = "fal-ai/flux/dev", payload: object = None) -> dict:
    answer = http.post(f"/{path}", json=payload or {"prompt": "x"})
    assert answer.status_code == 200
    return answer.json()


def test_submit_answer_points_at_owner_alias(fake_fal: FakeFalServer, http: httpx.Client) -> None:
    body = _submit(http)
    base = f"{fake_fal.base_url}/fal-ai/flux/requests/{body['request_id']}"
    assert body == {
        "request_id": body["request_id"],
        "response_url": base,
        "status_url": f"{base}/status",
        "cancel_url": f"{base}/cancel",
        "status": "IN_QUEUE",
        "queue_position": 1,
    }
    assert fake_fal.submissions[0]["path"] == "fal-ai/flux/dev"


def test_requests_need_the_key(fake_fal: FakeFalServer) -> None:
    context = ssl.create_default_context(cafile=fake_fal.ca_path)
    for headers in (
        {},
        {"Authorization": "Key nope"},
        {"Authorization": f"Bearer {fake_fal.api_key}"},
    ):
        answer = httpx.post(f"{fake_fal.base_url}/fal-ai/flux/dev", json={}, headers=headers, verify=context)
        assert (answer.status_code, answer.json()) == (
            401,
            {"detail": "Authentication is required"},
        )
    assert fake_fal.submissions == []
    assert fake_fal.counts["submit"] == 3


def test_status_result_cancel_reject_the_sub_path(http: httpx.Client) -> None:
    request_id = _submit(http)["request_id"]
    for method, suffix in (("GET", "/status"), ("GET", ""), ("PUT", "/cancel")):
        wrong = http.request(method, f"/fal-ai/flux/dev/requests/{request_id}{suffix}")
        assert wrong.status_code in (404, 405)
    assert http.get(f"/fal-ai/other/requests/{request_id}/status").status_code == 404
    assert http.get(f"/fal-ai/flux/requests/{request_id}/status").status_code == 202


def test_status_progression_and_logs(http: httpx.Client) -> None:
    request_id = _submit(http)["request_id"]
    url = f"/fal-ai/flux/requests/{request_id}/status"
    answers = [http.get(url, params={"logs": flag}) for flag in ("1", "true", "0", "True", "1")]
    assert [a.status_code for a in answers] == [202, 202, 202, 202, 200]
    bodies = [a.json() for a in answers]
    assert [(b["status"], b.get("queue_position")) for b in bodies] == [
        ("IN_QUEUE", 1),
        ("IN_QUEUE", 0),
        ("IN_PROGRESS", None),
        ("IN_PROGRESS", None),
        ("COMPLETED", None),
    ]
    assert bodies[2]["logs"] is None
    assert [entry["message"] for entry in bodies[3]["logs"]] == ["step 1/2", "step 2/2"]
    assert bodies[4]["metrics"] == {"inference_time": 0.1}
    assert bodies[0]["response_url"].endswith(f"/fal-ai/flux/requests/{request_id}")


def test_result_before_and_after_completion(make_server) -> None:
    server = make_server(
        queue_polls=0,
        processing_polls=1,
        result_factory=lambda s: {"echo": s["payload"], "path": s["path"]},
    )
    context = ssl.create_default_context(cafile=server.ca_path)
    with httpx.Client(
        base_url=server.base_url, verify=context, headers={"Authorization": f"Key {server.api_key}"}
    ) as http:
        request_id = _submit(http, "acme/app/v2", {"prompt": "p"})["request_id"]
        early = http.get(f"/acme/app/requests/{request_id}")
        assert (early.status_code, early.json()) == (
            400,
            {"detail": "Request is still in progress"},
        )
        http.get(f"/acme/app/requests/{request_id}/status")
        http.get(f"/acme/app/requests/{request_id}/status")
        done = http.get(f"/acme/app/requests/{request_id}")
        assert (done.status_code, done.json()) == (
            200,
            {"echo": {"prompt": "p"}, "path": "acme/app/v2"},
        )
        late = http.put(f"/acme/app/requests/{request_id}/cancel")
        assert (late.status_code, late.json()) == (400, {"status": "ALREADY_COMPLETED"})


def test_cancel_of_a_queued_job(fake_fal: FakeFalServer, http: httpx.Client) -> None:
    request_id = _submit(http)["request_id"]
    answer = http.put(f"/fal-ai/flux/requests/{request_id}/cancel")
    assert (answer.status_code, answer.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    status = http.get(f"/fal-ai/flux/requests/{request_id}/status", params={"logs": "1"}).json()
    assert (status["status"], status["error_type"]) == ("COMPLETED", "request_cancelled")
    assert http.get(f"/fal-ai/flux/requests/{request_id}").status_code == 400
    assert fake_fal.jobs[request_id]["cancelled"] is True


def test_unknown_request_and_invalid_json(http: httpx.Client) -> None:
    assert http.get("/fal-ai/flux/requests/nope/status").json() == {"detail": "Request nope not found"}
    bad = http.post("/fal-ai/flux/dev", content=b"{oops", headers={"Content-Type": "application/json"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body"]


def test_injected_http_faults_are_consumed_in_order(fake_fal: FakeFalServer, http: httpx.Client) -> None:
    fake_fal.inject("submit", status_code=429, retry_after=3, times=2)
    fake_fal.inject("submit", status_code=200, body=b"not json")
    first, second, third = (http.post("/fal-ai/flux/dev", json={}) for _ in range(3))
    assert (first.status_code, first.headers["retry-after"]) == (429, "3")
    assert second.json() == {"detail": "Injected HTTP 429"}
    assert third.content == b"not json"
    assert http.post("/fal-ai/flux/dev", json={}).status_code == 200
    assert fake_fal.counts["submit"] == 4


def test_drop_and_truncate_break_the_connection(fake_fal: FakeFalServer, http: httpx.Client) -> None:
    fake_fal.inject("submit", "drop")
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/fal-ai/flux/dev", json={})
    fake_fal.inject("submit", "truncate")
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/fal-ai/flux/dev", json={})
    assert len(fake_fal.jobs) == 2


def test_inject_rejects_unknown_kinds_and_faults(fake_fal: FakeFalServer) -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        fake_fal.inject("jwks")
    with pytest.raises(ValueError, match="fault must be one of"):
        fake_fal.inject("status", "explode")


def test_configs_point_at_the_server(fake_fal: FakeFalServer) -> None:
    video = fake_fal.video_config(timeout=5, provider_config={"webhook_url": "https://h.example"})
    image = fake_fal.image_config()
    assert (video.provider, video.model, video.base_url, video.timeout) == (
        "fal",
        "fal-ai/veo3",
        fake_fal.base_url,
        5,
    )
    assert video.provider_config == {
        "ca_bundle": fake_fal.ca_path,
        "storage_url": fake_fal.base_url,
        "schema_url": f"{fake_fal.base_url}/api/openapi/queue/openapi.json",
        "platform_url": f"{fake_fal.base_url}/v1",
        "webhook_url": "https://h.example",
    }
    assert (image.model, image.api_key, image.poll_interval) == (
        "fal-ai/flux/dev",
        "fal-test-key",
        0.01,
    )


def test_official_fal_client_subscribes_against_the_fake(fake_fal: FakeFalServer) -> None:
    script = textwrap.dedent("""
        import json, fal_client
        events = []
        result = fal_client.SyncClient(key="fal-test-key").subscribe(
            "fal-ai/flux/dev", {"prompt": "x", "num_images": 2}, with_logs=True,
            interval=0.01, on_queue_update=lambda e: events.append(type(e).__name__))
        print(json.dumps({"result": result, "events": events}))
    """)
    env = {
        **os.environ,
        "FAL_QUEUE_RUN_HOST": fake_fal.base_url.removeprefix("https://"),
        "SSL_CERT_FILE": fake_fal.ca_path,
    }
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    data = json.loads(out.stdout)
    assert data["events"] == ["Queued", "Queued", "InProgress", "InProgress", "Completed"]
    assert len(data["result"]["images"]) == 2
    assert fake_fal.counts == {"submit": 1, "status": 6, "result": 1, "cancel": 0}
