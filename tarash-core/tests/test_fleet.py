"""A fleet on one PostgreSQL ledger: two machines, workers killed mid-poll, resumers on both.

The machines are simulated as processes with their own data dir (``TARASH_HOME``) and host name
(so a worker's owner id names its machine, and a resumer on the other machine cannot see its
processes): what they share is the ledger database of the session's throwaway cluster, and the
provider (tests/jobapi.py's counting server on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from jobapi import installed, make_plugin, running

TESTS = Path(__file__).parent
ROUNDS = 10
JOBS_PER_WORKER = 2
POLL_INTERVAL = 0.1
#: Status polls a job stays queued for: its worker is killed while polling, long before the end.
QUEUE_POLLS = 15


def _become(machine: str) -> None:
    """This process is on ``machine``, with the jobapi provider installed."""
    socket.gethostname = lambda: machine  # type: ignore[assignment]
    from tarash.tarash_gateway._plugins import HOST

    HOST.register_plugin_object(make_plugin("jobapi"), "jobapi")


def fleet_config(url: str) -> Any:
    """A worker's config: the jobapi provider at ``url``."""
    from tarash.tarash_gateway.models import VideoGenerationConfig

    return VideoGenerationConfig(
        model="j1",
        provider="jobapi",
        base_url=url,
        api_key="fleet-key-0001",
        poll_interval=POLL_INTERVAL,
        timeout=120,
    )


def _await(path: str) -> None:
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        assert time.monotonic() < deadline
        time.sleep(0.005)


