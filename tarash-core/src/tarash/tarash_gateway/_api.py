"""The public functions: generate, register, list."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._gateway import default_gateway
from ._plugins import HOST, PluginInfo, ProviderInfo

if TYPE_CHECKING:
    from .field_mappers import FieldMapper
    from .models import (
        ImageGenerationConfig,
        ImageGenerationRequest,
        ImageGenerationResponse,
        ImageProgressCallback,
        ProgressCallback,
        VideoGenerationConfig,
        VideoGenerationRequest,
        VideoGenerationResponse,
    )

__all__ = [
    "generate_image",
    "generate_image_async",
    "generate_video",
    "generate_video_async",
    "get_provider",
    "get_provider_field_mapping",
    "list_plugins",
    "list_providers",
    "register_provider",
    "register_provider_field_mapping",
    "set_concurrency",
    "unregister_provider",
]


def generate_video(
    config: VideoGenerationConfig,
    request: VideoGenerationRequest,
    on_progress: ProgressCallback | None = None,
) -> VideoGenerationResponse:
    """Generate a video, walking ``config.fallback_configs`` on retryable failures.

    ``on_progress`` may be a plain function or a coroutine function. The submission is recorded in
    the job ledger (``tarash.tarash_gateway.jobs``), so a crashed process can resume it. Raises a
    :class:`~tarash.tarash_gateway.exceptions.TarashException` subclass carrying
    ``execution_metadata`` (every attempt) when no attempt succeeds; an exception raised by
    ``on_progress`` propagates unchanged (after the remote job is cancelled).
    """
    return default_gateway().generate_video(config, request, on_progress)


async def generate_video_async(
    config: VideoGenerationConfig,
    request: VideoGenerationRequest,
    on_progress: ProgressCallback | None = None,
) -> VideoGenerationResponse:
    """Async :func:`generate_video`; cancelling the task cancels the remote job."""
    return await default_gateway().generate_video_async(config, request, on_progress)


def generate_image(
    config: ImageGenerationConfig,
    request: ImageGenerationRequest,
    on_progress: ImageProgressCallback | None = None,
) -> ImageGenerationResponse:
    """Generate images (see :func:`generate_video`)."""
    return default_gateway().generate_image(config, request, on_progress)


async def generate_image_async(
    config: ImageGenerationConfig,
    request: ImageGenerationRequest,
    on_progress: ImageProgressCallback | None = None,
) -> ImageGenerationResponse:
    """Async :func:`generate_image`."""
    return await default_gateway().generate_image_async(config, request, on_progress)


def register_provider(provider: str, handler: Any) -> None:
    """Register ``handler`` (an object with the four ``generate_*`` methods) as ``provider``.

    On the default gateway; overrides a built-in or installed provider of the same name. Prefer a plugin
    package with lifecycle hooks for anything you ship: core can then cancel, retry and resume.
    """
    HOST.register_handler(provider, handler)


def unregister_provider(provider: str) -> None:
    """Remove a provider registered with :func:`register_provider` (installed ones come back)."""
    HOST.unregister_handler(provider)


def register_provider_field_mapping(
    provider: str,
    model_mappings: Mapping[str, Mapping[str, FieldMapper]],
) -> None:
    """Add or replace field mappings (model prefix -> {api field: FieldMapper}) for a provider.

    Merged over the mappings the provider's plugin declares; installed providers read them.
    """
    HOST.register_field_mapping(provider, model_mappings)


def get_provider_field_mapping(provider: str) -> dict[str, Mapping[str, FieldMapper]] | None:
    """The provider's field mappings (plugin-declared merged with registered), or None."""
    return HOST.field_mapping(provider)


def list_providers() -> list[ProviderInfo]:
    """Every usable provider (built-in, installed, registered at runtime)."""
    return HOST.providers()


def list_plugins() -> list[PluginInfo]:
    """Every plugin with its status: loaded, failed (with the reason), disabled, conflict."""
    return HOST.plugins()


def get_provider(name: str) -> ProviderInfo:
    """One provider's description; raises ProviderNotFoundError listing the installed ones."""
    return HOST.get(name)


def set_concurrency(provider: str, limit: int | None, *, model: str | None = None) -> None:
    """Allow at most ``limit`` jobs of ``provider`` (or of its ``model``) in flight at once on the
    default gateway; None lifts the cap (see :meth:`Gateway.set_concurrency`)."""
    default_gateway().set_concurrency(provider, limit, model=model)
