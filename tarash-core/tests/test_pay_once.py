"""Pay once, also when things fail after the job exists (and refuse what should never be sent).

Every test runs against the counting job server of ``jobapi.py``, in the sync and the async API:
submit counts are exact (1 for one call, 0 for refused input), cancel counts are exact, and a paid
result left behind is collected later with no new submit.
"""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import pytest
from jobapi import JobServer, installed, make_plugin, running

from tarash.tarash_gateway import (
    CancelUnconfirmedError,
    Gateway,
    GenerationFailedError,
    ResultNotCollectedError,
    ValidationError,
    VideoGenerationConfig,
    VideoGenerationRequest,
    _engine,
    generate_video,
    generate_video_async,
    get_job,
    resume,
)
from tarash.tarash_gateway.plugin import Capabilities, ProviderSpec, Request, hookimpl

APIS = ("sync", "async")


def video_config(server: JobServer, provider: str = "jobs", **kwargs: Any) -> VideoGenerationConfig:
    fields: dict[str, Any] = {
        "model": "m1",
        "api_key": "key-jobs-0001",
        "base_url": server.url,
        "poll_interval": 0.01,
        "timeout": 10,
        **kwargs,
    }
    return VideoGenerationConfig(provider=provider, **fields)


def generate(api: str, config: Any, request: Any) -> Any:
    if api == "sync":
        return generate_video(config, request)
    return asyncio.run(generate_video_async(config, request))


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short backoff and cancel budget, so the retry-heavy paths take well under a second."""
    monkeypatch.setattr(_engine.attempt, "BACKOFF_BASE", 0.005)
    monkeypatch.setattr(_engine.phases, "CANCEL_GRACE_SECONDS", 0.5)


@pytest.fixture
def providers() -> Any:
    with installed(make_plugin("jobs"), "jobs-plugin"), installed(make_plugin("backup"), "backup-plugin"):
        yield


def _with_backup(server: JobServer, **kwargs: Any) -> VideoGenerationConfig:
    return video_config(server, fallback_configs=[video_config(server, "backup")], **kwargs)


# ----------------------------------------------------------------------------------------------
# A completed job is paid for: a failing result fetch never starts a fallback
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_a_completed_job_whose_result_fails_is_kept_not_paid_twice(
    api: str, job_server: JobServer, providers: Any
) -> None:
    job_server.inject("result", status=503, times=10_000)
    with pytest.raises(ResultNotCollectedError) as raised:
        generate(api, _with_backup(job_server, timeout=1), VideoGenerationRequest("a cat"))
    error = raised.value
    assert job_server.counts["submit"] == 1 and len(job_server.jobs) == 1
    assert job_server.counts["result"] >= 2
    assert (error.retryable, error.phase, error.request_id) == (False, "result", "job-1")
    assert error.message.startswith(
        "Job job-1 at jobs completed (it is billed) but its result could not be read ("
    )
    # The deadline ends the retries between two fetches or during one: either way a TimeoutError.
    assert type(error.__cause__).__name__ == "TimeoutError"
    assert error.__cause__.message in (  # type: ignore[attr-defined]
        "Generation did not finish within 1s (result still failing: jobs answered HTTP 503: injected)",
        "Generation did not finish within 1s (no answer to result before the deadline)",
    )
    assert [(a.provider, a.status) for a in error.attempts] == [("jobs", "failed")]
    record = get_job(error.ledger_key)
    assert record is not None and (record.state, record.finished) == ("completed", False)
    job_server.faults["result"].clear()
    collected = error.handle.result()
    assert collected.video == f"{job_server.url}/media/job-1.mp4"
    assert job_server.counts["submit"] == 1
    assert get_job(error.ledger_key).state == "completed"  # type: ignore[union-attr]
    assert get_job(error.ledger_key).finished  # type: ignore[union-attr]


def test_resume_collects_the_paid_result_with_no_new_submit(job_server: JobServer, providers: Any) -> None:
    job_server.inject("result", status=500, times=10_000)
    with pytest.raises(ResultNotCollectedError) as raised:
        generate_video(_with_backup(job_server, timeout=1), VideoGenerationRequest("a cat"))
    job_server.faults["result"].clear()
    [outcome] = resume()
    assert (outcome.key, outcome.state, outcome.job_id) == (raised.value.ledger_key, "completed", "job-1")
    assert outcome.response is not None
    assert outcome.response.video == f"{job_server.url}/media/job-1.mp4"
    assert job_server.counts["submit"] == 1
    assert resume() == []


# ----------------------------------------------------------------------------------------------
# Cancel is retried; while it is unconfirmed no fallback pays for a second job
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_a_cancel_answered_500_is_retried_until_confirmed(
    api: str, job_server: JobServer, providers: Any
) -> None:
    job_server.queue_polls = 10_000
    job_server.inject("cancel", status=500, times=2)
    with running() as backup:
        config = video_config(job_server, timeout=0.5, fallback_configs=[video_config(backup, "backup")])
        response = generate(api, config, VideoGenerationRequest("a cat"))
    assert response.provider == "backup"
    assert job_server.counts["cancel"] == 3 and job_server.counts["submit"] == 1
    assert job_server.cancelled == ["job-1"]  # the two 500s were answered before the job was touched
    assert job_server.jobs["job-1"]["state"] == "cancelled"
    assert response.execution_metadata.attempts[0].cancel_status == "cancelled"  # type: ignore[union-attr]
    assert backup.counts["submit"] == 1


@pytest.mark.parametrize("api", APIS)
def test_an_unconfirmed_cancel_holds_the_fallback(api: str, job_server: JobServer, providers: Any) -> None:
    job_server.queue_polls = 10_000
    job_server.inject("cancel", status=500, times=10_000)
    with pytest.raises(CancelUnconfirmedError) as raised:
        generate(api, _with_backup(job_server, timeout=0.5), VideoGenerationRequest("a cat"))
    error = raised.value
    assert job_server.counts["submit"] == 1 and len(job_server.jobs) == 1
    assert job_server.counts["cancel"] >= 2
    assert job_server.cancelled == []
    assert error.retryable is False
    assert "The fallback was NOT started" in error.message
    assert type(error.__cause__).__name__ == "TimeoutError"
    assert [(a.provider, a.cancel_status) for a in error.attempts] == [("jobs", "failed")]
    record = get_job("job-1")
    assert record is not None and not record.finished
    assert record.cancel == {"reason": "TimeoutError in poll", "outcome": "failed"}


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("outcome", ["unsupported", "finished"])
def test_a_job_abandoned_without_a_confirmed_cancel_holds_the_fallback_and_resume_collects_it(
    api: str, outcome: str, job_server: JobServer
) -> None:
    """A job its provider cannot cancel runs on and is billed; one whose cancel answers that it
    had already ended may have completed. Either may hold a paid result: the fallback is not
    started, and the job stays in the ledger, where resume() collects it (nothing sent again)."""
    job_server.inject("status", status=503, times=10_000)
    if outcome == "finished":
        job_server.inject("cancel", status=200, body={"cancelled": False})
    plugin = make_plugin("jobs", cancel=outcome == "finished")
    with (
        installed(plugin, "jobs-plugin"),
        installed(make_plugin("backup"), "backup-plugin"),
        running() as backup,
    ):
        config = video_config(job_server, timeout=0.5, fallback_configs=[video_config(backup, "backup")])
        with pytest.raises(CancelUnconfirmedError) as raised:
            generate(api, config, VideoGenerationRequest("a cat"))
        error = raised.value
        assert backup.counts["submit"] == 0
        assert job_server.counts["submit"] == 1
        assert job_server.counts["cancel"] == (1 if outcome == "finished" else 0)
        assert "The fallback was NOT started" in error.message
        assert "resume() collects its result" in error.message
        assert [(a.provider, a.cancel_status) for a in error.attempts] == [("jobs", outcome)]
        record = get_job("job-1")
        assert record is not None and not record.finished and record.owner is None
        assert record.cancel == {"reason": "TimeoutError in poll", "outcome": outcome}
        job_server.faults["status"].clear()
        [collected] = resume()
    assert (collected.state, collected.job_id) == ("completed", "job-1")
    assert collected.response is not None and collected.response.video == f"{job_server.url}/media/job-1.mp4"
    assert job_server.counts["submit"] == 1 and job_server.counts["result"] == 1


@pytest.mark.parametrize("api", APIS)
def test_an_interrupted_generation_whose_cancel_is_unconfirmed_is_released_for_resume(
    api: str, job_server: JobServer, providers: Any
) -> None:
    """Ctrl-C (sync) or a cancelled task (async) whose cancel is not confirmed leaves the job to
    resume(), this process's own included: its claim is released, not held until the lease ends."""
    job_server.queue_polls = 10_000
    job_server.inject("cancel", status=500, times=10_000)
    config, request = video_config(job_server), VideoGenerationRequest("a cat")

    def interrupt(update: Any) -> None:
        if job_server.counts["status"] >= 1:
            raise KeyboardInterrupt

    async def cancel_the_task() -> None:
        submitted = asyncio.Event()

        async def seen(update: Any) -> None:
            submitted.set()

        task = asyncio.create_task(generate_video_async(config, request, on_progress=seen))
        await submitted.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    if api == "sync":
        with pytest.raises(KeyboardInterrupt):
            generate_video(config, request, on_progress=interrupt)
    else:
        asyncio.run(cancel_the_task())
    record = get_job("job-1")
    assert record is not None and not record.finished and record.owner is None
    assert record.cancel == {"reason": "interrupted", "outcome": "failed"}
    job_server.faults["cancel"].clear()
    [outcome] = resume()
    assert (outcome.state, outcome.job_id) == ("cancelled", "job-1")
    assert job_server.cancelled == ["job-1"] and job_server.counts["submit"] == 1