def child_worker(raw: str) -> None:
    """Child: once its go file appears, generate several videos at once until it is killed, on
    threads (the sync API) or on one event loop (the async API, whose ledger writes are made on
    the loop's own connection)."""
    args = json.loads(raw)
    _become(args["machine"])
    from tarash.tarash_gateway import generate_video, generate_video_async
    from tarash.tarash_gateway.jobs import get_ledger
    from tarash.tarash_gateway.models import VideoGenerationRequest

    assert get_ledger() is not None
    print("ready", flush=True)
    _await(args["go"])

    config = fleet_config(os.environ["JOBAPI_URL"])
    requests = [VideoGenerationRequest(f"{args['name']} {i}") for i in range(JOBS_PER_WORKER)]
    if args["api"] == "async":

        async def main() -> None:
            await asyncio.gather(*(generate_video_async(config, request) for request in requests))

        asyncio.run(main())
        return
    threads = [threading.Thread(target=generate_video, args=(config, request)) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def child_resumer(raw: str) -> None:
    """Child: resume the ledger again and again until its stop file appears and nothing is left."""
    args = json.loads(raw)
    _become(args["machine"])
    from tarash.tarash_gateway import list_jobs, resume

    completed: list[str] = []
    other: list[tuple[str, str]] = []
    print("ready", flush=True)
    while True:
        stopping = os.path.exists(args["stop"])
        for outcome in resume():
            if outcome.state == "completed":
                completed.append(outcome.key)
            elif outcome.state != "claimed":
                other.append((outcome.key, outcome.state))
        if stopping and not list_jobs("unfinished"):
            break
        time.sleep(0.05)
    print(json.dumps({"completed": completed, "other": other}))


def _spawn(function: str, args: dict[str, Any], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sys, test_fleet; test_fleet.{function}(sys.argv[1])",
            json.dumps(args),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("api", ["sync", "async"])
def test_workers_killed_mid_poll_are_resumed_once_across_two_machines(
    api: str, pg_url: str, tmp_path: Path
) -> None:
    from tarash.tarash_gateway._ledger.postgres import PostgresJobStore

    stop = tmp_path / "stop"
    with running(queue_polls=QUEUE_POLLS) as server, PostgresJobStore(pg_url) as ledger:

        def env(machine: str) -> dict[str, str]:
            home = tmp_path / machine
            home.mkdir(exist_ok=True)
            return {
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
                "TARASH_HOME": str(home),
                "TARASH_LEDGER": pg_url,
                "JOBAPI_URL": server.url,
            }

        resumers = {
            machine: _spawn("child_resumer", {"machine": machine, "stop": str(stop)}, env(machine))
            for machine in ("machine-a", "machine-b")
        }
        workers = [
            _spawn(
                "child_worker",
                {"machine": "machine-a", "name": f"round {i}", "go": str(tmp_path / f"go-{i}"), "api": api},
                env("machine-a"),
            )
            for i in range(ROUNDS)
        ]
        for proc in [*resumers.values(), *workers]:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        killed: list[str] = []
        for round_, worker in enumerate(workers):
            (tmp_path / f"go-{round_}").write_text("go")
            mine = f"machine-a:{worker.pid}:"

            def polling() -> list[Any]:
                return [
                    r
                    for r in ledger.records()
                    if r.owner and r.owner.startswith(mine) and r.state in ("queued", "processing")  # noqa: B023
                ]

            deadline = time.monotonic() + 30
            while len(jobs := polling()) < JOBS_PER_WORKER:
                assert worker.poll() is None, worker.communicate()[1]
                assert time.monotonic() < deadline, "the worker never started polling"
                time.sleep(0.01)
            print("round", round_, time.monotonic(), flush=True)
            worker.send_signal(signal.SIGKILL)
            worker.communicate(timeout=30)
            assert worker.returncode == -signal.SIGKILL
            killed += [job.key for job in jobs]
        print("stop", time.monotonic(), flush=True)
        stop.write_text("stop")
        results = {}
        for machine, proc in resumers.items():
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            results[machine] = json.loads(out.strip().splitlines()[-1])

        assert len(killed) == ROUNDS * JOBS_PER_WORKER
        a, b = (results[m]["completed"] for m in ("machine-a", "machine-b"))
        assert results["machine-a"]["other"] == results["machine-b"]["other"] == []
        assert not set(a) & set(b), "a job was collected on both machines"
        assert sorted(a + b) == sorted(killed), "a job was not collected, or twice on one machine"
        assert server.counts["submit"] == len(killed)
        results_fetched = collections.Counter(path for kind, path in server.events if kind == "result")
        assert set(results_fetched.values()) == {1}
        assert len(results_fetched) == len(killed)
        for key in killed:
            record = ledger.get(key)
            assert record is not None and (record.state, record.finished, record.owner) == (
                "completed",
                True,
                None,
            )
            assert [e.kind for e in ledger.events(key)].count("finished") == 1


def _generating(api: str, config: Any, request: Any) -> tuple[threading.Thread, list[Any]]:
    """A started thread generating one video with the sync or the async API, and the list its
    outcome (the response, or what was raised) is appended to."""
    from tarash.tarash_gateway import generate_video, generate_video_async

    outcomes: list[Any] = []

    def work() -> None:
        try:
            if api == "async":
                outcomes.append(asyncio.run(generate_video_async(config, request)))
            else:
                outcomes.append(generate_video(config, request))
        except BaseException as exc:
            outcomes.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    return thread, outcomes


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_live_worker_whose_hold_lapsed_leaves_the_job_to_the_worker_that_took_it(
    api: str, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's liveness connection drops while it polls (an idle-session timeout, a proxy
    recycling it): its lock is free, so another machine's resumer may take the job while the
    lease still runs. The first worker then fetches no result and writes no end: one worker
    collects each job."""
    import psycopg

    from tarash.tarash_gateway import set_ledger
    from tarash.tarash_gateway._ledger.postgres import PostgresJobStore
    from tarash.tarash_gateway.exceptions import JobTakenOverError
    from tarash.tarash_gateway.models import VideoGenerationRequest

    monkeypatch.delenv("TARASH_LEDGER", raising=False)
    set_ledger(pg_url)
    other = "machine-b:1:resumer"
    try:
        with running(queue_polls=60) as server, installed(make_plugin("jobapi"), "jobapi"):
            worker, raised = _generating(api, fleet_config(server.url), VideoGenerationRequest("taken over"))
            with PostgresJobStore(pg_url) as ledger, psycopg.connect(pg_url, autocommit=True) as admin:
                deadline = time.monotonic() + 30
                while not (polling := [r for r in ledger.records() if r.state == "queued"]):
                    assert time.monotonic() < deadline, "the worker never started polling"
                    time.sleep(0.01)
                (job,) = polling
                mine = job.owner
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
                )
                while not ledger.claim(job.key, owner=other, lease_seconds=600):
                    assert time.monotonic() < deadline, "the lapsed worker's job never became free"
                    time.sleep(0.01)
                worker.join(timeout=60)
                record = ledger.get(job.key)
                events = [e.kind for e in ledger.events(job.key)]
            assert not worker.is_alive()
            assert [type(e) for e in raised] == [JobTakenOverError], "it collected a job taken over"
            error = raised[0]
            assert isinstance(error, JobTakenOverError)
            assert error.ledger_key == job.key and error.request_id == job.job_id
            assert server.counts["submit"] == 1
            assert server.counts["result"] == 0, "the worker that lost the job fetched its result"
            assert server.counts["cancel"] == 0
            assert record is not None
            assert (record.owner, record.finished, record.state) == (other, False, "completed")
            assert "finished" not in events and events.count("claim") == 1
            assert mine is not None and mine != other
    finally:
        set_ledger(None)


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_worker_still_polling_collects_a_job_a_delivery_ended_on_another_worker(
    api: str, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind a load balancer a provider's webhook lands on any worker, whose receiver records the
    job's end in the shared ledger (no claim: the job is not taken from its worker). The worker
    still polling the job goes on and collects it: its result, not JobTakenOverError."""
    from tarash.tarash_gateway import set_ledger
    from tarash.tarash_gateway._ledger.postgres import PostgresJobStore
    from tarash.tarash_gateway.models import VideoGenerationRequest, VideoGenerationResponse

    monkeypatch.delenv("TARASH_LEDGER", raising=False)
    set_ledger(pg_url)
    try:
        with running(queue_polls=20) as server, installed(make_plugin("jobapi"), "jobapi"):
            request = VideoGenerationRequest("ended by a delivery")
            worker, outcomes = _generating(api, fleet_config(server.url), request)
            with PostgresJobStore(pg_url) as receiver:
                deadline = time.monotonic() + 30
                while not (polling := [r for r in receiver.records() if r.state == "queued"]):
                    assert time.monotonic() < deadline, "the worker never started polling"
                    time.sleep(0.01)
                (job,) = polling
                delivered = {"request_id": job.job_id, "video": "https://cdn.invalid/delivered.mp4"}
                receiver.record_finished(job.key, state="completed", result=delivered, error=None)
                worker.join(timeout=60)
                record = receiver.get(job.key)
                events = [e.kind for e in receiver.events(job.key)]
            assert not worker.is_alive()
            assert [type(outcome) for outcome in outcomes] == [VideoGenerationResponse], outcomes
            assert outcomes[0].request_id == job.job_id
            assert server.counts["submit"] == 1 and server.counts["result"] == 1
            assert record is not None and (record.finished, record.state) == (True, "completed")
            assert events.count("finished") == 2 and "claim" not in events
    finally:
        set_ledger(None)
