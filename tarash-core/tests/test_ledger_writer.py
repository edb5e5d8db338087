"""Ledger writes run in order and off the event loop (``_ledger.writer``), and the intent is still
recorded before the submit is sent (failing closed)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from test_gateway import EchoPlugin, echo_config, mock_gateway

from tarash.tarash_gateway import Gateway, VideoGenerationRequest
from tarash.tarash_gateway import _runtime as rt
from tarash.tarash_gateway._ledger import SQLiteJobStore
from tarash.tarash_gateway._ledger.writer import Writer
from tarash.tarash_gateway._transport import Transport, prepare
from tarash.tarash_gateway._wire import Request
from tarash.tarash_gateway.exceptions import LedgerError

WRITE_SECONDS = 0.3


def test_a_sync_write_runs_after_the_writes_queued_before_it() -> None:
    writer = Writer()
    done: list[str] = []
    for name in ("a", "b", "c"):
        writer.queue(lambda name=name: (time.sleep(0.01), done.append(name)))
    assert writer.run(lambda: done.append("mine") or threading.current_thread().name) == "MainThread"
    assert done == ["a", "b", "c", "mine"]


async def test_an_async_write_runs_in_the_writers_thread_in_order() -> None:
    writer = Writer()
    done: list[str] = []
    writer.queue(lambda: (time.sleep(0.05), done.append("queued")))
    future = writer.submit_from_loop(lambda: done.append("awaited") or threading.current_thread().name)
    assert await future == "tarash-ledger"
    assert done == ["queued", "awaited"]
    with pytest.raises(ZeroDivisionError):
        await writer.submit_from_loop(lambda: 1 / 0)


async def test_a_queued_write_that_raises_leaves_the_thread_serving_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = Writer(contextlib.nullcontext)  # a store that can batch writes
    gate = threading.Event()
    writer.queue(gate.wait)  # the next two are taken together
    writer.queue(lambda: 1 / 0)
    taken_with_it = writer.submit_from_loop(lambda: "with it")
    gate.set()
    assert await asyncio.wait_for(taken_with_it, 5) == "with it"
    assert await asyncio.wait_for(writer.submit_from_loop(lambda: "after"), 5) == "after"
    assert [r.getMessage() for r in caplog.records if r.name == "tarash.ledger"] == [
        "A queued ledger write failed"
    ]


class SlowStore(SQLiteJobStore):
    """A SQLite store whose intent write (with its budget check) takes WRITE_SECONDS (a slow
    database), or fails."""

    fail = False

    def record_budgeted_intent(self, key: str, **fields: Any) -> None:
        time.sleep(WRITE_SECONDS)
        if self.fail:
            raise OSError("disk full")
        super().record_budgeted_intent(key, **fields)


def test_the_event_loop_runs_while_the_intent_is_written(tmp_path: Path) -> None:
    """The async generation waits for its intent (the submit goes out after it), but the loop
    is free meanwhile: a ticker task keeps running every 10 ms."""
    log: list[httpx.Request] = []
    store = SlowStore(tmp_path / "jobs.db").open()
    gateway = mock_gateway(log, ledger=store)
    gateway.register_plugin(EchoPlugin(), "echo")

    async def main() -> tuple[int, float]:
        ticks = 0
        started = time.monotonic()
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        await gateway.generate_video_async(echo_config(api_key="k"), VideoGenerationRequest(prompt="p"))
        stop.set()
        await task
        return ticks, time.monotonic() - started

    ticks, took = asyncio.run(main())
    assert took >= WRITE_SECONDS and len(log) == 1
    assert ticks >= 10  # a loop blocked by the write would tick about once
    (record,) = store.records()
    assert (record.state, record.finished) == ("completed", True)


def test_a_failed_intent_write_sends_nothing_from_the_async_api(tmp_path: Path) -> None:
    log: list[httpx.Request] = []
    store = SlowStore(tmp_path / "jobs.db").open()
    store.fail = True
    gateway = mock_gateway(log, ledger=store)
    gateway.register_plugin(EchoPlugin(), "echo")
    with pytest.raises(LedgerError, match="could not record the submit intent"):
        asyncio.run(
            gateway.generate_video_async(echo_config(api_key="k"), VideoGenerationRequest(prompt="p"))
        )
    assert log == []


class NoBudget:
    """A budget check for a ledger with no budget set."""

    name = "default"

    def __call__(self, budget: Any, costs_since: Any) -> None:
        assert budget is None


def test_a_queued_status_update_is_written_by_flush(tmp_path: Path) -> None:
    store = SQLiteJobStore(tmp_path / "jobs.db").open()
    ledger = Gateway(ledger=store, discover=False).ledger()
    assert ledger is not None
    config, request = echo_config(api_key="k"), VideoGenerationRequest(prompt="p")
    intent = ledger.intent(
        "k",
        provider="echo",
        model="e1",
        modality="video",
        config=config,
        request=request,
        cost=None,
        check=NoBudget(),
    )
    intent.writer.run(intent.write)
    gate = threading.Event()
    ledger.writer.queue(gate.wait)  # the writer is busy: the status update waits its turn
    ledger.status("k", "processing", {"queue_position": None, "progress_percent": 10})
    assert store.get("k").state == "submitting"
    gate.set()
    ledger.flush()
    assert store.get("k").state == "processing"


def test_a_sync_flow_runs_its_queued_writes_itself_before_it_next_waits() -> None:
    """A status update queued by a sync flow is held back: run on the flow's own thread before
    its next wait or with its next awaited write; no thread is started for it."""
    writer = Writer()
    main = threading.current_thread().name
    ran: list[tuple[str, str]] = []

    def note(name: str) -> Callable[[], None]:
        return lambda: ran.append((name, threading.current_thread().name))

    def flow() -> rt.Flow[str]:
        writer.queue(note("queued"))
        yield rt.Emit(lambda _: ran.append(("callback", main)), None)
        assert ran == [("callback", main)]  # still held back
        yield rt.Call(note("call"), None, {})
        writer.queue(note("cost"))
        yield rt.Record(note("end"), writer)
        writer.queue(note("after the end"))
        return "done"

    assert rt.drive_sync(flow(), rt.BackgroundLoop()) == "done"
    names = ["callback", "queued", "call", "cost", "end", "after the end"]
    assert ran == [(name, main) for name in names]
    assert writer._thread is None


def test_a_sync_flows_held_writes_are_written_while_its_request_is_under_way() -> None:
    """Before a request, the held writes go to the writer's thread, and are written while the
    request is under way (not before it, on the flow's thread)."""
    writer = Writer()
    written = threading.Event()
    log: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        log.append(request)
        assert written.wait(5)  # the status is written while the request waits for its answer
        return httpx.Response(200, json={})

    transport = Transport(transport=httpx.MockTransport(answer))
    prepared = prepare(
        Request(method="GET", url="/jobs/1"),
        provider="acme",
        base_url="https://api.acme.invalid",
        api_key=None,
        auth_header="Authorization",
        auth_scheme="Bearer",
    )

    by: list[str] = []

    def status() -> None:
        by.append(threading.current_thread().name)
        written.set()

    def flow() -> rt.Flow[int]:
        writer.queue(status)
        response = yield rt.Send(transport, prepared, 5)
        return response.status_code  # type: ignore[no-any-return]

    assert rt.drive_sync(flow(), rt.BackgroundLoop()) == 200
    assert (len(log), by) == (1, ["tarash-ledger"])
    transport.close()


def test_a_held_write_that_raises_is_logged_and_the_flow_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    writer = Writer()

    def flow() -> rt.Flow[str]:
        writer.queue(lambda: 1 / 0)
        yield rt.Sleep(0)
        return "went on"

    assert rt.drive_sync(flow(), rt.BackgroundLoop()) == "went on"
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("tarash.ledger", "A queued ledger write failed")
    ]


def test_a_sleep_is_shortened_by_the_writes_run_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    slept: list[float] = []
    monkeypatch.setattr(rt, "time", SimpleNamespace(monotonic=lambda: clock[0], sleep=slept.append))
    writer = Writer()

    def slow_write() -> None:
        clock[0] += 0.25

    def flow() -> rt.Flow[None]:
        writer.queue(slow_write)
        yield rt.Sleep(1.0)
        yield rt.Sleep(1.0)

    rt.drive_sync(flow(), rt.BackgroundLoop())
    assert slept == [0.75, 1.0]


def test_a_write_queued_outside_a_sync_flow_goes_to_the_writers_thread() -> None:
    """Another thread's write, queued while a sync flow runs, is not held back for the flow."""
    writer = Writer()
    done = threading.Event()

    def flow() -> rt.Flow[None]:
        other = threading.Thread(target=writer.queue, args=(done.set,))  # another thread's write
        other.start()
        other.join()
        assert done.wait(5)
        yield rt.Sleep(0)

    rt.drive_sync(flow(), rt.BackgroundLoop())
