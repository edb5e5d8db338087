"""Durable fal jobs against the fake fal server: crash, resume, never pay twice.

A child Python process generates three videos one after the other (the key in ``FAL_KEY``, one
shared ledger file) and is killed with SIGKILL at a chosen point of a chosen job: right after the
submit was answered, in the middle of polling, or after the job completed but before its result was
read. Each kill is made exact by stalling the next request of the right kind on the server and
killing the child once that request has arrived. A fresh process then resumes; it must obtain every
result while the server's submit counter stays equal to the number of jobs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tarash.tarash_gateway import JobHandle, set_ledger, submit_video
from tarash.tarash_gateway._ledger import JobRecord, SQLiteJobStore
from tarash.tarash_gateway.exceptions import GenerationFailedError
from tarash.tarash_gateway.models import VideoGenerationRequest
from tarash_fal.testing import FakeFalServer

JOBS_PER_CHILD = 3
ROUNDS = 20
POINTS = ("after_submit", "mid_poll", "after_completion")
STALL = 60.0

CHILD_GENERATE = """
import os
from tarash.tarash_gateway import VideoGenerationConfig, VideoGenerationRequest, generate_video
config = VideoGenerationConfig(
    model="fal-ai/veo3", provider="fal", base_url=os.environ["FAKE_FAL_URL"], poll_interval=0.01,
    timeout=60, provider_config={"ca_bundle": os.environ["FAKE_FAL_CA"]},
)
for index in range(int(os.environ["JOBS"])):
    generate_video(config, VideoGenerationRequest(prompt=f"video {index}"))
"""
CHILD_RESUME = """
import json
from tarash.tarash_gateway import resume
print(json.dumps([{"key": o.key, "state": o.state, "job_id": o.job_id,
                   "video": o.response.video if o.response is not None else None,
                   "error": str(o.error) if o.error is not None else None} for o in resume()]))
