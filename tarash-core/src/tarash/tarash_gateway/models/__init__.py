"""Request, config, response and progress models (attrs classes).

Configs and responses are frozen; requests are mutable. Every field is checked when the object is
built, and a bad value raises :class:`~tarash.tarash_gateway.exceptions.ValidationError` naming the
field. ``api_key`` never appears in ``repr`` and is never serialised; reprs, progress updates,
attempt metadata and ``raw_response`` payloads are redacted (see :mod:`._redact`).

Its modules, bottom up: ``_media`` (media values and the shared converters), ``_responses`` (responses,
metadata, progress updates), ``_mock`` (the mock provider's settings), ``_configs``, ``_requests``
and ``_handler`` (callbacks, the seed's handler protocol, unions).
"""

from __future__ import annotations

from ._configs import MAX_CHAIN_LENGTH as MAX_CHAIN_LENGTH
from ._configs import ImageGenerationConfig, VideoGenerationConfig
from ._configs import iter_fallback_chain as iter_fallback_chain
from ._handler import AnyConfig as AnyConfig
from ._handler import AnyRequest as AnyRequest
from ._handler import AnyResponse as AnyResponse
from ._handler import AnyUpdate as AnyUpdate
from ._handler import (
    AsyncImageProgressCallback,
    AsyncProgressCallback,
    ImageProgressCallback,
    ProgressCallback,
    ProviderHandler,
    SyncImageProgressCallback,
    SyncProgressCallback,
)
from ._media import (
    AnyDict,
    AspectRatio,
    ImageRole,
    ImageType,
    MediaContent,
    MediaType,
    Resolution,
    StatusType,
)
from ._mock import MockConfig, MockPollingConfig, MockResponse
from ._requests import ImageGenerationRequest, VideoGenerationRequest
from ._responses import (
    AttemptMetadata,
    ExecutionMetadata,
    ImageGenerationResponse,
    ImageGenerationUpdate,
    VideoGenerationResponse,
    VideoGenerationUpdate,
)

__all__ = [
    "AnyDict",
    "AspectRatio",
    "AsyncImageProgressCallback",
    "AsyncProgressCallback",
    "AttemptMetadata",
    "ExecutionMetadata",
    "ImageGenerationConfig",
    "ImageGenerationRequest",
    "ImageGenerationResponse",
    "ImageGenerationUpdate",
    "ImageProgressCallback",
    "ImageRole",
    "ImageType",
    "MediaContent",
    "MediaType",
    "MockConfig",
    "MockPollingConfig",
    "MockResponse",
    "ProgressCallback",
    "ProviderHandler",
    "Resolution",
    "StatusType",
    "SyncImageProgressCallback",
    "SyncProgressCallback",
    "VideoGenerationConfig",
    "VideoGenerationRequest",
    "VideoGenerationResponse",
    "VideoGenerationUpdate",
]
