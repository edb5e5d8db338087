"""tarash-core's provider conformance kit, run against tarash-replicate and the fake Replicate API."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tarash.tarash_gateway.models import ImageGenerationConfig, VideoGenerationConfig
from tarash.tarash_gateway.testing import ConfigFactory, ProviderConformanceTests
from tarash_replicate.testing import FakeReplicateServer

pytest_plugins = ["tarash.tarash_gateway.testing.plugin"]

#: Kit scenario -> the fake's fault path prefix ("" = none). "rejected" is a 422 naming a field.
FAULT_PREFIXES = {
    "ok": "",
    "slow": "/_faults/slow",
    "rejected": "/_faults/submit-422",
    "server_error": "/_faults/submit-500",
    "rate_limited": "/_faults/status-429",
    "job_failed": "/_faults/job-fails",
}


@pytest.fixture(scope="module")
def kit_server() -> Iterator[FakeReplicateServer]:
    with FakeReplicateServer(api_token=None, starting_polls=2, processing_polls=2) as server:
        yield server


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestReplicateConformance(ProviderConformanceTests):
    @pytest.fixture
    def provider_name(self) -> str:
        return "replicate"

    @pytest.fixture
    def make_config(self, kit_server: FakeReplicateServer, closed_port: int) -> ConfigFactory:
        def make(modality: str, scenario: str) -> Any:
            if scenario == "unreachable":
                base_url = f"http://127.0.0.1:{closed_port}"
            elif scenario == "lost_answer":
                kit_server.inject("submit", "drop")
                base_url = kit_server.url
            else:
                base_url = kit_server.url + FAULT_PREFIXES[scenario]
            if modality == "video":
                return VideoGenerationConfig(
                    provider="replicate",
                    model="google/veo-3",
                    base_url=base_url,
                    poll_interval=0.05,
                    timeout=20,
                )
            return ImageGenerationConfig(
                provider="replicate",
                model="google/imagen-4",
                base_url=base_url,
                poll_interval=0.05,
                timeout=20,
            )

        return make

    @pytest.fixture
    def server_counts(self, kit_server: FakeReplicateServer) -> Callable[[], dict[str, int]]:
        return lambda: kit_server.counts