"""
CHILD_WAIT = """
import json, sys
from tarash.tarash_gateway import JobHandle
response = JobHandle.from_json(sys.stdin.read()).wait()
print(json.dumps({"video": response.video, "request_id": response.request_id}))
"""


@pytest.fixture
def server() -> Iterator[FakeFalServer]:
    from tarash.tarash_gateway import default_gateway

    with FakeFalServer(queue_polls=2, processing_polls=2, latency=0.03) as fake:
        yield fake
    default_gateway().transport.close()


@pytest.fixture(autouse=True)
def _ledger_off_unless_chosen() -> Iterator[None]:
    set_ledger("off")
    yield
    set_ledger(None)


def _env(server: FakeFalServer, ledger: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAL_", "TARASH_"))}
    env.update(
        FAL_KEY=server.api_key,
        FAKE_FAL_URL=server.base_url,
        FAKE_FAL_CA=server.ca_path,
        TARASH_LEDGER=str(ledger),
        JOBS=str(JOBS_PER_CHILD),
        **extra,
    )
    return env


def _python(code: str, env: dict[str, str], stdin: str | None = None) -> Any:
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        input=stdin,
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll ``condition`` every 2 ms until it holds (fails after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


def _rows(store: SQLiteJobStore) -> list[JobRecord]:
    return store.records() if store.path.exists() else []


def _record(path: Path, key: str) -> JobRecord | None:
    with SQLiteJobStore(path) as store:
        return store.get(key)


def _crash(server: FakeFalServer, store: SQLiteJobStore, env: dict[str, str], point: str, job: int) -> None:
    """Run the generating child and SIGKILL it at ``point`` of its ``job``-th job (1-based).

    The next request of the right kind is stalled on the server before the child can send it, and
    the child is killed once that request has arrived, so the kill lands exactly there.
    """

    def state_of(number: int) -> str | None:
        rows = _rows(store)
        return rows[number - 1].state if len(rows) >= number else None

    kind = "result" if point == "after_completion" else "status"
    before = server.counts[kind]
    if point == "after_submit" and job == 1:
        server.inject(kind, "stall", delay=STALL)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_GENERATE],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if point == "after_submit" and job > 1:
            _wait_for(lambda: state_of(job - 1) == "completed", f"job {job - 1} to complete")
            before = server.counts[kind]
            server.inject(kind, "stall", delay=STALL)
        elif point != "after_submit":
            _wait_for(lambda: state_of(job) == "processing", f"job {job} to process")
            before = server.counts[kind]
            server.inject(kind, "stall", delay=STALL)
        _wait_for(lambda: server.counts[kind] > before, f"the stalled {kind} request")
        if point == "after_completion":
            # Status updates are queued, not waited for: the "completed" one may reach the ledger
            # just after the result request leaves. The child is stuck in that (stalled) request
            # meanwhile, so the kill still lands mid-fetch.
            _wait_for(lambda: state_of(job) == "completed", f"job {job}'s completed status")
    finally:
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err


def _expected_state(point: str) -> str:
    return {"after_submit": "submitted", "mid_poll": "processing", "after_completion": "completed"}[point]


def test_killed_twenty_times_every_result_is_collected_and_nothing_paid_twice(
    server: FakeFalServer,
    tmp_path: Path,
) -> None:
    hits: dict[str, int] = dict.fromkeys(POINTS, 0)
    for index in range(ROUNDS):
        point, job = POINTS[index % 3], index // 3 % JOBS_PER_CHILD + 1
        ledger = tmp_path / f"round-{index}.db"
        with contextlib.closing(SQLiteJobStore(ledger)) as store:
            env = _env(server, ledger)
            counts_before, jobs_before = server.counts, set(server.jobs)

            _crash(server, store, env, point, job)

            rows = _rows(store)
            assert len(rows) == job, (index, point, [r.state for r in rows])
            done, killed = rows[:-1], rows[-1]
            assert all(r.finished and r.state == "completed" for r in done), (index, point)
            assert (killed.state, killed.finished) == (_expected_state(point), False), (index, point)
            assert killed.job_id is not None
            hits[point] += 1
            submitted = server.counts["submit"] - counts_before["submit"]
            assert submitted == job == len(set(server.jobs) - jobs_before)

            outcomes = _python(CHILD_RESUME, env)
            assert [(o["key"], o["state"], o["job_id"]) for o in outcomes] == [
                (killed.key, "completed", killed.job_id)
            ], (index, point, outcomes)
            assert outcomes[0]["video"] is not None
            assert outcomes[0]["error"] is None

            after = server.counts
            assert after["submit"] - counts_before["submit"] == job, "resume must never submit"
            stalled = 1 if point == "after_completion" else 0
            assert after["result"] - counts_before["result"] == job + stalled
            final = _rows(store)
            assert [(r.key, r.state, r.finished) for r in final] == [(r.key, "completed", True) for r in rows]
            videos = [r.result["video"] for r in final if r.result is not None]
            assert len(set(videos)) == job
            assert outcomes[0]["video"] == videos[-1]
            assert all(server.jobs[r.job_id]["completed"] for r in final if r.job_id)
            assert _python(CHILD_RESUME, env) == []
    assert hits == {"after_submit": 7, "mid_poll": 7, "after_completion": 6}
    assert server.counts["cancel"] == 0


def test_a_handle_serialised_in_one_process_is_collected_in_another(
    server: FakeFalServer,
    tmp_path: Path,
) -> None:
    set_ledger(tmp_path / "jobs.db")
    handle = submit_video(server.video_config(), VideoGenerationRequest(prompt="a lighthouse"))
    text = handle.to_json()
    assert server.api_key not in text
    assert json.loads(text)["job"]["job_id"] == handle.job_id
    child = _python(CHILD_WAIT, _env(server, tmp_path / "jobs.db"), stdin=text)
    assert child["request_id"] == handle.job_id
    assert child["video"].startswith("https://")
    assert server.counts == {"submit": 1, "status": 5, "result": 1, "cancel": 0}
    record = _record(tmp_path / "jobs.db", handle.key)
    assert record is not None
    assert (record.state, record.finished) == ("completed", True)
    assert record.result is not None
    assert record.result["video"] == child["video"]


def test_cancel_reaches_fal_once(server: FakeFalServer, tmp_path: Path) -> None:
    set_ledger(tmp_path / "jobs.db")
    handle = submit_video(server.video_config(), VideoGenerationRequest(prompt="a cat"))
    loaded = JobHandle.from_json(handle.to_json(), api_key=server.api_key)
    assert loaded.cancel() is True
    assert server.counts["cancel"] == 1
    assert server.jobs[handle.job_id]["cancelled"] is True
    record = _record(tmp_path / "jobs.db", handle.job_id)
    assert record is not None
    assert (record.state, record.finished) == ("cancelled", True)
    assert record.cancel == {"reason": "cancelled by the caller", "outcome": "cancelled"}
    with pytest.raises(GenerationFailedError) as info:
        loaded.wait()
    assert "request_cancelled" in info.value.message
    record = _record(tmp_path / "jobs.db", handle.key)
    assert record is not None
    assert record.state == "cancelled"
    assert server.counts == {"submit": 1, "status": 1, "result": 0, "cancel": 1}