@pytest.mark.parametrize("api", APIS)
def test_ctrl_c_from_a_sync_progress_callback_cancels_the_job(
    api: str, job_server: JobServer, providers: Any
) -> None:
    """The async API runs a sync callback in a worker thread: its KeyboardInterrupt, like the sync
    API's, stops the paid job before it leaves."""
    job_server.queue_polls = 10_000
    config, request = video_config(job_server), VideoGenerationRequest("a cat")

    def interrupt(update: Any) -> None:
        if job_server.counts["status"] >= 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        if api == "sync":
            generate_video(config, request, on_progress=interrupt)
        else:
            asyncio.run(generate_video_async(config, request, on_progress=interrupt))
    assert job_server.cancelled == ["job-1"] and job_server.counts["submit"] == 1
    record = get_job("job-1")
    assert record is not None and (record.state, record.finished) == ("cancelled", True)


def test_resume_retries_an_unconfirmed_cancel(job_server: JobServer, providers: Any) -> None:
    job_server.queue_polls = 10_000
    job_server.inject("cancel", status=503, times=10_000)
    with pytest.raises(CancelUnconfirmedError):
        generate_video(_with_backup(job_server, timeout=0.5), VideoGenerationRequest("a cat"))
    job_server.faults["cancel"].clear()
    [outcome] = resume()
    assert (outcome.state, outcome.job_id) == ("cancelled", "job-1")
    assert job_server.cancelled == ["job-1"]
    assert job_server.counts["submit"] == 1 and job_server.counts["result"] == 0
    assert resume() == []


