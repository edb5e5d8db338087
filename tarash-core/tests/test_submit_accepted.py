"""A submit whose billing request the provider accepted (or whose answer was lost) may have made a
job: whatever the submit flow raises after that, core neither sends the submit again nor starts a
fallback, and the generation ends ``UnknownSubmissionError`` (the ledger: ``unknown``).

A lifecycle provider's submit flow here sends the billing ``POST /jobs`` and, in some cases, a
follow-up ``GET`` (reading the job's details, or looking up a job whose answer was lost); each
config falls back to a second provider on another host, so a second job would show as a ``POST``
there. The answers come from an ``httpx.MockTransport`` that counts every request."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tarash.tarash_gateway import Gateway, _engine
from tarash.tarash_gateway._transport import Transport
from tarash.tarash_gateway.exceptions import (
    GenerationFailedError,
    HTTPConnectionError,
    HTTPError,
    UnknownSubmissionError,
    ValidationError,
)
from tarash.tarash_gateway.models import (
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
)
from tarash.tarash_gateway.plugin import (
    Capabilities,
    JobStatus,
    ProviderSpec,
    Request,
    SubmittedJob,
    hookimpl,
)

Answer = Callable[[httpx.Request], httpx.Response]


class JobsPlugin:
    """Providers ``primary`` and ``backup`` (one API on two hosts) whose submit flow is ``submit``."""

    def __init__(self, submit: Callable[..., Any], idempotency_key: bool = False) -> None:
        self._submit = submit
        self._idempotency_key = idempotency_key

    @hookimpl
    def register_providers(self) -> list[ProviderSpec]:
        return [
            ProviderSpec(
                name=name,
                modalities={"video"},
                capabilities=Capabilities(cancel=False, resume=False, idempotency_key=self._idempotency_key),
                base_url=f"https://{name}.invalid",
            )
            for name in ("primary", "backup")
        ]

    @hookimpl
    def submit(self, config: Any, request: Any, context: Any) -> Any:
        return (yield from self._submit(config, request, context))

    @hookimpl
    def status(self, config: Any, job: Any, context: Any) -> Any:
        yield Request(method="GET", url=f"/jobs/{job.job_id}")
        return JobStatus(state="completed")

    @hookimpl
    def result(self, config: Any, job: Any, context: Any) -> Any:
        yield Request(method="GET", url=f"/jobs/{job.job_id}/result")
        return VideoGenerationResponse(request_id=job.job_id, video="https://cdn.invalid/v.mp4")


def read_details(config: Any, request: Any, context: Any) -> Any:
    """The billing POST (with the submit's idempotency key), then a GET of the new job's details."""
    body = {"prompt": request.prompt, "key": context.idempotency_key}
    created = (yield Request(method="POST", url="/jobs", json=body)).json()
    yield Request(method="GET", url=f"/jobs/{created['id']}/details")
    return SubmittedJob(job_id=created["id"])


def look_up_a_lost_answer(config: Any, request: Any, context: Any) -> Any:
    """The billing POST; when its answer is lost, a GET looks the job up by its key."""
    try:
        created = (yield Request(method="POST", url="/jobs", json={"key": context.idempotency_key})).json()
    except HTTPConnectionError:
        found = (yield Request(method="GET", url="/jobs", params={"key": context.idempotency_key})).json()
        return SubmittedJob(job_id=found["ids"][0])
    return SubmittedJob(job_id=created["id"])


def unreadable_answer(retryable: bool) -> Callable[..., Any]:
    """The billing POST, whose 2xx answer the plugin cannot read (its own typed error)."""

    def submit(config: Any, request: Any, context: Any) -> Any:
        answer = yield Request(method="POST", url="/jobs", json={"prompt": request.prompt})
        if not answer.content.startswith(b"{"):
            raise GenerationFailedError("the answer is not JSON", retryable=retryable)
        return SubmittedJob(job_id=answer.json()["id"])

    return submit


def translated_refusal(config: Any, request: Any, context: Any) -> Any:
    """The billing POST; a 422 answer becomes a ValidationError naming the field."""
    try:
        created = (yield Request(method="POST", url="/jobs", json={"prompt": request.prompt})).json()
    except HTTPError as exc:
        if exc.status_code == 422:
            raise ValidationError("the prompt was refused", field="prompt") from exc
        raise
    return SubmittedJob(job_id=created["id"])


def served(on_primary: Answer) -> tuple[Transport, collections.Counter[str]]:
    """A transport whose ``primary`` host answers with ``on_primary`` and ``backup`` host as a
    healthy provider; and the count of every request, by host, method and path."""
    counts: collections.Counter[str] = collections.Counter()

    def answer(request: httpx.Request) -> httpx.Response:
        counts[f"{request.url.host} {request.method} {request.url.path}"] += 1
        if request.url.host == "primary.invalid":
            return on_primary(request)
        return httpx.Response(201, json={"id": "b-1"})

    return Transport(
        transport=httpx.MockTransport(answer), async_transport=httpx.MockTransport(answer)
    ), counts


def created_then(follow_up: Answer) -> Answer:
    """The billing POST is accepted (201, job ``p-1``); every other request gets ``follow_up``."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json={"id": "p-1"})
        return follow_up(request)

    return answer


def read_error(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadError("connection reset while reading the answer", request=request)


def throttled(request: httpx.Request) -> httpx.Response:
    return httpx.Response(429, headers={"Retry-After": "0"}, json={"error": "slow down"})


def lost_then_unreachable(request: httpx.Request) -> httpx.Response:
    if request.method == "POST":
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
    raise httpx.ConnectError("connection refused", request=request)


def not_json(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"<html>accepted</html>")


def generate(api: str, gateway: Gateway, config: VideoGenerationConfig) -> VideoGenerationResponse:
    request = VideoGenerationRequest("a cat")
    if api == "sync":
        return gateway.generate_video(config, request)
    return asyncio.run(gateway.generate_video_async(config, request))


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_engine.attempt, "BACKOFF_BASE", 0.001)


CONFIG = VideoGenerationConfig(
    provider="primary",
    model="m",
    timeout=30,
    fallback_configs=[VideoGenerationConfig(provider="backup", model="m", timeout=30)],
)


@pytest.mark.parametrize("api", ["sync", "async"])
@pytest.mark.parametrize(
    ("name", "submit", "primary", "requests"),
    [
        ("details read error", read_details, created_then(read_error), {"GET /jobs/p-1/details": 1}),
        ("details throttled", read_details, created_then(throttled), {"GET /jobs/p-1/details": 1}),
        ("lost, lookup unreachable", look_up_a_lost_answer, lost_then_unreachable, {"GET /jobs": 1}),
        ("unreadable, retryable", unreadable_answer(True), not_json, {}),
        ("unreadable, not retryable", unreadable_answer(False), not_json, {}),
    ],
)
def test_an_error_after_the_submit_was_accepted_sends_it_once_and_starts_no_fallback(
    api: str, name: str, submit: Any, primary: Answer, requests: dict[str, int], tmp_path: Path
) -> None:
    transport, counts = served(primary)
    with Gateway(discover=False, ledger=tmp_path / "jobs.db", transport=transport) as gateway:
        gateway.register_plugin(JobsPlugin(submit), "jobs")
        with pytest.raises(UnknownSubmissionError) as info:
            generate(api, gateway, CONFIG)
        [record] = gateway.ledger().store.records()  # type: ignore[union-attr]
    assert dict(counts) == {"primary.invalid POST /jobs": 1} | {
        f"primary.invalid {request}": count for request, count in requests.items()
    }
    assert info.value.provider == "primary"
    assert "It was NOT resubmitted" in info.value.message
    assert [attempt.provider for attempt in info.value.attempts] == ["primary"]
    assert (record.provider, record.state) == ("primary", "unknown")


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_refused_submit_keeps_the_plugins_translation(api: str) -> None:
    """A 422 answer made no job: the plugin's ValidationError is the outcome, as it raised it."""
    transport, counts = served(lambda request: httpx.Response(422, json={"detail": "prompt refused"}))
    with Gateway(discover=False, ledger="off", transport=transport) as gateway:
        gateway.register_plugin(JobsPlugin(translated_refusal), "jobs")
        with pytest.raises(ValidationError) as info:
            generate(api, gateway, CONFIG)
    assert (info.value.field, info.value.message) == ("prompt", "the prompt was refused")
    assert dict(counts) == {"primary.invalid POST /jobs": 1}


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_provider_that_honours_idempotency_keys_sends_its_submit_again_with_the_same_key(api: str) -> None:
    """With the key the provider makes one job of every try: a throttled follow-up sends the
    submit again, and the generation completes on the first provider."""
    posted: list[str] = []
    throttles = iter([True])

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posted.append(request.read().decode())
            return httpx.Response(201, json={"id": "p-1"})
        if request.url.path.endswith("/details") and next(throttles, False):
            return throttled(request)
        return httpx.Response(200, json={})

    transport, counts = served(answer)
    with Gateway(discover=False, ledger="off", transport=transport) as gateway:
        gateway.register_plugin(JobsPlugin(read_details, idempotency_key=True), "jobs")
        response = generate(api, gateway, CONFIG)
    assert (response.provider, response.request_id) == ("primary", "p-1")
    assert counts["primary.invalid POST /jobs"] == 2
    assert counts["backup.invalid POST /jobs"] == 0
    assert len(posted) == 2 and posted[0] == posted[1] and '"key":""' not in posted[0].replace(" ", "")


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_submit_sent_again_with_its_key_whose_answers_are_all_lost_starts_no_fallback(api: str) -> None:
    """Each try may have made the (one) job: once the tries are used up, the outcome is
    UnknownSubmissionError, not a connection error the chain would fall back on."""
    transport, counts = served(lost_then_unreachable)
    with Gateway(discover=False, ledger="off", transport=transport) as gateway:
        gateway.register_plugin(JobsPlugin(unreadable_answer(True), idempotency_key=True), "jobs")
        with pytest.raises(UnknownSubmissionError):
            generate(api, gateway, CONFIG)
    assert dict(counts) == {"primary.invalid POST /jobs": _engine.phases.MAX_SUBMIT_TRIES}


class TimingOutHandler:
    """A seed-page handler (its own I/O) whose request timed out waiting for the answer."""

    def __init__(self) -> None:
        self.calls = 0

    def generate_video(self, config: Any, request: Any, on_progress: Any = None) -> Any:
        self.calls += 1
        raise TimeoutError("The read operation timed out")

    async def generate_video_async(self, config: Any, request: Any, on_progress: Any = None) -> Any:
        self.calls += 1
        raise TimeoutError("The read operation timed out")


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_timeout_in_a_handlers_own_submit_is_an_unknown_submission(api: str) -> None:
    """The handler's request may have reached the provider before its socket timed out: no
    fallback pays for a second job."""
    handler = TimingOutHandler()
    with Gateway(discover=False, ledger="off") as gateway:
        gateway.register_provider("seedy", handler)
        config = VideoGenerationConfig(
            provider="seedy", model="m", fallback_configs=[VideoGenerationConfig(provider="mock", model="m")]
        )
        with pytest.raises(UnknownSubmissionError) as info:
            generate(api, gateway, config)
    assert handler.calls == 1
    assert info.value.provider == "seedy"
    assert type(info.value.__cause__) is TimeoutError
    assert [attempt.provider for attempt in info.value.attempts] == ["seedy"]


def answered(status: int) -> Answer:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text=f"<html>{status}</html>")

    return answer


