"""API keys never leak: full generations with DEBUG logging and providers that echo the key.

A provider registered with ``register_provider`` echoes the caller's key everywhere it can: in
error messages, in raw responses (nested dicts, ``Authorization``/``X-Api-Key``/``x-fal-key``
headers, ``?key=`` query strings, lists), in progress updates, in its own DEBUG logs and
tracebacks, and through real ``httpx`` errors (served by an in-process ``MockTransport``). The
tests assert that none of the distinctive keys appears in anything a caller can see: captured logs,
exception ``str``/``repr``/``args``/attributes and their causes and formatted tracebacks,
``raw_response``, ``repr(config)``, execution and attempt metadata, progress updates and responses.
Each test also checks that the key really reached the provider and that ``***REDACTED***`` shows
where it was, so a provider that never saw the key cannot make a test pass.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import threading
import traceback
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import httpx
import pytest
from test_gateway import EchoPlugin

from tarash.tarash_gateway import (
    Gateway,
    GenerationFailedError,
    HTTPConnectionError,
    HTTPError,
    MockConfig,
    TarashException,
    TimeoutError,
    UnknownSubmissionError,
    ValidationError,
    generate_image,
    generate_image_async,
    generate_video,
    generate_video_async,
    register_provider,
    unregister_provider,
)
from tarash.tarash_gateway._redact import REDACTED, get_logger
from tarash.tarash_gateway._transport import Transport
from tarash.tarash_gateway.models import (
    AttemptMetadata,
    ImageGenerationConfig,
    ImageGenerationRequest,
    ImageGenerationResponse,
    ImageGenerationUpdate,
    MockPollingConfig,
    MockResponse,
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
    VideoGenerationUpdate,
)
from tarash.tarash_gateway.plugin import Request, hookimpl
from tarash.tarash_gateway.serialization import to_json

KEY = "sk-DISTINCTIVE-1234567890"
KEY_B = "sk-FALLBACK-B-0987654321"
KEY_C = "sk-FALLBACK-C-1122334455"
KEYS = (KEY, KEY_B, KEY_C)
UNREGISTERED = ("whsec-UNREGISTERED-777", "plain-unregistered-token-42", "proxy-password-UNREG-9")
PROVIDER = "leaky"

log = get_logger("tarash.test.leaky")


# ------------------------------------------------------------------------------------------------
# Finding leaks
# ------------------------------------------------------------------------------------------------


def _texts(obj: Any, seen: set[int]) -> Iterator[str]:
    """Every piece of text a caller could see of ``obj``."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, (bytes, bytearray)):
        yield bytes(obj).decode("latin-1")
    elif isinstance(obj, BaseException):
        yield str(obj)
        yield repr(obj)
        yield "".join(traceback.format_exception(type(obj), obj, obj.__traceback__))
        for arg in obj.args:
            yield from _texts(arg, seen)
        if isinstance(obj, TarashException):
            for value in vars(obj).values():
                yield from _texts(value, seen)
        for chained in (obj.__cause__, obj.__context__):
            if chained is not None:
                yield from _texts(chained, seen)
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from _texts(key, seen)
            yield from _texts(value, seen)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for item in obj:
            yield from _texts(item, seen)
    elif attrs.has(type(obj)):
        yield repr(obj)
        for field in attrs.fields(type(obj)):
            if field.name != "api_key":  # a config holds its own key; it must never show it
                yield from _texts(getattr(obj, field.name), seen)
    else:
        yield repr(obj)
        yield str(obj)


def visible_text(*objs: Any) -> str:
    seen: set[int] = set()
    return "\n".join(text for obj in objs for text in _texts(obj, seen))


def assert_no_secret(*objs: Any, expect_redacted: bool = True) -> None:
    text = visible_text(*objs)
    for secret in (*KEYS, *UNREGISTERED):
        assert secret not in text
    if expect_redacted:
        assert REDACTED in text


