"""The two providers this distribution registers. Imported by the entry module: tarash-core only."""

from __future__ import annotations

from tarash.tarash_gateway.plugin import Capabilities, Lazy, ProviderSpec

OPENAI = "openai"
AZURE = "azure-openai"
OPENAI_KEY_ENV = "OPENAI_API_KEY"
AZURE_KEY_ENV = "AZURE_OPENAI_API_KEY"
#: The API root, ``/v1`` included, as openai-python's ``base_url``; ``config.base_url`` replaces it.
OPENAI_BASE_URL = "https://api.openai.com/v1"

#: Why there is no video: every video call's UnsupportedModalityError says it (core reads it).
SORA_RETIRED = (
    "OpenAI retired the Sora video API on 2026-09-24 (deprecated 2026-03-24); "
    "tarash-openai generates images only (the gpt-image-2.x models)"
)
#: One POST answers with the images: nothing to cancel, nothing to resume.
_CAPABILITIES = Capabilities(cancel=False, resume=False)


def _families() -> object:
    from ._models import families

    return families()


OPENAI_SPEC = ProviderSpec(
    name=OPENAI,
    modalities={"image"},
    capabilities=_CAPABILITIES,
    models=Lazy(_families),
    unsupported={"video": SORA_RETIRED},
    api_key_env=OPENAI_KEY_ENV,
    base_url=OPENAI_BASE_URL,
    description="OpenAI Images API: the gpt-image-2.x models (generations and edits)",
)

AZURE_SPEC = ProviderSpec(
    name=AZURE,
    modalities={"image"},
    capabilities=_CAPABILITIES,
    models=Lazy(_families),
    unsupported={"video": SORA_RETIRED},
    api_key_env=AZURE_KEY_ENV,
    auth_header="api-key",
    auth_scheme="",
    description="Azure OpenAI images (gpt-image-2.x deployments; endpoint in config.base_url)",
)
