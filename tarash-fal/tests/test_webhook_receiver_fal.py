"""The fake's signed deliveries through core's WebhookReceiver (mounted in Starlette) with fal's
verify flow; the key set is fetched from the fake through the receiver's ``send``."""

from __future__ import annotations

import hashlib
import json
import ssl
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from tarash.tarash_gateway.plugin import Request, Response
from tarash.tarash_gateway.webhooks import WebhookEvent, WebhookReceiver
from tarash_fal import webhooks
from tarash_fal.testing import FakeFalServer, default_result
from tarash_fal.webhooks import JWKSCache, verify_webhook


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhooks, "JWKS_CACHE", JWKSCache())


class Wiring:
    """A Starlette app with the receiver at /webhooks, fed by the fake's deliveries."""

    def __init__(self, fake: FakeFalServer) -> None:
        self.events: list[WebhookEvent] = []
        self.fetched: list[Request] = []
        self.fake = fake
        context = ssl.create_default_context(cafile=fake.ca_path)

        async def send(provider: str, request: Request) -> Response:
            self.fetched.append(request)
            async with httpx.AsyncClient(verify=context) as client:
                answer = await client.request(request.method, request.url, headers=dict(request.headers))
            return Response(
                status_code=answer.status_code, headers=dict(answer.headers), content=answer.content
            )

        self.receiver = WebhookReceiver(
            self.events.append,
            send=send,
            verifier=lambda provider: verify_webhook if provider == "fal" else None,
            options={"fal": {"jwks_url": fake.jwks_url}},
        )
        self.client = TestClient(Starlette(routes=[Mount("/webhooks", app=self.receiver)]))
        self.answers: list[Any] = []

        def deliver(url: str, headers: Any, body: bytes) -> int:
            path = httpx.URL(url).path
            status = self.client.post(path, content=body, headers=dict(headers)).status_code
            self.answers.append(status)
            return status

        fake.webhook_sender = deliver

    def submit(self) -> str:
        with httpx.Client(verify=ssl.create_default_context(cafile=self.fake.ca_path)) as client:
            answer = client.post(
                f"{self.fake.base_url}/fal-ai/veo3",
                params={"fal_webhook": "https://app.example/webhooks/fal"},
                json={"prompt": "a cat"},
                headers={"Authorization": f"Key {self.fake.api_key}"},
            )
        request_id: str = answer.json()["request_id"]
        return request_id


@pytest.fixture
def wiring(fake_fal: FakeFalServer) -> Wiring:
    return Wiring(fake_fal)


def test_a_delivery_is_verified_and_applied_once_duplicates_ignored(wiring: Wiring) -> None:
    request_id = wiring.submit()
    wiring.fake.duplicate_webhooks(3)
    attempts = wiring.fake.complete(request_id)
    assert [a["status"] for a in attempts] == [200, 200, 200, 200]
    assert [e.job_id for e in wiring.events] == [request_id]
    assert wiring.events[0].output == default_result(wiring.fake.submissions[0])
    assert wiring.receiver.stats == {"accepted": 1, "duplicates": 3, "rejected": 0, "failed": 0}
    assert [r.url for r in wiring.fetched] == [wiring.fake.jwks_url]
    assert wiring.fake.platform_counts["jwks"] == 1


def test_retries_after_a_failed_apply_are_applied_once(wiring: Wiring) -> None:
    request_id = wiring.submit()
    failures = [RuntimeError("ledger locked")]

    def apply(event: WebhookEvent) -> None:
        if failures:
            raise failures.pop()
        wiring.events.append(event)

    wiring.receiver.on_event = apply
    wiring.fake.duplicate_webhooks(1)
    attempts = wiring.fake.complete(request_id)
    assert [(a["attempt"], a["status"], a["duplicate"]) for a in attempts] == [
        (1, 500, False),
        (2, 200, False),
        (1, 200, True),
    ]
    assert [e.job_id for e in wiring.events] == [request_id]
    assert wiring.receiver.stats == {"accepted": 1, "duplicates": 1, "rejected": 0, "failed": 1}
    assert wiring.fake.webhook_counts == {
        "attempts": 3,
        "delivered": 2,
        "failed": 1,
        "retries": 1,
        "duplicates": 1,
    }


def test_tampered_foreign_and_stale_deliveries_are_refused(wiring: Wiring) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    body = json.dumps({"request_id": "r1", "status": "OK", "payload": {}}).encode()
    tampered = wiring.client.post(
        "/webhooks/fal", content=body.replace(b"{}", b"[]"), headers=wiring.fake.signed_headers("r1", body)
    )
    stale = wiring.client.post(
        "/webhooks/fal", content=body, headers=wiring.fake.signed_headers("r1", body, timestamp=1_000_000_000)
    )
    foreign = wiring.fake.signed_headers("r1", body)
    other = Ed25519PrivateKey.generate()
    message = "\n".join(
        (
            "r1",
            foreign["X-Fal-Webhook-User-Id"],
            foreign["X-Fal-Webhook-Timestamp"],
            hashlib.sha256(body).hexdigest(),
        )
    )
    foreign["X-Fal-Webhook-Signature"] = other.sign(message.encode()).hex()
    wrong_key = wiring.client.post("/webhooks/fal", content=body, headers=foreign)
    missing = wiring.client.post("/webhooks/fal", content=body)
    assert [(a.status_code, a.json()["reason"]) for a in (tampered, stale, wrong_key, missing)] == [
        (401, "bad_signature"),
        (401, "stale_timestamp"),
        (401, "bad_signature"),
        (401, "missing_header"),
    ]
    assert wiring.events == []
    assert wiring.receiver.stats == {"accepted": 0, "duplicates": 0, "rejected": 4, "failed": 0}
    assert wiring.fake.platform_counts["jwks"] == 1


def test_a_receiver_pinned_to_another_fal_account_refuses_the_delivery(wiring: Wiring) -> None:
    """``options["fal"]["user_id"]`` pins the account: a delivery fal signed for another account
    (here the fake's) is refused (401) and never applied."""
    wiring.receiver.options["fal"]["user_id"] = "someone-else"
    request_id = wiring.submit()
    attempts = wiring.fake.complete(request_id)
    assert {a["status"] for a in attempts} == {401}
    assert wiring.events == []
    assert wiring.receiver.stats["accepted"] == 0 and wiring.receiver.stats["rejected"] == len(attempts)