@pytest.mark.parametrize("api", ["sync", "async"])
@pytest.mark.parametrize("status", [502, 504, 520, 524])
def test_a_gateways_answer_to_the_submit_may_hide_a_job(api: str, status: int, tmp_path: Path) -> None:
    """A proxy in front of the provider answered in its place (502, 504; Cloudflare's 520, 524):
    the provider may have received the submit and made the job, so no fallback pays for another."""
    transport, counts = served(answered(status))
    with Gateway(discover=False, ledger=tmp_path / "jobs.db", transport=transport) as gateway:
        gateway.register_plugin(JobsPlugin(unreadable_answer(True)), "jobs")
        with pytest.raises(UnknownSubmissionError) as info:
            generate(api, gateway, CONFIG)
        [record] = gateway.ledger().store.records()  # type: ignore[union-attr]
    assert dict(counts) == {"primary.invalid POST /jobs": 1}
    assert f"primary answered HTTP {status}" in info.value.message
    assert type(info.value.__cause__) is HTTPError
    assert [attempt.provider for attempt in info.value.attempts] == ["primary"]
    assert (record.provider, record.state) == ("primary", "unknown")


@pytest.mark.parametrize("api", ["sync", "async"])
@pytest.mark.parametrize("status", [500, 503])
def test_the_providers_own_error_answer_to_the_submit_falls_back(api: str, status: int) -> None:
    """The provider itself answered that it failed: no job was made, the backup makes the one."""
    transport, counts = served(answered(status))
    with Gateway(discover=False, ledger="off", transport=transport) as gateway:
        gateway.register_plugin(JobsPlugin(unreadable_answer(True)), "jobs")
        response = generate(api, gateway, CONFIG)
    assert response.provider == "backup"
    assert dict(counts) == {
        "primary.invalid POST /jobs": 1,
        "backup.invalid POST /jobs": 1,
        "backup.invalid GET /jobs/b-1": 1,
        "backup.invalid GET /jobs/b-1/result": 1,
    }


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_submit_sent_again_with_its_key_after_a_gateways_answer_starts_no_fallback(api: str) -> None:
    """A provider honouring idempotency keys is sent the submit again after a 504 (the key makes
    it the same job); when the next tries are refused until they are used up, the job the first
    may have made is unknown: no fallback."""
    answers = iter([504])

    def answer(request: httpx.Request) -> httpx.Response:
        return answered(next(answers, 429))(request)

    transport, counts = served(answer)
    with Gateway(discover=False, ledger="off", transport=transport) as gateway:
        gateway.register_plugin(JobsPlugin(unreadable_answer(True), idempotency_key=True), "jobs")
        with pytest.raises(UnknownSubmissionError) as info:
            generate(api, gateway, CONFIG)
    assert dict(counts) == {"primary.invalid POST /jobs": _engine.phases.MAX_CONSECUTIVE_POLL_ERRORS}
    assert (
        "primary answered HTTP 504: <html>504</html>; sent again with its key, then primary answered "
        "HTTP 429: <html>429</html>)"
    ) in info.value.message