def assert_clean_logs(caplog: pytest.LogCaptureFixture, *, expect_redacted: bool = True) -> None:
    assert caplog.records, "nothing was logged: the test would prove nothing"
    messages = [record.getMessage() for record in caplog.records]
    exc_texts = [record.exc_text or "" for record in caplog.records]
    assert_no_secret(caplog.text, messages, exc_texts, expect_redacted=expect_redacted)


def leaky_payload(key: str) -> dict[str, Any]:
    """A provider answer that echoes ``key`` in every shape providers have been seen to use."""
    return {
        "error": {"message": f"invalid api key {key}", "type": "auth"},
        "request": {
            "headers": {
                "Authorization": f"Key {key}",
                "X-Api-Key": key,
                "x-fal-key": key,
                "content-type": "application/json",
            },
            "url": f"https://api.leaky.invalid/v1/run?key={key}&model=m",
            "body": {"prompt": "a cat", "api_key": key},
        },
        "history": [key, {"token": key}, [f"Bearer {key}"]],
        "detail": f"GET /status?token={key} -> 401",
        "status": 401,
    }


# ------------------------------------------------------------------------------------------------
# A provider that echoes the key everywhere
# ------------------------------------------------------------------------------------------------


class LeakyHandler:
    """``register_provider`` handler; ``provider_config["mode"]`` picks how it fails or succeeds."""

    def __init__(self) -> None:
        self.seen_keys: list[str | None] = []

    def _run(self, config: Any, request: Any, on_progress: Any, modality: str) -> Any:
        key = config.api_key
        self.seen_keys.append(key)
        log.debug("calling leaky with key=%s headers=%s", key, {"Authorization": f"Key {key}"})
        mode = config.provider_config["mode"]
        try:
            raise PermissionError(f"upstream says key {key} is over quota")
        except PermissionError:
            log.debug("leaky upstream trace", exc_info=True)
        if mode == "http":
            raise HTTPError(
                f"HTTP {config.provider_config['status']} for key {key}",
                status_code=config.provider_config["status"],
                raw_response=leaky_payload(key),
            )
        if mode == "httpx":
            return self._call_httpx(key)
        if mode == "plain":
            raise RuntimeError(f"upstream rejected key {key} (Authorization: Key {key})")
        if mode == "connection":
            raise ConnectionError(f"connection reset while sending Authorization: Key {key}")
        if mode == "refused":
            raise ConnectionRefusedError(f"connection refused before sending Authorization: Key {key}")
        if mode == "validation":
            raise ValidationError(
                f"key {key} is not valid for this model",
                field="api_key",
                value=key,
                raw_response=leaky_payload(key),
            )
        if mode == "timeout":
            raise builtins.TimeoutError(f"read timed out for {key}")
        if on_progress is not None:
            update_cls = VideoGenerationUpdate if modality == "video" else ImageGenerationUpdate
            on_progress(
                update_cls(
                    request_id="leaky-1",
                    status="processing",
                    update=leaky_payload(key),
                    logs=(f"using key {key}",),
                    error=f"retrying with Authorization: Key {key}",
                )
            )
        if modality == "video":
            return VideoGenerationResponse(
                request_id="leaky-1", video="https://cdn.leaky.invalid/v.mp4", raw_response=leaky_payload(key)
            )
        return ImageGenerationResponse(
            request_id="leaky-1", images=["https://cdn.leaky.invalid/i.png"], raw_response=leaky_payload(key)
        )

    @staticmethod
    def _call_httpx(key: str) -> Any:
        def answer(request: httpx.Request) -> httpx.Response:
            return httpx.Response(
                401, json={"echo": {"headers": dict(request.headers), "url": str(request.url)}}
            )

        with httpx.Client(transport=httpx.MockTransport(answer)) as client:
            response = client.post(
                f"https://api.leaky.invalid/v1/run?key={key}",
                headers={"Authorization": f"Key {key}"},
                json={"api_key": key},
            )
            response.raise_for_status()
        raise AssertionError("unreachable: the transport always answers 401")

    def generate_video(self, config: Any, request: Any, on_progress: Any = None) -> Any:
        return self._run(config, request, on_progress, "video")

    async def generate_video_async(self, config: Any, request: Any, on_progress: Any = None) -> Any:
        if config.provider_config["mode"] == "hang":
            self.seen_keys.append(config.api_key)
            await asyncio.sleep(30)
        return self._run(config, request, on_progress, "video")

    def generate_image(self, config: Any, request: Any, on_progress: Any = None) -> Any:
        return self._run(config, request, on_progress, "image")

    async def generate_image_async(self, config: Any, request: Any, on_progress: Any = None) -> Any:
        return self._run(config, request, on_progress, "image")


