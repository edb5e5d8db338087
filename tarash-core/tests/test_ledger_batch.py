"""The writes a ledger's writer finds queued together are stored in one transaction
(``Writer`` with a store's ``batch``): their callers hear of them only once it committed, and one
write's failure is its own. Both SQL stores' ``batch`` run here (the store suite's fixtures)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_gateway import EchoPlugin, echo_config, mock_gateway
from test_job_store import LEASE, history, intent, ledger_spec, new_store, store  # noqa: F401

from tarash.tarash_gateway import VideoGenerationRequest
from tarash.tarash_gateway._ledger import JobStore, LedgerAdapter, SQLiteJobStore, process_owner
from tarash.tarash_gateway._ledger import writer as writer_module
from tarash.tarash_gateway._ledger.writer import Writer
from tarash.tarash_gateway.exceptions import LedgerError


class FakeBatch:
    """A ``batch`` that logs where it begins and ends (and can fail at its end, as a commit)."""

    def __init__(self, log: list[str], fail_commit: bool = False) -> None:
        self.log = log
        self.fail_commit = fail_commit

    @contextmanager
    def __call__(self) -> Iterator[None]:
        self.log.append("begin")
        try:
            yield
        except BaseException:
            self.log.append("rollback")
            raise
        if self.fail_commit:
            self.log.append("commit failed")
            raise OSError("disk I/O error")
        self.log.append("commit")


def blocked(writer: Writer) -> threading.Event:
    """Keep ``writer``'s thread busy until the returned event is set (writes queue up meanwhile)."""
    gate, started = threading.Event(), threading.Event()
    writer.queue(lambda: (started.set(), gate.wait()))
    assert started.wait(5)
    return gate


def write(log: list[str], name: str, fails: bool = False) -> Callable[[], str]:
    def run() -> str:
        log.append(name)
        if fails:
            raise ValueError(name)
        return name.upper()

    return run


async def outcome(future: asyncio.Future[Any]) -> Any:
    try:
        return await asyncio.wait_for(future, 5)
    except Exception as exc:
        return repr(exc)


async def test_writes_queued_together_commit_together_before_any_caller_hears() -> None:
    log: list[str] = []
    writer = Writer(FakeBatch(log))
    gate = blocked(writer)
    heard: list[tuple[str, list[str]]] = []
    futures = [writer.submit_from_loop(write(log, name)) for name in ("a", "b", "c")]
    for name, future in zip("abc", futures, strict=True):
        future.add_done_callback(lambda _, name=name: heard.append((name, list(log))))
    gate.set()
    assert [await outcome(future) for future in futures] == ["A", "B", "C"]
    assert log == ["begin", "a", "b", "c", "commit"]
    assert all(seen == ["begin", "a", "b", "c", "commit"] for _, seen in heard)


async def test_a_failing_write_fails_alone_and_the_others_are_stored() -> None:
    log: list[str] = []
    writer = Writer(FakeBatch(log))
    gate = blocked(writer)
    futures = [writer.submit_from_loop(write(log, name, fails=name == "b")) for name in ("a", "b", "c")]
    gate.set()
    assert [await outcome(future) for future in futures] == ["A", "ValueError('b')", "C"]
    # the batch is undone, then each write runs again on its own
    assert log == ["begin", "a", "b", "rollback", "a", "b", "c"]


async def test_a_failed_commit_runs_each_write_again_alone() -> None:
    log: list[str] = []
    writer = Writer(FakeBatch(log, fail_commit=True))
    gate = blocked(writer)
    futures = [writer.submit_from_loop(write(log, name)) for name in ("a", "b")]
    gate.set()
    assert [await outcome(future) for future in futures] == ["A", "B"]
    assert log == ["begin", "a", "b", "commit failed", "a", "b"]


