"""Fleet-wide concurrency caps (core's ``_fleet``): worker processes sharing one PostgreSQL
ledger hold a cap's slots together, and a worker killed while holding one frees it.

Each worker is a process of its own (its own ``TARASH_HOME``), capped ``example=2`` on the shared
ledger, generating its jobs from as many threads at once; the reference server counts the jobs
open at once from its side (submitted, not yet collected).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tarash_example_provider.server import ExampleServer

CAP = 2
KEY = "example-test-key-0001"
HERE = Path(__file__).parent


def _pg_module() -> Any:
    """tarash-core's throwaway-cluster helper (tarash-core/tests/pg.py)."""
    path = HERE.parents[1] / "tarash-core" / "tests" / "pg.py"
    spec = importlib.util.spec_from_file_location("tarash_core_pg", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    pg = _pg_module()
    if not os.environ.get("CI"):  # in CI, the PostgreSQL tests must run (nox installs psycopg)
        if pg.bin_dir() is None:
            pytest.skip("PostgreSQL is not installed")
        pytest.importorskip("psycopg")
    with pg.throwaway_cluster(pg.FAST) as cluster:
        yield cluster.create_database()


@pytest.fixture
def server() -> Iterator[ExampleServer]:
    with ExampleServer(port=0, queue_seconds=0.05, work_seconds=0.2, workers=16, max_active_jobs=64) as fresh:
        yield fresh


def worker(raw: str) -> None:
    """Child process: generate ``jobs`` videos from as many threads, capped fleet-wide."""
    import threading

    from tarash.tarash_gateway import Gateway
    from tarash.tarash_gateway.models import VideoGenerationConfig, VideoGenerationRequest

    args = json.loads(raw)
    gateway = Gateway(ledger=args["ledger"], concurrency={"example": CAP})
    config = VideoGenerationConfig(
        provider="example",
        model="example-video-1",
        api_key=KEY,
        base_url=args["url"],
        poll_interval=0.05,
        timeout=120,
    )
    done: list[str] = []

    def one(i: int) -> None:
        response = gateway.generate_video(config, VideoGenerationRequest(prompt=f"{args['name']}-{i}"))
        if response.video:
            done.append(f"{args['name']}-{i}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(args["jobs"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(sorted(done)), flush=True)


def start(name: str, jobs: int, ledger: str, url: str, home: Path) -> subprocess.Popen[str]:
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TARASH_HOME": str(home), "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    env.pop("TARASH_CONCURRENCY", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, test_fleet_caps; test_fleet_caps.worker(sys.argv[1])",
            json.dumps({"name": name, "jobs": jobs, "ledger": ledger, "url": url}),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str]) -> list[str]:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return list(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "store",
    ["postgres", pytest.param("sqlite", marks=pytest.mark.skipif(sys.platform == "win32", reason="flock"))],
)
def test_four_workers_with_a_fleet_cap_of_2_run_12_jobs_2_at_a_time(
    store: str, request: pytest.FixtureRequest, server: ExampleServer, tmp_path: Path
) -> None:
    """(SQLite: one ledger file shared by the workers of one machine.)"""
    ledger = str(request.getfixturevalue("pg_url")) if store == "postgres" else str(tmp_path / "jobs.db")
    workers = [start(f"w{n}", 3, ledger, server.url, tmp_path / f"w{n}") for n in range(4)]
    results = [finished(process) for process in workers]

    assert results == [[f"w{n}-{i}" for i in range(3)] for n in range(4)]
    assert server.service.requests["submit"] == 12
    assert server.service.requests["result"] == 12
    assert server.service.max_open_jobs == CAP
    assert server.service.open_jobs == set()


def test_a_worker_killed_holding_slots_frees_them(pg_url: str, server: ExampleServer, tmp_path: Path) -> None:
    victim = start("victim", CAP, pg_url, server.url, tmp_path / "victim")
    deadline = time.monotonic() + 60
    while len(server.service.open_jobs) < CAP:
        assert victim.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    orphans = set(server.service.open_jobs)
    assert len(orphans) == CAP  # submitted by the victim, never collected: left for resume()

    workers = [start(f"w{n}", 3, pg_url, server.url, tmp_path / f"w{n}") for n in range(2)]
    results = [finished(process) for process in workers]

    assert results == [[f"w{n}-{i}" for i in range(3)] for n in range(2)]
    assert server.service.requests["submit"] == CAP + 6
    assert server.service.open_jobs == orphans
    # the victim's orphans plus at most the cap of the living workers' jobs, never more
    assert server.service.max_open_jobs == 2 * CAP