@pytest.fixture
def leaky(caplog: pytest.LogCaptureFixture) -> Iterator[LeakyHandler]:
    caplog.set_level(logging.DEBUG, logger="tarash")
    handler = LeakyHandler()
    register_provider(PROVIDER, handler)
    yield handler
    unregister_provider(PROVIDER)


def leaky_config(mode: str, key: str = KEY, **extra: Any) -> VideoGenerationConfig:
    return VideoGenerationConfig(
        model=f"leaky-{mode}",
        provider=PROVIDER,
        api_key=key,
        timeout=5,
        provider_config={"mode": mode, "headers": {"Authorization": f"Key {key}"}, **extra},
    )


def leaky_mock(key: str) -> MockConfig:
    """A mock whose status payloads echo ``key`` (custom updates reach progress callbacks)."""
    return MockConfig(
        polling=MockPollingConfig(
            status_sequence=("queued", "processing", "completed"),
            delay_between_updates=0.001,
            custom_updates=(
                {"headers": {"Authorization": f"Bearer {key}"}},
                {"url": f"https://q.invalid/status?token={key}", "echo": [key]},
                {"X-Api-Key": key},
            ),
        )
    )


# ------------------------------------------------------------------------------------------------
# Reprs
# ------------------------------------------------------------------------------------------------


def test_reprs_of_configs_and_requests_hide_keys_at_any_depth() -> None:
    last = VideoGenerationConfig(model="mock", provider="mock", api_key=KEY_C, mock=leaky_mock(KEY_C))
    middle = VideoGenerationConfig(
        model="leaky-b",
        provider=PROVIDER,
        api_key=KEY_B,
        fallback_configs=[last],
        provider_config={
            "webhook_secret": UNREGISTERED[0],
            "webhook_url": f"https://hook.invalid/cb?token={UNREGISTERED[1]}",
            "proxy": f"http://proxyuser:{UNREGISTERED[2]}@proxy.invalid:3128",
        },
        base_url=f"https://api.leaky.invalid/v1?key={KEY_B}",
    )
    config = attrs.evolve(leaky_config("http", status=503), fallback_configs=[middle])
    request = VideoGenerationRequest(
        "a cat", api_key=KEY, authorization=f"Bearer {KEY}", extra_params={"headers": {"x-fal-key": KEY}}
    )
    shown = [repr(config), str(config), repr(request), str(request)]
    assert_no_secret(shown)
    assert "model='leaky-http'" in shown[0]
    assert "model='leaky-b'" in shown[0]
    assert "https://hook.invalid/cb?token=" in shown[0]
    assert "http://***REDACTED***@proxy.invalid:3128" in shown[0]
    assert request.extra_params["api_key"] == KEY  # the request still carries it, unshown
    assert config.fallback_configs is not None
    assert config.fallback_configs[0].api_key == KEY_B


# ------------------------------------------------------------------------------------------------
# Success
# ------------------------------------------------------------------------------------------------


