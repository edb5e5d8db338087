"""``resume()`` reconciles a submission whose answer was lost, through the ``reconcile`` hook.

The plugin under test is ``jobapi``'s, plus a ``reconcile`` hook that looks the submission up by
the client-chosen id its submit carried (the idempotency key, echoed by ``GET /jobs?key=``): the
most exact of the patterns the hook documents. Counts at the server are exact; nothing is ever
submitted by ``resume()``.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from jobapi import JobServer, installed, make_plugin

from tarash.tarash_gateway import (
    HTTPError,
    UnknownSubmissionError,
    ValidationError,
    VideoGenerationConfig,
    VideoGenerationRequest,
    generate_video,
    get_job,
    list_jobs,
    resume,
    resume_async,
    set_ledger,
)
from tarash.tarash_gateway.cli import main
from tarash.tarash_gateway.jobs import get_ledger
from tarash.tarash_gateway.plugin import Reconciliation, Request, SubmittedJob, hookimpl

KEY = "jobs-env-key-0001"
APIS = ("sync", "async")


def keyed_lookup(verdict_when_absent: str = "not_found") -> Any:
    """jobapi's plugin with a ``reconcile`` hook answering from ``GET /jobs?key=``."""
    plugin = make_plugin("jobs")
    spec = plugin.register_providers()[0]

    @hookimpl
    def register_providers() -> list[Any]:
        return [attrs.evolve(spec, api_key_env="JOBS_KEY")]

    @hookimpl
    def reconcile(config: Any, intent: Any, context: Any) -> Any:
        assert context.idempotency_key == intent.key
        ids = (yield Request(method="GET", url="/jobs", params={"key": intent.key})).json()["ids"]
        if len(ids) == 1:
            return Reconciliation(verdict="found", job=SubmittedJob(job_id=ids[0]), detail="echoed key")
        if not ids:
            return Reconciliation(verdict=verdict_when_absent, detail="no job carries the key")
        return Reconciliation(verdict="cannot_tell", detail="several jobs carry the key")

    plugin.register_providers = register_providers
    plugin.reconcile = reconcile
    return plugin


@pytest.fixture(autouse=True)
def _ledger(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("TARASH_LEDGER", raising=False)
    monkeypatch.setenv("JOBS_KEY", KEY)
    set_ledger(None)
    yield
    set_ledger(None)


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest) -> str:
    """The default SQLite ledger, or a PostgreSQL one (the fleet's)."""
    if request.param == "postgres":
        set_ledger(request.getfixturevalue("pg_url"))
    return str(request.param)


def config(server: JobServer) -> VideoGenerationConfig:
    return VideoGenerationConfig(
        provider="jobs", model="m1", base_url=server.url, poll_interval=0.01, timeout=10
    )


def lose_the_submit(server: JobServer, **fault: Any) -> str:
    server.inject("submit", **fault)
    with pytest.raises(UnknownSubmissionError):
        generate_video(config(server), VideoGenerationRequest("a cat"))
    [record] = list_jobs()
    assert (record.state, record.finished, record.job_id) == ("unknown", True, None)
    return record.key


def run_resume(api: str, key: str | None = None) -> Any:
    return resume(key) if api == "sync" else asyncio.run(resume_async(key))


@pytest.mark.parametrize("api", APIS)
def test_a_lost_submit_found_by_its_key_is_collected_with_no_new_submit(
    api: str, ledger: str, job_server: JobServer
) -> None:
    with installed(keyed_lookup(), "jobs-plugin"):
        key = lose_the_submit(job_server, drop=True)
        assert dict(job_server.counts) == {"submit": 1}

        [outcome] = run_resume(api)

        assert (outcome.key, outcome.state, outcome.job_id) == (key, "completed", "job-1")
        assert outcome.response is not None and outcome.response.video == f"{job_server.url}/media/job-1.mp4"
        assert job_server.counts["submit"] == 1 and job_server.counts["lookup"] == 1
        assert job_server.auth_headers[1] == f"Bearer {KEY}"
        record = get_job(key)
        assert record is not None and (record.state, record.finished, record.job_id) == (
            "completed",
            True,
            "job-1",
        )
        kinds = [event.kind for event in get_ledger().events(key)]  # type: ignore[union-attr]
        assert kinds[:3] == ["intent", "finished", "submitted"] and kinds[-1] == "finished"
        assert run_resume(api) == []
        assert job_server.counts["lookup"] == 1 and job_server.counts["submit"] == 1