@pytest.mark.parametrize("api", ["sync", "async"])
def test_the_intents_claim_is_renewed_while_its_submit_waits_to_be_sent_again(
    api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Throttled submits wait longer in all than the claim's lease: renewed before each wait, the
    intent cannot be taken meanwhile by ``resume()`` elsewhere (which would settle it as a lost
    submit while its one job is still to be made)."""
    from tarash.tarash_gateway._ledger import SQLiteJobStore, adapter

    monkeypatch.setattr(adapter, "LEASE_SECONDS", 1.0)
    monkeypatch.setattr(adapter, "STATUS_REFRESH_SECONDS", 0.1)
    path = tmp_path / "jobs.db"
    taken: list[bool] = []
    throttles = iter(range(4))

    def answer(request: httpx.Request) -> httpx.Response:
        with SQLiteJobStore(path) as other:
            [record] = other.records()
            taken.append(other.claim(record.key, owner="machine-b:1:resumer", lease_seconds=600))
        if request.method == "POST" and next(throttles, None) is not None:
            return httpx.Response(429, headers={"Retry-After": "0.4"}, json={"error": "slow down"})
        if request.method == "POST":
            return httpx.Response(201, json={"id": "p-1"})
        return httpx.Response(200, json={})

    transport, counts = served(answer)
    with Gateway(discover=False, ledger=path, transport=transport) as gateway:
        gateway.register_plugin(JobsPlugin(unreadable_answer(True)), "jobs")
        response = generate(api, gateway, CONFIG)
    assert (response.provider, response.request_id) == ("primary", "p-1")
    assert counts["primary.invalid POST /jobs"] == 5
    assert taken == [False] * len(taken) and len(taken) == 7
