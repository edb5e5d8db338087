"""The async job API (submit, a handle's status, wait, result and cancel, resume) makes no
database call on the event loop's thread: its ledger reads, claims and releases are effects the
async driver waits for off the loop, as its writes are. On the default SQLite ledger and on a
PostgreSQL one (the session's real cluster, tests/pg.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from jobapi import JobServer, installed, running
from test_reconcile import KEY, config, keyed_lookup, lose_the_submit

from tarash.tarash_gateway import (
    VideoGenerationRequest,
    get_job,
    resume_async,
    set_ledger,
    submit_video,
    submit_video_async,
)
from tarash.tarash_gateway._ledger import SQLiteJobStore


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh default SQLite ledger, or a PostgreSQL one; the ``jobs`` provider's key in the
    environment."""
    monkeypatch.delenv("TARASH_LEDGER", raising=False)
    monkeypatch.setenv("JOBS_KEY", KEY)
    set_ledger(request.getfixturevalue("pg_url") if request.param == "postgres" else None)
    yield str(request.param)
    set_ledger(None)


@pytest.fixture
def database_threads(ledger: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The thread of each time the store opens its way to the database (SQLite's connection,
    PostgreSQL's pool of blocking connections)."""
    seen: list[int] = []

    def spy(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: Any) -> Any:
            seen.append(threading.get_ident())
            return original(self)

        return call

    if ledger == "postgres":
        from tarash.tarash_gateway._ledger.postgres import PostgresJobStore

        monkeypatch.setattr(PostgresJobStore, "_connections", spy(PostgresJobStore._connections))
    else:
        monkeypatch.setattr(SQLiteJobStore, "_connection", spy(SQLiteJobStore._connection))
    return seen


def test_the_async_job_api_reads_and_claims_off_the_loops_thread(
    database_threads: list[int],
    job_server: JobServer,
) -> None:
    with installed(keyed_lookup(), "jobs-plugin"):
        lost = lose_the_submit(job_server, drop=True)
        left = submit_video(config(job_server), VideoGenerationRequest("left for resume"))
        database_threads.clear()

        async def main() -> tuple[int, list[tuple[str, str]]]:
            handle = await submit_video_async(config(job_server), VideoGenerationRequest("waited"))
            assert (await handle.status_async()).state == "queued"
            waited = await handle.wait_async()
            assert (await handle.result_async()).video == waited.video
            cancelled = await submit_video_async(config(job_server), VideoGenerationRequest("cancelled"))
            assert await cancelled.cancel_async() is True
            outcomes = await resume_async()
            return threading.get_ident(), sorted((o.key, o.state) for o in outcomes)

        loop_thread, resumed = asyncio.run(main())

    assert resumed == sorted([(lost, "completed"), (left.key, "completed")])
    assert database_threads, "the spy saw no database call"
    assert loop_thread not in database_threads
    assert job_server.counts["submit"] == 4 and job_server.counts["lookup"] == 1
    assert job_server.cancelled == ["job-4"]
    states = {key: get_job(key) for key in (lost, left.key)}
    assert {key: (r.state, r.finished, r.owner) for key, r in states.items() if r} == {
        lost: ("completed", True, None),
        left.key: ("completed", True, None),
    }


def test_a_cancelled_async_wait_releases_its_claim_and_leaves_the_job_running(
    database_threads: list[int],
) -> None:
    """Cancelling the task of a handle's ``wait_async`` releases the job's claim (an effect waited
    for off the loop, though the task was cancelled) and neither cancels nor finishes the job: it
    can be waited for again, here or by another process."""
    with running(queue_polls=10_000) as server, installed(keyed_lookup(), "jobs-plugin"):
        handle = submit_video(config(server), VideoGenerationRequest("cancelled wait"))
        database_threads.clear()

        async def main() -> int:
            waiting = asyncio.create_task(handle.wait_async())
            for _ in range(500):  # until it has polled a few times (5 s at most)
                if server.counts["status"] >= 3:
                    break
                await asyncio.sleep(0.01)
            claimed = await asyncio.to_thread(get_job, handle.key)
            assert claimed is not None and claimed.owner is not None
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            return threading.get_ident()

        loop_thread = asyncio.run(main())
        assert loop_thread not in database_threads
        record = get_job(handle.key)
        assert record is not None and (record.state, record.finished, record.owner) == ("queued", False, None)
        assert server.cancelled == [] and server.counts["submit"] == 1
