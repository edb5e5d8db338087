"""``tarash webhooks serve`` in its own process (uvicorn) receiving the fake Replicate server's
real, Standard-Webhooks-signed deliveries: the job is completed in the shared ledger without a
single status poll, and a repeated delivery is answered as a duplicate."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tarash.tarash_gateway import set_ledger, submit_video
from tarash.tarash_gateway.jobs import get_ledger
from tarash.tarash_gateway.models import VideoGenerationRequest
from tarash_replicate.testing import FakeReplicateServer

if not os.environ.get("CI"):  # in CI the test must run: nox installs tarash-core[webhooks]
    pytest.importorskip("uvicorn")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "jobs.db"
    set_ledger(path)
    yield path
    set_ledger(None)


@pytest.fixture
def served(fake_replicate: FakeReplicateServer, ledger: Path) -> Iterator[str]:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "tarash.tarash_gateway.cli",
        "webhooks",
        "serve",
        "--port",
        str(port),
        "--option",
        f"replicate.secret={fake_replicate.webhook_secret}",
    ]
    env = {**os.environ, "TARASH_LEDGER": str(ledger)}
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    output = server.stdout.read().decode() if server.stdout else ""
                    pytest.fail(f"tarash webhooks serve did not start: {output}")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/webhooks/replicate"
    finally:
        server.terminate()
        server.wait(10)
        if server.stdout is not None:
            server.stdout.close()


def test_the_served_receiver_completes_the_job_in_the_ledger(
    fake_replicate: FakeReplicateServer, served: str
) -> None:
    config = fake_replicate.video_config(webhook_url=served, poll_interval=60)
    handle = submit_video(config, VideoGenerationRequest(prompt="a cat"))
    fake_replicate.finish(handle.job_id)
    deadline = time.monotonic() + 20
    while not all("status_code" in d for d in fake_replicate.deliveries) and time.monotonic() < deadline:
        time.sleep(0.05)
    [delivery] = fake_replicate.deliveries
    assert (delivery["url"], delivery["event"], delivery["status_code"]) == (served, "completed", 200)
    store = get_ledger()
    assert store is not None
    record = store.get(handle.key)
    assert record is not None and record.finished and record.state == "completed"
    assert record.result is not None
    assert record.result["video"] == fake_replicate.prediction(handle.job_id)["output"]
    assert fake_replicate.counts["status"] == 0 and fake_replicate.counts["submit"] == 1
    again = httpx.post(served, content=delivery["body"], headers=delivery["headers"])
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    tampered = httpx.post(served, content=delivery["body"] + b" ", headers=delivery["headers"])
    assert tampered.status_code == 401


def test_a_cancelled_prediction_is_recorded_cancelled(
    fake_replicate: FakeReplicateServer, served: str
) -> None:
    config = fake_replicate.video_config(webhook_url=served, poll_interval=60)
    handle = submit_video(config, VideoGenerationRequest(prompt="a cat"))
    fake_replicate.finish(handle.job_id, "canceled")
    deadline = time.monotonic() + 20
    while not all("status_code" in d for d in fake_replicate.deliveries) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [d["status_code"] for d in fake_replicate.deliveries] == [200]
    store = get_ledger()
    assert store is not None
    record = store.get(handle.key)
    assert record is not None and record.finished and record.state == "cancelled"
    assert fake_replicate.counts["status"] == 0
