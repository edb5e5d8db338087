"""The tarash-core provider conformance kit, run against both providers and the fake servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tarash.tarash_gateway.models import ImageGenerationConfig, VideoGenerationConfig
from tarash.tarash_gateway.testing import ConfigFactory, ProviderConformanceTests
from tarash_google.testing import FakeGoogle

pytest_plugins = ["tarash.tarash_gateway.testing.plugin"]

#: Kit scenario -> fault path prefix of the fake ("" = no fault).
FAULT_PREFIXES = {
    "ok": "",
    "slow": "/_faults/slow",
    "rejected": "/_faults/submit-400",
    "server_error": "/_faults/submit-500",
    "rate_limited": "/_faults/status-429",
    "job_failed": "/_faults/job-fails",
}
MODELS = {
    "google": {"video": "veo-3.0-generate-001", "image": "gemini-2.5-flash-image"},
    "google-vertex": {"video": "veo-3.0-generate-001", "image": "imagen-4.0-generate-001"},
}


@pytest.fixture
def kit_fake(tarash_api_key: str) -> Iterator[FakeGoogle]:
    with FakeGoogle(api_key=tarash_api_key) as fake:
        yield fake


class _GoogleConformance(ProviderConformanceTests):
    @pytest.fixture
    def make_config(
        self, provider_name: str, kit_fake: FakeGoogle, closed_port: int, tmp_path: Path
    ) -> ConfigFactory:
        provider_config = (
            {"credentials_file": kit_fake.service_account_file(tmp_path)}
            if provider_name == "google-vertex"
            else {}
        )

        def make(modality: str, scenario: str) -> Any:
            if scenario == "unreachable":
                base_url = f"http://127.0.0.1:{closed_port}"
            elif scenario == "lost_answer":
                kit_fake.inject("submit", drop=True)
                base_url = kit_fake.url
            else:
                base_url = kit_fake.url + FAULT_PREFIXES[scenario]
            config_type = VideoGenerationConfig if modality == "video" else ImageGenerationConfig
            return config_type(
                provider=provider_name,
                model=MODELS[provider_name][modality],
                base_url=base_url,
                provider_config=provider_config,
                poll_interval=0.05,
                timeout=20,
            )

        return make

    @pytest.fixture
    def server_counts(self, kit_fake: FakeGoogle) -> Callable[[], dict[str, int]]:
        return lambda: {kind: kit_fake.counts[kind] for kind in ("submit", "status", "result", "cancel")}


class TestGeminiApiConformance(_GoogleConformance):
    @pytest.fixture
    def provider_name(self) -> str:
        return "google"


class TestVertexConformance(_GoogleConformance):
    @pytest.fixture
    def provider_name(self) -> str:
        return "google-vertex"
