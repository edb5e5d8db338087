"""Shared fixtures for tarash-core's tests."""

from __future__ import annotations

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
