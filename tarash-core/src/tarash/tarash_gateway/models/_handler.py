"""Progress callbacks, the seed's :class:`ProviderHandler` protocol and the model unions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, Union, runtime_checkable

from ._configs import ImageGenerationConfig, VideoGenerationConfig
from ._requests import ImageGenerationRequest, VideoGenerationRequest
from ._responses import (
    ImageGenerationResponse,
    ImageGenerationUpdate,
    VideoGenerationResponse,
    VideoGenerationUpdate,
)

__all__ = [
    "AnyConfig",
    "AnyRequest",
    "AnyResponse",
    "AnyUpdate",
    "AsyncImageProgressCallback",
    "AsyncProgressCallback",
    "ImageProgressCallback",
    "ProgressCallback",
    "ProviderHandler",
    "SyncImageProgressCallback",
    "SyncProgressCallback",
]

SyncProgressCallback = Callable[[VideoGenerationUpdate], None]


AsyncProgressCallback = Callable[[VideoGenerationUpdate], Awaitable[None]]


ProgressCallback = Union[SyncProgressCallback, AsyncProgressCallback]


SyncImageProgressCallback = Callable[[ImageGenerationUpdate], None]


AsyncImageProgressCallback = Callable[[ImageGenerationUpdate], Awaitable[None]]


ImageProgressCallback = Union[SyncImageProgressCallback, AsyncImageProgressCallback]


@runtime_checkable
class ProviderHandler(Protocol):
    """The runtime-registration contract (``register_provider(name, handler)``).

    Four methods; raise ``NotImplementedError`` for a modality the provider does not support.
    Installed plugins use the hooks in :mod:`tarash.tarash_gateway.hookspecs` instead.
    """

    def generate_video(
        self,
        config: VideoGenerationConfig,
        request: VideoGenerationRequest,
        on_progress: ProgressCallback | None = None,
    ) -> VideoGenerationResponse: ...

    async def generate_video_async(
        self,
        config: VideoGenerationConfig,
        request: VideoGenerationRequest,
        on_progress: ProgressCallback | None = None,
    ) -> VideoGenerationResponse: ...

    def generate_image(
        self,
        config: ImageGenerationConfig,
        request: ImageGenerationRequest,
        on_progress: ImageProgressCallback | None = None,
    ) -> ImageGenerationResponse: ...

    async def generate_image_async(
        self,
        config: ImageGenerationConfig,
        request: ImageGenerationRequest,
        on_progress: ImageProgressCallback | None = None,
    ) -> ImageGenerationResponse: ...


AnyConfig = Union[VideoGenerationConfig, ImageGenerationConfig]


AnyRequest = Union[VideoGenerationRequest, ImageGenerationRequest]


AnyResponse = Union[VideoGenerationResponse, ImageGenerationResponse]


AnyUpdate = Union[VideoGenerationUpdate, ImageGenerationUpdate]
