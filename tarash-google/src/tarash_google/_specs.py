"""The two providers this distribution registers (cheap: tarash-core's plugin module only)."""

from __future__ import annotations

from typing import Any

from tarash.tarash_gateway.plugin import Capabilities, Lazy, ProviderSpec

from ._names import GEMINI, GEMINI_BASE_URL, GEMINI_KEY_ENV, GOOGLE_KEY_ENV, VERTEX, VERTEX_BASE_URL


def _families(mode: str) -> Any:
    from ._models import families

    return families(mode)  # type: ignore[arg-type]


#: The Gemini Developer API: API key in ``x-goog-api-key``; no cancel (see the docs page).
GEMINI_SPEC = ProviderSpec(
    name=GEMINI,
    modalities={"video", "image"},
    capabilities=Capabilities(cancel=False, resume=True),
    models=Lazy(lambda: _families("gemini")),
    api_key_env=GEMINI_KEY_ENV,
    api_key_env_fallbacks=(GOOGLE_KEY_ENV,),
    base_url=GEMINI_BASE_URL,
    auth_header="x-goog-api-key",
    auth_scheme="",
    description="Google Gemini Developer API: Veo, Gemini Omni, Gemini image (API key)",
)

#: Vertex AI: OAuth token from a credentials file, minted by the flows; cancel through the API.
VERTEX_SPEC = ProviderSpec(
    name=VERTEX,
    modalities={"video", "image"},
    capabilities=Capabilities(cancel=True, resume=True),
    models=Lazy(lambda: _families("vertex")),
    api_key_env=None,
    base_url=VERTEX_BASE_URL,
    description="Google Vertex AI: Veo, Gemini Omni, Imagen, Gemini image (service-account credentials)",
)
