"""A budget holds when many callers start at the same instant: its check and the intent it admits
are one transaction serialised per budget (SQLite: one ``BEGIN IMMEDIATE``; PostgreSQL: the
budget row locked ``FOR UPDATE``), so processes or threads sharing a ledger never together pass
the last of it. And a budget that cannot be checked refuses (unless set ``fail_open``).

Every caller generates one video priced 1.00 USD (tests/jobapi.py's counting server, with a
pricing rule added) against a budget of ``K`` USD a day: exactly ``K`` are submitted, the others
get BudgetExceededError and the server never hears of them.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jobapi import JobServer, make_plugin, running

from tarash.tarash_gateway import Gateway
from tarash.tarash_gateway.exceptions import BudgetExceededError, BudgetUnavailableError, LedgerError
from tarash.tarash_gateway.models import VideoGenerationConfig, VideoGenerationRequest
from tarash.tarash_gateway.plugin import PricingRule, hookimpl

CALLERS = 6
FITS = 3


def priced_gateway(ledger: str, price: str = "1.00", currency: str = "USD") -> Gateway:
    """A gateway on ``ledger`` with the jobapi provider, its videos priced ``price`` each."""
    plugin = make_plugin("jobapi")

    @hookimpl
    def pricing_rules(provider: str) -> list[PricingRule]:
        return [PricingRule(prefix="", modality="video", unit="video")]

    plugin.pricing_rules = pricing_rules  # type: ignore[attr-defined]
    gateway = Gateway(ledger=ledger)
    gateway.register_plugin(plugin, "jobapi")
    gateway.set_price("jobapi", "j1", unit="video", price=price, currency=currency)
    return gateway


def close(gateway: Gateway) -> None:
    """Close the gateway and its ledger's store (a Gateway leaves the store it opened open)."""
    gateway.ledger().store.close()  # type: ignore[union-attr]
    gateway.close()


def video_config(url: str) -> VideoGenerationConfig:
    return VideoGenerationConfig(
        provider="jobapi", model="j1", base_url=url, api_key="budget-key-0001", poll_interval=0.01, timeout=60
    )


def generate(gateway: Gateway, url: str, prompt: str) -> str:
    """``generated``, or the name of the error that refused the call."""
    try:
        gateway.generate_video(video_config(url), VideoGenerationRequest(prompt))
    except (BudgetExceededError, LedgerError) as exc:
        return type(exc).__name__
    return "generated"


def child(raw: str) -> None:
    """Child process: open the ledger, say ready, wait for the go file, generate one video."""
    args = json.loads(raw)
    gateway = priced_gateway(args["ledger"])
    assert gateway.budget() is not None  # the ledger is open and the budget is seen
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(args["go"]):
        assert time.monotonic() < deadline
        time.sleep(0.001)
    print(generate(gateway, args["url"], args["name"]), flush=True)


@pytest.fixture
def server() -> Iterator[JobServer]:
    with running(queue_polls=0, processing_polls=0) as started:
        yield started


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "data" / "jobs.db")


def outcome(server: JobServer, ledger: str, results: list[str]) -> None:
    """Exactly FITS generated and submitted; the rest refused before anything was sent."""
    assert Counter(results) == {"generated": FITS, "BudgetExceededError": CALLERS - FITS}
    assert server.counts["submit"] == FITS
    gateway = priced_gateway(ledger)
    try:
        store = gateway.ledger().store  # type: ignore[union-attr]
        assert type(store).__name__ == ("PostgresJobStore" if "://" in ledger else "SQLiteJobStore")
        assert gateway.budget() == {"amount": str(FITS), "currency": "USD", "period": "day", "spent": "3.00"}
        assert len(gateway.ledger().store.records()) == FITS  # type: ignore[union-attr]
    finally:
        close(gateway)


