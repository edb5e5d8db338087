"""Tarash provider plugin for Google's video and image models.

Two providers, one per Google API (chosen by ``config.provider``)::

    from tarash.tarash_gateway import generate_video
    from tarash.tarash_gateway.models import VideoGenerationConfig, VideoGenerationRequest

    # Gemini Developer API: GEMINI_API_KEY (or GOOGLE_API_KEY)
    config = VideoGenerationConfig(provider="google", model="gemini-omni-1.2-flash")
    # Vertex AI: a service-account file (or GOOGLE_APPLICATION_CREDENTIALS)
    config = VideoGenerationConfig(
        provider="google-vertex", model="veo-3.0-generate-001",
        provider_config={"credentials_file": "sa.json", "project": "my-project", "location": "us-central1"},
    )

See ``docs/providers/google.md`` for the routes, the model table and deprecations;
:mod:`tarash_google.testing` has fake Google servers for your tests.
"""

from __future__ import annotations

from ._names import GEMINI as PROVIDER
from ._names import VERTEX as VERTEX_PROVIDER

__all__ = ["PROVIDER", "VERTEX_PROVIDER", "clear_token_cache"]


def clear_token_cache() -> None:
    """Forget the cached Vertex AI access tokens (a rotated key or another user's file is cached apart)."""
    from ._auth import clear_tokens

    clear_tokens()