@pytest.mark.parametrize("api", APIS)
def test_a_submit_the_provider_never_received_is_recorded_not_found(
    api: str, ledger: str, job_server: JobServer
) -> None:
    with installed(keyed_lookup(), "jobs-plugin"):
        key = lose_the_submit(job_server, lost=True)
        assert job_server.jobs == {}

        [outcome] = run_resume(api)

        assert (outcome.key, outcome.state, outcome.job_id, outcome.response) == (
            key,
            "not_found",
            None,
            None,
        )
        assert outcome.error is not None
        assert outcome.error.message == (
            "The submit to jobs whose answer was lost created no job: no job carries the key. Nothing "
            f"was billed; submitting again does not pay twice. Ledger key: {key}."
        )
        record = get_job(key)
        assert record is not None and (record.state, record.finished) == ("not_found", True)
        assert record.error is not None and record.error["message"] == str(outcome.error)
        assert run_resume(api) == []
        assert dict(job_server.counts) == {"submit": 1, "lookup": 1}


def test_cannot_tell_stays_unknown_and_the_next_resume_asks_again(job_server: JobServer) -> None:
    with installed(keyed_lookup(verdict_when_absent="cannot_tell"), "jobs-plugin"):
        key = lose_the_submit(job_server, lost=True)

        [first] = resume()
        [second] = resume(key)

    assert (first.state, second.state) == ("unknown", "unknown")
    assert isinstance(first.error, UnknownSubmissionError)
    assert first.error.message.endswith(
        "jobs could not tell whether it created a job (no job carries the key); a later resume() asks again."
    )
    record = get_job(key)
    assert record is not None and (record.state, record.finished) == ("unknown", True)
    assert dict(job_server.counts) == {"submit": 1, "lookup": 2}


def test_a_failing_lookup_cannot_tell_and_keeps_its_cause(job_server: JobServer) -> None:
    with installed(keyed_lookup(), "jobs-plugin"):
        key = lose_the_submit(job_server, drop=True)
        job_server.inject("lookup", status=503)

        [outcome] = resume()

    assert (outcome.key, outcome.state) == (key, "unknown")
    assert outcome.error is not None and "the lookup failed" in outcome.error.message
    assert isinstance(outcome.error.__cause__, HTTPError) and outcome.error.__cause__.status_code == 503
    assert dict(job_server.counts) == {"submit": 1, "lookup": 1}


def test_without_the_hook_an_unknown_submission_is_not_revisited(job_server: JobServer) -> None:
    plain = make_plugin("jobs")
    spec = plain.register_providers()[0]
    plain.register_providers = hookimpl(lambda: [attrs.evolve(spec, api_key_env="JOBS_KEY")])
    with installed(plain, "jobs-plugin"):
        key = lose_the_submit(job_server, drop=True)
        assert resume() == [] and resume(key) == []
    assert dict(job_server.counts) == {"submit": 1}


def test_the_submit_of_a_dead_process_is_reconciled_too(job_server: JobServer) -> None:
    """A process killed mid-submit leaves ``submitting``; resume() looks it up before giving up."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    store = get_ledger()
    assert store is not None
    store.record_intent(
        "k-crashed",
        provider="jobs",
        model="m1",
        modality="video",
        config={"provider": "jobs", "model": "m1", "base_url": job_server.url, "poll_interval": 0.01},
        request={"prompt": "a cat"},
        owner=f"{socket.gethostname()}:{dead}:x",
        lease_seconds=600,
    )
    with installed(keyed_lookup(), "jobs-plugin"):
        job_server.jobs["job-7"] = {"polls": 0, "state": "queued", "payload": {"key": "k-crashed"}}

        [outcome] = resume()

    assert (outcome.key, outcome.state, outcome.job_id) == ("k-crashed", "completed", "job-7")
    assert job_server.counts["submit"] == 0 and job_server.counts["lookup"] == 1


def test_a_found_verdict_needs_its_job() -> None:
    with pytest.raises(ValidationError) as raised:
        Reconciliation(verdict="found")
    assert raised.value.field == "job"
    with pytest.raises(ValidationError):
        Reconciliation(verdict="not_found", job=SubmittedJob(job_id="j"))


def test_the_cli_reports_a_submission_that_was_never_created(
    job_server: JobServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with installed(keyed_lookup(), "jobs-plugin"):
        key = lose_the_submit(job_server, lost=True)
        capsys.readouterr()
        code = main(["jobs", "resume"])
    out = capsys.readouterr().out.splitlines()
    assert code == 7
    assert out[0].startswith(f"not_found  {key}  jobs/m1: The submit to jobs whose answer was lost")
    assert out[1] == "1 not_found"
    with installed(keyed_lookup(), "jobs-plugin"):
        assert main(["jobs", "list", "--state", "not_found"]) == 0
    assert key in capsys.readouterr().out
