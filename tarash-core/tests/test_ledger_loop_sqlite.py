"""On SQLite, a busy event loop's ledger writes are made by a helper process
(``_ledger/sqlite_process.py``): collected on the loop as rows of the ``ops`` view, sent over a
socket a batch at a time, inserted by the helper in one transaction. A loop writing a job or two at
a time leaves its writes to the writer's thread and starts no process; a helper that cannot start,
or dies, hands its batches to the thread, and nothing is lost or made twice."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jobapi import JobServer, make_plugin, running
from test_budget_race import close, priced_gateway, video_config
from test_gateway import EchoPlugin, echo_config
from test_job_store import history
from test_ledger_loop import budgeted_callers, spy_batches

from tarash.tarash_gateway import Gateway, VideoGenerationRequest
from tarash.tarash_gateway._ledger import SQLiteJobStore, sqlite_process, writer
from tarash.tarash_gateway._transport import Transport

#: The generations' API key, which no row the helper stores may hold.
KEY = "sk-helper-secret-0001"

#: (kind, thread name, collected for a loop?) for each job write the store makes or collects.
Made = list[tuple[str, str, bool]]


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> Made:
    log: Made = []
    op = SQLiteJobStore._op

    def spy(self: SQLiteJobStore, conn: Any, kind: str, *args: Any, **kwargs: Any) -> None:
        log.append((kind, threading.current_thread().name, self._rows() is not None))
        op(self, conn, kind, *args, **kwargs)

    monkeypatch.setattr(SQLiteJobStore, "_op", spy)
    return log


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The kinds of rows in each batch sent to a helper, its outcome appended (ok or the error)."""
    return spy_batches(monkeypatch, sqlite_process.SQLiteLoopConnection, lambda row: str(row[0]))