def test_successful_generations_leak_nothing(leaky: LeakyHandler, caplog: pytest.LogCaptureFixture) -> None:
    updates: list[Any] = []
    mock_config = VideoGenerationConfig(model="mock", provider="mock", api_key=KEY, mock=leaky_mock(KEY))
    mocked = generate_video(mock_config, VideoGenerationRequest("a cat"), on_progress=updates.append)
    leaked = generate_video(
        leaky_config("success"), VideoGenerationRequest("a cat"), on_progress=updates.append
    )
    image_config = ImageGenerationConfig(
        model="leaky-image", provider=PROVIDER, api_key=KEY, provider_config={"mode": "success"}
    )
    image = generate_image(image_config, ImageGenerationRequest("a cat"), on_progress=updates.append)
    assert leaky.seen_keys == [KEY, KEY]
    assert [u.status for u in updates] == [
        "queued",
        "queued",
        "processing",
        "completed",
        "processing",
        "processing",
    ]
    assert updates[1].update == {"step": 0, "headers": {"Authorization": REDACTED}}
    assert updates[4].logs == (f"using key {REDACTED}",)
    assert updates[4].error == f"retrying with Authorization: Key {REDACTED}"
    assert leaked.raw_response["request"]["headers"]["X-Api-Key"] == REDACTED
    assert image.raw_response["detail"] == f"GET /status?token={REDACTED} -> 401"
    assert_no_secret(mocked, leaked, image, updates, mocked.execution_metadata)
    assert_clean_logs(caplog)


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["sync", "async"])
@pytest.mark.parametrize("modality", ["video", "image"])
async def test_http_errors_echoing_the_key_are_scrubbed(
    leaky: LeakyHandler,
    caplog: pytest.LogCaptureFixture,
    api: str,
    modality: str,
) -> None:
    request: Any
    if modality == "video":
        config: Any = leaky_config("http", status=401)
        request = VideoGenerationRequest("a cat")
        call: Any = generate_video if api == "sync" else generate_video_async
    else:
        config = ImageGenerationConfig(
            model="leaky-http",
            provider=PROVIDER,
            api_key=KEY,
            provider_config={"mode": "http", "status": 401},
        )
        request = ImageGenerationRequest("a cat")
        call = generate_image if api == "sync" else generate_image_async

    async def run() -> Any:
        result = call(config, request)
        return await result if api == "async" else result

    with pytest.raises(HTTPError) as info:
        await run()
    error = info.value
    assert error.status_code == 401
    assert error.message == f"HTTP 401 for key {REDACTED}"
    assert error.raw_response["request"]["headers"] == {
        "Authorization": REDACTED,
        "X-Api-Key": REDACTED,
        "x-fal-key": REDACTED,
        "content-type": "application/json",
    }
    assert error.raw_response["request"]["url"] == (
        f"https://api.leaky.invalid/v1/run?key={REDACTED}&model=m"
    )
    assert error.raw_response["history"] == [REDACTED, {"token": REDACTED}, [f"Bearer {REDACTED}"]]
    assert error.execution_metadata is not None
    assert error.attempts[0].error_message == (
        f"HTTP 401 for key {REDACTED} (provider={PROVIDER}, model=leaky-http)"
    )
    assert leaky.seen_keys == [KEY]
    assert_no_secret(error)
    assert_clean_logs(caplog)


