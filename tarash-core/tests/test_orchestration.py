"""Core orchestration against a local counting server: fallbacks, retries, deadlines, progress."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from jobapi import JobServer, installed, make_plugin, running

from tarash.tarash_gateway import (
    _engine,
    generate_image,
    generate_video,
    generate_video_async,
    get_job,
)
from tarash.tarash_gateway._plugins import HOST
from tarash.tarash_gateway.exceptions import (
    HTTPConnectionError,
    HTTPError,
    TimeoutError,
    UnknownSubmissionError,
    UnsupportedModalityError,
    ValidationError,
)
from tarash.tarash_gateway.models import (
    ImageGenerationConfig,
    ImageGenerationRequest,
    VideoGenerationConfig,
    VideoGenerationRequest,
)
from tarash.tarash_gateway.plugin import ProviderSpec, Request, hookimpl


def video_config(server: JobServer, provider: str = "jobs", **kwargs: Any) -> VideoGenerationConfig:
    defaults: dict[str, Any] = {
        "model": "m1",
        "api_key": "key-jobs-0001",
        "base_url": server.url,
        "poll_interval": 0.01,
        "timeout": 10,
    }
    defaults.update(kwargs)
    return VideoGenerationConfig(provider=provider, **defaults)


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink the backoff so retry-heavy tests stay fast (the retry counts are unchanged)."""
    monkeypatch.setattr(_engine.attempt, "BACKOFF_BASE", 0.005)


@pytest.fixture
def jobs_provider() -> Any:
    with installed(make_plugin("jobs"), "jobs-plugin") as plugin:
        yield plugin


@pytest.fixture
def backup_provider() -> Any:
    with installed(make_plugin("backup"), "backup-plugin") as plugin:
        yield plugin


def test_happy_path_counts_and_progress(job_server: JobServer, jobs_provider: Any) -> None:
    updates: list[Any] = []
    response = generate_video(
        video_config(job_server), VideoGenerationRequest(prompt="a cat"), on_progress=updates.append
    )
    assert response.video == f"{job_server.url}/media/job-1.mp4"
    assert response.request_id == "job-1"
    assert (response.provider, response.model) == ("jobs", "m1")
    assert dict(job_server.counts) == {"submit": 1, "status": 5, "result": 1}
    assert [(u.status, u.queue_position, u.progress_percent, u.logs) for u in updates] == [
        ("queued", None, None, ()),
        ("queued", 1, None, ()),
        ("queued", 0, None, ()),
        ("processing", None, 33.0, ("step 1",)),
        ("processing", None, 67.0, ("step 2",)),
        ("completed", None, 100.0, ()),
    ]
    assert {(u.attempt, u.provider, u.request_id) for u in updates} == {(1, "jobs", "job-1")}
    assert updates[-1].result == response  # provider, model and execution metadata included
    meta = response.execution_metadata
    assert meta is not None and meta.total_attempts == 1 and meta.successful_attempt == 1
    assert meta.attempts[0].status == "success" and meta.attempts[0].request_id == "job-1"
    assert job_server.auth_headers == ["Bearer key-jobs-0001"] * 7


def test_fallback_order_metadata_and_stop_on_non_retryable(
    job_server: JobServer,
    jobs_provider: Any,
    backup_provider: Any,
) -> None:
    job_server.inject("submit", status=503, times=1)
    nested = video_config(job_server, "backup", model="b2")
    config = video_config(
        job_server,
        fallback_configs=[
            video_config(job_server, "jobs", model="j2", fallback_configs=[nested]),
            video_config(job_server, "backup", model="b3"),
        ],
    )
    response = generate_video(config, VideoGenerationRequest(prompt="x"))
    meta = response.execution_metadata
    assert meta is not None
    assert [(a.provider, a.model, a.status, a.error_type) for a in meta.attempts] == [
        ("jobs", "m1", "failed", "HTTPError"),
        ("jobs", "j2", "success", None),
    ]
    assert meta.fallback_triggered and meta.configs_in_chain == 4 and meta.successful_attempt == 2

    job_server.inject("submit", status=400, times=1)
    with pytest.raises(HTTPError) as raised:
        generate_video(config, VideoGenerationRequest(prompt="x"))
    assert raised.value.status_code == 400 and not raised.value.retryable
    assert [a.model for a in raised.value.attempts] == ["m1"]