def test_the_documented_policy_falls_back_despite_an_unconfirmed_cancel(
    job_server: JobServer, providers: Any
) -> None:
    job_server.queue_polls = 10_000
    job_server.inject("cancel", status=500, times=10_000)
    config = _with_backup(job_server, timeout=0.5, fallback_on_unconfirmed_cancel=True)
    with pytest.raises(Exception) as raised:
        generate_video(config, VideoGenerationRequest("a cat"))
    assert job_server.counts["submit"] == 2
    assert [(a.provider, a.cancel_status) for a in raised.value.attempts] == [  # type: ignore[attr-defined]
        ("jobs", "failed"),
        ("backup", "failed"),
    ]


# ----------------------------------------------------------------------------------------------
# Nothing impossible is sent; bugs are never a reason to fall back
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    ("request_", "field", "message"),
    [
        (
            VideoGenerationRequest(""),
            "prompt",
            "prompt is empty: give a prompt, or an image or video for the model to work from",
        ),
        (
            VideoGenerationRequest(" \n\t "),
            "prompt",
            "prompt is empty (only white space): give a prompt, or an image or video for the model "
            "to work from",
        ),
        (
            VideoGenerationRequest("a cat", extra_params={"prompt": 5}),
            "extra_params.prompt",
            "extra_params['prompt'] would override the unified field prompt: set prompt=... on the "
            "request instead",
        ),
        (
            VideoGenerationRequest("a cat \ud800"),
            "prompt",
            "request.prompt cannot be sent: surrogates not allowed at position 6",
        ),
    ],
)
def test_requests_that_must_not_be_sent_send_nothing(
    api: str, request_: Any, field: str, message: str, job_server: JobServer, providers: Any
) -> None:
    with pytest.raises(ValidationError) as raised:
        generate(api, _with_backup(job_server), request_)
    assert (raised.value.field, raised.value.message) == (field, message)
    assert dict(job_server.counts) == {}


