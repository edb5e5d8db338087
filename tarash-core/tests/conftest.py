"""Shared fixtures for tarash-core's tests."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator

import pytest
from jobapi import JobServer, running


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No provider credentials from the developer's shell; state files under a temp home."""
    for name in ("FAL_KEY", "EXAMPLE_API_KEY", "TARASH_PLUGINS", "TARASH_DISABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TARASH_HOME", str(tmp_path_factory.mktemp("tarash-home")))


@pytest.fixture
def job_server() -> Iterator[JobServer]:
    with running() as server:
        yield server


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt here, and child processes start with its default action.

    A test process launched in the background or by CI may inherit SIGINT ignored; children would
    inherit that too, and ``_thread.interrupt_main()`` would do nothing.
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
