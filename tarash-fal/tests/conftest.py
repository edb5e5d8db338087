"""Shared fixtures: the fake fal server (``fake_fal``) and a factory for configured ones."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tarash_fal.testing import FakeFalServer

pytest_plugins = ["tarash_fal.testing"]


@pytest.fixture
def make_server() -> Iterator[Callable[..., FakeFalServer]]:
    """Start FakeFalServers with custom settings; all are stopped after the test."""
    from tarash.tarash_gateway import default_gateway
    from tarash_fal.testing import FakeFalServer

    servers: list[FakeFalServer] = []

    def make(**kwargs: Any) -> FakeFalServer:
        server = FakeFalServer(**kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
    default_gateway().transport.close()


@pytest.fixture(autouse=True)
def _no_ambient_fal_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests decide explicitly whether a key comes from the environment."""
    for name in ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database in a throwaway PostgreSQL cluster (tarash-core/tests/pg.py), for the tests of a
    fleet's shared ledger. Skipped without PostgreSQL or psycopg, except under CI, where nox
    installs them and the tests must run."""
    path = Path(__file__).resolve().parents[2] / "tarash-core" / "tests" / "pg.py"
    spec = importlib.util.spec_from_file_location("tarash_core_pg", path)
    assert spec is not None and spec.loader is not None
    pg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pg)
    if not os.environ.get("CI"):
        if pg.bin_dir() is None:
            pytest.skip("PostgreSQL is not installed")
        pytest.importorskip("psycopg")
    with pg.throwaway_cluster(pg.FAST) as cluster:
        yield cluster.create_database()
