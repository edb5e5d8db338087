"""Concurrency caps: the FIFO gate shared by threads and event loops, and their configuration.
End-to-end caps against a server: tarash-example-provider/tests/test_concurrency_caps.py."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import httpx
import pytest
from test_gateway import EchoPlugin, echo_config, mock_gateway

from tarash.tarash_gateway import Gateway, VideoGenerationRequest
from tarash.tarash_gateway._caps import ConcurrencyCaps, Gate, parse_caps
from tarash.tarash_gateway.exceptions import TimeoutError, ValidationError


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Yield to the loop until ``condition`` holds (AssertionError after ``seconds``)."""
    for _ in range(int(seconds / 0.001)):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never held")


def wait_for(condition: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_threads_get_slots_in_arrival_order() -> None:
    gate = Gate("p", 1)
    assert gate.acquire()
    order: list[int] = []

    def take(i: int) -> None:
        assert gate.acquire(5)
        order.append(i)
        gate.release()

    threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
    for i, thread in enumerate(threads):
        thread.start()
        wait_for(lambda i=i: gate.waiting == i + 1)
    gate.release()
    for thread in threads:
        thread.join(5)
    assert order == list(range(8))
    assert (gate.held, gate.waiting) == (0, 0)


def test_a_late_caller_never_overtakes_the_queue() -> None:
    """A slot freed goes to the queue's head even when a newcomer asks at that moment."""
    gate = Gate("p", 1)
    assert gate.acquire()
    got: list[str] = []
    waiter = threading.Thread(target=lambda: got.append("queued") if gate.acquire(5) else None)
    waiter.start()
    wait_for(lambda: gate.waiting == 1)
    gate.release()
    assert gate.acquire(0) is False  # the slot is the queued caller's
    waiter.join(5)
    assert got == ["queued"] and gate.held == 1


def test_sync_timeout_leaves_the_queue() -> None:
    gate = Gate("p", 1)
    assert gate.acquire()
    started = time.monotonic()
    assert gate.acquire(0.05) is False
    assert time.monotonic() - started >= 0.05
    assert (gate.held, gate.waiting) == (1, 0)


async def test_tasks_and_threads_share_one_queue() -> None:
    gate = Gate("p", 1)
    assert await gate.acquire_async()
    order: list[str] = []

    async def task(name: str) -> None:
        assert await gate.acquire_async(5)
        order.append(name)
        gate.release()

    def thread(name: str) -> None:
        assert gate.acquire(5)
        order.append(name)
        gate.release()

    tasks, threads = [], []
    for i in range(6):
        if i % 2:
            threads.append(threading.Thread(target=thread, args=(f"thread{i}",)))
            threads[-1].start()
        else:
            tasks.append(asyncio.create_task(task(f"task{i}")))
        await until(lambda i=i: gate.waiting >= i + 1)
    gate.release()
    await asyncio.gather(*tasks)
    await asyncio.to_thread(lambda: [t.join(5) for t in threads])
    assert order == ["task0", "thread1", "task2", "thread3", "task4", "thread5"]


async def test_a_cancelled_waiter_leaves_and_its_turn_passes_on() -> None:
    gate = Gate("p", 1)
    assert await gate.acquire_async()
    first = asyncio.create_task(gate.acquire_async())
    second = asyncio.create_task(gate.acquire_async())
    await until(lambda: gate.waiting >= 2)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert gate.waiting == 1
    gate.release()
    assert await second is True
    assert (gate.held, gate.waiting) == (1, 0)


async def test_async_timeout_returns_false_and_frees_nothing() -> None:
    gate = Gate("p", 2)
    assert await gate.acquire_async() and await gate.acquire_async()
    assert await gate.acquire_async(0.02) is False
    assert (gate.held, gate.waiting) == (2, 0)


def test_raising_a_limit_lets_waiters_in_and_none_lifts_the_cap() -> None:
    caps = ConcurrencyCaps({"p": 1})
    gate = caps.get("p")
    assert gate is not None and gate.acquire()
    done = threading.Event()
    threading.Thread(target=lambda: gate.acquire(5) and done.set()).start()
    wait_for(lambda: gate.waiting == 1)
    caps.set("p", None)
    assert done.wait(5)
    assert caps.get("p") is None and caps.gates("p", "m") == []


def test_model_gate_comes_before_the_provider_gate() -> None:
    caps = ConcurrencyCaps({"fal": 3, "fal/fal-ai/veo3": 1})
    assert [g.name for g in caps.gates("fal", "fal-ai/veo3")] == ["fal/fal-ai/veo3", "fal"]
    assert [g.name for g in caps.gates("fal", "fal-ai/flux/dev")] == ["fal"]
    assert caps.as_dict() == {"fal": 3, "fal/fal-ai/veo3": 1}


def test_parse_caps() -> None:
    assert parse_caps(" fal=3, fal/fal-ai/veo3 = 1 ,") == {"fal": 3, "fal/fal-ai/veo3": 1}
    assert parse_caps("") == {}
    for bad in ("fal", "fal=0", "fal=x", "=3", "fal=-1"):
        with pytest.raises(ValidationError) as info:
            parse_caps(bad)
        assert info.value.field == "TARASH_CONCURRENCY"


def test_gateway_reads_the_environment_and_set_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARASH_CONCURRENCY", "mock=2")
    gateway = Gateway(ledger="off", discover=False)
    assert gateway.caps.as_dict() == {"mock": 2}
    gateway.set_concurrency("mock", 4, model="m")
    assert gateway.caps.as_dict() == {"mock": 2, "mock/m": 4}
    assert Gateway(ledger="off", discover=False, concurrency={}).caps.as_dict() == {}
    with pytest.raises(ValidationError):
        gateway.set_concurrency("mock", 0)


def test_a_caller_whose_deadline_passes_in_the_queue_sends_nothing() -> None:
    log: list[httpx.Request] = []
    gateway = mock_gateway(log, ledger="off", concurrency={"echo": 1})
    gateway.register_plugin(EchoPlugin(), "echo")
    gate = gateway.caps.get("echo")
    assert gate is not None and gate.acquire()  # the only slot is taken
    with pytest.raises(TimeoutError) as info:
        gateway.generate_video(echo_config(api_key="k", timeout=0.1), VideoGenerationRequest(prompt="p"))
    assert "still waiting for a slot of the concurrency cap 'echo'" in str(info.value)
    assert info.value.phase == "validate"
    assert log == [] and (gate.held, gate.waiting) == (1, 0)
    gate.release()
    gateway.generate_video(echo_config(api_key="k"), VideoGenerationRequest(prompt="p"))
    assert len(log) == 1 and gate.held == 0


def test_an_impossible_request_is_refused_without_waiting_for_a_slot() -> None:
    log: list[httpx.Request] = []
    gateway = mock_gateway(log, ledger="off", concurrency={"echo": 1})
    gateway.register_plugin(EchoPlugin(), "echo")
    gate = gateway.caps.get("echo")
    assert gate is not None and gate.acquire()
    started = time.monotonic()
    with pytest.raises(ValidationError) as info:
        gateway.generate_video(echo_config(api_key="k", timeout=30), VideoGenerationRequest(prompt="  "))
    assert info.value.field == "prompt"
    assert time.monotonic() - started < 1 and log == []
