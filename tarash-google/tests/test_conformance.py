"""The tarash-core provider conformance kit, run against both providers and the fake servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tarash_google.testing import FakeGoogle

from tarash.tarash_gateway.models import ImageGenerationConfig, VideoGenerationConfig
from tarash.tarash_gateway.testing import ConfigFactory, ProviderConformanceTests
from tarash.tarash_gateway.testing._suite import Harness

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


#: The kit's Harness.call_hook and test_capabilities_match_hooks still call PluginHost.impl, which
#: "Core drives provider flows" (cd988a4) removed; strict, so these fail loudly once the kit is fixed.
KIT_NOT_PORTED = pytest.mark.xfail(
    raises=AttributeError, strict=True, reason="conformance kit calls PluginHost.impl, removed by cd988a4"
)


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

    @KIT_NOT_PORTED
    def test_capabilities_match_hooks(self, tarash_harness: Harness) -> None:
        super().test_capabilities_match_hooks(tarash_harness)

    @KIT_NOT_PORTED
    def test_submitted_job_data_is_json(self, tarash_harness: Harness) -> None:
        super().test_submitted_job_data_is_json(tarash_harness)

    @KIT_NOT_PORTED
    def test_job_resumes_from_json(self, tarash_harness: Harness) -> None:
        super().test_job_resumes_from_json(tarash_harness)


class TestGeminiApiConformance(_GoogleConformance):
    @pytest.fixture
    def provider_name(self) -> str:
        return "google"


class TestVertexConformance(_GoogleConformance):
    @pytest.fixture
    def provider_name(self) -> str:
        return "google-vertex"
