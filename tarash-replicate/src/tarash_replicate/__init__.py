"""Tarash provider plugin for Replicate: video and image models through the predictions API.

Install it next to tarash-core and ``provider="replicate"`` works with no registration call (the
key comes from ``REPLICATE_API_TOKEN`` or ``config.api_key``)::

    from tarash.tarash_gateway import generate_video
    from tarash.tarash_gateway.models import VideoGenerationConfig, VideoGenerationRequest

    config = VideoGenerationConfig(provider="replicate", model="google/veo-3-fast")
    video = generate_video(config, VideoGenerationRequest(prompt="a lighthouse", duration_seconds=8))

Replicate deletes an API prediction's outputs one hour after it was created: download them
before :func:`expires_at`. Verify webhook deliveries with :func:`tarash_replicate.webhooks.verify`;
test without the network with :class:`tarash_replicate.testing.FakeReplicateServer`.
"""

from __future__ import annotations

from ._outputs import expires_at
from ._spec import API_KEY_ENV, DATA_URI_LIMIT, DEFAULT_BASE_URL, PROVIDER, RETENTION, UPLOAD_LIMIT

__all__ = [
    "API_KEY_ENV",
    "DATA_URI_LIMIT",
    "DEFAULT_BASE_URL",
    "PROVIDER",
    "RETENTION",
    "UPLOAD_LIMIT",
    "expires_at",
]