def test_all_failed_error_lists_every_attempt(
    job_server: JobServer,
    jobs_provider: Any,
    backup_provider: Any,
) -> None:
    job_server.inject("submit", status=500, times=3)
    config = video_config(
        job_server,
        fallback_configs=[
            video_config(job_server, "backup", model="b1"),
            video_config(job_server, "jobs", model="j3"),
        ],
    )
    with pytest.raises(HTTPError) as raised:
        generate_video(config, VideoGenerationRequest(prompt="x"))
    meta = raised.value.execution_metadata
    assert meta is not None and meta.successful_attempt is None and meta.total_attempts == 3
    assert [(a.provider, a.model, a.status, a.is_retryable, a.phase) for a in meta.attempts] == [
        ("jobs", "m1", "failed", True, "submit"),
        ("backup", "b1", "failed", True, "submit"),
        ("jobs", "j3", "failed", True, "submit"),
    ]
    assert job_server.counts["submit"] == 3


def test_lost_submit_answer_is_never_resubmitted(
    job_server: JobServer, jobs_provider: Any, backup_provider: Any
) -> None:
    job_server.inject("submit", drop=True)
    config = video_config(job_server, fallback_configs=[video_config(job_server, "backup")])
    with pytest.raises(UnknownSubmissionError) as raised:
        generate_video(config, VideoGenerationRequest(prompt="x"))
    assert job_server.counts["submit"] == 1
    assert len(job_server.jobs) == 1
    assert "NOT resubmitted" in raised.value.message
    assert [a.provider for a in raised.value.attempts] == ["jobs"]


