"""Fixtures: the Example API reference server on a free loopback port, and its counters."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tarash_example_provider.server import ExampleServer

#: Fast timings: a job waits 0.2 s in the queue, then renders for 0.3 s (video) / 0.2 s (image).
TIMINGS = {"queue_seconds": 0.2, "work_seconds": 0.3, "image_work_seconds": 0.2, "workers": 4}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fresh_venv: slow; builds a virtualenv (deselect with -m 'not fresh_venv')"
    )


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt here, and child processes start with its default action.

    A test process launched in the background or by CI may inherit SIGINT ignored, and so would
    the servers it starts: they would never stop on SIGINT.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def reaped() -> Iterator[list[subprocess.Popen[str]]]:
    """Child processes appended here are killed if still running, and waited for, after the test."""
    children: list[subprocess.Popen[str]] = []
    yield children
    for child in children:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=30)


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXAMPLE_API_KEY", raising=False)


# --8<-- [start:server]
@pytest.fixture(scope="session")
def example_server() -> Iterator[ExampleServer]:
    with ExampleServer(port=0, **TIMINGS) as server:
        yield server


@pytest.fixture(scope="session")
def admin(example_server: ExampleServer) -> Iterator[httpx.Client]:
    """A client for the server's admin endpoint (one kept-alive connection for the session)."""
    with httpx.Client(base_url=example_server.url, timeout=5) as client:
        yield client


@pytest.fixture
def server_stats(admin: httpx.Client) -> Callable[[], dict[str, Any]]:
    """The server's ``/_admin/stats``: requests by route, responses by status, jobs by state."""

    def read() -> dict[str, Any]:
        answer = admin.get("/_admin/stats")
        answer.raise_for_status()
        data: dict[str, Any] = answer.json()
        return data

    return read


@pytest.fixture
def stats(server_stats: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, int]]:
    """Request counters by route (submit, status, result, cancel, file)."""
    return lambda: dict(server_stats()["requests"])


# --8<-- [end:server]


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