def test_real_httpx_errors_with_the_key_in_url_and_headers_are_scrubbed(
    leaky: LeakyHandler,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(HTTPError) as info:
        generate_video(leaky_config("httpx"), VideoGenerationRequest("a cat"))
    error = info.value
    assert error.status_code == 401
    assert isinstance(error.__cause__, httpx.HTTPStatusError)
    assert f"/v1/run?key={REDACTED}" in str(error.__cause__)
    assert error.raw_response["echo"]["headers"]["authorization"] == REDACTED
    assert error.raw_response["echo"]["url"] == f"https://api.leaky.invalid/v1/run?key={REDACTED}"
    assert_no_secret(error)
    assert_clean_logs(caplog)


def test_plain_exceptions_are_typed_and_their_chained_cause_is_scrubbed(
    leaky: LeakyHandler,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(GenerationFailedError) as info:
        generate_video(leaky_config("plain"), VideoGenerationRequest("a cat"))
    error = info.value
    assert error.message == (
        f"{PROVIDER} plugin raised RuntimeError during submit: upstream rejected key {REDACTED} "
        f"(Authorization: Key {REDACTED})"
    )
    assert isinstance(error.__cause__, RuntimeError)
    assert error.__cause__.args == (f"upstream rejected key {REDACTED} (Authorization: Key {REDACTED})",)
    assert_no_secret(error)
    assert_clean_logs(caplog)


def test_validation_errors_from_a_provider_do_not_keep_the_key_as_value(
    leaky: LeakyHandler,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(ValidationError) as info:
        generate_video(leaky_config("validation"), VideoGenerationRequest("a cat"))
    error = info.value
    assert (error.field, error.value, error.phase) == ("api_key", REDACTED, "validate")
    assert error.message == f"key {REDACTED} is not valid for this model"
    assert_no_secret(error)
    assert_clean_logs(caplog)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (
            lambda: VideoGenerationConfig(
                model="m", provider="mock", api_key=KEY, provider_config={"api_key": UNREGISTERED[0], 3: KEY}
            ),
            "provider_config",
        ),
        (
            lambda: VideoGenerationRequest("a", extra_params={"token": UNREGISTERED[1], 5: KEY}),
            "extra_params",
        ),
        (
            lambda: VideoGenerationConfig(
                model="m", provider="mock", api_key=KEY, fallback_configs=[{"api_key": UNREGISTERED[0]}]
            ),
            "fallback_configs",
        ),
        (lambda: VideoGenerationConfig(model="m", provider="mock", api_key=KEY, timeout=KEY), "timeout"),
        (lambda: ImageGenerationConfig(model="m", provider="mock", api_key=123456789), "api_key"),
    ],
)
def test_construction_errors_never_show_secrets(build: Any, field: str) -> None:
    VideoGenerationConfig(model="m", provider="mock", api_key=KEY)  # registers KEY first
    with pytest.raises(ValidationError) as info:
        build()
    assert info.value.field == field
    assert_no_secret(info.value, expect_redacted=field != "api_key")


# ------------------------------------------------------------------------------------------------
# Timeouts
# ------------------------------------------------------------------------------------------------


async def test_a_provider_that_never_answers_times_out_without_leaking(
    leaky: LeakyHandler,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = attrs.evolve(leaky_config("hang"), timeout=0.2)
    with pytest.raises(UnknownSubmissionError) as info:
        await generate_video_async(config, VideoGenerationRequest("a cat"))
    error = info.value
    assert "no answer within the 0.2s deadline" in error.message
    assert leaky.seen_keys == [KEY]
    assert_no_secret(error, expect_redacted=False)
    log.debug("after the timeout, config was %r", config)
    assert_clean_logs(caplog)


def test_timeouts_echoing_the_key_are_scrubbed(leaky: LeakyHandler, caplog: pytest.LogCaptureFixture) -> None:
    """The handler's own request timed out (it may have reached the provider): an unknown
    submission, its cause the handler's timeout, scrubbed."""
    with pytest.raises(UnknownSubmissionError) as info:
        generate_video(leaky_config("timeout"), VideoGenerationRequest("a cat"))
    error = info.value
    assert error.message.startswith(
        f"The submit to {PROVIDER} may have reached it but its answer was lost (its answer could not "
        f"be read: TimeoutError: read timed out for {REDACTED}). It was NOT resubmitted"
    )
    assert isinstance(error.__cause__, builtins.TimeoutError)
    assert error.__cause__.args == (f"read timed out for {REDACTED}",)
    assert_no_secret(error)
    assert_clean_logs(caplog)


def test_a_mock_job_past_its_deadline_is_cancelled_without_leaking(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="tarash")
    never_done = MockConfig(
        polling=MockPollingConfig(
            status_sequence=("queued", "processing"),
            delay_between_updates=0.01,
            custom_updates=({"Authorization": f"Key {KEY}"}, {"echo": f"?key={KEY}"}),
        )
    )
    config = VideoGenerationConfig(model="mock", provider="mock", api_key=KEY, mock=never_done, timeout=0.15)
    updates: list[Any] = []
    with pytest.raises(TimeoutError) as info:
        generate_video(config, VideoGenerationRequest("a cat"), on_progress=updates.append)
    error = info.value
    assert error.attempts[0].cancel_status == "cancelled"
    assert updates[1].update == {"step": 0, "Authorization": REDACTED}
    assert_no_secret(error, updates)
    assert_clean_logs(caplog, expect_redacted=False)


# ------------------------------------------------------------------------------------------------
# Fallback chains
# ------------------------------------------------------------------------------------------------


def _chain(last_mode: str) -> VideoGenerationConfig:
    """leaky (KEY, HTTP 503) -> leaky (KEY_B, connection refused) -> third (KEY_C), nested."""
    if last_mode == "mock":
        last = VideoGenerationConfig(model="mock", provider="mock", api_key=KEY_C, mock=leaky_mock(KEY_C))
    else:
        last = leaky_config(last_mode, KEY_C)
    middle = attrs.evolve(leaky_config("refused", KEY_B), fallback_configs=[last])
    return attrs.evolve(leaky_config("http", KEY, status=503), fallback_configs=[middle])


@pytest.mark.parametrize("api", ["sync", "async"])
async def test_a_fallback_chain_with_a_key_per_config_leaks_none_of_them(
    leaky: LeakyHandler,
    caplog: pytest.LogCaptureFixture,
    api: str,
) -> None:
    updates: list[Any] = []
    config, request = _chain("mock"), VideoGenerationRequest("a cat")
    if api == "sync":
        response = generate_video(config, request, on_progress=updates.append)
    else:
        response = await generate_video_async(config, request, on_progress=updates.append)
    metadata = response.execution_metadata
    assert metadata is not None
    assert [a.status for a in metadata.attempts] == ["failed", "failed", "success"]
    assert [a.error_type for a in metadata.attempts] == ["HTTPError", "HTTPConnectionError", None]
    assert metadata.attempts[1].error_message == (
        f"ConnectionRefusedError: connection refused before sending Authorization: Key {REDACTED} "
        f"(provider={PROVIDER}, model=leaky-refused)"
    )
    assert leaky.seen_keys == [KEY, KEY_B]
    assert_no_secret(response, metadata, updates, repr(config))
    assert_clean_logs(caplog)
    assert f"Attempt 1 ({PROVIDER}/leaky-http) failed: HTTP 503 for key {REDACTED}" in caplog.text


def test_a_failing_fallback_chain_reports_every_attempt_without_keys(
    leaky: LeakyHandler,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(UnknownSubmissionError) as info:
        generate_video(_chain("timeout"), VideoGenerationRequest("a cat"))
    error = info.value
    assert [type(a).__name__ for a in error.attempts] == ["AttemptMetadata"] * 3
    assert [a.error_type for a in error.attempts] == [
        "HTTPError",
        "HTTPConnectionError",
        "UnknownSubmissionError",
    ]
    assert leaky.seen_keys == [KEY, KEY_B, KEY_C]
    assert isinstance(error.attempts[1], AttemptMetadata)
    assert_no_secret(error)
    assert_clean_logs(caplog)


def test_the_connection_error_in_the_middle_is_typed(leaky: LeakyHandler) -> None:
    with pytest.raises(HTTPConnectionError) as info:
        generate_video(leaky_config("refused", KEY_B), VideoGenerationRequest("a cat"))
    assert (info.value.retryable, info.value.request_sent) == (True, False)
    assert_no_secret(info.value)


def test_a_connection_lost_after_sending_is_an_unknown_submission_without_keys(leaky: LeakyHandler) -> None:
    with pytest.raises(UnknownSubmissionError) as info:
        generate_video(leaky_config("connection", KEY_B), VideoGenerationRequest("a cat"))
    assert info.value.retryable is False
    assert isinstance(info.value.__cause__, HTTPConnectionError)
    assert_no_secret(info.value)


# ------------------------------------------------------------------------------------------------
# Records scrub on construction, whoever builds them
# ------------------------------------------------------------------------------------------------


def test_records_built_by_plugins_are_scrubbed_on_construction() -> None:
    VideoGenerationConfig(model="m", provider="mock", api_key=KEY)
    records = [
        AttemptMetadata(
            provider="p",
            model="m",
            attempt_number=1,
            started_at=datetime.now(timezone.utc),
            error_message=f"failed with {KEY}",
            cancel_error=f"cancel said {KEY}",
        ),
        VideoGenerationUpdate(
            request_id="r",
            status="queued",
            update=leaky_payload(KEY),
            logs=[f"log {KEY}"],
            error=f"error {KEY}",
        ),
        ImageGenerationUpdate(request_id="r", status="failed", update={"token": KEY}),
        VideoGenerationResponse(
            request_id="r", video="https://cdn.invalid/v.mp4", raw_response=leaky_payload(KEY)
        ),
        ImageGenerationResponse(
            request_id="r",
            images=["https://cdn.invalid/i.png"],
            raw_response={"headers": [("Authorization", f"Key {KEY}")]},
        ),
        MockResponse(error=HTTPError(f"echo {KEY}", raw_response=leaky_payload(KEY))),
    ]
    assert_no_secret(records)
    evolved = attrs.evolve(records[3], raw_response={"again": KEY})
    assert evolved.raw_response == {"again": REDACTED}


class TranslatingPlugin(EchoPlugin):
    """The echo provider, translating the provider's error answer into its own typed error, as
    tarash-openai and tarash-google do: chained to the HTTPError core threw in (``from exc``), or
    with the chain hidden (``from None``, which still keeps it as ``__context__``)."""

    def __init__(self, chained: str) -> None:
        self.chained = chained

    @hookimpl
    def generate_video(self, config: Any, request: Any, context: Any) -> Any:
        try:
            answer = yield Request(method="POST", url="/generate", json={"prompt": request.prompt})
        except HTTPError as exc:
            refused = ValidationError("the provider refused the prompt", field="prompt")
            if self.chained == "cause":
                raise refused from exc
            raise refused from None
        return VideoGenerationResponse(request_id="t-1", video=answer.json()["url"])


@pytest.mark.parametrize("chained", ["cause", "context"])
def test_a_translated_http_error_keeps_no_answer_on_its_chain(chained: str) -> None:
    """The provider's whole answer (body, headers, URL) rides on the HTTPError core throws into
    the flow; once the plugin has translated it, the chained HTTPError must not carry it out."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            422,
            json={"detail": f"prompt refused for key {KEY}"},
            headers={"x-echo-key": KEY},
        )

    transport = Transport(transport=httpx.MockTransport(answer))
    with Gateway(discover=False, ledger="off", transport=transport) as gateway:
        gateway.register_plugin(TranslatingPlugin(chained), "translating")
        config = VideoGenerationConfig(provider="echo", model="m", api_key=KEY)
        with pytest.raises(ValidationError) as info:
            gateway.generate_video(config, VideoGenerationRequest("a cat"))
    error = info.value
    thrown = error.__cause__ if chained == "cause" else error.__context__
    assert isinstance(thrown, HTTPError)
    assert (thrown.status_code, thrown.response) == (422, None)
    assert thrown.raw_response == {"detail": f"prompt refused for key {REDACTED}"}
    assert [request.headers["authorization"] for request in seen] == [f"Bearer {KEY}"]
    assert_no_secret(error)


class HeaderKeyEcho(EchoPlugin):
    """The echo provider taking its key in ``x-api-key``: a base_url's credentials (an API
    gateway's basic auth) go in ``Authorization`` beside it."""

    auth_header = "x-api-key"


@pytest.mark.parametrize("api", ["sync", "async"])
def test_credentials_in_a_configs_urls_and_options_are_in_no_ledger_row_or_json(
    api: str, tmp_path: Any
) -> None:
    """What a config's repr hides, its ledger record and JSON hide too: a proxy's password in
    ``base_url``, a webhook's ``?token=``, secret-named ``provider_config`` entries (none of them
    a registered secret). The request itself still carries what the provider needs."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "e-1", "url": "https://cdn.invalid/1.mp4"})

    mock = httpx.MockTransport(answer)
    config = VideoGenerationConfig(
        provider="echo",
        model="e1",
        api_key=KEY,
        base_url=f"http://proxyuser:{UNREGISTERED[2]}@echo.invalid/api",
        webhook_url=f"https://hook.invalid/cb?token={UNREGISTERED[1]}&job=1",
        provider_config={"region": "eu", "hooks": {"webhook_secret": UNREGISTERED[0], "mode": "hmac"}},
    )
    path = tmp_path / "jobs.db"
    with Gateway(
        discover=False, ledger=path, transport=Transport(transport=mock, async_transport=mock)
    ) as gateway:
        gateway.register_plugin(HeaderKeyEcho(), "echo")
        if api == "sync":
            gateway.generate_video(config, VideoGenerationRequest("a cat"))
        else:
            asyncio.run(gateway.generate_video_async(config, VideoGenerationRequest("a cat")))
        [record] = gateway.ledger().store.records()  # type: ignore[union-attr]
    assert [str(request.url) for request in seen] == [  # the request still carries them
        f"http://proxyuser:{UNREGISTERED[2]}@echo.invalid/api/generate"
    ]
    assert record.config is not None
    assert (record.config["base_url"], record.config["webhook_url"]) == (
        f"http://{REDACTED}@echo.invalid/api",
        f"https://hook.invalid/cb?token={REDACTED}&job=1",
    )
    assert record.config["provider_config"] == {
        "region": "eu",
        "hooks": {"webhook_secret": REDACTED, "mode": "hmac"},
    }
    written = to_json(config)
    stored = path.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("jobs.db-*"))
    for secret in (*KEYS, *UNREGISTERED):
        assert secret not in written
        assert secret.encode() not in stored
    assert "https://hook.invalid/cb?token=" in written


def test_credentials_in_base_url_that_would_replace_the_key_header_send_nothing() -> None:
    """httpx turns a URL's user-info into ``Authorization: Basic``: for a provider taking its key
    in ``Authorization`` that would send the credentials instead of the key."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500)

    config = VideoGenerationConfig(
        provider="echo", model="e1", api_key=KEY, base_url=f"http://proxyuser:{UNREGISTERED[2]}@echo.invalid"
    )
    transport = Transport(transport=httpx.MockTransport(answer))
    with Gateway(discover=False, ledger="off", transport=transport) as gateway:
        gateway.register_plugin(EchoPlugin(), "echo")
        with pytest.raises(ValidationError) as info:
            gateway.generate_video(config, VideoGenerationRequest("a cat"))
    assert (info.value.field, seen) == ("base_url", [])
    assert info.value.message.startswith("The echo API root (base_url) carries credentials (user:password@)")
    assert_no_secret(info.value, expect_redacted=False)


def test_the_http_stacks_own_debug_logs_show_no_key_or_url_credentials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """httpx logs each request's URL (INFO) and httpcore each answer's headers (DEBUG): turned on
    to debug, they show neither a key the provider echoed in a header nor a URL's credentials."""

    class Echoing(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({"id": "e-1", "url": "https://cdn.invalid/1.mp4"}).encode()
            self.send_response(200)
            self.send_header("X-Echo", f"your key: {self.headers['x-api-key']}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echoing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    config = VideoGenerationConfig(
        provider="echo",
        model="e1",
        api_key=KEY,
        base_url=f"http://proxyuser:{UNREGISTERED[2]}@127.0.0.1:{port}",
    )
    try:
        with Gateway(discover=False, ledger="off") as gateway, caplog.at_level(logging.DEBUG):
            gateway.register_plugin(HeaderKeyEcho(), "echo")
            gateway.generate_video(config, VideoGenerationRequest("a cat"))
    finally:
        server.shutdown()
        server.server_close()
    http_stack = [r for r in caplog.records if r.name.split(".")[0] in ("httpx", "httpcore")]
    assert any(r.name == "httpx" and r.getMessage().startswith("HTTP Request: POST") for r in http_stack)
    headers = [r.getMessage() for r in http_stack if "receive_response_headers.complete" in r.getMessage()]
    assert len(headers) == 1 and "your key: " in headers[0]
    assert_no_secret([r.getMessage() for r in http_stack])