@pytest.fixture
def helpers(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The helper processes started (``subprocess.Popen`` objects)."""
    started: list[Any] = []
    spawn = sqlite_process._spawn

    def spy() -> Any:
        process, sock = spawn()
        started.append(process)
        return process, sock

    monkeypatch.setattr(sqlite_process, "_spawn", spy)
    return started


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteJobStore]:
    opened = SQLiteJobStore(tmp_path / "jobs.db").open()
    yield opened
    opened.close()


def echo_gateway(store: SQLiteJobStore, answer: Any = None) -> Gateway:
    def echo(request: httpx.Request) -> httpx.Response:
        prompt = json.loads(request.content)["prompt"]
        return httpx.Response(200, json={"id": prompt, "url": f"https://cdn.invalid/{prompt}.mp4"})

    handler = answer or echo
    transport = Transport(
        transport=httpx.MockTransport(handler), async_transport=httpx.MockTransport(handler)
    )
    gateway = Gateway(discover=False, transport=transport, ledger=store)
    gateway.register_plugin(EchoPlugin(), "echo")
    return gateway


async def generate_all(gateway: Gateway, jobs: int, prefix: str = "p") -> None:
    await asyncio.gather(
        *(
            gateway.generate_video_async(
                echo_config(api_key=KEY), VideoGenerationRequest(prompt=f"{prefix}{i}")
            )
            for i in range(jobs)
        )
    )


def ended(process: Any) -> int:
    """The helper's exit code, once it has ended (it ends when its socket closes)."""
    return int(process.wait(timeout=5))


def test_a_busy_loops_writes_are_made_by_a_helper_process(
    store: SQLiteJobStore, made: Made, sent: list[list[str]], helpers: list[Any]
) -> None:
    unrecorded: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        """The echo provider, which first looks for the call's intent in the file."""
        prompt = json.loads(request.content)["prompt"]
        with sqlite3.connect(store.path) as conn:
            found = conn.execute(
                "SELECT 1 FROM jobs WHERE json_extract(request, '$.prompt') = ? AND state = 'submitting'",
                (prompt,),
            ).fetchone()
        if found is None:
            unrecorded.append(prompt)
        return httpx.Response(200, json={"id": prompt, "url": f"https://cdn.invalid/{prompt}.mp4"})

    gateway = echo_gateway(store, answer)
    jobs = 40
    asyncio.run(generate_all(gateway, jobs))
    assert unrecorded == []  # each intent was committed before its request was sent
    # every write collected on the loop's thread and made by one helper, in fewer batches than jobs
    assert Counter(made) == {("intent", "MainThread", True): jobs, ("finished", "MainThread", True): jobs}
    assert sent[0] == ["intent"] * jobs + ["ok"]
    assert all(call[-1] == "ok" for call in sent) and 1 < len(sent) < jobs
    assert sorted(kind for call in sent for kind in call[:-1]) == ["finished"] * jobs + ["intent"] * jobs
    records = store.records()
    assert len(records) == jobs and {(r.state, r.finished) for r in records} == {("completed", True)}
    for record in records:
        assert history(store, record.key) == [("intent", "submitting"), ("finished", "completed")]
    # the helper ended when asyncio.run ended its loop (which closed the helper's socket)
    assert len(helpers) == 1 and ended(helpers[0]) == 0
    files = [path for path in store.path.parent.iterdir() if path.name.startswith("jobs.db")]
    assert files and not any(KEY.encode() in path.read_bytes() for path in files)  # no secret stored
    gateway.close()


def test_a_loop_writing_a_job_at_a_time_starts_no_helper(
    store: SQLiteJobStore, made: Made, sent: list[list[str]], helpers: list[Any]
) -> None:
    gateway = echo_gateway(store)
    for _ in range(2):
        asyncio.run(generate_all(gateway, 1))
    assert helpers == [] and sent == []
    assert made == [("intent", "tarash-ledger", False), ("finished", "tarash-ledger", False)] * 2
    assert {(r.state, r.finished) for r in store.records()} == {("completed", True)}
    gateway.close()


def test_a_store_not_yet_open_starts_no_helper_until_the_thread_has_opened_it(
    tmp_path: Path, made: Made, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first batch cannot be collected (the file is not open in this process): the writer's
    thread makes it, creating the file and its schema; a helper is only started after that, on the
    file as the thread made it."""
    store = SQLiteJobStore(tmp_path / "jobs.db")
    opened_at_spawn: list[bool] = []
    spawn = sqlite_process._spawn

    def spy() -> Any:
        opened_at_spawn.append(store._conn is not None and store.path.exists())
        return spawn()

    monkeypatch.setattr(sqlite_process, "_spawn", spy)
    gateway = echo_gateway(store)
    jobs = 20
    asyncio.run(generate_all(gateway, jobs))
    assert made[:jobs] == [("intent", "tarash-ledger", False)] * jobs
    assert opened_at_spawn in ([], [True])
    records = store.records()
    assert len(records) == jobs and {(r.state, r.finished) for r in records} == {("completed", True)}
    asyncio.run(generate_all(gateway, jobs, "b"))  # open now: the next loop's first batch starts one
    assert opened_at_spawn[-1] is True and made[-1] == ("finished", "MainThread", True)
    gateway.close()
    store.close()


@pytest.fixture
def server() -> Iterator[JobServer]:
    with running(queue_polls=1, processing_polls=1) as started:
        yield started


def test_async_callers_on_one_loop_never_overspend_a_budget(
    server: JobServer, tmp_path: Path, sent: list[list[str]], made: Made
) -> None:
    """A loop's batch does not read whether a budget is set: the helper refuses the batch when an
    intent names one that is (nothing stored), and the writer's thread checks each intent against
    it, in turn; the loop's next intents naming it go to the thread at once."""
    callers, fits = 12, 5
    gateway = priced_gateway(str(tmp_path / "jobs.db"))
    gateway.generate_video(video_config(server.url), VideoGenerationRequest("warm-up"))
    gateway.set_budget(str(fits + 1), period="day")  # the warm-up's 1.00 is spent already
    made.clear()
    first, second = ([f"{wave}{i}" for i in range(callers)] for wave in "ab")
    results = asyncio.run(budgeted_callers(gateway, server.url, first, second))
    assert Counter(results) == {"generated": fits, "BudgetExceededError": 2 * callers - fits}
    assert server.counts["submit"] == fits + 1
    assert sent[0] == ["intent"] * callers + ["NeedsConnection"]  # refused: nothing stored
    assert not any("intent" in call for call in sent[1:])  # the budget is known set: by the thread
    # collected once (the first callers'), then made by the thread: the second callers' too
    assert made.count(("intent", "MainThread", True)) == callers
    assert {thread for kind, thread, _ in made if kind == "intent"} == {"MainThread", "tarash-ledger"}
    assert gateway.budget() == {"amount": str(fits + 1), "currency": "USD", "period": "day", "spent": "6.00"}
    close(gateway)


def test_a_helper_that_cannot_start_is_not_tried_again(
    store: SQLiteJobStore,
    made: Made,
    helpers: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sqlite_process, "_HELPER", str(Path(store.path).parent / "missing.py"))
    gateway = echo_gateway(store)
    with caplog.at_level(logging.WARNING, "tarash.ledger"):
        asyncio.run(generate_all(gateway, 10, "a"))
        asyncio.run(generate_all(gateway, 10, "b"))
    assert len(helpers) == 1 and ended(helpers[0]) != 0
    assert "can't open file" in capfd.readouterr().err  # the interpreter's own complaint
    warnings = [r.getMessage() for r in caplog.records if r.name == "tarash.ledger"]
    assert len(warnings) == 1 and "The ledger's connection on the event loop failed" in warnings[0]
    assert Counter(made) == {("intent", "tarash-ledger", False): 20, ("finished", "tarash-ledger", False): 20}
    records = store.records()
    assert len(records) == 20 and {(r.state, r.finished) for r in records} == {("completed", True)}
    gateway.close()


def test_a_helper_killed_between_batches_hands_the_next_to_the_thread(
    server: JobServer, store: SQLiteJobStore, sent: list[list[str]], helpers: list[Any]
) -> None:
    """The first batch (the intents) is made by the helper, which is then killed: the next batch
    fails to reach it (nothing of it was made) and the writer's thread makes it; the next loop's
    first batch starts a new helper, if none has been yet. Every job is submitted once and
    collected, its history whole."""
    jobs = 12
    gateway = Gateway(ledger=store)
    gateway.register_plugin(make_plugin("jobapi"), "jobapi")
    killed: list[int] = []
    apply = sqlite_process.SQLiteLoopConnection.apply

    async def kill_after_first(self: sqlite_process.SQLiteLoopConnection, collected: list[Any]) -> None:
        await apply(self, collected)
        if not killed:
            killed.append(self._process.pid)
            os.kill(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=5)

    sqlite_process.SQLiteLoopConnection.apply = kill_after_first  # type: ignore[method-assign]
    try:

        async def main(prefix: str) -> None:
            await asyncio.gather(
                *(
                    gateway.generate_video_async(
                        video_config(server.url), VideoGenerationRequest(f"{prefix}{i}")
                    )
                    for i in range(jobs)
                )
            )

        asyncio.run(main("a"))
        first = len(sent)
        asyncio.run(main("b"))
    finally:
        sqlite_process.SQLiteLoopConnection.apply = apply  # type: ignore[method-assign]
    assert sent[0] == sent[first] == ["intent"] * jobs + ["ok"]
    failed = [call for call in sent if call[-1] != "ok"]
    assert len(failed) == 1 and failed[0][-1] in {"BrokenPipeError", "ConnectionResetError"}
    # (a batch of the first loop big enough may have started one already)
    assert killed == [helpers[0].pid] and len(helpers) >= 2
    assert [ended(process) for process in helpers[1:]] == [0] * (len(helpers) - 1)
    assert server.counts["submit"] == 2 * jobs and server.counts["result"] == 2 * jobs
    records = store.records()
    assert len(records) == 2 * jobs and {(r.state, r.finished) for r in records} == {("completed", True)}
    for record in records:
        kinds = [kind for kind, _ in history(store, record.key)]
        assert kinds[0] == "intent" and kinds[-1] == "finished" and kinds.count("submitted") == 1
        assert Counter(kinds)["intent"] == 1 and Counter(kinds)["finished"] == 1
    gateway.close()


def test_an_idle_loops_helper_ends_while_the_loop_runs_on(
    store: SQLiteJobStore, helpers: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "IDLE_SECONDS", 0.1)
    gateway = echo_gateway(store)

    async def main() -> int | None:
        await generate_all(gateway, 10)
        await asyncio.sleep(0.5)
        return await asyncio.to_thread(ended, helpers[0])

    assert asyncio.run(main()) == 0
    assert len(helpers) == 1
    gateway.close()
