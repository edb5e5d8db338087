"""Tarash: one interface over AI video and image generation providers.

Names are imported lazily, so ``import tarash.tarash_gateway`` stays fast and never imports a
provider SDK or discovers plugins.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "AspectRatio",
    "BudgetExceededError",
    "CancelUnconfirmedError",
    "ContentModerationError",
    "Cost",
    "CostLimitExceededError",
    "Gateway",
    "GenerationFailedError",
    "HTTPConnectionError",
    "HTTPError",
    "ImageGenerationConfig",
    "ImageGenerationRequest",
    "ImageGenerationResponse",
    "ImageGenerationUpdate",
    "ImageType",
    "JobCancelledError",
    "JobHandle",
    "JobNotFinishedError",
    "JobOutcome",
    "JobRecord",
    "LedgerError",
    "MediaContent",
    "MissingCredentialsError",
    "MockConfig",
    "ProviderNotFoundError",
    "Resolution",
    "ResultNotCollectedError",
    "TarashException",
    "TimeoutError",
    "UnknownSubmissionError",
    "UnsupportedModalityError",
    "ValidationError",
    "VideoGenerationConfig",
    "VideoGenerationRequest",
    "VideoGenerationResponse",
    "VideoGenerationUpdate",
    "__version__",
    "default_gateway",
    "estimate_cost",
    "generate_image",
    "generate_image_async",
    "generate_video",
    "generate_video_async",
    "get_job",
    "get_provider",
    "get_provider_field_mapping",
    "hookimpl",
    "list_jobs",
    "list_plugins",
    "list_providers",
    "register_provider",
    "register_provider_field_mapping",
    "resume",
    "resume_async",
    "set_concurrency",
    "set_ledger",
    "submit_image",
    "submit_image_async",
    "submit_video",
    "submit_video_async",
    "unregister_provider",
]

_LOCATIONS = {
    "generate_image": "._api",
    "generate_image_async": "._api",
    "generate_video": "._api",
    "generate_video_async": "._api",
    "get_provider": "._api",
    "get_provider_field_mapping": "._api",
    "list_plugins": "._api",
    "list_providers": "._api",
    "register_provider": "._api",
    "register_provider_field_mapping": "._api",
    "set_concurrency": "._api",
    "unregister_provider": "._api",
    "Cost": ".costs",
    "estimate_cost": ".costs",
    "BudgetExceededError": ".exceptions",
    "CostLimitExceededError": ".exceptions",
    "hookimpl": ".plugin",
    "Gateway": "._gateway",
    "default_gateway": "._gateway",
    "MissingCredentialsError": ".exceptions",
    "CancelUnconfirmedError": ".exceptions",
    "ContentModerationError": ".exceptions",
    "ResultNotCollectedError": ".exceptions",
    "GenerationFailedError": ".exceptions",
    "HTTPConnectionError": ".exceptions",
    "HTTPError": ".exceptions",
    "JobCancelledError": ".exceptions",
    "ProviderNotFoundError": ".exceptions",
    "TarashException": ".exceptions",
    "TimeoutError": ".exceptions",
    "UnknownSubmissionError": ".exceptions",
    "UnsupportedModalityError": ".exceptions",
    "ValidationError": ".exceptions",
    "AspectRatio": ".models",
    "ImageGenerationConfig": ".models",
    "ImageGenerationRequest": ".models",
    "ImageGenerationResponse": ".models",
    "ImageGenerationUpdate": ".models",
    "ImageType": ".models",
    "MediaContent": ".models",
    "MockConfig": ".models",
    "Resolution": ".models",
    "VideoGenerationConfig": ".models",
    "VideoGenerationRequest": ".models",
    "VideoGenerationResponse": ".models",
    "VideoGenerationUpdate": ".models",
    "JobHandle": ".jobs",
    "JobNotFinishedError": ".exceptions",
    "JobOutcome": ".jobs",
    "JobRecord": ".jobs",
    "LedgerError": ".exceptions",
    "get_job": ".jobs",
    "list_jobs": ".jobs",
    "resume": ".jobs",
    "resume_async": ".jobs",
    "set_ledger": ".jobs",
    "submit_image": ".jobs",
    "submit_image_async": ".jobs",
    "submit_video": ".jobs",
    "submit_video_async": ".jobs",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("tarash-core")
        except PackageNotFoundError:
            return "0.0.0"
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(globals()))


if TYPE_CHECKING:
    from ._api import (
        generate_image,
        generate_image_async,
        generate_video,
        generate_video_async,
        get_provider,
        get_provider_field_mapping,
        list_plugins,
        list_providers,
        register_provider,
        register_provider_field_mapping,
        set_concurrency,
        unregister_provider,
    )
    from ._gateway import Gateway, default_gateway
    from .costs import Cost, estimate_cost
    from .exceptions import (
        BudgetExceededError,
        CancelUnconfirmedError,
        ContentModerationError,
        CostLimitExceededError,
        GenerationFailedError,
        HTTPConnectionError,
        HTTPError,
        JobCancelledError,
        JobNotFinishedError,
        LedgerError,
        MissingCredentialsError,
        ProviderNotFoundError,
        ResultNotCollectedError,
        TarashException,
        TimeoutError,
        UnknownSubmissionError,
        UnsupportedModalityError,
        ValidationError,
    )
    from .jobs import (
        JobHandle,
        JobOutcome,
        JobRecord,
        get_job,
        list_jobs,
        resume,
        resume_async,
        set_ledger,
        submit_image,
        submit_image_async,
        submit_video,
        submit_video_async,
    )
    from .models import (
        AspectRatio,
        ImageGenerationConfig,
        ImageGenerationRequest,
        ImageGenerationResponse,
        ImageGenerationUpdate,
        ImageType,
        MediaContent,
        MockConfig,
        Resolution,
        VideoGenerationConfig,
        VideoGenerationRequest,
        VideoGenerationResponse,
        VideoGenerationUpdate,
    )
    from .plugin import hookimpl

    __version__: str
