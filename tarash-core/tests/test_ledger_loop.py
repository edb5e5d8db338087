"""On PostgreSQL, an event loop's ledger writes are made on that loop, through a psycopg
``AsyncConnection`` of its own (``_ledger/loop_queue.py``): collected while the store collects,
then sent as one call of ``tarash_apply_ops``. A write that needs the database at once goes to the
writer's thread, in order; so do the writes a loop leaves when it ends, and those of a batch whose
connection failed. Against the session's real PostgreSQL cluster (tests/pg.py); psycopg is imported
by the tests that use it, which conftest.py skips without it (and fails under CI)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from jobapi import JobServer, make_plugin, running
from test_budget_race import CALLERS, FITS, close, priced_gateway, video_config
from test_gateway import EchoPlugin, echo_config, mock_gateway
from test_job_store import LEASE, history

from tarash.tarash_gateway import Gateway, VideoGenerationConfig, VideoGenerationRequest, _engine
from tarash.tarash_gateway._ledger import LedgerAdapter, process_owner
from tarash.tarash_gateway._ledger.loop_queue import LoopQueue
from tarash.tarash_gateway._transport import Transport
from tarash.tarash_gateway.exceptions import BudgetExceededError, ResultNotCollectedError

if TYPE_CHECKING:
    from tarash.tarash_gateway._ledger.postgres import PgLoopConnection, PostgresJobStore

#: (op, thread name, collected for a loop?) for each write the store makes or collects.
Made = list[tuple[str, str, bool]]


@pytest.fixture
def made(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Made:
    """Where each of the store's job writes is made: on which thread, collected or not."""
    from tarash.tarash_gateway._ledger import postgres

    log: Made = []
    apply = postgres.PostgresJobStore._apply

    def spy(self: PostgresJobStore, op: dict[str, Any]) -> int:
        collecting = getattr(self._batch, "conn", None) is postgres._COLLECTING
        log.append((op["op"], threading.current_thread().name, collecting))
        return apply(self, op)

    monkeypatch.setattr(postgres.PostgresJobStore, "_apply", spy)
    return log


def spy_batches(
    monkeypatch: pytest.MonkeyPatch, connection: type[Any], kind: Callable[[Any], str]
) -> list[list[str]]:
    """The kind of each write in each batch a loop's ``connection`` (its class) was given, its
    outcome appended: ok, or the error's name."""
    calls: list[list[str]] = []
    apply = connection.apply

    async def spy(self: Any, collected: list[Any]) -> None:
        calls.append([kind(write) for write in collected])
        try:
            await apply(self, collected)
        except Exception as exc:
            calls[-1].append(type(exc).__name__)
            raise
        calls[-1].append("ok")

    monkeypatch.setattr(connection, "apply", spy)
    return calls


