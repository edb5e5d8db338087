"""FakeFalServer's platform routes: JWKS, signed webhook deliveries, OpenAPI, storage uploads."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tarash.tarash_gateway.exceptions import WebhookVerificationError
from tarash_fal.testing import FakeFalServer, default_result, openapi_document
from tarash_fal.webhooks import verify

NO_QUEUE = {"submit": 0, "status": 0, "result": 0, "cancel": 0}


class Receiver:
    """A local HTTP endpoint answering deliveries with the statuses queued in ``answers``."""

    def __init__(self) -> None:
        self.answers: list[int] = []
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers.items()), body))
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/fal"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


@pytest.fixture
def client(fake_fal: FakeFalServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=fake_fal.base_url, verify=ssl.create_default_context(cafile=fake_fal.ca_path)
    ) as http:
        yield http


def _submit(client: httpx.Client, fake: FakeFalServer, webhook: str) -> str:
    answer = client.post(
        "/fal-ai/veo3",
        params={"fal_webhook": webhook},
        json={"prompt": "a cat"},
        headers={"Authorization": f"Key {fake.api_key}"},
    )
    assert answer.status_code == 200
    request_id: str = answer.json()["request_id"]
    return request_id


def test_a_completed_job_is_delivered_signed_once(
    fake_fal: FakeFalServer, client: httpx.Client, receiver: Receiver
) -> None:
    request_id = _submit(client, fake_fal, receiver.url)
    jwks = client.get("/.well-known/jwks.json").json()
    attempts = fake_fal.complete(request_id)
    assert [(a["attempt"], a["status"], a["duplicate"]) for a in attempts] == [(1, 200, False)]
    headers, body = receiver.received[0]
    event = verify(headers, body, jwks=jwks)
    submission = fake_fal.submissions[0]
    assert (event.job_id, event.state, event.output) == (request_id, "completed", default_result(submission))
    assert json.loads(body)["gateway_request_id"] == request_id
    assert headers["X-Fal-Webhook-User-Id"] == "fake-fal-user"
    assert fake_fal.webhook_counts == {
        "attempts": 1,
        "delivered": 1,
        "failed": 0,
        "retries": 0,
        "duplicates": 0,
    }
    assert fake_fal.jobs[request_id]["completed"] is True
    status = client.get(
        f"/fal-ai/veo3/requests/{request_id}/status", headers={"Authorization": f"Key {fake_fal.api_key}"}
    )
    assert (status.status_code, status.json()["status"]) == (200, "COMPLETED")
    assert fake_fal.platform_counts["jwks"] == 1


def test_failed_deliveries_are_retried_and_duplicates_sent_on_demand(
    fake_fal: FakeFalServer, client: httpx.Client, receiver: Receiver
) -> None:
    request_id = _submit(client, fake_fal, receiver.url)
    receiver.answers = [500, 503]
    fake_fal.duplicate_webhooks(2)
    attempts = fake_fal.complete(request_id)
    assert [(a["attempt"], a["status"], a["duplicate"]) for a in attempts] == [
        (1, 500, False),
        (2, 503, False),
        (3, 200, False),
        (1, 200, True),
        (1, 200, True),
    ]
    assert len(receiver.received) == 5
    assert len({body for _h, body in receiver.received}) == 1
    assert fake_fal.webhook_counts == {
        "attempts": 5,
        "delivered": 3,
        "failed": 2,
        "retries": 2,
        "duplicates": 2,
    }
    for headers, body in receiver.received:
        assert verify(headers, body, jwks=fake_fal.jwks).job_id == request_id


def test_retries_stop_after_the_limit(make_server: Callable[..., FakeFalServer], receiver: Receiver) -> None:
    fake = make_server(webhook_retries=2, webhook_retry_interval=0)
    with httpx.Client(
        base_url=fake.base_url, verify=ssl.create_default_context(cafile=fake.ca_path)
    ) as client:
        request_id = _submit(client, fake, receiver.url)
    receiver.answers = [500, 500, 500, 500]
    assert [a["status"] for a in fake.complete(request_id)] == [500, 500, 500]
    fake.duplicate_webhooks(1)
    assert fake.webhook_counts["duplicates"] == 0


def test_an_unreachable_receiver_counts_as_failed(make_server: Callable[..., FakeFalServer]) -> None:
    fake = make_server(webhook_retries=1, webhook_retry_interval=0)
    with httpx.Client(
        base_url=fake.base_url, verify=ssl.create_default_context(cafile=fake.ca_path)
    ) as client:
        request_id = _submit(client, fake, "http://127.0.0.1:9/nowhere")
    assert [a["status"] for a in fake.complete(request_id)] == [None, None]


def test_an_error_envelope(fake_fal: FakeFalServer, client: httpx.Client, receiver: Receiver) -> None:
    request_id = _submit(client, fake_fal, receiver.url)
    fake_fal.complete(request_id, error="Invalid status code: 422", detail=[{"msg": "bad prompt"}])
    headers, body = receiver.received[0]
    event = verify(headers, body, jwks=fake_fal.jwks)
    assert (event.state, event.error, event.output) == (
        "failed",
        "Invalid status code: 422",
        {"detail": [{"msg": "bad prompt"}]},
    )


def test_a_job_without_a_webhook_completes_silently(fake_fal: FakeFalServer, client: httpx.Client) -> None:
    answer = client.post(
        "/fal-ai/veo3", json={"prompt": "x"}, headers={"Authorization": f"Key {fake_fal.api_key}"}
    )
    assert fake_fal.complete(answer.json()["request_id"]) == []
    assert fake_fal.webhook_counts["attempts"] == 0


def test_deliveries_come_by_themselves_after_the_delay(
    make_server: Callable[..., FakeFalServer], receiver: Receiver
) -> None:
    fake = make_server(webhook_delay=0.05)
    with httpx.Client(
        base_url=fake.base_url, verify=ssl.create_default_context(cafile=fake.ca_path)
    ) as client:
        request_id = _submit(client, fake, receiver.url)
    fake.wait_webhooks()
    assert [json.loads(body)["request_id"] for _h, body in receiver.received] == [request_id]
    assert fake.counts == {"submit": 1, "status": 0, "result": 0, "cancel": 0}


def test_a_sender_can_replace_the_network(fake_fal: FakeFalServer, client: httpx.Client) -> None:
    seen: list[str] = []

    def sender(url: str, headers: Any, body: bytes) -> int:
        seen.append(url)
        return 204

    fake_fal.webhook_sender = sender
    request_id = _submit(client, fake_fal, "https://app.example/hooks/fal")
    assert [a["status"] for a in fake_fal.complete(request_id)] == [204]
    assert seen == ["https://app.example/hooks/fal"]


def test_a_tampered_delivery_from_the_fake_is_refused(fake_fal: FakeFalServer) -> None:
    body = b'{"request_id": "r", "status": "OK", "payload": {}}'
    headers = fake_fal.signed_headers("r", body)
    with pytest.raises(WebhookVerificationError) as caught:
        verify(headers, body.replace(b"{}", b"[]"), jwks=fake_fal.jwks)
    assert caught.value.reason == "bad_signature"


def test_openapi_per_model_needs_no_key(fake_fal: FakeFalServer, client: httpx.Client) -> None:
    path = "/api/openapi/queue/openapi.json"
    missing = client.get(path, params={"endpoint_id": "acme/model"})
    assert (missing.status_code, missing.json()) == (404, {"detail": "Endpoint 'acme/model' not found"})
    document = openapi_document("acme/model", {"prompt": {"type": "string"}})
    fake_fal.add_openapi("acme/model", document)
    found = client.get(path, params={"endpoint_id": "acme/model"})
    assert (found.status_code, found.json()) == (200, document)
    assert document["info"]["x-fal-metadata"]["endpointId"] == "acme/model"
    assert list(document["components"]["schemas"]) == [
        "QueueStatus",
        "AcmeModelInput",
        "AcmeModelOutput",
        "File",
    ]
    assert fake_fal.platform_counts["openapi"] == 2
    assert fake_fal.counts == NO_QUEUE


def test_storage_token_and_single_upload(fake_fal: FakeFalServer, client: httpx.Client) -> None:
    token_path = "/storage/auth/token?storage_type=fal-cdn-v3"
    assert client.post(token_path, json={}).status_code == 401
    wrong = client.post(
        "/storage/auth/token?storage_type=gcs", json={}, headers={"Authorization": f"Key {fake_fal.api_key}"}
    )
    assert wrong.status_code == 400
    token = client.post(token_path, json={}, headers={"Authorization": f"Key {fake_fal.api_key}"}).json()
    assert (token["token_type"], token["base_url"]) == ("Bearer", fake_fal.base_url)
    auth = {"Authorization": f"{token['token_type']} {token['token']}"}
    lifecycle = '{"expiration_duration_seconds": 3600}'
    refused = client.post("/files/upload", content=b"png", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401
    answer = client.post(
        "/files/upload",
        content=b"\x89PNG-bytes",
        headers={
            **auth,
            "Content-Type": "image/png",
            "X-Fal-File-Name": "frame.png",
            "X-Fal-Object-Lifecycle": lifecycle,
        },
    )
    url = answer.json()["access_url"]
    assert url.startswith(f"{fake_fal.base_url}/files/fake/") and url.endswith("_frame.png")
    assert fake_fal.uploads == [
        {
            "access_url": url,
            "file_name": "frame.png",
            "content_type": "image/png",
            "size": 10,
            "lifecycle": {"expiration_duration_seconds": 3600},
            "multipart": False,
        }
    ]
    got = client.get(url)
    assert (got.status_code, got.content, got.headers["content-type"]) == (200, b"\x89PNG-bytes", "image/png")
    fake_fal.expire(url)
    assert client.get(url).status_code == 404
    assert fake_fal.platform_counts == {
        "jwks": 0,
        "openapi": 0,
        "requests": 0,
        "token": 3,
        "upload": 2,
        "upload_part": 0,
        "upload_complete": 0,
        "file": 2,
    }
    assert fake_fal.counts == NO_QUEUE


def test_multipart_upload(fake_fal: FakeFalServer, client: httpx.Client) -> None:
    token = client.post(
        "/storage/auth/token?storage_type=fal-cdn-v3",
        json={},
        headers={"Authorization": f"Key {fake_fal.api_key}"},
    ).json()
    auth = {"Authorization": f"Bearer {token['token']}"}
    started = client.post(
        "/files/upload/multipart", headers={**auth, "Content-Type": "video/mp4", "X-Fal-File-Name": "in.mp4"}
    ).json()
    path = started["access_url"].removeprefix(fake_fal.base_url)
    parts = []
    for number, chunk in ((1, b"aaaa"), (2, b"bb")):
        answer = client.put(f"{path}/multipart/{started['uploadId']}/{number}", content=chunk, headers=auth)
        parts.append({"partNumber": number, "etag": answer.headers["etag"]})
    wrong = client.post(
        f"{path}/multipart/{started['uploadId']}/complete", json={"parts": parts[:1]}, headers=auth
    )
    assert wrong.status_code == 400
    done = client.post(
        f"{path}/multipart/{started['uploadId']}/complete", json={"parts": parts}, headers=auth
    )
    assert done.json() == {"access_url": started["access_url"]}
    assert fake_fal.file(started["access_url"]) == b"aaaabb"
    assert [(u["size"], u["multipart"]) for u in fake_fal.uploads] == [(6, True)]
    counts = fake_fal.platform_counts
    assert (counts["upload"], counts["upload_part"], counts["upload_complete"]) == (1, 2, 2)
