"""Shared fixtures: the fake fal server (``fake_fal``) and a factory for configured ones."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
