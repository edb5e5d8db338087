"""The tarash-core provider conformance kit, run against tarash-fal and the fake fal server."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from tarash.tarash_gateway.testing import ConfigFactory, ProviderConformanceTests
from tarash_fal.testing import FakeFalServer

pytest_plugins = ["tarash.tarash_gateway.testing.plugin"]

REJECTED = {"detail": [{"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"}]}
FAILED = {"status": "COMPLETED", "logs": [], "error": "runner crashed", "error_type": "runner_disconnected"}


@pytest.fixture
def fal_servers(tarash_api_key: str) -> Iterator[dict[str, FakeFalServer]]:
    """A normal server and one whose jobs stay queued (for the deadline/cancel test)."""
    from tarash.tarash_gateway import default_gateway

    servers = {
        "ok": FakeFalServer(api_key=tarash_api_key).start(),
        "slow": FakeFalServer(api_key=tarash_api_key, queue_polls=10**6).start(),
    }
    yield servers
    for server in servers.values():
        server.stop()
    default_gateway().transport.close()


class TestFalConformance(ProviderConformanceTests):
    @pytest.fixture
    def provider_name(self) -> str:
        return "fal"

    @pytest.fixture
    def make_config(self, fal_servers: dict[str, FakeFalServer]) -> ConfigFactory:
        ok, slow = fal_servers["ok"], fal_servers["slow"]

        def make(modality: str, scenario: str) -> Any:
            server = slow if scenario == "slow" else ok
            if scenario == "rejected":
                ok.inject("submit", status_code=422, body=REJECTED)
            elif scenario == "server_error":
                ok.inject("submit", status_code=500)
            elif scenario == "rate_limited":
                ok.inject("status", status_code=429, retry_after=60, times=1000)
            elif scenario == "job_failed":
                ok.inject("status", status_code=200, body=FAILED, times=1000)
            elif scenario == "lost_answer":
                ok.inject("submit", "drop")
            extra: dict[str, Any] = {}
            if scenario == "unreachable":
                extra["base_url"] = "https://127.0.0.1:9"
            if modality == "video":
                return server.video_config(model="fal-ai/veo3", **extra)
            return server.image_config(model="fal-ai/flux/dev", **extra)

        return make

    @pytest.fixture
    def server_counts(self, fal_servers: dict[str, FakeFalServer]) -> Callable[[], Mapping[str, int]]:
        def counts() -> Mapping[str, int]:
            return {
                kind: fal_servers["ok"].counts[kind] + fal_servers["slow"].counts[kind]
                for kind in ("submit", "status", "result", "cancel")
            }

        return counts