@pytest.fixture
def sent(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The ops of each call a loop's connection made (its outcome appended: ok or the error)."""
    from tarash.tarash_gateway._ledger.postgres import PgLoopConnection

    return spy_batches(monkeypatch, PgLoopConnection, lambda op: str(op["op"]))


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[PostgresJobStore]:
    from tarash.tarash_gateway._ledger.postgres import PostgresJobStore

    store = PostgresJobStore(pg_url).open()
    yield store
    store.close()


def backends(url: str) -> int:
    """Client sessions open on the database (the counting one excluded)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()
        assert row is not None
        return int(row[0])


def settle_backends(url: str, expected: int) -> int:
    """The number of sessions once it is ``expected`` (a closed session ends shortly after)."""
    deadline = time.monotonic() + 5
    while (found := backends(url)) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def echo_gateway(store: PostgresJobStore) -> tuple[Any, list[httpx.Request]]:
    log: list[httpx.Request] = []
    gateway = mock_gateway(log, ledger=store)
    gateway.register_plugin(EchoPlugin(), "echo")
    return gateway, log


async def generate_all(gateway: Any, jobs: int) -> None:
    await asyncio.gather(
        *(
            gateway.generate_video_async(echo_config(api_key="k"), VideoGenerationRequest(prompt=f"p{i}"))
            for i in range(jobs)
        )
    )


def test_an_event_loops_writes_are_made_on_its_own_connection(
    pg_store: PostgresJobStore, pg_url: str, made: Made, sent: list[list[str]]
) -> None:
    unrecorded: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        """The echo provider, which first looks for the call's intent in the database."""
        import psycopg

        prompt = json.loads(request.content)["prompt"]
        with psycopg.connect(pg_url, autocommit=True) as conn:
            found = conn.execute(
                "SELECT 1 FROM tarash_jobs WHERE request->>'prompt' = %s AND state = 'submitting'", (prompt,)
            ).fetchone()
        if found is None:
            unrecorded.append(prompt)
        return httpx.Response(200, json={"id": prompt, "url": f"https://cdn.invalid/{prompt}.mp4"})

    transport = Transport(transport=httpx.MockTransport(answer), async_transport=httpx.MockTransport(answer))
    gateway = Gateway(discover=False, transport=transport, ledger=pg_store)
    gateway.register_plugin(EchoPlugin(), "echo")
    gateway.generate_video(echo_config(api_key="k"), VideoGenerationRequest("warm-up"))  # holds the owner
    before = backends(pg_url)
    made.clear()
    jobs = 40
    asyncio.run(generate_all(gateway, jobs))
    assert unrecorded == []  # each intent was committed before its request was sent
    # every write made on the loop's thread, collected, and sent in fewer calls than there are jobs
    assert Counter(made) == {("intent", "MainThread", True): jobs, ("finished", "MainThread", True): jobs}
    assert all(call[-1] == "ok" for call in sent) and 1 < len(sent) < jobs
    assert sorted(op for call in sent for op in call[:-1]) == ["finished"] * jobs + ["intent"] * jobs
    records = [r for r in pg_store.records() if r.request and r.request["prompt"] != "warm-up"]
    assert len(records) == jobs and {(r.state, r.finished) for r in records} == {("completed", True)}
    for record in records:
        assert history(pg_store, record.key) == [("intent", "submitting"), ("finished", "completed")]
    # the loop's connection was closed when asyncio.run ended its loop
    assert settle_backends(pg_url, before) == before
    gateway.close()


def test_a_loops_writes_that_need_the_database_go_to_the_thread_in_order(
    pg_url: str, made: Made, sent: list[list[str]]
) -> None:
    """A store not yet opened in this process cannot collect: the first batch (the intents) is
    made by the writer's thread, which opens it; the loop makes the ends."""
    from tarash.tarash_gateway._ledger.postgres import PostgresJobStore

    store = PostgresJobStore(pg_url)
    gateway, log = echo_gateway(store)
    jobs = 10
    asyncio.run(generate_all(gateway, jobs))
    assert len(log) == jobs
    assert Counter(made) == {("intent", "tarash-ledger", False): jobs, ("finished", "MainThread", True): jobs}
    assert [call[-1] for call in sent] == ["ok"] * len(sent)
    for record in store.records():
        assert history(store, record.key) == [("intent", "submitting"), ("finished", "completed")]
    gateway.close()
    store.close()


@pytest.fixture
def server() -> Iterator[JobServer]:
    with running(queue_polls=0, processing_polls=0) as started:
        yield started


async def budgeted_callers(gateway: Gateway, url: str, *waves: list[str]) -> list[str]:
    """Each wave's callers at once on this loop (a wave after the one before): ``generated``, or
    the name of the budget's refusal, for each prompt."""
    results: list[str] = []

    async def caller(prompt: str) -> str:
        try:
            await gateway.generate_video_async(video_config(url), VideoGenerationRequest(prompt))
        except BudgetExceededError as exc:
            return type(exc).__name__
        return "generated"

    for wave in waves:
        results += await asyncio.gather(*(caller(prompt) for prompt in wave))
    return results


def test_async_callers_on_one_loop_never_overspend_a_budget(
    server: JobServer, pg_url: str, sent: list[list[str]], made: Made
) -> None:
    """A loop's batch does not read whether a budget is set: ``tarash_apply_ops`` refuses its
    intents when one is, and the writer's thread then checks each against the budget, in turn."""
    gateway = priced_gateway(pg_url)
    gateway.generate_video(video_config(server.url), VideoGenerationRequest("warm-up"))  # holds the owner
    gateway.set_budget(str(FITS + 1), period="day")  # the warm-up's 1.00 is spent already
    submits = server.counts["submit"]
    made.clear()

    results = asyncio.run(budgeted_callers(gateway, server.url, [f"a{i}" for i in range(CALLERS)]))
    assert Counter(results) == {"generated": FITS, "BudgetExceededError": CALLERS - FITS}
    assert server.counts["submit"] - submits == FITS
    assert sent[0] == ["intent"] * CALLERS + ["NeedsConnection"]  # refused: nothing stored
    assert made.count(("intent", "MainThread", True)) == CALLERS  # collected once, then by the thread
    assert gateway.budget() == {"amount": str(FITS + 1), "currency": "USD", "period": "day", "spent": "4.00"}
    close(gateway)


def test_a_loop_asks_whether_its_jobs_are_still_its_own_on_its_own_connection(
    server: JobServer, pg_url: str, sent: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before each result is fetched the job's claim is checked (``holds``): on a loop, asked
    with the loop's other writes on its connection, one statement for a batch's questions, and
    none by the writer's thread (which would take the interpreter lock from the busy loop)."""
    from tarash.tarash_gateway._ledger.postgres import PostgresJobStore

    by_thread: list[str] = []
    writing = PostgresJobStore._writing

    def spy(self: PostgresJobStore) -> Any:
        by_thread.append(threading.current_thread().name)
        return writing(self)

    gateway = priced_gateway(pg_url)
    gateway.generate_video(video_config(server.url), VideoGenerationRequest("warm-up"))  # holds the owner
    monkeypatch.setattr(PostgresJobStore, "_writing", spy)
    jobs = CALLERS

    async def main() -> None:
        await asyncio.gather(
            *(
                gateway.generate_video_async(video_config(server.url), VideoGenerationRequest(f"a{i}"))
                for i in range(jobs)
            )
        )

    asyncio.run(main())
    asked = [op for call in sent for op in call if op == "hold"]
    assert len(asked) == jobs and all(call[-1] == "ok" for call in sent)
    assert by_thread == []
    assert server.counts["result"] == jobs + 1
    records = gateway.ledger().store.records()  # type: ignore[union-attr]
    assert {(r.state, r.finished) for r in records} == {("completed", True)} and len(records) == jobs + 1
    close(gateway)


def adapter_with_job(store: PostgresJobStore, key: str) -> LedgerAdapter:
    """An adapter on ``store`` with the intent of ``key`` made (which holds this process's owner)."""
    adapter = LedgerAdapter(store)
    adapter.writer.run(
        lambda: store.record_intent(
            key,
            provider="mock",
            model="m",
            modality="video",
            config={"model": "m"},
            request={"prompt": "a cat"},
            owner=process_owner(),
            lease_seconds=LEASE,
        )
    )
    return adapter


def test_writes_left_when_the_loop_ends_are_made_by_the_thread(
    pg_store: PostgresJobStore, made: Made
) -> None:
    adapter = adapter_with_job(pg_store, "left")

    async def main() -> None:
        adapter.status("left", "processing", {"progress": 10})  # queued; main returns at once

    asyncio.run(main())
    deadline = time.monotonic() + 5
    while (record := pg_store.get("left")) is not None and record.state != "processing":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert record is not None and record.detail == {"progress": 10}
    assert history(pg_store, "left") == [("intent", "submitting"), ("status", "processing")]
    assert made[-1] == ("status", "tarash-ledger", False)


def test_a_batch_committed_but_unanswered_is_made_again_without_refusing_its_intents(
    pg_store: PostgresJobStore, made: Made, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop's connection fails after PostgreSQL committed a batch of intents, so the writer's
    thread makes the batch again: each intent is then a duplicate of one this process recorded,
    which is the intent recorded (its generation goes on, submitted once), not a failure (which
    failed the generation closed, saying nothing was recorded, and left its record behind)."""
    import psycopg

    from tarash.tarash_gateway._ledger.postgres import PgLoopConnection

    apply = PgLoopConnection.apply
    lost: list[list[str]] = []

    async def committed_then_lost(self: PgLoopConnection, collected: list[dict[str, Any]]) -> None:
        await apply(self, collected)
        if not lost and any(op["op"] == "intent" for op in collected):
            lost.append([op["op"] for op in collected])
            raise psycopg.OperationalError("the connection was lost after the commit")

    monkeypatch.setattr(PgLoopConnection, "apply", committed_then_lost)
    gateway, log = echo_gateway(pg_store)
    gateway.generate_video(echo_config(api_key="k"), VideoGenerationRequest("warm-up"))  # holds the owner
    made.clear()
    jobs = 5
    asyncio.run(generate_all(gateway, jobs))
    assert lost == [["intent"] * jobs]
    assert len(log) == 1 + jobs  # each generation's request, sent once
    # collected on the loop; then by the thread, in one batch (refused whole), then each alone
    assert [op for op, _, _ in made].count("intent") == 3 * jobs
    records = [r for r in pg_store.records() if r.request and r.request["prompt"] != "warm-up"]
    assert len(records) == jobs and {(r.state, r.finished) for r in records} == {("completed", True)}
    for record in records:
        assert history(pg_store, record.key) == [("intent", "submitting"), ("finished", "completed")]
    gateway.close()


def test_an_idle_loops_connection_closes_while_the_loop_runs_on(
    pg_store: PostgresJobStore, pg_url: str, sent: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once no write has come for IDLE_SECONDS the loop's connection closes, the loop still open;
    the next write opens another."""
    from tarash.tarash_gateway._ledger import writer

    monkeypatch.setattr(writer, "IDLE_SECONDS", 0.2)
    gateway, _ = echo_gateway(pg_store)
    gateway.generate_video(echo_config(api_key="k"), VideoGenerationRequest("warm-up"))  # holds the owner
    before = backends(pg_url)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(generate_all(gateway, 5))
        assert backends(pg_url) == before + 1
        loop.run_until_complete(asyncio.sleep(0.5))
        assert backends(pg_url) == before
        loop.run_until_complete(generate_all(gateway, 5))
        assert backends(pg_url) == before + 1
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
    assert [call[-1] for call in sent] == ["ok"] * len(sent) and len(sent) >= 4
    gateway.close()


def test_a_loop_closed_by_hand_logs_nothing_and_its_connection_closes(
    pg_store: PostgresJobStore, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A loop closed without ``asyncio.run`` (its tasks not cancelled) has no pending task of the
    ledger's to be logged as destroyed, and its connection closes once the loop is freed (after
    the next loop's first request lets core's transport drop it)."""
    gateway, _ = echo_gateway(pg_store)
    gateway.generate_video(echo_config(api_key="k"), VideoGenerationRequest("warm-up"))  # holds the owner
    before = backends(pg_url)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(generate_all(gateway, 5))
    assert backends(pg_url) == before + 1
    loop.close()
    del loop
    asyncio.run(generate_all(gateway, 1))
    assert settle_backends(pg_url, before) == before
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    gateway.close()


def test_a_sync_flush_on_the_loops_thread_makes_the_loops_queued_writes(pg_store: PostgresJobStore) -> None:
    adapter = adapter_with_job(pg_store, "flushed")

    async def main() -> str | None:
        adapter.status("flushed", "processing", {})
        adapter.flush()  # sync, on the loop's thread: the loop's queue cannot run meanwhile
        record = pg_store.get("flushed")
        return None if record is None else record.state

    assert asyncio.run(main()) == "processing"


def test_a_failed_loop_connection_hands_its_writes_to_the_thread(
    pg_store: PostgresJobStore, pg_url: str, made: Made, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = adapter_with_job(pg_store, "lost")
    writer = adapter.writer
    owner = process_owner()

    def status(state: str) -> Any:
        return writer.submit_from_loop(
            lambda: pg_store.record_status("lost", state=state, detail={}, owner=owner, lease_seconds=LEASE)
        )

    async def main() -> None:
        await status("queued")
        (queue,) = writer._loops.values()
        pid = queue._connection._conn.info.backend_pid  # type: ignore[union-attr]
        import psycopg

        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        await status("processing")

    made.clear()
    with caplog.at_level(logging.WARNING, logger="tarash.ledger"):
        asyncio.run(main())
    assert "The ledger's connection on the event loop failed" in caplog.text
    assert made == [
        ("status", "MainThread", True),
        ("status", "MainThread", True),
        ("status", "tarash-ledger", False),
    ]
    assert history(pg_store, "lost") == [
        ("intent", "submitting"),
        ("status", "queued"),
        ("status", "processing"),
    ]


def test_windows_proactor_loops_write_through_the_thread(
    pg_store: PostgresJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psycopg's async connections cannot run on Windows' default (proactor) event loop."""

    class ProactorEventLoop(asyncio.SelectorEventLoop):
        pass

    monkeypatch.setattr(asyncio, "ProactorEventLoop", ProactorEventLoop, raising=False)
    monkeypatch.setattr(sys, "platform", "win32")
    proactor, selector = ProactorEventLoop(), asyncio.SelectorEventLoop()
    try:
        assert (pg_store.runs_on(proactor), pg_store.runs_on(selector)) == (False, True)
        assert LedgerAdapter(pg_store).writer._loop_queue(proactor) is None
    finally:
        proactor.close()
        selector.close()


def test_a_failure_of_the_loops_queue_hands_its_writes_to_the_thread(
    pg_store: PostgresJobStore, made: Made, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = adapter_with_job(pg_store, "broken")
    owner = process_owner()

    async def broken(self: LoopQueue) -> None:
        raise RuntimeError("a bug in the queue")

    monkeypatch.setattr(LoopQueue, "_make_batch", broken)

    async def main() -> None:
        await adapter.writer.submit_from_loop(
            lambda: pg_store.record_status(
                "broken", state="processing", detail={}, owner=owner, lease_seconds=LEASE
            )
        )

    made.clear()
    with caplog.at_level(logging.ERROR, logger="tarash.ledger"):
        asyncio.run(main())
    assert (
        "The ledger's queue on the event loop failed" in caplog.text and "a bug in the queue" in caplog.text
    )
    assert made == [("status", "tarash-ledger", False)]
    assert history(pg_store, "broken") == [("intent", "submitting"), ("status", "processing")]


def test_a_job_left_for_resume_is_released_off_the_event_loop(
    pg_store: PostgresJobStore, made: Made, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A completed job whose result cannot be read stays in the ledger, released for resume():
    on the async API that release is collected on the loop, never made on the loop's thread."""
    monkeypatch.setattr(_engine.attempt, "BACKOFF_BASE", 0.005)
    with running(queue_polls=0, processing_polls=0) as server:
        server.inject("result", status=503, times=10_000)
        gateway = Gateway(discover=False, ledger=pg_store)
        gateway.register_plugin(make_plugin("jobs"), "jobs")
        config = VideoGenerationConfig(
            provider="jobs",
            model="m1",
            api_key="key-jobs-0001",
            base_url=server.url,
            poll_interval=0.01,
            timeout=1,
        )
        with pytest.raises(ResultNotCollectedError) as raised:
            asyncio.run(gateway.generate_video_async(config, VideoGenerationRequest("a cat")))
        assert server.counts["submit"] == 1
    record = pg_store.get(raised.value.ledger_key)
    assert record is not None and (record.state, record.finished, record.owner) == ("completed", False, None)
    releases = [(thread, collected) for op, thread, collected in made if op == "release"]
    assert releases == [("MainThread", True)]
    gateway.close()
