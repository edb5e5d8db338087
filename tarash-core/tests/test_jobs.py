"""Durable jobs: handles, the ledger, resume after a crash, concurrency, switches and the CLI.

Providers are real: the built-in mock, and the ``jobapi`` lifecycle plugin talking HTTP to a local
counting server (tests/jobapi.py). Crashes are real too: child Python processes are killed with
SIGKILL at chosen points, read off the shared ledger file, and a fresh process resumes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
from jobapi import JobServer, make_plugin, running

from tarash.tarash_gateway import (
    JobHandle,
    JobNotFinishedError,
    LedgerError,
    generate_video,
    get_job,
    list_jobs,
    resume,
    resume_async,
    set_ledger,
    submit_image,
    submit_image_async,
    submit_video,
    submit_video_async,
)
from tarash.tarash_gateway import _runtime as rt
from tarash.tarash_gateway import jobs as jobs_module
from tarash.tarash_gateway._gateway import default_gateway
from tarash.tarash_gateway._ledger import JobRecord, SQLiteJobStore, ledger_path
from tarash.tarash_gateway._plugins import HOST
from tarash.tarash_gateway.cli import main
from tarash.tarash_gateway.exceptions import (
    JobCancelledError,
    TimeoutError,
    UnknownSubmissionError,
)
from tarash.tarash_gateway.jobs import get_ledger
from tarash.tarash_gateway.models import (
    ImageGenerationConfig,
    ImageGenerationRequest,
    MediaContent,
    MockConfig,
    MockPollingConfig,
    MockResponse,
    VideoGenerationConfig,
    VideoGenerationRequest,
)
from tarash.tarash_gateway.plugin import CallContext, hookimpl
from tarash.tarash_gateway.serialization import to_dict

TESTS = Path(__file__).parent
KEY = "jobapi-secret-key-0001"
ENV_KEY = "jobapi-env-key-0002"
FAST = MockPollingConfig(status_sequence=("queued", "processing", "completed"), delay_between_updates=0.01)
EVENTS_OF_A_GENERATION = [
    ("intent", "submitting"),
    ("submitted", "submitted"),
    ("status", "queued"),
    ("status", "processing"),
    ("status", "completed"),
    ("finished", "completed"),
]


def mock_video(**fields: Any) -> VideoGenerationConfig:
    values: dict[str, Any] = {
        "model": "mock",
        "provider": "mock",
        "mock": MockConfig(polling=FAST),
        "timeout": 30,
        **fields,
    }
    return VideoGenerationConfig(**values)


def jobapi_config(server: JobServer, **fields: Any) -> VideoGenerationConfig:
    values: dict[str, Any] = {
        "model": "j1",
        "provider": "jobapi",
        "base_url": server.url,
        "api_key": KEY,
        "poll_interval": 0.01,
        "timeout": 30,
        **fields,
    }
    return VideoGenerationConfig(**values)


def jobapi_plugin(name: str = "jobapi", **kwargs: Any) -> Any:
    """tests/jobapi.py's plugin, declaring ``JOBAPI_KEY`` as its key variable."""
    plugin = make_plugin(name, **kwargs)
    spec = plugin.register_providers()[0]

    @hookimpl
    def register_providers() -> list[Any]:
        return [attrs.evolve(spec, api_key_env="JOBAPI_KEY")]

    plugin.register_providers = register_providers
    return plugin


@contextmanager
def provider(plugin: Any, name: str = "jobapi") -> Iterator[Any]:
    HOST.register_plugin_object(plugin, name)
    try:
        yield plugin
    finally:
        HOST.unregister_plugin_object(plugin)


