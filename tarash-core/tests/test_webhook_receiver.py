"""WebhookReceiver: routing, verification outcomes, dedupe, callbacks, flows that fetch, Starlette."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import pytest

from tarash.tarash_gateway.exceptions import HTTPError, WebhookVerificationError
from tarash.tarash_gateway.plugin import Request, Response
from tarash.tarash_gateway.webhooks import WebhookContext, WebhookEvent, WebhookReceiver

starlette = pytest.importorskip("starlette")
from starlette.applications import Starlette  # noqa: E402
from starlette.routing import Mount  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

KEYS = Request(method="GET", url="http://127.0.0.1:9/jwks", auth=False)  # a closed port


def _verify(provider: str, headers: Mapping[str, str], body: bytes, context: WebhookContext) -> Any:
    """A toy provider: header ``x-sig`` must be ``ok``; the body is ``{"id", "state"}``; with
    ``x-fetch`` it first fetches KEYS and requires the answer ``{"ok": true}``."""
    if headers.get("x-fetch"):
        answer = yield KEYS
        if answer.json() != {"ok": True}:
            raise WebhookVerificationError("keys say no", reason="unknown_key")
    if headers.get("x-sig") != "ok":
        raise WebhookVerificationError("bad signature", reason="bad_signature", provider=provider)
    data = json.loads(body)
    return WebhookEvent(
        provider=provider,
        job_id=data["id"],
        state=data["state"],
        delivery_id=data.get("delivery"),
        raw=data | {"now": context.now, "options": dict(context.options)},
    )


def _receiver(events: list[WebhookEvent], **kwargs: Any) -> WebhookReceiver:
    kwargs.setdefault("verifier", lambda provider: _verify if provider == "toy" else None)
    return WebhookReceiver(events.append, clock=lambda: 1234.0, **kwargs)


def _body(job: str = "j1", state: str = "completed", **extra: Any) -> bytes:
    return json.dumps({"id": job, "state": state, **extra}).encode()


def test_a_delivery_is_applied_once_and_duplicates_are_counted() -> None:
    events: list[WebhookEvent] = []
    receiver = _receiver(events, options={"toy": {"jwks_url": "u"}})
    client = TestClient(receiver)
    first = client.post("/toy", content=_body(), headers={"X-Sig": "ok"})
    again = client.post("/toy", content=_body(), headers={"X-Sig": "ok"})
    assert (first.status_code, first.json()) == (200, {"status": "accepted", "job_id": "j1"})
    assert (again.status_code, again.json()) == (200, {"status": "duplicate", "job_id": "j1"})
    assert [(e.provider, e.job_id, e.state) for e in events] == [("toy", "j1", "completed")]
    assert events[0].raw["now"] == 1234.0 and events[0].raw["options"] == {"jwks_url": "u"}
    assert receiver.stats == {"accepted": 1, "duplicates": 1, "rejected": 0, "failed": 0}


def test_dedupe_is_per_job_and_delivery_id() -> None:
    events: list[WebhookEvent] = []
    client = TestClient(_receiver(events))
    for body in (_body("j1"), _body("j2"), _body("j1", delivery="d2"), _body("j1", delivery="d2")):
        client.post("/toy", content=body, headers={"X-Sig": "ok"})
    assert [(e.job_id, e.delivery_id) for e in events] == [("j1", None), ("j2", None), ("j1", "d2")]


def test_dedupe_forgets_the_oldest_beyond_its_capacity() -> None:
    events: list[WebhookEvent] = []
    client = TestClient(_receiver(events, dedupe_capacity=1))
    for job in ("j1", "j2", "j1"):
        client.post("/toy", content=_body(job), headers={"X-Sig": "ok"})
    assert [e.job_id for e in events] == ["j1", "j2", "j1"]


def test_a_delivery_failing_verification_is_refused_and_never_applied() -> None:
    events: list[WebhookEvent] = []
    receiver = _receiver(events)
    answer = TestClient(receiver).post("/toy", content=_body(), headers={"X-Sig": "forged"})
    assert (answer.status_code, answer.json()) == (401, {"error": "bad signature", "reason": "bad_signature"})
    assert events == []
    assert receiver.stats == {"accepted": 0, "duplicates": 0, "rejected": 1, "failed": 0}


def test_routing_methods_and_sizes() -> None:
    events: list[WebhookEvent] = []
    client = TestClient(_receiver(events, max_body=64))
    assert client.post("/other", content=_body()).status_code == 404
    assert client.post("/toy/extra", content=_body()).status_code == 404
    assert client.post("/", content=_body()).status_code == 404
    refused = client.get("/toy")
    assert (refused.status_code, refused.headers["allow"]) == (405, "POST")
    assert client.post("/toy", content=b"x" * 65, headers={"X-Sig": "ok"}).status_code == 413
    assert events == []


def test_the_default_verifier_is_the_providers_hook() -> None:
    client = TestClient(WebhookReceiver(lambda event: None))
    assert client.post("/mock", content=b"{}").json() == {"error": "no webhook verifier for provider 'mock'"}
    assert client.post("/no-such-provider", content=b"{}").status_code == 404


def test_a_failing_callback_answers_500_and_the_retry_is_applied() -> None:
    calls: list[str] = []

    def flaky(event: WebhookEvent) -> None:
        calls.append(event.job_id)
        if len(calls) == 1:
            raise RuntimeError("ledger busy")

    receiver = WebhookReceiver(flaky, verifier=lambda provider: _verify)
    client = TestClient(receiver)
    assert client.post("/toy", content=_body(), headers={"X-Sig": "ok"}).status_code == 500
    assert client.post("/toy", content=_body(), headers={"X-Sig": "ok"}).json()["status"] == "accepted"
    assert client.post("/toy", content=_body(), headers={"X-Sig": "ok"}).json()["status"] == "duplicate"
    assert calls == ["j1", "j1"]
    assert receiver.stats == {"accepted": 1, "duplicates": 1, "rejected": 0, "failed": 1}


def test_an_async_callback_is_awaited() -> None:
    seen: list[str] = []

    async def applied(event: WebhookEvent) -> None:
        await asyncio.sleep(0)
        seen.append(event.job_id)

    client = TestClient(WebhookReceiver(applied, verifier=lambda provider: _verify))
    assert client.post("/toy", content=_body("j9"), headers={"X-Sig": "ok"}).status_code == 200
    assert seen == ["j9"]


def test_requests_a_flow_yields_go_through_send() -> None:
    sent: list[tuple[str, Request]] = []

    async def send(provider: str, request: Request) -> Response:
        sent.append((provider, request))
        return Response(status_code=200, headers={}, content=b'{"ok": true}')

    events: list[WebhookEvent] = []
    client = TestClient(_receiver(events, send=send))
    answer = client.post("/toy", content=_body(), headers={"X-Sig": "ok", "X-Fetch": "1"})
    assert answer.json() == {"status": "accepted", "job_id": "j1"}
    assert sent == [("toy", KEYS)]


def test_without_send_the_fetch_goes_through_core_and_its_failure_is_answered_503() -> None:
    events: list[WebhookEvent] = []
    receiver = _receiver(events)
    answer = TestClient(receiver).post("/toy", content=_body(), headers={"X-Sig": "ok", "X-Fetch": "1"})
    assert answer.status_code == 503
    assert events == [] and receiver.stats["failed"] == 1


def test_a_failed_or_slow_fetch_is_answered_503_so_the_provider_retries() -> None:
    async def failing(provider: str, request: Request) -> Response:
        raise HTTPError("keys down", status_code=502)

    async def slow(provider: str, request: Request) -> Response:
        await asyncio.sleep(5)
        raise AssertionError("not reached")

    events: list[WebhookEvent] = []
    for send in (failing, slow):
        client = TestClient(_receiver(events, send=send, timeout=0.05))
        assert (
            client.post("/toy", content=_body(), headers={"X-Sig": "ok", "X-Fetch": "1"}).status_code == 503
        )
    assert events == []


def test_a_verifier_returning_something_else_is_a_500() -> None:
    def wrong(provider: str, headers: Mapping[str, str], body: bytes, context: WebhookContext) -> Any:
        return WebhookEvent(provider="other", job_id="j", state="completed")
        yield

    client = TestClient(WebhookReceiver(lambda e: None, verifier=lambda provider: wrong))
    assert client.post("/toy", content=b"{}").status_code == 500


def test_a_verifier_that_raises_refuses_the_delivery_and_the_receiver_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A plugin's verifier failing on input it did not expect (here an overflow) is a refused
    delivery (400, counted), not a crash of the receiver; the next delivery is verified as usual."""
    events: list[WebhookEvent] = []

    def fragile(provider: str, headers: Mapping[str, str], body: bytes, context: WebhookContext) -> Any:
        if headers.get("x-huge"):
            raise OverflowError("int too large to convert to float")
        return (yield from _verify(provider, headers, body, context))

    client = TestClient(_receiver(events, verifier=lambda provider: fragile))
    refused = client.post("/toy", content=_body(), headers={"x-sig": "ok", "x-huge": "1"})
    assert (refused.status_code, refused.json()) == (
        400,
        {"error": "the delivery could not be verified", "reason": "verifier_error"},
    )
    assert [r.getMessage() for r in caplog.records if r.name == "tarash.webhooks"] == [
        "verify_webhook of toy raised OverflowError: int too large to convert to float"
    ]
    assert client.post("/toy", content=_body(), headers={"x-sig": "ok"}).status_code == 200
    assert [event.job_id for event in events] == ["j1"]


def test_mounted_in_starlette_with_lifespan() -> None:
    events: list[WebhookEvent] = []
    app = Starlette(routes=[Mount("/webhooks", app=_receiver(events))])
    with TestClient(app) as client:
        answer = client.post("/webhooks/toy", content=_body("j5"), headers={"X-Sig": "ok"})
        assert client.post("/toy", content=_body()).status_code == 404
    assert answer.json() == {"status": "accepted", "job_id": "j5"}
    assert [e.job_id for e in events] == ["j5"]
    with TestClient(_receiver(events)) as direct:
        assert direct.post("/toy", content=_body("j6"), headers={"X-Sig": "ok"}).status_code == 200
