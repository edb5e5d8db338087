"""Tarash provider plugin for the Example API, and the reference server of that API.

Install it next to tarash-core and ``provider="example"`` works with no registration call::

    from tarash.tarash_gateway import generate_video
    from tarash.tarash_gateway.models import VideoGenerationConfig, VideoGenerationRequest

    config = VideoGenerationConfig(provider="example", model="example-video-1",
                                   base_url="http://127.0.0.1:8765", api_key="any-key")
    video = generate_video(config, VideoGenerationRequest(prompt="a lighthouse"))

Start the server first: ``python -m tarash_example_provider.server``. This package is also the
template for writing a provider plugin; see its README.
"""

from __future__ import annotations

from ._fields import API_KEY_ENV, DEFAULT_BASE_URL, IMAGE_MODEL, PROVIDER, VIDEO_MODEL

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_BASE_URL",
    "IMAGE_MODEL",
    "PROVIDER",
    "VIDEO_MODEL",
    "close_clients",
]


def close_clients() -> None:
    """Close the pooled HTTP clients now (they are closed at exit anyway)."""
    from ._client import close_clients as close

    close()