async def test_the_loop_hears_of_a_batch_in_one_wake_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each cross-thread wake-up hands the interpreter lock to the loop: a batch's outcomes reach
    it in one call, failures included (the writes run again alone are still one batch's)."""
    loop = asyncio.get_running_loop()
    calls: list[int] = []
    wake = loop.call_soon_threadsafe

    def counted(callback: Callable[..., Any], *args: Any) -> asyncio.Handle:
        calls.append(len(args[0]))
        return wake(callback, *args)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    log: list[str] = []
    writer = Writer(FakeBatch(log))
    gate = blocked(writer)
    futures = [writer.submit_from_loop(write(log, name, fails=name == "b")) for name in "abcd"]
    gate.set()
    assert [await outcome(future) for future in futures] == ["A", "ValueError('b')", "C", "D"]
    assert calls == [4]


def test_a_write_whose_loop_has_closed_is_still_stored(caplog: pytest.LogCaptureFixture) -> None:
    """The caller's loop ended while its write was queued (an ``asyncio.run`` that gave up): the
    write is stored all the same, and the writer goes on without telling anyone."""
    log: list[str] = []
    writer = Writer(FakeBatch(log))
    gate = blocked(writer)

    async def leave_it_queued() -> None:
        writer.submit_from_loop(write(log, "a"))

    asyncio.run(leave_it_queued())
    gate.set()
    writer.flush()  # "a" has run and been delivered
    served = threading.Event()
    writer.queue(served.set)
    assert served.wait(5)  # the thread goes on
    assert writer.run(write(log, "b")) == "B"
    assert log == ["a", "b"]
    assert [r.getMessage() for r in caplog.records if r.name == "tarash.ledger"] == []


async def test_a_loop_wakes_the_thread_once_for_the_writes_its_ready_callbacks_put() -> None:
    """A thread woken at a loop's first write would store it alone while the loop puts the
    others: it is woken once the loop has run its ready callbacks, and stores their writes
    together."""
    log: list[str] = []
    writer = Writer(FakeBatch(log))
    assert await outcome(writer.submit_from_loop(write(log, "up"))) == "UP"  # the thread is up
    log.clear()
    futures = [writer.submit_from_loop(write(log, "a"))]
    # The loop's thread lets the interpreter go (a blocking call): a thread woken now runs "a" alone.
    time.sleep(0.2)  # noqa: ASYNC251
    futures.append(writer.submit_from_loop(write(log, "b")))
    assert [await outcome(future) for future in futures] == ["A", "B"]
    assert log == ["begin", "a", "b", "commit"]


async def test_after_a_large_batch_the_thread_lets_the_next_writes_gather(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under load (a batch of GATHER_FROM writes or more) the thread sleeps before its next batch,
    so writes put meanwhile, each by a loop turn of its own, are stored together: each batch costs
    the busy loop the same hand-overs of the interpreter lock, whatever its size."""
    monkeypatch.setattr(writer_module, "GATHER_SECONDS", 1.0)
    log: list[str] = []
    writer = Writer(FakeBatch(log))
    gate = blocked(writer)
    names = [f"a{n}" for n in range(writer_module.GATHER_FROM)]
    first = [writer.submit_from_loop(write(log, name)) for name in names]
    gate.set()
    assert [await outcome(future) for future in first] == [name.upper() for name in names]
    later = []
    for name in ("b", "c"):
        later.append(writer.submit_from_loop(write(log, name)))
        await asyncio.sleep(0.05)  # the loop lets the thread run: a thread not gathering stores b alone
    assert [await outcome(future) for future in later] == ["B", "C"]
    assert log == ["begin", *names, "commit", "begin", "b", "c", "commit"]


async def test_after_a_small_batch_the_thread_stores_the_next_write_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A lone job's writes come one by one: none waits for others to gather."""
    monkeypatch.setattr(writer_module, "GATHER_SECONDS", 60.0)
    log: list[str] = []
    writer = Writer(FakeBatch(log))
    gate = blocked(writer)
    first = [writer.submit_from_loop(write(log, name)) for name in ("a", "b")]
    gate.set()
    assert [await outcome(future) for future in first] == ["A", "B"]
    assert await outcome(writer.submit_from_loop(write(log, "c"))) == "C"  # within 5 s
    assert log == ["begin", "a", "b", "commit", "c"]


def test_a_write_put_as_its_loop_closes_is_stored_when_the_threads_wait_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop closed before the callback that wakes the thread ran: the thread, up and waiting
    for work, finds the write when its idle wait ends."""
    monkeypatch.setattr(writer_module, "IDLE_SECONDS", 0.5)
    log: list[str] = []
    writer = Writer(FakeBatch(log))
    up = threading.Event()
    writer.queue(up.set)  # from no loop: the thread starts and runs it at once
    assert up.wait(5)

    async def put() -> None:
        writer.queue(write(log, "a"))

    loop = asyncio.new_event_loop()
    loop.run_until_complete(put())
    loop.close()  # drops the wake-up it had scheduled
    deadline = time.monotonic() + 5
    while log != ["a"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert log == ["a"]


class NoThread(Writer):
    """A writer whose thread has not come for the queued writes (it never does), so a sync
    caller finds them queued."""

    def _put(self, write: Callable[[], Any], future: Any, loop: Any = None) -> None:
        self._queue.append((write, future))


def test_a_sync_write_is_stored_with_the_writes_queued_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    writer = NoThread(FakeBatch(log))
    writer.queue(write(log, "a"))
    writer.queue(write(log, "b"))
    assert writer.run(write(log, "mine")) == "MINE"
    assert writer.run(write(log, "alone")) == "ALONE"  # nothing queued: no batch
    assert log == ["begin", "a", "b", "mine", "commit", "alone"]
    # a full batch commits first; the caller's write then runs alone
    monkeypatch.setattr(writer_module, "BATCH_LIMIT", 2)
    log.clear()
    for name in ("c", "d", "e"):
        writer.queue(write(log, name))
    assert writer.run(write(log, "mine")) == "MINE"
    assert log == ["begin", "c", "d", "commit", "begin", "e", "mine", "commit"]


def test_a_sync_write_that_fails_fails_alone() -> None:
    log: list[str] = []
    writer = NoThread(FakeBatch(log))
    writer.queue(write(log, "a"))
    with pytest.raises(ValueError, match="mine"):
        writer.run(write(log, "mine", fails=True))
    assert log == ["begin", "a", "mine", "rollback", "a", "mine"]


def test_a_queued_write_that_fails_with_a_sync_one_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """The caller hears of its own write; the queued write's failure, which nobody waits for,
    is logged (as the writer's thread does)."""
    log: list[str] = []
    writer = NoThread(FakeBatch(log))
    writer.queue(write(log, "a", fails=True))
    assert writer.run(write(log, "mine")) == "MINE"
    assert log == ["begin", "a", "rollback", "a", "mine"]
    assert [r.getMessage() for r in caplog.records if r.name == "tarash.ledger"] == [
        "A queued ledger write failed"
    ]


def test_a_sync_write_runs_after_a_full_batch_with_a_failure(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The caller's write still runs when a queued write of an earlier, full batch failed."""
    monkeypatch.setattr(writer_module, "BATCH_LIMIT", 2)
    log: list[str] = []
    writer = NoThread(FakeBatch(log))
    writer.queue(write(log, "a", fails=True))
    writer.queue(write(log, "b"))
    assert writer.run(write(log, "mine")) == "MINE"
    assert log == ["begin", "a", "rollback", "a", "b", "mine"]
    assert [r.getMessage() for r in caplog.records if r.name == "tarash.ledger"] == [
        "A queued ledger write failed"
    ]


async def test_a_writer_without_batch_runs_each_write_on_its_own() -> None:
    log: list[str] = []
    writer = Writer()
    gate = blocked(writer)
    futures = [writer.submit_from_loop(write(log, name, fails=name == "b")) for name in ("a", "b", "c")]
    gate.set()
    assert [await outcome(future) for future in futures] == ["A", "ValueError('b')", "C"]
    assert log == ["a", "b", "c"]


# ----------------------------------------------------------------------------------------------
# The stores' batch (SQLite and PostgreSQL)
# ----------------------------------------------------------------------------------------------


def test_a_batch_commits_its_writes_together(new_store: Callable[[], Any]) -> None:  # noqa: F811
    first, other = new_store(), new_store()
    with first.batch():
        intent(first, "k1")
        intent(first, "k2")
        first.record_submitted("k1", job_id="job-1", job=None, owner="host:1:a", lease_seconds=LEASE)
        first.record_status("k1", state="queued", detail={"n": 1}, owner="host:1:a", lease_seconds=LEASE)
        first.record_status("k1", state="queued", detail={"n": 2}, owner="host:1:a", lease_seconds=LEASE)
        first.record_status("k1", state="processing", detail={}, owner="host:1:a", lease_seconds=LEASE)
        if isinstance(other, SQLiteJobStore):
            # another process's connection sees nothing until the commit
            with sqlite3.connect(other.path, timeout=0) as peek:
                assert peek.execute("SELECT count(*) FROM jobs").fetchone() == (0,)
        else:
            assert other.records() == []
    assert [record.key for record in other.records()] == ["k1", "k2"]
    assert history(other, "k1") == [
        ("intent", "submitting"),
        ("submitted", "submitted"),
        ("status", "queued"),
        ("status", "processing"),
    ]
    assert [event.detail for event in other.events("k1")][2] == {"n": 1}
    assert history(other, "k2") == [("intent", "submitting")]


def test_a_batch_with_a_failed_write_stores_nothing(store: JobStore) -> None:  # noqa: F811
    # Both stores send a batch's writes at its end, so the duplicate is reported there.
    expected: tuple[type[Exception], str]
    if isinstance(store, SQLiteJobStore):
        expected = (sqlite3.IntegrityError, "UNIQUE constraint failed: jobs.key")
    else:
        import psycopg

        expected = (psycopg.errors.UniqueViolation, "duplicate key")
    with pytest.raises(expected[0], match=expected[1]), store.batch():  # type: ignore[attr-defined]
        intent(store, "k1")
        try:
            intent(store, "k1")
        except Exception:  # swallowed, as a status write's guard does
            pass
        intent(store, "k2")
    assert store.records() == []
    intent(store, "k3")  # the store is usable again
    assert [record.key for record in store.records()] == ["k3"]


OWNER = "host:1:a"


class NoBudget:
    """A budget check for a budget nobody set (the store reads whether one is)."""

    name = "monthly"

    def __call__(self, budget: Any, costs_since: Any) -> None:
        raise AssertionError("no budget is set: nothing to check")


def _writes(db: JobStore, prefix: str) -> None:
    """Writes covering each condition of the stores' write statements (a state changed or not, a
    late status, a failure replaced by a result, an unknown outcome submitted after all, a job
    that does not exist, a release by another owner, a status from another owner), of several
    jobs, interleaved."""
    k1, k2, k3, k4, k5 = (f"{prefix}{n}" for n in range(1, 6))
    intent(db, k1)
    intent(db, k2)
    intent(db, k4, owner=None)
    db.record_submitted(k1, job_id="job-1", job=None, owner=OWNER, lease_seconds=LEASE)
    db.record_status(k1, state="queued", detail={"n": 1}, owner=OWNER, lease_seconds=LEASE)
    db.record_status(k2, state="queued", detail={}, owner=OWNER, lease_seconds=LEASE)
    db.record_status(k1, state="queued", detail={"n": 2}, owner=OWNER, lease_seconds=LEASE)
    db.record_cancel(k1, detail={"reason": "deadline"})
    db.record_status(k1, state="processing", detail={}, owner=OWNER, lease_seconds=LEASE)
    db.record_status(k4, state="queued", detail={"n": 3}, owner=OWNER, lease_seconds=LEASE)
    db.record_status(k5, state="queued", detail={"n": 4}, owner=OWNER, lease_seconds=LEASE)
    db.record_finished(k2, state="failed", result=None, error={"type": "E", "message": "no"})
    db.record_status(k2, state="processing", detail={"late": True}, owner=OWNER, lease_seconds=LEASE)
    intent(db, k3)
    db.record_finished(k3, state="unknown", result=None, error={"type": "U", "message": "lost"})
    db.record_event(k3, kind="note", detail={"x": 1})
    db.record_submitted(k3, job_id="job-3", job=None, owner=OWNER, lease_seconds=LEASE)
    db.record_finished(k1, state="completed", result={"video": "v.mp4"}, error=None)
    db.record_finished(k2, state="completed", result={"video": "w.mp4"}, error=None)
    db.record_finished(k3, state="failed", result=None, error=None)
    db.record_finished(k3, state="failed", result=None, error={"type": "F", "message": "again"})
    assert db.claim(k4, owner="host:2:b", lease_seconds=LEASE)  # in a batch as alone: claimed
    db.record_submitted(k4, job_id="job-4", job=None, owner=OWNER, lease_seconds=LEASE)
    found = db.get(k4)  # in a batch, it sees the batch's writes
    assert found is not None and (found.job_id, found.owner) == ("job-4", "host:2:b")
    db.record_cost(k1, cost={"amount": "0.5", "currency": "USD"})
    db.record_cost(k5, cost={"amount": "9", "currency": "USD"})
    db.release(k4, owner="host:2:b")
    fields = {"provider": "mock", "model": "m", "modality": "video", "config": None, "request": None}
    db.record_budgeted_intent(  # type: ignore[attr-defined]
        f"{prefix}6", check=NoBudget(), cost={"amount": "1"}, owner=OWNER, lease_seconds=LEASE, **fields
    )
    db.record_status(f"{prefix}6", state="queued", detail={}, owner="host:9:z", lease_seconds=LEASE)
    db.release(f"{prefix}6", owner="host:9:z")


def _stored(db: JobStore, prefix: str) -> dict[str, Any]:
    """What ``db`` holds for the jobs of ``prefix``, without the prefix and the times."""
    found: dict[str, Any] = {}
    for record in db.records():
        if record.key.startswith(prefix):
            key = record.key.removeprefix(prefix)
            fields = (record.state, record.job_id, record.result, record.error, record.detail)
            found[key] = (*fields, record.cancel, record.owner, record.lease_until is None)
            found[key] += (record.finished_at is None, record.job, record.cost)
            events = db.events(record.key)
            found[f"{key} history"] = [(e.kind, e.state, e.detail) for e in events]
    return found


def test_a_batch_stores_what_its_writes_store_one_at_a_time(
    new_store: Callable[[], Any],  # noqa: F811
) -> None:
    db = new_store()
    _writes(db, "alone-")
    with db.batch():
        _writes(db, "batch-")
    batched = _stored(db, "batch-")
    assert batched == _stored(db, "alone-")
    assert batched["1 history"] == [
        ("intent", "submitting", {}),
        ("submitted", "submitted", {"job_id": "job-1"}),
        ("status", "queued", {"n": 1}),
        ("cancel", None, {"reason": "deadline"}),
        ("status", "processing", {}),
        ("finished", "completed", {}),
    ]
    assert batched["2"][:3] == ("completed", None, {"video": "w.mp4"})
    assert batched["3"][:2] == ("failed", "job-3")
    assert batched["4"][0] == "submitted" and batched["4"][6] is None  # released by its claimer
    assert "5" not in batched
    assert batched["1"][-1] == {"amount": "0.5", "currency": "USD"}
    assert batched["6"][0] == "queued" and batched["6"][6] == OWNER  # not released by another
    assert batched["6"][-1] == {"amount": "1"}


def test_the_sqlite_ops_view_lives_in_memory(
    new_store: Callable[[], Any],  # noqa: F811
) -> None:
    """Each connection makes the TEMP ``ops`` view its writes go through; TEMP objects live in
    memory, so a machine whose temp directory cannot be written still opens the ledger."""
    db = new_store()
    if not isinstance(db, SQLiteJobStore):
        pytest.skip("SQLite's TEMP objects")
    conn = db._connection()
    assert conn.execute("PRAGMA temp_store").fetchone() == (2,)  # MEMORY
    found = conn.execute("SELECT type, name FROM sqlite_temp_master ORDER BY name").fetchall()
    assert found == [
        ("view", "ops"),
        ("trigger", "ops_cancel"),
        ("trigger", "ops_cost"),
        ("trigger", "ops_event"),
        ("trigger", "ops_finished"),
        ("trigger", "ops_intent"),
        ("trigger", "ops_status"),
        ("trigger", "ops_submitted"),
    ]


def test_a_sqlite_batch_reads_whether_a_budget_is_set_once(
    new_store: Callable[[], Any],  # noqa: F811
) -> None:
    """A batch holds the file's write lock from its start, so the budget it read cannot change
    under it: 20 budgeted intents read it once, not 20 times (until a budget is set in it), and
    are inserted by one statement."""
    db = new_store()
    if not isinstance(db, SQLiteJobStore):
        pytest.skip("the statement count is SQLite's")
    statements: list[str] = []
    db._connection().set_trace_callback(statements.append)
    fields = {"provider": "mock", "model": "m", "modality": "video", "config": None, "request": None}
    with pytest.raises(LedgerError, match="A write of the batch failed"), db.batch():
        for n in range(20):
            db.record_budgeted_intent(
                f"k{n}", check=NoBudget(), cost=None, owner=None, lease_seconds=LEASE, **fields
            )
        db.set_budget("monthly", {"limit": "0"})
        with pytest.raises(AssertionError, match="no budget is set"):
            db.record_budgeted_intent(
                "k20", check=NoBudget(), cost=None, owner=None, lease_seconds=LEASE, **fields
            )
    reads = [statement for statement in statements if statement.startswith("SELECT budget")]
    assert len(reads) == 2
    # The write lock is taken before the first read and held to the end of the batch.
    assert statements[:2] == ["BEGIN IMMEDIATE", "SELECT budget FROM budgets WHERE name = 'monthly'"]
    # The 20 intents went in together, as one statement, before the budget was set (SQLite
    # reports a statement again for each step of the triggers it runs: the same text).
    inserts = {statement for statement in statements if statement.startswith("INSERT INTO ops")}
    assert len(inserts) == 1 and inserts.pop().count("'intent'") == 20
    assert db.records() == []  # the refused intent failed the batch


def test_a_sqlite_batch_makes_a_jobs_writes_in_one_statement(
    new_store: Callable[[], Any],  # noqa: F811
) -> None:
    """The writes a job makes from its intent to its end, for 10 jobs in one batch, are one
    statement, its own transaction: each statement run from the writer's thread hands the
    interpreter lock to the event loop and back."""
    db = new_store()
    if not isinstance(db, SQLiteJobStore):
        pytest.skip("the statement count is SQLite's")
    statements: list[str] = []
    db._connection().set_trace_callback(statements.append)
    keys = [f"k{n}" for n in range(10)]
    with db.batch():
        for key in keys:
            intent(db, key)
            db.record_submitted(key, job_id=f"job-{key}", job=None, owner="host:1:a", lease_seconds=LEASE)
            db.record_status(key, state="running", detail={"p": 1}, owner="host:1:a", lease_seconds=LEASE)
            db.record_status(key, state="running", detail={"p": 2}, owner="host:1:a", lease_seconds=LEASE)
            db.record_cost(key, cost={"amount": "0.5", "currency": "USD"})
            db.record_cancel(key, detail={"reason": "deadline"})
            db.record_finished(key, state="completed", result={"video": "v.mp4"}, error=None)
    # SQLite reports a statement again for each step of the triggers it runs: the same text.
    [insert] = dict.fromkeys(statements)  # its own transaction: no BEGIN, no COMMIT
    assert insert.startswith("INSERT INTO ops VALUES ") and insert.count("'intent'") == 10
    for key in keys:
        record = db.get(key)
        assert record is not None
        assert (record.state, record.job_id, record.result, record.detail) == (
            "completed",
            f"job-{key}",
            {"video": "v.mp4"},
            {"p": 2},
        )
        assert record.cost == {"amount": "0.5", "currency": "USD"}
        assert history(db, key) == [
            ("intent", "submitting"),
            ("submitted", "submitted"),
            ("status", "running"),
            ("cancel", None),
            ("finished", "completed"),
        ]


def test_a_sqlite_write_of_one_row_outside_a_batch_is_one_statement(
    new_store: Callable[[], Any],  # noqa: F811
) -> None:
    """A job's writes made alone (a sync caller's, or the only one the writer's thread found) are
    each one statement, its own transaction: no BEGIN IMMEDIATE and COMMIT around it, two more
    statements for the writer's thread to hand the interpreter lock over."""
    db = new_store()
    if not isinstance(db, SQLiteJobStore):
        pytest.skip("the statement count is SQLite's")
    statements: list[str] = []
    db._connection().set_trace_callback(statements.append)
    intent(db, "k")
    db.record_submitted("k", job_id="job-k", job=None, owner="host:1:a", lease_seconds=LEASE)
    db.record_status("k", state="running", detail={"p": 1}, owner="host:1:a", lease_seconds=LEASE)
    db.record_cost("k", cost={"amount": "0.5", "currency": "USD"})
    db.record_cancel("k", detail={"reason": "deadline"})
    db.record_finished("k", state="completed", result={"video": "v.mp4"}, error=None)
    # SQLite reports a statement again for each step of the triggers it runs: the same text.
    made = list(dict.fromkeys(statements))
    assert len(made) == 6 and all(statement.startswith("INSERT INTO ops VALUES ") for statement in made)
    record = db.get("k")
    assert record is not None
    assert (record.state, record.job_id, record.result, record.cost) == (
        "completed",
        "job-k",
        {"video": "v.mp4"},
        {"amount": "0.5", "currency": "USD"},
    )
    assert history(db, "k") == [
        ("intent", "submitting"),
        ("submitted", "submitted"),
        ("status", "running"),
        ("cancel", None),
        ("finished", "completed"),
    ]


def test_a_postgres_batch_whose_budget_was_set_meanwhile_stores_nothing(
    new_store: Callable[[], Any],  # noqa: F811
) -> None:
    """A batch reads once that no budget is set and sends its intents with its other writes at
    its end; a budget set by another worker in between refuses them there, and none of the batch
    is stored (its writer then runs each write alone, checked against the budget)."""
    db, other = new_store(), new_store()
    if isinstance(db, SQLiteJobStore):
        pytest.skip("a SQLite batch holds the file's write lock: no budget can be set meanwhile")
    fields = {"provider": "mock", "model": "m", "modality": "video", "config": None, "request": None}
    intent(db, "k0")
    with pytest.raises(LedgerError, match="A budget was set while the batch ran"), db.batch():
        db.record_status("k0", state="running", detail={}, owner="host:1:a", lease_seconds=LEASE)
        db.record_budgeted_intent(
            "k1", check=NoBudget(), cost=None, owner=None, lease_seconds=LEASE, **fields
        )
        other.set_budget("monthly", {"limit": "0"})
        db.record_budgeted_intent(
            "k2", check=NoBudget(), cost=None, owner=None, lease_seconds=LEASE, **fields
        )
    assert [(record.key, record.state) for record in db.records()] == [("k0", "submitting")]
    assert history(db, "k0") == [("intent", "submitting")]


def test_a_postgres_batch_commits_durably_unless_it_holds_only_statuses_and_releases(
    new_store: Callable[[], Any],  # noqa: F811
) -> None:
    """A batch alone is one call of tarash_apply_ops, its own transaction: the function lets it
    commit without waiting for the WAL flush only when every write is a status or a release (as
    those writes alone do), never when it holds an intent, a job id or an end."""
    db = new_store()
    if isinstance(db, SQLiteJobStore):
        pytest.skip("PostgreSQL's synchronous_commit")
    from tarash.tarash_gateway._ledger import pg_sql
    from tarash.tarash_gateway._plain import to_json_text

    intent(db, "k1")
    status = {"op": "status", "key": "k1", "state": "queued", "detail": "{}", "owner": OWNER, "lease": 60}
    release = {"op": "release", "key": "k1", "owner": OWNER}
    finished = {"op": "finished", "key": "k1", "state": "completed", "result": None, "error": None}
    with db._connections().connection() as conn:
        for ops, expected in (
            ([status, release], "off"),
            ([status, finished], "on"),
            ([finished, status], "on"),
        ):
            with conn.transaction(force_rollback=True):
                conn.execute("SET LOCAL synchronous_commit = on")
                conn.execute(pg_sql.APPLY, (to_json_text(ops),))
                assert conn.execute("SHOW synchronous_commit").fetchone() == (expected,)


def test_a_batch_a_write_raised_out_of_stores_nothing(store: JobStore) -> None:  # noqa: F811
    with pytest.raises(ValueError, match="boom"), store.batch():  # type: ignore[attr-defined]
        intent(store, "k1")
        raise ValueError("boom")
    assert store.records() == []


# ----------------------------------------------------------------------------------------------
# Through the gateway
# ----------------------------------------------------------------------------------------------


def test_concurrent_async_generations_share_transactions(tmp_path: Path) -> None:
    log: list[httpx.Request] = []
    ledger = SQLiteJobStore(tmp_path / "jobs.db").open()
    statements: list[str] = []
    ledger._connection().set_trace_callback(statements.append)
    gateway = mock_gateway(log, ledger=ledger)
    gateway.register_plugin(EchoPlugin(), "echo")
    jobs = 40

    async def main() -> None:
        await asyncio.gather(
            *(
                gateway.generate_video_async(echo_config(api_key="k"), VideoGenerationRequest(prompt=f"p{i}"))
                for i in range(jobs)
            )
        )

    asyncio.run(main())
    assert len(log) == jobs
    records = ledger.records()
    assert len(records) == jobs and {(r.state, r.finished) for r in records} == {("completed", True)}
    for record in records:
        assert history(ledger, record.key) == [("intent", "submitting"), ("finished", "completed")]
    # two writes a job (the intent, the end), in fewer transactions than there are jobs
    assert statements.count("COMMIT") < jobs


# ----------------------------------------------------------------------------------------------
# Forks
# ----------------------------------------------------------------------------------------------


def _child_exit_code(pid: int, seconds: float = 20.0) -> int | None:
    """The forked child's exit code, or None (after killing it) when it hangs."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@needs_fork
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_exits_although_a_write_was_running_at_the_fork() -> None:
    from tarash.tarash_gateway._ledger import writer as writer_module

    writer = Writer()
    ran: list[str] = []
    with writer._running:  # the writer's thread is mid-write when the process forks
        writer.queue(lambda: ran.append("parent's"))
        pid = os.fork()
        if pid == 0:
            writer_module._flush_all()  # what the child's interpreter runs at exit
            os._exit(0 if ran == [] else 1)
    assert _child_exit_code(pid) == 0
    writer.flush()
    assert ran == ["parent's"]


async def test_a_claim_whose_batch_did_not_commit_is_made_again_alone(tmp_path: Path) -> None:
    """A claim queued with a write that fails is undone with its batch and made again alone: it
    holds the job then (the process remembered it as held from the batch and refused itself)."""
    with SQLiteJobStore(tmp_path / "jobs.db") as sqlite_store:
        intent(sqlite_store, "job-1", owner=None)
        adapter = LedgerAdapter(sqlite_store)
        gate = await asyncio.to_thread(blocked, adapter.writer)  # off the loop: the thread's queue
        claim = adapter.writer.submit_from_loop(adapter.claimed(sqlite_store.get("job-1")).write)  # type: ignore[arg-type]
        broken = adapter.writer.submit_from_loop(lambda: 1 / 0)
        gate.set()
        assert [await outcome(claim), await outcome(broken)] == [
            True,
            "ZeroDivisionError('division by zero')",
        ]
        record = sqlite_store.get("job-1")
        assert record is not None and record.owner == process_owner()
        again = adapter.writer.submit_from_loop(adapter.claimed(record).write)
        assert await outcome(again) is False  # this process is collecting it


@needs_fork
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_has_an_owner_of_its_own() -> None:
    """The owner id is kept, not rebuilt per write: a fork forgets it, and the child makes its own
    (else the child would hold, and collect, the jobs its parent claimed)."""
    parent = process_owner()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, process_owner().encode())
        os._exit(0)
    assert _child_exit_code(pid) == 0
    child = os.read(read, 1000).decode()
    os.close(read)
    os.close(write)
    assert child.split(":")[1] == str(pid) and child != parent
    assert process_owner() == parent
