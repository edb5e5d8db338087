"""The tarash-core provider conformance kit, run against the example provider and its server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tarash.tarash_gateway.models import ImageGenerationConfig, VideoGenerationConfig
from tarash.tarash_gateway.testing import ConfigFactory, ProviderConformanceTests
from tarash_example_provider.server import ExampleServer

pytest_plugins = ["tarash.tarash_gateway.testing.plugin"]

# --8<-- [start:scenarios]
#: Kit scenario -> fault path prefix of the reference server ("" = no fault).
FAULT_PREFIXES = {
    "ok": "",
    "slow": "/_faults/slow",
    "rejected": "/_faults/submit-422",
    "server_error": "/_faults/submit-500",
    "rate_limited": "/_faults/status-429",
    "job_failed": "/_faults/job-fails",
    "lost_answer": "/_faults/submit-drop",
}


class TestExampleConformance(ProviderConformanceTests):
    @pytest.fixture
    def provider_name(self) -> str:
        return "example"

    @pytest.fixture
    def make_config(self, example_server: ExampleServer, closed_port: int) -> ConfigFactory:
        def make(modality: str, scenario: str) -> Any:
            if scenario == "unreachable":
                base_url = f"http://127.0.0.1:{closed_port}"
            else:
                base_url = example_server.url + FAULT_PREFIXES[scenario]
            if modality == "video":
                return VideoGenerationConfig(
                    provider="example",
                    model="example-video-1",
                    base_url=base_url,
                    poll_interval=0.05,
                    timeout=20,
                )
            return ImageGenerationConfig(
                provider="example",
                model="example-image-1",
                base_url=base_url,
                poll_interval=0.05,
                timeout=20,
            )

        return make

    @pytest.fixture
    def server_counts(self, stats: Callable[[], dict[str, int]]) -> Callable[[], dict[str, int]]:
        return stats


# --8<-- [end:scenarios]
