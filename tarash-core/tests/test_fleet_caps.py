"""Fleet-wide concurrency slots (``_fleet``): PostgreSQL advisory locks and SQLite ``flock`` files,
exclusive across connections and processes, freed when their holder dies; a caller whose cap is
full fleet-wide times out within its deadline with nothing sent. Worker processes against a
counting server: tarash-example-provider/tests/test_fleet_caps.py."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_gateway import EchoPlugin, echo_config, mock_gateway

from tarash.tarash_gateway import VideoGenerationRequest
from tarash.tarash_gateway._fleet import FileSlots, Slots, slots_of
from tarash.tarash_gateway._ledger.sqlite import SQLiteJobStore
from tarash.tarash_gateway.exceptions import LedgerError, TimeoutError

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="flock")


def pg_slots(url: str) -> Slots:
    from tarash.tarash_gateway._ledger.postgres import PostgresJobStore

    return PostgresJobStore(url).fleet_slots()


@pytest.fixture(params=["sqlite", "postgres"])
def make_slots(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Slots]]:
    """Makes independent holders of the same slots (a process's view each); PostgreSQL's are
    closed after the test."""
    if request.param == "postgres":
        url = str(request.getfixturevalue("pg_url"))
        made: list[Any] = []
        yield lambda: made.append(pg_slots(url)) or made[-1]
        for slots in made:
            slots.close()
        return
    if sys.platform == "win32":
        pytest.skip("flock")
    yield lambda: FileSlots(tmp_path / "jobs.db.slots")


def test_a_slot_is_held_by_one_holder_at_a_time(make_slots: Callable[[], Slots]) -> None:
    first, second = make_slots(), make_slots()
    a = first.take("p", 2)
    b = second.take("p", 2)
    assert a is not None and b is not None
    assert first.take("p", 2) is None and second.take("p", 2) is None
    d = second.take("p/m", 1)
    assert d is not None  # another cap's slots are its own
    first.give(a)
    c = second.take("p", 2)
    assert c is not None and second.take("p", 2) is None
    for slot in (b, c, d):
        second.give(slot)
    e = first.take("p", 1)
    assert e is not None
    first.give(e)


HOLD = """
import sys, time
from tarash.tarash_gateway._fleet import FileSlots
from pathlib import Path
kind, where = sys.argv[1], sys.argv[2]
if kind == "postgres":
    from tarash.tarash_gateway._ledger.postgres import PostgresJobStore
    slots = PostgresJobStore(where).fleet_slots()
else:
    slots = FileSlots(Path(where))
held = slots.take("p", 1)
assert held is not None
print("held", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("kind", [pytest.param("sqlite", marks=posix_only), "postgres"])
def test_a_killed_holder_frees_its_slot(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    where = str(request.getfixturevalue("pg_url")) if kind == "postgres" else str(tmp_path / "jobs.db.slots")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, kind, where], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        slots = pg_slots(where) if kind == "postgres" else FileSlots(Path(where))
        assert slots.take("p", 1) is None
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        # PostgreSQL ends the dead connection's session a moment after the socket closes
        for _ in range(500):
            slot = slots.take("p", 1)
            if slot is not None:
                break
            asyncio.run(asyncio.sleep(0.01))
        assert slot is not None
        slots.give(slot)
        if kind == "postgres":
            slots.close()  # type: ignore[attr-defined]
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.communicate(timeout=30)


@posix_only
def test_a_caller_whose_cap_is_full_fleet_wide_times_out_with_nothing_sent(tmp_path: Path) -> None:
    ledger = tmp_path / "jobs.db"
    log: list[httpx.Request] = []
    gateway = mock_gateway(log, ledger=str(ledger), concurrency={"echo": 1})
    gateway.register_plugin(EchoPlugin(), "echo")
    slots = slots_of(gateway.ledger())
    assert isinstance(slots, FileSlots) and slots.directory == tmp_path / "jobs.db.slots"
    other = FileSlots(slots.directory).take("echo", 1)  # another process's job holds the only slot
    assert other is not None
    with pytest.raises(TimeoutError) as info:
        asyncio.run(
            gateway.generate_video_async(
                echo_config(api_key="k", timeout=0.3), VideoGenerationRequest(prompt="p")
            )
        )
    assert "still waiting for a fleet-wide slot of the concurrency cap 'echo'" in str(info.value)
    gate = gateway.caps.get("echo")
    assert log == [] and gate is not None and gate.held == 0
    assert SQLiteJobStore(ledger).records() == []
    FileSlots(slots.directory).give(other)
    gateway.generate_video(echo_config(api_key="k"), VideoGenerationRequest(prompt="p"))
    assert len(log) == 1 and gate.held == 0
    assert slots.take("echo", 1) is not None  # the job gave its fleet slot back
    gateway.close()


@posix_only
def test_a_caller_queued_on_a_cap_that_is_lifted_takes_no_fleet_slot(tmp_path: Path) -> None:
    log: list[httpx.Request] = []
    gateway = mock_gateway(log, ledger=str(tmp_path / "jobs.db"), concurrency={"echo": 1})
    gateway.register_plugin(EchoPlugin(), "echo")
    gate = gateway.caps.get("echo")
    assert gate is not None and gate.acquire()  # this process's only slot is taken
    errors: list[BaseException] = []

    def call() -> None:
        try:
            gateway.generate_video(echo_config(api_key="k", timeout=10), VideoGenerationRequest(prompt="p"))
        except BaseException as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    while gate.waiting == 0:
        time.sleep(0.001)
    gateway.set_concurrency("echo", None)
    caller.join(timeout=10)
    assert errors == [] and len(log) == 1
    assert not (tmp_path / "jobs.db.slots").exists()  # no fleet slot taken, let alone 2**62 tried
    gate.release()
    gateway.close()


@posix_only
def test_a_fleet_slot_that_cannot_be_taken_refuses_with_nothing_sent(tmp_path: Path) -> None:
    log: list[httpx.Request] = []
    gateway = mock_gateway(log, ledger=str(tmp_path / "jobs.db"), concurrency={"echo": 1})
    gateway.register_plugin(EchoPlugin(), "echo")
    (tmp_path / "jobs.db.slots").write_text("a file where the slots' directory goes")
    with pytest.raises(LedgerError) as info:
        gateway.generate_video(echo_config(api_key="k"), VideoGenerationRequest(prompt="p"))
    assert "could not take a fleet-wide slot of the concurrency cap 'echo' (FileExistsError" in str(
        info.value
    )
    gate = gateway.caps.get("echo")
    assert log == [] and gate is not None and gate.held == 0
    assert SQLiteJobStore(tmp_path / "jobs.db").records() == []
    gateway.close()


@posix_only
def test_a_task_cancelled_while_its_fleet_slot_is_taken_gives_the_slot_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Taking a fleet slot runs in a worker thread, which a cancelled task cannot stop: the slot it
    took is given back, so the cap of 1 still admits the next generation (it timed out waiting)."""
    taking, take = threading.Event(), FileSlots.take

    def slow_take(self: FileSlots, scope: str, limit: int) -> Any:
        taking.set()
        time.sleep(0.3)  # as a PostgreSQL take opening a connection
        return take(self, scope, limit)

    monkeypatch.setattr(FileSlots, "take", slow_take)
    log: list[httpx.Request] = []
    gateway = mock_gateway(log, ledger=str(tmp_path / "jobs.db"), concurrency={"echo": 1})
    gateway.register_plugin(EchoPlugin(), "echo")
    config, request = echo_config(api_key="k", timeout=3), VideoGenerationRequest(prompt="p")

    async def cancel_then_generate() -> Any:
        task = asyncio.create_task(gateway.generate_video_async(config, request))
        await asyncio.to_thread(taking.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await gateway.generate_video_async(config, request)

    response = asyncio.run(cancel_then_generate())
    assert response.request_id == "e-1" and len(log) == 1
    slots = FileSlots(tmp_path / "jobs.db.slots")
    assert slots.take("echo", 1) is not None  # nobody holds it any more
    gateway.close()