def test_processes_starting_together_never_overspend_the_budget(
    server: JobServer, ledger: str, tmp_path: Path
) -> None:
    setup = priced_gateway(ledger)
    setup.set_budget(str(FITS), period="day")
    close(setup)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    env.pop("TARASH_LEDGER", None)
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, test_budget_race; test_budget_race.child(sys.argv[1])",
                json.dumps({"ledger": ledger, "url": server.url, "go": str(go), "name": f"p{i}"}),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(CALLERS)
    ]
    try:
        for process in children:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready", process.stderr.read()  # type: ignore[union-attr]
        go.touch()  # the barrier: every child is waiting on it, ledger open, price known
        results = []
        for process in children:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
            results.append(out.strip())
    finally:
        for process in children:
            if process.poll() is None:
                process.kill()
                process.communicate()
    outcome(server, ledger, results)


def test_threads_starting_together_never_overspend_the_budget(server: JobServer, ledger: str) -> None:
    gateway = priced_gateway(ledger)
    gateway.set_budget(str(FITS), period="day")
    barrier = threading.Barrier(CALLERS)
    results: list[str] = []

    def caller(i: int) -> None:
        barrier.wait()
        results.append(generate(gateway, server.url, f"t{i}"))

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    close(gateway)
    outcome(server, ledger, results)


# -- a budget that cannot be checked -----------------------------------------------------------


def test_a_budget_that_cannot_be_checked_refuses_unless_set_fail_open(
    server: JobServer, ledger: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An estimate in another currency cannot be checked against the budget: refused with
    BudgetUnavailableError (nothing sent); with ``fail_open=True`` it goes ahead, logged."""
    gateway = priced_gateway(ledger, currency="EUR")
    gateway.set_budget("5", period="month")
    with pytest.raises(BudgetUnavailableError, match=r"expected cost is in EUR, the budget in USD"):
        gateway.generate_video(video_config(server.url), VideoGenerationRequest("x"))
    assert server.counts["submit"] == 0
    assert gateway.ledger().store.records() == []  # type: ignore[union-attr]
    gateway.set_budget("5", period="month", fail_open=True)
    with caplog.at_level(logging.WARNING, logger="tarash.costs"):
        gateway.generate_video(video_config(server.url), VideoGenerationRequest("x"))
    assert server.counts["submit"] == 1
    assert "going ahead: it was set fail_open" in caplog.text
    assert gateway.budget() == {
        "amount": "5",
        "currency": "USD",
        "period": "month",
        "fail_open": True,
        "spent": "0",
    }
    close(gateway)


def test_an_unreadable_cost_or_budget_refuses(server: JobServer, tmp_path: Path) -> None:
    gateway = priced_gateway(str(tmp_path / "jobs.db"))
    store = gateway.ledger().store  # type: ignore[union-attr]
    gateway.set_budget("5", period="day")
    assert generate(gateway, server.url, "x") == "generated"
    [job] = store.records()
    store.record_cost(job.key, cost={"amount": "lots", "currency": "USD"})
    with pytest.raises(BudgetUnavailableError, match=r"a cost recorded in the ledger cannot be read"):
        gateway.generate_video(video_config(server.url), VideoGenerationRequest("y"))
    store.set_budget("default", {"amount": "5", "currency": "USD", "period": "fortnight"})
    with pytest.raises(BudgetUnavailableError, match=r"budget in the job ledger cannot be read.*'fortnight'"):
        gateway.generate_video(video_config(server.url), VideoGenerationRequest("z"))
    assert server.counts["submit"] == 1
    assert len(store.records()) == 1
    close(gateway)


def test_a_ledger_failing_during_the_check_fails_closed(server: JobServer, tmp_path: Path) -> None:
    gateway = priced_gateway(str(tmp_path / "jobs.db"))
    gateway.set_budget("5", period="day")
    store = gateway.ledger().store  # type: ignore[union-attr]

    def broken(conn: Any, since: float) -> list[dict[str, Any]]:
        raise OSError("disk I/O error")

    store._costs = broken  # type: ignore[method-assign]
    with pytest.raises(
        LedgerError, match=r"could not record the submit intent \(OSError: disk I/O error\)"
    ) as caught:
        gateway.generate_video(video_config(server.url), VideoGenerationRequest("x"))
    assert not isinstance(caught.value, BudgetUnavailableError)
    assert server.counts["submit"] == 0
    del store._costs
    assert store.records() == []
    close(gateway)