@pytest.fixture(autouse=True)
def _default_ledger(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts from the default ledger (conftest points TARASH_HOME at a temp dir), and
    a process resuming jobs finds the provider's key in its environment."""
    monkeypatch.delenv("TARASH_LEDGER", raising=False)
    monkeypatch.setenv("JOBAPI_KEY", ENV_KEY)
    set_ledger(None)
    yield
    set_ledger(None)


@pytest.fixture
def jobapi(job_server: JobServer) -> Iterator[JobServer]:
    with provider(jobapi_plugin()):
        yield job_server


def store() -> SQLiteJobStore:
    found = get_ledger()
    assert isinstance(found, SQLiteJobStore)
    return found


def events(key: str) -> list[tuple[str, str | None]]:
    return [(event.kind, event.state) for event in store().events(key)]


def ledger_bytes() -> bytes:
    path = store().path
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def only_record() -> JobRecord:
    records = list_jobs()
    assert len(records) == 1
    return records[0]


# ----------------------------------------------------------------------------------------------
# Handles
# ----------------------------------------------------------------------------------------------


def test_handle_round_trips_through_json_and_waits() -> None:
    config = mock_video(api_key="mock-secret-key-0003")
    handle = submit_video(config, VideoGenerationRequest("a cat", aspect_ratio="9:16"))
    text = handle.to_json()
    assert "mock-secret-key-0003" not in text
    loaded = JobHandle.from_json(text)
    assert (loaded.key, loaded.job, loaded.provider, loaded.model, loaded.modality) == (
        handle.key,
        handle.job,
        "mock",
        "mock",
        "video",
    )
    assert loaded.config == attrs.evolve(config, api_key=None)
    response = loaded.wait()
    assert response.is_mock
    assert response.request_id == handle.job_id
    assert response.aspect_ratio == "9:16"
    assert response.provider == "mock"
    record = get_job(handle.key)
    assert record is not None
    assert record.finished
    assert record.state == "completed"
    assert record.result is not None
    assert record.result["video"] == response.video
    assert events(handle.key) == [
        ("intent", "submitting"),
        ("submitted", "submitted"),
        ("claim", None),
        ("status", "queued"),
        ("status", "processing"),
        ("status", "completed"),
        ("finished", "completed"),
    ]
    assert repr(handle) == (
        f"JobHandle(provider='mock', model='mock', job_id={handle.job_id!r}, key={handle.key!r})"
    )


def test_status_result_and_wait_against_a_local_server(jobapi: JobServer) -> None:
    handle = submit_video(jobapi_config(jobapi), VideoGenerationRequest("a lighthouse"))
    assert handle.job_id == "job-1"
    assert handle.job.data == {}
    first = handle.status()
    assert (first.state, first.queue_position) == ("queued", 1)
    with pytest.raises(JobNotFinishedError) as info:
        handle.result()
    assert info.value.state == "queued"
    assert info.value.message == "Job job-1 at jobapi is queued, not completed"
    seen: list[tuple[str, float | None]] = []
    response = handle.wait(on_progress=lambda u: seen.append((u.status, u.progress_percent)))
    assert response.video == f"{jobapi.url}/media/job-1.mp4"
    assert seen == [("processing", 33.0), ("processing", 67.0), ("completed", 100.0)]
    assert handle.result().video == response.video
    assert dict(jobapi.counts) == {"submit": 1, "status": 6, "result": 2}
    assert jobapi.auth_headers == [f"Bearer {KEY}"] * 9
    assert only_record().state == "completed"


def test_a_handle_loaded_in_another_process_waits_with_the_env_key(jobapi: JobServer) -> None:
    handle = submit_video(jobapi_config(jobapi), VideoGenerationRequest("a cat"))
    child = run_child("child_wait", {"handle": handle.to_json()}, env={"JOBAPI_KEY": ENV_KEY})
    assert child == {"video": f"{jobapi.url}/media/job-1.mp4", "request_id": "job-1"}
    assert dict(jobapi.counts) == {"submit": 1, "status": 5, "result": 1}
    assert jobapi.auth_headers == [f"Bearer {KEY}"] + [f"Bearer {ENV_KEY}"] * 6
    record = only_record()
    assert record.state == "completed"
    assert record.finished


def test_an_explicit_key_wins_over_the_environment(
    jobapi: JobServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBAPI_KEY", ENV_KEY)
    text = submit_video(jobapi_config(jobapi), VideoGenerationRequest("a")).to_json()
    JobHandle.from_json(text).status()
    assert jobapi.auth_headers[-1] == f"Bearer {ENV_KEY}"
    JobHandle.from_json(text, api_key="explicit-key-0004").status()
    assert jobapi.auth_headers[-1] == "Bearer explicit-key-0004"


def test_cancel_is_sent_once_and_recorded(jobapi: JobServer) -> None:
    handle = submit_video(jobapi_config(jobapi), VideoGenerationRequest("a cat"))
    assert handle.cancel() is True
    assert jobapi.cancelled == ["job-1"]
    record = only_record()
    assert (record.state, record.finished) == ("cancelled", True)
    assert record.cancel == {"reason": "cancelled by the caller", "outcome": "cancelled"}
    with pytest.raises(JobCancelledError):
        handle.wait()
    assert resume() == []
    assert dict(jobapi.counts) == {"submit": 1, "cancel": 1, "status": 1}


def test_cancel_without_provider_support_returns_false(job_server: JobServer) -> None:
    with provider(jobapi_plugin("nocancel", cancel=False), "nocancel"):
        handle = submit_video(jobapi_config(job_server, provider="nocancel"), VideoGenerationRequest("a"))
        assert handle.cancel() is False
    record = only_record()
    assert (record.state, record.finished) == ("submitted", False)
    assert record.cancel == {"reason": "cancelled by the caller", "outcome": "unsupported"}
    assert job_server.counts["cancel"] == 0


def test_wait_timeout_leaves_the_job_running() -> None:
    with running(queue_polls=12) as server, provider(jobapi_plugin()):
        handle = submit_video(jobapi_config(server, poll_interval=0.02), VideoGenerationRequest("slow"))
        with pytest.raises(TimeoutError) as info:
            handle.wait(timeout=0.2)
        assert info.value.timeout_seconds == 0.2
        assert server.counts["cancel"] == 0
        record = only_record()
        assert not record.finished
        assert record.owner is None
        assert handle.wait().video == f"{server.url}/media/job-1.mp4"
        assert server.counts["submit"] == 1
        assert server.counts["result"] == 1


async def test_async_twins(jobapi: JobServer) -> None:
    image = await submit_image_async(
        ImageGenerationConfig(
            model="j1", provider="jobapi", base_url=jobapi.url, api_key=KEY, poll_interval=0.01
        ),
        ImageGenerationRequest("a fox"),
    )
    assert (await image.status_async()).state == "queued"
    assert (await image.wait_async()).images == [f"{jobapi.url}/media/job-1.mp4"]
    assert (await image.result_async()).images == [f"{jobapi.url}/media/job-1.mp4"]
    video = await submit_video_async(jobapi_config(jobapi), VideoGenerationRequest("b"))
    assert await video.cancel_async() is True
    assert jobapi.cancelled == ["job-2"]
    states = {r.key: (r.modality, r.state) for r in list_jobs()}
    assert states == {image.key: ("image", "completed"), video.key: ("video", "cancelled")}


def test_image_handles_use_the_mock_too() -> None:
    handle = submit_image(
        ImageGenerationConfig(model="mock-image", provider="mock", mock=MockConfig(polling=FAST)),
        ImageGenerationRequest("a fox", n=2, size="64x32"),
    )
    response = handle.wait()
    assert len(response.images) == 2
    assert response.images[0].startswith("file://")
    assert handle.modality == "image"
    assert only_record().state == "completed"


def test_a_retryable_submit_failure_moves_on_to_the_fallback(job_server: JobServer) -> None:
    job_server.inject("submit", status=503)
    with provider(jobapi_plugin()), provider(jobapi_plugin("backup"), "backup"):
        config = jobapi_config(
            job_server, fallback_configs=[jobapi_config(job_server, provider="backup", model="b1")]
        )
        handle = submit_video(config, VideoGenerationRequest("a"))
        assert (handle.provider, handle.model, handle.job_id) == ("backup", "b1", "job-1")
        assert handle.config.fallback_configs is None
        assert handle.wait().video == f"{job_server.url}/media/job-1.mp4"
    first, second = list_jobs()
    assert (first.provider, first.state, first.finished, first.job_id) == (
        "jobapi",
        "failed",
        True,
        None,
    )
    assert first.error is not None
    assert first.error["status_code"] == 503
    assert (second.provider, second.state, second.job_id) == ("backup", "completed", "job-1")
    assert dict(job_server.counts) == {"submit": 2, "status": 5, "result": 1}


# ----------------------------------------------------------------------------------------------
# The ledger's records
# ----------------------------------------------------------------------------------------------


def test_the_intent_is_written_before_the_submit_is_sent(job_server: JobServer) -> None:
    plugin = jobapi_plugin()
    original = plugin.submit
    seen: list[JobRecord | None] = []

    @hookimpl
    def submit(config: Any, request: Any, context: CallContext) -> Any:
        seen.append(get_job(context.idempotency_key))
        assert job_server.counts["submit"] == 0
        return original(config=config, request=request, context=context)

    plugin.submit = submit
    with provider(plugin):
        response = generate_video(jobapi_config(job_server), VideoGenerationRequest("a cat"))
    assert len(seen) == 1
    assert seen[0] is not None
    intent = seen[0]
    assert (intent.state, intent.job_id, intent.finished, intent.provider, intent.model) == (
        "submitting",
        None,
        False,
        "jobapi",
        "j1",
    )
    assert intent.config is not None
    assert "api_key" not in intent.config
    assert intent.config["base_url"] == job_server.url
    assert intent.request is not None
    assert intent.request["prompt"] == "a cat"
    assert intent.owner is not None
    assert intent.owner.split(":")[1] == str(os.getpid())
    record = only_record()
    assert (record.key, record.job_id, record.state) == (intent.key, "job-1", "completed")
    assert record.result is not None
    assert record.result["video"] == response.video
    assert events(record.key) == EVENTS_OF_A_GENERATION


def test_generate_records_statuses_results_and_no_secret(jobapi: JobServer) -> None:
    generate_video(jobapi_config(jobapi), VideoGenerationRequest("a cat"))
    record = only_record()
    assert record.detail == {"queue_position": None, "progress_percent": None}
    assert record.job is not None
    assert record.job.job_id == "job-1"
    assert record.error is None
    assert record.owner is None
    assert record.lease_until is None
    assert dict(jobapi.counts) == {"submit": 1, "status": 5, "result": 1}
    assert KEY.encode() not in ledger_bytes()
    assert b"job-1.mp4" in ledger_bytes()


def test_media_bytes_are_not_stored() -> None:
    picture = MediaContent(content=os.urandom(20_000), content_type="image/png")
    config = mock_video(mock=MockConfig(polling=FAST, responses=[MockResponse(output_video_type="content")]))
    response = generate_video(
        config,
        VideoGenerationRequest("a cat", image_list=[{"image": picture, "type": "first_frame"}]),
    )
    assert isinstance(response.video, MediaContent)
    record = only_record()
    assert record.result is not None
    assert record.request is not None
    assert record.result["video"] == {
        "content_type": "video/mp4",
        "size": len(response.video.content),
        "stored": False,
    }
    assert record.request["image_list"] == [
        {
            "image": {"content_type": "image/png", "size": 20_000, "stored": False},
            "type": "first_frame",
        }
    ]
    stored = ledger_bytes()
    assert picture.content[:64] not in stored
    assert response.video.content[200:264] not in stored
    assert to_dict(picture)["content"][:40].encode() not in stored


def test_a_lost_submit_answer_is_unknown_and_never_resubmitted(jobapi: JobServer) -> None:
    jobapi.inject("submit", drop=True)
    with pytest.raises(UnknownSubmissionError):
        generate_video(jobapi_config(jobapi), VideoGenerationRequest("a cat"))
    record = only_record()
    assert (record.state, record.finished, record.job_id) == ("unknown", True, None)
    assert record.error is not None
    assert record.error["type"] == "UnknownSubmissionError"
    assert resume() == []
    assert dict(jobapi.counts) == {"submit": 1}
    assert list(jobapi.jobs) == ["job-1"]


def test_a_store_that_cannot_record_the_intent_stops_the_submit(jobapi: JobServer) -> None:
    class BrokenStore(SQLiteJobStore):
        def _connection(self) -> sqlite3.Connection:
            raise sqlite3.OperationalError("disk I/O error")

    broken = BrokenStore("/nonexistent/jobs.db")
    set_ledger(broken)
    with pytest.raises(LedgerError) as raised:  # the jobapi fixture registered the provider
        generate_video(jobapi_config(jobapi), VideoGenerationRequest("a"))
    assert raised.value.message == (
        f"The job ledger {broken!r} could not record the submit intent (OperationalError: disk I/O "
        "error), so nothing was submitted. Switch the ledger off (TARASH_LEDGER=off) to submit "
        "unrecorded."
    )
    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
    assert raised.value.retryable is False
    assert dict(jobapi.counts) == {}


def test_a_store_failing_after_the_intent_never_breaks_generation(caplog: pytest.LogCaptureFixture) -> None:
    class FailingAfterIntent(SQLiteJobStore):
        def record_submitted(self, *args: Any, **kwargs: Any) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        record_status = record_finished = record_submitted

    store_ = FailingAfterIntent(Path(os.environ["TARASH_HOME"]) / "failing.db").open()
    set_ledger(store_)
    caplog.set_level(logging.WARNING, logger="tarash.ledger")
    try:
        for _ in range(2):
            assert generate_video(mock_video(), VideoGenerationRequest("a")).is_mock
    finally:
        set_ledger(None)
        store_.close()
    assert [r.getMessage() for r in caplog.records] == [
        f"Tarash job ledger {what} failed on {store_!r}; continuing without it: "
        "OperationalError: disk I/O error"
        for what in ("submitted", "status", "finished")
    ]


# ----------------------------------------------------------------------------------------------
# Resume after a crash (child processes killed with SIGKILL)
# ----------------------------------------------------------------------------------------------


def _child_env(server: JobServer | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    env["TARASH_LEDGER"] = str(store().path)
    if server is not None:
        env["JOBAPI_URL"] = server.url
    env.update(extra or {})
    return env


def spawn(
    function: str,
    args: dict[str, Any],
    server: JobServer | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    code = f"import test_jobs; test_jobs.{function}({json.dumps(args)!r})"
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=_child_env(server, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_child(
    function: str,
    args: dict[str, Any],
    server: JobServer | None = None,
    env: dict[str, str] | None = None,
) -> Any:
    proc = spawn(function, args, server, env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _install_child_provider() -> None:
    HOST.register_plugin_object(jobapi_plugin(), "jobapi")


def child_wait(raw: str) -> None:
    """Child: load a handle from JSON (key from JOBAPI_KEY) and wait for it."""
    _install_child_provider()
    response = JobHandle.from_json(json.loads(raw)["handle"]).wait()
    print(json.dumps({"video": response.video, "request_id": response.request_id}))


def child_generate(raw: str) -> None:
    """Child: generate videos one after the other against the jobapi server."""
    args = json.loads(raw)
    _install_child_provider()
    for index in range(args["count"]):
        config = VideoGenerationConfig(
            model="j1",
            provider="jobapi",
            base_url=os.environ["JOBAPI_URL"],
            api_key=KEY,
            poll_interval=args.get("poll_interval", 0.01),
            timeout=60,
        )
        generate_video(config, VideoGenerationRequest(f"video {index}"))
    print(json.dumps({"done": args["count"]}))


def test_resume_collects_the_job_of_a_killed_process() -> None:
    with running(queue_polls=12) as server, provider(jobapi_plugin()):
        proc = spawn("child_generate", {"count": 1}, server)
        wait_for(lambda: any(r.state == "queued" for r in store().records()))
        kill(proc)
        before = dict(server.counts)
        record = only_record()
        assert (record.job_id, record.finished) == ("job-1", False)
        outcomes = resume()
        assert [(o.state, o.job_id) for o in outcomes] == [("completed", "job-1")]
        assert outcomes[0].response is not None
        assert outcomes[0].response.video == f"{server.url}/media/job-1.mp4"
        assert server.counts["submit"] == before["submit"] == 1
        assert server.counts["result"] == 1
        assert only_record().state == "completed"
        assert resume() == []


def test_an_interrupted_submit_is_reported_unknown_not_resubmitted() -> None:
    with running() as server, provider(jobapi_plugin()):
        server.inject("submit", drop=True, delay=1.0)
        proc = spawn("child_generate", {"count": 1}, server)
        wait_for(lambda: server.counts["submit"] == 1)
        kill(proc)
        record = only_record()
        assert (record.state, record.job_id, record.finished) == ("submitting", None, False)
        outcomes = resume()
        when = record.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        assert [(o.state, o.key, o.job_id) for o in outcomes] == [("unknown", record.key, None)]
        assert isinstance(outcomes[0].error, UnknownSubmissionError)
        assert outcomes[0].error.message == (
            f"The submit to jobapi at {when} was interrupted before its job id was recorded: "
            "unknown, may have been billed. It was not resubmitted. Look for a j1 job created "
            f"around {when} in jobapi's dashboard or job list, and cancel or use it there (see "
            f"the durable-jobs guide). Ledger key: {record.key}."
        )
        wait_for(lambda: len(server.jobs) == 1)
        assert (only_record().state, only_record().finished) == ("unknown", True)
        assert resume() == []
        assert dict(server.counts) == {"submit": 1}


def test_the_mock_says_nothing_was_billed() -> None:
    ledger = store()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ledger.record_intent(
        "k-mock",
        provider="mock",
        model="mock",
        modality="video",
        config=None,
        request=None,
        owner=f"{socket.gethostname()}:{dead}:x",
        lease_seconds=600,
    )
    [outcome] = resume()
    assert outcome.state == "unknown"
    assert outcome.error is not None
    assert "Mock jobs are never billed: nothing to do." in outcome.error.message


def test_resume_leaves_the_jobs_of_live_processes_alone() -> None:
    with running(queue_polls=20) as server, provider(jobapi_plugin()):
        proc = spawn("child_generate", {"count": 1, "poll_interval": 0.02}, server)
        try:
            wait_for(lambda: any(r.state == "queued" for r in store().records()))
            outcomes = resume()
            assert [(o.state, o.job_id) for o in outcomes] == [("claimed", "job-1")]
            assert server.counts["result"] == 0
        finally:
            out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert json.loads(out) == {"done": 1}
        assert only_record().state == "completed"
        assert server.counts["result"] == 1


def test_resume_reads_a_job_again_once_it_holds_it(jobapi: JobServer) -> None:
    """resume() lists the records first and claims each later: a record listed while its submit
    was in flight, whose job id was recorded before its process died, is collected by that job id
    (the listing's copy would have made it an unknown submission, abandoned while it ran)."""
    submit_video(jobapi_config(jobapi), VideoGenerationRequest("listed early"))
    ledger = jobs_module._require_ledger()
    (current,) = ledger.store.records("unfinished")
    listed = attrs.evolve(current, state="submitting", job_id=None, job=None)
    outcome = rt.drive_sync(
        jobs_module._resume_flow(ledger, listed, None, None), default_gateway().background
    )
    assert (outcome.key, outcome.state, outcome.job_id) == (current.key, "completed", "job-1")
    assert (jobapi.counts["submit"], jobapi.counts["result"]) == (1, 1)
    assert only_record().state == "completed"


def test_resume_one_job_by_key_or_provider_job_id(jobapi: JobServer) -> None:
    first = submit_video(jobapi_config(jobapi), VideoGenerationRequest("one"))
    second = submit_video(jobapi_config(jobapi), VideoGenerationRequest("two"))
    assert [r.state for r in list_jobs("unfinished")] == ["submitted", "submitted"]
    assert [o.key for o in resume("job-2")] == [second.key]
    assert [o.key for o in resume(first.key)] == [first.key]
    assert resume(first.key) == []
    assert {r.key for r in list_jobs("completed")} == {first.key, second.key}
    assert list_jobs("unfinished") == []
    assert get_job("job-1") == get_job(first.key)
    assert get_job("no-such-job") is None
    with pytest.raises(LedgerError) as info:
        resume("no-such-job")
    assert info.value.message == f"No job 'no-such-job' in the ledger ({store()!r})"
    assert jobapi.counts["submit"] == 2
    assert jobapi.counts["result"] == 2


def test_resume_does_not_poll_a_provider_that_cannot_resume(job_server: JobServer) -> None:
    with provider(make_plugin("once", resume=False), "once"):
        handle = submit_video(jobapi_config(job_server, provider="once"), VideoGenerationRequest("x"))
        [outcome] = resume()
    assert (outcome.key, outcome.state, outcome.job_id) == (handle.key, "unknown", "job-1")
    assert outcome.error is not None
    assert outcome.error.message == (
        "once cannot continue job job-1 from a new process (its plugin declares "
        "Capabilities(resume=False)), so it was not polled. It may still run and be billed: look "
        f"for it in once's dashboard or job list. Ledger key: {handle.key}."
    )
    assert dict(job_server.counts) == {"submit": 1}
    record = get_job(handle.key)
    assert record is not None and (record.state, record.finished) == ("unknown", True)
    assert resume() == []


async def test_resume_async_collects_several_jobs_at_once(jobapi: JobServer) -> None:
    handles = [submit_video(jobapi_config(jobapi), VideoGenerationRequest(f"v{i}")) for i in range(5)]
    outcomes = await resume_async()
    assert sorted((o.key, o.state) for o in outcomes) == sorted((h.key, "completed") for h in handles)
    assert jobapi.counts["submit"] == 5
    assert jobapi.counts["result"] == 5


# ----------------------------------------------------------------------------------------------
# Several processes, one ledger file
# ----------------------------------------------------------------------------------------------


def _await_go(path: str) -> None:
    deadline = time.monotonic() + 30
    while not os.path.exists(path):
        assert time.monotonic() < deadline
        time.sleep(0.002)


def child_resume(raw: str) -> None:
    """Child: resume the whole ledger once the go file appears; report what it collected."""
    args = json.loads(raw)
    _install_child_provider()
    print("ready", flush=True)
    _await_go(args["go"])
    outcomes = resume()
    print(
        json.dumps(
            {
                "completed": sorted(o.key for o in outcomes if o.state == "completed"),
                "claimed": sorted(o.key for o in outcomes if o.state == "claimed"),
                "other": sorted(o.key for o in outcomes if o.state not in ("completed", "claimed")),
            }
        )
    )


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def child_mock_job(raw: str) -> None:
    """Child: a mock job another process submitted: its state, then (if asked) cancel and state."""
    args = json.loads(raw)
    handle = JobHandle.from_json(args["handle"])
    states: list[Any] = [handle.status().state]
    if args["cancel"]:
        states += [handle.cancel(), handle.status().state]
    print(json.dumps(states))


def test_a_mock_job_seen_from_another_process_is_where_its_time_says() -> None:
    slow = MockPollingConfig(status_sequence=("queued", "processing", "completed"), delay_between_updates=60)
    running = submit_video(mock_video(mock=MockConfig(polling=slow)), VideoGenerationRequest("slow"))
    assert run_child("child_mock_job", {"handle": running.to_json(), "cancel": True}) == [
        "queued",
        True,
        "cancelled",
    ]
    done = submit_video(mock_video(), VideoGenerationRequest("fast"))
    time.sleep(0.05)
    assert run_child("child_mock_job", {"handle": done.to_json(), "cancel": False}) == ["completed"]


def test_an_interrupted_generation_whose_job_was_cancelled_ends_cancelled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def interrupt(update: Any) -> None:
        if update.status == "processing":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_video(mock_video(), VideoGenerationRequest("a"), on_progress=interrupt)
    (record,) = list_jobs()
    assert (record.state, record.finished) == ("cancelled", True)
    assert record.cancel == {"reason": "interrupted", "outcome": "cancelled"}
    assert [(e.kind, e.state) for e in store().events(record.key)][-2:] == [
        ("cancel", None),
        ("finished", "cancelled"),
    ]
    assert resume() == []
    code, out, _ = cli(capsys, "status", record.key)
    assert code == 0
    assert "state:     cancelled\ncollected: yes\n" in out
    assert "cancel:    cancelled (interrupted)\n" in out


def child_generate_mock(raw: str) -> None:
    """Child: many fast mock generations on the shared ledger; report ledger warnings."""
    args = json.loads(raw)
    counter = _Count()
    logging.getLogger("tarash.ledger").addHandler(counter)
    print("ready", flush=True)
    _await_go(args["go"])
    for index in range(args["count"]):
        generate_video(mock_video(), VideoGenerationRequest(f"{args['name']} {index}"))
    print(json.dumps({"warnings": counter.count}))


def _start_together(
    function: str, args: list[dict[str, Any]], go: Path, server: JobServer | None = None
) -> list[Any]:
    procs = [spawn(function, {**a, "go": str(go)}, server) for a in args]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    go.write_text("go")
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_two_processes_never_collect_the_same_job(jobapi: JobServer, tmp_path: Path) -> None:
    keys = {submit_video(jobapi_config(jobapi), VideoGenerationRequest(f"v{i}")).key for i in range(12)}
    first, second = _start_together("child_resume", [{}, {}], tmp_path / "go", jobapi)
    assert first["other"] == second["other"] == []
    assert set(first["completed"]).isdisjoint(second["completed"])
    assert set(first["completed"]) | set(second["completed"]) == keys
    assert set(first["claimed"]) <= set(second["completed"])
    assert set(second["claimed"]) <= set(first["completed"])
    assert jobapi.counts["submit"] == 12
    assert jobapi.counts["result"] == 12
    for key in keys:
        kinds = [kind for kind, _state in events(key)]
        assert kinds.count("claim") == 1
        assert kinds.count("finished") == 1


def test_two_processes_share_one_ledger_without_corrupting_it(tmp_path: Path) -> None:
    results = _start_together(
        "child_generate_mock",
        [{"name": "a", "count": 15}, {"name": "b", "count": 15}],
        tmp_path / "go",
    )
    assert results == [{"warnings": 0}, {"warnings": 0}]
    records = list_jobs()
    assert len(records) == 30
    assert {r.state for r in records} == {"completed"}
    assert all(r.finished and r.owner is None for r in records)
    assert sorted(r.request["prompt"] for r in records if r.request) == sorted(
        f"{name} {i}" for name in "ab" for i in range(15)
    )
    for record in records:
        assert events(record.key) == EVENTS_OF_A_GENERATION
    with contextlib.closing(sqlite3.connect(store().path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_old_finished_jobs_are_pruned_when_the_file_is_opened(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    set_ledger(path)
    generate_video(mock_video(), VideoGenerationRequest("old"))
    generate_video(mock_video(), VideoGenerationRequest("recent"))
    stuck = submit_video(mock_video(), VideoGenerationRequest("old but unfinished"))
    old = next(r for r in list_jobs() if r.request and r.request["prompt"] == "old")
    month = 31 * 86400
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE jobs SET finished_at = finished_at - ? WHERE key = ?", (month, old.key))
        conn.execute("UPDATE jobs SET created_at = created_at - ? WHERE key = ?", (month, stuck.key))
    with SQLiteJobStore(path, retention_days=None) as keeping:
        assert len(keeping.records()) == 3
    with SQLiteJobStore(path) as reopened:
        assert sorted(r.request["prompt"] for r in reopened.records() if r.request) == [
            "old but unfinished",
            "recent",
        ]
        assert reopened.events(old.key) == []
        assert len(reopened.events(stuck.key)) == 2


# ----------------------------------------------------------------------------------------------
# Where the ledger lives, and switching it off
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["off", "OFF", "0", "false", "none"])
def test_the_off_switch(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARASH_LEDGER", value)
    handle = submit_video(mock_video(), VideoGenerationRequest("a"))
    assert handle.wait().is_mock
    assert generate_video(mock_video(), VideoGenerationRequest("b"))
    assert get_ledger() is None
    assert ledger_path() is None
    assert not (Path(os.environ["TARASH_HOME"]) / "jobs.db").exists()
    with pytest.raises(LedgerError) as info:
        list_jobs()
    assert info.value.message == (
        "The job ledger is off (TARASH_LEDGER=off, set_ledger('off'), or its file cannot be "
        "written); no jobs are recorded"
    )


def test_set_ledger_closes_only_the_store_it_opened(tmp_path: Path) -> None:
    set_ledger(tmp_path / "a.db")
    generate_video(mock_video(), VideoGenerationRequest("a"))
    assert (tmp_path / "a.db-wal").exists()
    with SQLiteJobStore(tmp_path / "mine.db") as mine:
        set_ledger(mine)
        assert not (tmp_path / "a.db-wal").exists(), "the last connection to a.db was not closed"
        generate_video(mock_video(), VideoGenerationRequest("b"))
        set_ledger("off")
        assert (tmp_path / "mine.db-wal").exists(), "a store passed in was closed by set_ledger"
        assert [r.request["prompt"] for r in mine.records() if r.request] == ["b"]
    assert not (tmp_path / "mine.db-wal").exists()


def test_set_ledger_switches_files_and_off(tmp_path: Path) -> None:
    set_ledger(tmp_path / "a.db")
    generate_video(mock_video(), VideoGenerationRequest("a"))
    set_ledger("off")
    generate_video(mock_video(), VideoGenerationRequest("b"))
    assert get_ledger() is None
    set_ledger(str(tmp_path / "a.db"))
    assert [r.request["prompt"] for r in list_jobs() if r.request] == ["a"]
    set_ledger(None)
    assert store().path == Path(os.environ["TARASH_HOME"]) / "jobs.db"
    assert list_jobs() == []


def test_where_the_ledger_lives(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TARASH_LEDGER", str(tmp_path / "explicit" / "j.db"))
    assert ledger_path() == tmp_path / "explicit" / "j.db"
    generate_video(mock_video(), VideoGenerationRequest("a"))
    assert (tmp_path / "explicit" / "j.db").is_file()
    monkeypatch.delenv("TARASH_LEDGER")
    assert ledger_path() == Path(os.environ["TARASH_HOME"]) / "jobs.db"
    monkeypatch.delenv("TARASH_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert ledger_path() == tmp_path / "xdg" / "tarash" / "jobs.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ledger_path() == tmp_path / "home" / ".local" / "share" / "tarash" / "jobs.db"
    generate_video(mock_video(), VideoGenerationRequest("b"))
    assert only_record().request == to_dict(VideoGenerationRequest("b"))


@contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """Make ``directory`` unwritable for this process, even as root (immutable attribute)."""
    as_root = os.geteuid() == 0
    if as_root:
        chattr = shutil.which("chattr")
        assert chattr is not None, "root needs chattr to make a directory read-only"
        subprocess.run([chattr, "+i", str(directory)], check=True)
    else:
        directory.chmod(0o555)
    try:
        with pytest.raises(OSError):
            (directory / "probe").write_text("x")
        yield
    finally:
        if as_root:
            subprocess.run([shutil.which("chattr") or "chattr", "-i", str(directory)], check=True)
        else:
            directory.chmod(0o755)


@pytest.mark.parametrize("kind", ["read-only directory", "path under a file"])
def test_an_unwritable_data_dir_turns_the_ledger_off(
    kind: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tarash.ledger")
    if kind == "read-only directory":
        home = tmp_path / "ro"
        home.mkdir()
        context: Any = read_only(home)
    else:
        (tmp_path / "file").write_text("not a directory")
        home = tmp_path / "file" / "tarash"
        context = contextlib.nullcontext()
    monkeypatch.setenv("TARASH_HOME", str(home))
    with context:
        for prompt in ("a", "b"):
            assert generate_video(mock_video(), VideoGenerationRequest(prompt)).is_mock
        assert submit_video(mock_video(), VideoGenerationRequest("c")).wait().is_mock
        assert get_ledger() is None
    messages = [r.getMessage() for r in caplog.records if r.name == "tarash.ledger"]
    assert len(messages) == 1
    assert messages[0].startswith(f"Tarash job ledger is off: {home / 'jobs.db'} cannot be used (")
    assert messages[0].endswith(
        "Set TARASH_LEDGER to a writable file on a local disk, or TARASH_LEDGER=off to silence this."
    )
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "tarash.ledger")


def test_importing_the_package_stays_light() -> None:
    code = (
        "import sys, tarash.tarash_gateway as t; t.submit_video; t.resume; t.JobHandle; "
        "print(sorted(m for m in ('cattrs', 'sqlite3', 'psycopg') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ----------------------------------------------------------------------------------------------
# tarash jobs ...
# ----------------------------------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["jobs", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_list(capsys: pytest.CaptureFixture[str]) -> None:
    done = generate_video(mock_video(), VideoGenerationRequest("a"))
    pending = submit_video(mock_video(), VideoGenerationRequest("b"))
    first, second = list_jobs()
    code, out, err = cli(capsys, "list")
    assert (code, err) == (0, "")

    def row(r: JobRecord, state: str) -> str:
        return f"{r.key}  mock      mock   {state:<10}  {r.job_id}  ~0 USD  {r.created_at:%Y-%m-%d %H:%M:%S}"

    assert out == (
        f"{'KEY':<32}  PROVIDER  MODEL  STATE       {'JOB ID':<37}  COST    CREATED (UTC)\n"
        f"{row(first, 'completed')}\n{row(second, 'submitted*')}\n"
        "* not collected yet: `tarash jobs resume` collects it\n"
        "~ an estimate: what the price in effect gives for the job, not a provider's bill\n"
    )
    assert first.job_id == done.request_id
    assert second.key == pending.key
    code, out, _ = cli(capsys, "list", "--state", "completed", "--json")
    assert code == 0
    assert json.loads(out) == [to_dict(first)]


def test_cli_list_validates_the_state_and_says_when_none_is_in_it(capsys: pytest.CaptureFixture[str]) -> None:
    generate_video(mock_video(), VideoGenerationRequest("a"))
    code, out, err = cli(capsys, "list", "--state", "bogus")
    assert (code, out) == (2, "")
    # The list's quoting differs between Python versions; the states are in it either way.
    assert err.splitlines()[-1].startswith(
        "tarash jobs list: error: argument --state: invalid choice: 'bogus' (choose from "
    )
    assert "unfinished" in err
    assert cli(capsys, "list", "--state", "FAILED") == (
        0,
        "No jobs in state 'failed' (1 in the ledger: `tarash jobs list` shows them).\n",
        "",
    )
    code, out, _ = cli(capsys, "list", "--state", "Completed")
    assert (code, len(out.splitlines())) == (0, 3)  # the header, the job, the estimate's note


def test_cli_list_empty_and_ledger_off(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli(capsys, "list") == (0, f"No jobs in the ledger ({store()!r}).\n", "")
    monkeypatch.setenv("TARASH_LEDGER", "off")
    assert cli(capsys, "list") == (
        2,
        "",
        "tarash: error: the job ledger is off "
        "(TARASH_LEDGER=off, or its file cannot be written): "
        "no jobs are recorded\n",
    )


def test_cli_status(capsys: pytest.CaptureFixture[str]) -> None:
    response = generate_video(mock_video(), VideoGenerationRequest("a"))
    record = only_record()
    code, out, err = cli(capsys, "status", record.key)
    assert (code, err) == (0, "")
    history = [
        f"  {e.at:%Y-%m-%d %H:%M:%S}  {e.kind}" + (f" {e.state}" if e.state and e.state != e.kind else "")
        for e in store().events(record.key)
    ]
    assert out.splitlines() == [
        f"key:       {record.key}",
        "provider:  mock",
        "model:     mock",
        "modality:  video",
        "state:     completed",
        "collected: yes",
        f"job id:    {record.job_id}",
        f"created:   {record.created_at:%Y-%m-%d %H:%M:%S} UTC",
        "cost:      ~0 USD",
        f"output:    {response.video}",
        "history:",
        *history,
    ]
    assert len(history) == 6
    code, out, _ = cli(capsys, "status", record.job_id or "", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["record"] == to_dict(record)
    assert data["live"] is None
    assert [e["kind"] for e in data["events"]] == [k for k, _ in EVENTS_OF_A_GENERATION]
    assert cli(capsys, "status", "nope") == (
        2,
        "",
        f"tarash: error: no job 'nope' in the ledger ({store()!r})\n",
    )


def test_cli_status_asks_the_provider_for_unfinished_jobs(
    jobapi: JobServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handle = submit_video(jobapi_config(jobapi), VideoGenerationRequest("a"))
    code, out, _ = cli(capsys, "status", handle.key)
    assert code == 0
    assert "provider says: queued\n" in out
    assert "collected:     no\n" in out
    code, out, _ = cli(capsys, "status", handle.key, "--offline")
    assert code == 0
    assert "provider says" not in out
    assert jobapi.counts["status"] == 1


def test_cli_resume_and_cancel(jobapi: JobServer, capsys: pytest.CaptureFixture[str]) -> None:
    collect = submit_video(jobapi_config(jobapi), VideoGenerationRequest("a"))
    stop = submit_video(jobapi_config(jobapi), VideoGenerationRequest("b"))
    assert cli(capsys, "cancel", stop.key) == (
        0,
        f"Cancelled job job-2 ({stop.key}) at jobapi.\n",
        "",
    )
    assert cli(capsys, "cancel", stop.key) == (
        2,
        "",
        f"tarash: error: job {stop.key} is already finished (cancelled)\n",
    )
    assert cli(capsys, "resume") == (
        0,
        f"completed  {collect.key}  jobapi/j1  job job-1  -> {jobapi.url}/media/job-1.mp4\n1 completed\n",
        "",
    )
    assert cli(capsys, "resume") == (0, "Nothing to resume: every recorded job is collected.\n", "")
    assert cli(capsys, "resume", collect.key) == (
        0,
        f"Nothing to resume: job {collect.key} is already collected.\n",
        "",
    )
    assert dict(jobapi.counts) == {"submit": 2, "cancel": 1, "status": 5, "result": 1}


def test_cli_resume_reports_unknown_jobs_with_exit_7(capsys: pytest.CaptureFixture[str]) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    store().record_intent(
        "k-lost",
        provider="mock",
        model="mock",
        modality="video",
        config=None,
        request=None,
        owner=f"{socket.gethostname()}:{dead}:x",
        lease_seconds=600,
    )
    code, out, err = cli(capsys, "resume", "--json")
    assert (code, err) == (7, "")
    [outcome] = json.loads(out)
    assert (outcome["key"], outcome["state"], outcome["response"]) == ("k-lost", "unknown", None)
    assert outcome["error"]["type"] == "tarash.tarash_gateway.exceptions.UnknownSubmissionError"


def test_jobs_is_listed_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "jobs" in capsys.readouterr().out
    assert main(["jobs", "resume", "--help"]) == 0
    assert "Nothing is ever resubmitted." in capsys.readouterr().out
