"""Webhooks end to end: a job submitted with ``config.webhook_url`` to the fake fal server, whose
signed delivery reaches core's WebhookReceiver (mounted in Starlette, verified by the installed
fal plugin's hook), completes the job in the ledger and ends a ``JobHandle.wait()`` in this
process with no status poll after it."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from tarash.tarash_gateway import JobHandle, set_ledger, submit_video
from tarash.tarash_gateway._inbox import INBOX
from tarash.tarash_gateway.jobs import get_ledger
from tarash.tarash_gateway.models import VideoGenerationConfig, VideoGenerationRequest
from tarash.tarash_gateway.plugin import Request, Response
from tarash.tarash_gateway.webhooks import WebhookReceiver
from tarash_fal import webhooks
from tarash_fal.testing import FakeFalServer, default_result
from tarash_fal.webhooks import JWKSCache

WEBHOOK_URL = "https://app.example/webhooks/fal"


@pytest.fixture(autouse=True, params=["sqlite", "postgres"])
def _fresh_state(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[None]:
    """Each test on a SQLite ledger and on a PostgreSQL one (a fleet's, where deliveries behind a
    load balancer are the documented setup; the case of a delivery reaching another worker is
    tarash-core's ``test_fleet.py``)."""
    monkeypatch.setattr(webhooks, "JWKS_CACHE", JWKSCache())
    INBOX.clear()
    set_ledger(request.getfixturevalue("pg_url") if request.param == "postgres" else tmp_path / "jobs.db")
    yield
    set_ledger(None)
    INBOX.clear()


@pytest.fixture
def fake(make_server: Any) -> FakeFalServer:
    # Status polls alone would never complete the job: only the webhook (complete()) does.
    server: FakeFalServer = make_server(queue_polls=10_000)
    return server


class Receiver:
    """The receiver at /webhooks in Starlette; the fake delivers into it."""

    def __init__(self, fake: FakeFalServer) -> None:
        context = ssl.create_default_context(cafile=fake.ca_path)

        async def send(provider: str, request: Request) -> Response:
            async with httpx.AsyncClient(verify=context) as client:
                answer = await client.request(request.method, request.url, headers=dict(request.headers))
            return Response(
                status_code=answer.status_code, headers=dict(answer.headers), content=answer.content
            )

        self.receiver = WebhookReceiver(send=send, options={"fal": {"jwks_url": fake.jwks_url}})
        self.client = TestClient(Starlette(routes=[Mount("/webhooks", app=self.receiver)]))

        def deliver(url: str, headers: Any, body: bytes) -> int:
            return self.client.post(httpx.URL(url).path, content=body, headers=dict(headers)).status_code

        fake.webhook_sender = deliver


def _config(fake: FakeFalServer, **fields: Any) -> VideoGenerationConfig:
    return VideoGenerationConfig(
        model="fal-ai/veo3",
        provider="fal",
        api_key=fake.api_key,
        base_url=fake.base_url,
        poll_interval=30,
        timeout=60,
        webhook_url=WEBHOOK_URL,
        provider_config={"ca_bundle": fake.ca_path},
        **fields,
    )


def _wait_for(predicate: Any, seconds: float = 10.0) -> None:
    done = threading.Event()
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        done.wait(0.01)
    raise AssertionError("condition not reached")


def test_the_webhook_url_is_sent_as_fal_webhook(fake: FakeFalServer) -> None:
    submit_video(_config(fake), VideoGenerationRequest(prompt="a cat"))
    assert [s["webhook_url"] for s in fake.submissions] == [WEBHOOK_URL]


def test_wait_returns_on_the_webhook_with_no_status_poll_after_it(fake: FakeFalServer) -> None:
    receiver = Receiver(fake)
    handle = submit_video(_config(fake), VideoGenerationRequest(prompt="a cat"))
    outcome: dict[str, Any] = {}
    waiter = threading.Thread(target=lambda: outcome.update(response=handle.wait()))
    waiter.start()
    _wait_for(lambda: fake.counts["status"] == 1)  # the first poll; the next would be 30 s later
    fake.duplicate_webhooks(2)
    attempts = fake.complete(handle.job_id)
    waiter.join(10)
    assert not waiter.is_alive()
    assert [a["status"] for a in attempts] == [200, 200, 200]
    assert fake.counts == {"submit": 1, "status": 1, "result": 0, "cancel": 0}
    expected = default_result(fake.submissions[0])["video"]["url"]
    assert outcome["response"].video == expected
    assert receiver.receiver.stats == {"accepted": 1, "duplicates": 2, "rejected": 0, "failed": 0}
    store = get_ledger()
    assert store is not None
    record = store.get(handle.key)
    assert record is not None and record.finished and record.state == "completed"
    assert record.result is not None and record.result["video"] == expected
    assert [e.kind for e in store.events(handle.key)].count("finished") >= 1


async def test_wait_async_returns_on_the_webhook(fake: FakeFalServer) -> None:
    Receiver(fake)
    handle = submit_video(_config(fake), VideoGenerationRequest(prompt="a dog"))
    task = asyncio.ensure_future(handle.wait_async())
    await asyncio.to_thread(_wait_for, lambda: fake.counts["status"] == 1)
    await asyncio.to_thread(fake.complete, handle.job_id)
    response = await asyncio.wait_for(task, 10)
    assert response.video == default_result(fake.submissions[0])["video"]["url"]
    assert fake.counts == {"submit": 1, "status": 1, "result": 0, "cancel": 0}


def test_a_failed_delivery_ends_the_wait_with_the_error(fake: FakeFalServer) -> None:
    from tarash.tarash_gateway.exceptions import GenerationFailedError

    Receiver(fake)
    handle = submit_video(_config(fake), VideoGenerationRequest(prompt="a cat"))
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            handle.wait()
        except GenerationFailedError as exc:
            errors.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    _wait_for(lambda: fake.counts["status"] == 1)
    fake.complete(handle.job_id, error="the GPU caught fire")
    waiter.join(10)
    assert [str(e.message) for e in errors] == ["the GPU caught fire"]
    assert fake.counts["status"] == 1
    store = get_ledger()
    assert store is not None
    record = store.get(handle.key)
    assert record is not None and record.finished and record.state == "failed"


def test_a_delivery_completes_the_ledger_with_nobody_waiting(fake: FakeFalServer) -> None:
    receiver = Receiver(fake)
    handle = submit_video(_config(fake), VideoGenerationRequest(prompt="a cat"))
    fake.complete(handle.job_id)
    store = get_ledger()
    assert store is not None
    record = store.get(handle.key)
    assert record is not None and record.finished and record.state == "completed"
    assert receiver.receiver.stats["accepted"] == 1
    # A later wait in this process ends on the delivered event without asking fal.
    response = JobHandle.from_record(record, api_key=fake.api_key).wait()
    assert response.video == default_result(fake.submissions[0])["video"]["url"]
    assert fake.counts["status"] == 0 and fake.counts["result"] == 0


def test_without_a_delivery_polling_stays_the_backstop(make_server: Any) -> None:
    fake = make_server(queue_polls=1, processing_polls=1)
    config = attrs.evolve(_config(fake), poll_interval=0.01)
    response = submit_video(config, VideoGenerationRequest(prompt="a cat")).wait()
    assert response.video == default_result(fake.submissions[0])["video"]["url"]
    assert fake.counts == {"submit": 1, "status": 3, "result": 1, "cancel": 0}
