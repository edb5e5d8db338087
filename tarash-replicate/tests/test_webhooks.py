"""Webhook deliveries: signed by the fake per Standard Webhooks, verified by tarash_replicate.webhooks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tarash.tarash_gateway import VideoGenerationRequest, set_ledger, submit_video
from tarash.tarash_gateway.exceptions import TarashException
from tarash_replicate.testing import FakeReplicateServer
from tarash_replicate.webhooks import ReplicateWebhookEvent, WebhookVerificationError, verify

BODY = json.dumps(
    {
        "id": "p1",
        "status": "succeeded",
        "output": ["https://replicate.delivery/x/a.png"],
        "error": None,
        "created_at": "2026-12-01T10:00:00.5Z",
    }
).encode()


class Receiver:
    """A local webhook endpoint recording (headers, body) of every POST."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.received.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/replicate"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def test_a_signed_delivery_verifies_into_a_typed_event(fake_replicate: FakeReplicateServer) -> None:
    headers = fake_replicate.sign(BODY, msg_id="msg_1")
    event = verify(headers, BODY, fake_replicate.webhook_secret)
    assert isinstance(event, ReplicateWebhookEvent)
    assert (event.webhook_id, event.prediction_id, event.status, event.state) == (
        "msg_1",
        "p1",
        "succeeded",
        "completed",
    )
    assert event.output_urls == ("https://replicate.delivery/x/a.png",)
    assert event.error is None
    assert event.expires_at is not None
    assert event.expires_at.isoformat() == "2026-12-01T11:00:00.500000+00:00"
    assert event.expires_at - timedelta(hours=1) == event.expires_at.replace(hour=10)


def test_headers_are_matched_in_any_case(fake_replicate: FakeReplicateServer) -> None:
    headers = {k.title(): v for k, v in fake_replicate.sign(BODY).items()}
    assert verify(headers, BODY.decode(), fake_replicate.webhook_secret).prediction_id == "p1"


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("tampered", "No matching signature"),
        ("wrong secret", "No matching signature"),
        ("stale", "too old"),
        ("future", "too new"),
        ("missing header", "Missing required headers"),
        ("garbled signature", "malformed"),
        ("bad secret", "signing secret"),
        ("not a prediction", "not a prediction"),
    ],
)
def test_untrustworthy_deliveries_are_refused(
    fake_replicate: FakeReplicateServer, case: str, reason: str
) -> None:
    body, secret = BODY, fake_replicate.webhook_secret
    headers = fake_replicate.sign(body)
    if case == "tampered":
        body = BODY.replace(b"succeeded", b"failed")
    elif case == "wrong secret":
        secret = FakeReplicateServer().webhook_secret
    elif case == "stale":
        headers = fake_replicate.sign(body, timestamp=time.time() - 301)
    elif case == "future":
        headers = fake_replicate.sign(body, timestamp=time.time() + 301)
    elif case == "missing header":
        del headers["webhook-signature"]
    elif case == "garbled signature":
        headers["webhook-signature"] = "v1"
    elif case == "bad secret":
        secret = "whsec_"
    elif case == "not a prediction":
        body = b'["p1"]'
        headers = fake_replicate.sign(body)
    with pytest.raises(WebhookVerificationError, match=reason) as caught:
        verify(headers, body, secret)
    assert isinstance(caught.value, TarashException)
    assert caught.value.provider == "replicate"


def test_the_fake_delivers_signed_webhooks_for_the_filtered_events(
    fake_replicate: FakeReplicateServer, receiver: Receiver
) -> None:
    set_ledger("off")
    try:
        config = fake_replicate.video_config(
            "google/veo-3",
            provider_config={"webhook_url": receiver.url, "webhook_events_filter": ["completed"]},
        )
        handle = submit_video(config, VideoGenerationRequest(prompt="x"))
        assert fake_replicate.submissions[0]["body"]["webhook_events_filter"] == ["completed"]
        assert fake_replicate.deliveries == []
        fake_replicate.finish(handle.job_id)
        deadline = time.monotonic() + 10
        while not receiver.received:
            assert time.monotonic() < deadline, "no delivery"
            time.sleep(0.01)
    finally:
        set_ledger(None)
    [(headers, body)] = receiver.received
    event = verify(headers, body, fake_replicate.webhook_secret)
    assert (event.prediction_id, event.state) == (handle.job_id, "completed")
    assert event.output_urls == (f"https://replicate.delivery/xezq/{handle.job_id}/output.mp4",)
    fake_replicate.stop()
    [delivery] = fake_replicate.deliveries
    assert (delivery["event"], delivery["status_code"]) == ("completed", 204)


def test_start_events_are_delivered_at_creation_when_asked(
    fake_replicate: FakeReplicateServer, receiver: Receiver
) -> None:
    set_ledger("off")
    try:
        config = fake_replicate.video_config(
            "google/veo-3", provider_config={"webhook_url": receiver.url, "webhook_events_filter": ["start"]}
        )
        handle = submit_video(config, VideoGenerationRequest(prompt="x"))
        fake_replicate.finish(handle.job_id)
    finally:
        set_ledger(None)
    fake_replicate.stop()
    assert [d["event"] for d in fake_replicate.deliveries] == ["start"]
    [(headers, body)] = receiver.received
    assert verify(headers, body, fake_replicate.webhook_secret).state == "queued"


def test_core_receiver_applies_a_signed_delivery_once(fake_replicate: FakeReplicateServer) -> None:
    from starlette.testclient import TestClient

    from tarash.tarash_gateway.webhooks import WebhookReceiver

    events: list[Any] = []
    receiver = WebhookReceiver(
        events.append, options={"replicate": {"secret": fake_replicate.webhook_secret}}
    )
    client = TestClient(receiver)
    headers = fake_replicate.sign(BODY)
    assert client.post("/replicate", content=BODY, headers=headers).json()["status"] == "accepted"
    assert client.post("/replicate", content=BODY, headers=headers).json()["status"] == "duplicate"
    [event] = events
    assert (event.provider, event.job_id, event.state) == ("replicate", "p1", "completed")
    tampered = BODY.replace(b"succeeded", b"failed")
    answer = client.post("/replicate", content=tampered, headers=headers)
    assert (answer.status_code, answer.json()["reason"]) == (401, "bad_signature")
    unsigned = WebhookReceiver(events.append)
    answer = TestClient(unsigned).post("/replicate", content=BODY, headers=headers)
    assert (answer.status_code, answer.json()["reason"]) == (401, "unknown_key")
    assert len(events) == 1