class _HangPlugin:
    """A provider whose submit request reaches a server that never answers."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    @hookimpl
    def register_providers(self) -> list[ProviderSpec]:
        return [ProviderSpec(name="hang", modalities={"video"})]

    @hookimpl
    def submit(self, config: Any, request: Any, context: Any) -> Any:
        self.calls.append(context.idempotency_key)
        yield Request(method="POST", url="/jobs", json={"prompt": request.prompt})


@contextmanager
def _silent_server() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts and reads requests but never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        for conn in held:
            conn.close()


@pytest.mark.parametrize("api", ["sync", "async"])
async def test_submit_unanswered_at_the_deadline_is_unknown_never_a_fallback(
    api: str, job_server: JobServer, backup_provider: Any
) -> None:
    calls: list[str] = []
    started = time.monotonic()
    with (
        _silent_server() as silent_url,
        installed(_HangPlugin(calls), "hang-plugin"),
        pytest.raises(UnknownSubmissionError) as raised,
    ):
        config = VideoGenerationConfig(
            provider="hang",
            model="h1",
            base_url=silent_url,
            timeout=0.5,
            fallback_configs=[video_config(job_server, "backup")],
        )
        if api == "sync":
            await asyncio.to_thread(generate_video, config, VideoGenerationRequest(prompt="x"))
        else:
            await generate_video_async(config, VideoGenerationRequest(prompt="x"))
    assert time.monotonic() - started < 1.5
    [key] = calls
    assert raised.value.message == (
        "The submit to hang may have reached it but its answer was lost (no answer within the 0.5s "
        f"deadline). It was NOT resubmitted: the job may exist and may be billed. Submission key: {key}."
    )
    assert (raised.value.phase, raised.value.retryable) == ("submit", False)
    assert [(a.provider, a.status) for a in raised.value.attempts] == [("hang", "failed")]
    assert job_server.counts["submit"] == 0
    record = get_job(key)
    assert record is not None and (record.state, record.job_id) == ("unknown", None)


def test_lost_submit_answer_is_retried_with_the_same_key_when_idempotent(job_server: JobServer) -> None:
    with installed(make_plugin("idem", idempotency=True), "idem-plugin"):
        job_server.inject("submit", drop=True)
        response = generate_video(video_config(job_server, "idem"), VideoGenerationRequest(prompt="x"))
    assert job_server.counts["submit"] == 2
    keys = {s["key"] for s in job_server.submissions}
    assert len(keys) == 1 and response.request_id == "job-2"


def test_submit_to_a_refusing_port_is_retried_then_falls_back(
    job_server: JobServer,
    jobs_provider: Any,
    backup_provider: Any,
    fast_backoff: None,
) -> None:
    with running() as closed:
        dead_url = closed.url
    config = VideoGenerationConfig(
        provider="jobs",
        model="m",
        base_url=dead_url,
        poll_interval=0.01,
        fallback_configs=[video_config(job_server, "backup")],
    )
    response = generate_video(config, VideoGenerationRequest(prompt="x"))
    meta = response.execution_metadata
    assert meta is not None
    assert [(a.provider, a.error_type, a.phase) for a in meta.attempts] == [
        ("jobs", "HTTPConnectionError", "submit"),
        ("backup", None, "result"),
    ]
    assert job_server.counts["submit"] == 1


def test_retry_after_on_status_is_honoured(job_server: JobServer, jobs_provider: Any) -> None:
    job_server.inject("status", status=429, retry_after="0.3", times=2)
    job_server.inject("result", status=502, times=1)
    started = time.monotonic()
    response = generate_video(video_config(job_server), VideoGenerationRequest(prompt="x"))
    elapsed = time.monotonic() - started
    assert response.request_id == "job-1"
    assert elapsed >= 0.6
    assert dict(job_server.counts) == {"submit": 1, "status": 7, "result": 2}


def test_deadline_cancels_the_job_once_and_raises_in_time(jobs_provider: Any) -> None:
    with running(queue_polls=10_000) as server:
        config = video_config(server, timeout=0.5, poll_interval=0.1)
        started = time.monotonic()
        with pytest.raises(TimeoutError) as raised:
            generate_video(config, VideoGenerationRequest(prompt="x"))
        elapsed = time.monotonic() - started
        assert server.counts["cancel"] == 1
        assert server.cancelled == ["job-1"]
    assert 0.5 <= elapsed <= 0.5 + 0.1 + 0.3
    assert raised.value.timeout_seconds == 0.5
    assert raised.value.attempts[0].cancel_status == "cancelled"
    assert raised.value.request_id == "job-1"


async def test_async_deadline_cancels_the_job_once(jobs_provider: Any) -> None:
    with running(queue_polls=10_000) as server:
        config = video_config(server, timeout=0.4, poll_interval=0.1)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await generate_video_async(config, VideoGenerationRequest(prompt="x"))
        assert time.monotonic() - started <= 0.4 + 0.1 + 0.3
        assert server.counts["cancel"] == 1


def test_max_poll_attempts_is_honoured(jobs_provider: Any) -> None:
    with running(queue_polls=10_000) as server:
        with pytest.raises(TimeoutError, match="max_poll_attempts=3"):
            generate_video(video_config(server, max_poll_attempts=3), VideoGenerationRequest(prompt="x"))
        assert server.counts["status"] == 3
        assert server.counts["cancel"] == 1


def test_fallback_after_timeout_cancels_first_job_before_second_provider(
    jobs_provider: Any,
    backup_provider: Any,
) -> None:
    with running(queue_polls=10_000) as slow, running() as fast:
        config = video_config(
            slow, timeout=0.3, poll_interval=0.05, fallback_configs=[video_config(fast, "backup")]
        )
        response = generate_video(config, VideoGenerationRequest(prompt="x"))
        assert slow.cancelled == ["job-1"]
        assert fast.counts["submit"] == 1
        cancel_time = slow.events.index(("cancel", "/jobs/job-1/cancel"))
        assert cancel_time == len(slow.events) - 1
    meta = response.execution_metadata
    assert meta is not None
    first = meta.attempts[0]
    assert (first.error_type, first.cancel_status, first.request_id) == ("TimeoutError", "cancelled", "job-1")
    assert first.ended_at is not None and first.ended_at <= meta.attempts[1].started_at


def test_provider_without_cancel_records_unsupported(job_server: JobServer) -> None:
    with running(queue_polls=10_000) as server, installed(make_plugin("nocancel", cancel=False), "nc"):
        with pytest.raises(TimeoutError) as raised:
            generate_video(video_config(server, "nocancel", timeout=0.2), VideoGenerationRequest(prompt="x"))
        assert server.counts["cancel"] == 0
    assert raised.value.attempts[0].cancel_status == "unsupported"


@pytest.mark.parametrize("callback_kind", ["sync", "async"])
def test_sync_api_accepts_sync_and_async_callbacks(
    job_server: JobServer, jobs_provider: Any, callback_kind: str
) -> None:
    seen: list[str] = []
    if callback_kind == "sync":

        def callback(update: Any) -> None:
            seen.append(update.status)
    else:

        async def callback(update: Any) -> None:
            await asyncio.sleep(0)
            seen.append(update.status)

    generate_video(video_config(job_server), VideoGenerationRequest(prompt="x"), on_progress=callback)
    assert seen == ["queued", "queued", "queued", "processing", "processing", "completed"]


@pytest.mark.parametrize("callback_kind", ["sync", "async"])
async def test_async_api_accepts_sync_and_async_callbacks(
    job_server: JobServer, jobs_provider: Any, callback_kind: str
) -> None:
    seen: list[str] = []
    if callback_kind == "sync":

        def callback(update: Any) -> None:
            seen.append(update.status)
    else:

        async def callback(update: Any) -> None:
            seen.append(update.status)

    await generate_video_async(
        video_config(job_server), VideoGenerationRequest(prompt="x"), on_progress=callback
    )
    assert seen == ["queued", "queued", "queued", "processing", "processing", "completed"]


async def test_sync_api_works_inside_a_running_loop(job_server: JobServer, jobs_provider: Any) -> None:
    seen: list[str] = []

    async def callback(update: Any) -> None:
        seen.append(update.status)

    response = generate_video(
        video_config(job_server), VideoGenerationRequest(prompt="x"), on_progress=callback
    )
    assert response.request_id == "job-1" and seen[-1] == "completed"


@pytest.mark.parametrize("api", ["sync", "async"])
async def test_raising_callback_propagates_cancels_and_never_falls_back(
    job_server: JobServer,
    jobs_provider: Any,
    backup_provider: Any,
    api: str,
) -> None:
    class CallerBug(Exception):
        pass

    def callback(update: Any) -> None:
        if update.status == "processing":
            raise CallerBug("progress bar broke")

    config = video_config(job_server, fallback_configs=[video_config(job_server, "backup")])
    with pytest.raises(CallerBug, match="progress bar broke"):
        if api == "sync":
            generate_video(config, VideoGenerationRequest(prompt="x"), on_progress=callback)
        else:
            await generate_video_async(config, VideoGenerationRequest(prompt="x"), on_progress=callback)
    assert job_server.counts["submit"] == 1
    assert job_server.cancelled == ["job-1"]


def test_image_generation_and_modality_checks(job_server: JobServer) -> None:
    with (
        installed(make_plugin("videoonly", modalities=("video",)), "vo"),
        installed(make_plugin("imgs"), "imgs"),
    ):
        config = ImageGenerationConfig(
            provider="videoonly", model="x", base_url=job_server.url, poll_interval=0.01
        )
        with pytest.raises(UnsupportedModalityError) as raised:
            generate_image(config, ImageGenerationRequest(prompt="x"))
        assert isinstance(raised.value, NotImplementedError)
        assert "'videoonly' does not support image generation" in str(raised.value)
        chained = ImageGenerationConfig(
            provider="videoonly",
            model="x",
            base_url=job_server.url,
            poll_interval=0.01,
            fallback_configs=[
                ImageGenerationConfig(provider="imgs", model="y", base_url=job_server.url, poll_interval=0.01)
            ],
        )
        response = generate_image(chained, ImageGenerationRequest(prompt="x"))
        assert response.images == [f"{job_server.url}/media/job-1.mp4"]
        assert response.execution_metadata is not None
        assert [a.status for a in response.execution_metadata.attempts] == ["skipped", "success"]
    assert job_server.counts["submit"] == 1


def test_wrong_config_type_is_a_validation_error() -> None:
    config = ImageGenerationConfig(provider="mock", model="m")
    with pytest.raises(ValidationError, match="needs a VideoGenerationConfig") as raised:
        generate_video(config, VideoGenerationRequest(prompt="x"))  # type: ignore[arg-type]
    assert raised.value.field == "config"


def test_connection_error_during_polls_is_retried(
    job_server: JobServer, jobs_provider: Any, fast_backoff: None
) -> None:
    job_server.inject("status", drop=True, times=2)
    response = generate_video(video_config(job_server), VideoGenerationRequest(prompt="x"))
    assert response.request_id == "job-1"
    assert job_server.counts["submit"] == 1 and job_server.counts["status"] == 5


def test_too_many_poll_errors_end_the_attempt(
    job_server: JobServer, jobs_provider: Any, fast_backoff: None
) -> None:
    job_server.inject("status", status=500, times=50)
    with pytest.raises(HTTPError) as raised:
        generate_video(video_config(job_server), VideoGenerationRequest(prompt="x"))
    assert raised.value.phase == "poll" and raised.value.status_code == 500
    assert job_server.counts["status"] == 10
    assert job_server.cancelled == ["job-1"]


def test_observer_hooks_see_attempts_and_progress(job_server: JobServer, jobs_provider: Any) -> None:
    seen: list[tuple[str, Any]] = []

    class Observer:
        @hookimpl
        def attempt_started(self, provider: str, model: str, modality: str, attempt: int) -> None:
            seen.append(("started", (provider, model, modality, attempt)))

        @hookimpl
        def attempt_finished(self, metadata: Any, error: Any) -> None:
            seen.append(("finished", (metadata.status, error)))

        @hookimpl
        def progress_reported(self, update: Any) -> None:
            seen.append(("progress", update.status))

        @hookimpl
        def register_providers(self) -> list[Any]:
            raise RuntimeError("observers may break; the generation must not")

    observer = Observer()
    HOST.pm.register(observer, name="observer")
    try:
        generate_video(video_config(job_server), VideoGenerationRequest(prompt="x"))
    finally:
        HOST.pm.unregister(observer)
    assert seen[0] == ("started", ("jobs", "m1", "video", 1))
    assert seen[-1] == ("finished", ("success", None))
    assert [s for kind, s in seen if kind == "progress"] == [
        "queued",
        "queued",
        "queued",
        "processing",
        "processing",
        "completed",
    ]


def test_http_connection_error_is_retryable_by_default() -> None:
    assert HTTPConnectionError("x").retryable
    assert not UnknownSubmissionError("x").retryable


def test_keyboard_interrupt_while_waiting_cancels_the_remote_job(
    jobs_provider: Any, sigint_raises: None
) -> None:
    import _thread
    import threading

    with running(queue_polls=10_000) as server:
        timer = threading.Timer(0.3, _thread.interrupt_main)
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                generate_video(video_config(server, poll_interval=0.2), VideoGenerationRequest(prompt="x"))
        finally:
            timer.cancel()
        assert server.cancelled == ["job-1"]
        assert server.counts["submit"] == 1


async def test_cancelling_the_task_cancels_the_remote_job(jobs_provider: Any) -> None:
    with running(queue_polls=10_000) as server:
        task = asyncio.ensure_future(
            generate_video_async(video_config(server, poll_interval=0.2), VideoGenerationRequest(prompt="x"))
        )
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert server.cancelled == ["job-1"]


def test_on_progress_must_be_callable() -> None:
    with pytest.raises(ValidationError) as raised:
        generate_video(
            VideoGenerationConfig(provider="mock", model="m"),
            VideoGenerationRequest(prompt="x"),
            on_progress=5,
        )  # type: ignore[arg-type]
    assert raised.value.field == "on_progress"
