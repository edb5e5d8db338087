"""Shared fixtures for tarash-core's tests."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import pg
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


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pg.Cluster]:
    """A throwaway PostgreSQL cluster for the session (tests/pg.py).

    Without PostgreSQL (or psycopg) the tests using it are skipped, except under CI, where they
    fail: .ci/run installs Debian's postgresql package and nox the postgres extra.
    """
    missing = None
    if pg.bin_dir() is None:
        missing = "PostgreSQL is not installed (no initdb on PATH or under /usr/lib/postgresql)"
    else:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            missing = "psycopg is not installed: pip install './tarash-core[postgres]'"
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}, and CI is set: the PostgreSQL tests must run in CI", pytrace=False)
        pytest.skip(missing)
    with pg.throwaway_cluster(pg.FAST) as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: pg.Cluster) -> str:
    """The URL of a new, empty database in the session's cluster."""
    return pg_cluster.create_database()