class _BuggyPlugin:
    @hookimpl
    def register_providers(self) -> list[ProviderSpec]:
        return [ProviderSpec(name="buggy", modalities={"video"}, capabilities=Capabilities())]

    @hookimpl
    def submit(self, config: Any, request: Any, context: Any) -> Any:
        body = {"prompt": request.prompt, "size": request.extra_params["size"].upper()}
        yield Request(method="POST", url="/jobs", json=body)


@pytest.mark.parametrize("api", APIS)
def test_a_plugin_bug_is_not_retryable_and_keeps_its_type_as_cause(
    api: str, job_server: JobServer, providers: Any
) -> None:
    config = video_config(job_server, "buggy", fallback_configs=[video_config(job_server, "backup")])
    with installed(_BuggyPlugin(), "buggy-plugin"), pytest.raises(GenerationFailedError) as raised:
        generate(api, config, VideoGenerationRequest("a cat", extra_params={"size": 5}))
    assert raised.value.retryable is False
    assert type(raised.value.__cause__) is AttributeError
    assert raised.value.message == (
        "buggy plugin raised AttributeError during submit: 'int' object has no attribute 'upper'"
    )
    assert dict(job_server.counts) == {}


@pytest.mark.parametrize("api", APIS)
def test_a_429_at_submit_was_not_accepted_and_is_sent_again(
    api: str, job_server: JobServer, providers: Any
) -> None:
    job_server.inject("submit", status=429, retry_after="0.2", times=2)
    response = generate(api, _with_backup(job_server), VideoGenerationRequest("a cat"))
    assert (response.provider, response.request_id) == ("jobs", "job-1")
    assert job_server.counts["submit"] == 3 and len(job_server.jobs) == 1


def test_a_provider_without_its_key_is_skipped_and_the_chain_goes_on(
    job_server: JobServer, providers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyed = make_plugin("keyed")
    spec = keyed.register_providers()[0]
    keyed.register_providers = hookimpl(lambda: [attrs.evolve(spec, api_key_env="KEYED_TEST_KEY")])
    monkeypatch.delenv("KEYED_TEST_KEY", raising=False)
    first = video_config(job_server, "keyed", api_key=None)
    mock = VideoGenerationConfig(provider="mock", model="mock", provider_config={"delay": 0.001})
    with installed(keyed, "keyed-plugin"):
        response = generate_video(attrs.evolve(first, fallback_configs=[mock]), VideoGenerationRequest("a"))
    assert response.is_mock
    [skipped, used] = response.execution_metadata.attempts  # type: ignore[union-attr]
    assert (skipped.provider, skipped.status, skipped.error_type) == (
        "keyed",
        "skipped",
        "MissingCredentialsError",
    )
    assert skipped.error_message == (
        "No API key for provider 'keyed': set KEYED_TEST_KEY or pass api_key=... in the config "
        "(--api-key on the command line) (provider=keyed)"
    )
    assert (used.provider, used.status) == ("mock", "success")
    assert dict(job_server.counts) == {}


@pytest.mark.parametrize("api", APIS)
def test_a_gateways_uncollected_result_is_collected_through_that_gateway(
    api: str, job_server: JobServer, tmp_path: Any
) -> None:
    """The handle on a gateway's ResultNotCollectedError uses that gateway: its provider (known
    to no other gateway) and its ledger, whose record of the job the collection finishes."""
    job_server.inject("result", status=503, times=10_000)
    with Gateway(discover=False, ledger=tmp_path / "jobs.db") as gateway:
        gateway.register_plugin(make_plugin("solo"), "solo-plugin")
        config = video_config(job_server, "solo", timeout=1)
        with pytest.raises(ResultNotCollectedError) as raised:
            if api == "sync":
                gateway.generate_video(config, VideoGenerationRequest("a cat"))
            else:
                asyncio.run(gateway.generate_video_async(config, VideoGenerationRequest("a cat")))
        handle = raised.value.handle
        job_server.faults["result"].clear()
        collected = handle.result() if api == "sync" else asyncio.run(handle.result_async())
        [record] = gateway.ledger().store.records()  # type: ignore[union-attr]
    assert collected.video == f"{job_server.url}/media/job-1.mp4"
    assert (record.key, record.state, record.finished) == (handle.key, "completed", True)
    assert get_job(handle.key) is None  # the default ledger never saw it
    assert job_server.counts["submit"] == 1
