"""Concurrency caps (core's ``_caps``) against the reference server, which counts the jobs open
at once from its own side: submitted, and neither collected, cancelled nor reported failed."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tarash.tarash_gateway import Gateway
from tarash.tarash_gateway.models import (
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
)
from tarash_example_provider.server import ExampleServer

KEY = "example-test-key-0001"
CALLERS = 20
CAP = 3


@pytest.fixture
def server() -> Iterator[ExampleServer]:
    """A server of its own, so its counters see this test's jobs only; 20 workers, so the cap
    (not the server) is what limits jobs in flight."""
    with ExampleServer(port=0, queue_seconds=0.05, work_seconds=0.15, workers=CALLERS) as fresh:
        yield fresh


def config(server: ExampleServer, fault: str = "") -> VideoGenerationConfig:
    return VideoGenerationConfig(
        provider="example",
        model="example-video-1",
        api_key=KEY,
        base_url=server.url + fault,
        poll_interval=0.05,
        timeout=60,
    )


def submitted_prompts(server: ExampleServer) -> list[str]:
    """The prompts in the order the server received their submits."""
    with server.service.lock:
        return [job.input["prompt"] for job in server.service.jobs.values()]


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


def assert_fifo(order: list[str], cap: int) -> None:
    """Callers queued in index order got their slots in that order. Slots granted together
    race to the server (a few microseconds apart), so a submit may pass another one granted
    with it, never one granted a whole cap earlier or later."""
    assert sorted(order) == [f"p{i:02d}" for i in range(len(order))]
    for position, prompt in enumerate(order):
        assert abs(int(prompt[1:]) - position) < cap, order


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Yield to the loop until ``condition`` holds (AssertionError after ``seconds``)."""
    for _ in range(int(seconds / 0.001)):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never held")


def test_cap_of_3_with_20_async_callers(server: ExampleServer) -> None:
    gateway = Gateway(ledger="off", concurrency={"example": CAP})
    gate = gateway.caps.get("example")
    assert gate is not None

    async def main() -> list[VideoGenerationResponse]:
        tasks = []
        for i in range(CALLERS):
            call = gateway.generate_video_async(config(server), VideoGenerationRequest(prompt=f"p{i:02d}"))
            tasks.append(asyncio.create_task(call))
            # caller i is in (or queued) before caller i + 1 comes
            await until(lambda i=i: gate.held + gate.waiting >= i + 1)
        return await asyncio.gather(*tasks)

    responses = asyncio.run(main())
    gateway.close()

    assert len(responses) == CALLERS
    assert all(isinstance(r, VideoGenerationResponse) and r.video for r in responses)
    assert server.service.max_open_jobs == CAP
    assert server.service.requests["submit"] == CALLERS
    assert server.service.requests["result"] == CALLERS
    assert server.service.open_jobs == set()
    assert_fifo(submitted_prompts(server), CAP)
    assert (gate.held, gate.waiting) == (0, 0)


def test_cap_of_3_with_20_sync_callers_in_threads(server: ExampleServer) -> None:
    gateway = Gateway(ledger="off", concurrency={"example": CAP})
    gate = gateway.caps.get("example")
    assert gate is not None
    responses: dict[int, VideoGenerationResponse] = {}
    errors: list[BaseException] = []

    def call(i: int) -> None:
        try:
            responses[i] = gateway.generate_video(config(server), VideoGenerationRequest(prompt=f"p{i:02d}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(CALLERS)]
    for i, thread in enumerate(threads):
        thread.start()
        wait_until(lambda i=i: gate.held + gate.waiting >= i + 1, f"caller {i} to queue")
    for thread in threads:
        thread.join(60)
    gateway.close()

    assert errors == []
    assert sorted(responses) == list(range(CALLERS))
    assert server.service.max_open_jobs == CAP
    assert server.service.requests["submit"] == CALLERS
    assert server.service.requests["result"] == CALLERS
    assert_fifo(submitted_prompts(server), CAP)
    assert (gate.held, gate.waiting) == (0, 0)


def test_cap_of_1_serves_sync_and_async_callers_in_arrival_order(server: ExampleServer) -> None:
    """One queue for threads and tasks alike: with one slot, the server sees the submits in
    exactly the order the callers arrived, whichever kind they are."""
    gateway = Gateway(ledger="off", concurrency={"example": 1})
    gate = gateway.caps.get("example")
    assert gate is not None
    request = VideoGenerationRequest
    threads: list[threading.Thread] = []

    async def main() -> None:
        tasks = []
        for i in range(6):
            if i % 2:
                thread = threading.Thread(
                    target=gateway.generate_video, args=(config(server), request(prompt=f"p{i:02d}"))
                )
                thread.start()
                threads.append(thread)
            else:
                call = gateway.generate_video_async(config(server), request(prompt=f"p{i:02d}"))
                tasks.append(asyncio.create_task(call))
            await until(lambda i=i: gate.held + gate.waiting >= i + 1)
        await asyncio.gather(*tasks)
        await asyncio.to_thread(lambda: [thread.join(30) for thread in threads])

    asyncio.run(main())
    gateway.close()

    assert submitted_prompts(server) == [f"p{i:02d}" for i in range(6)]
    assert server.service.max_open_jobs == 1
    assert server.service.requests["result"] == 6


def test_a_full_cap_never_delays_a_cancel(server: ExampleServer) -> None:
    """Cap 1 held by a job that never ends, a second caller queued behind it: cancelling the
    first caller's task cancels its job at once (the cancel takes no slot), and only then does
    the queued caller submit. A queued caller cancelled leaves without sending anything."""
    gateway = Gateway(ledger="off", concurrency={"example": 1})
    gate = gateway.caps.get("example")
    assert gate is not None

    async def main() -> tuple[float, VideoGenerationResponse]:
        slow = asyncio.create_task(
            gateway.generate_video_async(
                config(server, "/_faults/slow"), VideoGenerationRequest(prompt="slow")
            )
        )
        await until(
            lambda: not (server.service.requests["status"] < 1)
        )  # the slow job is submitted and polled
        queued = asyncio.create_task(
            gateway.generate_video_async(config(server), VideoGenerationRequest(prompt="queued"))
        )
        dropped = asyncio.create_task(
            gateway.generate_video_async(config(server), VideoGenerationRequest(prompt="dropped"))
        )
        await until(lambda: gate.waiting >= 2)
        dropped.cancel()
        with pytest.raises(asyncio.CancelledError):
            await dropped
        assert gate.waiting == 1
        started = time.monotonic()
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        cancelled_in = time.monotonic() - started
        return cancelled_in, await queued

    cancelled_in, response = asyncio.run(main())
    gateway.close()

    assert cancelled_in < 2.0
    assert server.service.requests["cancel"] == 1
    assert submitted_prompts(server) == ["slow", "queued"]
    slow_job, queued_job = server.service.jobs.values()
    assert slow_job.cancelled_at is not None and slow_job.cancelled_at < queued_job.created
    assert response.video
    assert server.service.max_open_jobs == 1
    assert (gate.held, gate.waiting) == (0, 0)
