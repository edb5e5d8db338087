"""Discovery: one entry point per provider, cheap, with the model table."""

from __future__ import annotations

import subprocess
import sys

from tarash.tarash_gateway import get_provider, list_plugins
from tarash_openai import _models


def test_one_entry_point_per_provider() -> None:
    plugins = {p.name: (p.distribution, p.status, p.providers) for p in list_plugins() if "openai" in p.name}
    assert plugins == {
        "openai": ("tarash-openai", "loaded", ("openai",)),
        "azure-openai": ("tarash-openai", "loaded", ("azure-openai",)),
    }


def test_openai_spec() -> None:
    spec = get_provider("openai").spec
    assert (spec.modalities, spec.api_key_env, spec.base_url, spec.auth_header, spec.auth_scheme) == (
        frozenset({"image"}),
        "OPENAI_API_KEY",
        "https://api.openai.com/v1",
        "Authorization",
        "Bearer",
    )
    assert (spec.capabilities.cancel, spec.capabilities.resume) == (False, False)


def test_azure_spec_sends_the_bare_key_in_api_key() -> None:
    spec = get_provider("azure-openai").spec
    assert (spec.modalities, spec.api_key_env, spec.base_url, spec.auth_header, spec.auth_scheme) == (
        frozenset({"image"}),
        "AZURE_OPENAI_API_KEY",
        None,
        "api-key",
        "",
    )


def test_model_table_lists_the_gpt_image_2_family() -> None:
    families = {f.prefix: f for f in get_provider("openai").spec.models}
    assert list(families) == [
        "gpt-image-2",
        "gpt-image-2-2026-04-21",
        "gpt-image-2.5-sunburst",
        "gpt-image-2.5-sunburst-2026-09-08",
        "gpt-image-2.5-flare",
        "gpt-image-2.5-flare-2026-09-08",
        "gpt-image-2.6-sunburst",
        "gpt-image-2.6-flare",
    ]
    assert families["gpt-image-2.5-flare"].allowed["quality"] == (
        "low",
        "medium",
        "high",
        "auto",
        "xhigh",
        "max",
    )
    assert families["gpt-image-2.6-flare"].allowed["quality"] == ("low", "medium", "high", "auto")
    assert families["gpt-image-2.6-flare"].allowed["aspect_ratio"] == ("auto", "1:1", "3:2", "2:3")
    assert all(f.modality == "image" for f in families.values())
    assert _models.SDK_VERSION == "3.57.0"


def test_discovery_imports_neither_the_flow_nor_the_table() -> None:
    code = (
        "import sys\n"
        "from tarash.tarash_gateway import list_providers\n"
        "assert {'openai', 'azure-openai'} <= {p.name for p in list_providers()}\n"
        "print(sorted(m for m in sys.modules if m.startswith('tarash_openai')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == (
        "['tarash_openai', 'tarash_openai._azure_plugin', 'tarash_openai._plugin', 'tarash_openai._specs']"
    )
